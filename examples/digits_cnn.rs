//! Handwritten digits, 8×8 pixels, from `data/digits.csv.gz` (kept in the repository), read as
//! `[1, 8, 8]` images by the small convolutional network of `examples/digits_cnn.nnc`, on the
//! same fixed 80/20 split as the `digits` example's MLP (10% of the training part held out for
//! validation), then scored on the test part. Small enough for the test suite to train it.
//!
//! Run with `cargo run --release --example digits_cnn`.

use nnc::train::data::{csv, CsvOptions, Header};
use nnc::train::{evaluate, fit, Dataset, FitOptions, Validation, Verbosity};
use std::error::Error;

nnc::include_model!("examples/digits_cnn.nnc");

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");

/// Trains for `epochs` epochs and returns the test accuracy, printing progress unless `quiet`.
pub fn run(epochs: usize, quiet: bool) -> Result<f64, Box<dyn Error>> {
    let options = CsvOptions {
        header: Header::Absent,
        label_column: None,
        classes: Some(10),
    };
    let mut all: Dataset<f32> = csv(DATA, &options)?;
    // Pixel counts run from 0 to 16; scale them into [0, 1].
    all.scale_inputs(1.0 / 16.0);
    // The `digits` example's split: the same shuffle (seed 0), the test fifth never trained on.
    let (train, test) = all.split(0.2, 0);
    if !quiet {
        println!(
            "digits_cnn: {} training and {} test images, model `DigitsCnn` with {} parameters",
            train.len(),
            test.len(),
            digits_cnn::PARAM_COUNT
        );
    }
    let mut model = DigitsCnn::new(1);
    let history = fit(
        &mut model,
        &train,
        &FitOptions {
            epochs,
            batch_size: 32,
            validation: Validation::Split(0.1),
            verbosity: if quiet {
                Verbosity::Quiet
            } else {
                Verbosity::Auto
            },
            ..FitOptions::default()
        },
    )?;
    let result = evaluate(&model, &test, 256)?;
    let accuracy = result.accuracy().unwrap_or(0.0);
    if !quiet {
        let last = history.last().map_or(0.0, |e| e.samples_per_second);
        println!(
            "test loss {:.4} ({} of {} right); training ran at {last:.0} images/s",
            result.loss, result.correct, result.scored
        );
        println!("test accuracy {:.2}%", 100.0 * accuracy);
    }
    Ok(accuracy)
}

fn main() -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    run(30, false)?;
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
