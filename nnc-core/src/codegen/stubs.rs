//! Stand-in items for models that failed to compile.
//!
//! When a model has errors, the proc macro reports them and also emits these stubs: a struct
//! and workspace with the model's name and the same method signatures as the real ones. Code
//! that uses the model then type-checks, so the user sees the model's own errors and not a
//! cascade of "cannot find type `Xor`" after them (the approach of thiserror and cxx). The
//! struct also implements `Model`, so generic code such as `nnc::train::fit` accepts it. The
//! bodies never run: a crate with a `compile_error!` does not build.

use super::ops::ident;
use crate::syntax::ast::{File, Item, TargetKind};
use crate::Options;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::HashSet;

/// Stubs for every model of `source` whose header parses; empty when the text does not parse.
pub fn stubs(source: &str, options: &Options) -> TokenStream {
    let Ok(file) = crate::syntax::parse(source) else {
        return TokenStream::new();
    };
    let rt: TokenStream = options
        .runtime_path
        .parse()
        .unwrap_or_else(|_| quote!(::nnc::runtime));
    stub_items(&file, &rt, ident(options.elem.as_str()))
}

fn stub_items(file: &File, rt: &TokenStream, elem: proc_macro2::Ident) -> TokenStream {
    let mut seen = HashSet::new();
    let mut out = TokenStream::new();
    for m in &file.models {
        let name = &m.name.name;
        // A name that lowering refuses gets no stand-in: it could clash with another's module
        // or with a standard item, adding errors instead of removing them.
        let usable = crate::reserved::model_name_problem(name).is_none();
        if !usable || !seen.insert(name.clone()) {
            continue;
        }
        let targets: Vec<TokenStream> = m
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Target(t) => Some(match t.kind {
                    TargetKind::Classes { .. } => quote!(&[u32]),
                    TargetKind::Float(_) => quote!(&[#elem]),
                }),
                _ => None,
            })
            .collect();
        let input_args: Vec<TokenStream> = m
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Input(d) => Some(d.ids.is_some()),
                _ => None,
            })
            .enumerate()
            .map(|(i, ids)| {
                let a = format_ident!("_input{i}");
                if ids {
                    quote!(#a: &[u32])
                } else {
                    quote!(#a: &[#elem])
                }
            })
            .collect();
        let target_args: Vec<TokenStream> = targets
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let a = format_ident!("_target{i}");
                quote!(#a: #ty)
            })
            .collect();
        let model = ident(name);
        let workspace = ident(&crate::reserved::workspace(name));
        let module = ident(&crate::reserved::module(name));
        out.extend(quote! {
            #[allow(dead_code, unused_variables, clippy::all)]
            pub mod #module {
                use #rt as rt;
                pub struct #model;
                pub struct #workspace;
                impl #workspace {
                    pub fn threads(&self) -> usize { 1 }
                }
                impl #model {
                    pub fn new(seed: u64) -> Self { #model }
                    pub fn workspace(&self, capacity: usize) -> #workspace { #workspace }
                    pub fn workspace_with_threads(&self, capacity: usize, threads: usize) -> #workspace { #workspace }
                    pub fn try_workspace_with_threads(&self, capacity: usize, threads: usize) -> Result<#workspace, rt::Error> { Ok(#workspace) }
                    pub fn predict<'w>(&self, ws: &'w mut #workspace, #(#input_args),*) -> Result<&'w [#elem], rt::Error> { Ok(&[]) }
                    pub fn forward_backward(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> { Ok(0.0) }
                    pub fn train_step(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> { Ok(0.0) }
                    pub fn evaluate(&self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<rt::Metrics<#elem>, rt::Error> { Ok(rt::Metrics::default()) }
                    pub fn forward_train<'w>(&mut self, ws: &'w mut #workspace, #(#input_args),*) -> Result<&'w [#elem], rt::Error> { Ok(&[]) }
                    pub fn update(&mut self) {}
                    pub fn update_with(&mut self, ws: &#workspace) {}
                    pub fn params(&self) -> &[#elem] { &[] }
                    pub fn params_mut(&mut self) -> &mut [#elem] { &mut [] }
                    pub fn grads(&self) -> &[#elem] { &[] }
                    pub fn param(&self, name: &str) -> Option<&[#elem]> { None }
                    pub fn learning_rate(&self) -> #elem { 0.0 }
                    pub fn set_learning_rate(&mut self, lr: #elem) -> Result<(), rt::Error> { Ok(()) }
                    pub fn state(&self) -> &[#elem] { &[] }
                    pub fn state_mut(&mut self) -> &mut [#elem] { &mut [] }
                    pub fn reset_state(&mut self) {}
                }
                // So that generic code (`nnc::train::fit`, `evaluate`) accepts the stand-in
                // too and adds no "trait bound not satisfied" errors to the model's own.
                impl rt::Model for #model {
                    type Elem = #elem;
                    type Workspace = #workspace;
                    const NAME: &'static str = #name;
                    const INPUTS: &'static [rt::TensorInfo] = &[];
                    const TARGETS: &'static [rt::TensorInfo] = &[];
                    const OUTPUTS: &'static [rt::TensorInfo] = &[];
                    const PARAMS: &'static [rt::ParamInfo] = &[];
                    const HAS_LOSS: bool = true;
                    fn new(seed: u64) -> Self { #model }
                    fn try_workspace_with_threads(&self, capacity: usize, threads: usize) -> Result<#workspace, rt::Error> { Ok(#workspace) }
                    fn params(&self) -> &[#elem] { &[] }
                    fn params_mut(&mut self) -> &mut [#elem] { &mut [] }
                    fn grads(&self) -> &[#elem] { &[] }
                    fn forward_backward_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], targets: &[rt::Values<'_, #elem>]) -> Result<#elem, rt::Error> { Ok(0.0) }
                    fn evaluate_dyn(&self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], targets: &[rt::Values<'_, #elem>]) -> Result<rt::Metrics<#elem>, rt::Error> { Ok(rt::Metrics::default()) }
                    fn metrics(ws: &#workspace) -> rt::Metrics<#elem> { rt::Metrics::default() }
                    fn update(&mut self) {}
                    fn update_with(&mut self, ws: &#workspace) {}
                    fn predict_dyn<'w>(&self, ws: &'w mut #workspace, inputs: &[rt::Values<'_, #elem>]) -> Result<&'w [#elem], rt::Error> { Ok(&[]) }
                    fn forward_train_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>]) -> Result<(), rt::Error> { Ok(()) }
                    fn backward_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], d_outputs: &[&[#elem]]) -> Result<(), rt::Error> { Ok(()) }
                    fn output(ws: &#workspace, index: usize) -> Option<&[#elem]> { None }
                    fn input_grad(ws: &#workspace, index: usize) -> Option<&[#elem]> { None }
                    fn optimizer(&self) -> &dyn rt::Optimizer<#elem> { unreachable!("a stand-in for a model with errors") }
                    fn optimizer_mut(&mut self) -> &mut dyn rt::Optimizer<#elem> { unreachable!("a stand-in for a model with errors") }
                }
            }
            #[allow(unused_imports)]
            pub use #module::{#model, #workspace};
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn stubs_carry_the_model_signature() {
        let src =
            "model Bad { input x: [2]; input z: [3]; target y: class(3); let p = x -> relux; }";
        let text = super::stubs(src, &crate::Options::default()).to_string();
        assert!(text.contains("pub struct Bad"), "{text}");
        assert!(text.contains("_target0 : & [u32]"), "{text}");
        assert!(text.contains("_input1"), "{text}");
    }

    #[test]
    fn unparsable_text_gives_no_stubs() {
        assert!(super::stubs("model {", &crate::Options::default()).is_empty());
    }
}
