//! The execution context every kernel receives: the calling thread plus a persistent pool of
//! worker threads, owned by a workspace and joined when it is dropped.
//!
//! A parallel kernel hands [`Exec::run`] a task count and a closure of the task index; task 0
//! runs on the calling thread and task `t` on worker `t`, and the call returns when every task
//! has finished. Kernels split their rows with [`Exec::split_rows`] into consecutive ranges
//! whose boundaries depend only on the sizes and the task count, and arrange that every output
//! element is computed by the same arithmetic whichever range it falls in, so that results are
//! bit-identical for every thread count (see ARCHITECTURE.md, "Threads").
//!
//! This module does not decide how much work is worth a thread: each kernel states its own
//! threshold, measured, beside its split.
//!
//! Why not rayon: its pools are global or reference-counted and are not joined when dropped,
//! work injected from outside a pool goes through a queue that allocates a block every 63 jobs
//! (a training step must allocate nothing), and a job's closure would be boxed or moved rather
//! than borrowed. A fixed set of workers that each take one task per call needs none of that:
//! one epoch counter to publish a job, one counter to collect it, and `park` for idle workers.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// The environment variable that sets the default thread count of a workspace.
pub const THREADS_ENV: &str = "NNC_NUM_THREADS";

/// How long a waiting thread spins on the shared counter before it starts yielding its core.
/// Within a training step kernels follow each other a few microseconds apart, and a yield is a
/// system call that can keep a worker away for a microsecond or more, so the first wait is pure
/// spinning.
const SPIN: Duration = Duration::from_micros(50);

/// How long an idle worker keeps polling for the next job (yielding its core to anyone who
/// wants it) before it parks. A training step issues kernels back to back, so the workers stay
/// awake through a step and into the next one; waking a parked thread costs 5-50 µs on this
/// VM, more than many whole kernels.
const STAY_AWAKE: Duration = Duration::from_millis(1);

/// The fewest elements of a cheap element-wise pass (an add, a relu, a bias) worth a task of
/// its own; kernels whose elements cost more (a transcendental activation, an optimizer update)
/// count each element several times. Measured with `cargo bench -p nnc-runtime --bench
/// threads`: see ARCHITECTURE.md, "Threads".
pub(crate) const MIN_TASK_ELEMS: usize = 1 << 15;

/// Element-wise passes split at multiples of this many elements: whole cache lines, and whole
/// vectors at every width, so each element meets the same vector code whatever the split.
pub(crate) const ELEM_GRAIN: usize = 64;

/// A pool of threads that kernels split their work over; see the module documentation.
///
/// `Exec::serial()` runs everything on the calling thread and owns no threads. An `Exec` with
/// `n > 1` threads owns `n - 1` workers, started by [`Exec::new`] and joined by its `Drop`.
/// Calls to [`Exec::run`] from two threads at once, or from inside a task, are correct but run
/// their tasks one after another on the calling thread (with the same split, so with the same
/// results).
pub struct Exec {
    threads: usize,
    pool: Option<Pool>,
}

static SERIAL: Exec = Exec {
    threads: 1,
    pool: None,
};

impl Exec {
    /// An execution context of `threads` threads: the caller's and `threads - 1` workers (0 is
    /// taken as 1). Allocates the workers' stacks and waits until each has started, so that
    /// nothing a worker does at startup lands in a later measured step.
    pub fn new(threads: usize) -> Exec {
        let threads = threads.max(1);
        let pool = (threads > 1).then(|| Pool::start(threads - 1));
        Exec { threads, pool }
    }

