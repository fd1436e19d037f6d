//! Row-wise softmax and log-softmax with their gradients, and the row helpers the class losses
//! share with them.

use super::split::{RowsMut, RowsRef};
use super::Exec;
use std::slice::{ChunksExact, ChunksExactMut};

pub(crate) use super::lanes::dot_lanes;
use super::lanes::fold_lanes;
use super::vectorized;
use crate::float::Float;

/// Asserts that every operand of a row-wise kernel holds `batch × n` values.
pub(crate) fn assert_rows(what: &str, batch: usize, n: usize, lens: &[usize]) {
    assert!(
        lens.iter().all(|&len| len == batch * n),
        "{what}: expected {batch}x{n} values in every operand, got lengths {lens:?}"
    );
}

/// The rows of `n` values of an operand that [`assert_rows`] has checked. With `n = 0` the
/// operand is empty and has no rows; chunks of one value are taken then, because `chunks_exact`
/// rejects a width of 0.
#[inline]
pub(crate) fn rows<T>(n: usize, x: &[T]) -> ChunksExact<'_, T> {
    x.chunks_exact(n.max(1))
}

/// The rows of `n` values of a writable operand, as [`rows`] takes them.
#[inline]
pub(crate) fn rows_mut<T>(n: usize, x: &mut [T]) -> ChunksExactMut<'_, T> {
    x.chunks_exact_mut(n.max(1))
}

/// The largest value of a non-empty row (NaN entries are skipped, like `f32::max`).
///
/// Eight running maxima, then their maximum: one running maximum is a chain of dependent
/// comparisons, which LLVM may not reorder, and over the causal attention's rows it took about
/// a fifth of `attention_probs` (`cargo bench -p nnc-runtime --bench kernels -- attention_b12`:
/// probabilities 507 → 409 µs). The maximum of the same values is the same value in any order
/// (up to the sign of a zero, which no caller can see: each subtracts it before `exp`).
#[inline(always)]
pub(crate) fn row_max<T: Float>(row: &[T]) -> T {
    fold_lanes::<_, _, 8>(row, row[0], |v| v, T::max)
}

/// The maximum of a non-empty row and `ln Σ e^(x − max)`. Subtracting the maximum first keeps
/// `exp` from overflowing.
#[inline(always)]
fn max_and_log_sum<T: Float>(row: &[T]) -> (T, T) {
    let max = row_max(row);
    // Eight running sums, one per lane, added together in a fixed order at the end: one
    // running sum would keep the exponentials scalar. `log_softmax` over 128 rows of 65
    // (`cargo bench -p nnc-runtime --bench kernels -- log_softmax`): 39.7 µs with one sum,
    // 14.4 µs with eight, 9.3 µs with eight under the AVX2 dispatch.
    let sum = fold_lanes::<_, _, 8>(row, T::ZERO, |v| (v - max).exp(), |s, v| s + v);
    (max, sum.ln())
}

/// `max + ln Σ e^(x − max)` of a non-empty row, dispatched like the element-wise kernels: the
/// losses call it once per row from scalar code, where `f32::mul_add` in the exponential's
/// polynomial would be a library call on the portable compilation (1.5 % of a GPT training step
/// went to `fmaf` before this was dispatched).
pub(crate) fn logsumexp<T: Float>(row: &[T]) -> T {
    vectorized!(logsumexp_body(row: &[T]) -> T)
}

#[inline(always)]
fn logsumexp_body<T: Float>(row: &[T]) -> T {
    let (max, log_sum) = max_and_log_sum(row);
    max + log_sum
}

/// [`softmax_rows`] dispatched like the element-wise kernels, for callers outside them (the
/// losses' gradients from logits).
pub(crate) fn softmax_rows_dispatched<T: Float>(n: usize, x: &[T], y: &mut [T]) {
    vectorized!(softmax_rows(n: usize, x: &[T], y: &mut [T]))
}

/// Softmax of every row of `n` values of `x` into `y`, a block of rows at a time: each row's
/// values less its maximum, then the exponentials of the whole block in one contiguous loop,
/// then each row's sum (eight lanes, `sum_lanes`) and scaling. Row by row, the exponentials
/// of a row shorter than a vector, or a row's last few, ran in the loop's scalar tail; over
/// blocks they vectorise whatever the row length (`cargo bench -p nnc-runtime --bench kernels
/// -- softmax_`, one core: 32 rows of 10 took 1.32 µs row by row and 0.52 µs in blocks, 128
/// rows of 65 9.4 µs and 6.0 µs). Each element meets the same operations either way.
#[inline(always)]
pub(crate) fn softmax_rows<T: Float>(n: usize, x: &[T], y: &mut [T]) {
    let block = block_rows(n) * n;
    if block == 0 {
        return;
    }
    for (x, y) in x.chunks(block).zip(y.chunks_mut(block)) {
        for (x, y) in rows(n, x).zip(rows_mut(n, y)) {
            let max = row_max(x);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x - max;
            }
        }
        y.iter_mut().for_each(|y| *y = y.exp());
        for y in rows_mut(n, y) {
            let inv = T::ONE / sum_lanes(y);
            y.iter_mut().for_each(|y| *y *= inv);
        }
    }
}

/// Rows of `n` values in one block of [`softmax_rows`]: about 1024 values, which stay in L1
/// cache between its three passes, and at least one row.
fn block_rows(n: usize) -> usize {
    (1024 / n.max(1)).max(1)
}

