//! The IR: one [`Program`] per model, holding a typed, shape-annotated SSA [`Graph`].
//!
//! Every node defines exactly one value, and a node's id is that value's id. Nodes are kept
//! in a topological order (arguments always precede their users), which is also the schedule
//! that code generation follows. Spans live in a table parallel to the nodes, as in naga.
//!
//! Shapes are N-dimensional; a dimension is either a constant or the batch size `B`, which is
//! chosen at run time. Parameters have no batch dimension; activations have it first.

mod conv;
mod op;
mod print;
pub mod verify;

pub use conv::{out_size, ConvGeom, PoolGeom};
pub use op::{Act, Const, LossKind, LossSpec, Op, Perm, Reduction, ScanStart, Scratch};

use crate::diag::Span;
use std::fmt;

/// The id of a node, and of the value it defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The batch size, known only at run time (bounded by the workspace capacity).
    Batch,
    Fixed(usize),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Batch => f.write_str("B"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A batched shape: `[B, dims...]`.
    pub fn batched(per_sample: &[usize]) -> Shape {
        let mut dims = vec![Dim::Batch];
        dims.extend(per_sample.iter().map(|&d| Dim::Fixed(d)));
        Shape(dims)
    }

    /// A shape without batch dimension (parameters, their gradients).
    pub fn fixed(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Fixed(d)).collect())
    }

    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn is_batched(&self) -> bool {
        self.0.contains(&Dim::Batch)
    }

    /// The number of elements per sample (batched) or in total (unbatched).
    pub fn elems_per_sample(&self) -> usize {
        fixed_size(&self.0)
    }

    /// The dimensions after the batch dimension, as constants.
    pub fn sample_dims(&self) -> Vec<usize> {
        self.0
            .iter()
            .filter_map(|d| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Batch => None,
            })
            .collect()
    }

    pub fn last(&self) -> Option<Dim> {
        self.0.last().copied()
    }

    /// The shape of one sample: every axis but the batch (the whole shape when unbatched).
    pub fn per_sample(&self) -> Shape {
        Shape(
            self.0
                .iter()
                .copied()
                .filter(|d| *d != Dim::Batch)
                .collect(),
        )
    }

    /// The channels of a batch-normalised value `[B, C, …]` (its first per-sample axis) and
    /// the values per channel in one sample (the product of the axes after it).
    pub fn channels(&self) -> Option<(usize, usize)> {
        match self.0.as_slice() {
            [Dim::Batch, Dim::Fixed(c), rest @ ..] if !rest.contains(&Dim::Batch) => {
                Some((*c, fixed_size(rest)))
            }
            _ => None,
        }
    }

    /// The size of the last axis, the width of a row (1 for a scalar).
    pub fn row_width(&self) -> usize {
        match self.0.last() {
            Some(Dim::Fixed(n)) => *n,
            _ => 1,
        }
    }

    /// The number of rows per sample: the product of every axis between the batch and the
    /// last one. A per-row kernel runs over `batch × rows_per_sample` rows of `row_width`.
    pub fn rows_per_sample(&self) -> usize {
        fixed_size(&self.0[..self.0.len().saturating_sub(1)])
    }

    /// The elements per sample in the axes before `axis` (after the batch) and from `axis`
    /// on: the outer and inner block sizes of a join or a cut along `axis`.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize) {
        let (outer, inner) = self.0.split_at(axis.min(self.0.len()));
        (fixed_size(outer), fixed_size(inner))
    }
}

