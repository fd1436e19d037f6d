//! A hand-written model in the shape of nnc's generated code: a 2-8-1 tanh network trained on
//! XOR. It exercises the `Model` trait, the arena, the argument checks, the dense kernels end to
//! end (including a whole-model finite-difference check of the gradients), and Adam.

use nnc_runtime::kernels::{
    act_backward_inplace, act_forward, bias_backward, dense_backward_input, dense_backward_weight,
    dense_forward, sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_backward,
};
use nnc_runtime::model::{expect_inputs, expect_targets};
use nnc_runtime::{
    check, init, Act, Adam, Arena, Error, Model, Optimizer, ParamInfo, Rng, Slot, Target,
    TargetInfo, TargetKind, TensorInfo,
};

const HIDDEN: usize = 8;
// Parameter layout: w1 [8, 2], b1 [8], w2 [1, 8], b2 [1].
const W1: std::ops::Range<usize> = 0..16;
const B1: std::ops::Range<usize> = 16..24;
const W2: std::ops::Range<usize> = 24..32;
const B2: std::ops::Range<usize> = 32..33;
// Arena layout per sample: h (8), z (1), p (1), gz (1), gh (8).
const H: Slot = Slot::batched(0, HIDDEN);
const Z: Slot = Slot::batched(8, 1);
const P: Slot = Slot::batched(9, 1);
const GZ: Slot = Slot::batched(10, 1);
const GH: Slot = Slot::batched(11, HIDDEN);
const PER_SAMPLE: usize = 19;

struct Xor {
    params: Vec<f64>,
    grads: Vec<f64>,
    optimizer: Adam<f64>,
}

struct Workspace {
    arena: Arena<f64>,
}

impl Xor {
    /// The forward pass shared by training and prediction; returns the batch size.
    fn forward(&self, ws: &mut Workspace, inputs: &[&[f64]]) -> Result<usize, Error> {
        expect_inputs(Self::NAME, inputs, 1)?;
        let x = inputs[0];
        let batch = check::batch("x", x.len(), 2, ws.arena.capacity())?;
        let p = &self.params;
        let h = ws.arena.get_mut(batch, H);
        dense_forward(batch, 2, HIDDEN, x, &p[W1], Some(&p[B1]), Act::Tanh, h);
        let ([h], z) = ws.arena.split(batch, Z, [H]);
        dense_forward(batch, HIDDEN, 1, h, &p[W2], Some(&p[B2]), Act::Identity, z);
        let ([z], out) = ws.arena.split(batch, P, [Z]);
        act_forward(Act::Sigmoid, z, out);
        Ok(batch)
    }
}

impl Model for Xor {
    type Elem = f64;
    type Workspace = Workspace;
    const NAME: &'static str = "Xor";
    const INPUTS: &'static [TensorInfo] = &[TensorInfo {
        name: "x",
        shape: &[2],
    }];
    const TARGETS: &'static [TargetInfo] = &[TargetInfo {
        name: "y",
        kind: TargetKind::Float { shape: &[1] },
    }];
    const OUTPUT: TensorInfo = TensorInfo {
        name: "p",
        shape: &[1],
    };
    const PARAMS: &'static [ParamInfo] = &[
        ParamInfo {
            name: "fc1.weight",
            shape: &[8, 2],
            offset: 0,
            len: 16,
            trainable: true,
        },
        ParamInfo {
            name: "fc1.bias",
            shape: &[8],
            offset: 16,
            len: 8,
            trainable: true,
        },
        ParamInfo {
            name: "fc2.weight",
            shape: &[1, 8],
            offset: 24,
            len: 8,
            trainable: true,
        },
        ParamInfo {
            name: "fc2.bias",
            shape: &[1],
            offset: 32,
            len: 1,
            trainable: true,
        },
    ];

    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut params = vec![0.0; 33];
        init::xavier_uniform(&mut rng, 2, HIDDEN, &mut params[W1]);
        init::xavier_uniform(&mut rng, HIDDEN, 1, &mut params[W2]);
        Xor {
            params,
            grads: vec![0.0; 33],
            optimizer: Adam::with_defaults(33, 0.05),
        }
    }

    fn workspace(&self, capacity: usize) -> Workspace {
        Workspace {
            arena: Arena::new(PER_SAMPLE, 0, capacity),
        }
    }

    fn params(&self) -> &[f64] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn grads(&self) -> &[f64] {
        &self.grads
    }

    fn forward_backward_dyn(
        &mut self,
        ws: &mut Workspace,
        inputs: &[&[f64]],
        targets: &[Target<'_, f64>],
    ) -> Result<f64, Error> {
        expect_targets(Self::NAME, targets.len(), 1)?;
        let batch = self.forward(ws, inputs)?;
        let t = targets[0].float("y")?;
        check::target("y", t.len(), 1, batch)?;
        let x = inputs[0];
        let [z] = ws.arena.read(batch, [Z]);
        let loss = sigmoid_binary_cross_entropy(z, t);
        let ([p], gz) = ws.arena.split(batch, GZ, [P]);
        sigmoid_binary_cross_entropy_backward(p, t, gz);

        let (g1, g2) = self.grads.split_at_mut(W2.start);
        let (gw1, gb1) = g1.split_at_mut(B1.start);
        let (gw2, gb2) = g2.split_at_mut(W2.len());
        let [h, gz] = ws.arena.read(batch, [H, GZ]);
        dense_backward_weight(batch, HIDDEN, 1, gz, h, gw2);
        bias_backward(batch, 1, gz, gb2);
        let ([gz, h], gh) = ws.arena.split(batch, GH, [GZ, H]);
        dense_backward_input(batch, HIDDEN, 1, gz, &self.params[W2], gh);
        act_backward_inplace(Act::Tanh, h, gh);
        dense_backward_weight(batch, 2, HIDDEN, gh, x, gw1);
        bias_backward(batch, HIDDEN, gh, gb1);
        Ok(loss)
    }

    fn update(&mut self) {
        self.optimizer.step(&mut self.params, &self.grads);
    }

    fn predict_dyn<'w>(
        &self,
        ws: &'w mut Workspace,
        inputs: &[&[f64]],
    ) -> Result<&'w [f64], Error> {
        let batch = self.forward(ws, inputs)?;
        Ok(ws.arena.get(batch, P))
    }

    fn learning_rate(&self) -> f64 {
        self.optimizer.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }
}

