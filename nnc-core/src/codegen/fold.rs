//! The generated code for a model with batch norm folded into convolutions for inference
//! (`passes/fold_batch_norm.rs`): the ranges of the folded weights, the `fold` function (the
//! `Fold` phase) and the `infer` function (the `Infer` phase) that `predict` runs, the
//! workspace's buffer for the folded weights, and the model's revision stamp.
//!
//! The folded weights live in the workspace, beside the arena, and `predict` recomputes them
//! only when the model's stamp differs from the one they were computed from: every method that
//! can change the parameters or the state draws a new stamp, and stamps are unique across
//! models, so a workspace moved to another model recomputes them too. Models without anything
//! to fold get none of this, and their generated code does not change.

use super::names::Names;
use super::ops::{ident, usize_lit, Ctx};
use crate::ir::{Phase, Program, Storage};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// Whether the model has an inference pass with folded weights.
pub fn folds(p: &Program) -> bool {
    p.inference.is_some()
}

/// `FOLDED_COUNT` and one range constant per folded weight or bias.
pub fn consts(p: &Program, names: &Names) -> TokenStream {
    let Some(plan) = p.plan.as_ref().filter(|_| folds(p)) else {
        return quote!();
    };
    let count = usize_lit(plan.folded);
    let ranges = p.graph.ids().filter_map(|id| {
        let Storage::Folded { offset, len } = plan.storage[id.index()] else {
            return None;
        };
        let c = ident(names.slot(id));
        let (start, end) = (usize_lit(offset), usize_lit(offset + len));
        let doc = format!(
            " `{}` {}: its range in the workspace's folded weights.",
            p.graph.node(id).name,
            p.graph.ty(id).shape
        );
        Some(quote!(#[doc = #doc] const #c: ::core::ops::Range<usize> = #start..#end;))
    });
    quote! {
        /// Elements of the workspace's buffer of convolution weights with batch norm folded in.
        pub const FOLDED_COUNT: usize = #count;
        #(#ranges)*
    }
}

/// `fn fold` and `fn infer`.
pub fn functions(p: &Program, ctx: &Ctx<'_>, elem: &Ident, inputs: &[TokenStream]) -> TokenStream {
    if !folds(p) {
        return quote!();
    }
    let body = |phase: Phase| -> Vec<TokenStream> {
        p.graph
            .ids()
            .filter(|id| p.graph.node(*id).phase == phase)
            .map(|id| ctx.node(id))
            .collect()
    };
    let (fold, infer) = (body(Phase::Fold), body(Phase::Infer));
    // A batch norm that did not fold still reads its mode, which is always inference here.
    let mode = p
        .graph
        .nodes
        .iter()
        .any(|n| n.phase == Phase::Infer && n.op.mode_dependent())
        .then(|| quote!(let mode = rt::Mode::Infer;));
    quote! {
        /// Batch norm in inference folded into the convolution before it: the weights and biases `infer` reads, from the parameters and the running statistics.
        fn fold(exec: &rt::Exec, params: &[#elem], state: &[#elem], folded: &mut [#elem]) {
            #(#fold)*
        }

        /// The forward pass of `predict`: the model in inference, with each batch norm that follows a convolution folded into it (the weights from `fold`) and dropout left out.
        fn infer(exec: &rt::Exec, params: &[#elem], state: &[#elem], folded: &[#elem], arena: &mut rt::Arena<#elem>, batch: usize, #(#inputs),*) {
            #mode
            #(#infer)*
        }
    }
}

/// The statement that runs the inference pass in `predict`, refreshing the folded weights
/// first if the model changed since the workspace computed them.
pub fn predict_call(inputs: &[Ident]) -> TokenStream {
    quote! {
        let revision = self.revision.get();
        if ws.folded_for != revision {
            fold(&ws.exec, &self.params, &self.state, &mut ws.folded);
            ws.folded_for = revision;
        }
        ws.folded_outputs = true;
        infer(&ws.exec, &self.params, &self.state, &ws.folded, &mut ws.arena, batch, #(#inputs),*);
    }
}

/// The statement that marks the parameters or the state as changed, in every method that can
/// change them; nothing for a model without folded weights.
pub fn touch(p: &Program) -> TokenStream {
    if folds(p) {
        quote!(self.revision.bump();)
    } else {
        quote!()
    }
}

/// The statement that records, in an entry point other than `predict`, that the outputs in
/// the workspace are the forward pass's.
pub fn forward_outputs(p: &Program) -> TokenStream {
    if folds(p) {
        quote!(ws.folded_outputs = false;)
    } else {
        quote!()
    }
}

/// The model's field and its initialiser.
pub fn model_field(p: &Program) -> (TokenStream, TokenStream) {
    if !folds(p) {
        return (quote!(), quote!());
    }
    (
        quote! {
            /// Changes whenever the parameters or the state may have: the workspace's folded weights are recomputed when it differs from theirs.
            revision: rt::Revision,
        },
        quote!(revision: rt::Revision::new(),),
    )
}

/// The workspace's fields and their initialisers.
pub fn workspace_fields(p: &Program, elem: &Ident) -> (TokenStream, TokenStream) {
    if !folds(p) {
        return (quote!(), quote!());
    }
    (
        quote! {
            /// Convolution weights and biases with batch norm folded in, for `predict`.
            folded: rt::Aligned<#elem>,
            /// The model revision `folded` was computed from; 0 before the first `predict`.
            folded_for: u64,
            /// Whether the last call was `predict`, whose outputs the inference pass computed.
            folded_outputs: bool,
        },
        quote! {
            folded: rt::Aligned::try_zeros(FOLDED_COUNT, "the folded convolution weights")?,
            folded_for: 0,
            folded_outputs: false,
        },
    )
}

/// The slot of output `index` in the workspace: the inference pass's after `predict`.
pub fn output_slot(p: &Program, names: &Names, index: usize) -> TokenStream {
    let slot = ident(names.slot(p.outputs[index].value));
    match &p.inference {
        Some(inference) => {
            let infer = ident(names.slot(inference.outputs[index]));
            quote!(if ws.folded_outputs { #infer } else { #slot })
        }
        None => quote!(#slot),
    }
}
