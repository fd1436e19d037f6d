//! Hand-computed values for a few ops, the fused ops against the unfused chains they replace,
//! and one small program run end to end.

use super::ops::{erf, erfc};
use super::{run, Env, Tensor, Value};
use crate::ir::{Act, Const, LossKind, LossSpec, Op, Reduction};
use crate::ir::{Mode, Schedule};
use crate::report::programs_at;
use crate::Stage;

/// An op's value in inference on a batch of one, for ops that read neither.
fn eval(op: Op, args: &[&Value], out: &[usize]) -> Result<Value, String> {
    super::ops::eval(op, args, out, Mode::Infer, 1)
}

fn t(shape: &[usize], data: &[f64]) -> Value {
    Value::Float(Tensor::new(shape.to_vec(), data.to_vec()).unwrap())
}

fn data(v: Value) -> Vec<f64> {
    match v {
        Value::Float(t) => t.data,
        Value::Ids(_) => panic!("labels"),
    }
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-14 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

fn spec(kind: LossKind, reduction: Reduction, smoothing: f64, weight: f64) -> LossSpec {
    LossSpec {
        kind,
        reduction,
        smoothing: Const::new(smoothing),
        ignore: None,
        delta: Const::new(1.0),
        weight: Const::new(weight),
    }
}

#[test]
fn matmul_transposes_views_of_any_rank() {
    let (a, b) = (
        t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
        t(&[2, 2], &[5.0, 6.0, 7.0, 8.0]),
    );
    let mm = |ta, tb| Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
    };
    let run = |op, a: &Value, out: &[usize]| data(eval(op, &[a, &b], out).unwrap());
    assert_eq!(run(mm(false, false), &a, &[2, 2]), [19.0, 22.0, 43.0, 50.0]);
    assert_eq!(run(mm(false, true), &a, &[2, 2]), [17.0, 23.0, 39.0, 53.0]);
    assert_eq!(run(mm(true, false), &a, &[2, 2]), [26.0, 30.0, 38.0, 44.0]);
    // A [2, 1, 2] operand is the matrix [2, 2], and so is a [2, 1, 2] result.
    let a3 = t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        run(mm(false, false), &a3, &[2, 1, 2]),
        [19.0, 22.0, 43.0, 50.0]
    );
    // Inner dimensions that differ, and a result shape that does not fit, are errors.
    assert!(eval(mm(false, false), &[&t(&[1, 3], &[0.0; 3]), &b], &[1, 2]).is_err());
    assert!(eval(mm(false, false), &[&a, &b], &[4]).is_err());
}

