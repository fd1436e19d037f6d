//! The execution context every kernel receives: the calling thread plus a persistent pool of
//! worker threads, owned by a workspace and joined when it is dropped.
//!
//! A parallel kernel hands [`Exec::run`] a task count and a closure of the task index; task 0
//! runs on the calling thread, each other task on the first thread to claim it from a shared
//! counter (a worker, or the caller once its own task is done), and the call returns when every
//! task has finished. Which thread runs a task never changes what it computes. Kernels split
//! their rows with [`Exec::split_rows`] into consecutive ranges whose boundaries depend only on
//! the sizes and the task count, and arrange that every output element is computed by the same
//! arithmetic whichever range it falls in, so that results are bit-identical for every thread
//! count (see ARCHITECTURE.md, "Threads").
//!
//! This module does not decide how much work is worth a thread: each kernel states its own
//! threshold, measured, beside its split.
//!
//! Why not rayon: its pools are global or reference-counted and are not joined when dropped,
//! work injected from outside a pool goes through a queue that allocates a block every 63 jobs
//! (a training step must allocate nothing), and a job's closure would be boxed or moved rather
//! than borrowed. A fixed set of workers needs none of that: one epoch counter to publish a job,
//! one to hand out its tasks, one to collect them, and `park` for idle workers.
//!
//! The caller takes part in the claiming because a worker is not always there to take its task:
//! on a shared VM the second core is sometimes busy elsewhere, or the scheduler puts a worker on
//! the caller's core. With each task reserved for one worker, the caller then spun until that
//! worker ran, and on 2 threads the MLP trained at 60 k samples/s at batch 32 and 3.2 k at
//! batch 1, against 177 k and 11 k on 1 thread (`taskset -c 0 bench_tasks --task mlp_train
//! --threads 2`, both threads on one core); interleaved runs on two cores fell into the same
//! state now and then (80 k and 4.7 k). Claimed tasks make that case as fast as one thread.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The environment variable that sets the default thread count of a workspace.
pub const THREADS_ENV: &str = "NNC_NUM_THREADS";

/// How long a waiting thread spins on the shared counter before it starts yielding its core.
/// Within a training step kernels follow each other a few microseconds apart, and a yield is a
/// system call that can keep a worker away for a microsecond or more, so the first wait is pure
/// spinning.
const SPIN: Duration = Duration::from_micros(50);

