//! What the tests of the recurrent layers against PyTorch share: parameters and inputs filled by
//! fixed formulas (PyTorch's side is the script in the comments of `tests/recurrent.rs` and
//! `tests/gru.rs`), and the comparison of the output and every gradient of `L = Σ out ⊙ r`.

// Each test file that includes this module uses only some of it.
#![allow(dead_code)]

use nnc::runtime::{Model, Values};

/// `f(k)` for every flat index `k` of a tensor of `n` values.
pub fn filled(n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..n).map(|k| f(k as f64)).collect()
}

/// A model with PyTorch's parameters (`gates` rows of the weights per hidden unit), and the
/// input.
pub fn setup<M: Model<Elem = f64>>(gates: usize) -> (M, Vec<f64>) {
    let mut model = M::new(0);
    let rows = 4 * gates;
    let fills: [(&str, Vec<f64>); 4] = [
        (
            "rnn.weight_ih_l0",
            filled(rows * 3, |k| 0.5 * (0.37 * k + 0.1).sin()),
        ),
        (
            "rnn.weight_hh_l0",
            filled(rows * 4, |k| 0.4 * (0.23 * k + 0.2).cos()),
        ),
        ("rnn.bias_ih_l0", filled(rows, |k| 0.1 * (0.5 * k).sin())),
        ("rnn.bias_hh_l0", filled(rows, |k| -0.05 * (0.7 * k).cos())),
    ];
    for (name, values) in fills {
        model.param_mut(name).unwrap().copy_from_slice(&values);
    }
    let x = filled(30, |k| (0.3 * k).sin() + 0.2 * (1.1 * k).cos());
    (model, x)
}

pub fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12,
            "{what}[{i}]: {a} but PyTorch gives {b}"
        );
    }
}

/// The output and every gradient of `L = Σ out ⊙ r` against PyTorch's: the output, then the
/// gradients of the input, `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0` and `bias_hh_l0`.
pub fn matches_pytorch<M: Model<Elem = f64>>(gates: usize, want: [&[f64]; 6]) {
    let [out_want, dx, dw_ih, dw_hh, db_ih, db_hh] = want;
    let (mut model, x) = setup::<M>(gates);
    let mut ws = model.workspace(2);
    let inputs = [Values::Float(&x)];
    let out = model.predict_dyn(&mut ws, &inputs).unwrap().to_vec();
    close("output", &out, out_want);
    model.forward_train_dyn(&mut ws, &inputs).unwrap();
    let r = filled(40, |k| (0.17 * k).cos() - 0.3);
    model.backward_dyn(&mut ws, &inputs, &[&r]).unwrap();
    close("d x", M::input_grad(&ws, 0).unwrap(), dx);
    let grad = |name: &str| {
        let info = M::PARAMS.iter().find(|p| p.name == name).unwrap();
        model.grads()[info.offset..info.offset + info.len].to_vec()
    };
    close("d weight_ih_l0", &grad("rnn.weight_ih_l0"), dw_ih);
    close("d weight_hh_l0", &grad("rnn.weight_hh_l0"), dw_hh);
    close("d bias_ih_l0", &grad("rnn.bias_ih_l0"), db_ih);
    close("d bias_hh_l0", &grad("rnn.bias_hh_l0"), db_hh);
}
