//! Batch norm against PyTorch's `BatchNorm1d`: numbers printed by PyTorch 2.15 in float64
//! (`torch.nn.BatchNorm1d`, script in the comments below), and its documented semantics with
//! numbers worked out by hand: training normalises with the batch's mean and biased variance and moves the running
//! statistics by momentum 0.1 towards the batch mean and the *unbiased* variance; inference
//! normalises with the running statistics; eps is 1e-5; γ starts at 1 and β at 0. Also: the
//! state in checkpoints (identical predictions after a reload), `reset_state`, and the error
//! for a training batch too small to have a variance.
//!
//! Tolerance: the model is compiled to f64, and every expected value is a closed form or
//! PyTorch's float64 result, which sums in another order; values agree to 1e-12 relative (a few
//! thousand ulps at most, far below any mistake in a formula, which shows at 1e-3 or more).

use nnc::runtime::{Error, Model};
use nnc::train::checkpoint::{self, SaveOptions};

mod fixture {
    nnc::include_model!("tests/fixtures/ok/batch_norm.nnc", elem = f64);
}
use fixture::{Channels, Norm};

const EPS: f64 = 1e-5;

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

#[test]
fn training_and_inference_follow_pytorch() {
    // Two features over a batch of three: [1, 3, 5] (mean 3, biased variance 8/3, unbiased 4)
    // and [2, 6, 10] (mean 6, biased variance 32/3, unbiased 16).
    let x = [1.0, 2.0, 3.0, 6.0, 5.0, 10.0];
    let mut model = Norm::new(0);
    assert_eq!(model.param("bn.weight").unwrap(), &[1.0, 1.0]);
    assert_eq!(model.param("bn.bias").unwrap(), &[0.0, 0.0]);
    assert_eq!(model.state(), &[0.0, 0.0, 1.0, 1.0]);
    let mut ws = model.workspace(3);

    // Training: the batch's statistics.
    let out = model.forward_train(&mut ws, &x).unwrap().to_vec();
    let (s0, s1) = ((8.0f64 / 3.0 + EPS).sqrt(), (32.0f64 / 3.0 + EPS).sqrt());
    close(&out, &[-2.0 / s0, -4.0 / s1, 0.0, 0.0, 2.0 / s0, 4.0 / s1]);
    // running = 0.9 · running + 0.1 · batch statistic (the unbiased variance).
    close(model.state_tensor("bn.running_mean").unwrap(), &[0.3, 0.6]);
    close(model.state_tensor("bn.running_var").unwrap(), &[1.3, 2.5]);

    // Inference: the running statistics, and no update.
    let out = model.predict(&mut ws, &x).unwrap().to_vec();
    let (r0, r1) = ((1.3f64 + EPS).sqrt(), (2.5f64 + EPS).sqrt());
    let expected: Vec<f64> = x
        .chunks(2)
        .flat_map(|s| [(s[0] - 0.3) / r0, (s[1] - 0.6) / r1])
        .collect();
    close(&out, &expected);
    close(model.state(), &[0.3, 0.6, 1.3, 2.5]);

    // A second training step moves them again, from where they are.
    model.forward_train(&mut ws, &x).unwrap();
    close(
        model.state(),
        &[0.57, 1.14, 0.9 * 1.3 + 0.4, 0.9 * 2.5 + 1.6],
    );
    model.reset_state();
    assert_eq!(model.state(), &[0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn the_gradient_sums_to_zero_per_feature() {
    // Through the batch statistics, d loss / d x sums to zero over each feature's batch (the
    // mean removes any shift), and dβ is Σ dy.
    let x = [1.0, 2.0, 3.0, 6.0, 5.0, 10.0];
    let y = [0.5, -1.0, 2.0, 0.0, 1.0, 3.0];
    let mut model = Norm::new(0);
    let mut ws = model.workspace(3);
    let out = model.forward_train(&mut ws, &x).unwrap().to_vec();
    let dy: Vec<f64> = out
        .iter()
        .zip(&y)
        .map(|(p, t)| 2.0 * (p - t) / 6.0)
        .collect();
    model.forward_backward(&mut ws, &x, &y).unwrap();
    let grads = model.grads();
    // Parameters are [bn.weight, bn.bias].
    close(
        &grads[2..4],
        &[dy[0] + dy[2] + dy[4], dy[1] + dy[3] + dy[5]],
    );
}

/// PyTorch, float64:
/// ```python
/// bn = torch.nn.BatchNorm1d(2); bn.train()
/// x = torch.tensor([[1., 2.], [3., 6.], [5., 10.]], requires_grad=True)
/// t = torch.tensor([[0.5, -1.0], [2.0, 0.0], [1.0, 3.0]])
/// loss = torch.nn.functional.mse_loss(bn(x), t); loss.backward()
/// ```
#[test]
fn gradients_match_pytorch() {
    let x = [1.0, 2.0, 3.0, 6.0, 5.0, 10.0];
    let t = [0.5, -1.0, 2.0, 0.0, 1.0, 3.0];
    let mut model = Norm::new(0);
    let mut ws = model.workspace(3);
    let loss = model.forward_backward(&mut ws, &x, &t).unwrap();
    close(&[loss], &[1.704548164033456]);
    // [bn.weight, bn.bias]
    close(
        model.grads(),
        &[
            0.7958724875138268,
            -0.6329933338895667,
            -1.1666666666666667,
            -0.6666666666666669,
        ],
    );
    // The input gradient is checked through `Channels`, which asks for it.
}

/// PyTorch, float64, over `[N, C, L] = [2, 2, 4]`:
/// ```python
/// bn = torch.nn.BatchNorm1d(2, momentum=0.2, eps=1e-3); bn.train()
/// bn.weight.data = torch.tensor([1.5, -0.5]); bn.bias.data = torch.tensor([0.25, 1.0])
/// x = (torch.sin(torch.arange(16.).reshape(2, 2, 4) * 0.7) * 2 + 0.5).requires_grad_()
/// w = torch.cos(torch.arange(16.) * 0.3).reshape(2, 2, 4)
/// y = bn(x); (y * w).sum().backward()      # then bn.eval(); bn(x)
/// ```
#[test]
fn channels_match_pytorch() {
    let x: Vec<f64> = (0..16)
        .map(|i| (i as f64 * 0.7).sin() * 2.0 + 0.5)
        .collect();
    let w: Vec<f64> = (0..16).map(|i| (i as f64 * 0.3).cos()).collect();
    let mut model = Channels::new(0);
    model.params_mut().copy_from_slice(&[1.5, -0.5, 0.25, 1.0]);
    let mut ws = model.workspace(2);
    let y = model.forward_train(&mut ws, &x).unwrap().to_vec();
    close(
        &y,
        &[
            -0.9591922649751984,
            0.8094255434521025,
            1.7462347611604718,
            1.4106393750138508,
            0.5454170344659751,
            1.0849688719381743,
            1.494718510849082,
            1.581954293504179,
            -2.6922546128816487,
            -0.9130318375065664,
            0.8444809675534427,
            1.7536980681835483,
            0.1365972028574762,
            0.5579188163790724,
            1.097318107853111,
            1.5011071621529302,
        ],
    );
    close(
        model.state(),
        &[
            0.2761789439541421,
            0.0028849459321200924,
            1.0727080136679448,
            1.169016154423164,
        ],
    );
    model.backward(&mut ws, &x, &w).unwrap();
    close(
        model.grads(),
        &[
            1.6195132249059772,
            -0.7538651089919425,
            -0.2166560517616678,
            -2.6227005844543347,
        ],
    );
    close(
        ws.grad_x(),
        &[
            1.6338728966247231,
            1.244915085622593,
            0.8929141872182229,
            0.6754341396136342,
            -0.30521941933299623,
            -0.1504958513464907,
            -0.002910193403875274,
            0.11278004558889268,
            -0.4299620368187843,
            -0.9883727161028512,
            -1.4319059588250573,
            -1.5968955973324812,
            0.15979462804942843,
            0.12383040153144312,
            0.071111002433289,
            -0.008890613519691112,
        ],
    );
    let y = model.predict(&mut ws, &x).unwrap();
    close(
        y,
        &[
            0.5740030528917979,
            2.439140328887312,
            3.427074400408281,
            3.0731644367227036,
            0.46051555496578084,
            1.0945070412517544,
            1.5759765953085554,
            1.6784815626939644,
            -1.253638380606464,
            0.6226826113229048,
            2.4761088462830414,
            3.434945005388402,
            -0.01986144435823411,
            0.475205567575952,
            1.1090178072031542,
            1.5834834746372692,
        ],
    );
}

#[test]
fn a_training_batch_of_one_is_an_error() {
    let mut model = Norm::new(0);
    let mut ws = model.workspace(4);
    let err = model.forward_train(&mut ws, &[1.0, 2.0]).unwrap_err();
    assert_eq!(
        err,
        Error::BatchTooSmall {
            layer: "bn",
            found: 1,
            min_batch: 2
        }
    );
    assert!(err.to_string().contains("at least 2"), "{err}");
    assert!(model
        .forward_backward(&mut ws, &[1.0, 2.0], &[0.0, 0.0])
        .is_err());
    // Nothing moved, and inference on one sample is fine.
    assert_eq!(model.state(), &[0.0, 0.0, 1.0, 1.0]);
    model.predict(&mut ws, &[1.0, 2.0]).unwrap();
}

#[test]
fn the_running_statistics_travel_in_checkpoints() {
    let mut model = fixture::BatchNormMlp::new(3);
    let mut ws = model.workspace(8);
    let x: Vec<f64> = (0..48)
        .map(|i| (i as f64 * 0.61).sin() * 2.0 + 0.5)
        .collect();
    let y: Vec<u32> = (0..8).map(|i| i % 3).collect();
    for _ in 0..5 {
        model.train_step(&mut ws, &x, &y).unwrap();
    }
    let names: Vec<&str> = <fixture::BatchNormMlp as Model>::STATE
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "bn1.running_mean",
            "bn1.running_var",
            "bn2.running_mean",
            "bn2.running_var"
        ]
    );
    let dir = std::env::temp_dir().join(format!("nnc-batch-norm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bn.safetensors");
    checkpoint::save(&model, &path, &SaveOptions::default()).unwrap();

    let mut restored = fixture::BatchNormMlp::new(99);
    checkpoint::load(&mut restored, &path).unwrap();
    assert_eq!(restored.state(), model.state());
    assert_eq!(restored.params(), model.params());
    let mut other_ws = model.workspace(13);
    let again = model.predict(&mut other_ws, &x).unwrap().to_vec();
    let mut restored_ws = restored.workspace(8);
    let expected = model.predict(&mut ws, &x).unwrap().to_vec();
    assert_eq!(again, expected, "same model, another workspace");
    assert_eq!(
        restored.predict(&mut restored_ws, &x).unwrap(),
        &expected[..]
    );

    // A checkpoint without the state is refused, naming what is missing, and loads nothing.
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.contains("running_var"))
        .collect();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let partial = dir.join("partial.safetensors");
    safetensors::serialize_to_file(kept, metadata.metadata().clone(), &partial).unwrap();
    let mut fresh = fixture::BatchNormMlp::new(5);
    let before = (fresh.params().to_vec(), fresh.state().to_vec());
    let err = checkpoint::load(&mut fresh, &partial)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing state `bn1.running_var`"), "{err}");
    assert_eq!((fresh.params().to_vec(), fresh.state().to_vec()), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fit_explains_a_last_batch_of_one() {
    use nnc::train::{fit, Column, Dataset, FitOptions, Verbosity};
    // Five samples in batches of four leave one for the last batch of every epoch.
    let x: Vec<f64> = (0..10).map(|i| (i as f64 * 0.9).sin()).collect();
    let data = Dataset::supervised(x.clone(), &[2], Column::float(x, &[2])).unwrap();
    let options = FitOptions {
        epochs: 1,
        batch_size: 4,
        verbosity: Verbosity::Quiet,
        ..FitOptions::default()
    };
    let mut model = Norm::new(0);
    let err = fit(&mut model, &data, &options).unwrap_err().to_string();
    assert!(err.contains("drop_last"), "{err}");
    let options = FitOptions {
        drop_last: true,
        ..options
    };
    fit(&mut model, &data, &options).unwrap();
}
