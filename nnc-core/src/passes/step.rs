//! The step entry point: gives a model over sequences whose positions meet only in recurrent
//! layers and causal attention an inference-only copy of its forward pass at one position
//! (`Phase::Step`), which continues every sequence of the batch from the state the workspace
//! carries.
//!
//! Each recurrent scan of the copy runs one step from a carried state (`Op::Carried`, in the
//! workspace's buffer, zero for a new sequence) and writes its state after the step back to it
//! (`Op::CarryOut`); every other op is the forward pass's, on values that hold one position
//! where the forward pass's hold all of them. So the step's output at position t equals the
//! forward pass's at position t, once the steps before it have run; a value the forward pass
//! takes at the last position (`return_sequences = false`) is the current position's. Dropout
//! is left out, as in inference.
//!
//! Causal attention keeps a cache of every position's keys and values as its carried state
//! (`[B, T, 2D]`): each step writes the current position's (`Op::CacheWrite`) and attends over
//! the positions so far (`Op::AttentionStep`), so a step costs one position, not a run over the
//! whole context. A table over the positions (a `bias` covering the position axis, a learned
//! position embedding) adds its current row (`Op::PositionRow`). Such a step reads the
//! workspace's position, and a model with one can step at most T positions (`Step::positions`)
//! before its sequences must start again.
//!
//! The pass tracks, for each value the outputs need, which axis holds the positions; an op that
//! reads positions other than its own (a flatten of the sequence into a dense layer, a sum over
//! steps, a convolution or pooling over them, attention that is not causal) has no
//! one-position form, and the
//! model then gets no step entry point: `Program::step` says why, and `nnc summary` shows it.
//! The pass computes no gradients through the step.

use crate::ir::{Carried, Dim, Node, Op, Phase, Program, Shape, Step, Type, ValueId};

/// Where a value keeps the positions of its sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    /// The same at every position: parameters and state.
    Const,
    /// One entry per position along this axis (an index into the full shape, batch first).
    Seq(usize),
    /// Only the current position: what the forward pass computed at the last one.
    Now,
}

pub fn run(p: &mut Program) {
    p.step = analyse(p).map(|pos| build(p, &pos));
}

