//! The IR verifier: checks the invariants every pass must preserve. It runs after lowering and
//! after each pass in debug builds and tests; a failure is a compiler bug, never a user error.
//!
//! Invariants checked:
//! - the span table is parallel to the nodes;
//! - arguments precede their users (the node order is a valid schedule);
//! - every op has its arity, and its stored type equals the type its rule infers;
//! - leaf ops refer to existing inputs, targets, parameters and state, and parameters and state
//!   to their nodes; the `Commit` phase holds exactly the state writes, each writing a state;
//! - a parameter's gradient has the parameter's shape;
//! - every computed node belongs to a phase some schedule (entry point) runs; in each schedule
//!   its nodes come in phase order and read only values of their own phase or of a phase the
//!   schedule runs before it, so the backward pass and the pullback never read each other's
//!   values (the interface leaves, inputs, parameters and state, are read from any phase); a
//!   phase has the same predecessors that use the arena in every schedule that runs it, and
//!   nodes of a phase that does not use the arena (state writes, folded weights) take no space
//!   in it;
//! - the inference pass's outputs have the types of the model's outputs, and its folded
//!   weights live in the workspace's buffer for them, without overlapping;
//! - final gradients have the type of their parameter or input, fill one slot each, and are read
//!   by no node;
//! - a reshape keeps the batch axis and the number of elements per sample;
//! - after planning, every arena slot starts at a multiple of `SLOT_ALIGN` elements, and no
//!   two arena values that can be live at the same time overlap, except a
//!   value computed in place over an operand it reads for the last time, and a reshape, which
//!   is a view of its operand's storage.

