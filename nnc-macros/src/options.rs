//! The `key = value` settings both macros accept: `elem = f64`, `runtime = ::some::path`.

use nnc_core::{Elem, Options};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Token};

/// One parsed setting, already checked.
pub enum Setting {
    Elem(Elem),
    Runtime(String),
}

/// A setting with the name it was written under, so that a repeated one can be pointed at.
pub struct Spanned {
    key: Ident,
    setting: Setting,
}

impl Parse for Spanned {
    fn parse(input: ParseStream<'_>) -> syn::Result<Spanned> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let setting = match key.to_string().as_str() {
            "elem" => {
                let value: Ident = input.parse()?;
                let elem = value
                    .to_string()
                    .parse::<Elem>()
                    .map_err(|message| syn::Error::new(value.span(), message))?;
                Setting::Elem(elem)
            }
            "runtime" => {
                // Module-style: generic arguments make no sense in a crate path.
                let path = input.call(syn::Path::parse_mod_style)?;
                Setting::Runtime(path_text(&path))
            }
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown setting `{other}`, expected `elem` or `runtime`"),
                ))
            }
        };
        Ok(Spanned { key, setting })
    }
}

/// `::a::b` without the spaces that `to_token_stream().to_string()` would put in.
fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

/// Applies settings in order to `Options::default()`; setting the same key twice is an error,
/// since the macro cannot tell which one was meant.
pub fn apply(settings: impl IntoIterator<Item = Spanned>) -> syn::Result<Options> {
    let mut options = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for Spanned { key, setting } in settings {
        let name = key.to_string();
        if seen.contains(&name) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` is set more than once"),
            ));
        }
        seen.push(name);
        match setting {
            Setting::Elem(elem) => options.elem = elem,
            Setting::Runtime(path) => options.runtime_path = path,
        }
    }
    Ok(options)
}
