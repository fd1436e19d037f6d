//! Criterion benchmarks of the kernels that dominate a training step of a small MLP
//! (784-128-10 on MNIST-sized batches), and the forward pass of each convolution of the CNN
//! examples. Kept short so the whole run takes about a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nnc_runtime::kernels::{
    act_backward, act_forward, attention_backward, attention_mix, attention_probs,
    attention_scratch_len, batch_matmul, conv2d, dense_backward_input, dense_backward_weight,
    dense_forward, embedding, embedding_backward, gemm, gemm_scratch_len, layer_norm,
    layer_norm_backward, layer_norm_scale_grad, log_softmax, softmax, Conv2d,
};
use nnc_runtime::Exec;
use nnc_runtime::{Act, Adam, Mode, Optimizer, Rng};

/// One thread's scratch for any dense layer's packed products.
fn gemm_scratch() -> Vec<f32> {
    vec![0.0; gemm_scratch_len(usize::MAX, usize::MAX)]
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0; len];
    Rng::new(seed).fill_uniform(-1.0, 1.0, &mut v);
    v
}

fn bench_gemm(c: &mut Criterion) {
    let (k, n) = (784, 128);
    let w = random(n * k, 1);
    for m in [64, 32] {
        let x = random(m * k, 2);
        let mut y = vec![0.0f32; m * n];
        c.bench_function(&format!("gemm_f32_{m}x{k}x{n}"), |b| {
            b.iter(|| {
                // x[m, k] · w[n, k]ᵀ, the product inside a dense layer.
                gemm(
                    Exec::serial(),
                    m,
                    k,
                    n,
                    1.0,
                    black_box(&x),
                    k as isize,
                    1,
                    black_box(&w),
                    1,
                    k as isize,
                    0.0,
                    &mut y,
                    n as isize,
                    1,
                );
                black_box(&y);
            })
        });
    }
}

fn bench_dense(c: &mut Criterion) {
    let mut scratch = gemm_scratch();
    let (inputs, outputs) = (784, 128);
    let w = random(outputs * inputs, 3);
    let bias = random(outputs, 4);
    for batch in [1, 32] {
        let x = random(batch * inputs, 5);
        let mut y = vec![0.0f32; batch * outputs];
        c.bench_function(&format!("dense_forward_relu_b{batch}_784x128"), |b| {
            b.iter(|| {
                dense_forward(
                    Exec::serial(),
                    Mode::Infer,
                    batch,
                    inputs,
                    outputs,
                    black_box(&x),
                    black_box(&w),
                    Some(&bias),
                    Act::Relu,
                    &mut y,
                    &mut scratch,
                );
                black_box(&y);
            })
        });
        let gz = random(batch * outputs, 6);
        let mut gx = vec![0.0f32; batch * inputs];
        let mut gw = vec![0.0f32; outputs * inputs];
        c.bench_function(&format!("dense_backward_input_b{batch}_784x128"), |b| {
            b.iter(|| {
                dense_backward_input(
                    Exec::serial(),
                    batch,
                    inputs,
                    outputs,
                    black_box(&gz),
                    &w,
                    &mut gx,
                    &mut scratch,
                );
                black_box(&gx);
            })
        });
        c.bench_function(&format!("dense_backward_weight_b{batch}_784x128"), |b| {
            b.iter(|| {
                dense_backward_weight(
                    Exec::serial(),
                    batch,
                    inputs,
                    outputs,
                    black_box(&gz),
                    &x,
                    &mut gw,
                    &mut scratch,
                );
                black_box(&gw);
            })
        });
    }
}

