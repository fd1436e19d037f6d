//! Lowering: the syntax tree of each model becomes an IR [`Program`].
//!
//! This is where names are resolved and every shape is checked, with diagnostics that point at
//! the user's tokens. All problems of a file are collected; a name whose definition failed is
//! "poisoned" so that its uses do not report the same mistake again. Lowering produces the
//! forward graph and the loss only; gradients come from the autodiff pass.

mod args;
mod attention;
mod batch_norm;
mod bias;
mod conv;
mod dense;
mod embedding;
mod expr;
mod functions;
mod layer_norm;
mod layers;
mod pool;
mod recurrent;
mod recurrent_state;
mod repeat;
mod reshape;
mod select;
mod training;

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::ir::{Binding, Graph, Node, Op, Phase, Program, Shape, Type, ValueId};
use crate::syntax::ast;
use std::collections::{HashMap, HashSet};

/// Lowers every model of a file; fails with all diagnostics if any model has an error.
pub fn lower(file: &ast::File) -> Result<Vec<Program>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut programs = Vec::new();
    let mut names: HashMap<&str, Span> = HashMap::new();
    if file.models.is_empty() {
        diags.push(
            Diagnostic::error("E0501", Span::new(0, 0), "no model is defined")
                .with_help("a file holds one or more `model Name { ... }` blocks"),
        );
    }
    for m in &file.models {
        if let Some(first) = names.insert(&m.name.name, m.name.span) {
            diags.push(
                Diagnostic::error(
                    "E0101",
                    m.name.span,
                    format!("model `{}` is defined twice", m.name.name),
                )
                .with_span_label("second definition")
                .with_label(first, "first definition")
                .with_help("give each model its own name"),
            );
        }
        let workspace_of = file
            .models
            .iter()
            .find(|other| crate::reserved::workspace(&other.name.name) == m.name.name);
        if let Some(other) = workspace_of {
            diags.push(
                Diagnostic::error(
                    "E0101",
                    m.name.span,
                    format!(
                        "model `{}` has the name of model `{}`'s workspace",
                        m.name.name, other.name.name
                    ),
                )
                .with_label(other.name.span, "this model's workspace is called so")
                .with_help("rename one of the models"),
            );
        }
        if let Some(help) = crate::reserved::model_name_problem(&m.name.name) {
            diags.push(
                Diagnostic::error(
                    "E0502",
                    m.name.span,
                    format!(
                        "model name `{}` is not a usable Rust type name",
                        m.name.name
                    ),
                )
                .with_help(help),
            );
        }
        if let Some(p) = Lowerer::new(m, &mut diags).run() {
            programs.push(p);
        }
    }
    if diags.has_errors() {
        diags.sort();
        Err(diags)
    } else {
        Ok(programs)
    }
}

/// What a name in a model refers to.
#[derive(Clone, Debug)]
enum Def {
    Input {
        value: ValueId,
        span: Span,
    },
    Target {
        index: usize,
        span: Span,
    },
    Value {
        value: ValueId,
        span: Span,
    },
    /// Its definition had an error: uses are accepted silently.
    Poisoned,
}

impl Def {
    fn span(&self) -> Option<Span> {
        match self {
            Def::Input { span, .. } | Def::Target { span, .. } | Def::Value { span, .. } => {
                Some(*span)
            }
            Def::Poisoned => None,
        }
    }
}

