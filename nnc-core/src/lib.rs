//! The nnc compiler library, shared by the `model!` proc macro, the `nnc` CLI and build scripts.
//!
//! # Pipeline
//!
//! ```text
//! source text
//!   │ syntax::parse        pest grammar (grammar/nnc.pest) → AST with spans
//!   │ lower::lower         AST → IR graph per model; names resolved, every shape checked
//!   │ passes::autodiff     appends the backward graph (one rule per op, one reverse walk)
//!   │ passes::fold_batch_norm  an inference-only forward pass, batch norm folded into convs
//!   │ passes::fusion       dense+bias+activation, softmax/sigmoid + cross-entropy
//!   │ passes::memory_plan  one arena; each batched value gets a fixed offset by liveness
//!   │ codegen              straight-line Rust over nnc-runtime, formatted by prettyplease
//!   ▼
//! Rust source text
//! ```
//!
//! Each pass is a function from IR to IR in its own file; `ir::verify` runs after each one in
//! debug builds and tests. No stage does I/O or panics on user input: problems become
//! [`Diagnostic`]s, collected and returned together.
//!
//! ```
//! let src = "model Tiny { input x: [2]; target y: [1];
//!            let p = x -> dense out(1) -> sigmoid;
//!            loss = binary_cross_entropy(p, y); optimizer = sgd(lr = 0.1); }";
//! let rust = nnc_core::compile(src, &nnc_core::Options::default()).unwrap();
//! assert!(rust.contains("pub struct Tiny"));
//! ```

pub mod build;
pub mod codegen;
pub mod diag;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod passes;
pub mod report;
pub mod reserved;
pub mod source;
pub mod syntax;

pub use diag::{render, Diagnostic, Diagnostics, Severity, Span};

use std::fmt;
use std::str::FromStr;

/// The floating-point type of the generated code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Elem {
    #[default]
    F32,
    /// Used by the gradient checks, so that finite differences can have tight tolerances.
    F64,
}

impl Elem {
    pub fn as_str(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
        }
    }
}

impl FromStr for Elem {
    type Err = String;
    fn from_str(s: &str) -> Result<Elem, String> {
        match s {
            "f32" => Ok(Elem::F32),
            "f64" => Ok(Elem::F64),
            other => Err(format!(
                "unknown element type `{other}`, expected `f32` or `f64`"
            )),
        }
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings for code generation. The defaults are what the proc macro and the CLI use, so that
/// both produce the same text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub elem: Elem,
    /// The path through which generated code names the runtime crate. `::nnc::runtime` suits
    /// crates that depend on the `nnc` facade; use `::nnc_runtime` for a direct dependency.
    pub runtime_path: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            elem: Elem::F32,
            runtime_path: "::nnc::runtime".to_string(),
        }
    }
}

/// The IR stages that can be printed (`nnc ir FILE --stage ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Straight after lowering: the forward graph with its loss.
    Parsed,
    /// After autodiff: forward and backward.
    Grad,
    /// After fusion.
    Fused,
    /// After memory planning: every value with its arena slot.
    Planned,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Parsed, Stage::Grad, Stage::Fused, Stage::Planned];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parsed => "parsed",
            Stage::Grad => "grad",
            Stage::Fused => "fused",
            Stage::Planned => "planned",
        }
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Stage, String> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown stage `{s}`, expected one of parsed, grad, fused, planned")
            })
    }
}

/// Everything the pipeline produced for one source file.
pub struct Compilation {
    /// One fully planned program per `model` block, in source order.
    pub programs: Vec<ir::Program>,
    /// The IR text of every model after each stage, for `nnc ir` and snapshots.
    pub stages: Vec<(Stage, String)>,
}

/// Runs the whole pipeline up to (not including) code generation.
pub fn analyze(source: &str) -> Result<Compilation, Diagnostics> {
    pipeline(source, true)
}

/// The fully planned programs of `source`, without the IR text of each stage that
/// [`analyze`] also keeps; what `nnc check` needs.
pub fn programs(source: &str) -> Result<Vec<ir::Program>, Diagnostics> {
    pipeline(source, false).map(|c| c.programs)
}

/// The pipeline, printing the IR after each stage only when `keep_stages` asks for it:
/// `check` and `compile` do not read the text, and printing it was a third of the time
/// `check` took on a 1 MB model.
fn pipeline(source: &str, keep_stages: bool) -> Result<Compilation, Diagnostics> {
    let file = syntax::parse(source)?;
    let mut programs = lower::lower(&file)?;
    let mut stages = Vec::new();
    let mut snapshot = |stage: Stage, programs: &[ir::Program]| {
        if keep_stages {
            let text: Vec<String> = programs.iter().map(|p| p.to_string()).collect();
            stages.push((stage, text.join("\n")));
        }
    };
    passes::verify_all(&programs, "lower");
    snapshot(Stage::Parsed, &programs);
    for (i, (stage, pass)) in passes::PIPELINE.iter().enumerate() {
        for program in &mut programs {
            pass(program);
        }
        passes::verify_all(&programs, stage.as_str());
        if passes::PIPELINE
            .get(i + 1)
            .is_none_or(|(next, _)| next != stage)
        {
            snapshot(*stage, &programs);
        }
    }
    Ok(Compilation { programs, stages })
}

/// Checks a source file and reports every problem; generates nothing.
pub fn check(source: &str) -> Diagnostics {
    match pipeline(source, false) {
        Ok(_) => Diagnostics::new(),
        Err(diags) => diags,
    }
}

/// Compiles nnc source text into formatted Rust source text.
pub fn compile(source: &str, options: &Options) -> Result<String, Diagnostics> {
    let compilation = pipeline(source, false)?;
    Ok(codegen::generate(&compilation.programs, options))
}

/// Stand-in items for the models of a source that failed to compile, so that code using them
/// type-checks and only the model's own errors are reported (used by the proc macros).
pub fn stubs(source: &str, options: &Options) -> proc_macro2::TokenStream {
    codegen::stubs(source, options)
}

/// The IR text of every model in `source` after `stage`.
pub fn dump(source: &str, stage: Stage) -> Result<String, Diagnostics> {
    let compilation = analyze(source)?;
    Ok(compilation
        .stages
        .into_iter()
        .find(|(s, _)| *s == stage)
        .map(|(_, text)| text)
        .unwrap_or_default())
}
