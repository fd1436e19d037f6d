//! Lowering of the loss and the optimizer: the tables of known loss functions and optimizers,
//! their options with PyTorch's defaults, and the checks that tie a loss to its target.

use super::args::{self, Bound, BoundArgs, Kind, Param};
use super::{suggest, Def, Lowerer};
use crate::diag::{Diagnostic, Span};
use crate::ir::{
    Act, Binding, Const, Hyper, LossKind, LossSpec, Metric, MetricKind, Op, Optimizer,
    OptimizerKind, Phase, Reduction, Shape, Type, ValueId,
};
use crate::syntax::ast;

/// How a loss's kind follows from its name and options.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    /// A fixed kind (element-wise losses, nll).
    Fixed(LossKind),
    /// Binary cross-entropy; `from_logits` picks the logits form.
    Binary,
    Categorical,
    Sparse,
    /// PyTorch's `cross_entropy`: sparse for class targets, categorical for float targets.
    Either,
}

const PREDICTION: Param = Param {
    name: "prediction",
    kind: Kind::Name,
    default: None,
    hint: "write the loss as `mse(prediction, target)`",
};
const TARGET: Param = Param {
    name: "target",
    kind: Kind::Name,
    default: None,
    hint: "write the loss as `mse(prediction, target)`",
};
const REDUCTION: Param = Param {
    name: "reduction",
    kind: Kind::Choice {
        names: &["mean", "sum"],
        or_number: false,
    },
    default: Some(Bound::Name(String::new())),
    hint: "`reduction = mean` averages over the terms (the default), `reduction = sum` adds them",
};
const SMOOTHING: Param = Param {
    name: "label_smoothing",
    kind: Kind::UNIT_OPEN,
    default: Some(Bound::Real(0.0)),
    hint: "label smoothing is in [0, 1), such as `label_smoothing = 0.1`",
};
const FROM_LOGITS: Param = Param {
    name: "from_logits",
    kind: Kind::Bool,
    default: Some(Bound::Bool(false)),
    hint: "write `from_logits = true` when the prediction is raw scores rather than probabilities",
};
const DELTA: Param = Param {
    name: "delta",
    kind: Kind::POSITIVE,
    default: Some(Bound::Real(1.0)),
    hint: "delta is the positive threshold between the quadratic and linear parts",
};

const IGNORE: Param = Param {
    name: "ignore_index",
    kind: Kind::Integer {
        min: 0,
        words: "a label, 0 or more",
    },
    // No label is ignored unless one is named; the bound value is never negative.
    default: Some(Bound::Signed(-1)),
    hint: "samples labelled `ignore_index` (padding, say) add nothing to the loss, as \
           `ignore_index = 0` does in PyTorch",
};

const ELEMENTWISE: &[Param] = &[PREDICTION, TARGET, REDUCTION];
const LABELS: &[Param] = &[
    PREDICTION,
    TARGET,
    REDUCTION,
    SMOOTHING,
    FROM_LOGITS,
    IGNORE,
];
const NLL: &[Param] = &[PREDICTION, TARGET, REDUCTION, IGNORE];
const HUBER: &[Param] = &[PREDICTION, TARGET, REDUCTION, DELTA];
const CLASSIFY: &[Param] = &[PREDICTION, TARGET, REDUCTION, SMOOTHING, FROM_LOGITS];
const WITH_LOGITS: &[Param] = &[PREDICTION, TARGET, REDUCTION, SMOOTHING];

const LOSSES: &[(&str, Family, &[Param])] = &[
    (
        "mse",
        Family::Fixed(LossKind::MeanSquaredError),
        ELEMENTWISE,
    ),
    (
        "mean_squared_error",
        Family::Fixed(LossKind::MeanSquaredError),
        ELEMENTWISE,
    ),
    (
        "mae",
        Family::Fixed(LossKind::MeanAbsoluteError),
        ELEMENTWISE,
    ),
    (
        "mean_absolute_error",
        Family::Fixed(LossKind::MeanAbsoluteError),
        ELEMENTWISE,
    ),
    (
        "l1",
        Family::Fixed(LossKind::MeanAbsoluteError),
        ELEMENTWISE,
    ),
    ("huber", Family::Fixed(LossKind::Huber), HUBER),
    ("binary_cross_entropy", Family::Binary, CLASSIFY),
    (
        "binary_cross_entropy_with_logits",
        Family::Fixed(LossKind::BinaryCrossEntropyWithLogits),
        WITH_LOGITS,
    ),
    ("categorical_cross_entropy", Family::Categorical, CLASSIFY),
    ("sparse_categorical_cross_entropy", Family::Sparse, LABELS),
    ("cross_entropy", Family::Either, LABELS),
    ("nll", Family::Fixed(LossKind::NegativeLogLikelihood), NLL),
];

