//! Lowering of chain stages: the table of layer kinds and activations, and the shape rule of
//! each. A new layer kind starts here.

use super::args::{self, Bound, Kind, Param};
use super::{suggest, Lowerer};
use crate::diag::Diagnostic;
use crate::ir::{Act, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

/// Every stage kind the language knows, for "did you mean" suggestions.
const STAGE_KINDS: &[&str] = &["dense", "relu", "sigmoid", "tanh", "softmax", "identity"];

const DENSE_SIG: &[Param] = &[
    Param {
        name: "units",
        kind: Kind::Width,
        default: None,
        hint: "give the number of outputs, as in `dense hidden(128)`",
    },
    Param {
        name: "bias",
        kind: Kind::Bool,
        default: Some(Bound::Bool(true)),
        hint: "write `bias = false` to drop the bias",
    },
];

fn activation(name: &str) -> Option<Act> {
    Some(match name {
        "relu" => Act::Relu,
        "sigmoid" => Act::Sigmoid,
        "tanh" => Act::Tanh,
        "identity" => Act::Identity,
        _ => return None,
    })
}

impl Lowerer<'_> {
    /// Applies every stage of `l` to `value`; returns the final value (named after the `let`).
    pub(super) fn chain(
        &mut self,
        mut value: ValueId,
        source: &str,
        l: &ast::Let,
    ) -> Option<ValueId> {
        let mut producer = format!("`{source}`");
        for (i, stage) in l.stages.iter().enumerate() {
            let last = i + 1 == l.stages.len();
            let next = l.stages.get(i + 1).map(|s| s.kind.name.as_str());
            let name = if last {
                l.name.name.clone()
            } else {
                String::new()
            };
            let (v, label) = self.stage(value, &producer, stage, next, name)?;
            value = v;
            producer = label;
        }
        if l.stages.is_empty() {
            self.error(
                Diagnostic::error(
                    "E0201",
                    l.span,
                    format!("`let {}` applies no layer", l.name.name),
                )
                .with_help(format!(
                    "continue the chain, as in `let {} = {} -> relu;`, or use `{}` directly",
                    l.name.name, source, source
                )),
            );
            return None;
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
        let_name: String,
    ) -> Option<(ValueId, String)> {
        let kind = stage.kind.name.as_str();
        if kind == "dense" {
            return self.dense(x, producer, stage, next, let_name);
        }
        let act = activation(kind);
        if act.is_none() && kind != "softmax" {
            let mut d = Diagnostic::error(
                "E0201",
                stage.kind.span,
                format!("unknown layer or activation `{kind}`"),
            )
            .with_span_label("not a known layer");
            d = match suggest(kind, STAGE_KINDS.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "the known stages are {}",
                    args::quoted(STAGE_KINDS)
                )),
            };
            self.error(d);
            return None;
        }
        if let Some(name) = &stage.name {
            self.error(
                Diagnostic::error(
                    "E0204",
                    name.span,
                    format!("activation `{kind}` does not take a name"),
                )
                .with_help(format!(
                    "only layers with parameters are named; write `-> {kind}`"
                )),
            );
            return None;
        }
        let what = format!("activation `{kind}`");
        let errors = self.diags.len();
        args::bind(&what, stage.span, stage.args.as_ref(), &[], self.diags);
        if self.diags.len() > errors {
            return None;
        }
        let ty = self.graph.ty(x).clone();
        let name = if !let_name.is_empty() {
            let_name
        } else if matches!(self.graph.node(x).op, Op::BiasAdd | Op::MatMul { .. })
            && !self.graph.node(x).name.contains('.')
        {
            // The activation's output is what people call the layer's output: it takes the
            // layer's name, and the value before it becomes `layer.pre`.
            let layer = self.graph.node(x).name.clone();
            self.graph.nodes[x.index()].name = format!("{layer}.pre");
            layer
        } else {
            format!("{}.{kind}", base(&self.graph.node(x).name))
        };
        let op = match act {
            Some(a) => Op::Activation(a),
            None => {
                if ty.shape.rank() != 2 {
                    self.error(
                        Diagnostic::error("E0205", stage.span, format!("softmax expects a vector per sample but {producer} has shape {}", ty.shape))
                            .with_help("softmax normalises over the last dimension of a [batch, classes] value"),
                    );
                    return None;
                }
                Op::Softmax
            }
        };
        let v = self.push(op, vec![x], ty, name, Phase::Forward, stage.span);
        Some((v, format!("`{kind}`")))
    }

    fn dense(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        next: Option<&str>,
        let_name: String,
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
        let bound = args::bind(
            &what,
            stage.span,
            stage.args.as_ref(),
            DENSE_SIG,
            self.diags,
        );
        if let Some(first) = self.layers.insert(layer.name.clone(), layer.span) {
            self.error(
                Diagnostic::error("E0105", layer.span, format!("layer name `{}` is used twice", layer.name))
                    .with_span_label("second layer with this name")
                    .with_label(first, "first used here")
                    .with_help("parameter names come from layer names and must be unique; rename one of the layers"),
            );
        }
        if self.diags.len() > errors {
            return None;
        }
        let (units, bias) = (bound.int(0)?, bound.bool(1)?);
        let shape = self.graph.ty(x).shape.clone();
        let inputs = match shape.sample_dims().as_slice() {
            [n] if shape.rank() == 2 => *n,
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        stage.span,
                        format!("dense layer `{}` expects a vector per sample but {producer} has shape {shape}", layer.name),
                    )
                    .with_span_label("expects [B, n]")
                    .with_help("declare the input as a flat vector, such as `[784]` instead of `[28, 28]`"),
                );
                return None;
            }
        };
        let init = if next == Some("relu") {
            Init::HeNormal
        } else {
            Init::XavierUniform
        };
        let w = self.param(
            format!("{}.weight", layer.name),
            vec![units, inputs],
            init,
            (inputs, units),
            layer.span,
        );
        let z_ty = Type::float(Shape(vec![shape.0[0], crate::ir::Dim::Fixed(units)]));
        let pre = if bias {
            format!("{}.matmul", layer.name)
        } else {
            name_or(&let_name, &layer.name)
        };
        let mm = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        let mut v = self.push(
            mm,
            vec![x, w],
            z_ty.clone(),
            pre,
            Phase::Forward,
            stage.span,
        );
        if bias {
            let b = self.param(
                format!("{}.bias", layer.name),
                vec![units],
                Init::Zeros,
                (inputs, units),
                layer.span,
            );
            v = self.push(
                Op::BiasAdd,
                vec![v, b],
                z_ty,
                name_or(&let_name, &layer.name),
                Phase::Forward,
                stage.span,
            );
        }
        Some((v, format!("dense layer `{}` ({units} outputs)", layer.name)))
    }

    fn param(
        &mut self,
        name: String,
        shape: Vec<usize>,
        init: Init,
        fans: (usize, usize),
        span: crate::diag::Span,
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
            value,
            grad: None,
            frozen: false,
            span,
        });
        value
    }
}

fn name_or(let_name: &str, layer: &str) -> String {
    if let_name.is_empty() {
        layer.to_string()
    } else {
        let_name.to_string()
    }
}

/// `hidden.relu` → `hidden`: keeps derived names short.
fn base(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}
