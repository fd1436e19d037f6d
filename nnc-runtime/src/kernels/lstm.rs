//! The LSTM over a whole sequence, with PyTorch's equations and gate order (i, f, g, o), from
//! a zero initial state or a given one (the step of generation continues a carried state, and a
//! model may take initial states as values, with their gradient). The input projection of every step is one product before the scan (a
//! dense layer over `[B, T, F]`, both biases included), so the scan adds only the recurrent
//! product: per step, one product of the previous hidden states with `W_hhᵀ` for a block of
//! samples, then one pass that applies the gate non-linearities and updates the state.
//!
//! The scan writes its record `[B, 6, T, H]`: per sample the planes of `h`, `c` and the
//! activated gates `i`, `f`, `g`, `o` over the steps, which is what backpropagation through time
//! reads; the layer's output is the `h` plane. Samples are independent, so the threads split
//! the batch into blocks of [`RECURRENT_BLOCK`] samples, each of which runs its whole sequence on
//! one thread (no step waits for another thread), and each block's product sees the same rows
//! on any number of threads. The recurrent weight's gradient is `recurrent.rs`'s.

use super::activation::sigmoid;
use super::packed::MatMut;
use super::recurrent::{check, check_init, scan_blocks, Rows, Start, RECURRENT_BLOCK};
use super::{vectorized, Exec};
use crate::float::Float;

/// The six planes of one sample's record, each `steps · hidden` long: h, c, i, f, g, o.
fn planes<T>(sample: &mut [T], plane: usize) -> [&mut [T]; 6] {
    let (h, rest) = sample.split_at_mut(plane);
    let (c, rest) = rest.split_at_mut(plane);
    let (i, rest) = rest.split_at_mut(plane);
    let (f, rest) = rest.split_at_mut(plane);
    let (g, o) = rest.split_at_mut(plane);
    [h, c, i, f, g, o]
}

/// The scan: `record` (`[B, 6, T, H]`) from the projections `z` (`[B, T, 4H]`) and `W_hh`
/// (`[4H, H]`), starting from `init` (`[B, 2, H]`, each sample's h then c) or from zero.
/// `scratch` holds [`recurrent_scratch_len`] elements for each thread that may take part.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn lstm_scan<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    z: &[T],
    w_hh: &[T],
    init: Option<&[T]>,
    record: &mut [T],
    scratch: &mut [T],
) {
    let h4 = check("lstm_scan", batch, steps, hidden, 4, z, w_hh, record);
    let init_row = check_init("lstm_scan", batch, 2, hidden, init);
    let rows = Rows {
        first: (z, steps * h4),
        second: (init.unwrap_or(&[]), init_row),
        third: (&[], 0),
        out: (record, 6 * steps * hidden),
    };
    let macs = batch * steps * h4 * hidden;
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |z, init, _, record, scratch| scan_block(steps, hidden, z, w_hh, init, record, scratch),
    );
}

/// One block of samples through every step.
fn scan_block<T: Float>(
    steps: usize,
    hidden: usize,
    z: &[T],
    w_hh: &[T],
    init: Option<&[T]>,
    record: &mut [T],
    scratch: &mut [T],
) {
    let (h4, plane) = (4 * hidden, steps * hidden);
    let rows = z.len() / (steps * h4);
    let (h_prev, pre) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
    let (h_prev, pre) = (&mut h_prev[..rows * hidden], &mut pre[..rows * h4]);
    for t in 0..steps {
        match (t, init) {
            // From a zero state the first step has no recurrent term.
            (0, None) => pre.fill(T::ZERO),
            (0, Some(init)) => {
                for (h, s) in h_prev.chunks_exact_mut(hidden).zip(init.chunks(2 * hidden)) {
                    h.copy_from_slice(&s[..hidden]);
                }
                T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, h4, h4));
            }
            _ => {
                for (r, h) in h_prev.chunks_exact_mut(hidden).enumerate() {
                    let start = r * 6 * plane + (t - 1) * hidden;
                    h.copy_from_slice(&record[start..start + hidden]);
                }
                T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, h4, h4));
            }
        }
        for (r, sample) in record.chunks_exact_mut(6 * plane).enumerate() {
            let [h, c, i, f, g, o] = planes(sample, plane);
            // The cell state is updated in place: this step's slot starts as the last one.
            let (c_before, c_now) = c.split_at_mut(t * hidden);
            let c_now = &mut c_now[..hidden];
            match (t.checked_sub(1), init) {
                (Some(p), _) => c_now.copy_from_slice(&c_before[p * hidden..(p + 1) * hidden]),
                (None, Some(init)) => {
                    c_now.copy_from_slice(&init[(2 * r + 1) * hidden..(2 * r + 2) * hidden])
                }
                (None, None) => c_now.fill(T::ZERO),
            }
            let now = t * hidden..(t + 1) * hidden;
            let z = &z[(r * steps + t) * h4..(r * steps + t + 1) * h4];
            let state = [
                &mut h[now.clone()],
                c_now,
                &mut i[now.clone()],
                &mut f[now.clone()],
                &mut g[now.clone()],
                &mut o[now],
            ];
            cell(&pre[r * h4..(r + 1) * h4], z, state);
        }
    }
}