impl Lowerer<'_> {
    /// Lowers `loss = term + term ...`; returns the total, its terms, their predictions (the
    /// default outputs) and the metric.
    pub(super) fn loss(&mut self, decl: &ast::LossDecl) -> Option<LoweredLoss> {
        let mut terms = Vec::new();
        let mut predictions: Vec<Binding> = Vec::new();
        let mut metric = None;
        let mut ok = true;
        for term in &decl.terms {
            match self.loss_term(term, decl.terms.len() == 1) {
                Some((v, pred, m)) => {
                    terms.push(v);
                    if !predictions.iter().any(|b| b.value == pred.value) {
                        predictions.push(pred);
                    }
                    metric = metric.or(m);
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let mut total = terms[0];
        for (i, t) in terms.iter().enumerate().skip(1) {
            let name = if i + 1 == terms.len() {
                "loss"
            } else {
                "loss.partial"
            };
            total = self.push(
                Op::Add,
                vec![total, *t],
                Type::float(Shape::scalar()),
                name.into(),
                Phase::Loss,
                decl.span,
            );
        }
        Some(LoweredLoss {
            total,
            terms,
            predictions,
            metric,
        })
    }

    fn loss_term(
        &mut self,
        term: &ast::LossTerm,
        only: bool,
    ) -> Option<(ValueId, Binding, Option<Metric>)> {
        let call = &term.call;
        let func = &call.func.name;
        let Some(&(_, family, sig)) = LOSSES.iter().find(|(n, _, _)| n == func) else {
            let names: Vec<&str> = LOSSES.iter().map(|(n, _, _)| *n).collect();
            let mut d = Diagnostic::error(
                "E0301",
                call.func.span,
                format!("unknown loss function `{func}`"),
            )
            .with_span_label("not a known loss");
            d = match suggest(func, names.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!("the known losses are {}", args::quoted(&names))),
            };
            self.error(d);
            return None;
        };
        let weight = match &term.weight {
            None => 1.0,
            Some((text, span)) => match text.parse::<f64>() {
                Ok(w) if args::fits_f32(w) && w > 0.0 => w,
                parsed => {
                    let found = match parsed {
                        Ok(w) if w > 0.0 => args::TOO_LARGE.to_string(),
                        _ => args::quote_literal(text),
                    };
                    self.error(
                        Diagnostic::error("E0403", *span, format!("the weight of a loss term must be a positive number, found {found}"))
                            .with_help("write a factor such as `0.5 * mse(p, y)`, or drop the term"),
                    );
                    return None;
                }
            },
        };
        let what = format!("loss `{func}`");
        let errors = self.diags.len();
        let bound = args::bind(&what, call.span, Some(&call.args), sig, self.diags);
        let (pred_name, pred_span) = bound.name(0)?;
        let (target_name, target_span) = bound.name(1)?;
        let (pred_name, target_name) = (pred_name.to_string(), target_name.to_string());
        let target = self.loss_target(func, &target_name, target_span);
        let pred = self.loss_prediction(func, &pred_name, pred_span)?;
        let index = target?;
        if self.diags.len() > errors {
            return None;
        }
        let option = |name: &str| sig.iter().position(|p| p.name == name);
        let from_logits = option("from_logits").and_then(|i| bound.bool(i)) == Some(true);
        let sparse_target = matches!(self.target_kinds[index], ast::TargetKind::Classes { .. });
        let kind = match family {
            Family::Fixed(k) => k,
            Family::Binary if from_logits => LossKind::BinaryCrossEntropyWithLogits,
            Family::Binary => LossKind::BinaryCrossEntropy,
            Family::Sparse | Family::Either if sparse_target || family == Family::Sparse => {
                if from_logits {
                    LossKind::SparseCrossEntropyWithLogits
                } else {
                    LossKind::SparseCrossEntropy
                }
            }
            _ if from_logits => LossKind::CategoricalCrossEntropyWithLogits,
            _ => LossKind::CategoricalCrossEntropy,
        };
        if from_logits {
            self.check_logits(func, pred, &pred_name, pred_span)?;
        }
        let ignore = option("ignore_index")
            .and_then(|i| Some((bound.signed(i)?, bound.span(i)?)))
            .and_then(|(v, span)| (v >= 0).then_some((v as u32, span)));
        if let (Some((_, span)), false) = (ignore, kind.sparse()) {
            self.error(
                Diagnostic::error(
                    "E0403",
                    span,
                    format!("`ignore_index` of loss `{func}` needs class labels, and `{target_name}` holds float targets"),
                )
                .with_span_label("only a class label can be ignored")
                .with_help("declare the target as `class(N)` labels, or drop `ignore_index`"),
            );
            return None;
        }
        let spec = LossSpec {
            kind,
            reduction: match option("reduction").and_then(|i| bound.choice(i)) {
                Some("sum") => Reduction::Sum,
                _ => Reduction::Mean,
            },
            smoothing: Const::new(real(&bound, option("label_smoothing"), 0.0)),
            delta: Const::new(real(&bound, option("delta"), 1.0)),
            ignore: ignore.map(|(v, _)| v),
            weight: Const::new(weight),
        };
        self.check_loss_target(func, kind, pred, &pred_name, pred_span, index, target_span)?;
        let target_value = self.targets[index].value;
        let name = if only {
            "loss".to_string()
        } else {
            format!("loss.{func}")
        };
        let loss = self.push(
            Op::Loss(spec),
            vec![pred, target_value],
            Type::float(Shape::scalar()),
            name,
            Phase::Loss,
            term.span,
        );
        let metric_kind = match kind {
            k if k.sparse() => Some(MetricKind::ArgmaxLabel {
                ignore: spec.ignore,
            }),
            LossKind::CategoricalCrossEntropy | LossKind::CategoricalCrossEntropyWithLogits => {
                Some(MetricKind::ArgmaxMatch)
            }
            LossKind::BinaryCrossEntropy => Some(MetricKind::Threshold(0.5)),
            LossKind::BinaryCrossEntropyWithLogits => Some(MetricKind::Threshold(0.0)),
            _ => None,
        };
        let metric = metric_kind.map(|kind| Metric {
            kind,
            prediction: pred,
            target: target_value,
        });
        let binding = Binding {
            name: pred_name,
            value: pred,
            span: pred_span,
        };
        Some((loss, binding, metric))
    }

    /// The target argument: it must be a declared target. Returns its index.
    fn loss_target(&mut self, func: &str, target_name: &str, target_span: Span) -> Option<usize> {
        match self.scope.get(target_name).cloned() {
            Some(Def::Target { index, .. }) => {
                self.mark_used(target_name);
                Some(index)
            }
            Some(Def::Poisoned) => None,
            Some(def) => {
                let what = if matches!(def, Def::Input { .. }) {
                    "an input"
                } else {
                    "computed by the model"
                };
                self.error(
                    Diagnostic::error("E0305", target_span, format!("the second argument of `{func}` must be a target, but `{target_name}` is {what}"))
                        .with_span_label("not a target")
                        .with_help(format!("declare the expected values with `target {target_name}: [..];` and pass that")),
                );
                self.mark_used(target_name);
                None
            }
            None => {
                let ident = ast::Ident {
                    name: target_name.to_string(),
                    span: target_span,
                };
                self.resolve(&ident);
                None
            }
        }
    }

    /// The prediction argument: a value computed by layers.
    fn loss_prediction(&mut self, func: &str, pred_name: &str, pred_span: Span) -> Option<ValueId> {
        if let Some(Def::Target { .. }) = self.scope.get(pred_name) {
            self.error(
                Diagnostic::error("E0305", pred_span, format!("the first argument of `{func}` must be the model's prediction, but `{pred_name}` is a target"))
                    .with_help(format!("write `{func}(prediction, {pred_name})`")),
            );
            return None;
        }
        let pred = self.resolve(&ast::Ident {
            name: pred_name.to_string(),
            span: pred_span,
        })?;
        self.expect_float(pred, &format!("`{func}`"), pred_name, pred_span)?;
        // A reshape is a view of its operand, so `x -> flatten` is still the input.
        let root = self.graph.storage_root(pred);
        if matches!(self.graph.node(root).op, Op::Input(_)) {
            self.error(
                Diagnostic::error(
                    "E0305",
                    pred_span,
                    if root == pred {
                        format!("`{pred_name}` is an input, so the loss would not depend on any parameter")
                    } else {
                        format!(
                            "`{pred_name}` only reshapes input `{}`, so the loss would not depend on any parameter",
                            self.graph.node(root).name
                        )
                    },
                )
                .with_help("pass a value computed by layers, such as the result of a `let`"),
            );
            return None;
        }
        Some(pred)
    }

    /// `from_logits = true` on a value that already went through softmax or sigmoid would
    /// normalise twice: almost always a mistake, so it is an error.
    fn check_logits(
        &mut self,
        func: &str,
        pred: ValueId,
        pred_name: &str,
        span: Span,
    ) -> Option<()> {
        let what = match self.graph.node(pred).op {
            Op::Softmax => "softmax",
            Op::Activation(Act::Sigmoid) => "sigmoid",
            _ => return Some(()),
        };
        self.error(
            Diagnostic::error("E0307", span, format!("`{func}` is told `from_logits = true` but `{pred_name}` is a {what} output"))
                .with_label(self.graph.span(pred), format!("{what} applied here"))
                .with_help(format!("drop `from_logits = true` (nnc then computes the loss from the logits before the {what} anyway), or remove the {what}")),
        );
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn check_loss_target(
        &mut self,
        func: &str,
        kind: LossKind,
        pred: ValueId,
        pred_name: &str,
        pred_span: Span,
        index: usize,
        target_span: Span,
    ) -> Option<()> {
        let target_name = self.targets[index].name.clone();
        let pred_shape = self.graph.ty(pred).shape.clone();
        let target_decl = self.targets[index].span;
        match (kind.sparse(), &self.target_kinds[index]) {
            (true, ast::TargetKind::Classes { count, shape, .. }) => {
                let classes = count.value? as usize;
                // One label per row: the prediction is the target's shape plus a last axis of
                // `classes` scores.
                let target_shape = self.graph.ty(self.targets[index].value).shape.clone();
                let mut expected = target_shape.clone();
                expected.0.push(crate::ir::Dim::Fixed(classes));
                if pred_shape != expected {
                    let labels = match shape {
                        Some(_) => format!("{} labels per sample", target_shape.elems_per_sample()),
                        None => "one label per sample".to_string(),
                    };
                    let rows = pred_shape.rows_per_sample();
                    let found = format!(
                        "`{pred_name}` has shape {pred_shape}: {rows} row{} of {} scores per sample",
                        if rows == 1 { "" } else { "s" },
                        pred_shape.row_width()
                    );
                    let mut helps = Vec::new();
                    if pred_shape.row_width() == classes && shape.is_none() {
                        helps.push(format!("for a label per position declare `target {target_name}: {} class({classes});`", Shape(pred_shape.0[1..pred_shape.rank() - 1].to_vec())));
                        helps.push("for one label per sample flatten the value before the last dense layer, as in `x -> flatten -> dense out(...)`".to_string());
                    } else {
                        helps.push(format!(
                            "make the last dense layer produce {classes} outputs"
                        ));
                    }
                    let d = Diagnostic::error(
                            "E0304",
                            pred_span,
                            format!("`{func}` scores {labels} of {classes} classes (target `{target_name}`), so it needs a prediction of shape {expected}, but {found}"),
                        )
                        .with_span_label(format!("expected shape {expected}"))
                        .with_label(target_decl, format!("`{target_name}` declared with {labels} of {classes} classes here"))
                        .with_label(self.graph.span(pred), format!("`{pred_name}` gets shape {pred_shape} here"));
                    let d = helps.into_iter().fold(d, |d, h| d.with_help(h));
                    self.error(d);
                    return None;
                }
            }
            (true, ast::TargetKind::Float(_)) => {
                self.error(
                    Diagnostic::error("E0303", target_span, format!("`{func}` expects class labels but target `{target_name}` holds float values"))
                        .with_label(target_decl, "declared here")
                        .with_help(format!("declare `target {target_name}: class(N);` for N classes, or use `categorical_cross_entropy` for one-hot float targets")),
                );
                return None;
            }
            (false, ast::TargetKind::Classes { .. }) => {
                self.error(
                    Diagnostic::error("E0303", target_span, format!("`{func}` compares float values but target `{target_name}` holds class labels"))
                        .with_label(target_decl, "declared here")
                        .with_help(format!("use `sparse_categorical_cross_entropy({pred_name}, {target_name})` for class labels")),
                );
                return None;
            }
            (false, ast::TargetKind::Float(_)) => {
                let target_shape = self.graph.ty(self.targets[index].value).shape.clone();
                if pred_shape != target_shape {
                    self.error(
                        Diagnostic::error(
                            "E0304",
                            pred_span,
                            format!("`{func}` expects `{pred_name}` and `{target_name}` to have the same shape, but `{pred_name}` has shape {pred_shape} and `{target_name}` has {target_shape}"),
                        )
                        .with_span_label(format!("shape {pred_shape}"))
                        .with_label(target_decl, format!("`{target_name}` declared with shape {target_shape} here"))
                        .with_label(self.graph.span(pred), format!("`{pred_name}` gets shape {pred_shape} here"))
                        .with_help(match target_shape.sample_dims().as_slice() {
                            [n] => format!("make the last dense layer produce {n} output{}", if *n == 1 { "" } else { "s" }),
                            _ => "make the prediction's shape match the target's".to_string(),
                        }),
                    );
                    return None;
                }
                if kind.per_row() && pred_shape.rank() < 2 {
                    self.error(
                        Diagnostic::error("E0304", pred_span, format!("`{func}` expects class scores along a last axis but `{pred_name}` has shape {pred_shape}"))
                            .with_help("declare the target as `[classes]` and make the prediction a vector"),
                    );
                    return None;
                }
            }
        }
        Some(())
    }

    pub(super) fn optimizer(&mut self, call: &ast::Call) -> Option<Optimizer> {
        let func = call.func.name.as_str();
        let Some(&(_, kind, sig)) = OPTIMIZERS.iter().find(|(n, _, _)| *n == func) else {
            let names: Vec<&str> = OPTIMIZERS.iter().map(|(n, _, _)| *n).collect();
            let mut d = Diagnostic::error(
                "E0401",
                call.func.span,
                format!("unknown optimizer `{func}`"),
            )
            .with_span_label("not a known optimizer");
            d = match suggest(func, names.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!("the known optimizers are {}", args::quoted(&names))),
            };
            self.error(d);
            return None;
        };
        let what = format!("optimizer `{func}`");
        let errors = self.diags.len();
        let b = args::bind(&what, call.span, Some(&call.args), sig, self.diags);
        if self.diags.len() > errors {
            return None;
        }
        let mut hyper = Vec::new();
        let mut clip = None;
        let mut matrices_only = false;
        for (i, p) in sig.iter().enumerate() {
            match b.values.get(i)?.as_ref()?.0 {
                Bound::Name(ref rule) if p.name == "decay" => matrices_only = rule == "matrices",
                Bound::Real(x) if p.name == "clip_grad_norm" => clip = (x > 0.0).then_some(x),
                Bound::Real(x) => hyper.push((p.name, Hyper::Real(x))),
                Bound::Bool(x) => hyper.push((p.name, Hyper::Bool(x))),
                _ => return None,
            }
        }
        let optimizer = Optimizer {
            kind,
            hyper,
            clip_grad_norm: clip,
            decay_matrices_only: matrices_only,
        };
        if optimizer.flag("nesterov")
            && (optimizer.real("momentum") == 0.0 || optimizer.real("dampening") != 0.0)
        {
            self.error(
                Diagnostic::error(
                    "E0403",
                    call.span,
                    "nesterov momentum needs `momentum` above 0 and `dampening = 0`",
                )
                .with_help(if optimizer.real("momentum") == 0.0 {
                    "add a momentum such as `momentum = 0.9`, as PyTorch requires"
                } else {
                    "remove `dampening`, or set `dampening = 0`, as PyTorch requires"
                }),
            );
            return None;
        }
        Some(optimizer)
    }
}

/// What lowering the loss statement produced.
pub(super) struct LoweredLoss {
    pub total: ValueId,
    pub terms: Vec<ValueId>,
    pub predictions: Vec<Binding>,
    pub metric: Option<Metric>,
}

fn real(b: &BoundArgs, i: Option<usize>, default: f64) -> f64 {
    i.and_then(|i| b.real(i)).unwrap_or(default)
}

const LR_HINT: &str = "the learning rate is a small positive number, such as `lr = 1e-3`";
const WD_HINT: &str =
    "weight decay is zero or a small positive number, such as `weight_decay = 1e-4`";
const BETA_HINT: &str =
    "betas are in [0, 1); PyTorch's defaults are `beta1 = 0.9` and `beta2 = 0.999`";
const MOMENTUM_HINT: &str = "momentum is zero or a positive number, usually `momentum = 0.9`";

const fn lr(default: f64) -> Param {
    Param {
        name: "lr",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(default)),
        hint: LR_HINT,
    }
}
const fn weight_decay(default: f64) -> Param {
    Param {
        name: "weight_decay",
        kind: Kind::NON_NEGATIVE,
        default: Some(Bound::Real(default)),
        hint: WD_HINT,
    }
}
const fn eps(default: f64) -> Param {
    Param {
        name: "eps",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(default)),
        hint: "eps keeps the update finite; it is a small positive number such as `eps = 1e-8`",
    }
}
const fn flag(name: &'static str, hint: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint,
    }
}
const MOMENTUM: Param = Param {
    name: "momentum",
    kind: Kind::NON_NEGATIVE,
    default: Some(Bound::Real(0.0)),
    hint: MOMENTUM_HINT,
};
const fn beta(name: &'static str, default: f64) -> Param {
    Param {
        name,
        kind: Kind::UNIT_OPEN,
        default: Some(Bound::Real(default)),
        hint: BETA_HINT,
    }
}
/// Global gradient-norm clipping, shared by every optimizer; 0 (the default) means none.
const CLIP: Param = Param {
    name: "clip_grad_norm",
    kind: Kind::POSITIVE,
    default: Some(Bound::Real(0.0)),
    hint: "the largest allowed L2 norm of all gradients together, such as `clip_grad_norm = 1.0`",
};

