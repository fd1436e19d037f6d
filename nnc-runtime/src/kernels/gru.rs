//! The GRU over a whole sequence, with PyTorch's equations and gate order (r, z, n), from a
//! zero initial state or a given one:
//!
//! ```text
//! r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! The reset gate multiplies the hidden product *with its bias*, so unlike the LSTM's the two
//! biases cannot be summed into the input projection: the projection before the scan carries
//! `b_ih`, the scan adds `b_hh`. The record `[B, 5, T, H]` holds per sample the planes of `h`,
//! `r`, `z`, `n` and `W_hn h + b_hn` (the last is what the reset gate multiplied, needed for
//! its gradient). Backwards, the scan's gradient is `[B, 2T, 3H]`, two planes of T steps: what
//! reaches the input projection, and what reaches the hidden product `W_hh h + b_hh` (equal to
//! the first in the r and z rows, the reset gate's share in the n rows), from which `W_hh`'s
//! and `b_hh`'s gradients follow; where the initial state is differentiated, one more row
//! starts with its gradient. Threads split the batch in blocks as the LSTM's do (`lstm.rs`).

use super::activation::sigmoid;
use super::packed::MatMut;
use super::recurrent::{check, check_init, scan_blocks, Rows, Start, RECURRENT_BLOCK};
use super::{vectorized, Exec};
use crate::float::Float;

/// The planes of one sample's GRU record: h, r, z, n and the reset gate's operand.
pub const GRU_PLANES: usize = 5;

/// The scan: `record` (`[B, 5, T, H]`) from the projections `x` (`[B, T, 3H]`, `b_ih`
/// included), `W_hh` (`[3H, H]`) and `b_hh` (`[3H]`), starting from `init` (`[B, 1, H]`) or from
/// zero. `scratch` holds [`recurrent_scratch_len`] elements for each thread that may take
/// part.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn gru_scan<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    x: &[T],
    w_hh: &[T],
    b_hh: &[T],
    init: Option<&[T]>,
    record: &mut [T],
    scratch: &mut [T],
) {
    let h3 = check("gru_scan", batch, steps, hidden, 3, x, w_hh, record);
    let init_row = check_init("gru_scan", batch, 1, hidden, init);
    assert_eq!(b_hh.len(), h3, "gru_scan: b_hh is not 3H");
    let rows = Rows {
        first: (x, steps * h3),
        second: (init.unwrap_or(&[]), init_row),
        third: (&[], 0),
        out: (record, GRU_PLANES * steps * hidden),
    };
    let macs = batch * steps * h3 * hidden;
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |x, init, _, record, scratch| {
            scan_block(steps, hidden, (x, w_hh, b_hh, init), record, scratch)
        },
    );
}

/// The operands of a block: its projections, `W_hh`, `b_hh` and its initial states.
type BlockOperands<'a, T> = (&'a [T], &'a [T], &'a [T], Option<&'a [T]>);

/// One block of samples through every step.
fn scan_block<T: Float>(
    steps: usize,
    hidden: usize,
    (x, w_hh, b_hh, init): BlockOperands<'_, T>,
    record: &mut [T],
    scratch: &mut [T],
) {
    let (h3, plane) = (3 * hidden, steps * hidden);
    let rows = x.len() / (steps * h3);
    let (h_prev, pre) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
    let (h_prev, pre) = (&mut h_prev[..rows * hidden], &mut pre[..rows * h3]);
    for t in 0..steps {
        if t == 0 {
            match init {
                // From a zero state the hidden product is its bias alone.
                None => {
                    h_prev.fill(T::ZERO);
                    pre.fill(T::ZERO);
                }
                Some(init) => {
                    h_prev.copy_from_slice(init);
                    T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, h3, h3));
                }
            }
        } else {
            for (r, h) in h_prev.chunks_exact_mut(hidden).enumerate() {
                let start = r * GRU_PLANES * plane + (t - 1) * hidden;
                h.copy_from_slice(&record[start..start + hidden]);
            }
            T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, h3, h3));
        }
        for (r, sample) in record.chunks_exact_mut(GRU_PLANES * plane).enumerate() {
            let (h, rest) = sample.split_at_mut(plane);
            let (gr, rest) = rest.split_at_mut(plane);
            let (gz, rest) = rest.split_at_mut(plane);
            let (gn, hn) = rest.split_at_mut(plane);
            let now = t * hidden..(t + 1) * hidden;
            let x = &x[(r * steps + t) * h3..(r * steps + t + 1) * h3];
            let state = [
                &mut h[now.clone()],
                &mut gr[now.clone()],
                &mut gz[now.clone()],
                &mut gn[now.clone()],
                &mut hn[now],
            ];
            let h_prev = &h_prev[r * hidden..(r + 1) * hidden];
            cell(&pre[r * h3..(r + 1) * h3], b_hh, x, h_prev, state);
        }
    }
}

