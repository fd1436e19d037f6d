//! Batch normalisation over channels. A value is `[batch, channels, spread]` in row-major order
//! (`spread` = 1 for `[B, C]` features; the product of the axes after the channel axis
//! otherwise), and each channel is normalised over its `batch · spread` values, as PyTorch's
//! `BatchNorm1d`/`BatchNorm2d` do. The statistics travel as one `[3, channels]` block: the mean,
//! `1/√(var + eps)` and the variance.
//!
//! Every per-channel sum (the statistics, the gradient's two sums, the parameter gradients)
//! walks one channel at a time, its samples in order, so the threads split the channels and
//! each sum is computed by the same operations on any number of threads. Normalising splits the
//! rows of (sample, channel) planes. The backward kernel needs two sums per channel before it
//! can write a channel's gradient, and has no scratch space, so it reads the channel twice.

use super::split::{ChannelsMut, RowsMut, MIN_TASK_ELEMS};
use crate::float::Float;
use crate::kernels::{vectorized, Exec};
use crate::model::Mode;

/// How many tasks a per-channel kernel over `len` values, each costing `cost` cheap
/// operations, should use.
fn channel_tasks(exec: &Exec, channels: usize, len: usize, cost: usize) -> usize {
    exec.tasks_for(channels, len * cost, MIN_TASK_ELEMS)
}

/// The sum, by `f`, of channel `c`'s values over the samples in order, each sample's row
/// folded from zero first.
#[inline(always)]
fn channel_fold<T: Float>(
    len: usize,
    stride: usize,
    spread: usize,
    c: usize,
    mut f: impl FnMut(usize) -> T,
) -> T {
    let mut total = T::ZERO;
    let mut start = c * spread;
    while start < len {
        total += f(start);
        start += stride;
    }
    total
}

/// The statistics of each channel of `x` into `stats` (`[3, channels]`). In training they are
/// the batch's: its mean and biased variance (divided by n = `batch · spread`), computed in two
/// passes for accuracy. In inference they are `running_mean` and `running_var`. The middle row
/// is `1/√(var + eps)` either way.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_stats<T: Float>(
    exec: &Exec,
    mode: Mode,
    batch: usize,
    channels: usize,
    spread: usize,
    eps: f64,
    x: &[T],
    running_mean: &[T],
    running_var: &[T],
    stats: &mut [T],
) {
    assert_eq!(x.len(), batch * channels * spread, "batch_norm_stats: x");
    assert_eq!(stats.len(), 3 * channels, "batch_norm_stats: stats");
    assert_eq!(
        running_mean.len(),
        channels,
        "batch_norm_stats: running_mean"
    );
    assert_eq!(running_var.len(), channels, "batch_norm_stats: running_var");
    let (mean, rest) = stats.split_at_mut(channels);
    let (inv_std, var) = rest.split_at_mut(channels);
    match mode {
        Mode::Infer => {
            mean.copy_from_slice(running_mean);
            var.copy_from_slice(running_var);
        }
        Mode::Train => {
            assert!(batch * spread > 0, "batch_norm_stats: no values");
            let n = T::from_usize(batch * spread);
            let stride = channels * spread;
            let tasks = channel_tasks(exec, channels, x.len(), 2);
            let operands = (RowsMut::new(mean, 1), RowsMut::new(var, 1));
            exec.split_rows(channels, 1, tasks, operands, |range, (mean, var)| {
                for ((c, m), v) in range.zip(mean).zip(var) {
                    let row = |start: usize| &x[start..start + spread];
                    *m = channel_fold(x.len(), stride, spread, c, |r| {
                        row(r).iter().fold(T::ZERO, |acc, &e| acc + e)
                    }) / n;
                    let mu = *m;
                    *v = channel_fold(x.len(), stride, spread, c, |r| {
                        row(r)
                            .iter()
                            .fold(T::ZERO, |acc, &e| acc + (e - mu) * (e - mu))
                    }) / n;
                }
            });
        }
    }
    let eps = T::from_f64(eps);
    for (s, &v) in inv_std.iter_mut().zip(var.iter()) {
        *s = T::ONE / (v + eps).sqrt();
    }
}

/// `y = γ·(x − mean)·inv_std + β` per channel.
pub fn batch_norm<T: Float>(
    exec: &Exec,
    channels: usize,
    spread: usize,
    x: &[T],
    stats: &[T],
    gamma: &[T],
    beta: &[T],
    y: &mut [T],
) {
    assert_eq!(x.len(), y.len(), "batch_norm: x and y");
    assert_eq!(gamma.len(), channels, "batch_norm: gamma");
    assert_eq!(beta.len(), channels, "batch_norm: beta");
    assert_eq!(x.len() % (channels * spread).max(1), 0, "batch_norm: x");
    let (mean, inv_std) = moments("batch_norm", stats, channels);
    // One row per (sample, channel) plane.
    let (rows, spread) = (x.len() / spread.max(1), spread.max(1));
    let tasks = exec.tasks_for(rows, x.len(), MIN_TASK_ELEMS);
    let operands = (super::split::RowsRef(x, spread), RowsMut::new(y, spread));
    exec.split_rows(rows, 1, tasks, operands, |range, (xs, ys)| {
        let planes = xs.chunks_exact(spread).zip(ys.chunks_exact_mut(spread));
        for (row, (xr, yr)) in range.zip(planes) {
            // y = x·a + b with a = γ·inv_std and b = β − mean·a, one multiply-add per value.
            let c = row % channels;
            let a = gamma[c] * inv_std[c];
            let b = beta[c] - mean[c] * a;
            scale_shift(a, b, xr, yr);
        }
    });
}

