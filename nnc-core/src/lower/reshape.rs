//! `flatten` and `reshape(d1, d2, …)`: the same elements of each sample under another shape.
//! Both lower to one `reshape` node, a view that shares its argument's storage, so neither
//! moves data.

use super::Lowerer;
use crate::diag::Diagnostic;
use crate::ir::{Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

impl Lowerer<'_> {
    /// `-> flatten` (every axis of a sample into one) or `-> reshape(4, 16)`.
    pub(super) fn reshape(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let kind = stage.kind.name.as_str();
        let from = self.graph.ty(x).shape.clone();
        let elems = from.elems_per_sample();
        let dims = if kind == "flatten" {
            if let Some(args) = &stage.args {
                self.error(
                    Diagnostic::error("E0405", args.span, "`flatten` takes no arguments")
                        .with_help(
                            "write `-> flatten`; for another shape write `-> reshape(4, 16)`",
                        ),
                );
                return None;
            }
            vec![elems]
        } else {
            self.reshape_dims(stage)?
        };
        let to: usize = dims.iter().product();
        if to != elems {
            let product = dims
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" × ");
            self.error(
                Diagnostic::error("E0205", stage.span, format!("`reshape` to {} needs {product} = {to} values per sample but {producer} has shape {} = {elems}", Shape::fixed(&dims), from.per_sample()))
                    .with_span_label(format!("{to} values"))
                    .with_label(self.graph.span(x), format!("{elems} values per sample"))
                    .with_help("keep the number of values per sample; the batch dimension is implicit"),
            );
            return None;
        }
        let ty = Type::float(Shape::batched(&dims));
        let name = let_name.map_or_else(
            || format!("{}.{kind}", self.stem(&self.graph.node(x).name)),
            str::to_string,
        );
        let v = self.push(Op::Reshape, vec![x], ty, name, Phase::Forward, stage.span);
        Some((v, format!("`{kind}`")))
    }

    /// The dimensions of `reshape(d1, d2, …)`: positional positive integers.
    fn reshape_dims(&mut self, stage: &ast::Stage) -> Option<Vec<usize>> {
        let args = stage.args.as_ref().map_or(&[][..], |a| a.args.as_slice());
        if args.is_empty() {
            self.error(
                Diagnostic::error(
                    "E0405",
                    stage.span,
                    "`reshape` needs the new shape of a sample",
                )
                .with_help("write the dimensions, as in `reshape(4, 16)`"),
            );
            return None;
        }
        let mut dims = Vec::new();
        let mut total: u64 = 1;
        for arg in args {
            let n = match (&arg.key, &arg.value) {
                (None, ast::Value::Number { text, .. }) => text.parse::<u64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 && total.saturating_mul(n) <= 1 << 31 => {
                    total *= n;
                    dims.push(n as usize);
                }
                _ => {
                    self.error(
                        Diagnostic::error(
                            "E0403",
                            arg.span,
                            "a dimension of `reshape` must be a positive integer",
                        )
                        .with_help("write the dimensions of one sample, as in `reshape(4, 16)`"),
                    );
                    return None;
                }
            }
        }
        Some(dims)
    }
}
