//! XOR end to end, through both ways of using nnc: the `model!` macro, and Rust text written
//! by the `nnc` CLI (kept in `examples/generated/xor.rs`, checked to be fresh).

mod from_macro {
    nnc::model! {
        model Xor {
            input  x: [2];
            target y: [1];
            let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;
            loss = binary_cross_entropy(p, y);
            optimizer = sgd(lr = 0.5);
        }
    }
}

mod from_cli {
    include!("../examples/generated/xor.rs");
}

const X: [f32; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
const Y: [f32; 4] = [0.0, 1.0, 1.0, 0.0];

fn accuracy(p: &[f32]) -> f32 {
    p.iter()
        .zip(Y)
        .filter(|(p, y)| (**p > 0.5) == (*y > 0.5))
        .count() as f32
        / 4.0
}

#[test]
fn xor_through_the_macro_reaches_full_accuracy() {
    let mut model = from_macro::Xor::new(7);
    let mut ws = model.workspace(4);
    let first = model.train_step(&mut ws, &X, &Y).unwrap();
    let mut last = first;
    for _ in 0..3000 {
        last = model.train_step(&mut ws, &X, &Y).unwrap();
    }
    assert!(last < first / 10.0, "loss went from {first} to {last}");
    assert_eq!(accuracy(model.predict(&mut ws, &X).unwrap()), 1.0);
}

#[test]
fn xor_through_the_cli_output_reaches_full_accuracy() {
    let mut model = from_cli::Xor::new(7);
    let mut ws = model.workspace(4);
    for _ in 0..3000 {
        model.train_step(&mut ws, &X, &Y).unwrap();
    }
    assert_eq!(accuracy(model.predict(&mut ws, &X).unwrap()), 1.0);
}

#[test]
fn cli_output_is_fresh_and_equals_the_macro_text() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(root.join("examples/xor.nnc")).unwrap();
    let generated = std::fs::read_to_string(root.join("examples/generated/xor.rs")).unwrap();
    let expected = nnc_core::compile(&src, &nnc_core::Options::default()).unwrap();
    assert!(
        generated == expected,
        "examples/generated/xor.rs is stale: run `cargo run -p nnc-cli -- compile examples/xor.nnc -o examples/generated/xor.rs`"
    );
}

#[test]
fn wrong_slice_lengths_are_errors_not_panics() {
    let mut model = from_macro::Xor::new(7);
    let mut ws = model.workspace(4);
    let err = model.train_step(&mut ws, &X[..7], &Y).unwrap_err();
    assert!(err.to_string().contains("`x`"), "{err}");
    let err = model.train_step(&mut ws, &X, &Y[..3]).unwrap_err();
    assert!(err.to_string().contains("`y`"), "{err}");
    let mut small = model.workspace(2);
    let err = model.predict(&mut small, &X).unwrap_err();
    assert!(err.to_string().contains("capacity"), "{err}");
    let err = model.predict(&mut ws, &[]).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

/// The `rt::Model` impl rejects every kind of bad argument with its own error.
#[test]
fn dyn_methods_report_bad_arguments() {
    use nnc::runtime::{Error, Model, Values};
    let mut model = from_macro::Xor::new(1);
    let mut ws = model.workspace(2);
    let err = |r: Result<f32, Error>| r.unwrap_err();
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[Values::Float(&X)], &[Values::Float(&Y)])),
        Error::BatchTooLarge {
            batch: 4,
            capacity: 2,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[Values::Float(&X[..3])], &[Values::Float(&Y)])),
        Error::RaggedInput {
            len: 3,
            per_sample: 2,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(
            &mut ws,
            &[Values::Float(&X[..4])],
            &[Values::Ids(&[1, 0])]
        )),
        Error::ValueKind { .. }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(
            &mut ws,
            &[Values::Float(&X[..4])],
            &[Values::Float(&Y[..1])]
        )),
        Error::TargetLength {
            expected: 2,
            len: 1,
            ..
        }
    ));
    assert!(matches!(
        err(model.forward_backward_dyn(&mut ws, &[Values::Float(&X[..4])], &[])),
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
    // `backward` needs the forward pass of its batch first, and consumes it.
    assert!(matches!(
        model.backward(&mut ws, &X[..4], &[1.0, 1.0]).unwrap_err(),
        Error::NoForward { .. }
    ));
    model.forward_train(&mut ws, &X[..4]).unwrap();
    assert!(matches!(
        model.backward(&mut ws, &X[..4], &[1.0]).unwrap_err(),
        Error::BatchMismatch { .. }
    ));
    model.forward_train(&mut ws, &X[..4]).unwrap();
    model.backward(&mut ws, &X[..4], &[1.0, 1.0]).unwrap();
    assert!(matches!(
        model.backward(&mut ws, &X[..4], &[1.0, 1.0]).unwrap_err(),
        Error::NoForward { .. }
    ));
}

#[test]
fn params_by_name() {
    use nnc::runtime::{ElemKind, Model, Values};
    let mut model = from_macro::Xor::new(3);
    assert_eq!(model.param("out.bias"), Some(&[0.0][..]));
    assert_eq!(model.param("hidden.weight").map(<[f32]>::len), Some(16));
    assert!(model.param("fc3.weight").is_none());
    model.param_mut("out.bias").unwrap()[0] = 1.5;
    assert_eq!(model.params()[32], 1.5);
    model.set_learning_rate(0.25).unwrap();
    assert_eq!(model.learning_rate(), 0.25);
    for bad in [f32::NAN, -0.1, f32::INFINITY] {
        let e = model.set_learning_rate(bad).unwrap_err();
        assert!(e.to_string().contains("learning rate"), "{e}");
    }
    assert_eq!(model.learning_rate(), 0.25);
    assert_eq!(from_macro::Xor::INPUTS[0].per_sample(), 2);
    assert_eq!(from_macro::Xor::OUTPUTS[0].per_sample(), 1);
    assert_eq!(from_macro::Xor::TARGETS[0].kind, ElemKind::Float);
    assert_eq!(from_macro::Xor::TARGETS[0].shape, &[1]);
    // An id-valued input where floats are declared is an error, not a panic.
    let mut ws = model.workspace(4);
    assert!(matches!(
        model
            .predict_dyn(&mut ws, &[Values::Ids(&[0, 1])])
            .unwrap_err(),
        nnc::runtime::Error::ValueKind { name: "x", .. }
    ));
}
