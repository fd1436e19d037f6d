//! Source spans and diagnostics: what every stage reports, collected rather than thrown.
//!
//! A [`Diagnostic`] is data: a code, a message, labelled spans, notes and help lines. The
//! renderer (`render.rs`) turns it into terminal text through codespan-reporting; the proc
//! macro turns the same data into spanned `compile_error!`s. No stage prints anything.

mod render;

pub use render::{render, SHOWN};

use std::fmt;

/// A half-open byte range `start..end` into the source text of one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn contains(self, inner: Span) -> bool {
        self.start <= inner.start && inner.end <= self.end
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A secondary span with its own short message ("`hidden` produces 32 values here").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in the source, with everything needed to explain and fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier such as `E0103`, listed in `codes.rs` and the language reference.
    pub code: &'static str,
    /// Lowercase, no trailing period: "dense `out` expects 64 inputs but `hidden` produces 32".
    pub message: String,
    /// Where the problem is; the proc macro underlines exactly this range.
    pub span: Span,
    /// What to say at `span` itself (may be empty).
    pub span_label: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            span_label: String::new(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    /// The short text shown under the primary span.
    pub fn with_span_label(mut self, text: impl Into<String>) -> Self {
        self.span_label = text.into();
        self
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: text.into(),
        });
        self
    }

    pub fn with_note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }

    pub fn with_help(mut self, text: impl Into<String>) -> Self {
        self.help.push(text.into());
        self
    }

    /// The message with its notes and help lines, as one plain text block. This is what the
    /// proc macro puts in `compile_error!`, where there is no room for secondary labels.
    pub fn to_plain_text(&self) -> String {
        let mut out = format!("{} [{}]", self.message, self.code);
        if !self.span_label.is_empty() {
            out.push_str(&format!("\n  {}", self.span_label));
        }
        for label in &self.labels {
            out.push_str(&format!("\n  note: {}", label.message));
        }
        for note in &self.notes {
            out.push_str(&format!("\n  = note: {note}"));
        }
        for help in &self.help {
            out.push_str(&format!("\n  = help: {help}"));
        }
        out
    }
}

/// All diagnostics of one compilation, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorts by position so that output order does not depend on which pass found what.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.span.start, d.span.end, d.code));
        self.items.dedup();
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "error[{}]: {} at {}", d.code, d.message, d.span)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
