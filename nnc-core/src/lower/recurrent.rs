//! The recurrent layers: PyTorch's one-layer `nn.LSTM` (`lstm`), `nn.GRU` (`gru`) and `nn.RNN`
//! (`rnn`, tanh or relu), batch first, from a zero state, over sequences `[steps, features]`.
//! Their parameters have PyTorch's names and layout, `name.weight_ih_l0` `[G·hidden,
//! features]`, `name.weight_hh_l0` `[G·hidden, hidden]`, `name.bias_ih_l0` and
//! `name.bias_hh_l0` `[G·hidden]`, with G = 4 gates i, f, g, o for the LSTM, 3 gates r, z, n for
//! the GRU and 1 for the RNN, all drawn from
//! `U(±1/√hidden)` as PyTorch does; so a `state_dict` of the PyTorch module called `name` maps
//! onto them one to one.
//!
//! With `bidirectional = true` a second direction, with its own parameters under PyTorch's
//! `_reverse` names, scans the reversed sequence (`Op::Reverse`); its states are turned back to
//! the sequence's order and joined after the forward direction's along the features, or, with
//! `return_sequences = false`, both directions' final states are joined (PyTorch's `h_n`).
//!
//! Lowered as the input projection of every step at once (a dense layer over the last axis,
//! with both biases, which fusion makes one kernel; the GRU's carries `b_ih` alone, since its
//! reset gate multiplies `b_hn`), the scan (`Op::LstmScan`, whose record holds the hidden and
//! cell states and the gates of every step, `Op::GruScan`, the hidden states and gates, or
//! `Op::RnnScan`, the hidden states), and a slice of the record: every hidden state
//! (`return_sequences = true`, PyTorch's output) or the last one. Stacking is a chain of
//! layers. Gradients are in `passes/autodiff/rules.rs`.

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Dim, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const HIDDEN: Param = Param {
    name: "hidden",
    kind: Kind::Width,
    default: None,
    hint: "give the size of the hidden state, as in `lstm enc(128)`",
};
const RETURN_SEQUENCES: Param = Param {
    name: "return_sequences",
    kind: Kind::Bool,
    default: Some(Bound::Bool(true)),
    hint: "write `return_sequences = false` to keep only the last step's hidden state",
};
const BIDIRECTIONAL: Param = Param {
    name: "bidirectional",
    kind: Kind::Bool,
    default: Some(Bound::Bool(false)),
    hint: "write `bidirectional = true` to run a second layer over the reversed sequence",
};
const FROZEN: Param = Param {
    name: "frozen",
    kind: Kind::Bool,
    default: Some(Bound::Bool(false)),
    hint: "write `frozen = true` to keep the layer's parameters fixed during training",
};
const H0: Param = Param {
    name: "h0",
    kind: Kind::Name,
    default: Some(Bound::Name(String::new())),
    hint: "write `h0 = s`, `s` a value of one hidden state per sample, as in `input s: [128];`",
};
const C0: Param = Param {
    name: "c0",
    kind: Kind::Name,
    default: Some(Bound::Name(String::new())),
    hint: "write `c0 = s`, `s` a value of one cell state per sample, as in `input s: [128];`",
};
const LSTM_SIG: &[Param] = &[HIDDEN, RETURN_SEQUENCES, BIDIRECTIONAL, FROZEN, H0, C0];
const GRU_SIG: &[Param] = &[HIDDEN, RETURN_SEQUENCES, BIDIRECTIONAL, FROZEN, H0];
const RNN_SIG: &[Param] = &[
    HIDDEN,
    Param {
        name: "nonlinearity",
        kind: Kind::Choice {
            names: &["tanh", "relu"],
            or_number: false,
        },
        default: Some(Bound::Name(String::new())),
        hint: "the nonlinearity is `tanh` (the default, as in PyTorch) or `relu`",
    },
    RETURN_SEQUENCES,
    BIDIRECTIONAL,
    FROZEN,
    H0,
];

