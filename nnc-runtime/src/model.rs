//! The `Model` trait every generated model implements, with the static descriptions of its
//! inputs, targets and parameters, and the argument helpers its `*_dyn` methods call.

use crate::error::Error;
use crate::float::Float;
use crate::metrics::Metrics;
use crate::optim::Optimizer;

/// One named parameter tensor inside a model's flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    /// The parameter's name, for example `"fc1.weight"`.
    pub name: &'static str,
    /// Its shape; weights are `[out, in]`.
    pub shape: &'static [usize],
    /// Where it starts in `params()`.
    pub offset: usize,
    /// Its number of elements (the product of `shape`).
    pub len: usize,
    /// Whether the optimizer updates it.
    pub trainable: bool,
}

/// What one element of an input, target or output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    /// The model's float type.
    Float,
    /// Integers (`u32`) in `0..range`: token ids, or class labels.
    Ids {
        /// One past the largest valid id: the vocabulary or the number of classes.
        range: usize,
    },
}

/// A named input, target or output, described per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name.
    pub name: &'static str,
    /// The shape of one sample (`[]` for one class label per sample).
    pub shape: &'static [usize],
    /// What its elements are.
    pub kind: ElemKind,
}

impl TensorInfo {
    /// Number of values in one sample: the product of the shape (1 for a scalar).
    pub fn per_sample(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The values of one input or target passed to the `*_dyn` methods, `batch × per_sample` of
/// them in row-major order.
#[derive(Clone, Copy, Debug)]
pub enum Values<'a, T> {
    /// Float values.
    Float(&'a [T]),
    /// Integer ids or class labels.
    Ids(&'a [u32]),
}

/// How the two kinds of values are named in error messages.
const FLOAT_VALUES: &str = "float values";
const IDS: &str = "integer ids or labels (u32)";

impl<'a, T> Values<'a, T> {
    /// The float values, or an error naming `name` if ids were passed.
    pub fn float(self, name: &'static str) -> Result<&'a [T], Error> {
        match self {
            Values::Float(values) => Ok(values),
            Values::Ids(_) => Err(Error::ValueKind {
                name,
                expected: FLOAT_VALUES,
                found: IDS,
            }),
        }
    }

    /// The ids, or an error naming `name` if float values were passed.
    pub fn ids(self, name: &'static str) -> Result<&'a [u32], Error> {
        match self {
            Values::Ids(ids) => Ok(ids),
            Values::Float(_) => Err(Error::ValueKind {
                name,
                expected: IDS,
                found: FLOAT_VALUES,
            }),
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Ids(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks that a `*_dyn` method received the number of inputs the model declares.
pub fn expect_inputs<T>(
    model: &'static str,
    inputs: &[Values<'_, T>],
    expected: usize,
) -> Result<(), Error> {
    arity("inputs", model, inputs.len(), expected)
}

/// Checks that `backward_dyn` received one gradient per output.
pub fn expect_output_grads<T>(
    model: &'static str,
    d_outputs: &[&[T]],
    expected: usize,
) -> Result<(), Error> {
    arity("output gradients", model, d_outputs.len(), expected)
}

/// Checks that a `*_dyn` method received the number of targets the model declares.
pub fn expect_targets(model: &'static str, n: usize, expected: usize) -> Result<(), Error> {
    arity("targets", model, n, expected)
}

fn arity(
    what: &'static str,
    model: &'static str,
    found: usize,
    expected: usize,
) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::Arity {
            what,
            model,
            expected,
            found,
        })
    }
}

/// Whether a forward pass trains or infers. Generated code passes it explicitly: dropout
/// draws masks and batch norm normalises with the batch's statistics in training, while in
/// inference dropout is the identity and batch norm uses its running statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training (`forward_backward`, `forward_train`).
    Train,
    /// Inference (`predict`, `evaluate`).
    Infer,
}

/// The tensor called `name` among `infos`, in the flat buffer `values` they describe.
fn named<'a, T>(infos: &[ParamInfo], values: &'a [T], name: &str) -> Option<&'a [T]> {
    let info = infos.iter().find(|p| p.name == name)?;
    values.get(info.offset..info.offset + info.len)
}

/// The interface of every generated model, so that training and evaluation helpers can be
/// generic over models. Inputs and targets are passed in declaration order.
pub trait Model: Sized {
    /// The element type.
    type Elem: Float;
    /// Preallocated buffers for one batch size limit; see `workspace`.
    type Workspace;
    /// The model's name.
    const NAME: &'static str;
    /// The inputs, in declaration order.
    const INPUTS: &'static [TensorInfo];
    /// The training targets, in declaration order.
    const TARGETS: &'static [TensorInfo];
    /// The outputs `predict` returns, in order.
    const OUTPUTS: &'static [TensorInfo];
    /// The parameter tensors, with their place in `params()`.
    const PARAMS: &'static [ParamInfo];
    /// Whether the model declares a loss (otherwise it trains through `backward_dyn` only).
    const HAS_LOSS: bool;

    /// A freshly initialised model; the same seed gives the same parameters.
    fn new(seed: u64) -> Self;
    /// A workspace for batches of up to `capacity` samples, whose kernels run on
    /// [`Exec::default_threads`](crate::Exec::default_threads) threads (`NNC_NUM_THREADS`, or
    /// as many as the machine has).
    fn workspace(&self, capacity: usize) -> Self::Workspace {
        self.workspace_with_threads(capacity, crate::Exec::default_threads())
    }
    /// A workspace for batches of up to `capacity` samples whose kernels run on `threads`
    /// threads: the caller's and `threads - 1` workers, started here and joined when the
    /// workspace is dropped. For a given thread count, results are the same bits run to run.
    /// Panics, like `vec!`, where the memory or the threads cannot be had.
    fn workspace_with_threads(&self, capacity: usize, threads: usize) -> Self::Workspace {
        self.try_workspace_with_threads(capacity, threads)
            .unwrap_or_else(|e| panic!("{e}"))
    }
    /// [`Model::workspace_with_threads`], or [`Error::Allocation`](crate::Error::Allocation)
    /// where `capacity` asks for more memory than the allocator gives, or
    /// [`Error::Thread`](crate::Error::Thread) where the system refuses a worker thread.
    fn try_workspace_with_threads(
        &self,
        capacity: usize,
        threads: usize,
    ) -> Result<Self::Workspace, crate::Error>;
    /// All parameters, flat: the trainable ones first.
    fn params(&self) -> &[Self::Elem];
    /// All parameters, flat and writable.
    fn params_mut(&mut self) -> &mut [Self::Elem];
    /// The gradients from the last backward pass, laid out like `params()`.
    fn grads(&self) -> &[Self::Elem];
    /// Forward and backward pass through the loss: fills `grads()` and returns the loss.
    /// Models without a loss return [`Error::NoLoss`].
    fn forward_backward_dyn(
        &mut self,
        ws: &mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
        targets: &[Values<'_, Self::Elem>],
    ) -> Result<Self::Elem, Error>;
    /// Loss and accuracy of a batch in inference mode, without a backward pass.
    fn evaluate_dyn(
        &self,
        ws: &mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
        targets: &[Values<'_, Self::Elem>],
    ) -> Result<Metrics<Self::Elem>, Error>;
    /// Loss and accuracy of the last `forward_backward_dyn` on this workspace.
    fn metrics(ws: &Self::Workspace) -> Metrics<Self::Elem>;
    /// One optimizer update from the current `grads()`, on the calling thread.
    fn update(&mut self);
    /// One optimizer update from the current `grads()`, on the workspace's threads.
    fn update_with(&mut self, ws: &Self::Workspace);
    /// The model's first output for a batch, borrowed from the workspace.
    fn predict_dyn<'w>(
        &self,
        ws: &'w mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
    ) -> Result<&'w [Self::Elem], Error>;
    /// The forward pass in training mode, kept for `backward_dyn`; read the outputs with
    /// [`Model::output`].
    fn forward_train_dyn(
        &mut self,
        ws: &mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
    ) -> Result<(), Error>;
    /// The backward pass from one gradient per output, after `forward_train_dyn` with the same
    /// inputs.
    fn backward_dyn(
        &mut self,
        ws: &mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
        d_outputs: &[&[Self::Elem]],
    ) -> Result<(), Error>;
    /// Output `index` of the last forward pass on this workspace: `predict`, `step`,
    /// `forward_train`, or a training pass (`forward_backward`, `train_step`), after which the
    /// outputs stay readable, so that a final state (`h_n`, `c_n`) can start the next batch.
    fn output(ws: &Self::Workspace, index: usize) -> Option<&[Self::Elem]>;
    /// The gradient with respect to input `index` from the last backward pass, for inputs
    /// declared `requires_grad`.
    fn input_grad(ws: &Self::Workspace, index: usize) -> Option<&[Self::Elem]>;
    /// The optimizer and its state.
    fn optimizer(&self) -> &dyn Optimizer<Self::Elem>;
    /// The optimizer, writable (learning rate, state for checkpoints).
    fn optimizer_mut(&mut self) -> &mut dyn Optimizer<Self::Elem>;

    /// Whether the model has a `step` entry point, which generation calls one position at a
    /// time (a model over sequences whose positions meet only in recurrent layers and causal
    /// attention).
    const HAS_STEP: bool = false;

    /// The most positions a sequence may have at the step entry point, for a model whose step
    /// reads its position (attention's cache, a position table): the sequence length it was
    /// compiled for, after which a step is [`Error::ContextFull`](crate::Error) until
    /// `reset_sequences`. `None` for a step that can go on forever (recurrent layers only).
    const STEP_POSITIONS: Option<usize> = None;

    /// One position of each sequence of the batch, continuing from the state the workspace
    /// carries: the first output at that position. [`Error::NoStep`](crate::Error) for a model
    /// without a step entry point.
    fn step_dyn<'w>(
        &self,
        ws: &'w mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
    ) -> Result<&'w [Self::Elem], Error> {
        let _ = (ws, inputs);
        Err(Error::NoStep {
            model: Self::NAME,
            why: "it has no recurrent or attention layer",
        })
    }

    /// Forgets the state `step_dyn` carries, so that the next step starts new sequences.
    fn reset_sequences(ws: &mut Self::Workspace) {
        let _ = ws;
    }

    /// The tensors the model keeps across calls (batch norm's running statistics), with their
    /// place in `state()`; empty for models without state.
    const STATE: &'static [ParamInfo] = &[];

    /// The state kept across calls, flat: written by training, read by inference, saved in
    /// checkpoints.
    fn state(&self) -> &[Self::Elem] {
        &[]
    }

    /// The state, writable (for loading a checkpoint).
    fn state_mut(&mut self) -> &mut [Self::Elem] {
        &mut []
    }

    /// Returns the state to its initial value, as a new model has it.
    fn reset_state(&mut self) {}

    /// The state tensor called `name`, if there is one.
    fn state_tensor(&self, name: &str) -> Option<&[Self::Elem]> {
        named(Self::STATE, self.state(), name)
    }

    /// Restarts the random state that draws dropout masks; models without dropout have none.
    fn reseed(&mut self, seed: u64) {
        let _ = seed;
    }

    /// The optimizer's learning rate.
    fn learning_rate(&self) -> Self::Elem {
        self.optimizer().learning_rate()
    }

    /// Sets the optimizer's learning rate, or returns [`Error::LearningRate`](crate::Error)
    /// and leaves it unchanged where `lr` is negative, infinite or NaN.
    fn set_learning_rate(&mut self, lr: Self::Elem) -> Result<(), crate::Error> {
        crate::check::learning_rate(lr)?;
        self.optimizer_mut().set_learning_rate(lr);
        Ok(())
    }

    /// One training step: `forward_backward_dyn`, then `update_with`. Returns the loss before
    /// the update.
    fn train_step_dyn(
        &mut self,
        ws: &mut Self::Workspace,
        inputs: &[Values<'_, Self::Elem>],
        targets: &[Values<'_, Self::Elem>],
    ) -> Result<Self::Elem, Error> {
        let loss = self.forward_backward_dyn(ws, inputs, targets)?;
        self.update_with(ws);
        Ok(loss)
    }

    /// The parameter tensor called `name`, if there is one.
    fn param(&self, name: &str) -> Option<&[Self::Elem]> {
        named(Self::PARAMS, self.params(), name)
    }

    /// The parameter tensor called `name`, writable, if there is one.
    fn param_mut(&mut self, name: &str) -> Option<&mut [Self::Elem]> {
        let info = Self::PARAMS.iter().find(|p| p.name == name)?;
        self.params_mut()
            .get_mut(info.offset..info.offset + info.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_info_per_sample() {
        let image = TensorInfo {
            name: "x",
            shape: &[28, 28],
            kind: ElemKind::Float,
        };
        assert_eq!(image.per_sample(), 784);
        let label = TensorInfo {
            name: "y",
            shape: &[],
            kind: ElemKind::Ids { range: 10 },
        };
        assert_eq!(label.per_sample(), 1);
    }

    #[test]
    fn value_kinds() {
        let values = [1.0f32, 2.0];
        let ids = [1u32];
        assert_eq!(Values::Float(&values[..]).float("y"), Ok(&values[..]));
        assert_eq!(Values::<f32>::Ids(&ids).ids("y"), Ok(&ids[..]));
        assert_eq!(
            Values::Float(&values[..]).ids("y"),
            Err(Error::ValueKind {
                name: "y",
                expected: "integer ids or labels (u32)",
                found: "float values"
            })
        );
        assert!(Values::<f32>::Ids(&ids).float("y").is_err());
        assert_eq!(Values::<f32>::Ids(&ids).len(), 1);
    }

    #[test]
    fn arity_checks() {
        let x = [0.0f64; 4];
        assert_eq!(expect_inputs("Mlp", &[Values::Float(&x[..])], 1), Ok(()));
        assert_eq!(
            expect_inputs("Mlp", &[Values::Float(&x[..]), Values::Float(&x[..])], 1),
            Err(Error::Arity {
                what: "inputs",
                model: "Mlp",
                expected: 1,
                found: 2
            })
        );
        assert!(expect_targets("Mlp", 0, 1).is_err());
        assert!(expect_targets("Mlp", 1, 1).is_ok());
    }
}
