//! The `embedding` layer: a `[vocab, dim]` table whose rows are picked by integer ids, so
//! `tokens: [8] ids(65) -> embedding tok(65, 32)` is `[B, 8, 32]`. The table is the parameter
//! `name.weight`, laid out and initialised like PyTorch's `nn.Embedding` (`N(0, 1)`, or `N(0,
//! std²)` with `std`), so that weights move between the two. Applied again to features of its
//! width, the table is a linear map back to one score per id (a tied output projection).

use super::args::{Bound, Kind, Param};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{DType, Dim, Init, Op, Phase, ValueId};
use crate::syntax::ast;

const EMBEDDING_SIG: &[Param] = &[
    Param {
        name: "vocab",
        kind: Kind::Width,
        default: None,
        hint: "give the number of ids and the width of a row, as in `embedding tok(65, 32)`",
    },
    Param {
        name: "dim",
        kind: Kind::Width,
        default: None,
        hint: "give the number of ids and the width of a row, as in `embedding tok(65, 32)`",
    },
    Param {
        name: "frozen",
        kind: Kind::Bool,
        default: Some(Bound::Bool(false)),
        hint: "write `frozen = true` to keep the table fixed during training",
    },
    Param {
        name: "std",
        kind: Kind::POSITIVE,
        default: Some(Bound::Real(1.0)),
        hint: "the table starts from N(0, std²): PyTorch's nn.Embedding uses 1 (the default), GPT-2 0.02",
    },
];

impl Lowerer<'_> {
    /// `-> embedding name(vocab, dim)`: a new table, applied to ids.
    pub(super) fn embedding(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let (layer, what, b) = self.named_layer(
            stage,
            "embedding",
            EMBEDDING_SIG,
            "write `embedding tok(65, 32)`: the name gives the table its stable name `tok.weight`",
            "rename one, or write `-> {}` to look up ids in the same table",
        )?;
        let (vocab, dim, frozen, std) = (b.int(0)?, b.int(1)?, b.bool(2)?, b.real(3)?);
        self.within_budget(vocab.checked_mul(dim), stage.span, &what)?;
        let weight = self.param(
            format!("{}.weight", layer.name),
            vec![vocab, dim],
            Init::Normal(std),
            (vocab, dim),
            frozen,
            layer.span,
        );
        let info = Layer {
            span: layer.span,
            kind: LayerKind::Embedding { table: weight },
        };
        self.layers.insert(layer.name.clone(), info);
        self.apply_embedding(
            x,
            producer,
            stage.span,
            &layer.name,
            layer.span,
            weight,
            let_name,
        )
    }

    /// Looks the ids `x` up in `table`, the table of embedding `name` (defined at `defined`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_embedding(
        &mut self,
        x: ValueId,
        producer: &str,
        span: Span,
        name: &str,
        defined: Span,
        table: ValueId,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let ty = self.graph.ty(x).clone();
        let (vocab, dim) = match self.graph.ty(table).shape.0.as_slice() {
            [Dim::Fixed(vocab), Dim::Fixed(dim)] => (*vocab, *dim),
            _ => return None,
        };
        match ty.dtype {
            DType::Ids(range) if range == vocab => {}
            DType::Ids(range) => {
                self.error(
                    Diagnostic::error("E0205", span, format!("embedding `{name}` has {vocab} rows but {producer} holds ids in 0..{range}"))
                        .with_label(defined, format!("a table of {vocab} rows"))
                        .with_help(format!("give the table one row per id: `embedding {name}({range}, {dim})`")),
                );
                return None;
            }
            DType::Float if ty.shape.0.last() == Some(&Dim::Fixed(dim)) && ty.shape.rank() >= 2 => {
                return Some(self.unembed(x, span, name, table, vocab, let_name));
            }
            DType::Float => {
                self.error(
                    Diagnostic::error("E0211", span, format!("embedding `{name}` looks up integer ids but {producer} holds float values of shape {}", ty.shape))
                        .with_label(defined, format!("a table of {vocab} rows of {dim}"))
                        .with_help(format!("declare the input as ids, as in `input tokens: [8] ids({vocab});`; applied again to features of width {dim}, the table maps them back to {vocab} scores (tied weights)")),
                );
                return None;
            }
        }
        let op = Op::Embedding;
        let out = op.infer(&[&ty, self.graph.ty(table)]).ok()?;
        let node_name = let_name.unwrap_or(name).to_string();
        let v = self.push(op, vec![x, table], out, node_name, Phase::Forward, span);
        Some((v, format!("embedding `{name}` ({dim} per id)")))
    }

    /// An embedding applied again to features of its width: the table used as the weight of a
    /// linear map back to one score per id, `x · tableᵀ` (`[…, dim]` to `[…, vocab]`), which is
    /// how a language model ties its output projection to its token embedding (GPT-2, nanoGPT).
    /// The table's gradient adds the contributions of both uses.
    fn unembed(
        &mut self,
        x: ValueId,
        span: Span,
        name: &str,
        table: ValueId,
        vocab: usize,
        let_name: Option<&str>,
    ) -> (ValueId, String) {
        let mut dims = self.graph.ty(x).shape.0.clone();
        if let Some(last) = dims.last_mut() {
            *last = Dim::Fixed(vocab);
        }
        let op = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        let ty = crate::ir::Type::float(crate::ir::Shape(dims));
        let out = let_name.map_or_else(|| format!("{name}.tied"), str::to_string);
        let v = self.push(op, vec![x, table], ty, out, Phase::Forward, span);
        (
            v,
            format!("embedding `{name}` as a linear map to {vocab} scores"),
        )
    }
}
