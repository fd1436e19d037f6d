//! Multi-head scaled dot-product self-attention over a sequence, with an optional causal mask:
//! the core of PyTorch's `nn.MultiheadAttention` (and of GPT's attention) between its input and
//! output projections, which are ordinary dense layers.
//!
//! Each sample's packed projections `qkv` are `[T, 3D]`: every row holds the position's query,
//! key and value (`D` each), and head `h` owns columns `h·hs .. (h + 1)·hs` of each (`hs = D /
//! heads`). [`attention_probs`] writes the attention weights `P = softmax(scale · Q_h K_hᵀ)`
//! `[heads, T, T]` per sample, the causal mask applied inside the softmax so that masked
//! positions are never exponentiated (their weights are exact zeros); [`attention_mix`] writes
//! `O = P_h V_h` with the heads side by side, `[T, D]`; [`attention_backward`] writes the
//! gradient of the packed projections from `P` and the gradient of `O`, through the softmax.
//!
//! Every product is the dense layers' packing-free broadcast product (`gemm_nn`) on contiguous
//! copies of one head's columns (in the thread's scratch), so nothing is allocated. The keys
//! of `Q Kᵀ` and the values of `dO Vᵀ` are copied transposed for it: computed as dot products
//! (`gemm_nt`), whose every element ends in a horizontal sum over only `hs = 32` values, those
//! two products made `attention_probs` take 1.41 ms and `attention_backward` 1.46 ms at the
//! small GPT's shapes (`cargo bench -p nnc-runtime --bench kernels -- attention`, one thread),
//! against 0.22 ms for `attention_mix`'s product of the same size. With the causal mask the
//! products that read the weights skip their zero upper triangle in blocks of 16 rows
//! ([`row_blocks`]), leaving out exact zeros only, so the bits do not change; `Q Kᵀ` is still
//! computed square and its masked half discarded. Measured at those shapes, one thread: the
//! three kernels took 1.41, 0.22 and 1.46 ms (weights, mix, backward) before these changes and
//! 0.74, 0.16 and 1.06 ms after. The threads split the samples, so each sample is computed by
//! the same operations on any number of threads.

use std::ops::Range;

use super::dense::MIN_TASK_MACS;
use super::packed::MatMut;
use super::softmax::{dot_lanes, row_max, sum_lanes};
use super::split::{PerTask, RowsMut, RowsRef};
use super::vectorized;
use crate::float::Float;
use crate::kernels::Exec;

/// Scratch elements one thread needs for any attention kernel over `steps` positions with heads
/// of `head` values: the backward pass's seven `[T, hs]` copies (queries, keys, values, the
/// output's gradient and the three results) and two `[T, T]` matrices (the weight gradients,
/// and the weights after dropout), rounded up to a whole number of 64-byte lines.
pub const fn attention_scratch_len(steps: usize, head: usize) -> usize {
    (7 * steps * head + 2 * steps * steps).div_ceil(16) * 16
}

/// The sizes of one attention: positions, heads and values per head.
#[derive(Clone, Copy, Debug)]
struct Dims {
    steps: usize,
    heads: usize,
    head: usize,
}

impl Dims {
    /// The width of the model, `D`.
    fn model(self) -> usize {
        self.heads * self.head
    }

    /// One sample's packed projections, `T · 3D`.
    fn packed(self) -> usize {
        3 * self.steps * self.model()
    }

    /// One sample's weights, `heads · T · T`.
    fn weights(self) -> usize {
        self.heads * self.steps * self.steps
    }

    /// The multiply-adds of one sample's two products per head, for the threading threshold.
    fn macs(self) -> usize {
        2 * self.heads * self.steps * self.steps * self.head
    }
}

