//! Datasets: the inputs and targets of many samples, row-major, with splitting, preprocessing
//! (standardisation, scaling, one-hot) and batching; and the loaders in the submodules.
//!
//! A dataset holds one [`Column`] per model input and one per target, in the model's
//! declaration order, all with the same number of samples. Batches are slices of the columns
//! when the rows are consecutive, and are gathered into buffers allocated once otherwise.

mod csv;
mod idx;
mod text;

pub use self::csv::{csv, csv_regression, CsvOptions, Header, MAX_INFERRED_CLASSES};
pub use self::idx::{idx, mnist, Idx, Split};
pub use self::text::{next_char_dataset, text_file, Vocab};

use crate::Error;
use nnc_runtime::{Float, Rng, Target};
use std::ops::Range;

/// The values of one input or target for every sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Column<T> {
    /// `len × per_sample` floats, where `per_sample` is the product of `shape`.
    Float {
        /// All values, sample after sample.
        values: Vec<T>,
        /// The shape of one sample.
        shape: Vec<usize>,
    },
    /// One class label per sample.
    Labels {
        /// The labels, each below `classes`.
        labels: Vec<u32>,
        /// The number of classes.
        classes: usize,
    },
}

impl<T: Float> Column<T> {
    /// Float values with the per-sample `shape`.
    pub fn float(values: Vec<T>, shape: &[usize]) -> Column<T> {
        Column::Float {
            values,
            shape: shape.to_vec(),
        }
    }

    /// Class labels; errors if one is not below `classes`.
    pub fn labels(labels: Vec<u32>, classes: usize) -> Result<Column<T>, Error> {
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(Error::Data(format!(
                "label {l} of sample {i} is not below the {classes} classes; labels run from 0 to {}",
                classes.saturating_sub(1)
            )));
        }
        Ok(Column::Labels { labels, classes })
    }

    /// Values per sample (1 for labels).
    pub fn per_sample(&self) -> usize {
        match self {
            Column::Float { shape, .. } => shape.iter().product(),
            Column::Labels { .. } => 1,
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        match self {
            Column::Float { values, .. } => values.len() / self.per_sample().max(1),
            Column::Labels { labels, .. } => labels.len(),
        }
    }

    /// Whether the column has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn subset(&self, rows: &[usize]) -> Column<T> {
        match self {
            Column::Float { values, shape } => {
                let n = self.per_sample();
                Column::Float {
                    values: rows
                        .iter()
                        .flat_map(|&r| &values[r * n..(r + 1) * n])
                        .copied()
                        .collect(),
                    shape: shape.clone(),
                }
            }
            Column::Labels { labels, classes } => Column::Labels {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                classes: *classes,
            },
        }
    }

    /// Labels as one-hot float rows (`[classes]` per sample); float columns are returned as
    /// they are.
    pub fn one_hot(&self) -> Column<T> {
        match self {
            Column::Labels { labels, classes } => Column::Float {
                values: one_hot(labels, *classes),
                shape: vec![*classes],
            },
            other => other.clone(),
        }
    }
}

/// `labels` as one-hot rows of `classes` values.
pub fn one_hot<T: Float>(labels: &[u32], classes: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; labels.len() * classes];
    for (row, &l) in out.chunks_exact_mut(classes.max(1)).zip(labels) {
        if let Some(v) = row.get_mut(l as usize) {
            *v = T::ONE;
        }
    }
    out
}

/// Inputs and targets of `len` samples, in the model's declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T> {
    /// One column per model input.
    pub inputs: Vec<Column<T>>,
    /// One column per model target (none for unsupervised data).
    pub targets: Vec<Column<T>>,
}

impl<T: Float> Dataset<T> {
    /// A dataset from its columns; errors unless every column has the same number of samples
    /// and no float column's length is a fraction of samples.
    pub fn new(inputs: Vec<Column<T>>, targets: Vec<Column<T>>) -> Result<Dataset<T>, Error> {
        let all: Vec<&Column<T>> = inputs.iter().chain(&targets).collect();
        for c in &all {
            if let Column::Float { values, shape } = c {
                let n = c.per_sample();
                if n == 0 || values.len() % n != 0 {
                    return Err(Error::Data(format!(
                        "a column of shape {shape:?} holds {} values, which is not a whole number of samples of {n}",
                        values.len()
                    )));
                }
            }
        }
        if let Some(first) = all.first() {
            if let Some(c) = all.iter().find(|c| c.len() != first.len()) {
                return Err(Error::Data(format!(
                    "the columns hold different numbers of samples: {} and {}; every input and target needs one row per sample",
                    first.len(),
                    c.len()
                )));
            }
        }
        Ok(Dataset { inputs, targets })
    }

