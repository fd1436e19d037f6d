//! One kernel call per IR node: how each op runs, which arena slots it reads and writes, and
//! the one-line comment that explains it in the generated code.

use super::names::Names;
use crate::ir::{Act, Dim, LossKind, LossSpec, Node, Op, Program, Reduction, Storage, ValueId};
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
    fn dim(&self, d: Dim) -> TokenStream {
        match d {
            Dim::Batch => quote!(batch),
            Dim::Fixed(n) => {
                let n = usize_lit(n);
                quote!(#n)
            }
        }
    }

    fn stride(&self, d: Dim) -> TokenStream {
        match d {
            Dim::Batch => quote!(batch as isize),
            Dim::Fixed(n) => {
                let n = usize_lit(n);
                quote!(#n)
            }
        }
    }

    /// Elements per sample of a batched value (its trailing dimensions).
    fn per_sample(&self, v: ValueId) -> Literal {
        usize_lit(self.p.graph.ty(v).shape.elems_per_sample())
    }

    fn in_arena(&self, v: ValueId) -> bool {
        matches!(
            self.storage[v.index()],
            Storage::Batched { .. } | Storage::Fixed { .. }
        )
    }

    /// The expression that reads `v` inside the node's block.
    fn read(&self, v: ValueId) -> TokenStream {
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
        // A value planned into its operand's slot is computed by the in-place kernel.
        let in_place = node
            .op
            .in_place_operand()
            .map(|i| node.args[i])
            .filter(|a| self.in_arena(id) && self.storage[a.index()] == self.storage[id.index()]);
        let mut reads: Vec<ValueId> = Vec::new();
        for a in &node.args {
            if self.in_arena(*a) && !reads.contains(a) && Some(*a) != in_place {
                reads.push(*a);
            }
        }
        let read_locals: Vec<Ident> = reads.iter().map(|v| ident(self.names.local(*v))).collect();
        let read_slots: Vec<Ident> = reads.iter().map(|v| ident(self.names.slot(*v))).collect();
        let args: Vec<TokenStream> = node.args.iter().map(|a| self.read(*a)).collect();
        let note = self.comments.marker(self.describe(id, node));
        let local = ident(self.names.local(id));
        match self.storage[id.index()] {
            Storage::Batched { .. } | Storage::Fixed { .. } => {
                let slot = ident(self.names.slot(id));
                let call = match (in_place, node.op) {
                    (Some(_), Op::ActivationGrad(act)) => {
                        let (act, y) = (act_tokens(act), &args[0]);
                        quote!(rt::kernels::act_backward_inplace(#act, #y, #local))
                    }
                    _ => self.call(node, &args, quote!(#local)),
                };
                let bind = if reads.is_empty() {
                    quote!(let #local = arena.get_mut(batch, #slot);)
                } else {
                    quote!(let ([#(#read_locals),*], #local) = arena.split(batch, #slot, [#(#read_slots),*]);)
                };
                quote! { #note { #bind #call; } }
            }
            Storage::Grads => {
                let param = self
                    .p
                    .sections()
                    .iter()
                    .find_map(|(_, g)| g.params.iter().position(|v| *v == Some(id)))
                    .unwrap_or(0);
                let range = ident(&self.names.param[param]);
                let call = self.call(node, &args, quote!(&mut grads[#range]));
                let bind = (!reads.is_empty()).then(
                    || quote!(let [#(#read_locals),*] = arena.read(batch, [#(#read_slots),*]);),
                );
                quote! { #note { #bind #call; } }
            }
            Storage::InputGrad(i) => {
                let buffer = ident(&input_grad_field(&self.p.inputs[i].name));
                let call = self.call(node, &args, quote!(&mut #buffer[..]));
                let bind = (!reads.is_empty()).then(
                    || quote!(let [#(#read_locals),*] = arena.read(batch, [#(#read_slots),*]);),
                );
                quote! { #note { #bind #call; } }
            }
            Storage::Scalar => {
                let value = if node.op == Op::Add {
                    let (a, b) = (&args[0], &args[1]);
                    quote!(#a + #b)
                } else {
                    let call = self.call(node, &args, quote!());
                    let bind = (!reads.is_empty()).then(
                        || quote!(let [#(#read_locals),*] = arena.read(batch, [#(#read_slots),*]);),
                    );
                    quote!({ #bind #call })
                };
                if tail {
                    quote! { #note #value }
                } else {
                    quote! { #note let #local = #value; }
                }
            }
            Storage::Caller | Storage::Params => quote!(),
        }
    }

    fn call(&self, node: &Node, a: &[TokenStream], out: TokenStream) -> TokenStream {
        let k = quote!(rt::kernels);
        let g = &self.p.graph;
        let n0 = || self.per_sample(node.args[0]);
        match node.op {
            Op::Dense { act, bias } => {
                let w = &g.ty(node.args[1]).shape.0;
                let (outputs, inputs) = (self.dim(w[0]), self.dim(w[1]));
                let (x, wt) = (&a[0], &a[1]);
                let b = if bias {
                    let b = &a[2];
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                let act = act_tokens(act);
                quote!(#k::dense_forward(batch, #inputs, #outputs, #x, #wt, #b, #act, #out))
            }
            // The two products of a dense layer's backward pass have kernels of their own,
            // which need no packing buffers (so a training step allocates nothing).
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            } if self.p.param_of(node.args[1]).is_some() => {
                let w = &g.ty(node.args[1]).shape.0;
                let (outputs, inputs, gz, wt) = (self.dim(w[0]), self.dim(w[1]), &a[0], &a[1]);
                quote!(#k::dense_backward_input(batch, #inputs, #outputs, #gz, #wt, #out))
            }
            Op::MatMul {
                transpose_a: true,
                transpose_b: false,
            } if node.ty.shape.0.iter().all(|d| *d != Dim::Batch)
                && g.ty(node.args[0]).shape.0[0] == Dim::Batch =>
            {
                let c = &node.ty.shape.0;
                let (outputs, inputs, gz, x) = (self.dim(c[0]), self.dim(c[1]), &a[0], &a[1]);
                quote!(#k::dense_backward_weight(batch, #inputs, #outputs, #gz, #x, #out))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let (sa, sb) = (&g.ty(node.args[0]).shape.0, &g.ty(node.args[1]).shape.0);
                // Row-major [r, c] has strides (c, 1); reading it transposed swaps them.
                let (m, k_dim, rsa, csa) = if transpose_a {
                    (sa[1], sa[0], quote!(1), self.stride(sa[1]))
                } else {
                    (sa[0], sa[1], self.stride(sa[1]), quote!(1))
                };
                let (n, rsb, csb) = if transpose_b {
                    (sb[0], quote!(1), self.stride(sb[1]))
                } else {
                    (sb[1], self.stride(sb[1]), quote!(1))
                };
                let (md, kd, nd, rsc) = (self.dim(m), self.dim(k_dim), self.dim(n), self.stride(n));
                let (x, y) = (&a[0], &a[1]);
                quote!(#k::gemm(#md, #kd, #nd, 1.0, #x, #rsa, #csa, #y, #rsb, #csb, 0.0, #out, #rsc, 1))
            }
            Op::BiasAdd => {
                let (x, b) = (&a[0], &a[1]);
                let n = n0();
                quote!(#k::bias_add(batch, #n, #x, #b, #out))
            }
            Op::Activation(act) => {
                let (act, x) = (act_tokens(act), &a[0]);
                quote!(#k::act_forward(#act, #x, #out))
            }
            Op::Softmax => {
                let (n, x) = (n0(), &a[0]);
                quote!(#k::softmax(batch, #n, #x, #out))
            }
            Op::LogSoftmax => {
                let (n, x) = (n0(), &a[0]);
                quote!(#k::log_softmax(batch, #n, #x, #out))
            }
            Op::Add | Op::Sub | Op::Mul => {
                let f = ident(match node.op {
                    Op::Add => "add",
                    Op::Sub => "sub",
                    _ => "mul",
                });
                let (x, y) = (&a[0], &a[1]);
                quote!(#k::#f(#x, #y, #out))
            }
            Op::Scale(c) => {
                let (x, c) = (&a[0], float_lit(c.get()));
                quote!(#k::scale(#x, #c, #out))
            }
            Op::Concat => {
                let total = usize_lit(node.ty.shape.elems_per_sample());
                let mut offset = 0;
                let parts = node.args.iter().zip(a).map(|(v, x)| {
                    let width = self.p.graph.ty(*v).shape.elems_per_sample();
                    let (w, o) = (usize_lit(width), usize_lit(offset));
                    offset += width;
                    quote!(#k::copy_cols(batch, #x, #w, #out, #total, #o);)
                });
                let parts: Vec<TokenStream> = parts.collect();
                quote!({ #(#parts)* })
            }
            Op::Slice { start, len } => {
                let (n, x) = (n0(), &a[0]);
                let (start, len) = (usize_lit(start), usize_lit(len));
                quote!(#k::slice_cols(batch, #x, #n, #start, #out, #len))
            }
            Op::DropoutMask(rate) => {
                let rate = float_lit(rate.get());
                // Several masks reborrow the random state in turn; a single one takes it.
                let rng = if self.p.dropout_masks() > 1 {
                    quote!(rng.as_deref_mut())
                } else {
                    quote!(rng)
                };
                quote!(#k::dropout_mask(#rng, #rate, #out))
            }
            Op::ReduceBatch => {
                let (n, x) = (n0(), &a[0]);
                quote!(#k::bias_backward(batch, #n, #x, #out))
            }
            Op::ActivationGrad(act) => {
                let (act, v, gy) = (act_tokens(act), &a[0], &a[1]);
                quote!(#k::act_backward(#act, #v, #gy, #out))
            }
            Op::SoftmaxGrad => {
                let (n, y, gy) = (n0(), &a[0], &a[1]);
                quote!(#k::softmax_backward(batch, #n, #y, #gy, #out))
            }
            Op::LogSoftmaxGrad => {
                let (n, y, gy) = (n0(), &a[0], &a[1]);
                quote!(#k::log_softmax_backward(batch, #n, #y, #gy, #out))
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
            Op::Input(_) | Op::Target(_) | Op::Param(_) | Op::OutputGrad(_) => quote!(),
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
        let per_sample = self.p.graph.ty(node.args[0]).shape.elems_per_sample();
        let weight = float_lit(spec.weight.get());
        let elem = &self.elem;
        let scale = match spec.reduction {
            Reduction::Sum => quote!(#weight),
            Reduction::Mean if spec.kind.per_row() || per_sample == 1 => {
                quote!((#weight / batch as f64) as #elem)
            }
            Reduction::Mean => {
                let n = usize_lit(per_sample);
                quote!((#weight / (batch * #n) as f64) as #elem)
            }
        };
        let rows = spec.kind.per_row().then(|| {
            let n = usize_lit(per_sample);
            quote!(batch, #n,)
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
        quote!(#f(#rows #p, #t, #option #scale #out))
    }

    /// A formula for the comment above a node, in the model's own names.
    fn describe(&self, id: ValueId, node: &Node) -> String {
        let g = &self.p.graph;
        let name = |v: ValueId| g.node(v).name.clone();
        let arg = |i: usize| name(node.args[i]);
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
            Op::ReduceBatch => format!("{me} = Σ over the batch of {}", arg(0)),
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
            Op::Concat => {
                let args: Vec<String> = (0..node.args.len()).map(arg).collect();
                format!("{me} = [{}] joined along the last dimension    {shape}", args.join(", "))
            }
            Op::Slice { start, len } => {
                format!("{me} = columns {start}..{} of {}", start + len, arg(0))
            }
            op => {
                let args: Vec<String> = (0..node.args.len()).map(arg).collect();
                format!("{me} = {op}({})    {shape}", args.join(", "))
            }
        }
    }
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

/// The workspace field holding the gradient with respect to an input.
pub fn input_grad_field(input: &str) -> String {
    format!("grad_{input}")
}
