//! Every threaded kernel gives the same bits on 2, 3 and 7 threads as on one, over odd sizes
//! large enough to pass the kernels' thresholds (so the work really is split, unevenly, with
//! ranges that end mid-block): each kernel splits an output dimension rather than a sum, and on
//! block boundaries, so no element's arithmetic depends on the split. (`tests/threads.rs` at the
//! top of the workspace checks whole models, and that dropping a workspace joins its workers.)

mod common;

use common::ACTS_BUT_STEP;
use nnc_runtime::kernels::{
    accumulate, act_backward, act_backward_inplace, act_forward, add, add_assign,
    attention_backward, attention_mix, attention_probs, attention_scratch_len, attention_step,
    batch_matmul, batch_norm, batch_norm_backward, batch_norm_scale_grad, batch_norm_stats,
    bias_add, bias_backward, channel_sum, dense_backward_input, dense_backward_weight,
    dense_forward, gemm_scratch_len, gru_scan, gru_scan_backward, layer_norm, layer_norm_backward,
    layer_norm_scale_grad, log_softmax, log_softmax_backward, lstm_scan, lstm_scan_backward,
    matmul, mul, mul_inplace, recurrent_scratch_len, recurrent_weight_grad, rnn_scan,
    rnn_scan_backward, scale, softmax, softmax_backward, sub, Start, GRU_PLANES,
};
use nnc_runtime::{
    Act, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Aligned, Exec, Float, Mode, Optimizer,
    Rmsprop, RmspropConfig, Rng, Sgd, SgdConfig,
};

const THREADS: [usize; 3] = [2, 3, 7];

fn random<T: Float>(len: usize, seed: u64) -> Vec<T> {
    let mut v = vec![T::ZERO; len];
    Rng::new(seed).fill_uniform(-T::ONE, T::ONE, &mut v);
    v
}

/// Runs `kernel` into a NaN-filled output of `len` elements on one thread and on each thread
/// count of [`THREADS`], and asserts that every result has the same bits.
fn same_bits<T: Float>(what: &str, len: usize, kernel: impl Fn(&Exec, &mut [T])) {
    let run = |exec: &Exec| {
        let mut out = vec![T::from_f64(f64::NAN); len];
        kernel(exec, &mut out);
        out
    };
    let one = run(Exec::serial());
    assert!(
        one.iter().all(|v| !v.to_f64().is_nan()),
        "{what}: the kernel left part of its output unwritten"
    );
    for threads in THREADS {
        let many = run(&Exec::new(threads));
        let differ = one
            .iter()
            .zip(&many)
            .position(|(a, b)| a.to_f64().to_bits() != b.to_f64().to_bits());
        assert!(
            differ.is_none(),
            "{what} on {threads} threads: element {} is {} but {} on one thread",
            differ.unwrap_or(0),
            many[differ.unwrap_or(0)],
            one[differ.unwrap_or(0)]
        );
    }
}

/// Scratch for the packed products of a `k`-deep product with `n` columns on the most threads
/// of [`THREADS`].
fn scratch<T: Float>(n: usize, k: usize) -> Vec<T> {
    vec![T::ZERO; 7 * gemm_scratch_len(n, k)]
}