/// The product of the constant dimensions in `dims`: the elements per sample when one of them
/// is the batch.
pub fn fixed_size(dims: &[Dim]) -> usize {
    dims.iter()
        .map(|d| match d {
            Dim::Batch => 1,
            Dim::Fixed(n) => *n,
        })
        .product()
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// The model's floating-point type (f32 or f64, chosen at code generation).
    Float,
    /// Integers in `0..range` (`u32` in generated code): token ids fed to an embedding, or the
    /// class labels a loss scores against. The range is part of the type, so that an
    /// embedding's vocabulary and a loss's class count are checked against it.
    Ids(usize),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Type {
    pub dtype: DType,
    pub shape: Shape,
}

impl Type {
    pub fn float(shape: Shape) -> Type {
        Type {
            dtype: DType::Float,
            shape,
        }
    }

    pub fn ids(range: usize, shape: Shape) -> Type {
        Type {
            dtype: DType::Ids(range),
            shape,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dtype {
            DType::Float => write!(f, "float{}", self.shape),
            DType::Ids(range) => write!(f, "ids({range}){}", self.shape),
        }
    }
}

/// The part of the graph a node belongs to. Entry points run phases in this order, each a
/// contiguous run of nodes: the forward pass, the training-mode state writes (batch norm's
/// running statistics), then either the loss and its backward pass or the pullback from
/// caller-supplied output gradients. A model whose batch norm can be folded into the
/// convolution before it also has an inference-only copy of its forward pass (`Infer`), after
/// the folded weights it reads (`Fold`), which `predict` runs instead of `Forward`. A model over
/// sequences whose positions meet only in recurrent layers also has `Step`, an inference-only
/// copy of its forward pass at one position that continues from a carried state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Forward,
    Commit,
    Loss,
    Backward,
    Pullback,
    Fold,
    Infer,
    Step,
}

impl Phase {
    /// Whether the phase's nodes may hold values in the arena. State writes go to the model's
    /// state buffers only, so an entry point that skips them (`evaluate`) plans like one that
    /// runs them; folded weights go to a buffer of the workspace, kept between calls.
    pub fn uses_arena(self) -> bool {
        !matches!(self, Phase::Commit | Phase::Fold)
    }
}

/// Whether a pass trains or infers. Dropout and batch norm behave differently in the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

/// A way the generated code runs the graph: the phases one call (or one pair of calls sharing
/// a workspace, like `forward_train` then `backward`) executes in order over one arena, and
/// its mode. Liveness, memory planning and verification are per schedule; code generation
/// emits an entry point's body from its schedule's phases. Adding an entry point means adding
/// a schedule here and its method in `codegen/methods.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The entry points that run it, as the generated code names them.
    pub name: &'static str,
    pub mode: Mode,
    pub phases: &'static [Phase],
}

impl Schedule {
    pub const PREDICT: Schedule = Schedule {
        name: "predict",
        mode: Mode::Infer,
        phases: &[Phase::Forward],
    };
    /// `predict` of a model with folded batch norm: the folded weights (recomputed only when
    /// the parameters or the state changed since the workspace last computed them), then the
    /// inference-only forward pass that reads them.
    pub const PREDICT_FOLDED: Schedule = Schedule {
        name: "predict",
        mode: Mode::Infer,
        phases: &[Phase::Fold, Phase::Infer],
    };
    /// `step`: one position of each sequence, from and to the state the workspace carries.
    pub const STEP: Schedule = Schedule {
        name: "step",
        mode: Mode::Infer,
        phases: &[Phase::Step],
    };
    pub const EVALUATE: Schedule = Schedule {
        name: "evaluate",
        mode: Mode::Infer,
        phases: &[Phase::Forward, Phase::Loss],
    };
    pub const FORWARD_BACKWARD: Schedule = Schedule {
        name: "forward_backward",
        mode: Mode::Train,
        phases: &[Phase::Forward, Phase::Commit, Phase::Loss, Phase::Backward],
    };
    pub const PULLBACK: Schedule = Schedule {
        name: "forward_train + backward",
        mode: Mode::Train,
        phases: &[Phase::Forward, Phase::Commit, Phase::Pullback],
    };

    pub fn runs(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    /// The phases before `phase` in this schedule, if it runs `phase`.
    pub fn before(&self, phase: Phase) -> Option<&'static [Phase]> {
        let i = self.phases.iter().position(|p| *p == phase)?;
        Some(&self.phases[..i])
    }

