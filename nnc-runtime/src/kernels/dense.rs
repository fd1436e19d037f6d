//! Dense (fully connected) layer forward, with weights stored `[out, in]` like PyTorch's
//! `nn.Linear`.
//!
//! Batches of [`PACKED_MIN_ROWS`] rows or more go through the packed product (`packed.rs`),
//! which copies the weights into a broadcast-friendly layout in the workspace's scratch. Smaller
//! ones go through the register-blocked, packing-free product in `blocked.rs`
//! (`Simd::gemm_nt`), where every output is the dot product of two contiguous rows: a single
//! sample reads each weight once, which no packing can beat. On several threads a single sample
//! splits its outputs rather than its one row, and so does a training batch of the packing-free
//! size, so that each thread reads only the weight rows it will update (`homes.rs`); inference
//! splits the samples. Neither product allocates.

use std::ops::Range;

use super::activation::with_act;
use super::matmul::packed_product;
use super::packed::{MatMut, Strided};
use super::split::{RowsMut, RowsRef, SplitCols};
use super::vectorized;
use super::Act;
use super::Exec;
use crate::float::Float;
use crate::model::Mode;

/// The fewest multiply-adds of a product worth a task of its own. Measured on this VM (2 cores,
/// AVX-512) with `cargo bench -p nnc-runtime --bench threads`: see ARCHITECTURE.md, "Threads".
pub(crate) const MIN_TASK_MACS: usize = 1 << 17;

/// The fewest multiply-adds of a single sample's product (a matrix-vector product) worth a
/// task of its own. Such a product streams each weight once, from L2 or L3 cache, so it is bound
/// by memory rather than arithmetic and pays for a thread sooner than [`MIN_TASK_MACS`]: the
/// 64→128 product (2^13) took 1.15 µs on one thread and 0.91 µs on two, the 128→128 product
/// 1.02 µs and 0.97 µs (`cargo bench -p nnc-runtime --bench threads -- batch1`, AVX-512).
pub(crate) const MIN_MATVEC_MACS: usize = 1 << 13;

/// Row ranges of the products start at multiples of this many rows. In `gemm_nt` (the forward
/// product) a row's arithmetic depends on its register block, 4 or 8 rows tall, so a multiple of
/// both keeps every row in the same block whatever the number of tasks. `gemm_nn` (both backward
/// products) gives every row the same arithmetic in any block, so it needs no grain; it uses this
/// one for whole cache lines of its output.
pub(crate) const ROW_GRAIN: usize = 8;

/// The fewest rows (samples, or positions of all samples) for which a dense layer's products
/// pack their operands (the weight gradient only past `UNPACKED_WEIGHT_MAX_OUTPUTS` outputs, in
/// `dense_backward.rs`); the choice depends on the whole batch, never on a task's share of it,
/// so that every thread count gives the same bits. Packing copies the whole weight matrix once
/// per product, which only pays over enough rows: the MNIST MLP (784-128-10, `bench_tasks --task
/// mlp_train`, old and new builds alternated, 4 runs each on one core) trained at 67-96 k
/// samples/s at batch 32 with packing from 32 rows against 116-124 k without, at batch 128 at
/// 120-159 k against 138-182 k, and at batch 1024 at 118-169 k against 118-149 k; the small
/// GPT's 768-row products gain 10-40 % each (ARCHITECTURE.md, "Matrix products").
pub(crate) const PACKED_MIN_ROWS: usize = 256;

/// Dense layer forward with a fused epilogue: `y[b, o] = act(x[b, :] · w[o, :] + bias[o])`.
/// `bias: None` means no bias. `scratch` holds `gemm_scratch_len(outputs, inputs)` elements
/// per thread. `mode` only chooses how threads share the work: in training the weights change
/// after every step, so a batch of fewer than [`PACKED_MIN_ROWS`] rows splits the weight's home
/// rows (see `homes.rs`) rather than the samples.
#[allow(clippy::too_many_arguments)] // One argument per operand and dimension, as in BLAS.
pub fn dense_forward<T: Float>(
    exec: &Exec,
    mode: Mode,
    batch: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Act,
    y: &mut [T],
    scratch: &mut [T],
) {
    assert_eq!(
        x.len(),
        batch * inputs,
        "dense_forward: x is not batch x inputs"
    );
    assert_eq!(
        w.len(),
        outputs * inputs,
        "dense_forward: w is not outputs x inputs"
    );
    assert_eq!(
        y.len(),
        batch * outputs,
        "dense_forward: y is not batch x outputs"
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            outputs,
            "dense_forward: bias length is not outputs"
        );
    }
    if y.is_empty() {
        return;
    }
    if inputs == 0 {
        // Every dot product is empty; only the bias and activation remain.
        y.fill(T::ZERO);
        epilogue(outputs, bias, act, y);
        return;
    }
    // y = x · wᵀ, then bias and activation in one pass over each task's block of y.
    if batch >= PACKED_MIN_ROWS {
        let x = Strided {
            data: x,
            rs: inputs,
            cs: 1,
        };
        let wt = Strided {
            data: w,
            rs: 1,
            cs: inputs,
        };
        let y = MatMut::new(y, batch, outputs, outputs);
        return packed_product(exec, inputs, x, wt, y, scratch, |cols, y| {
            epilogue_cols(cols, bias, act, y)
        });
    }
    if batch == 1 {
        // A single sample (a generation step) has one row to split, so its outputs (rows of
        // `w`) are split instead. Each output is the dot product of `x` with its own row of
        // `w` in a block that starts at a multiple of `HOME_GRAIN` rows, so every split gives
        // the same bits.
        let operands = (RowsRef(w, inputs), RowsMut::new(y, 1));
        exec.split_home(outputs, inputs, operands, |cols, (w, y)| {
            T::gemm_nt(inputs, x, w, MatMut::new(y, 1, cols.len(), cols.len()));
            epilogue(cols.len(), bias.map(|b| &b[cols]), act, y);
        });
        return;
    }
    let tasks = exec.tasks_for(batch, batch * inputs * outputs, MIN_TASK_MACS);
    if mode == Mode::Train && exec.home_tasks(outputs, inputs) >= tasks.max(2) {
        // The columns of `y` at the weight's home rows, each task reading only its own rows of
        // `w`: every sample's row is then computed in the same row blocks as on one thread, and
        // each column block starts at a multiple of `HOME_GRAIN`, so the bits are the same.
        // In inference the samples are split instead: the weights then stay in every core's
        // cache, and each task reads half as much of `x` (the 784 -> 128 product over 64 rows
        // took 63-69 µs on 2 threads that way, 68-77 µs split by columns).
        let operands = (
            RowsRef(w, inputs),
            SplitCols(MatMut::new(y, batch, outputs, outputs)),
        );
        exec.split_home(outputs, inputs, operands, |cols, (w, mut y)| {
            T::gemm_nt(inputs, x, w, y.reborrow());
            epilogue_cols(cols, bias, act, y);
        });
        return;
    }
    let operands = (RowsRef(x, inputs), RowsMut::new(y, outputs));
    exec.split_rows(batch, ROW_GRAIN, tasks, operands, |rows, (x, y)| {
        T::gemm_nt(inputs, x, w, MatMut::new(y, rows.len(), outputs, outputs));
        epilogue(outputs, bias, act, y);
    });
}

