//! Zeroed buffers, allocated fallibly and without touching their pages.
//!
//! `vec![0.0; n]` asks the allocator for zeroed memory (calloc, whose untouched pages cost
//! nothing until used) but aborts the process when the allocator refuses. `Vec::try_reserve`
//! fails cleanly, but the buffer must then be filled element by element, which commits every
//! page of a workspace at once, however large its capacity. No stable safe API does both, so
//! this is the one allocation in the crate written by hand.

use std::alloc::{alloc_zeroed, Layout};

use crate::float::Float;

/// `len` zeros, or `None` where the size overflows `isize` or the allocator refuses.
pub(crate) fn try_zeroed<T: Float>(len: usize) -> Option<Vec<T>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let layout = Layout::array::<T>(len).ok()?;
    // SAFETY: `layout` has a non-zero size, since `len > 0` and `T` (`f32` or `f64`, the only
    // `Float` types) is not zero-sized.
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `len` elements of `T`,
    // which is the layout a `Vec<T>` of capacity `len` uses; all its bytes are zero, and the
    // all-zero bit pattern is `0.0` for both `f32` and `f64`, so all `len` elements are
    // initialised.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_and_refusals() {
        assert_eq!(try_zeroed::<f32>(0), Some(Vec::new()));
        let v = try_zeroed::<f64>(1000).unwrap();
        assert!(v.len() == 1000 && v.iter().all(|&x| x == 0.0));
        assert!(try_zeroed::<f32>(usize::MAX / 2).is_none());
    }
}