/// One sample's step: the gates from the recurrent product `pre` plus the projection `z`,
/// then the new states; `c` holds the previous cell state and is updated in place.
fn cell<T: Float>(pre: &[T], z: &[T], state: [&mut [T]; 6]) {
    vectorized!(cell_body(pre: &[T], z: &[T], state: [&mut [T]; 6]));
}

#[inline(always)]
fn cell_body<T: Float>(pre: &[T], z: &[T], state: [&mut [T]; 6]) {
    let [h, c, i, f, g, o] = state;
    let n = h.len();
    // One simple loop per gate, each over operands cut to exactly `n` values, so that every
    // loop vectorises, its exponentials included (`vecmath`). The same work as one loop over
    // all six outputs, which LLVM left scalar: that pass took 45% of an LSTM training step.
    let (pre, z) = (&pre[..4 * n], &z[..4 * n]);
    let gate = |q: usize, out: &mut [T], f: fn(T) -> T| {
        let (pre, z) = (&pre[q * n..(q + 1) * n], &z[q * n..(q + 1) * n]);
        for ((y, &p), &x) in out[..n].iter_mut().zip(pre).zip(z) {
            *y = f(p + x);
        }
    };
    gate(0, i, sigmoid);
    gate(1, f, sigmoid);
    gate(2, g, T::tanh);
    gate(3, o, sigmoid);
    let (c, i, f, g, o) = (&mut c[..n], &i[..n], &f[..n], &g[..n], &o[..n]);
    for k in 0..n {
        let cv = f[k] * c[k] + i[k] * g[k];
        c[k] = cv;
        h[k] = o[k] * cv.tanh();
    }
}

/// Backpropagation through time: `dz` (`[B, T, 4H]`) from the record, its gradient `d_record`
/// (whose `h` and `c` planes the rest of the model sends back; the gate planes are not read)
/// and `W_hh`, for a scan that started from `start` (`[B, 2, H]`, h then c, where given). With
/// [`Start::Learned`] `dz` is `[B, T + 1, 4H]`: after each sample's steps, the gradients of its
/// initial h and c, then `2H` zeros.
#[allow(clippy::too_many_arguments)] // The sizes, the operands and the scratch.
pub fn lstm_scan_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    hidden: usize,
    record: &[T],
    d_record: &[T],
    w_hh: &[T],
    start: Start<'_, T>,
    dz: &mut [T],
    scratch: &mut [T],
) {
    let h4 = 4 * hidden;
    let rows_out = steps + usize::from(start.learned());
    assert_eq!(
        Some(dz.len()),
        batch.checked_mul(rows_out * h4),
        "lstm_scan_backward: dz is not B x {rows_out} x 4H"
    );
    check(
        "lstm_scan_backward",
        batch,
        steps,
        hidden,
        4,
        &dz[..batch * steps * h4],
        w_hh,
        record,
    );
    assert_eq!(d_record.len(), record.len(), "lstm_scan_backward: d_record");
    let init = start.states();
    let init_row = check_init("lstm_scan_backward", batch, 2, hidden, init);
    let record_row = 6 * steps * hidden;
    let rows = Rows {
        first: (record, record_row),
        second: (d_record, record_row),
        third: (init.unwrap_or(&[]), init_row),
        out: (dz, rows_out * h4),
    };
    let macs = batch * steps * h4 * hidden;
    let learned = start.learned();
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |record, d_record, init, dz, scratch| {
            let d_record = d_record.unwrap_or(&[]);
            let operands = (record, d_record, w_hh, init);
            backward_block(steps, hidden, operands, learned, dz, scratch)
        },
    );
}

/// The operands of one block's backward pass: the record, its gradient, `W_hh` and the
/// initial states where given.
type BackwardOperands<'a, T> = (&'a [T], &'a [T], &'a [T], Option<&'a [T]>);

