//! Dense (fully connected) layer backward: gradients with respect to the input, the weights
//! (stored `[out, in]`) and the bias.
//!
//! Both products are linear combinations of contiguous rows (of `w` for the input gradient, of
//! `x` for the weight gradient), computed by the register-blocked, packing-free `Simd::gemm_nn`
//! in `blocked.rs`, or, over [`PACKED_MIN_ROWS`] samples or more, by the packed product of
//! `packed.rs`: always for the input gradient, and for the weight gradient of more than
//! [`UNPACKED_WEIGHT_MAX_OUTPUTS`] output features. Neither allocates.
//!
//! On several threads every kernel here splits an output dimension, never the sum: the input
//! gradient its rows (samples), the weight gradient its rows (output features: the weight's
//! home rows of `homes.rs`, where the update will read them, unless its arithmetic pays for
//! more tasks than the weight has homes), the bias gradient its columns. A packed product
//! splits rows or columns, whichever copies less (`packed_product` in `matmul.rs`). Each
//! output element is then one task's sum, in the same order as on one thread, so the results
//! are the same bits for every thread count and no partial sums need reducing.

use std::ops::Range;

use super::dense::{MIN_TASK_MACS, PACKED_MIN_ROWS, ROW_GRAIN};
use super::matmul::packed_product;
use super::packed::{MatMut, Strided};
use super::split::{RowsMut, RowsRef, MIN_TASK_ELEMS};
use super::Exec;
use crate::float::Float;

/// The most output features for which a weight gradient over [`PACKED_MIN_ROWS`] samples or more
/// keeps the packing-free product. That product reads `gzᵀ` in place, `outputs` elements apart,
/// and streams `x` once per register block of rows, so it loses to packing only when the rows of
/// `gz` grow long. Measured one product at a time (a scratch harness alternating the two paths
/// in one process, 15 rounds each, medians, AVX-512), packed time over packing-free time, on
/// 1 / 2 threads: `[batch, inputs] -> outputs` of 1024x784 -> 10: 1.92 / 1.26, 1024x784 -> 128:
/// 1.16-1.18 / 1.04-1.12, 768x128 -> 128: 1.06 / 1.22, 768x128 -> 384: 1.05 / 1.03,
/// 768x128 -> 512: 0.97 / 1.02, 768x128 -> 768: 0.99 / 1.02, 768x128 -> 1024: 0.88 / 1.01,
/// 768x128 -> 4096: 0.93 / 0.85.
const UNPACKED_WEIGHT_MAX_OUTPUTS: usize = 512;

/// `gx[b, i] = gz[b, :] · w[:, i]`, overwriting `gx`. `scratch` holds
/// `gemm_scratch_len(inputs, outputs)` elements per thread.
pub fn dense_backward_input<T: Float>(
    exec: &Exec,
    batch: usize,
    inputs: usize,
    outputs: usize,
    gz: &[T],
    w: &[T],
    gx: &mut [T],
    scratch: &mut [T],
) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "dense_backward_input: gz is not batch x outputs"
    );
    assert_eq!(
        w.len(),
        outputs * inputs,
        "dense_backward_input: w is not outputs x inputs"
    );
    assert_eq!(
        gx.len(),
        batch * inputs,
        "dense_backward_input: gx is not batch x inputs"
    );
    if gx.is_empty() {
        return;
    }
    // gx[b, :] = Σ_o gz[b, o] · w[o, :]; no outputs leaves the empty sum, zero.
    if batch >= PACKED_MIN_ROWS {
        let gz = Strided {
            data: gz,
            rs: outputs,
            cs: 1,
        };
        let w = Strided {
            data: w,
            rs: inputs,
            cs: 1,
        };
        let gx = MatMut::new(gx, batch, inputs, inputs);
        return packed_product(exec, outputs, gz, w, gx, scratch, |_, _| {});
    }
    let tasks = exec.tasks_for(batch, batch * inputs * outputs, MIN_TASK_MACS);
    let operands = (RowsRef(gz, outputs), RowsMut::new(gx, inputs));
    exec.split_rows(batch, ROW_GRAIN, tasks, operands, |rows, (gz, gx)| {
        T::gemm_nn(rows.len(), inputs, outputs, gz, outputs, 1, w, gx, false)
    });
}