/// The dense kernels against the `matrixmultiply` products they replaced (the same `gemm` calls,
/// which allocate a packing buffer each time), at training batch sizes.
fn bench_dense_vs_gemm(c: &mut Criterion) {
    let mut scratch = gemm_scratch();
    let mut group = c.benchmark_group("dense_vs_gemm");
    group
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200));
    // The MLP's layers at training batches, then the small GPT's (nanoGPT's Tiny Shakespeare
    // recipe: batch 12 of 64 positions, width 128, vocabulary 65).
    let mlp = [(784, 128), (128, 10)].map(|shape| (shape, &[32, 64, 128, 1024][..]));
    let gpt = [(128, 384), (128, 128), (128, 512), (512, 128), (128, 65)].map(|s| (s, &[768][..]));
    // The LSTM benchmark's recurrent product per step (hidden 128, four gates, a block of 16
    // samples): `h·W_hhᵀ` is the forward of 128 -> 512, and the same product with `W_hhᵀ` stored
    // row-major is the input gradient of 512 -> 128. Alone, the second took 18.8 µs against
    // 30.5 µs; inside the scan, with a transposed copy of `W_hh` made per block of samples, the
    // forward products fell from 20.7 % to 17.2 % of an `lstm_train` step on one core but the
    // copy took 4.6 %, so the scan keeps the dot products.
    let lstm = [(128, 512), (512, 128)].map(|s| (s, &[16][..]));
    for ((inputs, outputs), batches) in mlp.into_iter().chain(gpt).chain(lstm) {
        let w = random(outputs * inputs, 11);
        let bias = random(outputs, 12);
        for &batch in batches {
            let x = random(batch * inputs, 13);
            let gz = random(batch * outputs, 14);
            let (i, o) = (inputs as isize, outputs as isize);
            let mut y = vec![0.0f32; batch * outputs];
            let mut gx = vec![0.0f32; batch * inputs];
            let mut gw = vec![0.0f32; outputs * inputs];
            let id =
                |kernel: &str, path: &str| format!("{kernel}_{inputs}x{outputs}_b{batch}/{path}");
            group.bench_function(id("forward", "nnc"), |b| {
                b.iter(|| {
                    dense_forward(
                        Exec::serial(),
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
                    );
                    black_box(&y);
                })
            });
            group.bench_function(id("forward", "gemm"), |b| {
                b.iter(|| {
                    gemm(
                        Exec::serial(),
                        batch,
                        inputs,
                        outputs,
                        1.0,
                        black_box(&x),
                        i,
                        1,
                        &w,
                        1,
                        i,
                        0.0,
                        &mut y,
                        o,
                        1,
                    );
                    bias_add_relu(outputs, &bias, &mut y);
                    black_box(&y);
                })
            });
            group.bench_function(id("backward_input", "nnc"), |b| {
                b.iter(|| {
                    dense_backward_input(
                        Exec::serial(),
                        batch,
                        inputs,
                        outputs,
                        black_box(&gz),
                        &w,
                        &mut gx,
                        &mut scratch,
                    );
                    black_box(&gx);
                })
            });
            group.bench_function(id("backward_input", "gemm"), |b| {
                b.iter(|| {
                    gemm(
                        Exec::serial(),
                        batch,
                        outputs,
                        inputs,
                        1.0,
                        black_box(&gz),
                        o,
                        1,
                        &w,
                        i,
                        1,
                        0.0,
                        &mut gx,
                        i,
                        1,
                    );
                    black_box(&gx);
                })
            });
            group.bench_function(id("backward_weight", "nnc"), |b| {
                b.iter(|| {
                    dense_backward_weight(
                        Exec::serial(),
                        batch,
                        inputs,
                        outputs,
                        black_box(&gz),
                        &x,
                        &mut gw,
                        &mut scratch,
                    );
                    black_box(&gw);
                })
            });
            group.bench_function(id("backward_weight", "gemm"), |b| {
                b.iter(|| {
                    gemm(
                        Exec::serial(),
                        outputs,
                        batch,
                        inputs,
                        1.0,
                        black_box(&gz),
                        1,
                        o,
                        &x,
                        i,
                        1,
                        0.0,
                        &mut gw,
                        i,
                        1,
                    );
                    black_box(&gw);
                })
            });
        }
    }
    group.finish();
}

