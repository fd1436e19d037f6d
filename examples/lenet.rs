//! LeNet-5 on MNIST: two 5×5 convolutions with relu and 2×2 max pooling, then dense layers of
//! 120, 84 and 10, trained with Adam for 10 epochs of batches of 64, the learning rate annealed
//! by a cosine from 1e-3 towards 1e-5 once per epoch (PyTorch's `CosineAnnealingLR` with
//! `T_max = 10`, so the last epoch runs at 3.4e-5). The model is the `lenet.nnc` fixture, so its
//! IR and generated code are the snapshots the tests keep. `bench/lenet_pytorch.py` is the
//! same training in PyTorch, for comparing wall times.
//!
//! MNIST is not kept in the repository. The example reads the four IDX files (gzipped or not)
//! from the directory given as its first argument, else from `$NNC_DATA/mnist` or `$NNC_DATA`,
//! else from `../shared/data/mnist`. It prints the loss, accuracy and images per second of
//! every epoch (its validation figures are the test set's, for reporting only: nothing is
//! chosen by them), the wall time, and last the test accuracy on a line of its own.
//!
//! Run with `cargo run --release --example lenet [DIR]`.

use nnc::runtime::schedule::Cosine;
use nnc::train::{FitOptions, Validation};
use std::error::Error;

#[path = "support/mnist.rs"]
mod mnist_support;

nnc::include_model!("tests/fixtures/ok/lenet.nnc");

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, train, test) = mnist_support::load_or_exit();
    println!(
        "lenet: {} training and {} test images from {}, model `LeNet` with {} parameters",
        train.len(),
        test.len(),
        dir.display(),
        le_net::PARAM_COUNT
    );
    let epochs = 10;
    let schedule = Cosine {
        base: 1e-3,
        min: 1e-5,
        period: epochs as u64,
    };
    let options = FitOptions {
        epochs,
        batch_size: 64,
        schedule: Some(&schedule),
        validation: Validation::Data(&test),
        ..FitOptions::default()
    };
    mnist_support::fit_and_report(&mut LeNet::new(0), &train, &test, &options)
}
