//! Layer normalisation over the last axis, PyTorch's `LayerNorm(D)`: each row of `width` values
//! is normalised with its own mean and biased variance, then scaled by γ and shifted by β per
//! feature. It does not normalise over several trailing axes (PyTorch's `normalized_shape` of
//! more than one size), which the language does not offer.
//!
//! Rows are independent, so the forward pass and the input gradient split rows between the
//! threads and every row is computed by the same operations on any number of threads. The
//! backward kernels compute each row's statistics again from `x` instead of reading them from
//! the forward pass: a row is a few hundred bytes, in L1 cache once read, so each kernel stays
//! one pass over memory and the model plans no extra value. The scale gradient sums over rows,
//! so it splits the columns instead (like `bias_backward`), each task summing its columns over
//! every row in order.

use super::split::{RowsMut, RowsRef, MIN_TASK_ELEMS};
use crate::float::Float;
use crate::kernels::{vectorized, Exec};

/// Independent partial sums per row sum: eight lanes, so that LLVM vectorizes the sums without
/// reassociating them (it may not reorder a float reduction); the lanes are then added in a
/// fixed order, so the result never depends on the instruction set or the thread count.
const LANES: usize = 8;

/// What one element of a layer-norm pass costs, in cheap element-wise operations, for the
/// threading threshold: two reductions and the normalisation.
const ROW_COST: usize = 4;

/// `Σ f(x)` over a row, in [`LANES`] partial sums added in order, then the tail.
#[inline(always)]
fn lane_sum<T: Float>(row: &[T], f: impl Fn(T) -> T) -> T {
    lane_sum2(row, row, |x, _| f(x))
}

/// `Σ f(a, b)` over two rows of equal length, like [`lane_sum`].
#[inline(always)]
fn lane_sum2<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += f(x, y);
        }
    }
    let mut total = acc.iter().fold(T::ZERO, |s, &v| s + v);
    for (&x, &y) in ta.iter().zip(tb) {
        total += f(x, y);
    }
    total
}

/// A row's mean and `1/√(var + eps)`, the variance biased (divided by the row's length) as in
/// PyTorch, computed in two passes for accuracy.
#[inline(always)]
fn row_stats<T: Float>(row: &[T], eps: T) -> (T, T) {
    let n = T::from_usize(row.len());
    let mean = lane_sum(row, |x| x) / n;
    let var = lane_sum(row, |x| (x - mean) * (x - mean)) / n;
    (mean, T::ONE / (var + eps).sqrt())
}

fn check(what: &str, rows: usize, width: usize, lens: &[usize], params: &[usize]) {
    for &len in lens {
        assert_eq!(
            Some(len),
            rows.checked_mul(width),
            "{what}: not {rows}x{width}"
        );
    }
    for &len in params {
        assert_eq!(len, width, "{what}: a parameter is not {width} long");
    }
}

/// `y = γ·(x − mean)/√(var + eps) + β` for each of `rows` rows of `width` values (β zero when
/// absent).
pub fn layer_norm<T: Float>(
    exec: &Exec,
    rows: usize,
    width: usize,
    eps: f64,
    x: &[T],
    gamma: &[T],
    beta: Option<&[T]>,
    y: &mut [T],
) {
    let beta_len = beta.map_or(width, <[T]>::len);
    check(
        "layer_norm",
        rows,
        width,
        &[x.len(), y.len()],
        &[gamma.len(), beta_len],
    );
    if width == 0 {
        return;
    }
    let eps = T::from_f64(eps);
    let operands = (RowsRef(x, width), RowsMut::new(y, width));
    exec.split_row_pass(rows, width, ROW_COST, operands, |(x, y)| {
        vectorized!(forward_body(
            width: usize,
            eps: T,
            x: &[T],
            gamma: &[T],
            beta: Option<&[T]>,
            y: &mut [T],
        ))
    });
}

