//! The loss terms and their gradients, with PyTorch's definitions.
//!
//! A term is `weight · reduce(Σ terms)`: `Sum` keeps the sum, `Mean` divides it by the number of
//! elements for element-wise losses and by the number of rows (the product of the leading axes)
//! for class losses, as PyTorch's `reduction='mean'` does (with no elements that is 0/0, NaN,
//! as in PyTorch). Label smoothing `ε` replaces the targets by `t' = (1 − ε)·t + ε/C` over the
//! `C` classes of a row (a label is its one-hot row), PyTorch's `label_smoothing`; the binary
//! losses use `C = 2` (Keras's rule, since PyTorch has none). Every logarithm of a probability is
//! clamped at −100, as PyTorch's `BCELoss` does, so that a probability of 0 costs 100.
//!
//! The gradients are the derivatives of the terms where the clamps do not bind, with PyTorch's
//! guards against dividing by 0: binary cross-entropy divides by `max(p(1 − p), 1e-12)`, and
//! cross-entropy on probabilities by `max(p, f64::MIN_POSITIVE)`.

use super::{Tensor, Value};
use crate::ir::{LossKind, LossSpec, Reduction};

/// The value of one weighted, reduced loss term.
pub fn value(spec: LossSpec, pred: &Tensor, target: &Value) -> Result<f64, String> {
    let t = smoothed_targets(spec, pred, target)?;
    let (rows, n) = pred.rows_cols()?;
    let p = &pred.data;
    let log = |p: f64| p.ln().max(-100.0);
    let sum: f64 = match spec.kind {
        LossKind::MeanSquaredError => p.iter().zip(&t).map(|(p, t)| (p - t) * (p - t)).sum(),
        LossKind::MeanAbsoluteError => p.iter().zip(&t).map(|(p, t)| (p - t).abs()).sum(),
        LossKind::Huber => {
            let delta = spec.delta.get();
            let h = |d: f64| {
                if d.abs() < delta {
                    0.5 * d * d
                } else {
                    delta * (d.abs() - 0.5 * delta)
                }
            };
            p.iter().zip(&t).map(|(p, t)| h(p - t)).sum()
        }
        LossKind::BinaryCrossEntropy => p
            .iter()
            .zip(&t)
            .map(|(&p, &t)| -(t * log(p) + (1.0 - t) * (-p).ln_1p().max(-100.0)))
            .sum(),
        // max(z, 0) − z·t + ln(1 + e^−|z|), which is −t·ln σ(z) − (1 − t)·ln(1 − σ(z)).
        LossKind::BinaryCrossEntropyWithLogits => p
            .iter()
            .zip(&t)
            .map(|(&z, &t)| z.max(0.0) - z * t + (-z.abs()).exp().ln_1p())
            .sum(),
        LossKind::CategoricalCrossEntropy | LossKind::SparseCrossEntropy => {
            p.iter().zip(&t).map(|(&p, &t)| -t * log(p)).sum()
        }
        // Σ_c t_c · (logsumexp(z) − z_c): cross-entropy against log-softmax of the logits.
        LossKind::CategoricalCrossEntropyWithLogits | LossKind::SparseCrossEntropyWithLogits => (0
            ..rows)
            .map(|r| {
                let (z, t) = (&p[r * n..(r + 1) * n], &t[r * n..(r + 1) * n]);
                let lse = logsumexp(z);
                z.iter().zip(t).map(|(z, t)| t * (lse - z)).sum::<f64>()
            })
            .sum(),
        LossKind::NegativeLogLikelihood => p.iter().zip(&t).map(|(lp, t)| -t * lp).sum(),
    };
    Ok(scale(spec, pred, target)? * sum)
}

