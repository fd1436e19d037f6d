//! `nnc fmt`: rewrites files in the canonical layout of `nnc_core::syntax::fmt`, or with
//! `--check` only reports which files that would change.

use super::{print_out, read, report, Failure};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(files: &[PathBuf], check: bool, color: bool) -> Result<ExitCode, Failure> {
    let mut failed = false;
    let mut unformatted = Vec::new();
    for file in files {
        let source = read(file)?;
        // Syntax errors are reported exactly as `nnc check` reports them.
        if let Err(diags) = nnc_core::syntax::parse(&source) {
            report(&diags, file, &source, color);
            failed = true;
            continue;
        }
        let formatted = nnc_core::syntax::fmt::format(&source)
            .map_err(|e| Failure(format!("cannot format `{}`: {e}", file.display())))?;
        if formatted == source {
            continue;
        }
        if check {
            unformatted.push(file.display().to_string());
        } else {
            nnc_core::build::write_atomic(file, &formatted)
                .map_err(|e| Failure(format!("cannot write `{}`: {e}", file.display())))?;
        }
    }
    if !unformatted.is_empty() {
        print_out(&format!("{}\n", unformatted.join("\n")))?;
    }
    Ok(if failed || !unformatted.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
