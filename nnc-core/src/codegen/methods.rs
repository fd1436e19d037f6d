//! The methods of a generated model: inference, training through the loss, training from
//! caller-supplied output gradients, evaluation with metrics, the optimizer update, and the
//! `rt::Model` impl that lets generic code drive any model.

use super::fold;
use super::info;
use super::names::Names;
use super::ops::{float_lit, ident, usize_lit, Ctx};
use super::state;
use super::step;
use crate::ir::{Binding, DType, Gradients, MetricKind, Program, Schedule, Storage};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The mode (and the random state for dropout in training) that an entry point passes to the
/// forward pass, for models whose forward pass takes them.
fn forward_mode(p: &Program, mode: crate::ir::Mode) -> TokenStream {
    let rng = p.has_dropout().then(|| match mode {
        crate::ir::Mode::Train => quote!(Some(&mut self.rng),),
        crate::ir::Mode::Infer => quote!(None,),
    });
    let mode = p.mode_dependent().then(|| match mode {
        crate::ir::Mode::Train => quote!(rt::Mode::Train,),
        crate::ir::Mode::Infer => quote!(rt::Mode::Infer,),
    });
    quote!(#mode #rng)
}

pub struct Methods<'a> {
    pub p: &'a Program,
    pub ctx: &'a Ctx<'a>,
    pub names: &'a Names,
    pub elem: &'a Ident,
}

