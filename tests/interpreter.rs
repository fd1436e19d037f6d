//! Differential test of the whole compiler against the IR's reference interpreter
//! (`nnc_core::interp`): every `ok` fixture is compiled to f64 Rust by `include_model!`, and each
//! of its models is run side by side with the interpreter on the model's program straight after
//! autodiff (`Stage::Grad`), before fusion. Whatever fusion, memory planning, code generation and
//! the runtime's kernels do must leave the numbers of the unfused semantics unchanged:
//! - `predict` (dropout off): every output, and the model's state (untouched); generated code
//!   and the fused program fold batch norm into the convolution before it, so this also checks
//!   the folding against the unfolded definition;
//! - `evaluate` (inference, the loss without its backward pass): the loss;
//! - `forward_backward` (dropout on, the masks drawn from the same seed as the model's): the
//!   loss, every trainable parameter's gradient and every `requires_grad` input's gradient;
//! - `forward_train` + `backward` from random output gradients: the training-mode outputs and the
//!   same gradients;
//! - after every call, the model's state (batch norm's running statistics), which the training
//!   calls move and the inference calls leave alone.
//!
//! Each is checked at batch sizes 3 and 1 (3 and 2 for models with state: batch norm cannot
//! train on one sample), with parameters moved off their initial values. The
//! interpreter also runs the fused program (`Stage::Fused`) and must agree with itself, which
//! checks the fused ops' definitions in the interpreter and the fusion rewrites at once. A
//! parameter gradient the schedule never reaches is zeroed by generated code, so it is compared
//! with zero; frozen parameters have none.
//!
//! Tolerance: both sides compute in f64 from the same definitions and differ only by the order
//! of summation (the runtime's products block and vectorise their sums, and on AVX-512 start
//! them at an alignment boundary), by fused
//! kernels that compute the same quantity another way (cross-entropy from logits rather than
//! from probabilities, `p − t` rather than the chain through `−t/p`) and by library functions
//! (`erf`, `exp`) that agree to an ulp or two. Each costs a few ulps of the magnitudes summed;
//! the longest sum here has 784 terms of order 1, so the expected absolute error is of order
//! 1e-13, and an entry that is small only because its terms cancel carries that absolute error
//! as a larger relative one. An entry passes when |a − b| ≤ 1e-9 + 1e-9·max(|a|, |b|): more
//! than three orders of magnitude above the errors observed (at most about 2e-14 absolute, and
//! 2e-11 relative on entries of magnitude ≥ 1e-6), and far below what any wrong rule, index or
//! scale produces (an error of order 1). The largest relative error (over entries of magnitude
//! ≥ 1e-6) and the largest absolute error are printed per model; run with `--nocapture`.

use nnc::runtime::kernels::dropout_mask;
use nnc::runtime::Exec;
use nnc::runtime::{ElemKind, Model, ParamInfo, Rng, TensorInfo};
use nnc_core::interp::{self, Env, Tensor, Value, Values};
use nnc_core::ir::Program;
use nnc_core::ir::{Mode, Phase, Schedule};
use nnc_core::Stage;

include!("common/ok_fixtures.rs");

/// Compiles every ok fixture to f64, keeps its source for the interpreter's programs, and
/// checks each of its models.
macro_rules! interpret_all {
    ($($module:ident => $file:literal: [$($model:ident),+ $(,)?]),* $(,)?) => {
        $(mod $module {
            nnc::include_model!($file, elem = f64);
            pub const SOURCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file));
        })*
        const COVERED: &[&str] = &[$($file),*];
        fn check_every_model() {
            $({
                // Each fixture is compiled once to both stages, for all of its models.
                let programs = Programs::of($module::SOURCE);
                $(check::<$module::$model>(&programs);)+
            })*
        }
    };
}

ok_fixtures!(interpret_all);

/// The seed the model's dropout state restarts from before each training call; the interpreter
/// draws its masks from a generator started from the same seed.
const SEED: u64 = 5;

