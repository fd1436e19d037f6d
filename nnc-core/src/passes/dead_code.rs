//! Dead-code elimination: drops nodes that no root needs and renumbers the rest, keeping their
//! order. Roots are the loss, the output and every parameter gradient; inputs, targets and
//! parameters are always kept, since they define the model's interface.

use crate::ir::{Graph, Op, Program, ValueId};

pub fn eliminate(p: &mut Program) {
    let n = p.graph.nodes.len();
    let mut live = vec![false; n];
    let mut stack: Vec<ValueId> = vec![p.loss, p.output.value];
    stack.extend(p.params.iter().filter_map(|param| param.grad));
    for id in p.graph.ids() {
        if matches!(
            p.graph.node(id).op,
            Op::Input(_) | Op::Target(_) | Op::Param(_)
        ) {
            stack.push(id);
        }
    }
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
    p.loss = map(p.loss);
    p.output.value = map(p.output.value);
    for b in p.inputs.iter_mut().chain(p.targets.iter_mut()) {
        b.value = map(b.value);
    }
    for param in &mut p.params {
        param.value = map(param.value);
        param.grad = param.grad.map(map);
    }
}
