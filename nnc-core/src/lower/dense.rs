//! The `dense` layer: `act(x · Wᵀ + b)` over the last axis of its input, with its signature
//! (units, activation, bias, initializers, frozen), its parameters `name.weight` `[units,
//! inputs]` and `name.bias` laid out as in PyTorch, and reuse by name (`-> name`), which
//! applies the same parameters again.

use super::args::{self, Bound, Kind, Param};
use super::layers::{DenseLayer, Layer, LayerKind, ACTIVATIONS};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

pub(super) const INITS: &[&str] = &[
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "xavier_normal",
    "xavier_uniform",
    "glorot_normal",
    "glorot_uniform",
    "normal",
    "zeros",
    "ones",
];

pub(super) const INIT_HINT: &str = "an initializer is one of `he_normal`, `he_uniform`, `xavier_normal`, `xavier_uniform` (or their `kaiming_`/`glorot_` names), `normal` (N(0, std²)), `zeros`, `ones`, or a number for a constant";

/// The standard deviation of `init = normal`, an option of every layer with that initializer.
pub(super) const STD: Param = Param {
    name: "std",
    kind: Kind::POSITIVE,
    default: Some(Bound::Real(0.02)),
    hint: "the standard deviation of `init = normal` (GPT-2 uses 0.02, the default)",
};

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
    STD,
];

/// Whether a weight followed by this activation is best initialised for relu-like units.
pub(super) fn relu_like(kind: &str) -> bool {
    matches!(kind, "relu" | "leaky_relu" | "elu" | "gelu")
}

impl Lowerer<'_> {
    pub(super) fn dense(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        next: Option<&str>,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "dense layer",
            DENSE_SIG,
            "write `dense hidden(128)`: the name gives the parameters their stable names `hidden.weight` and `hidden.bias`",
            "rename one of the layers, or write `-> {}` to apply the first layer again with the same parameters",
        )?;
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
        let std = b.real(6)?;
        let init = init_of(&b, 3, default_init, std);
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
                init_of(&b, 4, Init::Zeros, std),
                (inputs, units),
                frozen,
                layer.span,
            )
        });
        let act = act.and_then(|a| ACTIVATIONS.iter().copied().find(|k| *k == a));
        let info = DenseLayer {
            weight: w,
            bias: bias_value,
            inputs,
            units,
            act,
        };
        let kind = LayerKind::Dense(info);
        let defined = layer.span;
        self.layers.insert(
            layer.name.clone(),
            Layer {
                span: defined,
                kind,
            },
        );
        let v = self.apply_dense(x, &layer.name, &info, stage.span, let_name)?;
        Some((v, format!("dense layer `{}` ({units} outputs)", layer.name)))
    }

    /// Applies dense layer `layer`, defined earlier, again to `x` (`-> name`), with the same
    /// parameters.
    pub(super) fn reuse_dense(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        layer: &DenseLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("dense layer `{name}`");
        let inputs = self.vector_width(x, producer, stage.span, &what)?;
        if inputs != layer.inputs {
            self.error(
                Diagnostic::error("E0205", stage.span, format!("dense layer `{name}` takes {} values per sample but {producer} has {inputs}", layer.inputs))
                    .with_label(defined, format!("defined with {} inputs here", layer.inputs))
                    .with_help("a shared layer must be applied to values of the width it was first applied to"),
            );
            return None;
        }
        let v = self.apply_dense(x, name, layer, stage.span, let_name)?;
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
    pub(super) fn apply_dense(
        &mut self,
        x: ValueId,
        layer: &str,
        info: &DenseLayer,
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
}

/// The initializer bound to argument `i`, or `default` when it was left out; `std` is the
/// standard deviation of `normal`.
pub(super) fn init_of(b: &args::BoundArgs, i: usize, default: Init, std: f64) -> Init {
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
        "normal" => Init::Normal(std),
        "zeros" => Init::Zeros,
        "ones" => Init::Constant(1.0),
        _ => default,
    }
}

fn name_or(let_name: Option<&str>, layer: &str) -> String {
    let_name.unwrap_or(layer).to_string()
}
