//! Finite-difference gradient checks through generated code: every `ok` fixture is compiled to
//! f64 Rust by `include_model!`, and the gradient its backward pass computes for every
//! parameter (up to 64 sampled entries per parameter tensor) is compared with central
//! differences of the loss.
//!
//! Tolerance: with step h = 1e-6 in f64, central differences carry a truncation error of order
//! h²·|f'''| ≈ 1e-12 and a rounding error of order ε·|f|/h ≈ 1e-16/1e-6 = 1e-10, so an entry
//! passes when |analytic − numeric| ≤ 1e-7 + 1e-6·max(|analytic|, |numeric|). That is four
//! orders of magnitude above the expected error and far below what any wrong rule produces
//! (a wrong factor or sign shows up as an error of order 1). The largest relative error (over
//! entries of magnitude ≥ 1e-4) and the largest absolute error are printed for every model.

use nnc::runtime::{Model, Rng, Target, TargetKind};
use std::path::Path;

macro_rules! fixtures {
    ($($module:ident => $file:literal),* $(,)?) => {
        $(mod $module { nnc::include_model!($file, elem = f64); })*
        const COVERED: &[&str] = &[$($file),*];
    };
}

fixtures! {
    autoencoder => "tests/fixtures/ok/autoencoder.nnc",
    bce_unfused => "tests/fixtures/ok/bce_unfused.nnc",
    cross_entropy_unfused => "tests/fixtures/ok/cross_entropy_unfused.nnc",
    deep_relu => "tests/fixtures/ok/deep_relu.nnc",
    iris => "tests/fixtures/ok/iris.nnc",
    linear_regression => "tests/fixtures/ok/linear_regression.nnc",
    logistic => "tests/fixtures/ok/logistic.nnc",
    mnist_mlp => "tests/fixtures/ok/mnist_mlp.nnc",
    multi_label => "tests/fixtures/ok/multi_label.nnc",
    no_bias => "tests/fixtures/ok/no_bias.nnc",
    sine_regression => "tests/fixtures/ok/sine_regression.nnc",
    softmax_mse => "tests/fixtures/ok/softmax_mse.nnc",
    two_models => "tests/fixtures/ok/two_models.nnc",
    xor => "tests/fixtures/ok/xor.nnc",
}

/// Random inputs and targets that suit the model's declared kinds.
struct Batch {
    inputs: Vec<Vec<f64>>,
    floats: Vec<Vec<f64>>,
    labels: Vec<Vec<u32>>,
}

impl Batch {
    fn new<M: Model>(batch: usize, rng: &mut Rng) -> Batch {
        let inputs = M::INPUTS
            .iter()
            .map(|i| {
                (0..batch * i.per_sample())
                    .map(|_| rng.normal(0.0, 1.0))
                    .collect()
            })
            .collect();
        let (mut floats, mut labels) = (Vec::new(), Vec::new());
        for t in M::TARGETS {
            match t.kind {
                // Targets strictly inside (0, 1) suit every float loss, binary cross-entropy included.
                TargetKind::Float { shape } => floats.push(
                    (0..batch * shape.iter().product::<usize>())
                        .map(|_| rng.uniform(0.05, 0.95))
                        .collect(),
                ),
                TargetKind::Classes { classes } => labels.push(
                    (0..batch)
                        .map(|_| (rng.next_u64() % classes as u64) as u32)
                        .collect(),
                ),
            }
        }
        Batch {
            inputs,
            floats,
            labels,
        }
    }

    fn loss<M: Model<Elem = f64>>(&self, m: &mut M, ws: &mut M::Workspace) -> f64 {
        let inputs: Vec<&[f64]> = self.inputs.iter().map(|v| v.as_slice()).collect();
        let (mut f, mut l) = (self.floats.iter(), self.labels.iter());
        let targets: Vec<Target<'_, f64>> = M::TARGETS
            .iter()
            .map(|t| match t.kind {
                TargetKind::Classes { .. } => Target::Labels(l.next().unwrap()),
                _ => Target::Float(f.next().unwrap()),
            })
            .collect();
        m.forward_backward_dyn(ws, &inputs, &targets).unwrap()
    }
}

/// Checks every parameter's gradient; returns the largest relative error among entries of
/// magnitude at least 1e-4.
fn gradcheck<M: Model<Elem = f64>>() -> f64 {
    let mut rng = Rng::new(42);
    let mut model = M::new(1);
    // Move parameters off their initial values (biases start at zero, where relu kinks sit).
    for p in model.params_mut() {
        *p += rng.normal(0.0, 0.1);
    }
    let batch_size = 3;
    let mut ws = model.workspace(batch_size);
    let batch = Batch::new::<M>(batch_size, &mut rng);
    batch.loss(&mut model, &mut ws);
    let analytic = model.grads().to_vec();
    let h = 1e-6;
    let (mut worst_relative, mut worst_absolute): (f64, f64) = (0.0, 0.0);
    for info in M::PARAMS {
        let stride = (info.len / 64).max(1);
        for i in (info.offset..info.offset + info.len).step_by(stride) {
            let original = model.params()[i];
            model.params_mut()[i] = original + h;
            let plus = batch.loss(&mut model, &mut ws);
            model.params_mut()[i] = original - h;
            let minus = batch.loss(&mut model, &mut ws);
            model.params_mut()[i] = original;
            let numeric = (plus - minus) / (2.0 * h);
            let a = analytic[i];
            let scale = a.abs().max(numeric.abs());
            assert!(
                (a - numeric).abs() <= 1e-7 + 1e-6 * scale,
                "{}: d loss / d {}[{}] is {a} analytically but {numeric} numerically",
                M::NAME,
                info.name,
                i - info.offset
            );
            worst_absolute = worst_absolute.max((a - numeric).abs());
            // Relative error only means something where the gradient is well above the
            // finite differences' absolute noise floor (~1e-10).
            if scale >= 1e-4 {
                worst_relative = worst_relative.max((a - numeric).abs() / scale);
            }
        }
    }
    println!(
        "{}: max relative error {worst_relative:.1e} (entries ≥ 1e-4), max absolute error {worst_absolute:.1e}",
        M::NAME
    );
    worst_relative
}

#[test]
fn every_ok_fixture_is_gradient_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ok");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = format!(
            "tests/fixtures/ok/{}",
            entry.unwrap().file_name().to_string_lossy()
        );
        assert!(
            COVERED.contains(&name.as_str()),
            "{name} is not in the gradcheck list"
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    gradcheck::<autoencoder::AutoEncoder>();
    gradcheck::<bce_unfused::BceUnfused>();
    gradcheck::<cross_entropy_unfused::CeUnfused>();
    gradcheck::<deep_relu::Deep>();
    gradcheck::<iris::Iris>();
    gradcheck::<linear_regression::Linear>();
    gradcheck::<logistic::Logistic>();
    gradcheck::<mnist_mlp::MnistMlp>();
    gradcheck::<multi_label::MultiLabel>();
    gradcheck::<no_bias::NoBias>();
    gradcheck::<sine_regression::Sine>();
    gradcheck::<softmax_mse::SoftMse>();
    gradcheck::<two_models::Encoder>();
    gradcheck::<two_models::Classifier>();
    gradcheck::<xor::Xor>();
}