fn dense_kernels<T: Float>() {
    // Batches on both sides of the 8-row split grain and of the packed products' threshold;
    // widths that leave partial vectors, and a depth past one packed panel. A single sample
    // splits its outputs instead, into 2 to 7 tasks here, with rows that are not all aligned
    // alike. Past the threshold, a weight gradient keeps its home rows over several depth
    // passes (300x777 -> 130), one of few outputs is split into more tasks than its weight has
    // homes (301x259 -> 37), and one of more than 512 outputs is packed (257x33 -> 515). An
    // empty batch leaves every gradient of the weight zero, on every thread's rows.
    for (batch, inputs, outputs) in [
        (1, 301, 131),
        (1, 777, 130),
        (67, 301, 37),
        (9, 777, 130),
        (100, 301, 131),
        (203, 65, 19),
        (40, 129, 1),
        (301, 259, 37),
        (300, 777, 130),
        (257, 33, 515),
        (0, 777, 130),
    ] {
        let x = random::<T>(batch * inputs, 1);
        let w = random::<T>(outputs * inputs, 2);
        let b = random::<T>(outputs, 3);
        let gz = random::<T>(batch * outputs, 4);
        let what = format!("{batch}x{inputs}x{outputs}");
        // In training a batch of a few rows splits the weight's rows (the outputs' columns)
        // rather than the samples.
        let modes = [Mode::Train, Mode::Infer];
        for (act, mode) in [Act::Identity, Act::Relu, Act::Tanh, Act::Gelu]
            .into_iter()
            .flat_map(|act| modes.map(|mode| (act, mode)))
        {
            same_bits(
                &format!("dense_forward {act:?} {mode:?} {what}"),
                batch * outputs,
                |e, y| {
                    let scratch = &mut scratch(outputs, inputs);
                    let (x, w, b) = (&x, &w, Some(&b[..]));
                    dense_forward(e, mode, batch, inputs, outputs, x, w, b, act, y, scratch)
                },
            );
        }
        same_bits(
            &format!("dense_backward_input {what}"),
            batch * inputs,
            |e, gx| {
                let scratch = &mut scratch(inputs, outputs);
                dense_backward_input(e, batch, inputs, outputs, &gz, &w, gx, scratch)
            },
        );
        same_bits(
            &format!("dense_backward_weight {what}"),
            outputs * inputs,
            |e, gw| {
                let scratch = &mut scratch(inputs, batch);
                dense_backward_weight(e, batch, inputs, outputs, &gz, &x, gw, scratch)
            },
        );
        same_bits(&format!("bias_backward {what}"), inputs, |e, gb| {
            bias_backward(e, batch, inputs, &x, gb)
        });
        same_bits(&format!("bias_add {what}"), batch * inputs, |e, y| {
            bias_add(e, batch, inputs, &x, &random::<T>(inputs, 5), y)
        });
    }
    // A bias gradient wide enough to split its columns.
    let (batch, n) = (300, 1001);
    let gz = random::<T>(batch * n, 6);
    same_bits("bias_backward 300x1001", n, |e, gb| {
        bias_backward(e, batch, n, &gz, gb)
    });
    // 2-D products (a tied output projection reads its table transposed), each layout, with
    // rows past one packed block and a depth past one panel; 45 columns are split by column
    // among 2 tasks and by row among more, 150 by column among every count here.
    for (m, k, n) in [(301, 259, 45), (301, 259, 150)] {
        let a = random::<T>(m * k, 11);
        let bm = random::<T>(k * n, 12);
        for (ta, tb) in [(false, true), (false, false), (true, false), (true, true)] {
            let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
            let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
            same_bits(&format!("matmul {m}x{k}x{n} {ta} {tb}"), m * n, |e, c| {
                let scratch = &mut scratch(n, k);
                matmul(e, m, k, n, &a, rsa, csa, &bm, rsb, csb, c, n, scratch)
            });
        }
    }
    // Batched products (attention's shapes), each layout.
    let (count, m, k, n) = (37, 21, 33, 45);
    let a = random::<T>(count * m * k, 7);
    let bm = random::<T>(count * k * n, 8);
    for (ta, tb) in [(false, true), (false, false), (true, false), (true, true)] {
        same_bits(&format!("batch_matmul {ta} {tb}"), count * m * n, |e, c| {
            batch_matmul(e, count, m, k, n, ta, tb, &a, &bm, c)
        });
    }
}

#[test]
fn dense_kernels_give_the_same_bits_on_every_thread_count() {
    dense_kernels::<f32>();
    dense_kernels::<f64>();
}

