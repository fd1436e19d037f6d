//! Numeric kernels: matrix products, dense layers, activations, softmax, element-wise and layout
//! operations, embedding lookups, batch and layer normalisation, dropout masks, losses, accuracy counts and optimizer updates, plus the
//! fallible zeroed allocation of workspace buffers. This module and its children hold all of the
//! crate's `unsafe` code.
//!
//! Kernels never allocate and are written as simple loops over `chunks_exact` and zipped
//! iterators so that LLVM vectorizes them. The hottest ones are compiled twice on x86_64: once
//! portably and once inside a `#[target_feature(enable = "avx2,fma")]` wrapper chosen at run
//! time, which lets LLVM use 256-bit vectors and fused multiply-adds for the same source loop.
//! The dense products also have AVX-512F instantiations (see `simd.rs`); `isa()` makes the
//! choice for every dispatched kernel.

// Kernels take the execution context, then one argument per operand and dimension, as in BLAS.
#![allow(clippy::too_many_arguments)]

pub(crate) mod activation;
mod attention;
mod blocked;
mod conv;
mod dense;
mod dense_backward;
mod dropout;
mod elementwise;
mod embedding;
mod exec;
mod gru;
pub(crate) mod homes;
mod lanes;
mod layer_norm;
mod layout;
mod loss;
mod lstm;
mod matmul;
mod metrics;
mod norm;
mod packed;
mod pool;
mod recurrent;
mod rnn;
mod simd;
pub(crate) mod softmax;
pub(crate) mod split;
mod update;
pub(crate) mod zeroed;

pub use activation::{act_backward, act_backward_inplace, act_forward, Act};
pub use attention::{
    attention_backward, attention_mix, attention_probs, attention_scratch_len, attention_step,
    kv_cache_write,
};
pub use conv::{conv2d, conv2d_backward_input, conv2d_backward_weight, Conv2d};
pub use dense::{bias_add, dense_forward};
pub use dense_backward::{bias_backward, dense_backward_input, dense_backward_weight};
pub use dropout::dropout_mask;
pub use elementwise::{
    accumulate, add, add_assign, copy_cols, mul, mul_inplace, reverse_blocks, scale, slice_cols,
    sub,
};
pub use embedding::{embedding, embedding_backward, select_rows, select_rows_backward};
pub use exec::{Exec, THREADS_ENV};
pub use gru::{gru_scan, gru_scan_backward, GRU_PLANES};
pub use layer_norm::{layer_norm, layer_norm_backward, layer_norm_scale_grad};
pub use layout::{batch_matmul, expand_axis, permute, select_position, sum_axis, MAX_AXES};
pub use loss::{
    binary_cross_entropy, binary_cross_entropy_backward, binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward, categorical_cross_entropy,
    categorical_cross_entropy_backward, categorical_cross_entropy_with_logits,
    categorical_cross_entropy_with_logits_backward, huber, huber_backward, kept_labels, mae,
    mae_backward, mse, mse_backward, nll, nll_backward, sigmoid_binary_cross_entropy_backward,
    softmax_categorical_cross_entropy_backward, softmax_sparse_cross_entropy_backward,
    sparse_cross_entropy, sparse_cross_entropy_backward, sparse_cross_entropy_with_logits,
    sparse_cross_entropy_with_logits_backward,
};
pub use lstm::{lstm_scan, lstm_scan_backward};
pub use matmul::{gemm, gemm_reference, matmul};
pub use metrics::{argmax_correct, argmax_match, threshold_correct};
pub use norm::{
    batch_norm, batch_norm_backward, batch_norm_scale_grad, batch_norm_stats, channel_sum,
    fold_batch_norm_bias, fold_batch_norm_weight, running_mean, running_var,
};
pub use packed::gemm_scratch_len;
pub use pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, Pool2d};
pub use recurrent::{
    carry_out, recurrent_scratch_len, recurrent_weight_grad, Start, RECURRENT_BLOCK,
};
pub use rnn::{rnn_scan, rnn_scan_backward};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};

pub(crate) use matmul::Gemm;
pub(crate) use simd::Simd;
pub(crate) use update::{adam_update, AdamCoefficients, AdamStep};

/// The widest instruction set the kernels' run-time dispatch may use on this CPU. Every dispatched
/// kernel asks [`isa`], so the choice is made in this one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// No CPU feature beyond the target's baseline (SSE2 on x86_64).
    Portable,
    /// AVX2 and FMA: 256-bit vectors.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F, AVX2 and FMA: 512-bit vectors and 32 vector registers.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The instruction set the dispatched kernels use. `is_x86_feature_detected!` caches its answer,
/// so this costs a few relaxed atomic loads per call.
#[inline(always)]
pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return if is_x86_feature_detected!("avx512f") {
                Isa::Avx512
            } else {
                Isa::Avx2
            };
        }
    }
    Isa::Portable
}

/// Runs `$body`, an `#[inline(always)]` generic loop, compiled twice more: with AVX-512F (16
/// lanes) and with AVX2 and FMA (8 lanes), the widest the CPU has picked by [`isa`]; otherwise
/// the portable compilation. Every dispatched element-wise kernel goes through this one macro,
/// which writes the `#[target_feature]` wrappers from the parameter list it is given.
///
/// The three compilations give the same bits: the bodies work lane by lane (a sum over a row
/// keeps explicit partial sums, which LLVM may not reassociate), and `f32::mul_add` is fused on
/// every path. The AVX-512 variant halved the transcendental kernels even on a CPU that splits
/// 512-bit operations in two (AMD Zen 4, `cargo bench -p nnc-runtime --bench kernels --
/// act_`, 128 × 64 values: GELU forward 15.8 → 8.0 µs, backward 29.2 → 12.8 µs, tanh 12.3 →
/// 7.1 µs, softplus 30.4 → 15.4 µs).
///
/// `vectorized!(body(x: &[T]) -> T)` dispatches a body that returns a value (a row's
/// log-sum-exp for a loss); the enclosing function then returns it.
macro_rules! vectorized {
    ($body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $crate::kernels::vectorized!($body($($arg: $ty),*) -> ())
    };
    ($body:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: $crate::float::Float>($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn avx512<T: $crate::float::Float>($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        match $crate::kernels::isa() {
            // SAFETY: `isa` reports AVX-512 only when the CPU has AVX-512F, AVX2 and FMA, all
            // that `avx512` requires.
            $crate::kernels::Isa::Avx512 => return unsafe { avx512($($arg),*) },
            // SAFETY: the CPU supports AVX2 and FMA, as `isa` checked, which is all that `avx2`
            // requires.
            $crate::kernels::Isa::Avx2 => return unsafe { avx2($($arg),*) },
            $crate::kernels::Isa::Portable => {}
        }
        $body($($arg),*)
    }};
}
pub(crate) use lanes::fold_lanes;
pub(crate) use vectorized;
