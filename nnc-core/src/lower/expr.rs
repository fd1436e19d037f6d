//! Lowering of `let` expressions (graph form: chains, `+ - *`, `concat`), of the `output`
//! statement, and the check that no plain `step` sits on a path that is trained.

use super::layers::base;
use super::{suggest, Def, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Act, Binding, Op, Phase, ValueId};
use crate::syntax::ast::{self, BinOp, Expr};

/// Functions that combine values, for "did you mean" suggestions.
const FUNCTIONS: &[&str] = &["concat"];

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

    /// `concat(a, b, ...)`: joins values along their last dimension.
    fn call(&mut self, call: &ast::Call, name: Option<&str>) -> Option<ValueId> {
        let func = &call.func.name;
        if func != "concat" {
            let mut d = Diagnostic::error(
                "E0208",
                call.func.span,
                format!("unknown function `{func}`"),
            )
            .with_span_label("not a known function");
            d = match suggest(func, FUNCTIONS.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("values combine with `+`, `-`, `*` and `concat(a, b)`; layers and activations are applied with `->`, as in `x -> relu`"),
            };
            self.error(d);
            return None;
        }
        let mut values = Vec::new();
        let mut ok = true;
        for arg in &call.args.args {
            match (&arg.key, &arg.value) {
                (None, ast::Value::Ident(id)) => match self.resolve(id) {
                    Some(v) => values.push((v, id.span)),
                    None => ok = false,
                },
                _ => {
                    self.error(
                        Diagnostic::error("E0403", arg.span, "`concat` takes value names only")
                            .with_help("write `concat(a, b)` with values defined earlier"),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if values.len() < 2 {
            self.error(
                Diagnostic::error("E0405", call.span, "`concat` needs at least two values")
                    .with_help("write `concat(a, b)`"),
            );
            return None;
        }
        let types: Vec<crate::ir::Type> = values
            .iter()
            .map(|(v, _)| self.graph.ty(*v).clone())
            .collect();
        let refs: Vec<&crate::ir::Type> = types.iter().collect();
        let ty = match Op::Concat.infer(&refs) {
            Ok(t) => t,
            Err(_) => {
                let mut d = Diagnostic::error("E0207", call.span, "`concat` joins values along their last dimension, so all other dimensions must agree")
                    .with_span_label("mismatched shapes");
                for ((_, span), t) in values.iter().zip(&types) {
                    d = d.with_label(*span, format!("shape {}", t.shape));
                }
                self.error(d.with_help("concatenate values with the same leading dimensions, such as two vectors per sample"));
                return None;
            }
        };
        let node_name = name.map_or_else(|| "concat".to_string(), str::to_string);
        let args = values.iter().map(|(v, _)| *v).collect();
        Some(self.push(Op::Concat, args, ty, node_name, Phase::Forward, call.span))
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