#[inline(always)]
fn forward_body<T: Float>(
    width: usize,
    eps: T,
    x: &[T],
    gamma: &[T],
    beta: Option<&[T]>,
    y: &mut [T],
) {
    for (x, y) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
        let (mean, inv_std) = row_stats(x, eps);
        for ((y, &x), &g) in y.iter_mut().zip(x).zip(gamma) {
            *y = (x - mean) * inv_std * g;
        }
        if let Some(beta) = beta {
            for (y, &b) in y.iter_mut().zip(beta) {
                *y += b;
            }
        }
    }
}

/// The input gradient of [`layer_norm`]: with `ĝ = g ⊙ γ` and `x̂` the normalised row,
/// `gx = (ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))/√(var + eps)`, which includes the paths through the
/// row's mean and variance.
pub fn layer_norm_backward<T: Float>(
    exec: &Exec,
    rows: usize,
    width: usize,
    eps: f64,
    g: &[T],
    x: &[T],
    gamma: &[T],
    gx: &mut [T],
) {
    let lens = [g.len(), x.len(), gx.len()];
    check("layer_norm_backward", rows, width, &lens, &[gamma.len()]);
    if width == 0 {
        return;
    }
    let eps = T::from_f64(eps);
    let operands = (
        RowsRef(g, width),
        RowsRef(x, width),
        RowsMut::new(gx, width),
    );
    exec.split_row_pass(rows, width, 2 * ROW_COST, operands, |(g, x, gx)| {
        vectorized!(backward_body(
            width: usize,
            eps: T,
            g: &[T],
            x: &[T],
            gamma: &[T],
            gx: &mut [T],
        ))
    });
}

#[inline(always)]
fn backward_body<T: Float>(width: usize, eps: T, g: &[T], x: &[T], gamma: &[T], gx: &mut [T]) {
    let n = T::from_usize(width);
    let rows = g.chunks_exact(width).zip(x.chunks_exact(width));
    for ((g, x), gx) in rows.zip(gx.chunks_exact_mut(width)) {
        let (mean, inv_std) = row_stats(x, eps);
        // gx first holds ĝ, so that both sums read it contiguously.
        for ((o, &g), &w) in gx.iter_mut().zip(g).zip(gamma) {
            *o = g * w;
        }
        let mean_g = lane_sum(gx, |v| v) / n;
        let mean_gx = lane_sum2(gx, x, |v, x| v * (x - mean)) * inv_std / n;
        for (o, &x) in gx.iter_mut().zip(x) {
            let xhat = (x - mean) * inv_std;
            *o = (*o - mean_g - xhat * mean_gx) * inv_std;
        }
    }
}

/// `gg[j] = Σ over rows of g[r, j]·x̂[r, j]`, the gradient of γ, overwriting `gg`.
pub fn layer_norm_scale_grad<T: Float>(
    exec: &Exec,
    rows: usize,
    width: usize,
    eps: f64,
    g: &[T],
    x: &[T],
    gg: &mut [T],
) {
    check(
        "layer_norm_scale_grad",
        rows,
        width,
        &[g.len(), x.len()],
        &[gg.len()],
    );
    gg.fill(T::ZERO);
    if width == 0 {
        return;
    }
    let eps = T::from_f64(eps);
    // Each task sums a range of 16 or more columns (a cache line of f32 sums) over every row in
    // order, computing each row's statistics itself.
    let tasks = exec.tasks_for(width, rows * width * ROW_COST, MIN_TASK_ELEMS);
    exec.split_rows(width, 16, tasks, (RowsMut::new(gg, 1),), |cols, (gg,)| {
        for (g, x) in g.chunks_exact(width).zip(x.chunks_exact(width)) {
            let (mean, inv_std) = row_stats(x, eps);
            let (g, x) = (&g[cols.clone()], &x[cols.clone()]);
            for ((o, &g), &x) in gg.iter_mut().zip(g).zip(x) {
                *o += g * (x - mean) * inv_std;
            }
        }
    });
}
