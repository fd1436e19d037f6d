//! Finite-difference gradient checks through generated code: every `ok` fixture is compiled to
//! f64 Rust by `include_model!`, and every gradient its backward passes compute is compared with
//! central differences:
//! - through the loss (`forward_backward`): every trainable parameter (up to 64 sampled entries
//!   per tensor) and every `requires_grad` input;
//! - through the pullback (`forward_train` + `backward`) from random output gradients `d`: the
//!   same, against differences of `Σ d · outputs`.
//!
//! Dropout draws its masks from the model's random state; reseeding it before every evaluation
//! keeps the mask fixed, so the function being differentiated is the same each time.
//!
//! Tolerance: with step h = 1e-6 in f64, central differences carry a truncation error of order
//! h²·|f'''| ≈ 1e-12 and a rounding error of order ε·|f|/h ≈ 1e-16/1e-6 = 1e-10, so an entry
//! passes when |analytic − numeric| ≤ 1e-7 + 1e-6·max(|analytic|, |numeric|). That is four
//! orders of magnitude above the expected error and far below what any wrong rule produces
//! (a wrong factor or sign shows up as an error of order 1). The largest relative error (over
//! entries of magnitude ≥ 1e-4) and the largest absolute error are printed for every model.

use nnc::runtime::{ElemKind, Model, Rng, TensorInfo, Values};
use std::path::Path;

macro_rules! fixtures {
    ($($module:ident => $file:literal),* $(,)?) => {
        $(mod $module { nnc::include_model!($file, elem = f64); })*
        const COVERED: &[&str] = &[$($file),*];
    };
}

fixtures! {
    activations => "tests/fixtures/ok/activations.nnc",
    autoencoder => "tests/fixtures/ok/autoencoder.nnc",
    bce_unfused => "tests/fixtures/ok/bce_unfused.nnc",
    char_mlp => "tests/fixtures/ok/char_mlp.nnc",
    concat_axes => "tests/fixtures/ok/concat_axes.nnc",
    cross_entropy_unfused => "tests/fixtures/ok/cross_entropy_unfused.nnc",
    deep_relu => "tests/fixtures/ok/deep_relu.nnc",
    gan => "tests/fixtures/ok/gan.nnc",
    graph => "tests/fixtures/ok/graph.nnc",
    iris => "tests/fixtures/ok/iris.nnc",
    keras_iris => "tests/fixtures/ok/keras_iris.nnc",
    keras_mnist => "tests/fixtures/ok/keras_mnist.nnc",
    linear_regression => "tests/fixtures/ok/linear_regression.nnc",
    logistic => "tests/fixtures/ok/logistic.nnc",
    losses => "tests/fixtures/ok/losses.nnc",
    mnist_mlp => "tests/fixtures/ok/mnist_mlp.nnc",
    multi_label => "tests/fixtures/ok/multi_label.nnc",
    no_bias => "tests/fixtures/ok/no_bias.nnc",
    residual => "tests/fixtures/ok/residual.nnc",
    sequence => "tests/fixtures/ok/sequence.nnc",
    shared_input_gradient => "tests/fixtures/ok/shared_input_gradient.nnc",
    sine_regression => "tests/fixtures/ok/sine_regression.nnc",
    softmax_mse => "tests/fixtures/ok/softmax_mse.nnc",
    stacked_activations => "tests/fixtures/ok/stacked_activations.nnc",
    straight_through => "tests/fixtures/ok/straight_through.nnc",
    two_models => "tests/fixtures/ok/two_models.nnc",
    two_outputs => "tests/fixtures/ok/two_outputs.nnc",
    xor => "tests/fixtures/ok/xor.nnc",
}

/// The values of one input or target.
enum Data {
    Float(Vec<f64>),
    Ids(Vec<u32>),
}

impl Data {
    /// Random values of the declared kind: ids uniformly in their range, floats from `float`.
    fn random(info: &TensorInfo, batch: usize, rng: &mut Rng, float: fn(&mut Rng) -> f64) -> Data {
        let n = batch * info.per_sample();
        match info.kind {
            ElemKind::Float => Data::Float((0..n).map(|_| float(rng)).collect()),
            ElemKind::Ids { range } => Data::Ids(
                (0..n)
                    .map(|_| (rng.next_u64() % range as u64) as u32)
                    .collect(),
            ),
        }
    }

    fn values(&self) -> Values<'_, f64> {
        match self {
            Data::Float(v) => Values::Float(v),
            Data::Ids(v) => Values::Ids(v),
        }
    }
}

/// Random inputs and targets that suit the model's declared kinds.
struct Batch {
    inputs: Vec<Data>,
    targets: Vec<Data>,
}

impl Batch {
    fn new<M: Model>(batch: usize, rng: &mut Rng) -> Batch {
        let inputs = M::INPUTS
            .iter()
            .map(|i| Data::random(i, batch, rng, |r| r.normal(0.0, 1.0)))
            .collect();
        // Targets strictly inside (0, 1) suit every float loss, binary cross-entropy included.
        let targets = M::TARGETS
            .iter()
            .map(|t| Data::random(t, batch, rng, |r| r.uniform(0.05, 0.95)))
            .collect();
        Batch { inputs, targets }
    }

