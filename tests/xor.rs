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