    /// The phases before `phase` whose values may be in the arena when it starts.
    pub fn arena_before(&self, phase: Phase) -> Option<Vec<Phase>> {
        let before = self.before(phase)?;
        Some(before.iter().copied().filter(|p| p.uses_arena()).collect())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub args: Vec<ValueId>,
    pub ty: Type,
    pub phase: Phase,
    /// A readable name for the value (`hidden`, `d.hidden`), used in IR text and generated code.
    pub name: String,
}

/// The value graph of one model, with a span per node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub spans: Vec<Span>,
}

impl Graph {
    /// The value whose storage `id` shares: itself, or for a reshape (a view of the same
    /// row-major elements), the value it reshapes, followed to the end of the chain.
    pub fn storage_root(&self, mut id: ValueId) -> ValueId {
        while self.node(id).op == Op::Reshape {
            id = self.node(id).args[0];
        }
        id
    }

    /// What an `AttentionMix` node mixes the values with: its weights (the `AttentionProbs`
    /// node), their scale, and the dropout mask when the weights pass through one (`P ⊙ mask`).
    /// Lowering builds the mix only this way, so any other argument is a bug.
    pub fn attention_weights(&self, mix: ValueId) -> (ValueId, Const, Option<ValueId>) {
        let weights = self.node(mix).args[0];
        let (probs, mask) = match self.node(weights) {
            n if n.op == Op::Mul => (n.args[0], Some(n.args[1])),
            _ => (weights, None),
        };
        let Op::AttentionProbs { scale, .. } = self.node(probs).op else {
            unreachable!("attention mixes the weights of an attention (built so by lowering)")
        };
        (probs, scale, mask)
    }

    /// Whether the attention weights `weights` (an [`Op::AttentionProbs`], or its product with
    /// a dropout mask) are causal, so that their upper triangle is exactly zero.
    pub fn causal_weights(&self, weights: ValueId) -> bool {
        let node = self.node(weights);
        let probs = if node.op == Op::Mul {
            node.args[0]
        } else {
            weights
        };
        matches!(self.node(probs).op, Op::AttentionProbs { causal: true, .. })
    }

    pub fn push(&mut self, node: Node, span: Span) -> ValueId {
        let id = ValueId(self.nodes.len() as u32);
        self.nodes.push(node);
        self.spans.push(span);
        id
    }

    pub fn node(&self, id: ValueId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn ty(&self, id: ValueId) -> &Type {
        &self.nodes[id.index()].ty
    }

    pub fn span(&self, id: ValueId) -> Span {
        self.spans[id.index()]
    }

    pub fn ids(&self) -> impl DoubleEndedIterator<Item = ValueId> {
        (0..self.nodes.len() as u32).map(ValueId)
    }

    /// How many times each value is used as an argument.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for a in &n.args {
                counts[a.index()] += 1;
            }
        }
        counts
    }
}

/// How a parameter is filled when the model is constructed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He/Kaiming normal, std sqrt(2 / fan_in): for layers followed by relu.
    HeNormal,
    /// He/Kaiming uniform, bound sqrt(6 / fan_in).
    HeUniform,
    /// Xavier/Glorot uniform, bound sqrt(6 / (fan_in + fan_out)): for tanh, sigmoid, linear.
    XavierUniform,
    /// Xavier/Glorot normal, std sqrt(2 / (fan_in + fan_out)).
    XavierNormal,
    /// Normal with a fixed standard deviation: `N(0, 1)` for embedding tables.
    Normal(f64),
    /// Uniform in `[−bound, bound]`: PyTorch's recurrent layers draw every weight and bias
    /// from `U(±1/√hidden)`.
    Uniform(f64),
    Zeros,
    Constant(f64),
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::HeNormal => f.write_str("he_normal"),
            Init::HeUniform => f.write_str("he_uniform"),
            Init::XavierUniform => f.write_str("xavier_uniform"),
            Init::XavierNormal => f.write_str("xavier_normal"),
            Init::Normal(std) => write!(f, "normal({std})"),
            Init::Uniform(bound) => write!(f, "uniform(±{bound})"),
            Init::Zeros => f.write_str("zeros"),
            Init::Constant(c) => write!(f, "constant({c})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The stable name, `layer.weight` or `layer.bias`: the key in checkpoints.
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// (fan_in, fan_out) for the initializer.
    pub fans: (usize, usize),
    /// Frozen parameters get no gradient and are never updated.
    pub frozen: bool,
    /// The node that reads this parameter.
    pub value: ValueId,
    pub span: Span,
}