    fn input_values(&self) -> Vec<Values<'_, f64>> {
        self.inputs.iter().map(Data::values).collect()
    }

    fn targets(&self) -> Vec<Values<'_, f64>> {
        self.targets.iter().map(Data::values).collect()
    }

    /// The loss (filling the gradients), with fixed dropout masks.
    fn loss<M: Model<Elem = f64>>(&self, m: &mut M, ws: &mut M::Workspace) -> f64 {
        m.reseed(5);
        m.forward_backward_dyn(ws, &self.input_values(), &self.targets())
            .unwrap()
    }

    /// `Σ d · outputs` of a training-mode forward pass with fixed dropout masks; with
    /// `backward`, also fills the gradients of the pullback.
    fn pullback<M: Model<Elem = f64>>(
        &self,
        m: &mut M,
        ws: &mut M::Workspace,
        d: &[Vec<f64>],
        backward: bool,
    ) -> f64 {
        m.reseed(5);
        let inputs = self.input_values();
        m.forward_train_dyn(ws, &inputs).unwrap();
        let value = d
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let out = M::output(ws, i).unwrap();
                out.iter().zip(d).map(|(o, d)| o * d).sum::<f64>()
            })
            .sum();
        if backward {
            let d: Vec<&[f64]> = d.iter().map(|v| v.as_slice()).collect();
            m.backward_dyn(ws, &inputs, &d).unwrap();
        }
        value
    }
}

/// The worst errors seen by one check.
#[derive(Default)]
struct Worst {
    relative: f64,
    absolute: f64,
}

impl Worst {
    fn compare(&mut self, model: &str, what: &str, a: f64, numeric: f64) {
        let scale = a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() <= 1e-7 + 1e-6 * scale,
            "{model}: {what} is {a} analytically but {numeric} numerically",
        );
        self.absolute = self.absolute.max((a - numeric).abs());
        // Relative error only means something where the gradient is well above the
        // finite differences' absolute noise floor (~1e-10).
        if scale >= 1e-4 {
            self.relative = self.relative.max((a - numeric).abs() / scale);
        }
    }
}

/// A function of the parameters and inputs, evaluated through the model.
type Objective<'a, M> = dyn Fn(&Batch, &mut M, &mut <M as Model>::Workspace) -> f64 + 'a;

/// Compares the gradients in `model.grads()` and the input gradients in the workspace with
/// central differences of `f`.
// Inputs are perturbed in place while `f` reads them, so their loops index.
#[allow(clippy::needless_range_loop)]
fn check_against<M: Model<Elem = f64>>(
    what: &str,
    model: &mut M,
    ws: &mut M::Workspace,
    batch: &mut Batch,
    skip: &[&str],
    worst: &mut Worst,
    f: &Objective<M>,
) {
    let analytic = model.grads().to_vec();
    let input_grads: Vec<Option<Vec<f64>>> = (0..M::INPUTS.len())
        .map(|i| M::input_grad(ws, i).map(<[f64]>::to_vec))
        .collect();
    let h = 1e-6;
    for info in M::PARAMS.iter().filter(|p| p.trainable) {
        if skip.iter().any(|s| info.name.starts_with(s)) {
            continue;
        }
        let stride = (info.len / 64).max(1);
        for i in (info.offset..info.offset + info.len).step_by(stride) {
            let original = model.params()[i];
            model.params_mut()[i] = original + h;
            let plus = f(batch, model, ws);
            model.params_mut()[i] = original - h;
            let minus = f(batch, model, ws);
            model.params_mut()[i] = original;
            let numeric = (plus - minus) / (2.0 * h);
            let entry = format!("{what}: d / d {}[{}]", info.name, i - info.offset);
            worst.compare(M::NAME, &entry, analytic[i], numeric);
        }
    }
    for (k, grad) in input_grads.iter().enumerate() {
        let Some(grad) = grad else { continue };
        let len = match &batch.inputs[k] {
            Data::Float(v) => v.len(),
            Data::Ids(_) => 0,
        };
        let set = |batch: &mut Batch, i: usize, x: f64| {
            if let Data::Float(v) = &mut batch.inputs[k] {
                v[i] = x;
            }
        };
        for i in 0..len {
            let Data::Float(v) = &batch.inputs[k] else {
                break;
            };
            let original = v[i];
            set(batch, i, original + h);
            let plus = f(batch, model, ws);
            set(batch, i, original - h);
            let minus = f(batch, model, ws);
            set(batch, i, original);
            let numeric = (plus - minus) / (2.0 * h);
            let entry = format!("{what}: d / d input {}[{i}]", M::INPUTS[k].name);
            worst.compare(M::NAME, &entry, grad[i], numeric);
        }
    }
}

