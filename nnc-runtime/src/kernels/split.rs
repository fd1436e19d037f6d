//! How threaded kernels share out their work: an operand list that [`Exec::split_rows`] cuts
//! into one piece per task ([`RowsMut`], [`RowsRef`], [`SplitRows`], [`SplitCols`] and tuples of them), the ranges it cuts
//! at, and the thresholds below which a kernel stays on the calling thread.
//!
//! The ranges depend only on the sizes and the task count, and start at multiples of a grain
//! the kernel chooses, so that each output element is computed by the same operations whatever
//! the split. This module does not start threads or hand out jobs; `exec.rs` does.

use std::marker::PhantomData;
use std::ops::Range;

use super::packed::MatMut;
use super::Exec;

/// The fewest elements of a cheap element-wise pass (an add, a relu, a bias) worth a task of
/// its own; kernels whose elements cost more (a transcendental activation, a softmax) count
/// each element several times. Optimizer updates share out parameters by their home rows
/// instead (`homes.rs`). Measured with `cargo bench -p nnc-runtime --bench
/// threads`: see ARCHITECTURE.md, "Threads".
pub(crate) const MIN_TASK_ELEMS: usize = 1 << 15;

/// Element-wise passes split at multiples of this many elements: whole cache lines, and whole
/// vectors at every width, so each element meets the same vector code whatever the split.
pub(crate) const ELEM_GRAIN: usize = 64;

impl Exec {
    /// How many of up to `units` tasks a kernel should split `work` into, giving each task at
    /// least `min_work` (the kernel's measured threshold) and at most one task per thread.
    pub(crate) fn tasks_for(&self, units: usize, work: usize, min_work: usize) -> usize {
        if self.threads() == 1 {
            return 1;
        }
        (work / min_work.max(1))
            .clamp(1, self.threads())
            .min(units.max(1))
    }

    /// Splits `rows` rows into `tasks` consecutive ranges and runs `f(range, parts)` for each,
    /// where `parts` are the operands' pieces for those rows. Range boundaries are multiples of
    /// `grain` (except the last end), so a kernel whose blocks are `grain` rows tall sees the same
    /// blocks whatever the task count.
    pub(crate) fn split_rows<S: Split>(
        &self,
        rows: usize,
        grain: usize,
        tasks: usize,
        operands: S,
        f: impl Fn(Range<usize>, S::Part) + Sync,
    ) {
        let grain = grain.max(1);
        let blocks = rows.div_ceil(grain);
        let tasks = tasks.min(self.threads()).clamp(1, blocks.max(1));
        operands.check(rows);
        operands.check_tasks(tasks);
        if tasks == 1 {
            // SAFETY: one task takes every row, once.
            return f(0..rows, unsafe { operands.part(0, 0..rows) });
        }
        self.run(tasks, &|t| {
            let rows = task_rows(rows, grain, tasks, t);
            // SAFETY: the ranges of distinct tasks are disjoint (consecutive, increasing
            // boundaries), `check` verified that every operand holds `rows` rows, and `run`
            // calls each task index exactly once.
            f(rows.clone(), unsafe { operands.part(t, rows) })
        });
    }

    /// [`Exec::split_rows`] for a pass over `rows` rows of `width` elements, each costing `cost`
    /// cheap operations, split between whole rows.
    pub(crate) fn split_row_pass<S: Split>(
        &self,
        rows: usize,
        width: usize,
        cost: usize,
        operands: S,
        f: impl Fn(S::Part) + Sync,
    ) {
        let tasks = self.tasks_for(rows, rows * width * cost, MIN_TASK_ELEMS);
        self.split_rows(rows, 1, tasks, operands, |_, parts| f(parts));
    }

    /// [`Exec::split_rows`] over the elements of flat operands (rows of one element), for an
    /// element-wise pass whose elements each cost `cost` cheap operations; the length is the
    /// first operand's.
    pub(crate) fn split_elems<S: Split>(
        &self,
        cost: usize,
        operands: S,
        f: impl Fn(S::Part) + Sync,
    ) {
        let len = operands.len();
        let tasks = self.tasks_for(len.div_ceil(ELEM_GRAIN), len * cost, MIN_TASK_ELEMS);
        self.split_rows(len, ELEM_GRAIN, tasks, operands, |_, parts| f(parts));
    }
}

