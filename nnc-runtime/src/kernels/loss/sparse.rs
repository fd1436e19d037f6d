//! Cross-entropy against class labels (`u32`, one per sample) over rows of `n` classes, on
//! probabilities, on logits and fused with a softmax, and the negative log-likelihood of
//! log-probabilities.
//!
//! A label `l` stands for the one-hot target, smoothed to `t'_c = (1 − ε)·[c = l] + ε/n`, so with
//! smoothing every class's term enters the loss; without it only the labelled class's does.

use super::{assert_labels, scaled_sum, Smoothing, LOG_FLOOR};
use crate::float::Float;
use crate::kernels::softmax::{logsumexp, softmax_row};

/// `scale · Σ_b Σ_c −t'_c · max(ln p_bc, −100)` for probabilities `p` (`batch × n`); without
/// smoothing, `scale · Σ_b −max(ln p[b, label_b], −100)`.
pub fn sparse_cross_entropy<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    smoothing: T,
    scale: T,
) -> T {
    assert_labels("sparse_cross_entropy", batch, n, p.len(), labels);
    let sm = Smoothing::new("sparse_cross_entropy", smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    let floor = T::from_f64(LOG_FLOOR);
    let log = |p: T| p.ln().max(floor).to_f64();
    scaled_sum(
        scale,
        p.chunks_exact(n).zip(labels).map(|(row, &l)| {
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
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    assert_labels("sparse_cross_entropy_backward", batch, n, p.len(), labels);
    assert_eq!(
        g.len(),
        p.len(),
        "sparse_cross_entropy_backward: g and p lengths differ"
    );
    let sm = Smoothing::new("sparse_cross_entropy_backward", smoothing, n);
    if n == 0 {
        return;
    }
    let neg_scale = -scale;
    if sm.is_none() {
        g.fill(T::ZERO);
        for (b, &l) in labels.iter().enumerate() {
            let i = b * n + l as usize;
            g[i] = neg_scale / p[i].max(T::MIN_POSITIVE);
        }
        return;
    }
    for ((p, g), &l) in p.chunks_exact(n).zip(g.chunks_exact_mut(n)).zip(labels) {
        for (c, (g, &p)) in g.iter_mut().zip(p).enumerate() {
            *g = neg_scale * sm.label(c, l) / p.max(T::MIN_POSITIVE);
        }
    }
}

/// Cross-entropy from logits `z` against class labels (PyTorch's `CrossEntropyLoss` with class
/// indices): `scale · Σ_b Σ_c t'_c·(logsumexp(z_b) − z_bc)`, which, since `Σ_c t'_c = 1`, is
/// `scale · Σ_b (logsumexp(z_b) − (1 − ε)·z[b, label_b] − (ε/n)·Σ_c z_bc)`.
pub fn sparse_cross_entropy_with_logits<T: Float>(
    batch: usize,
    n: usize,
    z: &[T],
    labels: &[u32],
    smoothing: T,
    scale: T,
) -> T {
    assert_labels(
        "sparse_cross_entropy_with_logits",
        batch,
        n,
        z.len(),
        labels,
    );
    let sm = Smoothing::new("sparse_cross_entropy_with_logits", smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    scaled_sum(
        scale,
        z.chunks_exact(n).zip(labels).map(|(row, &l)| {
            let (lse, _) = logsumexp(row);
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
/// `g = scale · (softmax(z) − t')`. The softmax is written into `g` first, so nothing is
/// allocated.
pub fn sparse_cross_entropy_with_logits_backward<T: Float>(
    batch: usize,
    n: usize,
    z: &[T],
    labels: &[u32],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "sparse_cross_entropy_with_logits_backward";
    assert_labels(what, batch, n, z.len(), labels);
    assert_eq!(g.len(), z.len(), "{what}: g and z lengths differ");
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return;
    }
    for ((z, g), &l) in z.chunks_exact(n).zip(g.chunks_exact_mut(n)).zip(labels) {
        softmax_row(z, g);
        fused_row(sm, scale, l, g);
    }
}

/// The fused softmax + sparse cross-entropy gradient with respect to the logits, given
/// `p = softmax(z)`: `g = scale · (p − t')`. It equals
/// [`sparse_cross_entropy_with_logits_backward`] without recomputing the softmax.
pub fn softmax_sparse_cross_entropy_backward<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "softmax_sparse_cross_entropy_backward";
    assert_labels(what, batch, n, p.len(), labels);
    assert_eq!(g.len(), p.len(), "{what}: g and p lengths differ");
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return;
    }
    g.copy_from_slice(p);
    for (g, &l) in g.chunks_exact_mut(n).zip(labels) {
        fused_row(sm, scale, l, g);
    }
}

/// One row of the fused gradient: with the softmax `p` already in `g`, `g = scale · (p − t')`.
#[inline]
fn fused_row<T: Float>(sm: Smoothing<T>, scale: T, label: u32, g: &mut [T]) {
    for (c, g) in g.iter_mut().enumerate() {
        *g = scale * (*g - sm.label(c, label));
    }
}

/// Negative log-likelihood of log-probabilities `logp` (`batch × n`), PyTorch's `NLLLoss`:
/// `scale · Σ_b −logp[b, label_b]`.
pub fn nll<T: Float>(batch: usize, n: usize, logp: &[T], labels: &[u32], scale: T) -> T {
    assert_labels("nll", batch, n, logp.len(), labels);
    scaled_sum(
        scale,
        labels
            .iter()
            .enumerate()
            .map(|(b, &l)| -logp[b * n + l as usize].to_f64()),
    )
}

/// Gradient of [`nll`] with respect to `logp`: `−scale` at each label, 0 elsewhere.
pub fn nll_backward<T: Float>(
    batch: usize,
    n: usize,
    logp: &[T],
    labels: &[u32],
    scale: T,
    g: &mut [T],
) {
    assert_labels("nll_backward", batch, n, logp.len(), labels);
    assert_eq!(
        g.len(),
        logp.len(),
        "nll_backward: g and logp lengths differ"
    );
    g.fill(T::ZERO);
    for (b, &l) in labels.iter().enumerate() {
        g[b * n + l as usize] = -scale;
    }
}
