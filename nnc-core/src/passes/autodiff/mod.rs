//! Reverse-mode automatic differentiation as an IR pass.
//!
//! Appends up to two backward passes to the forward graph (phases `Backward` and `Pullback`), each one walk over the forward
//! nodes in reverse order that asks the rule table (`rules.rs`) for each argument's gradient
//! contribution and sums contributions with `add` nodes:
//! - the loss's backward pass (when the model has a loss): every loss term is a root with
//!   gradient 1, since the total is their sum and each term carries its own weight;
//! - the pullback: seeded by one caller-supplied gradient per output (`output_grad` leaves),
//!   for training a model inside a larger computation (a GAN's generator, hand-written Rust).
//!
//! Only values that depend on a trainable parameter or on an input with `requires_grad` get a
//! gradient, so no work is spent on anything else. Backward nodes inherit the span of the
//! forward node they come from. The pass does not simplify or fuse; `fusion` does that.

mod rules;

use crate::ir::{Const, Gradients, Node, Op, Phase, Program, Type, ValueId};
use std::collections::HashMap;

/// Appends nodes to the graph on behalf of the rules, typing each with its op's rule.
pub struct Builder<'p> {
    program: &'p mut Program,
    /// The forward node the current rule differentiates: its span goes on new nodes.
    origin: ValueId,
    phase: Phase,
    /// The nodes emitted for the forward node being differentiated, by op and arguments: a
    /// rule that needs one value for two arguments (the LSTM's `dz`, behind both its input's
    /// and its weight's gradients) asks for it twice and gets one node.
    emitted: &'p mut HashMap<(Op, Vec<ValueId>), ValueId>,
    /// Which values need a gradient (see `run`).
    needs: &'p [bool],
}

impl Builder<'_> {
    /// Whether `v` needs a gradient: a rule whose op can return an argument's gradient as a
    /// by-product (a scan's initial state) asks before paying for it.
    pub fn needs(&self, v: ValueId) -> bool {
        self.needs[v.index()]
    }

    pub fn emit(&mut self, op: Op, args: &[ValueId], name: String) -> ValueId {
        if let Some(&v) = self.emitted.get(&(op, args.to_vec())) {
            return v;
        }
        let g = &mut self.program.graph;
        let arg_types: Vec<&Type> = args.iter().map(|a| g.ty(*a)).collect();
        let ty = match op.infer(&arg_types) {
            Ok(t) => t,
            // The rules only combine values of types the forward op accepted, so this is a
            // bug in a rule, not in the user's model.
            Err(e) => panic!(
                "autodiff rule for {} built an ill-typed {op}: {e}",
                g.node(self.origin).op
            ),
        };
        self.emit_typed(op, args, ty, name)
    }

    /// Appends a node whose type is given rather than inferred (a reshape's target shape).
    /// The same node, asked for again with the same type, is the one already emitted.
    pub fn emit_typed(&mut self, op: Op, args: &[ValueId], ty: Type, name: String) -> ValueId {
        if let Some(&v) = self.emitted.get(&(op, args.to_vec())) {
            if *self.program.graph.ty(v) == ty {
                return v;
            }
        }
        let g = &mut self.program.graph;
        let span = g.span(self.origin);
        let v = g.push(
            Node {
                op,
                args: args.to_vec(),
                ty,
                phase: self.phase,
                name,
            },
            span,
        );
        self.emitted.insert((op, args.to_vec()), v);
        v
    }
}

