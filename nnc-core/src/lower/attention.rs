//! The `attention` layer: PyTorch's `nn.MultiheadAttention` used as self-attention over a
//! sequence `[T, D]` (query, key and value all the layer's input, `batch_first`), with an
//! optional causal mask (`is_causal`): position `i` attends to positions `j ≤ i` only, as in a
//! GPT. The parameters have PyTorch's names and layout, so a `state_dict` maps one to one:
//! `name.in_proj_weight` `[3D, D]` (the query, key and value projections stacked in that order)
//! and `name.in_proj_bias` `[3D]`, then `name.out_proj.weight` `[D, D]` and
//! `name.out_proj.bias` `[D]`; nanoGPT's `c_attn` and `c_proj` are the same two matrices.
//!
//! The layer lowers to the input projection (one dense product for all three), the weights of
//! every head (`attention_probs`, the scale `1/√(D/heads)` and the mask applied inside the
//! softmax), the heads' weighted values side by side (`attention_mix`), and the output
//! projection. `dropout` drops attention weights in training, after the softmax and before the
//! mix, as PyTorch does.

use super::args::{Bound, Kind, Param};
use super::dense::{init_of, INITS, INIT_HINT, STD};
use super::layers::{DenseLayer, Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Const, Dim, Init, Op, Phase, Shape, Type, ValueId};
use crate::syntax::ast;

const ATTENTION_SIG: &[Param] = &[
    Param {
        name: "heads",
        kind: Kind::Width,
        default: None,
        hint: "give the number of heads, which must divide the width of the input, as in `attention attn(4)`",
    },
    Param {
        name: "causal",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `causal = true` so that each position attends only to itself and earlier ones, as a language model must",
    },
    Param {
        name: "bias",
        kind: Kind::Bool,
        default: Some(Bound::Bool(true)),
        hint: "write `bias = false` to drop both projections' biases, as GPT-2-style models without biases do",
    },
    Param {
        name: "init",
        kind: Kind::Choice {
            names: INITS,
            or_number: true,
        },
        default: Some(Bound::Name(String::new())),
        hint: INIT_HINT,
    },
    STD,
    Param {
        name: "out_std",
        kind: Kind::POSITIVE,
        // Zero, which no one can write (the option is positive), stands for "not given".
        default: Some(Bound::Real(0.0)),
        hint: "the standard deviation of the output projection with `init = normal` (GPT-2 scales it by 1/√(2·layers)); `std` when left out",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the layer's parameters fixed during training",
    },
    Param {
        name: "dropout",
        kind: Kind::Real {
            min: 0.0,
            min_inclusive: true,
            max: 1.0,
            max_inclusive: false,
            words: "in [0, 1)",
        },
        default: Some(Bound::Real(0.0)),
        hint: "the fraction of attention weights dropped in training, in [0, 1), as PyTorch's `dropout` (default 0)",
    },
];

/// An attention layer's parameters and sizes, for applying it again.
#[derive(Clone, Copy, Debug)]
pub(super) struct AttentionLayer {
    in_proj: DenseLayer,
    out_proj: DenseLayer,
    heads: usize,
    causal: bool,
    dropout: f64,
}