/// The rows that task `t` of `tasks` takes in [`Exec::split_rows`] of `rows` rows at multiples
/// of `grain` (at least 1): consecutive, increasing ranges, as even as the grain allows.
pub(crate) fn task_rows(rows: usize, grain: usize, tasks: usize, t: usize) -> Range<usize> {
    let blocks = rows.div_ceil(grain);
    let start = (blocks * t / tasks * grain).min(rows);
    let end = (blocks * (t + 1) / tasks * grain).min(rows);
    start..end
}

/// Operands that [`Exec::split_rows`] cuts into one piece per task: [`RowsMut`], [`RowsRef`]
/// and tuples of them.
pub(crate) trait Split: Sync {
    /// The pieces a task receives, borrowed for as long as the operands' own borrows.
    type Part;
    /// The number of elements of the (first) operand.
    fn len(&self) -> usize;
    /// Panics unless every operand holds exactly `rows` rows.
    fn check(&self, rows: usize);
    /// The pieces for `rows`, which task `task` of the split handles.
    ///
    /// # Safety
    ///
    /// `rows` lies within the checked row count, `task` is below the task count the split was
    /// checked for, no two calls on one value get overlapping ranges, and no two get the same
    /// task if the value has per-task pieces ([`Split::PER_TASK`]): a writable piece must not
    /// alias another.
    unsafe fn part(&self, task: usize, rows: Range<usize>) -> Self::Part;
    /// Whether a piece belongs to the task rather than to the rows (scratch space), so that a
    /// task may take only one.
    const PER_TASK: bool = false;
    /// Panics unless the operand serves `tasks` tasks; only per-task operands care.
    fn check_tasks(&self, _tasks: usize) {}
}

/// A writable operand of `width` elements per row, each task getting its own rows.
pub(crate) struct RowsMut<'a, T> {
    ptr: *mut T,
    len: usize,
    width: usize,
    life: PhantomData<&'a mut [T]>,
}

impl<'a, T> RowsMut<'a, T> {
    pub(crate) fn new(slice: &'a mut [T], width: usize) -> Self {
        RowsMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            width,
            life: PhantomData,
        }
    }
}

// SAFETY: a `RowsMut` is a `&mut [T]` handed out in disjoint pieces, which may move to other
// threads exactly when `T` may.
unsafe impl<T: Send> Sync for RowsMut<'_, T> {}

impl<'a, T: Send> Split for RowsMut<'a, T> {
    type Part = &'a mut [T];
    fn len(&self) -> usize {
        self.len
    }
    fn check(&self, rows: usize) {
        assert_eq!(
            Some(self.len),
            rows.checked_mul(self.width),
            "split_rows: an operand of {} elements is not {rows} rows of {}",
            self.len,
            self.width
        );
    }
    unsafe fn part(&self, _task: usize, rows: Range<usize>) -> &'a mut [T] {
        // SAFETY: by `part`'s contract the rows are inside the checked length and no other live
        // piece overlaps them, and the pointer came from a `&mut [T]` borrowed for `'a`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.add(rows.start * self.width),
                rows.len() * self.width,
            )
        }
    }
}

/// A read-only operand of `width` elements per row, each task getting its rows.
pub(crate) struct RowsRef<'a, T>(pub(crate) &'a [T], pub(crate) usize);

impl<'a, T: Sync> Split for RowsRef<'a, T> {
    type Part = &'a [T];
    fn len(&self) -> usize {
        self.0.len()
    }
    fn check(&self, rows: usize) {
        assert_eq!(
            Some(self.0.len()),
            rows.checked_mul(self.1),
            "split_rows: an operand of {} elements is not {rows} rows of {}",
            self.0.len(),
            self.1
        );
    }
    unsafe fn part(&self, _task: usize, rows: Range<usize>) -> &'a [T] {
        &self.0[rows.start * self.1..rows.end * self.1]
    }
}

/// Scratch space of `len` elements for each task of a split: task `t` gets elements
/// `t·len .. (t + 1)·len`, whatever rows it handles. A kernel that needs scratch sizes its task
/// count by [`PerTask::tasks`] so that every task has its own.
pub(crate) struct PerTask<'a, T> {
    ptr: *mut T,
    len: usize,
    per_task: usize,
    life: PhantomData<&'a mut [T]>,
}

