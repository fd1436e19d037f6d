//! `nnc graph`: the model graph in Graphviz's DOT language, or rendered to SVG by `dot`.

use crate::{exit_for, print_out, read, report, Failure};
use clap::{Args, ValueEnum};
use nnc_core::report::DotOptions;
use nnc_core::Stage;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

#[derive(Args)]
pub struct GraphArgs {
    /// The `.nnc` file to draw
    file: PathBuf,
    /// `dot` prints the Graphviz source; `svg` renders it with Graphviz's `dot` program
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    /// Where to write the graph (replaced atomically); stdout when absent
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// The pipeline stage to draw: `fused` shows fused kernels as clusters of their steps,
    /// `grad` the graph before fusion
    #[arg(long, value_enum, default_value_t = GraphStage::Fused)]
    stage: GraphStage,
    /// Also draw the backward pass (the gradients)
    #[arg(long)]
    backward: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Dot,
    Svg,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphStage {
    Fused,
    Grad,
}

pub fn run(args: GraphArgs, color: bool) -> Result<ExitCode, Failure> {
    let source = read(&args.file)?;
    let stage = match args.stage {
        GraphStage::Fused => Stage::Fused,
        GraphStage::Grad => Stage::Grad,
    };
    let programs = match nnc_core::report::programs_at(&source, stage) {
        Ok(programs) => programs,
        Err(diags) => {
            report(&diags, &args.file, &source, color);
            return Ok(exit_for(&diags));
        }
    };
    let options = DotOptions {
        backward: args.backward,
    };
    let dot = nnc_core::report::dot_all(&programs, &options);
    let text = match args.format {
        Format::Dot => dot,
        Format::Svg => render_svg(&dot)?,
    };
    match args.output {
        Some(out) => nnc_core::build::write_atomic(&out, &text)
            .map_err(|e| Failure(format!("cannot write `{}`: {e}", out.display())))?,
        None => print_out(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `dot -Tsvg` on the DOT text.
fn render_svg(dot: &str) -> Result<String, Failure> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure(if e.kind() == std::io::ErrorKind::NotFound {
                "graphviz's `dot` program was not found\n\
                 help: install graphviz (apt install graphviz) or use --format dot"
                    .to_string()
            } else {
                format!("cannot run graphviz's `dot` program: {e}")
            })
        })?;
    // Written from a thread so that a large graph cannot fill both pipes and stall.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let output = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(dot.as_bytes()));
        let output = child.wait_with_output();
        // A write error (dot exited early) shows up in dot's status and stderr.
        let _ = writer.join();
        output
    })
    .map_err(|e| Failure(format!("cannot run graphviz's `dot` program: {e}")))?;
    if !output.status.success() {
        return Err(Failure(format!(
            "graphviz's `dot` program failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Failure("graphviz's `dot` program wrote output that is not UTF-8".into()))
}
