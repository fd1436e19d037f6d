//! Cross-entropy against class labels (`u32`, one per sample) over rows of `n` classes, on
//! probabilities, on logits and fused with a softmax, and the negative log-likelihood of
//! log-probabilities.
//!
//! A label `l` stands for the one-hot target, smoothed to `t'_c = (1 − ε)·[c = l] + ε/n`, so with
//! smoothing every class's term enters the loss; without it only the labelled class's does.
//!
//! `ignore` is PyTorch's `ignore_index`: a sample whose label equals it (padding, say) adds
//! nothing to the loss and gets a zero gradient, smoothing or not. A mean over the other
//! samples passes `weight / kept_labels(..)` as the scale.

use super::{
    assert_labels, clamp_log, fused_grad, logits_grad, probability_grad, rows, rows_mut,
    scaled_sum, Smoothing,
};
use crate::float::Float;
use crate::kernels::softmax::logsumexp;
use crate::kernels::Exec;

/// `scale · Σ_b Σ_c −t'_c · max(ln p_bc, −100)` for probabilities `p` (`batch × n`); without
/// smoothing, `scale · Σ_b −max(ln p[b, label_b], −100)`.
pub fn sparse_cross_entropy<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    smoothing: T,
    scale: T,
) -> T {
    let what = "sparse_cross_entropy";
    assert_labels(what, batch, n, &[p.len()], labels, ignore);
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    let log = |p: T| clamp_log(p.ln()).to_f64();
    scaled_sum(
        scale,
        rows(n, p).zip(labels).map(|(row, &l)| {
            if ignore == Some(l) {
                return 0.0;
            }
            // Σ_c t'_c·log p_c = keep·log p_l + add·Σ_c log p_c.
            let mut term = sm.keep.to_f64() * log(row[l as usize]);
            if !sm.is_none() {
                term += sm.add.to_f64() * row.iter().map(|&p| log(p)).sum::<f64>();
            }
            -term
        }),
    )
}

/// Gradient of [`sparse_cross_entropy`] with respect to `p`: `g = −scale · t'_c / max(p_c, tiny)`
/// (`tiny` the smallest positive normal value); without smoothing that is 0 except at each label.
pub fn sparse_cross_entropy_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "sparse_cross_entropy_backward";
    assert_labels(what, batch, n, &[p.len(), g.len()], labels, ignore);
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return;
    }
    if sm.is_none() {
        // Only the labelled class has a target, so the other classes' gradients are exactly 0
        // whatever their probabilities.
        g.fill(T::ZERO);
        for (b, &l) in labels.iter().enumerate() {
            if ignore != Some(l) {
                let i = b * n + l as usize;
                g[i] = -scale / p[i].max(T::MIN_POSITIVE);
            }
        }
        return;
    }
    for ((p, g), &l) in rows(n, p).zip(rows_mut(n, g)).zip(labels) {
        probability_grad(sm, scale, l, p, g);
    }
    zero_ignored(n, labels, ignore, g);
}

/// Cross-entropy from logits `z` against class labels (PyTorch's `CrossEntropyLoss` with class
/// indices): `scale · Σ_b Σ_c t'_c·(logsumexp(z_b) − z_bc)`, which, since `Σ_c t'_c = 1`, is
/// `scale · Σ_b (logsumexp(z_b) − (1 − ε)·z[b, label_b] − (ε/n)·Σ_c z_bc)`.
pub fn sparse_cross_entropy_with_logits<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    z: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    smoothing: T,
    scale: T,
) -> T {
    let what = "sparse_cross_entropy_with_logits";
    assert_labels(what, batch, n, &[z.len()], labels, ignore);
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    scaled_sum(
        scale,
        rows(n, z).zip(labels).map(|(row, &l)| {
            if ignore == Some(l) {
                return 0.0;
            }
            let lse = logsumexp(row);
            // Centring on lse keeps each difference small, so the f64 sum loses nothing.
            let mut term = sm.keep.to_f64() * (lse - row[l as usize]).to_f64();
            if !sm.is_none() {
                let all: f64 = row.iter().map(|&z| (lse - z).to_f64()).sum();
                term += sm.add.to_f64() * all;
            }
            term
        }),
    )
}

/// Gradient of [`sparse_cross_entropy_with_logits`] with respect to the logits:
/// `g = scale · (softmax(Exec::serial(), z) − t')`. The softmax is written into `g` first, so nothing is
/// allocated.
pub fn sparse_cross_entropy_with_logits_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    z: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "sparse_cross_entropy_with_logits_backward";
    assert_labels(what, batch, n, &[z.len(), g.len()], labels, ignore);
    let sm = Smoothing::new(what, smoothing, n);
    logits_grad(n, sm, scale, z, labels.iter().copied(), g);
    zero_ignored(n, labels, ignore, g);
}

/// The fused softmax + sparse cross-entropy gradient with respect to the logits, given
/// `p = softmax(Exec::serial(), z)`: `g = scale · (p − t')`. It equals
/// [`sparse_cross_entropy_with_logits_backward`] without recomputing the softmax.
pub fn softmax_sparse_cross_entropy_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "softmax_sparse_cross_entropy_backward";
    assert_labels(what, batch, n, &[p.len(), g.len()], labels, ignore);
    let sm = Smoothing::new(what, smoothing, n);
    g.copy_from_slice(p);
    fused_grad(n, sm, scale, labels.iter().copied(), g);
    zero_ignored(n, labels, ignore, g);
}

/// Negative log-likelihood of log-probabilities `logp` (`batch × n`), PyTorch's `NLLLoss`:
/// `scale · Σ_b −logp[b, label_b]`.
pub fn nll<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    logp: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    scale: T,
) -> T {
    assert_labels("nll", batch, n, &[logp.len()], labels, ignore);
    scaled_sum(
        scale,
        labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| ignore != Some(l))
            .map(|(b, &l)| -logp[b * n + l as usize].to_f64()),
    )
}

/// Gradient of [`nll`] with respect to `logp`: `−scale` at each label, 0 elsewhere.
pub fn nll_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    logp: &[T],
    labels: &[u32],
    ignore: Option<u32>,
    scale: T,
    g: &mut [T],
) {
    assert_labels(
        "nll_backward",
        batch,
        n,
        &[logp.len(), g.len()],
        labels,
        ignore,
    );
    g.fill(T::ZERO);
    for (b, &l) in labels.iter().enumerate() {
        if ignore != Some(l) {
            g[b * n + l as usize] = -scale;
        }
    }
}

/// How many of `labels` are not `ignore`: the count a mean over the kept samples divides by.
pub fn kept_labels(labels: &[u32], ignore: Option<u32>) -> usize {
    match ignore {
        Some(i) => labels.iter().filter(|&&l| l != i).count(),
        None => labels.len(),
    }
}

/// Zeroes the gradient rows of the ignored samples, which the shared gradient helpers computed
/// like any other (an ignored label at or past `n` matches no class there).
fn zero_ignored<T: Float>(n: usize, labels: &[u32], ignore: Option<u32>, g: &mut [T]) {
    if let Some(i) = ignore {
        for (g, _) in rows_mut(n, g).zip(labels).filter(|&(_, &l)| l == i) {
            g.fill(T::ZERO);
        }
    }
}
