//! Handwritten digits, 8×8 pixels, from `data/digits.csv.gz` (kept in the repository), read as
//! `[1, 8, 8]` images by the small convolutional network of `examples/digits_cnn.nnc`, on the
//! same fixed 80/20 split as the `digits` example's MLP (10% of the training part held out for
//! validation), then scored on the test part. Small enough for the test suite to train it.
//!
//! Run with `cargo run --release --example digits_cnn`.

use nnc::train::{evaluate, fit, FitOptions, Validation, Verbosity};
use std::error::Error;

#[path = "support/digits.rs"]
mod digits_data;

nnc::include_model!("examples/digits_cnn.nnc");

/// Trains for `epochs` epochs and returns the test accuracy, printing progress unless `quiet`.
pub fn run(epochs: usize, quiet: bool) -> Result<f64, Box<dyn Error>> {
    let (train, test) = digits_data::split()?;
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
