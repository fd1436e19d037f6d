//! The `lstm` layer: PyTorch's one-layer `nn.LSTM` (batch first, zero initial state) over
//! sequences `[steps, features]`, with its parameters under PyTorch's names and layout,
//! `name.weight_ih_l0` `[4·hidden, features]`, `name.weight_hh_l0` `[4·hidden, hidden]`,
//! `name.bias_ih_l0` and `name.bias_hh_l0` `[4·hidden]`, the gates in the order i, f, g, o, all
//! drawn from `U(±1/√hidden)` as PyTorch does; so a `state_dict` of an `nn.LSTM` called `name`
//! maps onto them one to one.
//!
//! Lowered as the input projection of every step at once (a dense layer over the last axis,
//! with both biases, which fusion makes one kernel), the scan (`Op::LstmScan`, whose record
//! holds the hidden and cell states and the gates of every step), and a slice of the record:
//! every hidden state (`return_sequences = true`, PyTorch's output) or the last one. Stacking
//! is a chain of `lstm` layers. Gradients are in `passes/autodiff/rules.rs`.

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Dim, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const LSTM_SIG: &[Param] = &[
    Param {
        name: "hidden",
        kind: Kind::Width,
        default: None,
        hint: "give the size of the hidden state, as in `lstm enc(128)`",
    },
    Param {
        name: "return_sequences",
        kind: Kind::Bool,
        default: Some(Bound::Bool(true)),
        hint: "write `return_sequences = false` to keep only the last step's hidden state",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the layer's parameters fixed during training",
    },
];

/// An LSTM layer's parameters and what applying it again needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct LstmLayer {
    w_ih: ValueId,
    w_hh: ValueId,
    b_ih: ValueId,
    b_hh: ValueId,
    hidden: usize,
    features: usize,
    return_sequences: bool,
}

impl Lowerer<'_> {
    /// `-> lstm name(hidden, return_sequences = true)`.
    pub(super) fn lstm(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "lstm",
            LSTM_SIG,
            "write `lstm enc(128)`: the name gives the parameters PyTorch's names, such as `enc.weight_ih_l0`",
            "rename one of the layers, or write `-> {}` to apply the first layer again with the same parameters",
        )?;
        let (hidden, return_sequences, frozen) = (b.int(0)?, b.bool(1)?, b.bool(2)?);
        let (_, features) = self.sequence(x, producer, stage.span, &what)?;
        let h4 = hidden.checked_mul(4);
        let count = h4
            .and_then(|g| g.checked_mul(features + hidden + 2))
            .filter(|_| features.checked_add(hidden + 2).is_some());
        self.within_budget(count, stage.span, &what)?;
        let h4 = 4 * hidden;
        // PyTorch's `reset_parameters`: every weight and bias from U(±1/√hidden).
        let init = Init::Uniform(1.0 / (hidden as f64).sqrt());
        let mut param = |suffix: &str, shape: Vec<usize>, fan_in: usize| {
            let name = format!("{}.{suffix}", layer.name);
            self.param(name, shape, init, (fan_in, h4), frozen, layer.span)
        };
        let w_ih = param("weight_ih_l0", vec![h4, features], features);
        let w_hh = param("weight_hh_l0", vec![h4, hidden], hidden);
        let b_ih = param("bias_ih_l0", vec![h4], features);
        let b_hh = param("bias_hh_l0", vec![h4], hidden);
        let lstm = LstmLayer {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            hidden,
            features,
            return_sequences,
        };
        let info = Layer {
            span: layer.span,
            kind: LayerKind::Lstm(lstm),
        };
        self.layers.insert(layer.name.clone(), info);
        self.apply_lstm(x, stage.span, &layer.name, &lstm, let_name)
    }

    /// `-> name` for an LSTM layer defined earlier: the same parameters over another sequence
    /// of the same features.
    pub(super) fn reuse_lstm(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        lstm: &LstmLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("lstm `{name}`");
        let (_, features) = self.sequence(x, producer, stage.span, &what)?;
        if features != lstm.features {
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!(
                        "{what} reads {} features per step but {producer} has {features}",
                        lstm.features
                    ),
                )
                .with_label(defined, format!("defined over {} features", lstm.features))
                .with_help(format!(
                    "give it steps of {} features, or define another layer for this input",
                    lstm.features
                )),
            );
            return None;
        }
        self.apply_lstm(x, stage.span, name, lstm, let_name)
    }

    /// The steps and features of `x`, which must be a sequence `[steps, features]`.
    fn sequence(
        &mut self,
        x: ValueId,
        producer: &str,
        span: Span,
        what: &str,
    ) -> Option<(usize, usize)> {
        match self.graph.ty(x).shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(t), Dim::Fixed(f)] => Some((*t, *f)),
            _ => {
                let shape = self.graph.ty(x).shape.clone();
                self.error(
                    Diagnostic::error("E0205", span, format!("{what} reads a sequence [steps, features] but {producer} has shape {shape}"))
                        .with_help("declare the input as a sequence, as in `input x: [32, 64];` (32 steps of 64 features), or reshape it to one"),
                );
                None
            }
        }
    }

    /// The nodes of one application: projection, scan and the hidden states it returns.
    fn apply_lstm(
        &mut self,
        x: ValueId,
        span: Span,
        name: &str,
        lstm: &LstmLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let steps = match self.graph.ty(x).shape.0.as_slice() {
            [_, Dim::Fixed(t), _] => *t,
            _ => return None,
        };
        let (hidden, h4) = (lstm.hidden, 4 * lstm.hidden);
        let fwd = Phase::Forward;
        let seq = |dims: &[usize]| Type::float(Shape::batched(dims));
        let product = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        let proj = self.push(
            product,
            vec![x, lstm.w_ih],
            seq(&[steps, h4]),
            format!("{name}.proj"),
            fwd,
            span,
        );
        // Both biases enter every step as their sum, so the projection carries it.
        let bias_ty = Type::float(Shape::fixed(&[h4]));
        let bias = self.push(
            Op::Add,
            vec![lstm.b_ih, lstm.b_hh],
            bias_ty,
            format!("{name}.bias"),
            fwd,
            span,
        );
        let z = self.push(
            Op::BiasAdd,
            vec![proj, bias],
            seq(&[steps, h4]),
            format!("{name}.z"),
            fwd,
            span,
        );
        let scan = Op::LstmScan { hidden };
        let record = self.push(
            scan,
            vec![z, lstm.w_hh],
            seq(&[6, steps, hidden]),
            format!("{name}.record"),
            fwd,
            span,
        );
        let h_plane = Op::Slice {
            axis: 1,
            start: 0,
            len: 1,
        };
        let out_name = let_name.unwrap_or(name).to_string();
        let states = self.push(
            h_plane,
            vec![record],
            seq(&[1, steps, hidden]),
            format!("{name}.h"),
            fwd,
            span,
        );
        let out = if lstm.return_sequences {
            self.push(
                Op::Reshape,
                vec![states],
                seq(&[steps, hidden]),
                out_name,
                fwd,
                span,
            )
        } else {
            let last = Op::Slice {
                axis: 2,
                start: steps - 1,
                len: 1,
            };
            let last = self.push(
                last,
                vec![states],
                seq(&[1, 1, hidden]),
                format!("{name}.last"),
                fwd,
                span,
            );
            self.push(Op::Reshape, vec![last], seq(&[hidden]), out_name, fwd, span)
        };
        let returns = if lstm.return_sequences {
            "every step's hidden state"
        } else {
            "the last hidden state"
        };
        Some((out, format!("lstm `{name}` ({returns}, {hidden} units)")))
    }
}