/// The state of lowering one model.
struct Lowerer<'a> {
    model: &'a ast::Model,
    diags: &'a mut Diagnostics,
    graph: Graph,
    params: Vec<crate::ir::Param>,
    states: Vec<crate::ir::State>,
    /// Running-statistics updates waiting for the end of the forward pass.
    commits: Vec<batch_norm::PendingCommit>,
    inputs: Vec<Binding>,
    targets: Vec<Binding>,
    target_kinds: Vec<ast::TargetKind>,
    scope: HashMap<String, Def>,
    /// Each `let` and input with the number of times it is used, in definition order.
    uses: Vec<(String, Span, usize, &'static str)>,
    /// The index in `uses` of each name's latest definition, so that counting a use is one
    /// lookup rather than a scan.
    use_index: HashMap<String, usize>,
    /// Dense layers by name, for duplicate detection and reuse (`-> name`).
    layers: HashMap<String, layers::Layer>,
    /// Names of layers whose defining stage failed: applying one again is not reported as
    /// an unknown layer, since its definition already has an error.
    failed_layers: HashSet<String>,
    requires_grad: Vec<bool>,
    errors_before: usize,
    /// Whether a `let` may rebind a value's name: inside a `repeat` block.
    rebinding: bool,
    /// The name of each `repeat` block's copies, where it is written.
    repeats: HashMap<String, Span>,
    /// The scan records of each recurrent layer's applications, for `h_n` and `c_n`.
    records: HashMap<String, Vec<ValueId>>,
    /// Where `h_n` or `c_n` first read each recurrent layer's final state: applying the layer
    /// again after that would make the state ambiguous.
    finals_read: HashMap<String, Span>,
}

