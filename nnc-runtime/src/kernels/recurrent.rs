//! What the recurrent layers share, and the plain (Elman) RNN, PyTorch's `nn.RNN`:
//! `h_t = act(x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ + b_hh)` with `act` tanh or relu, from a zero
//! state. As for the LSTM (`lstm.rs`), the input projection of every step, both biases
//! included, is one product before the scan, which adds only the recurrent product, per step
//! for a block of samples, and applies the activation.
//!
//! A scan writes a record `[B, planes, T, H]` whose first plane is the hidden states (the
//! RNN's only plane; the LSTM adds its cell state and gates, the GRU its gates, `gru.rs`). The recurrent weight's gradient
//! `Σ over samples and steps t ≥ 1 of dz_tᵀ · h_{t−1}` reads that plane, whatever the cell:
//! one product per sample over its steps, the threads splitting its output rows, each task
//! summing the samples in order.

use super::dense::{MIN_TASK_MACS, ROW_GRAIN};
use super::split::{PerTask, RowsMut, RowsRef};
use super::{vectorized, Exec};
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

/// The initial states of the samples of block `index` (of [`RECURRENT_BLOCK`] samples, `row`
/// values each) within a task's rows, or `None` when the scan starts from zero (`init` empty).
pub(super) fn init_block<T>(init: &[T], index: usize, row: usize, rows: usize) -> Option<&[T]> {
    let start = index * RECURRENT_BLOCK * row;
    (!init.is_empty()).then(|| &init[start..start + rows * row])
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

/// The Elman RNN's scan: `h` (`[B, 1, T, H]`, its record) from the projections `z`
/// (`[B, T, H]`) and `W_hh` (`[H, H]`), with relu for `relu`, else tanh, starting from `init`
/// (`[B, 1, H]`) or from zero. `scratch` holds [`recurrent_scratch_len`] elements for each
/// thread that may take part.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn rnn_scan<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    relu: bool,
    z: &[T],
    w_hh: &[T],
    init: Option<&[T]>,
    h: &mut [T],
    scratch: &mut [T],
) {
    let row = steps * check("rnn_scan", batch, steps, hidden, 1, z, w_hh, h);
    let init_row = check_init("rnn_scan", batch, 1, hidden, init);
    let scratch = PerTask::new(scratch, recurrent_scratch_len(hidden));
    let tasks = scan_tasks(exec, batch, batch * steps * hidden * hidden, &scratch);
    let operands = (
        RowsRef(z, row),
        RowsRef(init.unwrap_or(&[]), init_row),
        RowsMut::new(h, row),
        scratch,
    );
    exec.split_rows(
        batch,
        RECURRENT_BLOCK,
        tasks,
        operands,
        |_, (z, init, h, scratch)| {
            let blocks = z
                .chunks(RECURRENT_BLOCK * row)
                .zip(h.chunks_mut(RECURRENT_BLOCK * row));
            for (b, (z, h)) in blocks.enumerate() {
                let rows = z.len() / row;
                let init = init_block(init, b, init_row, rows);
                let (h_prev, pre) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
                let (h_prev, pre) = (&mut h_prev[..rows * hidden], &mut pre[..rows * hidden]);
                for t in 0..steps {
                    match (t, init) {
                        // From a zero state the first step has no recurrent term.
                        (0, None) => pre.fill(T::ZERO),
                        (0, Some(init)) => {
                            h_prev.copy_from_slice(init);
                            T::gemm_nt(rows, hidden, hidden, h_prev, w_hh, pre);
                        }
                        _ => {
                            for (r, prev) in h_prev.chunks_exact_mut(hidden).enumerate() {
                                let start = r * row + (t - 1) * hidden;
                                prev.copy_from_slice(&h[start..start + hidden]);
                            }
                            T::gemm_nt(rows, hidden, hidden, h_prev, w_hh, pre);
                        }
                    }
                    for r in 0..rows {
                        let at = r * row + t * hidden..r * row + (t + 1) * hidden;
                        let pre = &pre[r * hidden..(r + 1) * hidden];
                        rnn_cell(relu, pre, &z[at.clone()], &mut h[at]);
                    }
                }
            }
        },
    );
}

/// `h = act(pre + z)` for one sample's step.
fn rnn_cell<T: Float>(relu: bool, pre: &[T], z: &[T], h: &mut [T]) {
    vectorized!(rnn_cell_body(relu: bool, pre: &[T], z: &[T], h: &mut [T]));
}

#[inline(always)]
fn rnn_cell_body<T: Float>(relu: bool, pre: &[T], z: &[T], h: &mut [T]) {
    let n = h.len();
    let (pre, z) = (&pre[..n], &z[..n]);
    if relu {
        for ((y, &p), &x) in h.iter_mut().zip(pre).zip(z) {
            let v = p + x;
            *y = if v > T::ZERO { v } else { T::ZERO };
        }
    } else {
        for ((y, &p), &x) in h.iter_mut().zip(pre).zip(z) {
            *y = (p + x).tanh();
        }
    }
}

