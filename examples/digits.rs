//! Handwritten digits, 8×8 pixels, from `data/digits.csv.gz` (kept in the repository): an MLP
//! written in `examples/digits.nnc`, trained with `nnc::train::fit` on a fixed 80/20 split
//! (10% of the training part held out for validation), then scored on the test part.
//!
//! Run with `cargo run --release --example digits`.

use nnc::train::checkpoint::{self, SaveOptions};
use nnc::train::{evaluate, fit, Dataset, FitOptions, Validation};
use std::error::Error;

#[path = "support/digits.rs"]
mod digits_data;

nnc::include_model!("examples/digits.nnc");

/// The test accuracy reached after `epochs` epochs, printing progress unless `quiet`.
pub fn run(epochs: usize, quiet: bool) -> Result<f64, Box<dyn Error>> {
    let (model, test) = train(epochs, quiet)?;
    Ok(evaluate(&model, &test, 256)?.accuracy().unwrap_or(0.0))
}

/// Trains for `epochs` epochs and reports the test figures; returns the model and the test set.
fn train(epochs: usize, quiet: bool) -> Result<(Digits, Dataset<f32>), Box<dyn Error>> {
    let (train, test) = digits_data::split()?;
    if !quiet {
        println!(
            "digits: {} training and {} test images, model `Digits` with {} parameters",
            train.len(),
            test.len(),
            digits::PARAM_COUNT
        );
    }
    let mut model = Digits::new(1);
    let history = fit(
        &mut model,
        &train,
        &FitOptions {
            epochs,
            batch_size: 32,
            validation: Validation::Split(0.1),
            verbosity: if quiet {
                nnc::train::Verbosity::Quiet
            } else {
                nnc::train::Verbosity::Auto
            },
            ..FitOptions::default()
        },
    )?;
    let result = evaluate(&model, &test, 256)?;
    if !quiet {
        let last = history.last().map_or(0.0, |e| e.samples_per_second);
        println!(
            "test accuracy: {:.2}% ({} of {}), test loss {:.4}; training ran at {:.0} samples/s",
            100.0 * result.accuracy().unwrap_or(0.0),
            result.correct,
            result.scored,
            result.loss,
            last
        );
    }
    Ok((model, test))
}

/// Trains, then saves the model as a safetensors checkpoint and loads it into a fresh model,
/// which must score exactly the same.
fn main() -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    let (model, test) = train(40, false)?;
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/digits.safetensors"
    ));
    checkpoint::save(
        &model,
        path,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )?;
    let mut restored = Digits::new(0);
    checkpoint::load(&mut restored, path)?;
    let again = evaluate(&restored, &test, 256)?;
    println!(
        "saved to {} and reloaded: test accuracy {:.2}%",
        path.display(),
        100.0 * again.accuracy().unwrap_or(0.0)
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
