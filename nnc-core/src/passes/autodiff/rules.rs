//! The gradient rules: for each op, the contribution to the gradient of one argument, given
//! the upstream gradient of the op's result. This table is the whole of the calculus in nnc.
//!
//! Notation: `g` is d loss / d result; a loss term is a root, where `g` is 1 and absent.

use super::Builder;
use crate::ir::{Act, Const, Node, Op, ScanStart, Shape, Type, ValueId};

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
    let upstream = || g.expect("only loss terms are differentiated without an upstream gradient");
    match node.op {
        // C = op(A)·op(B):  dA = dC·op(B)ᵀ (transposed back if A was), dB = op(A)ᵀ·dC (likewise);
        // per matrix for a batched product.
        Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
        }
        | Op::BatchMatMul {
            transpose_a: ta,
            transpose_b: tb,
        } => {
            let ((transpose_a, transpose_b), args) =
                product_grad(node, position, ta, tb, upstream());
            let op = if matches!(node.op, Op::MatMul { .. }) {
                Op::MatMul {
                    transpose_a,
                    transpose_b,
                }
            } else {
                Op::BatchMatMul {
                    transpose_a,
                    transpose_b,
                }
            };
            b.emit(op, &args, name)
        }
        // y = Σ_axis x (times a scale):  dx = dy repeated along the axis (times the scale).
        Op::SumAxis { axis, scale } => {
            let size = match b.program.graph.ty(arg).shape.0[axis] {
                crate::ir::Dim::Fixed(n) => n,
                crate::ir::Dim::Batch => 0,
            };
            b.emit(Op::Expand { axis, size, scale }, &[upstream()], name)
        }
        // y = x repeated along a new axis (times a scale):  dx = Σ_axis dy (times the scale).
        Op::Expand { axis, scale, .. } => b.emit(Op::SumAxis { axis, scale }, &[upstream()], name),
        // y = x with its axes reordered:  dx = dy with the order undone.
        Op::Permute(perm) => b.emit(Op::Permute(perm.inverse()), &[upstream()], name),
        // y = x + b, b broadcast over every leading axis:  dx = dy,  db = Σ_leading dy.
        Op::BiasAdd if position == 0 => upstream(),
        Op::BiasAdd => {
            let keep = b.program.graph.ty(arg).shape.rank();
            b.emit(Op::SumRows { keep }, &[upstream()], name)
        }
        // y = x (identity), or a step whose gradient the user asked to pass straight through.
        Op::Activation(Act::Identity)
        | Op::Activation(Act::Step {
            straight_through: true,
        }) => upstream(),
        // y = f(x):  dx = dy ⊙ f'(x), with f' written through y (or x where it must be).
        Op::Activation(act) => {
            let through = if act.derivative_from_input() { arg } else { id };
            b.emit(Op::ActivationGrad(act), &[through, upstream()], name)
        }
        // y = softmax(x):  dx = y ⊙ (dy − Σ dy ⊙ y).
        Op::Softmax => b.emit(Op::SoftmaxGrad, &[id, upstream()], name),
        // y = log_softmax(x):  dx = dy − e^y · Σ dy.
        Op::LogSoftmax => b.emit(Op::LogSoftmaxGrad, &[id, upstream()], name),
        // y = a + b:  da = db = dy.
        Op::Add => upstream(),
        // y = a − b:  da = dy,  db = −dy.
        Op::Sub if position == 0 => upstream(),
        Op::Sub => b.emit(Op::Scale(Const::new(-1.0)), &[upstream()], name),
        // y = a ⊙ b:  da = dy ⊙ b,  db = dy ⊙ a (and a dropout mask is just such a b).
        Op::Mul => {
            let other = node.args[1 - position];
            b.emit(Op::Mul, &[upstream(), other], name)
        }
        // y = c·x:  dx = c·dy.
        Op::Scale(c) => b.emit(Op::Scale(c), &[upstream()], name),
        // y = [a, b, ...] along an axis:  da is dy's part where a was placed.
        Op::Concat { axis } => {
            let size = |v: ValueId| match b.program.graph.ty(v).shape.0[axis] {
                crate::ir::Dim::Fixed(n) => n,
                crate::ir::Dim::Batch => 0,
            };
            let start = node.args[..position].iter().map(|a| size(*a)).sum();
            let len = size(arg);
            b.emit(Op::Slice { axis, start, len }, &[upstream()], name)
        }
        // y = x reversed along an axis:  dx = dy reversed back.
        Op::Reverse { axis } => b.emit(Op::Reverse { axis }, &[upstream()], name),
        // y = x[start .. start + len] along an axis:  dx is dy there and zero elsewhere.
        Op::Slice { axis, start, .. } => {
            let total = match b.program.graph.ty(arg).shape.0[axis] {
                crate::ir::Dim::Fixed(n) => n,
                crate::ir::Dim::Batch => 0,
            };
            b.emit(Op::Pad { axis, start, total }, &[upstream()], name)
        }
        // y = x viewed under another shape:  dx = dy viewed under x's shape.
        Op::Reshape => {
            let ty = b.program.graph.ty(arg).clone();
            b.emit_typed(Op::Reshape, &[upstream()], ty, name)
        }
        // y[…, :] = table[ids[…], :]:  d table[v] = Σ of dy's rows whose id is v. Ids are
        // integers and never get a gradient.
        Op::Embedding => b.emit(Op::EmbeddingGrad, &[node.args[0], upstream()], name),
        // y = x[index]: dx = g at the index, zeros elsewhere (the index is ids: no gradient).
        Op::SelectRow => {
            let rows = b.program.graph.ty(node.args[0]).shape.sample_dims()[0];
            b.emit(
                Op::SelectRowGrad { rows },
                &[upstream(), node.args[1]],
                name,
            )
        }
        // y = γ·x̂ + β with x̂ = (x − μ)·σ⁻¹ per channel, μ and σ² the batch's statistics (n
        // values per channel):  dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy ⊙ x̂)), which includes
        // the paths through μ and σ (so `batch_norm_stats` is not differentiated),
        // dγ = Σ dy ⊙ x̂,  dβ = Σ dy. The statistics (position 1) never need a gradient.
        Op::BatchNorm => {
            let [x, stats, gamma, _] = node.args[..] else {
                unreachable!("batch_norm has four arguments (checked by the verifier)")
            };
            match position {
                0 => b.emit(Op::BatchNormGrad, &[upstream(), x, stats, gamma], name),
                2 => b.emit(Op::BatchNormScaleGrad, &[upstream(), x, stats], name),
                _ => b.emit(Op::ChannelSum, &[upstream()], name),
            }
        }
        // y = γ·x̂ + β per row, x̂ = (x − μ)/σ with the row's own statistics:  dx = (ĝ −
        // mean(ĝ) − x̂·mean(ĝ ⊙ x̂))/σ with ĝ = dy ⊙ γ (through μ and σ too),  dγ = Σ_rows dy ⊙ x̂,
        // dβ = Σ_rows dy.
        Op::LayerNorm { eps, .. } => {
            let (x, gamma) = (node.args[0], node.args[1]);
            match position {
                0 => b.emit(Op::LayerNormGrad { eps }, &[upstream(), x, gamma], name),
                1 => b.emit(Op::LayerNormScaleGrad { eps }, &[upstream(), x], name),
                _ => b.emit(Op::SumRows { keep: 1 }, &[upstream()], name),
            }
        }
        // O = P·V per head with P = softmax(scale·Q·Kᵀ), all three from the packed qkv:  dqkv
        // through V directly and through P's softmax into Q and K, in one node, since the
        // weights P (position 0) are never differentiated on their own (see `run`).
        Op::AttentionMix { heads } => {
            // With dropout the weights reach the mix through their mask: P ⊙ mask.
            let (probs, scale, mask) = b.program.graph.attention_weights(id);
            let qkv = node.args[1];
            let op = Op::AttentionGrad {
                heads,
                scale,
                dropout: mask.is_some(),
            };
            let args: Vec<ValueId> = [probs, qkv, upstream()].into_iter().chain(mask).collect();
            b.emit(op, &args, name)
        }
        // y = conv(x, w) + b:  dx = convᵀ(dy, w) (the patches' gradients added back where they
        // were read),  dw = Σ over samples and positions of dy ⊗ patches,  db = Σ dy per
        // channel. Lowering never fuses an activation in, so `act` is the identity here.
        Op::Conv { geom, .. } => {
            let (x, w) = (node.args[0], node.args[1]);
            match position {
                0 => b.emit(Op::ConvInputGrad(geom), &[upstream(), w], name),
                1 => b.emit(Op::ConvWeightGrad(geom), &[upstream(), x], name),
                _ => b.emit(Op::ChannelSum, &[upstream()], name),
            }
        }
        // The LSTM scan, r = scan(z, W_hh[, s0]):  dz by backpropagation through time from dr
        // (the gradients of h and c that the rest of the model sends back),  dW_hh = Σ_t dz_tᵀ ·
        // h_{t−1} (h_{−1} the given initial h),  ds0 = what reaches the state before the first
        // step, which the same backward scan returns after the steps when s0 needs it. All
        // three read the same node: the builder emits it once.
        Op::LstmScan { hidden, init } | Op::RnnScan { hidden, init, .. } => {
            let (w_hh, steps) = (node.args[1], b.program.graph.ty(id).shape.sample_dims()[1]);
            let start = scan_start(b, node, init);
            let mut args = vec![id, upstream(), w_hh];
            args.extend(node.args.get(2));
            let (op, width, planes) = match node.op {
                Op::LstmScan { .. } => (Op::LstmScanGrad { hidden, start }, 4 * hidden, 2),
                _ => {
                    let relu = matches!(node.op, Op::RnnScan { relu: true, .. });
                    (
                        Op::RnnScanGrad {
                            hidden,
                            relu,
                            start,
                        },
                        hidden,
                        1,
                    )
                }
            };
            let z_name = format!("d_{}", b.program.graph.node(node.args[0]).name);
            // Where the result holds only dz, it is named as dz.
            let all_name = match start {
                ScanStart::Learned => format!("{z_name}.all"),
                _ => z_name.clone(),
            };
            let all = b.emit(op, &args, all_name);
            let dz = steps_of(b, all, start != ScanStart::Learned, 0, steps, z_name);
            match position {
                0 => dz,
                1 => {
                    let mut args = vec![dz, id];
                    args.extend(node.args.get(2));
                    b.emit(Op::ScanWeightGrad { hidden, init }, &args, name)
                }
                _ => initial_grad(b, all, steps, width, planes, hidden, name),
            }
        }
        // The GRU, r = scan(x, W_hh, b_hh[, s0]): one backward scan gives the gradients of the
        // input projection and of the hidden product W_hh·h + b_hh, from which W_hh's and
        // b_hh's follow as for a dense layer's, and, after them, the initial state's.
        Op::GruScan { hidden, init } => {
            let (w_hh, steps) = (node.args[1], b.program.graph.ty(id).shape.sample_dims()[1]);
            let start = scan_start(b, node, init);
            let mut args = vec![id, upstream(), w_hh];
            args.extend(node.args.get(3));
            let op = Op::GruScanGrad { hidden, start };
            let all = b.emit(op, &args, format!("d_{}.planes", node.name));
            let d_hidden = |b: &mut Builder| {
                let name = format!("d_{}.hidden", node.name);
                steps_of(b, all, false, steps, steps, name)
            };
            match position {
                0 => steps_of(b, all, false, 0, steps, name),
                1 => {
                    let d_hidden = d_hidden(b);
                    let mut args = vec![d_hidden, id];
                    args.extend(node.args.get(3));
                    b.emit(Op::ScanWeightGrad { hidden, init }, &args, name)
                }
                2 => {
                    let d_hidden = d_hidden(b);
                    b.emit(Op::SumRows { keep: 1 }, &[d_hidden], name)
                }
                _ => initial_grad(b, all, 2 * steps, 3 * hidden, 1, hidden, name),
            }
        }
        // y = max of each window:  dx = dy at each window's maximum (y, found again in x),
        // zero elsewhere;  y = mean of each window:  dx = dy / window size over the window.
        Op::Pool { geom, max: true } => b.emit(
            Op::PoolGrad { geom, max: true },
            &[arg, id, upstream()],
            name,
        ),
        Op::Pool { geom, max: false } => {
            b.emit(Op::PoolGrad { geom, max: false }, &[upstream()], name)
        }
        // A loss term is a root: d term / d prediction; targets never need a gradient.
        Op::Loss(spec) => b.emit(Op::LossGrad(spec), &[node.args[0], node.args[1]], name),
        Op::Input(_)
        | Op::Target(_)
        | Op::Param(_)
        | Op::OutputGrad(_)
        | Op::DropoutMask(_)
        | Op::State(_)
        | Op::BatchNormStats { .. }
        | Op::BatchNormGrad
        | Op::BatchNormScaleGrad
        | Op::ChannelSum
        | Op::LayerNormGrad { .. }
        | Op::AttentionProbs { .. }
        | Op::AttentionGrad { .. }
        | Op::PositionRow { .. }
        | Op::CacheWrite
        | Op::AttentionStep { .. }
        | Op::LayerNormScaleGrad { .. }
        | Op::RunningMean { .. }
        | Op::RunningVar { .. }
        | Op::Pad { .. }
        | Op::EmbeddingGrad
        | Op::SelectRowGrad { .. }
        | Op::SumRows { .. }
        | Op::ActivationGrad(_)
        | Op::SoftmaxGrad
        | Op::LogSoftmaxGrad
        | Op::LossGrad(_)
        | Op::SoftmaxLossGrad(_)
        | Op::SigmoidLossGrad(_)
        | Op::ConvInputGrad(_)
        | Op::ConvWeightGrad(_)
        | Op::PoolGrad { .. }
        | Op::FoldWeight { .. }
        | Op::FoldBias { .. }
        | Op::LstmScanGrad { .. }
        | Op::RnnScanGrad { .. }
        | Op::GruScanGrad { .. }
        | Op::ScanWeightGrad { .. }
        | Op::Carried(_)
        | Op::CarryOut { .. }
        | Op::Dense { .. } => {
            // Autodiff runs once, on the lowered forward graph, before fusion: these ops are
            // leaves, only ever created by autodiff, batch-norm folding and fusion, or never
            // given a gradient
            // (batch norm's statistics and state writes: see `run`), so reaching one here is
            // a bug in the pass.
            panic!(
                "no gradient rule for {} (autodiff must run before fusion)",
                node.op
            )
        }
    }
}

