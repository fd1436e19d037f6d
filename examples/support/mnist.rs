//! What the MNIST examples share (`mnist`, `lenet` and `mnist_allconv`): where they find their
//! data, and training with a report of the test figures.
//! MNIST is not kept in the repository (11 MB): the four IDX files (gzipped or not) are read
//! from the directory given as the first argument, else from `$NNC_DATA/mnist` or `$NNC_DATA`,
//! else from `../shared/data/mnist`.

use nnc::runtime::Model;
use nnc::train::data::{mnist, Split};
use nnc::train::{evaluate, fit, Dataset, FitOptions};
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

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

/// The training and test sets from the directory the command line names (see [`data_dir`]),
/// or exits with status 2 and a message saying which files are needed.
pub fn load_or_exit() -> (PathBuf, Dataset<f32>, Dataset<f32>) {
    let dir = data_dir(std::env::args().nth(1));
    match (mnist(&dir, Split::Train), mnist(&dir, Split::Test)) {
        (Ok(train), Ok(test)) => (dir, train, test),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            eprintln!(
                "help: pass the directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz, or set NNC_DATA"
            );
            std::process::exit(2);
        }
    }
}

/// Trains `model` with `options`, then prints the wall time, the average images per second,
/// the test loss, and last the test accuracy on a line of its own.
pub fn fit_and_report<M: Model<Elem = f32>>(
    model: &mut M,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
    options: &FitOptions<'_, f32>,
) -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let history = fit(model, train, options)?;
    let wall = start.elapsed().as_secs_f64();
    let result = evaluate(model, test, 1000)?;
    let speed = history.iter().map(|e| e.samples_per_second).sum::<f64>() / history.len() as f64;
    println!(
        "trained in {wall:.1} s at {speed:.0} images/s on average; test loss {:.4} ({} of {} right)",
        result.loss, result.correct, result.scored
    );
    println!(
        "test accuracy {:.2}%",
        100.0 * result.accuracy().unwrap_or(0.0)
    );
    Ok(())
}
