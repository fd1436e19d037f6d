//! One kernel call per IR node: how each op runs, which arena slots it reads and writes, and
//! the one-line comment that explains it in the generated code.

use super::names::Names;
use crate::ir::{
    fixed_size, Act, ConvGeom, Dim, LossKind, LossSpec, Node, Op, PoolGeom, Program, Reduction,
    ScanStart, Shape, Storage, ValueId,
};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

pub struct Ctx<'a> {
    pub p: &'a Program,
    /// The element type, `f32` or `f64`.
    pub elem: Ident,
    pub names: &'a Names,
    pub storage: &'a [Storage],
    pub comments: &'a Comments,
}

pub fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

pub fn usize_lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

impl Ctx<'_> {
    /// A constant of the element type: for `f32`, the shortest text that reads back as the same
    /// `f32`, since a computed factor such as the `1/49` of a mean over 49 values printed with
    /// `f64` digits is a literal with more precision than `f32` holds (which clippy rejects).
    fn elem_lit(&self, x: f64) -> TokenStream {
        if self.elem == "f32" {
            let text = format!("{:?}", x as f32);
            text.parse().unwrap_or_else(|_| quote!(0.0))
        } else {
            float_lit(x)
        }
    }
}

/// A float literal as a person would write it (`0.5`, `1e-8`).
pub fn float_lit(x: f64) -> TokenStream {
    let text = format!("{x:?}");
    text.parse().unwrap_or_else(|_| quote!(0.0))
}

/// The comments of one generated file. Each becomes a short statement marker
/// `__nnc_comment!(N);` that `format.rs` replaces with `// text` after formatting; an index
/// keeps the marker short enough that the formatter never wraps it.
#[derive(Default)]
pub struct Comments(std::cell::RefCell<Vec<String>>);