fn element_wise<T: Float>() {
    // Above the element-wise threshold (32768 cheap operations per task) with a ragged end.
    let len = 200_003;
    let (a, b) = (random::<T>(len, 9), random::<T>(len, 10));
    let positive: Vec<T> = a.iter().map(|v| v.abs()).collect();
    same_bits("add", len, |e, o| add(e, &a, &b, o));
    same_bits("sub", len, |e, o| sub(e, &a, &b, o));
    same_bits("mul", len, |e, o| mul(e, &a, &b, o));
    same_bits("scale", len, |e, o| scale(e, &a, T::from_f64(0.3), o));
    same_bits("accumulate", len, |e, o| {
        o.copy_from_slice(&b);
        accumulate(e, &a, o)
    });
    same_bits("add_assign", len, |e, o| {
        o.copy_from_slice(&b);
        add_assign(e, o, &a)
    });
    same_bits("mul_inplace", len, |e, o| {
        o.copy_from_slice(&b);
        mul_inplace(e, &a, o)
    });
    for act in ACTS_BUT_STEP {
        same_bits(&format!("act_forward {act:?}"), len, |e, y| {
            act_forward(e, act, &a, y)
        });
        same_bits(&format!("act_backward {act:?}"), len, |e, g| {
            act_backward(e, act, &positive, &b, g)
        });
        same_bits(&format!("act_backward_inplace {act:?}"), len, |e, g| {
            g.copy_from_slice(&b);
            act_backward_inplace(e, act, &positive, g)
        });
    }
    // Row-wise kernels: 1111 rows of 65 classes.
    let (rows, n) = (1111, 65);
    let x = random::<T>(rows * n, 11);
    let gy = random::<T>(rows * n, 12);
    same_bits("softmax", rows * n, |e, y| softmax(e, rows, n, &x, y));
    same_bits("log_softmax", rows * n, |e, y| {
        log_softmax(e, rows, n, &x, y)
    });
    let mut y = vec![T::ZERO; rows * n];
    softmax(Exec::serial(), rows, n, &x, &mut y);
    same_bits("softmax_backward", rows * n, |e, g| {
        softmax_backward(e, rows, n, &y, &gy, g)
    });
    log_softmax(Exec::serial(), rows, n, &x, &mut y);
    same_bits("log_softmax_backward", rows * n, |e, g| {
        log_softmax_backward(e, rows, n, &y, &gy, g)
    });
}

fn batch_norm_kernels<T: Float>() {
    // Channels of images ([B, C, H·W], split by channel) and of features ([B, C], spread 1),
    // each over enough values to pass the threshold, with odd counts.
    for (batch, channels, spread) in [(37, 13, 199), (2003, 71, 1)] {
        let len = batch * channels * spread;
        let x = random::<T>(len, 21);
        let g = random::<T>(len, 22);
        let gamma = random::<T>(channels, 23);
        let beta = random::<T>(channels, 24);
        let running = (vec![T::ZERO; channels], vec![T::ONE; channels]);
        let stats_of = |e: &Exec, out: &mut [T]| {
            let (mean, var) = (&running.0, &running.1);
            batch_norm_stats(
                e,
                Mode::Train,
                batch,
                channels,
                spread,
                1e-5,
                &x,
                mean,
                var,
                out,
            )
        };
        same_bits("batch_norm_stats", 3 * channels, stats_of);
        let mut stats = vec![T::ZERO; 3 * channels];
        stats_of(Exec::serial(), &mut stats);
        same_bits("batch_norm", len, |e, y| {
            batch_norm(e, channels, spread, &x, &stats, &gamma, &beta, y)
        });
        same_bits("batch_norm_backward", len, |e, dx| {
            batch_norm_backward(e, batch, channels, spread, &g, &x, &stats, &gamma, dx)
        });
        same_bits("batch_norm_scale_grad", channels, |e, d| {
            batch_norm_scale_grad(e, channels, spread, &g, &x, &stats, d)
        });
        same_bits("channel_sum", channels, |e, d| {
            channel_sum(e, channels, spread, &g, d)
        });
    }
}

