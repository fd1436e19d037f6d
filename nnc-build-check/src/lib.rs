//! Every ok fixture, and a fixed sample of accepted fuzz mutants of them, compiled by
//! `build.rs` and included here as modules. Nothing runs: the crate exists so that the build
//! (part of `cargo test --workspace`) and `cargo clippy --workspace -- -D warnings` (part of
//! `.ci/run`) check generated code outside the proc macros, where rustc would not report its
//! lints. A failure in `mutant_N` is traced back through `$OUT_DIR/mutant_N.nnc`.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
