//! The static description of a model in generated code: argument checks at the top of each
//! method, the `rt::Model` constants (inputs, targets, outputs, parameters) and the module doc.

use super::names::Names;
use super::ops::{ident, usize_lit};
use crate::ir::{Binding, DType, MemoryPlan, Op, Program, ValueId};
use proc_macro2::TokenStream;
use quote::quote;

/// The batch size from the first input, and the same batch required of the others.
pub fn batch_checks(p: &Program, names: &Names) -> TokenStream {
    batch_checks_of(p, names, &p.inputs)
}

/// `batch_checks` for the inputs bound to `inputs` (the step's copies, holding one position).
pub fn batch_checks_of(p: &Program, names: &Names, inputs: &[Binding]) -> TokenStream {
    let Some((first, rest)) = inputs.split_first() else {
        return TokenStream::new();
    };
    let (n, name) = (ident(names.local(first.value)), &first.name);
    let per = usize_lit(p.graph.ty(first.value).shape.elems_per_sample());
    let mut out =
        quote!(let batch = rt::check::batch(#name, #n.len(), #per, ws.arena.capacity())?;);
    let rest: Vec<_> = rest.iter().map(|b| (names.local(b.value), b)).collect();
    out.extend(same_batch_checks(p, &rest));
    out.extend(ids_checks(p, names, inputs));
    out
}

/// Every id of an integer input indexes a row (of a table, or of a sequence for `select`), so
/// each is checked before any kernel runs, in every entry point that reads the ids.
pub fn ids_checks(p: &Program, names: &Names, inputs: &[Binding]) -> TokenStream {
    let mut out = TokenStream::new();
    for b in inputs {
        let ty = p.graph.ty(b.value);
        if let DType::Ids(range) = ty.dtype {
            let (n, name) = (ident(names.local(b.value)), &b.name);
            let (range, per) = (usize_lit(range), usize_lit(ty.shape.elems_per_sample()));
            out.extend(quote!(rt::check::ids(#name, #n, #range, #per)?;));
        }
    }
    out
}

/// Each of `bindings` (inputs, or output gradients), each with its Rust name, must hold exactly
/// `batch` samples.
pub fn same_batch_checks(p: &Program, bindings: &[(&str, &Binding)]) -> TokenStream {
    bindings
        .iter()
        .map(|&(n, b)| {
            let (n, name) = (ident(n), &b.name);
            let per = usize_lit(p.graph.ty(b.value).shape.elems_per_sample());
            quote!(rt::check::same_batch(#name, #n.len(), #per, batch)?;)
        })
        .collect()
}

/// Method parameters for inputs, targets or output gradients, each with its Rust name: one
/// slice each, of floats or of `u32` ids.
pub fn slice_args(
    p: &Program,
    bindings: &[(&str, &Binding)],
    elem: &proc_macro2::Ident,
) -> Vec<TokenStream> {
    bindings
        .iter()
        .map(|&(n, b)| {
            let n = ident(n);
            match p.graph.ty(b.value).dtype {
                DType::Ids(_) => quote!(#n: &[u32]),
                DType::Float => quote!(#n: &[#elem]),
            }
        })
        .collect()
}

/// Length and range checks of the targets, for a batch already known.
pub fn target_checks(p: &Program, names: &Names) -> TokenStream {
    p.targets
        .iter()
        .map(|b| {
            let (n, name) = (ident(names.local(b.value)), &b.name);
            let ty = p.graph.ty(b.value);
            match ty.dtype {
                DType::Ids(classes) => {
                    let classes = usize_lit(classes);
                    let per = usize_lit(ty.shape.elems_per_sample());
                    let ignore = match ignored_label(p, b.value) {
                        Some(i) => {
                            let i = usize_lit(i as usize);
                            quote!(Some(#i))
                        }
                        None => quote!(None),
                    };
                    quote!(rt::check::labels(#name, #n, #classes, #ignore, #per, batch)?;)
                }
                DType::Float => {
                    let per = usize_lit(ty.shape.elems_per_sample());
                    quote!(rt::check::target(#name, #n.len(), #per, batch)?;)
                }
            }
        })
        .collect()
}

/// The label that every loss reading `target` ignores, if they agree on one: only then may a
/// label outside the classes pass the check, since a loss that does not ignore it would index
/// past its row.
fn ignored_label(p: &Program, target: ValueId) -> Option<u32> {
    let mut ignores = p.graph.ids().filter_map(|id| {
        let node = p.graph.node(id);
        match node.op {
            Op::Loss(spec) if node.args.get(1) == Some(&target) => Some(spec.ignore),
            _ => None,
        }
    });
    let first = ignores.next()?;
    ignores.all(|i| i == first).then_some(first).flatten()
}

fn shape_lit(dims: &[usize]) -> TokenStream {
    let dims = dims.iter().map(|d| usize_lit(*d));
    quote!(&[#(#dims),*])
}

/// The `INPUTS`, `TARGETS`, `OUTPUTS` and `PARAMS` constants of the `rt::Model` impl.
pub fn model_info(p: &Program, offsets: &[usize]) -> [TokenStream; 4] {
    let tensor = |b: &Binding| {
        let ty = p.graph.ty(b.value);
        let (name, shape) = (&b.name, shape_lit(&ty.shape.sample_dims()));
        let kind = match ty.dtype {
            DType::Float => quote!(rt::ElemKind::Float),
            DType::Ids(range) => {
                let range = usize_lit(range);
                quote!(rt::ElemKind::Ids { range: #range })
            }
        };
        quote!(rt::TensorInfo { name: #name, shape: #shape, kind: #kind })
    };
    let inputs = p.inputs.iter().map(tensor);
    let outputs = p.outputs.iter().map(tensor);
    let targets = p.targets.iter().map(tensor);
    let params = p.params.iter().zip(offsets).map(|(q, &o)| {
        let (name, shape, offset, len) = (&q.name, shape_lit(&q.shape), usize_lit(o), usize_lit(q.len()));
        let trainable = !q.frozen;
        quote!(rt::ParamInfo { name: #name, shape: #shape, offset: #offset, len: #len, trainable: #trainable })
    });
    [
        quote!(&[#(#inputs),*]),
        quote!(&[#(#targets),*]),
        quote!(&[#(#outputs),*]),
        quote!(&[#(#params),*]),
    ]
}

pub fn module_doc(p: &Program, plan: &MemoryPlan) -> String {
    let dims = |v: ValueId| format!("{:?}", p.graph.ty(v).shape.sample_dims());
    let list = |bs: &[crate::ir::Binding]| {
        bs.iter()
            .map(|b| format!("`{}` {}", b.name, dims(b.value)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let frozen = p.param_count() - p.trainable_count();
    let frozen = if frozen > 0 {
        format!(" ({frozen} frozen)")
    } else {
        String::new()
    };
    format!(
        " Model `{}`, generated by nnc: do not edit, change the model and recompile.\n\n Inputs {}; output{} {}; {} parameters{frozen}; arena of {} × capacity + {} elements.",
        p.name,
        list(&p.inputs),
        if p.outputs.len() == 1 { "" } else { "s" },
        list(&p.outputs),
        p.param_count(),
        plan.per_sample,
        plan.fixed
    )
}
