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
//! compiled model through the `nnc::runtime::Model` trait, with `nnc::train` for loading, standardising, `fit` and `evaluate`.

use nnc::runtime::{Metrics, Model};
use nnc::train::data::{csv, CsvOptions, Header, Standardizer};
use nnc::train::{evaluate, fit_with, Control, Dataset, Epoch, FitOptions, Verbosity};
use std::error::Error;

// Compiles examples/iris.nnc at build time: one struct per model, all in this module.
nnc::include_model!("examples/iris.nnc");

const EPOCHS: usize = 60;
const BATCH: usize = 16;
const FOLDS: usize = 5;

/// Scales every feature of `test` and `train` to zero mean and unit variance, with statistics
/// of `train` only.
fn standardize(train: &mut Dataset<f32>, test: &mut Dataset<f32>) -> Result<(), nnc::train::Error> {
    let scaler = Standardizer::fit(train, 0)?;
    scaler.apply(train, 0)?;
    scaler.apply(test, 0)
}

/// Trains a fresh model of type `M` on `data` for `EPOCHS` epochs of shuffled mini-batches;
/// prints every tenth epoch when `verbose`.
fn train<M: Model<Elem = f32>>(
    data: &Dataset<f32>,
    seed: u64,
    verbose: bool,
) -> Result<M, nnc::train::Error> {
    let mut model = M::new(seed);
    let options = FitOptions {
        epochs: EPOCHS,
        batch_size: BATCH,
        seed,
        verbosity: Verbosity::Quiet,
        ..FitOptions::default()
    };
    let mut report = |e: &Epoch, _: &mut M| {
        if verbose && (e.epoch.is_multiple_of(10) || e.epoch == 1) {
            println!(
                "  epoch {:3}  loss {:.4}  train accuracy {:.1}%",
                e.epoch,
                e.loss,
                100.0 * e.accuracy.unwrap_or(0.0)
            );
        }
        Ok(Control::Continue)
    };
    fit_with(&mut model, data, &options, &mut [&mut report])?;
    Ok(model)
}

/// Mean validation accuracy of `M` over `FOLDS` folds of `data`. Fold k holds the rows whose
/// index is k modulo `FOLDS`, which keeps every fold stratified because the rows are grouped
/// by class. Each fold is standardized with its own training statistics.
fn cross_validate<M: Model<Elem = f32>>(data: &Dataset<f32>) -> Result<f64, nnc::train::Error> {
    let mut correct = 0;
    for k in 0..FOLDS {
        let (fit, held): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|r| r % FOLDS != k);
        let (mut fit, mut held) = (data.subset(&fit)?, data.subset(&held)?);
        standardize(&mut fit, &mut held)?;
        let model = train::<M>(&fit, 7 + k as u64, false)?;
        correct += evaluate(&model, &held, BATCH)?.correct;
    }
    Ok(correct as f64 / data.len() as f64)
}

/// Trains the chosen model on the whole training set and scores it on the test set.
fn final_run<M: Model<Elem = f32>>(
    train_set: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<Metrics<f32>, Box<dyn Error>> {
    let (mut train_set, mut test) = (train_set.clone(), test.clone());
    standardize(&mut train_set, &mut test)?;
    println!(
        "training `{}` ({} parameters) on all {} training samples:",
        M::NAME,
        M::PARAMS.iter().map(|p| p.len).sum::<usize>(),
        train_set.len()
    );
    let model = train::<M>(&train_set, 7, true)?;
    let result = evaluate(&model, &test, BATCH)?;
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
    let options = CsvOptions {
        header: Header::Present,
        label_column: None,
        classes: Some(3),
    };
    let all = csv(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"),
        &options,
    )?;
    // The fixed, stratified 80/20 split: every fifth row is a test sample.
    let (train_rows, test_rows): (Vec<usize>, Vec<usize>) =
        (0..all.len()).partition(|r| r % 5 != 4);
    let (train_set, test) = (all.subset(&train_rows)?, all.subset(&test_rows)?);
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