/// The recurrence of a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cell {
    Lstm,
    Gru,
    Rnn { relu: bool },
}

impl Cell {
    /// Gates per unit: the weights have this many rows per hidden unit.
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn { .. } => 1,
        }
    }

    /// The planes of the scan's record: h, c and the gates; h, the gates and the reset gate's
    /// operand; or h alone.
    fn planes(self) -> usize {
        match self {
            Cell::Lstm => 6,
            Cell::Gru => 5,
            Cell::Rnn { .. } => 1,
        }
    }

    fn scan(self, hidden: usize, init: bool) -> Op {
        match self {
            Cell::Lstm => Op::LstmScan { hidden, init },
            Cell::Gru => Op::GruScan { hidden, init },
            Cell::Rnn { relu } => Op::RnnScan { hidden, relu, init },
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::Rnn { .. } => "rnn",
        }
    }
}

/// The parameters of one direction of a recurrent layer.
#[derive(Clone, Copy, Debug)]
struct Direction {
    w_ih: ValueId,
    w_hh: ValueId,
    b_ih: ValueId,
    b_hh: ValueId,
}

/// A recurrent layer's parameters and what applying it again needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecurrentLayer {
    cell: Cell,
    forward: Direction,
    /// The direction over the reversed sequence of a bidirectional layer.
    reverse: Option<Direction>,
    hidden: usize,
    features: usize,
    return_sequences: bool,
}

impl RecurrentLayer {
    pub(super) fn cell(&self) -> Cell {
        self.cell
    }

    pub(super) fn bidirectional(&self) -> bool {
        self.reverse.is_some()
    }
}

