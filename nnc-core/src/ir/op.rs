//! The operations of the IR and their typing rules.
//!
//! Adding an op means: a variant here with its arity and type rule in [`Op::infer`], a gradient
//! rule in `passes/autodiff/rules.rs`, a kernel call in `codegen/ops.rs`, and a kernel in
//! nnc-runtime. The verifier and the printer pick the new op up from this file.

use super::{ConvGeom, DType, Dim, PoolGeom, Shape, Type};
use std::fmt;

/// A real constant carried by an op (a slope, a rate, a weight). Stored as bits so that ops
/// stay `Eq` and `Hash`; the values come from checked, finite literals.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Const(u64);

impl Const {
    pub fn new(x: f64) -> Const {
        Const(x.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl fmt::Debug for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// A permutation of the axes of a value, the batch (axis 0) staying first: result axis `i`
/// is axis `axes[i]` of the argument. Kept in a fixed array so that ops stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    axes: [u8; Perm::MAX],
    len: u8,
}

impl Perm {
    /// The most axes a permuted value may have, the batch included.
    pub const MAX: usize = 8;

    /// The permutation `axes`, if it is one of `0..axes.len()` that keeps axis 0 first and
    /// has at most [`Perm::MAX`] axes.
    pub fn new(axes: &[usize]) -> Option<Perm> {
        let mut seen = [false; Perm::MAX];
        if axes.len() > Perm::MAX || axes.first() != Some(&0) {
            return None;
        }
        let mut out = [0u8; Perm::MAX];
        for (i, &a) in axes.iter().enumerate() {
            if a >= axes.len() || seen[a] {
                return None;
            }
            seen[a] = true;
            out[i] = a as u8;
        }
        Some(Perm {
            axes: out,
            len: axes.len() as u8,
        })
    }

    pub fn axes(&self) -> Vec<usize> {
        self.axes[..self.len as usize]
            .iter()
            .map(|&a| a as usize)
            .collect()
    }

    /// The permutation that undoes this one.
    pub fn inverse(&self) -> Perm {
        let mut inv = vec![0; self.len as usize];
        for (i, a) in self.axes().into_iter().enumerate() {
            inv[a] = i;
        }
        Perm::new(&inv).unwrap_or(*self)
    }
}

impl fmt::Debug for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.axes())
    }
}

/// What a kernel's per-thread working space is sized by (see [`Op::scratch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scratch {
    Conv(ConvGeom),
    Recurrent {
        hidden: usize,
    },
    /// Copies of one head's columns over the positions, sized by the node's packed projections
    /// (the positions and the values per head are in its types, not in the op).
    Attention,
    /// Packed blocks of a matrix product's operands, sized by its columns and depth (in the
    /// node's types).
    Gemm,
}

/// Element-wise activation functions that can be fused into a dense layer's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    /// Heaviside: 1 where x > 0, else 0. Its derivative is 0, or 1 when `straight_through`.
    Step {
        straight_through: bool,
    },
    LeakyRelu(Const),
    Elu(Const),
    /// Exact GELU, `x·Φ(x)`.
    Gelu,
    /// GELU with the tanh approximation.
    GeluTanh,
    Softplus,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Step { .. } => "step",
            Act::LeakyRelu(_) => "leaky_relu",
            Act::Elu(_) => "elu",
            Act::Gelu => "gelu",
            Act::GeluTanh => "gelu_tanh",
            Act::Softplus => "softplus",
        }
    }

    /// Whether the derivative needs the activation's input; all others are written through
    /// its output, which is what lets a fused dense layer keep only its output.
    pub fn derivative_from_input(self) -> bool {
        matches!(self, Act::Gelu | Act::GeluTanh)
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Act::LeakyRelu(a) | Act::Elu(a) => write!(f, "{}({a})", self.name()),
            Act::Step {
                straight_through: true,
            } => f.write_str("step(straight_through)"),
            _ => f.write_str(self.name()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// Squared error.
    MeanSquaredError,
    /// Absolute error.
    MeanAbsoluteError,
    /// Huber loss with threshold `delta`.
    Huber,
    /// Binary cross-entropy on probabilities.
    BinaryCrossEntropy,
    /// Binary cross-entropy on logits.
    BinaryCrossEntropyWithLogits,
    /// Cross-entropy of probabilities against one-hot or soft float targets.
    CategoricalCrossEntropy,
    CategoricalCrossEntropyWithLogits,
    /// Cross-entropy of probabilities against integer labels.
    SparseCrossEntropy,
    SparseCrossEntropyWithLogits,
    /// Negative log-likelihood of log-probabilities against integer labels.
    NegativeLogLikelihood,
}

impl LossKind {
    /// The loss's name in IR text, which is also the name of its nnc-runtime kernel.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::MeanSquaredError => "mse",
            LossKind::MeanAbsoluteError => "mae",
            LossKind::Huber => "huber",
            LossKind::BinaryCrossEntropy => "binary_cross_entropy",
            LossKind::BinaryCrossEntropyWithLogits => "binary_cross_entropy_with_logits",
            LossKind::CategoricalCrossEntropy => "categorical_cross_entropy",
            LossKind::CategoricalCrossEntropyWithLogits => "categorical_cross_entropy_with_logits",
            LossKind::SparseCrossEntropy => "sparse_cross_entropy",
            LossKind::SparseCrossEntropyWithLogits => "sparse_cross_entropy_with_logits",
            LossKind::NegativeLogLikelihood => "nll",
        }
    }

    /// Whether the target is integer labels.
    pub fn sparse(self) -> bool {
        matches!(
            self,
            LossKind::SparseCrossEntropy
                | LossKind::SparseCrossEntropyWithLogits
                | LossKind::NegativeLogLikelihood
        )
    }

    /// Whether one term is a whole row (`[B, classes]`), so that the mean is over the batch.
    pub fn per_row(self) -> bool {
        self.sparse()
            || matches!(
                self,
                LossKind::CategoricalCrossEntropy | LossKind::CategoricalCrossEntropyWithLogits
            )
    }

    /// The form of this loss that takes logits, for fusion with a preceding softmax/sigmoid.
    pub fn with_logits(self) -> Option<LossKind> {
        Some(match self {
            LossKind::BinaryCrossEntropy => LossKind::BinaryCrossEntropyWithLogits,
            LossKind::CategoricalCrossEntropy => LossKind::CategoricalCrossEntropyWithLogits,
            LossKind::SparseCrossEntropy => LossKind::SparseCrossEntropyWithLogits,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Divide the sum by the number of terms: elements, or rows for class losses.
    Mean,
    Sum,
}

/// A loss term: its function, its reduction, its options and its weight in the total loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LossSpec {
    pub kind: LossKind,
    pub reduction: Reduction,
    /// Label smoothing ε (0 for none).
    pub smoothing: Const,
    /// Huber's threshold (unused by the other losses).
    pub delta: Const,
    /// The label whose samples a class-label loss skips (PyTorch's `ignore_index`); a mean
    /// is then over the other samples.
    pub ignore: Option<u32>,
    /// The factor of this term in the total loss.
    pub weight: Const,
}

impl fmt::Display for LossSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if self.reduction == Reduction::Sum {
            f.write_str(".sum")?;
        }
        if self.smoothing.get() != 0.0 {
            write!(f, "[smoothing={}]", self.smoothing)?;
        }
        if self.kind == LossKind::Huber {
            write!(f, "[delta={}]", self.delta)?;
        }
        if let Some(i) = self.ignore {
            write!(f, "[ignore={i}]")?;
        }
        if self.weight.get() != 1.0 {
            write!(f, "[weight={}]", self.weight)?;
        }
        Ok(())
    }
}

/// How a recurrent scan's backward pass treats the state before the first step: zero (the
/// layer's default), given (a state the model reads, such as an input carried across batches by
/// truncated backpropagation through time, which needs no gradient), or given and learned,
/// when the backward pass also returns the initial state's gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanStart {
    Zero,
    Given,
    Learned,
}