fn check(what: &str, batch: usize, d: Dims, lens: &[(usize, usize, &str)], scratch: usize) {
    for &(len, per_sample, name) in lens {
        assert_eq!(
            Some(len),
            batch.checked_mul(per_sample),
            "{what}: {name} does not hold {batch} samples of {per_sample}"
        );
    }
    assert!(
        scratch >= attention_scratch_len(d.steps, d.head),
        "{what}: scratch of {scratch} elements is less than one thread needs"
    );
}

/// Copies column block `col .. col + width` of the `[rows, stride]` matrix `src` into the
/// contiguous `[rows, width]` matrix `dst`.
fn gather<T: Float>(src: &[T], stride: usize, col: usize, width: usize, dst: &mut [T]) {
    for (row, d) in src.chunks_exact(stride).zip(dst.chunks_exact_mut(width)) {
        d.copy_from_slice(&row[col..col + width]);
    }
}

/// Copies column block `col .. col + width` of the `[rows, stride]` matrix `src` into `dst`
/// transposed, `[width, rows]`: a head's keys (or values) as the right operand of a broadcast
/// product, so that `Q·Kᵀ` runs as `Q` times a contiguous `Kᵀ` rather than as dot products.
fn gather_transposed<T: Float>(src: &[T], stride: usize, col: usize, width: usize, dst: &mut [T]) {
    let rows = dst.len() / width.max(1);
    for (t, row) in src.chunks_exact(stride).take(rows).enumerate() {
        for (c, &v) in row[col..col + width].iter().enumerate() {
            dst[c * rows + t] = v;
        }
    }
}

/// The reverse of [`gather`]: the contiguous `src` into a column block of `dst`.
fn scatter<T: Float>(src: &[T], width: usize, dst: &mut [T], stride: usize, col: usize) {
    for (s, row) in src.chunks_exact(width).zip(dst.chunks_exact_mut(stride)) {
        row[col..col + width].copy_from_slice(s);
    }
}

/// Runs `f` on every sample of a kernel's batch with the task's scratch, the threads splitting
/// the samples: the sample's rows of `read` (`per_read` values each) and of `out` (`per_out`).
fn per_sample<T: Float>(
    exec: &Exec,
    batch: usize,
    d: Dims,
    read: (&[T], usize),
    out: (&mut [T], usize),
    scratch: &mut [T],
    f: impl Fn(usize, &[T], &mut [T], &mut [T]) + Sync,
) {
    let scratch = PerTask::new(scratch, attention_scratch_len(d.steps, d.head));
    let tasks = exec
        .tasks_for(batch, batch * d.macs(), MIN_TASK_MACS)
        .min(scratch.tasks());
    let ((read, per_read), (out, per_out)) = (read, out);
    let operands = (RowsRef(read, per_read), RowsMut::new(out, per_out), scratch);
    exec.split_rows(
        batch,
        1,
        tasks,
        operands,
        |samples, (read, out, scratch)| {
            let rows = read
                .chunks_exact(per_read.max(1))
                .zip(out.chunks_exact_mut(per_out.max(1)));
            for (b, (read, out)) in samples.zip(rows) {
                f(b, read, out, scratch);
            }
        },
    );
}

/// The attention weights of every head: for each sample, head and query position `i`,
/// `P[i, j] = softmax_j(scale · q_i · k_j)` over the positions `j` (only `j ≤ i` when
/// `causal`, the others exactly zero). `qkv` is `[batch, steps, 3·heads·head]`, `probs`
/// `[batch, heads, steps, steps]`.
pub fn attention_probs<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    heads: usize,
    head: usize,
    causal: bool,
    scale: f64,
    qkv: &[T],
    probs: &mut [T],
    scratch: &mut [T],
) {
    let d = Dims { steps, heads, head };
    let lens = [
        (qkv.len(), d.packed(), "qkv"),
        (probs.len(), d.weights(), "probs"),
    ];
    check("attention_probs", batch, d, &lens, scratch.len());
    if steps * head == 0 {
        probs.fill(T::ZERO);
        return;
    }
    let scale = T::from_f64(scale);
    let (model, tt) = (d.model(), steps * steps);
    per_sample(
        exec,
        batch,
        d,
        (qkv, d.packed()),
        (probs, d.weights()),
        scratch,
        |_, qkv, probs, scratch| {
            let (q, rest) = scratch.split_at_mut(steps * head);
            let kt = &mut rest[..steps * head];
            for (h, p) in probs.chunks_exact_mut(tt).enumerate() {
                gather(qkv, 3 * model, h * head, head, q);
                gather_transposed(qkv, 3 * model, model + h * head, head, kt);
                T::gemm_nn(steps, steps, head, q, head, 1, kt, p, false);
                softmax_rows(p, steps, causal, scale);
            }
        },
    );
}