pub fn run(p: &mut Program) {
    let n = p.graph.nodes.len();
    // A value needs a gradient when a trainable parameter or a `requires_grad` input flows
    // into it.
    let mut needs = vec![false; n];
    for id in p.graph.ids() {
        let node = p.graph.node(id);
        needs[id.index()] = match node.op {
            Op::Param(i) => !p.params[i].frozen,
            Op::Input(i) => p.requires_grad[i],
            // Batch norm's rule differentiates through its statistics; the running statistics
            // written in the `Commit` phase are not part of the loss.
            Op::BatchNormStats { .. } => false,
            // Likewise attention's rule differentiates through its weights.
            Op::AttentionProbs { .. } => false,
            op if op.writes_state() => false,
            _ => node.args.iter().any(|a| needs[a.index()]),
        };
    }
    if !p.loss_terms.is_empty() {
        let roots: Vec<ValueId> = p.loss_terms.clone();
        let grads = vec![None; n];
        p.backward = Some(walk(p, n, &needs, Phase::Backward, &roots, grads));
    }
    let mut grads = vec![None; n];
    for i in 0..p.outputs.len() {
        let out = p.outputs[i].clone();
        let ty = p.graph.ty(out.value).clone();
        let span = p.graph.span(out.value);
        let seed = p.graph.push(
            Node {
                op: Op::OutputGrad(i),
                args: vec![],
                ty,
                phase: Phase::Pullback,
                name: crate::reserved::output_grad(&out.name),
            },
            span,
        );
        grads[out.value.index()] = Some(seed);
    }
    p.pullback = walk(p, n, &needs, Phase::Pullback, &[], grads);
}

/// One reverse walk over the first `n` nodes. `roots` are loss terms (gradient 1); `grads`
/// holds the seeds. Returns the final gradient of every parameter and input.
fn walk(
    p: &mut Program,
    n: usize,
    needs: &[bool],
    phase: Phase,
    roots: &[ValueId],
    mut grads: Vec<Option<ValueId>>,
) -> Gradients {
    for index in (0..n).rev() {
        let id = ValueId(index as u32);
        let root = roots.contains(&id);
        let upstream = grads[index];
        if !root && upstream.is_none() {
            continue;
        }
        let node: Node = p.graph.node(id).clone();
        let mut emitted = HashMap::new();
        for (position, arg) in node.args.iter().enumerate() {
            if !needs[arg.index()] {
                continue;
            }
            let mut b = Builder {
                program: p,
                origin: id,
                phase,
                emitted: &mut emitted,
                needs,
            };
            let contribution = rules::gradient(&mut b, &node, id, upstream, position);
            let total = match grads[arg.index()] {
                None => contribution,
                Some(previous) => {
                    let name = format!("d_{}", b.program.graph.node(*arg).name);
                    b.emit(Op::Add, &[previous, contribution], name)
                }
            };
            grads[arg.index()] = Some(total);
        }
    }
    let params: Vec<Option<ValueId>> = p
        .params
        .iter()
        .map(|q| grads[q.value.index()].filter(|_| !q.frozen))
        .collect();
    let inputs: Vec<Option<ValueId>> = p
        .inputs
        .iter()
        .zip(&p.requires_grad)
        .map(|(b, wanted)| grads[b.value.index()].filter(|_| *wanted))
        .collect();
    let mut result = Gradients { params, inputs };
    own_final_gradients(p, phase, &mut result);
    result
}

/// Final gradients are written into the model's gradient buffer or the workspace's
/// input-gradient buffers, so each must be a node of its own: computed in this pass, final
/// for nothing else, and read by no other node. Where a rule passed a gradient straight
/// through (`a + b` gives both sides the same gradient), a copy makes it so.
fn own_final_gradients(p: &mut Program, phase: Phase, grads: &mut Gradients) {
    let uses = p.graph.use_counts();
    let finals = grads.finals();
    for slot in grads.params.iter_mut().chain(grads.inputs.iter_mut()) {
        let Some(v) = *slot else { continue };
        let node = p.graph.node(v);
        let shared = finals.iter().filter(|f| **f == v).count() > 1;
        // A reshape is a view of another value's storage, so it cannot be moved into a buffer.
        let owned = node.phase == phase
            && !node.op.is_interface()
            && node.op != Op::Reshape
            && uses[v.index()] == 0;
        if shared || !owned {
            // The original stays an ordinary value in the arena; every final slot gets a copy.
            let name = node.name.clone();
            let mut b = Builder {
                program: p,
                origin: v,
                phase,
                emitted: &mut HashMap::new(),
                needs: &[],
            };
            *slot = Some(b.emit(Op::Scale(Const::new(1.0)), &[v], name));
        }
    }
}
