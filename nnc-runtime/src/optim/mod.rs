//! Optimizers with PyTorch's update rules and defaults, updating all parameters of a model,
//! stored in one flat slice, in a single fused pass without allocating, plus gradient clipping.
//!
//! Every optimizer takes a configuration struct of `f64` hyperparameters whose `Default` is
//! PyTorch's (except SGD's learning rate, which PyTorch requires and nnc defaults to 1e-3). State
//! buffers are allocated once, in `new`, and only those the configuration needs, like PyTorch's
//! lazily created state.

/// Writes the [`Optimizer`] methods that every optimizer implements alike, inside its
/// `impl Optimizer<T>` block: the learning rate is the configuration's `lr`, kept in `f64` as
/// PyTorch keeps it in a Python float, and the step count is the `u64` field at the given path
/// (`steps`, or `moments.t`).
macro_rules! learning_rate_and_steps {
    ($($steps:ident).+) => {
        fn learning_rate(&self) -> T {
            T::from_f64(self.config.lr)
        }

        fn set_learning_rate(&mut self, lr: T) {
            self.config.lr = lr.to_f64();
        }

        fn steps(&self) -> u64 {
            self.$($steps).+
        }

        fn set_steps(&mut self, steps: u64) {
            self.$($steps).+ = steps;
        }
    };
}

/// Writes [`Optimizer::state`] and [`Optimizer::state_mut`] from one list of the state buffers,
/// so that the two always agree. Each entry is `"name" => field`, where `field` may be a path
/// such as `moments.exp_avg`, optionally followed by `if |config| condition` for a buffer that
/// only some configurations use.
macro_rules! state_buffers {
    ($($name:literal => $($field:ident).+ $(if $used:expr)?),+ $(,)?) => {
        fn state(&self) -> Vec<(&'static str, &[T])> {
            let mut state = Vec::new();
            $(
                if true $(&& ($used)(&self.config))? {
                    state.push(($name, &self.$($field).+[..]));
                }
            )+
            state
        }

        fn state_mut(&mut self) -> Vec<(&'static str, &mut [T])> {
            let mut state = Vec::new();
            $(
                if true $(&& ($used)(&self.config))? {
                    state.push(($name, &mut self.$($field).+[..]));
                }
            )+
            state
        }
    };
}

/// Writes the `with_tensors` builder of an optimizer whose [`Tensors`] field is at the given
/// path, so that every optimizer documents and checks it alike.
macro_rules! with_tensors {
    ($name:literal, $($field:ident).+) => {
        /// Describes the parameters as the tensors they are made of, in order, each `[rows,
        /// columns]` (a weight `[out, in]`, a bias `[out, 1]`), so that each thread updates the
        /// rows that the layers' kernels give it: a weight's rows then stay in one core's cache
        /// from step to step (see the runtime's `homes.rs`). Generated models pass their
        /// parameters' shapes. Without it the parameters are shared out in even pieces. The
        /// results are the same bits either way. Panics unless the tensors cover exactly the
        /// parameters.
        #[must_use]
        pub fn with_tensors(mut self, tensors: &[[usize; 2]]) -> Self {
            self.$($field).+.set($name, tensors);
            self
        }
    };
}

/// The tensors a flat parameter vector is made of, each `[rows, cols]`: by default one row of
/// every parameter, which shares the update out in even pieces.
#[derive(Clone, Debug)]
struct Tensors(Vec<[usize; 2]>);

impl Tensors {
    fn flat(len: usize) -> Self {
        Tensors(vec![[1, len]])
    }

    /// The number of parameters.
    fn len(&self) -> usize {
        elements(&self.0).expect("a layout that `flat` or `set` made fits in usize")
    }

    /// Replaces the layout, checking that it covers the same number of parameters.
    fn set(&mut self, optimizer: &str, tensors: &[[usize; 2]]) {
        let len = self.len();
        let total = elements(tensors);
        assert_eq!(
            total,
            Some(len),
            "{optimizer}: tensors of {total:?} elements in all for {len} parameters"
        );
        self.0 = tensors.to_vec();
    }
}

mod adagrad;
mod adam;
mod clip;
mod rmsprop;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::clip_grad_norm;
pub use rmsprop::{Rmsprop, RmspropConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::float::Float;
use crate::kernels::homes::elements;
use crate::kernels::Exec;

/// An update rule applied to a model's flat parameter vector.
pub trait Optimizer<T: Float> {
    /// Updates `params` in place from `grads` (same length) and counts the step, splitting the
    /// parameters over `exec`'s threads (each element's update is the same arithmetic whatever
    /// the split).
    fn step(&mut self, exec: &Exec, params: &mut [T], grads: &[T]);
    /// The current learning rate.
    fn learning_rate(&self) -> T;
    /// Sets the learning rate used by later steps, for example from a
    /// [`Schedule`](crate::schedule::Schedule).
    fn set_learning_rate(&mut self, lr: T);
    /// The number of steps taken so far.
    fn steps(&self) -> u64;
    /// Sets the step count, for resuming from a checkpoint together with [`state_mut`]. The count
    /// drives Adam's bias corrections, Adagrad's learning-rate decay and SGD's momentum start
    /// (a momentum buffer is taken as initialised once a step has been counted).
    ///
    /// [`state_mut`]: Optimizer::state_mut
    fn set_steps(&mut self, steps: u64);
    /// The optimizer's state buffers, each as long as the parameters and named as in PyTorch's
    /// `state_dict` (for example `("exp_avg", ..)`), for saving a checkpoint. Buffers the
    /// configuration does not use are not listed. Allocates the list, so not for the hot path.
    fn state(&self) -> Vec<(&'static str, &[T])>;
    /// The same buffers, writable, in the same order, for restoring a checkpoint.
    fn state_mut(&mut self) -> Vec<(&'static str, &mut [T])>;
}

/// Panics with PyTorch's message for an invalid hyperparameter. Configurations are validated by
/// the compiler, so reaching this is a bug in the caller.
fn require(optimizer: &str, name: &str, value: f64, valid: bool) {
    assert!(valid, "{optimizer}: invalid {name}: {value}");
}

/// [`require`] for a hyperparameter that PyTorch only requires to be non-negative (NaN is
/// rejected too).
fn require_non_negative(optimizer: &str, name: &str, value: f64) {
    require(optimizer, name, value, value >= 0.0);
}

/// Asserts that a step's parameters and gradients match the optimizer's size.
fn check_lengths(optimizer: &str, len: usize, params: usize, grads: usize) {
    assert!(
        params == len && grads == len,
        "{optimizer}: created for {len} parameters but stepped with {params} parameters and \
         {grads} gradients"
    );
}
