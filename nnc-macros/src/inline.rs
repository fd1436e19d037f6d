//! `model! { ... }`: settings, then nnc source as Rust tokens, compiled in place.

use crate::options::{self, Spanned};
use crate::source::Source;
use proc_macro2::{Punct, Spacing, Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{bracketed, Token};

struct Input {
    options: nnc_core::Options,
    body: TokenStream,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Input> {
        let mut settings = Vec::new();
        while input.peek(Token![#]) {
            if !input.peek2(Token![!]) {
                return Err(input.error(
                    "settings are written as inner attributes before the first model, like `#![elem = f64]`",
                ));
            }
            input.parse::<Token![#]>()?;
            input.parse::<Token![!]>()?;
            let content;
            bracketed!(content in input);
            settings.extend(content.parse_terminated(Spanned::parse, Token![,])?);
        }
        let options = options::apply(settings)?;
        Ok(Input { options, body: input.parse()? })
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input { options, body } = syn::parse2(input)?;
    let source = Source::new(body);
    match nnc_core::compile(&source.text, &options) {
        Ok(rust) => crate::parse_generated(&rust),
        Err(diags) => {
            let errors = diags.iter().map(|d| {
                let (first, last) =
                    source.locate(d.span.range()).unwrap_or((Span::call_site(), Span::call_site()));
                syn::Error::new_spanned(two_tokens(first, last), d.to_plain_text())
            });
            Err(combine(errors).unwrap_or_else(|| {
                // The compiler failed without saying why: still an error, never silent success.
                syn::Error::new(Span::call_site(), "the model does not compile")
            }))
        }
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