impl ScanStart {
    /// The extra step of a backward pass's result that holds the initial state's gradient.
    pub fn extra(self) -> usize {
        usize::from(self == ScanStart::Learned)
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
    /// The caller-supplied gradient of output `i`, the seed of the pullback (no arguments).
    OutputGrad(usize),
    /// A dropout mask: 0 with probability `rate`, else `1/(1 − rate)`, redrawn each training
    /// step from the model's RNG; all ones in inference (no arguments).
    DropoutMask(Const),
    /// `op(a) · op(b)`, where each operand is viewed as the matrix `[rows, last axis]` (rows:
    /// the product of every other axis) and `op` transposes that view when the flag is set.
    /// The result keeps `a`'s leading axes when `a` is not transposed, so a dense layer runs
    /// over the last axis of a value of any rank.
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// `x + b`, with `b` (a fixed value shaped like the last axes of `x`, usually one)
    /// broadcast over every leading axis, the batch included. Args: x, b.
    BiasAdd,
    /// Element-wise activation. Args: x.
    Activation(Act),
    /// Softmax over the last dimension. Args: x.
    Softmax,
    /// Log-softmax over the last dimension. Args: x.
    LogSoftmax,
    /// Element-wise sum. Args: a, b (same type; scalars too, for the total loss).
    Add,
    /// Element-wise difference. Args: a, b.
    Sub,
    /// Element-wise product. Args: a, b.
    Mul,
    /// `c · x`. Args: x.
    Scale(Const),
    /// Concatenation along `axis` (an index into the whole shape, the batch being axis 0).
    /// Args: two or more values equal on every other axis.
    Concat { axis: usize },
    /// The positions along `axis` in reverse order (an index into the whole shape, after the
    /// batch): the sequence a bidirectional layer's second direction reads. Its own inverse.
    /// Args: x.
    Reverse { axis: usize },
    /// Elements `start .. start + len` along `axis`. Args: x.
    Slice {
        axis: usize,
        start: usize,
        len: usize,
    },
    /// The reverse of a slice: `x` placed at `start` along `axis` in zeros of size `total`
    /// there. Args: x.
    Pad {
        axis: usize,
        start: usize,
        total: usize,
    },
    /// The same row-major elements under another shape with the same batch axis and the same
    /// number of elements per sample: a view, which shares its argument's storage. Its type is
    /// set where it is created. Args: x.
    Reshape,
    /// Rows of a table gathered by integer ids: `[B, …] ids, [V, D] table → [B, …, D]`.
    /// Args: ids, table.
    Embedding,
    /// The table gradient of an embedding: every row of `g` added into the row of its id,
    /// every other row zero, `[V, D]`. Args: ids, g.
    EmbeddingGrad,
    /// Each sample's row at its own index: `[B, T, …] x, [B, 1] ids(N ≤ T) → [B, …]`, the
    /// last real step of a padded sequence. Args: x, index.
    SelectRow,
    /// The gradient of [`Op::SelectRow`]: each sample's `g` at its index of `rows`, zeros
    /// elsewhere, `[B, rows, …]`. Args: g, index.
    SelectRowGrad { rows: usize },
    /// Sum over every axis but the last `keep`: `[…, n] → [n]` for `keep` 1 (a bias gradient),
    /// `[B, t, n] → [t, n]` for 2. Args: x.
    SumRows { keep: usize },
    /// The sum over `axis`, times `scale` (1, or 1/n for a mean), which drops the axis.
    /// Args: x.
    SumAxis { axis: usize, scale: Const },
    /// The reverse of [`Op::SumAxis`]: a new axis of `size` inserted at `axis`, every value
    /// repeated along it and times `scale`. Args: x.
    Expand {
        axis: usize,
        size: usize,
        scale: Const,
    },
    /// The axes reordered. Args: x.
    Permute(Perm),
    /// `op(a) · op(b)` for each matrix of the last two axes, the leading axes (the batch
    /// included) equal and paired: `[…, m, k] · […, k, n] → […, m, n]`, where `op` swaps the
    /// last two axes when its flag is set. Args: a, b.
    BatchMatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// `gy ⊙ act'(·)`, written through the activation's output y, or its input x when
    /// [`Act::derivative_from_input`]. Args: y or x, gy.
    ActivationGrad(Act),
    /// `y ⊙ (gy − Σ gy ⊙ y)` per row. Args: y, gy.
    SoftmaxGrad,
    /// `gy − e^y · Σ gy` per row. Args: y, gy.
    LogSoftmaxGrad,
    /// One weighted loss term, a scalar. Args: prediction, target.
    Loss(LossSpec),
    /// d term / d prediction. Args: prediction, target.
    LossGrad(LossSpec),
    /// Fused: d term / d logits of a class loss over softmax(logits), `p·Σt − t`, given the
    /// softmax output. Args: probabilities, target.
    SoftmaxLossGrad(LossSpec),
    /// Fused: d term / d logits of binary cross-entropy over sigmoid(logits), `p − t`, given
    /// the sigmoid output. Args: probabilities, target.
    SigmoidLossGrad(LossSpec),
    /// Fused: `act(x · wᵀ + b)`. Args: x, w, b (b only when `bias`).
    Dense { act: Act, bias: bool },
    /// The state tensor with this index, kept by the model across calls (no arguments).
    State(usize),
    /// Batch norm's statistics per channel (per-sample axis 0 of `x`, reduced over the batch
    /// and every later axis), `[3, C]`: the mean, `1/√(var + eps)` and the variance. Training
    /// uses the batch's mean and biased variance, inference the running ones. Autodiff does
    /// not differentiate it: [`Op::BatchNorm`]'s rule accounts for it. Args: x, running mean,
    /// running variance.
    BatchNormStats { eps: Const },
    /// `γ·(x − mean)·inv_std + β` per channel. Args: x, stats, γ, β.
    BatchNorm,
    /// d loss / d x of batch norm in training, through the batch statistics too:
    /// `γ·inv_std·(g − mean(g) − x̂·mean(g ⊙ x̂))` per channel. Args: g, x, stats, γ.
    BatchNormGrad,
    /// `Σ g ⊙ x̂` per channel, `[C]` (d loss / d γ). Args: g, x, stats.
    BatchNormScaleGrad,
    /// `Σ g` per channel, `[C]` (d loss / d β). Args: g.
    ChannelSum,
    /// PyTorch's `LayerNorm` over the last axis: each row normalised with its own mean and
    /// biased variance, `γ·(x − mean)/√(var + eps) + β`, with γ (and β when `bias`) one value
    /// per feature. Args: x, γ, β (β only when `bias`).
    LayerNorm { eps: Const, bias: bool },
    /// d loss / d x of layer norm, through each row's statistics too:
    /// `(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))/√(var + eps)` with `ĝ = g ⊙ γ`, the statistics computed
    /// again from x. Args: g, x, γ.
    LayerNormGrad { eps: Const },
    /// `Σ over rows of g ⊙ x̂`, `[D]` (d loss / d γ of layer norm). Args: g, x.
    LayerNormScaleGrad { eps: Const },
    /// The next running mean, `(1 − momentum)·running + momentum·mean`, written into the
    /// state it reads. Args: stats, running mean.
    RunningMean { momentum: Const },
    /// The next running variance, `(1 − momentum)·running + momentum·var·n/(n − 1)` with
    /// `n = B·per_channel` values per channel (PyTorch keeps the unbiased variance), written
    /// into the state it reads. Args: stats, running variance.
    RunningVar { momentum: Const, per_channel: usize },
    /// `act(conv(x, w) + b)`, PyTorch's `Conv1d`/`Conv2d` (cross-correlation) with a bias per
    /// output channel when `bias`; lowering leaves `act` the identity and fusion may fold an
    /// activation in. Args: x, w, b (b only when `bias`).
    Conv {
        geom: ConvGeom,
        bias: bool,
        act: Act,
    },
    /// d loss / d x of a convolution. Args: g, w.
    ConvInputGrad(ConvGeom),
    /// d loss / d w of a convolution. Args: g, x.
    ConvWeightGrad(ConvGeom),
    /// The maximum (or, without `max`, the mean) of each window. Args: x.
    Pool { geom: PoolGeom, max: bool },
    /// d loss / d x of a pooling: `g` routed to each window's maximum, or spread over the
    /// window. Args: x, y (the maxima, whose positions are found again in x), g for max
    /// pooling; g for average.
    PoolGrad { geom: PoolGeom, max: bool },
    /// PyTorch's `LSTM` over a sequence, from zero state: `z` `[B, T, 4H]` holds each step's
    /// input projection with both biases, `x_t · W_ihᵀ + b_ih + b_hh`, with the gates in
    /// PyTorch's order i, f, g, o; each step adds `h_{t−1} · W_hhᵀ` and applies
    /// `i = σ(·), f = σ(·), g = tanh(·), o = σ(·), c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t)`.
    /// The result is the whole record of the scan, `[B, 6, T, H]`: for each sample the planes of
    /// `h`, `c` and the four activated gates over the steps, which the backward pass reads; the
    /// layer's output is a slice of the `h` plane. Args: z, W_hh, and with `init` the state
    /// before the first step, `[B, 2, H]` (h then c; the step entry point's carried state).
    LstmScan { hidden: usize, init: bool },
    /// Backpropagation through time of [`Op::LstmScan`]: d loss / d z `[B, T, 4H]`, from the
    /// record and its gradient (whose `h` and `c` planes are what the rest of the model sends
    /// back; the gate planes are never read). Args: record, d record, W_hh, and unless `start`
    /// is zero the scan's initial state. With a learned start the result is `[B, T + 1, 4H]`:
    /// after each sample's steps, the gradients of its initial h and c, then zeros.
    LstmScanGrad { hidden: usize, start: ScanStart },
    /// PyTorch's `RNN` (Elman) over a sequence, from zero state: `h_t = act(z_t + h_{t−1} ·
    /// W_hhᵀ)` with `z` `[B, T, H]` the input projections with both biases and `act` relu or
    /// tanh. The record is `[B, 1, T, H]`, the hidden states. Args: z, W_hh, and with `init` the
    /// state before the first step, `[B, 1, H]`.
    RnnScan {
        hidden: usize,
        relu: bool,
        init: bool,
    },
    /// Backpropagation through time of [`Op::RnnScan`]: d loss / d z `[B, T, H]` from the
    /// record and its gradient. Args: record, d record, W_hh, and unless `start` is zero the
    /// initial state. With a learned start the result is `[B, T + 1, H]`, each sample's last
    /// row its initial state's gradient.
    RnnScanGrad {
        hidden: usize,
        relu: bool,
        start: ScanStart,
    },
    /// d loss / d W_hh `[G·H, H]` of a recurrent scan with G gates (an LSTM's 4, an RNN's 1):
    /// `Σ over samples and steps t ≥ 1 of dz_tᵀ · h_{t−1}`, h the record's first plane, one
    /// product per sample over its steps; with `init`, plus `dz_0ᵀ · h_{−1}`, the hidden state
    /// of the given initial state. Args: dz, record, and with `init` the initial state.
    ScanWeightGrad { hidden: usize, init: bool },
    /// PyTorch's `GRU` over a sequence, from zero state, gates r, z, n: `x` `[B, T, 3H]` holds
    /// each step's input projection with `b_ih` only, since the reset gate multiplies the hidden
    /// product together with its bias `b_hh`: `r = σ(x_r + W_hr h + b_hr)`, `z = σ(x_z + W_hz h +
    /// b_hz)`, `n = tanh(x_n + r ⊙ (W_hn h + b_hn))`, `h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`. The
    /// record is `[B, 5, T, H]`, the planes of h, r, z, n and `W_hn h + b_hn`. Args: x, W_hh,
    /// b_hh, and with `init` the state before the first step, `[B, 1, H]`.
    GruScan { hidden: usize, init: bool },
    /// Backpropagation through time of [`Op::GruScan`]: `[B, 2T, 3H]`, per sample d loss / d x
    /// at every step, then d loss / d (W_hh h + b_hh), from the record and its gradient (whose
    /// `h` plane is what the rest of the model sends back). Args: record, d record, W_hh, and
    /// unless `start` is zero the initial state. With a learned start the result is `[B, 2T +
    /// 1, 3H]`, each sample's last row starting with its initial state's gradient.
    GruScanGrad { hidden: usize, start: ScanStart },
    /// Multi-head self-attention's weights: `qkv` `[B, T, 3D]` holds each position's query,
    /// key and value side by side, head `h` owning columns `h·D/heads ..` of each; the result
    /// is `softmax(scale · q_i · k_j)` over `j` for every head and position `i`, `[B, heads, T,
    /// T]`, with `j ≤ i` only when `causal` (the masked weights exactly zero). Autodiff does not
    /// differentiate it: [`Op::AttentionMix`]'s rule accounts for it. Args: qkv.
    AttentionProbs {
        heads: usize,
        causal: bool,
        scale: Const,
    },
    /// The heads' weighted values side by side, `[B, T, D]`: `Σ_j P[h, i, j] · v_j` in the
    /// columns of head `h`. Args: the weights, qkv.
    AttentionMix { heads: usize },
    /// d loss / d qkv `[B, T, 3D]` of an attention, through its weights and their softmax;
    /// with `dropout`, the weights were multiplied by the dropout mask (the last argument)
    /// before they mixed the values. Args: the weights, qkv, d loss / d the mixed values, and
    /// with `dropout` the mask.
    AttentionGrad {
        heads: usize,
        scale: Const,
        dropout: bool,
    },
    /// The entry at the step entry point's current position along `axis` of a fixed tensor (a
    /// position table), that axis kept with size 1. Args: x.
    PositionRow { axis: usize },
    /// Writes the current position's key and value, from `qkv` `[B, 1, 3D]`, into that
    /// position's row of an attention's cache `[B, T, 2D]` (keys then values), the carried
    /// state it reads, whose storage the result takes. Args: qkv, the `Op::Carried` cache.
    CacheWrite,
    /// Attention at the step entry point's current position: `qkv` `[B, 1, 3D]`'s queries
    /// against the cached keys and values of every position so far, `[B, 1, D]`, equal to the
    /// current row of [`Op::AttentionMix`] over the whole (causal) sequence. Args: qkv, the
    /// cache after [`Op::CacheWrite`].
    AttentionStep { heads: usize, scale: Const },
    /// The state a recurrent layer carries from one call of the step entry point to the next
    /// (`[B, planes, H]`, the workspace's `i`-th), read by its scan. A leaf.
    Carried(usize),
    /// Writes the state after the last step of a scan's record `[B, P, T, H]` (its first
    /// `planes` planes: h, and an LSTM's c) into the carried state it started from. Args:
    /// record, the `Op::Carried` leaf, whose storage the result takes.
    CarryOut { planes: usize },
    /// Batch norm folded into the weight of the convolution before it, for inference:
    /// `w[o, …] · γ[o] / √(running_var[o] + eps)` for each output channel `o`. Args: w, γ,
    /// running variance.
    FoldWeight { eps: Const },
    /// The matching bias: `(b[o] − running_mean[o]) · γ[o] / √(running_var[o] + eps) + β[o]`,
    /// with `b` zero when the convolution has no bias. Args: γ, β, running mean, running
    /// variance, b (b only when `bias`).
    FoldBias { eps: Const, bias: bool },
}

impl Op {
    /// The number of arguments the op takes; `None` for variadic ops (concat).
    pub fn arity(self) -> Option<usize> {
        Some(match self {
            Op::Input(_)
            | Op::Target(_)
            | Op::Param(_)
            | Op::OutputGrad(_)
            | Op::State(_)
            | Op::Carried(_)
            | Op::DropoutMask(_) => 0,
            Op::LstmScan { init, .. } | Op::RnnScan { init, .. } => 2 + usize::from(init),
            Op::GruScan { init, .. } => 3 + usize::from(init),
            Op::BatchNormStats { .. } | Op::BatchNormScaleGrad | Op::FoldWeight { .. } => 3,
            Op::LstmScanGrad { start, .. }
            | Op::RnnScanGrad { start, .. }
            | Op::GruScanGrad { start, .. } => 3 + usize::from(start != ScanStart::Zero),
            Op::ScanWeightGrad { init, .. } => 2 + usize::from(init),
            Op::BatchNorm | Op::BatchNormGrad | Op::FoldBias { bias: false, .. } => 4,
            Op::LayerNorm { bias, .. } => 2 + usize::from(bias),
            Op::LayerNormGrad { .. } => 3,
            Op::AttentionProbs { .. } | Op::PositionRow { .. } => 1,
            Op::AttentionGrad { dropout, .. } => 3 + usize::from(dropout),
            Op::LayerNormScaleGrad { .. } => 2,
            Op::FoldBias { bias: true, .. } => 5,
            Op::ChannelSum
            | Op::Activation(_)
            | Op::Softmax
            | Op::LogSoftmax
            | Op::SumRows { .. }
            | Op::Scale(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::SumAxis { .. }
            | Op::Expand { .. }
            | Op::Permute(_)
            | Op::Reshape
            | Op::Reverse { .. } => 1,
            Op::Dense { bias: true, .. }
            | Op::Conv { bias: true, .. }
            | Op::PoolGrad { max: true, .. } => 3,
            Op::Pool { .. } | Op::PoolGrad { max: false, .. } => 1,
            Op::Concat { .. } => return None,
            _ => 2,
        })
    }

    /// Whether `n` arguments suit the op, or why not.
    pub fn check_arity(self, n: usize) -> Result<(), String> {
        match self.arity() {
            Some(want) if n != want => Err(format!("{self} takes {want} arguments, got {n}")),
            None if n < 2 => Err(format!("{self} takes at least 2 arguments, got {n}")),
            _ => Ok(()),
        }
    }

    /// Ops without arguments, whose type is set where they are created.
    pub fn is_leaf(self) -> bool {
        self.arity() == Some(0)
    }

    /// Whether the op computes something different in training and in inference.
    pub fn mode_dependent(self) -> bool {
        matches!(self, Op::DropoutMask(_) | Op::BatchNormStats { .. })
    }

    /// Values the model does not compute: they come from the caller, the parameters or the
    /// model's state.
    pub fn is_interface(self) -> bool {
        matches!(
            self,
            Op::Input(_) | Op::Target(_) | Op::Param(_) | Op::OutputGrad(_) | Op::State(_)
        )
    }

    /// Ops that write the model's state (the `Commit` phase) rather than define a new value.
    pub fn writes_state(self) -> bool {
        matches!(self, Op::RunningMean { .. } | Op::RunningVar { .. })
    }

    /// The result type given the argument types, or why the arguments do not fit. Leaf ops
    /// carry their type in the node and are not inferred.
    pub fn infer(self, args: &[&Type]) -> Result<Type, String> {
        self.check_arity(args.len())?;
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
            Op::Input(_)
            | Op::Target(_)
            | Op::Param(_)
            | Op::OutputGrad(_)
            | Op::State(_)
            | Op::Carried(_)
            | Op::DropoutMask(_) => Err(format!("{self} is a leaf")),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                float(args[0])?;
                float(args[1])?;
                let (rows, inner_a) = matrix_view(&args[0].shape, transpose_a)?;
                let (inner_b, cols) = matrix_view(&args[1].shape, transpose_b)?;
                if inner_a != inner_b {
                    return Err(format!(
                        "matmul inner dimensions differ: {} and {}",
                        Shape(inner_a),
                        Shape(inner_b)
                    ));
                }
                let mut dims = rows;
                dims.extend(cols);
                Ok(Type::float(Shape(dims)))
            }
            Op::BiasAdd => {
                float(args[0])?;
                float(args[1])?;
                let (x, b) = (&args[0].shape, &args[1].shape);
                let fits =
                    !b.is_batched() && b.rank() >= 1 && x.rank() > b.rank() && x.0.ends_with(&b.0);
                if !fits {
                    return Err(format!("bias {} does not fit {}", args[1], args[0]));
                }
                Ok(args[0].clone())
            }
            Op::Activation(_) | Op::Scale(_) => {
                float(args[0])?;
                Ok(args[0].clone())
            }
            Op::Reshape => Err(format!("{self} is typed where it is created")),
            Op::Softmax | Op::LogSoftmax => {
                float(args[0])?;
                if args[0].shape.rank() < 2 {
                    return Err(format!(
                        "{self} expects a batched vector, found {}",
                        args[0]
                    ));
                }
                Ok(args[0].clone())
            }
            // The runtime's step derivative is zero: a straight-through step's gradient is its
            // upstream gradient, passed on by autodiff without a node of its own.
            Op::ActivationGrad(Act::Step {
                straight_through: true,
            }) => Err(format!("{self} is the identity and never computed")),
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::ActivationGrad(_)
            | Op::SoftmaxGrad
            | Op::LogSoftmaxGrad => {
                float(args[0])?;
                same(args[0], args[1])?;
                Ok(args[0].clone())
            }
            Op::Concat { axis } => {
                let mut dims = args[0].shape.0.clone();
                if axis == 0 || axis >= dims.len() {
                    return Err(format!("{self} has no axis {axis} in {}", args[0]));
                }
                let mut total = 0;
                for a in args {
                    float(a)?;
                    let same_elsewhere = a.shape.rank() == dims.len()
                        && (0..dims.len()).all(|i| i == axis || a.shape.0[i] == dims[i]);
                    if !same_elsewhere {
                        return Err(format!(
                            "{self} expects equal sizes on every other axis, found {} and {}",
                            args[0], a
                        ));
                    }
                    total += fixed(a.shape.0[axis])?;
                }
                dims[axis] = Dim::Fixed(total);
                Ok(Type::float(Shape(dims)))
            }
            Op::Reverse { axis } => {
                float(args[0])?;
                match args[0].shape.0.get(axis) {
                    Some(Dim::Fixed(_)) if axis > 0 => Ok(args[0].clone()),
                    _ => Err(format!("{self} does not fit {}", args[0])),
                }
            }
            Op::Slice { axis, start, len } => {
                float(args[0])?;
                let mut dims = args[0].shape.0.clone();
                match dims.get_mut(axis) {
                    Some(d) if axis > 0 && len > 0 && start + len <= fixed(*d)? => {
                        *d = Dim::Fixed(len)
                    }
                    _ => return Err(format!("{self} does not fit {}", args[0])),
                }
                Ok(Type::float(Shape(dims)))
            }
            Op::Pad { axis, start, total } => {
                float(args[0])?;
                let mut dims = args[0].shape.0.clone();
                match dims.get_mut(axis) {
                    Some(d) if axis > 0 && start + fixed(*d)? <= total => *d = Dim::Fixed(total),
                    _ => return Err(format!("{self} does not fit {}", args[0])),
                }
                Ok(Type::float(Shape(dims)))
            }
            Op::SumRows { keep } => {
                float(args[0])?;
                let dims = &args[0].shape.0;
                let kept = dims.len().checked_sub(keep).map(|lead| &dims[lead..]);
                match kept {
                    Some(kept) if keep >= 1 && keep < dims.len() && !kept.contains(&Dim::Batch) => {
                        Ok(Type::float(Shape(kept.to_vec())))
                    }
                    _ => Err(format!("{self} expects rows of a value, found {}", args[0])),
                }
            }
            Op::SumAxis { axis, .. } => {
                float(args[0])?;
                let mut dims = args[0].shape.0.clone();
                if axis == 0 || axis >= dims.len() || dims.len() < 3 {
                    return Err(format!("{self} does not fit {}", args[0]));
                }
                dims.remove(axis);
                Ok(Type::float(Shape(dims)))
            }
            Op::Expand { axis, size, .. } => {
                float(args[0])?;
                let mut dims = args[0].shape.0.clone();
                if axis == 0 || axis > dims.len() || size == 0 {
                    return Err(format!("{self} does not fit {}", args[0]));
                }
                dims.insert(axis, Dim::Fixed(size));
                Ok(Type::float(Shape(dims)))
            }
            Op::Permute(perm) => {
                float(args[0])?;
                let dims = &args[0].shape.0;
                let axes = perm.axes();
                if axes.len() != dims.len() {
                    return Err(format!("{self} does not fit {}", args[0]));
                }
                Ok(Type::float(Shape(axes.iter().map(|&a| dims[a]).collect())))
            }
            Op::BatchMatMul {
                transpose_a,
                transpose_b,
            } => {
                float(args[0])?;
                float(args[1])?;
                let split = |t: &Type, transpose: bool| match t.shape.0.as_slice() {
                    [lead @ .., r, c] if !lead.is_empty() => {
                        Ok((lead.to_vec(), if transpose { (*c, *r) } else { (*r, *c) }))
                    }
                    _ => Err(format!("{self} expects matrices per sample, found {t}")),
                };
                let (lead_a, (m, k1)) = split(args[0], transpose_a)?;
                let (lead_b, (k2, n)) = split(args[1], transpose_b)?;
                if lead_a != lead_b || k1 != k2 {
                    return Err(format!(
                        "{self} needs equal leading axes and inner sizes, found {} and {}",
                        args[0], args[1]
                    ));
                }
                let mut dims = lead_a;
                dims.extend([m, n]);
                Ok(Type::float(Shape(dims)))
            }
            Op::Embedding => {
                float(args[1])?;
                let DType::Ids(range) = args[0].dtype else {
                    return Err(format!("{self} expects ids, found {}", args[0]));
                };
                match args[1].shape.0.as_slice() {
                    [Dim::Fixed(v), d] if *v == range => {
                        let mut dims = args[0].shape.0.clone();
                        dims.push(*d);
                        Ok(Type::float(Shape(dims)))
                    }
                    _ => Err(format!(
                        "{self} of {} needs a [{range}, dim] table, found {}",
                        args[0], args[1]
                    )),
                }
            }
            Op::SelectRow => {
                float(args[0])?;
                let rows = match args[0].shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(t), _, ..] => *t,
                    _ => {
                        return Err(format!(
                            "{self} expects [B, T, …] values, found {}",
                            args[0]
                        ))
                    }
                };
                match (args[1].dtype, args[1].shape.0.as_slice()) {
                    (DType::Ids(range), [Dim::Batch, Dim::Fixed(1)]) if range <= rows => {
                        Ok(Type::float(Shape(
                            [Dim::Batch]
                                .into_iter()
                                .chain(args[0].shape.0[2..].iter().copied())
                                .collect(),
                        )))
                    }
                    _ => Err(format!(
                        "{self} expects one index below {rows} per sample, found {}",
                        args[1]
                    )),
                }
            }
            Op::SelectRowGrad { rows } => {
                float(args[0])?;
                let (DType::Ids(range), [Dim::Batch, Dim::Fixed(1)]) =
                    (args[1].dtype, args[1].shape.0.as_slice())
                else {
                    return Err(format!(
                        "{self} expects one index per sample, found {}",
                        args[1]
                    ));
                };
                match args[0].shape.0.as_slice() {
                    [Dim::Batch, rest @ ..] if !rest.is_empty() && range <= rows => {
                        let dims = [Dim::Batch, Dim::Fixed(rows)]
                            .into_iter()
                            .chain(rest.iter().copied());
                        Ok(Type::float(Shape(dims.collect())))
                    }
                    _ => Err(format!(
                        "{self} of {rows} rows does not fit {} and {}",
                        args[0], args[1]
                    )),
                }
            }
            Op::EmbeddingGrad => {
                float(args[1])?;
                let DType::Ids(range) = args[0].dtype else {
                    return Err(format!("{self} expects ids, found {}", args[0]));
                };
                let (lead, d) = args[1]
                    .shape
                    .0
                    .split_at(args[1].shape.rank().saturating_sub(1));
                if lead != args[0].shape.0.as_slice() || d.is_empty() {
                    return Err(format!("{self} of {} does not fit {}", args[0], args[1]));
                }
                Ok(Type::float(Shape(vec![Dim::Fixed(range), d[0]])))
            }
            Op::Loss(spec) | Op::LossGrad(spec) => {
                float(args[0])?;
                check_loss_operands(spec.kind, args[0], args[1])?;
                Ok(if matches!(self, Op::Loss(_)) {
                    Type::float(Shape::scalar())
                } else {
                    args[0].clone()
                })
            }
            Op::SoftmaxLossGrad(spec) | Op::SigmoidLossGrad(spec) => {
                check_loss_operands(spec.kind, args[0], args[1])?;
                Ok(args[0].clone())
            }
            Op::BatchNormStats { .. } => {
                let c = channels(self, args[0])?;
                let stat = Type::float(Shape::fixed(&[c]));
                if args[1] != &stat || args[2] != &stat {
                    return Err(format!(
                        "{self} of {} needs running statistics {stat}, found {} and {}",
                        args[0], args[1], args[2]
                    ));
                }
                Ok(Type::float(Shape::fixed(&[3, c])))
            }
            Op::BatchNorm | Op::BatchNormGrad | Op::BatchNormScaleGrad => {
                // Batch norm reads (x, stats, γ, β); its gradients (g, x, stats, γ) and
                // (g, x, stats).
                let (x, rest) = match self {
                    Op::BatchNorm => (args[0], &args[1..]),
                    _ => {
                        same(args[0], args[1])?;
                        (args[1], &args[2..])
                    }
                };
                let c = channels(self, x)?;
                let fits = rest[0] == &Type::float(Shape::fixed(&[3, c]))
                    && rest[1..]
                        .iter()
                        .all(|t| *t == &Type::float(Shape::fixed(&[c])));
                if !fits {
                    return Err(format!(
                        "{self} of {x} needs [3, {c}] statistics and [{c}] parameters"
                    ));
                }
                Ok(match self {
                    Op::BatchNormScaleGrad => Type::float(Shape::fixed(&[c])),
                    _ => x.clone(),
                })
            }
            Op::ChannelSum => Ok(Type::float(Shape::fixed(&[channels(self, args[0])?]))),
            Op::AttentionProbs { heads, .. }
            | Op::AttentionMix { heads }
            | Op::AttentionGrad { heads, .. } => {
                let qkv = if matches!(self, Op::AttentionProbs { .. }) {
                    args[0]
                } else {
                    args[1]
                };
                float(qkv)?;
                let (steps, model) = match qkv.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(t), Dim::Fixed(w)]
                        if heads > 0 && w % (3 * heads) == 0 && *w > 0 =>
                    {
                        (*t, w / 3)
                    }
                    _ => {
                        return Err(format!(
                            "{self} expects packed projections [B, T, 3·D] with D a multiple of {heads}, found {qkv}"
                        ))
                    }
                };
                let weights = Type::float(Shape::batched(&[heads, steps, steps]));
                match self {
                    Op::AttentionProbs { .. } => Ok(weights),
                    Op::AttentionMix { .. } => {
                        expect(self, 0, args[0], &weights)?;
                        Ok(Type::float(Shape::batched(&[steps, model])))
                    }
                    _ => {
                        expect(self, 0, args[0], &weights)?;
                        expect(
                            self,
                            2,
                            args[2],
                            &Type::float(Shape::batched(&[steps, model])),
                        )?;
                        Ok(qkv.clone())
                    }
                }
            }
            Op::PositionRow { axis } => {
                float(args[0])?;
                let mut dims = args[0].shape.0.clone();
                match dims.get_mut(axis) {
                    Some(d @ Dim::Fixed(_)) if !args[0].shape.is_batched() => *d = Dim::Fixed(1),
                    _ => return Err(format!("{self} does not fit {}", args[0])),
                }
                Ok(Type::float(Shape(dims)))
            }
            Op::CacheWrite | Op::AttentionStep { .. } => {
                let (qkv, cache) = (args[0], args[1]);
                let model = match qkv.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(1), Dim::Fixed(w)] if w % 3 == 0 => w / 3,
                    _ => {
                        return Err(format!(
                            "{self} expects one position's projections [B, 1, 3D], found {qkv}"
                        ))
                    }
                };
                let fits = matches!(cache.shape.0.as_slice(),
                    [Dim::Batch, Dim::Fixed(_), Dim::Fixed(w)] if *w == 2 * model);
                if !fits || cache.dtype != DType::Float {
                    return Err(format!(
                        "{self} expects a cache [B, T, {}], found {cache}",
                        2 * model
                    ));
                }
                match self {
                    Op::AttentionStep { heads, .. } if heads == 0 || model % heads != 0 => Err(
                        format!("{self} cannot split {model} features into {heads} heads"),
                    ),
                    Op::AttentionStep { .. } => Ok(Type::float(Shape::batched(&[1, model]))),
                    _ => Ok(cache.clone()),
                }
            }
            Op::LayerNorm { .. } | Op::LayerNormGrad { .. } | Op::LayerNormScaleGrad { .. } => {
                // x is the first argument of the forward op and the second of its gradients.
                let x = if matches!(self, Op::LayerNorm { .. }) {
                    args[0]
                } else {
                    args[1]
                };
                float(x)?;
                let width = match x.shape.0.as_slice() {
                    [Dim::Batch, .., Dim::Fixed(n)] => *n,
                    _ => return Err(format!("{self} expects rows [B, …, D], found {x}")),
                };
                let vector = Type::float(Shape::fixed(&[width]));
                match self {
                    Op::LayerNorm { .. } => {
                        for (i, p) in args.iter().enumerate().skip(1) {
                            expect(self, i, p, &vector)?;
                        }
                        Ok(x.clone())
                    }
                    Op::LayerNormGrad { .. } => {
                        expect(self, 0, args[0], x)?;
                        expect(self, 2, args[2], &vector)?;
                        Ok(x.clone())
                    }
                    _ => {
                        expect(self, 0, args[0], x)?;
                        Ok(vector)
                    }
                }
            }
            Op::RunningMean { .. } | Op::RunningVar { .. } => {
                float(args[1])?;
                match (args[0].shape.0.as_slice(), args[1].shape.0.as_slice()) {
                    ([Dim::Fixed(3), c], [d]) if c == d => Ok(args[1].clone()),
                    _ => Err(format!(
                        "{self} needs [3, C] statistics and a [C] state, found {} and {}",
                        args[0], args[1]
                    )),
                }
            }
            Op::Conv { geom, bias, .. } => {
                expect(self, 0, args[0], &Type::float(geom.input()))?;
                expect(self, 1, args[1], &Type::float(geom.weight()))?;
                if bias {
                    expect(
                        self,
                        2,
                        args[2],
                        &Type::float(Shape::fixed(&[geom.out_channels])),
                    )?;
                }
                Ok(Type::float(geom.output()))
            }
            Op::ConvInputGrad(geom) | Op::ConvWeightGrad(geom) => {
                expect(self, 0, args[0], &Type::float(geom.output()))?;
                let (other, result) = if matches!(self, Op::ConvInputGrad(_)) {
                    (geom.weight(), geom.input())
                } else {
                    (geom.input(), geom.weight())
                };
                expect(self, 1, args[1], &Type::float(other))?;
                Ok(Type::float(result))
            }
            Op::Pool { geom, .. } => {
                expect(self, 0, args[0], &Type::float(geom.input()))?;
                Ok(Type::float(geom.output()))
            }
            Op::PoolGrad { geom, max } => {
                if max {
                    expect(self, 0, args[0], &Type::float(geom.input()))?;
                    expect(self, 1, args[1], &Type::float(geom.output()))?;
                }
                let g = args.len() - 1;
                expect(self, g, args[g], &Type::float(geom.output()))?;
                Ok(Type::float(geom.input()))
            }
            Op::LstmScan { hidden, init } => {
                float(args[0])?;
                let steps = match args[0].shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(t), Dim::Fixed(g)] if *g == 4 * hidden => *t,
                    _ => {
                        return Err(format!(
                            "{self} expects projections [B, T, {}], found {}",
                            4 * hidden,
                            args[0]
                        ))
                    }
                };
                expect(
                    self,
                    1,
                    args[1],
                    &Type::float(Shape::fixed(&[4 * hidden, hidden])),
                )?;
                initial_state(self, init, args, 2, hidden)?;
                Ok(Type::float(Shape::batched(&[6, steps, hidden])))
            }
            Op::LstmScanGrad { hidden, start } => {
                let record = args[0];
                let steps = match record.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(6), Dim::Fixed(t), Dim::Fixed(h)] if *h == hidden => *t,
                    _ => {
                        return Err(format!(
                            "{self} expects a record [B, 6, T, {hidden}], found {record}"
                        ))
                    }
                };
                expect(self, 1, args[1], record)?;
                expect(
                    self,
                    2,
                    args[2],
                    &Type::float(Shape::fixed(&[4 * hidden, hidden])),
                )?;
                initial_state(self, start != ScanStart::Zero, args, 2, hidden)?;
                let rows = steps + start.extra();
                Ok(Type::float(Shape::batched(&[rows, 4 * hidden])))
            }
            Op::RnnScan { hidden, init, .. } => {
                float(args[0])?;
                let steps = match args[0].shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(t), Dim::Fixed(h)] if *h == hidden => *t,
                    _ => {
                        return Err(format!(
                            "{self} expects projections [B, T, {hidden}], found {}",
                            args[0]
                        ))
                    }
                };
                expect(
                    self,
                    1,
                    args[1],
                    &Type::float(Shape::fixed(&[hidden, hidden])),
                )?;
                initial_state(self, init, args, 1, hidden)?;
                Ok(Type::float(Shape::batched(&[1, steps, hidden])))
            }
            Op::RnnScanGrad { hidden, start, .. } => {
                let record = args[0];
                match record.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(1), Dim::Fixed(t), Dim::Fixed(h)] if *h == hidden => {
                        expect(self, 1, args[1], record)?;
                        expect(
                            self,
                            2,
                            args[2],
                            &Type::float(Shape::fixed(&[hidden, hidden])),
                        )?;
                        initial_state(self, start != ScanStart::Zero, args, 1, hidden)?;
                        Ok(Type::float(Shape::batched(&[*t + start.extra(), hidden])))
                    }
                    _ => Err(format!(
                        "{self} expects a record [B, 1, T, {hidden}], found {record}"
                    )),
                }
            }
            Op::GruScan { hidden, init } => {
                float(args[0])?;
                let steps = match args[0].shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(t), Dim::Fixed(g)] if *g == 3 * hidden => *t,
                    _ => {
                        return Err(format!(
                            "{self} expects projections [B, T, {}], found {}",
                            3 * hidden,
                            args[0]
                        ))
                    }
                };
                let w = Type::float(Shape::fixed(&[3 * hidden, hidden]));
                expect(self, 1, args[1], &w)?;
                expect(self, 2, args[2], &Type::float(Shape::fixed(&[3 * hidden])))?;
                initial_state(self, init, args, 1, hidden)?;
                Ok(Type::float(Shape::batched(&[5, steps, hidden])))
            }
            Op::CarryOut { planes } => {
                let (record, carried) = (args[0], args[1]);
                match record.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(p), Dim::Fixed(_), Dim::Fixed(h)] if *p >= planes => {
                        let want = Type::float(Shape::batched(&[planes, *h]));
                        expect(self, 1, carried, &want)?;
                        Ok(want)
                    }
                    _ => Err(format!(
                        "{self} expects a record [B, P ≥ {planes}, T, H], found {record}"
                    )),
                }
            }
            Op::GruScanGrad { hidden, start } => {
                let record = args[0];
                match record.shape.0.as_slice() {
                    [Dim::Batch, Dim::Fixed(5), Dim::Fixed(t), Dim::Fixed(h)] if *h == hidden => {
                        expect(self, 1, args[1], record)?;
                        let w = Type::float(Shape::fixed(&[3 * hidden, hidden]));
                        expect(self, 2, args[2], &w)?;
                        initial_state(self, start != ScanStart::Zero, args, 1, hidden)?;
                        let rows = 2 * t + start.extra();
                        Ok(Type::float(Shape::batched(&[rows, 3 * hidden])))
                    }
                    _ => Err(format!(
                        "{self} expects a record [B, 5, T, {hidden}], found {record}"
                    )),
                }
            }
            Op::ScanWeightGrad { hidden, init } => {
                let (dz, record) = (args[0], args[1]);
                // An LSTM's record has 6 planes and 4 gates per unit, a GRU's 5 and 3, an RNN's
                // 1 and 1.
                let fits = |width: usize, planes: usize| {
                    hidden > 0
                        && width.is_multiple_of(hidden)
                        && matches!((width / hidden, planes), (4, 6) | (3, 5) | (1, 1))
                };
                match (dz.shape.0.as_slice(), record.shape.0.as_slice()) {
                    (
                        [Dim::Batch, Dim::Fixed(t), Dim::Fixed(width)],
                        [Dim::Batch, Dim::Fixed(planes), Dim::Fixed(t2), Dim::Fixed(h)],
                    ) if t == t2 && *h == hidden && fits(*width, *planes) => {
                        float(dz)?;
                        // An LSTM's initial state holds h and c, the others' h alone.
                        let state_planes = if *planes == 6 { 2 } else { 1 };
                        initial_state(self, init, args, state_planes, hidden)?;
                        Ok(Type::float(Shape::fixed(&[*width, hidden])))
                    }
                    _ => Err(format!(
                        "{self} expects dz [B, T, G·{hidden}] and its record, found {dz} and {record}"
                    )),
                }
            }
            Op::FoldWeight { .. } | Op::FoldBias { .. } => {
                // The folded weight keeps the weight's type; every other operand has one value
                // per output channel, the weight's first axis.
                let (rest, result) = match self {
                    Op::FoldWeight { .. } => (&args[1..], args[0].clone()),
                    _ => (args, args[0].clone()),
                };
                let channels = match result.shape.0.first() {
                    Some(Dim::Fixed(c)) if !result.shape.is_batched() => *c,
                    _ => return Err(format!("{self} expects a fixed weight, found {result}")),
                };
                let vector = Type::float(Shape::fixed(&[channels]));
                for (i, t) in rest.iter().enumerate() {
                    expect(self, i + args.len() - rest.len(), t, &vector)?;
                }
                if matches!(self, Op::FoldWeight { .. }) {
                    float(args[0])?;
                }
                Ok(result)
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

    /// The working space the op's kernel needs per thread, beside the arena, if any: the
    /// convolutions (forward and both gradients) hold one sample's columns, the recurrent scans
    /// a block of samples' states, attention one head's columns, matrix products packed blocks
    /// of their operands. The runtime states each size (`Conv2d::scratch_len`,
    /// `recurrent_scratch_len`, `attention_scratch_len`, `gemm_scratch_len`), and the workspace
    /// allocates the largest.
    pub fn scratch(self) -> Option<Scratch> {
        match self {
            Op::Conv { geom, .. } | Op::ConvInputGrad(geom) | Op::ConvWeightGrad(geom) => {
                Some(Scratch::Conv(geom))
            }
            Op::LstmScan { hidden, .. }
            | Op::LstmScanGrad { hidden, .. }
            | Op::RnnScan { hidden, .. }
            | Op::RnnScanGrad { hidden, .. }
            | Op::GruScan { hidden, .. }
            | Op::GruScanGrad { hidden, .. } => Some(Scratch::Recurrent { hidden }),
            Op::AttentionProbs { .. }
            | Op::AttentionMix { .. }
            | Op::AttentionGrad { .. }
            | Op::AttentionStep { .. } => Some(Scratch::Attention),
            Op::Dense { .. } | Op::MatMul { .. } => Some(Scratch::Gemm),
            _ => None,
        }
    }

    /// Whether the op reads the step entry point's current position.
    pub fn reads_position(self) -> bool {
        matches!(
            self,
            Op::PositionRow { .. } | Op::CacheWrite | Op::AttentionStep { .. }
        )
    }

    /// The argument whose storage the result may take over when this node is its last reader,
    /// because the kernel has an in-place form that reads each element before overwriting it.
    pub fn in_place_operand(self) -> Option<usize> {
        match self {
            Op::ActivationGrad(_) => Some(1),
            _ => None,
        }
    }
}

