//! The operations of the IR and their typing rules.
//!
//! Adding an op means: a variant here with its arity and type rule in [`Op::infer`], a gradient
//! rule in `passes/autodiff/rules.rs`, a kernel call in `codegen/ops.rs`, and a kernel in
//! nnc-runtime. The verifier and the printer pick the new op up from this file.

use super::{DType, Dim, Shape, Type};
use std::fmt;

/// Element-wise activation functions that can be fused into a dense layer's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// Mean squared error over all elements.
    MeanSquaredError,
    /// Binary cross-entropy on probabilities.
    BinaryCrossEntropy,
    /// Cross-entropy of class probabilities against integer labels.
    CrossEntropy,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::MeanSquaredError => "mse",
            LossKind::BinaryCrossEntropy => "binary_cross_entropy",
            LossKind::CrossEntropy => "cross_entropy",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The model input with this index (no arguments).
    Input(usize),
    /// The training target with this index (no arguments).
    Target(usize),
    /// The parameter with this index (no arguments).
    Param(usize),
    /// `op(a) · op(b)` on rank-2 values, where `op` transposes when the flag is set.
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// `x + b`, with `b` broadcast over every dimension but the last. Args: x, b.
    BiasAdd,
    /// Element-wise activation. Args: x.
    Activation(Act),
    /// Softmax over the last dimension. Args: x.
    Softmax,
    /// Element-wise sum. Args: a, b (same type).
    Add,
    /// Sum over the batch dimension: `[B, n] → [n]`. Args: x.
    ReduceBatch,
    /// `gy ⊙ act'(x)`, written through the activation's output y. Args: y, gy.
    ActivationGrad(Act),
    /// `y ⊙ (gy − Σ gy ⊙ y)` per row. Args: y, gy.
    SoftmaxGrad,
    /// The loss, a scalar averaged over the batch. Args: prediction, target.
    Loss(LossKind),
    /// d loss / d prediction. Args: prediction, target.
    LossGrad(LossKind),
    /// Fused: `act(x · wᵀ + b)`. Args: x, w, b (b only when `bias`).
    Dense { act: Act, bias: bool },
    /// Fused: cross-entropy of softmax(logits), computed from the logits. Args: logits, labels.
    SoftmaxCrossEntropy,
    /// Fused: d loss / d logits = softmax − onehot(label), averaged. Args: probabilities, labels.
    SoftmaxCrossEntropyGrad,
    /// Fused: binary cross-entropy of sigmoid(logits), from the logits. Args: logits, target.
    SigmoidBinaryCrossEntropy,
    /// Fused: d loss / d logits = sigmoid − target, averaged. Args: probabilities, target.
    SigmoidBinaryCrossEntropyGrad,
}

impl Op {
    /// The number of arguments the op takes.
    pub fn arity(self) -> usize {
        match self {
            Op::Input(_) | Op::Target(_) | Op::Param(_) => 0,
            Op::Activation(_) | Op::Softmax | Op::ReduceBatch => 1,
            Op::Dense { bias: true, .. } => 3,
            _ => 2,
        }
    }

