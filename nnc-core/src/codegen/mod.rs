//! Code generation: each planned program becomes a Rust module with a model struct, a
//! workspace struct and straight-line methods that call nnc-runtime kernels.
//!
//! Every feature dimension is a literal; only the batch size is a run-time value, checked
//! against the workspace capacity at the top of each method. Nothing is allocated outside
//! `new` and `workspace`. The text is formatted by prettyplease, and comments above each step
//! give the formula it computes in the model's own names.

mod fold;
mod format;
mod info;
mod methods;
mod names;
mod ops;
mod state;
mod step;
mod stubs;

pub use stubs::stubs;

use crate::ir::{Hyper, Init, OptimizerKind, Program, Storage};
use crate::Options;
use names::Names;
use ops::{float_lit, ident, usize_lit, Comments, Ctx};
use proc_macro2::TokenStream;
use quote::quote;

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

fn model(p: &Program, options: &Options, rt: &TokenStream, comments: &Comments) -> TokenStream {
    let plan = p.plan.as_ref().expect("codegen runs after memory planning");
    let names = Names::new(p);
    let elem = ident(options.elem.as_str());
    let ctx = Ctx {
        p,
        elem: elem.clone(),
        names: &names,
        storage: &plan.storage,
        comments,
    };
    let model = ident(&p.name);
    let workspace = ident(&crate::reserved::workspace(&p.name));
    let module = ident(&crate::reserved::module(&p.name));
    let offsets = p.param_offsets();
    let param_count = usize_lit(p.param_count());
    let trainable_count = usize_lit(p.trainable_count());
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
                " `{}` {:?}{}: its range in the parameter and gradient buffers.",
                q.name,
                q.shape,
                if q.frozen { ", frozen" } else { "" }
            );
            quote!(#[doc = #doc] const #c: ::core::ops::Range<usize> = #start..#end;)
        });
    // Views (reshapes) use their root's slot and declare none of their own.
    let slot_consts = p
        .graph
        .ids()
        .filter(|id| p.storage_root(*id) == *id)
        .filter_map(|id| {
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
            Init::HeUniform => quote!(rt::init::he_uniform(&mut rng, #fan_in, &mut params[#c]);),
            Init::XavierUniform => {
                quote!(rt::init::xavier_uniform(&mut rng, #fan_in, #fan_out, &mut params[#c]);)
            }
            Init::XavierNormal => {
                quote!(rt::init::xavier_normal(&mut rng, #fan_in, #fan_out, &mut params[#c]);)
            }
            Init::Normal(std) => {
                let std = float_lit(std);
                quote!(rt::init::normal(&mut rng, #std, &mut params[#c]);)
            }
            Init::Uniform(bound) => {
                let bound = float_lit(bound);
                quote!(rt::init::uniform(&mut rng, #bound, &mut params[#c]);)
            }
            Init::Constant(v) => {
                let v = float_lit(v);
                quote!(rt::init::constant(#v, &mut params[#c]);)
            }
            Init::Zeros => quote!(),
        }
    });
    let (optimizer_ty, optimizer_new) = optimizer(p, &names, &elem);
    // Each geometry is one constant, which the kernel calls name. Convolutions need working
    // space per thread, beside the arena: the runtime's size function for each geometry says
    // how much.
    let conv_consts = names.conv.iter().map(|(g, name)| {
        let (doc, name, g) = (" A convolution's input, output channels, kernel, stride, padding, dilation and groups.", ident(name), ops::conv_tokens(g));
        quote!(#[doc = #doc] const #name: rt::kernels::Conv2d = #g;)
    });
    let pool_consts = names.pool.iter().map(|(g, name)| {
        let (doc, name, g) = (
            " A pooling's input, window, stride and padding.",
            ident(name),
            ops::pool_tokens(g),
        );
        quote!(#[doc = #doc] const #name: rt::kernels::Pool2d = #g;)
    });
    // Recurrent scans need space for a block of samples' states, by their hidden size, and
    // attention for copies of one head's columns, by the positions and the head's width.
    let mut hidden_sizes = Vec::new();
    let mut attention_sizes = Vec::new();
    let mut gemm_sizes = Vec::new();
    for node in &p.graph.nodes {
        match node.op.scratch() {
            Some(crate::ir::Scratch::Gemm) => gemm_sizes.push(ops::gemm_sizes(&p.graph, node)),
            Some(crate::ir::Scratch::Recurrent { hidden }) => hidden_sizes.push(hidden),
            Some(crate::ir::Scratch::Attention) => {
                let (steps, _, head) = ops::attention_sizes(&p.graph, node);
                attention_sizes.push((steps, head));
            }
            _ => {}
        }
    }
    hidden_sizes.sort_unstable();
    hidden_sizes.dedup();
    attention_sizes.sort_unstable();
    attention_sizes.dedup();
    gemm_sizes.sort_unstable();
    gemm_sizes.dedup();
    let mut needs: Vec<TokenStream> = names
        .conv
        .iter()
        .map(|(_, name)| {
            let name = ident(name);
            quote!(#name.scratch_len())
        })
        .collect();
    needs.extend(hidden_sizes.iter().map(|&h| {
        let h = usize_lit(h);
        quote!(rt::kernels::recurrent_scratch_len(#h))
    }));
    needs.extend(attention_sizes.iter().map(|&(t, h)| {
        let (t, h) = (usize_lit(t), usize_lit(h));
        quote!(rt::kernels::attention_scratch_len(#t, #h))
    }));
    needs.extend(gemm_sizes.iter().map(|&(n, k)| {
        let size = |d: Option<usize>| {
            d.map_or(quote!(usize::MAX), |d| {
                let d = usize_lit(d);
                quote!(#d)
            })
        };
        let (n, k) = (size(n), size(k));
        quote!(rt::kernels::gemm_scratch_len(#n, #k))
    }));
    let uses: Vec<&str> = [
        (
            !names.conv.is_empty(),
            "one sample's columns for a convolution",
        ),
        (
            !hidden_sizes.is_empty(),
            "a block of samples' states for a recurrent layer",
        ),
        (
            !attention_sizes.is_empty(),
            "one head's queries, keys and values for attention",
        ),
        (
            !gemm_sizes.is_empty(),
            "packed blocks of a matrix product's operands",
        ),
    ]
    .into_iter()
    .filter_map(|(used, what)| used.then_some(what))
    .collect();
    let scratch_doc = format!(
        " Scratch elements each thread's kernels use ({}).",
        uses.join("; ")
    );
    let (scratch_const, start_exec, arena_new, exec_field) = if !needs.is_empty() {
        (
            quote! {
                #[doc = #scratch_doc]
                pub const SCRATCH_PER_THREAD: usize = rt::scratch_per_thread(&[#(#needs),*]);
            },
            quote!(let exec = rt::Exec::try_new(threads)?;),
            quote!(rt::Arena::try_new(ARENA_PER_SAMPLE, ARENA_FIXED, capacity)?
                .try_with_scratch(SCRATCH_PER_THREAD, exec.threads())?),
            quote!(exec),
        )
    } else {
        (
            quote!(),
            quote!(),
            quote!(rt::Arena::try_new(ARENA_PER_SAMPLE, ARENA_FIXED, capacity)?),
            quote!(exec: rt::Exec::try_new(threads)?),
        )
    };

    // Method parameters: inputs, then targets, each a slice.
    let input_args = info::slice_args(p, &names.bound(&p.inputs), &elem);
    let dropout = p.has_dropout();
    let forward_body = p
        .graph
        .ids()
        .filter(|id| p.graph.node(*id).phase == crate::ir::Phase::Forward)
        .map(|id| ctx.node(id));
    let mode_param = p.mode_dependent().then(|| quote!(mode: rt::Mode,));
    let rng_param = match p.dropout_masks() {
        0 => None,
        1 => Some(quote!(rng: Option<&mut rt::Rng>,)),
        _ => Some(quote!(mut rng: Option<&mut rt::Rng>,)),
    };
    let forward_doc = if dropout {
        " The forward pass: fills the arena up to the outputs. In `Mode::Train` dropout draws its masks from `rng`, the model's random state; in `Mode::Infer` it is the identity and `rng` is not read."
    } else if p.behaves_by_mode() {
        " The forward pass in `mode`: fills the arena up to the outputs."
    } else if p.mode_dependent() {
        " The forward pass: fills the arena up to the outputs. The mode only chooses how threads share the work: in `Mode::Train` each dense layer splits its weight's rows among them (each thread then updates the rows it read), in `Mode::Infer` its samples."
    } else {
        " The forward pass: fills the arena up to the outputs."
    };
    let state_param = state::forward_param(p, &elem);
    let state_consts = state::consts(p, &names);
    let state_field = state::field(p, &elem);
    let commit_fn = state::commit_fn(p, &ctx, &elem);
    let state_init = (!p.states.is_empty()).then(|| quote!(state: vec![0.0; STATE_COUNT],));
    let rng_init = dropout.then(|| quote!(rng,));
    let (revision_field, revision_init) = fold::model_field(p);
    let (folded_fields, folded_inits) = fold::workspace_fields(p, &elem);
    let folded_consts = fold::consts(p, &names);
    let fold_fns = fold::functions(p, &ctx, &elem, &input_args);
    let carry_const = step::consts(p);
    let step_fn = step::function(p, &ctx, &names, &elem);
    let [carry_fields, carry_inits, carry_methods] = step::workspace_parts(p, &elem);
    let fields = quote!(params, grads: vec![0.0; PARAM_COUNT], optimizer: #optimizer_new, #state_init #rng_init #revision_init);
    // The state starts where `reset_state` puts it.
    let construct = if p.states.is_empty() {
        quote!(#model { #fields })
    } else {
        quote! {
            let mut model = #model { #fields };
            model.reset_state();
            model
        }
    };
    let rng_field = dropout.then(|| quote!(rng: rt::Rng,));

    // The workspace's buffer for the gradient of each `requires_grad` input: its field, its
    // initialisation and its accessor.
    let mut grad_fields = Vec::new();
    let mut grad_inits = Vec::new();
    let mut grad_accessors = Vec::new();
    for (i, b) in p.inputs.iter().enumerate() {
        let Some(f) = &names.input_grad[i] else {
            continue;
        };
        let f = ident(f);
        let per_sample = p.graph.ty(b.value).shape.elems_per_sample();
        let n = usize_lit(per_sample);
        let doc = format!(
            " d loss / d `{0}` from the last `forward_backward` (or d outputs · d outputs / d `{0}` from the last `backward`), `batch × {per_sample}` values.",
            b.name
        );
        grad_fields.push(quote!(#f: Vec<#elem>));
        let name = &b.name;
        grad_inits.push(quote!(#f: rt::check::sample_buffer(#name, #n, capacity)?));
        grad_accessors.push(quote! {
            #[doc = #doc]
            pub fn #f(&self) -> &[#elem] {
                &self.#f[..self.batch * #n]
            }
        });
    }
    let (free_fns, methods) = methods::Methods {
        p,
        ctx: &ctx,
        names: &names,
        elem: &elem,
    }
    .tokens(&workspace);
    let doc: Vec<TokenStream> = info::module_doc(p, plan)
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
    let trait_impl = methods::trait_impl(p, &names, &model, &workspace, &elem, &offsets);

    quote! {
        #(#doc)*
        // Every method binds the same buffers, and some models do not read them all (a
        // single-layer model's backward pass never reads an activation, and a model without
        // random initialisers never draws from `rng` in `new`). `forward` takes the execution
        // context, the buffers, the mode and every input, which can be many arguments.
        // The model's own names may be acronyms (`MLP`) or placeholders (`foo`), which clippy
        // flags by default; they are the user's choice, not the generator's. Three outputs or
        // more are a tuple of slices, which clippy calls a complex type; it is the API.
        #[allow(dead_code, unused_variables, unused_mut, clippy::too_many_arguments, clippy::upper_case_acronyms, clippy::disallowed_names, clippy::type_complexity)]
        pub mod #module {
            use #rt as rt;

            /// Number of parameters (weights and biases) in the model.
            pub const PARAM_COUNT: usize = #param_count;
            /// Number of parameters the optimizer updates: the first ones in the buffer.
            pub const TRAINABLE_COUNT: usize = #trainable_count;
            /// Arena elements per sample of workspace capacity.
            pub const ARENA_PER_SAMPLE: usize = #per_sample;
            /// Arena elements that do not depend on the batch size.
            pub const ARENA_FIXED: usize = #fixed;
            #scratch_const
            #(#param_consts)*
            #state_consts
            #folded_consts
            #carry_const
            #(#slot_consts)*
            #(#conv_consts)*
            #(#pool_consts)*

            #[doc = #forward_doc]
            fn forward(exec: &rt::Exec, params: &[#elem], #state_param arena: &mut rt::Arena<#elem>, batch: usize, #mode_param #rng_param #(#input_args),*) {
                #(#forward_body)*
            }

            #commit_fn

            #fold_fns

            #step_fn

            #free_fns

            #[doc = #model_doc]
            pub struct #model {
                params: rt::Aligned<#elem>,
                grads: Vec<#elem>,
                optimizer: #optimizer_ty,
                #state_field
                #rng_field
                #revision_field
            }

            #[doc = #ws_doc]
            pub struct #workspace {
                arena: rt::Arena<#elem>,
                /// The threads the kernels run on, joined when the workspace is dropped.
                exec: rt::Exec,
                /// The batch of the last call.
                batch: usize,
                /// The batch of the last `forward_train`, while `backward` may follow it.
                ready: Option<usize>,
                metrics: rt::Metrics<#elem>,
                #folded_fields
                #carry_fields
                #(#grad_fields,)*
            }

            impl #workspace {
                /// The largest batch this workspace holds.
                pub fn capacity(&self) -> usize {
                    self.arena.capacity()
                }

                /// The number of threads the kernels run on, the caller's included.
                pub fn threads(&self) -> usize {
                    self.exec.threads()
                }

                /// Loss and accuracy of the last `forward_backward`, computed from its forward pass.
                pub fn metrics(&self) -> rt::Metrics<#elem> {
                    self.metrics
                }

                #carry_methods

                #(#grad_accessors)*
            }

            impl #model {
                /// Creates the model with parameters initialised from `seed` (the same seed gives the same model).
                pub fn new(seed: u64) -> Self {
                    let mut rng = rt::Rng::new(seed);
                    let mut params = rt::Aligned::zeros(PARAM_COUNT);
                    #(#init)*
                    #construct
                }

                /// Allocates the scratch memory for batches of up to `capacity` samples, with `NNC_NUM_THREADS` threads (or as many as the machine has).
                pub fn workspace(&self, capacity: usize) -> #workspace {
                    self.workspace_with_threads(capacity, rt::Exec::default_threads())
                }

                /// Allocates the scratch memory for batches of up to `capacity` samples and starts `threads - 1` worker threads for the kernels (none for 1), which the workspace joins when dropped. Panics if the memory or the threads cannot be had; `try_workspace_with_threads` returns the error instead.
                pub fn workspace_with_threads(&self, capacity: usize, threads: usize) -> #workspace {
                    self.try_workspace_with_threads(capacity, threads)
                        .unwrap_or_else(|e| panic!("{e}"))
                }

                /// `workspace_with_threads`, or `Error::Allocation` where the capacity asks for more memory than there is, or `Error::Thread` where the system refuses a worker thread.
                pub fn try_workspace_with_threads(&self, capacity: usize, threads: usize) -> Result<#workspace, rt::Error> {
                    #start_exec
                    Ok(#workspace {
                        arena: #arena_new,
                        #exec_field,
                        batch: 0,
                        ready: None,
                        metrics: rt::Metrics::default(),
                        #folded_inits
                        #carry_inits
                        #(#grad_inits,)*
                    })
                }

                #methods
            }

            #trait_impl
        }
        // The re-export may go unused where the generated module is used by path.
        #[allow(unused_imports)]
        pub use #module::{#model, #workspace};
    }
}

/// The optimizer's type and constructor: the runtime's config struct with every
/// hyperparameter spelled out, so that the generated code shows what it trains with.
fn optimizer(p: &Program, names: &Names, elem: &proc_macro2::Ident) -> (TokenStream, TokenStream) {
    let o = &p.optimizer;
    let (ty, config) = match o.kind {
        OptimizerKind::Sgd => ("Sgd", "SgdConfig"),
        OptimizerKind::Adagrad => ("Adagrad", "AdagradConfig"),
        OptimizerKind::Rmsprop => ("Rmsprop", "RmspropConfig"),
        OptimizerKind::Adam => ("Adam", "AdamConfig"),
        OptimizerKind::AdamW => ("AdamW", "AdamConfig"),
    };
    let (ty, config) = (ident(ty), ident(config));
    let fields = o.hyper.iter().map(|(name, v)| {
        let name = ident(name);
        match v {
            Hyper::Real(x) => {
                let x = float_lit(*x);
                quote!(#name: #x)
            }
            Hyper::Bool(b) => quote!(#name: #b),
        }
    });
    // `decay = matrices`: the trainable parameters of fewer than two axes, by name.
    let exempt: Vec<proc_macro2::Ident> = p
        .params
        .iter()
        .zip(&names.param)
        .filter(|(q, _)| !q.frozen && o.decay_matrices_only && !o.decays(&q.shape))
        .map(|(_, name)| ident(name))
        .collect();
    let without_decay = if exempt.is_empty() || o.real("weight_decay") == 0.0 {
        quote!()
    } else {
        quote!(.without_decay(&[#(#exempt),*]))
    };
    // Each trainable tensor as `[rows, columns]`, in the order of the parameter vector, so that
    // each thread updates the rows the layers' kernels give it.
    let tensors = p.params.iter().filter(|q| !q.frozen).map(|q| {
        let rows = usize_lit(q.shape.first().copied().unwrap_or(1));
        let cols = usize_lit(q.shape.iter().skip(1).product());
        quote!([#rows, #cols])
    });
    (
        quote!(rt::#ty<#elem>),
        quote!(rt::#ty::new(TRAINABLE_COUNT, rt::#config { #(#fields),* }) #without_decay .with_tensors(&[#(#tensors),*])),
    )
}
