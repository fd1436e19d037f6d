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
//! buffers, folded weights (the `Fold` phase) one after another in the workspace's buffer for
//! them, which outlives calls, the step entry point's carried states (read by `Carried` leaves,
//! written by `CarryOut` and `CacheWrite` nodes) in the workspace's carried-state buffer, likewise kept between
//! calls, and scalars (loss terms) in locals: none of those take arena
//! space. The pass does
//! not reorder nodes to reduce the peak.

use crate::ir::{MemoryPlan, Op, Phase, Program, Storage, ValueId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

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
    let mut folded = 0;
    for id in g.ids().filter(|id| g.node(*id).phase == Phase::Fold) {
        let len = g.ty(id).shape.elems_per_sample();
        storage[id.index()] = Storage::Folded {
            offset: folded,
            len,
        };
        folded = (folded + len).next_multiple_of(SLOT_ALIGN);
    }
    let mut carry = 0;
    for id in g.ids() {
        if let Op::Carried(_) = g.node(id).op {
            let per_sample = g.ty(id).shape.elems_per_sample();
            storage[id.index()] = Storage::Carry {
                offset: carry,
                per_sample,
            };
            carry = (carry + per_sample).next_multiple_of(SLOT_ALIGN);
        }
    }
    // A state's write takes the storage of the state it overwrites.
    for id in g.ids() {
        if let Op::CarryOut { .. } | Op::CacheWrite = g.node(id).op {
            storage[id.index()] = storage[g.node(id).args[1].index()];
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
        folded,
        carry,
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
            Storage::Grads | Storage::InputGrad(_) | Storage::State(_) | Storage::Carry { .. }
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

/// First-fit placement of intervals `[offset, end)` in one region of the arena: the live
/// intervals by offset, each with the value that owns it and the schedule index after which it
/// becomes free, plus the free gaps between them and a queue of the next to expire. Each
/// placement then costs a logarithmic number of steps per gap it passes over, rather than a scan
/// and sort of every live interval (which made planning quadratic in the length of a chain).
#[derive(Clone, Default)]
struct FirstFit {
    /// Live intervals by offset: (end, owner, free after).
    live: BTreeMap<usize, (usize, usize, usize)>,
    /// The offset of the interval each value owns.
    owned: HashMap<usize, usize>,
    /// Free gaps below the last live interval that can hold an aligned interval, by offset:
    /// their ends.
    gaps: BTreeMap<usize, usize>,
    /// (free after, offset) of live intervals, smallest first; an entry whose interval has
    /// since been given a later free index is stale and skipped.
    expiry: BinaryHeap<Reverse<(usize, usize)>>,
    size: usize,
}

impl FirstFit {
    /// Recomputes when each placed value becomes free, for the schedules of one branch.
    fn reset_frees(&mut self, last: &[usize]) {
        self.expiry.clear();
        for (&start, entry) in &mut self.live {
            entry.2 = last[entry.1];
            self.expiry.push(Reverse((entry.2, start)));
        }
    }

    /// Hands the space of the value defined at `from` to the value defined at `to`, computed in
    /// place over it, and keeps it until `last`. The interval changes owner so that a chain of
    /// in-place values (each over the one before) keeps finding it.
    fn take_over(&mut self, from: usize, to: usize, last: usize) {
        let Some(start) = self.owned.remove(&from) else {
            return;
        };
        let entry = self
            .live
            .get_mut(&start)
            .expect("an owned interval is live");
        entry.1 = to;
        entry.2 = entry.2.max(last);
        self.expiry.push(Reverse((entry.2, start)));
        self.owned.insert(to, start);
    }

    /// Places a value defined at `def` and last read at `last` at the lowest offset, a
    /// multiple of [`SLOT_ALIGN`], where it overlaps no value that is still needed at `def`.
    fn place(&mut self, def: usize, last: usize, len: usize) -> usize {
        // Shapes have no zero dimensions; an empty interval would share its key with the
        // interval after it.
        debug_assert!(len > 0, "an arena slot of no elements");
        // A value whose last reader is `def` itself is still being read while `def` writes.
        while let Some(&Reverse((free_after, start))) = self.expiry.peek() {
            if free_after >= def {
                break;
            }
            self.expiry.pop();
            if self.live.get(&start).is_some_and(|e| e.2 < def) {
                self.free(start);
            }
        }
        let fit = self.gaps.iter().find_map(|(&start, &end)| {
            let offset = start.next_multiple_of(SLOT_ALIGN);
            (offset + len <= end).then_some((start, end, offset))
        });
        let offset = match fit {
            Some((start, end, offset)) => {
                // The part below `offset` is alignment slack, too small to record.
                self.gaps.remove(&start);
                self.gap(offset + len, end);
                offset
            }
            None => self
                .live
                .last_key_value()
                .map_or(0, |(_, e)| e.0)
                .next_multiple_of(SLOT_ALIGN),
        };
        self.live.insert(offset, (offset + len, def, last));
        self.owned.insert(def, offset);
        self.expiry.push(Reverse((last, offset)));
        self.size = self.size.max(offset + len);
        offset
    }

    /// Frees the interval at `start`, merging its space with the free space beside it.
    fn free(&mut self, start: usize) {
        let Some((end, owner, _)) = self.live.remove(&start) else {
            return;
        };
        self.owned.remove(&owner);
        // The free region is now everything between the neighbouring intervals; the gaps it
        // absorbs start at the lower neighbour's end or at this interval's end.
        let from = self.live.range(..start).next_back().map_or(0, |(_, e)| e.0);
        self.gaps.remove(&from);
        self.gaps.remove(&end);
        // Above the last live interval everything is free, and no gap is recorded there.
        if let Some((&next, _)) = self.live.range(start..).next() {
            self.gap(from, next);
        }
    }

    /// Records the free region `[start, end)` if an aligned interval can start inside it; the
    /// slack after an interval whose length is not a multiple of the alignment cannot hold one,
    /// and recording it would make every search pass over one gap per live interval.
    fn gap(&mut self, start: usize, end: usize) {
        if start.next_multiple_of(SLOT_ALIGN) < end {
            self.gaps.insert(start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The placement rule written the obvious way: drop what has expired, sort, and take the
    /// first aligned offset that overlaps nothing. `FirstFit` must agree with it exactly, since
    /// slot offsets are part of the generated code.
    #[derive(Clone, Default)]
    struct Scan {
        live: Vec<(usize, usize, usize, usize)>,
    }

    impl Scan {
        fn place(&mut self, def: usize, last: usize, len: usize) -> usize {
            self.live.retain(|e| e.3 >= def);
            self.live.sort_unstable();
            let mut offset = 0;
            for &(start, end, _, _) in &self.live {
                if offset + len <= start {
                    break;
                }
                offset = offset.max(end.next_multiple_of(SLOT_ALIGN));
            }
            self.live.push((offset, offset + len, def, last));
            offset
        }

        fn take_over(&mut self, from: usize, to: usize, last: usize) {
            for e in self.live.iter_mut().filter(|e| e.2 == from) {
                e.2 = to;
                e.3 = e.3.max(last);
            }
        }

        fn reset_frees(&mut self, last: &[usize]) {
            for e in &mut self.live {
                e.3 = last[e.2];
            }
        }
    }

    #[test]
    fn first_fit_places_like_a_full_scan() {
        // A small linear congruential generator: the test needs varied sequences, not quality.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as usize % n
        };
        for _ in 0..200 {
            let (mut fast, mut scan) = (FirstFit::default(), Scan::default());
            let n = 60;
            let mut last: Vec<usize> = (0..n).map(|d| d + 1 + next(12)).collect();
            for def in 0..n {
                if def > 0 && next(4) == 0 {
                    // Take over the space of an earlier value still live at `def`.
                    let from = next(def);
                    if fast.owned.contains_key(&from) && last[from] == def {
                        fast.take_over(from, def, last[def]);
                        scan.take_over(from, def, last[def]);
                        continue;
                    }
                }
                if next(10) == 0 {
                    last.iter_mut().skip(def).for_each(|l| *l += next(3));
                    fast.reset_frees(&last);
                    scan.reset_frees(&last);
                }
                let len = 1 + next(40);
                assert_eq!(
                    fast.place(def, last[def], len),
                    scan.place(def, last[def], len)
                );
            }
        }
    }
}
