//! The main example: compile the Iris models written in `examples/iris.nnc`, choose one by
//! cross-validation on the training set, train it on `data/iris.csv` (kept in the repository),
//! and report its accuracy on the held-out test set.
//!
//! Run with `cargo run --release --example iris`.
//!
//! The test set is the fixed, stratified fifth of the file made of every fifth row. With only
//! 30 test flowers, one mistake moves accuracy by 3.3 points, so the model is chosen the way it
//! should be: by 5-fold cross-validation on the 120 training flowers, never by looking at the
//! test set. The candidates are written in `iris.nnc`; the training loop is generic over any
//! compiled model through the `nnc::runtime::Model` trait.

use nnc::runtime::{Metrics, Model, Rng, Target};
use std::error::Error;

// Compiles examples/iris.nnc at build time: one struct per model, all in this module.
nnc::include_model!("examples/iris.nnc");

const FEATURES: usize = 4;
const EPOCHS: usize = 60;
const BATCH: usize = 16;
const FOLDS: usize = 5;

#[derive(Clone)]
struct Dataset {
    features: Vec<f32>,
    labels: Vec<u32>,
}

impl Dataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn subset(&self, rows: &[usize]) -> Dataset {
        let features = rows
            .iter()
            .flat_map(|&r| &self.features[r * FEATURES..(r + 1) * FEATURES])
            .copied()
            .collect();
        Dataset {
            features,
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        }
    }
}

fn load(path: &str) -> Result<Dataset, Box<dyn Error>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for (line, record) in reader.records().enumerate() {
        let record = record?;
        let at = |column: usize| format!("{path}, line {}, column {}", line + 2, column + 1);
        for column in 0..FEATURES {
            let cell = record
                .get(column)
                .ok_or_else(|| format!("{}: missing value", at(column)))?;
            features.push(
                cell.trim()
                    .parse::<f32>()
                    .map_err(|e| format!("{}: `{cell}`: {e}", at(column)))?,
            );
        }
        let cell = record
            .get(FEATURES)
            .ok_or_else(|| format!("{}: missing class", at(FEATURES)))?;
        let label: u32 = cell
            .trim()
            .parse()
            .map_err(|e| format!("{}: `{cell}`: {e}", at(FEATURES)))?;
        if label >= 3 {
            return Err(format!("{}: class {label} is not 0, 1 or 2", at(FEATURES)).into());
        }
        labels.push(label);
    }
    Ok(Dataset { features, labels })
}

/// Scales every feature to zero mean and unit variance, using statistics of `train` only.
fn standardize(train: &mut Dataset, test: &mut Dataset) {
    for f in 0..FEATURES {
        let column = || train.features.iter().skip(f).step_by(FEATURES);
        let mean = column().sum::<f32>() / train.len() as f32;
        let var = column().map(|v| (v - mean).powi(2)).sum::<f32>() / train.len() as f32;
        let std = var.sqrt().max(1e-6);
        for data in [&mut *train, &mut *test] {
            for v in data.features.iter_mut().skip(f).step_by(FEATURES) {
                *v = (*v - mean) / std;
            }
        }
    }
}

/// Trains a fresh model of type `M` on `train` for `EPOCHS` epochs of shuffled mini-batches;
/// prints progress when `verbose`.
fn train<M: Model<Elem = f32>>(train: &Dataset, seed: u64, verbose: bool) -> Result<M, nnc::Error> {
    let mut model = M::new(seed);
    let mut ws = model.workspace(BATCH);
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut x, mut y) = (
        Vec::with_capacity(BATCH * FEATURES),
        Vec::with_capacity(BATCH),
    );
    for epoch in 1..=EPOCHS {
        rng.shuffle(&mut order);
        // Loss and accuracy of each batch come from its own training forward pass.
        let mut seen = Metrics::default();
        for batch in order.chunks(BATCH) {
            x.clear();
            y.clear();
            for &r in batch {
                x.extend_from_slice(&train.features[r * FEATURES..(r + 1) * FEATURES]);
                y.push(train.labels[r]);
            }
            model.train_step_dyn(&mut ws, &[&x], &[Target::Labels(&y)])?;
            seen.merge(&M::metrics(&ws));
        }
        if verbose && (epoch % 10 == 0 || epoch == 1) {
            println!(
                "  epoch {epoch:3}  loss {:.4}  train accuracy {:.1}%",
                seen.loss,
                100.0 * seen.accuracy().unwrap_or(0.0)
            );
        }
    }
    Ok(model)
}