fn attention_kernels<T: Float>() {
    // 29 samples of 24 positions, 3 heads of 8: enough work to split the samples, unevenly.
    let (batch, steps, heads, head) = (29, 24, 3, 8);
    let model = heads * head;
    let qkv = random::<T>(batch * steps * 3 * model, 41);
    let g = random::<T>(batch * steps * model, 42);
    let mask: Vec<T> = random::<T>(batch * heads * steps * steps, 43)
        .into_iter()
        .map(|v| {
            if v.to_f64() > -0.6 {
                T::from_f64(1.25)
            } else {
                T::ZERO
            }
        })
        .collect();
    let per_thread = attention_scratch_len(steps, head);
    // Aligned as the arena is: the AVX-512 products group a sum's terms into lanes by address,
    // so a scratch buffer at another offset modulo 64 bytes may round differently.
    let scratch = |e: &Exec| Aligned::<T>::zeros(per_thread * e.threads());
    let weights = batch * heads * steps * steps;
    for causal in [true, false] {
        let probs_of = |e: &Exec, p: &mut [T]| {
            attention_probs(
                e,
                batch,
                steps,
                heads,
                head,
                causal,
                0.4,
                &qkv,
                p,
                &mut scratch(e),
            )
        };
        same_bits("attention_probs", weights, probs_of);
        let mut probs = vec![T::ZERO; weights];
        probs_of(Exec::serial(), &mut probs);
        let mix = |e: &Exec, skip: bool, out: &mut [T]| {
            let s = &mut scratch(e);
            attention_mix(e, batch, steps, heads, head, skip, &probs, &qkv, out, s)
        };
        same_bits("attention_mix", batch * steps * model, |e, out| {
            mix(e, causal, out)
        });
        let backward = |e: &Exec, skip: bool, m: Option<&[T]>, d: &mut [T]| {
            let s = &mut scratch(e);
            attention_backward(
                e, batch, steps, heads, head, skip, 0.4, &probs, &qkv, &g, m, d, s,
            )
        };
        for m in [None, Some(&mask[..])] {
            same_bits("attention_backward", qkv.len(), |e, d| {
                backward(e, causal, m, d)
            });
        }
        if causal {
            // Skipping the masked triangle (in blocks of 16 rows: 24 positions end in a
            // partial one) leaves out exact zeros at the ends of sums, so the bits are those of
            // the square products.
            let run = |f: &dyn Fn(bool, &mut [T]), len: usize| {
                [true, false].map(|skip| {
                    let mut out = vec![T::ZERO; len];
                    f(skip, &mut out);
                    out.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>()
                })
            };
            let [skipped, square] = run(&|k, o| mix(Exec::serial(), k, o), batch * steps * model);
            assert!(
                skipped == square,
                "attention_mix: skipping the mask changed the bits"
            );
            for m in [None, Some(&mask[..])] {
                let f = |k: bool, d: &mut [T]| backward(Exec::serial(), k, m, d);
                let [skipped, square] = run(&f, qkv.len());
                assert!(
                    skipped == square,
                    "attention_backward: skipping the mask changed the bits"
                );
            }
        }
    }
    // The cached step over a cache of 9 positions, at position 6.
    let cache = random::<T>(batch * steps * 2 * model, 44);
    let now = random::<T>(batch * 3 * model, 45);
    same_bits("attention_step", batch * model, |e, out| {
        attention_step(
            e,
            batch,
            steps,
            heads,
            head,
            0.4,
            6,
            &now,
            &cache,
            out,
            &mut scratch(e),
        )
    });
}

#[test]
fn attention_kernels_give_the_same_bits_on_every_thread_count() {
    attention_kernels::<f32>();
    attention_kernels::<f64>();
}

