//! Optimizers with PyTorch's update rules, updating all parameters of a model, stored in one
//! flat slice, in a single fused pass without allocating.

use crate::float::Float;
use crate::kernels::{adam_update, AdamCoefficients};

/// An update rule applied to a model's flat parameter vector.
pub trait Optimizer<T: Float> {
    /// Updates `params` in place from `grads` (same length) and counts the step.
    fn step(&mut self, params: &mut [T], grads: &[T]);
    /// The current learning rate.
    fn learning_rate(&self) -> T;
    /// Sets the learning rate used by later steps, for example from a schedule.
    fn set_learning_rate(&mut self, lr: T);
    /// The number of steps taken so far.
    fn steps(&self) -> u64;
}

/// `torch.optim.SGD` without momentum: `p -= lr · (g + weight_decay · p)`.
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    /// Learning rate.
    pub lr: T,
    /// L2 penalty added to the gradient (PyTorch's `weight_decay`; 0 disables it).
    pub weight_decay: T,
    steps: u64,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with the given learning rate and weight decay.
    pub fn new(lr: T, weight_decay: T) -> Self {
        Sgd {
            lr,
            weight_decay,
            steps: 0,
        }
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        assert_eq!(
            params.len(),
            grads.len(),
            "sgd: params and grads lengths differ"
        );
        let (lr, wd) = (self.lr, self.weight_decay);
        for (p, &g) in params.iter_mut().zip(grads) {
            *p -= lr * (g + wd * *p);
        }
        self.steps += 1;
    }

    fn learning_rate(&self) -> T {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: T) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.steps
    }
}

/// `torch.optim.Adam` with `amsgrad = False`:
///
/// ```text
/// g += wd·p;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  t += 1
/// p -= (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T> {
    /// Learning rate (PyTorch's default is 1e-3).
    pub lr: T,
    /// Decay of the first moment (default 0.9).
    pub beta1: T,
    /// Decay of the second moment (default 0.999).
    pub beta2: T,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: T,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: T,
    m: Vec<T>,
    v: Vec<T>,
    t: u64,
}

impl<T: Float> Adam<T> {
    /// Adam for `len` parameters, with zeroed moments.
    pub fn new(len: usize, lr: T, beta1: T, beta2: T, eps: T, weight_decay: T) -> Self {
        Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            m: vec![T::ZERO; len],
            v: vec![T::ZERO; len],
            t: 0,
        }
    }

    /// Adam for `len` parameters with PyTorch's defaults for everything but the learning rate:
    /// betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn with_defaults(len: usize, lr: T) -> Self {
        Adam::new(
            len,
            lr,
            T::from_f64(0.9),
            T::from_f64(0.999),
            T::from_f64(1e-8),
            T::ZERO,
        )
    }

    /// The first and second moment estimates `(m, v)`.
    pub fn moments(&self) -> (&[T], &[T]) {
        (&self.m, &self.v)
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &mut [T], grads: &[T]) {
        self.t += 1;
        // Bias corrections are computed once per step in f64, as PyTorch does in Python floats.
        // Beyond i32::MAX steps β^t has long underflowed to 0, so clamping the exponent is exact.
        let t = self.t.min(i32::MAX as u64) as i32;
        let bias_correction1 = 1.0 - self.beta1.to_f64().powi(t);
        let bias_correction2 = 1.0 - self.beta2.to_f64().powi(t);
        let coefficients = AdamCoefficients {
            step_size: T::from_f64(self.lr.to_f64() / bias_correction1),
            inv_bias_correction2_sqrt: T::from_f64(1.0 / bias_correction2.sqrt()),
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        };
        adam_update(params, grads, &mut self.m, &mut self.v, coefficients);
    }

    fn learning_rate(&self) -> T {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: T) {
        self.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.t
    }
}
