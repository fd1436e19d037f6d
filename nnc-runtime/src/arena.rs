//! The arena: one buffer holding every activation and gradient of a model's workspace.
//!
//! The buffer has a batched region, where a value with `n` elements per sample owns `n * capacity`
//! elements, followed by a fixed region for values whose size does not depend on the batch. The
//! code generator assigns each value a [`Slot`]; kernels then borrow several slots at once through
//! [`Arena::split`], which hands out one writable view and any number of read-only views without
//! `unsafe` code.

use std::ops::Range;

use crate::aligned::Aligned;
use crate::error::Error;
use crate::float::Float;

/// Where a value lives in an [`Arena`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    offset: usize,
    len: usize,
    batched: bool,
}

impl Slot {
    /// A batched value: `per_sample` elements per sample, placed at
    /// `offset_per_sample * capacity` in the batched region.
    pub const fn batched(offset_per_sample: usize, per_sample: usize) -> Slot {
        Slot {
            offset: offset_per_sample,
            len: per_sample,
            batched: true,
        }
    }

    /// A value whose size does not depend on the batch, placed at `offset` in the fixed region
    /// (which follows the batched region).
    pub const fn fixed(offset: usize, len: usize) -> Slot {
        Slot {
            offset,
            len,
            batched: false,
        }
    }
}

/// One zero-initialised buffer for all the values of a workspace.
#[derive(Debug)]
pub struct Arena<T> {
    /// 64-byte aligned, so that with the memory plan's slot offsets (multiples of 16 elements)
    /// every slot starts at the same alignment in every workspace.
    buf: Aligned<T>,
    /// Per-thread working space of kernels that need it (a convolution's patches), apart from
    /// the slots so that a kernel can hold it beside its views of them; empty for most models.
    scratch: Aligned<T>,
    capacity: usize,
    per_sample: usize,
    fixed: usize,
}

// Not derived: `Aligned` is `Clone` only for float elements.
impl<T: Float> Clone for Arena<T> {
    fn clone(&self) -> Self {
        Arena {
            buf: self.buf.clone(),
            scratch: self.scratch.clone(),
            ..*self
        }
    }
}

