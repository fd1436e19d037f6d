//! `Metrics`: a batch's loss and accuracy counts, and their combination over an epoch.

use crate::float::Float;

/// The loss and accuracy of a batch, or of several batches merged with [`Metrics::merge`].
///
/// `loss` is the figure to report. For one batch it is the loss as computed (for a mean
/// reduction, the batch mean). Merging weights each batch's loss by its `samples`, so after
/// merging every batch of an epoch, `loss` is `loss_sum / samples`: for mean-reduced losses that
/// is exactly the mean over all the epoch's samples (the figure Keras reports), however unevenly
/// the batches are sized. `correct` and `scored` simply add up, so [`Metrics::accuracy`] of a
/// merged figure is the accuracy over all scored predictions.
///
/// The fields are public for reading and for constructing literals; build a batch's figure with
/// [`Metrics::new`], which keeps `loss_sum = loss · samples`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Metrics<T> {
    /// The loss: the batch's loss, or the sample-weighted mean of the merged batches' losses.
    pub loss: T,
    /// The number of correct predictions.
    pub correct: usize,
    /// The number of predictions scored for accuracy (samples, or elements for binary
    /// accuracy); 0 when no accuracy is measured.
    pub scored: usize,
    /// `Σ loss · samples` over the merged batches, in `f64` so that an epoch's figure does not
    /// accumulate `T`'s rounding.
    pub loss_sum: f64,
    /// The number of samples the loss covers, the weight of this figure in a merge.
    pub samples: usize,
}

impl<T: Float> Metrics<T> {
    /// The figure for one batch of `samples` samples whose loss is `loss`, with `correct` of
    /// `scored` predictions right.
    pub fn new(loss: T, samples: usize, correct: usize, scored: usize) -> Self {
        Metrics {
            loss,
            correct,
            scored,
            loss_sum: loss.to_f64() * samples as f64,
            samples,
        }
    }

    /// `correct / scored`, or `None` when nothing was scored.
    pub fn accuracy(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.correct as f64 / self.scored as f64)
    }

    /// Adds `other` into `self`: counts and sums add up, and `loss` becomes the sample-weighted
    /// mean `loss_sum / samples` of both. Start from `Metrics::default()` and merge each batch to
    /// get an epoch's figure. While the merged figure covers no samples, `loss` stays as it is.
    pub fn merge(&mut self, other: &Metrics<T>) {
        self.correct += other.correct;
        self.scored += other.scored;
        self.loss_sum += other.loss_sum;
        self.samples += other.samples;
        if self.samples > 0 {
            self.loss = T::from_f64(self.loss_sum / self.samples as f64);
        }
    }
}
