//! The canonical formatter behind `nnc fmt`: reprints a file that parses in one fixed layout,
//! keeping every comment; it checks syntax only, not names, shapes or anything else.
//!
//! The layout, also described in `grammar/README.md`:
//!
//! - `model Name {` … `}` with its statements indented by 4 spaces, one per line, and one empty
//!   line between models; a `repeat` block's `let`s are indented one level more. Empty lines between statements and comments are kept, at most one
//!   in a row; none are kept at the start or end of a model body or inside a statement.
//! - Single spaces around `=`, `->`, `+`, `-` and `*` and after `:` and `,`; none inside
//!   brackets, before `(` of a call or a layer's arguments, or between `-` and the digits of a
//!   negative number (`- 1` becomes `-1`). Numbers and parentheses are kept as written, and
//!   trailing commas are dropped.
//! - A statement longer than 100 columns breaks before every `->` of its
//!   chain, or before every `+` and `-` of a sum (the terms of a loss included), with the
//!   continuation lines indented one level more than the statement. An argument list that
//!   still does not fit puts one argument per line.
//! - A comment on its own line stays on its own line, above the next token, at the indentation
//!   of the statement (or of the continuation line) it precedes. A comment after a token on
//!   the same line stays after that token; a `//` comment there makes a line break follow, so
//!   a comment inside a chain or an argument list breaks that chain or list.
//!
//! The result is stable (formatting it again changes nothing) and holds the same tokens, apart
//! from trailing commas, and the same comments in the same order.

mod doc;
mod trivia;

#[cfg(test)]
mod tests;

use super::parser::{Grammar, Rule};
use doc::Doc;
use pest::iterators::Pair;
use pest::Parser as _;
use std::fmt;
use trivia::{Comment, Token};

/// Why a source text could not be formatted: it does not parse (or, short of that, nests
/// expressions hundreds of levels deep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    message: String,
}

impl FormatError {
    /// What went wrong, in one line.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    fn internal(what: &str) -> Self {
        FormatError {
            message: format!("cannot format this file: {what}"),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

/// Returns the canonical formatting of `source`.
///
/// # Errors
///
/// When `source` does not parse. Report syntax errors through [`parse`](super::parse) first:
/// its diagnostics say far more than a [`FormatError`].
pub fn format(source: &str) -> Result<String, FormatError> {
    let file = Grammar::parse(Rule::file, source)
        .map_err(|e| {
            let (pest::error::LineColLocation::Pos((line, col))
            | pest::error::LineColLocation::Span((line, col), _)) = e.line_col;
            FormatError {
                message: format!("syntax error at line {line}, column {col}"),
            }
        })?
        .next()
        .ok_or_else(|| FormatError::internal("the parser returned no file"))?;
    let mut b = Builder {
        tokens: trivia::tokens(source, file.clone())?,
        docs: Vec::new(),
        pending: Vec::new(),
        prev: None,
        at_break: true,
        at_soft_break: false,
        depth: 0,
    };
    b.file(file)?;
    Ok(doc::print(&b.docs))
}

type P<'a> = Pair<'a, Rule>;

/// The deepest nesting of nodes with several children that is formatted: far beyond any real
/// model (each pair of parentheses costs one or two levels), and shallow enough for the stack
/// of a test thread.
const MAX_DEPTH: usize = 500;

/// Where the first of a run of own-line comments may have an empty line above it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// At the top of the file or of a model body: never.
    Never,
    /// Between statements, or before the end of a body or of the file: where the source has one.
    Keep,
    /// Between models: always.
    Always,
}

/// Walks the parse tree and appends the document of each token and comment.
struct Builder {
    tokens: Vec<Token>,
    docs: Vec<Doc>,
    /// Comments trailing the last token, written before whatever comes next so that they stay
    /// on its line.
    pending: Vec<Comment>,
    /// The last token written, and whether it was the sign of a negative number.
    prev: Option<(Rule, bool)>,
    /// Whether the document ends in a line position, where no separating space is needed and
    /// a leading comment needs no extra indentation.
    at_break: bool,
    /// Whether that line position is a `SoftLine`, which prints nothing when its group is flat.
    at_soft_break: bool,
    /// How many nodes with several children enclose the current one.
    depth: usize,
}

impl Builder {
    fn push(&mut self, doc: Doc) {
        // The end of a group or an indentation is no place to write a trailing comment: a
        // comment after the `)` of `mse(p, y)` must not break that argument list.
        if !matches!(doc, Doc::GroupEnd | Doc::IndentEnd) {
            self.flush();
        }
        match doc {
            Doc::Text(_) => self.at_break = false,
            Doc::Line | Doc::SoftLine | Doc::Newline | Doc::BlankLine => self.at_break = true,
            _ => {}
        }
        if !matches!(
            doc,
            Doc::GroupStart | Doc::GroupEnd | Doc::IndentStart | Doc::IndentEnd
        ) {
            self.at_soft_break = doc == Doc::SoftLine;
        }
        self.docs.push(doc);
    }