/// Random inputs and targets that suit the model's declared kinds, as in `gradcheck.rs`.
struct Batch {
    size: usize,
    inputs: Vec<Value>,
    targets: Vec<Value>,
}

/// Random values of a declared kind: ids uniformly in their range, floats from `float`.
fn random(info: &TensorInfo, size: usize, rng: &mut Rng, float: fn(&mut Rng) -> f64) -> Value {
    let n = size * info.per_sample();
    match info.kind {
        ElemKind::Float => {
            let data = (0..n).map(|_| float(rng)).collect();
            let mut dims = vec![size];
            dims.extend_from_slice(info.shape);
            Value::Float(Tensor::new(dims, data).unwrap())
        }
        ElemKind::Ids { range } => Value::Ids(
            (0..n)
                .map(|_| (rng.next_u64() % range as u64) as u32)
                .collect(),
        ),
    }
}

/// A value as the model's dynamic methods take it.
fn view(v: &Value) -> nnc::runtime::Values<'_, f64> {
    match v {
        Value::Float(t) => nnc::runtime::Values::Float(&t.data),
        Value::Ids(ids) => nnc::runtime::Values::Ids(ids),
    }
}

impl Batch {
    fn new<M: Model>(size: usize, rng: &mut Rng) -> Batch {
        let inputs = M::INPUTS
            .iter()
            .map(|i| random(i, size, rng, |r| r.normal(0.0, 1.0)))
            .collect();
        // Targets strictly inside (0, 1) suit every float loss.
        let targets = M::TARGETS
            .iter()
            .map(|t| random(t, size, rng, |r| r.uniform(0.05, 0.95)))
            .collect();
        Batch {
            size,
            inputs,
            targets,
        }
    }

    fn input_slices(&self) -> Vec<nnc::runtime::Values<'_, f64>> {
        self.inputs.iter().map(view).collect()
    }

    fn target_slices(&self) -> Vec<nnc::runtime::Values<'_, f64>> {
        self.targets.iter().map(view).collect()
    }

    /// The interpreter's environment: this batch, the model's parameters matched by name, its
    /// state as it was before the generated call (`state`, flat), and the output gradients `d`
    /// (empty outside the pullback).
    fn env<'a, M: Model<Elem = f64>>(
        &self,
        p: &Program,
        model: &M,
        state: &[f64],
        d: &[Vec<f64>],
    ) -> Env<'a> {
        let mut env = Env::new(self.size);
        let shape = |v| interp::resolve(&p.graph.ty(v).shape, self.size);
        // Float inputs take the shape of their type; ids are passed as they are.
        env.inputs = p
            .inputs
            .iter()
            .zip(&self.inputs)
            .map(|(b, v)| match v {
                Value::Float(t) => {
                    Value::Float(Tensor::new(shape(b.value), t.data.clone()).unwrap())
                }
                ids => ids.clone(),
            })
            .collect();
        env.targets = self.targets.clone();
        env.params = p
            .params
            .iter()
            .zip(p.param_offsets())
            .map(|(q, offset)| tensor_at(M::PARAMS, &q.name, &q.shape, offset, model.params()))
            .collect();
        env.state = p
            .states
            .iter()
            .zip(p.state_offsets())
            .map(|(s, offset)| tensor_at(M::STATE, &s.name, &s.shape, offset, state))
            .collect();
        env.output_grads = p
            .outputs
            .iter()
            .zip(d)
            .map(|(o, d)| Tensor::new(shape(o.value), d.clone()).unwrap())
            .collect();
        env
    }
}

/// The tensor `name` of the program, checked against the generated model's description of it
/// (`infos`), from the flat buffer those describe.
fn tensor_at(
    infos: &[ParamInfo],
    name: &str,
    shape: &[usize],
    offset: usize,
    flat: &[f64],
) -> Tensor {
    let info = infos.iter().find(|i| i.name == name).unwrap();
    assert_eq!((info.shape, info.offset), (shape, offset));
    Tensor::new(shape.to_vec(), flat[offset..offset + info.len].to_vec()).unwrap()
}

