//! Binary cross-entropy on probabilities and on logits, with Keras's binary label smoothing
//! `t' = (1 − ε)·t + ε/2`.

use super::{assert_same_len, clamp_log, scaled_sum, Smoothing};
use crate::float::Float;
use crate::kernels::activation::sigmoid;
use crate::kernels::Exec;

/// Binary targets are smoothed toward 1/2: two "classes".
fn smoothing<T: Float>(what: &str, smoothing: T) -> Smoothing<T> {
    Smoothing::new(what, smoothing, 2)
}

/// PyTorch's `BCELoss` on probabilities `p`:
/// `scale · Σ −(t'·max(ln p, −100) + (1 − t')·max(ln(1 − p), −100))`.
pub fn binary_cross_entropy<T: Float>(_: &Exec, p: &[T], t: &[T], smoothing: T, scale: T) -> T {
    let what = "binary_cross_entropy";
    assert_same_len(what, &[p.len(), t.len()]);
    let sm = self::smoothing(what, smoothing);
    scaled_sum(
        scale,
        p.iter().zip(t).map(|(&p, &t)| {
            // PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss, and uses
            // ln_1p(-p) for ln(1 - p) to keep precision when p is tiny.
            let t = sm.apply(t);
            let log_p = clamp_log(p.ln());
            let log_q = clamp_log((-p).ln_1p());
            -(t * log_p + (T::ONE - t) * log_q).to_f64()
        }),
    )
}

/// PyTorch's gradient of [`binary_cross_entropy`]: `g = scale · (p − t') / max(p(1 − p), 1e-12)`.
pub fn binary_cross_entropy_backward<T: Float>(
    _: &Exec,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "binary_cross_entropy_backward";
    assert_same_len(what, &[p.len(), t.len(), g.len()]);
    let sm = self::smoothing(what, smoothing);
    let eps = T::from_f64(1e-12);
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        *g = scale * (p - sm.apply(t)) / (p * (T::ONE - p)).max(eps);
    }
}

/// Binary cross-entropy from logits `z` (PyTorch's `BCEWithLogitsLoss`), computed stably as
/// `scale · Σ (max(z, 0) − z·t' + ln(1 + e^−|z|))`.
pub fn binary_cross_entropy_with_logits<T: Float>(
    _: &Exec,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
) -> T {
    let what = "binary_cross_entropy_with_logits";
    assert_same_len(what, &[z.len(), t.len()]);
    let sm = self::smoothing(what, smoothing);
    scaled_sum(
        scale,
        z.iter()
            .zip(t)
            .map(|(&z, &t)| (z.max(T::ZERO) - z * sm.apply(t) + (-z.abs()).exp().ln_1p()).to_f64()),
    )
}

/// Gradient of [`binary_cross_entropy_with_logits`] with respect to the logits:
/// `g = scale · (sigmoid(z) − t')`.
pub fn binary_cross_entropy_with_logits_backward<T: Float>(
    _: &Exec,
    z: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "binary_cross_entropy_with_logits_backward";
    assert_same_len(what, &[z.len(), t.len(), g.len()]);
    let sm = self::smoothing(what, smoothing);
    fused_grad(sm, scale, z, t, g, sigmoid);
}

/// The same gradient fused with a sigmoid the model has already applied: given
/// `p = sigmoid(z)`, `g = scale · (p − t')` with respect to `z`.
pub fn sigmoid_binary_cross_entropy_backward<T: Float>(
    _: &Exec,
    p: &[T],
    t: &[T],
    smoothing: T,
    scale: T,
    g: &mut [T],
) {
    let what = "sigmoid_binary_cross_entropy_backward";
    assert_same_len(what, &[p.len(), t.len(), g.len()]);
    let sm = self::smoothing(what, smoothing);
    fused_grad(sm, scale, p, t, g, |p| p);
}

/// The gradient with respect to the logits of a sigmoid followed by binary cross-entropy,
/// `g = scale · (p − t')`, where `to_p` gives `p` from an element of `x`: the sigmoid when `x`
/// holds logits, the identity when it holds `p` already.
#[inline]
fn fused_grad<T: Float>(
    sm: Smoothing<T>,
    scale: T,
    x: &[T],
    t: &[T],
    g: &mut [T],
    to_p: impl Fn(T) -> T,
) {
    for ((g, &x), &t) in g.iter_mut().zip(x).zip(t) {
        *g = scale * (to_p(x) - sm.apply(t));
    }
}
