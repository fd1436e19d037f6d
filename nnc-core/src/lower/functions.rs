//! The functions of values in `let` expressions: `concat` and `slice` along an axis, `sum` and
//! `mean` over an axis, `transpose` and `permute` of a sample's axes, and the batched
//! `matmul` of attention (`h_n` and `c_n`, a recurrent layer's final states, are
//! `recurrent_state.rs`'s, and `select` is `select.rs`'s). Each checks its operands' shapes with diagnostics that show them;
//! axes count the dimensions of one sample, the batch being implicit.

use super::args::{self, Bound, BoundArgs, Kind, Param};
use super::{suggest, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Const, Dim, Op, Perm, Phase, Type, ValueId};
use crate::syntax::ast;

/// Every function, for "did you mean" suggestions.
const FUNCTIONS: &[&str] = &[
    "concat",
    "slice",
    "sum",
    "mean",
    "transpose",
    "permute",
    "matmul",
    "h_n",
    "c_n",
    "select",
];

const AXIS_HINT: &str = "an axis counts the dimensions of one sample from 0, or from the end when negative: `axis = -1` is the last";

const fn axis_param(name: &'static str, default: i64) -> Param {
    Param {
        name,
        kind: Kind::Integer {
            min: i64::MIN,
            words: "an integer",
        },
        default: Some(Bound::Signed(default)),
        hint: AXIS_HINT,
    }
}

const AXIS_SIG: &[Param] = &[axis_param("axis", -1)];

const SLICE_HINT: &str =
    "write `slice(x, start, len)`, as in `slice(x, 0, 16)` for the first 16 elements";

const SLICE_SIG: &[Param] = &[
    Param {
        name: "start",
        kind: Kind::Integer {
            min: 0,
            words: "zero or a positive integer",
        },
        default: None,
        hint: SLICE_HINT,
    },
    Param {
        name: "len",
        kind: Kind::Width,
        default: None,
        hint: SLICE_HINT,
    },
    axis_param("axis", -1),
];

const TRANSPOSE_SIG: &[Param] = &[axis_param("a", -2), axis_param("b", -1)];

const MATMUL_SIG: &[Param] = &[
    Param {
        name: "transpose_a",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `transpose_a = true` to multiply by the transpose of each matrix of `a`",
    },
    Param {
        name: "transpose_b",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `transpose_b = true` to multiply by the transpose of each matrix of `b`, as in `matmul(q, k, transpose_b = true)`",
    },
];

/// A function's operands (leading value names) with their spans, and everything after them.
struct Operands {
    values: Vec<(ValueId, Span)>,
    options: ast::ArgList,
}

