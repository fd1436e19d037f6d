//! Terminal and machine-readable rendering of diagnostics.
//!
//! Two things keep the output readable and its cost bounded whatever the input: only the first
//! [`SHOWN`] diagnostics are rendered (the rest are counted in a last line), and a source line
//! longer than [`MAX_LINE`] bytes is cut to a window around the labels on it, through
//! [`Excerpt`], which keeps the true line and column numbers. Control characters and bidi
//! overrides are shown as `?` and `�` rather than written to the terminal.

use super::{Diagnostic, Diagnostics, Severity};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{self, Files, SimpleFile};
use codespan_reporting::term::{self, termcolor};
use std::borrow::Cow;
use std::ops::Range;

/// How many diagnostics are rendered. Past this many, the rest are usually consequences of the
/// first ones, and printing them (each with its source excerpt) only buries those; the JSON
/// output still lists them all.
pub const SHOWN: usize = 100;

/// Source lines longer than this many bytes are cut around the labels on them.
const MAX_LINE: usize = 200;

/// Bytes of context kept on each side of the labels of a cut line.
const CONTEXT: usize = 60;

/// Renders the diagnostics with source excerpts, the way rustc does. `color` adds ANSI colours
/// (the CLI passes true on a terminal; snapshots pass false).
pub fn render(diags: &Diagnostics, file_name: &str, source: &str, color: bool) -> String {
    let source = printable(source);
    let file = SimpleFile::new(file_name, source.as_ref());
    let lines: Vec<usize> = files::line_starts(&source).collect();
    let mut buffer = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    let config = term::Config::default();
    for d in diags.iter().take(SHOWN) {
        let diagnostic = to_codespan(d, source.len());
        // Writing into an in-memory buffer cannot fail for I/O reasons; a span outside the
        // file would be a compiler bug, and is clamped in `to_codespan` so it cannot happen.
        match Excerpt::of(&diagnostic, file_name, &source, &lines) {
            Some((excerpt, diagnostic)) => {
                let _ = term::emit_to_write_style(&mut buffer, &config, &excerpt, &diagnostic);
            }
            None => {
                let _ = term::emit_to_write_style(&mut buffer, &config, &file, &diagnostic);
            }
        }
    }
    let mut out = String::from_utf8_lossy(buffer.as_slice()).into_owned();
    if diags.len() > SHOWN {
        out.push_str(&format!(
            "note: {} more diagnostics not shown; fix the ones above first\n",
            diags.len() - SHOWN
        ));
    }
    out
}