    /// The common case: one input of per-sample `shape` and one target column.
    pub fn supervised(x: Vec<T>, shape: &[usize], y: Column<T>) -> Result<Dataset<T>, Error> {
        Dataset::new(vec![Column::float(x, shape)], vec![y])
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.inputs
            .iter()
            .chain(&self.targets)
            .next()
            .map_or(0, Column::len)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> Dataset<T> {
        Dataset {
            inputs: self.inputs.iter().map(|c| c.subset(rows)).collect(),
            targets: self.targets.iter().map(|c| c.subset(rows)).collect(),
        }
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset<T> {
        let rows: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&rows)
    }

    /// Splits off the last `fraction` of the samples after shuffling them with `seed`:
    /// `(rest, split_off)`. Keras's `validation_split` takes the last fraction unshuffled;
    /// shuffling first keeps sorted files (all of one class, then the next) usable.
    pub fn split(&self, fraction: f64, seed: u64) -> (Dataset<T>, Dataset<T>) {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut rows);
        let held = ((self.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let cut = self.len() - held;
        (self.subset(&rows[..cut]), self.subset(&rows[cut..]))
    }

    /// Multiplies every float input by `factor` (for example 1/255 for pixels).
    pub fn scale_inputs(&mut self, factor: T) {
        for c in &mut self.inputs {
            if let Column::Float { values, .. } = c {
                values.iter_mut().for_each(|v| *v *= factor);
            }
        }
    }
}

/// Per-feature mean and standard deviation of a float input, fitted on training data and
/// applied to any data: `(x − mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T> {
    /// The mean of each feature.
    pub mean: Vec<T>,
    /// The standard deviation of each feature (1 where a feature is constant).
    pub std: Vec<T>,
}

impl<T: Float> Standardizer<T> {
    /// Fits on input `index` of `data`; errors if it is not a float column.
    pub fn fit(data: &Dataset<T>, index: usize) -> Result<Standardizer<T>, Error> {
        let Some(Column::Float { values, .. }) = data.inputs.get(index) else {
            return Err(Error::Data(format!(
                "input {index} is not a float column, so it cannot be standardised"
            )));
        };
        let n = data.inputs[index].per_sample();
        let rows = (values.len() / n).max(1) as f64;
        let mut mean = vec![0.0f64; n];
        for row in values.chunks_exact(n) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.to_f64();
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows);
        let mut var = vec![0.0f64; n];
        for row in values.chunks_exact(n) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v.to_f64() - m).powi(2);
            }
        }
        Ok(Standardizer {
            mean: mean.iter().map(|&m| T::from_f64(m)).collect(),
            // A constant feature keeps its values centred rather than divided by zero.
            std: var
                .iter()
                .map(|&s| {
                    let std = (s / rows).sqrt();
                    T::from_f64(if std > 1e-12 { std } else { 1.0 })
                })
                .collect(),
        })
    }

    /// Standardises input `index` of `data` in place.
    pub fn apply(&self, data: &mut Dataset<T>, index: usize) -> Result<(), Error> {
        match data.inputs.get_mut(index) {
            Some(Column::Float { values, .. }) if values.len() % self.mean.len().max(1) == 0 => {
                for row in values.chunks_exact_mut(self.mean.len()) {
                    for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                        *v = (*v - *m) / *s;
                    }
                }
                Ok(())
            }
            _ => Err(Error::Data(format!(
                "input {index} is not a float column of {} features",
                self.mean.len()
            ))),
        }
    }
}

/// Buffers for one batch of every column, filled from arbitrary rows without allocating.
pub(crate) struct Batcher<T> {
    floats: Vec<Vec<T>>,
    labels: Vec<Vec<u32>>,
}

impl<T: Float> Batcher<T> {
    /// Buffers for batches of up to `capacity` samples of `data`'s columns.
    pub(crate) fn new(data: &Dataset<T>, capacity: usize) -> Batcher<T> {
        let mut floats = Vec::new();
        let mut labels = Vec::new();
        for c in data.inputs.iter().chain(&data.targets) {
            match c {
                Column::Float { .. } => floats.push(Vec::with_capacity(capacity * c.per_sample())),
                Column::Labels { .. } => labels.push(Vec::with_capacity(capacity)),
            }
        }
        Batcher { floats, labels }
    }

