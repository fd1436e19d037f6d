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
pub use self::idx::{idx, mnist, Idx, Split, DEFAULT_MAX_DECOMPRESSED};
pub use self::text::{next_char_dataset, next_char_sequences, text_file, Vocab};

use crate::Error;
use nnc_runtime::{Float, Rng, Values};
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
    /// `len × per_sample` integers below `range`: token ids for an input, class labels for a
    /// target (`shape` is `[]` for one label per sample, `[64]` for one per position).
    Ids {
        /// All ids, sample after sample.
        ids: Vec<u32>,
        /// The shape of one sample.
        shape: Vec<usize>,
        /// One past the largest valid id: the vocabulary or the number of classes.
        range: usize,
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

    /// One class label per sample; errors if one is not below `classes`.
    pub fn labels(labels: Vec<u32>, classes: usize) -> Result<Column<T>, Error> {
        Column::ids(labels, &[], classes)
    }

    /// Integer ids with the per-sample `shape`; errors if one is not below `range`.
    pub fn ids(ids: Vec<u32>, shape: &[usize], range: usize) -> Result<Column<T>, Error> {
        let per_sample = shape.iter().product::<usize>().max(1);
        if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= range) {
            return Err(Error::Data(format!(
                "id {id} at position {} of sample {} is not below the range of {range}; ids run from 0 to {}",
                i % per_sample,
                i / per_sample,
                range.saturating_sub(1)
            )));
        }
        Ok(Column::Ids {
            ids,
            shape: shape.to_vec(),
            range,
        })
    }

    /// Values per sample.
    pub fn per_sample(&self) -> usize {
        match self {
            Column::Float { shape, .. } | Column::Ids { shape, .. } => shape.iter().product(),
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        let values = match self {
            Column::Float { values, .. } => values.len(),
            Column::Ids { ids, .. } => ids.len(),
        };
        values / self.per_sample().max(1)
    }

    /// Whether the column has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn subset(&self, rows: &[usize]) -> Column<T> {
        fn gather<V: Copy>(values: &[V], n: usize, rows: &[usize]) -> Vec<V> {
            rows.iter()
                .flat_map(|&r| &values[r * n..(r + 1) * n])
                .copied()
                .collect()
        }
        let n = self.per_sample();
        match self {
            Column::Float { values, shape } => Column::Float {
                values: gather(values, n, rows),
                shape: shape.clone(),
            },
            Column::Ids { ids, shape, range } => Column::Ids {
                ids: gather(ids, n, rows),
                shape: shape.clone(),
                range: *range,
            },
        }
    }

    /// Ids as one-hot float rows (`shape + [range]` per sample); float columns are returned
    /// as they are.
    pub fn one_hot(&self) -> Column<T> {
        match self {
            Column::Ids { ids, shape, range } => {
                let mut shape = shape.clone();
                shape.push(*range);
                Column::Float {
                    values: one_hot(ids, *range),
                    shape,
                }
            }
            other => other.clone(),
        }
    }

    /// The values of the samples `rows`, as the model's methods take them.
    fn view(&self, rows: Range<usize>) -> Values<'_, T> {
        let n = self.per_sample();
        match self {
            Column::Float { values, .. } => Values::Float(&values[rows.start * n..rows.end * n]),
            Column::Ids { ids, .. } => Values::Ids(&ids[rows.start * n..rows.end * n]),
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

    /// The samples at `rows`, in that order, or an error naming the first row past the end.
    pub fn subset(&self, rows: &[usize]) -> Result<Dataset<T>, Error> {
        match rows.iter().find(|&&r| r >= self.len()) {
            Some(r) => Err(Error::Data(format!(
                "row {r} is past the end of a dataset of {} samples; rows count from 0",
                self.len()
            ))),
            None => Ok(self.rows(rows)),
        }
    }

    /// The samples at `rows`, all in range.
    fn rows(&self, rows: &[usize]) -> Dataset<T> {
        Dataset {
            inputs: self.inputs.iter().map(|c| c.subset(rows)).collect(),
            targets: self.targets.iter().map(|c| c.subset(rows)).collect(),
        }
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset<T> {
        let rows: Vec<usize> = (0..n.min(self.len())).collect();
        self.rows(&rows)
    }

    /// Splits off the last `fraction` of the samples after shuffling them with `seed`:
    /// `(rest, split_off)`. Keras's `validation_split` takes the last fraction unshuffled;
    /// shuffling first keeps sorted files (all of one class, then the next) usable.
    pub fn split(&self, fraction: f64, seed: u64) -> (Dataset<T>, Dataset<T>) {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut rows);
        let held = ((self.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let cut = self.len() - held;
        (self.rows(&rows[..cut]), self.rows(&rows[cut..]))
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
        if n == 0 || values.is_empty() {
            return Err(Error::Data(format!(
                "input {index} has no values to fit a standardizer on; fit it on training data with at least one sample"
            )));
        }
        let rows = (values.len() / n) as f64;
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
        let features = self.mean.len();
        if features == 0 || self.std.len() != features {
            return Err(Error::Data(format!(
                "the standardizer has {features} means and {} standard deviations; it needs one of each per feature, as `Standardizer::fit` makes",
                self.std.len()
            )));
        }
        match data.inputs.get_mut(index) {
            Some(Column::Float { values, shape })
                if shape.iter().product::<usize>() == features =>
            {
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
    ids: Vec<Vec<u32>>,
}

/// The argument list of one batch: one entry per input or target, on the stack.
pub(crate) type Arguments<'a, T> = [Values<'a, T>; MAX_COLUMNS];

/// Empty argument lists for one batch, for inputs and for targets.
pub(crate) fn empty_arguments<'a, T: Copy>() -> (Arguments<'a, T>, Arguments<'a, T>) {
    (
        [Values::Float(&[]); MAX_COLUMNS],
        [Values::Float(&[]); MAX_COLUMNS],
    )
}

impl<T: Float> Batcher<T> {
    /// Buffers for batches of up to `capacity` samples of `data`'s columns.
    pub(crate) fn new(data: &Dataset<T>, capacity: usize) -> Batcher<T> {
        let mut floats = Vec::new();
        let mut ids = Vec::new();
        for c in data.inputs.iter().chain(&data.targets) {
            let n = capacity * c.per_sample();
            match c {
                Column::Float { .. } => floats.push(Vec::with_capacity(n)),
                Column::Ids { .. } => ids.push(Vec::with_capacity(n)),
            }
        }
        Batcher { floats, ids }
    }

    /// The batch made of `rows`, written into the argument arrays `inputs` and `targets` (the
    /// first `data.inputs.len()` and `data.targets.len()` entries): slices of the dataset when
    /// the rows are consecutive, otherwise copies gathered into the buffers.
    pub(crate) fn batch<'a>(
        &'a mut self,
        data: &'a Dataset<T>,
        rows: &[usize],
        inputs: &mut Arguments<'a, T>,
        targets: &mut Arguments<'a, T>,
    ) {
        let start = rows.first().copied().unwrap_or(0);
        if rows.windows(2).all(|w| w[1] == w[0] + 1) {
            return slices(data, start..start + rows.len(), inputs, targets);
        }
        // Other rows are gathered into the buffers.
        fn gather<V: Copy>(buf: Option<&mut Vec<V>>, values: &[V], n: usize, rows: &[usize]) {
            let Some(buf) = buf else { return };
            buf.clear();
            for &r in rows {
                buf.extend_from_slice(&values[r * n..(r + 1) * n]);
            }
        }
        let (mut f, mut l) = (self.floats.iter_mut(), self.ids.iter_mut());
        for c in data.inputs.iter().chain(&data.targets) {
            let n = c.per_sample();
            match c {
                Column::Float { values, .. } => gather(f.next(), values, n, rows),
                Column::Ids { ids, .. } => gather(l.next(), ids, n, rows),
            }
        }
        let (mut f, mut l) = (self.floats.iter(), self.ids.iter());
        fill(data, inputs, targets, |c| match c {
            Column::Float { .. } => Values::Float(f.next().map_or(&[][..], Vec::as_slice)),
            Column::Ids { .. } => Values::Ids(l.next().map_or(&[][..], Vec::as_slice)),
        });
    }
}

/// The batch of the consecutive rows `rows`, as slices of the dataset: nothing is copied.
pub(crate) fn slices<'a, T: Float>(
    data: &'a Dataset<T>,
    rows: Range<usize>,
    inputs: &mut Arguments<'a, T>,
    targets: &mut Arguments<'a, T>,
) {
    fill(data, inputs, targets, |c| c.view(rows.clone()));
}

/// Writes `view` of each column into the argument arrays, inputs then targets.
fn fill<'a, T: Float>(
    data: &'a Dataset<T>,
    inputs: &mut Arguments<'a, T>,
    targets: &mut Arguments<'a, T>,
    mut view: impl FnMut(&'a Column<T>) -> Values<'a, T>,
) {
    for (slot, c) in inputs.iter_mut().zip(&data.inputs) {
        *slot = view(c);
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
        let (mut x, mut y) = empty_arguments();
        b.batch(&data, &[1, 2], &mut x, &mut y);
        assert!(matches!(x[0], Values::Float(&[2.0, 3.0, 4.0, 5.0])));
        assert!(matches!(y[0], Values::Ids(&[1, 2])));
        let mut b = Batcher::new(&data, 2);
        let (mut x, mut y) = empty_arguments();
        b.batch(&data, &[4, 0], &mut x, &mut y);
        assert!(matches!(x[0], Values::Float(&[8.0, 9.0, 0.0, 1.0])));
        assert!(matches!(y[0], Values::Ids(&[1, 0])));
    }

    #[test]
    fn id_columns_of_any_shape() {
        let ids: Column<f32> = Column::ids(vec![0, 1, 2, 3, 4, 5], &[3], 6).unwrap();
        assert_eq!((ids.len(), ids.per_sample()), (2, 3));
        let data = Dataset::new(vec![ids.clone()], vec![ids]).unwrap();
        let mut b = Batcher::new(&data, 2);
        let (mut x, mut y) = empty_arguments();
        b.batch(&data, &[1, 0], &mut x, &mut y);
        assert!(matches!(x[0], Values::Ids(&[3, 4, 5, 0, 1, 2])));
        let err = Column::<f32>::ids(vec![0, 1, 2, 3, 9, 5], &[3], 6).unwrap_err();
        assert!(err.to_string().contains("position 1 of sample 1"), "{err}");
        let one_hot = Column::<f32>::ids(vec![1, 0], &[2], 2).unwrap().one_hot();
        assert_eq!(one_hot, Column::float(vec![0.0, 1.0, 1.0, 0.0], &[2, 2]));
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
