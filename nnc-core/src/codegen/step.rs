//! The generated code for a model with a step entry point (`passes/step.rs`): the `step_pass`
//! function (the `Step` phase), the `step` method, and the workspace's buffer of carried states
//! with `reset_sequences`.
//!
//! The carried states live in the workspace beside the arena, one region per recurrent layer
//! of `CARRY_PER_SAMPLE`-aligned rows per sample of capacity, zero when the workspace is made
//! and after `reset_sequences`. The workspace remembers how many sequences it carries, so that a
//! `step` over another number is an error rather than a mix of states. Models without a step
//! get none of this, and their generated code does not change.

use super::info;
use super::names::Names;
use super::ops::{ident, usize_lit, Ctx};
use crate::ir::{Binding, DType, Phase, Program};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// Whether the model has a step entry point.
pub fn steps(p: &Program) -> bool {
    p.step.is_ok()
}

/// `CARRY_PER_SAMPLE`.
pub fn consts(p: &Program) -> TokenStream {
    let Some(plan) = p.plan.as_ref().filter(|_| steps(p)) else {
        return quote!();
    };
    let count = usize_lit(plan.carry);
    quote! {
        /// Elements per sample of capacity of the state the workspace carries from one `step` to the next.
        pub const CARRY_PER_SAMPLE: usize = #count;
    }
}

/// The step's copy of each input, bound under the input's own name: the method's parameters.
fn bindings(p: &Program) -> Vec<Binding> {
    let Ok(step) = &p.step else {
        return Vec::new();
    };
    p.inputs
        .iter()
        .zip(&step.inputs)
        .map(|(b, v)| Binding {
            value: *v,
            ..b.clone()
        })
        .collect()
}