/// Every row `i` of the `[T, T]` scores `p` replaced by `softmax(scale · row)` over its first
/// `i + 1` entries when `causal` (the rest exact zeros), else over all of them; dispatched to
/// AVX2 where the CPU has it.
fn softmax_rows<T: Float>(p: &mut [T], steps: usize, causal: bool, scale: T) {
    vectorized!(softmax_rows_body(p: &mut [T], steps: usize, causal: bool, scale: T));
}

#[inline(always)]
fn softmax_rows_body<T: Float>(p: &mut [T], steps: usize, causal: bool, scale: T) {
    for (i, row) in p.chunks_exact_mut(steps).enumerate() {
        let seen = if causal { i + 1 } else { steps };
        let (row, masked) = row.split_at_mut(seen);
        let max = row_max(row);
        // The exponentials in a loop of their own, which vectorises, then their sum in eight
        // lanes: with the running sum in the same loop every exponential was scalar, and this
        // softmax took most of `attention_probs`' 1.27 ms at the small GPT's shapes; one
        // running sum after the loop still took a tenth of its 409 µs.
        for v in row.iter_mut() {
            *v = ((*v - max) * scale).exp();
        }
        let inv = T::ONE / sum_lanes(row);
        row.iter_mut().for_each(|v| *v *= inv);
        masked.fill(T::ZERO);
    }
}

/// The scores' gradient from the weights' `dp`, in place: `dp[i, j] = scale · p[i, j] ·
/// (dp[i, j] − Σ_j' p[i, j']·dp[i, j'])`, over the first `i + 1` entries of row `i` (rounded
/// up to whole lanes) when `causal` (the rest, where `p` is an exact zero, are zeros);
/// dispatched like the softmax.
/// With one running sum for the row's dot product, this took 216 µs of the backward pass's
/// 825 µs over batch 12 x 64 positions x 4 heads on one core.
fn softmax_rows_backward<T: Float>(p: &[T], dp: &mut [T], steps: usize, causal: bool, scale: T) {
    vectorized!(softmax_rows_backward_body(p: &[T], dp: &mut [T], steps: usize, causal: bool, scale: T));
}

#[inline(always)]
fn softmax_rows_backward_body<T: Float>(
    p: &[T],
    dp: &mut [T],
    steps: usize,
    causal: bool,
    scale: T,
) {
    for (i, (p, dp)) in p
        .chunks_exact(steps)
        .zip(dp.chunks_exact_mut(steps))
        .enumerate()
    {
        // A causal row stops at a whole number of lanes of `dot_lanes` past its last weight, so
        // that its sum groups the terms as the square row's does (the rest add exact zeros).
        let seen = if causal {
            (i + 1).next_multiple_of(8).min(steps)
        } else {
            steps
        };
        let (dp, masked) = dp.split_at_mut(seen);
        let p = &p[..seen];
        let dot = dot_lanes(p, dp);
        for (d, &p) in dp.iter_mut().zip(p) {
            *d = p * (*d - dot) * scale;
        }
        masked.fill(T::ZERO);
    }
}

