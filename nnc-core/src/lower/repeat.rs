//! `repeat N as name { let …; }`: the body's `let`s lowered N times in a row, as if written out,
//! each copy with layers of its own. The copy `i` of a layer `attn` defined in the body is the
//! layer `name.i.attn` (PyTorch's `ModuleList` naming, `h.0.attn.in_proj_weight`), and a body
//! that applies one of its own layers again by name gets its copy's. A `let` in the body may
//! rebind a value defined before it (an input or target may not be rebound), so that each copy
//! reads what the one before it left and the code after the block reads the last copy's.
//!
//! The copies are made on the syntax tree, renaming the body's layers, and then lowered like
//! any other statements; nothing after lowering knows that a block was repeated. When the first
//! copy has an error, the others are not lowered, so one mistake is one diagnostic.

use super::Lowerer;
use crate::diag::Diagnostic;
use crate::syntax::ast;
use std::collections::HashSet;

/// The most copies one block may make: far past any real model, and small enough that a
/// mistyped count does not make lowering run for minutes.
const MAX_COPIES: u64 = 4096;

/// The name of the copies when the block has no `as name`.
const DEFAULT_NAME: &str = "block";

impl Lowerer<'_> {
    pub(super) fn repeat(&mut self, r: &ast::Repeat) {
        // A block that is refused leaves the names its body defines poisoned, so that their
        // later uses are not reported as undefined on top of the real error.
        let refuse = |this: &mut Self| {
            for l in &r.body {
                this.scope.insert(l.name.name.clone(), super::Def::Poisoned);
            }
        };
        let count = match r.count.value {
            Some(n) if (1..=MAX_COPIES).contains(&n) => n as usize,
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0206",
                        r.count.span,
                        format!("`repeat` makes between 1 and {MAX_COPIES} copies"),
                    )
                    .with_help(
                        "write the number of identical blocks, as in `repeat 4 as h { ... }`",
                    ),
                );
                return;
            }
        };
        let name = r.name.as_ref().map_or(DEFAULT_NAME, |n| n.name.as_str());
        let span = r.name.as_ref().map_or(r.count.span, |n| n.span);
        if let Some(first) = self.repeats.insert(name.to_string(), span) {
            self.error(
                Diagnostic::error(
                    "E0105",
                    span,
                    format!("two `repeat` blocks name their copies `{name}`"),
                )
                .with_span_label("second block with this name")
                .with_label(first, "first block here")
                .with_help("the copies' layers are named after the block; name one block differently with `as`, as in `repeat 4 as enc { ... }`"),
            );
            refuse(self);
            return;
        }
        let mut defined = HashSet::new();
        for l in &r.body {
            layers_defined(&l.value, &mut defined);
        }
        let errors = self.diags.len();
        let outer = std::mem::replace(&mut self.rebinding, true);
        for i in 0..count {
            let prefix = format!("{name}.{i}.");
            for l in &r.body {
                let mut copy = l.clone();
                rename(&mut copy.value, &defined, &prefix);
                self.let_stmt(&copy);
            }
            if self.diags.len() > errors {
                break;
            }
        }
        self.rebinding = outer;
    }
}

/// The layers an expression defines: the instance names of its stages.
fn layers_defined(e: &ast::Expr, out: &mut HashSet<String>) {
    // The walk is written once, for renaming; defining reads a copy.
    visit_mut(&mut e.clone(), &mut |stage: &mut ast::Stage| {
        if let Some(name) = &stage.name {
            out.insert(name.name.clone());
        }
    });
}

/// Renames every stage that defines one of the body's layers `defined` or applies it again,
/// and every `h_n(layer)` and `c_n(layer)` of one of them.
fn rename(e: &mut ast::Expr, defined: &HashSet<String>, prefix: &str) {
    visit_mut(e, &mut |stage: &mut ast::Stage| {
        if let Some(name) = &mut stage.name {
            name.name = format!("{prefix}{}", name.name);
        } else if defined.contains(&stage.kind.name) {
            stage.kind.name = format!("{prefix}{}", stage.kind.name);
        }
    });
    rename_final_states(e, defined, prefix);
}

/// The layer names that `h_n` and `c_n` read, which are arguments rather than stages.
fn rename_final_states(e: &mut ast::Expr, defined: &HashSet<String>, prefix: &str) {
    match e {
        ast::Expr::Name(_) => {}
        ast::Expr::Call(call) => {
            let reads_layer = matches!(call.func.name.as_str(), "h_n" | "c_n");
            for arg in &mut call.args.args {
                match &mut arg.value {
                    ast::Value::Ident(layer) if reads_layer && defined.contains(&layer.name) => {
                        layer.name = format!("{prefix}{}", layer.name);
                    }
                    ast::Value::Expr(inner) => rename_final_states(inner, defined, prefix),
                    _ => {}
                }
            }
        }
        ast::Expr::Chain { source, .. } => rename_final_states(source, defined, prefix),
        ast::Expr::Binary { lhs, rhs, .. } => {
            rename_final_states(lhs, defined, prefix);
            rename_final_states(rhs, defined, prefix);
        }
    }
}

/// Calls `f` on every stage of `e`, in chains and in the expressions of call arguments.
fn visit_mut(e: &mut ast::Expr, f: &mut impl FnMut(&mut ast::Stage)) {
    match e {
        ast::Expr::Name(_) => {}
        ast::Expr::Call(call) => {
            for arg in &mut call.args.args {
                if let ast::Value::Expr(inner) = &mut arg.value {
                    visit_mut(inner, f);
                }
            }
        }
        ast::Expr::Chain { source, stages, .. } => {
            visit_mut(source, f);
            stages.iter_mut().for_each(&mut *f);
        }
        ast::Expr::Binary { lhs, rhs, .. } => {
            visit_mut(lhs, f);
            visit_mut(rhs, f);
        }
    }
}
