//! Argument validation that generated methods run before touching the workspace.
//!
//! Each function turns a caller mistake into an [`Error`] whose message names the offending
//! input or target, so that the kernels afterwards can rely on consistent sizes.

use crate::error::Error;

/// Number of samples in `len` values of `input` with `per_sample` values each.
///
/// Errors when the input is empty, when `len` is not a multiple of `per_sample`, or when the batch
/// exceeds the workspace `capacity` (so a workspace of capacity 0 rejects every batch).
pub fn batch(
    input: &'static str,
    len: usize,
    per_sample: usize,
    capacity: usize,
) -> Result<usize, Error> {
    let batch = samples(input, len, per_sample)?;
    if batch > capacity {
        return Err(Error::BatchTooLarge {
            input,
            batch,
            capacity,
        });
    }
    Ok(batch)
}

/// Another input of the same call must hold exactly `batch` samples.
pub fn same_batch(
    input: &'static str,
    len: usize,
    per_sample: usize,
    batch: usize,
) -> Result<(), Error> {
    let found = samples(input, len, per_sample)?;
    if found != batch {
        return Err(Error::BatchMismatch {
            name: input,
            expected: batch,
            found,
        });
    }
    Ok(())
}

/// A `step` must continue as many sequences as the workspace carries the state of, unless it
/// carries none (0: new sequences).
pub fn step_batch(input: &'static str, batch: usize, carried: usize) -> Result<(), Error> {
    if carried != 0 && carried != batch {
        return Err(Error::StepBatch {
            input,
            carried,
            found: batch,
        });
    }
    Ok(())
}

/// A step at `position` (counting from 0 since the sequences started) of a model that attends
/// over at most `positions`.
pub fn step_position(position: usize, positions: usize) -> Result<(), Error> {
    if position >= positions {
        return Err(Error::ContextFull { positions });
    }
    Ok(())
}

/// A float target must hold exactly `batch * per_sample` values.
pub fn target(
    target: &'static str,
    len: usize,
    per_sample: usize,
    batch: usize,
) -> Result<(), Error> {
    let expected = batch * per_sample;
    if len != expected {
        return Err(Error::TargetLength {
            target,
            expected,
            len,
            batch,
        });
    }
    Ok(())
}

/// The position of the first value not below `range`. Widening u32 to usize is lossless on
/// every platform Rust supports with 32-bit or wider pointers; a u64 comparison avoids relying
/// on that.
fn first_out_of_range(values: &[u32], range: usize) -> Option<usize> {
    values.iter().position(|&v| u64::from(v) >= range as u64)
}

/// The ids of an integer input (its length is checked with the batch): each smaller than
/// `range`. Reports the first bad id with its position.
pub fn ids(input: &'static str, ids: &[u32], range: usize, per_sample: usize) -> Result<(), Error> {
    match first_out_of_range(ids, range) {
        Some(index) => Err(Error::IdOutOfRange {
            input,
            index,
            per_sample,
            id: ids[index],
            range,
        }),
        None => Ok(()),
    }
}

/// Class labels: exactly `batch × per_sample` labels (one per predicted row), each smaller
/// than `classes` or equal to `ignore` (the loss's `ignore_index`). Reports the first bad
/// label.
pub fn labels(
    target: &'static str,
    labels: &[u32],
    classes: usize,
    ignore: Option<u32>,
    per_sample: usize,
    batch: usize,
) -> Result<(), Error> {
    if labels.len() != batch * per_sample {
        return Err(Error::TargetLength {
            target,
            expected: batch * per_sample,
            len: labels.len(),
            batch,
        });
    }
    let bad = labels
        .iter()
        .position(|&l| u64::from(l) >= classes as u64 && ignore != Some(l));
    match bad {
        Some(index) => Err(Error::LabelOutOfRange {
            target,
            index,
            label: labels[index],
            classes,
            ignore,
        }),
        None => Ok(()),
    }
}

/// Number of whole samples in `len` values, rejecting empty and ragged inputs.
fn samples(input: &'static str, len: usize, per_sample: usize) -> Result<usize, Error> {
    if len == 0 {
        return Err(Error::EmptyBatch { input });
    }
    // A zero-sized sample cannot determine a batch size; the generator never emits one, but a
    // division by zero must still not be reachable from user input.
    if per_sample == 0 || !len.is_multiple_of(per_sample) {
        return Err(Error::RaggedInput {
            input,
            len,
            per_sample,
        });
    }
    Ok(len / per_sample)
}

/// A zeroed buffer of `per_sample` values for each of `capacity` samples (a workspace's
/// input-gradient buffer), or [`Error::Allocation`] naming it after `input` where the size
/// overflows or the allocator refuses it.
pub fn sample_buffer<T: crate::float::Float>(
    input: &'static str,
    per_sample: usize,
    capacity: usize,
) -> Result<Vec<T>, Error> {
    let error = |elements| Error::Allocation {
        what: format!("gradient buffer of input `{input}` for {capacity} samples"),
        elements,
        bytes: per_sample
            .checked_mul(capacity)
            .and_then(|n| n.checked_mul(std::mem::size_of::<T>())),
    };
    let len = per_sample
        .checked_mul(capacity)
        .ok_or_else(|| error(usize::MAX))?;
    crate::kernels::zeroed::try_zeroed(len).ok_or_else(|| error(len))
}

