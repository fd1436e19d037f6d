//! Which thread owns which rows of a parameter in a training step: the kernels that read a
//! weight, write its gradient and update it give each row to the same task, so that a weight's
//! rows stay in one core's cache from one step to the next.
//!
//! A core that writes a cache line takes it away from every other core's cache, and the next
//! reader on another core must fetch it back. A training step writes every weight (the update)
//! and its gradient. If the forward product shares out the batch while the update shares out
//! the flat parameter vector, each step moves about half of every weight matrix between the
//! cores twice. On this VM that was most of a small batch's step. The MNIST MLP (784-128-10,
//! Adam) took 190-200 µs per step at batch 32 and 75-85 µs at batch 1 on 2 threads, and
//! 168 µs and 80 µs on one. When the VM's two cores sat far apart, a 400 KB write after the
//! other core had read it took 190-250 µs instead of 50-65 µs, and the steps took 500-600 µs and
//! 200 µs. With every parameter's rows at home, the same steps took 105-130 µs and 45-60 µs, or
//! 140-185 µs and 80-105 µs with the cores far apart (the probe and both builds interleaved in
//! one loop).
//!
//! A parameter's home rows are [`Exec::split_rows`]'s ranges at multiples of [`HOME_GRAIN`] rows
//! over [`Exec::home_tasks`] tasks, which depend only on its shape and the thread count, so every
//! kernel that asks gets the same ranges. Task 0 runs on the calling thread, and each other
//! task usually on the same worker from one job to the next, since a spinning worker claims a
//! task as soon as it is published. With 2 threads task 1 is always the one worker's, unless
//! the caller finishes task 0 before the worker has claimed task 1 and takes it too; with
//! more, which worker claims which task can change between jobs (see ARCHITECTURE.md,
//! "Threads").
//!
//! This module does not choose the splits of kernels that touch no parameter, nor of products
//! large enough to pack (`PACKED_MIN_ROWS` rows), whose arithmetic dwarfs moving the weights;
//! a weight gradient of up to `UNPACKED_WEIGHT_MAX_OUTPUTS` outputs is not packed and keeps its
//! home rows at any batch. A product whose multiply-adds pay for more tasks than its weight has
//! homes (a long batch over a small weight) is split evenly into those tasks instead.

use std::ops::Range;

use super::blocked::NT_COLUMN_GRAIN;
use super::dense::MIN_MATVEC_MACS;
use super::split::{task_rows, Split, ELEM_GRAIN};
use super::Exec;

/// Home rows start at multiples of this many rows: a layer's forward product may split its
/// outputs (its weight's rows) there and still give every output the same register block, and
/// so the same bits.
pub(crate) const HOME_GRAIN: usize = NT_COLUMN_GRAIN;

/// The fewest elements of a parameter worth a task of their own. A single sample's forward
/// product reads each weight once, as an optimizer's update does, and pays for a thread from
/// [`MIN_MATVEC_MACS`] multiply-adds. Adam's update of that many elements costs about
/// `MIN_TASK_ELEMS` cheap element-wise operations (a square root and a division besides a few
/// multiply-adds, over four streams: 101,770 parameters took 73 µs on one core, an add over
/// 65,536 values 10 µs).
const MIN_HOME_ELEMS: usize = MIN_MATVEC_MACS;

impl Exec {
    /// How many tasks share the rows of a `rows` x `cols` parameter: one per
    /// [`MIN_HOME_ELEMS`] elements, at most one per thread and per [`HOME_GRAIN`] rows.
    pub(crate) fn home_tasks(&self, rows: usize, cols: usize) -> usize {
        self.tasks_for(
            rows.div_ceil(HOME_GRAIN),
            rows.saturating_mul(cols),
            MIN_HOME_ELEMS,
        )
    }

    /// [`Exec::split_rows`] over the home rows of a `rows` x `cols` parameter, for a kernel
    /// whose operands are laid out along those rows: the weight itself, its gradient, or the
    /// outputs of its layer.
    pub(crate) fn split_home<S: Split>(
        &self,
        rows: usize,
        cols: usize,
        operands: S,
        f: impl Fn(Range<usize>, S::Part) + Sync,
    ) {
        self.split_rows(rows, HOME_GRAIN, self.home_tasks(rows, cols), operands, f);
    }

