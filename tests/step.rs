//! The step entry point (`passes/step.rs`): one position of each sequence from the state the
//! workspace carries. For every model of the recurrent fixtures, compiled to f64:
//! - stepping through a batch of sequences gives, at every position, `predict`'s outputs at
//!   that position of the whole sequences (at the last position only, for an output the model
//!   takes from the last step);
//! - the interpreter's run of the step pass (`Schedule::STEP`, carrying its state from call to
//!   call) gives the same numbers, which checks the pass's IR against the interpreter's own
//!   definitions of the scans from a given state and of the carried state's update.
//!
//! Also: `reset_sequences` starts over, another number of sequences is an error until then, and
//! a model whose positions meet outside recurrent layers has no step and says why.
//!
//! Tolerance: 1e-12 absolute on values of order 1. The step and the whole-sequence pass run the
//! same kernels on the same numbers, in f64; only the blocking of the products over rows
//! differs (one row per sequence against one per position), which moves sums by a few ulps.

use nnc::runtime::{ElemKind, Model, Rng, Values};
use nnc_core::interp::{self, Env, Tensor, Value};
use nnc_core::ir::{Program, Schedule};
use nnc_core::Stage;

mod fixtures {
    pub mod lstm {
        nnc::include_model!("tests/fixtures/ok/lstm.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/lstm.nnc");
    }
    pub mod rnn {
        nnc::include_model!("tests/fixtures/ok/rnn.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/rnn.nnc");
    }
    pub mod gru {
        nnc::include_model!("tests/fixtures/ok/gru.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/gru.nnc");
    }
    pub mod gpt {
        nnc::include_model!("tests/fixtures/ok/gpt.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/gpt.nnc");
    }
    pub mod attention {
        nnc::include_model!("tests/fixtures/ok/attention.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/attention.nnc");
    }
    pub mod padded {
        nnc::include_model!("tests/fixtures/ok/padded.nnc", elem = f64);
        pub const SOURCE: &str = include_str!("fixtures/ok/padded.nnc");
    }
}
use fixtures::{attention, gpt, gru, lstm, padded, rnn};

mod flat {
    nnc::model! {
        #![elem = f64]
        model Flat {
            input x: [4, 2];
            let h = x -> lstm enc(3) -> flatten -> dense out(2);
            output h;
            optimizer = sgd(lr = 0.1);
        }
    }
}

const BATCH: usize = 3;
const TOLERANCE: f64 = 1e-12;

/// One batch of inputs for `M`, whole sequences: ids in range, floats from a normal.
fn inputs<M: Model>(rng: &mut Rng) -> Vec<Value> {
    M::INPUTS
        .iter()
        .map(|info| {
            let n = BATCH * info.shape.iter().product::<usize>();
            match info.kind {
                ElemKind::Ids { range } => {
                    Value::Ids((0..n).map(|_| rng.below(range) as u32).collect())
                }
                ElemKind::Float => {
                    let data = (0..n).map(|_| rng.normal(0.0, 1.0)).collect();
                    Value::Float(Tensor::new(vec![n], data).unwrap())
                }
            }
        })
        .collect()
}

/// Position `t` of every sequence of `v` (per sample `steps` positions of `width` values).
fn position(v: &Value, steps: usize, t: usize) -> Value {
    let pick = |n: usize| -> Vec<usize> {
        let width = n / (BATCH * steps);
        (0..BATCH)
            .flat_map(|b| (0..width).map(move |k| (b * steps + t) * width + k))
            .collect()
    };
    match v {
        Value::Ids(ids) => Value::Ids(pick(ids.len()).into_iter().map(|i| ids[i]).collect()),
        Value::Float(x) => {
            let data: Vec<f64> = pick(x.data.len()).into_iter().map(|i| x.data[i]).collect();
            Value::Float(Tensor::new(vec![data.len()], data).unwrap())
        }
    }
}

fn view(v: &Value) -> Values<'_, f64> {
    match v {
        Value::Ids(ids) => Values::Ids(ids),
        Value::Float(x) => Values::Float(&x.data),
    }
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= TOLERANCE, "{what}[{i}]: {a} against {b}");
    }
}

/// The interpreter's step: the program's step pass on position `inputs`, from `carried`.
fn interpret_step<M: Model<Elem = f64>>(
    p: &Program,
    model: &M,
    inputs: &[Value],
    carried: &mut Vec<Tensor>,
    position: usize,
) -> Vec<f64> {
    let step = p.step.as_ref().unwrap();
    let mut env = Env::new(BATCH);
    env.position = position;
    env.inputs = inputs
        .iter()
        .zip(&step.inputs)
        .map(|(v, leaf)| match v {
            Value::Float(x) => {
                let shape = interp::resolve(&p.graph.ty(*leaf).shape, BATCH);
                Value::Float(Tensor::new(shape, x.data.clone()).unwrap())
            }
            ids => ids.clone(),
        })
        .collect();
    env.params = p
        .params
        .iter()
        .map(|q| Tensor::new(q.shape.clone(), model.param(&q.name).unwrap().to_vec()).unwrap())
        .collect();
    env.carried = carried.clone();
    let values = interp::run(p, &mut env, Schedule::STEP).unwrap();
    *carried = values.carried(p).unwrap();
    values.outputs(p).unwrap()[0].data.clone()
}

