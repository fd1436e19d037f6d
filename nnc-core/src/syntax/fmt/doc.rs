//! A small Wadler-style document and its printer: a group prints on one line when it fits in
//! [`WIDTH`] columns, and otherwise breaks at every one of its line positions.
//!
//! The document is a flat list in which groups and indentation are bracketed by start and end
//! markers, so that the tree walk in the parent module can append to one vector and attach a
//! pending comment wherever it stands.

/// The widest line the printer aims for, in characters. A group breaks when printing it flat
/// would make its line longer than this.
pub(super) const WIDTH: usize = 100;

/// One level of indentation.
const INDENT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Doc {
    /// Literal text. Only a block comment may contain a line break, and such a comment makes
    /// every group around it break.
    Text(String),
    /// A space when the innermost group is flat, a line break when it is broken.
    Line,
    /// Nothing when the innermost group is flat, a line break when it is broken.
    SoftLine,
    /// A line break that always happens. Breaks in a row collapse into one, so a comment can
    /// ask for its own line without knowing whether a line just ended.
    Newline,
    /// A line break followed by one empty line, however many are asked for in a row.
    BlankLine,
    GroupStart,
    GroupEnd,
    /// Lines started between these markers are indented one level deeper.
    IndentStart,
    IndentEnd,
}

/// Prints a document. Trailing spaces never reach the output, and a non-empty output ends
/// with exactly one newline.
pub(super) fn print(docs: &[Doc]) -> String {
    let forced = forced_breaks(docs);
    let mut p = Printer::new();
    let mut indent = 0;
    // Whether each open group prints flat; a group inside a flat group is flat as well.
    let mut flat: Vec<bool> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let in_flat = flat.last().copied().unwrap_or(false);
        match doc {
            Doc::Text(s) => p.text(s),
            Doc::Line if in_flat => p.text(" "),
            Doc::SoftLine if in_flat => {}
            Doc::Line | Doc::SoftLine | Doc::Newline => p.newline(indent),
            Doc::BlankLine => p.blank_line(indent),
            Doc::GroupStart => {
                let fits = !forced.get(i).copied().unwrap_or(true) && fits(docs, i, p.column());
                flat.push(in_flat || fits);
            }
            Doc::GroupEnd => {
                flat.pop();
            }
            Doc::IndentStart => indent += INDENT,
            Doc::IndentEnd => indent = indent.saturating_sub(INDENT),
        }
    }
    p.finish()
}

/// Marks the groups that must break whatever their width: those holding a hard line break or
/// a multi-line comment, directly or in a nested group.
fn forced_breaks(docs: &[Doc]) -> Vec<bool> {
    let mut forced = vec![false; docs.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let hard = match doc {
            Doc::GroupStart => {
                open.push(i);
                false
            }
            // A nested group that must break makes its parent break too.
            Doc::GroupEnd => open.pop().is_some_and(|g| forced[g]),
            Doc::Newline | Doc::BlankLine => true,
            Doc::Text(s) => s.contains('\n'),
            _ => false,
        };
        if let (true, Some(&g)) = (hard, open.last()) {
            forced[g] = true;
        }
    }
    forced
}

/// Whether the group starting at `start` fits flat on the current line, counting what follows
/// it up to the next place where a line may break (the `;` after a chain, for instance).
fn fits(docs: &[Doc], start: usize, mut col: usize) -> bool {
    let mut depth = 0usize;
    for doc in docs.iter().skip(start) {
        match doc {
            Doc::GroupStart => depth += 1,
            Doc::GroupEnd => depth = depth.saturating_sub(1),
            Doc::Text(s) => {
                let first_line = s.split('\n').next().unwrap_or_default();
                col += first_line.chars().count();
                if s.contains('\n') {
                    return col <= WIDTH;
                }
            }
            Doc::Line if depth > 0 => col += 1,
            Doc::SoftLine if depth > 0 => {}
            // Past the end of the group, the next line position of the enclosing (broken)
            // group or of a later group ends the measured line.
            Doc::Line | Doc::SoftLine | Doc::Newline | Doc::BlankLine => return col <= WIDTH,
            Doc::IndentStart | Doc::IndentEnd => {}
        }
        if col > WIDTH {
            return false;
        }
    }
    true
}

/// The output being built. Indentation is written lazily, by the first text of a line, so
/// that line breaks in a row collapse and the latest one decides the indentation.
struct Printer {
    out: String,
    col: usize,
    /// True when nothing but the (still unwritten) indentation is on the current line.
    at_line_start: bool,
    line_indent: usize,
}

impl Printer {
    fn new() -> Self {
        Printer {
            out: String::new(),
            col: 0,
            at_line_start: true,
            line_indent: 0,
        }
    }

    fn text(&mut self, s: &str) {
        if self.at_line_start {
            // Spaces at the start of a line would only add to the indentation.
            if s.trim_start_matches(' ').is_empty() {
                return;
            }
            self.out.extend(std::iter::repeat_n(' ', self.line_indent));
            self.col = self.line_indent;
            self.at_line_start = false;
        }
        self.out.push_str(s);
        match s.rfind('\n') {
            Some(i) => self.col = s[i + 1..].chars().count(),
            None => self.col += s.chars().count(),
        }
    }

    /// Ends the current line unless it is empty; either way the next line gets `indent`.
    fn newline(&mut self, indent: usize) {
        if !self.at_line_start {
            let kept = self.out.trim_end_matches(' ').len();
            self.out.truncate(kept);
            self.out.push('\n');
            self.at_line_start = true;
        }
        self.line_indent = indent;
    }

    /// Ends the current line and leaves one empty line, except at the top of the output.
    fn blank_line(&mut self, indent: usize) {
        self.newline(indent);
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn column(&self) -> usize {
        if self.at_line_start {
            self.line_indent
        } else {
            self.col
        }
    }

    fn finish(mut self) -> String {
        let kept = self.out.trim_end().len();
        self.out.truncate(kept);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }
}
