//! The states at the ends of a recurrent layer's scan: an initial state given as values
//! (`h0 = s`, and an LSTM's `c0 = c`, PyTorch's `(h0, c0)`), and the final states
//! `h_n(layer)` and `c_n(layer)`, read from the last step of the scan's record. Together they
//! let a caller carry state from one batch to the next (truncated backpropagation through
//! time) or hand an encoder's state to a decoder. A given state is an ordinary value, so its
//! gradient flows like any other (`passes/autodiff/rules.rs`). The scan itself is lowered in
//! `recurrent.rs`.

use super::layers::LayerKind;
use super::recurrent::Cell;
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{DType, Dim, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

impl Lowerer<'_> {
    /// The initial state of `what` from its `h0` and `c0` arguments: `[B, planes, hidden]` (an
    /// LSTM's h then c), `Some(None)` when neither is given, `None` after an error.
    #[allow(clippy::too_many_arguments)] // The layer, its arguments and where they are.
    pub(super) fn initial_state(
        &mut self,
        cell: Cell,
        what: &str,
        span: Span,
        hidden: usize,
        bidirectional: bool,
        h0: Option<ast::Ident>,
        c0: Option<ast::Ident>,
    ) -> Option<Option<ValueId>> {
        let Some(first) = h0.clone().or_else(|| c0.clone()) else {
            return Some(None);
        };
        if bidirectional {
            let key = if h0.is_some() { "h0" } else { "c0" };
            self.error(
                Diagnostic::error(
                    "E0403",
                    first.span,
                    format!("`{key}` is not offered for a bidirectional layer"),
                )
                .with_span_label("an initial state")
                .with_help(format!("{what} reads the sequence both ways, so no one state comes before its first step; give the state to a layer with `bidirectional = false`")),
            );
            return None;
        }
        let states: Vec<ast::Ident> = match (cell, h0, c0) {
            (Cell::Lstm, Some(h), Some(c)) => vec![h, c],
            (Cell::Lstm, h, _) => {
                let (given, missing) = if h.is_some() {
                    ("h0", "c0")
                } else {
                    ("c0", "h0")
                };
                self.error(
                    Diagnostic::error(
                        "E0405",
                        first.span,
                        format!("{what} takes `h0` and `c0` together, but only `{given}` is given"),
                    )
                    .with_span_label(format!("`{missing}` is missing"))
                    .with_help(format!("give the other state as well, as in `{missing} = s` (PyTorch's `(h0, c0)`); a zero state is what the layer starts from without either")),
                );
                return None;
            }
            (_, Some(h), _) => vec![h],
            // The GRU's and the RNN's signatures have no `c0`.
            (_, None, _) => return None,
        };
        let mut planes = Vec::new();
        for (state, key) in states.iter().zip(["h0", "c0"]) {
            let value = self.resolve(state)?;
            let ty = self.graph.ty(value).clone();
            if let DType::Ids(_) = ty.dtype {
                self.error(
                    Diagnostic::error(
                        "E0211",
                        state.span,
                        format!("`{key}` of {what} is a state of float values, but `{}` holds integer ids", state.name),
                    )
                    .with_span_label("integer ids")
                    .with_help(format!("give a float value of one state per sample, as in `input s: [{hidden}];`")),
                );
                return None;
            }
            if ty.shape.0.as_slice() != [Dim::Batch, Dim::Fixed(hidden)] {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        state.span,
                        format!(
                            "`{key}` of {what} is one state of {hidden} units per sample, [{hidden}], but `{}` has shape {}",
                            state.name, ty.shape
                        ),
                    )
                    .with_span_label(format!("shape {}", ty.shape))
                    .with_help(format!("give it a value of shape [{hidden}], as in `input s: [{hidden}];`")),
                );
                return None;
            }
            let plane = Type::float(Shape::batched(&[1, hidden]));
            let name = format!("{}.{key}", state.name);
            planes.push(self.push(Op::Reshape, vec![value], plane, name, Phase::Forward, span));
        }
        if planes.len() == 1 {
            return Some(planes.pop());
        }
        let ty = Type::float(Shape::batched(&[planes.len(), hidden]));
        let name = format!("{}.{}.state", states[0].name, states[1].name);
        let init = self.push(
            Op::Concat { axis: 1 },
            planes,
            ty,
            name,
            Phase::Forward,
            span,
        );
        Some(Some(init))
    }

    /// `h_n(layer)` or `c_n(layer)`: the hidden (or an LSTM's cell) state after the last step
    /// of the one application of a recurrent layer, `[hidden]`, named `name`.
    pub(super) fn final_state(&mut self, call: &ast::Call, name: Option<&str>) -> Option<ValueId> {
        let func = call.func.name.as_str();
        let example = format!(
            "write `{func}(enc)`, `enc` the name of an `lstm`, `gru` or `rnn` layer applied once"
        );
        let layer = match call.args.args.as_slice() {
            [ast::Arg {
                key: None,
                value: ast::Value::Ident(layer),
                ..
            }] => layer,
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0405",
                        call.args.span,
                        format!("`{func}` takes one argument, the name of a recurrent layer"),
                    )
                    .with_help(example),
                );
                return None;
            }
        };
        let refuse = |this: &mut Self, message: String, label: &str, help: String| {
            this.error(
                Diagnostic::error("E0213", layer.span, message)
                    .with_span_label(label.to_string())
                    .with_help(help),
            );
            None
        };
        let info = self.layers.get(&layer.name).map(|l| (l.span, l.kind));
        let (defined, recurrent) = match info {
            Some((span, LayerKind::Recurrent(r))) => (span, r),
            Some(_) => {
                let message = format!(
                    "`{}` is not a recurrent layer, so it has no final state",
                    layer.name
                );
                return refuse(self, message, "not an `lstm`, `gru` or `rnn`", example);
            }
            None if self.failed_layers.contains(&layer.name) => return None,
            None if self.scope.contains_key(&layer.name) => {
                let message = format!(
                    "`{func}` takes a layer's name, but `{}` is a value",
                    layer.name
                );
                let help = format!("name the recurrent layer itself, the name written after `lstm`, `gru` or `rnn`: {example}");
                return refuse(self, message, "a value", help);
            }
            None => {
                let message = format!(
                    "cannot find recurrent layer `{}` in model `{}`",
                    layer.name, self.model.name.name
                );
                let help = format!("define the layer before this use: {example}");
                return refuse(self, message, "not defined", help);
            }
        };
        let kind = recurrent.cell().name();
        if func == "c_n" && recurrent.cell() != Cell::Lstm {
            let message = format!(
                "{kind} `{}` keeps no cell state; only an LSTM has `c_n`",
                layer.name
            );
            let help = format!("write `h_n({})` for its final hidden state", layer.name);
            return refuse(self, message, "not an LSTM", help);
        }
        if recurrent.bidirectional() {
            let message = format!(
                "{kind} `{}` is bidirectional, so its final state is not one direction's",
                layer.name
            );
            let help =
                "write `return_sequences = false` for both directions' final hidden states, joined"
                    .to_string();
            return refuse(self, message, "bidirectional", help);
        }
        let records = self.records.get(&layer.name).cloned().unwrap_or_default();
        let [record] = records.as_slice() else {
            let message = format!("{kind} `{}` is applied {} times, so `{func}` would not say which application's state it means", layer.name, records.len());
            let help = "define a layer for each sequence whose final state you need, or read the last step of the application's result with `slice`".to_string();
            let d = Diagnostic::error("E0213", layer.span, message)
                .with_span_label("applied more than once")
                .with_label(defined, "defined here")
                .with_help(help);
            self.error(d);
            return None;
        };
        let record = *record;
        // Applying the layer again after this is refused where it happens (`reuse_recurrent`).
        self.finals_read
            .entry(layer.name.clone())
            .or_insert(call.span);
        let dims = self.graph.ty(record).shape.sample_dims().to_vec();
        let (steps, hidden) = (dims[1], dims[2]);
        let span = call.span;
        let plane = Op::Slice {
            axis: 1,
            start: usize::from(func == "c_n"),
            len: 1,
        };
        let base = format!("{}.{func}", layer.name);
        let ty = Type::float(Shape::batched(&[1, steps, hidden]));
        let states = self.push(
            plane,
            vec![record],
            ty,
            format!("{base}.states"),
            Phase::Forward,
            span,
        );
        let last = Op::Slice {
            axis: 2,
            start: steps - 1,
            len: 1,
        };
        let ty = Type::float(Shape::batched(&[1, 1, hidden]));
        let last = self.push(
            last,
            vec![states],
            ty,
            format!("{base}.last"),
            Phase::Forward,
            span,
        );
        let ty = Type::float(Shape::batched(&[hidden]));
        let out = name.map_or(base, str::to_string);
        Some(self.push(Op::Reshape, vec![last], ty, out, Phase::Forward, span))
    }
}