impl Lowerer<'_> {
    /// `-> lstm name(hidden, return_sequences = true)`, `-> gru name(...)` with the same
    /// arguments, or `-> rnn name(hidden, nonlinearity = tanh, return_sequences = true)`.
    pub(super) fn recurrent(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (kind, sig) = match stage.kind.name.as_str() {
            "lstm" => ("lstm", LSTM_SIG),
            "gru" => ("gru", GRU_SIG),
            _ => ("rnn", RNN_SIG),
        };
        let example = format!("write `{kind} enc(128)`: the name gives the parameters PyTorch's names, such as `enc.weight_ih_l0`");
        let (layer, what, b) = self.named_layer(
            stage,
            kind,
            sig,
            &example,
            "rename one of the layers, or write `-> {}` to apply the first layer again with the same parameters",
        )?;
        let (cell, rest) = match kind {
            "lstm" => (Cell::Lstm, 1),
            "gru" => (Cell::Gru, 1),
            _ => {
                let relu = b.choice(1) == Some("relu");
                (Cell::Rnn { relu }, 2)
            }
        };
        let (hidden, return_sequences) = (b.int(0)?, b.bool(rest)?);
        let (bidirectional, frozen) = (b.bool(rest + 1)?, b.bool(rest + 2)?);
        let given = |i: usize| {
            b.name(rest + i)
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, span)| ast::Ident {
                    name: name.to_string(),
                    span,
                })
        };
        let (h0, c0) = (given(3), given(4));
        let start = self.initial_state(cell, &what, stage.span, hidden, bidirectional, h0, c0);
        let (_, features) = self.sequence(x, producer, stage.span, &what)?;
        let start = start?;
        let rows = hidden.checked_mul(cell.gates());
        let directions = if bidirectional { 2 } else { 1 };
        let count = features
            .checked_add(hidden)
            .and_then(|n| n.checked_add(2))
            .zip(rows)
            .and_then(|(n, rows)| n.checked_mul(rows))
            .and_then(|n| n.checked_mul(directions));
        self.within_budget(count, stage.span, &what)?;
        let rows = cell.gates() * hidden;
        // PyTorch's `reset_parameters`: every weight and bias from U(±1/√hidden).
        let init = Init::Uniform(1.0 / (hidden as f64).sqrt());
        // PyTorch's names: the reversed direction's end in `_reverse`, after the forward's.
        let mut direction = |suffix: &str| {
            let mut param = |what: &str, shape: Vec<usize>, fan_in: usize| {
                let name = format!("{}.{what}_l0{suffix}", layer.name);
                self.param(name, shape, init, (fan_in, rows), frozen, layer.span)
            };
            Direction {
                w_ih: param("weight_ih", vec![rows, features], features),
                w_hh: param("weight_hh", vec![rows, hidden], hidden),
                b_ih: param("bias_ih", vec![rows], features),
                b_hh: param("bias_hh", vec![rows], hidden),
            }
        };
        let forward = direction("");
        let reverse = bidirectional.then(|| direction("_reverse"));
        let recurrent = RecurrentLayer {
            cell,
            forward,
            reverse,
            hidden,
            features,
            return_sequences,
        };
        let info = Layer {
            span: layer.span,
            kind: LayerKind::Recurrent(recurrent),
        };
        self.layers.insert(layer.name.clone(), info);
        self.apply_recurrent(x, stage.span, &layer.name, &recurrent, start, let_name)
    }

    /// `-> name` for a recurrent layer defined earlier: the same parameters over another
    /// sequence of the same features.
    pub(super) fn reuse_recurrent(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        layer: &RecurrentLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("{} `{name}`", layer.cell.name());
        if let Some(&read) = self.finals_read.get(name) {
            self.error(
                Diagnostic::error(
                    "E0213",
                    stage.span,
                    format!("{what} is applied again after its final state was read"),
                )
                .with_span_label("applied again here")
                .with_label(read, "the final state of its first application, read here")
                .with_help("define another layer for this sequence, so that each final state belongs to one application"),
            );
            return None;
        }
        let (_, features) = self.sequence(x, producer, stage.span, &what)?;
        if features != layer.features {
            let wanted = layer.features;
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!(
                        "{what} reads {wanted} features per step but {producer} has {features}"
                    ),
                )
                .with_label(defined, format!("defined over {wanted} features"))
                .with_help(format!(
                    "give it steps of {wanted} features, or define another layer for this input"
                )),
            );
            return None;
        }
        self.apply_recurrent(x, stage.span, name, layer, None, let_name)
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

    /// The nodes of one application: each direction's projection, scan and the hidden states
    /// it returns, joined along the features for a bidirectional layer (forward first, as
    /// PyTorch's output is). A one-directional layer may start from a given state `init`.
    fn apply_recurrent(
        &mut self,
        x: ValueId,
        span: Span,
        name: &str,
        layer: &RecurrentLayer,
        init: Option<ValueId>,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let steps = match self.graph.ty(x).shape.0.as_slice() {
            [_, Dim::Fixed(t), _] => *t,
            _ => return None,
        };
        let hidden = layer.hidden;
        let out_name = let_name.unwrap_or(name).to_string();
        let (out, width) = match layer.reverse {
            None => {
                let forward = (&layer.forward, init);
                let out = self.direction(x, span, name, layer, forward, false, out_name);
                (out, hidden)
            }
            Some(reverse) => {
                let forward = self.direction(
                    x,
                    span,
                    name,
                    layer,
                    (&layer.forward, None),
                    false,
                    format!("{name}.forward"),
                );
                let ty = self.graph.ty(x).clone();
                let reversed = self.push(
                    Op::Reverse { axis: 1 },
                    vec![x],
                    ty,
                    format!("{name}.reversed"),
                    Phase::Forward,
                    span,
                );
                let prefix = format!("{name}.reverse");
                let backward = self.direction(
                    reversed,
                    span,
                    &prefix,
                    layer,
                    (&reverse, None),
                    true,
                    format!("{name}.backward"),
                );
                let (axis, dims) = if layer.return_sequences {
                    (2, vec![steps, 2 * hidden])
                } else {
                    (1, vec![2 * hidden])
                };
                let ty = Type::float(Shape::batched(&dims));
                let out = self.push(
                    Op::Concat { axis },
                    vec![forward, backward],
                    ty,
                    out_name,
                    Phase::Forward,
                    span,
                );
                (out, 2 * hidden)
            }
        };
        let returns = match (layer.return_sequences, layer.reverse.is_some()) {
            (true, false) => "every step's hidden state",
            (false, false) => "the last hidden state",
            (true, true) => "every step's hidden states of both directions",
            (false, true) => "the final hidden states of both directions",
        };
        let kind = layer.cell.name();
        Some((out, format!("{kind} `{name}` ({returns}, {width} units)")))
    }

    /// One direction's projection and scan over `x` (from its initial state where given), and
    /// what it returns: every step's hidden state `[steps, hidden]`, in the order of the
    /// original sequence (`reversed` turns the states of a scan over the reversed sequence
    /// back), or its final state `[hidden]`, named `out_name`.
    #[allow(clippy::too_many_arguments)] // The application, the direction and the names.
    fn direction(
        &mut self,
        x: ValueId,
        span: Span,
        name: &str,
        layer: &RecurrentLayer,
        (dir, init): (&Direction, Option<ValueId>),
        reversed: bool,
        out_name: String,
    ) -> ValueId {
        let steps = self.graph.ty(x).shape.sample_dims()[0];
        let (hidden, rows) = (layer.hidden, layer.cell.gates() * layer.hidden);
        let seq = |dims: &[usize]| Type::float(Shape::batched(dims));
        let mut push = |op: Op, args: Vec<ValueId>, ty: Type, node: String| {
            self.push(op, args, ty, node, Phase::Forward, span)
        };
        let product = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        let proj = push(
            product,
            vec![x, dir.w_ih],
            seq(&[steps, rows]),
            format!("{name}.proj"),
        );
        // An LSTM's or RNN's biases enter every step as their sum, so the projection carries
        // it; the GRU's reset gate multiplies b_hn, so its scan adds b_hh itself.
        let bias = if layer.cell == Cell::Gru {
            dir.b_ih
        } else {
            let bias_ty = Type::float(Shape::fixed(&[rows]));
            push(
                Op::Add,
                vec![dir.b_ih, dir.b_hh],
                bias_ty,
                format!("{name}.bias"),
            )
        };
        let z = push(
            Op::BiasAdd,
            vec![proj, bias],
            seq(&[steps, rows]),
            format!("{name}.z"),
        );
        let record_ty = seq(&[layer.cell.planes(), steps, hidden]);
        let scan = layer.cell.scan(hidden, init.is_some());
        let mut scan_args = vec![z, dir.w_hh];
        if layer.cell == Cell::Gru {
            scan_args.push(dir.b_hh);
        }
        scan_args.extend(init);
        let record = push(scan, scan_args, record_ty, format!("{name}.record"));
        if !reversed {
            self.records
                .entry(name.to_string())
                .or_default()
                .push(record);
        }
        let mut push = |op: Op, args: Vec<ValueId>, ty: Type, node: String| {
            self.push(op, args, ty, node, Phase::Forward, span)
        };
        let h_plane = Op::Slice {
            axis: 1,
            start: 0,
            len: 1,
        };
        let states = push(
            h_plane,
            vec![record],
            seq(&[1, steps, hidden]),
            format!("{name}.h"),
        );
        if layer.return_sequences {
            if !reversed {
                return push(Op::Reshape, vec![states], seq(&[steps, hidden]), out_name);
            }
            let states = push(
                Op::Reshape,
                vec![states],
                seq(&[steps, hidden]),
                format!("{name}.states"),
            );
            return push(
                Op::Reverse { axis: 1 },
                vec![states],
                seq(&[steps, hidden]),
                out_name,
            );
        }
        let last = Op::Slice {
            axis: 2,
            start: steps - 1,
            len: 1,
        };
        let last = push(
            last,
            vec![states],
            seq(&[1, 1, hidden]),
            format!("{name}.last"),
        );
        push(Op::Reshape, vec![last], seq(&[hidden]), out_name)
    }
}