    /// The context on the calling thread alone.
    pub fn serial() -> &'static Exec {
        &SERIAL
    }

    /// The default thread count: `NNC_NUM_THREADS` if it is set to a positive integer, else the
    /// available parallelism (1 if that is unknown).
    pub fn default_threads() -> usize {
        std::env::var(THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// An execution context with [`Exec::default_threads`] threads.
    pub fn from_env() -> Exec {
        Exec::new(Exec::default_threads())
    }

    /// The number of threads, the caller's included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many of up to `units` tasks a kernel should split `work` into, giving each task at
    /// least `min_work` (the kernel's measured threshold) and at most one task per thread.
    pub(crate) fn tasks_for(&self, units: usize, work: usize, min_work: usize) -> usize {
        if self.threads == 1 {
            return 1;
        }
        (work / min_work.max(1))
            .clamp(1, self.threads)
            .min(units.max(1))
    }

    /// Runs `f(t)` for every task `t < tasks` (at most [`Exec::threads`]) and returns when all
    /// have finished. Task 0 runs on the calling thread. A panic in any task is re-raised here
    /// after every task has stopped.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let tasks = tasks.min(self.threads);
        match &self.pool {
            Some(pool) if tasks > 1 && pool.claim() => pool.run(tasks, f),
            _ => (0..tasks).for_each(f),
        }
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
        let tasks = tasks.min(self.threads).clamp(1, blocks.max(1));
        operands.check(rows);
        let range = |t: usize| {
            let start = (blocks * t / tasks * grain).min(rows);
            let end = (blocks * (t + 1) / tasks * grain).min(rows);
            start..end
        };
        if tasks == 1 {
            // SAFETY: one task takes every row, once.
            return f(0..rows, unsafe { operands.part(0..rows) });
        }
        self.run(tasks, &|t| {
            let rows = range(t);
            // SAFETY: the ranges of distinct tasks are disjoint (consecutive, increasing
            // boundaries), `check` verified that every operand holds `rows` rows, and `run`
            // calls each task index exactly once.
            f(rows.clone(), unsafe { operands.part(rows) })
        });
    }
}

impl Exec {
    /// [`Exec::split_rows`] over the elements of flat operands, for an element-wise pass whose
    /// elements each cost `cost` cheap operations.
    pub(crate) fn split_elems<S: Split>(
        &self,
        len: usize,
        cost: usize,
        operands: S,
        f: impl Fn(S::Part) + Sync,
    ) {
        let tasks = self.tasks_for(len.div_ceil(ELEM_GRAIN), len * cost, MIN_TASK_ELEMS);
        self.split_rows(len, ELEM_GRAIN, tasks, operands, |_, parts| f(parts));
    }
}

impl Default for Exec {
    /// [`Exec::from_env`].
    fn default() -> Exec {
        Exec::from_env()
    }
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("threads", &self.threads)
            .finish()
    }
}

/// Operands that [`Exec::split_rows`] cuts into one piece per task: [`RowsMut`], [`RowsRef`]
/// and tuples of them.
pub(crate) trait Split: Sync {
    /// The pieces a task receives, borrowed for as long as the operands' own borrows.
    type Part;
    /// Panics unless every operand holds exactly `rows` rows.
    fn check(&self, rows: usize);
    /// The pieces for `rows`.
    ///
    /// # Safety
    ///
    /// `rows` lies within the checked row count, and no two calls on one value get overlapping
    /// ranges (a writable piece must not alias another).
    unsafe fn part(&self, rows: Range<usize>) -> Self::Part;
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
    fn check(&self, rows: usize) {
        assert_eq!(
            Some(self.len),
            rows.checked_mul(self.width),
            "split_rows: an operand of {} elements is not {rows} rows of {}",
            self.len,
            self.width
        );
    }
    unsafe fn part(&self, rows: Range<usize>) -> &'a mut [T] {
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
    fn check(&self, rows: usize) {
        assert_eq!(
            Some(self.0.len()),
            rows.checked_mul(self.1),
            "split_rows: an operand of {} elements is not {rows} rows of {}",
            self.0.len(),
            self.1
        );
    }
    unsafe fn part(&self, rows: Range<usize>) -> &'a [T] {
        &self.0[rows.start * self.1..rows.end * self.1]
    }
}

macro_rules! split_tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Split),+> Split for ($($name,)+) {
            type Part = ($($name::Part,)+);
            fn check(&self, rows: usize) {
                $(self.$index.check(rows);)+
            }
            unsafe fn part(&self, rows: Range<usize>) -> Self::Part {
                // SAFETY: forwarded from this function's contract to each operand.
                unsafe { ($(self.$index.part(rows.clone()),)+) }
            }
        }
    };
}

