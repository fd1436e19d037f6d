//! The classic Keras MNIST example: 784 → dense 128 relu → dropout 0.2 → dense 10 softmax,
//! Adam, sparse categorical cross-entropy, 5 epochs of batches of 32, written in
//! `examples/mnist.nnc`.
//!
//! MNIST is not kept in the repository (11 MB). The example reads the four IDX files (gzipped
//! or not) from the directory given as its first argument, else from `$NNC_DATA/mnist` or
//! `$NNC_DATA`, else from `../shared/data/mnist`.
//!
//! Run with `cargo run --release --example mnist [DIR]`.

use nnc::train::{evaluate, fit, FitOptions, Validation};
use std::error::Error;

#[path = "support/mnist_files.rs"]
mod mnist_files;

nnc::include_model!("examples/mnist.nnc");

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, train, test) = mnist_files::load_or_exit();
    println!(
        "mnist: {} training and {} test images from {}, model `Mnist` with {} parameters",
        train.len(),
        test.len(),
        dir.display(),
        mnist::PARAM_COUNT
    );
    let mut model = Mnist::new(0);
    let history = fit(
        &mut model,
        &train,
        &FitOptions {
            epochs: 5,
            batch_size: 32,
            validation: Validation::Split(0.1),
            ..FitOptions::default()
        },
    )?;
    let result = evaluate(&model, &test, 1000)?;
    let speed: f64 =
        history.iter().map(|e| e.samples_per_second).sum::<f64>() / history.len() as f64;
    println!(
        "test accuracy: {:.2}% ({} of {}), test loss {:.4}; training ran at {:.0} samples/s on average",
        100.0 * result.accuracy().unwrap_or(0.0),
        result.correct,
        result.scored,
        result.loss,
        speed
    );
    Ok(())
}