fn layer_norm_kernels<T: Float>() {
    // Rows of a width with a tail past the kernels' eight partial sums, and a width of 131
    // columns for the scale gradient, whose split cuts columns.
    for (rows, width) in [(1031, 67), (509, 131)] {
        let len = rows * width;
        let x = random::<T>(len, 31);
        let g = random::<T>(len, 32);
        let gamma = random::<T>(width, 33);
        let beta = random::<T>(width, 34);
        same_bits("layer_norm", len, |e, y| {
            layer_norm(e, rows, width, 1e-5, &x, &gamma, Some(&beta), y)
        });
        same_bits("layer_norm_backward", len, |e, dx| {
            layer_norm_backward(e, rows, width, 1e-5, &g, &x, &gamma, dx)
        });
        same_bits("layer_norm_scale_grad", width, |e, d| {
            layer_norm_scale_grad(e, rows, width, 1e-5, &g, &x, d)
        });
    }
}

#[test]
fn layer_norm_kernels_give_the_same_bits_on_every_thread_count() {
    layer_norm_kernels::<f32>();
    layer_norm_kernels::<f64>();
}

fn lstm_kernels<T: Float>() {
    // 53 samples: three whole blocks of 16 and a ragged one, each task a whole block.
    let (batch, steps, hidden) = (53, 7, 20);
    let h4 = 4 * hidden;
    let z = random::<T>(batch * steps * h4, 31);
    let w = random::<T>(h4 * hidden, 32);
    let record_len = batch * 6 * steps * hidden;
    // Aligned like a workspace's scratch: the products group lanes by address.
    let scratch = |e: &Exec| Aligned::<T>::zeros(recurrent_scratch_len(hidden) * e.threads());
    same_bits("lstm_scan", record_len, |e, r| {
        lstm_scan(e, batch, steps, hidden, &z, &w, None, r, &mut scratch(e))
    });
    let mut record = vec![T::ZERO; record_len];
    lstm_scan(
        Exec::serial(),
        batch,
        steps,
        hidden,
        &z,
        &w,
        None,
        &mut record,
        &mut scratch(Exec::serial()),
    );
    let d_record = random::<T>(record_len, 33);
    // From zero, and from given initial states with their gradients after each sample's steps.
    let init = random::<T>(batch * 2 * hidden, 38);
    let scan = Scan {
        batch,
        steps,
        hidden,
        record: &record,
        d_record: &d_record,
        w: &w,
    };
    scan.backward_from_each_start("lstm_scan_backward", lstm_scan_backward, &init, h4, steps);
    let dz = random::<T>(batch * steps * h4, 34);
    same_bits("lstm_weight_grad", h4 * hidden, |e, dw| {
        recurrent_weight_grad(e, batch, steps, hidden, 6, &dz, &record, None, dw)
    });
    same_bits("lstm_weight_grad, given start", h4 * hidden, |e, dw| {
        recurrent_weight_grad(e, batch, steps, hidden, 6, &dz, &record, Some(&init), dw)
    });
    // The RNN's product is a quarter of the LSTM's: more units, so that it splits too.
    let hidden = 48;
    let scratch = |e: &Exec| Aligned::<T>::zeros(recurrent_scratch_len(hidden) * e.threads());
    for relu in [false, true] {
        let z = random::<T>(batch * steps * hidden, 35);
        let w = random::<T>(hidden * hidden, 36);
        let h_len = batch * steps * hidden;
        same_bits(&format!("rnn_scan relu {relu}"), h_len, |e, h| {
            rnn_scan(
                e,
                batch,
                steps,
                hidden,
                relu,
                &z,
                &w,
                None,
                h,
                &mut scratch(e),
            )
        });
        let mut h = vec![T::ZERO; h_len];
        rnn_scan(
            Exec::serial(),
            batch,
            steps,
            hidden,
            relu,
            &z,
            &w,
            None,
            &mut h,
            &mut scratch(Exec::serial()),
        );
        let dh = random::<T>(h_len, 37);
        let init = random::<T>(batch * hidden, 39);
        for (start, rows) in [(Start::Zero, steps), (Start::Learned(&init), steps + 1)] {
            let what = format!("rnn_scan_backward relu {relu} from {}", rows - steps);
            same_bits(&what, batch * rows * hidden, |e, dz| {
                let (h, dh, w) = (&h[..], &dh[..], &w[..]);
                rnn_scan_backward(
                    e,
                    batch,
                    steps,
                    hidden,
                    relu,
                    h,
                    dh,
                    w,
                    start,
                    dz,
                    &mut scratch(e),
                )
            });
        }
        same_bits(
            "recurrent_weight_grad of an RNN",
            hidden * hidden,
            |e, dw| recurrent_weight_grad(e, batch, steps, hidden, 1, &dh, &h, None, dw),
        );
    }
}