/// Rows of the weights handled together by a causal attention's products, each with the keys
/// its rows see: blocks of [`CAUSAL_BLOCK`] rows, block `r0..r1` seeing keys `0..r1`, so that
/// the products skip the masked upper triangle except inside the diagonal blocks (5/8 of the
/// square's work at 64 positions); one block of every row and key otherwise. Where a block's
/// products sum over the rows below it instead (`Pᵀ·dO`), they start at its first row. The
/// terms skipped are exact zeros at the end or start of each element's sum, so the results
/// are those of the square products.
fn row_blocks(steps: usize, causal: bool) -> impl Iterator<Item = (Range<usize>, usize)> {
    let block = if causal { CAUSAL_BLOCK } else { steps.max(1) };
    (0..steps).step_by(block).map(move |r0| {
        let r1 = (r0 + block).min(steps);
        (r0..r1, if causal { r1 } else { steps })
    })
}

/// Rows per block of a causal attention's products: a multiple of every register block's
/// height, and small enough that the masked part computed inside diagonal blocks stays small.
const CAUSAL_BLOCK: usize = 16;

/// The heads' weighted values, side by side: `out[t, h·hs + c] = Σ_j P_h[t, j] · v_j[h·hs + c]`.
/// `probs` is `[batch, heads, steps, steps]`, `qkv` `[batch, steps, 3·heads·head]`, `out`
/// `[batch, steps, heads·head]`.
pub fn attention_mix<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    heads: usize,
    head: usize,
    causal: bool,
    probs: &[T],
    qkv: &[T],
    out: &mut [T],
    scratch: &mut [T],
) {
    let d = Dims { steps, heads, head };
    let lens = [
        (qkv.len(), d.packed(), "qkv"),
        (probs.len(), d.weights(), "probs"),
        (out.len(), steps * d.model(), "out"),
    ];
    check("attention_mix", batch, d, &lens, scratch.len());
    if steps * head == 0 {
        return;
    }
    let (model, tt) = (d.model(), steps * steps);
    per_sample(
        exec,
        batch,
        d,
        (probs, d.weights()),
        (out, steps * model),
        scratch,
        |b, probs, out, scratch| {
            let qkv = &qkv[b * d.packed()..(b + 1) * d.packed()];
            let (v, rest) = scratch.split_at_mut(steps * head);
            let o = &mut rest[..steps * head];
            for (h, p) in probs.chunks_exact(tt).enumerate() {
                gather(qkv, 3 * model, 2 * model + h * head, head, v);
                for (rows, keys) in row_blocks(steps, causal) {
                    let (a, c) = (
                        &p[rows.start * steps..],
                        &mut o[rows.start * head..rows.end * head],
                    );
                    T::gemm_nn(
                        rows.len(),
                        head,
                        keys,
                        a,
                        steps,
                        1,
                        &v[..keys * head],
                        c,
                        false,
                    );
                }
                scatter(o, head, out, model, h * head);
            }
        },
    );
}

