//! The plain (Elman) RNN, PyTorch's `nn.RNN`: `h_t = act(x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ +
//! b_hh)` with `act` tanh or relu, from a zero state or a given one. As for the LSTM
//! (`lstm.rs`), the input projection of every step, both biases included, is one product
//! before the scan, which adds only the recurrent product, per step for a block of samples,
//! and applies the activation. Its record `[B, 1, T, H]` is the hidden states.

use super::packed::MatMut;
use super::recurrent::{check, check_init, scan_blocks, Rows, Start, RECURRENT_BLOCK};
use super::{vectorized, Exec};
use crate::float::Float;

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
    let rows = Rows {
        first: (z, row),
        second: (init.unwrap_or(&[]), init_row),
        third: (&[], 0),
        out: (h, row),
    };
    let macs = batch * steps * hidden * hidden;
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |z, init, _, h, scratch| {
            let rows = z.len() / row;
            let (h_prev, pre) = scratch.split_at_mut(RECURRENT_BLOCK * hidden);
            let (h_prev, pre) = (&mut h_prev[..rows * hidden], &mut pre[..rows * hidden]);
            for t in 0..steps {
                match (t, init) {
                    // From a zero state the first step has no recurrent term.
                    (0, None) => pre.fill(T::ZERO),
                    (0, Some(init)) => {
                        h_prev.copy_from_slice(init);
                        T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, hidden, hidden));
                    }
                    _ => {
                        for (r, prev) in h_prev.chunks_exact_mut(hidden).enumerate() {
                            let start = r * row + (t - 1) * hidden;
                            prev.copy_from_slice(&h[start..start + hidden]);
                        }
                        T::gemm_nt(hidden, h_prev, w_hh, MatMut::new(pre, rows, hidden, hidden));
                    }
                }
                for r in 0..rows {
                    let at = r * row + t * hidden..r * row + (t + 1) * hidden;
                    let pre = &pre[r * hidden..(r + 1) * hidden];
                    rnn_cell(relu, pre, &z[at.clone()], &mut h[at]);
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
/// The derivative reads only the outputs, so a given initial state matters only with
/// [`Start::Learned`], when `dz` is `[B, T + 1, H]`: after each sample's steps, the gradient of
/// its initial state.
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
    start: Start<'_, T>,
    dz: &mut [T],
    scratch: &mut [T],
) {
    let learned = start.learned();
    let row = steps * hidden;
    let out_row = row + if learned { hidden } else { 0 };
    assert_eq!(
        Some(dz.len()),
        batch.checked_mul(out_row),
        "rnn_scan_backward: dz is not B x {} x H",
        steps + usize::from(learned)
    );
    check(
        "rnn_scan_backward",
        batch,
        steps,
        hidden,
        1,
        &dz[..batch * row],
        w_hh,
        h,
    );
    check_init("rnn_scan_backward", batch, 1, hidden, start.states());
    assert_eq!(dh.len(), h.len(), "rnn_scan_backward: dh");
    let rows = Rows {
        first: (h, row),
        second: (dh, row),
        third: (&[], 0),
        out: (dz, out_row),
    };
    let macs = batch * steps * hidden * hidden;
    scan_blocks(
        exec,
        batch,
        hidden,
        macs,
        rows,
        scratch,
        |h, dh, _, dz, scratch| {
            let (dh, rows) = (dh.unwrap_or(&[]), h.len() / row);
            // What step t + 1 sends back to h_t through the recurrent product.
            let dh_next = &mut scratch[..rows * hidden];
            dh_next.fill(T::ZERO);
            for t in (0..steps).rev() {
                for r in 0..rows {
                    let at = r * row + t * hidden..r * row + (t + 1) * hidden;
                    let out = r * out_row + t * hidden..r * out_row + (t + 1) * hidden;
                    let rec = &dh_next[r * hidden..(r + 1) * hidden];
                    rnn_cell_backward(relu, &h[at.clone()], &dh[at], rec, &mut dz[out]);
                }
                if t > 0 || learned {
                    // h_{t−1} (the initial state at t = 0) gets dz_t · W_hh.
                    let a = &dz[t * hidden..];
                    T::gemm_nn(rows, hidden, hidden, a, out_row, 1, w_hh, dh_next, false);
                }
            }
            if learned {
                for (r, d) in dh_next.chunks_exact(hidden).enumerate() {
                    dz[r * out_row + row..(r + 1) * out_row].copy_from_slice(d);
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