/// d term / d prediction.
pub fn gradient(spec: LossSpec, pred: &Tensor, target: &Value) -> Result<Tensor, String> {
    let t = smoothed_targets(spec, pred, target)?;
    let (rows, n) = pred.rows_cols()?;
    let p = &pred.data;
    let mut g: Vec<f64> = match spec.kind {
        LossKind::MeanSquaredError => p.iter().zip(&t).map(|(p, t)| 2.0 * (p - t)).collect(),
        // The sign of p − t: 0 where they are equal, as in PyTorch.
        LossKind::MeanAbsoluteError => p
            .iter()
            .zip(&t)
            .map(|(p, t)| {
                let d = p - t;
                if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    d
                }
            })
            .collect(),
        LossKind::Huber => {
            let delta = spec.delta.get();
            p.iter()
                .zip(&t)
                .map(|(p, t)| (p - t).clamp(-delta, delta))
                .collect()
        }
        LossKind::BinaryCrossEntropy => p
            .iter()
            .zip(&t)
            .map(|(&p, &t)| (p - t) / (p * (1.0 - p)).max(1e-12))
            .collect(),
        LossKind::BinaryCrossEntropyWithLogits => p
            .iter()
            .zip(&t)
            .map(|(&z, &t)| 1.0 / (1.0 + (-z).exp()) - t)
            .collect(),
        LossKind::CategoricalCrossEntropy | LossKind::SparseCrossEntropy => p
            .iter()
            .zip(&t)
            .map(|(&p, &t)| -t / p.max(f64::MIN_POSITIVE))
            .collect(),
        // softmax(z)·Σ_c t_c − t.
        LossKind::CategoricalCrossEntropyWithLogits | LossKind::SparseCrossEntropyWithLogits => {
            let mut g = vec![0.0; p.len()];
            for r in 0..rows {
                let z = &p[r * n..(r + 1) * n];
                let lse = logsumexp(z);
                let probs: Vec<f64> = z.iter().map(|z| (z - lse).exp()).collect();
                softmax_loss_row(&probs, &t[r * n..(r + 1) * n], &mut g[r * n..(r + 1) * n]);
            }
            g
        }
        LossKind::NegativeLogLikelihood => t.iter().map(|t| -t).collect(),
    };
    let c = scale(spec, pred, target)?;
    g.iter_mut().for_each(|g| *g *= c);
    Tensor::new(pred.shape.clone(), g)
}

/// The gradient with respect to the logits `z` of a cross-entropy on probabilities over
/// `p = softmax(z)`, given `p`: `p·Σ_c t'_c − t'` per row, scaled.
pub fn softmax_gradient(spec: LossSpec, p: &Tensor, target: &Value) -> Result<Tensor, String> {
    if !matches!(
        spec.kind,
        LossKind::CategoricalCrossEntropy | LossKind::SparseCrossEntropy
    ) {
        return Err(format!("{} does not fuse with a softmax", spec.kind.name()));
    }
    let t = smoothed_targets(spec, p, target)?;
    let (rows, n) = p.rows_cols()?;
    let mut g = vec![0.0; p.len()];
    for r in 0..rows {
        let range = r * n..(r + 1) * n;
        softmax_loss_row(&p.data[range.clone()], &t[range.clone()], &mut g[range]);
    }
    let c = scale(spec, p, target)?;
    g.iter_mut().for_each(|g| *g *= c);
    Tensor::new(p.shape.clone(), g)
}

/// The gradient with respect to the logits `z` of binary cross-entropy over `p = sigmoid(z)`,
/// given `p`: `p − t'`, scaled.
pub fn sigmoid_gradient(spec: LossSpec, p: &Tensor, target: &Value) -> Result<Tensor, String> {
    if spec.kind != LossKind::BinaryCrossEntropy {
        return Err(format!("{} does not fuse with a sigmoid", spec.kind.name()));
    }
    let t = smoothed_targets(spec, p, target)?;
    let c = scale(spec, p, target)?;
    let g = p.data.iter().zip(&t).map(|(p, t)| c * (p - t)).collect();
    Tensor::new(p.shape.clone(), g)
}

/// One row of `p·Σ_c t_c − t` (a row of targets need not sum to 1).
fn softmax_loss_row(p: &[f64], t: &[f64], g: &mut [f64]) {
    let total: f64 = t.iter().sum();
    for ((g, p), t) in g.iter_mut().zip(p).zip(t) {
        *g = p * total - t;
    }
}

