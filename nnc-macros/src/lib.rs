//! Procedural macros of nnc: `model!` compiles nnc source written inline, `include_model!` a
//! `.nnc` file; both generate the same Rust as the `nnc` CLI.
//!
//! These macros are re-exported by the `nnc` facade crate, which is the crate to depend on: the
//! generated code names the runtime as `::nnc::runtime` unless told otherwise.
//!
//! # Writing a model inline
//!
//! ```text
//! nnc::model! {
//!     model Xor {
//!         input  x: [2];
//!         target y: [1];
//!         let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;
//!         loss = binary_cross_entropy(p, y);
//!         optimizer = sgd(lr = 0.5);
//!     }
//! }
//!
//! let mut model = Xor::new(7);
//! let mut ws = model.workspace(4);
//! let loss = model.train_step(&mut ws, &x, &y)?;
//! let p = model.predict(&mut ws, &x)?;
//! ```
//!
//! Settings go in leading inner attributes, before the first `model`:
//!
//! ```text
//! nnc::model! {
//!     #![elem = f64]                  // generate f64 code (the default is f32)
//!     #![runtime = ::nnc_runtime]     // name the runtime crate directly, not through `nnc`
//!     model Tiny { ... }
//! }
//! ```
//!
//! Errors in the model become compile errors that point at the model's own tokens: a typo in
//! `-> relux` underlines `relux`, and every problem is reported at once, not only the first.
//!
//! # Keeping a model in its own file
//!
//! ```text
//! nnc::include_model!("models/xor.nnc");              // relative to the crate's Cargo.toml
//! nnc::include_model!("models/xor.nnc", elem = f64);  // same settings as above
//! ```
//!
//! The file is read at compile time and cargo rebuilds the crate when it changes. Errors are
//! reported as one compile error on the path, holding the full report with source excerpts,
//! exactly as `nnc check` prints it.

mod include;
mod inline;
mod options;
mod source;

use proc_macro::TokenStream;

/// Compiles the nnc model(s) written inside the braces into Rust items.
///
/// See the [crate documentation](crate) for the language, the settings and an example.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    match inline::expand(input.clone()) {
        Ok(items) => items.into(),
        Err(error) => {
            let mut out = error.into_compile_error();
            out.extend(inline::stubs(input));
            out.into()
        }
    }
}

/// Compiles the nnc file at the given path, relative to the calling crate's `Cargo.toml`.
///
/// Takes the same settings as `model!`, after the path: `include_model!("m.nnc", elem = f64)`.
#[proc_macro]
pub fn include_model(input: TokenStream) -> TokenStream {
    include::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Parses the compiler's Rust text. Going through text, rather than building tokens directly,
/// is what guarantees that the macros and the CLI generate exactly the same code.
fn parse_generated(rust: &str) -> syn::Result<proc_macro2::TokenStream> {
    rust.parse().map_err(|e| {
        syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("internal compiler error: the generated code does not tokenize: {e}"),
        )
    })
}