/// How long an idle worker keeps polling for the next job (yielding its core to anyone who
/// wants it) before it parks. A training step issues kernels back to back, but some run on the
/// calling thread alone for a millisecond or more (a small layer's weight gradient, batch
/// norm): a worker that parked during one of those costs 5-50 µs to wake on this VM, at every
/// such gap of every step. With 1 ms here, LeNet trained at 5,200-5,900 images/s on 2 threads,
/// slower than on 1 (6,400-7,800); with 20 ms, at 10,500-11,400 in the same interleaved runs
/// (`TASK=cnn_train bench/run_interleaved.sh` with both builds). A yielding worker gives its
/// core to any other runnable thread, so the longer wait costs others little.
const STAY_AWAKE: Duration = Duration::from_millis(20);

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
    /// taken as 1, and more than 65,535 as that many). Allocates the workers' stacks and waits until each has started, so that
    /// nothing a worker does at startup lands in a later measured step.
    /// Panics, naming the worker, if the operating system refuses a thread; see
    /// [`Exec::try_new`].
    pub fn new(threads: usize) -> Exec {
        Exec::try_new(threads).unwrap_or_else(|e| panic!("nnc: {e}"))
    }

    /// [`Exec::new`], or [`Error::Thread`](crate::Error::Thread) if the operating system
    /// refuses to start a worker (a thread limit, or no memory for its stack); the workers
    /// already started are stopped and joined first.
    pub fn try_new(threads: usize) -> Result<Exec, crate::Error> {
        let threads = threads.clamp(1, MAX_THREADS);
        let pool = match threads {
            1 => None,
            n => Some(Pool::start(n - 1)?),
        };
        Ok(Exec { threads, pool })
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

    /// Runs `f(t)` for every task `t < tasks` and returns when all have finished. Task 0 runs
    /// on the calling thread. A panic in any task is re-raised here after every task has
    /// stopped. Panics if `tasks` exceeds [`Exec::threads`].
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(
            tasks <= self.threads,
            "Exec::run: {tasks} tasks for {} threads",
            self.threads
        );
        match &self.pool {
            Some(pool) if tasks > 1 && pool.claim() => pool.run(tasks, f),
            _ => (0..tasks).for_each(f),
        }
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

/// The most threads an [`Exec`] runs: task counts travel in the low 16 bits of the job word.
const MAX_THREADS: usize = (1 << TASK_BITS) - 1;
const TASK_BITS: u32 = 16;

/// The workers of an [`Exec`] and what they share with the caller.
struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// A borrowed task closure with its lifetime erased.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync + 'static));

struct Shared {
    /// The job word: a count of published jobs in the high 48 bits (bumped by the caller to
    /// publish a job, or to stop the workers) and the job's task count in the low 16, read
    /// together so that a worker never pairs one job's count with another's epoch.
    word: AtomicU64,
    /// The next task of the current job to hand out, beside the job's epoch as in `word`, so
    /// that a thread still looking for work in a finished job cannot claim a task of the next.
    next: AtomicU64,
    /// Tasks of the current job other than the caller's first that have not yet finished (or,
    /// at startup, workers that have not yet started).
    pending: AtomicUsize,
    /// Held by the caller of the job in flight.
    busy: AtomicBool,
    /// The first panic of a task on a worker, handed to the caller to re-raise.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    stop: AtomicBool,
    /// Written by the caller while it holds `busy` and no worker is reading it; read by the
    /// threads that claim a task of the job the word publishes.
    job: UnsafeCell<Job>,
}

// SAFETY: `job` is the only field that is not itself `Sync`; it is written only by the thread
// holding `busy`, before publishing the job word with release ordering, and read only by threads
// that acquired that word and then claimed a task of its job (`next` still holds its epoch),
// before they count the task out of `pending`, which the writer waits for before writing again.
// The closure it points to is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer in `job` is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// The low bits of a job word (its task count) or of `next` (the next task to hand out).
fn tasks_of(word: u64) -> usize {
    (word & ((1 << TASK_BITS) - 1)) as usize
}

impl Pool {
    fn start(workers: usize) -> Result<Pool, crate::Error> {
        let noop: &(dyn Fn(usize) + Sync) = &|_| {};
        let shared = Arc::new(Shared {
            word: AtomicU64::new(0),
            next: AtomicU64::new(0),
            pending: AtomicUsize::new(workers),
            busy: AtomicBool::new(false),
            panic: Mutex::new(None),
            stop: AtomicBool::new(false),
            // SAFETY: only the lifetime changes, and the placeholder is never called, since no
            // job word has published it.
            job: UnsafeCell::new(Job(unsafe { erase(noop) })),
        });
        let mut pool = Pool {
            shared,
            workers: Vec::with_capacity(workers),
        };
        for index in 1..=workers {
            let shared = Arc::clone(&pool.shared);
            let spawned = thread::Builder::new()
                .name(format!("nnc-worker-{index}"))
                .spawn(move || work(&shared));
            match spawned {
                Ok(handle) => pool.workers.push(handle),
                Err(e) => {
                    // Dropping the pool stops and joins the workers already started.
                    drop(pool);
                    return Err(crate::Error::Thread {
                        index,
                        workers,
                        reason: e.to_string(),
                    });
                }
            }
        }
        // Each worker counts itself in once it is ready to take jobs.
        wait_until_zero(&pool.shared.pending);
        Ok(pool)
    }

    /// Takes the pool for one job; false if another caller holds it.
    fn claim(&self) -> bool {
        !self.shared.busy.swap(true, Ordering::Acquire)
    }

    /// Runs a job on the claimed pool: task 0 here, tasks `1..tasks` on whichever threads claim
    /// them, this one included once task 0 is done. Only `tasks - 1` workers are woken.
    fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let shared = &*self.shared;
        // SAFETY: this thread holds `busy`, and every worker of the previous job finished with
        // it before that job's caller released `busy`, so nothing reads `job` now. The erased
        // lifetime is sound because this function does not return (or unwind) before every
        // worker with a task has finished calling `f`.
        unsafe { *shared.job.get() = Job(erase(f)) };
        shared.pending.store(tasks - 1, Ordering::Relaxed);
        let epoch = (shared.word.load(Ordering::Relaxed) >> TASK_BITS) + 1;
        shared.next.store(epoch << TASK_BITS | 1, Ordering::Relaxed);
        let word = (epoch << TASK_BITS) | tasks as u64;
        shared.word.store(word, Ordering::Release);
        for worker in &self.workers[..tasks - 1] {
            worker.thread().unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        take_tasks(shared, word);
        wait_until_zero(&shared.pending);
        let theirs = shared.panic.lock().map_or(None, |mut p| p.take());
        shared.busy.store(false, Ordering::Release);
        if let Some(payload) = mine.err().or(theirs) {
            resume_unwind(payload);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.stop.store(true, Ordering::Relaxed);
        let epoch = (shared.word.load(Ordering::Relaxed) >> TASK_BITS) + 1;
        shared.word.store(epoch << TASK_BITS, Ordering::Release);
        for worker in self.workers.drain(..) {
            worker.thread().unpark();
            // A worker catches every task's panic, so it can only end by returning.
            let _ = worker.join();
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

/// A worker's life: wait for a job word, take tasks of its job while any are left, repeat.
fn work(shared: &Shared) {
    // Whatever the first `park` or `current` needs is set up here, before startup completes.
    let _ = thread::current();
    shared.pending.fetch_sub(1, Ordering::Release);
    let mut seen = 0;
    loop {
        seen = wait_for_word(&shared.word, seen);
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        take_tasks(shared, seen);
    }
}

/// Claims and runs tasks of the job that `word` published until none is left, counting each
/// finished task out of `pending`; returns at once if that job is no longer the current one.
fn take_tasks(shared: &Shared, word: u64) {
    let (epoch, tasks) = (word >> TASK_BITS, tasks_of(word));
    // Every thread here acquired `word` (or published it), which carried the caller's writes
    // of `job` and `next`; the claim itself only has to be atomic.
    let claim =
        |next: u64| (next >> TASK_BITS == epoch && tasks_of(next) < tasks).then_some(next + 1);
    while let Ok(next) = shared
        .next
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, claim)
    {
        let task = tasks_of(next);
        // SAFETY: the claim succeeded in this job's epoch, so the job is in flight: the caller
        // wrote `job` before publishing it, and waits for this task to be counted out of
        // `pending` before it returns, writes `job` again or lets the closure go.
        let f = unsafe { &*(*shared.job.get()).0 };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(task))) {
            // The payload goes to the caller to re-raise; a second one is leaked rather than
            // dropped here, since dropping a payload can itself panic and end this thread
            // before it reports.
            match shared.panic.lock() {
                Ok(mut first) if first.is_none() => *first = Some(payload),
                _ => std::mem::forget(payload),
            }
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Waits until the job word differs from `seen` and returns it: spins for [`SPIN`], then yields
/// the core until [`STAY_AWAKE`], then parks (the caller unparks every worker a job needs).
fn wait_for_word(word: &AtomicU64, seen: u64) -> u64 {
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        let now = word.load(Ordering::Acquire);
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
    fn try_new_starts_the_threads_or_says_which_failed() {
        for threads in [0, 1, 2, 5] {
            let exec = Exec::try_new(threads).expect("this machine starts a few threads");
            assert_eq!(exec.threads(), threads.max(1));
        }
        // The refusal itself cannot be provoked portably; its message is what a user reads.
        let e = crate::Error::Thread {
            index: 3,
            workers: 7,
            reason: "Resource temporarily unavailable (os error 11)".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot start worker thread 3 of 7 (Resource temporarily unavailable (os error 11)); \
             ask for fewer threads, or set NNC_NUM_THREADS"
        );
    }

    #[test]
    fn every_task_runs_exactly_once() {
        for threads in [1, 2, 3, 7] {
            let exec = Exec::new(threads);
            assert_eq!(exec.threads(), threads);
            for tasks in (0..=threads).chain([threads.min(2)]) {
                let hits: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
                exec.run(tasks, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                let ran = tasks;
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
}