impl Param {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tensor the model keeps across calls, outside the parameters: written by the `Commit`
/// phase of training entry points, read by the forward pass, saved in checkpoints under its
/// stable name and reset by `reset_state`. Batch norm's running statistics are the first.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The stable name, such as `bn.running_mean`: the key in checkpoints.
    pub name: String,
    pub shape: Vec<usize>,
    /// The value every element starts from, and returns to on reset.
    pub init: f64,
    /// The node that reads this state.
    pub value: ValueId,
    pub span: Span,
}

impl State {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The update rules nnc knows; the hyperparameters live in [`Optimizer::hyper`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Adagrad,
    Rmsprop,
    Adam,
    AdamW,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adagrad => "adagrad",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// A hyperparameter value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hyper {
    Real(f64),
    Bool(bool),
}

/// The optimizer: its rule, its hyperparameters in the order of the runtime's config struct
/// fields (PyTorch's names and defaults), and optional global gradient-norm clipping.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub hyper: Vec<(&'static str, Hyper)>,
    pub clip_grad_norm: Option<f64>,
    /// Whether weight decay reaches only the parameters of two or more axes (`decay =
    /// matrices`), leaving biases, norms' scales and other vectors alone.
    pub decay_matrices_only: bool,
}

impl Optimizer {
    pub fn real(&self, name: &str) -> f64 {
        match self.hyper.iter().find(|(n, _)| *n == name) {
            Some((_, Hyper::Real(x))) => *x,
            _ => 0.0,
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.hyper.iter().find(|(n, _)| *n == name),
            Some((_, Hyper::Bool(true)))
        )
    }

    /// Whether weight decay applies to a parameter of this shape.
    pub fn decays(&self, shape: &[usize]) -> bool {
        self.real("weight_decay") > 0.0 && (!self.decay_matrices_only || shape.len() >= 2)
    }

    /// How many state values the optimizer keeps per trainable parameter.
    pub fn state_per_param(&self) -> usize {
        let momentum = usize::from(self.real("momentum") != 0.0);
        match self.kind {
            OptimizerKind::Sgd => momentum,
            OptimizerKind::Adagrad => 1,
            OptimizerKind::Rmsprop => 1 + momentum + usize::from(self.flag("centered")),
            OptimizerKind::Adam | OptimizerKind::AdamW => 2 + usize::from(self.flag("amsgrad")),
        }
    }
}

/// A named input, target or output of the model and the node that stands for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: String,
    pub value: ValueId,
    pub span: Span,
}

/// The final gradients one backward pass (`Phase::Backward` or `Phase::Pullback`) computes: per
/// parameter (none for frozen ones and those the pass does not reach) and per input (only inputs with `requires_grad`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gradients {
    pub params: Vec<Option<ValueId>>,
    pub inputs: Vec<Option<ValueId>>,
}

impl Gradients {
    /// Every final gradient value, parameters first, in slot order.
    pub fn finals(&self) -> Vec<ValueId> {
        self.params
            .iter()
            .chain(&self.inputs)
            .flatten()
            .copied()
            .collect()
    }
}

