//! Criterion benchmarks of the MNIST workflow: one training epoch of the Keras MNIST model
//! (`examples/mnist.nnc`) through `nnc::train::fit` at batch 32 and 128, and single-sample
//! inference latency.
//!
//! The epoch runs on the real 60,000 training images when `../shared/data/mnist` (or
//! `$NNC_DATA/mnist`) holds them, and otherwise on 60,000 synthetic images of the same size,
//! which costs the same arithmetic; the benchmark says which it used.
//!
//! Run with `cargo bench -p nnc-tests --bench mnist`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnc::runtime::Rng;
use nnc::train::data::{mnist, Split};
use nnc::train::{fit, Column, Dataset, FitOptions, Verbosity};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

nnc::include_model!("examples/mnist.nnc");

fn training_data() -> Dataset<f32> {
    let dir = std::env::var_os("NNC_DATA")
        .map(|d| PathBuf::from(d).join("mnist"))
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/mnist"
            ))
        });
    match mnist(&dir, Split::Train) {
        Ok(data) => {
            eprintln!("mnist bench: the real training set from {}", dir.display());
            data
        }
        Err(e) => {
            eprintln!("mnist bench: synthetic images ({e})");
            let mut rng = Rng::new(0);
            let n = 60_000;
            let x = (0..n * 784).map(|_| rng.uniform::<f32>(0.0, 1.0)).collect();
            let y = (0..n).map(|_| rng.below(10) as u32).collect();
            Dataset::supervised(x, &[784], Column::labels(y, 10).expect("labels below 10"))
                .expect("consistent columns")
        }
    }
}

fn epoch(c: &mut Criterion) {
    let data = training_data();
    let mut group = c.benchmark_group("mnist_epoch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(data.len() as u64));
    for batch_size in [32, 128] {
        group.bench_with_input(
            BenchmarkId::from_parameter(batch_size),
            &batch_size,
            |b, &batch_size| {
                let mut model = Mnist::new(0);
                let options = FitOptions {
                    epochs: 1,
                    batch_size,
                    verbosity: Verbosity::Quiet,
                    ..FitOptions::default()
                };
                b.iter(|| black_box(fit(&mut model, &data, &options).expect("training runs")));
            },
        );
    }
    group.finish();
}

fn latency(c: &mut Criterion) {
    let model = Mnist::new(0);
    let mut ws = model.workspace(1);
    let mut rng = Rng::new(1);
    let image: Vec<f32> = (0..784).map(|_| rng.uniform::<f32>(0.0, 1.0)).collect();
    c.bench_function("mnist_predict_1", |b| {
        b.iter(|| {
            let p = model
                .predict(&mut ws, black_box(&image))
                .expect("one image");
            black_box(p[0])
        })
    });
}

criterion_group!(benches, epoch, latency);
criterion_main!(benches);
