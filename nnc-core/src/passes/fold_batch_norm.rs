//! Batch-norm folding: gives a model whose batch norm directly follows a convolution an
//! inference-only copy of its forward pass, in which each such pair is one convolution.
//!
//! In inference batch norm is an affine map per channel with constants from the running
//! statistics, `y = γ·(z − mean)/√(var + eps) + β`, and `z` is a convolution, linear in its
//! weight and bias; so `y` is the convolution with weight `w·s` and bias `(b − mean)·s + β`,
//! where `s = γ/√(var + eps)` per output channel. The pass appends:
//! - a `Fold` phase computing each folded weight and bias from the parameters and the running
//!   statistics (generated code keeps them in the workspace and recomputes them only after the
//!   parameters or the state change);
//! - an `Infer` phase: the `Forward` nodes again, with each folded pair replaced by one
//!   convolution over the folded values, and dropout (the identity in inference) left out;
//!   fusion then folds the activation after it into the convolution too.
//!
//! `predict` runs those two phases (`Schedule::PREDICT_FOLDED`); training and `evaluate` keep
//! the forward pass as written. A pair folds only when the convolution's output is read by its
//! batch norm alone: a value read elsewhere (a skip connection before the normalisation) must
//! still exist. The pass does not fold batch norm into dense layers, nor a batch norm that
//! comes before its convolution, and it leaves models without a pair to fold unchanged.

use crate::ir::{Inference, Node, Op, Phase, Program, ValueId};

/// A batch norm that folds into the convolution before it.
struct Pair {
    conv: ValueId,
    stats: ValueId,
    norm: ValueId,
}

pub fn run(p: &mut Program) {
    let pairs = foldable(p);
    if pairs.is_empty() {
        return;
    }
    let mut copy: Vec<Option<ValueId>> = vec![None; p.graph.nodes.len()];
    // The folded weight and bias of each pair, first: the `Fold` phase precedes `Infer`.
    let mut folded = Vec::with_capacity(pairs.len());
    for pair in &pairs {
        let g = &p.graph;
        let (conv, stats, norm) = (g.node(pair.conv), g.node(pair.stats), g.node(pair.norm));
        let (Op::Conv { bias, .. }, Op::BatchNormStats { eps }) = (conv.op, stats.op) else {
            unreachable!("`foldable` matched a convolution and its statistics");
        };
        let (w, b) = (conv.args[1], conv.args.get(2).copied());
        let (gamma, beta) = (norm.args[2], norm.args[3]);
        let (mean, var) = (stats.args[1], stats.args[2]);
        let layer = conv_layer(p, pair.conv);
        let span = p.graph.span(pair.norm);
        let weight = Node {
            op: Op::FoldWeight { eps },
            args: vec![w, gamma, var],
            ty: p.graph.ty(w).clone(),
            phase: Phase::Fold,
            name: format!("{layer}.folded_weight"),
        };
        let mut bias_args = vec![gamma, beta, mean, var];
        bias_args.extend(b);
        let bias_node = Node {
            op: Op::FoldBias { eps, bias },
            args: bias_args,
            ty: p.graph.ty(gamma).clone(),
            phase: Phase::Fold,
            name: format!("{layer}.folded_bias"),
        };
        let weight = p.graph.push(weight, span);
        let bias = p.graph.push(bias_node, span);
        folded.push((weight, bias));
    }
    let forward: Vec<ValueId> = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase == Phase::Forward)
        .collect();
    for id in forward {
        let node = p.graph.node(id).clone();
        if node.op.is_interface() {
            copy[id.index()] = Some(id);
            continue;
        }
        let mapped = |copy: &[Option<ValueId>], a: ValueId| {
            copy[a.index()].expect("the inference pass copies every argument before its use")
        };
        if let Some(i) = pairs.iter().position(|pair| pair.norm == id) {
            let conv = p.graph.node(pairs[i].conv).clone();
            let Op::Conv { geom, act, .. } = conv.op else {
                unreachable!("`foldable` matched a convolution");
            };
            let (weight, bias) = folded[i];
            let x = mapped(&copy, conv.args[0]);
            let folded_conv = Node {
                op: Op::Conv {
                    geom,
                    bias: true,
                    act,
                },
                args: vec![x, weight, bias],
                phase: Phase::Infer,
                ..node
            };
            let span = p.graph.span(id);
            copy[id.index()] = Some(p.graph.push(folded_conv, span));
            continue;
        }
        if pairs.iter().any(|pair| pair.conv == id || pair.stats == id) {
            // Computed by the folded convolution that stands for the batch norm.
            continue;
        }
        match node.op {
            // Dropout is the identity in inference: its product is its input.
            Op::DropoutMask(_) => continue,
            Op::Mul if matches!(p.graph.node(node.args[1]).op, Op::DropoutMask(_)) => {
                copy[id.index()] = Some(mapped(&copy, node.args[0]));
                continue;
            }
            _ => {}
        }
        let args = node.args.iter().map(|a| mapped(&copy, *a)).collect();
        let span = p.graph.span(id);
        let infer = Node {
            args,
            phase: Phase::Infer,
            ..node
        };
        copy[id.index()] = Some(p.graph.push(infer, span));
    }
    let outputs = p
        .outputs
        .iter()
        .map(|b| copy[b.value.index()].expect("outputs are computed by the forward pass"))
        .collect();
    p.inference = Some(Inference { outputs });
}

/// The batch norms, in graph order, whose input is a convolution (without an activation) read
/// by nothing else in the forward pass, with their statistics read by them alone.
fn foldable(p: &Program) -> Vec<Pair> {
    let g = &p.graph;
    // Uses in the forward pass only: the backward pass reads the convolution's output too,
    // but the inference copy has no backward pass.
    let mut uses = vec![0usize; g.nodes.len()];
    for id in g.ids().filter(|id| g.node(*id).phase == Phase::Forward) {
        for a in &g.node(id).args {
            uses[a.index()] += 1;
        }
    }
    g.ids()
        .filter_map(|norm| {
            let node = g.node(norm);
            if node.op != Op::BatchNorm || node.phase != Phase::Forward {
                return None;
            }
            let (conv, stats) = (node.args[0], node.args[1]);
            let is_conv = matches!(
                g.node(conv).op,
                Op::Conv {
                    act: crate::ir::Act::Identity,
                    ..
                }
            );
            let stats_of_conv = matches!(g.node(stats).op, Op::BatchNormStats { .. })
                && g.node(stats).args[0] == conv;
            (is_conv && stats_of_conv && uses[conv.index()] == 2 && uses[stats.index()] == 1)
                .then_some(Pair { conv, stats, norm })
        })
        .collect()
}

/// The layer name of a convolution, from its weight's parameter name (`c1` for `c1.weight`).
fn conv_layer(p: &Program, conv: ValueId) -> String {
    let node = p.graph.node(conv);
    let name = p
        .param_of(node.args[1])
        .map_or(node.name.as_str(), |i| p.params[i].name.as_str());
    name.strip_suffix(".weight").unwrap_or(name).to_string()
}
