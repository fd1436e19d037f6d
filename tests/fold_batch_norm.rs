//! Batch norm folded into the convolution before it for `predict` (`passes/fold_batch_norm.rs`):
//! the generated `f32` code must give the outputs of the unfolded model, and must refold after
//! anything that changes the parameters or the running statistics, on the same workspace.
//!
//! The reference is the IR interpreter running the program before folding (`Stage::Grad`)
//! in `f64`, from the `f32` model's parameters and state. An output passes when it is within
//! 1e-5 of it: the outputs are probabilities (at most 1), and `f32` arithmetic over the sums
//! here (at most 36 products per convolution output, 24 per dense output) costs of order 1e-6,
//! while folding with stale or wrong statistics moves them by 1e-3 or more (each step below
//! changes the model by at least that much, and the test checks it does).
//!
//! The `f64` interpreter test (`interpreter.rs`) compares the folded `f64` code with the same
//! reference to 1e-9 on every fixture; this test covers `f32`, which users run, and the
//! revision stamp that decides when to refold.

use nnc::runtime::{Model, Rng};
use nnc_core::interp::{self, Env, Tensor, Value};
use nnc_core::ir::{Program, Schedule};

mod fixture {
    nnc::include_model!("tests/fixtures/ok/conv.nnc");
    pub const SOURCE: &str = include_str!("fixtures/ok/conv.nnc");
}
use fixture::FoldedBn;

const BATCH: usize = 5;

/// The model's program before folding.
fn unfolded_program() -> Program {
    let programs = nnc_core::report::programs_at(fixture::SOURCE, nnc_core::Stage::Grad).unwrap();
    let p = programs.into_iter().find(|p| p.name == "FoldedBn").unwrap();
    assert!(p.inference.is_none(), "folding happens after autodiff");
    p
}

/// The unfolded model's inference output for `x`, in `f64`.
fn reference(p: &Program, model: &FoldedBn, x: &[f32]) -> Vec<f64> {
    let f64s = |v: &[f32]| v.iter().map(|&e| f64::from(e)).collect::<Vec<f64>>();
    let tensor = |shape: &[usize], v: &[f32]| Tensor::new(shape.to_vec(), f64s(v)).unwrap();
    let mut env = Env::new(BATCH);
    env.inputs = vec![Value::Float(tensor(&[BATCH, 2, 8, 8], x))];
    env.params = p
        .params
        .iter()
        .map(|q| tensor(&q.shape, model.param(&q.name).unwrap()))
        .collect();
    env.state = p
        .states
        .iter()
        .map(|s| tensor(&s.shape, Model::state_tensor(model, &s.name).unwrap()))
        .collect();
    let values = interp::run(p, &mut env, Schedule::PREDICT).unwrap();
    values.outputs(p).unwrap()[0].data.clone()
}

/// The largest difference between `predict` and the reference.
fn error(p: &Program, model: &FoldedBn, ws: &mut fixture::FoldedBnWorkspace, x: &[f32]) -> f64 {
    let expected = reference(p, model, x);
    let got = model.predict(ws, x).unwrap();
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(&expected)
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max)
}

fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal(0.0, 1.0) as f32).collect()
}

#[test]
fn folded_predictions_match_the_unfolded_model() {
    let p = unfolded_program();
    let mut rng = Rng::new(7);
    let mut model = FoldedBn::new(3);
    let mut ws = model.workspace(BATCH);
    let x = random(&mut rng, BATCH * 2 * 8 * 8);
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 4).collect();
    let tolerance = 1e-5;
    let mut last = model.predict(&mut ws, &x).unwrap().to_vec();
    // Each change below must move the predictions, or it would not show a stale fold.
    let mut check = |what: &str, model: &FoldedBn, ws: &mut fixture::FoldedBnWorkspace| {
        let e = error(&p, model, ws, &x);
        println!("{what}: largest difference {e:.1e}");
        assert!(
            e <= tolerance,
            "{what}: predict is {e:.1e} from the unfolded model"
        );
        let now = model.predict(ws, &x).unwrap().to_vec();
        let moved = now
            .iter()
            .zip(&last)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            moved > 1e-3,
            "{what}: the predictions moved by {moved:.1e} only"
        );
        last = now;
    };

    // Training moves both the parameters and the running statistics.
    for _ in 0..5 {
        model.train_step(&mut ws, &x, &labels).unwrap();
    }
    check("after training", &model, &mut ws);
    model.forward_train(&mut ws, &x).unwrap();
    check("after a forward pass in training mode", &model, &mut ws);
    for v in model.state_mut().iter_mut() {
        *v *= 1.5;
    }
    check("after editing the running statistics", &model, &mut ws);
    model.params_mut()[0] += 1.0;
    check("after editing a parameter", &model, &mut ws);
    model.reset_state();
    check("after resetting the state", &model, &mut ws);

    // A workspace moved to another model refolds from that model.
    let other = FoldedBn::new(4);
    check("on another model's workspace", &other, &mut ws);
}

#[test]
fn outputs_follow_the_last_call() {
    // `Model::output` reads the outputs of the last `predict` or `forward_train`, which the
    // inference pass and the forward pass keep in different places.
    let mut rng = Rng::new(8);
    let mut model = FoldedBn::new(5);
    let mut ws = model.workspace(BATCH);
    let x = random(&mut rng, BATCH * 2 * 8 * 8);
    let labels: Vec<u32> = vec![0, 1, 2, 3, 0];
    model.train_step(&mut ws, &x, &labels).unwrap();
    let predicted = model.predict(&mut ws, &x).unwrap().to_vec();
    assert_eq!(FoldedBn::output(&ws, 0).unwrap(), predicted.as_slice());
    let trained = model.forward_train(&mut ws, &x).unwrap().to_vec();
    assert_ne!(
        trained, predicted,
        "training mode normalises with the batch's statistics"
    );
    assert_eq!(FoldedBn::output(&ws, 0).unwrap(), trained.as_slice());
}
