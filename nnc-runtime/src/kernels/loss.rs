//! Loss functions with PyTorch's default "mean" reduction, and their gradients.
//!
//! Each loss returns its value; each `*_backward` writes the derivative of that value with
//! respect to its first argument, already divided by the number of terms averaged. Sums are
//! accumulated in `f64`, which keeps `f32` losses accurate over large batches. A loss over zero
//! terms is `0/0 = NaN`, as in PyTorch; generated code rejects empty batches before getting here.

use crate::float::Float;

/// Asserts that prediction, target and (optionally) gradient have one length.
fn assert_same_len(what: &str, a: usize, b: usize) {
    assert_eq!(a, b, "{what}: prediction has {a} values but target has {b}");
}

/// Mean over all elements of `(p - t)²`.
pub fn mse<T: Float>(pred: &[T], target: &[T]) -> T {
    assert_same_len("mse", pred.len(), target.len());
    let sum: f64 = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| (p - t).to_f64().powi(2))
        .sum();
    T::from_f64(sum / pred.len() as f64)
}

/// Gradient of [`mse`]: `2(p - t) / count`.
pub fn mse_backward<T: Float>(pred: &[T], target: &[T], g: &mut [T]) {
    assert_same_len("mse_backward", pred.len(), target.len());
    assert_same_len("mse_backward", g.len(), target.len());
    let scale = T::from_f64(2.0 / pred.len() as f64);
    for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
        *g = scale * (p - t);
    }
}

/// PyTorch's `BCELoss` on probabilities `p`:
/// `-(t·max(ln p, -100) + (1-t)·max(ln(1-p), -100))`, averaged over all elements.
pub fn binary_cross_entropy<T: Float>(p: &[T], t: &[T]) -> T {
    assert_same_len("binary_cross_entropy", p.len(), t.len());
    let floor = T::from_f64(-100.0);
    let sum: f64 = p
        .iter()
        .zip(t)
        .map(|(&p, &t)| {
            // PyTorch clamps each log at -100 so that p = 0 or 1 gives a finite loss, and uses
            // ln_1p(-p) for ln(1 - p) to keep precision when p is tiny.
            let log_p = p.ln().max(floor);
            let log_q = (-p).ln_1p().max(floor);
            -(t * log_p + (T::ONE - t) * log_q).to_f64()
        })
        .sum();
    T::from_f64(sum / p.len() as f64)
}

/// PyTorch's gradient of [`binary_cross_entropy`]: `(p - t) / max(p(1-p), 1e-12) / count`.
pub fn binary_cross_entropy_backward<T: Float>(p: &[T], t: &[T], g: &mut [T]) {
    assert_same_len("binary_cross_entropy_backward", p.len(), t.len());
    assert_same_len("binary_cross_entropy_backward", g.len(), t.len());
    let eps = T::from_f64(1e-12);
    let inv_count = T::from_f64(1.0 / p.len() as f64);
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        *g = (p - t) / (p * (T::ONE - p)).max(eps) * inv_count;
    }
}

/// Binary cross-entropy from logits `z`, computed stably as
/// `max(z, 0) - z·t + ln(1 + e^-|z|)` and averaged over all elements.
pub fn sigmoid_binary_cross_entropy<T: Float>(z: &[T], t: &[T]) -> T {
    assert_same_len("sigmoid_binary_cross_entropy", z.len(), t.len());
    let sum: f64 = z
        .iter()
        .zip(t)
        .map(|(&z, &t)| (z.max(T::ZERO) - z * t + (-z.abs()).exp().ln_1p()).to_f64())
        .sum();
    T::from_f64(sum / z.len() as f64)
}