impl Comments {
    pub fn marker(&self, text: String) -> TokenStream {
        let mut v = self.0.borrow_mut();
        let i = usize_lit(v.len());
        v.push(text);
        quote!(__nnc_comment!(#i);)
    }

    pub fn into_inner(self) -> Vec<String> {
        self.0.into_inner()
    }
}

impl Ctx<'_> {
    /// The number of elements in `dims`, as an expression: a literal, or `batch` times one.
    fn count(&self, dims: &[Dim]) -> TokenStream {
        let fixed = usize_lit(fixed_size(dims));
        match (dims.contains(&Dim::Batch), fixed_size(dims)) {
            (true, 1) => quote!(batch),
            (true, _) => quote!(batch * #fixed),
            (false, _) => quote!(#fixed),
        }
    }

    /// `count` converted to `ty` with `as`, parenthesised only where it is a product.
    fn count_as(&self, dims: &[Dim], ty: TokenStream) -> TokenStream {
        let n = self.count(dims);
        if dims.contains(&Dim::Batch) && fixed_size(dims) != 1 {
            quote!((#n) as #ty)
        } else {
            quote!(#n as #ty)
        }
    }

    /// The rows of `v` for a per-row kernel: every axis but the last, the batch included.
    pub(super) fn rows(&self, v: ValueId) -> TokenStream {
        let dims = &self.p.graph.ty(v).shape.0;
        self.count(&dims[..dims.len().saturating_sub(1)])
    }

    /// The channels of a batch-normalised value `[B, C, …]` and the values per channel in
    /// one sample (the product of the axes after C).
    fn channels(&self, v: ValueId) -> (Literal, Literal) {
        // The type rules only let batch norm's ops read `[B, C, …]` values.
        let (c, spread) = self.p.graph.ty(v).shape.channels().unwrap_or((0, 0));
        (usize_lit(c), usize_lit(spread))
    }

    /// `v` as rows of its last `keep` axes: the number of rows (every other axis, the batch
    /// included) and the values in one.
    fn leading_rows(&self, v: ValueId, keep: usize) -> (TokenStream, Literal) {
        let dims = &self.p.graph.ty(v).shape.0;
        let lead = dims.len().saturating_sub(keep);
        (
            self.count(&dims[..lead]),
            usize_lit(fixed_size(&dims[lead..])),
        )
    }

    /// The width of `v`'s rows: its last axis.
    fn width(&self, v: ValueId) -> Literal {
        usize_lit(self.p.graph.ty(v).shape.row_width())
    }

    /// The blocks of a join or cut along `axis` of a shape: the number of blocks (every axis
    /// before `axis`, the batch included) and the elements of one block.
    fn blocks(&self, shape: &Shape, axis: usize) -> (TokenStream, usize) {
        let (_, inner) = shape.split_at_axis(axis);
        (self.count(&shape.0[..axis]), inner)
    }

    fn in_arena(&self, v: ValueId) -> bool {
        matches!(
            self.storage[v.index()],
            Storage::Batched { .. } | Storage::Fixed { .. }
        )
    }

    /// The expression that reads `v` inside the node's block.
    fn read(&self, v: ValueId) -> TokenStream {
        let v = self.p.storage_root(v);
        let local = ident(self.names.local(v));
        match self.storage[v.index()] {
            Storage::Params => {
                let param = self
                    .p
                    .param_of(v)
                    .map_or("", |i| self.names.param[i].as_str());
                let range = ident(param);
                quote!(&params[#range])
            }
            Storage::State(i) => {
                let range = ident(&self.names.state[i]);
                quote!(&state[#range])
            }
            Storage::Folded { .. } => {
                let range = ident(self.names.slot(v));
                quote!(&folded[#range])
            }
            Storage::Carry { offset, per_sample } => {
                let range = carry_range(offset, per_sample);
                quote!(&carry[#range])
            }
            _ => quote!(#local),
        }
    }

    /// The statements computing node `id`.
    pub fn node(&self, id: ValueId) -> TokenStream {
        self.emit(id, false)
    }

    /// The statements computing scalar node `id`, ending in its value as the block's tail
    /// expression rather than binding it to a local.
    pub fn tail(&self, id: ValueId) -> TokenStream {
        self.emit(id, true)
    }

    fn emit(&self, id: ValueId, tail: bool) -> TokenStream {
        let node = self.p.graph.node(id);
        if node.op == Op::Reshape {
            // A view: nothing moves, later reads name the value it views.
            return self.comments.marker(self.describe(id, node));
        }
        // A value planned into its operand's slot is computed by the in-place kernel.
        let in_place = node
            .op
            .in_place_operand()
            .map(|i| node.args[i])
            .filter(|a| self.in_arena(id) && self.storage[a.index()] == self.storage[id.index()]);
        // Views read their root's slot, so arguments are collected by root.
        let mut reads: Vec<ValueId> = Vec::new();
        for a in node.args.iter().map(|a| self.p.storage_root(*a)) {
            if self.in_arena(a) && !reads.contains(&a) && Some(a) != in_place {
                reads.push(a);
            }
        }
        let read_locals: Vec<Ident> = reads.iter().map(|v| ident(self.names.local(*v))).collect();
        let read_slots: Vec<Ident> = reads.iter().map(|v| ident(self.names.slot(*v))).collect();
        let args: Vec<TokenStream> = node.args.iter().map(|a| self.read(*a)).collect();
        let note = self.comments.marker(self.describe(id, node));
        let local = ident(self.names.local(id));
        // Read-only views of the arena values a kernel writing outside the arena reads, and
        // the scratch space for a kernel that needs it.
        let scratch = node.op.scratch().is_some();
        let read_bind = || {
            if scratch {
                Some(
                    quote!(let ([#(#read_locals),*], scratch) = arena.read_scratch(batch, [#(#read_slots),*]);),
                )
            } else {
                (!reads.is_empty()).then(
                    || quote!(let [#(#read_locals),*] = arena.read(batch, [#(#read_slots),*]);),
                )
            }
        };
        match self.storage[id.index()] {
            Storage::Batched { .. } | Storage::Fixed { .. } => {
                let slot = ident(self.names.slot(id));
                let call = match (in_place, node.op) {
                    (Some(_), Op::ActivationGrad(act)) => {
                        let (act, y) = (act_tokens(act), &args[0]);
                        quote!(rt::kernels::act_backward_inplace(exec, #act, #y, #local))
                    }
                    _ => self.call(node, &args, quote!(#local)),
                };
                let bind = if scratch {
                    quote!(let ([#(#read_locals),*], #local, scratch) = arena.split_scratch(batch, #slot, [#(#read_slots),*]);)
                } else if reads.is_empty() {
                    quote!(let #local = arena.get_mut(batch, #slot);)
                } else {
                    quote!(let ([#(#read_locals),*], #local) = arena.split(batch, #slot, [#(#read_slots),*]);)
                };
                quote! { #note { #bind #call; } }
            }
            Storage::Grads
            | Storage::InputGrad(_)
            | Storage::State(_)
            | Storage::Folded { .. }
            | Storage::Carry { .. }
                if !node.op.is_leaf() =>
            {
                // Outside the arena: a final gradient, a state write updating the model's
                // state buffer in place, a folded weight, or a carried state's update. Only
                // the destination differs.
                let out = match self.storage[id.index()] {
                    Storage::Grads => {
                        let param = self
                            .p
                            .gradient_passes()
                            .iter()
                            .find_map(|(_, g)| g.params.iter().position(|v| *v == Some(id)))
                            .unwrap_or(0);
                        let range = ident(&self.names.param[param]);
                        quote!(&mut grads[#range])
                    }
                    Storage::InputGrad(i) => {
                        let buffer = ident(self.names.input_grad(i));
                        quote!(&mut #buffer[..])
                    }
                    Storage::State(i) => {
                        let range = ident(&self.names.state[i]);
                        quote!(&mut state[#range])
                    }
                    Storage::Folded { .. } => {
                        let range = ident(self.names.slot(id));
                        quote!(&mut folded[#range])
                    }
                    Storage::Carry { offset, per_sample } => {
                        let range = carry_range(offset, per_sample);
                        quote!(&mut carry[#range])
                    }
                    _ => unreachable!("matched above"),
                };
                let call = self.call(node, &args, out);
                let bind = read_bind();
                quote! { #note { #bind #call; } }
            }
            Storage::Scalar => {
                let value = if node.op == Op::Add {
                    let (a, b) = (&args[0], &args[1]);
                    quote!(#a + #b)
                } else {
                    let call = self.call(node, &args, quote!());
                    let bind = read_bind();
                    quote!({ #bind #call })
                };
                if tail {
                    quote! { #note #value }
                } else {
                    quote! { #note let #local = #value; }
                }
            }
            Storage::Caller
            | Storage::Params
            | Storage::Grads
            | Storage::InputGrad(_)
            | Storage::State(_)
            | Storage::Folded { .. }
            | Storage::Carry { .. } => quote!(),
        }
    }

    fn call(&self, node: &Node, a: &[TokenStream], out: TokenStream) -> TokenStream {
        let k = quote!(rt::kernels);
        let g = &self.p.graph;
        let arg = |i: usize| node.args[i];
        match node.op {
            Op::Dense { act, bias } => {
                let w = &g.ty(arg(1)).shape.0;
                let (outputs, inputs) = (self.count(&w[..1]), self.count(&w[1..]));
                let (rows, x, wt) = (self.rows(arg(0)), &a[0], &a[1]);
                let b = if bias {
                    let b = &a[2];
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                let act = act_tokens(act);
                let mode = if self.p.splits_by_mode(node) {
                    quote!(mode)
                } else {
                    quote!(rt::Mode::Infer)
                };
                quote!(#k::dense_forward(exec, #mode, #rows, #inputs, #outputs, #x, #wt, #b, #act, #out, scratch))
            }
            // The two products of a dense layer's backward pass have kernels of their own, which
            // keep small batches on the packing-free products.
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            } if self.p.param_of(arg(1)).is_some() => {
                let w = &g.ty(arg(1)).shape.0;
                let (outputs, inputs) = (self.count(&w[..1]), self.count(&w[1..]));
                let (rows, gz, wt) = (self.rows(arg(0)), &a[0], &a[1]);
                quote!(#k::dense_backward_input(exec, #rows, #inputs, #outputs, #gz, #wt, #out, scratch))
            }
            Op::MatMul {
                transpose_a: true,
                transpose_b: false,
            } if !node.ty.shape.is_batched() && g.ty(arg(0)).shape.is_batched() => {
                let c = &node.ty.shape.0;
                let (outputs, inputs) = (self.count(&c[..1]), self.count(&c[1..]));
                let (rows, gz, x) = (self.rows(arg(0)), &a[0], &a[1]);
                quote!(#k::dense_backward_weight(exec, #rows, #inputs, #outputs, #gz, #x, #out, scratch))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                // Each operand is the row-major matrix [rows, last axis], with strides
                // (last, 1); reading it transposed swaps the strides.
                let view = |v: ValueId, t: bool| {
                    let dims = &g.ty(v).shape.0;
                    let (lead, last) = dims.split_at(dims.len() - 1);
                    let (r, c) = (self.count(lead), self.count(last));
                    let s = self.count(last);
                    if t {
                        (c, r, quote!(1usize), s)
                    } else {
                        (r, c, s, quote!(1usize))
                    }
                };
                let (m, kd, rsa, csa) = view(arg(0), transpose_a);
                let (_, n, rsb, csb) = view(arg(1), transpose_b);
                let out_dims = &node.ty.shape.0;
                let cols = match (transpose_b, g.ty(arg(1)).shape.0.split_last()) {
                    (true, Some((_, lead))) => lead.to_vec(),
                    _ => out_dims[out_dims.len() - 1..].to_vec(),
                };
                let rsc = self.count(&cols);
                let (x, y) = (&a[0], &a[1]);
                quote!(#k::matmul(exec, #m, #kd, #n, #x, #rsa, #csa, #y, #rsb, #csb, #out, #rsc, scratch))
            }
            Op::BiasAdd => {
                // The bias covers the last axes of x: each row of that many values gets it.
                let keep = g.ty(arg(1)).shape.rank();
                let (rows, n) = self.leading_rows(arg(0), keep);
                let (x, b) = (&a[0], &a[1]);
                quote!(#k::bias_add(exec, #rows, #n, #x, #b, #out))
            }
            Op::Activation(act) => {
                let (act, x) = (act_tokens(act), &a[0]);
                quote!(#k::act_forward(exec, #act, #x, #out))
            }
            Op::Softmax | Op::LogSoftmax => {
                let f = ident(if node.op == Op::Softmax {
                    "softmax"
                } else {
                    "log_softmax"
                });
                let (rows, n, x) = (self.rows(arg(0)), self.width(arg(0)), &a[0]);
                quote!(#k::#f(exec, #rows, #n, #x, #out))
            }
            Op::Add | Op::Sub | Op::Mul => {
                let f = ident(match node.op {
                    Op::Add => "add",
                    Op::Sub => "sub",
                    _ => "mul",
                });
                let (x, y) = (&a[0], &a[1]);
                quote!(#k::#f(exec, #x, #y, #out))
            }
            Op::Scale(c) => {
                let (x, c) = (&a[0], self.elem_lit(c.get()));
                quote!(#k::scale(exec, #x, #c, #out))
            }
            // A join along an axis copies blocks: everything from the axis on is one
            // contiguous block per index of the axes before it.
            Op::Concat { axis } => {
                let (blocks, total) = self.blocks(&node.ty.shape, axis);
                let total = usize_lit(total);
                let mut offset = 0;
                let parts = node.args.iter().zip(a).map(|(v, x)| {
                    let (_, width) = self.blocks(&g.ty(*v).shape, axis);
                    let (w, o) = (usize_lit(width), usize_lit(offset));
                    offset += width;
                    quote!(#k::copy_cols(exec, #blocks, #x, #w, #out, #total, #o);)
                });
                let parts: Vec<TokenStream> = parts.collect();
                quote!({ #(#parts)* })
            }
            // A cut copies part of every block; one step along the axis is the elements of
            // the axes after it.
            Op::Slice { axis, start, len } => {
                let shape = &g.ty(arg(0)).shape;
                let (blocks, width) = self.blocks(shape, axis);
                let step = shape.split_at_axis(axis + 1).1;
                let (n, x) = (usize_lit(width), &a[0]);
                let (start, len) = (usize_lit(start * step), usize_lit(len * step));
                quote!(#k::slice_cols(exec, #blocks, #x, #n, #start, #out, #len))
            }
            Op::Reverse { axis } => {
                let shape = &g.ty(arg(0)).shape;
                let (blocks, width) = self.blocks(shape, axis);
                let step = shape.split_at_axis(axis + 1).1;
                let (width, step, x) = (usize_lit(width), usize_lit(step), &a[0]);
                quote!(#k::reverse_blocks(exec, #blocks, #x, #width, #step, #out))
            }
            Op::Pad { axis, start, .. } => {
                let shape = &g.ty(arg(0)).shape;
                let (blocks, width) = self.blocks(shape, axis);
                let step = shape.split_at_axis(axis + 1).1;
                let (_, total) = self.blocks(&node.ty.shape, axis);
                let (w, n, x) = (usize_lit(width), usize_lit(total), &a[0]);
                let start = usize_lit(start * step);
                quote!({
                    #out.fill(0.0);
                    #k::copy_cols(exec, #blocks, #x, #w, #out, #n, #start);
                })
            }
            Op::Embedding => {
                let (dim, ids, table) = (usize_lit(node.ty.shape.row_width()), &a[0], &a[1]);
                quote!(#k::embedding(exec, #dim, #ids, #table, #out))
            }
            Op::EmbeddingGrad => {
                let (dim, ids, gy) = (self.width(arg(1)), &a[0], &a[1]);
                quote!(#k::embedding_backward(exec, #dim, #ids, #gy, #out))
            }
            Op::SelectRow | Op::SelectRowGrad { .. } => {
                // The rows and the values per row of the `[B, rows, …]` side.
                let full = if node.op == Op::SelectRow {
                    g.ty(arg(0))
                } else {
                    &node.ty
                };
                let dims = full.shape.sample_dims();
                let width: usize = dims[1..].iter().product();
                let (rows, width, x, index) = (usize_lit(dims[0]), usize_lit(width), &a[0], &a[1]);
                if node.op == Op::SelectRow {
                    quote!(#k::select_rows(exec, #rows, #width, #x, #index, #out))
                } else {
                    quote!(#k::select_rows_backward(exec, #rows, #width, #x, #index, #out))
                }
            }
            Op::Conv { geom, bias, act } => {
                let (geom, x, w) = (ident(self.names.conv(&geom)), &a[0], &a[1]);
                let b = if bias {
                    let b = &a[2];
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                let act = act_tokens(act);
                quote!(#k::conv2d(exec, batch, &#geom, #x, #w, #b, #act, #out, scratch))
            }
            Op::ConvInputGrad(geom) => {
                let (geom, gy, w) = (ident(self.names.conv(&geom)), &a[0], &a[1]);
                quote!(#k::conv2d_backward_input(exec, batch, &#geom, #gy, #w, #out, scratch))
            }
            Op::ConvWeightGrad(geom) => {
                let (geom, gy, x) = (ident(self.names.conv(&geom)), &a[0], &a[1]);
                quote!(#k::conv2d_backward_weight(exec, batch, &#geom, #gy, #x, #out, scratch))
            }
            Op::Pool { geom, max } => {
                let f = ident(if max { "max_pool2d" } else { "avg_pool2d" });
                let (geom, x) = (ident(self.names.pool(&geom)), &a[0]);
                quote!(#k::#f(exec, batch, &#geom, #x, #out))
            }
            Op::PoolGrad { geom, max: true } => {
                let (geom, x, y, gy) = (ident(self.names.pool(&geom)), &a[0], &a[1], &a[2]);
                quote!(#k::max_pool2d_backward(exec, batch, &#geom, #x, #y, #gy, #out))
            }
            Op::PoolGrad { geom, max: false } => {
                let (geom, gy) = (ident(self.names.pool(&geom)), &a[0]);
                quote!(#k::avg_pool2d_backward(exec, batch, &#geom, #gy, #out))
            }
            Op::BatchNormStats { eps } => {
                let (c, s) = self.channels(arg(0));
                let (eps, x, mean, var) = (float_lit(eps.get()), &a[0], &a[1], &a[2]);
                quote!(#k::batch_norm_stats(exec, mode, batch, #c, #s, #eps, #x, #mean, #var, #out))
            }
            Op::BatchNorm => {
                let (c, s) = self.channels(arg(0));
                let (x, stats, gamma, beta) = (&a[0], &a[1], &a[2], &a[3]);
                quote!(#k::batch_norm(exec, #c, #s, #x, #stats, #gamma, #beta, #out))
            }
            Op::BatchNormGrad => {
                let (c, s) = self.channels(arg(1));
                let (g, x, stats, gamma) = (&a[0], &a[1], &a[2], &a[3]);
                quote!(#k::batch_norm_backward(exec, batch, #c, #s, #g, #x, #stats, #gamma, #out))
            }
            Op::BatchNormScaleGrad => {
                let (c, s) = self.channels(arg(1));
                let (g, x, stats) = (&a[0], &a[1], &a[2]);
                quote!(#k::batch_norm_scale_grad(exec, #c, #s, #g, #x, #stats, #out))
            }
            Op::ChannelSum => {
                let (c, s) = self.channels(arg(0));
                let g = &a[0];
                quote!(#k::channel_sum(exec, #c, #s, #g, #out))
            }
            Op::AttentionProbs { .. } | Op::AttentionMix { .. } | Op::AttentionGrad { .. } => {
                let (steps, heads, head) = attention_sizes(g, node);
                let (t, h, s) = (usize_lit(steps), usize_lit(heads), usize_lit(head));
                match node.op {
                    Op::AttentionProbs { causal, scale, .. } => {
                        let (qkv, scale) = (&a[0], float_lit(scale.get()));
                        quote!(#k::attention_probs(exec, batch, #t, #h, #s, #causal, #scale, #qkv, #out, scratch))
                    }
                    Op::AttentionGrad { scale, .. } => {
                        let (p, qkv, gy, scale) = (&a[0], &a[1], &a[2], float_lit(scale.get()));
                        let mask = match a.get(3) {
                            Some(m) => quote!(Some(#m)),
                            None => quote!(None),
                        };
                        let causal = g.causal_weights(arg(0));
                        quote!(#k::attention_backward(exec, batch, #t, #h, #s, #causal, #scale, #p, #qkv, #gy, #mask, #out, scratch))
                    }
                    _ => {
                        let (p, qkv) = (&a[0], &a[1]);
                        let causal = g.causal_weights(arg(0));
                        quote!(#k::attention_mix(exec, batch, #t, #h, #s, #causal, #p, #qkv, #out, scratch))
                    }
                }
            }
            Op::AttentionStep { scale, .. } => {
                let (steps, heads, head) = attention_sizes(g, node);
                let (t, h, s) = (usize_lit(steps), usize_lit(heads), usize_lit(head));
                let (qkv, cache, scale) = (&a[0], &a[1], float_lit(scale.get()));
                quote!(#k::attention_step(exec, batch, #t, #h, #s, #scale, position, #qkv, #cache, #out, scratch))
            }
            Op::CacheWrite => {
                let dims = g.ty(arg(1)).shape.sample_dims();
                let (steps, model) = (usize_lit(dims[0]), usize_lit(dims[1] / 2));
                let qkv = &a[0];
                quote!(#k::kv_cache_write(exec, batch, #steps, #model, position, #qkv, #out))
            }
            Op::PositionRow { axis } => {
                let dims = &g.ty(arg(0)).shape.0;
                let (outer, steps, inner) = (
                    usize_lit(fixed_size(&dims[..axis])),
                    usize_lit(fixed_size(&dims[axis..=axis])),
                    usize_lit(fixed_size(&dims[axis + 1..])),
                );
                let x = &a[0];
                quote!(#k::select_position(exec, #outer, #steps, #inner, position, #x, #out))
            }
            Op::LayerNorm { eps, bias } => {
                let (rows, n, eps) = (self.rows(arg(0)), self.width(arg(0)), float_lit(eps.get()));
                let (x, gamma) = (&a[0], &a[1]);
                let beta = if bias {
                    let b = &a[2];
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                quote!(#k::layer_norm(exec, #rows, #n, #eps, #x, #gamma, #beta, #out))
            }
            Op::LayerNormGrad { eps } => {
                let (rows, n, eps) = (self.rows(arg(1)), self.width(arg(1)), float_lit(eps.get()));
                let (g, x, gamma) = (&a[0], &a[1], &a[2]);
                quote!(#k::layer_norm_backward(exec, #rows, #n, #eps, #g, #x, #gamma, #out))
            }
            Op::LayerNormScaleGrad { eps } => {
                let (rows, n, eps) = (self.rows(arg(1)), self.width(arg(1)), float_lit(eps.get()));
                let (g, x) = (&a[0], &a[1]);
                quote!(#k::layer_norm_scale_grad(exec, #rows, #n, #eps, #g, #x, #out))
            }
            Op::LstmScan { hidden, .. }
            | Op::LstmScanGrad { hidden, .. }
            | Op::RnnScan { hidden, .. }
            | Op::RnnScanGrad { hidden, .. }
            | Op::GruScan { hidden, .. }
            | Op::GruScanGrad { hidden, .. }
            | Op::ScanWeightGrad { hidden, .. } => {
                // The steps and planes come from the record, [B, planes, T, H].
                let record = match node.op {
                    Op::LstmScan { .. } | Op::RnnScan { .. } | Op::GruScan { .. } => &node.ty,
                    Op::ScanWeightGrad { .. } => g.ty(arg(1)),
                    _ => g.ty(arg(0)),
                };
                let dims = record.shape.sample_dims();
                let (planes, steps) = (
                    dims.first().copied().unwrap_or(0),
                    dims.get(1).copied().unwrap_or(0),
                );
                let (planes, steps, h) = (usize_lit(planes), usize_lit(steps), usize_lit(hidden));
                // A scan with an initial state reads it last.
                let init = |i: usize| match a.get(i) {
                    Some(init) => quote!(Some(#init)),
                    None => quote!(None),
                };
                let start = |start: ScanStart| match (start, a.get(3)) {
                    (ScanStart::Learned, Some(s)) => quote!(#k::Start::Learned(#s)),
                    (ScanStart::Given, Some(s)) => quote!(#k::Start::Given(#s)),
                    _ => quote!(#k::Start::Zero),
                };
                match node.op {
                    Op::LstmScan { .. } => {
                        let (z, w, init) = (&a[0], &a[1], init(2));
                        quote!(#k::lstm_scan(exec, batch, #steps, #h, #z, #w, #init, #out, scratch))
                    }
                    Op::LstmScanGrad { start: s, .. } => {
                        let (r, dr, w, s) = (&a[0], &a[1], &a[2], start(s));
                        quote!(#k::lstm_scan_backward(exec, batch, #steps, #h, #r, #dr, #w, #s, #out, scratch))
                    }
                    Op::RnnScan { relu, .. } => {
                        let (z, w, init) = (&a[0], &a[1], init(2));
                        quote!(#k::rnn_scan(exec, batch, #steps, #h, #relu, #z, #w, #init, #out, scratch))
                    }
                    Op::RnnScanGrad { relu, start: s, .. } => {
                        let (r, dr, w, s) = (&a[0], &a[1], &a[2], start(s));
                        quote!(#k::rnn_scan_backward(exec, batch, #steps, #h, #relu, #r, #dr, #w, #s, #out, scratch))
                    }
                    Op::GruScan { .. } => {
                        let (x, w, b, init) = (&a[0], &a[1], &a[2], init(3));
                        quote!(#k::gru_scan(exec, batch, #steps, #h, #x, #w, #b, #init, #out, scratch))
                    }
                    Op::GruScanGrad { start: s, .. } => {
                        let (r, dr, w, s) = (&a[0], &a[1], &a[2], start(s));
                        quote!(#k::gru_scan_backward(exec, batch, #steps, #h, #r, #dr, #w, #s, #out, scratch))
                    }
                    _ => {
                        let (dz, r, init) = (&a[0], &a[1], init(2));
                        quote!(#k::recurrent_weight_grad(exec, batch, #steps, #h, #planes, #dz, #r, #init, #out))
                    }
                }
            }
            Op::CarryOut { planes } => {
                let dims = g.ty(arg(0)).shape.sample_dims();
                let [all, steps, hidden] = [0, 1, 2].map(|i| usize_lit(dims[i]));
                let (record, keep) = (&a[0], usize_lit(planes));
                quote!(#k::carry_out(batch, #all, #steps, #hidden, #keep, #record, #out))
            }
            Op::FoldWeight { eps } => {
                let (eps, w, gamma, var) = (float_lit(eps.get()), &a[0], &a[1], &a[2]);
                quote!(#k::fold_batch_norm_weight(exec, #eps, #w, #gamma, #var, #out))
            }
            Op::FoldBias { eps, bias } => {
                let eps = float_lit(eps.get());
                let (gamma, beta, mean, var) = (&a[0], &a[1], &a[2], &a[3]);
                let b = if bias {
                    let b = &a[4];
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                quote!(#k::fold_batch_norm_bias(exec, #eps, #gamma, #beta, #mean, #var, #b, #out))
            }
            Op::RunningMean { momentum } => {
                let (m, stats) = (float_lit(momentum.get()), &a[0]);
                quote!(#k::running_mean(exec, #m, #stats, #out))
            }
            Op::RunningVar {
                momentum,
                per_channel,
            } => {
                let (m, stats) = (float_lit(momentum.get()), &a[0]);
                let n = self.count(&[Dim::Batch, Dim::Fixed(per_channel)]);
                quote!(#k::running_var(exec, #m, #n, #stats, #out))
            }
            Op::SumAxis { axis, scale } | Op::Expand { axis, scale, .. } => {
                // Both walk the full shape, which is the argument's for a sum and the
                // result's for its broadcast back.
                let full = if matches!(node.op, Op::SumAxis { .. }) {
                    &g.ty(arg(0)).shape.0
                } else {
                    &node.ty.shape.0
                };
                let (outer, size) = (self.count(&full[..axis]), self.count(&full[axis..=axis]));
                let inner = self.count(&full[axis + 1..]);
                let f = ident(if matches!(node.op, Op::SumAxis { .. }) {
                    "sum_axis"
                } else {
                    "expand_axis"
                });
                let (scale, x) = (self.elem_lit(scale.get()), &a[0]);
                quote!(#k::#f(exec, #outer, #size, #inner, #scale, #x, #out))
            }
            Op::Permute(perm) => {
                let dims = g.ty(arg(0)).shape.0.iter().map(|d| self.count(&[*d]));
                let perm = perm.axes().into_iter().map(usize_lit);
                let x = &a[0];
                quote!(#k::permute(exec, &[#(#dims),*], &[#(#perm),*], #x, #out))
            }
            Op::BatchMatMul {
                transpose_a,
                transpose_b,
            } => {
                let dims = &node.ty.shape.0;
                let r = dims.len();
                let (count, m, n) = (
                    self.count(&dims[..r - 2]),
                    self.count(&dims[r - 2..r - 1]),
                    self.count(&dims[r - 1..]),
                );
                let ad = &g.ty(arg(0)).shape.0;
                let kd = self.count(if transpose_a {
                    &ad[r - 2..r - 1]
                } else {
                    &ad[r - 1..]
                });
                let (x, y) = (&a[0], &a[1]);
                quote!(#k::batch_matmul(exec, #count, #m, #kd, #n, #transpose_a, #transpose_b, #x, #y, #out))
            }
            Op::Reshape => quote!(),
            Op::DropoutMask(rate) => {
                let rate = float_lit(rate.get());
                // Several masks reborrow the random state in turn; a single one takes it.
                let rng = if self.p.dropout_masks() > 1 {
                    quote!(rng.as_deref_mut())
                } else {
                    quote!(rng)
                };
                quote!(#k::dropout_mask(exec, mode, #rng, #rate, #out))
            }
            Op::SumRows { keep } => {
                let (rows, n) = self.leading_rows(arg(0), keep);
                let x = &a[0];
                quote!(#k::bias_backward(exec, #rows, #n, #x, #out))
            }
            Op::ActivationGrad(act) => {
                let (act, v, gy) = (act_tokens(act), &a[0], &a[1]);
                quote!(#k::act_backward(exec, #act, #v, #gy, #out))
            }
            Op::SoftmaxGrad | Op::LogSoftmaxGrad => {
                let f = ident(if node.op == Op::SoftmaxGrad {
                    "softmax_backward"
                } else {
                    "log_softmax_backward"
                });
                let (rows, n, y, gy) = (self.rows(arg(0)), self.width(arg(0)), &a[0], &a[1]);
                quote!(#k::#f(exec, #rows, #n, #y, #gy, #out))
            }
            Op::Loss(spec) | Op::LossGrad(spec) => {
                let backward = matches!(node.op, Op::LossGrad(_));
                // The runtime names each loss kernel after the loss kind.
                let f = if backward {
                    format_ident!("{}_backward", spec.kind.name())
                } else {
                    ident(spec.kind.name())
                };
                self.loss_call(node, quote!(#k::#f), spec, a, backward.then_some(out))
            }
            Op::SoftmaxLossGrad(spec) => {
                let f = if spec.kind.sparse() {
                    quote!(#k::softmax_sparse_cross_entropy_backward)
                } else {
                    quote!(#k::softmax_categorical_cross_entropy_backward)
                };
                self.loss_call(node, f, spec, a, Some(out))
            }
            Op::SigmoidLossGrad(spec) => self.loss_call(
                node,
                quote!(#k::sigmoid_binary_cross_entropy_backward),
                spec,
                a,
                Some(out),
            ),
            Op::Input(_)
            | Op::Target(_)
            | Op::Param(_)
            | Op::OutputGrad(_)
            | Op::State(_)
            | Op::Carried(_) => quote!(),
        }
    }

    /// A loss kernel call: `(batch, classes,)? prediction, target, (delta | smoothing,)? scale
    /// (, out)?`, where `scale` turns the kernel's sum into the reduced, weighted term.
    fn loss_call(
        &self,
        node: &Node,
        f: TokenStream,
        spec: LossSpec,
        a: &[TokenStream],
        out: Option<TokenStream>,
    ) -> TokenStream {
        let (p, t) = (&a[0], &a[1]);
        let pred = node.args[0];
        let weight = float_lit(spec.weight.get());
        let elem = &self.elem;
        // The mean is over rows for a class loss (one term per row of the last axis, the
        // batch and every position included) and over every element otherwise.
        let dims = &self.p.graph.ty(pred).shape.0;
        let terms = if spec.kind.per_row() {
            &dims[..dims.len() - 1]
        } else {
            &dims[..]
        };
        let terms = self.count_as(terms, quote!(f64));
        // With an ignored label the mean is over the samples that are not ignored, counted
        // each call (none kept leaves the empty sum, 0, rather than PyTorch's 0/0).
        let ignore = spec.ignore.map(|i| {
            let i = usize_lit(i as usize);
            quote!(Some(#i))
        });
        let scale = match (spec.reduction, &ignore) {
            (Reduction::Sum, _) => quote!(#weight),
            (Reduction::Mean, None) => quote!((#weight / #terms) as #elem),
            (Reduction::Mean, Some(i)) => {
                quote!((#weight / rt::kernels::kept_labels(#t, #i).max(1) as f64) as #elem)
            }
        };
        let ignore = spec.kind.sparse().then(|| match ignore {
            Some(i) => quote!(#i,),
            None => quote!(None,),
        });
        let rows = spec.kind.per_row().then(|| {
            let (rows, n) = (self.rows(pred), self.width(pred));
            quote!(#rows, #n,)
        });
        let option = match spec.kind {
            LossKind::Huber => {
                let d = float_lit(spec.delta.get());
                Some(quote!(#d,))
            }
            LossKind::MeanSquaredError
            | LossKind::MeanAbsoluteError
            | LossKind::NegativeLogLikelihood => None,
            _ => {
                let s = float_lit(spec.smoothing.get());
                Some(quote!(#s,))
            }
        };
        let out = out.map(|o| quote!(, #o));
        quote!(#f(exec, #rows #p, #t, #ignore #option #scale #out))
    }

    /// A formula for the comment above a node, in the model's own names.
    fn describe(&self, id: ValueId, node: &Node) -> String {
        let g = &self.p.graph;
        let name = |v: ValueId| g.node(v).name.clone();
        let arg = |i: usize| name(node.args[i]);
        // A scan that starts from a given state names it.
        let start = |i: usize| match node.args.get(i) {
            Some(v) => format!(" from the state {}", name(*v)),
            None => String::new(),
        };
        // A backward scan that also returns its initial state's gradient says where.
        let learned = |s: ScanStart| match s {
            ScanStart::Learned => ", then d of that state after the steps",
            _ => "",
        };
        let me = name(id);
        let shape = &node.ty.shape;
        match node.op {
            Op::Dense { act, bias } => {
                let sum = if bias {
                    format!("{} · {}ᵀ + {}", arg(0), arg(1), arg(2))
                } else {
                    format!("{} · {}ᵀ", arg(0), arg(1))
                };
                match act {
                    Act::Identity => format!("{me} = {sum}    {shape}"),
                    act => format!("{me} = {}({sum})    {shape}", act.name()),
                }
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let t = |b: bool| if b { "ᵀ" } else { "" };
                format!(
                    "{me} = {}{} · {}{}    {shape}",
                    arg(0),
                    t(transpose_a),
                    arg(1),
                    t(transpose_b)
                )
            }
            Op::SumRows { .. } => format!("{me} = Σ over the rows of {}", arg(0)),
            Op::ActivationGrad(act) => {
                let place = if self.storage[id.index()] == self.storage[node.args[1].index()] {
                    format!(", in place of {}", arg(1))
                } else {
                    String::new()
                };
                format!(
                    "{me} = {} ⊙ {}'(·), written through {}{place}",
                    arg(1),
                    act.name(),
                    arg(0)
                )
            }
            Op::SoftmaxGrad => format!("{me} = {0} ⊙ ({1} − Σ {1} ⊙ {0}) per row", arg(0), arg(1)),
            Op::Loss(spec) => {
                let reduced = match (spec.reduction, spec.kind.per_row()) {
                    (Reduction::Sum, _) => "summed",
                    (Reduction::Mean, true) => "averaged over the batch",
                    (Reduction::Mean, false) => "averaged over all values",
                };
                let weight = match spec.weight.get() {
                    1.0 => String::new(),
                    w => format!("{w} · "),
                };
                format!("{me} = {weight}{}({}, {}), {reduced}", spec.kind.name(), arg(0), arg(1))
            }
            Op::LossGrad(spec) => format!(
                "{me} = d {}({}, {}) / d {}",
                spec.kind.name(),
                arg(0),
                arg(1),
                arg(0)
            ),
            Op::SoftmaxLossGrad(spec) => format!(
                "{me} = (softmax − {}) scaled: the {} gradient with respect to the logits, from the probabilities {}",
                if spec.kind.sparse() { format!("onehot({})", arg(1)) } else { arg(1) },
                spec.kind.name(),
                arg(0)
            ),
            Op::SigmoidLossGrad(spec) => format!(
                "{me} = ({} − {}) scaled: the {} gradient with respect to the logits",
                arg(0),
                arg(1),
                spec.kind.name()
            ),
            Op::DropoutMask(rate) => format!(
                "{me}: each value 0 with probability {rate}, else 1/(1 − {rate}); all ones in inference"
            ),
            Op::Concat { axis } => {
                let args: Vec<String> = (0..node.args.len()).map(arg).collect();
                format!("{me} = [{}] joined along axis {axis}    {shape}", args.join(", "))
            }
            Op::Reverse { axis } => {
                format!("{me} = {} in reverse order along axis {axis}    {shape}", arg(0))
            }
            Op::Slice { axis, start, len } => {
                format!("{me} = {}[{start}..{}] along axis {axis}    {shape}", arg(0), start + len)
            }
            Op::Pad { axis, start, total } => format!(
                "{me} = {} placed at {start} along axis {axis} in zeros of size {total}    {shape}",
                arg(0)
            ),
            Op::Reshape => format!("{me} = {} viewed as {shape}, sharing its storage", arg(0)),
            Op::SumAxis { axis, scale } => match scale.get() {
                1.0 => format!("{me} = Σ over axis {axis} of {}    {shape}", arg(0)),
                s => format!("{me} = {s} · Σ over axis {axis} of {}    {shape}", arg(0)),
            },
            Op::Expand { axis, size, scale } => format!(
                "{me} = {scale} · {} repeated {size} times along a new axis {axis}    {shape}",
                arg(0)
            ),
            Op::Permute(perm) => format!("{me} = {} with its axes in the order {perm:?}    {shape}", arg(0)),
            Op::BatchMatMul {
                transpose_a,
                transpose_b,
            } => {
                let t = |b: bool| if b { "ᵀ" } else { "" };
                format!(
                    "{me} = {}{} · {}{} for each matrix of the last two axes    {shape}",
                    arg(0),
                    t(transpose_a),
                    arg(1),
                    t(transpose_b)
                )
            }
            Op::BatchNormStats { eps } => format!(
                "{me} = per channel of {}: mean, 1/√(var + {eps}), var; the batch's in training (biased variance), {} and {} in inference",
                arg(0),
                arg(1),
                arg(2)
            ),
            Op::BatchNorm => format!(
                "{me} = {}·({} − mean)/√(var + eps) + {}, per channel with the statistics {}    {shape}",
                arg(2),
                arg(0),
                arg(3),
                arg(1)
            ),
            Op::BatchNormGrad => format!(
                "{me} = {}·(g − mean(g) − x̂·mean(g·x̂))/√(var + eps) with g = {}, x̂ the normalised {}: through the batch statistics too",
                arg(3),
                arg(0),
                arg(1)
            ),
            Op::BatchNormScaleGrad => format!(
                "{me} = Σ {} · x̂ per channel, x̂ the normalised {}",
                arg(0),
                arg(1)
            ),
            Op::ChannelSum => format!("{me} = Σ {} per channel", arg(0)),
            Op::AttentionProbs { heads, causal, scale } => format!(
                "{me} = softmax({scale} · q·kᵀ) over the {}positions, per head ({heads}), from the queries and keys in {}    {shape}",
                if causal { "earlier and current " } else { "" },
                arg(0)
            ),
            Op::PositionRow { axis } => format!(
                "{me} = {} at the current position along axis {axis}    {shape}",
                arg(0)
            ),
            Op::CacheWrite => format!(
                "{me} ← the key and value of {} written at the current position",
                arg(0)
            ),
            Op::AttentionStep { heads, .. } => format!(
                "{me} = the current position's attention ({heads} heads) over the keys and values {} of the positions so far    {shape}",
                arg(1)
            ),
            Op::AttentionMix { heads } => format!(
                "{me} = {} · v per head ({heads}), the heads side by side, the values from {}    {shape}",
                arg(0),
                arg(1)
            ),
            Op::AttentionGrad { .. } => format!(
                "{me} = d queries, keys and values of {} through the weights {} and their softmax, from {}    {shape}",
                arg(1),
                arg(0),
                arg(2)
            ),
            Op::LayerNorm { eps, bias } => format!(
                "{me} = {}·({} − mean)/√(var + {eps}){} over each row's last axis    {shape}",
                arg(1),
                arg(0),
                if bias { format!(" + {}", arg(2)) } else { String::new() }
            ),
            Op::LayerNormGrad { .. } => format!(
                "{me} = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/√(var + eps) per row with ĝ = {} ⊙ {}, x̂ the normalised {}: through each row's statistics too",
                arg(0),
                arg(2),
                arg(1)
            ),
            Op::LayerNormScaleGrad { .. } => format!(
                "{me} = Σ over the rows of {} · x̂, x̂ the normalised {}",
                arg(0),
                arg(1)
            ),
            Op::LstmScan { .. } => format!(
                "{me} = the LSTM over the steps of {}{}: gates i, f, g, o = σ, σ, tanh, σ of {} + h·{}ᵀ, c = f·c + i·g, h = o·tanh(c); the planes of h, c and the gates    {shape}",
                arg(0),
                start(2),
                arg(0),
                arg(1)
            ),
            Op::LstmScanGrad { start: s, .. } => format!(
                "{me} = backpropagation through time of the LSTM record {} from the gradients {}{}{}    {shape}",
                arg(0),
                arg(1),
                start(3),
                learned(s)
            ),
            Op::RnnScan { relu, .. } => format!(
                "{me} = the RNN over the steps of {}{}: h = {}({} + h·{}ᵀ)    {shape}",
                arg(0),
                start(2),
                if relu { "relu" } else { "tanh" },
                arg(0),
                arg(1)
            ),
            Op::RnnScanGrad { start: s, .. } => format!(
                "{me} = backpropagation through time of the RNN states {} from the gradients {}{}{}    {shape}",
                arg(0),
                arg(1),
                start(3),
                learned(s)
            ),
            Op::GruScan { .. } => format!(
                "{me} = the GRU over the steps of {}{}: gates r, z = σ of {} + h·{}ᵀ + {}, n = tanh(x_n + r·(h·W_hnᵀ + b_hn)), h = (1 − z)·n + z·h; the planes of h, r, z, n and h·W_hnᵀ + b_hn    {shape}",
                arg(0),
                start(3),
                arg(0),
                arg(1),
                arg(2)
            ),
            Op::GruScanGrad { start: s, .. } => format!(
                "{me} = backpropagation through time of the GRU record {} from the gradients {}{}: the steps of d input projection, then of d hidden product{}    {shape}",
                arg(0),
                arg(1),
                start(3),
                learned(s)
            ),
            Op::CarryOut { .. } => format!(
                "{} ← the state after the step of {}, carried to the next call    {shape}",
                arg(1),
                arg(0)
            ),
            Op::ScanWeightGrad { init, .. } => format!(
                "{me} = Σ over samples and steps t ≥ {} of {}_tᵀ · h_(t−1), h from the record {}{}",
                if init { 0 } else { 1 },
                arg(0),
                arg(1),
                start(2)
            ),
            Op::FoldWeight { eps } => format!(
                "{me} = {} · {}/√({} + {eps}) per output channel: batch norm folded into the weight",
                arg(0),
                arg(1),
                arg(2)
            ),
            Op::FoldBias { eps, bias } => format!(
                "{me} = ({} − {})·{}/√({} + {eps}) + {} per output channel: batch norm folded into the bias",
                if bias { arg(4) } else { "0".to_string() },
                arg(2),
                arg(0),
                arg(3),
                arg(1)
            ),
            Op::RunningMean { momentum } => format!(
                "{} ← (1 − {momentum})·{} + {momentum}·batch mean, from {}",
                arg(1),
                arg(1),
                arg(0)
            ),
            Op::RunningVar { momentum, .. } => format!(
                "{} ← (1 − {momentum})·{} + {momentum}·batch variance·n/(n − 1), from {}",
                arg(1),
                arg(1),
                arg(0)
            ),
            Op::Embedding => format!("{me} = rows of {} picked by the ids {}    {shape}", arg(1), arg(0)),
            Op::SelectRow => format!("{me} = each sample's row of {} at its index {}    {shape}", arg(0), arg(1)),
            Op::SelectRowGrad { .. } => format!("{me} = {} at each sample's index {}, zeros elsewhere    {shape}", arg(0), arg(1)),
            Op::EmbeddingGrad => format!(
                "{me} = rows of {} added up by id {}, zero for ids not seen",
                arg(1),
                arg(0)
            ),
            op => {
                let args: Vec<String> = (0..node.args.len()).map(arg).collect();
                format!("{me} = {op}({})    {shape}", args.join(", "))
            }
        }
    }
}

/// The positions, heads and values per head of an attention node, from its packed projections
/// `[B, T, 3·heads·head]` (the argument of the weights, the second of the others).
pub fn attention_sizes(g: &crate::ir::Graph, node: &Node) -> (usize, usize, usize) {
    let (heads, qkv) = match node.op {
        Op::AttentionProbs { heads, .. } => (heads, node.args[0]),
        Op::AttentionMix { heads } | Op::AttentionGrad { heads, .. } => (heads, node.args[1]),
        // One position's projections; the positions are the cache's, `[B, T, 2D]`.
        Op::AttentionStep { heads, .. } => {
            let dims = g.ty(node.args[1]).shape.sample_dims();
            let steps = dims.first().copied().unwrap_or(0);
            let width = dims.get(1).copied().unwrap_or(0);
            return (steps, heads, width / (2 * heads.max(1)));
        }
        _ => (1, node.args[0]),
    };
    let dims = g.ty(qkv).shape.sample_dims();
    let (steps, width) = (
        dims.first().copied().unwrap_or(0),
        dims.get(1).copied().unwrap_or(0),
    );
    (steps, heads, width / (3 * heads.max(1)))
}

/// The columns and depth of a matrix product's packed operands, each `None` where it grows with
/// the batch (the runtime then sizes the scratch for its largest block).
pub fn gemm_sizes(g: &crate::ir::Graph, node: &Node) -> (Option<usize>, Option<usize>) {
    let fixed = |dims: &[Dim]| (!dims.contains(&Dim::Batch)).then(|| fixed_size(dims));
    match node.op {
        Op::Dense { .. } => {
            let w = &g.ty(node.args[1]).shape.0;
            (fixed(&w[..1]), fixed(&w[1..]))
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let split = |v: ValueId| {
                let dims = &g.ty(v).shape.0;
                let (lead, last) = dims.split_at(dims.len().saturating_sub(1));
                (fixed(lead), fixed(last))
            };
            let ((a_lead, a_last), (b_lead, b_last)) = (split(node.args[0]), split(node.args[1]));
            let k = if transpose_a { a_lead } else { a_last };
            let n = if transpose_b { b_lead } else { b_last };
            // The depth is both operands'; a fixed one bounds it.
            let k = k.or(if transpose_b { b_last } else { b_lead });
            (n, k)
        }
        _ => (None, None),
    }
}

/// The range of a carried state in the workspace's buffer: its rows for this batch within the
/// region of `per_sample` values per sample of capacity that starts at `offset * capacity`.
fn carry_range(offset: usize, per_sample: usize) -> TokenStream {
    let per_sample = usize_lit(per_sample);
    if offset == 0 {
        return quote!(..#per_sample * batch);
    }
    let offset = usize_lit(offset);
    quote!(#offset * capacity..#offset * capacity + #per_sample * batch)
}

/// The runtime's `Act` variant, named through the generated module's `rt` alias.
pub fn act_tokens(act: Act) -> TokenStream {
    let v = |name: &str| ident(name);
    match act {
        Act::Identity => quote!(rt::Act::Identity),
        Act::Relu => quote!(rt::Act::Relu),
        Act::Sigmoid => quote!(rt::Act::Sigmoid),
        Act::Tanh => quote!(rt::Act::Tanh),
        Act::Step { .. } => quote!(rt::Act::Step),
        Act::Gelu => quote!(rt::Act::Gelu),
        Act::GeluTanh => quote!(rt::Act::GeluTanh),
        Act::Softplus => quote!(rt::Act::Softplus),
        Act::LeakyRelu(a) | Act::Elu(a) => {
            let (name, a) = (
                v(if matches!(act, Act::Elu(_)) {
                    "Elu"
                } else {
                    "LeakyRelu"
                }),
                float_lit(a.get()),
            );
            quote!(rt::Act::#name(#a))
        }
    }
}

/// A convolution's geometry as the runtime's struct literal.
pub(super) fn conv_tokens(g: &ConvGeom) -> TokenStream {
    let [c, h, w, o, groups] =
        [g.in_channels, g.height, g.width, g.out_channels, g.groups].map(usize_lit);
    let pair = |p: [usize; 2]| {
        let [a, b] = p.map(usize_lit);
        quote!([#a, #b])
    };
    let (kernel, stride, dilation) = (pair(g.kernel), pair(g.stride), pair(g.dilation));
    let [t, bo, l, r] = g.padding.map(usize_lit);
    quote!(rt::kernels::Conv2d {
        in_channels: #c,
        height: #h,
        width: #w,
        out_channels: #o,
        kernel: #kernel,
        stride: #stride,
        padding: [#t, #bo, #l, #r],
        dilation: #dilation,
        groups: #groups,
    })
}

/// A pooling's geometry as the runtime's struct literal.
pub(super) fn pool_tokens(g: &PoolGeom) -> TokenStream {
    let [c, h, w] = [g.channels, g.height, g.width].map(usize_lit);
    let [kh, kw] = g.kernel.map(usize_lit);
    let [sh, sw] = g.stride.map(usize_lit);
    let [ph, pw] = g.padding.map(usize_lit);
    quote!(rt::kernels::Pool2d {
        channels: #c,
        height: #h,
        width: #w,
        kernel: [#kh, #kw],
        stride: [#sh, #sw],
        padding: [#ph, #pw],
    })
}
