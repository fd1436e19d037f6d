//! Rebuilds nnc source text from Rust tokens and maps byte ranges of that text back to tokens.
//!
//! The compiler reports positions as byte ranges into the text it was given; to make rustc
//! underline the right tokens, every token's range in the rebuilt text is recorded with its span.

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};

/// The text the compiler sees, plus where each token landed in it.
pub struct Source {
    pub text: String,
    tokens: Vec<Token>,
    /// False right after a joint punctuation character, so that `->` stays `->`.
    space_before_next: bool,
}

struct Token {
    start: usize,
    end: usize,
    span: Span,
}

impl Source {
    pub fn new(stream: TokenStream) -> Source {
        let mut source = Source {
            text: String::new(),
            tokens: Vec::new(),
            space_before_next: false,
        };
        source.push_stream(stream);
        source
    }

    fn push_stream(&mut self, stream: TokenStream) {
        let mut trees = stream.into_iter().peekable();
        while let Some(tree) = trees.next() {
            // `/// text` reaches a macro as `#[doc = "text"]`; it is a comment in the language.
            if is_hash(&tree) && trees.peek().is_some_and(is_doc) {
                trees.next();
                continue;
            }
            match tree {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{", "}"),
                        // Invisible groups come from `macro_rules!` fragments: no text of their own.
                        Delimiter::None => ("", ""),
                    };
                    if !open.is_empty() {
                        self.push(open, group.span_open(), false);
                    }
                    self.push_stream(group.stream());
                    if !close.is_empty() {
                        self.push(close, group.span_close(), false);
                    }
                }
                TokenTree::Ident(ident) => self.push(&ident.to_string(), ident.span(), false),
                TokenTree::Punct(punct) => {
                    let joint = punct.spacing() == Spacing::Joint;
                    self.push(&punct.as_char().to_string(), punct.span(), joint);
                }
                TokenTree::Literal(literal) => {
                    self.push(&literal.to_string(), literal.span(), false)
                }
            }
        }
    }

    fn push(&mut self, text: &str, span: Span, joint: bool) {
        if self.space_before_next {
            self.text.push(' ');
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.tokens.push(Token {
            start,
            end: self.text.len(),
            span,
        });
        self.space_before_next = !joint;
    }

    /// The spans of the first and last tokens that `range` covers.
    ///
    /// An empty range (a syntax error "before" something) maps to the token it touches, or
    /// the next one; past the end of the text, to the last token. `None` only for empty input.
    pub fn locate(&self, range: std::ops::Range<usize>) -> Option<(Span, Span)> {
        let mut overlapping = self
            .tokens
            .iter()
            .filter(|t| t.start < range.end && range.start < t.end);
        if let Some(first) = overlapping.next() {
            let last = overlapping.next_back().unwrap_or(first);
            return Some((first.span, last.span));
        }
        let token = self
            .tokens
            .iter()
            .find(|t| t.end > range.start)
            .or_else(|| self.tokens.last())?;
        Some((token.span, token.span))
    }
}

fn is_hash(tree: &TokenTree) -> bool {
    matches!(tree, TokenTree::Punct(p) if p.as_char() == '#')
}

/// A `[doc = ...]` group, the body of a doc comment.
fn is_doc(tree: &TokenTree) -> bool {
    let TokenTree::Group(group) = tree else {
        return false;
    };
    group.delimiter() == Delimiter::Bracket
        && matches!(group.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source::new(text.parse().expect("test input tokenizes"))
    }

    #[test]
    fn rebuilds_text_with_joint_punctuation_kept_together() {
        let s = source("let p = x -> dense hidden(8) -> tanh; lr = -0.5");
        assert_eq!(
            s.text,
            "let p = x -> dense hidden ( 8 ) -> tanh ; lr = - 0.5"
        );
    }

    #[test]
    fn doc_comments_are_comments() {
        let s = source("/// the input\ninput x: [2];");
        assert_eq!(s.text, "input x : [ 2 ] ;");
    }

    #[test]
    fn records_a_range_per_token() {
        let s = source("a -> b(1)");
        let ranges: Vec<&str> = s.tokens.iter().map(|t| &s.text[t.start..t.end]).collect();
        assert_eq!(ranges, ["a", "-", ">", "b", "(", "1", ")"]);
    }

    #[test]
    fn locates_ranges_inside_and_past_the_text() {
        let s = source("a b c");
        assert!(s.locate(2..3).is_some());
        assert!(s.locate(1..1).is_some());
        assert!(s.locate(99..99).is_some());
        assert!(source("").locate(0..0).is_none());
    }
}
