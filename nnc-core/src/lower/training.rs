//! Lowering of the loss and the optimizer: the tables of known loss functions and optimizers,
//! their hyperparameters with PyTorch's defaults, and the checks that tie a loss to its target.

use super::args::{self, Bound, Kind, Param};
use super::{suggest, Def, Lowerer};
use crate::diag::Diagnostic;
use crate::ir::{Binding, LossKind, Op, Optimizer, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const LOSSES: &[(&str, LossKind)] = &[
    ("mse", LossKind::MeanSquaredError),
    ("mean_squared_error", LossKind::MeanSquaredError),
    ("binary_cross_entropy", LossKind::BinaryCrossEntropy),
    ("cross_entropy", LossKind::CrossEntropy),
];

const LOSS_SIG: &[Param] = &[
    Param {
        name: "prediction",
        kind: Kind::Name,
        default: None,
        hint: "write the loss as `mse(prediction, target)`",
    },
    Param {
        name: "target",
        kind: Kind::Name,
        default: None,
        hint: "write the loss as `mse(prediction, target)`",
    },
];

const LR_HINT: &str = "the learning rate is a small positive number, such as `lr = 1e-3`";
const WD_HINT: &str =
    "weight decay is zero or a small positive number, such as `weight_decay = 1e-4`";
const BETA_HINT: &str =
    "betas are in [0, 1); PyTorch's defaults are `beta1 = 0.9` and `beta2 = 0.999`";

/// The hyperparameters every optimizer has, with PyTorch's defaults.
const LR: Param = Param {
    name: "lr",
    kind: Kind::POSITIVE,
    default: Some(Bound::Real(1e-3)),
    hint: LR_HINT,
};
const WEIGHT_DECAY: Param = Param {
    name: "weight_decay",
    kind: Kind::NON_NEGATIVE,
    default: Some(Bound::Real(0.0)),
    hint: WD_HINT,
};

const SGD_SIG: &[Param] = &[LR, WEIGHT_DECAY];

const ADAM_SIG: &[Param] = &[
    LR,
    Param {
        name: "beta1",
        kind: Kind::UNIT_OPEN,
        default: Some(Bound::Real(0.9)),
        hint: BETA_HINT,
    },
    Param {
        name: "beta2",
        kind: Kind::UNIT_OPEN,
        default: Some(Bound::Real(0.999)),
        hint: BETA_HINT,
    },
    Param {
        name: "eps",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(1e-8)),
        hint: "eps keeps the update finite; PyTorch's default is `eps = 1e-8`",
    },
    WEIGHT_DECAY,
];

const OPTIMIZERS: &[&str] = &["sgd", "adam"];