/// The position axis of every value the outputs need, or why the model has no step.
fn analyse(p: &Program) -> Result<Vec<Option<Pos>>, String> {
    let g = &p.graph;
    let mut needed = vec![false; g.nodes.len()];
    let mut stack: Vec<ValueId> = p.outputs.iter().map(|b| b.value).collect();
    while let Some(v) = stack.pop() {
        if !std::mem::replace(&mut needed[v.index()], true) {
            stack.extend(g.node(v).args.iter().copied());
        }
    }
    // The step carries each layer's state itself, from zero; a state given as a value would
    // have to replace it at the first position only.
    let given = g.ids().filter(|id| needed[id.index()]).find(|id| {
        matches!(
            g.node(*id).op,
            Op::LstmScan { init: true, .. }
                | Op::RnnScan { init: true, .. }
                | Op::GruScan { init: true, .. }
        )
    });
    if let Some(id) = given {
        let name = &g.node(id).name;
        return Err(format!(
            "layer `{}` starts from given states (`h0`, and an LSTM's `c0`); the same model without them steps from the same checkpoint",
            name.strip_suffix(".record").unwrap_or(name)
        ));
    }
    if !p.is_recurrent() && !p.attends() {
        return Err(
            "the model has no recurrent or attention layer: its positions are independent, so \
             `predict` on one position does what a step would"
                .into(),
        );
    }
    let steps = sequence_length(p)?;
    let mut pos: Vec<Option<Pos>> = vec![None; g.nodes.len()];
    for id in g.ids().filter(|id| needed[id.index()]) {
        let node = g.node(id);
        let of = |i: usize| pos[node.args[i].index()].expect("arguments come first");
        let unsupported = || {
            format!(
                "`{}` ({}) combines positions, so it has no one-position form",
                node.name, node.op
            )
        };
        let dims = &node.ty.shape.0;
        let here = match node.op {
            Op::Input(_) => Pos::Seq(1),
            Op::Param(_) | Op::State(_) => Pos::Const,
            // Dropout is the identity in inference; its mask is not copied.
            Op::DropoutMask(_) => Pos::Const,
            Op::LstmScan { init: false, .. }
            | Op::RnnScan { init: false, .. }
            | Op::GruScan { init: false, .. } => match of(0) {
                Pos::Seq(1) => Pos::Seq(2),
                _ => return Err(unsupported()),
            },
            Op::Slice { axis, start, len } => match of(0) {
                Pos::Seq(a) if a != axis => Pos::Seq(a),
                Pos::Seq(_) if len == 1 && start + 1 == steps => Pos::Now,
                Pos::Seq(_) => {
                    return Err(format!(
                        "`{}` reads positions other than the last, so it has no one-position form",
                        node.name
                    ))
                }
                other => other,
            },
            Op::Reshape => match of(0) {
                Pos::Seq(a) => {
                    let from = &g.ty(node.args[0]).shape.0;
                    Pos::Seq(matching_axis(from, a, dims, steps).ok_or_else(unsupported)?)
                }
                other => other,
            },
            Op::MatMul {
                transpose_a: false,
                transpose_b: true,
            } => match (of(0), of(1)) {
                (Pos::Seq(a), Pos::Const) if a + 1 < dims.len() => Pos::Seq(a),
                (Pos::Now, Pos::Const) => Pos::Now,
                _ => return Err(unsupported()),
            },
            Op::BiasAdd | Op::Embedding => match (of(0), of(1)) {
                (x, Pos::Const) if x != Pos::Const => x,
                _ => return Err(unsupported()),
            },
            Op::Activation(_) | Op::Scale(_) => of(0),
            Op::LayerNorm { .. } => match of(0) {
                Pos::Seq(a) if a + 1 == dims.len() => return Err(unsupported()),
                x if (1..node.args.len()).all(|i| of(i) == Pos::Const) => x,
                _ => return Err(unsupported()),
            },
            // Causal attention reads the positions so far, which the step keeps in a cache; the
            // weights are never copied (the step computes its own row of them).
            Op::AttentionProbs { causal: true, .. } => match of(0) {
                Pos::Seq(1) => Pos::Seq(2),
                _ => return Err(unsupported()),
            },
            Op::AttentionProbs { causal: false, .. } => {
                return Err(format!(
                    "`{}` attends to later positions too (it is not causal), so it has no one-position form",
                    node.name
                ))
            }
            Op::AttentionMix { .. } => match (of(0), of(1)) {
                (Pos::Seq(2), Pos::Seq(1)) => Pos::Seq(1),
                _ => return Err(unsupported()),
            },
            Op::Softmax | Op::LogSoftmax => match of(0) {
                Pos::Seq(a) if a + 1 == dims.len() => return Err(unsupported()),
                x => x,
            },
            Op::Add | Op::Sub | Op::Mul => match (of(0), of(1)) {
                (x, Pos::Const) => x,
                (Pos::Const, y) => y,
                (x, y) if x == y => x,
                _ => return Err(unsupported()),
            },
            Op::Concat { axis } => {
                let first = of(0);
                let same = (0..node.args.len()).all(|i| of(i) == first);
                match first {
                    Pos::Seq(a) if same && a != axis => first,
                    Pos::Now if same => first,
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        };
        pos[id.index()] = Some(here);
    }
    Ok(pos)
}

/// The number of positions of every input, which must all be sequences of the same length.
fn sequence_length(p: &Program) -> Result<usize, String> {
    let mut steps = None;
    for b in &p.inputs {
        let t = match p.graph.ty(b.value).shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(t), ..] => *t,
            _ => return Err(format!("input `{}` is not a sequence", b.name)),
        };
        match steps {
            Some(s) if s != t => {
                return Err(format!(
                    "input `{}` has {t} positions where another has {s}",
                    b.name
                ))
            }
            _ => steps = Some(t),
        }
    }
    steps.ok_or_else(|| "the model has no inputs".into())
}

/// The axis of `to` (a reshape of `from`, whose axis `axis` holds `steps` positions) that holds
/// the positions: the one with `steps` entries after as many values as `from` has before its.
fn matching_axis(from: &[Dim], axis: usize, to: &[Dim], steps: usize) -> Option<usize> {
    let size = |d: &Dim| match d {
        Dim::Fixed(n) => *n,
        Dim::Batch => 1,
    };
    let before: usize = from[..axis].iter().map(size).product();
    let mut product = 1;
    for (j, d) in to.iter().enumerate() {
        if product == before && *d == Dim::Fixed(steps) && j > 0 {
            return Some(j);
        }
        product *= size(d);
    }
    None
}