impl Lowerer<'_> {
    /// A call of a function of values; the value it produces is named `name`.
    pub(super) fn call(&mut self, call: &ast::Call, name: Option<&str>) -> Option<ValueId> {
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
                None => d.with_help(format!(
                    "values combine with `+`, `-`, `*` and the functions {}; layers and activations are applied with `->`, as in `x -> relu`",
                    args::quoted(FUNCTIONS)
                )),
            };
            self.error(d);
            return None;
        }
        match func {
            "h_n" | "c_n" => return self.final_state(call, name),
            "select" => return self.select(call, name),
            _ => {}
        }
        let ops = self.operands(call, func)?;
        let what = format!("`{func}`");
        let (op, args) = match func {
            "concat" => self.concat(call, &ops, &what)?,
            "slice" => self.slice(call, &ops, &what)?,
            "sum" | "mean" => self.sum(call, &ops, &what, func == "mean")?,
            "transpose" | "permute" => self.permute(call, &ops, &what, func)?,
            _ => self.matmul(call, &ops, &what)?,
        };
        let types: Vec<&Type> = args.iter().map(|v| self.graph.ty(*v)).collect();
        // Every shape was checked above with its own diagnostic; a rule that still refuses
        // them would be a bug in this file, reported rather than panicking.
        let ty = match op.infer(&types) {
            Ok(t) => t,
            Err(e) => {
                self.error(Diagnostic::error("E0207", call.span, e));
                return None;
            }
        };
        let node_name = name.map_or_else(|| func.to_string(), str::to_string);
        Some(self.push(op, args, ty, node_name, Phase::Forward, call.span))
    }

    /// Resolves the leading value names of a call, all of which must hold float values.
    fn operands(&mut self, call: &ast::Call, func: &str) -> Option<Operands> {
        let split = call
            .args
            .args
            .iter()
            .position(|a| {
                a.key.is_some() || !matches!(a.value, ast::Value::Ident(_) | ast::Value::Expr(_))
            })
            .unwrap_or(call.args.args.len());
        let (operands, rest) = call.args.args.split_at(split);
        let mut values = Vec::new();
        let mut ok = true;
        for arg in operands {
            let value = match &arg.value {
                ast::Value::Ident(id) => self.resolve(id).map(|v| (v, format!("`{}`", id.name))),
                ast::Value::Expr(e) => self
                    .expr(e, None)
                    .map(|v| (v, "the expression".to_string())),
                _ => None,
            };
            match value {
                Some((v, label)) => values.push((v, arg.value.span(), label)),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let what = format!("`{func}`");
        for (v, span, label) in &values {
            self.expect_float(*v, &what, label, *span)?;
        }
        let values = values.into_iter().map(|(v, span, _)| (v, span)).collect();
        Some(Operands {
            values,
            options: ast::ArgList {
                args: rest.to_vec(),
                span: call.args.span,
            },
        })
    }

    /// The options of a call bound to `sig`, or `None` after reporting what was wrong.
    fn options(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
        sig: &[Param],
    ) -> Option<BoundArgs> {
        let errors = self.diags.len();
        let b = args::bind(what, call.span, Some(&ops.options), sig, self.diags);
        (self.diags.len() == errors).then_some(b)
    }

    /// The operands of a function that takes exactly `n` values.
    fn exactly<const N: usize>(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
        usage: &str,
    ) -> Option<[(ValueId, Span); N]> {
        match <[(ValueId, Span); N]>::try_from(ops.values.as_slice()) {
            Ok(values) => Some(values),
            Err(_) => {
                self.error(
                    Diagnostic::error(
                        "E0405",
                        call.span,
                        format!("{what} takes {N} value{}", if N == 1 { "" } else { "s" }),
                    )
                    .with_help(format!("write `{usage}`")),
                );
                None
            }
        }
    }

    /// `concat(a, b, ..., axis = -1)`: values that agree on every other axis, joined.
    fn concat(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
    ) -> Option<(Op, Vec<ValueId>)> {
        let b = self.options(call, ops, what, AXIS_SIG)?;
        let values = &ops.values;
        if values.len() < 2 {
            self.error(
                Diagnostic::error("E0405", call.span, "`concat` needs at least two values")
                    .with_help("write `concat(a, b)`"),
            );
            return None;
        }
        let (first, first_span) = values[0];
        let axis = self.axis(first, b.signed(0)?, what, first_span)?;
        let shapes: Vec<Vec<Dim>> = values
            .iter()
            .map(|(v, _)| self.graph.ty(*v).shape.0.clone())
            .collect();
        // The first value that disagrees with the first one off the axis, if any.
        let bad = (1..values.len()).find(|i| {
            let (a, b) = (&shapes[0], &shapes[*i]);
            a.len() != b.len() || (0..a.len()).any(|k| k != axis && a[k] != b[k])
        });
        if let Some(bad) = bad {
            let name = |i: usize| self.graph.node(values[i].0).name.clone();
            let shape = |i: usize| crate::ir::Shape(shapes[i].clone()).per_sample();
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
        Some((
            Op::Concat { axis },
            values.iter().map(|(v, _)| *v).collect(),
        ))
    }

    /// `slice(x, start, len, axis = -1)`: `len` elements from `start` along the axis.
    fn slice(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
    ) -> Option<(Op, Vec<ValueId>)> {
        let b = self.options(call, ops, what, SLICE_SIG)?;
        let [(x, span)] = self.exactly(call, ops, what, "slice(x, start, len)")?;
        let (start, len) = (b.signed(0)? as usize, b.int(1)?);
        let axis = self.axis(x, b.signed(2)?, what, span)?;
        let size = self.size(x, axis);
        if start + len > size {
            self.error(
                Diagnostic::error("E0207", call.span, format!("`slice` takes elements {start}..{} along axis {} but `{}` has only {size} there", start + len, axis - 1, self.graph.node(x).name))
                    .with_label(span, format!("shape {}", self.graph.ty(x).shape.per_sample()))
                    .with_help(format!("choose `start + len` at most {size}")),
            );
            return None;
        }
        Some((Op::Slice { axis, start, len }, vec![x]))
    }

    /// `sum(x, axis = -1)` and `mean(x, axis = -1)`: the axis is summed (or averaged) away.
    fn sum(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
        mean: bool,
    ) -> Option<(Op, Vec<ValueId>)> {
        let b = self.options(call, ops, what, AXIS_SIG)?;
        let usage = if mean {
            "mean(x, axis = k)"
        } else {
            "sum(x, axis = k)"
        };
        let [(x, span)] = self.exactly(call, ops, what, usage)?;
        let axis = self.axis(x, b.signed(0)?, what, span)?;
        let shape = self.graph.ty(x).shape.clone();
        if shape.rank() < 3 {
            self.error(
                Diagnostic::error("E0205", span, format!("{what} would leave `{}` of shape {} with nothing per sample", self.graph.node(x).name, shape.per_sample()))
                    .with_help("reduce a value with at least two axes per sample, or reshape it first, as in `-> reshape(n, 1)`"),
            );
            return None;
        }
        let scale = if mean {
            1.0 / self.size(x, axis) as f64
        } else {
            1.0
        };
        Some((
            Op::SumAxis {
                axis,
                scale: Const::new(scale),
            },
            vec![x],
        ))
    }

    /// `transpose(x, a = -2, b = -1)` swaps two axes; `permute(x, 2, 0, 1)` reorders them all.
    fn permute(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
        func: &str,
    ) -> Option<(Op, Vec<ValueId>)> {
        let usage = if func == "transpose" {
            "transpose(x)"
        } else {
            "permute(x, 1, 0)"
        };
        let [(x, span)] = self.exactly(call, ops, what, usage)?;
        let rank = self.graph.ty(x).shape.rank();
        let mut axes: Vec<usize> = (0..rank).collect();
        if func == "transpose" {
            let b = self.options(call, ops, what, TRANSPOSE_SIG)?;
            let (i, j) = (
                self.axis(x, b.signed(0)?, what, span)?,
                self.axis(x, b.signed(1)?, what, span)?,
            );
            axes.swap(i, j);
        } else {
            let order: Option<Vec<usize>> = ops
                .options
                .args
                .iter()
                .map(|a| match (&a.key, &a.value) {
                    (None, ast::Value::Number { text, .. }) => {
                        text.parse::<usize>().ok().and_then(|n| n.checked_add(1))
                    }
                    _ => None,
                })
                .collect();
            axes.truncate(1);
            axes.extend(order.unwrap_or_default());
        }
        match Perm::new(&axes) {
            Some(perm) if axes.len() == rank => Some((Op::Permute(perm), vec![x])),
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0207",
                        call.span,
                        format!(
                            "{what} needs each of the {} axes of `{}` ({}) exactly once",
                            rank - 1,
                            self.graph.node(x).name,
                            self.graph.ty(x).shape.per_sample()
                        ),
                    )
                    .with_help(format!(
                        "list the axes 0 to {} in their new order, as in `permute(x, {})`",
                        rank - 2,
                        (0..rank - 1)
                            .rev()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .with_note(format!(
                        "a value may have at most {} axes per sample",
                        Perm::MAX - 1
                    )),
                );
                None
            }
        }
    }

    /// `matmul(a, b, transpose_a = false, transpose_b = false)`: a product per matrix of the
    /// last two axes, every axis before them equal.
    fn matmul(
        &mut self,
        call: &ast::Call,
        ops: &Operands,
        what: &str,
    ) -> Option<(Op, Vec<ValueId>)> {
        let b = self.options(call, ops, what, MATMUL_SIG)?;
        let [(x, xs), (y, ys)] = self.exactly(call, ops, what, "matmul(a, b)")?;
        let (ta, tb) = (b.bool(0)?, b.bool(1)?);
        let op = Op::BatchMatMul {
            transpose_a: ta,
            transpose_b: tb,
        };
        let (sx, sy) = (
            self.graph.ty(x).shape.clone(),
            self.graph.ty(y).shape.clone(),
        );
        if op.infer(&[self.graph.ty(x), self.graph.ty(y)]).is_err() {
            let matrix = |s: &crate::ir::Shape, t: bool| -> String {
                match s.0.as_slice() {
                    [.., r, c] if s.rank() >= 3 => {
                        let (r, c) = if t { (c, r) } else { (r, c) };
                        format!("{r} × {c}")
                    }
                    _ => "no matrix".to_string(),
                }
            };
            let (nx, ny) = (
                self.graph.node(x).name.clone(),
                self.graph.node(y).name.clone(),
            );
            self.error(
                Diagnostic::error("E0207", call.span, format!("`matmul` multiplies the matrices of the last two axes, which needs equal axes before them and inner sizes that agree, but `{nx}` is {} ({}) and `{ny}` is {} ({})", sx.per_sample(), matrix(&sx, ta), sy.per_sample(), matrix(&sy, tb)))
                    .with_label(xs, format!("shape {}", sx.per_sample()))
                    .with_label(ys, format!("shape {}", sy.per_sample()))
                    .with_help("transpose an operand with `transpose_b = true` (or `transpose_a`), or reshape it so that the inner sizes agree"),
            );
            return None;
        }
        Some((op, vec![x, y]))
    }

    /// The size of `x` along `axis` (an index into the whole shape, never the batch).
    fn size(&self, x: ValueId, axis: usize) -> usize {
        match self.graph.ty(x).shape.0[axis] {
            Dim::Fixed(n) => n,
            Dim::Batch => 0,
        }
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
                    shape.per_sample()
                ),
            )
            .with_help(format!("choose an axis from {} to {}", -rank, rank - 1))
            .with_note(AXIS_HINT),
        );
        None
    }
}
