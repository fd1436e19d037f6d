//! Batch norm against PyTorch's documented `BatchNorm1d` semantics, with numbers worked out by
//! hand: training normalises with the batch's mean and biased variance and moves the running
//! statistics by momentum 0.1 towards the batch mean and the *unbiased* variance; inference
//! normalises with the running statistics; eps is 1e-5; γ starts at 1 and β at 0. Also: the
//! state in checkpoints (identical predictions after a reload), `reset_state`, and the error
//! for a training batch too small to have a variance.
//!
//! Tolerance: the model is compiled to f64 and every expected value is a closed form, so values
//! agree to 1e-12 (a few ulps of the sums and the square root).

use nnc::runtime::{Error, Model};
use nnc::train::checkpoint::{self, SaveOptions};

mod fixture {
    nnc::include_model!("tests/fixtures/ok/batch_norm.nnc", elem = f64);
}
use fixture::Norm;

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
    safetensors::serialize_to_file(kept, metadata.metadata(), &partial).unwrap();
    let mut fresh = fixture::BatchNormMlp::new(5);
    let before = (fresh.params().to_vec(), fresh.state().to_vec());
    let err = checkpoint::load(&mut fresh, &partial)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing state `bn1.running_var`"), "{err}");
    assert_eq!((fresh.params().to_vec(), fresh.state().to_vec()), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