/// `y = x·a + b` with one fused multiply-add per value. Dispatched so that the multiply-add
/// is an FMA instruction where the CPU has one: outside the dispatch it is a call to the
/// software `fmaf`, which took 3% of a training step of the all-convolutional MNIST example.
fn scale_shift<T: Float>(a: T, b: T, x: &[T], y: &mut [T]) {
    vectorized!(scale_shift_body(a: T, b: T, x: &[T], y: &mut [T]));
}

#[inline(always)]
fn scale_shift_body<T: Float>(a: T, b: T, x: &[T], y: &mut [T]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv = xv.mul_add(a, b);
    }
}

/// The gradient with respect to `x` of batch norm in training, through the batch statistics:
/// `dx = γ·inv_std·(g − mean(g) − x̂·mean(g ⊙ x̂))` per channel, with `x̂ = (x − mean)·inv_std`
/// and the means over the channel's n = `batch · spread` values.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    channels: usize,
    spread: usize,
    g: &[T],
    x: &[T],
    stats: &[T],
    gamma: &[T],
    dx: &mut [T],
) {
    let len = batch * channels * spread;
    assert!(
        g.len() == len && x.len() == len && dx.len() == len,
        "batch_norm_backward: lengths"
    );
    assert_eq!(stats.len(), 3 * channels, "batch_norm_backward: stats");
    assert_eq!(gamma.len(), channels, "batch_norm_backward: gamma");
    let n = T::from_usize(batch * spread);
    let stride = channels * spread;
    let tasks = channel_tasks(exec, channels, len, 3);
    let operands = ChannelsMut::new(dx, batch, spread);
    exec.split_rows(channels, 1, tasks, operands, |range, mut dx| {
        for c in range {
            let (mean, inv_std) = (stats[c], stats[channels + c]);
            let rows = (0..batch).map(|b| b * stride + c * spread..b * stride + (c + 1) * spread);
            let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
            for r in rows.clone() {
                for (&gv, &xv) in g[r.clone()].iter().zip(&x[r]) {
                    sum_g += gv;
                    sum_gx += gv * (xv - mean) * inv_std;
                }
            }
            let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
            let scale = gamma[c] * inv_std;
            for (b, r) in rows.enumerate() {
                let d = dx.row(b, c);
                for ((d, &gv), &xv) in d.iter_mut().zip(&g[r.clone()]).zip(&x[r]) {
                    let xhat = (xv - mean) * inv_std;
                    *d = scale * (gv - mean_g - xhat * mean_gx);
                }
            }
        }
    });
}

/// `dγ = Σ g ⊙ x̂` per channel.
pub fn batch_norm_scale_grad<T: Float>(
    exec: &Exec,
    channels: usize,
    spread: usize,
    g: &[T],
    x: &[T],
    stats: &[T],
    dgamma: &mut [T],
) {
    assert_eq!(g.len(), x.len(), "batch_norm_scale_grad: g and x");
    assert_eq!(dgamma.len(), channels, "batch_norm_scale_grad: dgamma");
    let (mean, inv_std) = moments("batch_norm_scale_grad", stats, channels);
    let stride = channels * spread;
    let tasks = channel_tasks(exec, channels, g.len(), 2);
    exec.split_rows(
        channels,
        1,
        tasks,
        RowsMut::new(dgamma, 1),
        |range, dgamma| {
            for (c, d) in range.zip(dgamma) {
                // Each sample's row is summed, then scaled, in sample order.
                *d = channel_fold(g.len(), stride, spread, c, |r| {
                    let s = g[r..r + spread]
                        .iter()
                        .zip(&x[r..r + spread])
                        .fold(T::ZERO, |acc, (&gv, &xv)| acc + gv * (xv - mean[c]));
                    s * inv_std[c]
                });
            }
        },
    );
}

/// `Σ g` per channel (`dβ`).
pub fn channel_sum<T: Float>(exec: &Exec, channels: usize, spread: usize, g: &[T], out: &mut [T]) {
    assert_eq!(out.len(), channels, "channel_sum: out");
    assert_eq!(g.len() % (channels * spread).max(1), 0, "channel_sum: g");
    let stride = channels * spread;
    let tasks = channel_tasks(exec, channels, g.len(), 1);
    exec.split_rows(channels, 1, tasks, RowsMut::new(out, 1), |range, out| {
        for (c, o) in range.zip(out) {
            *o = channel_fold(g.len(), stride, spread, c, |r| {
                g[r..r + spread].iter().fold(T::ZERO, |acc, &v| acc + v)
            });
        }
    });
}

