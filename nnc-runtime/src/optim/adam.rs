//! Adam and AdamW, with optional AMSGrad: `torch.optim.Adam` and `torch.optim.AdamW`. Both run
//! the fused, vectorized update kernel in `kernels/update.rs`.

use super::{check_lengths, require, require_non_negative, Optimizer, Tensors};
use crate::float::Float;
use crate::kernels::{adam_update, AdamCoefficients, AdamStep, Exec};

/// Hyperparameters of [`Adam`] and [`AdamW`], with PyTorch's names and Adam's defaults.
///
/// `Default` gives Adam's weight decay of 0; PyTorch's `AdamW` defaults to 1e-2, which
/// [`AdamConfig::adamw`] gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay of the first moment (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (default 0.999).
    pub beta2: f64,
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// For Adam an L2 penalty added to the gradient; for AdamW the decoupled decay rate
    /// (default 0; PyTorch's AdamW default is 1e-2).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment in the denominator (default false).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// PyTorch's `AdamW` defaults: as `Default`, but with weight decay 1e-2.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            ..AdamConfig::default()
        }
    }

    /// Panics on a configuration PyTorch rejects.
    fn validate(&self, optimizer: &str) {
        require_non_negative(optimizer, "learning rate", self.lr);
        require_non_negative(optimizer, "epsilon value", self.eps);
        let beta_ok = |b: f64| (0.0..1.0).contains(&b);
        require(
            optimizer,
            "beta parameter at index 0",
            self.beta1,
            beta_ok(self.beta1),
        );
        require(
            optimizer,
            "beta parameter at index 1",
            self.beta2,
            beta_ok(self.beta2),
        );
        require_non_negative(optimizer, "weight_decay value", self.weight_decay);
    }
}

/// The moments and step count shared by Adam and AdamW.
#[derive(Clone, Debug)]
struct Moments<T> {
    exp_avg: Vec<T>,
    exp_avg_sq: Vec<T>,
    /// Empty unless AMSGrad is on.
    max_exp_avg_sq: Vec<T>,
    t: u64,
    /// The parameters weight decay leaves alone, sorted and disjoint (see `without_decay`).
    no_decay: Vec<std::ops::Range<usize>>,
    tensors: Tensors,
}

impl<T: Float> Moments<T> {
    fn new(len: usize, amsgrad: bool) -> Self {
        Moments {
            exp_avg: vec![T::ZERO; len],
            exp_avg_sq: vec![T::ZERO; len],
            max_exp_avg_sq: vec![T::ZERO; if amsgrad { len } else { 0 }],
            t: 0,
            no_decay: Vec::new(),
            tensors: Tensors::flat(len),
        }
    }

    /// Exempts `ranges` of the parameters from weight decay. Panics on a range past the end.
    fn exempt(&mut self, optimizer: &str, ranges: &[std::ops::Range<usize>]) {
        let len = self.exp_avg.len();
        let mut sorted: Vec<_> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
        sorted.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
        for r in sorted {
            assert!(
                r.end <= len,
                "{optimizer}: a range without weight decay, {r:?}, ends past the {len} parameters"
            );
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        self.no_decay = merged;
    }

    /// One step; `decoupled` selects AdamW's decay of the parameter over Adam's L2 penalty.
    fn step(
        &mut self,
        exec: &Exec,
        c: &AdamConfig,
        decoupled: bool,
        params: &mut [T],
        grads: &[T],
    ) {
        let name = if decoupled { "AdamW" } else { "Adam" };
        check_lengths(name, self.exp_avg.len(), params.len(), grads.len());
        self.t += 1;
        // Bias corrections are computed once per step in f64, as PyTorch does in Python floats.
        // Beyond i32::MAX steps β^t has long underflowed to 0, so clamping the exponent is exact.
        let t = self.t.min(i32::MAX as u64) as i32;
        let bias_correction1 = 1.0 - c.beta1.powi(t);
        let bias_correction2 = 1.0 - c.beta2.powi(t);
        let (weight_decay, decay) = if decoupled {
            (T::ZERO, T::from_f64(1.0 - c.lr * c.weight_decay))
        } else {
            (T::from_f64(c.weight_decay), T::ONE)
        };
        let coefficients = AdamCoefficients {
            step_size: T::from_f64(c.lr / bias_correction1),
            inv_bias_correction2_sqrt: T::from_f64(1.0 / bias_correction2.sqrt()),
            beta1: T::from_f64(c.beta1),
            beta2: T::from_f64(c.beta2),
            eps: T::from_f64(c.eps),
            weight_decay,
            decay,
        };
        let step = AdamStep {
            no_decay: &self.no_decay,
            decayed: coefficients,
            // The exempt parameters meet the same arithmetic as the others, without the decay.
            exempt: AdamCoefficients {
                weight_decay: T::ZERO,
                decay: T::ONE,
                ..coefficients
            },
        };
        // `max_exp_avg_sq` is empty unless AMSGrad is on, which is how the kernel tells.
        let (m, v, v_max) = (
            &mut self.exp_avg,
            &mut self.exp_avg_sq,
            &mut self.max_exp_avg_sq,
        );
        adam_update(exec, &self.tensors.0, params, grads, m, v, v_max, &step);
    }
}

/// `torch.optim.Adam`. At step `t` (counting from 1), per element:
///
/// ```text
/// g += weight_decay·p;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
/// v̂ = max(v̂, v) with amsgrad, else v̂ = v
/// p -= (lr / (1-β1^t)) · m / (sqrt(v̂) / sqrt(1-β2^t) + eps)
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T> {
    config: AdamConfig,
    moments: Moments<T>,
}

impl<T: Float> Adam<T> {
    /// Adam for `len` parameters, with zeroed moments. Panics on a configuration PyTorch rejects
    /// (a negative learning rate, eps or weight decay, or a beta outside `[0, 1)`).
    pub fn new(len: usize, config: AdamConfig) -> Self {
        config.validate("Adam");
        Adam {
            config,
            moments: Moments::new(len, config.amsgrad),
        }
    }