impl<T: Float> Arena<T> {
    /// Allocates `per_sample * capacity + fixed` zeros. A capacity of 0 is allowed; every batch
    /// is then rejected by `check::batch`. Panics where the memory cannot be had;
    /// [`Arena::try_new`] returns an error instead.
    pub fn new(per_sample: usize, fixed: usize, capacity: usize) -> Arena<T> {
        Arena::try_new(per_sample, fixed, capacity).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Arena::new`], or [`Error::Allocation`] where the size overflows or the allocator
    /// refuses it.
    pub fn try_new(per_sample: usize, fixed: usize, capacity: usize) -> Result<Arena<T>, Error> {
        let what = || format!("arena of a workspace for {capacity} samples");
        let len = per_sample
            .checked_mul(capacity)
            .and_then(|batched| batched.checked_add(fixed))
            .ok_or_else(|| Error::Allocation {
                what: what(),
                elements: usize::MAX,
                bytes: None,
            })?;
        Ok(Arena {
            buf: Aligned::try_zeros(len, &what())?,
            scratch: Aligned::try_zeros(0, &what())?,
            capacity,
            per_sample,
            fixed,
        })
    }

    /// The arena with `per_thread` elements of scratch space for each of `threads` threads
    /// (64-byte aligned, like the slots), or [`Error::Allocation`] where that cannot be had.
    pub fn try_with_scratch(mut self, per_thread: usize, threads: usize) -> Result<Self, Error> {
        let what = format!("kernel scratch space for {threads} threads");
        let len = per_thread
            .checked_mul(threads)
            .ok_or_else(|| Error::Allocation {
                what: what.clone(),
                elements: usize::MAX,
                bytes: None,
            })?;
        self.scratch = Aligned::try_zeros(len, &what)?;
        Ok(self)
    }

    /// [`Arena::split`], plus the scratch space.
    pub fn split_scratch<const N: usize>(
        &mut self,
        batch: usize,
        write: Slot,
        reads: [Slot; N],
    ) -> ([&[T]; N], &mut [T], &mut [T]) {
        let (w, ranges) = self.checked_ranges(batch, write, reads);
        let (views, written) = split_views(&mut self.buf, w, ranges);
        (views, written, &mut self.scratch)
    }

    /// [`Arena::read`], plus the scratch space.
    pub fn read_scratch<const N: usize>(
        &mut self,
        batch: usize,
        reads: [Slot; N],
    ) -> ([&[T]; N], &mut [T]) {
        let ranges = reads.map(|slot| self.range(slot, batch));
        let buf: &[T] = &self.buf;
        (ranges.map(|r| &buf[r]), &mut self.scratch)
    }

    /// The largest batch the arena holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The total number of elements.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the arena holds no elements at all.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Element range of `slot` for a batch of `batch` samples.
    ///
    /// A batched slot starts at `offset_per_sample * capacity` and spans `per_sample * batch`
    /// elements; a fixed slot starts at `per_sample_total * capacity + offset` and spans its
    /// length. Panics if the batch exceeds the capacity or the slot lies outside its region: both
    /// are code-generator bugs, since `check::batch` has already rejected oversized batches.
    pub fn range(&self, slot: Slot, batch: usize) -> Range<usize> {
        assert!(
            batch <= self.capacity,
            "batch {batch} exceeds the arena capacity {}; check::batch should have rejected it \
             (nnc code generator bug)",
            self.capacity
        );
        let (start, len, region_end) = if slot.batched {
            (
                slot.offset * self.capacity,
                slot.len * batch,
                self.per_sample * self.capacity,
            )
        } else {
            let base = self.per_sample * self.capacity;
            (base + slot.offset, slot.len, base + self.fixed)
        };
        let end = start + len;
        // A batched slot must fit its full capacity, not just this batch, or a later larger batch
        // would silently overwrite the next value.
        let reserved_end = if slot.batched {
            start + slot.len * self.capacity
        } else {
            end
        };
        assert!(
            reserved_end <= region_end,
            "slot {slot:?} ends at {reserved_end}, past the end of its region at {region_end} \
             (nnc code generator bug)"
        );
        start..end
    }

    /// A read-only view of `slot`.
    pub fn get(&self, batch: usize, slot: Slot) -> &[T] {
        &self.buf[self.range(slot, batch)]
    }

    /// A writable view of `slot`.
    pub fn get_mut(&mut self, batch: usize, slot: Slot) -> &mut [T] {
        let range = self.range(slot, batch);
        &mut self.buf[range]
    }

    /// Several read-only views at once.
    pub fn read<const N: usize>(&self, batch: usize, reads: [Slot; N]) -> [&[T]; N] {
        reads.map(|slot| self.get(batch, slot))
    }

    /// One writable view plus `N` read-only views, all borrowed at once.
    ///
    /// Panics if a non-empty read overlaps the written slot: the generator must never schedule a
    /// kernel that reads what it writes through different slots.
    pub fn split<const N: usize>(
        &mut self,
        batch: usize,
        write: Slot,
        reads: [Slot; N],
    ) -> ([&[T]; N], &mut [T]) {
        let (w, ranges) = self.checked_ranges(batch, write, reads);
        split_views(&mut self.buf, w, ranges)
    }

    /// The ranges of a written slot and of `N` read slots, checked not to overlap.
    fn checked_ranges<const N: usize>(
        &self,
        batch: usize,
        write: Slot,
        reads: [Slot; N],
    ) -> (Range<usize>, [Range<usize>; N]) {
        let w = self.range(write, batch);
        let ranges = reads.map(|slot| (slot, self.range(slot, batch)));
        for (slot, r) in &ranges {
            assert!(
                r.is_empty() || w.is_empty() || r.end <= w.start || r.start >= w.end,
                "arena read slot {slot:?} (elements {r:?}) overlaps the written slot {write:?} \
                 (elements {w:?}); this is a bug in the nnc code generator"
            );
        }
        (w, ranges.map(|(_, r)| r))
    }
}

/// The scratch each thread of a workspace gets: the largest of its kernels' needs. Generated
/// code computes it at compile time from the kernels' own size functions (such as
/// `Conv2d::scratch_len`), so that the size is stated in one place, beside the kernel that
/// uses it.
pub const fn scratch_per_thread(needs: &[usize]) -> usize {
    let (mut largest, mut i) = (0, 0);
    while i < needs.len() {
        if needs[i] > largest {
            largest = needs[i];
        }
        i += 1;
    }
    largest
}

/// One writable view `w` of `buf` and read-only views of the `reads`, which do not overlap it.
fn split_views<T, const N: usize>(
    buf: &mut [T],
    w: Range<usize>,
    reads: [Range<usize>; N],
) -> ([&[T]; N], &mut [T]) {
    if w.is_empty() {
        // Nothing is written, so every read can borrow the whole buffer.
        let buf: &[T] = buf;
        return (reads.map(|r| &buf[r]), &mut []);
    }
    let (head, rest) = buf.split_at_mut(w.start);
    let (written, tail) = rest.split_at_mut(w.end - w.start);
    let (head, tail): (&[T], &[T]) = (head, tail);
    let views = reads.map(|r| {
        if r.is_empty() {
            &head[..0]
        } else if r.end <= w.start {
            &head[r]
        } else {
            &tail[r.start - w.end..r.end - w.end]
        }
    });
    (views, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Layout used below: per sample, a (3 values) at 0 and b (2 values) at 3; fixed region holds
    // c (4 values) at 0 and d (1 value) at 4.
    const A: Slot = Slot::batched(0, 3);
    const B: Slot = Slot::batched(3, 2);
    const C: Slot = Slot::fixed(0, 4);
    const D: Slot = Slot::fixed(4, 1);

    fn arena() -> Arena<f32> {
        Arena::new(5, 5, 4)
    }

    #[test]
    fn sizes_and_ranges() {
        let a = arena();
        assert_eq!(a.len(), 5 * 4 + 5);
        assert_eq!(a.capacity(), 4);
        assert!(!a.is_empty());
        assert_eq!(a.range(A, 4), 0..12);
        assert_eq!(a.range(A, 2), 0..6);
        assert_eq!(a.range(B, 3), 12..18);
        assert_eq!(a.range(B, 0), 12..12);
        assert_eq!(a.range(C, 1), 20..24);
        assert_eq!(a.range(D, 4), 24..25);
        assert!(a.get(3, C).iter().all(|&v| v == 0.0));
        let empty = Arena::<f64>::new(0, 0, 0);
        assert!(empty.is_empty());
    }

    #[test]
    fn split_disjoint_views() {
        let mut a = arena();
        a.get_mut(2, A)
            .copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        a.get_mut(2, D).copy_from_slice(&[7.0]);
        {
            let ([x, d, c], b) = a.split(2, B, [A, D, C]);
            assert_eq!(x, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            assert_eq!(d, &[7.0]);
            assert_eq!(c.len(), 4);
            b.copy_from_slice(&[x[0] + d[0], x[1], x[2], x[3]]);
        }
        assert_eq!(a.get(2, B), &[8.0, 2.0, 3.0, 4.0]);
        let [b, x] = a.read(2, [B, A]);
        assert_eq!(b[0], 8.0);
        assert_eq!(x[5], 6.0);

        // A write before the reads, and an empty write, both work too.
        let ([c, b], x) = a.split(1, A, [C, B]);
        assert_eq!((c.len(), b.len(), x.len()), (4, 2, 3));
        let ([x], nothing) = a.split(0, A, [A]);
        assert!(x.is_empty() && nothing.is_empty());
    }

    #[test]
    fn overlapping_split_panics_with_a_message() {
        let result = std::panic::catch_unwind(|| {
            let mut a = arena();
            let _ = a.split(2, A, [Slot::batched(1, 3)]);
        });
        let payload = result.expect_err("an overlapping read must panic");
        let message = payload
            .downcast_ref::<String>()
            .expect("formatted panic message");
        assert!(message.contains("overlaps the written slot"), "{message}");
        assert!(message.contains("code generator"), "{message}");
    }
}
