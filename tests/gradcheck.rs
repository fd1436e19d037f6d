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

include!("common/ok_fixtures.rs");

/// Compiles every ok fixture to f64 and checks each of its models.
macro_rules! gradcheck_all {
    ($($module:ident => $file:literal: [$($model:ident),+ $(,)?]),* $(,)?) => {
        $(mod $module { nnc::include_model!($file, elem = f64); })*
        const COVERED: &[&str] = &[$($file),*];
        fn gradcheck_every_model() {
            $($(gradcheck::<$module::$model>(skip(stringify!($model)));)+)*
        }
    };
}

ok_fixtures!(gradcheck_all);

/// Parameter-name prefixes whose gradient is not a derivative by design. The straight-through
/// estimator passes the gradient through the step unchanged: for the layer before it that is
/// a chosen surrogate, not the derivative, so only the layer after the step is compared (the
/// rule itself is checked by `straight_through_passes_gradients`).
fn skip(model: &str) -> &'static [&'static str] {
    match model {
        "StraightThrough" => &["before."],
        _ => &[],
    }
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

    /// The float values of input `k`, to perturb; ids have none.
    fn floats(&mut self, k: usize) -> &mut [f64] {
        match &mut self.inputs[k] {
            Data::Float(v) => v,
            Data::Ids(_) => &mut [],
        }
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
        for i in 0..batch.floats(k).len() {
            let original = batch.floats(k)[i];
            batch.floats(k)[i] = original + h;
            let plus = f(batch, model, ws);
            batch.floats(k)[i] = original - h;
            let minus = f(batch, model, ws);
            batch.floats(k)[i] = original;
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
    assert_every_ok_fixture_listed(COVERED);
}

#[test]
fn gradients_match_finite_differences() {
    gradcheck_every_model();
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
