//! Every loss in f64: its value against a direct evaluation of its defining formula, and its
//! gradient against finite differences (step and tolerance in `common`), at a mean-like scale
//! (`1/count`) and a sum (scale 1), with and without label smoothing. The fused gradients given
//! `p = softmax(Exec::serial(), z)` or `p = sigmoid(z)` must equal the from-logits gradients, and the unfused
//! gradient chained through the softmax or sigmoid backward pass.

mod common;

use common::{assert_all_close, assert_close, assert_gradient, away_from_zero, numeric, uniform};
use nnc_runtime::kernels::{
    act_backward_inplace, act_forward, binary_cross_entropy, binary_cross_entropy_backward,
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
    categorical_cross_entropy, categorical_cross_entropy_backward,
    categorical_cross_entropy_with_logits, categorical_cross_entropy_with_logits_backward, huber,
    huber_backward, kept_labels, log_softmax, mae, mae_backward, mse, mse_backward, nll,
    nll_backward, sigmoid_binary_cross_entropy_backward, softmax, softmax_backward,
    softmax_categorical_cross_entropy_backward, softmax_sparse_cross_entropy_backward,
    sparse_cross_entropy, sparse_cross_entropy_backward, sparse_cross_entropy_with_logits,
    sparse_cross_entropy_with_logits_backward,
};
use nnc_runtime::Exec;
use nnc_runtime::{Act, Rng};

const BATCH: usize = 3;
const N: usize = 5;
const LABELS: [u32; BATCH] = [4, 0, 2];
const SMOOTHINGS: [f64; 2] = [0.0, 0.1];
/// Values computed two ways in f64 (by a kernel and by the formula, or by fused and unfused
/// kernels) differ only by rounding, about 1e-15 relative.
const EXACT: f64 = 1e-12;