/// What one element of a row-wise pass costs, in cheap element-wise operations, for the
/// threading threshold: an exponential and its share of the row's sums.
const ROW_COST: usize = 8;

/// Row-wise softmax over `batch` rows of `n` values, subtracting each row's maximum first so that
/// `exp` cannot overflow.
pub fn softmax<T: Float>(exec: &Exec, batch: usize, n: usize, x: &[T], y: &mut [T]) {
    assert_rows("softmax", batch, n, &[x.len(), y.len()]);
    let operands = (RowsRef(x, n), RowsMut::new(y, n));
    exec.split_row_pass(
        batch,
        n,
        ROW_COST,
        operands,
        |(x, y)| vectorized!(softmax_rows(n: usize, x: &[T], y: &mut [T])),
    );
}

/// Softmax gradient: `gx = y ⊙ (gy − Σ_j gy_j y_j)` per row.
pub fn softmax_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    n: usize,
    y: &[T],
    gy: &[T],
    gx: &mut [T],
) {
    assert_rows("softmax_backward", batch, n, &[y.len(), gy.len(), gx.len()]);
    // `rows` would give no rows for n = 0 anyway, but returning here tells LLVM that every row is
    // non-empty, which makes this loop measurably faster (about 10% on 64 rows of 10).
    if n == 0 {
        return;
    }
    let operands = (RowsRef(y, n), RowsRef(gy, n), RowsMut::new(gx, n));
    exec.split_row_pass(
        batch,
        n,
        ROW_COST,
        operands,
        |(y, gy, gx)| vectorized!(softmax_backward_body(n: usize, y: &[T], gy: &[T], gx: &mut [T])),
    );
}

#[inline(always)]
fn softmax_backward_body<T: Float>(n: usize, y: &[T], gy: &[T], gx: &mut [T]) {
    for ((y, gy), gx) in rows(n, y).zip(rows(n, gy)).zip(rows_mut(n, gx)) {
        let dot = dot_lanes(y, gy);
        for ((gx, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
            *gx = y * (gy - dot);
        }
    }
}

/// `Σ x` over a row in eight running sums (`lanes.rs`).
#[inline(always)]
pub(crate) fn sum_lanes<T: Float>(x: &[T]) -> T {
    fold_lanes::<_, _, 8>(x, T::ZERO, |v| v, |s, v| s + v)
}

/// Row-wise log-softmax: `y = x − max − ln Σ e^(x − max)`. Subtracting `max` before the log-sum
/// (rather than after) keeps the row's largest entry exact.
pub fn log_softmax<T: Float>(exec: &Exec, batch: usize, n: usize, x: &[T], y: &mut [T]) {
    assert_rows("log_softmax", batch, n, &[x.len(), y.len()]);
    let operands = (RowsRef(x, n), RowsMut::new(y, n));
    exec.split_row_pass(
        batch,
        n,
        ROW_COST,
        operands,
        |(x, y)| vectorized!(log_softmax_body(n: usize, x: &[T], y: &mut [T])),
    );
}

#[inline(always)]
fn log_softmax_body<T: Float>(n: usize, x: &[T], y: &mut [T]) {
    for (x, y) in rows(n, x).zip(rows_mut(n, y)) {
        let (max, log_sum) = max_and_log_sum(x);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - max) - log_sum;
        }
    }
}

/// Log-softmax gradient through its output `y`: `gx = gy − e^y · Σ_row gy`.
pub fn log_softmax_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    n: usize,
    y: &[T],
    gy: &[T],
    gx: &mut [T],
) {
    assert_rows(
        "log_softmax_backward",
        batch,
        n,
        &[y.len(), gy.len(), gx.len()],
    );
    if n == 0 {
        return;
    }
    let operands = (RowsRef(y, n), RowsRef(gy, n), RowsMut::new(gx, n));
    exec.split_row_pass(batch, n, ROW_COST, operands, |(y, gy, gx)| {
        for ((y, gy), gx) in rows(n, y).zip(rows(n, gy)).zip(rows_mut(n, gx)) {
            let sum: T = gy.iter().copied().sum();
            for ((gx, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
                *gx = gy - y.exp() * sum;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Blocks of rows give each row the bits it gets alone: the shifted exponentials, the sum in
    /// eight lanes and the scaling, row by row, for rows shorter and longer than a vector and a
    /// block, and batches that end partway through a block.
    #[test]
    fn blocks_of_rows_match_rows_one_at_a_time() {
        let mut rng = Rng::new(5);
        for (batch, n) in [(1, 1), (7, 3), (300, 10), (40, 65), (3, 1500)] {
            let mut x = vec![0.0f32; batch * n];
            rng.fill_uniform(-30.0, 30.0, &mut x);
            let mut blocked = vec![f32::NAN; batch * n];
            softmax(Exec::serial(), batch, n, &x, &mut blocked);
            let mut dispatched = vec![f32::NAN; batch * n];
            softmax_rows_dispatched(n, &x, &mut dispatched);
            for (r, (x, got)) in rows(n, &x).zip(rows(n, &blocked)).enumerate() {
                let max = row_max(x);
                let mut want: Vec<f32> = x.iter().map(|&x| Float::exp(x - max)).collect();
                let inv = 1.0 / sum_lanes(&want);
                want.iter_mut().for_each(|y| *y *= inv);
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(got), bits(&want), "{batch}x{n}, row {r}");
                assert_eq!(
                    bits(&dispatched[r * n..(r + 1) * n]),
                    bits(&want),
                    "{batch}x{n}"
                );
            }
        }
    }
}
