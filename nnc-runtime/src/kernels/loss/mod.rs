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
    nll, nll_backward, softmax_sparse_cross_entropy_backward, sparse_cross_entropy,
    sparse_cross_entropy_backward, sparse_cross_entropy_with_logits,
    sparse_cross_entropy_with_logits_backward,
};

use crate::float::Float;

/// PyTorch clamps every logarithm of a probability at -100, so that a probability of exactly 0
/// costs 100 rather than infinity.
const LOG_FLOOR: f64 = -100.0;

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

/// Asserts the shapes shared by the losses over rows of `n` classes with float targets.
fn assert_rows(what: &str, batch: usize, n: usize, lens: &[usize]) {
    assert!(
        lens.iter().all(|&len| len == batch * n),
        "{what}: expected {batch}x{n} values in every operand, got lengths {lens:?}"
    );
}

/// Asserts the shapes shared by the class-label losses.
fn assert_labels(what: &str, batch: usize, n: usize, len: usize, labels: &[u32]) {
    assert_eq!(len, batch * n, "{what}: values are not {batch}x{n}");
    assert_eq!(labels.len(), batch, "{what}: expected one label per sample");
    debug_assert!(
        labels.iter().all(|&l| (l as usize) < n),
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

    /// `t'` for class `c` of a sample labelled `label`.
    #[inline(always)]
    fn label(self, c: usize, label: u32) -> T {
        if c == label as usize {
            self.keep + self.add
        } else {
            self.add
        }
    }

    /// Whether the smoothing is 0, so that only the labelled class has a nonzero target.
    fn is_none(self) -> bool {
        self.add == T::ZERO
    }
}
