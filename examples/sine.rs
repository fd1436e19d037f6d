//! Regression on a well-known function: a small tanh network learns `sin(x)` on [-π, π] from
//! 1,000 samples with mean squared error, and reports its error on a fine grid it never saw.
//!
//! Run with `cargo run --release --example sine`.

use nnc::runtime::schedule::Cosine;
use nnc::train::{fit, predict, Column, Dataset, FitOptions};
use std::error::Error;
use std::f32::consts::PI;

nnc::include_model!("examples/sine.nnc");

/// `n` points evenly spaced on [-π, π] (with an offset, so that grids of different sizes do
/// not share points) and their sines.
fn grid(n: usize, offset: f32) -> Result<Dataset<f32>, nnc::train::Error> {
    let x: Vec<f32> = (0..n)
        .map(|i| -PI + 2.0 * PI * (i as f32 + offset) / n as f32)
        .collect();
    let y: Vec<f32> = x.iter().map(|x| x.sin()).collect();
    Dataset::supervised(x, &[1], Column::float(y, &[1]))
}

/// Trains for `epochs` epochs and returns the test grid's mean squared and largest absolute
/// errors.
pub fn run(epochs: usize, quiet: bool) -> Result<(f64, f64), Box<dyn Error>> {
    let train = grid(1000, 0.0)?;
    let test = grid(997, 0.5)?;
    let mut model = Sine::new(3);
    // Cosine annealing from the model's learning rate down to 1e-5 over the run: the large
    // early steps find the shape, the small late ones settle the error.
    let schedule = Cosine {
        base: 3e-3,
        min: 1e-5,
        period: epochs as u64,
    };
    fit(
        &mut model,
        &train,
        &FitOptions {
            epochs,
            batch_size: 32,
            schedule: Some(&schedule),
            verbosity: if quiet {
                nnc::train::Verbosity::Quiet
            } else {
                nnc::train::Verbosity::Lines
            },
            ..FitOptions::default()
        },
    )?;
    let predicted = predict(&model, &test, 256)?;
    let truth = match &test.targets[0] {
        Column::Float { values, .. } => values,
        Column::Ids { .. } => return Err("the test grid should hold float targets".into()),
    };
    let (mut squared, mut worst) = (0.0f64, 0.0f64);
    for (p, t) in predicted.iter().zip(truth) {
        let e = (p - t) as f64;
        squared += e * e;
        worst = worst.max(e.abs());
    }
    Ok((squared / truth.len() as f64, worst))
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let (mse, worst) = run(300, false)?;
    println!(
        "sin(x) on a 997-point test grid: mean squared error {mse:.2e}, largest error {worst:.4}"
    );
    Ok(())
}
