//! Reports on compiled models for people rather than for rustc: a Keras-style table of layers,
//! parameters and memory ([`summary`], `nnc summary`) and a Graphviz drawing of the value graph
//! ([`dot`], `nnc graph`).
//!
//! Both read a [`Program`] and return deterministic text; like the passes, nothing here does
//! I/O. They name ops through `Op`'s `Display`, so a new op shows up without changes here; only
//! fused ops are taken apart into their steps, and an op this module does not know is drawn
//! as a single node.

mod dot;
mod summary;

pub use dot::{dot, dot_all, DotOptions};
pub use summary::{summary, summary_with, SummaryOptions};

use crate::ir::Program;
use crate::{lower, passes, syntax, Diagnostics, Stage};

/// The program of every model in `source` as it is after `stage`, in source order.
///
/// [`crate::analyze`] returns the programs after the last stage; this stops earlier, for a
/// report on the graph before fusion. The diagnostics are the same as `analyze`'s, since every
/// problem is found before the first pass.
pub fn programs_at(source: &str, stage: Stage) -> Result<Vec<Program>, Diagnostics> {
    let file = syntax::parse(source)?;
    let mut programs = lower::lower(&file)?;
    passes::verify_all(&programs, "lower");
    if stage == Stage::Parsed {
        return Ok(programs);
    }
    // A stage ends with the last pass that carries its name.
    for (i, (done, pass)) in passes::PIPELINE.iter().enumerate() {
        for program in &mut programs {
            pass(program);
        }
        passes::verify_all(&programs, done.as_str());
        let last_of_stage = passes::PIPELINE
            .get(i + 1)
            .is_none_or(|(next, _)| next != done);
        if *done == stage && last_of_stage {
            break;
        }
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model the report tests draw and summarise.
    pub(super) const XOR: &str = "model Xor { input x: [2]; target y: [1];
        let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y); optimizer = sgd(lr = 0.5); }";

    #[test]
    fn programs_at_matches_the_stage_text() {
        let compilation = crate::analyze(XOR).unwrap();
        for (stage, text) in &compilation.stages {
            let programs = programs_at(XOR, *stage).unwrap();
            let printed: Vec<String> = programs.iter().map(|p| p.to_string()).collect();
            assert_eq!(&printed.join("\n"), text, "stage {}", stage.as_str());
        }
    }

    #[test]
    fn programs_at_reports_the_same_errors() {
        let bad = XOR.replace("tanh", "tahn");
        let diags = programs_at(&bad, Stage::Grad).err().unwrap();
        assert_eq!(diags.len(), crate::check(&bad).len());
    }
}