    /// Adam for `len` parameters with PyTorch's defaults for everything but the learning rate.
    pub fn with_defaults(len: usize, lr: T) -> Self {
        Adam::new(
            len,
            AdamConfig {
                lr: lr.to_f64(),
                ..AdamConfig::default()
            },
        )
    }

    /// The hyperparameters, with the current learning rate.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Leaves the parameters in `ranges` (indices into the flat parameter vector) out of the
    /// weight decay, as the usual convention does for biases, norms' scales and other vectors.
    /// Panics on a range past the end.
    #[must_use]
    pub fn without_decay(mut self, ranges: &[std::ops::Range<usize>]) -> Self {
        self.moments.exempt("Adam", ranges);
        self
    }

    with_tensors!("Adam", moments.tensors);

    /// The first and second moment estimates `(m, v)`.
    pub fn moments(&self) -> (&[T], &[T]) {
        (&self.moments.exp_avg, &self.moments.exp_avg_sq)
    }
}

/// `torch.optim.AdamW`: Adam with decoupled weight decay. Before each Adam step (taken without
/// an L2 penalty) the parameters shrink by `p *= 1 − lr·weight_decay`; both happen in the same
/// fused pass. Note that [`AdamConfig::default`] has weight decay 0, while PyTorch's AdamW
/// defaults to 1e-2 ([`AdamConfig::adamw`]).
#[derive(Clone, Debug)]
pub struct AdamW<T> {
    config: AdamConfig,
    moments: Moments<T>,
}

impl<T: Float> AdamW<T> {
    /// AdamW for `len` parameters, with zeroed moments. Panics on a configuration PyTorch rejects.
    pub fn new(len: usize, config: AdamConfig) -> Self {
        config.validate("AdamW");
        AdamW {
            config,
            moments: Moments::new(len, config.amsgrad),
        }
    }

    /// Leaves the parameters in `ranges` (indices into the flat parameter vector) out of the
    /// decoupled weight decay: GPT-2's and nanoGPT's convention decays only matrices, never
    /// biases, norms' scales and other vectors. Panics on a range past the end.
    #[must_use]
    pub fn without_decay(mut self, ranges: &[std::ops::Range<usize>]) -> Self {
        self.moments.exempt("AdamW", ranges);
        self
    }

    with_tensors!("AdamW", moments.tensors);

    /// The hyperparameters, with the current learning rate.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

/// The `Optimizer` impl, identical for both but for the decay's kind.
macro_rules! impl_optimizer {
    ($ty:ident, $decoupled:expr) => {
        impl<T: Float> Optimizer<T> for $ty<T> {
            fn step(&mut self, exec: &Exec, params: &mut [T], grads: &[T]) {
                self.moments
                    .step(exec, &self.config, $decoupled, params, grads);
            }

            learning_rate_and_steps!(moments.t);
            state_buffers! {
                "exp_avg" => moments.exp_avg,
                "exp_avg_sq" => moments.exp_avg_sq,
                "max_exp_avg_sq" => moments.max_exp_avg_sq if |c: &AdamConfig| c.amsgrad,
            }
        }
    };
}

impl_optimizer!(Adam, false);
impl_optimizer!(AdamW, true);