/// A learning rate must be finite and at least 0 (0 freezes training, which is allowed).
pub fn learning_rate<T: crate::float::Float>(lr: T) -> Result<(), Error> {
    let lr = lr.to_f64();
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::LearningRate { lr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_counts_samples() {
        assert_eq!(batch("x", 784 * 3, 784, 32), Ok(3));
        assert_eq!(batch("x", 32, 1, 32), Ok(32));
    }

    #[test]
    fn batch_errors() {
        let e = batch("x", 0, 784, 32).unwrap_err();
        assert_eq!(e, Error::EmptyBatch { input: "x" });
        assert_eq!(
            e.to_string(),
            "input `x` is empty: a batch needs at least one sample"
        );

        let e = batch("x", 1000, 784, 32).unwrap_err();
        assert_eq!(
            e,
            Error::RaggedInput {
                input: "x",
                len: 1000,
                per_sample: 784
            }
        );
        assert!(e.to_string().starts_with(
            "input `x` has 1000 values, which is not a whole number of samples of 784 values each"
        ));

        let e = batch("x", 64 * 2, 2, 32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "batch of 64 samples in `x` exceeds the workspace capacity of 32; create the \
             workspace with `workspace(64)` or split the batch"
        );
        assert!(matches!(
            batch("x", 2, 2, 0),
            Err(Error::BatchTooLarge { capacity: 0, .. })
        ));
        assert!(matches!(
            batch("x", 2, 0, 4),
            Err(Error::RaggedInput { .. })
        ));
    }

    #[test]
    fn same_batch_errors() {
        assert_eq!(same_batch("y", 62, 2, 31), Ok(()));
        let e = same_batch("y", 31, 1, 32).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("`y` holds 31 samples but the batch has 32"));
        assert!(matches!(
            same_batch("y", 3, 2, 1),
            Err(Error::RaggedInput { .. })
        ));
        assert!(matches!(
            same_batch("y", 0, 2, 1),
            Err(Error::EmptyBatch { .. })
        ));
    }

    #[test]
    fn target_length() {
        assert_eq!(target("y", 64, 2, 32), Ok(()));
        let e = target("y", 31, 1, 32).unwrap_err();
        assert_eq!(
            e.to_string(),
            "target `y` expects 32 values for a batch of 32 samples (1 per sample) but got 31"
        );
    }

    #[test]
    fn label_checks() {
        assert_eq!(labels("y", &[0, 9, 3], 10, None, 1, 3), Ok(()));
        assert_eq!(labels("y", &[0, 9, 3, 4], 10, None, 2, 2), Ok(()));
        let e = labels("y", &[0, 1], 10, None, 1, 3).unwrap_err();
        assert!(matches!(
            e,
            Error::TargetLength {
                expected: 3,
                len: 2,
                ..
            }
        ));
        let e = labels("y", &[0, 1, 2, 3, 4, 12, 99], 10, None, 1, 7).unwrap_err();
        assert_eq!(
            e,
            Error::LabelOutOfRange {
                target: "y",
                index: 5,
                label: 12,
                classes: 10,
                ignore: None,
            }
        );
        assert_eq!(
            e.to_string(),
            "label 12 at position 5 of target `y` is out of range: the model has 10 classes \
             (labels 0..=9)"
        );
        // The ignored label passes whatever its value; the next bad one names it.
        let e = labels("y", &[0, 99, 3, 12], 10, Some(99), 1, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "label 12 at position 3 of target `y` is out of range: the model has 10 classes \
             (labels 0..=9, or 99 to ignore the position)"
        );
        assert!(labels("y", &[99, 0], 10, Some(99), 1, 2).is_ok());
    }

    #[test]
    fn id_checks() {
        assert_eq!(ids("tokens", &[0, 64, 3], 65, 3), Ok(()));
        let e = ids("tokens", &[0, 1, 2, 3, 65, 1], 65, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "id 65 at position 4 of input `tokens` (sample 1, element 1) is out of range: \
             `tokens` holds ids below 65; map unknown tokens to an id in 0..65 before calling \
             the model"
        );
    }

    #[test]
    fn arity_and_kind_messages() {
        let e = Error::Arity {
            what: "inputs",
            model: "Mlp",
            expected: 2,
            found: 1,
        };
        assert_eq!(
            e.to_string(),
            "model `Mlp` takes 2 inputs but 1 were passed; pass them in declaration order"
        );
        let e = Error::ValueKind {
            name: "y",
            expected: "class labels (u32)",
            found: "float values",
        };
        assert_eq!(
            e.to_string(),
            "`y` expects class labels (u32) but float values were passed; wrap it in the \
             matching `Values` variant"
        );
    }
}
