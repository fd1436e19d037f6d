//! The IR: one [`Program`] per model, holding a typed, shape-annotated SSA [`Graph`].
//!
//! Every node defines exactly one value, and a node's id is that value's id. Nodes are kept
//! in a topological order (arguments always precede their users), which is also the schedule
//! that code generation follows. Spans live in a table parallel to the nodes, as in naga.
//!
//! Shapes are N-dimensional; a dimension is either a constant or the batch size `B`, which is
//! chosen at run time. Parameters have no batch dimension; activations have it first.

mod op;
mod print;
pub mod verify;

pub use op::{Act, LossKind, Op};

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
        self.0
            .iter()
            .map(|d| match d {
                Dim::Batch => 1,
                Dim::Fixed(n) => *n,
            })
            .product()
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
    /// Integer class labels (u32 in generated code).
    Label,
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
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = match self.dtype {
            DType::Float => "float",
            DType::Label => "label",
        };
        write!(f, "{d}{}", self.shape)
    }
}

/// Whether a node belongs to inference (`Forward`) or only to training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Forward,
    Loss,
    Backward,
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
    /// Xavier/Glorot uniform, bound sqrt(6 / (fan_in + fan_out)): for tanh, sigmoid, linear.
    XavierUniform,
    Zeros,
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::HeNormal => "he_normal",
            Init::XavierUniform => "xavier_uniform",
            Init::Zeros => "zeros",
        })
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
    /// The node that reads this parameter.
    pub value: ValueId,
    /// The node that computes d loss / d parameter, set by autodiff.
    pub grad: Option<ValueId>,
    /// A frozen parameter is not trained: the optimizer keeps no state for it.
    pub frozen: bool,
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

#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// torch.optim.SGD without momentum.
    Sgd { lr: f64, weight_decay: f64 },
    /// torch.optim.Adam.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

/// A named input or target of the model and the node that stands for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: String,
    pub value: ValueId,
    pub span: Span,
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
    /// A local scalar (the loss).
    Scalar,
    /// The batched region of the arena: `offset * capacity`, `per_sample * batch` elements.
    Batched { offset: usize, per_sample: usize },
    /// The fixed region of the arena.
    Fixed { offset: usize, len: usize },
}

/// The static memory plan: a storage per value plus the arena's size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    pub storage: Vec<Storage>,
    /// Arena elements per sample of batch capacity.
    pub per_sample: usize,
    /// Arena elements independent of the batch.
    pub fixed: usize,
}

/// One model, from lowering to code generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub name: String,
    pub span: Span,
    pub graph: Graph,
    pub params: Vec<Param>,
    pub inputs: Vec<Binding>,
    pub targets: Vec<Binding>,
    /// The value `predict` returns.
    pub output: Binding,
    pub loss: ValueId,
    pub optimizer: Optimizer,
    /// Set by the memory-planning pass.
    pub plan: Option<MemoryPlan>,
}

impl Program {
    /// Offset of each parameter in the flat parameter (and gradient) buffer.
    pub fn param_offsets(&self) -> Vec<usize> {
        let mut offset = 0;
        self.params
            .iter()
            .map(|p| {
                let o = offset;
                offset += p.len();
                o
            })
            .collect()
    }

    pub fn param_count(&self) -> usize {
        self.params.iter().map(Param::len).sum()
    }

    /// The number of classes of a label target: the width of the prediction it is scored
    /// against (lowering has checked that the two agree).
    pub fn classes(&self, target: ValueId) -> usize {
        self.graph
            .nodes
            .iter()
            .find(|n| n.args.get(1) == Some(&target))
            .map_or(0, |n| self.graph.ty(n.args[0]).shape.elems_per_sample())
    }

    /// The parameter a `Param` node reads, if `id` is one.
    pub fn param_of(&self, id: ValueId) -> Option<usize> {
        match self.graph.node(id).op {
            Op::Param(i) => Some(i),
            _ => None,
        }
    }
}
