//! The classic Keras MNIST example: 784 → dense 128 relu → dropout 0.2 → dense 10 softmax,
//! Adam, sparse categorical cross-entropy, 5 epochs of batches of 32, written in
//! `examples/mnist.nnc`.
//!
//! MNIST is not kept in the repository (11 MB). The example reads the four IDX files (gzipped
//! or not) from the directory given as its first argument, else from `$NNC_DATA/mnist` or
//! `$NNC_DATA`, else from `../shared/data/mnist`.
//!
//! Run with `cargo run --release --example mnist [DIR]`.

use nnc::train::data::{mnist, Split};
use nnc::train::{evaluate, fit, FitOptions, Validation};
use std::error::Error;
use std::path::PathBuf;

nnc::include_model!("examples/mnist.nnc");

/// Where the MNIST files are: the argument, `$NNC_DATA`, or the shared data folder.
pub fn data_dir(argument: Option<String>) -> PathBuf {
    if let Some(dir) = argument {
        return PathBuf::from(dir);
    }
    if let Some(data) = std::env::var_os("NNC_DATA") {
        let data = PathBuf::from(data);
        let nested = data.join("mnist");
        return if nested.is_dir() { nested } else { data };
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = data_dir(std::env::args().nth(1));
    let (train, test) = match (mnist(&dir, Split::Train), mnist(&dir, Split::Test)) {
        (Ok(train), Ok(test)) => (train, test),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            eprintln!(
                "help: pass the directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz, or set NNC_DATA"
            );
            std::process::exit(2);
        }
    };
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
