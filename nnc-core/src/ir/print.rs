//! The stable text form of a program (`nnc ir`, snapshots). One line per value:
//! `%3: float[B, 8] = matmul.nt %0, %2  ; hidden  @ batched[0, 8)`.

use super::{Op, Optimizer, Program, Storage};
use std::fmt::{self, Write as _};

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {} {{", self.name)?;
        for b in &self.inputs {
            writeln!(
                f,
                "  input {}: {} = {}",
                b.name,
                self.graph.ty(b.value),
                b.value
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
            write!(
                f,
                "  param {}: [{}] = {} init {} at {offset}",
                p.name,
                dims.join(", "),
                p.value,
                p.init
            )?;
            match p.grad {
                Some(g) => writeln!(f, " grad {g}")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "  optimizer {}", optimizer(&self.optimizer))?;
        for id in self.graph.ids() {
            let node = self.graph.node(id);
            if matches!(node.op, Op::Input(_) | Op::Target(_) | Op::Param(_)) {
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
                    Storage::Scalar => line.push_str(" @ scalar"),
                    Storage::Caller | Storage::Params => {}
                }
            }
            writeln!(f, "{line}")?;
        }
        writeln!(f, "  output {} = {}", self.output.name, self.output.value)?;
        writeln!(f, "  loss = {}", self.loss)?;
        if let Some(plan) = &self.plan {
            writeln!(
                f,
                "  arena = {} * capacity + {} elements",
                plan.per_sample, plan.fixed
            )?;
        }
        writeln!(f, "}}")
    }
}

fn optimizer(o: &Optimizer) -> String {
    match o {
        Optimizer::Sgd { lr, weight_decay } => format!("sgd(lr = {lr:e}, weight_decay = {weight_decay:e})"),
        Optimizer::Adam { lr, beta1, beta2, eps, weight_decay } => format!(
            "adam(lr = {lr:e}, beta1 = {beta1}, beta2 = {beta2}, eps = {eps:e}, weight_decay = {weight_decay:e})"
        ),
    }
}