/// How accuracy is scored, chosen from the first loss term that classifies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricKind {
    /// argmax of the prediction against an integer label; rows labelled `ignore` (the loss's
    /// `ignore_index`) are not scored.
    ArgmaxLabel { ignore: Option<u32> },
    /// argmax of the prediction against argmax of a one-hot or soft target.
    ArgmaxMatch,
    /// prediction above a threshold against target above 0.5 (binary accuracy).
    Threshold(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    pub kind: MetricKind,
    pub prediction: ValueId,
    pub target: ValueId,
}

/// Where a value lives at run time, decided by the memory plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A slice passed in by the caller (inputs and targets).
    Caller,
    /// The parameter buffer (parameter reads).
    Params,
    /// The gradient buffer, at the parameter's own offset (final parameter gradients).
    Grads,
    /// The workspace's gradient buffer of input `i` (final gradients of `requires_grad` inputs).
    InputGrad(usize),
    /// A local scalar (the loss).
    Scalar,
    /// The model's state buffer, at the range of state `i` (state reads and the writes of the
    /// `Commit` phase).
    State(usize),
    /// The batched region of the arena: `offset * capacity`, `per_sample * batch` elements.
    Batched { offset: usize, per_sample: usize },
    /// The fixed region of the arena.
    Fixed { offset: usize, len: usize },
    /// The workspace's buffer of folded weights (the `Fold` phase), kept between calls.
    Folded { offset: usize, len: usize },
    /// The workspace's carried state (the `Step` phase's reads and writes of `Op::Carried`
    /// values), kept between calls: `offset * capacity`, `per_sample * batch` elements.
    Carry { offset: usize, per_sample: usize },
}

/// The static memory plan: a storage per value plus the arena's size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    pub storage: Vec<Storage>,
    /// Arena elements per sample of batch capacity.
    pub per_sample: usize,
    /// Arena elements independent of the batch.
    pub fixed: usize,
    /// Elements of the workspace's buffer of folded weights.
    pub folded: usize,
    /// Elements per sample of batch capacity of the workspace's carried state.
    pub carry: usize,
}

/// One model, from lowering to code generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub name: String,
    pub span: Span,
    pub graph: Graph,
    pub params: Vec<Param>,
    /// Tensors kept across calls, in the order of the model's state buffer.
    pub states: Vec<State>,
    pub inputs: Vec<Binding>,
    /// Per input: whether the caller asked for its gradient.
    pub requires_grad: Vec<bool>,
    pub targets: Vec<Binding>,
    /// What `predict` returns, in order.
    pub outputs: Vec<Binding>,
    /// The total loss (a scalar), when the model declares one.
    pub loss: Option<ValueId>,
    /// The weighted terms that sum to `loss`.
    pub loss_terms: Vec<ValueId>,
    pub metric: Option<Metric>,
    pub optimizer: Optimizer,
    /// The loss's backward pass, set by autodiff when there is a loss.
    pub backward: Option<Gradients>,
    /// The pullback from caller-supplied output gradients, set by autodiff.
    pub pullback: Gradients,
    /// The inference-only forward pass with batch norm folded into convolutions, when the
    /// model has a batch norm to fold.
    pub inference: Option<Inference>,
    /// The step entry point: one position of each sequence from a carried state, or why the
    /// model has none.
    pub step: Result<Step, String>,
    /// Set by the memory-planning pass.
    pub plan: Option<MemoryPlan>,
}

/// What the inference-only forward pass (`Phase::Infer`) computes: its copy of each output,
/// in `Program::outputs` order.
#[derive(Clone, Debug, PartialEq)]
pub struct Inference {
    pub outputs: Vec<ValueId>,
}

/// What the step pass (`Phase::Step`) reads and computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Its copy of each input, holding one position: `Program::inputs` order.
    pub inputs: Vec<ValueId>,
    /// Its copy of each output at that position, in `Program::outputs` order.
    pub outputs: Vec<ValueId>,
    /// The carried states, in the order of the workspace's buffer.
    pub carries: Vec<Carried>,
    /// The positions a sequence may have, when the step reads its position (attention's
    /// cache, a position table): the sequence length the model was compiled for.
    pub positions: Option<usize>,
}