/// The model's outputs from the last forward pass on `ws`. Read them before `backward`, which
/// reuses the arena where they live.
fn outputs<M: Model<Elem = f64>>(ws: &M::Workspace) -> Vec<Vec<f64>> {
    (0..M::OUTPUTS.len())
        .map(|i| M::output(ws, i).unwrap().to_vec())
        .collect()
}

fn normal(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal(0.0, 1.0)).collect()
}

/// Dropout masks as the generated code draws them: from a generator restarted at `seed`, one
/// mask after another in schedule order, through the runtime's own kernel.
fn masks(seed: u64) -> impl FnMut(f64, usize) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    move |rate, len| {
        let mut mask = vec![0.0; len];
        dropout_mask(
            Exec::serial(),
            nnc::runtime::Mode::Train,
            Some(&mut rng),
            rate,
            &mut mask,
        );
        mask
    }
}

/// What one call shows: its outputs, its loss and its final gradients, in the program's order
/// (`None` for frozen parameters and inputs without `requires_grad`).
#[derive(Default)]
struct Seen {
    outputs: Vec<Vec<f64>>,
    loss: Option<f64>,
    params: Vec<Option<Vec<f64>>>,
    inputs: Vec<Option<Vec<f64>>>,
    /// The model's state after the call, flat.
    state: Vec<f64>,
}

impl Seen {
    /// The generated model's side: `outputs` read after its forward pass, and the gradients
    /// after a call that ran a backward pass (`grads`).
    fn generated<M: Model<Elem = f64>>(
        p: &Program,
        model: &M,
        ws: &M::Workspace,
        outputs: Vec<Vec<f64>>,
        loss: Option<f64>,
        grads: bool,
    ) -> Seen {
        let state = model.state().to_vec();
        if !grads {
            return Seen {
                outputs,
                loss,
                state,
                ..Seen::default()
            };
        }
        let params = p
            .params
            .iter()
            .zip(p.param_offsets())
            .map(|(q, at)| (!q.frozen).then(|| model.grads()[at..at + q.len()].to_vec()))
            .collect();
        let inputs = (0..p.inputs.len())
            .map(|i| {
                let g = M::input_grad(ws, i).map(<[f64]>::to_vec);
                assert_eq!(g.is_some(), p.requires_grad[i], "input gradient {i}");
                g
            })
            .collect();
        Seen {
            outputs,
            loss,
            params,
            inputs,
            state,
        }
    }

    /// The interpreter's side, from the state `before` the run. A gradient the run does not
    /// reach is zero.
    fn interpreted(p: &Program, values: &Values, before: &[Tensor], batch: usize) -> Seen {
        let state: Vec<f64> = values
            .state(p, before)
            .unwrap()
            .into_iter()
            .flat_map(|t| t.data)
            .collect();
        let outputs = values.outputs(p).unwrap();
        let outputs = outputs.into_iter().map(|t| t.data.clone()).collect();
        let loss = values
            .schedule
            .runs(Phase::Loss)
            .then(|| values.loss(p).unwrap());
        if !values.schedule.runs(Phase::Backward) && !values.schedule.runs(Phase::Pullback) {
            return Seen {
                outputs,
                loss,
                state,
                ..Seen::default()
            };
        }
        let g = values.gradients(p).unwrap();
        let or_zero = |g: &Option<Tensor>, len: usize| {
            g.as_ref()
                .map_or_else(|| vec![0.0; len], |t| t.data.clone())
        };
        let params = p
            .params
            .iter()
            .zip(&g.params)
            .map(|(q, g)| (!q.frozen).then(|| or_zero(g, q.len())))
            .collect();
        let inputs = p
            .inputs
            .iter()
            .zip(&g.inputs)
            .zip(&p.requires_grad)
            .map(|((b, g), wanted)| {
                let len = batch * p.graph.ty(b.value).shape.elems_per_sample();
                wanted.then(|| or_zero(g, len))
            })
            .collect();
        Seen {
            outputs,
            loss,
            params,
            inputs,
            state,
        }
    }
}

