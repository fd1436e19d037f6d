//! Loss functions and their gradients, with the reduction left to the caller.
//!
//! Every loss takes a `scale` and returns `scale · Σ terms`: the caller passes `weight / count`
//! for a mean reduction or `weight` for a sum, so no kernel divides by a count. Every
//! `*_backward` writes `g = scale · ∂(Σ terms)/∂(first argument)`. Sums are accumulated in `f64`,
//! which keeps `f32` losses accurate over large batches; an empty batch has an empty sum, 0.
//!
//! `smoothing` is the label-smoothing factor `ε` in `[0, 1)`. Class losses replace each target by
//! `t' = (1 − ε)·t + ε/C` over `C` classes (a class label is the one-hot `t`), as PyTorch's
//! `label_smoothing` does; binary losses use `t' = (1 − ε)·t + ε/2`, Keras's rule. With `ε = 0`,
//! `t' = t` exactly.

mod binary;
mod categorical;
mod regression;
mod sparse;

pub use binary::{
    binary_cross_entropy, binary_cross_entropy_backward, binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward, sigmoid_binary_cross_entropy_backward,
};
pub use categorical::{
    categorical_cross_entropy, categorical_cross_entropy_backward,
    categorical_cross_entropy_with_logits, categorical_cross_entropy_with_logits_backward,
    softmax_categorical_cross_entropy_backward,
};
pub use regression::{huber, huber_backward, mae, mae_backward, mse, mse_backward};
pub use sparse::{
    kept_labels, nll, nll_backward, softmax_sparse_cross_entropy_backward, sparse_cross_entropy,
    sparse_cross_entropy_backward, sparse_cross_entropy_with_logits,
    sparse_cross_entropy_with_logits_backward,
};

use crate::float::Float;
use crate::kernels::softmax::{assert_rows, rows, rows_mut, softmax_rows_dispatched};

/// PyTorch clamps every logarithm of a probability at -100, so that a probability of exactly 0
/// costs 100 rather than infinity.
#[inline(always)]
fn clamp_log<T: Float>(log: T) -> T {
    log.max(T::from_f64(-100.0))
}

/// `scale · Σ terms`, the sum taken in `f64`.
fn scaled_sum<T: Float>(scale: T, terms: impl Iterator<Item = f64>) -> T {
    T::from_f64(scale.to_f64() * terms.sum::<f64>())
}

/// Asserts that every operand of an element-wise loss has the prediction's length.
fn assert_same_len(what: &str, lens: &[usize]) {
    assert!(
        lens.iter().all(|&len| len == lens[0]),
        "{what}: prediction, target (and gradient) lengths {lens:?} differ"
    );
}

/// Asserts the shapes shared by the class-label losses: `batch × n` values in every float operand
/// (of lengths `lens`) and one label per sample, in `0..n` or `ignore`.
fn assert_labels(
    what: &str,
    batch: usize,
    n: usize,
    lens: &[usize],
    labels: &[u32],
    ignore: Option<u32>,
) {
    assert_rows(what, batch, n, lens);
    assert_eq!(labels.len(), batch, "{what}: expected one label per sample");
    assert!(
        labels
            .iter()
            .all(|&l| (l as usize) < n || ignore == Some(l)),
        "{what}: label out of range; check::labels should have rejected it"
    );
}

/// Label smoothing as an affine map of the target, `t' = keep·t + add`, with both coefficients
/// computed once per call.
#[derive(Clone, Copy, Debug)]
struct Smoothing<T> {
    keep: T,
    add: T,
}

impl<T: Float> Smoothing<T> {
    /// Smoothing `ε` toward the uniform distribution over `classes` values.
    fn new(what: &str, smoothing: T, classes: usize) -> Self {
        let e = smoothing.to_f64();
        assert!(
            (0.0..1.0).contains(&e),
            "{what}: label smoothing {e} is outside [0, 1)"
        );
        Smoothing {
            keep: T::from_f64(1.0 - e),
            // With no classes there are no targets to smooth; avoid dividing by zero regardless.
            add: T::from_f64(if classes == 0 {
                0.0
            } else {
                e / classes as f64
            }),
        }
    }

