//! Tests of safetensors checkpoints: round trips of parameters and optimizer state in `f32` and
//! `f64`, refusals that list every mismatch and leave the model unchanged, corrupt files, atomic
//! writes, and the on-disk layout checked against the safetensors format rules by hand (without
//! Python). The models are a small hand-written `Model`, since this crate cannot depend on the
//! compiler that generates real ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use nnc_runtime::model::{expect_inputs, expect_targets};
use nnc_runtime::{
    Adam, AdamConfig, ElemKind, Float, Metrics, Model, Optimizer, ParamInfo, Sgd, SgdConfig,
    TensorInfo, Values,
};
use nnc_train::checkpoint::{self, Loaded, SaveOptions};
use nnc_train::Error;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

/// The number of inputs of the linear model.
const IN: usize = 3;
/// The number of outputs of the linear model.
const OUT: usize = 2;
/// The trainable prefix of the parameters: the weight and the bias.
const TRAINABLE: usize = OUT * IN + OUT;
/// The parameters: `y = W x + b + shift`, where `shift` is not trained, so that the optimizer
/// state covers a strict prefix of the parameters as in generated models.
const PARAMS: &[ParamInfo] = &[
    ParamInfo {
        name: "linear.weight",
        shape: &[OUT, IN],
        offset: 0,
        len: OUT * IN,
        trainable: true,
    },
    ParamInfo {
        name: "linear.bias",
        shape: &[OUT],
        offset: OUT * IN,
        len: OUT,
        trainable: true,
    },
    ParamInfo {
        name: "shift",
        shape: &[OUT],
        offset: TRAINABLE,
        len: OUT,
        trainable: false,
    },
];

/// What varies between the test models: the name and the optimizer.
trait Spec: 'static {
    /// The model's name.
    const NAME: &'static str;
    /// A fresh optimizer for the trainable prefix.
    fn optimizer<T: Float>() -> Box<dyn Optimizer<T>>;
}

/// The model `Linear` trained with Adam.
struct WithAdam;
/// The model `Linear` trained with SGD and momentum: same name and parameters, another optimizer.
struct WithMomentum;
/// The model `Other`: the same parameters under another name.
struct Other;

impl Spec for WithAdam {
    const NAME: &'static str = "Linear";
    fn optimizer<T: Float>() -> Box<dyn Optimizer<T>> {
        let config = AdamConfig {
            lr: 0.05,
            ..AdamConfig::default()
        };
        Box::new(Adam::new(TRAINABLE, config))
    }
}

impl Spec for WithMomentum {
    const NAME: &'static str = "Linear";
    fn optimizer<T: Float>() -> Box<dyn Optimizer<T>> {
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..SgdConfig::default()
        };
        Box::new(Sgd::new(TRAINABLE, config))
    }
}

impl Spec for Other {
    const NAME: &'static str = "Other";
    fn optimizer<T: Float>() -> Box<dyn Optimizer<T>> {
        WithAdam::optimizer()
    }
}

/// A linear model `y = W x + b + shift` with a mean-squared-error loss.
struct Linear<T: Float, S> {
    params: Vec<T>,
    grads: Vec<T>,
    optimizer: Box<dyn Optimizer<T>>,
    spec: PhantomData<S>,
}

impl<T: Float, S: Spec> Linear<T, S> {
    /// Writes the outputs for the batch `x` into `y`.
    fn forward(&self, x: &[T], y: &mut Vec<T>) {
        y.clear();
        for sample in x.chunks_exact(IN) {
            for o in 0..OUT {
                let mut sum = self.params[OUT * IN + o] + self.params[TRAINABLE + o];
                for (i, &xi) in sample.iter().enumerate() {
                    sum += self.params[o * IN + i] * xi;
                }
                y.push(sum);
            }
        }
    }
}