/// Fused sigmoid + BCE gradient with respect to the logits, given `p = sigmoid(z)`:
/// `(p - t) / count`.
pub fn sigmoid_binary_cross_entropy_backward<T: Float>(p: &[T], t: &[T], g: &mut [T]) {
    assert_same_len("sigmoid_binary_cross_entropy_backward", p.len(), t.len());
    assert_same_len("sigmoid_binary_cross_entropy_backward", g.len(), t.len());
    let inv_count = T::from_f64(1.0 / p.len() as f64);
    for ((g, &p), &t) in g.iter_mut().zip(p).zip(t) {
        *g = (p - t) * inv_count;
    }
}

/// Asserts the shapes shared by the class-label losses.
fn assert_classes<T>(what: &str, batch: usize, n: usize, p: &[T], labels: &[u32]) {
    assert_eq!(p.len(), batch * n, "{what}: values are not batch x classes");
    assert_eq!(labels.len(), batch, "{what}: expected one label per sample");
    debug_assert!(
        labels.iter().all(|&l| (l as usize) < n),
        "{what}: label out of range; check::labels should have rejected it"
    );
}

/// Cross-entropy of probabilities `p[b, n]` against class labels:
/// `mean_b -max(ln p[b, label_b], -100)`.
pub fn cross_entropy<T: Float>(batch: usize, n: usize, p: &[T], labels: &[u32]) -> T {
    assert_classes("cross_entropy", batch, n, p, labels);
    let floor = T::from_f64(-100.0);
    let sum: f64 = labels
        .iter()
        .enumerate()
        .map(|(b, &l)| -p[b * n + l as usize].ln().max(floor).to_f64())
        .sum();
    T::from_f64(sum / batch as f64)
}

/// Gradient of [`cross_entropy`] with respect to `p`: `-1 / (max(p, tiny) · batch)` at each
/// label, 0 elsewhere. `tiny` is the smallest positive normal value, which keeps the result
/// finite when a probability underflows to 0.
pub fn cross_entropy_backward<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    g: &mut [T],
) {
    assert_classes("cross_entropy_backward", batch, n, p, labels);
    assert_eq!(
        g.len(),
        p.len(),
        "cross_entropy_backward: g and p lengths differ"
    );
    g.fill(T::ZERO);
    let batch_t = T::from_usize(batch);
    for (b, &l) in labels.iter().enumerate() {
        let i = b * n + l as usize;
        g[i] = -T::ONE / (p[i].max(T::MIN_POSITIVE) * batch_t);
    }
}

/// Softmax cross-entropy from logits `z[b, n]`, computed stably as
/// `mean_b (logsumexp(z[b, :]) - z[b, label_b])`.
pub fn softmax_cross_entropy<T: Float>(batch: usize, n: usize, z: &[T], labels: &[u32]) -> T {
    assert_classes("softmax_cross_entropy", batch, n, z, labels);
    if n == 0 {
        return T::from_f64(f64::NAN);
    }
    let sum: f64 = z
        .chunks_exact(n)
        .zip(labels)
        .map(|(row, &l)| {
            let max = row.iter().fold(row[0], |m, &v| m.max(v));
            let sum: T = row.iter().map(|&v| (v - max).exp()).sum();
            (max + sum.ln() - row[l as usize]).to_f64()
        })
        .sum();
    T::from_f64(sum / batch as f64)
}

/// Fused softmax + cross-entropy gradient with respect to the logits, given `p = softmax(z)`:
/// `(p - onehot(label)) / batch`.
pub fn softmax_cross_entropy_backward<T: Float>(
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    g: &mut [T],
) {
    assert_classes("softmax_cross_entropy_backward", batch, n, p, labels);
    assert_eq!(
        g.len(),
        p.len(),
        "softmax_cross_entropy_backward: g and p lengths differ"
    );
    let inv_batch = T::from_f64(1.0 / batch as f64);
    for (g, &p) in g.iter_mut().zip(p) {
        *g = p * inv_batch;
    }
    for (b, &l) in labels.iter().enumerate() {
        g[b * n + l as usize] -= inv_batch;
    }
}