/// The worst errors of one comparison over a model.
#[derive(Default)]
struct Worst {
    relative: f64,
    absolute: f64,
}

impl Worst {
    fn entries(&mut self, what: &str, a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{what}: lengths differ");
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let (scale, error) = (x.abs().max(y.abs()), (x - y).abs());
            assert!(
                error <= 1e-9 + 1e-9 * scale,
                "{what}[{i}] is {x} but {y} in the interpreter (error {error:.1e})",
            );
            self.absolute = self.absolute.max(error);
            if scale >= 1e-6 {
                self.relative = self.relative.max(error / scale);
            }
        }
    }

    /// Compares everything `a` shows with what the interpreter shows in `b`.
    fn seen(&mut self, what: &str, p: &Program, a: &Seen, b: &Seen) {
        // Running statistics after the call: moved in training, untouched in inference.
        self.entries(&format!("{what}: state"), &a.state, &b.state);
        assert_eq!(a.loss.is_some(), b.loss.is_some(), "{what}: loss");
        if let (Some(x), Some(y)) = (a.loss, b.loss) {
            self.entries(&format!("{what}: the loss"), &[x], &[y]);
        }
        // An empty list is a call whose outputs are not read (`forward_backward`).
        if !a.outputs.is_empty() {
            assert_eq!(a.outputs.len(), b.outputs.len(), "{what}: outputs");
        }
        for (i, (x, y)) in a.outputs.iter().zip(&b.outputs).enumerate() {
            let name = &p.outputs[i].name;
            self.entries(&format!("{what}: output {name}"), x, y);
        }
        assert_eq!(a.params.len(), b.params.len(), "{what}: parameters");
        for (q, (x, y)) in p.params.iter().zip(a.params.iter().zip(&b.params)) {
            if let (Some(x), Some(y)) = (x, y) {
                self.entries(&format!("{what}: d {}", q.name), x, y);
            }
        }
        assert_eq!(a.inputs.len(), b.inputs.len(), "{what}: inputs");
        for (input, (x, y)) in p.inputs.iter().zip(a.inputs.iter().zip(&b.inputs)) {
            assert_eq!(x.is_some(), y.is_some(), "{what}: d {}", input.name);
            if let (Some(x), Some(y)) = (x, y) {
                self.entries(&format!("{what}: d input {}", input.name), x, y);
            }
        }
    }
}

/// Runs `schedule` of both programs (unfused and fused) through the interpreter, with masks
/// drawn from the same seed in training mode.
fn interpret<M: Model<Elem = f64>>(
    programs: [&Program; 2],
    batch: &Batch,
    model: &M,
    state: &[f64],
    d: &[Vec<f64>],
    schedule: Schedule,
) -> [Seen; 2] {
    programs.map(|p| {
        let mut draw = masks(SEED);
        let mut env = batch.env(p, model, state, d);
        if schedule.mode == Mode::Train {
            env.dropout = Some(&mut draw);
        }
        // `predict` of a program with folded batch norm runs its inference pass instead.
        let schedule = match schedule {
            Schedule::PREDICT => p.predict_schedule(),
            other => other,
        };
        let values = interp::run(p, &mut env, schedule)
            .unwrap_or_else(|e| panic!("{}: the interpreter failed: {e}", p.name));
        Seen::interpreted(p, &values, &env.state, batch.size)
    })
}

/// Checks one model against the interpreter; returns the worst errors of the generated code
/// and of the interpreted fused program, each against the interpreted unfused program.
/// A fixture's programs straight after autodiff and after fusion.
struct Programs {
    grad: Vec<Program>,
    fused: Vec<Program>,
}

impl Programs {
    fn of(source: &str) -> Programs {
        let at = |stage| nnc_core::report::programs_at(source, stage).unwrap();
        Programs {
            grad: at(Stage::Grad),
            fused: at(Stage::Fused),
        }
    }
}