/// One recurrent layer's state carried from one step to the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Carried {
    /// The layer's name, for documentation.
    pub layer: String,
    /// The `Op::Carried` leaf the layer's scan starts from (or attention's key and value cache).
    pub read: ValueId,
    /// The `Op::CarryOut` (or `Op::CacheWrite`) node that writes the state after the step.
    pub write: ValueId,
}

impl Program {
    /// Offset of each parameter in the flat parameter (and gradient) buffer. Trainable
    /// parameters come first, so that the optimizer updates one prefix of the buffer.
    pub fn param_offsets(&self) -> Vec<usize> {
        let mut offsets = vec![0; self.params.len()];
        let mut offset = 0;
        for frozen in [false, true] {
            for (i, p) in self.params.iter().enumerate() {
                if p.frozen == frozen {
                    offsets[i] = offset;
                    offset += p.len();
                }
            }
        }
        offsets
    }

    pub fn param_count(&self) -> usize {
        self.params.iter().map(Param::len).sum()
    }

    /// The number of parameters the optimizer updates (a prefix of the buffer).
    pub fn trainable_count(&self) -> usize {
        self.params
            .iter()
            .filter(|p| !p.frozen)
            .map(Param::len)
            .sum()
    }

    /// The value whose storage `id` shares; see [`Graph::storage_root`].
    pub fn storage_root(&self, id: ValueId) -> ValueId {
        self.graph.storage_root(id)
    }

    /// Offset of each state tensor in the model's state buffer.
    pub fn state_offsets(&self) -> Vec<usize> {
        self.states
            .iter()
            .scan(0, |offset, s| {
                let start = *offset;
                *offset += s.len();
                Some(start)
            })
            .collect()
    }

    /// The state a `State` node reads or a `Commit` node writes, if `id` is one.
    pub fn state_of(&self, id: ValueId) -> Option<usize> {
        let node = self.graph.node(id);
        match node.op {
            Op::State(i) => Some(i),
            op if op.writes_state() => self.state_of(*node.args.get(1)?),
            _ => None,
        }
    }

    /// The parameter a `Param` node reads, if `id` is one.
    pub fn param_of(&self, id: ValueId) -> Option<usize> {
        match self.graph.node(id).op {
            Op::Param(i) => Some(i),
            _ => None,
        }
    }

