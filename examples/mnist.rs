//! The classic Keras MNIST example: 784 → dense 128 relu → dropout 0.2 → dense 10 softmax,
//! Adam, sparse categorical cross-entropy, 5 epochs of batches of 32, written in
//! `examples/mnist.nnc`.
//!
//! MNIST is not kept in the repository (11 MB). The example reads the four IDX files (gzipped
//! or not) from the directory given as its first argument, else from `$NNC_DATA/mnist` or
//! `$NNC_DATA`, else from `../shared/data/mnist`.
//!
//! Run with `cargo run --release --example mnist [DIR]`.

use nnc::train::{FitOptions, Validation};
use std::error::Error;

#[path = "support/mnist.rs"]
mod mnist_support;

nnc::include_model!("examples/mnist.nnc");

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, train, test) = mnist_support::load_or_exit();
    println!(
        "mnist: {} training and {} test images from {}, model `Mnist` with {} parameters",
        train.len(),
        test.len(),
        dir.display(),
        mnist::PARAM_COUNT
    );
    let options = FitOptions {
        epochs: 5,
        batch_size: 32,
        validation: Validation::Split(0.1),
        ..FitOptions::default()
    };
    mnist_support::fit_and_report(&mut Mnist::new(0), &train, &test, &options)
}