/// The product that gives the gradient of argument `position` of `C = op(A)·op(B)` from the
/// upstream gradient `g`: its transpose flags and its arguments.
fn product_grad(
    node: &Node,
    position: usize,
    ta: bool,
    tb: bool,
    g: ValueId,
) -> ((bool, bool), [ValueId; 2]) {
    let (a, b) = (node.args[0], node.args[1]);
    match (position, ta, tb) {
        (0, false, _) => ((false, !tb), [g, b]),
        (0, true, _) => ((tb, true), [b, g]),
        (_, _, false) => ((!ta, false), [a, g]),
        (_, _, true) => ((true, ta), [g, a]),
    }
}

/// How a scan's backward pass starts: from zero, or from its given initial state (its last
/// argument), whose gradient it also returns when the state needs one.
fn scan_start(b: &Builder<'_>, node: &Node, init: bool) -> ScanStart {
    match node.args.last() {
        Some(&s) if init && b.needs(s) => ScanStart::Learned,
        _ if init => ScanStart::Given,
        _ => ScanStart::Zero,
    }
}

/// Steps `from .. from + steps` of a scan's backward result `[B, rows, width]`: the result
/// itself where it holds just those (`whole`), else a slice of it.
fn steps_of(
    b: &mut Builder<'_>,
    all: ValueId,
    whole: bool,
    from: usize,
    steps: usize,
    name: String,
) -> ValueId {
    if whole {
        return all;
    }
    let op = Op::Slice {
        axis: 1,
        start: from,
        len: steps,
    };
    b.emit(op, &[all], name)
}

/// The initial state's gradient `[B, planes, hidden]` from the row after the steps (`row`) of
/// a scan's backward result of `width` values per row, which it starts.
#[allow(clippy::too_many_arguments)] // The result, where the gradient lies in it, and its shape.
fn initial_grad(
    b: &mut Builder<'_>,
    all: ValueId,
    row: usize,
    width: usize,
    planes: usize,
    hidden: usize,
    name: String,
) -> ValueId {
    let last = Op::Slice {
        axis: 1,
        start: row,
        len: 1,
    };
    let state = planes * hidden;
    let mut v = b.emit(last, &[all], format!("{name}.row"));
    if state < width {
        let head = Op::Slice {
            axis: 2,
            start: 0,
            len: state,
        };
        v = b.emit(head, &[v], format!("{name}.head"));
    }
    let ty = Type::float(Shape::batched(&[planes, hidden]));
    if *b.program.graph.ty(v) == ty {
        return v;
    }
    b.emit_typed(Op::Reshape, &[v], ty, name)
}
