//! Lowering of `let` expressions (graph form: chains, `+ - *`, calls of the functions in
//! `functions.rs`), of the `output` statement, and the check that no plain `step` sits on a
//! path that is trained.

use super::{Def, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Act, Binding, DType, Op, Phase, ValueId};
use crate::syntax::ast::{self, BinOp, Expr};

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
                    || format!("{}.{label}", self.stem(&self.graph.node(a).name)),
                    str::to_string,
                );
                Some(self.push(ir_op, vec![a, b], ta, node_name, Phase::Forward, *span))
            }
            Expr::Call(call) => self.call(call, name),
        }
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
                    crate::reserved::output_grad(&o.name),
                    format!("the gradient of output `{}`", o.name),
                )
            })
            .collect();
        for (b, grad) in self.inputs.iter().zip(&self.requires_grad) {
            if *grad {
                generated.push((
                    crate::reserved::input_grad(&b.name),
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
