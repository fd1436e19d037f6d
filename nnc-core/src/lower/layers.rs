//! Lowering of chain stages: the table of stage kinds, activations and dropout, and what
//! every layer with parameters shares (unique names, the parameter budget, parameter nodes).
//! Each layer kind with parameters has a file of its own: `dense.rs`, `embedding.rs`,
//! `batch_norm.rs`, `layer_norm.rs`, `attention.rs`, `bias.rs`, `conv.rs`, `recurrent.rs`; the poolings are in `pool.rs`.

use super::args::{self, Bound, Kind, Param};
use super::{suggest, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Act, Const, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

/// Every stage kind the language knows, for "did you mean" suggestions.
const STAGE_KINDS: &[&str] = &[
    "dense",
    "embedding",
    "batch_norm",
    "layer_norm",
    "attention",
    "bias",
    "conv2d",
    "conv1d",
    "lstm",
    "gru",
    "rnn",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
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
pub(super) const ACTIVATIONS: &[&str] = &[
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

const DROPOUT_SIG: &[Param] = &[Param {
    name: "rate",
    kind: Kind::UNIT_OPEN,
    default: None,
    hint: "the rate is the fraction of values dropped, in [0, 1), as in `dropout(0.2)`",
}];

/// A dense layer's parameters and the activation it ends with.
#[derive(Clone, Copy, Debug)]
pub(super) struct DenseLayer {
    pub weight: ValueId,
    pub bias: Option<ValueId>,
    pub inputs: usize,
    pub units: usize,
    pub act: Option<&'static str>,
}

/// The kinds of layer with parameters, with what applying one again needs; everything else
/// (an embedding's vocabulary, a bias's shape) is the type of its parameter's node.
#[derive(Clone, Copy, Debug)]
pub(super) enum LayerKind {
    Dense(DenseLayer),
    /// A `[vocab, dim]` table.
    Embedding {
        table: ValueId,
    },
    /// A tensor added over the leading axes.
    Bias {
        value: ValueId,
    },
    /// Never applied again: its running statistics describe one place in the model.
    BatchNorm,
    /// Self-attention, applied again to sequences of the width it was defined for.
    Attention(super::attention::AttentionLayer),
    /// A layer norm, applied again to rows of the width it was defined for.
    LayerNorm(super::layer_norm::LayerNormLayer),
    /// A convolution, applied again only to inputs of the shape it was defined for.
    Conv(super::conv::ConvLayer),
    /// An LSTM or RNN, applied again only to sequences of the features it was defined for.
    Recurrent(super::recurrent::RecurrentLayer),
}

/// What a layer's name refers to, so that a later `-> name` can apply it again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layer {
    /// Where the layer was defined.
    pub span: Span,
    pub kind: LayerKind,
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
            let Some((v, label)) = self.stage(value, &producer, stage, next, name) else {
                if let Some(layer) = &stage.name {
                    self.failed_layers.insert(layer.name.clone());
                }
                self.unknown_stages_after(&stages[..=i], &stages[i + 1..]);
                return None;
            };
            value = v;
            producer = label;
        }
        Some(value)
    }

    /// Reports every unknown stage in `rest`, the part of a chain after a stage that failed,
    /// so that one run names all of a chain's misspellings. Nothing else about `rest` can be
    /// checked without the failed stage's output. A layer named in `done` (the chain up to the
    /// failure) may not have been registered, so it is not called unknown.
    fn unknown_stages_after(&mut self, done: &[ast::Stage], rest: &[ast::Stage]) {
        let named = |kind: &str, stages: &[ast::Stage]| {
            stages
                .iter()
                .any(|s| s.name.as_ref().is_some_and(|n| n.name == kind))
        };
        for (j, stage) in rest.iter().enumerate() {
            let kind = stage.kind.name.as_str();
            if !STAGE_KINDS.contains(&kind)
                && !self.layers.contains_key(kind)
                && !self.failed_layers.contains(kind)
                && !named(kind, done)
                && !named(kind, &rest[..j])
            {
                self.unknown_stage(stage);
            }
        }
    }

    fn unknown_stage(&mut self, stage: &ast::Stage) {
        let kind = stage.kind.name.as_str();
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
                "the known stages are {}, or the name of a layer defined earlier",
                args::quoted(STAGE_KINDS)
            )),
        };
        self.error(d);
    }

    /// Lowers one stage; returns the value and a phrase naming its producer for messages.
    pub(super) fn stage(
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
        if !self
            .layers
            .get(kind)
            .is_some_and(|l| matches!(l.kind, LayerKind::Embedding { .. }))
        {
            let what = format!("`{kind}`");
            self.expect_float(x, &what, producer, stage.span)?;
        }
        if kind == "dense" {
            return self.dense(x, producer, stage, next, let_name);
        }
        if kind == "batch_norm" {
            return self.batch_norm(x, producer, stage, let_name);
        }
        if kind == "layer_norm" {
            return self.layer_norm(x, producer, stage, let_name);
        }
        if kind == "attention" {
            return self.attention(x, producer, stage, let_name);
        }
        if kind == "conv2d" || kind == "conv1d" {
            return self.conv(x, producer, stage, next, let_name);
        }
        if matches!(kind, "lstm" | "gru" | "rnn") {
            return self.recurrent(x, producer, stage, let_name);
        }
        if kind == "max_pool2d" || kind == "avg_pool2d" {
            return self.pool(x, producer, stage, let_name);
        }
        if kind == "global_avg_pool" {
            return self.global_avg_pool(x, producer, stage, let_name);
        }
        if kind == "bias" {
            return self.bias(x, producer, stage, let_name);
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
            if !self.failed_layers.contains(kind) {
                self.unknown_stage(stage);
            }
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

    /// `-> name` for a layer defined earlier: the same layer applied again, sharing its
    /// parameters. A batch norm layer cannot be, and no layer takes a name or arguments then.
    fn reuse(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        layer: Layer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let bare = stage.name.is_none() && stage.args.is_none();
        match layer.kind {
            LayerKind::Embedding { table } if bare => {
                self.apply_embedding(x, producer, stage.span, name, layer.span, table, let_name)
            }
            LayerKind::Bias { value } if bare => {
                self.apply_bias(x, producer, stage.span, name, layer.span, value, let_name)
            }
            LayerKind::Dense(dense) if bare => {
                self.reuse_dense(x, producer, stage, layer.span, &dense, let_name)
            }
            LayerKind::Attention(info) if bare => {
                self.reuse_attention(x, producer, stage, layer.span, &info, let_name)
            }
            LayerKind::LayerNorm(info) if bare => {
                self.reuse_layer_norm(x, producer, stage, layer.span, &info, let_name)
            }
            LayerKind::Conv(conv) if bare => {
                self.reuse_conv(x, producer, stage, layer.span, &conv, let_name)
            }
            LayerKind::Recurrent(recurrent) if bare => {
                self.reuse_recurrent(x, producer, stage, layer.span, &recurrent, let_name)
            }
            LayerKind::BatchNorm => {
                self.error(
                    Diagnostic::error("E0203", stage.span, format!("batch norm `{name}` cannot be applied a second time"))
                        .with_label(layer.span, "defined here")
                        .with_help(format!("its running statistics describe the values at one place in the model; define another, such as `batch_norm {name}2`")),
                );
                None
            }
            _ => {
                self.error(
                    Diagnostic::error("E0203", stage.span, format!("layer `{name}` is already defined, so it is applied again as it is"))
                        .with_label(layer.span, "defined here")
                        .with_help(format!("write `-> {name}` to share its parameters, or define a new layer with another name, such as `{name}2`")),
                );
                None
            }
        }
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
            None if self.is_dense_output(x) && {
                let name = &self.graph.node(x).name;
                !name.contains('.') || self.layers.contains_key(name)
            } =>
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
                format!("{}.{kind}", self.stem(&self.graph.node(x).name))
            }
        };
        Some(self.push(op, vec![x], ty, name, Phase::Forward, span))
    }

    /// Whether `x` is what a dense layer computes before its activation: a product, or a bias
    /// added to one (not a `bias` layer over some other value).
    fn is_dense_output(&self, x: ValueId) -> bool {
        let node = self.graph.node(x);
        match node.op {
            Op::MatMul { .. } => true,
            Op::BiasAdd => matches!(self.graph.node(node.args[0]).op, Op::MatMul { .. }),
            _ => false,
        }
    }

    /// The part of a value's name that derived names start from: a layer's whole name (which
    /// a `repeat` block's copies make dotted, `h.0.fc`), else the name before its first dot.
    pub(super) fn stem<'n>(&self, name: &'n str) -> &'n str {
        if self.layers.contains_key(name) {
            name
        } else {
            let first = base(name);
            // `h.0.fc.pre` and the like: the longest dotted prefix that names a layer.
            name.rmatch_indices('.')
                .map(|(i, _)| &name[..i])
                .find(|prefix| self.layers.contains_key(*prefix))
                .unwrap_or(first)
        }
    }

    /// `x ⊙ mask`, where the mask is redrawn every training step and all ones in inference.
    pub(super) fn dropout(
        &mut self,
        x: ValueId,
        rate: f64,
        span: Span,
        let_name: Option<&str>,
    ) -> ValueId {
        let ty = self.graph.ty(x).clone();
        let stem = self.stem(&self.graph.node(x).name).to_string();
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

    /// What every layer with parameters starts with: its name, which is required (E0202, with
    /// `example` as the fix), its arguments bound to `sig`, and the check that no other layer
    /// has the name (`reuse` as in [`Lowerer::check_unique`]). `None` when any of that failed;
    /// otherwise the name, the phrase naming the layer in messages (`kind` and the name), and
    /// the arguments.
    pub(super) fn named_layer<'s>(
        &mut self,
        stage: &'s ast::Stage,
        kind: &str,
        sig: &[args::Param],
        example: &str,
        reuse: &str,
    ) -> Option<(&'s ast::Ident, String, args::BoundArgs)> {
        let Some(layer) = &stage.name else {
            self.error(
                Diagnostic::error(
                    "E0202",
                    stage.kind.span,
                    format!("{} {kind} needs a name", article(kind)),
                )
                .with_span_label("unnamed layer")
                .with_help(example.to_string()),
            );
            return None;
        };
        let what = format!("{kind} `{}`", layer.name);
        let errors = self.diags.len();
        let b = args::bind(&what, stage.span, stage.args.as_ref(), sig, self.diags);
        self.check_unique(layer, reuse);
        (self.diags.len() == errors).then_some((layer, what, b))
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

    /// The node reading a parameter or a state tensor: a float leaf of a fixed shape.
    pub(super) fn fixed_leaf(
        &mut self,
        op: Op,
        shape: &[usize],
        name: &str,
        span: Span,
    ) -> ValueId {
        let ty = Type::float(Shape::fixed(shape));
        self.push(op, vec![], ty, name.to_string(), Phase::Forward, span)
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
        let value = self.fixed_leaf(Op::Param(self.params.len()), &shape, &name, span);
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

/// "a" or "an" before `word`, by its first letter.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// `hidden.relu` → `hidden`: keeps derived names short.
pub(super) fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}
