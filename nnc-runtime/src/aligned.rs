//! A fixed-length buffer whose first element sits on a 64-byte boundary.
//!
//! The AVX-512 dot-product kernels start each dot product with a partial step that aligns the
//! loads of one operand to a cache line (see `kernels/blocked.rs`), so where an operand sits
//! modulo 64 bytes decides how its elements are grouped into lanes, and so the last bit of the
//! result. Parameters and arenas live in these buffers, and the memory plan puts every arena
//! slot at a multiple of 16 elements, so that a model computes bit-identical results in every
//! workspace and after a checkpoint reload. (Dropping the aligning step instead made the dense
//! forward kernel 22-27% slower on AVX-512: `cargo bench -p nnc-runtime --bench kernels --
//! dense_forward_relu`, 3.11 → 3.79 µs at batch 1 and 29.9 → 37.3 µs at batch 32.)

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::error::Error;
use crate::float::Float;

/// The alignment of the first element, in bytes: one cache line, and one AVX-512 vector.
pub const ALIGN_BYTES: usize = 64;

/// `len` zero-initialised elements starting on a 64-byte boundary. It never grows, so the
/// alignment holds for its whole life; it dereferences to a slice.
pub struct Aligned<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Float> Aligned<T> {
    /// `len` zeros. The allocation has room for up to one alignment's worth of extra elements,
    /// and the buffer starts at the first element on the boundary. Panics, like `vec!`, where
    /// the memory cannot be had; [`Aligned::try_zeros`] returns an error instead.
    pub fn zeros(len: usize) -> Aligned<T> {
        Aligned::try_zeros(len, "buffer").unwrap_or_else(|e| panic!("{e}"))
    }

    /// `len` zeros, or [`Error::Allocation`] naming the buffer as `what` where the size
    /// overflows or the allocator refuses it.
    pub fn try_zeros(len: usize, what: &str) -> Result<Aligned<T>, Error> {
        let slack = ALIGN_BYTES / std::mem::size_of::<T>();
        let error = || Error::Allocation {
            what: what.to_string(),
            elements: len,
            bytes: len.checked_mul(std::mem::size_of::<T>()),
        };
        let total = len.checked_add(slack).ok_or_else(error)?;
        let buf: Vec<T> = crate::kernels::zeroed::try_zeroed(total).ok_or_else(error)?;
        // `align_offset` counts elements; for a pointer into a live allocation of `T` (whose
        // size divides 64) it is below `slack`.
        let start = buf.as_ptr().align_offset(ALIGN_BYTES).min(slack);
        Ok(Aligned { buf, start, len })
    }

    /// A buffer holding a copy of `values`.
    pub fn from_slice(values: &[T]) -> Aligned<T> {
        let mut a = Aligned::zeros(values.len());
        a.copy_from_slice(values);
        a
    }
}

impl<T> Deref for Aligned<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

// A derived `Clone` would copy the offset into a new allocation with another address.
impl<T: Float> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        Aligned::from_slice(self)
    }
}

impl<T: fmt::Debug> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_starts_on_the_boundary() {
        for len in [0, 1, 7, 100] {
            let a = Aligned::<f32>::zeros(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % ALIGN_BYTES, 0);
            assert!(a.iter().all(|x| *x == 0.0));
            let b = Aligned::<f64>::from_slice(&vec![1.5; len]);
            assert_eq!(b.as_ptr() as usize % ALIGN_BYTES, 0);
            let c = b.clone();
            assert_eq!(&c[..], &b[..]);
            assert_eq!(c.as_ptr() as usize % ALIGN_BYTES, 0);
        }
    }
}