#[test]
fn bias_and_reduction_cover_every_leading_axis() {
    let x = t(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let b = t(&[2], &[10.0, 20.0]);
    let y = data(eval(Op::BiasAdd, &[&x, &b], &[2, 2, 2]).unwrap());
    assert_eq!(y, [11.0, 22.0, 13.0, 24.0, 15.0, 26.0, 17.0, 28.0]);
    assert_eq!(
        data(eval(Op::SumRows { keep: 1 }, &[&x], &[2]).unwrap()),
        [16.0, 20.0]
    );
    assert_eq!(
        data(eval(Op::SumRows { keep: 2 }, &[&x], &[2, 2]).unwrap()),
        [6.0, 8.0, 10.0, 12.0]
    );
    assert!(eval(Op::SumRows { keep: 1 }, &[&x], &[3]).is_err());
    assert!(eval(Op::BiasAdd, &[&x, &t(&[3], &[0.0; 3])], &[2, 2, 2]).is_err());
}

#[test]
fn softmax_rows() {
    let x = t(&[2, 2], &[0.0, 3f64.ln(), 1000.0, 1000.0]);
    close(
        &data(eval(Op::Softmax, &[&x], &[2, 2]).unwrap()),
        &[0.25, 0.75, 0.5, 0.5],
    );
    close(
        &data(eval(Op::LogSoftmax, &[&x], &[2, 2]).unwrap()),
        &[0.25f64.ln(), 0.75f64.ln(), 0.5f64.ln(), 0.5f64.ln()],
    );
}

#[test]
fn losses_reduce_smooth_and_weigh() {
    let (p, y) = (t(&[2, 1], &[1.0, 2.0]), t(&[2, 1], &[0.0, 0.0]));
    let mse = spec(LossKind::MeanSquaredError, Reduction::Mean, 0.0, 1.0);
    assert_eq!(data(eval(Op::Loss(mse), &[&p, &y], &[]).unwrap()), [2.5]);
    assert_eq!(
        data(eval(Op::LossGrad(mse), &[&p, &y], &[2, 1]).unwrap()),
        [1.0, 2.0]
    );
    // Huber with delta 1: 0.5·0.5² below the threshold, 1·(3 − 0.5) above it.
    let huber = spec(LossKind::Huber, Reduction::Sum, 0.0, 1.0);
    let (p, y) = (t(&[1, 2], &[0.5, 3.0]), t(&[1, 2], &[0.0, 0.0]));
    assert_eq!(
        data(eval(Op::Loss(huber), &[&p, &y], &[]).unwrap()),
        [2.625]
    );
    assert_eq!(
        data(eval(Op::LossGrad(huber), &[&p, &y], &[1, 2]).unwrap()),
        [0.5, 1.0]
    );
    // Label 1 of 2 smoothed by 0.1 is [0.05, 0.95]: −2·(0.05·ln 0.25 + 0.95·ln 0.75).
    let sce = spec(LossKind::SparseCrossEntropy, Reduction::Sum, 0.1, 2.0);
    let (p, labels) = (t(&[1, 2], &[0.25, 0.75]), Value::Ids(vec![1]));
    close(
        &data(eval(Op::Loss(sce), &[&p, &labels], &[]).unwrap()),
        &[0.685_225_373_770_372_7],
    );
    assert!(eval(Op::Loss(sce), &[&p, &Value::Ids(vec![2])], &[]).is_err());
    let nll = spec(LossKind::NegativeLogLikelihood, Reduction::Mean, 0.1, 1.0);
    assert!(eval(Op::Loss(nll), &[&p, &labels], &[]).is_err());
}

#[test]
fn erf_and_erfc_match_known_values() {
    // Python's math.erf and math.erfc.
    let known = [
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (-3.0, -0.999_977_909_503_001_4),
        (5.5, 0.999_999_999_999_992_7),
    ];
    for (x, y) in known {
        assert!(
            (erf(x) - y).abs() <= 1e-15 * y.abs(),
            "erf({x}) = {}",
            erf(x)
        );
    }
    let known = [
        (5.0, 1.537_459_794_428_035_1e-12),
        (1.5, 0.033_894_853_524_689_274),
        (-2.0, 1.995_322_265_018_952_8),
    ];
    for (x, y) in known {
        assert!(
            (erfc(x) - y).abs() <= 1e-14 * y.abs(),
            "erfc({x}) = {}",
            erfc(x)
        );
    }
    assert_eq!(erf(0.0), 0.0);
    assert!(erf(f64::NAN).is_nan());
}

#[test]
fn fused_ops_equal_the_chains_they_replace() {
    let x = t(&[2, 3], &[0.3, -1.2, 0.5, 2.0, 0.1, -0.7]);
    let w = t(&[2, 3], &[0.2, 0.4, -0.6, 1.1, -0.3, 0.8]);
    let b = t(&[2], &[0.05, -0.1]);
    let nt = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
    };
    for act in [Act::Gelu, Act::Tanh, Act::Elu(Const::new(0.5))] {
        let dense = Op::Dense { act, bias: true };
        let fused = eval(dense, &[&x, &w, &b], &[2, 2]).unwrap();
        let z = eval(nt, &[&x, &w], &[2, 2]).unwrap();
        let z = eval(Op::BiasAdd, &[&z, &b], &[2, 2]).unwrap();
        let chain = eval(Op::Activation(act), &[&z], &[2, 2]).unwrap();
        assert_eq!(fused, chain);
    }
    // Cross-entropy over a softmax, and binary cross-entropy over a sigmoid.
    let z = t(&[2, 3], &[0.3, -1.2, 0.5, 2.0, 0.1, -0.7]);
    let cases = [
        (
            Op::Softmax,
            LossKind::SparseCrossEntropy,
            Value::Ids(vec![2, 0]),
        ),
        (
            Op::Softmax,
            LossKind::CategoricalCrossEntropy,
            t(&[2, 3], &[0.2, 0.3, 0.5, 0.6, 0.3, 0.4]),
        ),
        (
            Op::Activation(Act::Sigmoid),
            LossKind::BinaryCrossEntropy,
            t(&[2, 3], &[0.2, 0.3, 0.5, 0.6, 0.3, 0.4]),
        ),
    ];
    for (op, kind, target) in cases {
        let s = spec(kind, Reduction::Mean, 0.1, 0.7);
        let p = eval(op, &[&z], &[2, 3]).unwrap();
        let g = eval(Op::LossGrad(s), &[&p, &target], &[2, 3]).unwrap();
        let (chain, fused) = if op == Op::Softmax {
            let chain = eval(Op::SoftmaxGrad, &[&p, &g], &[2, 3]).unwrap();
            (chain, eval(Op::SoftmaxLossGrad(s), &[&p, &target], &[2, 3]))
        } else {
            let chain = eval(Op::ActivationGrad(Act::Sigmoid), &[&p, &g], &[2, 3]).unwrap();
            (chain, eval(Op::SigmoidLossGrad(s), &[&p, &target], &[2, 3]))
        };
        close(&data(fused.unwrap()), &data(chain));
    }
}

