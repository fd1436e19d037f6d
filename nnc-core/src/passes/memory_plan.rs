//! Static memory planning: gives every intermediate value a fixed place in one arena.
//!
//! Batched values live in the batched region at `offset * capacity`, sized `per_sample *
//! batch`; values whose size does not depend on the batch live in the fixed region after it.
//! Offsets come from a first-fit walk over the schedule: a value's space is reusable once its
//! last reader has run, and an element-wise gradient whose kernel works in place takes over the
//! slot of the gradient it reads for the last time. Inputs and targets stay in the caller's slices, parameters and their
//! final gradients in the model's own buffers, and the scalar loss in a local: none of those
//! take arena space. The pass does not reorder nodes to reduce the peak.

use crate::ir::{MemoryPlan, Op, Program, Storage, ValueId};

pub fn run(p: &mut Program) {
    let g = &p.graph;
    let last_use = p.last_uses();
    let mut storage = vec![Storage::Scalar; g.nodes.len()];
    for param in &p.params {
        if let Some(grad) = param.grad {
            storage[grad.index()] = Storage::Grads;
        }
    }
    let mut batched = FirstFit::default();
    let mut fixed = FirstFit::default();
    for id in g.ids() {
        let node = g.node(id);
        let shape = &node.ty.shape;
        storage[id.index()] = match node.op {
            Op::Input(_) | Op::Target(_) => Storage::Caller,
            Op::Param(_) => Storage::Params,
            _ if storage[id.index()] == Storage::Grads => Storage::Grads,
            _ if shape.rank() == 0 => Storage::Scalar,
            _ if shape.is_batched() => {
                let per_sample = shape.elems_per_sample();
                match in_place(p, id, &storage, &last_use) {
                    Some(operand) => {
                        batched.extend(operand.index(), last_use[id.index()]);
                        storage[operand.index()]
                    }
                    None => {
                        let offset = batched.place(id.index(), last_use[id.index()], per_sample);
                        Storage::Batched { offset, per_sample }
                    }
                }
            }
            _ => {
                let len = shape.elems_per_sample();
                let offset = fixed.place(id.index(), last_use[id.index()], len);
                Storage::Fixed { offset, len }
            }
        };
    }
    p.plan = Some(MemoryPlan {
        storage,
        per_sample: batched.size,
        fixed: fixed.size,
    });
}

/// The operand whose slot `id` can take over: an op with an in-place kernel, reading an arena
/// value of the same size for the last time.
fn in_place(p: &Program, id: ValueId, storage: &[Storage], last_use: &[usize]) -> Option<ValueId> {
    let node = p.graph.node(id);
    let operand = *node.args.get(node.op.in_place_operand()?)?;
    let same_size =
        p.graph.ty(operand).shape.elems_per_sample() == node.ty.shape.elems_per_sample();
    let reused = node.args.iter().filter(|a| **a == operand).count() == 1;
    let slot = matches!(storage[operand.index()], Storage::Batched { .. });
    (same_size && reused && slot && last_use[operand.index()] == id.index()).then_some(operand)
}

/// Intervals `[offset, end)` with the value that owns each and the schedule index after which
/// it becomes free.
#[derive(Default)]
struct FirstFit {
    live: Vec<(usize, usize, usize, usize)>,
    size: usize,
}

impl FirstFit {
    /// Keeps the space of the value defined at `def` until `last`: a value computed in place
    /// has taken it over.
    fn extend(&mut self, def: usize, last: usize) {
        for entry in self.live.iter_mut().filter(|e| e.2 == def) {
            entry.3 = entry.3.max(last);
        }
    }

    /// Places a value defined at `def` and last read at `last` at the lowest offset where it
    /// overlaps no value that is still needed at `def`.
    fn place(&mut self, def: usize, last: usize, len: usize) -> usize {
        // A value whose last reader is `def` itself is still being read while `def` writes.
        self.live.retain(|&(_, _, _, free_after)| free_after >= def);
        self.live.sort_unstable();
        let mut offset = 0;
        for &(start, end, _, _) in &self.live {
            if offset + len <= start {
                break;
            }
            offset = offset.max(end);
        }
        self.live.push((offset, offset + len, def, last));
        self.size = self.size.max(offset + len);
        offset
    }
}