/// Backpropagation through time of the Elman RNN: `dz` (`[B, T, H]`) from the hidden states
/// `h`, their gradient `dh` (what the rest of the model sends back to each step) and `W_hh`.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn rnn_scan_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    relu: bool,
    h: &[T],
    dh: &[T],
    w_hh: &[T],
    dz: &mut [T],
    scratch: &mut [T],
) {
    let row = steps * check("rnn_scan_backward", batch, steps, hidden, 1, dz, w_hh, h);
    assert_eq!(dh.len(), h.len(), "rnn_scan_backward: dh");
    let scratch = PerTask::new(scratch, recurrent_scratch_len(hidden));
    let tasks = scan_tasks(exec, batch, batch * steps * hidden * hidden, &scratch);
    let operands = (
        RowsRef(h, row),
        RowsRef(dh, row),
        RowsMut::new(dz, row),
        scratch,
    );
    exec.split_rows(
        batch,
        RECURRENT_BLOCK,
        tasks,
        operands,
        |_, (h, dh, dz, scratch)| {
            let blocks = h
                .chunks(RECURRENT_BLOCK * row)
                .zip(dh.chunks(RECURRENT_BLOCK * row))
                .zip(dz.chunks_mut(RECURRENT_BLOCK * row));
            for ((h, dh), dz) in blocks {
                let rows = h.len() / row;
                // What step t + 1 sends back to h_t through the recurrent product.
                let dh_next = &mut scratch[..rows * hidden];
                dh_next.fill(T::ZERO);
                for t in (0..steps).rev() {
                    for r in 0..rows {
                        let at = r * row + t * hidden..r * row + (t + 1) * hidden;
                        let rec = &dh_next[r * hidden..(r + 1) * hidden];
                        rnn_cell_backward(relu, &h[at.clone()], &dh[at.clone()], rec, &mut dz[at]);
                    }
                    if t > 0 {
                        // h_{t−1} gets dz_t · W_hh.
                        let a = &dz[t * hidden..];
                        T::gemm_nn(rows, hidden, hidden, a, row, 1, w_hh, dh_next, false);
                    }
                }
            }
        },
    );
}

/// `dz = (dh + dh_rec) ⊙ act'`, the derivative written through the output `h`.
fn rnn_cell_backward<T: Float>(relu: bool, h: &[T], dh: &[T], dh_rec: &[T], dz: &mut [T]) {
    vectorized!(rnn_cell_backward_body(relu: bool, h: &[T], dh: &[T], dh_rec: &[T], dz: &mut [T]));
}

#[inline(always)]
fn rnn_cell_backward_body<T: Float>(relu: bool, h: &[T], dh: &[T], dh_rec: &[T], dz: &mut [T]) {
    let n = dz.len();
    let (h, dh, dh_rec) = (&h[..n], &dh[..n], &dh_rec[..n]);
    for k in 0..n {
        let g = dh[k] + dh_rec[k];
        dz[k] = if relu {
            if h[k] > T::ZERO {
                g
            } else {
                T::ZERO
            }
        } else {
            g * (T::ONE - h[k] * h[k])
        };
    }
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

/// The recurrent weight's gradient, `[G·H, H]` `= Σ over samples and steps t ≥ 1 of dz_tᵀ ·
/// h_{t−1}`, from `dz` (`[B, T, G·H]`, `G` the cell's gates) and the record (`[B, planes, T,
/// H]`, the hidden states its first plane).
#[allow(clippy::too_many_arguments)] // The sizes and the operands.
pub fn recurrent_weight_grad<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    planes: usize,
    dz: &[T],
    record: &[T],
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
    if steps < 2 || batch == 0 {
        // Only the zero state precedes the first step.
        out.fill(T::ZERO);
        return;
    }
    let work = batch * (steps - 1) * width * hidden;
    let tasks = exec.tasks_for(width.div_ceil(ROW_GRAIN), work, MIN_TASK_MACS);
    let operands = RowsMut::new(out, hidden);
    exec.split_rows(width, ROW_GRAIN, tasks, operands, |rows, out| {
        for b in 0..batch {
            // Element (r, s) of dz_bᵀ in these rows, from step 1 on: dz[b, s + 1, r].
            let a = &dz[(b * steps + 1) * width + rows.start..];
            // The hidden states of sample b, steps 0 .. T − 1, row-major.
            let h = &record[b * sample..][..(steps - 1) * hidden];
            T::gemm_nn(rows.len(), hidden, steps - 1, a, 1, width, h, out, b > 0);
        }
    });
}