    /// Runs `f(range, parts)` over a flat parameter vector made of `tensors`, each `[rows,
    /// cols]` and stored one after another, for an optimizer's element-wise update: task `t`
    /// gets the home rows of every tensor, one call per tensor (`range` is the piece's place in
    /// the vector). A tensor with too few rows to give every task its share is cut at multiples of
    /// `ELEM_GRAIN` elements instead, since its layer's products cannot split its rows either.
    /// One call covers everything if no tensor is worth a second task.
    pub(crate) fn split_tensors<S: Split>(
        &self,
        tensors: &[[usize; 2]],
        operands: S,
        f: impl Fn(Range<usize>, S::Part) + Sync,
    ) {
        assert!(
            !S::PER_TASK,
            "split_tensors: a task takes one piece per tensor, so scratch cannot be split"
        );
        let len = operands.len();
        let total = elements(tensors);
        assert_eq!(
            total,
            Some(len),
            "split_tensors: tensors of {total:?} elements in all over a vector of {len}"
        );
        operands.check(len);
        let tasks = tensors
            .iter()
            .map(|&[rows, cols]| self.cut(rows, cols).tasks)
            .max()
            .unwrap_or(1);
        if tasks <= 1 {
            // SAFETY: one task takes every element, once.
            return f(0..len, unsafe { operands.part(0, 0..len) });
        }
        operands.check_tasks(tasks);
        self.run(tasks, &|t| {
            let mut start = 0;
            for &[rows, cols] in tensors {
                let piece = self.cut(rows, cols).piece(t);
                let range = start + piece.start..start + piece.end;
                start += rows * cols;
                if !range.is_empty() {
                    // SAFETY: each piece lies inside its own tensor's elements, which `check`
                    // found inside the operands; `task_rows` gives distinct tasks disjoint
                    // ranges; `run` calls each task once; and the operands have no per-task
                    // pieces, so one task may take several.
                    f(range.clone(), unsafe { operands.part(t, range) });
                }
            }
        });
    }

    /// How [`Exec::split_tensors`] cuts a `rows` x `cols` tensor: at its home rows if there are
    /// enough row blocks for as many tasks as its elements are worth, else at multiples of
    /// `ELEM_GRAIN` elements.
    fn cut(&self, rows: usize, cols: usize) -> Cut {
        let len = rows * cols;
        let by_elems = self.tasks_for(len.div_ceil(ELEM_GRAIN), len, MIN_HOME_ELEMS);
        let by_rows = self.home_tasks(rows, cols);
        if by_rows == by_elems {
            Cut {
                unit: cols,
                units: rows,
                grain: HOME_GRAIN,
                tasks: by_rows,
            }
        } else {
            Cut {
                unit: 1,
                units: len,
                grain: ELEM_GRAIN,
                tasks: by_elems,
            }
        }
    }
}

/// The number of elements of `tensors`, each `[rows, cols]`; `None` past `usize::MAX`.
pub(crate) fn elements(tensors: &[[usize; 2]]) -> Option<usize> {
    tensors.iter().try_fold(0usize, |n, &[rows, cols]| {
        rows.checked_mul(cols).and_then(|e| n.checked_add(e))
    })
}

/// A tensor shared out as `units` units of `unit` elements, at multiples of `grain` units, over
/// `tasks` tasks.
struct Cut {
    unit: usize,
    units: usize,
    grain: usize,
    tasks: usize,
}

impl Cut {
    /// The elements of the tensor that task `t` takes (none past the tensor's task count).
    fn piece(&self, t: usize) -> Range<usize> {
        if t >= self.tasks {
            return 0..0;
        }
        let units = task_rows(self.units, self.grain, self.tasks, t);
        units.start * self.unit..units.end * self.unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::split::RowsMut;
    use std::sync::Mutex;

    /// Every element is visited once, and a tensor with enough rows is cut exactly where
    /// `split_home` cuts it.
    #[test]
    fn tensors_are_cut_at_their_home_rows() {
        // A weight worth two tasks, a bias worth none, a wide tensor of two rows, and a large
        // weight again.
        let tensors = [[128, 784], [128, 1], [2, 50_000], [40, 300]];
        let len = elements(&tensors).unwrap();
        for threads in [1, 2, 3, 7] {
            let exec = Exec::new(threads);
            let mut hits = vec![0u8; len];
            let pieces = Mutex::new(Vec::new());
            exec.split_tensors(&tensors, (RowsMut::new(&mut hits, 1),), |range, (h,)| {
                h.iter_mut().for_each(|h| *h += 1);
                pieces.lock().unwrap().push(range);
            });
            assert!(hits.iter().all(|&h| h == 1), "{threads} threads");
            let pieces = pieces.into_inner().unwrap();
            if threads == 1 {
                // One thread takes the whole vector in one call.
                assert_eq!(pieces, vec![0..len]);
                continue;
            }
            // The first weight's pieces are its home rows.
            let mut homes = Vec::new();
            let mut rows = vec![0u8; 128];
            let seen = Mutex::new(&mut homes);
            exec.split_home(128, 784, (RowsMut::new(&mut rows, 1),), |r, _| {
                seen.lock().unwrap().push(r.start * 784..r.end * 784)
            });
            for home in homes {
                assert!(
                    pieces.contains(&home),
                    "{threads} threads: {home:?} of {pieces:?}"
                );
            }
            // The two-row tensor is still shared out, by elements.
            let wide = 128 * 785..128 * 785 + 100_000;
            let inside = pieces.iter().filter(|p| wide.contains(&p.start)).count();
            assert_eq!(inside, threads, "{threads} threads: {pieces:?}");
        }
    }

    #[test]
    #[should_panic(expected = "tensors of Some(10) elements in all over a vector of 12")]
    fn tensors_must_cover_the_vector() {
        let mut v = [0.0f32; 12];
        Exec::new(2).split_tensors(&[[2, 5]], (RowsMut::new(&mut v, 1),), |_, _| {});
    }
}
