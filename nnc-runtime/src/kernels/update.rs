//! The fused per-element pass of the Adam and AdamW optimizers, with and without AMSGrad,
//! vectorized like the other hot kernels.

use std::ops::Range;

use super::split::{RowsMut, RowsRef};
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

/// The coefficients of one Adam step for every parameter: `exempt` for those in the `no_decay`
/// ranges (sorted and disjoint indices into the flat parameter vector), `decayed` for the rest.
pub(crate) struct AdamStep<'a, T> {
    pub no_decay: &'a [Range<usize>],
    pub decayed: AdamCoefficients<T>,
    pub exempt: AdamCoefficients<T>,
}

impl<T> AdamStep<'_, T> {
    /// Calls `f(run, coefficients)` for each run of `range` that one set of coefficients
    /// covers, in order, with `run` relative to `range.start`.
    fn runs(&self, range: Range<usize>, mut f: impl FnMut(Range<usize>, &AdamCoefficients<T>)) {
        let base = range.start;
        let mut at = range.start;
        for exempt in self.no_decay {
            if exempt.end <= at {
                continue;
            }
            if exempt.start >= range.end {
                break;
            }
            if exempt.start > at {
                f(at - base..exempt.start - base, &self.decayed);
            }
            let end = exempt.end.min(range.end);
            f(exempt.start.max(at) - base..end - base, &self.exempt);
            at = end;
        }
        if at < range.end {
            f(at - base..range.end - base, &self.decayed);
        }
    }
}

/// One Adam update over all parameters in a single pass:
/// `g += wd·p; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;`
/// `p = decay·p - step_size · m / (sqrt(v)/sqrt(bc2) + eps)`,
/// each thread taking the home rows of every tensor in `tensors` (see `homes.rs`). With AMSGrad
/// `v_max` holds the running maximum of the second moments, `v_max = max(v_max, v)`, which the
/// denominator uses instead of `v`; without it `v_max` is empty (split as rows of no elements,
/// as RMSprop splits its unused buffers).
pub(crate) fn adam_update<T: Float>(
    exec: &Exec,
    tensors: &[[usize; 2]],
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
    step: &AdamStep<'_, T>,
) {
    let n = params.len();
    let amsgrad = !v_max.is_empty();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n && (!amsgrad || v_max.len() == n),
        "adam: {} params but {} grads, {} first, {} second and {} maximum second moments",
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
        RowsMut::new(v_max, usize::from(amsgrad)),
    );
    exec.split_tensors(tensors, operands, |range, (p, g, m, v, w)| {
        step.runs(range, |run, &c| {
            let (params, grads) = (&mut p[run.clone()], &g[run.clone()]);
            let (m, v) = (&mut m[run.clone()], &mut v[run.clone()]);
            if amsgrad {
                let v_max = &mut w[run];
                vectorized!(adam_amsgrad_body(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], v_max: &mut [T], c: AdamCoefficients<T>))
            } else {
                vectorized!(adam_body(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], c: AdamCoefficients<T>))
            }
        })
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
        let step = AdamStep {
            no_decay: &[],
            decayed: c,
            exempt: c,
        };
        // The dispatched kernel on one thread, with an empty `v_max` for plain Adam.
        let dispatched = |p: &mut [f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]| {
            adam_update(Exec::serial(), &[[45, 1]], p, &grads, m, v, w, &step)
        };
        dispatched(&mut p1, &mut m1, &mut v1, &mut []);
        adam_body(&mut p2, &grads, &mut m2, &mut v2, c);
        assert_eq!((&p1, &m1, &v1), (&p2, &m2, &v2));
        let mut w1 = vec![0.15f32; 45];
        let mut w2 = w1.clone();
        dispatched(&mut p1, &mut m1, &mut v1, &mut w1);
        adam_amsgrad_body(&mut p2, &grads, &mut m2, &mut v2, &mut w2, c);
        assert_eq!((p1, m1, v1, w1), (p2, m2, v2, w2));
    }

    #[test]
    fn runs_cover_a_range_in_order_with_the_right_coefficients() {
        let coefficients = |decay: f32| AdamCoefficients {
            step_size: 0.0,
            inv_bias_correction2_sqrt: 0.0,
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
            weight_decay: 0.0,
            decay,
        };
        let step = AdamStep {
            no_decay: &[2..5, 8..9, 20..30],
            decayed: coefficients(1.0),
            exempt: coefficients(0.0),
        };
        let mut runs = Vec::new();
        step.runs(3..25, |run, c| runs.push((run, c.decay == 0.0)));
        let want = [
            (0..2, true),
            (2..5, false),
            (5..6, true),
            (6..17, false),
            (17..22, true),
        ];
        assert_eq!(runs, want);
        runs.clear();
        step.runs(10..20, |run, c| runs.push((run, c.decay == 0.0)));
        assert_eq!(runs, [(0..10, false)]);
    }
}
