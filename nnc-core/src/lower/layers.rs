//! Lowering of chain stages: the table of layer kinds and activations, and the shape rule of
//! each. A new layer kind starts here.

use super::args::{self, Bound, Kind, Param};
use super::{suggest, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Act, Const, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

/// Every stage kind the language knows, for "did you mean" suggestions.
const STAGE_KINDS: &[&str] = &[
    "dense",
    "embedding",
    "flatten",
    "reshape",
    "dropout",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "identity",
    "linear",
    "step",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
];

/// Activations that can be named as a dense layer's `activation` option.
const ACTIVATIONS: &[&str] = &[
    "identity",
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "step",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
];

const INITS: &[&str] = &[
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "glorot_normal",
    "glorot_uniform",
    "zeros",
    "ones",
];

const INIT_HINT: &str = "an initializer is one of `he_normal`, `he_uniform`, `xavier_normal`, `xavier_uniform` (or their `kaiming_`/`glorot_` names), `zeros`, `ones`, or a number for a constant";

/// An initializer option: a name from `INITS`, or a number for a constant.
const fn initializer(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Choice {
            names: INITS,
            or_number: true,
        },
        default: Some(Bound::Name(String::new())),
        hint: INIT_HINT,
    }
}

const DENSE_SIG: &[Param] = &[
    Param {
        name: "units",
        kind: Kind::Width,
        default: None,
        hint: "give the number of outputs, as in `dense hidden(128)`",
    },
    Param {
        name: "activation",
        kind: Kind::Choice {
            names: ACTIVATIONS,
            or_number: false,
        },
        default: Some(Bound::Name(String::new())),
        hint: "write an activation such as `dense hidden(128, relu)`; activations with options go in the chain: `-> leaky_relu(alpha = 0.2)`",
    },
    Param {
        name: "bias",
        kind: Kind::Bool,
        default: Some(Bound::Bool(true)),
        hint: "write `bias = false` to drop the bias",
    },
    initializer("init"),
    initializer("bias_init"),
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the layer's parameters fixed during training",
    },
];

const ALPHA_HINT: &str = "alpha is zero or a positive number, such as `alpha = 0.1`";

/// The signature of each activation with options, and how to build it.
fn activation_sig(kind: &str) -> Option<&'static [Param]> {
    const NONE: &[Param] = &[];
    const fn alpha(default: f64) -> Param {
        Param {
            name: "alpha",
            kind: Kind::NON_NEGATIVE,
            default: Some(Bound::Real(default)),
            hint: ALPHA_HINT,
        }
    }
    // PyTorch's defaults: negative_slope 0.01 for leaky_relu, alpha 1 for elu.
    const LEAKY: &[Param] = &[alpha(0.01)];
    const ELU: &[Param] = &[alpha(1.0)];
    const GELU: &[Param] = &[Param {
        name: "approximate",
        kind: Kind::Choice {
            names: &["none", "tanh"],
            or_number: false,
        },
        default: Some(Bound::Name(String::new())),
        hint: "write `approximate = tanh` for the tanh approximation (PyTorch's option)",
    }];
    const STEP: &[Param] = &[Param {
        name: "straight_through",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `straight_through = true` to pass gradients through the step unchanged",
    }];
    Some(match kind {
        "relu" | "sigmoid" | "tanh" | "identity" | "linear" | "softplus" | "softmax"
        | "log_softmax" => NONE,
        "leaky_relu" => LEAKY,
        "elu" => ELU,
        "gelu" => GELU,
        "step" => STEP,
        _ => return None,
    })
}

pub(super) const EMBEDDING_SIG: &[Param] = &[
    Param {
        name: "vocab",
        kind: Kind::Width,
        default: None,
        hint: "give the number of ids and the width of a row, as in `embedding tok(65, 32)`",
    },
    Param {
        name: "dim",
        kind: Kind::Width,
        default: None,
        hint: "give the number of ids and the width of a row, as in `embedding tok(65, 32)`",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the table fixed during training",
    },
];

