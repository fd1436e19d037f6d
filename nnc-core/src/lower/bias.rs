//! The `bias` layer: a learned tensor shaped like the last `axes` axes of its input, added to
//! every sample (and every position before those axes). `[8, 32] -> bias pos(axes = 2,
//! init = normal)` is a learned position embedding as in GPT-2 (the same `[8, 32]` table added
//! to each sample's token embeddings); `axes = 1` is a bias per feature. The parameter is
//! `name.bias`. Its gradient sums over every leading axis (`sum_rows`).

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::Diagnostic;
use crate::ir::{Init, Op, Phase, ValueId};
use crate::syntax::ast;

const BIAS_SIG: &[Param] = &[
    Param {
        name: "axes",
        kind: Kind::Width,
        default: Some(Bound::Int(1)),
        hint: "`axes` counts the trailing axes the bias covers: 1 for one value per feature, 2 for a [positions, features] table",
    },
    Param {
        name: "init",
        kind: Kind::Choice {
            names: &["zeros", "ones", "normal"],
            or_number: true,
        },
        // An empty name stands for "not given", which means zeros.
        default: Some(Bound::Name(String::new())),
        hint: "the bias starts at `zeros` (the default), `ones`, a number, or `normal` (N(0, std²))",
    },
    Param {
        name: "std",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(0.02)),
        hint: "the standard deviation of `init = normal` (GPT-2 uses 0.02, the default)",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the bias fixed during training",
    },
];

impl Lowerer<'_> {
    /// `-> bias name(axes = 1, init = zeros, std = 0.02, frozen = false)`.
    pub(super) fn bias(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "bias",
            BIAS_SIG,
            "write `bias pos(axes = 2)`: the name gives the parameter its stable name `pos.bias`",
            "rename one, or write `-> {}` to add the same bias again",
        )?;
        let axes = b.int(0)?;
        let dims = &self.graph.ty(x).shape.0;
        let per_sample = dims.len() - 1;
        if axes > per_sample {
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!(
                        "{what} covers the last {axes} axes but {producer} has {per_sample} per sample (shape {})",
                        self.graph.ty(x).shape
                    ),
                )
                .with_help(format!("use at most `axes = {per_sample}`; the bias is added to every sample")),
            );
            return None;
        }
        let sample = self.graph.ty(x).shape.sample_dims();
        let shape = sample[per_sample - axes..].to_vec();
        let len = shape.iter().product::<usize>();
        self.within_budget(Some(len), stage.span, &what)?;
        let init = match (b.real(1), b.choice(1).unwrap_or("")) {
            (Some(0.0), _) | (None, "zeros" | "") => Init::Zeros,
            (Some(c), _) => Init::Constant(c),
            (None, "ones") => Init::Constant(1.0),
            (None, _) => Init::Normal(b.real(2)?),
        };
        let param = self.param(
            format!("{}.bias", layer.name),
            shape,
            init,
            (len, len),
            b.bool(3)?,
            layer.span,
        );
        let info = Layer {
            span: layer.span,
            kind: LayerKind::Bias { value: param },
        };
        self.layers.insert(layer.name.clone(), info);
        self.apply_bias(
            x,
            producer,
            stage.span,
            &layer.name,
            layer.span,
            param,
            let_name,
        )
    }

    /// Adds the bias tensor `value` of layer `name` (defined at `defined`) to `x`, broadcast
    /// over its leading axes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_bias(
        &mut self,
        x: ValueId,
        producer: &str,
        span: crate::diag::Span,
        name: &str,
        defined: crate::diag::Span,
        value: ValueId,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let ty = self.graph.ty(x).clone();
        let bias_ty = self.graph.ty(value).clone();
        if Op::BiasAdd.infer(&[&ty, &bias_ty]).is_err() {
            self.error(
                Diagnostic::error(
                    "E0205",
                    span,
                    format!(
                        "bias `{name}` is {} but {producer} has shape {}",
                        bias_ty.shape, ty.shape
                    ),
                )
                .with_label(defined, format!("a bias of shape {}", bias_ty.shape))
                .with_help("a bias must match the last axes of every value it is added to"),
            );
            return None;
        }
        let out = let_name.unwrap_or(name).to_string();
        let v = self.push(Op::BiasAdd, vec![x, value], ty, out, Phase::Forward, span);
        Some((v, format!("bias `{name}`")))
    }
}
