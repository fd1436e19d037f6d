//! Categorical cross-entropy against float (one-hot or soft) targets over rows of `n` classes,
//! on probabilities, on logits, and fused with a softmax the model has already applied.

use super::{assert_rows, scaled_sum, Smoothing, LOG_FLOOR};
use crate::float::Float;
use crate::kernels::softmax::{logsumexp, softmax_row};

/// `scale · Σ_b Σ_c −t'_c · max(ln p_c, −100)` for probabilities `p` and targets `t`, both
/// `batch × n`.
pub fn categorical_cross_entropy<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
) -> T {
    assert_rows("categorical_cross_entropy", batch, n, &[p.len(), t.len()]);
    let sm = Smoothing::new("categorical_cross_entropy", smoothing, n);
    let floor = T::from_f64(LOG_FLOOR);
    scaled_sum(
        scale,
        p.iter()
            .zip(t)
            .map(|(&p, &t)| -(sm.apply(t) * p.ln().max(floor)).to_f64()),
    )
}

/// Gradient of [`categorical_cross_entropy`] with respect to `p`:
/// `g = −scale · t'_c / max(p_c, tiny)`, where `tiny`, the smallest positive normal value, keeps
/// the result finite when a probability underflows to 0.
pub fn categorical_cross_entropy_backward<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    assert_rows(
        "categorical_cross_entropy_backward",
        batch,
        n,
        &[p.len(), t.len(), g.len()],
    );
    let sm = Smoothing::new("categorical_cross_entropy_backward", smoothing, n);
    let neg_scale = -scale;
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        *g = neg_scale * sm.apply(t) / p.max(T::MIN_POSITIVE);
    }
}

/// Cross-entropy from logits `z` against targets `t` (PyTorch's `CrossEntropyLoss` with
/// probability targets): `scale · Σ_b Σ_c t'_c · (logsumexp(z_b) − z_bc)`, computed stably.
pub fn categorical_cross_entropy_with_logits<T: Float>(
    batch: usize,
    n: usize,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
) -> T {
    assert_rows(
        "categorical_cross_entropy_with_logits",
        batch,
        n,
        &[z.len(), t.len()],
    );
    let sm = Smoothing::new("categorical_cross_entropy_with_logits", smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    scaled_sum(
        scale,
        z.chunks_exact(n).zip(t.chunks_exact(n)).flat_map(|(z, t)| {
            let (lse, _) = logsumexp(z);
            z.iter()
                .zip(t)
                .map(move |(&z, &t)| (sm.apply(t) * (lse - z)).to_f64())
        }),
    )
}

/// Gradient of [`categorical_cross_entropy_with_logits`] with respect to the logits:
/// `g = scale · (softmax(z)·Σ_c t'_c − t')`. The softmax is written into `g` first, so nothing is
/// allocated.
pub fn categorical_cross_entropy_with_logits_backward<T: Float>(
    batch: usize,
    n: usize,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    assert_rows(
        "categorical_cross_entropy_with_logits_backward",
        batch,
        n,
        &[z.len(), t.len(), g.len()],
    );
    let sm = Smoothing::new(
        "categorical_cross_entropy_with_logits_backward",
        smoothing,
        n,
    );
    if n == 0 {
        return;
    }
    for ((z, t), g) in z
        .chunks_exact(n)
        .zip(t.chunks_exact(n))
        .zip(g.chunks_exact_mut(n))
    {
        softmax_row(z, g);
        fused_row(sm, scale, t, g);
    }
}

/// The fused softmax + categorical cross-entropy gradient with respect to the logits, given
/// `p = softmax(z)`: `g = scale · (p·Σ_c t'_c − t')`. It equals
/// [`categorical_cross_entropy_with_logits_backward`] without recomputing the softmax.
pub fn softmax_categorical_cross_entropy_backward<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    assert_rows(
        "softmax_categorical_cross_entropy_backward",
        batch,
        n,
        &[p.len(), t.len(), g.len()],
    );
    let sm = Smoothing::new("softmax_categorical_cross_entropy_backward", smoothing, n);
    if n == 0 {
        return;
    }
    g.copy_from_slice(p);
    for (t, g) in t.chunks_exact(n).zip(g.chunks_exact_mut(n)) {
        fused_row(sm, scale, t, g);
    }
}

/// One row of the fused gradient: with the softmax `p` already in `g`,
/// `g = scale · (p·Σ t' − t')`. A target row need not sum to 1, hence the factor `Σ t'`.
#[inline]
fn fused_row<T: Float>(sm: Smoothing<T>, scale: T, t: &[T], g: &mut [T]) {
    let total: T = t.iter().map(|&t| sm.apply(t)).sum();
    for (g, &t) in g.iter_mut().zip(t) {
        *g = scale * (*g * total - sm.apply(t));
    }
}