    /// Writes the pending trailing comments. A `//` comment ends its line, and what follows
    /// continues one level deeper, unless it starts a line of its own anyway.
    fn flush(&mut self) {
        for c in std::mem::take(&mut self.pending) {
            self.docs.push(Doc::Text(format!(" {}", c.text)));
            self.at_break = c.is_line;
            // A block comment inside a line is set off by spaces on both sides, as a word.
            self.prev = Some((Rule::COMMENT, false));
            if c.is_line {
                self.docs
                    .extend([Doc::IndentStart, Doc::Newline, Doc::IndentEnd]);
            }
        }
    }

    fn index(&self, p: &P<'_>) -> Result<usize, FormatError> {
        let start = p.as_span().start();
        self.tokens
            .binary_search_by_key(&start, |t| t.start)
            .map_err(|_| FormatError::internal("a node that starts with no token"))
    }

    /// Writes comments on lines of their own at the current indentation.
    fn own_line_comments(&mut self, comments: Vec<Comment>, first: Blank) {
        for (n, c) in comments.into_iter().enumerate() {
            self.push(Doc::Newline);
            let blank = match (n, first) {
                (0, Blank::Never) => false,
                (0, Blank::Always) => true,
                _ => c.blank_before,
            };
            if blank {
                self.push(Doc::BlankLine);
            }
            self.push(Doc::Text(c.text));
            self.push(Doc::Newline);
        }
    }

    /// Starts a line for a model or a statement: its own-line comments above it, and an empty
    /// line where `blank` allows.
    fn block_start(&mut self, p: &P<'_>, blank: Blank) -> Result<(), FormatError> {
        let i = self.index(p)?;
        let comments = std::mem::take(&mut self.tokens[i].leading);
        let commented = !comments.is_empty();
        self.own_line_comments(comments, blank);
        self.push(Doc::Newline);
        let token_blank = self.tokens[i].blank_before;
        let wanted = match blank {
            _ if commented => token_blank,
            Blank::Never => false,
            Blank::Always => true,
            Blank::Keep => token_blank,
        };
        if wanted {
            self.push(Doc::BlankLine);
        }
        Ok(())
    }

    fn file(&mut self, file: P<'_>) -> Result<(), FormatError> {
        let mut first = true;
        for child in file.into_inner() {
            match child.as_rule() {
                Rule::model => {
                    self.block_start(&child, if first { Blank::Never } else { Blank::Always })?;
                    self.model(child)?;
                    first = false;
                }
                Rule::EOI => {
                    let i = self.index(&child)?;
                    let comments = std::mem::take(&mut self.tokens[i].leading);
                    self.own_line_comments(
                        comments,
                        if first { Blank::Never } else { Blank::Keep },
                    );
                }
                _ => {}
            }
        }
        // The last token's trailing comments.
        self.push(Doc::Newline);
        Ok(())
    }

    fn model(&mut self, model: P<'_>) -> Result<(), FormatError> {
        // No empty line opens a body.
        let mut blank = Blank::Never;
        for child in model.into_inner() {
            match child.as_rule() {
                Rule::kw_model | Rule::ident | Rule::kw_repeat | Rule::integer | Rule::kw_as => {
                    self.leaf(&child)?
                }
                Rule::lbrace => {
                    self.leaf(&child)?;
                    self.push(Doc::IndentStart);
                }
                Rule::rbrace => {
                    // Comments before the `}` belong to the body and take its indentation.
                    let i = self.index(&child)?;
                    let comments = std::mem::take(&mut self.tokens[i].leading);
                    self.own_line_comments(comments, blank);
                    self.push(Doc::IndentEnd);
                    self.push(Doc::Newline);
                    self.leaf(&child)?;
                }
                // A `repeat` block is laid out like a model: its `let`s one level deeper.
                Rule::repeat_stmt => {
                    self.block_start(&child, blank)?;
                    self.model(child)?;
                    blank = Blank::Keep;
                }
                _ => {
                    self.block_start(&child, blank)?;
                    self.node(child)?;
                    blank = Blank::Keep;
                }
            }
        }
        Ok(())
    }

    fn node(&mut self, p: P<'_>) -> Result<(), FormatError> {
        // Most expression nodes wrap a single child (an `expr` that is one `product` that is one
        // `chain`...): going down through them in a loop leaves only real nesting on the stack.
        let mut p = p;
        let mut children: Vec<P<'_>> = p.clone().into_inner().collect();
        while let [only] = children.as_slice() {
            p = only.clone();
            children = p.clone().into_inner().collect();
        }
        if children.is_empty() {
            return self.leaf(&p);
        }
        // pest stops at a depth that depends on the stack it has; stopping here as well means a
        // pathological file is refused instead of overflowing the stack.
        if self.depth >= MAX_DEPTH {
            return Err(FormatError::internal("expressions nested too deeply"));
        }
        self.depth += 1;
        let result = self.compound(p.as_rule(), children);
        self.depth -= 1;
        result
    }