/// The epilogue the `gemm` forward path needed after the product.
fn bias_add_relu(outputs: usize, bias: &[f32], y: &mut [f32]) {
    for row in y.chunks_exact_mut(outputs) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

fn bench_elementwise(c: &mut Criterion) {
    let x = random(32 * 128, 7);
    let mut y = vec![0.0f32; 32 * 128];
    c.bench_function("act_forward_relu_32x128", |b| {
        b.iter(|| {
            act_forward(Exec::serial(), Act::Relu, black_box(&x), &mut y);
            black_box(&y);
        })
    });
    // The transcendental activations, over char_mlp's hidden layer (batch 128, 64 units) and
    // a softmax over its 65 classes.
    for (name, act) in [
        ("sigmoid", Act::Sigmoid),
        ("tanh", Act::Tanh),
        ("gelu", Act::Gelu),
        ("gelu_tanh", Act::GeluTanh),
        ("elu", Act::Elu(1.0)),
        ("softplus", Act::Softplus),
    ] {
        let x = random(128 * 64, 9);
        let mut y = vec![0.0f32; 128 * 64];
        c.bench_function(&format!("act_forward_{name}_128x64"), |b| {
            b.iter(|| {
                act_forward(Exec::serial(), act, black_box(&x), &mut y);
                black_box(&y);
            })
        });
    }
    // The backward passes that read the activation's input (the two GELUs) evaluate more
    // functions per element than their forward passes: erf and exp for the exact form.
    for (name, act) in [("gelu", Act::Gelu), ("gelu_tanh", Act::GeluTanh)] {
        let x = random(128 * 64, 11);
        let gy = random(128 * 64, 12);
        let mut gx = vec![0.0f32; 128 * 64];
        c.bench_function(&format!("act_backward_{name}_128x64"), |b| {
            b.iter(|| {
                act_backward(Exec::serial(), act, black_box(&x), black_box(&gy), &mut gx);
                black_box(&gx);
            })
        });
    }
    let wide = random(128 * 65, 10);
    let mut q = vec![0.0f32; 128 * 65];
    c.bench_function("softmax_128x65", |b| {
        b.iter(|| {
            softmax(Exec::serial(), 128, 65, black_box(&wide), &mut q);
            black_box(&q);
        })
    });
    c.bench_function("log_softmax_128x65", |b| {
        b.iter(|| {
            log_softmax(Exec::serial(), 128, 65, black_box(&wide), &mut q);
            black_box(&q);
        })
    });
    let logits = random(32 * 10, 8);
    let mut p = vec![0.0f32; 32 * 10];
    c.bench_function("softmax_32x10", |b| {
        b.iter(|| {
            softmax(Exec::serial(), 32, 10, black_box(&logits), &mut p);
            black_box(&p);
        })
    });
}

fn bench_adam(c: &mut Criterion) {
    // 784·128 + 128 + 128·10 + 10 parameters: the 784-128-10 MLP; then the small GPT's
    // 804,096 (`examples/storyteller.nnc`), four streams of 3.2 MB, past this core's L2 cache.
    for len in [101_770, 804_096] {
        let mut params = random(len, 9);
        let grads = random(len, 10);
        let mut adam = Adam::with_defaults(len, 1e-3);
        c.bench_function(&format!("adam_step_{len}"), |b| {
            b.iter(|| {
                adam.step(Exec::serial(), &mut params, black_box(&grads));
                black_box(&params);
            })
        });
    }
}

/// Layer norm at the small GPT's shape (batch 12 of 64 positions, width 128): forward, the
/// input gradient and the scale's gradient.
fn bench_layer_norm(c: &mut Criterion) {
    let (rows, width, eps, e) = (768, 128, 1e-5, Exec::serial());
    let (x, g, gamma) = (
        random(rows * width, 1),
        random(rows * width, 2),
        random(width, 3),
    );
    let (mut y, mut gg) = (vec![0.0f32; rows * width], vec![0.0f32; width]);
    let mut group = c.benchmark_group("layer_norm_768x128");
    group.bench_function("forward", |b| {
        b.iter(|| layer_norm(e, rows, width, eps, black_box(&x), &gamma, None, &mut y))
    });
    group.bench_function("backward", |b| {
        b.iter(|| layer_norm_backward(e, rows, width, eps, &g, black_box(&x), &gamma, &mut y))
    });
    group.bench_function("scale_grad", |b| {
        b.iter(|| layer_norm_scale_grad(e, rows, width, eps, &g, black_box(&x), &mut gg))
    });
    group.finish();
}

/// The embedding of `examples/char_mlp.nnc` at batch 128: 1,024 ids into a 65 × 24 table, and
/// its table gradient (clearing the whole table, then adding the used rows), next to the
/// hidden layer's forward product that follows it in the same step.
/// Attention's products for 32 samples of 4 heads over 64 positions of 32 features: the
/// scores `q · kᵀ` and the weighted values `p · v`.
fn bench_batch_matmul(c: &mut Criterion) {
    let (count, t, d) = (32 * 4, 64, 32);
    let q = random(count * t * d, 11);
    let k = random(count * t * d, 12);
    let mut scores = vec![0.0f32; count * t * t];
    c.bench_function("batch_matmul_scores_128x64x32", |b| {
        b.iter(|| {
            batch_matmul(
                Exec::serial(),
                count,
                t,
                d,
                t,
                false,
                true,
                black_box(&q),
                &k,
                &mut scores,
            );
            black_box(&scores);
        })
    });
    let mut out = vec![0.0f32; count * t * d];
    c.bench_function("batch_matmul_values_128x64x64", |b| {
        b.iter(|| {
            batch_matmul(
                Exec::serial(),
                count,
                t,
                t,
                d,
                false,
                false,
                black_box(&scores),
                &q,
                &mut out,
            );
            black_box(&out);
        })
    });
}

fn bench_embedding(c: &mut Criterion) {
    let (vocab, dim, ids) = (65, 24, 128 * 8);
    let mut rng = Rng::new(11);
    let ids: Vec<u32> = (0..ids).map(|_| rng.below(vocab) as u32).collect();
    let table = random(vocab * dim, 12);
    let mut rows = vec![0.0f32; ids.len() * dim];
    c.bench_function("embedding_b128x8_65x24", |b| {
        b.iter(|| {
            embedding(Exec::serial(), dim, black_box(&ids), &table, &mut rows);
            black_box(&rows);
        })
    });
    let g = random(ids.len() * dim, 13);
    let mut g_table = vec![0.0f32; vocab * dim];
    c.bench_function("embedding_backward_b128x8_65x24", |b| {
        b.iter(|| {
            embedding_backward(Exec::serial(), dim, black_box(&ids), &g, &mut g_table);
            black_box(&g_table);
        })
    });
    let (x, w, bias) = (
        random(128 * 192, 14),
        random(256 * 192, 15),
        random(256, 16),
    );
    let mut h = vec![0.0f32; 128 * 256];
    let mut scratch = gemm_scratch();
    c.bench_function("dense_forward_tanh_b128_192x256", |b| {
        b.iter(|| {
            dense_forward(
                Exec::serial(),
                Mode::Infer,
                128,
                192,
                256,
                black_box(&x),
                &w,
                Some(&bias),
                Act::Tanh,
                &mut h,
                &mut scratch,
            );
            black_box(&h);
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// The convolutions of the CNN examples: (name, channels, size, out channels, kernel,
/// stride, padding).
const CONVS: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("lenet_c1", 1, 28, 6, 5, 1, 0),
    ("lenet_c2", 6, 12, 16, 5, 1, 0),
    ("allconv_c1", 1, 28, 8, 3, 1, 1),
    ("allconv_c2", 8, 28, 16, 3, 2, 1),
    ("allconv_c3", 16, 14, 32, 3, 2, 1),
    ("allconv_classes", 32, 7, 10, 1, 1, 0),
    ("digits_c1", 1, 8, 8, 3, 1, 1),
];

/// One sample's forward pass, on the calling thread (the figures behind the choice of method in
/// `kernels/conv.rs`).
fn bench_conv(c: &mut Criterion) {
    for &(name, channels, size, out, kernel, stride, padding) in CONVS {
        let geom = Conv2d {
            in_channels: channels,
            height: size,
            width: size,
            out_channels: out,
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 4],
            dilation: [1; 2],
            groups: 1,
        };
        let x = random(channels * size * size, 11);
        let w = random(out * geom.patch_len(), 12);
        let b = random(out, 13);
        let mut y = vec![0.0f32; out * geom.positions()];
        let mut scratch = vec![0.0f32; geom.scratch_len()];
        c.bench_function(&format!("conv2d_{name}"), |bench| {
            bench.iter(|| {
                conv2d(
                    Exec::serial(),
                    1,
                    &geom,
                    black_box(&x),
                    black_box(&w),
                    Some(&b),
                    Act::Relu,
                    &mut y,
                    &mut scratch,
                );
                black_box(&y);
            })
        });
    }
}

/// The causal attention of the small GPT (`storyteller`: batch 12, 64 positions, 4 heads of
/// 32), its three kernels on one thread.
fn bench_attention(c: &mut Criterion) {
    let (batch, steps, heads, head) = (12, 64, 4, 32);
    let model = heads * head;
    let scale = 1.0 / (head as f64).sqrt();
    let qkv = random(batch * steps * 3 * model, 21);
    let g = random(batch * steps * model, 22);
    let mut probs = vec![0.0f32; batch * heads * steps * steps];
    let mut out = vec![0.0f32; batch * steps * model];
    let mut dqkv = vec![0.0f32; qkv.len()];
    let mut scratch = vec![0.0f32; attention_scratch_len(steps, head)];
    let e = Exec::serial();
    let mut group = c.benchmark_group("attention_b12_t64_h4x32");
    group.bench_function("probs", |b| {
        b.iter(|| {
            attention_probs(
                e,
                batch,
                steps,
                heads,
                head,
                true,
                scale,
                black_box(&qkv),
                &mut probs,
                &mut scratch,
            );
            black_box(&probs);
        })
    });
    group.bench_function("mix", |b| {
        b.iter(|| {
            attention_mix(
                e,
                batch,
                steps,
                heads,
                head,
                true,
                black_box(&probs),
                &qkv,
                &mut out,
                &mut scratch,
            );
            black_box(&out);
        })
    });
    group.bench_function("backward", |b| {
        b.iter(|| {
            attention_backward(
                e,
                batch,
                steps,
                heads,
                head,
                true,
                scale,
                black_box(&probs),
                &qkv,
                &g,
                None,
                &mut dqkv,
                &mut scratch,
            );
            black_box(&dqkv);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_gemm, bench_dense, bench_dense_vs_gemm, bench_elementwise, bench_adam,
        bench_layer_norm, bench_embedding, bench_batch_matmul, bench_attention, bench_conv
}
criterion_main!(benches);