fn to_codespan(d: &Diagnostic, len: usize) -> cs::Diagnostic<()> {
    let clamp = |r: Range<usize>| r.start.min(len)..r.end.min(len);
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

/// `source` with every control character (other than tab and line breaks) replaced by `?` and
/// every bidi override or isolate by `�`, each replacement as long in bytes as what it
/// replaces, so that every span still points at the same bytes.
fn printable(source: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !source.chars().any(bad) {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    for c in source.chars() {
        match c {
            c if bad(c) && c.len_utf8() == 3 => out.push('\u{FFFD}'),
            c if bad(c) => out.extend(std::iter::repeat_n('?', c.len_utf8())),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The lines a diagnostic touches, each cut to a window around its labels when it is long,
/// one after another: a stand-in source for codespan that reports the original line and column
/// numbers.
struct Excerpt<'a> {
    name: &'a str,
    text: String,
    lines: Vec<ExcerptLine>,
    source: &'a str,
}

/// One line of an [`Excerpt`].
struct ExcerptLine {
    /// Where the line starts in the excerpt's text.
    start: usize,
    /// The part of the source it shows.
    window: Range<usize>,
    /// The bytes of the `…` put before the window, when the line is cut at its start.
    prefix: usize,
    /// Its 0-based line index, and where the line starts, in the source.
    index: usize,
    line_start: usize,
}

impl<'a> Excerpt<'a> {
    /// The excerpt of `d` and `d` with its labels moved into it, or `None` when every line it
    /// touches is short enough to show whole.
    fn of(
        d: &cs::Diagnostic<()>,
        name: &'a str,
        source: &'a str,
        starts: &[usize],
    ) -> Option<(Excerpt<'a>, cs::Diagnostic<()>)> {
        let line_of = |byte: usize| starts.partition_point(|&s| s <= byte).saturating_sub(1);
        let line_end = |i: usize| starts.get(i + 1).copied().unwrap_or(source.len());
        let long = |i: usize| line_end(i) - starts[i] > MAX_LINE;
        if !d.labels.iter().any(|l| long(line_of(l.range.start))) {
            return None;
        }
        // Each touched line, with the extent of the labels that start on it.
        let mut touched: Vec<(usize, Range<usize>)> = Vec::new();
        for l in &d.labels {
            let i = line_of(l.range.start);
            let end = l.range.end.min(line_end(i)).max(l.range.start);
            match touched.iter_mut().find(|(j, _)| *j == i) {
                Some((_, r)) => *r = r.start.min(l.range.start)..r.end.max(end),
                None => touched.push((i, l.range.start..end)),
            }
        }
        touched.sort_by_key(|(i, _)| *i);
        let mut excerpt = Excerpt {
            name,
            text: String::new(),
            lines: Vec::new(),
            source,
        };
        for (i, labels) in touched {
            let (line_start, end) = (starts[i], line_end(i));
            // Labels too far apart to share a window: the window follows the primary label, and
            // the others are drawn at its edge.
            let primary = d
                .labels
                .iter()
                .find(|l| l.style == cs::LabelStyle::Primary && line_of(l.range.start) == i);
            let labels = match primary {
                Some(p) if labels.len() > MAX_LINE => p.range.start..p.range.end.min(end),
                _ => labels,
            };
            let window = if long(i) {
                let from =
                    floor_boundary(source, labels.start.saturating_sub(CONTEXT).max(line_start));
                let to = (labels.end + CONTEXT)
                    .min(end)
                    .min(from + 2 * CONTEXT + MAX_LINE);
                from..floor_boundary(source, to)
            } else {
                line_start..end
            };
            let shown = source[window.clone()].trim_end_matches(['\n', '\r']);
            let prefix = if window.start > line_start { "…" } else { "" };
            let text_end =
                line_start + source[line_start..end].trim_end_matches(['\n', '\r']).len();
            let suffix = if window.start + shown.len() < text_end {
                "…"
            } else {
                ""
            };
            excerpt.lines.push(ExcerptLine {
                start: excerpt.text.len(),
                window: window.start..window.start + shown.len(),
                prefix: prefix.len(),
                index: i,
                line_start,
            });
            excerpt.text.push_str(prefix);
            excerpt.text.push_str(shown);
            excerpt.text.push_str(suffix);
            excerpt.text.push('\n');
        }
        let mut moved = d.clone();
        for l in &mut moved.labels {
            let line = &excerpt.lines[excerpt
                .lines
                .iter()
                .position(|e| e.index == line_of(l.range.start))
                .unwrap_or(0)];
            let at = |b: usize| {
                line.start + line.prefix + b.clamp(line.window.start, line.window.end)
                    - line.window.start
            };
            l.range = at(l.range.start)..at(l.range.end);
        }
        Some((excerpt, moved))
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl<'a> Files<'a> for Excerpt<'a> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, files::Error> {
        Ok(self.name)
    }

    fn source(&'a self, (): ()) -> Result<&'a str, files::Error> {
        Ok(&self.text)
    }

    fn line_index(&'a self, (): (), byte_index: usize) -> Result<usize, files::Error> {
        Ok(self
            .lines
            .partition_point(|l| l.start <= byte_index)
            .saturating_sub(1))
    }

    fn line_number(&'a self, (): (), line_index: usize) -> Result<usize, files::Error> {
        Ok(self.lines.get(line_index).map_or(1, |l| l.index + 1))
    }

    fn column_number(
        &'a self,
        (): (),
        line_index: usize,
        byte_index: usize,
    ) -> Result<usize, files::Error> {
        let Some(l) = self.lines.get(line_index) else {
            return Ok(1);
        };
        // Characters of the source line before the window, then of the window up to the byte.
        let into = byte_index.saturating_sub(l.start + l.prefix);
        let to = floor_boundary(self.source, (l.window.start + into).min(l.window.end));
        Ok(self.source[l.line_start..to].chars().count() + 1)
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, files::Error> {
        let start = self.lines.get(line_index).map_or(0, |l| l.start);
        let end = self
            .lines
            .get(line_index + 1)
            .map_or(self.text.len(), |l| l.start);
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    /// A label on a long line is shown in a window around it, with the column of the whole line.
    #[test]
    fn long_lines_are_cut_and_keep_their_columns() {
        let line = format!("let p = {}y;", "x + ".repeat(500));
        let source = format!("model M {{\n{line}\n}}\n");
        let at = source.find('y').unwrap();
        let d = Diagnostic::error("E0103", Span::new(at, at + 1), "cannot find `y`")
            .with_label(Span::new(10, 13), "this statement");
        let out = render(&Diagnostics::from(d), "m.nnc", &source, false);
        let column = line.find('y').unwrap() + 1;
        assert!(out.contains(&format!("m.nnc:2:{column}")), "{out}");
        assert!(out.lines().all(|l| l.len() < 3 * MAX_LINE), "{out}");
        assert!(out.contains("…"), "{out}");
    }

    #[test]
    fn control_characters_are_not_printed() {
        let source = "model M { // \u{202e}\u{7} \n}\n";
        let d = Diagnostic::error("E0001", Span::new(0, 5), "m");
        let out = render(&Diagnostics::from(d), "m.nnc", source, false);
        assert!(!out.contains('\u{202e}') && !out.contains('\u{7}'), "{out}");
    }
}
