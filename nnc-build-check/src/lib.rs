//! Every ok fixture, compiled by `build.rs` through `nnc_core::build` and included here as a
//! module. Nothing runs: the crate exists so that `cargo clippy --workspace -- -D warnings`
//! (part of `.ci/run`) checks generated code outside the proc macros, where rustc would not
//! report its lints.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