/// The mean and `1/√(var + eps)` rows of a `[3, channels]` statistics block, checked.
fn moments<'a, T>(what: &str, stats: &'a [T], channels: usize) -> (&'a [T], &'a [T]) {
    assert_eq!(stats.len(), 3 * channels, "{what}: stats");
    (&stats[..channels], &stats[channels..2 * channels])
}

/// `running = (1 − momentum)·running + momentum·mean`, from the first row of `stats`.
pub fn running_mean<T: Float>(_: &Exec, momentum: f64, stats: &[T], running: &mut [T]) {
    let c = running.len();
    assert_eq!(stats.len(), 3 * c, "running_mean: stats");
    moving_average(momentum, T::ONE, &stats[..c], running);
}

/// `running = (1 − momentum)·running + momentum·var·n/(n − 1)`, from the biased variance in the
/// last row of `stats` over `n` values per channel: PyTorch keeps the unbiased variance.
/// `n` must be at least 2 (generated code checks the batch before training).
pub fn running_var<T: Float>(_: &Exec, momentum: f64, n: usize, stats: &[T], running: &mut [T]) {
    let c = running.len();
    assert_eq!(stats.len(), 3 * c, "running_var: stats");
    assert!(
        n >= 2,
        "running_var: {n} values per channel give no unbiased variance"
    );
    let correction = T::from_f64(n as f64 / (n as f64 - 1.0));
    moving_average(momentum, correction, &stats[2 * c..], running);
}

/// `running = (1 − momentum)·running + momentum·batch·factor`, element by element.
fn moving_average<T: Float>(momentum: f64, factor: T, batch: &[T], running: &mut [T]) {
    let (m, keep) = (T::from_f64(momentum), T::from_f64(1.0 - momentum));
    for (r, &b) in running.iter_mut().zip(batch) {
        *r = keep * *r + m * b * factor;
    }
}

/// The factor batch norm applies to channel `o` in inference, `γ[o]/√(var[o] + eps)`, computed
/// as `batch_norm_stats` and `batch_norm` compute it, so that a folded convolution rounds like
/// the unfolded one up to the order of its products.
fn folded_scale<T: Float>(eps: T, gamma: &[T], var: &[T], o: usize) -> T {
    gamma[o] * (T::ONE / (var[o] + eps).sqrt())
}

/// Batch norm in inference folded into the weight of the convolution before it: each output
/// channel's block of `w` (its first axis; `w.len() / channels` values) times
/// `γ/√(running_var + eps)`. Runs once per change of the parameters or the statistics, not per
/// call, so it stays on the calling thread.
pub fn fold_batch_norm_weight<T: Float>(
    _: &Exec,
    eps: f64,
    w: &[T],
    gamma: &[T],
    running_var: &[T],
    out: &mut [T],
) {
    let channels = gamma.len();
    assert_eq!(running_var.len(), channels, "fold_batch_norm_weight: var");
    assert_eq!(out.len(), w.len(), "fold_batch_norm_weight: out");
    assert!(
        channels > 0 && w.len().is_multiple_of(channels),
        "fold_batch_norm_weight: a weight of {} values for {channels} channels",
        w.len()
    );
    let eps = T::from_f64(eps);
    let per_channel = w.len() / channels;
    let rows = out
        .chunks_exact_mut(per_channel)
        .zip(w.chunks_exact(per_channel));
    for (o, (out, w)) in rows.enumerate() {
        let s = folded_scale(eps, gamma, running_var, o);
        for (y, &x) in out.iter_mut().zip(w) {
            *y = x * s;
        }
    }
}

/// The bias of a convolution with batch norm folded in: `(b − running_mean)·γ/√(running_var +
/// eps) + β` per output channel, `b` zero for a convolution without a bias.
#[allow(clippy::too_many_arguments)]
pub fn fold_batch_norm_bias<T: Float>(
    _: &Exec,
    eps: f64,
    gamma: &[T],
    beta: &[T],
    running_mean: &[T],
    running_var: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let channels = gamma.len();
    let lens = [beta.len(), running_mean.len(), running_var.len(), out.len()];
    assert!(
        lens.iter()
            .chain(bias.map(<[T]>::len).as_ref())
            .all(|&n| n == channels),
        "fold_batch_norm_bias: every operand needs {channels} values"
    );
    let eps = T::from_f64(eps);
    for (o, y) in out.iter_mut().enumerate() {
        let b = bias.map_or(T::ZERO, |b| b[o]);
        *y = (b - running_mean[o]) * folded_scale(eps, gamma, running_var, o) + beta[o];
    }
}