const X: [f64; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
const Y: [f64; 4] = [0.0, 1.0, 1.0, 0.0];

#[test]
fn model_gradients_match_finite_differences() {
    let mut model = Xor::new(7);
    let mut ws = model.workspace(4);
    model
        .forward_backward_dyn(&mut ws, &[&X], &[Target::Float(&Y)])
        .unwrap();
    let analytic = model.grads().to_vec();
    let h = 1e-6;
    for (i, &analytic) in analytic.iter().enumerate() {
        let original = model.params[i];
        let mut loss_at = |v: f64| {
            model.params_mut()[i] = v;
            model
                .forward_backward_dyn(&mut ws, &[&X], &[Target::Float(&Y)])
                .unwrap()
        };
        let numeric = (loss_at(original + h) - loss_at(original - h)) / (2.0 * h);
        loss_at(original);
        let err = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3);
        assert!(
            err < 1e-6,
            "parameter {i}: analytic {} numeric {numeric} (relative error {err:e})",
            analytic
        );
    }
}

#[test]
fn xor_trains() {
    let mut model = Xor::new(1);
    let mut ws = model.workspace(4);
    let first = model
        .train_step_dyn(&mut ws, &[&X], &[Target::Float(&Y)])
        .unwrap();
    let mut loss = first;
    for _ in 0..400 {
        loss = model
            .train_step_dyn(&mut ws, &[&X], &[Target::Float(&Y)])
            .unwrap();
    }
    assert!(
        loss < 0.05 && loss < first,
        "loss went from {first} to {loss}"
    );
    let p = model.predict_dyn(&mut ws, &[&X]).unwrap();
    for (p, y) in p.iter().zip(Y) {
        assert!((p - y).abs() < 0.2, "prediction {p} for target {y}");
    }
    // A batch of one sample reuses the same workspace.
    let p = model.predict_dyn(&mut ws, &[&X[2..4]]).unwrap();
    assert!(p.len() == 1 && p[0] > 0.8);
}

#[test]
fn model_reports_bad_arguments() {
    let mut model = Xor::new(1);
    let mut ws = model.workspace(2);
    let err = |r: Result<f64, Error>| r.unwrap_err();
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[&X], &[Target::Float(&Y)])),
        Error::BatchTooLarge {
            batch: 4,
            capacity: 2,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[&X[..3]], &[Target::Float(&Y)])),
        Error::RaggedInput {
            len: 3,
            per_sample: 2,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[&X[..4]], &[Target::Labels(&[1, 0])])),
        Error::TargetKind { .. }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[&X[..4]], &[Target::Float(&Y[..1])])),
        Error::TargetLength {
            expected: 2,
            len: 1,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[&X[..4]], &[])),
        Error::Arity {
            what: "targets",
            ..
        }
    ));
    assert!(matches!(
        model.predict_dyn(&mut ws, &[]).unwrap_err(),
        Error::Arity {
            what: "inputs",
            expected: 1,
            found: 0,
            ..
        }
    ));
}

#[test]
fn params_by_name() {
    let mut model = Xor::new(3);
    assert_eq!(model.param("fc2.bias"), Some(&[0.0][..]));
    assert_eq!(model.param("fc1.weight").map(<[f64]>::len), Some(16));
    assert!(model.param("fc3.weight").is_none());
    model.param_mut("fc2.bias").unwrap()[0] = 1.5;
    assert_eq!(model.params()[32], 1.5);
    model.set_learning_rate(0.5);
    assert_eq!(model.learning_rate(), 0.5);
    assert_eq!(Xor::INPUTS[0].per_sample(), 2);
    assert_eq!(Xor::OUTPUT.per_sample(), 1);
    assert_eq!(Xor::TARGETS[0].kind, TargetKind::Float { shape: &[1] });
}
