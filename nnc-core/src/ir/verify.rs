//! The IR verifier: checks the invariants every pass must preserve. It runs after lowering and
//! after each pass in debug builds and tests; a failure is a compiler bug, never a user error.
//!
//! Invariants checked:
//! - the span table is parallel to the nodes;
//! - arguments precede their users (the node order is a valid schedule);
//! - every op has its arity, and its stored type equals the type its rule infers;
//! - leaf ops refer to existing inputs, targets and parameters, and parameters to their nodes;
//! - a parameter's gradient has the parameter's shape;
//! - every computed forward node precedes every computed loss and backward node, so the forward
//!   pass is a prefix of the schedule (code generation emits it once, shared by inference and
//!   training);
//! - after planning, no two arena values that are live at the same time overlap, except a
//!   value computed in place over an operand it reads for the last time.

use super::{Dim, Op, Program, Shape, Storage, Type};

pub fn verify(p: &Program) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let g = &p.graph;
    if g.spans.len() != g.nodes.len() {
        errors.push(format!(
            "{} spans for {} nodes",
            g.spans.len(),
            g.nodes.len()
        ));
    }
    for id in g.ids() {
        let node = g.node(id);
        if node.args.len() != node.op.arity() {
            errors.push(format!("{id}: {} has {} args", node.op, node.args.len()));
            continue;
        }
        if let Some(bad) = node.args.iter().find(|a| **a >= id) {
            errors.push(format!("{id}: argument {bad} does not precede its use"));
            continue;
        }
        match node.op {
            Op::Input(i) if p.inputs.get(i).map(|b| b.value) != Some(id) => {
                errors.push(format!("{id}: input #{i} is not bound to this node"))
            }
            Op::Target(i) if p.targets.get(i).map(|b| b.value) != Some(id) => {
                errors.push(format!("{id}: target #{i} is not bound to this node"))
            }
            Op::Param(i) => match p.params.get(i) {
                Some(param) if param.value == id => {
                    if node.ty != Type::float(Shape::fixed(&param.shape)) {
                        errors.push(format!(
                            "{id}: type {} differs from param {}",
                            node.ty, param.name
                        ));
                    }
                }
                _ => errors.push(format!("{id}: param #{i} is not bound to this node")),
            },
            Op::Input(_) | Op::Target(_) => {}
            op => {
                let arg_types: Vec<&Type> = node.args.iter().map(|a| g.ty(*a)).collect();
                match op.infer(&arg_types) {
                    Ok(t) if t == node.ty => {}
                    Ok(t) => {
                        errors.push(format!("{id}: stored type {} but {op} infers {t}", node.ty))
                    }
                    Err(e) => errors.push(format!("{id}: {e}")),
                }
            }
        }
    }
    let computed = |id: &super::ValueId| {
        !matches!(g.node(*id).op, Op::Input(_) | Op::Target(_) | Op::Param(_))
    };
    let last_forward = g
        .ids()
        .rev()
        .filter(computed)
        .find(|id| g.node(*id).phase == super::Phase::Forward);
    let first_other = g
        .ids()
        .filter(computed)
        .find(|id| g.node(*id).phase != super::Phase::Forward);
    if let (Some(f), Some(o)) = (last_forward, first_other) {
        if f > o {
            errors.push(format!(
                "forward node {f} comes after loss or backward node {o}"
            ));
        }
    }
    for param in &p.params {
        if let Some(grad) = param.grad {
            if grad.index() >= g.nodes.len()
                || *g.ty(grad) != Type::float(Shape::fixed(&param.shape))
            {
                errors.push(format!(
                    "gradient {grad} of {} has the wrong type",
                    param.name
                ));
            }
        }
    }
    if p.loss.index() >= g.nodes.len() || g.ty(p.loss).shape != Shape::scalar() {
        errors.push(format!("loss {} is not a scalar", p.loss));
    }
    if let Some(plan) = &p.plan {
        verify_plan(p, plan, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn verify_plan(p: &Program, plan: &super::MemoryPlan, errors: &mut Vec<String>) {
    let g = &p.graph;
    if plan.storage.len() != g.nodes.len() {
        errors.push("memory plan does not cover every node".into());
        return;
    }
    let last_use = p.last_uses();
    let interval = |s: Storage| match s {
        Storage::Batched { offset, per_sample } => Some((0, offset, offset + per_sample)),
        Storage::Fixed { offset, len } => Some((1, offset, offset + len)),
        _ => None,
    };
    for a in g.ids() {
        let Some((ra, sa, ea)) = interval(plan.storage[a.index()]) else {
            continue;
        };
        if ea > if ra == 0 { plan.per_sample } else { plan.fixed } {
            errors.push(format!("{a}: slot ends past the arena"));
        }
        let batched = g.ty(a).shape.0.first() == Some(&Dim::Batch);
        if batched != (ra == 0) {
            errors.push(format!(
                "{a}: batched value in the fixed region or the reverse"
            ));
        }
        for b in g.ids().filter(|b| *b > a) {
            let Some((rb, sb, eb)) = interval(plan.storage[b.index()]) else {
                continue;
            };
            let overlap = ra == rb && sa < eb && sb < ea;
            // `b` is defined after `a`; they conflict if `a` is still needed when `b` is written,
            // unless `b` is computed in place over `a`, which it reads for the last time.
            let node_b = g.node(b);
            let in_place = node_b
                .op
                .in_place_operand()
                .and_then(|i| node_b.args.get(i))
                == Some(&a)
                && last_use[a.index()] == b.index()
                && plan.storage[a.index()] == plan.storage[b.index()];
            if overlap && last_use[a.index()] >= b.index() && !in_place {
                errors.push(format!("{a} and {b} share arena space while both are live"));
            }
        }
    }
}

impl Program {
    /// For each value, the index of the last node that reads it. Values the caller reads after
    /// the step (the output and the loss) live to the end.
    pub fn last_uses(&self) -> Vec<usize> {
        let g = &self.graph;
        let mut last: Vec<usize> = (0..g.nodes.len()).collect();
        for id in g.ids() {
            for a in &g.node(id).args {
                last[a.index()] = last[a.index()].max(id.index());
            }
        }
        for keep in [self.output.value, self.loss] {
            last[keep.index()] = g.nodes.len();
        }
        last
    }
}