impl Lowerer<'_> {
    /// Lowers `loss = f(prediction, target)`; returns the loss value and the model's output.
    pub(super) fn loss(&mut self, call: &ast::Call) -> Option<(ValueId, Binding)> {
        let func = &call.func.name;
        let Some(&(_, kind)) = LOSSES.iter().find(|(n, _)| n == func) else {
            let names: Vec<&str> = LOSSES.iter().map(|(n, _)| *n).collect();
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
        let what = format!("loss `{func}`");
        let bound = args::bind(&what, call.span, Some(&call.args), LOSS_SIG, self.diags);
        let (pred_name, pred_span) = bound.name(0)?;
        let (target_name, target_span) = bound.name(1)?;
        let (pred_name, target_name) = (pred_name.to_string(), target_name.to_string());

        // The target must be a declared target; check it before resolving the prediction so
        // that both problems are reported.
        let target = match self.scope.get(&target_name).cloned() {
            Some(Def::Target { index, .. }) => Some(index),
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
                self.mark_used(&target_name);
                None
            }
            None => {
                let ident = ast::Ident {
                    name: target_name.clone(),
                    span: target_span,
                };
                self.resolve(&ident);
                None
            }
        };
        if let Some(Def::Target { .. }) = self.scope.get(&pred_name) {
            self.error(
                Diagnostic::error("E0305", pred_span, format!("the first argument of `{func}` must be the model's prediction, but `{pred_name}` is a target"))
                    .with_help(format!("write `{func}(prediction, {pred_name})`")),
            );
            return None;
        }
        let pred = self.resolve(&ast::Ident {
            name: pred_name.clone(),
            span: pred_span,
        })?;
        if matches!(self.graph.node(pred).op, Op::Input(_)) {
            self.error(
                Diagnostic::error(
                    "E0305",
                    pred_span,
                    format!(
                        "`{pred_name}` is an input, so the loss would not depend on any parameter"
                    ),
                )
                .with_help("pass a value computed by layers, such as the result of a `let`"),
            );
            return None;
        }
        let index = target?;
        let target_value = self.targets[index].value;
        self.check_loss_target(func, kind, pred, &pred_name, pred_span, index, target_span)?;
        let loss = self.push(
            Op::Loss(kind),
            vec![pred, target_value],
            Type::float(Shape::scalar()),
            "loss".into(),
            Phase::Loss,
            call.span,
        );
        Some((
            loss,
            Binding {
                name: pred_name,
                value: pred,
                span: pred_span,
            },
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn check_loss_target(
        &mut self,
        func: &str,
        kind: LossKind,
        pred: ValueId,
        pred_name: &str,
        pred_span: crate::diag::Span,
        index: usize,
        target_span: crate::diag::Span,
    ) -> Option<()> {
        let target_name = self.targets[index].name.clone();
        let pred_shape = self.graph.ty(pred).shape.clone();
        let target_decl = self.targets[index].span;
        match (kind, &self.target_kinds[index]) {
            (LossKind::CrossEntropy, ast::TargetKind::Classes { count, .. }) => {
                let classes = count.value? as usize;
                if pred_shape.sample_dims() != [classes] {
                    self.error(
                        Diagnostic::error(
                            "E0304",
                            pred_span,
                            format!("`{func}` over {classes} classes (target `{target_name}`) but `{pred_name}` has shape {pred_shape}"),
                        )
                        .with_span_label(format!("expected shape [B, {classes}]"))
                        .with_label(target_decl, format!("`{target_name}` declared with {classes} classes here"))
                        .with_label(self.graph.span(pred), format!("`{pred_name}` gets shape {pred_shape} here"))
                        .with_help(format!("make the last dense layer produce {classes} outputs")),
                    );
                    return None;
                }
            }
            (LossKind::CrossEntropy, ast::TargetKind::Float(_)) => {
                self.error(
                    Diagnostic::error("E0303", target_span, format!("`{func}` expects class labels but target `{target_name}` holds float values"))
                        .with_label(target_decl, "declared here")
                        .with_help(format!("declare `target {target_name}: class(N);` for N classes, or use `mse` for float targets")),
                );
                return None;
            }
            (_, ast::TargetKind::Classes { .. }) => {
                self.error(
                    Diagnostic::error("E0303", target_span, format!("`{func}` compares float values but target `{target_name}` holds class labels"))
                        .with_label(target_decl, "declared here")
                        .with_help(format!("use `cross_entropy({pred_name}, {target_name})` for class labels")),
                );
                return None;
            }
            (_, ast::TargetKind::Float(_)) => {
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
            }
        }
        Some(())
    }

    pub(super) fn optimizer(&mut self, call: &ast::Call) -> Option<Optimizer> {
        let func = call.func.name.as_str();
        let what = format!("optimizer `{func}`");
        let sig = match func {
            "sgd" => SGD_SIG,
            "adam" => ADAM_SIG,
            _ => {
                let mut d = Diagnostic::error(
                    "E0401",
                    call.func.span,
                    format!("unknown optimizer `{func}`"),
                )
                .with_span_label("not a known optimizer");
                d = match suggest(func, OPTIMIZERS.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "the known optimizers are {}",
                        args::quoted(OPTIMIZERS)
                    )),
                };
                self.error(d);
                return None;
            }
        };
        let errors = self.diags.len();
        let b = args::bind(&what, call.span, Some(&call.args), sig, self.diags);
        if self.diags.len() > errors {
            return None;
        }
        Some(match func {
            "sgd" => Optimizer::Sgd {
                lr: b.real(0)?,
                weight_decay: b.real(1)?,
            },
            _ => Optimizer::Adam {
                lr: b.real(0)?,
                beta1: b.real(1)?,
                beta2: b.real(2)?,
                eps: b.real(3)?,
                weight_decay: b.real(4)?,
            },
        })
    }
}
