//! The stable text form of a program (`nnc ir`, snapshots). One line per value:
//! `%3: float[B, 8] = matmul.nt %0, %2  ; hidden  @ batched[0, 8)`.

use super::{Gradients, Hyper, MetricKind, Op, Optimizer, Phase, Program, Storage};
use std::fmt::{self, Write as _};

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {} {{", self.name)?;
        for (b, grad) in self.inputs.iter().zip(&self.requires_grad) {
            writeln!(
                f,
                "  input {}: {} = {}{}",
                b.name,
                self.graph.ty(b.value),
                b.value,
                if *grad { " requires_grad" } else { "" }
            )?;
        }
        for b in &self.targets {
            writeln!(
                f,
                "  target {}: {} = {}",
                b.name,
                self.graph.ty(b.value),
                b.value
            )?;
        }
        for (p, offset) in self.params.iter().zip(self.param_offsets()) {
            let dims: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
            writeln!(
                f,
                "  param {}: [{}] = {} init {} at {offset}{}",
                p.name,
                dims.join(", "),
                p.value,
                p.init,
                if p.frozen { " frozen" } else { "" }
            )?;
        }
        for (s, offset) in self.states.iter().zip(self.state_offsets()) {
            let dims: Vec<String> = s.shape.iter().map(|d| d.to_string()).collect();
            writeln!(
                f,
                "  state {}: [{}] = {} init {} at {offset}",
                s.name,
                dims.join(", "),
                s.value,
                s.init
            )?;
        }
        writeln!(f, "  optimizer {}", optimizer(&self.optimizer))?;
        let mut phase = Phase::Forward;
        for id in self.graph.ids() {
            let node = self.graph.node(id);
            // The inference-only phases start with a heading; the others read from the ops.
            if node.phase != phase {
                phase = node.phase;
                match phase {
                    Phase::Fold => writeln!(f, "  fold (predict):")?,
                    Phase::Infer => writeln!(f, "  infer (predict):")?,
                    _ => {}
                }
            }
            if matches!(
                node.op,
                Op::Input(_) | Op::Target(_) | Op::Param(_) | Op::State(_)
            ) {
                continue;
            }
            let mut line = format!("  {id}: {} = {}", node.ty, node.op);
            for (i, a) in node.args.iter().enumerate() {
                line.push_str(if i == 0 { " " } else { ", " });
                write!(line, "{a}")?;
            }
            write!(line, "  ; {}", node.name)?;
            if let Some(plan) = &self.plan {
                match plan.storage[id.index()] {
                    Storage::Batched { offset, per_sample } => {
                        write!(line, " @ batched[{offset}, {})", offset + per_sample)?
                    }
                    Storage::Fixed { offset, len } => {
                        write!(line, " @ fixed[{offset}, {})", offset + len)?
                    }
                    Storage::Grads => line.push_str(" @ grads"),
                    Storage::InputGrad(i) => write!(line, " @ input_grad #{i}")?,
                    Storage::Scalar => line.push_str(" @ scalar"),
                    Storage::State(i) => write!(line, " @ state #{i}")?,
                    Storage::Folded { offset, len } => {
                        write!(line, " @ folded[{offset}, {})", offset + len)?
                    }
                    Storage::Carry { offset, per_sample } => {
                        write!(line, " @ carry[{offset}, {})", offset + per_sample)?
                    }
                    Storage::Caller | Storage::Params => {}
                }
            }
            writeln!(f, "{line}")?;
        }
        for b in &self.outputs {
            writeln!(f, "  output {} = {}", b.name, b.value)?;
        }
        if let Some(inference) = &self.inference {
            for (b, v) in self.outputs.iter().zip(&inference.outputs) {
                writeln!(f, "  infer output {} = {v}", b.name)?;
            }
        }
        if let Some(loss) = self.loss {
            writeln!(f, "  loss = {loss}")?;
        }
        if let Some(m) = &self.metric {
            // The kinds print as they did before `ArgmaxLabel` had a field.
            let kind = match m.kind {
                MetricKind::ArgmaxLabel { ignore: None } => "ArgmaxLabel".to_string(),
                MetricKind::ArgmaxLabel { ignore: Some(i) } => format!("ArgmaxLabel[ignore={i}]"),
                kind => format!("{kind:?}"),
            };
            writeln!(f, "  metric {kind} {}, {}", m.prediction, m.target)?;
        }
        if let Some(b) = &self.backward {
            gradients(f, self, "backward", b)?;
        }
        if !self.pullback.params.is_empty() || !self.pullback.inputs.is_empty() {
            gradients(f, self, "pullback", &self.pullback)?;
        }
        if let Some(plan) = &self.plan {
            writeln!(
                f,
                "  arena = {} * capacity + {} elements",
                plan.per_sample, plan.fixed
            )?;
            if plan.folded > 0 {
                writeln!(f, "  folded = {} elements", plan.folded)?;
            }
        }
        writeln!(f, "}}")
    }
}

/// One line listing the final gradient value of each parameter and input, `-` where none.
fn gradients(f: &mut fmt::Formatter<'_>, p: &Program, what: &str, g: &Gradients) -> fmt::Result {
    let name = |v: &Option<super::ValueId>| v.map_or("-".to_string(), |v| v.to_string());
    let mut parts: Vec<String> = p
        .params
        .iter()
        .zip(&g.params)
        .map(|(q, v)| format!("{} {}", q.name, name(v)))
        .collect();
    parts.extend(
        p.inputs
            .iter()
            .zip(&g.inputs)
            .filter(|(_, v)| v.is_some())
            .map(|(b, v)| format!("{} {}", b.name, name(v))),
    );
    writeln!(f, "  {what}: {}", parts.join(", "))
}

fn optimizer(o: &Optimizer) -> String {
    let args: Vec<String> = o
        .hyper
        .iter()
        .map(|(n, v)| match v {
            Hyper::Real(x) => format!("{n} = {}", real(*x)),
            Hyper::Bool(b) => format!("{n} = {b}"),
        })
        .chain(
            o.clip_grad_norm
                .map(|c| format!("clip_grad_norm = {}", real(c))),
        )
        .collect();
    format!("{}({})", o.kind.name(), args.join(", "))
}

/// A hyperparameter as a person writes it: `0.9`, `1e-8`.
fn real(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}