    /// The result type given the argument types, or why the arguments do not fit. Leaf ops
    /// (input, target, param) carry their type in the node and are not inferred.
    pub fn infer(self, args: &[&Type]) -> Result<Type, String> {
        if args.len() != self.arity() {
            return Err(format!(
                "{self} takes {} arguments, got {}",
                self.arity(),
                args.len()
            ));
        }
        let float = |t: &Type| {
            if t.dtype == DType::Float {
                Ok(())
            } else {
                Err(format!("{self} expects float values, found {t}"))
            }
        };
        let same = |a: &Type, b: &Type| {
            if a == b {
                Ok(())
            } else {
                Err(format!("{self} expects equal types, found {a} and {b}"))
            }
        };
        match self {
            Op::Input(_) | Op::Target(_) | Op::Param(_) => Err(format!("{self} is a leaf")),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                float(args[0])?;
                float(args[1])?;
                let (m, k1) = rows_cols(&args[0].shape, transpose_a)?;
                let (k2, n) = rows_cols(&args[1].shape, transpose_b)?;
                if k1 != k2 {
                    return Err(format!("matmul inner dimensions differ: {k1} and {k2}"));
                }
                Ok(Type::float(Shape(vec![m, n])))
            }
            Op::BiasAdd => {
                float(args[0])?;
                float(args[1])?;
                if args[1].shape.rank() != 1 || args[0].shape.last() != args[1].shape.last() {
                    return Err(format!("bias {} does not fit {}", args[1], args[0]));
                }
                Ok(args[0].clone())
            }
            Op::Activation(_) | Op::Softmax => {
                float(args[0])?;
                Ok(args[0].clone())
            }
            Op::Add | Op::ActivationGrad(_) | Op::SoftmaxGrad => {
                float(args[0])?;
                same(args[0], args[1])?;
                Ok(args[0].clone())
            }
            Op::ReduceBatch => {
                float(args[0])?;
                match args[0].shape.0.split_first() {
                    Some((Dim::Batch, rest)) => Ok(Type::float(Shape(rest.to_vec()))),
                    _ => Err(format!("{self} expects a batched value, found {}", args[0])),
                }
            }
            Op::Loss(kind) | Op::LossGrad(kind) => {
                float(args[0])?;
                check_loss_operands(kind, args[0], args[1])?;
                Ok(if matches!(self, Op::Loss(_)) {
                    Type::float(Shape::scalar())
                } else {
                    args[0].clone()
                })
            }
            Op::SoftmaxCrossEntropy | Op::SigmoidBinaryCrossEntropy => {
                let kind = self.fused_loss_kind();
                check_loss_operands(kind, args[0], args[1])?;
                Ok(Type::float(Shape::scalar()))
            }
            Op::SoftmaxCrossEntropyGrad | Op::SigmoidBinaryCrossEntropyGrad => {
                check_loss_operands(self.fused_loss_kind(), args[0], args[1])?;
                Ok(args[0].clone())
            }
            Op::Dense { bias, .. } => {
                let z = Op::MatMul {
                    transpose_a: false,
                    transpose_b: true,
                }
                .infer(&args[..2])?;
                if bias {
                    Op::BiasAdd.infer(&[&z, args[2]])
                } else {
                    Ok(z)
                }
            }
        }
    }

    /// The argument whose storage the result may take over when this node is its last reader,
    /// because the kernel has an in-place form that reads each element before overwriting it.
    pub fn in_place_operand(self) -> Option<usize> {
        match self {
            Op::ActivationGrad(_) => Some(1),
            _ => None,
        }
    }

    fn fused_loss_kind(self) -> LossKind {
        match self {
            Op::SigmoidBinaryCrossEntropy | Op::SigmoidBinaryCrossEntropyGrad => {
                LossKind::BinaryCrossEntropy
            }
            _ => LossKind::CrossEntropy,
        }
    }
}

fn rows_cols(shape: &Shape, transpose: bool) -> Result<(Dim, Dim), String> {
    match shape.0.as_slice() {
        [r, c] if transpose => Ok((*c, *r)),
        [r, c] => Ok((*r, *c)),
        _ => Err(format!("matmul expects rank-2 values, found {shape}")),
    }
}

fn check_loss_operands(kind: LossKind, pred: &Type, target: &Type) -> Result<(), String> {
    match kind {
        LossKind::CrossEntropy => {
            let batch_only = Shape(vec![Dim::Batch]);
            if target.dtype != DType::Label || target.shape != batch_only {
                return Err(format!(
                    "cross_entropy expects label[B] targets, found {target}"
                ));
            }
            if pred.shape.rank() != 2 {
                return Err(format!(
                    "cross_entropy expects [B, classes] predictions, found {pred}"
                ));
            }
            Ok(())
        }
        _ if pred != target => Err(format!(
            "{} expects equal types, found {pred} and {target}",
            kind.name()
        )),
        _ => Ok(()),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Input(i) => write!(f, "input #{i}"),
            Op::Target(i) => write!(f, "target #{i}"),
            Op::Param(i) => write!(f, "param #{i}"),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let t = |b: &bool| if *b { "t" } else { "n" };
                write!(f, "matmul.{}{}", t(transpose_a), t(transpose_b))
            }
            Op::BiasAdd => f.write_str("bias_add"),
            Op::Activation(a) => f.write_str(a.name()),
            Op::Softmax => f.write_str("softmax"),
            Op::Add => f.write_str("add"),
            Op::ReduceBatch => f.write_str("reduce_batch"),
            Op::ActivationGrad(a) => write!(f, "{}_grad", a.name()),
            Op::SoftmaxGrad => f.write_str("softmax_grad"),
            Op::Loss(k) => write!(f, "loss.{}", k.name()),
            Op::LossGrad(k) => write!(f, "loss_grad.{}", k.name()),
            Op::Dense { act, bias } => {
                write!(
                    f,
                    "dense{}.{}",
                    if *bias { "+bias" } else { "" },
                    act.name()
                )
            }
            Op::SoftmaxCrossEntropy => f.write_str("softmax_cross_entropy"),
            Op::SoftmaxCrossEntropyGrad => f.write_str("softmax_cross_entropy_grad"),
            Op::SigmoidBinaryCrossEntropy => f.write_str("sigmoid_binary_cross_entropy"),
            Op::SigmoidBinaryCrossEntropyGrad => f.write_str("sigmoid_binary_cross_entropy_grad"),
        }
    }
}
