//! The generated code for a model's state (batch norm's running statistics): the ranges in the
//! model's state buffer, the `commit` function that runs the `Commit` phase after a training
//! forward pass, the batch check that training needs, and `reset_state` with the accessors.
//! Models without state get none of this, and their generated code does not change.
//!
//! The state lives in the model, beside the parameters, rather than in the workspace: it is
//! learned from the training data like the parameters, it must travel with them in
//! checkpoints, and a model's predictions must not depend on which workspace trained it.

use super::names::Names;
use super::ops::{float_lit, ident, usize_lit, Ctx};
use crate::ir::{Op, Phase, Program, Schedule};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// `STATE_COUNT` and one range constant per state tensor.
pub fn consts(p: &Program, names: &Names) -> TokenStream {
    if p.states.is_empty() {
        return quote!();
    }
    let count = usize_lit(p.states.iter().map(crate::ir::State::len).sum());
    let ranges = p
        .states
        .iter()
        .zip(p.state_offsets())
        .zip(&names.state)
        .map(|((s, o), c)| {
            let c = ident(c);
            let (start, end) = (usize_lit(o), usize_lit(o + s.len()));
            let doc = format!(
                " `{}` {:?}, starting at {}: its range in the state buffer.",
                s.name, s.shape, s.init
            );
            quote!(#[doc = #doc] const #c: ::core::ops::Range<usize> = #start..#end;)
        });
    quote! {
        /// Number of state values (running statistics) the model keeps across calls.
        pub const STATE_COUNT: usize = #count;
        #(#ranges)*
    }
}

/// The `state` parameter of `forward`, the argument passing it, and the model's field.
pub fn forward_param(p: &Program, elem: &Ident) -> Option<TokenStream> {
    (!p.states.is_empty()).then(|| quote!(state: &[#elem],))
}

pub fn forward_arg(p: &Program) -> Option<TokenStream> {
    (!p.states.is_empty()).then(|| quote!(&self.state,))
}

pub fn field(p: &Program, elem: &Ident) -> Option<TokenStream> {
    (!p.states.is_empty()).then(|| quote!(state: Vec<#elem>,))
}

/// The statement an entry point of `schedule` runs after `forward` when the schedule writes
/// state: the state writes, reading the forward pass's values from `arena`.
pub fn commit_call(p: &Program, schedule: &Schedule, arena: TokenStream) -> Option<TokenStream> {
    (!p.states.is_empty() && schedule.runs(Phase::Commit))
        .then(|| quote!(commit(&ws.exec, &mut self.state, #arena, batch);))
}

/// `fn commit`: the `Commit` phase, which writes the state from the forward pass's values.
pub fn commit_fn(p: &Program, ctx: &Ctx<'_>, elem: &Ident) -> TokenStream {
    // Every state is written in the Commit phase (lowering adds the writes with the state).
    if p.states.is_empty() {
        return quote!();
    }
    let body = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase == Phase::Commit)
        .map(|id| ctx.node(id));
    quote! {
        /// The state writes of a training step, after its forward pass: each batch norm layer's running statistics move towards the batch's.
        fn commit(exec: &rt::Exec, state: &mut [#elem], arena: &rt::Arena<#elem>, batch: usize) {
            #(#body)*
        }
    }
}

/// The check at the top of a training entry point that every batch norm layer sees at least
/// two values per channel (an unbiased variance needs two), reported as an error. Only layers
/// over features (one value per channel per sample) can see fewer, and the first of them is
/// the one named: one check covers them all.
pub fn training_checks(p: &Program) -> Option<TokenStream> {
    let id = p.graph.ids().find(
        |id| matches!(p.graph.node(*id).op, Op::RunningVar { per_channel, .. } if per_channel < 2),
    )?;
    let state = &p.states[p.state_of(id)?].name;
    let layer = state
        .rsplit_once('.')
        .map_or(state.as_str(), |(layer, _)| layer);
    Some(quote! {
        if batch < 2 {
            return Err(rt::Error::BatchTooSmall { layer: #layer, found: batch, min_batch: 2 });
        }
    })
}

/// The statements that set every state tensor to its initial value.
fn reset_body(p: &Program, names: &Names) -> TokenStream {
    p.states
        .iter()
        .zip(&names.state)
        .map(|(s, c)| {
            let (c, init) = (ident(c), float_lit(s.init));
            quote!(self.state[#c].fill(#init);)
        })
        .collect()
}

/// The model's inherent state methods: `reset_state`, `state` and `state_mut`.
pub fn methods(p: &Program, names: &Names, elem: &Ident) -> TokenStream {
    if p.states.is_empty() {
        return quote!();
    }
    let reset = reset_body(p, names);
    let touch = super::fold::touch(p);
    quote! {
        /// Returns every state tensor (running statistics) to its initial value, as a new model has it.
        pub fn reset_state(&mut self) {
            #touch
            #reset
        }

        /// The state kept across calls, flat (see `STATE` of `rt::Model` for the tensors in it).
        pub fn state(&self) -> &[#elem] {
            &self.state
        }

        /// The state, writable (for loading a checkpoint).
        pub fn state_mut(&mut self) -> &mut [#elem] {
            #touch
            &mut self.state
        }
    }
}

/// The `rt::Model` items for the state; models without state keep the trait's defaults.
pub fn trait_items(p: &Program, model: &Ident, elem: &Ident) -> TokenStream {
    if p.states.is_empty() {
        return quote!();
    }
    let infos = p.states.iter().zip(p.state_offsets()).map(|(s, offset)| {
        let (name, len, offset) = (&s.name, usize_lit(s.len()), usize_lit(offset));
        let shape = s.shape.iter().map(|d| usize_lit(*d));
        quote!(rt::ParamInfo { name: #name, shape: &[#(#shape),*], offset: #offset, len: #len, trainable: false })
    });
    let touch = super::fold::touch(p);
    quote! {
        const STATE: &'static [rt::ParamInfo] = &[#(#infos),*];
        fn state(&self) -> &[#elem] {
            &self.state
        }
        fn state_mut(&mut self) -> &mut [#elem] {
            #touch
            &mut self.state
        }
        fn reset_state(&mut self) {
            #model::reset_state(self)
        }
    }
}
