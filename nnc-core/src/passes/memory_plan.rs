//! Static memory planning: gives every intermediate value a fixed place in one arena.
//!
//! Batched values live in the batched region at `offset * capacity`, sized `per_sample *
//! batch`; values whose size does not depend on the batch live in the fixed region after it.
//! Offsets come from a first-fit walk over the schedule: a value's space is reusable once its
//! last reader has run, and an element-wise gradient whose kernel works in place takes over the
//! slot of the gradient it reads for the last time.
//!
//! The schedules branch (see `Program::schedules`): a call runs the forward pass, then maybe
//! the state writes, then either the loss and its backward pass or the pullback. Every phase
//! has the same predecessors in each schedule that runs it, so the walk places each phase once,
//! starting from the arena state its predecessors left, with liveness counted over the
//! schedules that run it; the arena is as large as the largest branch.
//!
//! A reshape takes the storage of the value it views, and that value lives as long as its
//! views do; no elements move.
//!
//! Inputs, targets and output gradients stay in the caller's slices, parameters and their
//! final gradients in the model's own buffers, state and its updates in the model's state
//! buffer, final input gradients in the workspace's
//! buffers, and scalars (loss terms) in locals: none of those take arena space. The pass does
//! not reorder nodes to reduce the peak.

use crate::ir::{MemoryPlan, Op, Phase, Program, Storage, ValueId};
use std::collections::HashMap;

/// Every slot starts at a multiple of this many elements (64 bytes of `f32`), and the batched
/// region's per-sample size is one too, so that with the runtime's 64-byte aligned arena every
/// slot has the same alignment in every workspace, whatever its capacity: the AVX-512 kernels
/// group elements into lanes by address, so this keeps results bit-identical across
/// workspaces (see `nnc-runtime/src/aligned.rs`).
pub const SLOT_ALIGN: usize = 16;

pub fn run(p: &mut Program) {
    let g = &p.graph;
    let schedules = p.schedules();
    let lives: Vec<Vec<usize>> = schedules.iter().map(|s| p.live_until(s)).collect();
    let mut storage = vec![Storage::Scalar; g.nodes.len()];
    for id in g.ids() {
        if let Some(i) = p.state_of(id) {
            storage[id.index()] = Storage::State(i);
        }
    }
    for (_, grads) in p.gradient_passes() {
        for v in grads.params.iter().flatten() {
            storage[v.index()] = Storage::Grads;
        }
        for (i, v) in grads.inputs.iter().enumerate() {
            if let Some(v) = v {
                storage[v.index()] = Storage::InputGrad(i);
            }
        }
    }
    // The arena after each placed phase, keyed by the phase: its predecessors that use the
    // arena are the same in every schedule, so the phase alone names the branch. State writes
    // leave the arena as it was.
    let mut after: HashMap<Phase, Regions> = HashMap::new();
    let mut sizes = (0, 0);
    for schedule in &schedules {
        for (i, &phase) in schedule.phases.iter().enumerate() {
            if after.contains_key(&phase) {
                continue;
            }
            // A value is free once no reader in any schedule that runs this phase needs it.
            let last = (0..g.nodes.len())
                .map(|v| {
                    schedules
                        .iter()
                        .zip(&lives)
                        .filter(|(s, _)| s.runs(phase))
                        .map(|(_, live)| live[v])
                        .max()
                        .unwrap_or(v)
                })
                .collect::<Vec<_>>();
            let mut regions = match i {
                0 => Regions::default(),
                _ => after[&schedule.phases[i - 1]].clone(),
            };
            if !phase.uses_arena() {
                after.insert(phase, regions);
                continue;
            }
            regions.batched.reset_frees(&last);
            regions.fixed.reset_frees(&last);
            for id in g.ids().filter(|id| g.node(*id).phase == phase) {
                storage[id.index()] = place(p, id, last[id.index()], &storage, &last, &mut regions);
            }
            sizes = (
                sizes.0.max(regions.batched.size),
                sizes.1.max(regions.fixed.size),
            );
            after.insert(phase, regions);
        }
    }
    p.plan = Some(MemoryPlan {
        storage,
        per_sample: sizes.0.next_multiple_of(SLOT_ALIGN),
        fixed: sizes.1,
    });
}

