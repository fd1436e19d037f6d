//! Compile-fail tests of the proc macros: each case in `tests/ui/` has one mistake, and its
//! `.stderr` shows rustc underlining the model's own tokens.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
