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
        Ok(Input {
            path,
            options: options::apply(settings)?,
        })
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input {
        path: literal,
        options,
    } = syn::parse2(input)?;
    let relative = literal.value();
    let root = crate_root();
    let full = root.join(&relative);
    let source = nnc_core::source::read(&full).map_err(|e| {
        // A file that was found but is not UTF-8 needs no hint about where paths start.
        let message = match e.kind() {
            std::io::ErrorKind::InvalidData => format!("cannot read `{relative}`: {e}"),
            _ => format!(
                "cannot read `{relative}`: {e}\n  = help: the path is relative to the crate root {}",
                root.display()
            ),
        };
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
            // A header line, so that rustc's own `error:` prefix is not followed straight away
            // by the report's `error[E....]`.
            let report = nnc_core::render(&diags, &relative, &source, false);
            let message = format!("`{relative}` does not compile\n{}", report.trim_end());
            let error = syn::Error::new(literal.span(), message).into_compile_error();
            // Stand-ins keep the caller's code type-checking, so only the file's errors show.
            let stubs = nnc_core::stubs(&source, &options);
            Ok(quote! { #error #stubs #track })
        }
    }
}

/// The calling crate's directory: cargo sets `CARGO_MANIFEST_DIR` for every rustc it runs.
fn crate_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "model Tiny { input x: [2]; target y: [1];
        let p = x -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y); optimizer = sgd(lr = 0.1); }";

    /// An absolute path, so the result does not depend on `CARGO_MANIFEST_DIR`.
    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nnc-macros-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    fn expand_path(path: &Path, rest: &str) -> syn::Result<TokenStream> {
        let literal = LitStr::new(path.to_str().unwrap(), proc_macro2::Span::call_site());
        expand(format!("{} {rest}", quote!(#literal)).parse().unwrap())
    }

    #[test]
    fn a_good_file_expands_and_is_tracked() {
        let path = temp_file("good.nnc", TINY);
        let out = expand_path(&path, ", elem = f64,").unwrap().to_string();
        assert!(out.contains("pub struct Tiny"), "{out}");
        assert!(out.contains("f64"), "{out}");
        assert!(out.contains("include_bytes"), "{out}");
    }

    #[test]
    fn a_broken_file_is_one_error_holding_the_report() {
        let path = temp_file("broken.nnc", &TINY.replace("sigmoid", "sigmod"));
        let out = expand_path(&path, "").unwrap().to_string();
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("sigmod"), "{out}");
        assert!(out.contains("broken.nnc:2:"), "{out}");
        assert!(out.contains("include_bytes"), "{out}");
    }

    #[test]
    fn a_missing_file_says_where_it_was_looked_for() {
        let err = expand_path(Path::new("/nonexistent/nnc/m.nnc"), "").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot read `/nonexistent/nnc/m.nnc`: "),
            "{text}"
        );
        assert!(
            text.contains("help: the path is relative to the crate root"),
            "{text}"
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        for input in [
            "",
            "models/x.nnc",
            "\"x.nnc\" elem = f64",
            "\"x.nnc\", size = 3",
        ] {
            assert!(expand(input.parse().unwrap()).is_err(), "{input}");
        }
    }
}
