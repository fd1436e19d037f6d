//! Reductions along a row in several running values at once: a row's maximum, its sum, a dot
//! product, a sum of squares. One running value is a chain of dependent operations (an addition
//! waits 4 cycles for the one before), which neither vectorises nor overlaps; `L` running
//! values, one per lane, do both, and are combined in a fixed order at the end, so that the
//! result does not depend on the instruction set a kernel was dispatched to. This module does
//! not dispatch: its callers run inside `vectorized!` bodies.

use crate::float::Float;

/// `add` over `term(x[i])` for every element of `x`, starting from `zero`: `L` running values
/// over whole chunks of `L` elements, then `add(lane total, tail)`, where the lanes are
/// combined from the first and the tail holds the last `x.len() % L` elements in order.
#[inline(always)]
pub(crate) fn fold_lanes<E: Copy, A: Copy, const L: usize>(
    x: &[E],
    zero: A,
    term: impl Fn(E) -> A,
    add: impl Fn(A, A) -> A,
) -> A {
    let mut lanes = [zero; L];
    let mut chunks = x.chunks_exact(L);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = add(*lane, term(v));
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(zero, |s, &v| add(s, term(v)));
    add(lanes.iter().fold(zero, |s, &v| add(s, v)), tail)
}

/// `Σ a[i]·b[i]` over two rows of equal length, in the lanes and order of [`fold_lanes`] with
/// `L = 8`. Pairing the rows is kept out of `fold_lanes`: zipping a row with itself there made
/// the one-row reductions 11-17 % slower (`softmax_128x65`, `log_softmax_128x65`).
#[inline(always)]
pub(crate) fn dot_lanes<T: Float>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; 8];
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    for (a, b) in (&mut a8).zip(&mut b8) {
        for ((sum, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *sum += a * b;
        }
    }
    let tail = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(T::ZERO, |s, (&a, &b)| s + a * b);
    lanes.iter().fold(T::ZERO, |s, &v| s + v) + tail
}

#[cfg(test)]
mod tests {
    use super::{dot_lanes, fold_lanes};

    /// Every element counts once, in whole chunks and in the tail, for lengths on both sides of
    /// a chunk; the sums are of small integers, so exact in any order.
    #[test]
    fn every_element_is_folded_once() {
        for len in [0, 1, 7, 8, 9, 23] {
            let a: Vec<f64> = (1..=len).map(|i| i as f64).collect();
            let sum = fold_lanes::<_, _, 8>(&a, 0.0, |x| x, |s, v| s + v);
            assert_eq!(sum, (len * (len + 1) / 2) as f64, "{len}");
            let dot = dot_lanes(&a, &a);
            assert_eq!(dot, (len * (len + 1) * (2 * len + 1) / 6) as f64, "{len}");
        }
    }
}