impl Methods<'_> {
    /// The module-level helper functions and the inherent methods.
    pub fn tokens(&self, workspace: &Ident) -> (TokenStream, TokenStream) {
        let p = self.p;
        let elem = self.elem;
        let names = self.names;
        let input_args = info::slice_args(p, &names.bound(&p.inputs), elem);
        let input_names = self.input_names();
        let target_args = info::slice_args(p, &names.bound(&p.targets), elem);
        let target_names: Vec<Ident> = p
            .targets
            .iter()
            .map(|b| ident(names.local(b.value)))
            .collect();
        let checks = info::batch_checks(p, names);
        let target_checks = info::target_checks(p, names);
        let (output_ty, output_read) = self.outputs();
        let dropout = p.has_dropout();
        // Each entry point passes its schedule's mode, and runs the state writes if its
        // schedule does.
        let predict_mode = forward_mode(p, Schedule::PREDICT.mode);
        let evaluate_mode = forward_mode(p, Schedule::EVALUATE.mode);
        let train_mode = forward_mode(p, Schedule::FORWARD_BACKWARD.mode);
        let pullback_mode = forward_mode(p, Schedule::PULLBACK.mode);
        let state_arg = state::forward_arg(p);
        let touch = fold::touch(p);
        // A training pass that moves the running statistics changes the model.
        let commit_arena = state::commit_call(p, &Schedule::FORWARD_BACKWARD, quote!(arena))
            .map(|commit| quote!(#commit #touch));
        let commit_ws = state::commit_call(p, &Schedule::PULLBACK, quote!(&ws.arena))
            .map(|commit| quote!(#commit #touch));
        let train_checks = state::training_checks(p);
        let other_outputs = step::other_outputs(p);
        let forward_outputs = fold::forward_outputs(p);
        let forward_outputs = quote!(#forward_outputs #other_outputs);

        let mut free = TokenStream::new();
        let (predict_doc, predict_call) = if fold::folds(p) {
            (
                " Inference: runs the forward pass on a batch and returns the output (`batch × per-sample` values), with dropout off and each batch norm that follows a convolution folded into it (recomputed only after the parameters or the running statistics change).",
                fold::predict_call(&input_names),
            )
        } else {
            (
                " Inference: runs the forward pass on a batch and returns the output (`batch × per-sample` values), with dropout off.",
                quote!(forward(&ws.exec, &self.params, #state_arg &mut ws.arena, batch, #predict_mode #(#input_names),*);),
            )
        };
        let predict_output = self.outputs_read(&p.predict_schedule());
        let mut methods = quote! {
            #[doc = #predict_doc]
            pub fn predict<'w>(&self, ws: &'w mut #workspace, #(#input_args),*) -> Result<#output_ty, rt::Error> {
                #checks
                ws.ready = None;
                ws.batch = batch;
                #other_outputs
                #predict_call
                #predict_output
            }
        };

        if let (Some(total), Some(backward)) = (p.loss, &p.backward) {
            let loss_body = p
                .graph
                .ids()
                .filter(|id| p.graph.node(*id).phase == crate::ir::Phase::Loss && *id != total)
                .map(|id| self.ctx.node(id));
            let total = self.ctx.tail(total);
            free.extend(quote! {
                /// The total loss of the batch whose forward pass is in the arena.
                fn total_loss(exec: &rt::Exec, arena: &rt::Arena<#elem>, batch: usize, #(#target_args),*) -> #elem {
                    #(#loss_body)*
                    #total
                }
            });
            let metric = self.metric();
            let backward_body = self.gradient_pass(backward, crate::ir::Phase::Backward);
            let comment = self
                .ctx
                .comments
                .marker("The backward pass, in reverse layer order.".into());
            let grad_bindings = self.grad_bindings();
            methods.extend(quote! {
                /// Forward and backward pass: fills the gradients and returns the loss. Does not update the parameters. Loss and accuracy of the batch are then in `ws.metrics()`.
                pub fn forward_backward(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> {
                    #checks
                    #target_checks
                    #train_checks
                    ws.ready = None;
                    ws.batch = batch;
                    #forward_outputs
                    let params = &self.params[..];
                    let grads = &mut self.grads[..];
                    let exec = &ws.exec;
                    let arena = &mut ws.arena;
                    #grad_bindings
                    forward(exec, params, #state_arg arena, batch, #train_mode #(#input_names),*);
                    #commit_arena
                    let (correct, scored) = #metric;
                    let loss = total_loss(exec, arena, batch, #(#target_names),*);
                    #comment
                    #backward_body
                    ws.metrics = rt::Metrics::new(loss, batch, correct, scored);
                    Ok(loss)
                }

                /// One training step: forward, backward and optimizer update. Returns the loss before the update.
                pub fn train_step(&mut self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<#elem, rt::Error> {
                    let loss = self.forward_backward(ws, #(#input_names,)* #(#target_names),*)?;
                    self.update_with(ws);
                    Ok(loss)
                }

                /// Loss and accuracy of a batch in inference mode (dropout off), without a backward pass.
                pub fn evaluate(&self, ws: &mut #workspace, #(#input_args,)* #(#target_args),*) -> Result<rt::Metrics<#elem>, rt::Error> {
                    #checks
                    #target_checks
                    ws.ready = None;
                    ws.batch = batch;
                    #forward_outputs
                    let exec = &ws.exec;
                    let arena = &mut ws.arena;
                    forward(exec, &self.params, #state_arg arena, batch, #evaluate_mode #(#input_names),*);
                    let (correct, scored) = #metric;
                    let loss = total_loss(exec, arena, batch, #(#target_names),*);
                    Ok(rt::Metrics::new(loss, batch, correct, scored))
                }
            });
        }

        // The caller's gradient of each output, `d_<output>`, has the output's type.
        let d_bindings: Vec<Binding> = p
            .outputs
            .iter()
            .map(|b| Binding {
                name: crate::reserved::output_grad(&b.name),
                ..b.clone()
            })
            .collect();
        let d_outputs: Vec<(&str, &Binding)> = names
            .output_grad
            .iter()
            .map(String::as_str)
            .zip(&d_bindings)
            .collect();
        let d_args = info::slice_args(p, &d_outputs, elem);
        let d_checks = info::same_batch_checks(p, &d_outputs);
        let pullback_body = self.gradient_pass(&p.pullback, crate::ir::Phase::Pullback);
        // The inputs must hold the batch that `forward_train` saw, and valid ids: the backward
        // pass indexes with them again (an embedding's table gradient, `select`'s rows).
        let mut input_checks = info::same_batch_checks(p, &names.bound(&p.inputs));
        input_checks.extend(info::ids_checks(p, names, &p.inputs));
        let grad_bindings = self.grad_bindings();
        let model_name = &p.name;
        let forward_train_doc = if p.states.is_empty() {
            " The forward pass in training mode (dropout active), kept in the workspace for a following `backward`. Returns the outputs."
        } else {
            " The forward pass in training mode (dropout active, batch norm with the batch's statistics, then its running statistics updated), kept in the workspace for a following `backward`. Returns the outputs."
        };
        methods.extend(quote! {
            #[doc = #forward_train_doc]
            pub fn forward_train<'w>(&mut self, ws: &'w mut #workspace, #(#input_args),*) -> Result<#output_ty, rt::Error> {
                #checks
                #train_checks
                forward(&ws.exec, &self.params, #state_arg &mut ws.arena, batch, #pullback_mode #(#input_names),*);
                #commit_ws
                ws.ready = Some(batch);
                ws.batch = batch;
                #forward_outputs
                #output_read
            }

            /// Backward pass from the gradients of some loss with respect to the outputs of the last `forward_train` on this workspace, given the same inputs: fills the parameter gradients (and the gradients of `requires_grad` inputs). Does not update the parameters.
            pub fn backward(&mut self, ws: &mut #workspace, #(#input_args,)* #(#d_args),*) -> Result<(), rt::Error> {
                let batch = ws.ready.ok_or(rt::Error::NoForward { model: #model_name })?;
                #input_checks
                #d_checks
                // The pullback reuses the arena: one `backward` per `forward_train`.
                ws.ready = None;
                ws.batch = batch;
                let params = &self.params[..];
                let grads = &mut self.grads[..];
                let exec = &ws.exec;
                let arena = &mut ws.arena;
                #grad_bindings
                #pullback_body
                Ok(())
            }
        });
        if dropout {
            methods.extend(quote! {
                /// Restarts the random state that draws dropout masks, so that a run can be repeated exactly.
                pub fn reseed(&mut self, seed: u64) {
                    self.rng = rt::Rng::new(seed);
                }
            });
        }
        methods.extend(self.accessors(workspace));
        methods.extend(state::methods(p, self.names, elem));
        methods.extend(step::method(p, names, elem, workspace));
        (free, methods)
    }

    fn input_names(&self) -> Vec<Ident> {
        self.p
            .inputs
            .iter()
            .map(|b| ident(self.names.local(b.value)))
            .collect()
    }

    /// The return type of `predict` and `forward_train`, and the statement returning the
    /// forward pass's outputs: one slice, or a tuple of slices for several outputs.
    fn outputs(&self) -> (TokenStream, TokenStream) {
        let elem = self.elem;
        let tys = self.p.outputs.iter().map(|_| quote!(&'w [#elem]));
        let ty = match self.p.outputs.len() {
            1 => quote!(&'w [#elem]),
            _ => quote!((#(#tys),*)),
        };
        (ty, self.outputs_read(&Schedule::PULLBACK))
    }

    /// The statement returning the outputs of an entry point that runs `schedule`: the
    /// inference pass's copies for a folded `predict`, else the forward pass's.
    fn outputs_read(&self, schedule: &Schedule) -> TokenStream {
        let p = self.p;
        let values = p.outputs_of(schedule);
        let slots: Vec<Ident> = values.iter().map(|v| ident(self.names.slot(*v))).collect();
        if let [slot] = slots.as_slice() {
            return quote!(Ok(ws.arena.get(batch, #slot)));
        }
        let locals: Vec<Ident> = p
            .outputs
            .iter()
            .map(|b| ident(self.names.local(b.value)))
            .collect();
        quote! {
            let [#(#locals),*] = ws.arena.read(batch, [#(#slots),*]);
            Ok((#(#locals),*))
        }
    }

    /// `(correct, scored)` for the batch whose forward pass is in the arena.
    fn metric(&self) -> TokenStream {
        let Some(m) = self.p.metric else {
            return quote!((0, 0));
        };
        let pred_slot = ident(self.names.slot(m.prediction));
        let target = ident(self.names.local(m.target));
        let shape = &self.p.graph.ty(m.prediction).shape;
        let per = shape.elems_per_sample();
        let n = usize_lit(shape.row_width());
        // Class predictions are scored per row: per sample, or per position of a sequence.
        let rows = self.ctx.rows(m.prediction);
        let k = quote!(rt::kernels);
        let call = match m.kind {
            MetricKind::ArgmaxLabel { ignore: None } => {
                quote!((#k::argmax_correct(exec, #rows, #n, pred, #target, None), #rows))
            }
            // Ignored rows are neither right nor wrong: they are not scored.
            MetricKind::ArgmaxLabel { ignore: Some(i) } => {
                let i = usize_lit(i as usize);
                let i = quote!(Some(#i));
                quote!((
                    #k::argmax_correct(exec, #rows, #n, pred, #target, #i),
                    #k::kept_labels(#target, #i),
                ))
            }
            MetricKind::ArgmaxMatch => {
                quote!((#k::argmax_match(exec, #rows, #n, pred, #target), #rows))
            }
            MetricKind::Threshold(t) => {
                let t = float_lit(t);
                let scored = if per == 1 {
                    quote!(batch)
                } else {
                    quote!(batch * #n)
                };
                quote!((#k::threshold_correct(exec, pred, #target, #t), #scored))
            }
        };
        quote!({
            let [pred] = arena.read(batch, [#pred_slot]);
            #call
        })
    }

    /// Mutable views of the workspace's input-gradient buffers for this batch.
    fn grad_bindings(&self) -> TokenStream {
        self.p
            .inputs
            .iter()
            .zip(&self.p.requires_grad)
            .enumerate()
            .filter(|(_, (_, r))| **r)
            .map(|(i, (b, _))| {
                let f = ident(self.names.input_grad(i));
                let n = usize_lit(self.p.graph.ty(b.value).shape.elems_per_sample());
                quote!(let #f = &mut ws.#f[..batch * #n];)
            })
            .collect()
    }

    /// The nodes of one backward pass, after zeroing the gradients it does not reach (a
    /// parameter that only feeds another output, say), so that no stale value survives.
    fn gradient_pass(&self, grads: &Gradients, phase: crate::ir::Phase) -> TokenStream {
        let p = self.p;
        let zero = p
            .params
            .iter()
            .zip(&grads.params)
            .zip(&self.names.param)
            .filter(|((q, g), _)| !q.frozen && g.is_none())
            .map(|(_, c)| {
                let c = ident(c);
                quote!(grads[#c].fill(0.0);)
            });
        let zero_inputs = p
            .inputs
            .iter()
            .zip(&p.requires_grad)
            .zip(&grads.inputs)
            .enumerate()
            .filter(|(_, ((_, r), g))| **r && g.is_none())
            .map(|(i, _)| {
                let f = ident(self.names.input_grad(i));
                quote!(#f.fill(0.0);)
            });
        let body = p
            .graph
            .ids()
            .filter(|id| p.graph.node(*id).phase == phase)
            .filter(|id| !matches!(self.ctx.storage[id.index()], Storage::Caller))
            .map(|id| self.ctx.node(id));
        quote!(#(#zero)* #(#zero_inputs)* #(#body)*)
    }

    /// Optimizer update and plain accessors.
    fn accessors(&self, workspace: &Ident) -> TokenStream {
        let elem = self.elem;
        let touch = fold::touch(self.p);
        let clip = self.p.optimizer.clip_grad_norm.map(|c| {
            let c = float_lit(c);
            quote!(rt::clip_grad_norm(&mut self.grads[..TRAINABLE_COUNT], #c);)
        });
        let clip_doc = self.p.optimizer.clip_grad_norm.map(|c| {
            let doc =
                format!(" The gradients are first clipped to a global L2 norm of at most {c}.");
            quote!(#[doc = #doc])
        });
        quote! {
            /// Applies one optimizer update from the current gradients to the trainable parameters, on the calling thread.
            #clip_doc
            pub fn update(&mut self) {
                self.step_optimizer(rt::Exec::serial());
            }

            /// Applies one optimizer update from the current gradients to the trainable parameters, on the workspace's threads (as `train_step` does).
            #clip_doc
            pub fn update_with(&mut self, ws: &#workspace) {
                self.step_optimizer(&ws.exec);
            }

            fn step_optimizer(&mut self, exec: &rt::Exec) {
                #touch
                #clip
                rt::Optimizer::step(&mut self.optimizer, exec, &mut self.params[..TRAINABLE_COUNT], &self.grads[..TRAINABLE_COUNT]);
            }

            /// All parameters: trainable ones first, then frozen ones (see `PARAMS` of `rt::Model`).
            pub fn params(&self) -> &[#elem] {
                &self.params
            }

            /// All parameters, mutably (for loading weights).
            pub fn params_mut(&mut self) -> &mut [#elem] {
                #touch
                &mut self.params
            }

            /// The gradients from the last `forward_backward` or `backward`, laid out like `params`.
            pub fn grads(&self) -> &[#elem] {
                &self.grads
            }

            /// A parameter by its stable name, such as `"hidden.weight"`.
            pub fn param(&self, name: &str) -> Option<&[#elem]> {
                rt::Model::param(self, name)
            }

            /// The optimizer, with its state (for checkpoints).
            pub fn optimizer(&self) -> &dyn rt::Optimizer<#elem> {
                &self.optimizer
            }

            pub fn learning_rate(&self) -> #elem {
                rt::Optimizer::learning_rate(&self.optimizer)
            }

            /// Sets the optimizer's learning rate, or returns `Error::LearningRate` and leaves it unchanged where `lr` is negative, infinite or NaN.
            pub fn set_learning_rate(&mut self, lr: #elem) -> Result<(), rt::Error> {
                rt::check::learning_rate(lr)?;
                rt::Optimizer::set_learning_rate(&mut self.optimizer, lr);
                Ok(())
            }
        }
    }
}

/// `impl rt::Model`: the same methods behind slices of inputs and targets.
pub fn trait_impl(
    p: &Program,
    names: &Names,
    model: &Ident,
    workspace: &Ident,
    elem: &Ident,
    offsets: &[usize],
) -> TokenStream {
    let [inputs_info, targets_info, outputs_info, params_info] = info::model_info(p, offsets);
    let model_name = &p.name;
    let (n_inputs, n_targets) = (usize_lit(p.inputs.len()), usize_lit(p.targets.len()));
    // Each dynamic input or target is unwrapped to the slice kind its declaration asks for.
    let unwrap = |list: TokenStream, bindings: &[Binding]| -> Vec<TokenStream> {
        bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let (name, i) = (&b.name, usize_lit(i));
                match p.graph.ty(b.value).dtype {
                    DType::Ids(_) => quote!(#list[#i].ids(#name)?),
                    DType::Float => quote!(#list[#i].float(#name)?),
                }
            })
            .collect()
    };
    let input_dyn = unwrap(quote!(inputs), &p.inputs);
    let target_dyn = unwrap(quote!(targets), &p.targets);
    let n_outputs = usize_lit(p.outputs.len());
    let has_loss = p.loss.is_some();
    let d_dyn = (0..p.outputs.len()).map(|i| {
        let i = usize_lit(i);
        quote!(d_outputs[#i])
    });
    let output_arms = (0..p.outputs.len()).map(|i| {
        let slot = step::output_slot(p, names, i, fold::output_slot(p, names, i));
        let i = usize_lit(i);
        quote!(#i => Some(ws.arena.get(ws.batch, #slot)),)
    });
    let grad_arms = p
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| p.requires_grad[*i])
        .map(|(i, _)| {
            let (f, i) = (ident(names.input_grad(i)), usize_lit(i));
            quote!(#i => Some(ws.#f()),)
        });
    let grad_arms: Vec<TokenStream> = grad_arms.collect();
    let input_grad_body = if grad_arms.is_empty() {
        quote! {
            let _ = (ws, index);
            None
        }
    } else {
        quote!(match index { #(#grad_arms)* _ => None })
    };
    let reseed = p.has_dropout().then(|| {
        quote! {
            fn reseed(&mut self, seed: u64) {
                #model::reseed(self, seed)
            }
        }
    });
    let state_items = state::trait_items(p, model, elem);
    let touch = fold::touch(p);
    let first_output = if p.outputs.len() == 1 {
        quote!(self.predict(ws, #(#input_dyn),*))
    } else {
        quote!(self.predict(ws, #(#input_dyn),*).map(|outputs| outputs.0))
    };
    let step_items = match &p.step {
        Ok(step) => {
            let positions = step.positions.map(|n| {
                let n = usize_lit(n);
                quote!(const STEP_POSITIONS: Option<usize> = Some(#n);)
            });
            let first = if p.outputs.len() == 1 {
                quote!(self.step(ws, #(#input_dyn),*))
            } else {
                quote!(self.step(ws, #(#input_dyn),*).map(|outputs| outputs.0))
            };
            quote! {
                const HAS_STEP: bool = true;
                #positions
                fn step_dyn<'w>(&self, ws: &'w mut #workspace, inputs: &[rt::Values<'_, #elem>]) -> Result<&'w [#elem], rt::Error> {
                    rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                    #first
                }
                fn reset_sequences(ws: &mut #workspace) {
                    ws.reset_sequences()
                }
            }
        }
        // Without a recurrent or attention layer the trait's default says why.
        Err(_) if !p.is_recurrent() && !p.attends() => quote!(),
        Err(why) => quote! {
            fn step_dyn<'w>(&self, _ws: &'w mut #workspace, _inputs: &[rt::Values<'_, #elem>]) -> Result<&'w [#elem], rt::Error> {
                Err(rt::Error::NoStep { model: #model_name, why: #why })
            }
        },
    };
    let training = if p.loss.is_some() {
        quote! {
            fn forward_backward_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], targets: &[rt::Values<'_, #elem>]) -> Result<#elem, rt::Error> {
                rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                rt::model::expect_targets(#model_name, targets.len(), #n_targets)?;
                self.forward_backward(ws, #(#input_dyn,)* #(#target_dyn),*)
            }
            fn evaluate_dyn(&self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], targets: &[rt::Values<'_, #elem>]) -> Result<rt::Metrics<#elem>, rt::Error> {
                rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                rt::model::expect_targets(#model_name, targets.len(), #n_targets)?;
                self.evaluate(ws, #(#input_dyn,)* #(#target_dyn),*)
            }
        }
    } else {
        quote! {
            fn forward_backward_dyn(&mut self, _ws: &mut #workspace, _inputs: &[rt::Values<'_, #elem>], _targets: &[rt::Values<'_, #elem>]) -> Result<#elem, rt::Error> {
                Err(rt::Error::NoLoss { model: #model_name })
            }
            fn evaluate_dyn(&self, _ws: &mut #workspace, _inputs: &[rt::Values<'_, #elem>], _targets: &[rt::Values<'_, #elem>]) -> Result<rt::Metrics<#elem>, rt::Error> {
                Err(rt::Error::NoLoss { model: #model_name })
            }
        }
    };
    quote! {
        impl rt::Model for #model {
            type Elem = #elem;
            type Workspace = #workspace;
            const NAME: &'static str = #model_name;
            const INPUTS: &'static [rt::TensorInfo] = #inputs_info;
            const TARGETS: &'static [rt::TensorInfo] = #targets_info;
            const OUTPUTS: &'static [rt::TensorInfo] = #outputs_info;
            const PARAMS: &'static [rt::ParamInfo] = #params_info;
            const HAS_LOSS: bool = #has_loss;

            fn new(seed: u64) -> Self {
                #model::new(seed)
            }
            fn try_workspace_with_threads(&self, capacity: usize, threads: usize) -> Result<#workspace, rt::Error> {
                #model::try_workspace_with_threads(self, capacity, threads)
            }
            fn params(&self) -> &[#elem] {
                &self.params
            }
            fn params_mut(&mut self) -> &mut [#elem] {
                #touch
                &mut self.params
            }
            fn grads(&self) -> &[#elem] {
                &self.grads
            }
            #training
            fn metrics(ws: &#workspace) -> rt::Metrics<#elem> {
                ws.metrics
            }
            fn update(&mut self) {
                #model::update(self)
            }
            fn update_with(&mut self, ws: &#workspace) {
                #model::update_with(self, ws)
            }
            fn predict_dyn<'w>(&self, ws: &'w mut #workspace, inputs: &[rt::Values<'_, #elem>]) -> Result<&'w [#elem], rt::Error> {
                rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                #first_output
            }
            fn forward_train_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>]) -> Result<(), rt::Error> {
                rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                self.forward_train(ws, #(#input_dyn),*).map(|_| ())
            }
            fn backward_dyn(&mut self, ws: &mut #workspace, inputs: &[rt::Values<'_, #elem>], d_outputs: &[&[#elem]]) -> Result<(), rt::Error> {
                rt::model::expect_inputs(#model_name, inputs, #n_inputs)?;
                rt::model::expect_output_grads(#model_name, d_outputs, #n_outputs)?;
                self.backward(ws, #(#input_dyn,)* #(#d_dyn),*)
            }
            fn output(ws: &#workspace, index: usize) -> Option<&[#elem]> {
                match index {
                    #(#output_arms)*
                    _ => None,
                }
            }
            fn input_grad(ws: &#workspace, index: usize) -> Option<&[#elem]> {
                #input_grad_body
            }
            #reseed
            #state_items
            #step_items
            fn optimizer(&self) -> &dyn rt::Optimizer<#elem> {
                &self.optimizer
            }
            fn optimizer_mut(&mut self) -> &mut dyn rt::Optimizer<#elem> {
                &mut self.optimizer
            }
        }
    }
}
