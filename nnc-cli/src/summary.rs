//! `nnc summary`: a table of every model's layers, parameters and memory.

use crate::{exit_for, print_out, read, report, ElemArg, Failure};
use clap::Args;
use nnc_core::report::SummaryOptions;
use nnc_core::Elem;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct SummaryArgs {
    /// The `.nnc` file to summarize
    file: PathBuf,
    /// The batch size the arena (the workspace) is sized for
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch: usize,
    /// The floating-point type of the generated code, which sets the bytes per value
    #[arg(long, value_enum, default_value_t = ElemArg::F32)]
    elem: ElemArg,
}

pub fn run(args: SummaryArgs, color: bool) -> Result<ExitCode, Failure> {
    let source = read(&args.file)?;
    let compilation = match nnc_core::analyze(&source) {
        Ok(compilation) => compilation,
        Err(diags) => {
            report(&diags, &args.file, &source, color);
            return Ok(exit_for(&diags));
        }
    };
    let options = SummaryOptions {
        batch: args.batch,
        elem: match args.elem {
            ElemArg::F32 => Elem::F32,
            ElemArg::F64 => Elem::F64,
        },
    };
    let tables: Vec<String> = compilation
        .programs
        .iter()
        .map(|p| nnc_core::report::summary_with(p, &options))
        .collect();
    print_out(&tables.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