const DROPOUT_SIG: &[Param] = &[Param {
    name: "rate",
    kind: Kind::UNIT_OPEN,
    default: None,
    hint: "the rate is the fraction of values dropped, in [0, 1), as in `dropout(0.2)`",
}];

/// What a layer's name refers to, so that a later `-> name` can apply it again: a dense
/// layer, or an embedding table (`inputs` is then its vocabulary and `units` its width).
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub span: Span,
    pub embedding: bool,
    pub weight: ValueId,
    pub bias: Option<ValueId>,
    pub inputs: usize,
    pub units: usize,
    pub act: Option<&'static str>,
}

/// Whether a weight followed by this activation is best initialised for relu-like units.
fn relu_like(kind: &str) -> bool {
    matches!(kind, "relu" | "leaky_relu" | "elu" | "gelu")
}

impl Lowerer<'_> {
    /// Applies `stages` to `value`; the last stage's value is named `let_name`.
    pub(super) fn chain(
        &mut self,
        mut value: ValueId,
        mut producer: String,
        stages: &[ast::Stage],
        let_name: Option<&str>,
    ) -> Option<ValueId> {
        for (i, stage) in stages.iter().enumerate() {
            let last = i + 1 == stages.len();
            let next = stages.get(i + 1).map(|s| s.kind.name.as_str());
            let name = if last { let_name } else { None };
            let (v, label) = self.stage(value, &producer, stage, next, name)?;
            value = v;
            producer = label;
        }
        Some(value)
    }

    /// Lowers one stage; returns the value and a phrase naming its producer for messages.
    fn stage(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        next: Option<&str>,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let kind = stage.kind.name.as_str();
        if kind == "embedding" {
            return self.embedding(x, producer, stage, let_name);
        }
        // Every stage but an embedding (new, or applied again by name) takes float values.
        if !self.layers.get(kind).is_some_and(|l| l.embedding) {
            let what = format!("`{kind}`");
            self.expect_float(x, &what, producer, stage.span)?;
        }
        if kind == "dense" {
            return self.dense(x, producer, stage, next, let_name);
        }
        if kind == "flatten" || kind == "reshape" {
            self.unnamed(stage)?;
            return self.reshape(x, producer, stage, let_name);
        }
        if kind == "dropout" {
            self.unnamed(stage)?;
            let errors = self.diags.len();
            let b = args::bind(
                "`dropout`",
                stage.span,
                stage.args.as_ref(),
                DROPOUT_SIG,
                self.diags,
            );
            if self.diags.len() > errors {
                return None;
            }
            let v = self.dropout(x, b.real(0)?, stage.span, let_name);
            return Some((v, "`dropout`".into()));
        }
        let Some(sig) = activation_sig(kind) else {
            if let Some(layer) = self.layers.get(kind).cloned() {
                return self.reuse(x, producer, stage, layer, let_name);
            }
            let mut d = Diagnostic::error(
                "E0201",
                stage.kind.span,
                format!("unknown layer or activation `{kind}`"),
            )
            .with_span_label("not a known layer");
            let layer_names: Vec<&str> = self.layers.keys().map(String::as_str).collect();
            let candidates = STAGE_KINDS.iter().copied().chain(layer_names);
            d = match suggest(kind, candidates) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "the known stages are {}, or the name of a dense layer defined earlier",
                    args::quoted(STAGE_KINDS)
                )),
            };
            self.error(d);
            return None;
        };
        self.unnamed(stage)?;
        let what = format!("activation `{kind}`");
        let errors = self.diags.len();
        let b = args::bind(&what, stage.span, stage.args.as_ref(), sig, self.diags);
        if self.diags.len() > errors {
            return None;
        }
        let op = match kind {
            "softmax" => Op::Softmax,
            "log_softmax" => Op::LogSoftmax,
            "relu" => Op::Activation(Act::Relu),
            "sigmoid" => Op::Activation(Act::Sigmoid),
            "tanh" => Op::Activation(Act::Tanh),
            "identity" | "linear" => Op::Activation(Act::Identity),
            "softplus" => Op::Activation(Act::Softplus),
            "leaky_relu" => Op::Activation(Act::LeakyRelu(Const::new(b.real(0)?))),
            "elu" => Op::Activation(Act::Elu(Const::new(b.real(0)?))),
            "gelu" if b.choice(0) == Some("tanh") => Op::Activation(Act::GeluTanh),
            "gelu" => Op::Activation(Act::Gelu),
            _ => Op::Activation(Act::Step {
                straight_through: b.bool(0)?,
            }),
        };
        let v = self.activation(x, op, producer, stage.span, let_name)?;
        Some((v, format!("`{kind}`")))
    }

    /// Reports a name given to a stage that has no parameters.
    pub(super) fn unnamed(&mut self, stage: &ast::Stage) -> Option<()> {
        let Some(name) = &stage.name else {
            return Some(());
        };
        let kind = &stage.kind.name;
        self.error(
            Diagnostic::error("E0204", name.span, format!("`{kind}` does not take a name"))
                .with_help(format!(
                    "only layers with parameters are named; write `-> {kind}`"
                )),
        );
        None
    }

    /// An activation over `x`, named after the layer it completes when it follows one.
    fn activation(
        &mut self,
        x: ValueId,
        op: Op,
        producer: &str,
        span: Span,
        let_name: Option<&str>,
    ) -> Option<ValueId> {
        let ty = self.graph.ty(x).clone();
        if matches!(op, Op::Softmax | Op::LogSoftmax) && ty.shape.rank() < 2 {
            self.error(
                Diagnostic::error(
                    "E0205",
                    span,
                    format!(
                        "{op} normalises over a last axis but {producer} has shape {}",
                        ty.shape
                    ),
                )
                .with_help(format!(
                    "{op} normalises each row of the last axis, as in a [batch, classes] value"
                )),
            );
            return None;
        }
        let name = match let_name {
            Some(n) => n.to_string(),
            None if matches!(self.graph.node(x).op, Op::BiasAdd | Op::MatMul { .. })
                && !self.graph.node(x).name.contains('.') =>
            {
                // The activation's output is what people call the layer's output: it takes the
                // layer's name, and the value before it becomes `layer.pre`.
                let layer = self.graph.node(x).name.clone();
                self.graph.nodes[x.index()].name = format!("{layer}.pre");
                layer
            }
            None => {
                let kind = match op {
                    Op::Activation(a) => a.name(),
                    Op::LogSoftmax => "log_softmax",
                    _ => "softmax",
                };
                format!("{}.{kind}", base(&self.graph.node(x).name))
            }
        };
        Some(self.push(op, vec![x], ty, name, Phase::Forward, span))
    }

    /// `x ⊙ mask`, where the mask is redrawn every training step and all ones in inference.
    fn dropout(&mut self, x: ValueId, rate: f64, span: Span, let_name: Option<&str>) -> ValueId {
        let ty = self.graph.ty(x).clone();
        let stem = base(&self.graph.node(x).name).to_string();
        let mask = self.push(
            Op::DropoutMask(Const::new(rate)),
            vec![],
            ty.clone(),
            format!("{stem}.dropout_mask"),
            Phase::Forward,
            span,
        );
        let name = let_name.map_or_else(|| format!("{stem}.dropout"), str::to_string);
        self.push(Op::Mul, vec![x, mask], ty, name, Phase::Forward, span)
    }

    fn dense(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        next: Option<&str>,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let Some(layer) = &stage.name else {
            self.error(
                Diagnostic::error("E0202", stage.kind.span, "a dense layer needs a name")
                    .with_span_label("unnamed layer")
                    .with_help("write `dense hidden(128)`: the name gives the parameters their stable names `hidden.weight` and `hidden.bias`"),
            );
            return None;
        };
        let what = format!("dense layer `{}`", layer.name);
        let errors = self.diags.len();
        let b = args::bind(
            &what,
            stage.span,
            stage.args.as_ref(),
            DENSE_SIG,
            self.diags,
        );
        self.check_unique(layer, "rename one of the layers, or write `-> {}` to apply the first layer again with the same parameters");
        if self.diags.len() > errors {
            return None;
        }
        let units = b.int(0)?;
        let act = b.choice(1).filter(|a| !a.is_empty());
        let (bias, frozen) = (b.bool(2)?, b.bool(5)?);
        let inputs = self.vector_width(x, producer, stage.span, &what)?;
        let count = units.checked_mul(inputs).and_then(|w| w.checked_add(units));
        self.within_budget(count, stage.span, &what)?;
        let after = act.or(next).unwrap_or("");
        let default_init = if relu_like(after) {
            Init::HeNormal
        } else {
            Init::XavierUniform
        };
        let init = init_of(&b, 3, default_init);
        let w = self.param(
            format!("{}.weight", layer.name),
            vec![units, inputs],
            init,
            (inputs, units),
            frozen,
            layer.span,
        );
        let bias_value = bias.then(|| {
            self.param(
                format!("{}.bias", layer.name),
                vec![units],
                init_of(&b, 4, Init::Zeros),
                (inputs, units),
                frozen,
                layer.span,
            )
        });
        let act = act.and_then(|a| ACTIVATIONS.iter().copied().find(|k| *k == a));
        let info = Layer {
            span: layer.span,
            embedding: false,
            weight: w,
            bias: bias_value,
            inputs,
            units,
            act,
        };
        self.layers.insert(layer.name.clone(), info.clone());
        let v = self.apply_dense(x, &layer.name, &info, stage.span, let_name)?;
        Some((v, format!("dense layer `{}` ({units} outputs)", layer.name)))
    }

    /// `-> name` for a dense layer defined earlier: the same parameters, applied again.
    fn reuse(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        layer: Layer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        if layer.embedding && stage.name.is_none() && stage.args.is_none() {
            return self.apply_embedding(x, producer, stage.span, name, &layer, let_name);
        }
        if stage.name.is_some() || stage.args.is_some() {
            self.error(
                Diagnostic::error("E0203", stage.span, format!("layer `{name}` is already defined, so it is applied again as it is"))
                    .with_label(layer.span, "defined here")
                    .with_help(format!("write `-> {name}` to share its parameters, or define a new layer such as `dense {name}2(...)`")),
            );
            return None;
        }
        let what = format!("dense layer `{name}`");
        let inputs = self.vector_width(x, producer, stage.span, &what)?;
        if inputs != layer.inputs {
            self.error(
                Diagnostic::error("E0205", stage.span, format!("dense layer `{name}` takes {} values per sample but {producer} has {inputs}", layer.inputs))
                    .with_label(layer.span, format!("defined with {} inputs here", layer.inputs))
                    .with_help("a shared layer must be applied to values of the width it was first applied to"),
            );
            return None;
        }
        let v = self.apply_dense(x, name, &layer, stage.span, let_name)?;
        Some((v, format!("dense layer `{name}` ({} outputs)", layer.units)))
    }

    /// The last axis of a batched value, which a dense layer maps (over every other axis,
    /// like Keras's time-distributed dense), or an error saying that `what` needs one.
    fn vector_width(
        &mut self,
        x: ValueId,
        producer: &str,
        span: Span,
        what: &str,
    ) -> Option<usize> {
        let shape = self.graph.ty(x).shape.clone();
        match shape.0.as_slice() {
            [crate::ir::Dim::Batch, .., crate::ir::Dim::Fixed(n)] => Some(*n),
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        span,
                        format!("{what} maps the last axis of its input but {producer} has shape {shape}"),
                    )
                    .with_span_label("expects [B, …, n]")
                    .with_help("give the input at least one dimension per sample, such as `[784]`"),
                );
                None
            }
        }
    }

    /// `act(x · wᵀ + b)` for a layer's parameters.
    fn apply_dense(
        &mut self,
        x: ValueId,
        layer: &str,
        info: &Layer,
        span: Span,
        let_name: Option<&str>,
    ) -> Option<ValueId> {
        let mut dims = self.graph.ty(x).shape.0.clone();
        if let Some(last) = dims.last_mut() {
            *last = crate::ir::Dim::Fixed(info.units);
        }
        let z_ty = Type::float(Shape(dims));
        let last_name = if info.act.is_some() { None } else { let_name };
        let pre = if info.bias.is_some() {
            format!("{layer}.matmul")
        } else {
            name_or(last_name, layer)
        };
        let mm = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        let mut v = self.push(
            mm,
            vec![x, info.weight],
            z_ty.clone(),
            pre,
            Phase::Forward,
            span,
        );
        if let Some(b) = info.bias {
            let name = name_or(last_name, layer);
            v = self.push(Op::BiasAdd, vec![v, b], z_ty, name, Phase::Forward, span);
        }
        if let Some(act) = info.act {
            let stage = ast::Stage {
                kind: ast::Ident {
                    name: act.to_string(),
                    span,
                },
                name: None,
                args: None,
                span,
            };
            let producer = format!("dense layer `{layer}`");
            v = self.stage(v, &producer, &stage, None, let_name)?.0;
        }
        Some(v)
    }

    /// Reports a layer name already taken by another layer (E0105); `reuse` says how to apply
    /// the first one again, with `{}` for the name.
    pub(super) fn check_unique(&mut self, layer: &ast::Ident, reuse: &str) {
        let Some(first) = self.layers.get(&layer.name).map(|l| l.span) else {
            return;
        };
        self.error(
            Diagnostic::error(
                "E0105",
                layer.span,
                format!("layer name `{}` is used twice", layer.name),
            )
            .with_span_label("second layer with this name")
            .with_label(first, "first used here")
            .with_help(format!(
                "parameter names come from layer names and must be unique; {}",
                reuse.replace("{}", &layer.name)
            )),
        );
    }

    /// Whether `count` more parameters (`None` when counting them overflowed) keep the model
    /// within 2^31 parameters, reporting E0002 on `span` if not. Offsets into the parameter
    /// buffer are computed in `usize` everywhere after lowering, so the total must stay far
    /// from overflowing it.
    pub(super) fn within_budget(
        &mut self,
        count: Option<usize>,
        span: Span,
        what: &str,
    ) -> Option<()> {
        let so_far: usize = self.params.iter().map(crate::ir::Param::len).sum();
        if count
            .and_then(|n| n.checked_add(so_far))
            .is_some_and(|t| t <= 1 << 31)
        {
            return Some(());
        }
        self.error(
            Diagnostic::error("E0002", span, format!("{what} makes the model too large"))
                .with_note("a model may have at most 2^31 parameters in all"),
        );
        None
    }

    pub(super) fn param(
        &mut self,
        name: String,
        shape: Vec<usize>,
        init: Init,
        fans: (usize, usize),
        frozen: bool,
        span: Span,
    ) -> ValueId {
        let index = self.params.len();
        let ty = Type::float(Shape::fixed(&shape));
        let value = self.push(
            Op::Param(index),
            vec![],
            ty,
            name.clone(),
            Phase::Forward,
            span,
        );
        self.params.push(crate::ir::Param {
            name,
            shape,
            init,
            fans,
            frozen,
            value,
            span,
        });
        value
    }
}

/// The initializer bound to argument `i`, or `default` when it was left out.
fn init_of(b: &args::BoundArgs, i: usize, default: Init) -> Init {
    if let Some(x) = b.real(i) {
        return if x == 0.0 {
            Init::Zeros
        } else {
            Init::Constant(x)
        };
    }
    match b.choice(i).unwrap_or("") {
        "he_normal" | "kaiming_normal" => Init::HeNormal,
        "he_uniform" | "kaiming_uniform" => Init::HeUniform,
        "xavier_normal" | "glorot_normal" => Init::XavierNormal,
        "xavier_uniform" | "glorot_uniform" => Init::XavierUniform,
        "zeros" => Init::Zeros,
        "ones" => Init::Constant(1.0),
        _ => default,
    }
}

fn name_or(let_name: Option<&str>, layer: &str) -> String {
    let_name.unwrap_or(layer).to_string()
}

/// `hidden.relu` → `hidden`: keeps derived names short.
pub(super) fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}
