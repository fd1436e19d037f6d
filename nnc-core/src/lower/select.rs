//! `select(x, index)`: each sample's row of a sequence `x` (`[steps, …]`) at that sample's own
//! index, an input of ids `[1] ids(N)` with `N ≤ steps` (PyTorch's `x[torch.arange(B),
//! index]`). With sequences padded at the end, the index of each one's last real step picks
//! the output a classifier should read, which a slice of the last step would not. Its gradient
//! goes back to the picked rows only (`passes/autodiff/rules.rs`).

use super::Lowerer;
use crate::diag::Diagnostic;
use crate::ir::{DType, Dim, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const USAGE: &str = "write `select(x, index)`, `x` a sequence [steps, …] and `index` an input of one id per sample, as in `input last: [1] ids(64);` for 64 steps";

impl Lowerer<'_> {
    /// Lowers `select(x, index)`, the value named `name`.
    pub(super) fn select(&mut self, call: &ast::Call, name: Option<&str>) -> Option<ValueId> {
        let operands: Vec<&ast::Arg> = call.args.args.iter().collect();
        let [x, index] = operands.as_slice() else {
            let found = match operands.len() {
                1 => "1 was".to_string(),
                n => format!("{n} were"),
            };
            self.error(
                Diagnostic::error(
                    "E0405",
                    call.args.span,
                    format!("`select` takes 2 arguments but {found} given"),
                )
                .with_help(USAGE),
            );
            return None;
        };
        if let Some(key) = x.key.as_ref().or(index.key.as_ref()) {
            self.error(
                Diagnostic::error(
                    "E0405",
                    key.span,
                    format!("`select` has no option `{}`", key.name),
                )
                .with_help(USAGE),
            );
            return None;
        }
        let value = |this: &mut Self, arg: &ast::Arg| match &arg.value {
            ast::Value::Ident(id) => this.resolve(id),
            ast::Value::Expr(e) => this.expr(e, None),
            _ => {
                this.error(
                    Diagnostic::error("E0403", arg.span, "`select` takes values, not numbers")
                        .with_help(USAGE),
                );
                None
            }
        };
        let (xv, iv) = (value(self, x), value(self, index));
        let (xv, iv) = (xv?, iv?);
        self.expect_float(xv, "`select`", "its first argument", x.span)?;
        let steps = match self.graph.ty(xv).shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(t), _, ..] => *t,
            _ => {
                let shape = self.graph.ty(xv).shape.clone();
                self.error(
                    Diagnostic::error("E0205", x.span, format!("`select` reads a sequence [steps, …] but its first argument has shape {shape}"))
                        .with_span_label(format!("shape {shape}"))
                        .with_help(USAGE),
                );
                return None;
            }
        };
        let ty = self.graph.ty(iv).clone();
        let problem = match (ty.dtype, ty.shape.0.as_slice()) {
            (DType::Float, _) => Some(("E0211", "float values, not ids".to_string())),
            (DType::Ids(_), dims) if dims != [Dim::Batch, Dim::Fixed(1)] => Some((
                "E0207",
                format!("shape {}, not one id per sample", ty.shape),
            )),
            (DType::Ids(range), _) if range > steps => Some((
                "E0207",
                format!("ids in 0..{range}, which can point past the {steps} steps"),
            )),
            _ => None,
        };
        if let Some((code, found)) = problem {
            self.error(
                Diagnostic::error(code, index.span, format!("the index of `select` is one id below {steps} per sample, but it has {found}"))
                    .with_span_label(found)
                    .with_help(format!("declare it as `input last: [1] ids({steps});`")),
            );
            return None;
        }
        let dims: Vec<usize> = self.graph.ty(xv).shape.sample_dims()[1..].to_vec();
        let out = Type::float(Shape::batched(&dims));
        let name = name.unwrap_or("select").to_string();
        Some(self.push(
            Op::SelectRow,
            vec![xv, iv],
            out,
            name,
            Phase::Forward,
            call.span,
        ))
    }
}
