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
    Loss(Call),
    Optimizer(Call),
}

/// `input x: [784];`
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    pub name: Ident,
    pub shape: ShapeLit,
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
    Classes { count: Int, span: Span },
}

/// `let p = x -> dense hidden(8) -> tanh;`
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: Ident,
    pub source: Ident,
    pub stages: Vec<Stage>,
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
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Number { span, .. } => *span,
            Value::Ident(id) => id.span,
        }
    }
}
