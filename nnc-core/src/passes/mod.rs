//! The ordered pass pipeline. Each pass is one file, a function `&mut Program`, run once per
//! model; `crate::analyze` runs them in this order and the verifier after each.

pub mod autodiff;
mod dead_code;
pub mod fold_batch_norm;
pub mod fusion;
pub mod memory_plan;
pub mod step;

use crate::ir::{self, Program};
use crate::Stage;

/// A pass rewrites one program in place.
pub type Pass = fn(&mut Program);

/// The passes after lowering, each with the stage name its output is printed under (after the
/// last pass of that stage).
pub const PIPELINE: &[(Stage, Pass)] = &[
    (Stage::Grad, autodiff::run),
    (Stage::Fused, fold_batch_norm::run),
    (Stage::Fused, step::run),
    (Stage::Fused, fusion::run),
    (Stage::Planned, memory_plan::run),
];

/// Runs the IR verifier on every program in debug builds (and so in every test). A failure is
/// a compiler bug, reported with the pass that caused it.
pub fn verify_all(programs: &[Program], after: &str) {
    if cfg!(debug_assertions) {
        for p in programs {
            if let Err(errors) = ir::verify::verify(p) {
                panic!(
                    "IR verifier failed after {after} for model {}:\n{}\n{p}",
                    p.name,
                    errors.join("\n")
                );
            }
        }
    }
}