    /// The number of dropout masks: a model with any has a random state used in training.
    pub fn dropout_masks(&self) -> usize {
        self.graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::DropoutMask(_)))
            .count()
    }

    /// Whether the model has dropout, and so a random state used in training.
    pub fn has_dropout(&self) -> bool {
        self.dropout_masks() > 0
    }

    /// Whether some op computes differently in training and inference (dropout, batch norm).
    pub fn behaves_by_mode(&self) -> bool {
        self.graph.nodes.iter().any(|n| n.op.mode_dependent())
    }

    /// Whether the forward pass takes the mode: some op computes differently in training and
    /// inference ([`Program::behaves_by_mode`]), or a dense layer shares out its work
    /// differently ([`Program::splits_by_mode`]).
    pub fn mode_dependent(&self) -> bool {
        self.behaves_by_mode() || self.graph.nodes.iter().any(|n| self.splits_by_mode(n))
    }

    /// Whether `node` is a dense layer of the forward pass whose weight training updates:
    /// its kernel computes the same values in both modes, but in training shares out the
    /// weight's rows among threads rather than the samples, so that each row stays with the
    /// thread that updates it.
    pub fn splits_by_mode(&self, node: &Node) -> bool {
        matches!(node.op, Op::Dense { .. })
            && node.phase == Phase::Forward
            && self.backward.is_some()
            && self
                .param_of(node.args[1])
                .is_some_and(|i| !self.params[i].frozen)
    }

    /// The backward passes that exist, each with the phase its nodes belong to.
    pub fn gradient_passes(&self) -> Vec<(Phase, &Gradients)> {
        let mut out = Vec::new();
        if let Some(b) = &self.backward {
            out.push((Phase::Backward, b));
        }
        out.push((Phase::Pullback, &self.pullback));
        out
    }

    /// The schedule of `predict`: the folded inference pass where there is one.
    /// Whether the model has a recurrent layer (a scan over a sequence).
    pub fn is_recurrent(&self) -> bool {
        self.graph.nodes.iter().any(|n| {
            matches!(
                n.op,
                Op::LstmScan { .. } | Op::RnnScan { .. } | Op::GruScan { .. }
            )
        })
    }

    /// Whether the model has an attention layer, whose positions meet in its weights.
    pub fn attends(&self) -> bool {
        self.graph
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::AttentionProbs { .. }))
    }

    pub fn predict_schedule(&self) -> Schedule {
        match self.inference {
            Some(_) => Schedule::PREDICT_FOLDED,
            None => Schedule::PREDICT,
        }
    }

    /// The values `schedule` returns to its caller as the outputs: the inference pass's
    /// copies for a schedule that runs it.
    pub fn outputs_of(&self, schedule: &Schedule) -> Vec<ValueId> {
        match (&self.inference, &self.step) {
            (Some(inference), _) if schedule.runs(Phase::Infer) => inference.outputs.clone(),
            (_, Ok(step)) if schedule.runs(Phase::Step) => step.outputs.clone(),
            _ => self.outputs.iter().map(|b| b.value).collect(),
        }
    }

    /// The schedules of this model's entry points. Each phase has the same predecessors that
    /// use the arena in every schedule that runs it (the verifier checks this), so the memory
    /// plan can place a phase once for all of them.
    pub fn schedules(&self) -> Vec<Schedule> {
        let mut out = vec![self.predict_schedule()];
        if self.loss.is_some() {
            out.push(Schedule::EVALUATE);
        }
        if self.backward.is_some() {
            out.push(Schedule::FORWARD_BACKWARD);
        }
        out.push(Schedule::PULLBACK);
        if self.step.is_ok() {
            out.push(Schedule::STEP);
        }
        out
    }
}

impl Program {
    /// For each value, the index of the last node that needs it when `schedule` runs; readers
    /// in phases it does not run do not count. The outputs and the metric's prediction outlive
    /// the forward pass, because the caller or the metric reads them after it.
    pub fn live_until(&self, schedule: &Schedule) -> Vec<usize> {
        let g = &self.graph;
        let mut last: Vec<usize> = (0..g.nodes.len()).collect();
        for id in g.ids().filter(|id| schedule.runs(g.node(*id).phase)) {
            for a in &g.node(id).args {
                last[a.index()] = last[a.index()].max(id.index());
            }
        }
        let forward_end = g
            .ids()
            .find(|id| {
                let node = g.node(*id);
                !matches!(node.phase, Phase::Forward | Phase::Commit) && !node.op.is_interface()
            })
            .map_or(g.nodes.len(), |id| id.index());
        let kept = self
            .outputs
            .iter()
            .map(|b| b.value)
            .chain(self.metric.map(|m| m.prediction));
        for v in kept {
            last[v.index()] = last[v.index()].max(forward_end);
        }
        // The caller reads the outputs after any call (`Model::output`): after a training step
        // too, which is how a carried state (`h_n`, `c_n`) goes from one batch to the next.
        for v in self.outputs_of(schedule) {
            last[v.index()] = g.nodes.len();
        }
        // A reshape is a view: the value it reads stays live as long as any view of it. The
        // reverse walk carries lifetimes down chains of views.
        for id in g.ids().rev() {
            if g.node(id).op == Op::Reshape {
                let a = g.node(id).args[0].index();
                last[a] = last[a].max(last[id.index()]);
            }
        }
        last
    }
}
