//! The `layer_norm` layer: PyTorch's `LayerNorm` over the last axis, each row (each sample, or
//! each position of a sequence) normalised with its own mean and biased variance, then scaled
//! by `name.weight` (γ, ones) and shifted by `name.bias` (β, zeros; absent with `bias = false`,
//! as in GPT-2-style models), with PyTorch's names, shapes and initial values so that a
//! `state_dict` maps onto them one to one. Unlike batch norm it keeps no state and computes the
//! same thing in training and in inference, so it may be applied again by name (`-> ln`).
//! Normalising over several trailing axes at once (a `normalized_shape` of more than one size)
//! is not offered. `passes/autodiff/rules.rs` has its gradient.

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Const, Dim, Init, Op, Phase, ValueId};
use crate::syntax::ast;

const LAYER_NORM_SIG: &[Param] = &[
    Param {
        name: "eps",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(1e-5)),
        hint: "eps is added to the variance before its square root (PyTorch's default is 1e-5)",
    },
    Param {
        name: "bias",
        kind: Kind::Bool,
        default: Some(Bound::Bool(true)),
        hint: "write `bias = false` to drop β, as GPT-2-style models without biases do",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep γ and β fixed during training",
    },
];

/// A layer norm's parameters, for applying it again.
#[derive(Clone, Copy, Debug)]
pub(super) struct LayerNormLayer {
    gamma: ValueId,
    beta: Option<ValueId>,
    width: usize,
    eps: f64,
}

impl Lowerer<'_> {
    /// `-> layer_norm name(eps = 1e-5, bias = true, frozen = false)`.
    pub(super) fn layer_norm(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "layer norm",
            LAYER_NORM_SIG,
            "write `layer_norm ln1`: the name gives its parameters stable names such as `ln1.weight`",
            "rename one, or write `-> {}` to apply the same layer norm again",
        )?;
        let (eps, bias, frozen) = (b.real(0)?, b.bool(1)?, b.bool(2)?);
        let width = self.row_width(x, producer, stage.span, &what)?;
        self.within_budget(width.checked_mul(2), stage.span, &what)?;
        let name = &layer.name;
        let gamma = self.param(
            format!("{name}.weight"),
            vec![width],
            Init::Constant(1.0),
            (width, width),
            frozen,
            layer.span,
        );
        let beta = bias.then(|| {
            self.param(
                format!("{name}.bias"),
                vec![width],
                Init::Zeros,
                (width, width),
                frozen,
                layer.span,
            )
        });
        let info = LayerNormLayer {
            gamma,
            beta,
            width,
            eps,
        };
        self.layers.insert(
            name.clone(),
            Layer {
                span: layer.span,
                kind: LayerKind::LayerNorm(info),
            },
        );
        Some(self.apply_layer_norm(x, name, &info, stage.span, let_name))
    }

    /// `-> name` for a layer norm defined earlier, on rows of the same width.
    pub(super) fn reuse_layer_norm(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        info: &LayerNormLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("layer norm `{name}`");
        let width = self.row_width(x, producer, stage.span, &what)?;
        if width != info.width {
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!("{what} normalises rows of {} but {producer} has rows of {width}", info.width),
                )
                .with_label(defined, format!("defined over rows of {} here", info.width))
                .with_help("a shared layer norm must be applied to values whose last axis has the width it was first applied to"),
            );
            return None;
        }
        Some(self.apply_layer_norm(x, name, info, stage.span, let_name))
    }

    fn apply_layer_norm(
        &mut self,
        x: ValueId,
        name: &str,
        info: &LayerNormLayer,
        span: Span,
        let_name: Option<&str>,
    ) -> (ValueId, String) {
        let ty = self.graph.ty(x).clone();
        let op = Op::LayerNorm {
            eps: Const::new(info.eps),
            bias: info.beta.is_some(),
        };
        let args = std::iter::once(x)
            .chain([info.gamma])
            .chain(info.beta)
            .collect();
        let out = let_name.unwrap_or(name).to_string();
        let v = self.push(op, args, ty, out, Phase::Forward, span);
        (v, format!("layer norm `{name}` (rows of {})", info.width))
    }

    /// The width of the rows a layer norm normalises, the last axis of a batched value, or an
    /// error saying that `what` needs one.
    fn row_width(&mut self, x: ValueId, producer: &str, span: Span, what: &str) -> Option<usize> {
        let shape = self.graph.ty(x).shape.clone();
        match shape.0.as_slice() {
            [Dim::Batch, .., Dim::Fixed(n)] => Some(*n),
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        span,
                        format!("{what} normalises the last axis but {producer} has shape {shape}"),
                    )
                    .with_help("give the input at least one dimension per sample"),
                );
                None
            }
        }
    }
}