use super::{Dim, Gradients, Op, Program, Shape, Storage, Type, ValueId};

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
        if node.op.arity().is_some_and(|n| n != node.args.len()) {
            errors.push(format!("{id}: {} has {} args", node.op, node.args.len()));
            continue;
        }
        if let Some(bad) = node.args.iter().find(|a| **a >= id) {
            errors.push(format!("{id}: argument {bad} does not precede its use"));
            continue;
        }
        let step = p.step.as_ref().ok();
        match node.op {
            Op::Input(i)
                if p.inputs.get(i).map(|b| b.value) != Some(id)
                    && step.and_then(|s| s.inputs.get(i)) != Some(&id) =>
            {
                errors.push(format!("{id}: input #{i} is not bound to this node"))
            }
            Op::Carried(i) => match step.and_then(|s| s.carries.get(i)) {
                Some(c) if c.read == id && node.phase == super::Phase::Step => {}
                _ => errors.push(format!(
                    "{id}: carried state #{i} is not bound to this node"
                )),
            },
            Op::CarryOut { .. } | Op::CacheWrite
                if !matches!(g.node(node.args[1]).op, Op::Carried(_)) =>
            {
                errors.push(format!(
                    "{id}: a carried state's update writes something else"
                ))
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
            Op::State(i) => match p.states.get(i) {
                Some(state)
                    if state.value == id && node.ty == Type::float(Shape::fixed(&state.shape)) => {}
                _ => errors.push(format!("{id}: state #{i} is not bound to this node")),
            },
            Op::Input(_) | Op::Target(_) | Op::DropoutMask(_) => {}
            Op::Reshape => {
                let (from, to) = (&g.ty(node.args[0]).shape, &node.ty.shape);
                let batched = |s: &Shape| s.0.first() == Some(&Dim::Batch);
                if batched(from) != batched(to)
                    || from.elems_per_sample() != to.elems_per_sample()
                    || from.0.iter().skip(1).any(|d| *d == Dim::Batch)
                    || to.0.iter().skip(1).any(|d| *d == Dim::Batch)
                {
                    errors.push(format!(
                        "{id}: reshape from {from} to {to} changes the elements"
                    ));
                }
            }
            Op::OutputGrad(i) => match p.outputs.get(i) {
                Some(b) if *g.ty(b.value) == node.ty => {}
                _ => errors.push(format!(
                    "{id}: output gradient #{i} does not fit its output"
                )),
            },
            op if op.writes_state() != (node.phase == super::Phase::Commit) => {
                errors.push(format!(
                    "{id}: {op} in {:?}: state writes, and only they, are the Commit phase",
                    node.phase
                ))
            }
            op if op.writes_state() && !matches!(g.node(node.args[1]).op, Op::State(_)) => {
                errors.push(format!("{id}: {op} writes something other than a state"))
            }
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
    verify_schedules(p, &mut errors);
    if let Some(inference) = &p.inference {
        let outputs = p.outputs.iter().map(|b| b.value);
        if inference.outputs.len() != p.outputs.len() {
            errors.push("the inference pass has another number of outputs".into());
        }
        for (copy, output) in inference.outputs.iter().zip(outputs) {
            let fits = copy.index() < g.nodes.len()
                && g.node(*copy).phase == super::Phase::Infer
                && g.ty(*copy) == g.ty(output);
            if !fits {
                errors.push(format!(
                    "{copy} does not stand for output {output} in inference"
                ));
            }
        }
    }
    if let Ok(step) = &p.step {
        check_step(p, step, &mut errors);
    }
    for (_, grads) in p.gradient_passes() {
        check_gradients(p, grads, &mut errors);
    }
    if let Some(loss) = p.loss {
        if loss.index() >= g.nodes.len() || g.ty(loss).shape != Shape::scalar() {
            errors.push(format!("loss {loss} is not a scalar"));
        }
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

/// Every computed node runs in some schedule, in phase order, after its arguments, and each
/// phase has the same predecessors in every schedule that runs it (the memory plan relies on
/// that to place a phase once).
/// The step pass's interface: one input and output per the model's, and each carried state
/// written once, by a node of the pass, after its scan read it.
fn check_step(p: &Program, step: &super::Step, errors: &mut Vec<String>) {
    let g = &p.graph;
    let in_step = |v: &ValueId| v.index() < g.nodes.len() && g.node(*v).phase == super::Phase::Step;
    if step.inputs.len() != p.inputs.len() || step.outputs.len() != p.outputs.len() {
        errors.push("the step pass has another number of inputs or outputs".into());
    }
    for v in step.inputs.iter().chain(&step.outputs) {
        if !in_step(v) {
            errors.push(format!(
                "{v} stands for an input or output of the step but is not in it"
            ));
        }
    }
    for (i, c) in step.carries.iter().enumerate() {
        let fits = in_step(&c.write)
            && g.node(c.write).args.get(1) == Some(&c.read)
            && g.node(c.read).op == Op::Carried(i);
        if !fits {
            errors.push(format!(
                "carried state #{i} is not read by {} and written by {}",
                c.read, c.write
            ));
        }
    }
}

fn verify_schedules(p: &Program, errors: &mut Vec<String>) {
    let g = &p.graph;
    let schedules = p.schedules();
    for (i, a) in schedules.iter().enumerate() {
        for b in &schedules[i + 1..] {
            for phase in a.phases {
                if let (Some(x), Some(y)) = (a.arena_before(*phase), b.arena_before(*phase)) {
                    if x != y {
                        errors.push(format!(
                            "{phase:?} follows {x:?} in {} but {y:?} in {}",
                            a.name, b.name
                        ));
                    }
                }
            }
        }
    }
    for s in &schedules {
        let mut latest = 0;
        for id in g.ids() {
            let node = g.node(id);
            let Some(before) = s.before(node.phase) else {
                continue;
            };
            // Leaves (inputs, targets, output gradients) are not scheduled; computed nodes are.
            if !node.op.is_interface() {
                if before.len() < latest {
                    errors.push(format!(
                        "{id} ({:?}) comes after a node of {:?} in {}",
                        node.phase, s.phases[latest], s.name
                    ));
                }
                latest = latest.max(before.len());
            }
            for a in &node.args {
                let from = g.node(*a).phase;
                if from != node.phase && !before.contains(&from) && !g.node(*a).op.is_interface() {
                    errors.push(format!(
                        "{id} ({:?}) reads {a} ({from:?}), which {} does not run before it",
                        node.phase, s.name
                    ));
                }
            }
        }
    }
    for id in g.ids() {
        let phase = g.node(id).phase;
        if !schedules.iter().any(|s| s.runs(phase)) {
            errors.push(format!("{id} is in {phase:?}, which no entry point runs"));
        }
    }
}

fn check_gradients(p: &Program, grads: &Gradients, errors: &mut Vec<String>) {
    let g = &p.graph;
    // Final gradients are written into the caller's buffers, once, and read by no node.
    let uses = g.use_counts();
    let finals = grads.finals();
    for (i, v) in finals.iter().enumerate() {
        if v.index() < uses.len() && uses[v.index()] > 0 {
            errors.push(format!("final gradient {v} is read by another node"));
        }
        if finals[..i].contains(v) {
            errors.push(format!("final gradient {v} fills two gradient slots"));
        }
    }
    let fits = |v: ValueId, ty: &Type| v.index() < g.nodes.len() && g.ty(v) == ty;
    for (param, grad) in p.params.iter().zip(&grads.params) {
        if let Some(v) = grad {
            if !fits(*v, &Type::float(Shape::fixed(&param.shape))) {
                errors.push(format!("gradient {v} of {} has the wrong type", param.name));
            }
        }
    }
    for (input, grad) in p.inputs.iter().zip(&grads.inputs) {
        if let Some(v) = grad {
            if !fits(*v, g.ty(input.value)) {
                errors.push(format!(
                    "gradient {v} of input {} has the wrong type",
                    input.name
                ));
            }
        }
    }
}

fn verify_plan(p: &Program, plan: &super::MemoryPlan, errors: &mut Vec<String>) {
    let g = &p.graph;
    if plan.storage.len() != g.nodes.len() {
        errors.push("memory plan does not cover every node".into());
        return;
    }
    let schedules = p.schedules();
    let lives: Vec<Vec<usize>> = schedules.iter().map(|s| p.live_until(s)).collect();
    let interval = |s: Storage| match s {
        Storage::Batched { offset, per_sample } => Some((0, offset, offset + per_sample)),
        Storage::Fixed { offset, len } => Some((1, offset, offset + len)),
        _ => None,
    };
    for id in g
        .ids()
        .filter(|id| g.node(*id).phase == super::Phase::Commit)
    {
        if !matches!(plan.storage[id.index()], Storage::State(i) if Some(i) == p.state_of(id)) {
            errors.push(format!("{id}: a state write stored outside its state"));
        }
    }
    let mut folded_end = 0;
    for id in g.ids().filter(|id| g.node(*id).phase == super::Phase::Fold) {
        match plan.storage[id.index()] {
            Storage::Folded { offset, len }
                if offset >= folded_end
                    && len == g.ty(id).shape.elems_per_sample()
                    && offset + len <= plan.folded =>
            {
                folded_end = offset + len
            }
            _ => errors.push(format!("{id}: a folded weight stored outside its buffer")),
        }
    }
    for id in g.ids() {
        let carried = match g.node(id).op {
            Op::Carried(_) => id,
            Op::CarryOut { .. } | Op::CacheWrite => g.node(id).args[1],
            _ => continue,
        };
        let fits = matches!(plan.storage[id.index()], Storage::Carry { offset, per_sample }
            if per_sample == g.ty(id).shape.elems_per_sample() && offset + per_sample <= plan.carry);
        if !fits || plan.storage[id.index()] != plan.storage[carried.index()] {
            errors.push(format!("{id}: a carried state stored outside its place"));
        }
    }
    use crate::passes::memory_plan::SLOT_ALIGN;
    if !plan.per_sample.is_multiple_of(SLOT_ALIGN) {
        errors.push(format!(
            "{} arena elements per sample is not aligned",
            plan.per_sample
        ));
    }
    // Computed once: the pair loop below is quadratic.
    let roots: Vec<ValueId> = g.ids().map(|v| p.storage_root(v)).collect();
    for a in g.ids() {
        let Some((ra, sa, ea)) = interval(plan.storage[a.index()]) else {
            continue;
        };
        if !sa.is_multiple_of(SLOT_ALIGN) {
            errors.push(format!("{a}: slot offset {sa} is not aligned"));
        }
        if ea > if ra == 0 { plan.per_sample } else { plan.fixed } {
            errors.push(format!("{a}: slot ends past the arena"));
        }
        let batched = g.ty(a).shape.0.first() == Some(&Dim::Batch);
        if batched != (ra == 0) {
            errors.push(format!(
                "{a}: batched value in the fixed region or the reverse"
            ));
        }
        let phase_a = g.node(a).phase;
        for b in g.ids().filter(|b| *b > a) {
            let Some((rb, sb, eb)) = interval(plan.storage[b.index()]) else {
                continue;
            };
            if ra != rb || sa >= eb || sb >= ea {
                continue;
            }
            // A reshape shares the storage of the value it views, by design.
            if roots[a.index()] == roots[b.index()] {
                continue;
            }
            // `b` is defined after `a`; they conflict if `a` is still needed when `b` is written
            // in a schedule that runs both, unless `b` is computed in place over `a`, which
            // it reads for the last time.
            let phase_b = g.node(b).phase;
            let node_b = g.node(b);
            for (s, last) in schedules.iter().zip(&lives) {
                if !s.runs(phase_a) || !s.runs(phase_b) {
                    continue;
                }
                let in_place = node_b
                    .op
                    .in_place_operand()
                    .and_then(|i| node_b.args.get(i))
                    == Some(&a)
                    && last[a.index()] == b.index()
                    && plan.storage[a.index()] == plan.storage[b.index()];
                if last[a.index()] >= b.index() && !in_place {
                    errors.push(format!("{a} and {b} share arena space while both are live"));
                    break;
                }
            }
        }
    }
}
