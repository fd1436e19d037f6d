//! An all-convolutional network with batch norm on MNIST (`examples/mnist_allconv.nnc`):
//! three 3×3 convolutions, the last two strided, each followed by batch norm and relu, then a
//! 1×1 convolution to ten class maps and global average pooling. Batch norm's running
//! statistics are the model's state: training normalises with each batch's statistics and
//! moves the running ones, and the test accuracy is measured in inference mode with the running
//! ones, so a wrong running update shows as a test accuracy far below the training accuracy.
//!
//! Reads MNIST like the `mnist` example. Run with
//! `cargo run --release --example mnist_allconv [DIR]`.

use nnc::runtime::schedule::Cosine;
use nnc::train::{FitOptions, Validation};
use std::error::Error;

#[path = "support/mnist.rs"]
mod mnist_support;

nnc::include_model!("examples/mnist_allconv.nnc");

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, train, test) = mnist_support::load_or_exit();
    println!(
        "mnist_allconv: {} training and {} test images from {}, model `AllConv` with {} parameters",
        train.len(),
        test.len(),
        dir.display(),
        all_conv::PARAM_COUNT
    );
    let epochs = 3;
    let schedule = Cosine {
        base: 2e-3,
        min: 1e-4,
        period: epochs as u64,
    };
    let options = FitOptions {
        epochs,
        batch_size: 64,
        schedule: Some(&schedule),
        validation: Validation::Split(0.1),
        ..FitOptions::default()
    };
    mnist_support::fit_and_report(&mut AllConv::new(0), &train, &test, &options)
}