    fn compound(&mut self, rule: Rule, children: Vec<P<'_>>) -> Result<(), FormatError> {
        match rule {
            Rule::chain => self.broken_at(children, &[Rule::arrow]),
            Rule::expr => self.broken_at(children, &[Rule::plus, Rule::minus]),
            Rule::loss_stmt => {
                // `loss =` and the `;` stay outside the sum of terms.
                let mut rest = children.into_iter();
                let head: Vec<P<'_>> = rest.by_ref().take(2).collect();
                let mut terms: Vec<P<'_>> = rest.collect();
                let semi = terms.pop();
                for c in head {
                    self.node(c)?;
                }
                self.broken_at(terms, &[Rule::plus])?;
                semi.map_or(Ok(()), |s| self.node(s))
            }
            // An empty `()` has nothing to break.
            Rule::arg_list if children.len() > 2 => self.arg_list(children),
            // The `-` of a negative number sticks to its digits.
            Rule::neg_number => {
                for c in children {
                    self.node(c)?;
                    self.prev = self.prev.map(|(rule, _)| (rule, rule == Rule::minus));
                }
                Ok(())
            }
            _ => children.into_iter().try_for_each(|c| self.node(c)),
        }
    }

    /// A group that breaks before each child of one of the `breaks` kinds, the continuation
    /// lines one level deeper: a chain before its `->`, a sum before its `+` and `-`.
    fn broken_at(&mut self, children: Vec<P<'_>>, breaks: &[Rule]) -> Result<(), FormatError> {
        self.push(Doc::GroupStart);
        let mut children = children.into_iter();
        if let Some(first) = children.next() {
            self.node(first)?;
        }
        self.push(Doc::IndentStart);
        for c in children {
            if breaks.contains(&c.as_rule()) {
                self.push(Doc::Line);
            }
            self.node(c)?;
        }
        self.push(Doc::IndentEnd);
        self.push(Doc::GroupEnd);
        Ok(())
    }

    /// `(a, b)` flat, or one argument per line with the `)` back at the start's indentation.
    fn arg_list(&mut self, children: Vec<P<'_>>) -> Result<(), FormatError> {
        self.push(Doc::GroupStart);
        for c in children {
            match c.as_rule() {
                Rule::lparen => {
                    self.leaf(&c)?;
                    self.push(Doc::IndentStart);
                    self.push(Doc::SoftLine);
                }
                Rule::comma => {
                    let dropped = self.tokens[self.index(&c)?].dropped;
                    self.leaf(&c)?;
                    if !dropped {
                        self.push(Doc::Line);
                    }
                }
                Rule::rparen => {
                    // Comments before the `)` line up with the arguments.
                    let i = self.index(&c)?;
                    let comments = std::mem::take(&mut self.tokens[i].leading);
                    self.own_line_comments(comments, Blank::Never);
                    self.push(Doc::IndentEnd);
                    self.push(Doc::SoftLine);
                    self.leaf(&c)?;
                }
                _ => self.node(c)?,
            }
        }
        self.push(Doc::GroupEnd);
        Ok(())
    }

    /// Writes one token with the space before it and its comments; a dropped trailing comma
    /// writes nothing, its comments having moved to its neighbours.
    fn leaf(&mut self, p: &P<'_>) -> Result<(), FormatError> {
        let i = self.index(p)?;
        let token = &mut self.tokens[i];
        if token.dropped {
            return Ok(());
        }
        let rule = token.rule;
        let text = std::mem::take(&mut token.text);
        let leading = std::mem::take(&mut token.leading);
        let trailing = std::mem::take(&mut token.trailing);
        // Inside a line, own-line comments and the rest of the statement move one level
        // deeper; at a line position they simply take the line's indentation. A trailing `//`
        // comment of the previous token ends the line but does not make a line position.
        let nested = !self.at_break;
        self.flush();
        // After `( /* note */` the soft line may print nothing, so the space is written anyway;
        // at the start of a line the printer drops it.
        if (!self.at_break || self.at_soft_break) && space_between(self.prev, rule) {
            self.push(Doc::Text(" ".to_string()));
        }
        if !leading.is_empty() {
            if nested {
                self.push(Doc::IndentStart);
            }
            self.own_line_comments(leading, Blank::Never);
            if nested {
                self.push(Doc::IndentEnd);
            }
        }
        if !text.is_empty() {
            self.push(Doc::Text(text));
        }
        self.prev = Some((rule, false));
        self.pending = trailing;
        Ok(())
    }
}

/// Whether the canonical layout puts a space between two tokens on one line.
fn space_between(prev: Option<(Rule, bool)>, next: Rule) -> bool {
    let Some((prev, negative_sign)) = prev else {
        return false;
    };
    if negative_sign || matches!(prev, Rule::lparen | Rule::lbracket) {
        return false;
    }
    match next {
        Rule::rparen | Rule::rbracket | Rule::comma | Rule::semi | Rule::colon => false,
        // `mse(p, y)`, `dense hidden(8)`, `class(10)`, but `= (a + b)`.
        Rule::lparen => !matches!(prev, Rule::ident | Rule::kw_class | Rule::kw_ids),
        _ => true,
    }
}