/// Checks every gradient of the model, through the loss (if it has one) and through the
/// pullback; `skip` lists parameter-name prefixes whose gradient is not a derivative by design
/// (those before a straight-through step). Returns the largest relative error among entries of
/// magnitude at least 1e-4.
fn gradcheck<M: Model<Elem = f64>>(skip: &[&str]) -> f64 {
    let mut rng = Rng::new(42);
    let mut model = M::new(1);
    // Move parameters off their initial values (biases start at zero, where relu kinks sit).
    for p in model.params_mut() {
        *p += rng.normal(0.0, 0.1);
    }
    let batch_size = 3;
    let mut ws = model.workspace(batch_size);
    let mut batch = Batch::new::<M>(batch_size, &mut rng);
    let mut worst = Worst::default();
    if M::HAS_LOSS {
        batch.loss(&mut model, &mut ws);
        let f: &Objective<M> = &|b, m, ws| b.loss(m, ws);
        check_against("loss", &mut model, &mut ws, &mut batch, skip, &mut worst, f);
    }
    let d: Vec<Vec<f64>> = M::OUTPUTS
        .iter()
        .map(|o| {
            (0..batch_size * o.per_sample())
                .map(|_| rng.normal(0.0, 1.0))
                .collect()
        })
        .collect();
    batch.pullback(&mut model, &mut ws, &d, true);
    let f: &Objective<M> = &|b, m, ws| b.pullback(m, ws, &d, false);
    check_against(
        "pullback", &mut model, &mut ws, &mut batch, skip, &mut worst, f,
    );
    println!(
        "{}: max relative error {:.1e} (entries ≥ 1e-4), max absolute error {:.1e}",
        M::NAME,
        worst.relative,
        worst.absolute
    );
    worst.relative
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
    gradcheck::<activations::Activations>(&[]);
    gradcheck::<autoencoder::AutoEncoder>(&[]);
    gradcheck::<bce_unfused::BceUnfused>(&[]);
    gradcheck::<char_mlp::CharMlp>(&[]);
    gradcheck::<concat_axes::ConcatAxes>(&[]);
    gradcheck::<cross_entropy_unfused::CeUnfused>(&[]);
    gradcheck::<deep_relu::Deep>(&[]);
    gradcheck::<gan::Generator>(&[]);
    gradcheck::<gan::Discriminator>(&[]);
    gradcheck::<graph::Siamese>(&[]);
    gradcheck::<iris::Iris>(&[]);
    gradcheck::<keras_iris::KerasIris>(&[]);
    gradcheck::<keras_mnist::KerasMnist>(&[]);
    gradcheck::<linear_regression::Linear>(&[]);
    gradcheck::<logistic::Logistic>(&[]);
    gradcheck::<losses::Mae>(&[]);
    gradcheck::<losses::BceLogits>(&[]);
    gradcheck::<losses::BceFromLogits>(&[]);
    gradcheck::<losses::SoftTargets>(&[]);
    gradcheck::<losses::SoftProbs>(&[]);
    gradcheck::<losses::SparseLogits>(&[]);
    gradcheck::<losses::SmoothedProbs>(&[]);
    gradcheck::<losses::ProbsUnfused>(&[]);
    gradcheck::<mnist_mlp::MnistMlp>(&[]);
    gradcheck::<multi_label::MultiLabel>(&[]);
    gradcheck::<no_bias::NoBias>(&[]);
    gradcheck::<residual::Residual>(&[]);
    gradcheck::<sequence::TinyLm>(&[]);
    gradcheck::<shared_input_gradient::SharedGrad>(&[]);
    gradcheck::<sine_regression::Sine>(&[]);
    gradcheck::<softmax_mse::SoftMse>(&[]);
    gradcheck::<stacked_activations::Stacked>(&[]);
    // The straight-through estimator passes the gradient through the step unchanged: for the
    // layer before it that is a chosen surrogate, not the derivative, so only the layer after
    // the step is compared here (the rule itself is checked below).
    gradcheck::<straight_through::StraightThrough>(&["before."]);
    gradcheck::<two_models::Encoder>(&[]);
    gradcheck::<two_models::Classifier>(&[]);
    gradcheck::<two_outputs::TwoHeads>(&[]);
    gradcheck::<xor::Xor>(&[]);
}

/// The straight-through step: the gradient reaching the step's input equals the gradient of
/// its output, as if the step were the identity.
#[test]
fn straight_through_passes_gradients() {
    use straight_through::StraightThrough;
    let mut m = StraightThrough::new(3);
    let mut ws = m.workspace(2);
    let x = [0.3, -0.2, 0.5, 0.1, -0.4, 0.2];
    m.forward_train(&mut ws, &x).unwrap();
    let d = [1.0, -2.0];
    m.backward(&mut ws, &x, &d).unwrap();
    // out_b = Σ_j after.weight[j] · step(z_bj) + c, so with the step passed through,
    // d / d before.bias[j] = Σ_b d_b · after.weight[j].
    let w = m.param("after.weight").unwrap().to_vec();
    let info = StraightThrough::PARAMS
        .iter()
        .find(|p| p.name == "before.bias")
        .unwrap();
    let bias_grad = &m.grads()[info.offset..info.offset + info.len];
    for (j, g) in bias_grad.iter().enumerate() {
        let expected = (d[0] + d[1]) * w[j];
        assert!((g - expected).abs() < 1e-12, "{g} vs {expected}");
    }
}