const DECAY: Param = Param {
    name: "decay",
    kind: Kind::Choice {
        names: &["all", "matrices"],
        or_number: false,
    },
    default: Some(Bound::Name(String::new())),
    hint: "weight decay reaches `all` parameters (PyTorch's default) or only `matrices`, the parameters of two or more axes (GPT-2's and nanoGPT's convention)",
};

const SGD_SIG: &[Param] = &[
    lr(1e-3),
    MOMENTUM,
    Param {
        name: "dampening",
        kind: Kind::UNIT_OPEN,
        default: Some(Bound::Real(0.0)),
        hint: "dampening is in [0, 1)",
    },
    flag("nesterov", "write `nesterov = true` for Nesterov momentum"),
    weight_decay(0.0),
    CLIP,
];
const ADAGRAD_SIG: &[Param] = &[
    lr(1e-2),
    Param {
        name: "lr_decay",
        kind: Kind::NON_NEGATIVE,
        default: Some(Bound::Real(0.0)),
        hint: "lr_decay is zero or a small positive number",
    },
    weight_decay(0.0),
    Param {
        name: "initial_accumulator_value",
        kind: Kind::NON_NEGATIVE,
        default: Some(Bound::Real(0.0)),
        hint: "the initial accumulator value is zero or positive",
    },
    eps(1e-10),
    CLIP,
];
const RMSPROP_SIG: &[Param] = &[
    lr(1e-2),
    Param {
        name: "alpha",
        kind: Kind::UNIT_OPEN,
        default: Some(Bound::Real(0.99)),
        hint: "alpha, the smoothing constant, is in [0, 1); PyTorch's default is 0.99",
    },
    eps(1e-8),
    weight_decay(0.0),
    MOMENTUM,
    flag(
        "centered",
        "write `centered = true` to normalise by the gradient's variance",
    ),
    CLIP,
];
const ADAM_SIG: &[Param] = &[
    lr(1e-3),
    beta("beta1", 0.9),
    beta("beta2", 0.999),
    eps(1e-8),
    weight_decay(0.0),
    flag("amsgrad", "write `amsgrad = true` for the AMSGrad variant"),
    CLIP,
    DECAY,
];
const ADAMW_SIG: &[Param] = &[
    lr(1e-3),
    beta("beta1", 0.9),
    beta("beta2", 0.999),
    eps(1e-8),
    weight_decay(1e-2),
    flag("amsgrad", "write `amsgrad = true` for the AMSGrad variant"),
    CLIP,
    DECAY,
];

const OPTIMIZERS: &[(&str, OptimizerKind, &[Param])] = &[
    ("sgd", OptimizerKind::Sgd, SGD_SIG),
    ("adagrad", OptimizerKind::Adagrad, ADAGRAD_SIG),
    ("rmsprop", OptimizerKind::Rmsprop, RMSPROP_SIG),
    ("adam", OptimizerKind::Adam, ADAM_SIG),
    ("adamw", OptimizerKind::AdamW, ADAMW_SIG),
];