#[test]
fn a_program_runs_end_to_end() {
    let source = "model Lin { input x: [1]; target y: [1]; let p = x -> dense out(1);
        loss = mse(p, y); optimizer = sgd(lr = 0.1); }";
    let p = &programs_at(source, Stage::Grad).unwrap()[0];
    let tensor = |shape: &[usize], v: f64| Tensor::new(shape.to_vec(), vec![v]).unwrap();
    let mut env = Env::new(1);
    env.inputs = vec![Value::Float(tensor(&[1, 1], 3.0))];
    env.targets = vec![Value::Float(tensor(&[1, 1], 5.0))];
    env.params = vec![tensor(&[1, 1], 2.0), tensor(&[1], 1.0)];
    // p = 2·3 + 1 = 7, loss (7 − 5)² = 4, d p = 4, d weight = 4·3, d bias = 4.
    let values = run(p, &mut env, Schedule::FORWARD_BACKWARD).unwrap();
    assert_eq!(values.loss(p).unwrap(), 4.0);
    assert_eq!(values.outputs(p).unwrap()[0].data, [7.0]);
    let grads = values.gradients(p).unwrap();
    let got: Vec<f64> = grads
        .params
        .iter()
        .map(|g| g.as_ref().unwrap().data[0])
        .collect();
    assert_eq!(got, [12.0, 4.0]);
    // Inference needs no targets; a missing input or a misshapen parameter is an error.
    env.targets.clear();
    assert!(run(p, &mut env, Schedule::PREDICT).is_ok());
    assert!(run(p, &mut env, Schedule::FORWARD_BACKWARD).is_err());
    env.params[0] = tensor(&[1], 2.0);
    assert!(run(p, &mut env, Schedule::PREDICT).is_err());
    // A tensor whose data disagrees with its own shape is caught before any op indexes it.
    env.params[0] = Tensor {
        shape: vec![1, 1],
        data: Vec::new(),
    };
    assert!(run(p, &mut env, Schedule::PREDICT).is_err());
    env.inputs.clear();
    assert!(run(p, &mut env, Schedule::PREDICT).is_err());
}

#[test]
fn axis_ops_by_hand() {
    // [1, 2, 3]: two rows of three.
    let x = t(&[1, 2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let perm = crate::ir::Perm::new(&[0, 2, 1]).unwrap();
    let y = data(eval(Op::Permute(perm), &[&x], &[1, 3, 2]).unwrap());
    assert_eq!(y, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let mean = Op::SumAxis {
        axis: 1,
        scale: Const::new(0.5),
    };
    assert_eq!(data(eval(mean, &[&x], &[1, 3]).unwrap()), [2.5, 3.5, 4.5]);
    let back = Op::Expand {
        axis: 1,
        size: 2,
        scale: Const::new(0.5),
    };
    let m = t(&[1, 3], &[2.0, 4.0, 6.0]);
    let e = data(eval(back, &[&m], &[1, 2, 3]).unwrap());
    assert_eq!(e, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    // [[1, 2, 3], [4, 5, 6]] · [[1, 2, 3], [4, 5, 6]]ᵀ = [[14, 32], [32, 77]].
    let bmm = Op::BatchMatMul {
        transpose_a: false,
        transpose_b: true,
    };
    let p = data(eval(bmm, &[&x, &x], &[1, 2, 2]).unwrap());
    assert_eq!(p, [14.0, 32.0, 32.0, 77.0]);
}
