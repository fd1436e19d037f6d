//! Dead-code elimination: drops nodes that no root needs and renumbers the rest, keeping their
//! order. Roots are the loss and its terms, the outputs (and their inference-only and step
//! copies), the metric's operands and every final gradient; leaves (inputs, targets,
//! parameters, state, output gradients) are always kept, since they define the model's
//! interface, and so are state writes and the step's writes of its carried state.

use crate::ir::{Graph, Program, ValueId};

pub fn eliminate(p: &mut Program) {
    let n = p.graph.nodes.len();
    let mut live = vec![false; n];
    let mut stack: Vec<ValueId> = p
        .loss
        .into_iter()
        .chain(p.loss_terms.iter().copied())
        .collect();
    stack.extend(p.outputs.iter().map(|b| b.value));
    stack.extend(p.inference.iter().flat_map(|i| i.outputs.iter().copied()));
    if let Ok(step) = &p.step {
        stack.extend(step.outputs.iter().chain(&step.inputs).copied());
        stack.extend(step.carries.iter().map(|c| c.write));
    }
    stack.extend(p.metric.iter().flat_map(|m| [m.prediction, m.target]));
    for (_, grads) in p.gradient_passes() {
        stack.extend(grads.finals());
    }
    // Interface leaves define the model's interface; state writes are effects.
    stack.extend(p.graph.ids().filter(|id| {
        let op = p.graph.node(*id).op;
        op.is_interface() || op.writes_state()
    }));
    while let Some(v) = stack.pop() {
        if !std::mem::replace(&mut live[v.index()], true) {
            stack.extend(p.graph.node(v).args.iter().copied());
        }
    }
    if live.iter().all(|l| *l) {
        return;
    }
    let mut remap = vec![ValueId(u32::MAX); n];
    let mut graph = Graph::default();
    for id in p.graph.ids().filter(|id| live[id.index()]) {
        let mut node = p.graph.node(id).clone();
        for a in &mut node.args {
            *a = remap[a.index()];
        }
        remap[id.index()] = graph.push(node, p.graph.span(id));
    }
    p.graph = graph;
    let map = |v: ValueId| remap[v.index()];
    p.loss = p.loss.map(map);
    for t in &mut p.loss_terms {
        *t = map(*t);
    }
    for v in p.inference.iter_mut().flat_map(|i| &mut i.outputs) {
        *v = map(*v);
    }
    if let Ok(step) = &mut p.step {
        for v in step.outputs.iter_mut().chain(&mut step.inputs) {
            *v = map(*v);
        }
        for c in &mut step.carries {
            c.read = map(c.read);
            c.write = map(c.write);
        }
    }
    if let Some(m) = &mut p.metric {
        m.prediction = map(m.prediction);
        m.target = map(m.target);
    }
    for b in p
        .inputs
        .iter_mut()
        .chain(&mut p.targets)
        .chain(&mut p.outputs)
    {
        b.value = map(b.value);
    }
    for state in &mut p.states {
        state.value = map(state.value);
    }
    for param in &mut p.params {
        param.value = map(param.value);
    }
    let grads = p
        .backward
        .iter_mut()
        .chain(std::iter::once(&mut p.pullback));
    for g in grads {
        for v in g.params.iter_mut().chain(&mut g.inputs).flatten() {
            *v = map(*v);
        }
    }
}