/// The mean-like scale `1/count` and the sum's scale 1.
fn scales(count: usize) -> [(&'static str, f64); 2] {
    [("mean", 1.0 / count as f64), ("sum", 1.0)]
}

/// `g` as filled by `backward`.
fn grad(len: usize, backward: impl FnOnce(&mut [f64])) -> Vec<f64> {
    let mut g = vec![f64::NAN; len];
    backward(&mut g);
    g
}

#[test]
fn regression_losses() {
    let mut rng = Rng::new(3);
    let t = uniform(&mut rng, 8, -2.0, 2.0);
    // Differences of magnitude 0.1 to 2 keep away from mae's kink at 0 and fall on both sides of
    // either Huber delta.
    let d = away_from_zero(&mut rng, 8);
    let p: Vec<f64> = t.iter().zip(&d).map(|(t, d)| t + d).collect();
    for (name, s) in scales(8) {
        let want: f64 = d.iter().map(|d| d * d).sum::<f64>() * s;
        assert_close(
            &format!("mse {name}"),
            mse(Exec::serial(), &p, &t, s),
            want,
            EXACT,
        );
        let g = grad(8, |g| mse_backward(Exec::serial(), &p, &t, s, g));
        assert_gradient(
            &format!("mse_backward {name}"),
            &g,
            &numeric(&p, |p| mse(Exec::serial(), p, &t, s)),
        );

        let want: f64 = d.iter().map(|d| d.abs()).sum::<f64>() * s;
        assert_close(
            &format!("mae {name}"),
            mae(Exec::serial(), &p, &t, s),
            want,
            EXACT,
        );
        let g = grad(8, |g| mae_backward(Exec::serial(), &p, &t, s, g));
        assert_gradient(
            &format!("mae_backward {name}"),
            &g,
            &numeric(&p, |p| mae(Exec::serial(), p, &t, s)),
        );

        for delta in [1.0, 0.5] {
            assert!(d.iter().any(|d| d.abs() < delta) && d.iter().any(|d| d.abs() > delta));
            let want: f64 = d
                .iter()
                .map(|d| {
                    if d.abs() < delta {
                        0.5 * d * d
                    } else {
                        delta * (d.abs() - 0.5 * delta)
                    }
                })
                .sum::<f64>()
                * s;
            let what = format!("huber {name} delta {delta}");
            assert_close(&what, huber(Exec::serial(), &p, &t, delta, s), want, EXACT);
            let g = grad(8, |g| huber_backward(Exec::serial(), &p, &t, delta, s, g));
            let f = |p: &[f64]| huber(Exec::serial(), p, &t, delta, s);
            assert_gradient(&what, &g, &numeric(&p, f));
        }
    }
    // The absolute error's gradient is 0 where prediction and target agree (PyTorch's sign(0)).
    let g = grad(2, |g| {
        mae_backward(Exec::serial(), &[1.0, 2.0], &[1.0, 1.0], 0.5, g)
    });
    assert_eq!(g, [0.0, 0.5]);
}

#[test]
fn binary_cross_entropy_losses() {
    let mut rng = Rng::new(4);
    let z = uniform(&mut rng, 8, -3.0, 3.0);
    let mut p = vec![0.0; 8];
    act_forward(Exec::serial(), Act::Sigmoid, &z, &mut p);
    // Soft targets exercise both terms of the loss at once; include the hard 0 and 1.
    let mut t = uniform(&mut rng, 8, 0.0, 1.0);
    t[0] = 0.0;
    t[1] = 1.0;
    for (name, s) in scales(8) {
        for eps in SMOOTHINGS {
            let what = |k: &str| format!("{k} {name} smoothing {eps}");
            // Keras's binary smoothing: t' = (1 - ε)·t + ε/2.
            let want: f64 = p
                .iter()
                .zip(&t)
                .map(|(p, t)| {
                    let t = (1.0 - eps) * t + eps / 2.0;
                    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                })
                .sum::<f64>()
                * s;
            let bce = binary_cross_entropy(Exec::serial(), &p, &t, eps, s);
            assert_close(&what("binary_cross_entropy"), bce, want, EXACT);
            let g = grad(8, |g| {
                binary_cross_entropy_backward(Exec::serial(), &p, &t, eps, s, g)
            });
            let f = |p: &[f64]| binary_cross_entropy(Exec::serial(), p, &t, eps, s);
            assert_gradient(&what("binary_cross_entropy_backward"), &g, &numeric(&p, f));

            // From logits: the same value, and a gradient checked against finite differences,
            // the fused form, and the chained unfused gradients.
            let from_logits = binary_cross_entropy_with_logits(Exec::serial(), &z, &t, eps, s);
            assert_close(&what("with_logits"), from_logits, want, EXACT);
            let gz = grad(8, |g| {
                binary_cross_entropy_with_logits_backward(Exec::serial(), &z, &t, eps, s, g)
            });
            let f = |z: &[f64]| binary_cross_entropy_with_logits(Exec::serial(), z, &t, eps, s);
            assert_gradient(&what("with_logits_backward"), &gz, &numeric(&z, f));
            let fused = grad(8, |g| {
                sigmoid_binary_cross_entropy_backward(Exec::serial(), &p, &t, eps, s, g)
            });
            assert_all_close(&what("sigmoid fused"), &fused, &gz, EXACT);
            let mut chained = g.clone();
            act_backward_inplace(Exec::serial(), Act::Sigmoid, &p, &mut chained);
            assert_gradient(&what("sigmoid + bce chained"), &fused, &chained);
        }
    }
}

#[test]
fn binary_cross_entropy_clamps_like_pytorch() {
    // ln(0) is clamped to -100, so a confident wrong prediction costs 100, not infinity.
    assert_eq!(
        binary_cross_entropy(Exec::serial(), &[0.0f64, 1.0], &[1.0, 0.0], 0.0, 0.5),
        100.0
    );
    assert_eq!(
        binary_cross_entropy(Exec::serial(), &[1.0f64], &[1.0], 0.0, 1.0),
        0.0
    );
    let g = grad(1, |g| {
        binary_cross_entropy_backward(Exec::serial(), &[0.0], &[1.0], 0.0, 1.0, g)
    });
    assert_eq!(g, [-1e12]);
    // The logit form stays finite far into the saturated region.
    let loss = binary_cross_entropy_with_logits(Exec::serial(), &[-800.0f64], &[1.0], 0.0, 1.0);
    assert!((loss - 800.0).abs() < 1e-9);
    // With smoothing 0.2 the target 1 becomes 0.9: the loss of z = -800 is 0.9·800.
    let loss = binary_cross_entropy_with_logits(Exec::serial(), &[-800.0f64], &[1.0], 0.2, 1.0);
    assert!((loss - 720.0).abs() < 1e-9, "{loss}");
}

/// Targets for the categorical tests: one-hot rows, soft rows summing to 1, and rows that do not
/// sum to 1 (which the `Σ t'` factor of the logit gradients must handle).
fn categorical_targets(rng: &mut Rng) -> [Vec<f64>; 3] {
    let mut one_hot = vec![0.0; BATCH * N];
    for (b, &l) in LABELS.iter().enumerate() {
        one_hot[b * N + l as usize] = 1.0;
    }
    let raw = uniform(rng, BATCH * N, 0.1, 1.0);
    let mut soft = raw.clone();
    for row in soft.chunks_mut(N) {
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    [one_hot, soft, raw]
}

#[test]
fn categorical_cross_entropy_losses() {
    let mut rng = Rng::new(5);
    let z = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let mut p = vec![0.0; BATCH * N];
    softmax(Exec::serial(), BATCH, N, &z, &mut p);
    let len = BATCH * N;
    for (kind, t) in ["one-hot", "soft", "unnormalised"]
        .iter()
        .zip(categorical_targets(&mut rng))
    {
        for (name, s) in scales(BATCH) {
            for eps in SMOOTHINGS {
                let what = |k: &str| format!("{k} {kind} {name} smoothing {eps}");
                // t' = (1 - ε)·t + ε/C with C = N classes.
                let smoothed: Vec<f64> =
                    t.iter().map(|t| (1.0 - eps) * t + eps / N as f64).collect();
                let want: f64 = -p
                    .iter()
                    .zip(&smoothed)
                    .map(|(p, t)| t * p.ln())
                    .sum::<f64>()
                    * s;
                let cce = categorical_cross_entropy(Exec::serial(), BATCH, N, &p, &t, eps, s);
                assert_close(&what("categorical_cross_entropy"), cce, want, EXACT);
                let g = grad(len, |g| {
                    categorical_cross_entropy_backward(Exec::serial(), BATCH, N, &p, &t, eps, s, g)
                });
                let f =
                    |p: &[f64]| categorical_cross_entropy(Exec::serial(), BATCH, N, p, &t, eps, s);
                assert_gradient(
                    &what("categorical_cross_entropy_backward"),
                    &g,
                    &numeric(&p, f),
                );

                // From logits: Σ t'·(logsumexp(z) - z) equals -Σ t'·ln softmax(Exec::serial(), z) for any t.
                let from_logits =
                    categorical_cross_entropy_with_logits(Exec::serial(), BATCH, N, &z, &t, eps, s);
                assert_close(&what("with_logits"), from_logits, want, EXACT);
                let gz = grad(len, |g| {
                    categorical_cross_entropy_with_logits_backward(
                        Exec::serial(),
                        BATCH,
                        N,
                        &z,
                        &t,
                        eps,
                        s,
                        g,
                    )
                });
                let f = |z: &[f64]| {
                    categorical_cross_entropy_with_logits(Exec::serial(), BATCH, N, z, &t, eps, s)
                };
                assert_gradient(&what("with_logits_backward"), &gz, &numeric(&z, f));
                let fused = grad(len, |g| {
                    softmax_categorical_cross_entropy_backward(
                        Exec::serial(),
                        BATCH,
                        N,
                        &p,
                        &t,
                        eps,
                        s,
                        g,
                    )
                });
                assert_all_close(&what("softmax fused"), &fused, &gz, EXACT);
                let chained = grad(len, |gx| {
                    softmax_backward(Exec::serial(), BATCH, N, &p, &g, gx)
                });
                assert_gradient(&what("softmax + categorical chained"), &fused, &chained);
            }
        }
    }
}

#[test]
fn sparse_cross_entropy_losses() {
    let mut rng = Rng::new(6);
    let z = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let mut p = vec![0.0; BATCH * N];
    softmax(Exec::serial(), BATCH, N, &z, &mut p);
    let [one_hot, ..] = categorical_targets(&mut rng);
    let len = BATCH * N;
    for (name, s) in scales(BATCH) {
        for eps in SMOOTHINGS {
            let what = |k: &str| format!("{k} {name} smoothing {eps}");
            // A label is its one-hot target, smoothed the same way.
            let want = categorical_cross_entropy(Exec::serial(), BATCH, N, &p, &one_hot, eps, s);
            let sparse = sparse_cross_entropy(Exec::serial(), BATCH, N, &p, &LABELS, None, eps, s);
            assert_close(&what("sparse_cross_entropy"), sparse, want, EXACT);
            let g = grad(len, |g| {
                sparse_cross_entropy_backward(
                    Exec::serial(),
                    BATCH,
                    N,
                    &p,
                    &LABELS,
                    None,
                    eps,
                    s,
                    g,
                )
            });
            let f = |p: &[f64]| {
                sparse_cross_entropy(Exec::serial(), BATCH, N, p, &LABELS, None, eps, s)
            };
            assert_gradient(&what("sparse_cross_entropy_backward"), &g, &numeric(&p, f));
            let dense = grad(len, |g| {
                categorical_cross_entropy_backward(
                    Exec::serial(),
                    BATCH,
                    N,
                    &p,
                    &one_hot,
                    eps,
                    s,
                    g,
                )
            });
            assert_all_close(&what("sparse vs one-hot gradient"), &g, &dense, EXACT);

            let from_logits = sparse_cross_entropy_with_logits(
                Exec::serial(),
                BATCH,
                N,
                &z,
                &LABELS,
                None,
                eps,
                s,
            );
            assert_close(&what("with_logits"), from_logits, want, EXACT);
            let gz = grad(len, |g| {
                sparse_cross_entropy_with_logits_backward(
                    Exec::serial(),
                    BATCH,
                    N,
                    &z,
                    &LABELS,
                    None,
                    eps,
                    s,
                    g,
                )
            });
            let f = |z: &[f64]| {
                sparse_cross_entropy_with_logits(Exec::serial(), BATCH, N, z, &LABELS, None, eps, s)
            };
            assert_gradient(&what("with_logits_backward"), &gz, &numeric(&z, f));
            let fused = grad(len, |g| {
                softmax_sparse_cross_entropy_backward(
                    Exec::serial(),
                    BATCH,
                    N,
                    &p,
                    &LABELS,
                    None,
                    eps,
                    s,
                    g,
                )
            });
            assert_all_close(&what("softmax fused"), &fused, &gz, EXACT);
            let chained = grad(len, |gx| {
                softmax_backward(Exec::serial(), BATCH, N, &p, &g, gx)
            });
            assert_gradient(&what("softmax + sparse chained"), &fused, &chained);
        }
    }
}

#[test]
fn nll_loss() {
    let mut rng = Rng::new(7);
    let z = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let mut logp = vec![0.0; BATCH * N];
    log_softmax(Exec::serial(), BATCH, N, &z, &mut logp);
    for (name, s) in scales(BATCH) {
        let want: f64 = -LABELS
            .iter()
            .enumerate()
            .map(|(b, &l)| logp[b * N + l as usize])
            .sum::<f64>()
            * s;
        let loss = nll(Exec::serial(), BATCH, N, &logp, &LABELS, None, s);
        assert_close(&format!("nll {name}"), loss, want, EXACT);
        // NLL of log-softmax is cross-entropy from logits.
        let ce =
            sparse_cross_entropy_with_logits(Exec::serial(), BATCH, N, &z, &LABELS, None, 0.0, s);
        assert_close(&format!("nll vs cross-entropy {name}"), loss, ce, EXACT);
        let g = grad(BATCH * N, |g| {
            nll_backward(Exec::serial(), BATCH, N, &logp, &LABELS, None, s, g)
        });
        let f = |l: &[f64]| nll(Exec::serial(), BATCH, N, l, &LABELS, None, s);
        assert_gradient(&format!("nll_backward {name}"), &g, &numeric(&logp, f));
    }
}

/// The value and gradient of one sparse loss over `x` (`batch × N`) with `labels`, `ignore`
/// and smoothing `eps`, at scale 1.
type SparseLoss<'a> = &'a dyn Fn(usize, &[f64], &[u32], Option<u32>, f64) -> f64;
type SparseGrad<'a> = &'a dyn Fn(usize, &[f64], &[u32], Option<u32>, f64, &mut [f64]);

/// A sample whose label is the ignore index (PyTorch's `ignore_index`) adds nothing to a sparse
/// loss and gets a zero gradient: over the labels `[4, ignored, 2]` each loss equals the same
/// loss over the two other samples alone, their gradient rows equal that batch's, and finite
/// differences agree; with and without smoothing, for an ignore index past the classes (a
/// padding id) and for one that is a class.
#[test]
fn ignored_labels_drop_out_of_sparse_losses() {
    let mut rng = Rng::new(8);
    let z = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let mut p = vec![0.0; BATCH * N];
    softmax(Exec::serial(), BATCH, N, &z, &mut p);
    let mut logp = vec![0.0; BATCH * N];
    log_softmax(Exec::serial(), BATCH, N, &z, &mut logp);
    let e = Exec::serial();
    let on_p: (SparseLoss, SparseGrad) = (
        &|b, x, l, i, eps| sparse_cross_entropy(e, b, N, x, l, i, eps, 1.0),
        &|b, x, l, i, eps, g| sparse_cross_entropy_backward(e, b, N, x, l, i, eps, 1.0, g),
    );
    let on_z: (SparseLoss, SparseGrad) = (
        &|b, x, l, i, eps| sparse_cross_entropy_with_logits(e, b, N, x, l, i, eps, 1.0),
        &|b, x, l, i, eps, g| {
            sparse_cross_entropy_with_logits_backward(e, b, N, x, l, i, eps, 1.0, g)
        },
    );
    let on_logp: (SparseLoss, SparseGrad) = (
        &|b, x, l, i, _| nll(e, b, N, x, l, i, 1.0),
        &|b, x, l, i, _, g| nll_backward(e, b, N, x, l, i, 1.0, g),
    );
    let rows_0_and_2 = |v: &[f64]| [&v[..N], &v[2 * N..]].concat();
    for ignore in [7u32, 0] {
        let labels = [4, ignore, 2];
        assert_eq!(kept_labels(&labels, Some(ignore)), 2);
        for (name, x, (loss, back)) in [("p", &p, on_p), ("z", &z, on_z), ("logp", &logp, on_logp)]
        {
            for eps in SMOOTHINGS {
                let what = format!("{name} ignoring {ignore}, smoothing {eps}");
                let kept = rows_0_and_2(x);
                let want = loss(2, &kept, &[4, 2], None, eps);
                let got = loss(BATCH, x, &labels, Some(ignore), eps);
                assert_close(&what, got, want, EXACT);
                let g = grad(BATCH * N, |g| back(BATCH, x, &labels, Some(ignore), eps, g));
                assert_eq!(
                    &g[N..2 * N],
                    &[0.0; N],
                    "{what}: the ignored row's gradient"
                );
                let g_kept = grad(2 * N, |g| back(2, &kept, &[4, 2], None, eps, g));
                assert_all_close(&what, &rows_0_and_2(&g), &g_kept, EXACT);
                let f = |x: &[f64]| loss(BATCH, x, &labels, Some(ignore), eps);
                assert_gradient(&what, &g, &numeric(x, f));
            }
        }
        // The fused gradient from the probabilities drops the same row.
        let fused = grad(BATCH * N, |g| {
            softmax_sparse_cross_entropy_backward(
                e,
                BATCH,
                N,
                &p,
                &labels,
                Some(ignore),
                0.1,
                1.0,
                g,
            )
        });
        let from_z = grad(BATCH * N, |g| {
            (on_z.1)(BATCH, &z, &labels, Some(ignore), 0.1, g)
        });
        assert_all_close("softmax fused, ignoring", &fused, &from_z, EXACT);
    }
}

#[test]
fn class_losses_clamp_and_stay_stable() {
    // A probability of 0 at the label costs 100 (the clamped log), not infinity, and its
    // gradient stays finite.
    let p = [0.0f64, 1.0];
    assert_eq!(
        sparse_cross_entropy(Exec::serial(), 1, 2, &p, &[0], None, 0.0, 1.0),
        100.0
    );
    assert_eq!(
        categorical_cross_entropy(Exec::serial(), 1, 2, &p, &[1.0, 0.0], 0.0, 1.0),
        100.0
    );
    let g = grad(2, |g| {
        sparse_cross_entropy_backward(Exec::serial(), 1, 2, &p, &[0], None, 0.0, 1.0, g)
    });
    assert!(g[0].is_finite() && g[0] < 0.0 && g[1] == 0.0, "{g:?}");
    // With smoothing 0.2 over 2 classes the targets are (0.9, 0.1): 0.9·100 + 0.1·0.
    let loss = sparse_cross_entropy(Exec::serial(), 1, 2, &p, &[0], None, 0.2, 1.0);
    assert!((loss - 90.0).abs() < 1e-12, "{loss}");
    // Logits far apart neither overflow nor lose the result, in f32.
    let loss = sparse_cross_entropy_with_logits(
        Exec::serial(),
        1,
        3,
        &[1000.0f32, 0.0, -1000.0],
        &[1],
        None,
        0.0,
        1.0,
    );
    assert_eq!(loss, 1000.0);
    let loss = categorical_cross_entropy_with_logits(
        Exec::serial(),
        1,
        3,
        &[1000.0f32, 0.0, -1000.0],
        &[0.0, 1.0, 0.0],
        0.0,
        1.0,
    );
    assert_eq!(loss, 1000.0);
}

#[test]
fn losses_take_the_reduction_from_the_scale() {
    // Every kernel returns scale·Σ terms: a sum over an empty batch is 0 and the scale multiplies.
    assert_eq!(mse::<f64>(Exec::serial(), &[], &[], 1.0), 0.0);
    assert_eq!(
        sparse_cross_entropy_with_logits::<f32>(Exec::serial(), 0, 4, &[], &[], None, 0.1, 1.0),
        0.0
    );
    assert_eq!(mse(Exec::serial(), &[1.0f64, 3.0], &[0.0, 0.0], 0.5), 5.0);
    assert_eq!(mse(Exec::serial(), &[1.0f64, 3.0], &[0.0, 0.0], 2.0), 20.0);
    // f32 losses are summed in f64: 10⁶ terms of 0.1 keep seven digits.
    let p = vec![0.1f32; 1_000_000];
    let t = vec![0.0f32; 1_000_000];
    let loss = mae(Exec::serial(), &p, &t, 1e-6);
    assert!((loss - 0.1).abs() < 1e-7, "{loss}");
}

#[test]
#[should_panic(expected = "label smoothing")]
fn smoothing_of_one_is_rejected() {
    binary_cross_entropy(Exec::serial(), &[0.5f64], &[1.0], 1.0, 1.0);
}
