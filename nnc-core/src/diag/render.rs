//! Terminal and machine-readable rendering of diagnostics.

use super::{Diagnostic, Diagnostics, Severity};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

/// Renders every diagnostic with source excerpts, the way rustc does. `color` adds ANSI
/// colours (the CLI passes true on a terminal; snapshots pass false).
pub fn render(diags: &Diagnostics, file_name: &str, source: &str, color: bool) -> String {
    let file = SimpleFile::new(file_name, source);
    let mut buffer = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    let config = term::Config::default();
    for d in diags {
        let diagnostic = to_codespan(d, source.len());
        // Writing into an in-memory buffer cannot fail for I/O reasons; a span outside the
        // file would be a compiler bug, and is clamped in `to_codespan` so it cannot happen.
        let _ = term::emit_to_write_style(&mut buffer, &config, &file, &diagnostic);
    }
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

fn to_codespan(d: &Diagnostic, len: usize) -> cs::Diagnostic<()> {
    let clamp = |r: std::ops::Range<usize>| r.start.min(len)..r.end.min(len);
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut labels =
        vec![cs::Label::primary((), clamp(d.span.range())).with_message(&d.span_label)];
    labels.extend(
        d.labels
            .iter()
            .map(|l| cs::Label::secondary((), clamp(l.span.range())).with_message(&l.message)),
    );
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    notes.extend(d.help.iter().map(|h| format!("help: {h}")));
    cs::Diagnostic::new(severity)
        .with_code(d.code)
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}
