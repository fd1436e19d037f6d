//! What the recurrent layers' kernels share (`rnn.rs`, `lstm.rs`, `gru.rs`): the blocks of
//! samples a scan splits its batch into, the scratch a thread needs, the checks of a scan's
//! operands, the state after a scan's last step, and the recurrent weight's gradient.
//!
//! A scan writes a record `[B, planes, T, H]` whose first plane is the hidden states (the
//! RNN's only plane; the LSTM adds its cell state and gates, the GRU its gates, `gru.rs`). The
//! recurrent weight's gradient `Σ over samples and steps of dz_tᵀ · h_{t−1}` reads that plane,
//! whatever the cell, from step 1 after a zero start, from step 0 (with the given initial h)
//! otherwise: one product per sample over its steps, the threads splitting its output rows,
//! each task summing the samples in order. A scan may start from given states ([`Start`]),
//! whose gradient its backward pass can also return.

use super::dense::{MIN_TASK_MACS, ROW_GRAIN};
use super::split::{PerTask, RowsMut, RowsRef};
use super::Exec;
use crate::float::Float;

/// Samples whose steps advance together: the rows of each step's recurrent product. Tasks
/// split the batch at multiples of it. Against 32, in two interleaved runs of `bench_tasks
/// --task lstm_train` (batch 32): 2,258 and 2,166 sequences/s on 1 thread against 2,439 and
/// 2,060 (no difference), and on 2 threads 3,646 and 3,722 against 1,550 and 2,626, since a
/// batch of 32 is then one block and one task.
pub const RECURRENT_BLOCK: usize = 16;

/// Scratch elements one thread needs for any recurrent scan or its backward pass with `hidden`
/// units: at most `5 · hidden` per sample of a block (the LSTM's previous hidden states and
/// recurrent products; backwards, what flows into `h` and `c` from the next step and a row of
/// zeros), rounded up to a whole number of 64-byte lines.
pub const fn recurrent_scratch_len(hidden: usize) -> usize {
    (RECURRENT_BLOCK * 5 * hidden).div_ceil(16) * 16
}

/// How many tasks a scan over `batch` samples with `macs` multiply-adds in its recurrent
/// products should use: as many as the work is worth, whole blocks each, and no more than the
/// scratch serves.
pub(super) fn scan_tasks<T>(
    exec: &Exec,
    batch: usize,
    macs: usize,
    scratch: &PerTask<'_, T>,
) -> usize {
    exec.tasks_for(batch.div_ceil(RECURRENT_BLOCK), macs, MIN_TASK_MACS)
        .min(scratch.tasks())
}