    /// `t'` for a float target `t`.
    #[inline(always)]
    fn apply(self, t: T) -> T {
        self.keep * t + self.add
    }

    /// Whether the smoothing is 0, so that only the labelled class has a nonzero target.
    fn is_none(self) -> bool {
        self.add == T::ZERO
    }
}

/// One sample's targets over the classes of a row, before smoothing: a class label (`u32`) or a
/// row of float targets (`&[T]`). The class losses' gradients are written once, over this trait.
trait TargetRow<T: Float>: Copy {
    /// The smoothed targets `t'_c` of the `n` classes, in order.
    fn smoothed(self, sm: Smoothing<T>, n: usize) -> impl Iterator<Item = T>;

    /// `Σ_c t'_c`, the factor on the softmax in the fused gradient.
    fn total(self, sm: Smoothing<T>) -> T;
}

impl<T: Float> TargetRow<T> for u32 {
    /// The smoothed one-hot row: `keep + add` at the label and `add` elsewhere.
    #[inline(always)]
    fn smoothed(self, sm: Smoothing<T>, n: usize) -> impl Iterator<Item = T> {
        let at_label = sm.keep + sm.add;
        (0..n).map(move |c| if c == self as usize { at_label } else { sm.add })
    }

    /// A smoothed one-hot row sums to 1, and multiplying by exactly 1 changes no value.
    #[inline(always)]
    fn total(self, _: Smoothing<T>) -> T {
        T::ONE
    }
}

impl<T: Float> TargetRow<T> for &[T] {
    /// Each target is smoothed on its own, so `n` is not needed and a slice of several rows back
    /// to back is smoothed whole.
    #[inline(always)]
    fn smoothed(self, sm: Smoothing<T>, _: usize) -> impl Iterator<Item = T> {
        self.iter().map(move |&t| sm.apply(t))
    }

    /// A row of float targets need not sum to 1, so the sum is taken.
    #[inline(always)]
    fn total(self, sm: Smoothing<T>) -> T {
        self.smoothed(sm, self.len()).sum()
    }
}

/// The gradient of cross-entropy on probabilities `p` (a row, or rows back to back for float
/// targets): `g = −scale · t' / max(p, tiny)`, where `tiny`, the smallest positive normal value,
/// keeps the result finite when a probability underflows to 0.
#[inline]
fn probability_grad<T: Float>(
    sm: Smoothing<T>,
    scale: T,
    target: impl TargetRow<T>,
    p: &[T],
    g: &mut [T],
) {
    let neg_scale = -scale;
    for ((g, &p), t) in g.iter_mut().zip(p).zip(target.smoothed(sm, p.len())) {
        *g = neg_scale * t / p.max(T::MIN_POSITIVE);
    }
}

/// The gradient with respect to the logits of a softmax followed by cross-entropy, in place: with
/// each row's softmax `p` already in `g`, `g = scale · (p·Σ_c t'_c − t')` row by row.
#[inline]
fn fused_grad<T: Float, R: TargetRow<T>>(
    n: usize,
    sm: Smoothing<T>,
    scale: T,
    targets: impl Iterator<Item = R>,
    g: &mut [T],
) {
    for (g, target) in rows_mut(n, g).zip(targets) {
        fused_row(sm, scale, target, g);
    }
}

/// The same gradient from the logits `z`: the softmax of every row is written into `g` first,
/// so nothing is allocated, then [`fused_grad`] turns it into the gradient.
#[inline]
fn logits_grad<T: Float, R: TargetRow<T>>(
    n: usize,
    sm: Smoothing<T>,
    scale: T,
    z: &[T],
    targets: impl Iterator<Item = R>,
    g: &mut [T],
) {
    softmax_rows_dispatched(n, z, g);
    fused_grad(n, sm, scale, targets, g);
}

/// One row of [`fused_grad`].
#[inline(always)]
fn fused_row<T: Float, R: TargetRow<T>>(sm: Smoothing<T>, scale: T, target: R, g: &mut [T]) {
    let total = target.total(sm);
    let n = g.len();
    for (g, t) in g.iter_mut().zip(target.smoothed(sm, n)) {
        *g = scale * (*g * total - t);
    }
}
