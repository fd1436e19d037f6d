//! The main example: compile the Iris model written in `examples/iris.nnc`, train it on
//! `data/iris.csv` (kept in the repository), and report loss per epoch and test accuracy.
//!
//! Run with `cargo run --release --example iris`.

use nnc::runtime::Rng;
use std::error::Error;

// Compiles examples/iris.nnc at build time into `Iris` and `IrisWorkspace`.
nnc::include_model!("examples/iris.nnc");

const FEATURES: usize = 4;
const EPOCHS: usize = 100;
const BATCH: usize = 16;

struct Dataset {
    features: Vec<f32>,
    labels: Vec<u32>,
}

impl Dataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn subset(&self, rows: &[usize]) -> Dataset {
        let features = rows
            .iter()
            .flat_map(|&r| &self.features[r * FEATURES..(r + 1) * FEATURES])
            .copied()
            .collect();
        Dataset {
            features,
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
        }
    }
}

fn load(path: &str) -> Result<Dataset, Box<dyn Error>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for (line, record) in reader.records().enumerate() {
        let record = record?;
        let at = |column: usize| format!("{path}, line {}, column {}", line + 2, column + 1);
        for column in 0..FEATURES {
            let cell = record
                .get(column)
                .ok_or_else(|| format!("{}: missing value", at(column)))?;
            features.push(
                cell.trim()
                    .parse::<f32>()
                    .map_err(|e| format!("{}: `{cell}`: {e}", at(column)))?,
            );
        }
        let cell = record
            .get(FEATURES)
            .ok_or_else(|| format!("{}: missing class", at(FEATURES)))?;
        let label: u32 = cell
            .trim()
            .parse()
            .map_err(|e| format!("{}: `{cell}`: {e}", at(FEATURES)))?;
        if label >= 3 {
            return Err(format!("{}: class {label} is not 0, 1 or 2", at(FEATURES)).into());
        }
        labels.push(label);
    }
    Ok(Dataset { features, labels })
}

/// Scales every feature to zero mean and unit variance, using statistics of `train` only.
fn standardize(train: &mut Dataset, test: &mut Dataset) {
    for f in 0..FEATURES {
        let column = || train.features.iter().skip(f).step_by(FEATURES);
        let mean = column().sum::<f32>() / train.len() as f32;
        let var = column().map(|v| (v - mean).powi(2)).sum::<f32>() / train.len() as f32;
        let std = var.sqrt().max(1e-6);
        for data in [&mut *train, &mut *test] {
            for v in data.features.iter_mut().skip(f).step_by(FEATURES) {
                *v = (*v - mean) / std;
            }
        }
    }
}

fn accuracy(model: &Iris, ws: &mut IrisWorkspace, data: &Dataset) -> Result<f32, nnc::Error> {
    let mut correct = 0;
    for (x, labels) in data
        .features
        .chunks(FEATURES * BATCH)
        .zip(data.labels.chunks(BATCH))
    {
        let probs = model.predict(ws, x)?;
        for (p, &y) in probs.chunks(3).zip(labels) {
            let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
            correct += usize::from(best == y as usize);
        }
    }
    Ok(correct as f32 / data.len() as f32)
}

fn main() -> Result<(), Box<dyn Error>> {
    let all = load(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"))?;
    // A fixed 80/20 split: the same shuffle every run.
    let mut rows: Vec<usize> = (0..all.len()).collect();
    let mut rng = Rng::new(2024);
    rng.shuffle(&mut rows);
    let cut = all.len() * 4 / 5;
    let (mut train, mut test) = (all.subset(&rows[..cut]), all.subset(&rows[cut..]));
    standardize(&mut train, &mut test);
    println!(
        "iris: {} training and {} test samples, model `Iris` with {} parameters",
        train.len(),
        test.len(),
        iris::PARAM_COUNT
    );

    let mut model = Iris::new(7);
    let mut ws = model.workspace(BATCH);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut x, mut y) = (
        Vec::with_capacity(BATCH * FEATURES),
        Vec::with_capacity(BATCH),
    );
    for epoch in 1..=EPOCHS {
        rng.shuffle(&mut order);
        let mut total = 0.0;
        for batch in order.chunks(BATCH) {
            x.clear();
            y.clear();
            for &r in batch {
                x.extend_from_slice(&train.features[r * FEATURES..(r + 1) * FEATURES]);
                y.push(train.labels[r]);
            }
            total += model.train_step(&mut ws, &x, &y)? * batch.len() as f32;
        }
        if epoch % 10 == 0 || epoch == 1 {
            println!(
                "epoch {epoch:3}  loss {:.4}  train accuracy {:.1}%",
                total / train.len() as f32,
                100.0 * accuracy(&model, &mut ws, &train)?
            );
        }
    }
    let test_accuracy = accuracy(&model, &mut ws, &test)?;
    println!(
        "test accuracy: {:.1}% ({} of {})",
        100.0 * test_accuracy,
        (test_accuracy * test.len() as f32).round(),
        test.len()
    );
    Ok(())
}