/// The type of `ty` holding one position, for a value whose positions are at `pos`.
fn one_position(ty: &Type, pos: Pos) -> Type {
    match pos {
        Pos::Seq(a) => {
            let mut dims = ty.shape.0.clone();
            dims[a] = Dim::Fixed(1);
            Type {
                shape: Shape(dims),
                ..ty.clone()
            }
        }
        Pos::Const | Pos::Now => ty.clone(),
    }
}

/// Appends the step copy of the forward pass and returns what it reads and computes.
fn build(p: &mut Program, pos: &[Option<Pos>]) -> Step {
    let mut copy: Vec<Option<ValueId>> = vec![None; p.graph.nodes.len()];
    let mut inputs = vec![None; p.inputs.len()];
    let mut carries = Vec::new();
    let mut positions = None;
    for index in 0..pos.len() {
        let Some(here) = pos[index] else { continue };
        let id = ValueId(index as u32);
        let node = p.graph.node(id).clone();
        let span = p.graph.span(id);
        let mapped = |copy: &[Option<ValueId>], a: ValueId| {
            copy[a.index()].expect("the step pass copies every argument before its use")
        };
        let ty = one_position(&node.ty, here);
        let step_node = |op: Op, args: Vec<ValueId>, ty: Type, name: String| Node {
            op,
            args,
            ty,
            phase: Phase::Step,
            name,
        };
        let value = match node.op {
            Op::Param(_) | Op::State(_) => id,
            Op::DropoutMask(_) => continue,
            // Attention's weights are not copied (its step computes its own), nor their dropout.
            Op::Mul
                if matches!(p.graph.node(node.args[1]).op, Op::DropoutMask(_))
                    && matches!(p.graph.node(node.args[0]).op, Op::AttentionProbs { .. }) =>
            {
                continue
            }
            Op::Mul if matches!(p.graph.node(node.args[1]).op, Op::DropoutMask(_)) => {
                mapped(&copy, node.args[0])
            }
            Op::Input(i) => {
                let leaf = p
                    .graph
                    .push(step_node(node.op, vec![], ty, node.name), span);
                inputs[i] = Some(leaf);
                leaf
            }
            // The last position of a sequence that holds only the current one.
            Op::Slice { .. } if here == Pos::Now && pos[node.args[0].index()] != Some(Pos::Now) => {
                mapped(&copy, node.args[0])
            }
            Op::AttentionProbs { .. } => continue,
            Op::AttentionMix { heads } => {
                let (_, scale, _) = p.graph.attention_weights(id);
                let qkv = mapped(&copy, node.args[1]);
                let full = p.graph.ty(node.args[1]).shape.sample_dims();
                let (steps, model) = (full[0], full[1] / 3);
                positions = Some(steps);
                let layer = node.name.trim_end_matches(".heads").to_string();
                let cache_ty = Type::float(Shape::batched(&[steps, 2 * model]));
                let leaf = Op::Carried(carries.len());
                let read = step_node(leaf, vec![], cache_ty.clone(), format!("{layer}.cache"));
                let read = p.graph.push(read, span);
                let write = step_node(
                    Op::CacheWrite,
                    vec![qkv, read],
                    cache_ty,
                    format!("{layer}.cache_write"),
                );
                let write = p.graph.push(write, span);
                carries.push(Carried { layer, read, write });
                let op = Op::AttentionStep { heads, scale };
                p.graph
                    .push(step_node(op, vec![qkv, write], ty, node.name), span)
            }
            // A bias over the positions (a position table) adds its current position's row.
            Op::BiasAdd if matches!(here, Pos::Seq(_)) => {
                let (x, b) = (node.args[0], node.args[1]);
                let (rank_x, rank_b) = (node.ty.shape.rank(), p.graph.ty(b).shape.rank());
                let Pos::Seq(axis) = here else {
                    unreachable!("matched above")
                };
                let mut bias = mapped(&copy, b);
                if axis + rank_b >= rank_x {
                    let row_axis = axis + rank_b - rank_x;
                    let op = Op::PositionRow { axis: row_axis };
                    let row_ty = op
                        .infer(&[p.graph.ty(b)])
                        .expect("a position table is a fixed tensor with that axis");
                    positions = Some(steps_of(p.graph.ty(b), row_axis));
                    let row = step_node(
                        op,
                        vec![bias],
                        row_ty,
                        format!("{}.now", p.graph.node(b).name),
                    );
                    bias = p.graph.push(row, span);
                }
                let args = vec![mapped(&copy, x), bias];
                p.graph.push(step_node(node.op, args, ty, node.name), span)
            }
            Op::LstmScan { hidden, .. }
            | Op::RnnScan { hidden, .. }
            | Op::GruScan { hidden, .. } => {
                let (op, planes) = match node.op {
                    Op::LstmScan { hidden, .. } => (Op::LstmScan { hidden, init: true }, 2),
                    Op::RnnScan { hidden, relu, .. } => (
                        Op::RnnScan {
                            hidden,
                            relu,
                            init: true,
                        },
                        1,
                    ),
                    _ => (Op::GruScan { hidden, init: true }, 1),
                };
                let layer = node.name.trim_end_matches(".record").to_string();
                let carried_ty = Type::float(Shape::batched(&[planes, hidden]));
                let leaf = Op::Carried(carries.len());
                let read = step_node(leaf, vec![], carried_ty.clone(), format!("{layer}.carried"));
                let read = p.graph.push(read, span);
                let mut args: Vec<ValueId> = node.args.iter().map(|a| mapped(&copy, *a)).collect();
                args.push(read);
                let scan = p.graph.push(step_node(op, args, ty, node.name), span);
                let out = Op::CarryOut { planes };
                let write = step_node(
                    out,
                    vec![scan, read],
                    carried_ty,
                    format!("{layer}.carry_out"),
                );
                let write = p.graph.push(write, span);
                carries.push(Carried { layer, read, write });
                scan
            }
            _ => {
                let args = node.args.iter().map(|a| mapped(&copy, *a)).collect();
                p.graph.push(step_node(node.op, args, ty, node.name), span)
            }
        };
        copy[index] = Some(value);
    }
    // An input the outputs do not read still takes its place among the step's arguments.
    let inputs = inputs
        .into_iter()
        .zip(p.inputs.clone())
        .map(|(leaf, b)| {
            leaf.unwrap_or_else(|| {
                let node = p.graph.node(b.value).clone();
                let ty = one_position(&node.ty, Pos::Seq(1));
                let leaf = Node {
                    ty,
                    phase: Phase::Step,
                    ..node
                };
                let span = p.graph.span(b.value);
                p.graph.push(leaf, span)
            })
        })
        .collect();
    let outputs = p
        .outputs
        .iter()
        .map(|b| copy[b.value.index()].expect("the outputs are copied"))
        .collect();
    Step {
        inputs,
        outputs,
        carries,
        positions,
    }
}

/// The size of axis `axis` of a fixed type.
fn steps_of(ty: &Type, axis: usize) -> usize {
    match ty.shape.0.get(axis) {
        Some(Dim::Fixed(n)) => *n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DType;

    #[test]
    fn reshapes_find_the_axis_of_the_positions() {
        let b = Dim::Batch;
        let f = Dim::Fixed;
        // [B, 1, T, H] -> [B, T, H]: the planes axis goes, the positions move to axis 1.
        assert_eq!(
            matching_axis(&[b, f(1), f(5), f(4)], 2, &[b, f(5), f(4)], 5),
            Some(1)
        );
        // [B, T, 4] -> [B, T·4]: the positions are merged with the features.
        assert_eq!(matching_axis(&[b, f(5), f(4)], 1, &[b, f(20)], 5), None);
        // A feature axis of the same length as the sequence is not mistaken for it.
        assert_eq!(
            matching_axis(&[b, f(5), f(5)], 1, &[b, f(1), f(5), f(5)], 5),
            Some(2)
        );
        let ids = Type {
            dtype: DType::Ids(7),
            shape: Shape::batched(&[6]),
        };
        assert_eq!(one_position(&ids, Pos::Seq(1)).shape, Shape::batched(&[1]));
    }
}