fn gru_kernels<T: Float>() {
    // As for the LSTM: three whole blocks of 16 samples and a ragged one.
    let (batch, steps, hidden) = (53, 7, 24);
    let h3 = 3 * hidden;
    let x = random::<T>(batch * steps * h3, 41);
    let w = random::<T>(h3 * hidden, 42);
    let b = random::<T>(h3, 43);
    let record_len = batch * GRU_PLANES * steps * hidden;
    let scratch = |e: &Exec| Aligned::<T>::zeros(recurrent_scratch_len(hidden) * e.threads());
    same_bits("gru_scan", record_len, |e, r| {
        gru_scan(
            e,
            batch,
            steps,
            hidden,
            &x,
            &w,
            &b,
            None,
            r,
            &mut scratch(e),
        )
    });
    let mut record = vec![T::ZERO; record_len];
    let serial = Exec::serial();
    gru_scan(
        serial,
        batch,
        steps,
        hidden,
        &x,
        &w,
        &b,
        None,
        &mut record,
        &mut scratch(serial),
    );
    let d_record = random::<T>(record_len, 44);
    let init = random::<T>(batch * hidden, 45);
    let scan = Scan {
        batch,
        steps,
        hidden,
        record: &record,
        d_record: &d_record,
        w: &w,
    };
    scan.backward_from_each_start("gru_scan_backward", gru_scan_backward, &init, h3, 2 * steps);
}

/// A recurrent scan's backward kernel: the sizes (batch, steps, hidden), the record, its
/// gradient, `W_hh`, the start, the output and the scratch.
type BackwardScan<T> =
    fn(&Exec, usize, usize, usize, &[T], &[T], &[T], Start<'_, T>, &mut [T], &mut [T]);

/// What a scan's backward pass reads.
struct Scan<'a, T> {
    batch: usize,
    steps: usize,
    hidden: usize,
    record: &'a [T],
    d_record: &'a [T],
    w: &'a [T],
}

impl<T: Float> Scan<'_, T> {
    /// Checks `kernel` from a zero start and from `init` given and learned (the last with one
    /// output row more per sample): `rows` rows of `width` otherwise.
    fn backward_from_each_start(
        &self,
        what: &str,
        kernel: BackwardScan<T>,
        init: &[T],
        width: usize,
        rows: usize,
    ) {
        let scratch =
            |e: &Exec| Aligned::<T>::zeros(recurrent_scratch_len(self.hidden) * e.threads());
        let starts = [
            ("zero", Start::Zero, rows),
            ("given", Start::Given(init), rows),
            ("learned", Start::Learned(init), rows + 1),
        ];
        for (from, start, rows) in starts {
            let what = format!("{what} from a {from} start");
            same_bits(&what, self.batch * rows * width, |e, out| {
                let (b, t, h) = (self.batch, self.steps, self.hidden);
                kernel(
                    e,
                    b,
                    t,
                    h,
                    self.record,
                    self.d_record,
                    self.w,
                    start,
                    out,
                    &mut scratch(e),
                )
            });
        }
    }
}

#[test]
fn lstm_kernels_give_the_same_bits_on_every_thread_count() {
    lstm_kernels::<f32>();
    lstm_kernels::<f64>();
}

#[test]
fn gru_kernels_give_the_same_bits_on_every_thread_count() {
    gru_kernels::<f32>();
    gru_kernels::<f64>();
}

#[test]
fn batch_norm_kernels_give_the_same_bits_on_every_thread_count() {
    batch_norm_kernels::<f32>();
    batch_norm_kernels::<f64>();
}

