//! Accuracy counts: how many predictions of a batch are right, for class labels, one-hot or soft
//! targets, and binary targets.

use crate::float::Float;
use crate::kernels::Exec;

/// The index of the first largest value of a non-empty row. NaN entries never win a comparison,
/// so they are skipped unless the row starts with one.
#[inline]
fn argmax<T: Float>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// The number of rows of `p` (`batch × n`) whose argmax equals the row's label; ties go to the
/// first maximum, as in PyTorch's `argmax`. Rows labelled `ignore` are not counted (the caller
/// scores `kept_labels` rows).
pub fn argmax_correct<T: Float>(
    _: &Exec,
    batch: usize,
    n: usize,
    p: &[T],
    labels: &[u32],
    ignore: Option<u32>,
) -> usize {
    assert_eq!(
        p.len(),
        batch * n,
        "argmax_correct: p is not {batch}x{n} values"
    );
    assert_eq!(
        labels.len(),
        batch,
        "argmax_correct: expected one label per sample"
    );
    if n == 0 {
        return 0;
    }
    p.chunks_exact(n)
        .zip(labels)
        .filter(|(row, &l)| ignore != Some(l) && argmax(row) == l as usize)
        .count()
}

/// The number of rows whose argmax of `p` equals the argmax of `t` (both `batch × n`), for one-hot
/// or soft targets; ties go to the first maximum in both.
pub fn argmax_match<T: Float>(_: &Exec, batch: usize, n: usize, p: &[T], t: &[T]) -> usize {
    assert!(
        p.len() == batch * n && t.len() == batch * n,
        "argmax_match: expected {batch}x{n} values, got p {} and t {}",
        p.len(),
        t.len()
    );
    if n == 0 {
        return 0;
    }
    p.chunks_exact(n)
        .zip(t.chunks_exact(n))
        .filter(|(p, t)| argmax(p) == argmax(t))
        .count()
}

/// The number of elements where `(p > threshold) == (t > 0.5)`: binary accuracy. Pass 0.5 for
/// probabilities and 0 for logits.
pub fn threshold_correct<T: Float>(_: &Exec, p: &[T], t: &[T], threshold: T) -> usize {
    assert_eq!(
        p.len(),
        t.len(),
        "threshold_correct: p has {} values but t has {}",
        p.len(),
        t.len()
    );
    let half = T::from_f64(0.5);
    p.iter()
        .zip(t)
        .filter(|(&p, &t)| (p > threshold) == (t > half))
        .count()
}
