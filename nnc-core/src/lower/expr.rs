//! Lowering of `let` expressions (graph form: chains, `+ - *`, `concat`), of the `output`
//! statement, and the check that no plain `step` sits on a path that is trained.

use super::args::{self, Bound, Kind, Param};
use super::layers::base;
use super::{suggest, Def, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Act, Binding, DType, Dim, Op, Phase, Shape, ValueId};
use crate::syntax::ast::{self, BinOp, Expr};

/// Functions of values, for "did you mean" suggestions.
const FUNCTIONS: &[&str] = &["concat", "slice"];

const AXIS_HINT: &str = "an axis counts the dimensions of one sample from 0, or from the end when negative: `axis = -1` is the last";

const fn axis_param() -> Param {
    Param {
        name: "axis",
        kind: Kind::Integer {
            min: i64::MIN,
            words: "an integer",
        },
        default: Some(Bound::Signed(-1)),
        hint: AXIS_HINT,
    }
}

const CONCAT_SIG: &[Param] = &[axis_param()];

const SLICE_SIG: &[Param] = &[
    Param {
        name: "start",
        kind: Kind::Integer {
            min: 0,
            words: "zero or a positive integer",
        },
        default: None,
        hint: "write `slice(x, start, len)`, as in `slice(x, 0, 16)` for the first 16 elements",
    },
    Param {
        name: "len",
        kind: Kind::Width,
        default: None,
        hint: "write `slice(x, start, len)`, as in `slice(x, 0, 16)` for the first 16 elements",
    },
    axis_param(),
];