/// Steps `M` through a batch and checks every position against `predict` and the interpreter.
fn check<M: Model<Elem = f64>>(source: &str) {
    let programs = nnc_core::report::programs_at(source, Stage::Planned).unwrap();
    let p = programs.iter().find(|p| p.name == M::NAME).unwrap();
    assert!(M::HAS_STEP, "{} has no step: {:?}", M::NAME, p.step);
    let model = M::new(5);
    let mut rng = Rng::new(17);
    let whole = inputs::<M>(&mut rng);
    let steps = M::INPUTS[0].shape[0];
    let mut ws = model.workspace(BATCH);
    let views: Vec<Values<'_, f64>> = whole.iter().map(view).collect();
    let full = model.predict_dyn(&mut ws, &views).unwrap().to_vec();
    let per_position = full.len() / (BATCH * steps);
    let mut carried = Vec::new();
    for t in 0..steps {
        let at: Vec<Value> = whole.iter().map(|v| position(v, steps, t)).collect();
        let views: Vec<Values<'_, f64>> = at.iter().map(view).collect();
        let got = model.step_dyn(&mut ws, &views).unwrap().to_vec();
        let interpreted = interpret_step(p, &model, &at, &mut carried, t);
        let what = format!("{} at position {t}", M::NAME);
        close(&format!("{what}, interpreted"), &interpreted, &got);
        if got.len() == BATCH * per_position {
            // An output at every position.
            let want: Vec<f64> = full
                .chunks(steps * per_position)
                .flat_map(|s| s[t * per_position..(t + 1) * per_position].to_vec())
                .collect();
            close(&what, &got, &want);
        } else if t + 1 == steps {
            // An output taken from the last step, which is this one.
            close(&what, &got, &full);
        }
    }
}

#[test]
fn every_step_matches_the_whole_sequence() {
    check::<lstm::LstmClassifier>(lstm::SOURCE);
    check::<lstm::StackedLstm>(lstm::SOURCE);
    check::<rnn::RnnClassifier>(rnn::SOURCE);
    check::<rnn::StackedRnn>(rnn::SOURCE);
    check::<gru::GruClassifier>(gru::SOURCE);
    check::<gru::GruTagger>(gru::SOURCE);
    check::<gru::GruOverLstm>(gru::SOURCE);
    check::<gpt::TinyGpt>(gpt::SOURCE);
    check::<attention::CausalBlock>(attention::SOURCE);
    check::<padded::PaddedLstm>(padded::SOURCE);
}

/// Every ok fixture whose model has a step is checked above (SharedLstm reads two sequences
/// and takes their difference at the last step: it has one too, and is left to the interpreter
/// test of `predict`).
#[test]
fn every_fixture_with_a_step_is_checked() {
    let checked = [
        "LstmClassifier",
        "StackedLstm",
        "SharedLstm",
        "RnnClassifier",
        "StackedRnn",
        "GruClassifier",
        "GruTagger",
        "GruOverLstm",
        "TinyGpt",
        "CausalBlock",
        "PaddedLstm",
    ];
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ok");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for p in nnc_core::report::programs_at(&source, Stage::Planned).unwrap() {
            if p.step.is_ok() {
                assert!(
                    checked.contains(&p.name.as_str()),
                    "{} in {path:?} has a step",
                    p.name
                );
            }
        }
    }
}

#[test]
fn reset_sequences_starts_over_and_the_batch_must_stay() {
    let model = gru::GruTagger::new(2);
    let mut ws = model.workspace(4);
    let first = model.step(&mut ws, &[1, 2, 3]).unwrap().to_vec();
    let second = model.step(&mut ws, &[1, 2, 3]).unwrap().to_vec();
    assert_ne!(first, second, "the second step continues from the first");
    let err = model.step(&mut ws, &[1, 2]).unwrap_err().to_string();
    assert!(err.contains("carries the state of 3"), "{err}");
    ws.reset_sequences();
    assert_eq!(model.step(&mut ws, &[1, 2, 3]).unwrap(), &first[..]);
    // `predict` between steps leaves the carried state alone.
    model.predict(&mut ws, &[0; 18]).unwrap();
    assert_eq!(model.step(&mut ws, &[1, 2, 3]).unwrap(), &second[..]);
    ws.reset_sequences();
    assert_eq!(model.step(&mut ws, &[1, 2]).unwrap().len(), 2 * 7);
}

/// Attention's cache holds the positions the model was compiled for: one step more is an error
/// that names the way on, and `reset_sequences` starts the sequences again at position 0.
#[test]
fn attention_steps_until_its_context_is_full() {
    use gpt::TinyGpt;
    const { assert!(matches!(TinyGpt::STEP_POSITIONS, Some(6))) };
    let model = TinyGpt::new(4);
    let mut ws = model.workspace(2);
    let first = model.step(&mut ws, &[3, 4]).unwrap().to_vec();
    for t in 1..6 {
        assert_eq!(ws.position(), t);
        model.step(&mut ws, &[1, 2]).unwrap();
    }
    let err = model.step(&mut ws, &[1, 2]).unwrap_err().to_string();
    assert!(
        err.contains("hold 6 positions") && err.contains("reset_sequences"),
        "{err}"
    );
    ws.reset_sequences();
    assert_eq!(ws.position(), 0);
    assert_eq!(model.step(&mut ws, &[3, 4]).unwrap(), &first[..]);
}

#[test]
fn a_model_whose_positions_meet_elsewhere_has_no_step() {
    use flat::Flat;
    const { assert!(!Flat::HAS_STEP) };
    let model = Flat::new(0);
    let mut ws = model.workspace(1);
    let err = model
        .step_dyn(&mut ws, &[Values::Float(&[0.0; 2])])
        .unwrap_err();
    let err = err.to_string();
    assert!(err.contains("combines positions"), "{err}");
}