fn check<M: Model<Elem = f64>>(programs: &Programs) -> (Worst, Worst) {
    let find = |list: &[Program]| list.iter().find(|p| p.name == M::NAME).unwrap().clone();
    let (p, fused) = (find(&programs.grad), find(&programs.fused));
    let names = |b: &[nnc_core::ir::Binding]| b.iter().map(|b| b.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&p.inputs),
        M::INPUTS.iter().map(|i| i.name).collect::<Vec<_>>()
    );
    assert_eq!(
        names(&p.outputs),
        M::OUTPUTS.iter().map(|o| o.name).collect::<Vec<_>>()
    );
    let mut rng = Rng::new(42);
    let mut model = M::new(1);
    // Move parameters off their initial values (biases start at zero, where relu kinks sit).
    for x in model.params_mut() {
        *x += rng.normal(0.0, 0.1);
    }
    let (mut generated, mut fusion) = (Worst::default(), Worst::default());
    // Batch norm needs two samples to train on (an error below that, tested in batch_norm.rs).
    let sizes = if M::STATE.is_empty() { [3, 1] } else { [3, 2] };
    for size in sizes {
        let batch = Batch::new::<M>(size, &mut rng);
        let inputs = batch.input_slices();
        let mut ws = model.workspace(size);
        let mut compare = |what: &str, a: &Seen, [unfused, fused]: &[Seen; 2]| {
            let what = format!("{} (batch {size}) {what}", M::NAME);
            generated.seen(&what, &p, a, unfused);
            fusion.seen(&format!("{what}, fused program"), &p, fused, unfused);
        };

        let programs = [&p, &fused];
        let before = model.state().to_vec();
        model.predict_dyn(&mut ws, &inputs).unwrap();
        let a = Seen::generated(&p, &model, &ws, outputs::<M>(&ws), None, false);
        let b = interpret(programs, &batch, &model, &before, &[], Schedule::PREDICT);
        compare("predict", &a, &b);

        if M::HAS_LOSS {
            let targets = batch.target_slices();
            let before = model.state().to_vec();
            let metrics = model.evaluate_dyn(&mut ws, &inputs, &targets).unwrap();
            let a = Seen::generated(&p, &model, &ws, Vec::new(), Some(metrics.loss), false);
            let b = interpret(programs, &batch, &model, &before, &[], Schedule::EVALUATE);
            compare("evaluate", &a, &b);

            model.reseed(SEED);
            let before = model.state().to_vec();
            let loss = model.forward_backward_dyn(&mut ws, &inputs, &targets);
            // `forward_backward` returns no outputs: they are compared through `predict`.
            let a = Seen::generated(&p, &model, &ws, Vec::new(), Some(loss.unwrap()), true);
            let b = interpret(
                programs,
                &batch,
                &model,
                &before,
                &[],
                Schedule::FORWARD_BACKWARD,
            );
            compare("forward_backward", &a, &b);
        }

        let d: Vec<Vec<f64>> = M::OUTPUTS
            .iter()
            .map(|o| normal(&mut rng, size * o.per_sample()))
            .collect();
        model.reseed(SEED);
        let before = model.state().to_vec();
        model.forward_train_dyn(&mut ws, &inputs).unwrap();
        let trained = outputs::<M>(&ws);
        let d_slices: Vec<&[f64]> = d.iter().map(Vec::as_slice).collect();
        model.backward_dyn(&mut ws, &inputs, &d_slices).unwrap();
        let a = Seen::generated(&p, &model, &ws, trained, None, true);
        let b = interpret(programs, &batch, &model, &before, &d, Schedule::PULLBACK);
        compare("forward_train + backward", &a, &b);
    }
    println!(
        "{}: generated code vs interpreter: max relative error {:.1e} (entries ≥ 1e-6), max \
         absolute error {:.1e}; fused vs unfused program: {:.1e}, {:.1e}",
        M::NAME,
        generated.relative,
        generated.absolute,
        fusion.relative,
        fusion.absolute
    );
    (generated, fusion)
}

#[test]
fn every_ok_fixture_is_interpreted() {
    assert_every_ok_fixture_listed(COVERED);
}

#[test]
fn generated_code_matches_the_interpreter() {
    check_every_model();
}
