//! The gradient rules: for each op, the contribution to the gradient of one argument, given
//! the upstream gradient of the op's result. This table is the whole of the calculus in nnc.
//!
//! Notation: `g` is d loss / d result; the loss itself is the root, where `g` is 1 and absent.

use super::Builder;
use crate::ir::{Node, Op, ValueId};

/// The gradient contribution of `node` (whose value is `id`) to its argument `position`.
pub fn gradient(
    b: &mut Builder<'_>,
    node: &Node,
    id: ValueId,
    g: Option<ValueId>,
    position: usize,
) -> ValueId {
    let arg = node.args[position];
    let name = format!("d_{}", b.program.graph.node(arg).name);
    let upstream = || g.expect("only the loss is differentiated without an upstream gradient");
    match node.op {
        // C = op(A)·op(B):  dA = dC·op(B)ᵀ (transposed back if A was), dB = op(A)ᵀ·dC (likewise).
        Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
        } => {
            let (a, bb) = (node.args[0], node.args[1]);
            let g = upstream();
            let (op, args) = match (position, ta, tb) {
                (0, false, _) => (
                    Op::MatMul {
                        transpose_a: false,
                        transpose_b: !tb,
                    },
                    [g, bb],
                ),
                (0, true, _) => (
                    Op::MatMul {
                        transpose_a: tb,
                        transpose_b: true,
                    },
                    [bb, g],
                ),
                (_, _, false) => (
                    Op::MatMul {
                        transpose_a: !ta,
                        transpose_b: false,
                    },
                    [a, g],
                ),
                (_, _, true) => (
                    Op::MatMul {
                        transpose_a: true,
                        transpose_b: ta,
                    },
                    [g, a],
                ),
            };
            b.emit(op, &args, name)
        }
        // y = x + b:  dx = dy,  db = Σ_batch dy.
        Op::BiasAdd if position == 0 => upstream(),
        Op::BiasAdd => b.emit(Op::ReduceBatch, &[upstream()], name),
        // y = f(x):  dx = dy ⊙ f'(x), with f' written through y.
        Op::Activation(act) => b.emit(Op::ActivationGrad(act), &[id, upstream()], name),
        // y = softmax(x):  dx = y ⊙ (dy − Σ dy ⊙ y).
        Op::Softmax => b.emit(Op::SoftmaxGrad, &[id, upstream()], name),
        // y = a + b:  da = db = dy.
        Op::Add => upstream(),
        // The root: d loss / d prediction; targets never need a gradient.
        Op::Loss(kind) => b.emit(Op::LossGrad(kind), &[node.args[0], node.args[1]], name),
        Op::Input(_)
        | Op::Target(_)
        | Op::Param(_)
        | Op::ReduceBatch
        | Op::ActivationGrad(_)
        | Op::SoftmaxGrad
        | Op::LossGrad(_)
        | Op::Dense { .. }
        | Op::SoftmaxCrossEntropy
        | Op::SoftmaxCrossEntropyGrad
        | Op::SigmoidBinaryCrossEntropy
        | Op::SigmoidBinaryCrossEntropyGrad => {
            // Autodiff runs once, on the lowered forward graph, before fusion: these ops are
            // either leaves or created later, so reaching one here is a pipeline-order bug.
            panic!(
                "no gradient rule for {} (autodiff must run before fusion)",
                node.op
            )
        }
    }
}
