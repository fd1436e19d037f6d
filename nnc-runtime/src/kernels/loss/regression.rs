//! Regression losses: squared error, absolute error and PyTorch's Huber loss.

use super::{assert_same_len, scaled_sum};
use crate::float::Float;
use crate::kernels::Exec;

/// `scale · Σ (p − t)²`.
pub fn mse<T: Float>(_: &Exec, p: &[T], t: &[T], scale: T) -> T {
    assert_same_len("mse", &[p.len(), t.len()]);
    scaled_sum(
        scale,
        p.iter().zip(t).map(|(&p, &t)| (p - t).to_f64().powi(2)),
    )
}

/// Gradient of [`mse`]: `g = 2·scale·(p − t)`.
pub fn mse_backward<T: Float>(_: &Exec, p: &[T], t: &[T], scale: T, g: &mut [T]) {
    assert_same_len("mse_backward", &[p.len(), t.len(), g.len()]);
    let c = scale + scale;
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        *g = c * (p - t);
    }
}

/// `scale · Σ |p − t|` (PyTorch's `L1Loss`).
pub fn mae<T: Float>(_: &Exec, p: &[T], t: &[T], scale: T) -> T {
    assert_same_len("mae", &[p.len(), t.len()]);
    scaled_sum(
        scale,
        p.iter().zip(t).map(|(&p, &t)| (p - t).abs().to_f64()),
    )
}

/// Gradient of [`mae`]: `g = scale · sign(p − t)`, 0 where `p = t` as in PyTorch.
pub fn mae_backward<T: Float>(_: &Exec, p: &[T], t: &[T], scale: T, g: &mut [T]) {
    assert_same_len("mae_backward", &[p.len(), t.len(), g.len()]);
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        let d = p - t;
        *g = if d > T::ZERO {
            scale
        } else if d < T::ZERO {
            -scale
        } else {
            // d is 0 or NaN here: 0 gives a zero gradient and NaN is passed on.
            d * scale
        };
    }
}

/// PyTorch's `HuberLoss`: `scale · Σ h(p − t)` with `h(d) = 0.5·d²` for `|d| < delta` and
/// `delta·(|d| − 0.5·delta)` otherwise.
pub fn huber<T: Float>(_: &Exec, p: &[T], t: &[T], delta: T, scale: T) -> T {
    assert_same_len("huber", &[p.len(), t.len()]);
    let delta = delta.to_f64();
    scaled_sum(
        scale,
        p.iter().zip(t).map(|(&p, &t)| {
            let d = (p - t).to_f64().abs();
            if d < delta {
                0.5 * d * d
            } else {
                delta * (d - 0.5 * delta)
            }
        }),
    )
}

/// Gradient of [`huber`]: `g = scale · clamp(p − t, −delta, delta)`.
pub fn huber_backward<T: Float>(_: &Exec, p: &[T], t: &[T], delta: T, scale: T, g: &mut [T]) {
    assert_same_len("huber_backward", &[p.len(), t.len(), g.len()]);
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        let d = p - t;
        // Written as selects rather than `max`/`min` so that a NaN difference stays NaN.
        let clamped = if d < -delta {
            -delta
        } else if d > delta {
            delta
        } else {
            d
        };
        *g = scale * clamped;
    }
}