impl<'a, T> PerTask<'a, T> {
    pub(crate) fn new(slice: &'a mut [T], per_task: usize) -> Self {
        PerTask {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            per_task,
            life: PhantomData,
        }
    }

    /// How many tasks the scratch serves: at least 1, since a task with no scratch to share is
    /// a caller's error that `check_tasks` reports.
    pub(crate) fn tasks(&self) -> usize {
        (self.len.checked_div(self.per_task).unwrap_or(usize::MAX)).max(1)
    }
}

// SAFETY: as for `RowsMut`: a `&mut [T]` handed out in disjoint pieces, one per task.
unsafe impl<T: Send> Sync for PerTask<'_, T> {}

impl<'a, T: Send> Split for PerTask<'a, T> {
    type Part = &'a mut [T];
    const PER_TASK: bool = true;
    fn len(&self) -> usize {
        self.len
    }
    fn check(&self, _rows: usize) {}
    fn check_tasks(&self, tasks: usize) {
        assert!(
            tasks
                .checked_mul(self.per_task)
                .is_some_and(|n| n <= self.len),
            "split_rows: scratch of {} elements does not give {tasks} tasks {} each",
            self.len,
            self.per_task
        );
    }
    unsafe fn part(&self, task: usize, _rows: Range<usize>) -> &'a mut [T] {
        // SAFETY: `check_tasks` verified that every task's piece lies inside the slice, by
        // `part`'s contract no other live piece belongs to the same task, and the pointer came
        // from a `&mut [T]` borrowed for `'a`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(task * self.per_task), self.per_task) }
    }
}

/// A writable matrix split by row: the task of rows `i0..i1` gets them as a [`MatMut`] of its
/// own.
pub(crate) struct SplitRows<'a, T>(pub(crate) MatMut<'a, T>);

/// A writable matrix split by column: the task of columns `j0..j1` gets them in every row, as a
/// [`MatMut`] of its own (for products that share out the columns of `C`). The count a split
/// cuts is the columns.
pub(crate) struct SplitCols<'a, T>(pub(crate) MatMut<'a, T>);

// SAFETY: each hands out views of disjoint rows or columns of one exclusively borrowed matrix,
// which may move to other threads exactly when `T` may.
unsafe impl<T: Send> Sync for SplitRows<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SplitCols<'_, T> {}

impl<'a, T: Send> Split for SplitRows<'a, T> {
    type Part = MatMut<'a, T>;
    fn len(&self) -> usize {
        self.0.rows()
    }
    fn check(&self, rows: usize) {
        assert_eq!(
            self.0.rows(),
            rows,
            "split_rows: a matrix of {} rows split as {rows}",
            self.0.rows()
        );
    }
    unsafe fn part(&self, _task: usize, rows: Range<usize>) -> MatMut<'a, T> {
        // SAFETY: by `part`'s contract the rows lie inside the checked count and no other live
        // piece shares one.
        unsafe { self.0.rows_unchecked(rows) }
    }
}

impl<'a, T: Send> Split for SplitCols<'a, T> {
    type Part = MatMut<'a, T>;
    fn len(&self) -> usize {
        self.0.cols()
    }
    fn check(&self, cols: usize) {
        assert_eq!(
            self.0.cols(),
            cols,
            "split_rows: a matrix of {} columns split as {cols}",
            self.0.cols()
        );
    }
    unsafe fn part(&self, _task: usize, cols: Range<usize>) -> MatMut<'a, T> {
        // SAFETY: by `part`'s contract the columns lie inside the checked count and no other
        // live piece shares one.
        unsafe { self.0.cols_unchecked(cols) }
    }
}

/// A writable operand laid out `[batch, channels, spread]` and split by channel: the task of
/// channels `c0..c1` gets, for every sample, the rows of those channels, which lie apart in
/// memory (one run of `spread` values per sample and channel). For per-channel kernels such as
/// batch norm's gradient, whose every output element depends on sums over its whole channel.
pub(crate) struct ChannelsMut<'a, T> {
    ptr: *mut T,
    len: usize,
    batch: usize,
    spread: usize,
    life: PhantomData<&'a mut [T]>,
}

impl<'a, T> ChannelsMut<'a, T> {
    pub(crate) fn new(slice: &'a mut [T], batch: usize, spread: usize) -> Self {
        ChannelsMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            batch,
            spread,
            life: PhantomData,
        }
    }
}

