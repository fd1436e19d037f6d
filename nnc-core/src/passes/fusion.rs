//! Fusion: rewrites chains of small ops into the fused kernels of the runtime, then removes
//! what became dead.
//!
//! Rewrites, in order:
//! 1. a cross-entropy term over softmax or sigmoid → the same term in its with-logits form,
//!    computed from the logits so that it is stable for any logit size;
//! 2. in the backward graph, `softmax_grad(loss_grad)` → `softmax_loss_grad`, `(p·Σt − t)`
//!    scaled, and the same for sigmoid with binary cross-entropy: the exact, stable gradient,
//!    without dividing by probabilities;
//! 3. `matmul(x, wᵀ)` [+ `bias_add`] [+ element-wise activation] → one `dense` node, whose
//!    kernel runs the product and a single epilogue pass; an intermediate is only absorbed when
//!    nothing else reads it (so an activation whose derivative needs its input stays apart);
//! 4. `conv` + element-wise activation → one `conv` node whose kernel applies the activation
//!    in the pass that adds the bias, on the same condition.
//!
//! It does not reorder nodes and does not touch the backward matmuls (they are already single
//! kernel calls).

use crate::ir::{Act, LossKind, LossSpec, Op, Program, ValueId};

pub fn run(p: &mut Program) {
    fuse_losses(p);
    fuse_dense(p);
    fuse_conv(p);
    super::dead_code::eliminate(p);
}

/// Whether `producer` is the activation a loss of this kind can absorb.
fn absorbs(spec: LossSpec, producer: Op) -> bool {
    match producer {
        Op::Softmax => matches!(
            spec.kind,
            LossKind::CategoricalCrossEntropy | LossKind::SparseCrossEntropy
        ),
        Op::Activation(Act::Sigmoid) => spec.kind == LossKind::BinaryCrossEntropy,
        _ => false,
    }
}

fn fuse_losses(p: &mut Program) {
    let uses = p.graph.use_counts();
    for index in 0..p.graph.nodes.len() {
        let node = p.graph.nodes[index].clone();
        let producer = |v: ValueId| p.graph.node(v).clone();
        let fused = match node.op {
            Op::Loss(spec) => {
                let pred = producer(node.args[0]);
                // The with-logits loss reads its logits from the arena in `total_loss`, which
                // an input (a method parameter of the forward pass only), or a reshape viewing
                // one, never reaches; a softmax over an input keeps the loss over
                // probabilities.
                let logits_in_arena = pred
                    .args
                    .first()
                    .is_some_and(|&l| !matches!(p.graph.node(p.storage_root(l)).op, Op::Input(_)));
                match spec.kind.with_logits() {
                    Some(kind) if absorbs(spec, pred.op) && logits_in_arena => Some((
                        Op::Loss(LossSpec { kind, ..spec }),
                        vec![pred.args[0], node.args[1]],
                    )),
                    _ => None,
                }
            }
            Op::SoftmaxGrad | Op::ActivationGrad(Act::Sigmoid) => {
                let (y, gy) = (node.args[0], node.args[1]);
                match producer(gy).op {
                    Op::LossGrad(spec)
                        if absorbs(spec, producer(y).op)
                            && producer(gy).args[0] == y
                            && uses[gy.index()] == 1 =>
                    {
                        let op = if node.op == Op::SoftmaxGrad {
                            Op::SoftmaxLossGrad(spec)
                        } else {
                            Op::SigmoidLossGrad(spec)
                        };
                        Some((op, vec![y, producer(gy).args[1]]))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((op, args)) = fused {
            let n = &mut p.graph.nodes[index];
            n.op = op;
            n.args = args;
        }
    }
}

fn fuse_dense(p: &mut Program) {
    // Counts and users are taken once: a rewrite only absorbs values read by nothing else.
    let uses = p.graph.use_counts();
    let mut user = vec![None; p.graph.nodes.len()];
    for id in p.graph.ids() {
        for a in &p.graph.node(id).args {
            user[a.index()] = Some(id);
        }
    }
    let single = |v: ValueId| uses[v.index()] == 1;
    let op_of = |v: ValueId| p.graph.node(v).op;
    // A dense layer's bias is one vector; a bias over several axes stays a node of its own.
    let vector_bias = |v: ValueId| p.graph.ty(p.graph.node(v).args[1]).shape.rank() == 1;
    // A forward dense product: x · wᵀ with w a parameter.
    let is_dense_matmul = |v: ValueId| {
        op_of(v)
            == Op::MatMul {
                transpose_a: false,
                transpose_b: true,
            }
            && p.param_of(p.graph.node(v).args[1]).is_some()
    };
    // Whether `v`'s only reader is the next link of a dense chain, which will absorb `v`.
    let absorbed = |v: ValueId| {
        single(v)
            && user[v.index()].is_some_and(|u| match op_of(u) {
                Op::Activation(_) => true,
                Op::BiasAdd => p.graph.node(u).args[0] == v && vector_bias(u),
                _ => false,
            })
    };
    let mut rewrites = Vec::new();
    for id in p.graph.ids() {
        let node = p.graph.node(id);
        let (act, mut top) = match node.op {
            Op::Activation(act) if single(node.args[0]) => (act, node.args[0]),
            Op::BiasAdd | Op::MatMul { .. } if !absorbed(id) => (Act::Identity, id),
            _ => continue,
        };
        let mut bias = None;
        if op_of(top) == Op::BiasAdd && vector_bias(top) {
            let args = &p.graph.node(top).args;
            if !single(args[0]) {
                continue;
            }
            bias = Some(args[1]);
            top = args[0];
        }
        if !is_dense_matmul(top) {
            continue;
        }
        let mm = &p.graph.node(top).args;
        let mut args = vec![mm[0], mm[1]];
        args.extend(bias);
        rewrites.push((
            id,
            Op::Dense {
                act,
                bias: bias.is_some(),
            },
            args,
        ));
    }
    for (id, op, args) in rewrites {
        let n = &mut p.graph.nodes[id.index()];
        n.op = op;
        n.args = args;
    }
}

fn fuse_conv(p: &mut Program) {
    let uses = p.graph.use_counts();
    let mut rewrites = Vec::new();
    for id in p.graph.ids() {
        let node = p.graph.node(id);
        let Op::Activation(act) = node.op else {
            continue;
        };
        let x = node.args[0];
        let conv = p.graph.node(x);
        if let Op::Conv {
            geom,
            bias,
            act: Act::Identity,
        } = conv.op
        {
            if uses[x.index()] == 1 && act != Act::Identity {
                rewrites.push((id, Op::Conv { geom, bias, act }, conv.args.clone()));
            }
        }
    }
    for (id, op, args) in rewrites {
        let n = &mut p.graph.nodes[id.index()];
        n.op = op;
        n.args = args;
    }
}