/// One sample's step: the gates from the hidden product `pre` (without its bias `b_hh`) and
/// the projection `x`, then the new hidden state from the previous one, `h_prev`.
fn cell<T: Float>(pre: &[T], b_hh: &[T], x: &[T], h_prev: &[T], state: [&mut [T]; 5]) {
    vectorized!(cell_body(pre: &[T], b_hh: &[T], x: &[T], h_prev: &[T], state: [&mut [T]; 5]));
}

/// The `q`-th of the gate-sized parts of `v`.
fn part<T>(v: &[T], q: usize, len: usize) -> &[T] {
    &v[q * len..(q + 1) * len]
}

#[inline(always)]
fn cell_body<T: Float>(pre: &[T], b_hh: &[T], x: &[T], h_prev: &[T], state: [&mut [T]; 5]) {
    let [h, r, z, n, hn] = state;
    let len = h.len();
    // One simple loop per gate over operands cut to exactly `len` values, so that each
    // vectorises, as the LSTM's cell does (`lstm.rs`).
    let (pre, b_hh, x, h_prev) = (
        &pre[..3 * len],
        &b_hh[..3 * len],
        &x[..3 * len],
        &h_prev[..len],
    );
    let gate = |q: usize, out: &mut [T]| {
        let (p, b, x) = (part(pre, q, len), part(b_hh, q, len), part(x, q, len));
        for (((y, &p), &b), &x) in out[..len].iter_mut().zip(p).zip(b).zip(x) {
            *y = sigmoid(x + p + b);
        }
    };
    gate(0, r);
    gate(1, z);
    let (p, b) = (part(pre, 2, len), part(b_hh, 2, len));
    for ((y, &p), &b) in hn[..len].iter_mut().zip(p).zip(b) {
        *y = p + b;
    }
    let (x_n, r, z, hn) = (part(x, 2, len), &r[..len], &z[..len], &hn[..len]);
    for k in 0..len {
        n[k] = (x_n[k] + r[k] * hn[k]).tanh();
    }
    let n = &n[..len];
    for k in 0..len {
        h[k] = n[k] + z[k] * (h_prev[k] - n[k]);
    }
}

/// Backpropagation through time: `dx` (`[B, 2T, 3H]`: per sample what reaches the input
/// projection at each step, then what reaches the hidden product) from the record, its gradient
/// `d_record` (whose `h` plane the rest of the model sends back; the other planes are not read)
/// and `W_hh`, for a scan that started from `start` (`[B, 1, H]` where given). With
/// [`Start::Learned`] `dx` is `[B, 2T + 1, 3H]`, each sample's last row the initial state's
/// gradient, then `2H` zeros.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn gru_scan_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    record: &[T],
    d_record: &[T],
    w_hh: &[T],
    start: Start<'_, T>,
    dx: &mut [T],
    scratch: &mut [T],
) {
    let h3 = 3 * hidden;
    let learned = start.learned();
    let dx_row = (2 * steps + usize::from(learned)) * h3;
    assert_eq!(
        Some(dx.len()),
        batch.checked_mul(dx_row),
        "gru_scan_backward: dx is not B x {} x 3H",
        2 * steps + usize::from(learned)
    );
    check(
        "gru_scan_backward",
        batch,
        steps,
        hidden,
        3,
        &dx[..batch * steps * h3],
        w_hh,
        record,
    );
    assert_eq!(d_record.len(), record.len(), "gru_scan_backward: d_record");
    let init = start.states();
    let init_row = check_init("gru_scan_backward", batch, 1, hidden, init);
    let record_row = GRU_PLANES * steps * hidden;
    let rows = Rows {
        first: (record, record_row),
        second: (d_record, record_row),
        third: (init.unwrap_or(&[]), init_row),
        out: (dx, dx_row),
    };
    let macs = batch * steps * h3 * hidden;
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |record, d_record, init, dx, scratch| {
            let d_record = d_record.unwrap_or(&[]);
            let operands = (record, d_record, w_hh, init);
            backward_block(steps, hidden, operands, learned, dx, scratch)
        },
    );
}