/// One block of samples back through every step, the last first; with `learned`, then the
/// gradients of the initial states into each sample's extra row of `dz`.
fn backward_block<T: Float>(
    steps: usize,
    hidden: usize,
    (record, d_record, w_hh, init): BackwardOperands<'_, T>,
    learned: bool,
    dz: &mut [T],
    scratch: &mut [T],
) {
    let (h4, plane) = (4 * hidden, steps * hidden);
    let row = (steps + usize::from(learned)) * h4;
    let rows = dz.len() / row;
    // What step t + 1 sends back to step t: through the recurrent product to h, and through
    // the forget gate to c.
    let (dh_next, rest) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
    let (dc_next, rest) = rest.split_at_mut(RECURRENT_BLOCK * hidden);
    let (dh_next, dc_next) = (&mut dh_next[..rows * hidden], &mut dc_next[..rows * hidden]);
    dh_next.fill(T::ZERO);
    dc_next.fill(T::ZERO);
    // The cell state before the first step, read like any other: zeros unless given.
    let zero = &mut rest[..hidden];
    zero.fill(T::ZERO);
    let zero = &*zero;
    for t in (0..steps).rev() {
        for r in 0..rows {
            let at = |p: usize, t: usize| r * 6 * plane + p * plane + t * hidden;
            let saved = |p: usize, t: usize| &record[at(p, t)..at(p, t) + hidden];
            let [i, f, g, o] = [2, 3, 4, 5].map(|p| saved(p, t));
            let c = saved(1, t);
            let c_prev = match (t.checked_sub(1), init) {
                (Some(p), _) => saved(1, p),
                (None, Some(init)) => &init[(2 * r + 1) * hidden..(2 * r + 2) * hidden],
                (None, None) => zero,
            };
            let given = |p: usize| &d_record[at(p, t)..at(p, t) + hidden];
            let (dh, dc) = (given(0), given(1));
            let dz = &mut dz[r * row + t * h4..r * row + (t + 1) * h4];
            let rec = &mut dh_next[r * hidden..(r + 1) * hidden];
            let carry = &mut dc_next[r * hidden..(r + 1) * hidden];
            cell_backward([i, f, g, o, c], c_prev, [dh, dc], rec, carry, dz);
        }
        if t > 0 || learned {
            // h_{t−1} (the initial h at t = 0) feeds every gate of step t through W_hh: it
            // gets dz_t · W_hh.
            T::gemm_nn(
                rows,
                hidden,
                h4,
                &dz[t * h4..],
                row,
                1,
                w_hh,
                dh_next,
                false,
            );
        }
    }
    if learned {
        // What reaches the state before the first step: h through the recurrent product, c
        // through the first forget gate.
        for r in 0..rows {
            let extra = &mut dz[r * row + steps * h4..(r + 1) * row];
            let (dh, rest) = extra.split_at_mut(hidden);
            let (dc, rest) = rest.split_at_mut(hidden);
            dh.copy_from_slice(&dh_next[r * hidden..(r + 1) * hidden]);
            dc.copy_from_slice(&dc_next[r * hidden..(r + 1) * hidden]);
            rest.fill(T::ZERO);
        }
    }
}

/// One sample's step backwards. `dh_rec` holds what the next step sent back to this step's
/// `h` and `dc_carry` what it sent to `c`; the latter becomes what this step sends back to the
/// one before. `c_prev` is the cell state before the step (zeros before the first).
fn cell_backward<T: Float>(
    saved: [&[T]; 5],
    c_prev: &[T],
    given: [&[T]; 2],
    dh_rec: &[T],
    dc_carry: &mut [T],
    dz: &mut [T],
) {
    vectorized!(cell_backward_body(saved: [&[T]; 5], c_prev: &[T], given: [&[T]; 2], dh_rec: &[T], dc_carry: &mut [T], dz: &mut [T]));
}

#[inline(always)]
fn cell_backward_body<T: Float>(
    saved: [&[T]; 5],
    c_prev: &[T],
    given: [&[T]; 2],
    dh_rec: &[T],
    dc_carry: &mut [T],
    dz: &mut [T],
) {
    let n = saved[0].len();
    // Every operand cut to exactly `n` values, so that the loop vectorises (see `cell_body`).
    let [i, f, g, o, c] = saved.map(|v| &v[..n]);
    let (c_prev, dh_in, dc_in) = (&c_prev[..n], &given[0][..n], &given[1][..n]);
    let (dh_rec, dc_carry) = (&dh_rec[..n], &mut dc_carry[..n]);
    let (dz_i, rest) = dz[..4 * n].split_at_mut(n);
    let (dz_f, rest) = rest.split_at_mut(n);
    let (dz_g, dz_o) = rest.split_at_mut(n);
    for k in 0..n {
        let dh = dh_in[k] + dh_rec[k];
        // h = o·tanh(c), and c also reaches the next step through its forget gate.
        let tc = c[k].tanh();
        let dc = dc_in[k] + dc_carry[k] + dh * o[k] * (T::ONE - tc * tc);
        dc_carry[k] = dc * f[k];
        // c = f·c_prev + i·g, through each gate's non-linearity.
        dz_i[k] = dc * g[k] * i[k] * (T::ONE - i[k]);
        dz_f[k] = dc * c_prev[k] * f[k] * (T::ONE - f[k]);
        dz_g[k] = dc * i[k] * (T::ONE - g[k] * g[k]);
        dz_o[k] = dh * tc * o[k] * (T::ONE - o[k]);
    }
}
