//! Tests of the proc macros as a user meets them: compile-fail cases in `tests/ui/`, each with
//! one mistake and a `.stderr` showing rustc underlining the model's own tokens, and a model
//! included from a file.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p nnc-tests --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

mod included {
    // Relative to this package's Cargo.toml; settings follow the path as in `model!`.
    nnc::include_model!("tests/ui/models/tiny.nnc", elem = f64);
}

#[test]
fn include_model_compiles_a_file() {
    let mut model = included::Tiny::new(3);
    let mut ws = model.workspace(2);
    let x = [0.0f64, 1.0, 1.0, 0.0];
    let y = [1.0f64, 0.0];
    let loss = model.train_step(&mut ws, &x, &y).unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    let p = model.predict(&mut ws, &x).unwrap();
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
}