/// `gw[o, i] = Σ_b gz[b, o] · x[b, i]`, overwriting `gw`. `scratch` holds
/// `gemm_scratch_len(inputs, usize::MAX)` elements per thread (the batch is a depth here, and
/// packing never takes more than one panel's depth).
pub fn dense_backward_weight<T: Float>(
    exec: &Exec,
    batch: usize,
    inputs: usize,
    outputs: usize,
    gz: &[T],
    x: &[T],
    gw: &mut [T],
    scratch: &mut [T],
) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "dense_backward_weight: gz is not batch x outputs"
    );
    assert_eq!(
        x.len(),
        batch * inputs,
        "dense_backward_weight: x is not batch x inputs"
    );
    assert_eq!(
        gw.len(),
        outputs * inputs,
        "dense_backward_weight: gw is not outputs x inputs"
    );
    if gw.is_empty() {
        return;
    }
    if batch == 0 {
        // The empty sum. Returning here also keeps a task's columns of the empty `gz` from being
        // sliced past its end below.
        gw.fill(T::ZERO);
        return;
    }
    // gw[o, :] = Σ_b gz[b, o] · x[b, :], reading gzᵀ through swapped strides. Packed, the
    // product splits whichever of gw's dimensions copies less (`packed_product`); otherwise
    // each task takes the rows of gw of a range of output features, reading the same columns
    // of gz.
    if batch >= PACKED_MIN_ROWS && outputs > UNPACKED_WEIGHT_MAX_OUTPUTS {
        let gzt = Strided {
            data: gz,
            rs: 1,
            cs: outputs,
        };
        let x = Strided {
            data: x,
            rs: inputs,
            cs: 1,
        };
        let gw = MatMut::new(gw, outputs, inputs, inputs);
        return packed_product(exec, batch, gzt, x, gw, scratch, |_, _| {});
    }
    let gradient = |rows: Range<usize>, (gw,): (&mut [T],)| {
        T::gemm_nn(
            rows.len(),
            inputs,
            batch,
            &gz[rows.start..],
            1,
            outputs,
            x,
            gw,
            false,
        )
    };
    let operands = (RowsMut::new(gw, inputs),);
    // The rows go to the tasks that own them (`homes.rs`): the forward product read them there
    // and the update will write them there. At batch 1 the 784 -> 128 gradient is 100 k
    // multiply-adds, which alone would not pay for a second task, but the MLP's step took
    // 45-60 µs on 2 threads with it split this way against 75-85 µs without. A product with
    // more arithmetic than its weight has homes (a long batch over a small weight) is split
    // into the tasks its multiply-adds pay for instead; `gemm_nn` gives a row the same
    // arithmetic in any split, so the bits do not change either way.
    let tasks = exec.tasks_for(
        outputs.div_ceil(ROW_GRAIN),
        batch * inputs * outputs,
        MIN_TASK_MACS,
    );
    if tasks > exec.home_tasks(outputs, inputs) {
        exec.split_rows(outputs, ROW_GRAIN, tasks, operands, gradient);
    } else {
        exec.split_home(outputs, inputs, operands, gradient);
    }
}

/// `gb[o] = Σ_b gz[b, o]`, overwriting `gb`.
pub fn bias_backward<T: Float>(exec: &Exec, batch: usize, outputs: usize, gz: &[T], gb: &mut [T]) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "bias_backward: gz is not batch x outputs"
    );
    assert_eq!(gb.len(), outputs, "bias_backward: gb length is not outputs");
    gb.fill(T::ZERO);
    if outputs == 0 {
        return;
    }
    // Each task sums a range of columns over every row, so each column's sum keeps the order of
    // one thread's; 16 columns are a whole cache line of f32 sums.
    let tasks = exec.tasks_for(outputs, batch * outputs, MIN_TASK_ELEMS);
    exec.split_rows(outputs, 16, tasks, (RowsMut::new(gb, 1),), |cols, (gb,)| {
        for row in gz.chunks_exact(outputs) {
            for (g, &v) in gb.iter_mut().zip(&row[cols.clone()]) {
                *g += v;
            }
        }
    });
}
