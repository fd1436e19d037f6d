//! `nnc`: the command-line face of the nnc compiler: check models, compile them to Rust, print
//! the IR after each stage of the pipeline, summarize models and draw their graphs.
//!
//! Exit codes: 0 success, 1 the model has errors, 2 the command could not run (unreadable
//! input, unwritable output, invalid arguments).

mod graph;
mod summary;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nnc_core::{Diagnostic, Diagnostics, Elem, Options, Severity, Stage};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The nnc neural-network compiler: models written in the nnc language become plain Rust.
#[derive(Parser)]
#[command(name = "nnc", version, propagate_version = true)]
#[command(after_help = "Examples:
  nnc check models/xor.nnc
  nnc compile models/xor.nnc -o src/xor.rs
  nnc ir models/xor.nnc --stage fused
  nnc summary models/xor.nnc --batch 64
  nnc graph models/xor.nnc --format svg -o xor.svg")]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// When to colour diagnostics: `auto` colours them when stderr is a terminal and
    /// `NO_COLOR` is unset
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
}

#[derive(Subcommand)]
enum Command {
    /// Check a model file and report every problem; generates nothing
    ///
    /// Prints "ok: N model(s)" when the file is fine. Exits with 1 when it has errors.
    Check {
        /// The `.nnc` file to check
        file: PathBuf,
        /// How to print diagnostics: `human` renders them with source excerpts on stderr,
        /// `json` prints one JSON object per diagnostic per line on stdout
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        message_format: MessageFormat,
    },
    /// Compile a model file into Rust source
    ///
    /// The output is the same text the `model!` and `include_model!` macros expand to.
    Compile {
        /// The `.nnc` file to compile
        file: PathBuf,
        /// Where to write the Rust code (replaced atomically); stdout when absent
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        #[command(flatten)]
        codegen: CodegenArgs,
    },
    /// Rewrite model files in the canonical layout (comments kept)
    ///
    /// With `--check`, nothing is written: the names of files that would change are printed
    /// and the exit code is 1 if there is any.
    Fmt {
        /// The `.nnc` files to format
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only report files that are not formatted
        #[arg(long)]
        check: bool,
    },
    /// Print the intermediate representation of every model after a pipeline stage
    Ir {
        /// The `.nnc` file to analyze
        file: PathBuf,
        /// The stage to print; `all` prints each one under a `// stage: NAME` header
        #[arg(long, value_enum, default_value_t = StageArg::All)]
        stage: StageArg,
    },
    /// Print a table of every model's layers, parameter counts and memory
    ///
    /// One row per layer of the forward pass as it runs (after fusion), then the parameter
    /// count, the optimizer's state and the size of the planned workspace arena.
    Summary(summary::SummaryArgs),
    /// Draw every model's graph with Graphviz
    ///
    /// Prints DOT (`--format dot`) or renders SVG through Graphviz's `dot` program.
    Graph(graph::GraphArgs),
}