impl Lowerer<'_> {
    /// Lowers an expression; the value it produces is named `name` when it is a new node.
    pub(super) fn expr(&mut self, e: &Expr, name: Option<&str>) -> Option<ValueId> {
        match e {
            Expr::Name(id) => self.resolve(id),
            Expr::Chain { source, stages, .. } => {
                let x = self.expr(source, None)?;
                let producer = match &**source {
                    Expr::Name(id) => format!("`{}`", id.name),
                    _ => "the expression before it".to_string(),
                };
                self.chain(x, producer, stages, name)
            }
            Expr::Binary {
                op,
                op_span,
                lhs,
                rhs,
                span,
            } => {
                let a = self.expr(lhs, None);
                let b = self.expr(rhs, None);
                let (a, b) = (a?, b?);
                let what = format!("`{}`", op.symbol());
                let fa = self.expect_float(a, &what, "the left side", lhs.span());
                let fb = self.expect_float(b, &what, "the right side", rhs.span());
                fa.zip(fb)?;
                let (ta, tb) = (self.graph.ty(a).clone(), self.graph.ty(b).clone());
                if ta != tb {
                    self.error(
                        Diagnostic::error("E0207", *op_span, format!("`{}` needs operands of the same shape, but the left has shape {} and the right {}", op.symbol(), ta.shape, tb.shape))
                            .with_label(lhs.span(), format!("shape {}", ta.shape))
                            .with_label(rhs.span(), format!("shape {}", tb.shape))
                            .with_help("element-wise operations do not broadcast; make both sides the same width, for example with a dense layer"),
                    );
                    return None;
                }
                let ir_op = match op {
                    BinOp::Add => Op::Add,
                    BinOp::Sub => Op::Sub,
                    BinOp::Mul => Op::Mul,
                };
                let label = match op {
                    BinOp::Add => "add",
                    BinOp::Sub => "sub",
                    BinOp::Mul => "mul",
                };
                let node_name = name.map_or_else(
                    || format!("{}.{label}", base(&self.graph.node(a).name)),
                    str::to_string,
                );
                Some(self.push(ir_op, vec![a, b], ta, node_name, Phase::Forward, *span))
            }
            Expr::Call(call) => self.call(call, name),
        }
    }

    /// `concat(a, b, ..., axis = -1)` and `slice(x, start, len, axis = -1)`.
    fn call(&mut self, call: &ast::Call, name: Option<&str>) -> Option<ValueId> {
        let func = call.func.name.as_str();
        if !FUNCTIONS.contains(&func) {
            let mut d = Diagnostic::error(
                "E0208",
                call.func.span,
                format!("unknown function `{func}`"),
            )
            .with_span_label("not a known function");
            d = match suggest(func, FUNCTIONS.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("values combine with `+`, `-`, `*`, `concat(a, b)` and `slice(x, start, len)`; layers and activations are applied with `->`, as in `x -> relu`"),
            };
            self.error(d);
            return None;
        }
        // Leading value names are the operands; the rest are options bound to a signature.
        let split = call
            .args
            .args
            .iter()
            .position(|a| a.key.is_some() || !matches!(a.value, ast::Value::Ident(_)))
            .unwrap_or(call.args.args.len());
        let (operands, options) = call.args.args.split_at(split);
        let options = ast::ArgList {
            args: options.to_vec(),
            span: call.args.span,
        };
        let mut values = Vec::new();
        let mut ok = true;
        for arg in operands {
            if let ast::Value::Ident(id) = &arg.value {
                match self.resolve(id) {
                    Some(v) => values.push((v, id.span)),
                    None => ok = false,
                }
            }
        }
        let what = format!("`{func}`");
        let sig = if func == "concat" {
            CONCAT_SIG
        } else {
            SLICE_SIG
        };
        let errors = self.diags.len();
        let b = args::bind(&what, call.span, Some(&options), sig, self.diags);
        if !ok || self.diags.len() > errors {
            return None;
        }
        for (v, span) in &values {
            let label = format!("`{}`", self.graph.node(*v).name);
            self.expect_float(*v, &what, &label, *span)?;
        }
        let node_name = name.map_or_else(|| func.to_string(), str::to_string);
        if func == "slice" {
            let [(x, span)] = values.as_slice() else {
                self.error(
                    Diagnostic::error("E0405", call.span, "`slice` takes one value")
                        .with_help("write `slice(x, start, len)`, optionally with `axis = k`"),
                );
                return None;
            };
            let (start, len) = (b.signed(0)? as usize, b.int(1)?);
            let axis = self.axis(*x, b.signed(2)?, &what, *span)?;
            let Dim::Fixed(size) = self.graph.ty(*x).shape.0[axis] else {
                return None;
            };
            if start + len > size {
                self.error(
                    Diagnostic::error("E0207", call.span, format!("`slice` takes elements {start}..{} along axis {} but `{}` has only {size} there", start + len, axis - 1, self.graph.node(*x).name))
                        .with_label(*span, format!("shape {}", per_sample(&self.graph.ty(*x).shape)))
                        .with_help(format!("choose `start + len` at most {size}")),
                );
                return None;
            }
            let op = Op::Slice { axis, start, len };
            let ty = op.infer(&[self.graph.ty(*x)]).ok()?;
            return Some(self.push(op, vec![*x], ty, node_name, Phase::Forward, call.span));
        }
        if values.len() < 2 {
            self.error(
                Diagnostic::error("E0405", call.span, "`concat` needs at least two values")
                    .with_help("write `concat(a, b)`"),
            );
            return None;
        }
        let (first, first_span) = values[0];
        let axis = self.axis(first, b.signed(0)?, &what, first_span)?;
        let types: Vec<crate::ir::Type> = values
            .iter()
            .map(|(v, _)| self.graph.ty(*v).clone())
            .collect();
        let refs: Vec<&crate::ir::Type> = types.iter().collect();
        let op = Op::Concat { axis };
        let ty = match op.infer(&refs) {
            Ok(t) => t,
            Err(_) => {
                // Name the first value that disagrees with the first one, with both shapes.
                let bad = (1..values.len())
                    .find(|i| {
                        let (a, b) = (&types[0].shape.0, &types[*i].shape.0);
                        a.len() != b.len() || (0..a.len()).any(|k| k != axis && a[k] != b[k])
                    })
                    .unwrap_or(1);
                let name = |i: usize| self.graph.node(values[i].0).name.clone();
                let shape = |i: usize| per_sample(&types[i].shape);
                let mut d = Diagnostic::error(
                    "E0207",
                    call.span,
                    format!(
                        "`concat` along axis {} needs equal sizes on every other axis, but `{}` is {} and `{}` is {}",
                        axis - 1,
                        name(0),
                        shape(0),
                        name(bad),
                        shape(bad)
                    ),
                )
                .with_span_label("mismatched shapes");
                for (i, (_, span)) in values.iter().enumerate() {
                    d = d.with_label(*span, format!("shape {}", shape(i)));
                }
                self.error(d.with_help("join values that agree everywhere but along the axis, or choose the axis with `axis = k`"));
                return None;
            }
        };
        let args = values.iter().map(|(v, _)| *v).collect();
        Some(self.push(op, args, ty, node_name, Phase::Forward, call.span))
    }

    /// The axis `axis` of `x`'s samples (negative counts from the end) as an index into the
    /// whole shape, where the batch is axis 0.
    pub(super) fn axis(&mut self, x: ValueId, axis: i64, what: &str, span: Span) -> Option<usize> {
        let shape = self.graph.ty(x).shape.clone();
        let rank = shape.rank().saturating_sub(1) as i64;
        let index = if axis < 0 { axis + rank } else { axis };
        if (0..rank).contains(&index) {
            return Some(index as usize + 1);
        }
        self.error(
            Diagnostic::error(
                "E0207",
                span,
                format!(
                    "{what} has no axis {axis}: `{}` has {rank} ax{} per sample, {}",
                    self.graph.node(x).name,
                    if rank == 1 { "is" } else { "es" },
                    per_sample(&shape)
                ),
            )
            .with_help(format!("choose an axis from {} to {}", -rank, rank - 1))
            .with_note(AXIS_HINT),
        );
        None
    }

    /// Reports `x` used where float values are needed when it holds integer ids.
    pub(super) fn expect_float(
        &mut self,
        x: ValueId,
        what: &str,
        label: &str,
        span: Span,
    ) -> Option<()> {
        let DType::Ids(range) = self.graph.ty(x).dtype else {
            return Some(());
        };
        let name = self.graph.node(x).name.clone();
        self.error(
            Diagnostic::error(
                "E0211",
                span,
                format!("{what} expects float values but {label} holds integer ids"),
            )
            .with_span_label(format!("ids in 0..{range}"))
            .with_label(self.graph.span(x), format!("`{name}` declared as ids here"))
            .with_help(format!(
                "look the ids up in a table first, as in `{name} -> embedding table({range}, 32)`"
            )),
        );
        None
    }

    /// The `output` statement: computed values, each named once.
    pub(super) fn outputs(&mut self, decl: &ast::OutputDecl) -> Option<Vec<Binding>> {
        let mut out: Vec<Binding> = Vec::new();
        let mut ok = true;
        for id in &decl.names {
            if let Some(first) = out.iter().find(|b| b.name == id.name) {
                let first = first.span;
                self.error(
                    Diagnostic::error(
                        "E0308",
                        id.span,
                        format!("`{}` is listed twice as an output", id.name),
                    )
                    .with_label(first, "first listed here")
                    .with_help("list each output once"),
                );
                ok = false;
                continue;
            }
            match self.scope.get(&id.name) {
                Some(Def::Input { .. }) | Some(Def::Target { .. }) => {
                    self.error(
                        Diagnostic::error(
                            "E0308",
                            id.span,
                            format!(
                                "`{}` is not computed by the model, so it cannot be an output",
                                id.name
                            ),
                        )
                        .with_help("outputs are values defined with `let`"),
                    );
                    ok = false;
                    continue;
                }
                _ => {}
            }
            match self.resolve(id) {
                Some(value) if self.graph.node(value).op.is_interface() => {
                    self.error(
                        Diagnostic::error(
                            "E0308",
                            id.span,
                            format!(
                                "`{}` is an input under another name, so it cannot be an output",
                                id.name
                            ),
                        )
                        .with_help("outputs are values computed by layers"),
                    );
                    ok = false;
                }
                Some(value) if out.iter().any(|b| b.value == value) => {
                    let first = out
                        .iter()
                        .find(|b| b.value == value)
                        .map_or("", |b| b.name.as_str());
                    self.error(
                        Diagnostic::error(
                            "E0308",
                            id.span,
                            format!("`{}` is the same value as output `{first}`", id.name),
                        )
                        .with_help(
                            "list each value once; `let b = a;` only gives `a` a second name",
                        ),
                    );
                    ok = false;
                }
                Some(value) => out.push(Binding {
                    name: id.name.clone(),
                    value,
                    span: id.span,
                }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Inputs and targets become parameters of the generated methods, next to the output
    /// gradients `d_<output>` of `backward` and the input-gradient buffers `grad_<input>`: a
    /// name that would meet one of those is an error.
    pub(super) fn check_generated_names(&mut self, outputs: &[Binding]) {
        let mut generated: Vec<(String, String)> = outputs
            .iter()
            .map(|o| {
                (
                    format!("d_{}", o.name),
                    format!("the gradient of output `{}`", o.name),
                )
            })
            .collect();
        for (b, grad) in self.inputs.iter().zip(&self.requires_grad) {
            if *grad {
                generated.push((
                    format!("grad_{}", b.name),
                    format!("the gradient buffer of input `{}`", b.name),
                ));
            }
        }
        let declared: Vec<(String, Span)> = self
            .inputs
            .iter()
            .chain(&self.targets)
            .map(|b| (b.name.clone(), b.span))
            .collect();
        for (name, span) in declared {
            if let Some((_, what)) = generated.iter().find(|(g, _)| *g == name) {
                self.error(
                    Diagnostic::error(
                        "E0106",
                        span,
                        format!("`{name}` cannot name an input or target of this model"),
                    )
                    .with_note(format!(
                        "the generated code already uses `{name}` for {what}"
                    ))
                    .with_help(format!("rename it, for example to `{name}_data`")),
                );
            }
        }
    }

    /// A plain `step` has a zero derivative: on a path from a trained parameter (or an input
    /// whose gradient is asked for) to the loss or an output, it would silently stop all
    /// learning before it.
    pub(super) fn check_steps(&mut self, terms: &[ValueId], outputs: &[Binding]) {
        let g = &self.graph;
        let n = g.nodes.len();
        let mut trained = vec![false; n];
        for id in g.ids() {
            let node = g.node(id);
            trained[id.index()] = match node.op {
                Op::Param(i) => !self.params[i].frozen,
                Op::Input(i) => self.requires_grad[i],
                _ => node.args.iter().any(|a| trained[a.index()]),
            };
        }
        let mut reaches = vec![false; n];
        for v in terms.iter().copied().chain(outputs.iter().map(|b| b.value)) {
            reaches[v.index()] = true;
        }
        for id in g.ids().rev() {
            if reaches[id.index()] {
                for a in &g.node(id).args {
                    reaches[a.index()] = true;
                }
            }
        }
        let blocked: Vec<(ValueId, Span)> = g
            .ids()
            .filter(|id| {
                let node = g.node(*id);
                node.op
                    == Op::Activation(Act::Step {
                        straight_through: false,
                    })
                    && trained[node.args[0].index()]
                    && reaches[id.index()]
            })
            .map(|id| (id, g.span(id)))
            .collect();
        for (_, span) in blocked {
            self.error(
                Diagnostic::error("E0209", span, "`step` has a zero derivative, so no gradient reaches the layers before it")
                    .with_span_label("gradient stops here")
                    .with_note("the layers before this step would never learn")
                    .with_help("use `sigmoid` for a smooth step, or `step(straight_through = true)` to pass the gradient through unchanged"),
            );
        }
    }
}

/// A shape as the user wrote it: the dimensions of one sample, without the batch.
pub(super) fn per_sample(shape: &Shape) -> Shape {
    Shape(
        shape
            .0
            .iter()
            .copied()
            .filter(|d| *d != Dim::Batch)
            .collect(),
    )
}