impl<T: Float, S: Spec> Model for Linear<T, S> {
    type Elem = T;
    type Workspace = Vec<T>;
    const NAME: &'static str = S::NAME;
    const INPUTS: &'static [TensorInfo] = &[TensorInfo {
        name: "x",
        shape: &[IN],
        kind: ElemKind::Float,
    }];
    const TARGETS: &'static [TensorInfo] = &[TensorInfo {
        name: "y",
        shape: &[OUT],
        kind: ElemKind::Float,
    }];
    const OUTPUTS: &'static [TensorInfo] = &[TensorInfo {
        name: "y",
        shape: &[OUT],
        kind: ElemKind::Float,
    }];
    const PARAMS: &'static [ParamInfo] = PARAMS;
    const HAS_LOSS: bool = true;

    fn new(seed: u64) -> Self {
        let params = (0..TRAINABLE + OUT)
            .map(|i| T::from_f64(((seed as f64 + 1.0) * (i as f64 + 1.0) * 0.618).sin() * 0.5))
            .collect();
        Linear {
            params,
            grads: vec![T::ZERO; TRAINABLE + OUT],
            optimizer: S::optimizer(),
            spec: PhantomData,
        }
    }

    fn try_workspace_with_threads(
        &self,
        capacity: usize,
        _threads: usize,
    ) -> Result<Vec<T>, nnc_runtime::Error> {
        Ok(Vec::with_capacity(capacity * OUT))
    }

    fn params(&self) -> &[T] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }

    fn grads(&self) -> &[T] {
        &self.grads
    }

    fn forward_backward_dyn(
        &mut self,
        ws: &mut Vec<T>,
        inputs: &[Values<'_, T>],
        targets: &[Values<'_, T>],
    ) -> Result<T, nnc_runtime::Error> {
        expect_inputs(S::NAME, inputs, 1)?;
        expect_targets(S::NAME, targets.len(), 1)?;
        let (x, t) = (inputs[0].float("x")?, targets[0].float("y")?);
        self.forward(x, ws);
        let scale = T::from_usize(ws.len());
        let mut loss = T::ZERO;
        self.grads.iter_mut().for_each(|g| *g = T::ZERO);
        for (n, sample) in x.chunks_exact(IN).enumerate() {
            for o in 0..OUT {
                let diff = ws[n * OUT + o] - t[n * OUT + o];
                loss += diff * diff / scale;
                let d = T::from_f64(2.0) * diff / scale;
                self.grads[OUT * IN + o] += d;
                for (i, &xi) in sample.iter().enumerate() {
                    self.grads[o * IN + i] += d * xi;
                }
            }
        }
        Ok(loss)
    }

    fn evaluate_dyn(
        &self,
        _ws: &mut Vec<T>,
        _inputs: &[Values<'_, T>],
        _targets: &[Values<'_, T>],
    ) -> Result<Metrics<T>, nnc_runtime::Error> {
        Err(nnc_runtime::Error::NoLoss { model: S::NAME })
    }

    fn metrics(_ws: &Vec<T>) -> Metrics<T> {
        Metrics::default()
    }

    fn update(&mut self) {
        let (params, grads) = (&mut self.params[..TRAINABLE], &self.grads[..TRAINABLE]);
        self.optimizer
            .step(nnc_runtime::Exec::serial(), params, grads);
    }

    fn update_with(&mut self, _ws: &Vec<T>) {
        self.update();
    }

    fn predict_dyn<'w>(
        &self,
        ws: &'w mut Vec<T>,
        inputs: &[Values<'_, T>],
    ) -> Result<&'w [T], nnc_runtime::Error> {
        expect_inputs(S::NAME, inputs, 1)?;
        self.forward(inputs[0].float("x")?, ws);
        Ok(ws)
    }

    fn forward_train_dyn(
        &mut self,
        _ws: &mut Vec<T>,
        _inputs: &[Values<'_, T>],
    ) -> Result<(), nnc_runtime::Error> {
        Err(nnc_runtime::Error::NoLoss { model: S::NAME })
    }

    fn backward_dyn(
        &mut self,
        _ws: &mut Vec<T>,
        _inputs: &[Values<'_, T>],
        _d_outputs: &[&[T]],
    ) -> Result<(), nnc_runtime::Error> {
        Err(nnc_runtime::Error::NoLoss { model: S::NAME })
    }

    fn output(ws: &Vec<T>, index: usize) -> Option<&[T]> {
        (index == 0).then_some(&ws[..])
    }

    fn input_grad(_ws: &Vec<T>, _index: usize) -> Option<&[T]> {
        None
    }

    fn optimizer(&self) -> &dyn Optimizer<T> {
        &*self.optimizer
    }

    fn optimizer_mut(&mut self) -> &mut dyn Optimizer<T> {
        &mut *self.optimizer
    }
}

/// A batch of four samples and their targets.
fn batch<T: Float>() -> (Vec<T>, Vec<T>) {
    let x = [
        0.5, -1.0, 2.0, 1.5, 0.25, -0.75, -2.0, 1.0, 0.0, 0.3, 0.6, -0.9,
    ];
    let t = [1.0, -1.0, 0.5, 2.0, -1.5, 0.0, 0.25, 0.75];
    (
        x.iter().map(|&v| T::from_f64(v)).collect(),
        t.iter().map(|&v| T::from_f64(v)).collect(),
    )
}

/// Runs `steps` training steps on the batch.
fn train<M: Model>(model: &mut M, steps: usize) {
    let (x, t) = batch::<M::Elem>();
    let mut ws = model.workspace(4);
    for _ in 0..steps {
        model
            .train_step_dyn(&mut ws, &[Values::Float(&x)], &[Values::Float(&t)])
            .expect("train step");
    }
}

/// The model's outputs for the batch.
fn predict<M: Model>(model: &M) -> Vec<M::Elem> {
    let (x, _) = batch::<M::Elem>();
    let mut ws = model.workspace(4);
    model
        .predict_dyn(&mut ws, &[Values::Float(&x)])
        .expect("predict")
        .to_vec()
}

/// The bits of each value (`to_f64` is exact for both element types).
fn bits<T: Float>(values: &[T]) -> Vec<u64> {
    values.iter().map(|v| v.to_f64().to_bits()).collect()
}

/// The optimizer's state buffers by name, as bits, and its step count.
fn state<M: Model>(model: &M) -> (BTreeMap<&'static str, Vec<u64>>, u64) {
    let optimizer = model.optimizer();
    let buffers = optimizer
        .state()
        .into_iter()
        .map(|(name, values)| (name, bits(values)))
        .collect();
    (buffers, optimizer.steps())
}

/// Everything `load` may change: the parameters' and the optimizer's bits and the step count.
fn snapshot<M: Model>(model: &M) -> (Vec<u64>, BTreeMap<&'static str, Vec<u64>>, u64) {
    let (buffers, steps) = state(model);
    (bits(model.params()), buffers, steps)
}

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nnc-train-checkpoint-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// The names of the entries in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the test directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The problems of a `Checkpoint` error, failing on any other result.
fn problems(result: Result<Loaded, Error>) -> Vec<String> {
    match result {
        Err(Error::Checkpoint {
            model, problems, ..
        }) => {
            assert_eq!(model, "Linear");
            problems
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

/// Rewrites the checkpoint `from` into `to` with its tensors passed through `edit`, which gets
/// them as (name, dtype, shape, bytes), and the same metadata.
fn rewrite(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
) {
    let bytes = std::fs::read(from).expect("read the checkpoint");
    let (_, metadata) = SafeTensors::read_metadata(&bytes).expect("parse the header");
    let file = SafeTensors::deserialize(&bytes).expect("parse the checkpoint");
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape = view.shape().to_vec();
            (name, view.dtype(), shape, view.data().to_vec())
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let view = TensorView::new(*dtype, shape.clone(), data).expect("a consistent tensor");
            (name.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, metadata.metadata().clone()).expect("serialize");
    std::fs::write(to, out).expect("write the rewritten checkpoint");
}

/// Parameters round-trip bit for bit, so predictions do too; an absent optimizer state leaves the
/// loading model's optimizer as it was.
fn round_trip<T: Float>(dir: &str) {
    let dir = temp_dir(dir);
    let path = dir.join("linear.safetensors");
    let mut trained = Linear::<T, WithAdam>::new(1);
    train(&mut trained, 3);
    checkpoint::save(&trained, &path, &SaveOptions::default()).expect("save");

    let mut fresh = Linear::<T, WithAdam>::new(2);
    assert_ne!(bits(fresh.params()), bits(trained.params()));
    let optimizer_before = state(&fresh);
    let loaded = checkpoint::load(&mut fresh, &path).expect("load");
    assert_eq!(
        loaded,
        Loaded {
            optimizer: false,
            steps: None
        }
    );
    assert_eq!(bits(fresh.params()), bits(trained.params()));
    assert_eq!(bits(&predict(&fresh)), bits(&predict(&trained)));
    assert_eq!(state(&fresh), optimizer_before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn round_trip_reproduces_parameters_and_predictions_f32() {
    round_trip::<f32>("round-trip-f32");
}

#[test]
fn round_trip_reproduces_parameters_and_predictions_f64() {
    round_trip::<f64>("round-trip-f64");
}

/// Optimizer state and step count round-trip, and one more step after loading equals one more
/// step of the original model, bit for bit.
fn resume<T: Float, S: Spec>(dir: &str) {
    let dir = temp_dir(dir);
    let path = dir.join("linear.safetensors");
    let mut original = Linear::<T, S>::new(1);
    train(&mut original, 3);
    let options = SaveOptions {
        optimizer: true,
        ..SaveOptions::default()
    };
    checkpoint::save(&original, &path, &options).expect("save");

    // The loading model has taken a step of its own, so every buffer and the count differ.
    let mut resumed = Linear::<T, S>::new(5);
    train(&mut resumed, 1);
    assert_ne!(state(&resumed), state(&original));
    let loaded = checkpoint::load(&mut resumed, &path).expect("load");
    assert_eq!(
        loaded,
        Loaded {
            optimizer: true,
            steps: Some(3)
        }
    );
    assert_eq!(snapshot(&resumed), snapshot(&original));

    train(&mut original, 1);
    train(&mut resumed, 1);
    assert_eq!(snapshot(&resumed), snapshot(&original));
    assert_eq!(bits(&predict(&resumed)), bits(&predict(&original)));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn adam_state_round_trips_and_training_resumes_identically_f32() {
    resume::<f32, WithAdam>("resume-adam-f32");
}

#[test]
fn adam_state_round_trips_and_training_resumes_identically_f64() {
    resume::<f64, WithAdam>("resume-adam-f64");
}

#[test]
fn momentum_state_round_trips_and_training_resumes_identically() {
    resume::<f32, WithMomentum>("resume-momentum");
}

#[test]
fn a_checkpoint_of_another_model_is_refused_and_the_model_is_unchanged() {
    let dir = temp_dir("other-model");
    let path = dir.join("other.safetensors");
    checkpoint::save(
        &Linear::<f32, Other>::new(1),
        &path,
        &SaveOptions::default(),
    )
    .expect("save");

    let mut model = Linear::<f32, WithAdam>::new(2);
    let before = snapshot(&model);
    let error = checkpoint::load(&mut model, &path).expect_err("another model's checkpoint");
    let message = error.to_string();
    assert_eq!(
        problems(Err(error)),
        ["it was written by model `Other`, not `Linear`"]
    );
    assert!(message.contains("does not fit model `Linear`"), "{message}");
    assert_eq!(snapshot(&model), before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn every_mismatch_is_listed_in_one_error_and_the_model_is_unchanged() {
    let dir = temp_dir("mismatches");
    let good = dir.join("good.safetensors");
    let bad = dir.join("bad.safetensors");
    checkpoint::save(
        &Linear::<f32, WithAdam>::new(1),
        &good,
        &SaveOptions::default(),
    )
    .expect("save");
    rewrite(&good, &bad, |tensors| {
        tensors.retain(|t| t.0 != "linear.bias");
        for (name, dtype, shape, data) in tensors.iter_mut() {
            if name == "linear.weight" {
                *shape = vec![IN, OUT];
            } else if name == "shift" {
                *dtype = Dtype::F64;
                *data = [0.5f64, -0.5]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect();
            }
        }
        tensors.push(("extra.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
    });

    let mut model = Linear::<f32, WithAdam>::new(2);
    let before = snapshot(&model);
    let problems = problems(checkpoint::load(&mut model, &bad));
    let expected = [
        "parameter `linear.weight` has shape [3, 2] in the file but [2, 3] in the model",
        "missing parameter `linear.bias`",
        "parameter `shift` is stored as F64 but the model's elements are f32",
        "unexpected tensor `extra.weight`",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, start) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(start),
            "{problem:?} should start with {start:?}"
        );
    }
    assert_eq!(snapshot(&model), before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn an_f32_checkpoint_widens_exactly_into_an_f64_model_but_not_the_reverse() {
    let dir = temp_dir("dtypes");
    let narrow = dir.join("f32.safetensors");
    let wide = dir.join("f64.safetensors");
    let mut small = Linear::<f32, WithAdam>::new(1);
    train(&mut small, 2);
    checkpoint::save(
        &small,
        &narrow,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )
    .expect("save f32");

    let mut big = Linear::<f64, WithAdam>::new(2);
    checkpoint::load(&mut big, &narrow).expect("f32 into f64");
    let widened: Vec<f64> = small.params().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(bits(big.params()), bits(&widened));
    assert_eq!(big.optimizer().steps(), 2);
    for ((_, a), (_, b)) in big
        .optimizer()
        .state()
        .iter()
        .zip(small.optimizer().state())
    {
        let widened: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(bits(a), bits(&widened));
    }

    checkpoint::save(&big, &wide, &SaveOptions::default()).expect("save f64");
    let before = snapshot(&small);
    let problems = problems(checkpoint::load(&mut small, &wide));
    assert_eq!(problems.len(), PARAMS.len(), "{problems:#?}");
    for (problem, info) in problems.iter().zip(PARAMS) {
        let start = format!(
            "parameter `{}` is stored as F64 but the model's elements are f32",
            info.name
        );
        assert!(problem.starts_with(&start), "{problem:?}");
    }
    assert_eq!(snapshot(&small), before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn incomplete_or_foreign_optimizer_state_is_refused_and_the_model_is_unchanged() {
    let dir = temp_dir("optimizer-mismatch");
    let good = dir.join("adam.safetensors");
    let bad = dir.join("bad.safetensors");
    let mut trained = Linear::<f32, WithAdam>::new(1);
    train(&mut trained, 2);
    checkpoint::save(
        &trained,
        &good,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )
    .expect("save");

    // One buffer of one parameter is missing, and a non-trainable parameter has state.
    rewrite(&good, &bad, |tensors| {
        tensors.retain(|t| t.0 != "optimizer.exp_avg_sq.linear.bias");
        let zeros = vec![0; OUT * 4];
        tensors.push((
            "optimizer.exp_avg.shift".into(),
            Dtype::F32,
            vec![OUT],
            zeros,
        ));
    });
    let mut model = Linear::<f32, WithAdam>::new(2);
    let model_before = snapshot(&model);
    let problems_found = problems(checkpoint::load(&mut model, &bad));
    assert_eq!(problems_found.len(), 2, "{problems_found:#?}");
    assert!(
        problems_found[0].starts_with("missing optimizer state `optimizer.exp_avg_sq.linear.bias`")
    );
    assert!(problems_found[1].starts_with("unexpected optimizer state `optimizer.exp_avg.shift`"));
    assert_eq!(snapshot(&model), model_before);

    // Adam's buffers do not fit SGD with momentum: each is listed, and so is the missing buffer.
    let mut sgd = Linear::<f32, WithMomentum>::new(2);
    let before = snapshot(&sgd);
    let problems_found = problems(checkpoint::load(&mut sgd, &good));
    let expected = [
        "missing optimizer state `optimizer.momentum_buffer.linear.weight`",
        "missing optimizer state `optimizer.momentum_buffer.linear.bias`",
        "unexpected optimizer state `optimizer.exp_avg.linear.bias`",
        "unexpected optimizer state `optimizer.exp_avg.linear.weight`",
        "unexpected optimizer state `optimizer.exp_avg_sq.linear.bias`",
        "unexpected optimizer state `optimizer.exp_avg_sq.linear.weight`",
    ];
    assert_eq!(problems_found.len(), expected.len(), "{problems_found:#?}");
    for (problem, start) in problems_found.iter().zip(expected) {
        assert!(
            problem.starts_with(start),
            "{problem:?} should start with {start:?}"
        );
    }
    assert_eq!(snapshot(&sgd), before);

    // A corrupt step count is a problem too. The value keeps its length, so the header stays
    // consistent.
    let mut bytes = std::fs::read(&good).expect("read");
    let needle = b"\"optimizer_steps\":\"2\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the step count is in the header");
    bytes[at + needle.len() - 2] = b'x';
    std::fs::write(&bad, &bytes).expect("write");
    let problems_found = problems(checkpoint::load(&mut model, &bad));
    assert_eq!(
        problems_found,
        ["its `optimizer_steps` metadata `x` is not a step count"]
    );
    assert_eq!(snapshot(&model), model_before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn truncated_corrupt_and_missing_files_are_errors_without_panics() {
    let dir = temp_dir("corrupt");
    let good = dir.join("good.safetensors");
    let bad = dir.join("bad.safetensors");
    checkpoint::save(
        &Linear::<f32, WithAdam>::new(1),
        &good,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )
    .expect("save");
    let bytes = std::fs::read(&good).expect("read");
    let mut model = Linear::<f32, WithAdam>::new(2);
    let before = snapshot(&model);

    let mut corrupt: Vec<(String, Vec<u8>)> = (0..bytes.len())
        .map(|n| (format!("truncated to {n} bytes"), bytes[..n].to_vec()))
        .collect();
    let mut extended = bytes.clone();
    extended.push(0);
    corrupt.push(("one byte too many".into(), extended));
    corrupt.push((
        "garbage".into(),
        b"this is not a checkpoint at all".to_vec(),
    ));
    corrupt.push((
        "a huge header length".into(),
        u64::MAX.to_le_bytes().to_vec(),
    ));
    let mut not_json = 8u64.to_le_bytes().to_vec();
    not_json.extend_from_slice(b"{{{{{{{{");
    corrupt.push(("a header that is not JSON".into(), not_json));
    let mut not_utf8 = 8u64.to_le_bytes().to_vec();
    not_utf8.extend_from_slice(&[0xff; 8]);
    corrupt.push(("a header that is not UTF-8".into(), not_utf8));
    for (what, contents) in corrupt {
        std::fs::write(&bad, &contents).expect("write");
        match checkpoint::load(&mut model, &bad) {
            Err(Error::Format { format, file, .. }) => {
                assert_eq!(format, "safetensors", "{what}");
                assert_eq!(file, bad, "{what}");
            }
            other => panic!("{what}: expected a format error, got {other:?}"),
        }
        assert_eq!(snapshot(&model), before, "{what}");
    }

    // Flipping any single byte must never panic, whatever the outcome.
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0xff;
        std::fs::write(&bad, &flipped).expect("write");
        let mut scratch = Linear::<f32, WithAdam>::new(2);
        let _ = checkpoint::load(&mut scratch, &bad);
    }

    let missing = dir.join("missing.safetensors");
    match checkpoint::load(&mut model, &missing) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn saving_into_a_missing_directory_fails_and_leaves_nothing() {
    let dir = temp_dir("no-dir");
    let missing = dir.join("missing");
    let path = missing.join("linear.safetensors");
    let model = Linear::<f32, WithAdam>::new(1);
    match checkpoint::save(&model, &path, &SaveOptions::default()) {
        Err(Error::Io { path: reported, .. }) => assert_eq!(reported, path),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(!missing.exists());
    assert!(entries(&dir).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn saving_over_an_existing_file_replaces_it_completely() {
    let dir = temp_dir("replace");
    let path = dir.join("linear.safetensors");
    let reference = dir.join("reference.safetensors");
    // A longer file than the checkpoint, so that a write without truncation would leave a tail.
    std::fs::write(&path, vec![b'x'; 100_000]).expect("write");
    let mut model = Linear::<f64, WithAdam>::new(1);
    train(&mut model, 1);
    let options = SaveOptions {
        optimizer: true,
        ..SaveOptions::default()
    };
    checkpoint::save(&model, &path, &options).expect("save over");
    checkpoint::save(&model, &reference, &options).expect("save fresh");
    // The metadata's order may differ between two saves, so the files are compared by length and
    // content; the layout check also proves that nothing follows the last tensor.
    let (replaced, fresh) = (
        std::fs::read(&path).expect("read"),
        std::fs::read(&reference).expect("read"),
    );
    assert_eq!(replaced.len(), fresh.len());
    assert_eq!(check_layout(&replaced), check_layout(&fresh));
    // No temporary file is left behind.
    assert_eq!(
        entries(&dir),
        ["linear.safetensors", "reference.safetensors"]
    );

    let mut loaded = Linear::<f64, WithAdam>::new(2);
    checkpoint::load(&mut loaded, &path).expect("load");
    assert_eq!(snapshot(&loaded), snapshot(&model));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_failed_save_leaves_the_existing_target_untouched_and_no_temporary_file() {
    let dir = temp_dir("failed-save");
    // The target is a non-empty directory, which a file cannot be renamed over.
    let path = dir.join("linear.safetensors");
    std::fs::create_dir(&path).expect("create");
    std::fs::write(path.join("keep"), b"kept").expect("write");
    let model = Linear::<f32, WithAdam>::new(1);
    match checkpoint::save(&model, &path, &SaveOptions::default()) {
        Err(Error::Io { path: reported, .. }) => assert_eq!(reported, path),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(entries(&dir), ["linear.safetensors"]);
    assert_eq!(std::fs::read(path.join("keep")).expect("read"), b"kept");
    std::fs::remove_dir_all(dir).ok();
}

/// A tensor as read from a file by hand: its dtype's name, its shape and its bytes.
type RawTensor = (String, Vec<usize>, Vec<u8>);

/// Checks `bytes` against the safetensors format rules by hand and returns the metadata and each
/// tensor by name.
fn check_layout(bytes: &[u8]) -> (Value, BTreeMap<String, RawTensor>) {
    // The first 8 bytes are the header's length N, a little-endian u64.
    assert!(bytes.len() >= 8);
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    assert!(8 + n <= bytes.len(), "the header runs past the end");
    // The next N bytes are a UTF-8 JSON object, which may be followed by spaces; this writer pads
    // the header to a multiple of 8 bytes so that the data is aligned.
    assert_eq!(n % 8, 0, "the header is padded to a multiple of 8");
    let text = std::str::from_utf8(&bytes[8..8 + n]).expect("the header is UTF-8");
    let json = text.trim_end_matches(' ');
    assert!(json.starts_with('{') && json.ends_with('}'), "{text:?}");
    assert!(text.len() - json.len() < 8, "at most 7 bytes of padding");
    let header: serde_json::Map<String, Value> = serde_json::from_str(json).expect("JSON object");

    let data = &bytes[8 + n..];
    let mut metadata = Value::Null;
    let mut tensors = BTreeMap::new();
    let mut ranges = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            // The metadata is a map from strings to strings.
            let map = entry.as_object().expect("__metadata__ is an object");
            assert!(map.values().all(Value::is_string), "{map:?}");
            metadata = entry;
            continue;
        }
        let entry = entry.as_object().expect("a tensor entry is an object");
        let keys: BTreeSet<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["data_offsets", "dtype", "shape"]),
            "{name}"
        );
        let dtype = entry["dtype"]
            .as_str()
            .expect("dtype is a string")
            .to_string();
        let size = match dtype.as_str() {
            "F32" => 4,
            "F64" => 8,
            other => panic!("{name}: unexpected dtype {other}"),
        };
        let shape: Vec<usize> = entry["shape"]
            .as_array()
            .expect("shape is an array")
            .iter()
            .map(|d| d.as_u64().expect("a dimension is an integer") as usize)
            .collect();
        let offsets: Vec<usize> = entry["data_offsets"]
            .as_array()
            .expect("data_offsets is an array")
            .iter()
            .map(|o| o.as_u64().expect("an offset is an integer") as usize)
            .collect();
        let [begin, end] = offsets[..] else {
            panic!("{name}: data_offsets is not [begin, end]");
        };
        assert!(
            begin <= end && end <= data.len(),
            "{name}: [{begin}, {end})"
        );
        assert_eq!(
            end - begin,
            shape.iter().product::<usize>() * size,
            "{name}"
        );
        ranges.push((begin, end));
        tensors.insert(name, (dtype, shape, data[begin..end].to_vec()));
    }
    // The tensors' data is contiguous, without overlaps or gaps, and covers the rest exactly.
    ranges.sort();
    let mut at = 0;
    for (begin, end) in ranges {
        assert_eq!(begin, at, "a gap or an overlap at byte {at}");
        at = end;
    }
    assert_eq!(at, data.len(), "the data must end where the file does");
    (metadata, tensors)
}

/// The little-endian bytes of `values`, as the element type's own `to_le_bytes` gives them.
fn le_bytes<T: Float>(values: &[T]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| {
            let v = v.to_f64();
            if std::mem::size_of::<T>() == 4 {
                (v as f32).to_le_bytes().to_vec()
            } else {
                v.to_le_bytes().to_vec()
            }
        })
        .collect()
}

fn layout<T: Float>(dir: &str, elem: &str) {
    let dir = temp_dir(dir);
    let path = dir.join("linear.safetensors");
    let mut model = Linear::<T, WithAdam>::new(1);
    train(&mut model, 4);
    checkpoint::save(
        &model,
        &path,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )
    .expect("save");
    let (metadata, tensors) = check_layout(&std::fs::read(&path).expect("read"));

    let expected_metadata = serde_json::json!({
        "format": "nnc",
        "model": "Linear",
        "elem": elem,
        "optimizer_steps": "4",
    });
    assert_eq!(metadata, expected_metadata);

    let dtype = elem.to_uppercase();
    let mut expected = BTreeMap::new();
    for info in PARAMS {
        let values = &model.params()[info.offset..info.offset + info.len];
        expected.insert(
            info.name.to_string(),
            (dtype.clone(), info.shape.to_vec(), le_bytes(values)),
        );
    }
    for (buffer, values) in model.optimizer().state() {
        for info in PARAMS.iter().filter(|p| p.trainable) {
            let values = &values[info.offset..info.offset + info.len];
            expected.insert(
                format!("optimizer.{buffer}.{}", info.name),
                (dtype.clone(), info.shape.to_vec(), le_bytes(values)),
            );
        }
    }
    assert_eq!(tensors, expected);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_file_layout_follows_the_safetensors_format_f32() {
    layout::<f32>("layout-f32", "f32");
}

#[test]
fn the_file_layout_follows_the_safetensors_format_f64() {
    layout::<f64>("layout-f64", "f64");
}

#[test]
fn a_safetensors_file_without_nnc_metadata_is_refused() {
    // A safetensors file with matching tensors but no nnc metadata, as another tool would write.
    let dir = temp_dir("foreign");
    let good = dir.join("good.safetensors");
    let foreign = dir.join("foreign.safetensors");
    checkpoint::save(
        &Linear::<f32, WithAdam>::new(1),
        &good,
        &SaveOptions::default(),
    )
    .expect("save");
    let bytes = std::fs::read(&good).expect("read");
    let file = SafeTensors::deserialize(&bytes).expect("parse");
    let views: HashMap<String, TensorView<'_>> = file.tensors().into_iter().collect();
    let out = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(&foreign, out).expect("write");

    let mut model = Linear::<f32, WithAdam>::new(2);
    let before = snapshot(&model);
    let problems = problems(checkpoint::load(&mut model, &foreign));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("names no `model`"), "{problems:?}");
    assert_eq!(snapshot(&model), before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn caller_metadata_round_trips_and_nnc_keys_are_refused() {
    let dir = temp_dir("metadata");
    let path = dir.join("linear.safetensors");
    let model = Linear::<f32, WithAdam>::new(1);
    // A vocabulary with a newline, a quote and characters outside ASCII survives as text.
    let vocab = "\n \"'AZaz\u{4e00}\u{597d}";
    let options = SaveOptions {
        metadata: vec![("vocab".into(), vocab.into())],
        ..SaveOptions::default()
    };
    checkpoint::save(&model, &path, &options).expect("save");
    let metadata = checkpoint::metadata(&path).expect("metadata");
    assert_eq!(metadata.get("vocab").map(String::as_str), Some(vocab));
    assert_eq!(metadata.get("model").map(String::as_str), Some("Linear"));
    let own = SaveOptions {
        metadata: vec![("model".into(), "Mine".into())],
        ..SaveOptions::default()
    };
    let err = checkpoint::save(&model, dir.join("own.safetensors"), &own).unwrap_err();
    assert!(err.to_string().contains("`model` is nnc's own"), "{err}");
    assert!(!dir.join("own.safetensors").exists());
}
