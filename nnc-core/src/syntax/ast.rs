//! The syntax tree: what the user wrote, with a span on every node, nothing resolved yet.

use crate::diag::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub models: Vec<Model>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: Ident,
    pub items: Vec<Item>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Input(InputDecl),
    Target(TargetDecl),
    Let(Let),
    Repeat(Repeat),
    Output(OutputDecl),
    Loss(LossDecl),
    Optimizer(Call),
}

/// `input x: [784];`, or `input tokens: [8] ids(65);` for integer ids.
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    pub name: Ident,
    pub shape: ShapeLit,
    /// The range of `ids(N)` and the span of the whole `ids(N)`, for an integer input.
    pub ids: Option<(Int, Span)>,
    /// The span of `requires_grad`, when the input asks for its gradient.
    pub requires_grad: Option<Span>,
    pub span: Span,
}

/// `[28, 28]`: per-sample dimensions as written (validated during lowering).
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeLit {
    pub dims: Vec<Int>,
    pub span: Span,
}

/// An unsigned integer literal; `value` is `None` when it does not fit in 64 bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Int {
    pub value: Option<u64>,
    pub span: Span,
}

/// `target y: [1];` or `target label: class(10);`
#[derive(Clone, Debug, PartialEq)]
pub struct TargetDecl {
    pub name: Ident,
    pub kind: TargetKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TargetKind {
    Float(ShapeLit),
    /// `class(N)`: one label per sample, or per element of `shape` (`[64] class(65)`).
    Classes {
        count: Int,
        span: Span,
        shape: Option<ShapeLit>,
    },
}

/// `let p = x -> dense hidden(8) -> tanh;`
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `repeat 4 as block { let x = ...; }`: the `let`s written `count` times, each copy's layers
/// named `name.i.layer`.
#[derive(Clone, Debug, PartialEq)]
pub struct Repeat {
    pub count: Int,
    /// The name after `as`, when given (the copies are `block.i` otherwise).
    pub name: Option<Ident>,
    pub body: Vec<Let>,
    pub span: Span,
}

/// The right-hand side of a `let`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A value name: `x`.
    Name(Ident),
    /// A function of values: `concat(a, b)`.
    Call(Call),
    /// `source -> stage -> stage`.
    Chain {
        source: Box<Expr>,
        stages: Vec<Stage>,
        span: Span,
    },
    /// `a + b`, `a - b`, `a * b`.
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Name(id) => id.span,
            Expr::Call(c) => c.span,
            Expr::Chain { span, .. } | Expr::Binary { span, .. } => *span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
        }
    }
}

/// `output p, q;`
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDecl {
    pub names: Vec<Ident>,
    pub span: Span,
}

/// `loss = cross_entropy(p, y) + 0.5 * mse(q, t);`
#[derive(Clone, Debug, PartialEq)]
pub struct LossDecl {
    pub terms: Vec<LossTerm>,
    pub span: Span,
}

/// One weighted term of the loss: `0.5 * mse(q, t)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LossTerm {
    /// The weight as written, with its span (`None` means 1).
    pub weight: Option<(String, Span)>,
    pub call: Call,
    pub span: Span,
}

/// One step of a chain: `relu`, `dense hidden(8)`, `leaky_relu(alpha = 0.1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub kind: Ident,
    pub name: Option<Ident>,
    pub args: Option<ArgList>,
    pub span: Span,
}

/// `mse(p, y)`, `adam(lr = 1e-3)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: Ident,
    pub args: ArgList,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ArgList {
    pub args: Vec<Arg>,
    pub span: Span,
}

/// A positional (`8`) or keyword (`lr = 0.5`) argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub key: Option<Ident>,
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number as written (`8`, `0.5`, `1e-3`, `-2`); converted where its meaning is known.
    Number {
        text: String,
        span: Span,
    },
    Ident(Ident),
    /// Numbers in parentheses, `(0.9, 0.999)`; only options listed in `args::TUPLES` take one.
    Tuple {
        items: Vec<Value>,
        span: Span,
    },
    /// An expression other than a bare name (`a - b`, `x -> relu`), which only the value
    /// arguments of functions such as `concat` accept.
    Expr(Box<Expr>),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Number { span, .. } | Value::Tuple { span, .. } => *span,
            Value::Ident(id) => id.span,
            Value::Expr(e) => e.span(),
        }
    }
}