#[derive(Args)]
struct CodegenArgs {
    /// The floating-point type of the generated code
    #[arg(long, value_enum, default_value_t = ElemArg::F32)]
    elem: ElemArg,
    /// The path through which generated code names the runtime crate; use `::nnc_runtime`
    /// for a crate that depends on nnc-runtime directly
    #[arg(long, value_name = "PATH", default_value = "::nnc::runtime")]
    runtime_path: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
enum MessageFormat {
    Human,
    Json,
}

// Mirrors of the library's enums, so that `--help` lists the possible values.
#[derive(Clone, Copy, ValueEnum)]
enum ElemArg {
    F32,
    F64,
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    Parsed,
    Grad,
    Fused,
    Planned,
    All,
}

mod fmt;

/// Why a command could not run at all (exit code 2), as opposed to a model with errors.
struct Failure(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    match run(cli.command, color) {
        Ok(code) => code,
        Err(Failure(message)) => {
            print_err(&format!("error: {message}\n"));
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, color: bool) -> Result<ExitCode, Failure> {
    match command {
        Command::Check {
            file,
            message_format,
        } => {
            let source = read(&file)?;
            let diags = match nnc_core::programs(&source) {
                Ok(programs) => {
                    if let MessageFormat::Human = message_format {
                        let n = programs.len();
                        print_out(&format!("ok: {n} model{}\n", if n == 1 { "" } else { "s" }))?;
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Err(diags) => diags,
            };
            match message_format {
                MessageFormat::Human => report(&diags, &file, &source, color),
                MessageFormat::Json => {
                    let mut out = String::new();
                    for d in &diags {
                        out.push_str(&json(d, &file, &source).to_string());
                        out.push('\n');
                    }
                    print_out(&out)?;
                }
            }
            Ok(exit_for(&diags))
        }
        Command::Compile {
            file,
            output,
            codegen,
        } => {
            let source = read(&file)?;
            let elem = match codegen.elem {
                ElemArg::F32 => Elem::F32,
                ElemArg::F64 => Elem::F64,
            };
            let options = Options {
                elem,
                runtime_path: codegen.runtime_path,
            };
            let rust = match nnc_core::compile(&source, &options) {
                Ok(rust) => rust,
                Err(diags) => {
                    report(&diags, &file, &source, color);
                    return Ok(exit_for(&diags));
                }
            };
            match output {
                Some(out) => nnc_core::build::write_atomic(&out, &rust)
                    .map_err(|e| Failure(format!("cannot write `{}`: {e}", out.display())))?,
                None => print_out(&rust)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fmt { files, check } => fmt::run(&files, check, color),
        Command::Ir { file, stage } => {
            let source = read(&file)?;
            let compilation = match nnc_core::analyze(&source) {
                Ok(compilation) => compilation,
                Err(diags) => {
                    report(&diags, &file, &source, color);
                    return Ok(exit_for(&diags));
                }
            };
            let wanted = match stage {
                StageArg::Parsed => Some(Stage::Parsed),
                StageArg::Grad => Some(Stage::Grad),
                StageArg::Fused => Some(Stage::Fused),
                StageArg::Planned => Some(Stage::Planned),
                StageArg::All => None,
            };
            let mut out = String::new();
            for (stage, text) in &compilation.stages {
                match wanted {
                    Some(w) if w != *stage => continue,
                    Some(_) => out.push_str(text),
                    None => out.push_str(&format!("// stage: {}\n{text}", stage.as_str())),
                }
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            print_out(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Summary(args) => summary::run(args, color),
        Command::Graph(args) => graph::run(args, color),
    }
}

fn read(file: &Path) -> Result<String, Failure> {
    nnc_core::source::read(file)
        .map_err(|e| Failure(format!("cannot read `{}`: {e}", file.display())))
}

/// Exit code 1 when there are errors; warnings alone do not fail the command.
fn exit_for(diags: &Diagnostics) -> ExitCode {
    if diags.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(diags: &Diagnostics, file: &Path, source: &str, color: bool) {
    let name = file.display().to_string();
    print_err(&nnc_core::render(diags, &name, source, color));
}

/// One diagnostic as a JSON object, for editors and scripts: the primary span and every
/// secondary label, each with byte offsets and 1-based line and column at both ends.
fn json(d: &Diagnostic, file: &Path, source: &str) -> serde_json::Value {
    let place = |span: nnc_core::Span, message: &str| {
        let (line, column) = line_column(source, span.start as usize);
        let (end_line, end_column) = line_column(source, span.end as usize);
        serde_json::json!({
            "start": span.start,
            "end": span.end,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "message": message,
        })
    };
    let primary = place(d.span, &d.span_label);
    let labels: Vec<_> = d.labels.iter().map(|l| place(l.span, &l.message)).collect();
    serde_json::json!({
        "severity": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "code": d.code,
        "message": d.message,
        "file": file.display().to_string(),
        "start": d.span.start,
        "end": d.span.end,
        "line": primary["line"],
        "column": primary["column"],
        "end_line": primary["end_line"],
        "end_column": primary["end_column"],
        "label": d.span_label,
        "labels": labels,
        "notes": d.notes,
        "help": d.help,
    })
}

/// The 1-based line and column (in characters) of a byte offset, clamped to the source.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    // A span never splits a character, but a wrong one must not make us panic either.
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Writes to stdout; a closed pipe (`nnc ir f | head`) ends the output quietly.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Writes to stderr; there is nowhere left to report a failure to do so.
fn print_err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let src = "ab\ncd\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 4), (2, 2));
        assert_eq!(line_column(src, 99), (3, 1));
        assert_eq!(line_column("é", 1), (1, 1));
    }

    #[test]
    fn arguments_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
