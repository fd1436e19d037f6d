//! The fused per-element pass of the Adam and AdamW optimizers, with and without AMSGrad,
//! vectorized like the other hot kernels.

use super::split::{RowsMut, RowsRef, UPDATE_COST};
use super::{vectorized, Exec};
use crate::float::Float;

/// Per-step scalars of an Adam update, computed once per step by `optim::Adam` and
/// `optim::AdamW`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamCoefficients<T> {
    /// `lr / (1 - β1^t)`.
    pub step_size: T,
    /// `1 / sqrt(1 - β2^t)`.
    pub inv_bias_correction2_sqrt: T,
    pub beta1: T,
    pub beta2: T,
    pub eps: T,
    /// Adam's L2 penalty, added to the gradient (0 for AdamW).
    pub weight_decay: T,
    /// AdamW's decoupled decay factor `1 - lr·wd` that multiplies the parameter before the
    /// update (1 for Adam, which leaves the parameter exactly as it is).
    pub decay: T,
}

/// One Adam update over all parameters in a single pass:
/// `g += wd·p; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;`
/// `p = decay·p - step_size · m / (sqrt(v)/sqrt(bc2) + eps)`.
pub(crate) fn adam_update<T: Float>(
    exec: &Exec,
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    c: AdamCoefficients<T>,
) {
    let n = params.len();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n,
        "adam: {} params but {} grads, {} first and {} second moments",
        n,
        grads.len(),
        m.len(),
        v.len()
    );
    let operands = (
        RowsMut::new(params, 1),
        RowsRef(grads, 1),
        RowsMut::new(m, 1),
        RowsMut::new(v, 1),
    );
    exec.split_elems(UPDATE_COST, operands, |(params, grads, m, v)| {
        vectorized!(adam_body(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], c: AdamCoefficients<T>))
    });
}

/// [`adam_update`] with AMSGrad: the denominator uses the running maximum `v_max` of the second
/// moments instead of the current one, `v_max = max(v_max, v)`.
pub(crate) fn adam_amsgrad_update<T: Float>(
    exec: &Exec,
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
    c: AdamCoefficients<T>,
) {
    let n = params.len();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n && v_max.len() == n,
        "adam (amsgrad): {} params but {} grads, {} first, {} second and {} maximum second moments",
        n,
        grads.len(),
        m.len(),
        v.len(),
        v_max.len()
    );
    let operands = (
        RowsMut::new(params, 1),
        RowsRef(grads, 1),
        RowsMut::new(m, 1),
        RowsMut::new(v, 1),
        RowsMut::new(v_max, 1),
    );
    exec.split_elems(UPDATE_COST, operands, |(params, grads, m, v, v_max)| {
        vectorized!(adam_amsgrad_body(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], v_max: &mut [T], c: AdamCoefficients<T>))
    });
}

/// Zero for subnormal values (and zero), the value itself otherwise. Written as a select so
/// that the loop still vectorizes.
#[inline(always)]
fn flush<T: Float>(x: T) -> T {
    if x.abs() < T::MIN_POSITIVE {
        T::ZERO
    } else {
        x
    }
}

/// Updates the moments of parameter `p` from its gradient `g` (before Adam's L2 penalty); shared
/// by both bodies so that they cannot drift apart.
#[inline(always)]
fn moments<T: Float>(p: T, g: T, m: &mut T, v: &mut T, c: &AdamCoefficients<T>) {
    let g = g + c.weight_decay * p;
    // A parameter whose gradient stays zero (a dead relu unit, say) sees its moments decay
    // geometrically into the subnormal range, where every operation on them costs a microcode
    // assist: training at batch 1 ran 6.5x slower for it. Flushing them to zero changes the
    // update by less than MIN_POSITIVE / eps (about 1e-30 in f32), far below one rounding of any
    // parameter.
    *m = flush(c.beta1 * *m + (T::ONE - c.beta1) * g);
    *v = flush(c.beta2 * *v + (T::ONE - c.beta2) * g * g);
}

/// `p = decay·p - step_size · m / (sqrt(v)/sqrt(bc2) + eps)`, with `v` the second moment the
/// denominator uses.
#[inline(always)]
fn apply<T: Float>(p: &mut T, m: T, v: T, c: &AdamCoefficients<T>) {
    // Multiplying by the precomputed reciprocal instead of dividing by sqrt(1 - β2^t) saves a
    // division per element; the two differ by at most one rounding.
    let denom = v.sqrt() * c.inv_bias_correction2_sqrt + c.eps;
    *p = c.decay * *p - c.step_size * m / denom;
}

#[inline(always)]
fn adam_body<T: Float>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    c: AdamCoefficients<T>,
) {
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
        moments(*p, g, m, v, &c);
        apply(p, *m, *v, &c);
    }
}

#[inline(always)]
fn adam_amsgrad_body<T: Float>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
    c: AdamCoefficients<T>,
) {
    for ((((p, &g), m), v), v_max) in params.iter_mut().zip(grads).zip(m).zip(v).zip(v_max) {
        moments(*p, g, m, v, &c);
        // v is flushed, and a maximum never decays, so v_max needs no flush of its own.
        *v_max = v_max.max(*v);
        apply(p, *m, *v_max, &c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_adam_matches_portable_loop() {
        let c = AdamCoefficients {
            step_size: 0.01f32,
            inv_bias_correction2_sqrt: 3.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            decay: 0.999,
        };
        let grads: Vec<f32> = (0..45).map(|i| (i as f32 * 0.7).sin()).collect();
        let mut p1: Vec<f32> = (0..45).map(|i| (i as f32 * 0.3).cos()).collect();
        let (mut m1, mut v1) = (vec![0.1f32; 45], vec![0.2f32; 45]);
        let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
        adam_update(Exec::serial(), &mut p1, &grads, &mut m1, &mut v1, c);
        adam_body(&mut p2, &grads, &mut m2, &mut v2, c);
        assert_eq!((&p1, &m1, &v1), (&p2, &m2, &v2));
        let mut w1 = vec![0.15f32; 45];
        let mut w2 = w1.clone();
        adam_amsgrad_update(
            Exec::serial(),
            &mut p1,
            &grads,
            &mut m1,
            &mut v1,
            &mut w1,
            c,
        );
        adam_amsgrad_body(&mut p2, &grads, &mut m2, &mut v2, &mut w2, c);
        assert_eq!((p1, m1, v1, w1), (p2, m2, v2, w2));
    }
}