/// One block of samples back through every step, the last first; with `learned`, then the
/// initial states' gradients into each sample's last row.
fn backward_block<T: Float>(
    steps: usize,
    hidden: usize,
    (record, d_record, w_hh, init): BlockOperands<'_, T>,
    learned: bool,
    dx: &mut [T],
    scratch: &mut [T],
) {
    let (h3, plane) = (3 * hidden, steps * hidden);
    let dx_row = (2 * steps + usize::from(learned)) * h3;
    let rows = dx.len() / dx_row;
    // What step t + 1 sends back to h_t, directly and through the hidden product.
    let (dh_next, rest) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
    let dh_next = &mut dh_next[..rows * hidden];
    dh_next.fill(T::ZERO);
    // The state before the first step, read like any other: zeros unless given.
    let zero = &mut rest[..hidden];
    zero.fill(T::ZERO);
    let zero = &*zero;
    for t in (0..steps).rev() {
        for r in 0..rows {
            let at = |p: usize, t: usize| r * GRU_PLANES * plane + p * plane + t * hidden;
            let saved = |p: usize, t: usize| &record[at(p, t)..at(p, t) + hidden];
            let h_prev = match (t.checked_sub(1), init) {
                (Some(p), _) => saved(0, p),
                (None, Some(init)) => &init[r * hidden..(r + 1) * hidden],
                (None, None) => zero,
            };
            let gates = [1, 2, 3, 4].map(|p| saved(p, t));
            let dh = &d_record[at(0, t)..at(0, t) + hidden];
            let sample = &mut dx[r * dx_row..(r + 1) * dx_row];
            let (d_in, d_hid) = sample.split_at_mut(steps * h3);
            let d_in = &mut d_in[t * h3..(t + 1) * h3];
            let d_hid = &mut d_hid[t * h3..(t + 1) * h3];
            let carry = &mut dh_next[r * hidden..(r + 1) * hidden];
            cell_backward(gates, h_prev, dh, carry, d_in, d_hid);
        }
        if t > 0 || learned {
            // h_{t−1} (the initial state at t = 0) feeds every gate's hidden product of step t
            // through W_hh.
            let a = &dx[steps * h3 + t * h3..];
            T::gemm_nn(rows, hidden, h3, a, dx_row, 1, w_hh, dh_next, true);
        }
    }
    if learned {
        for (r, d) in dh_next.chunks_exact(hidden).enumerate() {
            let extra = &mut dx[r * dx_row + 2 * steps * h3..(r + 1) * dx_row];
            extra[..hidden].copy_from_slice(d);
            extra[hidden..].fill(T::ZERO);
        }
    }
}

/// One sample's step backwards. `carry` holds what the next step sent back to this step's
/// `h` and becomes the direct share (through `z`) of what this step sends to the one before;
/// the share through the hidden product is added by the caller.
fn cell_backward<T: Float>(
    gates: [&[T]; 4],
    h_prev: &[T],
    dh: &[T],
    carry: &mut [T],
    d_in: &mut [T],
    d_hid: &mut [T],
) {
    vectorized!(cell_backward_body(gates: [&[T]; 4], h_prev: &[T], dh: &[T], carry: &mut [T], d_in: &mut [T], d_hid: &mut [T]));
}

#[inline(always)]
fn cell_backward_body<T: Float>(
    gates: [&[T]; 4],
    h_prev: &[T],
    dh: &[T],
    carry: &mut [T],
    d_in: &mut [T],
    d_hid: &mut [T],
) {
    let n_len = h_prev.len();
    let [r, z, n, hn] = gates.map(|v| &v[..n_len]);
    let (dh, carry) = (&dh[..n_len], &mut carry[..n_len]);
    let (di_r, rest) = d_in[..3 * n_len].split_at_mut(n_len);
    let (di_z, di_n) = rest.split_at_mut(n_len);
    let (dh_r, rest) = d_hid[..3 * n_len].split_at_mut(n_len);
    let (dh_z, dh_n) = rest.split_at_mut(n_len);
    for k in 0..n_len {
        let g = dh[k] + carry[k];
        // h' = (1 − z)·n + z·h.
        let dn = g * (T::ONE - z[k]);
        let dz = g * (h_prev[k] - n[k]);
        carry[k] = g * z[k];
        // n = tanh(x_n + r·hn).
        let da_n = dn * (T::ONE - n[k] * n[k]);
        let da_r = da_n * hn[k] * r[k] * (T::ONE - r[k]);
        let da_z = dz * z[k] * (T::ONE - z[k]);
        di_r[k] = da_r;
        di_z[k] = da_z;
        di_n[k] = da_n;
        dh_r[k] = da_r;
        dh_z[k] = da_z;
        dh_n[k] = da_n * r[k];
    }
}