/// `fn step_pass`.
pub fn function(p: &Program, ctx: &Ctx<'_>, names: &Names, elem: &Ident) -> TokenStream {
    if !steps(p) {
        return quote!();
    }
    let body = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase == Phase::Step)
        .map(|id| ctx.node(id));
    let inputs = info::slice_args(p, &names.bound(&bindings(p)), elem);
    let state = (!p.states.is_empty()).then(|| quote!(state: &[#elem],));
    // Only a step that reads its position (attention's cache, a position table) takes it.
    let position = reads_position(p).then(|| quote!(position: usize,));
    let doc = match (p.is_recurrent(), p.attends()) {
        (true, false) => " One position of each sequence: the forward pass in inference with every recurrent layer taking one step from its state in `carry`, which it then overwrites with its state after the step.",
        (false, _) => " One position of each sequence: the forward pass in inference with every attention layer writing the current position's key and value into its cache in `carry` and attending over the positions so far.",
        (true, true) => " One position of each sequence: the forward pass in inference with every recurrent layer taking one step from its state in `carry`, which it then overwrites with its state after the step, and every attention layer writing the current position's key and value into its cache in `carry` and attending over the positions so far.",
    };
    quote! {
        #[doc = #doc]
        fn step_pass(exec: &rt::Exec, params: &[#elem], #state carry: &mut [#elem], arena: &mut rt::Arena<#elem>, batch: usize, #position #(#inputs),*) {
            let capacity = arena.capacity();
            #(#body)*
        }
    }
}

/// Whether the step reads the position of its sequences.
fn reads_position(p: &Program) -> bool {
    matches!(&p.step, Ok(step) if step.positions.is_some())
}

/// The `step` method.
pub fn method(p: &Program, names: &Names, elem: &Ident, workspace: &Ident) -> TokenStream {
    let Ok(step) = &p.step else {
        return quote!();
    };
    let bound = bindings(p);
    let args = info::slice_args(p, &names.bound(&bound), elem);
    let input_names: Vec<Ident> = bound.iter().map(|b| ident(names.local(b.value))).collect();
    let checks = info::batch_checks_of(p, names, &bound);
    let first = &bound[0].name;
    let state = (!p.states.is_empty()).then(|| quote!(&self.state,));
    let slots: Vec<Ident> = step.outputs.iter().map(|v| ident(names.slot(*v))).collect();
    let (ty, read) = if let [slot] = slots.as_slice() {
        (quote!(&'w [#elem]), quote!(Ok(ws.arena.get(batch, #slot))))
    } else {
        let locals: Vec<Ident> = p
            .outputs
            .iter()
            .map(|b| ident(names.local(b.value)))
            .collect();
        let tys = slots.iter().map(|_| quote!(&'w [#elem]));
        (
            quote!((#(#tys),*)),
            quote! {
                let [#(#locals),*] = ws.arena.read(batch, [#(#slots),*]);
                Ok((#(#locals),*))
            },
        )
    };
    let one = |b: &Binding| {
        let kind = match p.graph.ty(b.value).dtype {
            DType::Ids(_) => "id",
            DType::Float => "position's values",
        };
        format!("`{}` (one {kind} per sequence)", b.name)
    };
    let doc = format!(
        " Generation: one position of each sequence of the batch, {}, continuing from the state the workspace carries (none after `workspace` and `reset_sequences`). Returns the outputs at that position, as `predict` gives them at the same position of the whole sequence, with dropout off. Allocates nothing.",
        bound.iter().map(one).collect::<Vec<_>>().join(", ")
    );
    let (check_position, position) = match step.positions {
        Some(n) => {
            let n = usize_lit(n);
            (
                quote!(rt::check::step_position(ws.position, #n)?;),
                quote!(ws.position,),
            )
        }
        None => (quote!(), quote!()),
    };
    let doc = match step.positions {
        Some(n) => format!("{doc} A sequence holds at most {n} positions, the length the model was compiled for: the step after the last is `Error::ContextFull` until `reset_sequences`."),
        None => doc,
    };
    quote! {
        #[doc = #doc]
        pub fn step<'w>(&self, ws: &'w mut #workspace, #(#args),*) -> Result<#ty, rt::Error> {
            #checks
            rt::check::step_batch(#first, batch, ws.carried)?;
            #check_position
            ws.ready = None;
            ws.batch = batch;
            ws.carried = batch;
            ws.step_outputs = true;
            step_pass(&ws.exec, &self.params, #state &mut ws.carry, &mut ws.arena, batch, #position #(#input_names),*);
            ws.position += 1;
            #read
        }
    }
}

/// The workspace's fields, their initialisers, and its `reset_sequences` method.
pub fn workspace_parts(p: &Program, elem: &Ident) -> [TokenStream; 3] {
    if !steps(p) {
        return [quote!(), quote!(), quote!()];
    }
    [
        quote! {
            /// The state each recurrent layer carries from one `step` to the next.
            carry: rt::Aligned<#elem>,
            /// The number of sequences whose state `carry` holds; 0 for none.
            carried: usize,
            /// Whether the last call was `step`, whose outputs the step pass computed.
            step_outputs: bool,
            /// The positions the sequences have taken since they started.
            position: usize,
        },
        quote! {
            carry: rt::Aligned::try_zeros(CARRY_PER_SAMPLE * capacity, "the carried state")?,
            carried: 0,
            step_outputs: false,
            position: 0,
        },
        quote! {
            /// Forgets the state `step` carries: the next `step` starts new sequences, of any number up to the capacity.
            pub fn reset_sequences(&mut self) {
                self.carry.fill(0.0);
                self.carried = 0;
                self.position = 0;
            }

            /// The positions the sequences have taken since they started (the steps since `workspace` or `reset_sequences`).
            pub fn position(&self) -> usize {
                self.position
            }
        },
    ]
}

/// The statement that records, in an entry point other than `step`, that the outputs in the
/// workspace are not the step's.
pub fn other_outputs(p: &Program) -> TokenStream {
    if steps(p) {
        quote!(ws.step_outputs = false;)
    } else {
        quote!()
    }
}

/// The slot of output `index` in the workspace: the step's after `step`, else `otherwise`.
pub fn output_slot(
    p: &Program,
    names: &Names,
    index: usize,
    otherwise: TokenStream,
) -> TokenStream {
    match &p.step {
        Ok(step) => {
            let slot = ident(names.slot(step.outputs[index]));
            quote!(if ws.step_outputs { #slot } else { #otherwise })
        }
        Err(_) => otherwise,
    }
}
