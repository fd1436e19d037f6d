//! Adagrad: per-parameter learning rates scaled by the accumulated squared gradients,
//! `torch.optim.Adagrad`.

use super::{check_lengths, require_non_negative, Optimizer, Tensors};
use crate::float::Float;
use crate::kernels::split::{RowsMut, RowsRef};
use crate::kernels::Exec;

/// Hyperparameters of [`Adagrad`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay per step (default 0).
    pub lr_decay: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// The starting value of the squared-gradient sums (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// `torch.optim.Adagrad`. At step `t` (counting from 1), per element, with `s` the running sum:
///
/// ```text
/// g += weight_decay·p
/// clr = lr / (1 + (t − 1)·lr_decay)
/// s += g²
/// p -= clr · g / (sqrt(s) + eps)
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T> {
    config: AdagradConfig,
    sum: Vec<T>,
    steps: u64,
    tensors: Tensors,
}

impl<T: Float> Adagrad<T> {
    /// Adagrad for `len` parameters, each sum starting at `initial_accumulator_value`. Panics on a
    /// configuration PyTorch rejects (any negative hyperparameter).
    pub fn new(len: usize, config: AdagradConfig) -> Self {
        let c = &config;
        require_non_negative("Adagrad", "learning rate", c.lr);
        require_non_negative("Adagrad", "lr_decay value", c.lr_decay);
        require_non_negative("Adagrad", "weight_decay value", c.weight_decay);
        require_non_negative(
            "Adagrad",
            "initial_accumulator_value",
            c.initial_accumulator_value,
        );
        require_non_negative("Adagrad", "epsilon value", c.eps);
        Adagrad {
            config,
            sum: vec![T::from_f64(config.initial_accumulator_value); len],
            steps: 0,
            tensors: Tensors::flat(len),
        }
    }

    with_tensors!("Adagrad", tensors);

    /// The hyperparameters, with the current learning rate.
    pub fn config(&self) -> &AdagradConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn step(&mut self, exec: &Exec, params: &mut [T], grads: &[T]) {
        check_lengths("Adagrad", self.sum.len(), params.len(), grads.len());
        self.steps += 1;
        let c = self.config;
        // The decayed rate is computed once per step in f64, as PyTorch does in Python floats.
        let clr = T::from_f64(c.lr / (1.0 + (self.steps - 1) as f64 * c.lr_decay));
        let (wd, eps) = (T::from_f64(c.weight_decay), T::from_f64(c.eps));
        let operands = (
            RowsMut::new(params, 1),
            RowsRef(grads, 1),
            RowsMut::new(&mut self.sum, 1),
        );
        exec.split_tensors(&self.tensors.0, operands, |_, (params, grads, sum)| {
            for ((p, &g), s) in params.iter_mut().zip(grads).zip(sum) {
                let g = g + wd * *p;
                *s += g * g;
                *p -= clr * (g / (s.sqrt() + eps));
            }
        });
    }

    learning_rate_and_steps!(steps);
    state_buffers!("sum" => sum);
}
