//! Row-wise softmax and log-softmax with their gradients, and the row helpers the class losses
//! share with them.

use crate::float::Float;

/// The largest value of a non-empty row (NaN entries are skipped, like `f32::max`).
#[inline]
pub(crate) fn row_max<T: Float>(row: &[T]) -> T {
    row.iter().fold(row[0], |m, &v| m.max(v))
}

/// `max + ln Σ e^(x - max)` of a non-empty row, and the row's maximum. Subtracting the maximum
/// first keeps `exp` from overflowing.
#[inline]
pub(crate) fn logsumexp<T: Float>(row: &[T]) -> (T, T) {
    let max = row_max(row);
    let sum: T = row.iter().map(|&v| (v - max).exp()).sum();
    (max + sum.ln(), max)
}

/// Softmax of one non-empty row.
#[inline]
pub(crate) fn softmax_row<T: Float>(x: &[T], y: &mut [T]) {
    let max = row_max(x);
    let mut sum = T::ZERO;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x - max).exp();
        sum += *y;
    }
    let inv = T::ONE / sum;
    y.iter_mut().for_each(|y| *y *= inv);
}

/// Asserts that every operand of a row-wise kernel holds `batch × n` values.
fn assert_rows(what: &str, batch: usize, n: usize, lens: &[usize]) {
    assert!(
        lens.iter().all(|&len| len == batch * n),
        "{what}: expected {batch}x{n} values in every operand, got lengths {lens:?}"
    );
}

/// Row-wise softmax over `batch` rows of `n` values, subtracting each row's maximum first so that
/// `exp` cannot overflow.
pub fn softmax<T: Float>(batch: usize, n: usize, x: &[T], y: &mut [T]) {
    assert_rows("softmax", batch, n, &[x.len(), y.len()]);
    if n == 0 {
        return;
    }
    for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        softmax_row(x, y);
    }
}

/// Softmax gradient: `gx = y ⊙ (gy − Σ_j gy_j y_j)` per row.
pub fn softmax_backward<T: Float>(batch: usize, n: usize, y: &[T], gy: &[T], gx: &mut [T]) {
    assert_rows("softmax_backward", batch, n, &[y.len(), gy.len(), gx.len()]);
    if n == 0 {
        return;
    }
    for ((y, gy), gx) in y
        .chunks_exact(n)
        .zip(gy.chunks_exact(n))
        .zip(gx.chunks_exact_mut(n))
    {
        let dot: T = y.iter().zip(gy).map(|(&y, &g)| y * g).sum();
        for ((gx, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
            *gx = y * (gy - dot);
        }
    }
}

/// Row-wise log-softmax: `y = x − max − ln Σ e^(x − max)`. Subtracting `max` before the log-sum
/// (rather than after) keeps the row's largest entry exact.
pub fn log_softmax<T: Float>(batch: usize, n: usize, x: &[T], y: &mut [T]) {
    assert_rows("log_softmax", batch, n, &[x.len(), y.len()]);
    if n == 0 {
        return;
    }
    for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let max = row_max(x);
        let log_sum = x.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - max) - log_sum;
        }
    }
}

/// Log-softmax gradient through its output `y`: `gx = gy − e^y · Σ_row gy`.
pub fn log_softmax_backward<T: Float>(batch: usize, n: usize, y: &[T], gy: &[T], gx: &mut [T]) {
    assert_rows(
        "log_softmax_backward",
        batch,
        n,
        &[y.len(), gy.len(), gx.len()],
    );
    if n == 0 {
        return;
    }
    for ((y, gy), gx) in y
        .chunks_exact(n)
        .zip(gy.chunks_exact(n))
        .zip(gx.chunks_exact_mut(n))
    {
        let sum: T = gy.iter().copied().sum();
        for ((gx, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
            *gx = gy - y.exp() * sum;
        }
    }
}
