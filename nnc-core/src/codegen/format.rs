//! Formats generated tokens as Rust text with prettyplease, then turns comment markers into
//! `//` comments (token streams cannot carry comments, and readable output needs them).

use proc_macro2::TokenStream;

pub fn format(tokens: TokenStream, comments: &[String]) -> String {
    let file: syn::File = match syn::parse2(tokens.clone()) {
        Ok(f) => f,
        // The generator builds its tokens from quote! templates, so a parse failure is a
        // generator bug; show the raw tokens so it can be diagnosed.
        Err(e) => panic!("nnc generated invalid Rust ({e}):\n{tokens}"),
    };
    let text = prettyplease::unparse(&file);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = trimmed
            .strip_prefix("__nnc_comment!(")
            .and_then(|r| r.strip_suffix(");"));
        match marker
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| comments.get(i))
        {
            Some(text) => {
                out.push_str(&line[..line.len() - trimmed.len()]);
                out.push_str("// ");
                out.push_str(text);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