split_tuple!(A 0);
split_tuple!(A 0, B 1);
split_tuple!(A 0, B 1, C 2);
split_tuple!(A 0, B 1, C 2, D 3);
split_tuple!(A 0, B 1, C 2, D 3, E 4);

/// The workers of an [`Exec`] and what they share with the caller.
struct Pool {
    shared: Arc<Shared>,
    workers: Vec<(Thread, Option<JoinHandle<()>>)>,
}

/// A borrowed task closure with its lifetime erased, and the number of tasks.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync + 'static),
    tasks: usize,
}

struct Shared {
    /// Bumped by the caller to publish a job, or to stop the workers.
    epoch: AtomicUsize,
    /// Workers that have not yet finished with the current job (or, at startup, started).
    pending: AtomicUsize,
    /// Held by the caller of the job in flight.
    busy: AtomicBool,
    /// A task panicked on a worker.
    panicked: AtomicBool,
    stop: AtomicBool,
    /// Written by the caller while it holds `busy` and no worker is reading it; read by the
    /// workers after they see the epoch that published it.
    job: UnsafeCell<Job>,
}

// SAFETY: `job` is the only field that is not itself `Sync`; it is written only by the thread
// holding `busy`, before publishing the epoch with release ordering, and read by workers only
// after acquiring that epoch and before they decrement `pending`, which the writer waits for
// before writing again. The closure it points to is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer in `job` is only dereferenced under that protocol.
unsafe impl Send for Shared {}

impl Pool {
    fn start(workers: usize) -> Pool {
        let noop: &(dyn Fn(usize) + Sync) = &|_| {};
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            pending: AtomicUsize::new(workers),
            busy: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            // SAFETY (of the transmute): only the lifetime changes; the placeholder is never
            // called, since no epoch has published it.
            job: UnsafeCell::new(Job {
                f: unsafe { erase(noop) },
                tasks: 0,
            }),
        });
        let workers = (1..=workers)
            .map(|index| {
                let shared = Arc::clone(&shared);
                let handle = thread::Builder::new()
                    .name(format!("nnc-worker-{index}"))
                    .spawn(move || work(&shared, index))
                    .expect("nnc: could not start a worker thread");
                (handle.thread().clone(), Some(handle))
            })
            .collect();
        // Each worker counts itself in once it is ready to take jobs.
        wait_until_zero(&shared.pending);
        Pool { shared, workers }
    }

    /// Takes the pool for one job; false if another caller holds it.
    fn claim(&self) -> bool {
        !self.shared.busy.swap(true, Ordering::Acquire)
    }

    /// Runs a job on the claimed pool: task 0 here, the others on the workers.
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let shared = &*self.shared;
        // SAFETY: this thread holds `busy`, and every worker finished with the previous job
        // before that job's caller released it, so nothing reads `job` now. The erased
        // lifetime is sound because this function does not return (or unwind) before every
        // worker has finished calling `f`.
        unsafe { *shared.job.get() = Job { f: erase(f), tasks } };
        shared.pending.store(self.workers.len(), Ordering::Relaxed);
        shared.epoch.fetch_add(1, Ordering::Release);
        for (worker, _) in &self.workers {
            worker.unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        wait_until_zero(&shared.pending);
        let panicked = shared.panicked.swap(false, Ordering::Relaxed);
        shared.busy.store(false, Ordering::Release);
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        assert!(!panicked, "nnc: a kernel task panicked on a worker thread");
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for (worker, handle) in &mut self.workers {
            worker.unpark();
            if let Some(handle) = handle.take() {
                // A worker catches every task's panic, so it can only end by returning.
                let _ = handle.join();
            }
        }
    }
}