impl<'a> Lowerer<'a> {
    fn new(model: &'a ast::Model, diags: &'a mut Diagnostics) -> Self {
        let errors_before = diags.len();
        Lowerer {
            model,
            diags,
            graph: Graph::default(),
            params: Vec::new(),
            states: Vec::new(),
            commits: Vec::new(),
            inputs: Vec::new(),
            targets: Vec::new(),
            target_kinds: Vec::new(),
            scope: HashMap::new(),
            uses: Vec::new(),
            use_index: HashMap::new(),
            layers: HashMap::new(),
            failed_layers: HashSet::new(),
            requires_grad: Vec::new(),
            errors_before,
            rebinding: false,
            repeats: HashMap::new(),
            records: HashMap::new(),
            finals_read: HashMap::new(),
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn push(
        &mut self,
        op: Op,
        args: Vec<ValueId>,
        ty: Type,
        name: String,
        phase: Phase,
        span: Span,
    ) -> ValueId {
        self.graph.push(
            Node {
                op,
                args,
                ty,
                phase,
                name,
            },
            span,
        )
    }

    /// A node without arguments (an input or a target), named after its declaration.
    fn leaf(&mut self, op: Op, ty: Type, name: &ast::Ident, phase: Phase, span: Span) -> ValueId {
        self.push(op, vec![], ty, name.name.clone(), phase, span)
    }

    fn run(mut self) -> Option<Program> {
        let mut loss_decl = None;
        let mut output_decl = None;
        let mut optimizer_call = None;
        for item in &self.model.items {
            match item {
                ast::Item::Input(decl) => self.input(decl),
                ast::Item::Target(decl) => self.target(decl),
                ast::Item::Let(l) => self.let_stmt(l),
                ast::Item::Repeat(r) => self.repeat(r),
                ast::Item::Loss(decl) => {
                    self.once("E0306", "loss", &mut loss_decl, decl, decl.span)
                }
                ast::Item::Output(decl) => {
                    self.once("E0308", "output", &mut output_decl, decl, decl.span)
                }
                ast::Item::Optimizer(call) => {
                    self.once("E0404", "optimizer", &mut optimizer_call, call, call.span)
                }
            }
        }
        self.commit_states();
        let declared_inputs = self
            .model
            .items
            .iter()
            .any(|i| matches!(i, ast::Item::Input(_)));
        if !declared_inputs {
            let span = self.model.name.span;
            self.error(
                Diagnostic::error(
                    "E0501",
                    span,
                    format!("model `{}` has no input", self.model.name.name),
                )
                .with_help("declare one, for example `input x: [784];`"),
            );
        }
        let outputs = output_decl.map(|(d, _)| self.outputs(d));
        let loss = match loss_decl {
            Some((decl, _)) => self.loss(decl),
            None if output_decl.is_some() => None,
            None => {
                let span = self.model.name.span;
                self.error(
                    Diagnostic::error(
                        "E0306",
                        span,
                        format!("model `{}` has no loss", self.model.name.name),
                    )
                    .with_help("add a loss, for example `loss = mse(p, y);`")
                    .with_help("or, to train it from gradients computed elsewhere, declare what it returns with `output p;`"),
                );
                None
            }
        };
        let optimizer = match optimizer_call {
            Some((call, _)) => self.optimizer(call),
            None => {
                let span = self.model.name.span;
                self.error(
                    Diagnostic::error(
                        "E0404",
                        span,
                        format!("model `{}` has no optimizer", self.model.name.name),
                    )
                    .with_help("add one, for example `optimizer = adam(lr = 1e-3);`"),
                );
                None
            }
        };
        self.report_unused();
        if self.diags.len() > self.errors_before {
            return None;
        }
        let outputs = match outputs {
            Some(o) => o?,
            None => loss.as_ref()?.predictions.clone(),
        };
        self.check_steps(loss.as_ref().map_or(&[][..], |l| &l.terms), &outputs);
        self.check_generated_names(&outputs);
        if self.diags.len() > self.errors_before {
            return None;
        }
        Some(Program {
            name: self.model.name.name.clone(),
            span: self.model.span,
            graph: self.graph,
            params: self.params,
            states: self.states,
            requires_grad: self.requires_grad,
            inputs: self.inputs,
            targets: self.targets,
            outputs,
            loss: loss.as_ref().map(|l| l.total),
            loss_terms: loss.as_ref().map_or_else(Vec::new, |l| l.terms.clone()),
            metric: loss.and_then(|l| l.metric),
            optimizer: optimizer?,
            backward: None,
            pullback: Default::default(),
            inference: None,
            step: Err("the step pass has not run".into()),
            plan: None,
        })
    }

    /// Records a statement that may appear only once per model.
    fn once<T>(
        &mut self,
        code: &'static str,
        what: &str,
        slot: &mut Option<(&'a T, Span)>,
        item: &'a T,
        span: Span,
    ) {
        match slot {
            Some((_, first)) => {
                let first = *first;
                self.error(
                    Diagnostic::error(code, span, format!("the {what} is set twice"))
                        .with_span_label("second definition")
                        .with_label(first, "first definition")
                        .with_help(format!(
                            "a model has exactly one {what}; remove one of them"
                        )),
                );
            }
            None => *slot = Some((item, span)),
        }
    }

    /// Binds a new name in the model's scope, reporting a clash with an earlier one.
    fn define(&mut self, name: &ast::Ident, def: Def, kind: &'static str) {
        let previous = self.scope.get(&name.name);
        // Inside a `repeat` block a `let` may rebind an earlier value, never an input or a
        // target.
        let rebinds = self.rebinding && matches!(previous, Some(Def::Value { .. } | Def::Poisoned));
        if let Some(prev) = previous.and_then(Def::span).filter(|_| !rebinds) {
            let help = if self.rebinding {
                "inside `repeat` a `let` may rebind an earlier value, but not an input or a target; start from a value, as in `let h = x;` before the block"
            } else {
                "every input, target and `let` in a model needs its own name"
            };
            self.error(
                Diagnostic::error(
                    "E0102",
                    name.span,
                    format!("`{}` is defined twice", name.name),
                )
                .with_span_label("redefined here")
                .with_label(prev, "first defined here")
                .with_help(help),
            );
            if self.rebinding {
                // The block's later statements and copies meant the new value: quiet their uses.
                self.scope.insert(name.name.clone(), Def::Poisoned);
            }
            return;
        }
        if (kind == "input" || kind == "target") && crate::reserved::is_reserved(&name.name) {
            self.error(
                Diagnostic::error("E0106", name.span, format!("`{}` cannot name {} {kind}", name.name, if kind == "input" { "an" } else { "a" }))
                    .with_span_label("reserved name")
                    .with_note(format!("{kind}s become parameters of the generated Rust methods, where `{}` is a keyword or already taken", name.name))
                    .with_help(format!("rename it, for example to `{}_data`", name.name)),
            );
        }
        self.use_index.insert(name.name.clone(), self.uses.len());
        self.uses.push((name.name.clone(), name.span, 0, kind));
        self.scope.insert(name.name.clone(), def);
    }

    fn mark_used(&mut self, name: &str) {
        if let Some(&i) = self.use_index.get(name) {
            self.uses[i].2 += 1;
        }
    }

    fn report_unused(&mut self) {
        // Like rustc, stay quiet about unused values when there are real errors: they are
        // usually a consequence (a failed loss leaves its prediction unused).
        if self.diags.len() > self.errors_before {
            return;
        }
        // The copies of a `repeat` block share their spans: each unused `let` is reported once.
        let mut seen = HashSet::new();
        let unused: Vec<(String, Span, &'static str)> = self
            .uses
            .iter()
            .filter(|u| u.2 == 0 && seen.insert(u.1))
            .map(|u| (u.0.clone(), u.1, u.3))
            .collect();
        for (name, span, kind) in unused {
            let poisoned = matches!(self.scope.get(&name), Some(Def::Poisoned));
            if poisoned {
                continue;
            }
            self.error(
                Diagnostic::error("E0104", span, format!("{kind} `{name}` is never used"))
                    .with_span_label("defined here but never used")
                    .with_help(if kind == "target" {
                        "score a prediction against it in the loss, or remove it"
                    } else {
                        "use it in a later `let`, an `output` or the loss, or remove it"
                    }),
            );
        }
    }

    /// Checks a shape literal: at least one dimension, none zero or absurdly large.
    fn shape(&mut self, lit: &ast::ShapeLit, what: &str) -> Option<Vec<usize>> {
        if lit.dims.is_empty() {
            self.error(
                Diagnostic::error("E0206", lit.span, format!("{what} has an empty shape"))
                    .with_help("give the size of one sample, for example `[784]`; the batch dimension is implicit"),
            );
            return None;
        }
        let mut dims = Vec::new();
        let mut total: u64 = 1;
        for d in &lit.dims {
            match d.value {
                Some(0) => {
                    self.error(
                        Diagnostic::error(
                            "E0206",
                            d.span,
                            format!("{what} has a dimension of size 0"),
                        )
                        .with_help("every dimension must be at least 1"),
                    );
                    return None;
                }
                Some(v) if total.saturating_mul(v) <= 1 << 31 => {
                    total *= v;
                    dims.push(v as usize);
                }
                _ => {
                    self.error(
                        Diagnostic::error("E0002", d.span, format!("{what} is too large"))
                            .with_note("one sample may hold at most 2^31 values"),
                    );
                    return None;
                }
            }
        }
        Some(dims)
    }

    fn input(&mut self, decl: &ast::InputDecl) {
        let Some(dims) = self.shape(&decl.shape, &format!("input `{}`", decl.name.name)) else {
            self.define(&decl.name, Def::Poisoned, "input");
            return;
        };
        let what = format!("input `{}`", decl.name.name);
        let ty = match &decl.ids {
            None => Type::float(Shape::batched(&dims)),
            Some((count, span)) => {
                let Some(range) = self.id_range(count, &what, "ids") else {
                    self.define(&decl.name, Def::Poisoned, "input");
                    return;
                };
                if let Some(grad) = decl.requires_grad {
                    self.error(
                        Diagnostic::error("E0210", grad, format!("{what} holds integer ids, which have no gradient"))
                            .with_label(*span, "declared as ids here")
                            .with_help("remove `requires_grad`; the embedding that reads the ids has a gradient for its table"),
                    );
                }
                Type::ids(range, Shape::batched(&dims))
            }
        };
        let v = self.leaf(
            Op::Input(self.inputs.len()),
            ty,
            &decl.name,
            Phase::Forward,
            decl.span,
        );
        self.inputs.push(Binding {
            name: decl.name.name.clone(),
            value: v,
            span: decl.span,
        });
        self.requires_grad.push(decl.requires_grad.is_some());
        self.define(
            &decl.name,
            Def::Input {
                value: v,
                span: decl.name.span,
            },
            "input",
        );
    }

    fn target(&mut self, decl: &ast::TargetDecl) {
        let what = format!("target `{}`", decl.name.name);
        let ty = match &decl.kind {
            ast::TargetKind::Float(lit) => self
                .shape(lit, &what)
                .map(|d| Type::float(Shape::batched(&d))),
            ast::TargetKind::Classes { count, shape, .. } => {
                let dims = match shape {
                    Some(lit) => self.shape(lit, &what),
                    None => Some(Vec::new()),
                };
                let range = self.id_range(count, &what, "classes");
                dims.zip(range)
                    .map(|(d, range)| Type::ids(range, Shape::batched(&d)))
            }
        };
        let Some(ty) = ty else {
            self.define(&decl.name, Def::Poisoned, "target");
            return;
        };
        let index = self.targets.len();
        let v = self.leaf(Op::Target(index), ty, &decl.name, Phase::Loss, decl.span);
        self.targets.push(Binding {
            name: decl.name.name.clone(),
            value: v,
            span: decl.span,
        });
        self.target_kinds.push(decl.kind.clone());
        self.define(
            &decl.name,
            Def::Target {
                index,
                span: decl.name.span,
            },
            "target",
        );
    }

    /// Checks the `N` of `class(N)` or `ids(N)`: at least 2 classes or 1 id, at most 2^31.
    fn id_range(&mut self, count: &ast::Int, what: &str, kind: &str) -> Option<usize> {
        let least = if kind == "classes" { 2 } else { 1 };
        match count.value {
            Some(n) if (least..=1 << 31).contains(&n) => Some(n as usize),
            Some(n) if n > 1 << 31 => {
                self.error(
                    Diagnostic::error("E0002", count.span, format!("{what} has too many {kind}"))
                        .with_note(format!("a model may have at most 2^31 {kind}")),
                );
                None
            }
            _ if kind == "classes" => {
                self.error(
                    Diagnostic::error(
                        "E0206",
                        count.span,
                        format!("{what} needs at least 2 classes"),
                    )
                    .with_help(
                        "for a yes/no target use `target y: [1];` with binary_cross_entropy",
                    ),
                );
                None
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0206",
                        count.span,
                        format!("{what} needs a range of at least 1 id"),
                    )
                    .with_help("write the vocabulary size, as in `ids(65)`"),
                );
                None
            }
        }
    }

    /// Resolves a value name used as the start of a chain or a loss argument.
    fn resolve(&mut self, name: &ast::Ident) -> Option<ValueId> {
        match self.scope.get(&name.name).cloned() {
            Some(Def::Input { value, .. }) | Some(Def::Value { value, .. }) => {
                self.mark_used(&name.name);
                Some(value)
            }
            Some(Def::Target { span, .. }) => {
                self.error(
                    Diagnostic::error("E0103", name.span, format!("target `{}` cannot be used as a layer input", name.name))
                        .with_span_label("a target")
                        .with_label(span, "declared as a target here")
                        .with_help("targets are only known during training; use them as the second argument of the loss"),
                );
                None
            }
            Some(Def::Poisoned) => {
                self.mark_used(&name.name);
                None
            }
            None => {
                // A suggestion compares the name with every name in scope; past the
                // diagnostics that are shown, that would only make a flood of errors quadratic.
                let candidates: Vec<&str> = if self.diags.len() < crate::diag::SHOWN {
                    self.scope.keys().map(String::as_str).collect()
                } else {
                    Vec::new()
                };
                let mut d = Diagnostic::error(
                    "E0103",
                    name.span,
                    format!(
                        "cannot find value `{}` in model `{}`",
                        name.name, self.model.name.name
                    ),
                )
                .with_span_label("not defined");
                d = match suggest(&name.name, candidates.into_iter()) {
                    Some(s) => d.with_help(format!("a value with a similar name exists: `{s}`")),
                    None => d.with_help(
                        "declare it with `input` or define it with `let` before this use",
                    ),
                };
                self.error(d);
                None
            }
        }
    }

    fn let_stmt(&mut self, l: &ast::Let) {
        let value = self.expr(&l.value, Some(&l.name.name));
        let def = match value {
            Some(value) => Def::Value {
                value,
                span: l.name.span,
            },
            None => Def::Poisoned,
        };
        self.define(&l.name, def, "value");
    }
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}
