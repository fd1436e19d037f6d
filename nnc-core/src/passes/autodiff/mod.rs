//! Reverse-mode automatic differentiation as an IR pass.
//!
//! Appends the backward graph to the forward graph: one walk over the nodes in reverse
//! order, asking the rule table (`rules.rs`) for each argument's gradient contribution and
//! summing contributions with `add` nodes. Only values that depend on a parameter get a
//! gradient, so no work is spent on gradients of inputs. Backward nodes inherit the span of the
//! forward node they come from. The pass does not simplify or fuse; `fusion` does that.

mod rules;

use crate::ir::{Node, Op, Phase, Program, Type, ValueId};

/// Appends nodes to the graph on behalf of the rules, typing each with its op's rule.
pub struct Builder<'p> {
    program: &'p mut Program,
    /// The forward node the current rule differentiates: its span goes on new nodes.
    origin: ValueId,
}

impl Builder<'_> {
    pub fn emit(&mut self, op: Op, args: &[ValueId], name: String) -> ValueId {
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
        let span = g.span(self.origin);
        g.push(
            Node {
                op,
                args: args.to_vec(),
                ty,
                phase: Phase::Backward,
                name,
            },
            span,
        )
    }
}

pub fn run(p: &mut Program) {
    let n = p.graph.nodes.len();
    // A value needs a gradient when some parameter flows into it.
    let mut needs = vec![false; n];
    for id in p.graph.ids() {
        let node = p.graph.node(id);
        needs[id.index()] =
            matches!(node.op, Op::Param(_)) || node.args.iter().any(|a| needs[a.index()]);
    }
    let mut grads: Vec<Option<ValueId>> = vec![None; n];
    let loss = p.loss;
    for index in (0..n).rev() {
        let id = ValueId(index as u32);
        let upstream = if id == loss { None } else { grads[index] };
        if id != loss && upstream.is_none() {
            continue;
        }
        let node: Node = p.graph.node(id).clone();
        for (position, arg) in node.args.iter().enumerate() {
            if !needs[arg.index()] {
                continue;
            }
            let mut b = Builder {
                program: p,
                origin: id,
            };
            let contribution = rules::gradient(&mut b, &node, id, upstream, position);
            let total = match grads[arg.index()] {
                None => contribution,
                Some(previous) => {
                    let name = format!("d_{}", p.graph.node(*arg).name);
                    Builder {
                        program: p,
                        origin: id,
                    }
                    .emit(Op::Add, &[previous, contribution], name)
                }
            };
            grads[arg.index()] = Some(total);
        }
    }
    for i in 0..p.params.len() {
        p.params[i].grad = grads[p.params[i].value.index()];
    }
}