    /// The batch made of `rows`, written into the argument arrays `inputs` and `targets` (the
    /// first `data.inputs.len()` and `data.targets.len()` entries): slices of the dataset when
    /// the rows are consecutive, otherwise copies gathered into the buffers.
    pub(crate) fn batch<'a>(
        &'a mut self,
        data: &'a Dataset<T>,
        rows: &[usize],
        inputs: &mut [&'a [T]; MAX_COLUMNS],
        targets: &mut [Target<'a, T>; MAX_COLUMNS],
    ) {
        let start = rows.first().copied().unwrap_or(0);
        if rows.windows(2).all(|w| w[1] == w[0] + 1) {
            return slices(data, start..start + rows.len(), inputs, targets);
        }
        // Other rows are gathered into the buffers.
        let (mut f, mut l) = (self.floats.iter_mut(), self.labels.iter_mut());
        for c in data.inputs.iter().chain(&data.targets) {
            match c {
                Column::Float { values, .. } => {
                    let n = c.per_sample();
                    let Some(buf) = f.next() else { continue };
                    buf.clear();
                    for &r in rows {
                        buf.extend_from_slice(&values[r * n..(r + 1) * n]);
                    }
                }
                Column::Labels { labels, .. } => {
                    let Some(buf) = l.next() else { continue };
                    buf.clear();
                    buf.extend(rows.iter().map(|&r| labels[r]));
                }
            }
        }
        let (mut f, mut l) = (self.floats.iter(), self.labels.iter());
        fill(data, inputs, targets, |c| match c {
            Column::Float { .. } => Target::Float(f.next().map_or(&[][..], Vec::as_slice)),
            Column::Labels { .. } => Target::Labels(l.next().map_or(&[][..], Vec::as_slice)),
        });
    }
}

/// The batch of the consecutive rows `rows`, as slices of the dataset: nothing is copied.
pub(crate) fn slices<'a, T: Float>(
    data: &'a Dataset<T>,
    rows: Range<usize>,
    inputs: &mut [&'a [T]; MAX_COLUMNS],
    targets: &mut [Target<'a, T>; MAX_COLUMNS],
) {
    fill(data, inputs, targets, |c| match c {
        Column::Float { values, .. } => {
            let n = c.per_sample();
            Target::Float(&values[rows.start * n..rows.end * n])
        }
        Column::Labels { labels, .. } => Target::Labels(&labels[rows.clone()]),
    });
}

/// Writes `view` of each column into the argument arrays, inputs then targets.
fn fill<'a, T: Float>(
    data: &'a Dataset<T>,
    inputs: &mut [&'a [T]; MAX_COLUMNS],
    targets: &mut [Target<'a, T>; MAX_COLUMNS],
    mut view: impl FnMut(&'a Column<T>) -> Target<'a, T>,
) {
    for (slot, c) in inputs.iter_mut().zip(&data.inputs) {
        if let Target::Float(x) = view(c) {
            *slot = x;
        }
    }
    for (slot, c) in targets.iter_mut().zip(&data.targets) {
        *slot = view(c);
    }
}

/// The most inputs or targets a dataset may have for batching: the argument lists of a batch
/// are arrays of this size on the stack, so that a training step allocates nothing.
pub(crate) const MAX_COLUMNS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset<f32> {
        let x: Vec<f32> = (0..10).map(|v| v as f32).collect();
        Dataset::supervised(x, &[2], Column::labels(vec![0, 1, 2, 0, 1], 3).unwrap()).unwrap()
    }

    #[test]
    fn columns_must_agree() {
        let err =
            Dataset::<f32>::supervised(vec![0.0; 6], &[2], Column::labels(vec![0, 1], 2).unwrap())
                .unwrap_err();
        assert!(err.to_string().contains("3 and 2"), "{err}");
        let err =
            Dataset::<f32>::supervised(vec![0.0; 5], &[2], Column::labels(vec![0], 2).unwrap())
                .unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        assert!(Column::<f32>::labels(vec![0, 3], 3).is_err());
    }

    #[test]
    fn batches_are_slices_or_gathered_rows() {
        let data = tiny();
        let mut b = Batcher::new(&data, 2);
        let mut x = [&[][..]; MAX_COLUMNS];
        let mut y = [Target::Float(&[][..]); MAX_COLUMNS];
        b.batch(&data, &[1, 2], &mut x, &mut y);
        assert_eq!(x[0], &[2.0, 3.0, 4.0, 5.0]);
        assert!(matches!(y[0], Target::Labels(&[1, 2])));
        let mut b = Batcher::new(&data, 2);
        let mut x = [&[][..]; MAX_COLUMNS];
        b.batch(&data, &[4, 0], &mut x, &mut y);
        assert_eq!(x[0], &[8.0, 9.0, 0.0, 1.0]);
        assert!(matches!(y[0], Target::Labels(&[1, 0])));
    }

    #[test]
    fn split_keeps_every_sample_once() {
        let data = tiny();
        let (a, b) = data.split(0.4, 3);
        assert_eq!((a.len(), b.len()), (3, 2));
        let mut firsts: Vec<f32> = Vec::new();
        for d in [&a, &b] {
            if let Column::Float { values, .. } = &d.inputs[0] {
                firsts.extend(values.iter().step_by(2));
            }
        }
        firsts.sort_by(f32::total_cmp);
        assert_eq!(firsts, vec![0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn standardizer_and_one_hot() {
        let mut data = tiny();
        let s = Standardizer::fit(&data, 0).unwrap();
        assert_eq!(s.mean, vec![4.0, 5.0]);
        s.apply(&mut data, 0).unwrap();
        let Column::Float { values, .. } = &data.inputs[0] else {
            panic!()
        };
        let mean: f32 = values.iter().step_by(2).sum::<f32>() / 5.0;
        assert!(mean.abs() < 1e-6);
        assert_eq!(
            one_hot::<f32>(&[2, 0], 3),
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
        );
    }
}