/// Checks that argument `i` of `op` has type `want`.
/// A scan's initial state, its last argument when it has one: `[B, planes, H]`.
fn initial_state(
    op: Op,
    init: bool,
    args: &[&Type],
    planes: usize,
    hidden: usize,
) -> Result<(), String> {
    if !init {
        return Ok(());
    }
    let last = args.len() - 1;
    expect(
        op,
        last,
        args[last],
        &Type::float(Shape::batched(&[planes, hidden])),
    )
}

/// What a scan's printed form adds when it starts from a given state.
fn from_state(init: bool) -> &'static str {
    if init {
        ", from state"
    } else {
        ""
    }
}

/// What a scan's backward pass's printed form adds for its start.
fn start_words(start: ScanStart) -> &'static str {
    match start {
        ScanStart::Zero => "",
        ScanStart::Given => ", from state",
        ScanStart::Learned => ", from state, with its gradient",
    }
}

fn expect(op: Op, i: usize, found: &Type, want: &Type) -> Result<(), String> {
    if found == want {
        Ok(())
    } else {
        Err(format!(
            "{op} expects argument {i} of type {want}, found {found}"
        ))
    }
}

/// The channel count of a batch-normalised value `[B, C, …]`: its first per-sample axis.
fn channels(op: Op, x: &Type) -> Result<usize, String> {
    match x.shape.channels() {
        Some((c, _)) if x.dtype == DType::Float => Ok(c),
        _ => Err(format!("{op} expects float [B, C, …] values, found {x}")),
    }
}