/// Unfused bias: `y[r, j] = x[r, j] + b[j]` for a batch of `batch` rows of `n` elements.
pub fn bias_add<T: Float>(exec: &Exec, batch: usize, n: usize, x: &[T], b: &[T], y: &mut [T]) {
    assert_eq!(x.len(), batch * n, "bias_add: x is not batch x n");
    assert_eq!(b.len(), n, "bias_add: b length is not n");
    assert_eq!(y.len(), batch * n, "bias_add: y is not batch x n");
    if n == 0 {
        return;
    }
    let operands = (RowsRef(x, n), RowsMut::new(y, n));
    exec.split_row_pass(batch, n, 1, operands, |(x, y)| bias_add_rows(n, x, b, y));
}

fn bias_add_rows<T: Float>(n: usize, x: &[T], b: &[T], y: &mut [T]) {
    vectorized!(bias_add_body(n: usize, x: &[T], b: &[T], y: &mut [T]));
}

#[inline(always)]
fn bias_add_body<T: Float>(n: usize, x: &[T], b: &[T], y: &mut [T]) {
    for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
            *y = x + b;
        }
    }
}

/// [`epilogue`] over a task's block of `y`: every row of the columns `cols`.
fn epilogue_cols<T: Float>(cols: Range<usize>, bias: Option<&[T]>, act: Act, mut y: MatMut<T>) {
    let bias = bias.map(|b| &b[cols.clone()]);
    (0..y.rows()).for_each(|i| epilogue(cols.len(), bias, act, y.row(i)));
}

/// `y[b, o] = act(y[b, o] + bias[o])` in one pass over `y`.
fn epilogue<T: Float>(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    if bias.is_none() && act == Act::Identity {
        return;
    }
    vectorized!(epilogue_body(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]));
}

#[inline(always)]
fn epilogue_body<T: Float>(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    // One loop per (bias, activation) pair keeps every loop body branch-free and vectorizable.
    with_act!(act, T, |f| match bias {
        Some(b) => {
            for row in y.chunks_exact_mut(outputs) {
                for (v, &b) in row.iter_mut().zip(b) {
                    *v = f(*v + b);
                }
            }
        }
        None => y.iter_mut().for_each(|v| *v = f(*v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm;
    use crate::rng::Rng;

    /// The blocked and packed kernels and the dispatched epilogue must agree with gemm followed
    /// by the portable epilogue, at batches on each side of the 4-row block and of the packed
    /// path's threshold.
    #[test]
    fn blocked_and_packed_paths_match_gemm_and_portable_epilogue() {
        for batch in [3, 13, PACKED_MIN_ROWS + 5] {
            check(batch);
        }
    }

    fn check(batch: usize) {
        let mut rng = Rng::new(9);
        let (inputs, outputs) = (37, 11);
        let mut w = vec![0.0f64; outputs * inputs];
        let mut x = vec![0.0f64; batch * inputs];
        rng.fill_uniform(-1.0, 1.0, &mut w);
        rng.fill_uniform(-1.0, 1.0, &mut x);
        let mut dispatched = vec![0.0; batch * outputs];
        dense_forward(
            Exec::serial(),
            Mode::Infer,
            batch,
            inputs,
            outputs,
            &x,
            &w,
            None,
            Act::Tanh,
            &mut dispatched,
            &mut vec![0.0; crate::kernels::gemm_scratch_len(outputs, inputs)],
        );
        let mut portable = vec![0.0; batch * outputs];
        gemm(
            Exec::serial(),
            batch,
            inputs,
            outputs,
            1.0,
            &x,
            37,
            1,
            &w,
            1,
            37,
            0.0,
            &mut portable,
            11,
            1,
        );
        epilogue_body(outputs, None, Act::Tanh, &mut portable);
        assert!(portable
            .iter()
            .zip(&dispatched)
            .all(|(a, b)| (a - b).abs() < 1e-12));
    }
}
