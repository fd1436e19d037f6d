//! `include_model!("path.nnc", settings...)`: compiles a file relative to the calling crate.

use crate::options::{self, Spanned};
use proc_macro2::TokenStream;
use quote::quote;
use std::path::{Path, PathBuf};
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

struct Input {
    path: LitStr,
    options: nnc_core::Options,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Input> {
        let path: LitStr = input.parse()?;
        let mut settings = Vec::new();
        if input.parse::<Option<Token![,]>>()?.is_some() {
            settings.extend(input.parse_terminated(Spanned::parse, Token![,])?);
        }
        Ok(Input { path, options: options::apply(settings)? })
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input { path: literal, options } = syn::parse2(input)?;
    let relative = literal.value();
    let root = crate_root();
    let full = root.join(&relative);
    let source = std::fs::read_to_string(&full).map_err(|e| {
        let message = format!(
            "cannot read `{relative}`: {e}\n  = help: the path is relative to the crate root {}",
            root.display()
        );
        syn::Error::new(literal.span(), message)
    })?;

    // Naming the file in `include_bytes!` is what makes cargo rebuild when it changes, on
    // success and on failure alike, so that fixing the file retriggers the build.
    let track = track(&full, &literal);
    match nnc_core::compile(&source, &options) {
        Ok(rust) => {
            let items = crate::parse_generated(&rust)?;
            Ok(quote! { #items #track })
        }
        Err(diags) => {
            let report = nnc_core::render(&diags, &relative, &source, false);
            let error = syn::Error::new(literal.span(), report.trim_end()).into_compile_error();
            Ok(quote! { #error #track })
        }
    }
}

/// The calling crate's directory: cargo sets `CARGO_MANIFEST_DIR` for every rustc it runs.
fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default()
}

fn track(full: &Path, literal: &LitStr) -> TokenStream {
    // A non-UTF-8 path cannot be written as a string literal; the build then simply does not
    // track the file, which is better than refusing to build.
    // A relative path would be resolved by `include_bytes!` against the calling source file,
    // not the crate root, so only an absolute one is used.
    let Some(text) = full.to_str().filter(|_| full.is_absolute()) else {
        return TokenStream::new();
    };
    let path = LitStr::new(text, literal.span());
    quote! { const _: &[u8] = include_bytes!(#path); }
}