fn fixed(d: Dim) -> Result<usize, String> {
    match d {
        Dim::Fixed(n) => Ok(n),
        Dim::Batch => Err("the batch dimension cannot be joined or sliced".into()),
    }
}

/// The axes of the rows and of the columns of a matmul operand's matrix view: every axis but
/// the last against the last, swapped when the operand is transposed.
fn matrix_view(shape: &Shape, transpose: bool) -> Result<(Vec<Dim>, Vec<Dim>), String> {
    let Some((last, lead)) = shape.0.split_last() else {
        return Err(format!("matmul expects a matrix, found {shape}"));
    };
    if lead.is_empty() {
        return Err(format!("matmul expects a matrix, found {shape}"));
    }
    if transpose {
        Ok((vec![*last], lead.to_vec()))
    } else {
        Ok((lead.to_vec(), vec![*last]))
    }
}

fn check_loss_operands(kind: LossKind, pred: &Type, target: &Type) -> Result<(), String> {
    if kind.sparse() {
        // One label per row of the prediction: the target has the prediction's shape without
        // its last axis, and as many classes as that axis is wide.
        let (lead, classes) = pred.shape.0.split_at(pred.shape.rank().saturating_sub(1));
        let fits = match (target.dtype, classes) {
            (DType::Ids(range), [Dim::Fixed(n)]) => range == *n && target.shape.0 == lead,
            _ => false,
        };
        if !fits || lead.is_empty() {
            return Err(format!(
                "{} expects ids(classes) targets of the prediction's leading shape, found {pred} and {target}",
                kind.name()
            ));
        }
        Ok(())
    } else if pred != target {
        Err(format!(
            "{} expects equal types, found {pred} and {target}",
            kind.name()
        ))
    } else {
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Input(i) => write!(f, "input #{i}"),
            Op::Target(i) => write!(f, "target #{i}"),
            Op::Param(i) => write!(f, "param #{i}"),
            Op::OutputGrad(i) => write!(f, "output_grad #{i}"),
            Op::DropoutMask(rate) => write!(f, "dropout_mask({rate})"),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let t = |b: &bool| if *b { "t" } else { "n" };
                write!(f, "matmul.{}{}", t(transpose_a), t(transpose_b))
            }
            Op::BiasAdd => f.write_str("bias_add"),
            Op::Activation(a) => write!(f, "{a}"),
            Op::Softmax => f.write_str("softmax"),
            Op::LogSoftmax => f.write_str("log_softmax"),
            Op::Add => f.write_str("add"),
            Op::Sub => f.write_str("sub"),
            Op::Mul => f.write_str("mul"),
            Op::Scale(c) => write!(f, "scale({c})"),
            Op::Concat { axis } => write!(f, "concat(axis {axis})"),
            Op::Reverse { axis } => write!(f, "reverse(axis {axis})"),
            Op::Slice { axis, start, len } => {
                write!(f, "slice(axis {axis}, {start}..{})", start + len)
            }
            Op::Pad { axis, start, total } => {
                write!(f, "pad(axis {axis}, at {start} of {total})")
            }
            Op::Reshape => f.write_str("reshape"),
            Op::Embedding => f.write_str("embedding"),
            Op::EmbeddingGrad => f.write_str("embedding_grad"),
            Op::SelectRow => f.write_str("select_row"),
            Op::SelectRowGrad { rows } => write!(f, "select_row_grad(rows {rows})"),
            Op::SumRows { keep: 1 } => f.write_str("sum_rows"),
            Op::SumRows { keep } => write!(f, "sum_rows(keep {keep})"),
            Op::SumAxis { axis, scale } if scale.get() == 1.0 => write!(f, "sum(axis {axis})"),
            Op::SumAxis { axis, scale } => write!(f, "sum(axis {axis}, scale {scale})"),
            Op::Expand { axis, size, scale } => {
                write!(f, "expand(axis {axis}, {size}, scale {scale})")
            }
            Op::Permute(perm) => write!(f, "permute{perm:?}"),
            Op::BatchMatMul {
                transpose_a,
                transpose_b,
            } => {
                let t = |b: &bool| if *b { "t" } else { "n" };
                write!(f, "batch_matmul.{}{}", t(transpose_a), t(transpose_b))
            }
            Op::ActivationGrad(a) => write!(f, "{a}_grad"),
            Op::SoftmaxGrad => f.write_str("softmax_grad"),
            Op::LogSoftmaxGrad => f.write_str("log_softmax_grad"),
            Op::Loss(s) => write!(f, "loss.{s}"),
            Op::LossGrad(s) => write!(f, "loss_grad.{s}"),
            Op::SoftmaxLossGrad(s) => write!(f, "softmax_loss_grad.{s}"),
            Op::SigmoidLossGrad(s) => write!(f, "sigmoid_loss_grad.{s}"),
            Op::Dense { act, bias } => {
                write!(f, "dense{}.{act}", if *bias { "+bias" } else { "" })
            }
            Op::State(i) => write!(f, "state #{i}"),
            Op::BatchNormStats { eps } => write!(f, "batch_norm_stats(eps {eps})"),
            Op::BatchNorm => f.write_str("batch_norm"),
            Op::BatchNormGrad => f.write_str("batch_norm_grad"),
            Op::BatchNormScaleGrad => f.write_str("batch_norm_scale_grad"),
            Op::ChannelSum => f.write_str("channel_sum"),
            Op::LayerNorm { eps, bias } => {
                let bias = if *bias { "+bias" } else { "" };
                write!(f, "layer_norm{bias}(eps {eps})")
            }
            Op::LayerNormGrad { eps } => write!(f, "layer_norm_grad(eps {eps})"),
            Op::AttentionProbs {
                heads,
                causal,
                scale,
            } => {
                let mask = if *causal { ", causal" } else { "" };
                write!(f, "attention_probs(heads {heads}{mask}, scale {scale})")
            }
            Op::AttentionMix { heads } => write!(f, "attention_mix(heads {heads})"),
            Op::PositionRow { axis } => write!(f, "position_row(axis {axis})"),
            Op::CacheWrite => f.write_str("kv_cache_write"),
            Op::AttentionStep { heads, scale } => {
                write!(f, "attention_step(heads {heads}, scale {scale})")
            }
            Op::AttentionGrad {
                heads,
                scale,
                dropout,
            } => {
                let mask = if *dropout { ", dropout" } else { "" };
                write!(f, "attention_grad(heads {heads}, scale {scale}{mask})")
            }
            Op::LayerNormScaleGrad { eps } => write!(f, "layer_norm_scale_grad(eps {eps})"),
            Op::RunningMean { momentum } => write!(f, "running_mean(momentum {momentum})"),
            Op::RunningVar {
                momentum,
                per_channel,
            } => write!(f, "running_var(momentum {momentum}, n = B·{per_channel})"),
            Op::Conv { geom, bias, act } => {
                let rank = if geom.one_d { 1 } else { 2 };
                write!(f, "conv{rank}d")?;
                if *bias {
                    f.write_str("+bias")?;
                }
                if *act != Act::Identity {
                    write!(f, ".{act}")?;
                }
                write!(f, "({geom})")
            }
            Op::LstmScan { hidden, init } => {
                write!(f, "lstm_scan(hidden {hidden}{})", from_state(*init))
            }
            Op::LstmScanGrad { hidden, start } => {
                write!(f, "lstm_scan_grad(hidden {hidden}{})", start_words(*start))
            }
            Op::RnnScan { hidden, relu, init } => {
                write!(
                    f,
                    "rnn_scan(hidden {hidden}, {}{})",
                    if *relu { "relu" } else { "tanh" },
                    from_state(*init)
                )
            }
            Op::RnnScanGrad {
                hidden,
                relu,
                start,
            } => write!(
                f,
                "rnn_scan_grad(hidden {hidden}, {}{})",
                if *relu { "relu" } else { "tanh" },
                start_words(*start)
            ),
            Op::GruScan { hidden, init } => {
                write!(f, "gru_scan(hidden {hidden}{})", from_state(*init))
            }
            Op::Carried(i) => write!(f, "carried #{i}"),
            Op::CarryOut { planes } => write!(f, "carry_out(planes {planes})"),
            Op::GruScanGrad { hidden, start } => {
                write!(f, "gru_scan_grad(hidden {hidden}{})", start_words(*start))
            }
            Op::ScanWeightGrad { hidden, init } => {
                write!(f, "scan_weight_grad(hidden {hidden}{})", from_state(*init))
            }
            Op::FoldWeight { eps } => write!(f, "fold_batch_norm_weight(eps {eps})"),
            Op::FoldBias { eps, bias } => write!(
                f,
                "fold_batch_norm_bias{}(eps {eps})",
                if *bias { "+bias" } else { "" }
            ),
            Op::ConvInputGrad(geom) => write!(f, "conv_input_grad({geom})"),
            Op::ConvWeightGrad(geom) => write!(f, "conv_weight_grad({geom})"),
            Op::Pool { geom, max } => {
                write!(f, "{}_pool2d({geom})", if *max { "max" } else { "avg" })
            }
            Op::PoolGrad { geom, max } => {
                write!(
                    f,
                    "{}_pool2d_grad({geom})",
                    if *max { "max" } else { "avg" }
                )
            }
        }
    }
}