#[derive(Clone, Default)]
struct Regions {
    batched: FirstFit,
    fixed: FirstFit,
}

/// The storage of one value, defined at `id` and needed until `last`.
fn place(
    p: &Program,
    id: ValueId,
    last: usize,
    storage: &[Storage],
    last_use: &[usize],
    regions: &mut Regions,
) -> Storage {
    let node = p.graph.node(id);
    let shape = &node.ty.shape;
    match node.op {
        Op::Input(_) | Op::Target(_) | Op::OutputGrad(_) => Storage::Caller,
        Op::Param(_) => Storage::Params,
        // A reshape is a view: the same elements in the same place. `live_until` keeps the
        // value it views alive for as long as the view is read.
        Op::Reshape => storage[node.args[0].index()],
        _ if matches!(
            storage[id.index()],
            Storage::Grads | Storage::InputGrad(_) | Storage::State(_)
        ) =>
        {
            storage[id.index()]
        }
        _ if shape.rank() == 0 => Storage::Scalar,
        _ if shape.is_batched() => {
            let per_sample = shape.elems_per_sample();
            match in_place(p, id, storage, last_use) {
                Some(operand) => {
                    regions.batched.take_over(operand.index(), id.index(), last);
                    storage[operand.index()]
                }
                None => {
                    let offset = regions.batched.place(id.index(), last, per_sample);
                    Storage::Batched { offset, per_sample }
                }
            }
        }
        _ => {
            let len = shape.elems_per_sample();
            let offset = regions.fixed.place(id.index(), last, len);
            Storage::Fixed { offset, len }
        }
    }
}

/// The operand whose slot `id` can take over: an op with an in-place kernel, reading an arena
/// value of the same size for the last time.
fn in_place(p: &Program, id: ValueId, storage: &[Storage], last_use: &[usize]) -> Option<ValueId> {
    let node = p.graph.node(id);
    let operand = *node.args.get(node.op.in_place_operand()?)?;
    let same_size =
        p.graph.ty(operand).shape.elems_per_sample() == node.ty.shape.elems_per_sample();
    let reused = node.args.iter().filter(|a| **a == operand).count() == 1;
    // A view's slot belongs to the value it views, which may still be read elsewhere.
    let slot = matches!(storage[operand.index()], Storage::Batched { .. })
        && p.graph.node(operand).op != Op::Reshape;
    (same_size && reused && slot && last_use[operand.index()] == id.index()).then_some(operand)
}

/// Intervals `[offset, end)` with the value that owns each and the schedule index after which
/// it becomes free.
#[derive(Clone, Default)]
struct FirstFit {
    live: Vec<(usize, usize, usize, usize)>,
    size: usize,
}

impl FirstFit {
    /// Recomputes when each placed value becomes free, for the schedules of one branch.
    fn reset_frees(&mut self, last: &[usize]) {
        for entry in &mut self.live {
            entry.3 = last[entry.2];
        }
    }

    /// Hands the space of the value defined at `from` to the value defined at `to`, computed in
    /// place over it, and keeps it until `last`. The entry changes owner so that a chain of
    /// in-place values (each over the one before) keeps finding it.
    fn take_over(&mut self, from: usize, to: usize, last: usize) {
        for entry in self.live.iter_mut().filter(|e| e.2 == from) {
            entry.2 = to;
            entry.3 = entry.3.max(last);
        }
    }

    /// Places a value defined at `def` and last read at `last` at the lowest offset, a
    /// multiple of [`SLOT_ALIGN`], where it overlaps no value that is still needed at `def`.
    fn place(&mut self, def: usize, last: usize, len: usize) -> usize {
        // A value whose last reader is `def` itself is still being read while `def` writes.
        self.live.retain(|&(_, _, _, free_after)| free_after >= def);
        self.live.sort_unstable();
        let mut offset = 0;
        for &(start, end, _, _) in &self.live {
            if offset + len <= start {
                break;
            }
            offset = offset.max(end.next_multiple_of(SLOT_ALIGN));
        }
        self.live.push((offset, offset + len, def, last));
        self.size = self.size.max(offset + len);
        offset
    }
}
