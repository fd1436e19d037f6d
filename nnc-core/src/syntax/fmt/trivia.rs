//! Splits a parsed file into its tokens and attaches every comment to one of them.
//!
//! The grammar skips comments silently, so they are recovered from the source text in the gaps
//! between consecutive tokens. A comment that starts on the line of the token before it trails
//! that token; any other comment leads the token after it and will get a line of its own.

use super::super::parser::Rule;
use super::FormatError;
use pest::iterators::Pair;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Comment {
    /// The comment as written, without trailing whitespace and with `\n` line ends.
    pub text: String,
    /// A `//` comment runs to the end of its line, so a line break must follow it.
    pub is_line: bool,
    /// Whether an empty line separates the comment from what comes before it.
    pub blank_before: bool,
}

#[derive(Debug)]
pub(super) struct Token {
    pub start: usize,
    pub rule: Rule,
    pub text: String,
    /// Comments on lines of their own between the previous token and this one.
    pub leading: Vec<Comment>,
    /// Comments after this token on its own line.
    pub trailing: Vec<Comment>,
    /// Whether an empty line separates the token from the comment or token before it.
    pub blank_before: bool,
    /// A trailing comma, which the canonical layout leaves out.
    pub dropped: bool,
}

/// The tokens of a parsed file in source order, ending with the empty end-of-input token.
pub(super) fn tokens(source: &str, file: Pair<'_, Rule>) -> Result<Vec<Token>, FormatError> {
    let mut tokens: Vec<Token> = file
        .into_inner()
        .flatten()
        .filter(|p| p.clone().into_inner().next().is_none())
        .map(|p| Token {
            start: p.as_span().start(),
            rule: p.as_rule(),
            text: p.as_str().to_string(),
            leading: Vec::new(),
            trailing: Vec::new(),
            blank_before: false,
            dropped: false,
        })
        .collect();
    let mut prev_end = 0;
    for i in 0..tokens.len() {
        let start = tokens[i].start;
        let gap = source
            .get(prev_end..start)
            .ok_or_else(|| FormatError::internal("a token boundary is not a character boundary"))?;
        let (comments, newlines_after) = scan_gap(gap)?;
        // At the top of the file there is no token for a comment to trail.
        let mut own_line = i == 0;
        for (newlines, text) in comments {
            own_line |= newlines > 0;
            let comment = Comment {
                is_line: text.starts_with("//"),
                text: text.trim_end().replace("\r\n", "\n"),
                blank_before: newlines >= 2,
            };
            match i.checked_sub(1) {
                Some(prev) if !own_line => tokens[prev].trailing.push(comment),
                _ => tokens[i].leading.push(comment),
            }
        }
        tokens[i].blank_before = newlines_after >= 2;
        prev_end = start + tokens[i].text.len();
    }
    drop_trailing_commas(&mut tokens);
    Ok(tokens)
}

/// The comments of a gap, each with the number of line breaks before it, and the number of
/// line breaks after the last one.
type Gap<'a> = (Vec<(usize, &'a str)>, usize);

/// Reads the whitespace and comments between two tokens.
fn scan_gap(gap: &str) -> Result<Gap<'_>, FormatError> {
    let mut comments = Vec::new();
    let mut newlines = 0;
    let mut rest = gap;
    loop {
        let after_space = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        newlines += rest[..rest.len() - after_space.len()].matches('\n').count();
        rest = after_space;
        if rest.is_empty() {
            return Ok((comments, newlines));
        }
        let len = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/")
                .map(|end| end + 4)
                .ok_or_else(|| FormatError::internal("an unterminated block comment"))?
        } else {
            // The grammar allows only whitespace and comments between tokens.
            return Err(FormatError::internal(
                "text between tokens that is not a comment",
            ));
        };
        let (comment, after) = rest.split_at(len);
        comments.push((newlines, comment));
        newlines = 0;
        rest = after;
    }
}

/// Marks the commas just before `)`, `]` or `;` as dropped, and hands their comments to the
/// neighbouring tokens in a way that a second formatting attaches them the same way again.
fn drop_trailing_commas(tokens: &mut [Token]) {
    for i in 1..tokens.len().saturating_sub(1) {
        let closes = matches!(
            tokens[i + 1].rule,
            Rule::rparen | Rule::rbracket | Rule::semi
        );
        if tokens[i].rule != Rule::comma || !closes {
            continue;
        }
        tokens[i].dropped = true;
        let leading = std::mem::take(&mut tokens[i].leading);
        let trailing = std::mem::take(&mut tokens[i].trailing);
        let prev_ends_line = tokens[i - 1].trailing.last().is_some_and(|c| c.is_line);
        if leading.is_empty() && !prev_ends_line {
            // `a, // note` → `a // note`: still on the line of the token before.
            tokens[i - 1].trailing.extend(trailing);
        } else {
            // Comments that followed a line break keep their own lines, before the closer.
            let next = &mut tokens[i + 1].leading;
            let after = std::mem::take(next);
            next.extend(leading);
            next.extend(trailing);
            next.extend(after);
        }
    }
}