/// `ln Σ e^z`, with the maximum taken out so that no exponential overflows.
fn logsumexp(z: &[f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + z.iter().map(|z| (z - max).exp()).sum::<f64>().ln()
}

/// The factor that turns the sum of the terms into the reduced, weighted loss term. A mean
/// with an ignored label is over the rows not ignored (with none, the empty sum stays 0 where
/// PyTorch's 0/0 would give NaN).
fn scale(spec: LossSpec, pred: &Tensor, target: &Value) -> Result<f64, String> {
    let weight = spec.weight.get();
    Ok(match (spec.reduction, spec.ignore, target) {
        (Reduction::Sum, _, _) => weight,
        (Reduction::Mean, Some(i), Value::Ids(labels)) => {
            weight / labels.iter().filter(|&&l| l != i).count().max(1) as f64
        }
        (Reduction::Mean, ..) if spec.kind.per_row() => weight / pred.rows_cols()?.0 as f64,
        (Reduction::Mean, ..) => weight / pred.len() as f64,
    })
}

/// The targets as floats of the prediction's shape, smoothed: a label becomes its one-hot row,
/// and an ignored label a row of zeros, which makes every class loss's term and gradient 0.
/// Rejects options the loss does not take, labels out of range and shapes that do not fit.
fn smoothed_targets(spec: LossSpec, pred: &Tensor, target: &Value) -> Result<Vec<f64>, String> {
    let name = spec.kind.name();
    let eps = spec.smoothing.get();
    if !(0.0..1.0).contains(&eps) {
        return Err(format!("{name}: label smoothing {eps} is outside [0, 1)"));
    }
    let smoothable = spec.kind.per_row() && spec.kind != LossKind::NegativeLogLikelihood;
    let binary = matches!(
        spec.kind,
        LossKind::BinaryCrossEntropy | LossKind::BinaryCrossEntropyWithLogits
    );
    if eps != 0.0 && !smoothable && !binary {
        return Err(format!("{name} takes no label smoothing"));
    }
    let delta = spec.delta.get();
    if spec.kind == LossKind::Huber && (delta.is_nan() || delta <= 0.0) {
        return Err(format!("huber: delta {delta} is not positive"));
    }
    if spec.ignore.is_some() && !spec.kind.sparse() {
        return Err(format!("{name} takes no ignored label"));
    }
    let mut ignored = Vec::new();
    let t = match (target, spec.kind.sparse()) {
        (Value::Ids(labels), true) => {
            let (rows, n) = pred.rows_cols()?;
            if labels.len() != rows {
                return Err(format!(
                    "{name}: {} labels for {rows} rows of predictions",
                    labels.len()
                ));
            }
            let mut t = vec![0.0; rows * n];
            for (r, &l) in labels.iter().enumerate() {
                if spec.ignore == Some(l) {
                    ignored.push(r);
                } else if l as usize >= n {
                    return Err(format!("{name}: label {l} is not one of {n} classes"));
                } else {
                    t[r * n + l as usize] = 1.0;
                }
            }
            t
        }
        (Value::Float(t), false) if t.shape == pred.shape => t.data.clone(),
        (Value::Float(t), false) => {
            return Err(format!(
                "{name}: the target {:?} does not match the prediction {:?}",
                t.shape, pred.shape
            ))
        }
        (Value::Float(_), true) => return Err(format!("{name} expects class labels")),
        (Value::Ids(_), false) => return Err(format!("{name} expects float targets")),
    };
    // Binary targets are smoothed toward 1/2; a row of classes toward the uniform row (and a
    // row without classes has nothing to smooth).
    let classes = if binary { 2 } else { pred.rows_cols()?.1 };
    if eps == 0.0 || classes == 0 {
        return Ok(t);
    }
    let add = eps / classes as f64;
    let mut t: Vec<f64> = t.iter().map(|t| (1.0 - eps) * t + add).collect();
    for r in ignored {
        t[r * classes..(r + 1) * classes].fill(0.0);
    }
    Ok(t)
}
