//! Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
//! decay: `torch.optim.SGD`.

use super::{check_lengths, require_non_negative, Optimizer, Tensors};
use crate::float::Float;
use crate::kernels::split::{RowsMut, RowsRef};
use crate::kernels::Exec;

/// Hyperparameters of [`Sgd`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3, nnc's choice: PyTorch has no default).
    pub lr: f64,
    /// Momentum factor (default 0, no momentum and no buffer).
    pub momentum: f64,
    /// Dampening of the gradient's contribution to the momentum (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default false); needs momentum > 0 and dampening 0.
    pub nesterov: bool,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// `torch.optim.SGD`. Per element, with `b` the momentum buffer:
///
/// ```text
/// d = g + weight_decay·p
/// if momentum ≠ 0:
///     b = d                                   on the first step
///     b = momentum·b + (1 − dampening)·d      afterwards
///     d = d + momentum·b  if nesterov,  else  d = b
/// p -= lr·d
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T> {
    config: SgdConfig,
    /// Empty unless momentum ≠ 0.
    momentum_buffer: Vec<T>,
    steps: u64,
    /// The tensors the parameters are made of, which also give their number.
    tensors: Tensors,
}

impl<T: Float> Sgd<T> {
    /// SGD for `len` parameters. Panics on a configuration PyTorch rejects (a negative learning
    /// rate, momentum or weight decay, or Nesterov without momentum or with dampening).
    pub fn new(len: usize, config: SgdConfig) -> Self {
        let c = &config;
        require_non_negative("SGD", "learning rate", c.lr);
        require_non_negative("SGD", "momentum value", c.momentum);
        require_non_negative("SGD", "weight_decay value", c.weight_decay);
        assert!(
            !c.nesterov || (c.momentum > 0.0 && c.dampening == 0.0),
            "SGD: Nesterov momentum requires a momentum and zero dampening"
        );
        let buffer = if c.momentum != 0.0 { len } else { 0 };
        Sgd {
            config,
            momentum_buffer: vec![T::ZERO; buffer],
            steps: 0,
            tensors: Tensors::flat(len),
        }
    }

    with_tensors!("SGD", tensors);

    /// The hyperparameters, with the current learning rate.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, exec: &Exec, params: &mut [T], grads: &[T]) {
        check_lengths("SGD", self.tensors.len(), params.len(), grads.len());
        let c = self.config;
        let (lr, wd) = (T::from_f64(c.lr), T::from_f64(c.weight_decay));
        if c.momentum == 0.0 {
            let operands = (RowsMut::new(params, 1), RowsRef(grads, 1));
            exec.split_tensors(&self.tensors.0, operands, |_, (params, grads)| {
                for (p, &g) in params.iter_mut().zip(grads) {
                    *p -= lr * (g + wd * *p);
                }
            });
        } else {
            let momentum = T::from_f64(c.momentum);
            let one_minus_dampening = T::from_f64(1.0 - c.dampening);
            // PyTorch creates the buffer on the first step as a copy of the gradient, without
            // dampening; the flag is loop-invariant, so the compiler hoists the test.
            let first = self.steps == 0;
            let (buffer, tensors) = (&mut self.momentum_buffer, &self.tensors.0);
            let operands = (
                RowsMut::new(params, 1),
                RowsRef(grads, 1),
                RowsMut::new(buffer, 1),
            );
            exec.split_tensors(tensors, operands, |_, (params, grads, buffer)| {
                for ((p, &g), b) in params.iter_mut().zip(grads).zip(buffer) {
                    let d = g + wd * *p;
                    *b = if first {
                        d
                    } else {
                        momentum * *b + one_minus_dampening * d
                    };
                    let d = if c.nesterov { d + momentum * *b } else { *b };
                    *p -= lr * d;
                }
            });
        }
        self.steps += 1;
    }

    learning_rate_and_steps!(steps);
    state_buffers!("momentum_buffer" => momentum_buffer if |c: &SgdConfig| c.momentum != 0.0);
}