#[test]
fn element_wise_and_row_kernels_give_the_same_bits_on_every_thread_count() {
    element_wise::<f32>();
    element_wise::<f64>();
}

/// Three steps of an optimizer over 100,003 parameters, from the same start.
fn optimizer_steps<O: Optimizer<f32>>(what: &str, make: impl Fn() -> O) {
    let len = 100_003;
    let grads: Vec<Vec<f32>> = (0..3).map(|s| random(len, 20 + s)).collect();
    same_bits(what, len, |exec, params| {
        params.copy_from_slice(&random::<f32>(len, 13));
        let mut opt = make();
        for g in &grads {
            opt.step(exec, params, g);
        }
    });
}

/// [`optimizer_steps`] for every optimizer and variant, shared out by even pieces or, with
/// `tensors`, by the tensors' home rows.
fn every_optimizer(tensors: Option<&[[usize; 2]]>) {
    let len = 100_003;
    let layout = if tensors.is_some() {
        "by tensors"
    } else {
        "flat"
    };
    macro_rules! check {
        ($what:literal, $make:expr) => {
            optimizer_steps(&format!("{} ({layout})", $what), || {
                let optimizer = $make;
                match tensors {
                    Some(tensors) => optimizer.with_tensors(tensors),
                    None => optimizer,
                }
            })
        };
    }
    // The tensors' biases and the last vector, for the optimizers that exempt some parameters.
    let vectors = [89_600..89_728, 95_728..len];
    check!("adam", Adam::new(len, AdamConfig::default()));
    let amsgrad = AdamConfig {
        amsgrad: true,
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    check!("adam (amsgrad)", Adam::new(len, amsgrad));
    check!(
        "adam (amsgrad, vectors exempt)",
        Adam::new(len, amsgrad).without_decay(&vectors)
    );
    check!("adamw", AdamW::new(len, AdamConfig::adamw()));
    check!(
        "adamw (vectors exempt)",
        AdamW::new(len, AdamConfig::adamw()).without_decay(&vectors)
    );
    check!("sgd", Sgd::new(len, SgdConfig::default()));
    let momentum = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::default()
    };
    check!("sgd (nesterov)", Sgd::new(len, momentum));
    let centered = RmspropConfig {
        centered: true,
        momentum: 0.5,
        ..RmspropConfig::default()
    };
    check!("rmsprop", Rmsprop::new(len, RmspropConfig::default()));
    check!("rmsprop (centered, momentum)", Rmsprop::new(len, centered));
    check!("adagrad", Adagrad::new(len, AdagradConfig::default()));
}

#[test]
fn optimizers_give_the_same_bits_on_every_thread_count() {
    every_optimizer(None);
    // A weight worth several tasks, its bias, a wide tensor of three rows (cut by elements) and
    // a vector, as `with_tensors` describes a model's parameters.
    every_optimizer(Some(&[[128, 700], [128, 1], [3, 2000], [1, 4275]]));
}

/// Splitting by tensors changes which thread updates a parameter, never how: the bits are those
/// of the update shared out in even pieces.
#[test]
fn optimizers_by_tensors_match_the_flat_update() {
    let len = 100_003;
    let tensors = [[128, 700], [128, 1], [3, 2000], [1, 4275]];
    let grads = random::<f32>(len, 21);
    let exec = Exec::new(3);
    let run = |mut opt: AdamW<f32>| {
        let mut params = random::<f32>(len, 13);
        opt.step(&exec, &mut params, &grads);
        params
    };
    // The bias and the vector at the end, exempt from the decay.
    let vectors = [89_600..89_728, 95_728..len];
    let flat = run(AdamW::new(len, AdamConfig::adamw()).without_decay(&vectors));
    let split = run(AdamW::new(len, AdamConfig::adamw())
        .without_decay(&vectors)
        .with_tensors(&tensors));
    assert!(flat
        .iter()
        .zip(&split)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}