impl Lowerer<'_> {
    /// `-> attention name(heads, causal = false, bias = true, init, std = 0.02, out_std,
    /// frozen = false)`.
    pub(super) fn attention(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "attention",
            ATTENTION_SIG,
            "write `attention attn(4)`: the name gives the parameters stable names such as `attn.in_proj_weight`",
            "rename one, or write `-> {}` to apply the same attention again",
        )?;
        let (heads, causal, bias, frozen) = (b.int(0)?, b.bool(1)?, b.bool(2)?, b.bool(6)?);
        let (steps, width) = self.sequence_of(x, producer, stage.span, &what)?;
        if width % heads != 0 {
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!("{what} splits {width} features into {heads} heads, which does not divide them"),
                )
                .with_help(format!("choose a number of heads that divides {width}, or change the width of {producer}")),
            );
            return None;
        }
        // The weights hold heads · T · T values per sample: like any value, at most 2^31.
        let weights = heads.checked_mul(steps).and_then(|n| n.checked_mul(steps));
        if weights.is_none_or(|n| n > 1 << 31) {
            self.error(
                Diagnostic::error(
                    "E0002",
                    stage.span,
                    format!("{what} over {steps} positions makes its weights too large"),
                )
                .with_note(format!(
                    "the weights hold heads · positions² = {heads} · {steps}² values per sample, and one sample may hold at most 2^31 values"
                ))
                .with_help("attend over shorter sequences, or with fewer heads"),
            );
            return None;
        }
        let count = width
            .checked_mul(width)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(4 * width));
        self.within_budget(count, stage.span, &what)?;
        // PyTorch's initialisation unless `init` is given: Xavier-uniform for the stacked input
        // projection and `nn.Linear`'s U(±1/√D) for the output projection, biases zero.
        let std = b.real(4)?;
        let out_std = b.real(5).filter(|s| *s > 0.0).unwrap_or(std);
        let in_init = init_of(&b, 3, Init::XavierUniform, std);
        let out_init = init_of(&b, 3, Init::Uniform(1.0 / (width as f64).sqrt()), out_std);
        let name = &layer.name;
        let projection = |this: &mut Self, weight: String, bias_name: String, units, init| {
            let w = this.param(
                weight,
                vec![units, width],
                init,
                (width, units),
                frozen,
                layer.span,
            );
            let b = bias.then(|| {
                let zeros = (width, units);
                this.param(
                    bias_name,
                    vec![units],
                    Init::Zeros,
                    zeros,
                    frozen,
                    layer.span,
                )
            });
            DenseLayer {
                weight: w,
                bias: b,
                inputs: width,
                units,
                act: None,
            }
        };
        let in_proj = projection(
            self,
            format!("{name}.in_proj_weight"),
            format!("{name}.in_proj_bias"),
            3 * width,
            in_init,
        );
        let out_proj = projection(
            self,
            format!("{name}.out_proj.weight"),
            format!("{name}.out_proj.bias"),
            width,
            out_init,
        );
        let info = AttentionLayer {
            in_proj,
            out_proj,
            heads,
            causal,
            dropout: b.real(7)?,
        };
        self.layers.insert(
            name.clone(),
            Layer {
                span: layer.span,
                kind: LayerKind::Attention(info),
            },
        );
        let v = self.apply_attention(x, name, &info, steps, stage.span, let_name)?;
        Some((v, format!("{what} ({heads} heads)")))
    }

    /// `-> name` for an attention layer defined earlier, on sequences of the same width.
    pub(super) fn reuse_attention(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        info: &AttentionLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("attention `{name}`");
        let (steps, width) = self.sequence_of(x, producer, stage.span, &what)?;
        if width != info.in_proj.inputs {
            self.error(
                Diagnostic::error(
                    "E0205",
                    stage.span,
                    format!("{what} takes {} features per position but {producer} has {width}", info.in_proj.inputs),
                )
                .with_label(defined, format!("defined over {} features here", info.in_proj.inputs))
                .with_help("a shared attention layer must be applied to sequences of the width it was first applied to"),
            );
            return None;
        }
        let v = self.apply_attention(x, name, info, steps, stage.span, let_name)?;
        Some((v, format!("{what} ({} heads)", info.heads)))
    }

    fn apply_attention(
        &mut self,
        x: ValueId,
        name: &str,
        info: &AttentionLayer,
        steps: usize,
        span: Span,
        let_name: Option<&str>,
    ) -> Option<ValueId> {
        let width = info.in_proj.inputs;
        let heads = info.heads;
        let qkv = self.apply_dense(x, &format!("{name}.in_proj"), &info.in_proj, span, None)?;
        let scale = 1.0 / ((width / heads) as f64).sqrt();
        let probs = self.push(
            Op::AttentionProbs {
                heads,
                causal: info.causal,
                scale: Const::new(scale),
            },
            vec![qkv],
            Type::float(Shape::batched(&[heads, steps, steps])),
            format!("{name}.weights"),
            Phase::Forward,
            span,
        );
        // Dropout on the weights, as PyTorch applies it: after the softmax, before the mix.
        let weights = if info.dropout > 0.0 {
            self.dropout(probs, info.dropout, span, None)
        } else {
            probs
        };
        let mixed = self.push(
            Op::AttentionMix { heads },
            vec![weights, qkv],
            Type::float(Shape::batched(&[steps, width])),
            format!("{name}.heads"),
            Phase::Forward,
            span,
        );
        let out = let_name.unwrap_or(name);
        self.apply_dense(mixed, out, &info.out_proj, span, let_name)
    }

    /// The positions and width of a sequence `[B, T, D]`, or an error saying that `what` needs
    /// one.
    fn sequence_of(
        &mut self,
        x: ValueId,
        producer: &str,
        span: Span,
        what: &str,
    ) -> Option<(usize, usize)> {
        let shape = self.graph.ty(x).shape.clone();
        match shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(t), Dim::Fixed(d)] => Some((*t, *d)),
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0205",
                        span,
                        format!("{what} attends over a sequence [positions, features] but {producer} has shape {shape}"),
                    )
                    .with_span_label("expects [T, D] per sample")
                    .with_help("give it a sequence such as the output of `embedding`, or `reshape` the value into [positions, features]"),
                );
                None
            }
        }
    }
}
