//! What threads buy, kernel by kernel: each kernel at 1 and 2 threads over sizes on both sides
//! of its threshold, plus the cost of handing a job to the workers. The thresholds in
//! `kernels/exec.rs` and `kernels/dense.rs` come from this benchmark (ARCHITECTURE.md,
//! "Threads", has the figures).
//!
//! ```text
//! taskset -c 0,1 cargo bench -p nnc-runtime --bench threads
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nnc_runtime::kernels::{
    act_forward, add, dense_backward_weight, dense_forward, gemm_scratch_len,
};
use nnc_runtime::{Act, Adam, Exec, Mode, Optimizer, Rng};

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0; len];
    Rng::new(seed).fill_uniform(-1.0, 1.0, &mut v);
    v
}

const THREADS: [usize; 2] = [1, 2];

fn bench_dispatch(c: &mut Criterion) {
    let exec = Exec::new(2);
    c.bench_function("exec_run_2_tasks_empty", |b| {
        b.iter(|| {
            exec.run(2, &|t| {
                black_box(t);
            })
        })
    });
}

fn bench_dense(c: &mut Criterion) {
    // Scratch for the packed products on the most threads measured.
    let mut scratch = vec![0.0f32; 2 * gemm_scratch_len(usize::MAX, usize::MAX)];
    let mut group = c.benchmark_group("dense_forward_784x128");
    let (inputs, outputs) = (784, 128);
    let w = random(outputs * inputs, 1);
    let bias = random(outputs, 2);
    for threads in THREADS {
        let exec = Exec::new(threads);
        for batch in [1, 2, 4, 8, 16, 64, 1024] {
            let x = random(batch * inputs, 3);
            let mut y = vec![0.0f32; batch * outputs];
            let id = BenchmarkId::new(format!("t{threads}"), batch);
            group.bench_function(id, |b| {
                b.iter(|| {
                    dense_forward(
                        &exec,
                        Mode::Infer,
                        batch,
                        inputs,
                        outputs,
                        black_box(&x),
                        &w,
                        Some(&bias),
                        Act::Relu,
                        &mut y,
                        &mut scratch,
                    )
                })
            });
        }
    }
    group.finish();
    // A single sample's product (a generation step) splits its outputs instead of its rows;
    // these sizes bracket `MIN_MATVEC_MACS` (inputs x outputs multiply-adds).
    let mut group = c.benchmark_group("dense_forward_batch1");
    for (inputs, outputs) in [(64, 64), (64, 128), (128, 128), (128, 512), (512, 128)] {
        let w = random(outputs * inputs, 1);
        let x = random(inputs, 3);
        let mut y = vec![0.0f32; outputs];
        for threads in THREADS {
            let exec = Exec::new(threads);
            let id = BenchmarkId::new(format!("t{threads}"), format!("{inputs}x{outputs}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    dense_forward(
                        &exec,
                        Mode::Infer,
                        1,
                        inputs,
                        outputs,
                        black_box(&x),
                        &w,
                        None,
                        Act::Identity,
                        &mut y,
                        &mut scratch,
                    )
                })
            });
        }
    }
    group.finish();
    let mut group = c.benchmark_group("dense_backward_weight_784x128");
    for threads in THREADS {
        let exec = Exec::new(threads);
        for batch in [1, 2, 4, 32, 1024] {
            let x = random(batch * inputs, 3);
            let gz = random(batch * outputs, 4);
            let mut gw = vec![0.0f32; outputs * inputs];
            let id = BenchmarkId::new(format!("t{threads}"), batch);
            group.bench_function(id, |b| {
                b.iter(|| {
                    dense_backward_weight(
                        &exec,
                        batch,
                        inputs,
                        outputs,
                        &gz,
                        &x,
                        &mut gw,
                        &mut scratch,
                    )
                })
            });
        }
    }
    group.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise");
    for threads in THREADS {
        let exec = Exec::new(threads);
        for len in [4096, 16384, 65536, 262144] {
            let (a, bv) = (random(len, 5), random(len, 6));
            let mut out = vec![0.0f32; len];
            group.bench_function(BenchmarkId::new(format!("add_t{threads}"), len), |b| {
                b.iter(|| add(&exec, black_box(&a), &bv, &mut out))
            });
            group.bench_function(BenchmarkId::new(format!("tanh_t{threads}"), len), |b| {
                b.iter(|| act_forward(&exec, Act::Tanh, black_box(&a), &mut out))
            });
        }
    }
    group.finish();
}

fn bench_adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam");
    for threads in THREADS {
        let exec = Exec::new(threads);
        for len in [8192, 32768, 101_770] {
            let grads = random(len, 7);
            let mut params = random(len, 8);
            let mut adam = Adam::new(len, Default::default());
            group.bench_function(BenchmarkId::new(format!("t{threads}"), len), |b| {
                b.iter(|| adam.step(&exec, &mut params, black_box(&grads)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20);
    targets = bench_dispatch, bench_dense, bench_elementwise, bench_adam
}
criterion_main!(benches);
