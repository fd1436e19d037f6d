//! RMSprop: gradients divided by a running root mean square, optionally centred and with
//! momentum, `torch.optim.RMSprop`.

use super::{check_lengths, require_non_negative, Optimizer, Tensors};
use crate::float::Float;
use crate::kernels::split::{RowsMut, RowsRef};
use crate::kernels::Exec;

/// Hyperparameters of [`Rmsprop`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0, no momentum buffer).
    pub momentum: f64,
    /// Whether to divide by an estimate of the gradient's variance rather than its second moment
    /// (default false).
    pub centered: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// `torch.optim.RMSprop`. Per element, with `v` the square average, `a` the gradient average and
/// `b` the momentum buffer (all starting at 0):
///
/// ```text
/// g += weight_decay·p
/// v = alpha·v + (1 − alpha)·g²
/// if centered:  a = a + (1 − alpha)·(g − a);  d = sqrt(v − a²) + eps
/// else:         d = sqrt(v) + eps
/// if momentum > 0:  b = momentum·b + g/d;  p -= lr·b
/// else:             p -= lr·g/d
/// ```
#[derive(Clone, Debug)]
pub struct Rmsprop<T> {
    config: RmspropConfig,
    square_avg: Vec<T>,
    /// Empty unless centered.
    grad_avg: Vec<T>,
    /// Empty unless momentum > 0.
    momentum_buffer: Vec<T>,
    steps: u64,
    tensors: Tensors,
}

impl<T: Float> Rmsprop<T> {
    /// RMSprop for `len` parameters. Panics on a configuration PyTorch rejects (any negative
    /// hyperparameter).
    pub fn new(len: usize, config: RmspropConfig) -> Self {
        let c = &config;
        require_non_negative("RMSprop", "learning rate", c.lr);
        require_non_negative("RMSprop", "epsilon value", c.eps);
        require_non_negative("RMSprop", "momentum value", c.momentum);
        require_non_negative("RMSprop", "weight_decay value", c.weight_decay);
        require_non_negative("RMSprop", "alpha value", c.alpha);
        let sized = |used: bool| vec![T::ZERO; if used { len } else { 0 }];
        Rmsprop {
            config,
            square_avg: vec![T::ZERO; len],
            grad_avg: sized(c.centered),
            momentum_buffer: sized(c.momentum > 0.0),
            steps: 0,
            tensors: Tensors::flat(len),
        }
    }

    with_tensors!("RMSprop", tensors);

    /// The hyperparameters, with the current learning rate.
    pub fn config(&self) -> &RmspropConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Rmsprop<T> {
    fn step(&mut self, exec: &Exec, params: &mut [T], grads: &[T]) {
        let n = self.square_avg.len();
        check_lengths("RMSprop", n, params.len(), grads.len());
        let c = self.config;
        let (lr, wd, eps) = (
            T::from_f64(c.lr),
            T::from_f64(c.weight_decay),
            T::from_f64(c.eps),
        );
        let (alpha, one_minus_alpha) = (T::from_f64(c.alpha), T::from_f64(1.0 - c.alpha));
        let momentum = T::from_f64(c.momentum);
        let (centered, with_momentum) = (c.centered, c.momentum > 0.0);
        // Indexing the optional buffers, which are empty when unused, keeps one loop for all four
        // variants; the flags are loop-invariant and only the used buffers are touched. An
        // unused buffer is split as rows of no elements, so every task gets an empty piece.
        let width = |used: bool| usize::from(used);
        let operands = (
            RowsMut::new(params, 1),
            RowsRef(grads, 1),
            RowsMut::new(&mut self.square_avg, 1),
            RowsMut::new(&mut self.grad_avg, width(centered)),
            RowsMut::new(&mut self.momentum_buffer, width(with_momentum)),
        );
        exec.split_tensors(
            &self.tensors.0,
            operands,
            |_, (params, grads, square_avg, grad_avg, momentum_buffer)| {
                for i in 0..params.len() {
                    let p = params[i];
                    let g = grads[i] + wd * p;
                    let v = alpha * square_avg[i] + one_minus_alpha * g * g;
                    square_avg[i] = v;
                    let d = if centered {
                        let a = &mut grad_avg[i];
                        *a += one_minus_alpha * (g - *a);
                        (v - *a * *a).sqrt() + eps
                    } else {
                        v.sqrt() + eps
                    };
                    params[i] = if with_momentum {
                        let b = &mut momentum_buffer[i];
                        *b = momentum * *b + g / d;
                        p - lr * *b
                    } else {
                        p - lr * (g / d)
                    };
                }
            },
        );
        self.steps += 1;
    }

    learning_rate_and_steps!(steps);
    state_buffers! {
        "square_avg" => square_avg,
        "momentum_buffer" => momentum_buffer if |c: &RmspropConfig| c.momentum > 0.0,
        "grad_avg" => grad_avg if |c: &RmspropConfig| c.centered,
    }
}