/// Erases the lifetime of a task closure, so that workers can hold it.
///
/// # Safety
///
/// The pointer must not be dereferenced after `f`'s borrow ends.
unsafe fn erase<'f>(f: &'f (dyn Fn(usize) + Sync + 'f)) -> *const (dyn Fn(usize) + Sync + 'static) {
    let f: *const (dyn Fn(usize) + Sync + 'f) = f;
    // SAFETY: a fat raw pointer's layout does not depend on the trait object's lifetime bound;
    // the caller upholds the dereference rule.
    unsafe { std::mem::transmute(f) }
}

/// A worker's life: wait for an epoch, run task `index` of its job, report, repeat.
fn work(shared: &Shared, index: usize) {
    // Whatever the first `park` or `current` needs is set up here, before startup completes.
    let _ = thread::current();
    shared.pending.fetch_sub(1, Ordering::Release);
    let mut seen = 0;
    loop {
        seen = wait_for_epoch(&shared.epoch, seen);
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the caller wrote `job` before releasing this epoch, which this thread
        // acquired, and will not write it again before this thread decrements `pending`.
        let job = unsafe { *shared.job.get() };
        if index < job.tasks {
            // SAFETY: the caller keeps the closure alive until `pending` reaches zero, which
            // cannot happen before this thread's decrement below.
            let f = unsafe { &*job.f };
            if catch_unwind(AssertUnwindSafe(|| f(index))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Waits until `epoch` differs from `seen` and returns it: spins for [`SPIN`], then yields the
/// core until [`STAY_AWAKE`], then parks (the caller unparks every worker after each publish).
fn wait_for_epoch(epoch: &AtomicUsize, seen: usize) -> usize {
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        let now = epoch.load(Ordering::Acquire);
        if now != seen {
            return now;
        }
        polls = polls.wrapping_add(1);
        // Reading the clock costs about as much as 20 spins, so it is read every 64 polls.
        if !polls.is_multiple_of(64) {
            std::hint::spin_loop();
            continue;
        }
        let waited = start.elapsed();
        if waited < SPIN {
            std::hint::spin_loop();
        } else if waited < STAY_AWAKE {
            thread::yield_now();
        } else {
            thread::park();
        }
    }
}

/// Waits for the workers to count `pending` down to zero: spins for [`SPIN`], then yields,
/// since the caller has nothing else to do and the workers finish within one task's time.
fn wait_until_zero(pending: &AtomicUsize) {
    let start = Instant::now();
    let mut polls = 0u32;
    while pending.load(Ordering::Acquire) != 0 {
        polls = polls.wrapping_add(1);
        if !polls.is_multiple_of(64) || start.elapsed() < SPIN {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_task_runs_once_on_its_own_thread() {
        for threads in [1, 2, 3, 7] {
            let exec = Exec::new(threads);
            assert_eq!(exec.threads(), threads);
            for tasks in [0, 1, 2, 5, 9] {
                let hits: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
                exec.run(tasks, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                let ran = tasks.min(threads);
                for (t, h) in hits.iter().enumerate() {
                    assert_eq!(
                        h.load(Ordering::Relaxed),
                        u64::from(t < ran),
                        "{threads} {tasks}"
                    );
                }
            }
        }
    }

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
    fn nested_and_concurrent_calls_run_serially() {
        let exec = Exec::new(2);
        let count = AtomicU64::new(0);
        exec.run(2, &|_| {
            exec.run(2, &|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(count.load(Ordering::Relaxed), 4);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        exec.run(2, &|_| {
                            count.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::Relaxed), 4 + 800);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_survives() {
        let exec = Exec::new(3);
        for bad in [0, 2] {
            let result = catch_unwind(AssertUnwindSafe(|| {
                exec.run(3, &|t| assert!(t != bad, "task {t} fails"));
            }));
            assert!(result.is_err(), "task {bad}'s panic must reach the caller");
        }
        let count = AtomicU64::new(0);
        exec.run(3, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn parked_workers_wake_for_the_next_job() {
        let exec = Exec::new(2);
        thread::sleep(STAY_AWAKE * 4);
        let count = AtomicU64::new(0);
        exec.run(2, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
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