/// A scan's operands for one direction of travel: what it reads, with its values per sample,
/// and what it writes, likewise. An operand read may be empty (a scan from a zero state has no
/// initial states); `third` is only read by the backward passes that start from given states.
pub(super) struct Rows<'a, T> {
    pub first: (&'a [T], usize),
    pub second: (&'a [T], usize),
    pub third: (&'a [T], usize),
    pub out: (&'a mut [T], usize),
}

/// The state before a scan's first step, as its backward pass sees it: zero, given (the
/// carried state of a truncated backpropagation through time, which needs no gradient), or
/// given and differentiated, when the backward pass also writes the initial state's gradient,
/// `[planes, H]` per sample, as one more step of its output after the last (the rest of that
/// row zero).
#[derive(Clone, Copy, Debug)]
pub enum Start<'a, T> {
    /// The layer's default: zeros.
    Zero,
    /// Initial states `[B, planes, H]` that need no gradient.
    Given(&'a [T]),
    /// Initial states `[B, planes, H]` whose gradient the backward pass also writes.
    Learned(&'a [T]),
}

impl<'a, T> Start<'a, T> {
    /// The initial states, if any.
    pub fn states(self) -> Option<&'a [T]> {
        match self {
            Start::Zero => None,
            Start::Given(s) | Start::Learned(s) => Some(s),
        }
    }

    /// Whether the backward pass writes the initial state's gradient.
    pub fn learned(self) -> bool {
        matches!(self, Start::Learned(_))
    }
}

/// Runs `block` on every block of [`RECURRENT_BLOCK`] samples of a scan, each task of the
/// threads taking whole blocks in order: the block's rows of the operands read (`None` for an
/// empty one) and of the output, and the task's scratch. `macs` is the scan's work in multiply-adds. Every scan and
/// backward pass splits its batch this way, so each block's products see the same rows on any
/// number of threads.
pub(super) fn scan_blocks<T: Float>(
    exec: &Exec,
    batch: usize,
    hidden: usize,
    macs: usize,
    rows: Rows<'_, T>,
    scratch: &mut [T],
    block: impl Fn(&[T], Option<&[T]>, Option<&[T]>, &mut [T], &mut [T]) + Sync,
) {
    let scratch = PerTask::new(scratch, recurrent_scratch_len(hidden));
    let tasks = scan_tasks(exec, batch, macs, &scratch);
    let Rows {
        first: (first, first_row),
        second: (second, second_row),
        third: (third, third_row),
        out: (out, out_row),
    } = rows;
    let operands = (
        RowsRef(first, first_row),
        RowsRef(second, second_row),
        RowsRef(third, third_row),
        RowsMut::new(out, out_row),
        scratch,
    );
    exec.split_rows(
        batch,
        RECURRENT_BLOCK,
        tasks,
        operands,
        |_, (first, second, third, out, scratch)| {
            let blocks = first
                .chunks(RECURRENT_BLOCK * first_row)
                .zip(out.chunks_mut(RECURRENT_BLOCK * out_row));
            for (b, (first, out)) in blocks.enumerate() {
                let n = first.len() / first_row;
                let (second, third) = (
                    block_rows(second, second_row, b, n),
                    block_rows(third, third_row, b, n),
                );
                block(first, second, third, out, scratch);
            }
        },
    );
}

/// The `n` rows of `all` (rows of `row` values) of block `b`, or `None` for an empty operand.
fn block_rows<T>(all: &[T], row: usize, b: usize, n: usize) -> Option<&[T]> {
    let start = b * RECURRENT_BLOCK * row;
    (!all.is_empty()).then(|| &all[start..start + n * row])
}

/// Checks a scan's initial states: empty (a zero state) or `planes` vectors of `hidden` per
/// sample; returns how many values a sample's initial state has (0 for none).
pub(super) fn check_init<T>(
    what: &str,
    batch: usize,
    planes: usize,
    hidden: usize,
    init: Option<&[T]>,
) -> usize {
    match init {
        None => 0,
        Some(init) => {
            assert_eq!(
                Some(init.len()),
                batch.checked_mul(planes * hidden),
                "{what}: the initial state is not B x {planes} x H"
            );
            planes * hidden
        }
    }
}

/// Checks the operands of a scan's kernels for a cell of `gates` gates and returns
/// `gates · hidden`, the width of a step's projection.
#[allow(clippy::too_many_arguments)] // The sizes and the operands.
pub(super) fn check<T>(
    what: &str,
    batch: usize,
    steps: usize,
    hidden: usize,
    gates: usize,
    z: &[T],
    w_hh: &[T],
    record: &[T],
) -> usize {
    let width = gates * hidden;
    let planes = match gates {
        4 => 6,
        3 => super::gru::GRU_PLANES,
        _ => 1,
    };
    assert!(hidden > 0 && steps > 0, "{what}: no units or no steps");
    assert_eq!(
        Some(z.len()),
        batch.checked_mul(steps * width),
        "{what}: z is not B x T x {gates}H"
    );
    assert_eq!(
        w_hh.len(),
        width * hidden,
        "{what}: W_hh is not {gates}H x H"
    );
    assert_eq!(
        Some(record.len()),
        batch.checked_mul(planes * steps * hidden),
        "{what}: the record is not B x {planes} x T x H"
    );
    width
}

/// The state after the last step of a scan: of each sample's record (`planes` planes of `steps`
/// steps of `hidden` units), the first `keep` planes at the last step, into `out`
/// (`[batch, keep, hidden]`): the hidden state, and an LSTM's cell state. The step entry point
/// carries it to its next call.
pub fn carry_out<T: Float>(
    batch: usize,
    planes: usize,
    steps: usize,
    hidden: usize,
    keep: usize,
    record: &[T],
    out: &mut [T],
) {
    assert!(
        keep <= planes && steps > 0,
        "carry_out: {keep} of {planes} planes"
    );
    let sample = planes * steps * hidden;
    assert_eq!(
        Some(record.len()),
        batch.checked_mul(sample),
        "carry_out: record"
    );
    assert_eq!(out.len(), batch * keep * hidden, "carry_out: out");
    for (record, out) in record
        .chunks_exact(sample)
        .zip(out.chunks_exact_mut(keep * hidden))
    {
        for (p, out) in out.chunks_exact_mut(hidden).enumerate() {
            let last = (p * steps + steps - 1) * hidden;
            out.copy_from_slice(&record[last..last + hidden]);
        }
    }
}

/// One product over every sample's steps at once (`dzᵀ · h` with the hidden states shifted a
/// step later into a buffer, through the dense layer's weight-gradient kernel) was measured
/// against the products per sample below: in a profile of `bench_tasks --task lstm_train`
/// the products kept the same share of the step (69%) and the shifted copy added 2.5%, so it
/// was not kept.
///
/// The recurrent weight's gradient, `[G·H, H]` `= Σ over samples and steps t ≥ 1 of dz_tᵀ ·
/// h_{t−1}`, from `dz` (`[B, T, G·H]`, `G` the cell's gates) and the record (`[B, planes, T,
/// H]`, the hidden states its first plane); where the scan started from given states `init`
/// (`[B, P, H]`, the hidden state first), plus `dz_0ᵀ · h_{−1}` for each sample.
#[allow(clippy::too_many_arguments)] // The sizes and the operands.
pub fn recurrent_weight_grad<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    planes: usize,
    dz: &[T],
    record: &[T],
    init: Option<&[T]>,
    out: &mut [T],
) {
    assert!(
        hidden > 0 && steps > 0,
        "recurrent_weight_grad: no units or no steps"
    );
    let width = out.len() / hidden;
    assert_eq!(out.len(), width * hidden, "recurrent_weight_grad: out");
    assert_eq!(
        Some(dz.len()),
        batch.checked_mul(steps * width),
        "recurrent_weight_grad: dz"
    );
    let sample = planes * steps * hidden;
    assert_eq!(
        Some(record.len()),
        batch.checked_mul(sample),
        "recurrent_weight_grad: record"
    );
    let init_row = match init {
        Some(init) if batch > 0 => {
            let row = init.len() / batch;
            assert!(
                row >= hidden && init.len() == row * batch && row.is_multiple_of(hidden),
                "recurrent_weight_grad: the initial state is not B x P x H"
            );
            row
        }
        _ => 0,
    };
    // The hidden states before each step: from step 0 where the scan started from given
    // states (the first of them read from `init`), else from step 1, after the zero state.
    let first = if init.is_some() { 0 } else { 1 };
    if steps <= first || batch == 0 {
        out.fill(T::ZERO);
        return;
    }
    let work = batch * (steps - first) * width * hidden;
    let tasks = exec.tasks_for(width.div_ceil(ROW_GRAIN), work, MIN_TASK_MACS);
    let operands = RowsMut::new(out, hidden);
    exec.split_rows(width, ROW_GRAIN, tasks, operands, |rows, out| {
        for b in 0..batch {
            let mut accumulate = b > 0;
            if let Some(init) = init {
                // Element (r, 0) of dz_bᵀ in these rows: dz[b, 0, r], against h_{−1}.
                let a = &dz[b * steps * width + rows.start..];
                let h = &init[b * init_row..][..hidden];
                T::gemm_nn(rows.len(), hidden, 1, a, 1, width, h, out, accumulate);
                accumulate = true;
            }
            if steps > 1 {
                // Element (r, s) of dz_bᵀ in these rows, from step 1 on: dz[b, s + 1, r].
                let a = &dz[(b * steps + 1) * width + rows.start..];
                // The hidden states of sample b, steps 0 .. T − 1, row-major.
                let h = &record[b * sample..][..(steps - 1) * hidden];
                T::gemm_nn(
                    rows.len(),
                    hidden,
                    steps - 1,
                    a,
                    1,
                    width,
                    h,
                    out,
                    accumulate,
                );
            }
        }
    });
}