// SAFETY: as for `RowsMut`: a `&mut [T]` handed out in disjoint pieces (distinct channels).
unsafe impl<T: Send> Sync for ChannelsMut<'_, T> {}

/// One task's channels of a [`ChannelsMut`].
pub(crate) struct Channels<'a, T> {
    ptr: *mut T,
    channels: usize,
    spread: usize,
    batch: usize,
    range: Range<usize>,
    life: PhantomData<&'a mut [T]>,
}

impl<T> Channels<'_, T> {
    /// The `spread` values of channel `c` (one of this task's) in sample `b`.
    pub(crate) fn row(&mut self, b: usize, c: usize) -> &mut [T] {
        assert!(
            b < self.batch && self.range.contains(&c),
            "channel {c} of sample {b} is not this task's"
        );
        // SAFETY: `b` and `c` are inside the operand's checked shape, so the row lies inside the
        // slice; the channel belongs to this task's range, which no other task's overlaps; and
        // the borrow of `self` keeps this the only live row of the piece.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.add((b * self.channels + c) * self.spread),
                self.spread,
            )
        }
    }
}

impl<'a, T: Send> Split for ChannelsMut<'a, T> {
    type Part = Channels<'a, T>;
    fn len(&self) -> usize {
        self.len
    }
    /// The rows a split counts are the channels.
    fn check(&self, channels: usize) {
        assert_eq!(
            Some(self.len),
            self.batch
                .checked_mul(channels)
                .and_then(|n| n.checked_mul(self.spread)),
            "split_rows: an operand of {} elements is not {} samples of {channels} channels of {}",
            self.len,
            self.batch,
            self.spread
        );
    }
    unsafe fn part(&self, _task: usize, rows: Range<usize>) -> Channels<'a, T> {
        Channels {
            ptr: self.ptr,
            channels: self.len.checked_div(self.batch * self.spread).unwrap_or(0),
            spread: self.spread,
            batch: self.batch,
            range: rows,
            life: PhantomData,
        }
    }
}

macro_rules! split_tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Split),+> Split for ($($name,)+) {
            type Part = ($($name::Part,)+);
            const PER_TASK: bool = false $(|| $name::PER_TASK)+;
            fn len(&self) -> usize {
                self.0.len()
            }
            fn check(&self, rows: usize) {
                $(self.$index.check(rows);)+
            }
            unsafe fn part(&self, task: usize, rows: Range<usize>) -> Self::Part {
                // SAFETY: forwarded from this function's contract to each operand.
                unsafe { ($(self.$index.part(task, rows.clone()),)+) }
            }
            fn check_tasks(&self, tasks: usize) {
                $(self.$index.check_tasks(tasks);)+
            }
        }
    };
}

split_tuple!(A 0);
split_tuple!(A 0, B 1);
split_tuple!(A 0, B 1, C 2);
split_tuple!(A 0, B 1, C 2, D 3);
split_tuple!(A 0, B 1, C 2, D 3, E 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_covers_every_row_once_on_grain_boundaries() {
        let exec = Exec::new(3);
        for rows in [0, 1, 7, 8, 9, 31, 100] {
            for grain in [1, 4, 8] {
                for tasks in 1..=4 {
                    let mut out = vec![0u32; rows * 2];
                    exec.split_rows(
                        rows,
                        grain,
                        tasks,
                        (RowsMut::new(&mut out, 2),),
                        |r, (o,)| {
                            assert!(r.start % grain == 0, "{r:?}");
                            assert_eq!(o.len(), r.len() * 2);
                            for (i, v) in o.iter_mut().enumerate() {
                                *v += (r.start * 2 + i) as u32 + 1;
                            }
                        },
                    );
                    let want: Vec<u32> = (1..=rows as u32 * 2).collect();
                    assert_eq!(out, want, "{rows} rows, grain {grain}, {tasks} tasks");
                }
            }
        }
    }

    #[test]
    fn thresholds_give_each_task_its_minimum_work() {
        let exec = Exec::new(4);
        assert_eq!(exec.tasks_for(100, 10, 100), 1);
        assert_eq!(exec.tasks_for(100, 250, 100), 2);
        assert_eq!(exec.tasks_for(100, 10_000, 100), 4);
        assert_eq!(exec.tasks_for(3, 10_000, 100), 3);
        assert_eq!(Exec::serial().tasks_for(100, 10_000, 1), 1);
    }
}
