//! Code generation: each planned program becomes a Rust module with a model struct, a
//! workspace struct and straight-line methods that call nnc-runtime kernels.
//!
//! Every feature dimension is a literal; only the batch size is a run-time value, checked
//! against the workspace capacity at the top of each method. Nothing is allocated outside
//! `new` and `workspace`. The text is formatted by prettyplease, and comments above each step
//! give the formula it computes in the model's own names.

mod format;
mod names;
mod ops;
mod stubs;

pub use names::is_reserved;
pub use stubs::stubs;

use crate::ir::{DType, Init, Optimizer, Phase, Program, Storage, ValueId};
use crate::Options;
use names::Names;
use ops::{float_lit, ident, usize_lit, Comments, Ctx};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Generates the Rust source of every program, formatted.
pub fn generate(programs: &[Program], options: &Options) -> String {
    let rt: TokenStream = options
        .runtime_path
        .parse()
        .unwrap_or_else(|_| quote!(::nnc::runtime));
    let comments = Comments::default();
    let items: Vec<TokenStream> = programs
        .iter()
        .map(|p| model(p, options, &rt, &comments))
        .collect();
    format::format(quote!(#(#items)*), &comments.into_inner())
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn model(p: &Program, options: &Options, rt: &TokenStream, comments: &Comments) -> TokenStream {
    let plan = p.plan.as_ref().expect("codegen runs after memory planning");
    let names = Names::new(p);
    let ctx = Ctx {
        p,
        names: &names,
        storage: &plan.storage,
        comments,
    };
    let elem = ident(options.elem.as_str());
    let model = ident(&p.name);
    let workspace = format_ident!("{}Workspace", p.name);
    let module = ident(&snake_case(&p.name));
    let offsets = p.param_offsets();
    let param_count = usize_lit(p.param_count());
    let (per_sample, fixed) = (usize_lit(plan.per_sample), usize_lit(plan.fixed));

    let param_consts = p
        .params
        .iter()
        .zip(&offsets)
        .zip(&names.param)
        .map(|((q, &o), c)| {
            let c = ident(c);
            let (start, end) = (usize_lit(o), usize_lit(o + q.len()));
            let doc = format!(
                " `{}` {:?}: its range in the parameter and gradient buffers.",
                q.name, q.shape
            );
            quote!(#[doc = #doc] const #c: Range<usize> = #start..#end;)
        });
    let slot_consts = p.graph.ids().filter_map(|id| {
        let c = ident(names.slot(id));
        let doc = format!(
            " Arena slot of `{}` {}.",
            p.graph.node(id).name,
            p.graph.ty(id).shape
        );
        match plan.storage[id.index()] {
            Storage::Batched { offset, per_sample } => {
                let (o, n) = (usize_lit(offset), usize_lit(per_sample));
                Some(quote!(#[doc = #doc] const #c: rt::Slot = rt::Slot::batched(#o, #n);))
            }
            Storage::Fixed { offset, len } => {
                let (o, n) = (usize_lit(offset), usize_lit(len));
                Some(quote!(#[doc = #doc] const #c: rt::Slot = rt::Slot::fixed(#o, #n);))
            }
            _ => None,
        }
    });

    let init = p.params.iter().zip(&names.param).map(|(q, c)| {
        let c = ident(c);
        let (fan_in, fan_out) = (usize_lit(q.fans.0), usize_lit(q.fans.1));
        match q.init {
            Init::HeNormal => quote!(rt::init::he_normal(&mut rng, #fan_in, &mut params[#c]);),
            Init::XavierUniform => {
                quote!(rt::init::xavier_uniform(&mut rng, #fan_in, #fan_out, &mut params[#c]);)
            }
            Init::Zeros => quote!(),
        }
    });
    let (optimizer_ty, optimizer_new) = match &p.optimizer {
        Optimizer::Sgd { lr, weight_decay } => {
            let (lr, wd) = (float_lit(*lr), float_lit(*weight_decay));
            (quote!(rt::Sgd<#elem>), quote!(rt::Sgd::new(#lr, #wd)))
        }
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let [lr, b1, b2, eps, wd] = [*lr, *beta1, *beta2, *eps, *weight_decay].map(float_lit);
            (
                quote!(rt::Adam<#elem>),
                quote!(rt::Adam::new(#param_count, #lr, #b1, #b2, #eps, #wd)),
            )
        }
    };

    // Method parameters: inputs, then targets, each a slice.
    let input_args: Vec<TokenStream> = p
        .inputs
        .iter()
        .map(|b| {
            let n = ident(&b.name);
            quote!(#n: &[#elem])
        })
        .collect();
    let target_args: Vec<TokenStream> = p
        .targets
        .iter()
        .map(|b| {
            let n = ident(&b.name);
            match p.graph.ty(b.value).dtype {
                DType::Label => quote!(#n: &[u32]),
                DType::Float => quote!(#n: &[#elem]),
            }
        })
        .collect();
    let input_names: Vec<_> = p.inputs.iter().map(|b| ident(&b.name)).collect();
    let target_names: Vec<_> = p.targets.iter().map(|b| ident(&b.name)).collect();
    let checks = batch_checks(p);
    let target_checks = p.targets.iter().map(|b| {
        let (n, name) = (ident(&b.name), &b.name);
        let ty = p.graph.ty(b.value);
        match ty.dtype {
            DType::Label => {
                let classes = usize_lit(p.classes(b.value));
                quote!(rt::check::labels(#name, #n, #classes, batch)?;)
            }
            DType::Float => {
                let per = usize_lit(ty.shape.elems_per_sample());
                quote!(rt::check::target(#name, #n.len(), #per, batch)?;)
            }
        }
    });

    // The verifier guarantees that forward nodes precede the rest, so the forward pass is one
    // function that both inference and training call.
    let forward_body = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase == Phase::Forward)
        .map(|id| ctx.node(id));
    let train_body = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase != Phase::Forward)
        .map(|id| ctx.node(id));
    let forward_doc = format!(
        " The forward pass: fills the arena up to the output `{}`.",
        p.output.name
    );
    let output_slot = ident(names.slot(p.output.value));
    let loss = ident(names.local(p.loss));

    let info = model_info(p, &offsets);
    let doc: Vec<TokenStream> = module_doc(p, plan)
        .lines()
        .map(|l| quote!(#[doc = #l]))
        .collect();
    let model_doc = format!(
        " The model `{}`: parameters, gradients and optimizer state.",
        p.name
    );
    let ws_doc = format!(
        " Scratch memory for `{}`: every activation and gradient of a batch, planned statically ({} elements per sample of capacity + {}).",
        p.name, plan.per_sample, plan.fixed
    );
    let forward_comment =
        comments.marker("The loss, then the backward pass in reverse layer order.".into());
    let target_dyn = p.targets.iter().enumerate().map(|(i, b)| {
        let name = &b.name;
        let i = usize_lit(i);
        match p.graph.ty(b.value).dtype {
            DType::Label => quote!(targets[#i].labels(#name)?),
            DType::Float => quote!(targets[#i].float(#name)?),
        }
    });
    let input_dyn = (0..p.inputs.len()).map(|i| {
        let i = usize_lit(i);
        quote!(inputs[#i])
    });
    let input_dyn2 = input_dyn.clone();
    let (n_inputs, n_targets) = (usize_lit(p.inputs.len()), usize_lit(p.targets.len()));
    let model_name = &p.name;
    let (inputs_info, targets_info, output_info, params_info) = info;

    quote! {
        #(#doc)*
        #[allow(dead_code)]
        pub mod #module {
            use #rt as rt;
            use std::ops::Range;

            /// Number of parameters (weights and biases) in the model.
            pub const PARAM_COUNT: usize = #param_count;
            /// Arena elements per sample of workspace capacity.
            pub const ARENA_PER_SAMPLE: usize = #per_sample;
            /// Arena elements that do not depend on the batch size.
            pub const ARENA_FIXED: usize = #fixed;
            #(#param_consts)*
            #(#slot_consts)*

            #[doc = #forward_doc]
            fn forward(params: &[#elem], arena: &mut rt::Arena<#elem>, batch: usize, #(#input_args),*) {
                #(#forward_body)*
            }

            #[doc = #model_doc]
            pub struct #model {
                params: Vec<#elem>,
                grads: Vec<#elem>,
                optimizer: #optimizer_ty,
            }

            #[doc = #ws_doc]
            pub struct #workspace {
                arena: rt::Arena<#elem>,
            }

            impl #workspace {
                /// The largest batch this workspace holds.
                pub fn capacity(&self) -> usize {
                    self.arena.capacity()
                }
            }

            impl #model {
                /// Creates the model with parameters initialised from `seed` (the same seed gives the same model).
                pub fn new(seed: u64) -> Self {
                    let mut rng = rt::Rng::new(seed);
                    let mut params = vec![0.0; PARAM_COUNT];
                    #(#init)*
                    #model { params, grads: vec![0.0; PARAM_COUNT], optimizer: #optimizer_new }
                }

                /// Allocates the scratch memory for batches of up to `capacity` samples.
                pub fn workspace(&self, capacity: usize) -> #workspace {
                    #workspace { arena: rt::Arena::new(ARENA_PER_SAMPLE, ARENA_FIXED, capacity) }
                }

                /// Inference: runs the forward pass on a batch and returns the output, `batch × per-sample` values.
                pub fn predict<'w>(&self, ws: &'w mut #workspace, #(#input_args),*) -> Result<&'w [#elem], rt::Error> {
                    #checks
                    forward(&self.params, &mut ws.arena, batch, #(#input_names),*);
                    Ok(ws.arena.get(batch, #output_slot))
                }

                /// Forward and backward pass: fills the gradients and returns the loss. Does not update the parameters.
                pub fn forward_backward(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> {
                    #checks
                    #(#target_checks)*
                    let params = &self.params[..];
                    let grads = &mut self.grads[..];
                    let arena = &mut ws.arena;
                    forward(params, arena, batch, #(#input_names),*);
                    #forward_comment
                    #(#train_body)*
                    Ok(#loss)
                }

                /// One training step: forward, backward and optimizer update. Returns the loss before the update.
                pub fn train_step(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> {
                    let loss = self.forward_backward(ws, #(#input_names,)* #(#target_names),*)?;
                    self.update();
                    Ok(loss)
                }

                /// Applies one optimizer update from the current gradients.
                pub fn update(&mut self) {
                    rt::Optimizer::step(&mut self.optimizer, &mut self.params, &self.grads);
                }

                /// All parameters, in the order of `PARAMS`.
                pub fn params(&self) -> &[#elem] {
                    &self.params
                }

                /// All parameters, mutably (for loading weights).
                pub fn params_mut(&mut self) -> &mut [#elem] {
                    &mut self.params
                }

                /// The gradients from the last `forward_backward`, laid out like `params`.
                pub fn grads(&self) -> &[#elem] {
                    &self.grads
                }

                /// A parameter by its stable name, such as `"hidden.weight"`.
                pub fn param(&self, name: &str) -> Option<&[#elem]> {
                    rt::Model::param(self, name)
                }

                pub fn learning_rate(&self) -> #elem {
                    rt::Optimizer::learning_rate(&self.optimizer)
                }

                pub fn set_learning_rate(&mut self, lr: #elem) {
                    rt::Optimizer::set_learning_rate(&mut self.optimizer, lr)
                }
            }

            impl rt::Model for #model {
                type Elem = #elem;
                type Workspace = #workspace;
                const NAME: &'static str = #model_name;
                const INPUTS: &'static [rt::TensorInfo] = #inputs_info;
                const TARGETS: &'static [rt::TargetInfo] = #targets_info;
                const OUTPUT: rt::TensorInfo = #output_info;
                const PARAMS: &'static [rt::ParamInfo] = #params_info;

                fn new(seed: u64) -> Self {
                    #model::new(seed)
                }
                fn workspace(&self, capacity: usize) -> #workspace {
                    #model::workspace(self, capacity)
                }
                fn params(&self) -> &[#elem] {
                    &self.params
                }
                fn params_mut(&mut self) -> &mut [#elem] {
                    &mut self.params
                }
                fn grads(&self) -> &[#elem] {
                    &self.grads
                }
                fn forward_backward_dyn(&mut self, ws: &mut #workspace, inputs: &[&[#elem]], targets: &[rt::Target<'_, #elem>]) -> Result<#elem, rt::Error> {
                    rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                    rt::model::expect_targets(#model_name, targets.len(), #n_targets)?;
                    self.forward_backward(ws, #(#input_dyn,)* #(#target_dyn),*)
                }
                fn update(&mut self) {
                    #model::update(self)
                }
                fn predict_dyn<'w>(&self, ws: &'w mut #workspace, inputs: &[&[#elem]]) -> Result<&'w [#elem], rt::Error> {
                    rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                    self.predict(ws, #(#input_dyn2),*)
                }
                fn learning_rate(&self) -> #elem {
                    #model::learning_rate(self)
                }
                fn set_learning_rate(&mut self, lr: #elem) {
                    #model::set_learning_rate(self, lr)
                }
            }
        }
        // The re-export may go unused where the generated module is used by path.
        #[allow(unused_imports)]
        pub use #module::{#model, #workspace};
    }
}

/// The batch size from the first input, and the same batch required of the others.
fn batch_checks(p: &Program) -> TokenStream {
    let mut out = TokenStream::new();
    for (i, b) in p.inputs.iter().enumerate() {
        let (n, name) = (ident(&b.name), &b.name);
        let per = usize_lit(p.graph.ty(b.value).shape.elems_per_sample());
        out.extend(if i == 0 {
            quote!(let batch = rt::check::batch(#name, #n.len(), #per, ws.arena.capacity())?;)
        } else {
            quote!(rt::check::same_batch(#name, #n.len(), #per, batch)?;)
        });
    }
    out
}

fn shape_lit(dims: &[usize]) -> TokenStream {
    let dims = dims.iter().map(|d| usize_lit(*d));
    quote!(&[#(#dims),*])
}

fn model_info(
    p: &Program,
    offsets: &[usize],
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let inputs = p.inputs.iter().map(|b| {
        let (name, shape) = (&b.name, shape_lit(&p.graph.ty(b.value).shape.sample_dims()));
        quote!(rt::TensorInfo { name: #name, shape: #shape })
    });
    let targets = p.targets.iter().map(|b| {
        let name = &b.name;
        let ty = p.graph.ty(b.value);
        let kind = match ty.dtype {
            DType::Float => {
                let shape = shape_lit(&ty.shape.sample_dims());
                quote!(rt::TargetKind::Float { shape: #shape })
            }
            DType::Label => {
                let classes = usize_lit(p.classes(b.value));
                quote!(rt::TargetKind::Classes { classes: #classes })
            }
        };
        quote!(rt::TargetInfo { name: #name, kind: #kind })
    });
    let (oname, oshape) = (
        &p.output.name,
        shape_lit(&p.graph.ty(p.output.value).shape.sample_dims()),
    );
    let params = p.params.iter().zip(offsets).map(|(q, &o)| {
        let (name, shape, offset, len) = (&q.name, shape_lit(&q.shape), usize_lit(o), usize_lit(q.len()));
        quote!(rt::ParamInfo { name: #name, shape: #shape, offset: #offset, len: #len, trainable: true })
    });
    (
        quote!(&[#(#inputs),*]),
        quote!(&[#(#targets),*]),
        quote!(rt::TensorInfo { name: #oname, shape: #oshape }),
        quote!(&[#(#params),*]),
    )
}

fn module_doc(p: &Program, plan: &crate::ir::MemoryPlan) -> String {
    let dims = |v: ValueId| format!("{:?}", p.graph.ty(v).shape.sample_dims());
    let inputs: Vec<String> = p
        .inputs
        .iter()
        .map(|b| format!("`{}` {}", b.name, dims(b.value)))
        .collect();
    format!(
        " Model `{}`, generated by nnc: do not edit, change the model and recompile.\n\n Inputs {}; output `{}` {}; {} parameters; arena of {} × capacity + {} elements.",
        p.name,
        inputs.join(", "),
        p.output.name,
        dims(p.output.value),
        p.param_count(),
        plan.per_sample,
        plan.fixed
    )
}
