//! `model! { ... }`: settings, then nnc source as Rust tokens, compiled in place.

use crate::options::{self, Spanned};
use crate::source::Source;
use proc_macro2::{Punct, Spacing, Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{bracketed, Ident, Token};

struct Input {
    options: nnc_core::Options,
    body: TokenStream,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Input> {
        let mut settings = Vec::new();
        while input.peek(Token![#]) {
            let hash: Token![#] = input.parse()?;
            let inner = input.parse::<Option<Token![!]>>()?.is_some();
            let content;
            bracketed!(content in input);
            // `/// text` and `//! text` arrive as `#[doc = "text"]`: comments, not settings.
            if content.fork().parse::<Ident>().is_ok_and(|i| i == "doc") {
                content.parse::<TokenStream>()?;
                continue;
            }
            if !inner {
                return Err(syn::Error::new(
                    hash.span,
                    "settings are written as inner attributes before the first model, like `#![elem = f64]`",
                ));
            }
            settings.extend(content.parse_terminated(Spanned::parse, Token![,])?);
        }
        let options = options::apply(settings)?;
        Ok(Input {
            options,
            body: input.parse()?,
        })
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input { options, body } = syn::parse2(input)?;
    let source = Source::new(body);
    match nnc_core::compile(&source.text, &options) {
        Ok(rust) => crate::parse_generated(&rust),
        Err(diags) => {
            let errors = diags.iter().map(|d| {
                let (first, last) = source
                    .locate(d.span.range())
                    .unwrap_or((Span::call_site(), Span::call_site()));
                syn::Error::new_spanned(two_tokens(first, last), d.to_plain_text())
            });
            Err(combine(errors).unwrap_or_else(|| {
                // The compiler failed without saying why: still an error, never silent success.
                syn::Error::new(Span::call_site(), "the model does not compile")
            }))
        }
    }
}

/// Stand-ins for the models of an input that failed to compile (see `nnc_core::stubs`):
/// emitted beside the errors so that code using the models still type-checks and only the
/// models' own errors are reported. Empty when the input does not even parse.
pub fn stubs(input: TokenStream) -> TokenStream {
    match syn::parse2::<Input>(input) {
        Ok(Input { options, body }) => nnc_core::stubs(&Source::new(body).text, &options),
        Err(_) => TokenStream::new(),
    }
}

/// Two placeholder tokens carrying the first and last span: `Error::new_spanned` makes the
/// error run from the start of the first to the end of the last, on stable Rust too.
fn two_tokens(first: Span, last: Span) -> TokenStream {
    [first, last]
        .into_iter()
        .map(|span| {
            let mut punct = Punct::new('#', Spacing::Alone);
            punct.set_span(span);
            TokenTree::Punct(punct)
        })
        .collect()
}

fn combine(errors: impl IntoIterator<Item = syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XOR: &str = "model Xor {
        input x: [2]; target y: [1];
        let p = x -> dense hidden(8) -> relux -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y);
        optimizer = sgd(lr = 0.5);
    }";

    fn expand_str(text: &str) -> syn::Result<TokenStream> {
        expand(text.parse().expect("test input tokenizes"))
    }

    #[test]
    fn a_good_model_expands_to_its_struct() {
        let out = expand_str(&XOR.replace("relux", "relu"))
            .unwrap()
            .to_string();
        assert!(out.contains("pub struct Xor"), "{out}");
    }

    #[test]
    fn an_error_spans_exactly_the_offending_token() {
        let err = expand_str(XOR).unwrap_err();
        assert!(err.to_string().contains("relux"), "{err}");
        let span = err.span();
        // `relux` is on the third line, 40 columns in (0-based, as proc-macro2 counts).
        assert_eq!((span.start().line, span.start().column), (3, 40));
        assert_eq!((span.end().line, span.end().column), (3, 45));
    }

    #[test]
    fn every_error_is_reported() {
        let err = expand_str(&XOR.replace("sgd", "sdg")).unwrap_err();
        assert_eq!(err.into_iter().count(), 2);
    }

    #[test]
    fn a_syntax_error_points_at_the_next_token() {
        let err = expand_str(&XOR.replace("[1];", "[1]")).unwrap_err();
        let span = err.span();
        assert_eq!(span.start().line, 3, "{err}");
        assert_eq!(span.start().column, 8, "{err}");
    }

    #[test]
    fn settings_reach_the_generated_code() {
        let text = format!(
            "#![elem = f64] #![runtime = ::my_rt] {}",
            XOR.replace("relux", "relu")
        );
        let out = expand_str(&text).unwrap().to_string();
        assert!(out.contains("f64"), "{out}");
        assert!(out.contains(":: my_rt"), "{out}");
    }

    #[test]
    fn doc_comments_are_not_settings() {
        let text = format!(
            "//! about\n#![elem = f64]\n/// more\n{}",
            XOR.replace("relux", "relu")
        );
        let out = expand_str(&text).unwrap().to_string();
        assert!(out.contains("f64"), "{out}");
    }

    #[test]
    fn bad_settings_are_spanned_errors() {
        for (settings, message) in [
            ("#![elem = f16]", "unknown element type `f16`"),
            ("#![precision = f64]", "unknown setting `precision`"),
            ("#![elem = f64, elem = f32]", "`elem` is set more than once"),
            ("#[elem = f64]", "inner attributes"),
        ] {
            let err = expand_str(&format!("{settings} {XOR}")).unwrap_err();
            assert!(err.to_string().contains(message), "{settings}: {err}");
        }
    }

    #[test]
    fn empty_input_is_an_error_without_a_token_to_point_at() {
        let err = expand_str("").unwrap_err();
        assert!(err.to_string().contains("no model"), "{err}");
    }
}
