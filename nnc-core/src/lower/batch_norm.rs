//! The `batch_norm` layer: PyTorch's `BatchNorm1d` over the first per-sample axis, so that
//! `[B, C]` normalises each of C features over the batch and `[B, C, L]` each of C channels over
//! the batch and L. Its parameters `name.weight` (γ, ones) and `name.bias` (β, zeros) and its
//! state `name.running_mean` (zeros) and `name.running_var` (ones) have PyTorch's names,
//! shapes and initial values, so a `state_dict` maps onto them one to one (PyTorch's
//! `num_batches_tracked` counter is only read when `momentum=None`, which nnc does not offer).
//!
//! The forward pass computes the statistics (`batch_norm_stats`: the batch's in training, the
//! running ones in inference) and normalises with them; the running statistics are updated in
//! the `Commit` phase of the training entry points, after the forward pass. This file does not
//! differentiate anything: `passes/autodiff/rules.rs` has batch norm's gradient.

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::Diagnostic;
use crate::ir::{Const, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const BATCH_NORM_SIG: &[Param] = &[
    Param {
        name: "momentum",
        kind: Kind::Real {
            min: 0.0,
            min_inclusive: true,
            max: 1.0,
            max_inclusive: true,
            words: "in [0, 1]",
        },
        default: Some(Bound::Real(0.1)),
        hint: "the running statistics move by `momentum` of the way to each batch's, as in PyTorch (default 0.1)",
    },
    Param {
        name: "eps",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(1e-5)),
        hint: "eps is added to the variance before its square root (PyTorch's default is 1e-5)",
    },
];

/// A running-statistics update to append once the forward pass is lowered, so that the
/// `Commit` phase follows every forward node.
pub(super) struct PendingCommit {
    stats: ValueId,
    mean: ValueId,
    var: ValueId,
    momentum: f64,
    per_channel: usize,
    layer: String,
    span: crate::diag::Span,
}

impl Lowerer<'_> {
    /// `-> batch_norm name(momentum = 0.1, eps = 1e-5)`.
    pub(super) fn batch_norm(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "batch norm",
            BATCH_NORM_SIG,
            "write `batch_norm bn`: the name gives its parameters and running statistics stable names such as `bn.running_mean`",
            "rename one; a batch norm layer is applied once, since its running statistics describe one place in the model",
        )?;
        let (momentum, eps) = (b.real(0)?, b.real(1)?);
        let ty = self.graph.ty(x).clone();
        let (channels, per_channel) = match ty.shape.channels() {
            Some(layout) => layout,
            None => {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        stage.span,
                        format!("{what} normalises channels but {producer} has shape {}", ty.shape),
                    )
                    .with_help("batch norm takes [features] or [channels, …] per sample, normalising over the batch and every axis after the first"),
                );
                return None;
            }
        };
        self.within_budget(channels.checked_mul(2), stage.span, &what)?;
        let name = &layer.name;
        let gamma = self.param(
            format!("{name}.weight"),
            vec![channels],
            Init::Constant(1.0),
            (channels, channels),
            false,
            layer.span,
        );
        let beta = self.param(
            format!("{name}.bias"),
            vec![channels],
            Init::Zeros,
            (channels, channels),
            false,
            layer.span,
        );
        let mean = self.state(format!("{name}.running_mean"), channels, 0.0, layer.span);
        let var = self.state(format!("{name}.running_var"), channels, 1.0, layer.span);
        let stats_ty = Type::float(Shape::fixed(&[3, channels]));
        let stats = self.push(
            Op::BatchNormStats {
                eps: Const::new(eps),
            },
            vec![x, mean, var],
            stats_ty,
            format!("{name}.stats"),
            Phase::Forward,
            stage.span,
        );
        let out = let_name.unwrap_or(name).to_string();
        let v = self.push(
            Op::BatchNorm,
            vec![x, stats, gamma, beta],
            ty,
            out,
            Phase::Forward,
            stage.span,
        );
        self.commits.push(PendingCommit {
            stats,
            mean,
            var,
            momentum,
            per_channel,
            layer: name.clone(),
            span: stage.span,
        });
        self.layers.insert(
            name.clone(),
            Layer {
                span: layer.span,
                kind: LayerKind::BatchNorm,
            },
        );
        Some((v, format!("{what} ({channels} channels)")))
    }

    /// Declares a state tensor of `len` elements starting at `init`, and its reading node.
    fn state(&mut self, name: String, len: usize, init: f64, span: crate::diag::Span) -> ValueId {
        let value = self.fixed_leaf(Op::State(self.states.len()), &[len], &name, span);
        self.states.push(crate::ir::State {
            name,
            shape: vec![len],
            init,
            value,
            span,
        });
        value
    }

    /// Appends the running-statistics updates: the `Commit` phase, after every forward node.
    pub(super) fn commit_states(&mut self) {
        for c in std::mem::take(&mut self.commits) {
            let momentum = Const::new(c.momentum);
            let ty = self.graph.ty(c.mean).clone();
            self.push(
                Op::RunningMean { momentum },
                vec![c.stats, c.mean],
                ty.clone(),
                format!("{}.running_mean.next", c.layer),
                Phase::Commit,
                c.span,
            );
            self.push(
                Op::RunningVar {
                    momentum,
                    per_channel: c.per_channel,
                },
                vec![c.stats, c.var],
                ty,
                format!("{}.running_var.next", c.layer),
                Phase::Commit,
                c.span,
            );
        }
    }
}