/// Loss and accuracy over a whole dataset, in inference mode, batch by batch.
fn evaluate<M: Model<Elem = f32>>(model: &M, data: &Dataset) -> Result<Metrics<f32>, nnc::Error> {
    let mut ws = model.workspace(BATCH);
    let mut total = Metrics::default();
    for (x, y) in data
        .features
        .chunks(FEATURES * BATCH)
        .zip(data.labels.chunks(BATCH))
    {
        total.merge(&model.evaluate_dyn(&mut ws, &[x], &[Target::Labels(y)])?);
    }
    Ok(total)
}

/// Mean validation accuracy of `M` over `FOLDS` folds of `data`. Fold k holds the rows whose
/// index is k modulo `FOLDS`, which keeps every fold stratified because the rows are grouped
/// by class. Each fold is standardized with its own training statistics.
fn cross_validate<M: Model<Elem = f32>>(data: &Dataset) -> Result<f64, nnc::Error> {
    let mut correct = 0;
    for k in 0..FOLDS {
        let (fit, held): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|r| r % FOLDS != k);
        let (mut fit, mut held) = (data.subset(&fit), data.subset(&held));
        standardize(&mut fit, &mut held);
        let model = train::<M>(&fit, 7 + k as u64, false)?;
        correct += evaluate(&model, &held)?.correct;
    }
    Ok(correct as f64 / data.len() as f64)
}

/// Trains the chosen model on the whole training set and scores it on the test set.
fn final_run<M: Model<Elem = f32>>(
    train_set: &Dataset,
    test: &Dataset,
) -> Result<Metrics<f32>, Box<dyn Error>> {
    let (mut train_set, mut test) = (train_set.clone(), test.clone());
    standardize(&mut train_set, &mut test);
    println!(
        "training `{}` ({} parameters) on all {} training samples:",
        M::NAME,
        M::PARAMS.iter().map(|p| p.len).sum::<usize>(),
        train_set.len()
    );
    let model = train::<M>(&train_set, 7, true)?;
    let result = evaluate(&model, &test)?;
    println!(
        "test accuracy: {:.1}% ({} of {}), test loss {:.4}",
        100.0 * result.accuracy().unwrap_or(0.0),
        result.correct,
        result.scored,
        result.loss
    );
    Ok(result)
}

/// What a run found: the cross-validation accuracy of every candidate, the chosen one, and its
/// test metrics.
pub struct Report {
    pub candidates: Vec<(&'static str, f64)>,
    pub chosen: &'static str,
    pub test: Metrics<f32>,
}

fn main() -> Result<(), Box<dyn Error>> {
    run().map(|_| ())
}

/// The whole example: load, split, choose by cross-validation, train, test.
pub fn run() -> Result<Report, Box<dyn Error>> {
    let all = load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"))?;
    // The fixed, stratified 80/20 split: every fifth row is a test sample.
    let (train_rows, test_rows): (Vec<usize>, Vec<usize>) =
        (0..all.len()).partition(|r| r % 5 != 4);
    let (train_set, test) = (all.subset(&train_rows), all.subset(&test_rows));
    println!(
        "iris: {} training and {} test samples; choosing a model by {FOLDS}-fold cross-validation",
        train_set.len(),
        test.len()
    );
    let candidates = [
        (IrisKeras::NAME, cross_validate::<IrisKeras>(&train_set)?),
        (
            IrisSmoothed::NAME,
            cross_validate::<IrisSmoothed>(&train_set)?,
        ),
        (IrisSmall::NAME, cross_validate::<IrisSmall>(&train_set)?),
        (IrisLinear::NAME, cross_validate::<IrisLinear>(&train_set)?),
    ];
    for (name, accuracy) in &candidates {
        println!("  {name:14} validation accuracy {:.1}%", 100.0 * accuracy);
    }
    // The first of the best, so that ties go to the earlier (listed) candidate.
    let best = candidates
        .iter()
        .fold(
            candidates[0],
            |best, c| if c.1 > best.1 { *c } else { best },
        )
        .0;
    let test = match best {
        "IrisKeras" => final_run::<IrisKeras>(&train_set, &test),
        "IrisSmoothed" => final_run::<IrisSmoothed>(&train_set, &test),
        "IrisSmall" => final_run::<IrisSmall>(&train_set, &test),
        _ => final_run::<IrisLinear>(&train_set, &test),
    }?;
    Ok(Report {
        candidates: candidates.to_vec(),
        chosen: best,
        test,
    })
}