/// The gradient of the packed projections `[batch, steps, 3·heads·head]` from the weights
/// `probs`, the projections `qkv` and the gradient `g` of [`attention_mix`]'s output: per head,
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − Σ_j P ⊙ dP)` (the softmax's gradient, zero where
/// the causal mask zeroed `P`), `dQ = scale · dS·K` and `dK = scale · dSᵀ·Q`. With a dropout
/// `mask` (`[batch, heads, steps, steps]`), the values were mixed by `P ⊙ mask`: `dV` takes
/// that product and `dP` is multiplied by the mask.
pub fn attention_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    heads: usize,
    head: usize,
    causal: bool,
    scale: f64,
    probs: &[T],
    qkv: &[T],
    g: &[T],
    mask: Option<&[T]>,
    dqkv: &mut [T],
    scratch: &mut [T],
) {
    let d = Dims { steps, heads, head };
    let lens = [
        (qkv.len(), d.packed(), "qkv"),
        (probs.len(), d.weights(), "probs"),
        (g.len(), steps * d.model(), "g"),
        (dqkv.len(), d.packed(), "dqkv"),
        (mask.map_or(probs.len(), <[T]>::len), d.weights(), "mask"),
    ];
    check("attention_backward", batch, d, &lens, scratch.len());
    if steps * head == 0 {
        dqkv.fill(T::ZERO);
        return;
    }
    let scale = T::from_f64(scale);
    let (model, tt, n) = (d.model(), steps * steps, steps * head);
    per_sample(
        exec,
        batch,
        d,
        (qkv, d.packed()),
        (dqkv, d.packed()),
        scratch,
        |b, qkv, dqkv, scratch| {
            let sample = b * d.weights()..(b + 1) * d.weights();
            let (probs, mask) = (&probs[sample.clone()], mask.map(|m| &m[sample]));
            let g = &g[b * steps * model..(b + 1) * steps * model];
            let (copies, rest) = scratch.split_at_mut(7 * n);
            let (dp, rest) = rest.split_at_mut(tt);
            let kept = &mut rest[..tt];
            let mut parts = copies.chunks_exact_mut(n);
            let mut part = || parts.next().expect("scratch holds seven head copies");
            let (q, k, vt, go) = (part(), part(), part(), part());
            let (dq, dk, dv) = (part(), part(), part());
            for (h, p) in probs.chunks_exact(tt).enumerate() {
                let cols = [h * head, model + h * head, 2 * model + h * head];
                gather(qkv, 3 * model, cols[0], head, q);
                gather(qkv, 3 * model, cols[1], head, k);
                gather_transposed(qkv, 3 * model, cols[2], head, vt);
                gather(g, model, h * head, head, go);
                T::gemm_nn(steps, steps, head, go, head, 1, vt, dp, false);
                // The values were mixed by the weights after dropout, whose gradient is dP's
                // through the mask.
                let mixed = match mask {
                    Some(m) => {
                        let m = &m[h * tt..(h + 1) * tt];
                        for ((k, &p), &m) in kept.iter_mut().zip(p).zip(m) {
                            *k = p * m;
                        }
                        dp.iter_mut().zip(m).for_each(|(d, &m)| *d *= m);
                        &*kept
                    }
                    None => p,
                };
                // dV[j] = Σ_i P[i, j]·dO[i] over i ≥ j where P is causal, and likewise dK.
                for (rows, _) in row_blocks(steps, causal) {
                    let from = if causal { rows.start } else { 0 };
                    let (a, b) = (&mixed[from * steps + rows.start..], &go[from * head..]);
                    let c = &mut dv[rows.start * head..rows.end * head];
                    T::gemm_nn(rows.len(), head, steps - from, a, 1, steps, b, c, false);
                }
                softmax_rows_backward(p, dp, steps, causal, scale);
                for (rows, keys) in row_blocks(steps, causal) {
                    let from = if causal { rows.start } else { 0 };
                    let (a, c) = (
                        &dp[rows.start * steps..],
                        &mut dq[rows.start * head..rows.end * head],
                    );
                    T::gemm_nn(
                        rows.len(),
                        head,
                        keys,
                        a,
                        steps,
                        1,
                        &k[..keys * head],
                        c,
                        false,
                    );
                    let (a, b) = (&dp[from * steps + rows.start..], &q[from * head..]);
                    let c = &mut dk[rows.start * head..rows.end * head];
                    T::gemm_nn(rows.len(), head, steps - from, a, 1, steps, b, c, false);
                }
                scatter(dq, head, dqkv, 3 * model, cols[0]);
                scatter(dk, head, dqkv, 3 * model, cols[1]);
                scatter(dv, head, dqkv, 3 * model, cols[2]);
            }
        },
    );
}

/// Writes the key and value of the current position, from each sample's packed projections
/// `qkv` `[batch, 1, 3D]`, into row `position` of its cache `[batch, steps, 2D]` (the key then
/// the value): the step entry point's memory of the positions before.
pub fn kv_cache_write<T: Float>(
    _: &Exec,
    batch: usize,
    steps: usize,
    model: usize,
    position: usize,
    qkv: &[T],
    cache: &mut [T],
) {
    assert_eq!(
        qkv.len(),
        batch * 3 * model,
        "kv_cache_write: qkv is not [{batch}, 1, 3·{model}]"
    );
    assert_eq!(
        cache.len(),
        batch * steps * 2 * model,
        "kv_cache_write: cache is not [{batch}, {steps}, 2·{model}]"
    );
    assert!(
        position < steps,
        "kv_cache_write: position {position} of {steps}"
    );
    if model == 0 {
        return;
    }
    for (row, sample) in qkv
        .chunks_exact(3 * model)
        .zip(cache.chunks_exact_mut(steps * 2 * model))
    {
        let at = position * 2 * model;
        sample[at..at + 2 * model].copy_from_slice(&row[model..]);
    }
}

/// Attention at one position from the cache: for each sample and head, the weights
/// `softmax(scale · q · k_j)` over the positions `j ≤ position` whose keys the cache holds
/// (`[batch, steps, 2D]`, the current one written by [`kv_cache_write`]), and their mix of the
/// values, `[batch, 1, D]`: the last row of [`attention_probs`] and [`attention_mix`] over the
/// positions so far, with the same products on one row (equal to rounding: the blocked
/// products may sum a row in another order than a block of rows).
pub fn attention_step<T: Float>(
    exec: &Exec,
    batch: usize,
    steps: usize,
    heads: usize,
    head: usize,
    scale: f64,
    position: usize,
    qkv: &[T],
    cache: &[T],
    out: &mut [T],
    scratch: &mut [T],
) {
    let d = Dims { steps, heads, head };
    let model = d.model();
    let lens = [
        (qkv.len(), 3 * model, "qkv"),
        (cache.len(), steps * 2 * model, "cache"),
        (out.len(), model, "out"),
    ];
    check("attention_step", batch, d, &lens, scratch.len());
    assert!(
        position < steps,
        "attention_step: position {position} of {steps}"
    );
    if model == 0 {
        return;
    }
    let scale = T::from_f64(scale);
    let seen = position + 1;
    let scratch = PerTask::new(scratch, attention_scratch_len(steps, head));
    let tasks = exec
        .tasks_for(batch, batch * 2 * seen * model, MIN_TASK_MACS)
        .min(scratch.tasks());
    let operands = (
        RowsRef(qkv, 3 * model),
        RowsRef(cache, steps * 2 * model),
        RowsMut::new(out, model),
        scratch,
    );
    exec.split_rows(
        batch,
        1,
        tasks,
        operands,
        |_, (qkv, cache, out, scratch)| {
            let samples = qkv
                .chunks_exact(3 * model)
                .zip(cache.chunks_exact(steps * 2 * model))
                .zip(out.chunks_exact_mut(model));
            for ((q, cache), out) in samples {
                let (k, rest) = scratch.split_at_mut(seen * head);
                let (v, rest) = rest.split_at_mut(seen * head);
                let (p, rest) = rest.split_at_mut(seen);
                let o = &mut rest[..head];
                for h in 0..heads {
                    gather(&cache[..seen * 2 * model], 2 * model, h * head, head, k);
                    gather(
                        &cache[..seen * 2 * model],
                        2 * model,
                        model + h * head,
                        head,
                        v,
                    );
                    // The whole sequence's products, on one row: q·Kᵀ, then p·V.
                    T::gemm_nt(
                        head,
                        &q[h * head..(h + 1) * head],
                        k,
                        MatMut::new(p, 1, seen, seen),
                    );
                    softmax_rows(p, seen, false, scale);
                    T::gemm_nn(1, head, seen, p, seen, 1, v, o, false);
                    out[h * head..(h + 1) * head].copy_from_slice(o);
                }
            }
        },
    );
}
