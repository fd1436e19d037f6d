//! Learning-rate schedules: plain functions from a step (or epoch) number to a learning rate.
//!
//! A schedule holds no state and never touches an optimizer; the training loop asks it for the
//! rate and sets it, so the same schedule can be stepped per batch or per epoch:
//!
//! ```
//! use nnc_runtime::schedule::{Cosine, Schedule, Warmup};
//! use nnc_runtime::Model;
//!
//! fn train<M: Model<Elem = f32>>(model: &mut M, epochs: u64) -> Result<(), nnc_runtime::Error> {
//!     let sched = Warmup {
//!         steps: 5,
//!         inner: Cosine { base: 1e-3, min: 1e-5, period: epochs - 5 },
//!     };
//!     for epoch in 0..epochs {
//!         model.set_learning_rate(sched.lr(epoch) as f32)?;
//!         // ... one epoch of `model.train_step_dyn(...)` ...
//!     }
//!     Ok(())
//! }
//! ```

use std::f64::consts::PI;

/// A learning rate as a function of the step (or epoch) number, counting from 0.
pub trait Schedule {
    /// The learning rate for `step`.
    fn lr(&self, step: u64) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, step: u64) -> f64 {
        (**self).lr(step)
    }
}

/// The same rate at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant {
    /// The learning rate.
    pub lr: f64,
}

impl Schedule for Constant {
    fn lr(&self, _step: u64) -> f64 {
        self.lr
    }
}

/// `torch.optim.lr_scheduler.StepLR`: `base · gamma^⌊step / step_size⌋`, the rate multiplied by
/// `gamma` every `step_size` steps.
///
/// ```
/// use nnc_runtime::schedule::{Schedule, StepDecay};
/// use nnc_runtime::{Optimizer, Sgd, SgdConfig};
///
/// let sched = StepDecay { base: 0.1, step_size: 10, gamma: 0.5 };
/// let mut opt = Sgd::<f32>::new(4, SgdConfig::default());
/// for epoch in 0..30 {
///     opt.set_learning_rate(sched.lr(epoch) as f32);
/// }
/// assert_eq!(opt.learning_rate(), 0.025);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// The rate for the first `step_size` steps.
    pub base: f64,
    /// The number of steps between decays; must be positive.
    pub step_size: u64,
    /// The factor applied at each decay.
    pub gamma: f64,
}

impl Schedule for StepDecay {
    /// Panics if `step_size` is 0.
    fn lr(&self, step: u64) -> f64 {
        assert!(self.step_size > 0, "StepDecay: step_size must be positive");
        self.base * self.gamma.powf((step / self.step_size) as f64)
    }
}

/// Cosine annealing from `base` down to `min` over `period` steps, with the closed form of
/// `torch.optim.lr_scheduler.CosineAnnealingLR`:
/// `min + (base − min)·(1 + cos(π·step/period))/2`. From `step = period` on (and for a period of
/// 0) the rate stays at `min` rather than rising again as PyTorch's does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// The rate at step 0.
    pub base: f64,
    /// The rate at the end of the period and after it (PyTorch's `eta_min`).
    pub min: f64,
    /// The number of steps to anneal over (PyTorch's `T_max`).
    pub period: u64,
}

impl Schedule for Cosine {
    fn lr(&self, step: u64) -> f64 {
        if step >= self.period {
            return self.min;
        }
        let progress = step as f64 / self.period as f64;
        self.min + (self.base - self.min) * (1.0 + (PI * progress).cos()) / 2.0
    }
}

/// A linear warm-up before another schedule: for `step < steps` the rate is
/// `inner.lr(0) · (step + 1) / steps`, rising to the inner schedule's first rate, and from then
/// on `inner.lr(step − steps)`, the inner schedule started when the warm-up ends. With `steps = 0`
/// it is the inner schedule itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup<S: Schedule> {
    /// The number of warm-up steps.
    pub steps: u64,
    /// The schedule that follows the warm-up.
    pub inner: S,
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn lr(&self, step: u64) -> f64 {
        if step < self.steps {
            self.inner.lr(0) * (step + 1) as f64 / self.steps as f64
        } else {
            self.inner.lr(step - self.steps)
        }
    }
}
