//! Categorical cross-entropy against float (one-hot or soft) targets over rows of `n` classes,
//! on probabilities, on logits, and fused with a softmax the model has already applied.

use super::{
    assert_rows, clamp_log, fused_grad, logits_grad, probability_grad, rows, scaled_sum, Smoothing,
};
use crate::float::Float;
use crate::kernels::softmax::logsumexp;
use crate::kernels::Exec;

/// `scale · Σ_b Σ_c −t'_c · max(ln p_c, −100)` for probabilities `p` and targets `t`, both
/// `batch × n`.
pub fn categorical_cross_entropy<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
) -> T {
    let what = "categorical_cross_entropy";
    assert_rows(what, batch, n, &[p.len(), t.len()]);
    let sm = Smoothing::new(what, smoothing, n);
    scaled_sum(
        scale,
        p.iter()
            .zip(t)
            .map(|(&p, &t)| -(sm.apply(t) * clamp_log(p.ln())).to_f64()),
    )
}

/// Gradient of [`categorical_cross_entropy`] with respect to `p`:
/// `g = −scale · t'_c / max(p_c, tiny)`, where `tiny`, the smallest positive normal value, keeps
/// the result finite when a probability underflows to 0.
pub fn categorical_cross_entropy_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "categorical_cross_entropy_backward";
    assert_rows(what, batch, n, &[p.len(), t.len(), g.len()]);
    let sm = Smoothing::new(what, smoothing, n);
    // Float targets are smoothed one by one, so all the rows are taken as one.
    probability_grad(sm, scale, t, p, g);
}

/// Cross-entropy from logits `z` against targets `t` (PyTorch's `CrossEntropyLoss` with
/// probability targets): `scale · Σ_b Σ_c t'_c · (logsumexp(z_b) − z_bc)`, computed stably.
pub fn categorical_cross_entropy_with_logits<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
) -> T {
    let what = "categorical_cross_entropy_with_logits";
    assert_rows(what, batch, n, &[z.len(), t.len()]);
    let sm = Smoothing::new(what, smoothing, n);
    if n == 0 {
        return T::ZERO;
    }
    scaled_sum(
        scale,
        rows(n, z).zip(rows(n, t)).flat_map(|(z, t)| {
            let lse = logsumexp(z);
            z.iter()
                .zip(t)
                .map(move |(&z, &t)| (sm.apply(t) * (lse - z)).to_f64())
        }),
    )
}

/// Gradient of [`categorical_cross_entropy_with_logits`] with respect to the logits:
/// `g = scale · (softmax(Exec::serial(), z)·Σ_c t'_c − t')`. The softmax is written into `g` first, so nothing is
/// allocated.
pub fn categorical_cross_entropy_with_logits_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "categorical_cross_entropy_with_logits_backward";
    assert_rows(what, batch, n, &[z.len(), t.len(), g.len()]);
    let sm = Smoothing::new(what, smoothing, n);
    logits_grad(n, sm, scale, z, rows(n, t), g);
}

/// The fused softmax + categorical cross-entropy gradient with respect to the logits, given
/// `p = softmax(Exec::serial(), z)`: `g = scale · (p·Σ_c t'_c − t')`. It equals
/// [`categorical_cross_entropy_with_logits_backward`] without recomputing the softmax. A target
/// row need not sum to 1, hence the factor `Σ_c t'_c`.
pub fn softmax_categorical_cross_entropy_backward<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "softmax_categorical_cross_entropy_backward";
    assert_rows(what, batch, n, &[p.len(), t.len(), g.len()]);
    let sm = Smoothing::new(what, smoothing, n);
    g.copy_from_slice(p);
    fused_grad(n, sm, scale, rows(n, t), g);
}
