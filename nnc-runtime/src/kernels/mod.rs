//! Numeric kernels: matrix products, dense layers, activations, softmax, losses and optimizer
//! updates. This module and its children hold all of the crate's `unsafe` code.
//!
//! Kernels never allocate and are written as simple loops over `chunks_exact` and zipped
//! iterators so that LLVM vectorizes them. The hottest ones are compiled twice on x86_64: once
//! portably and once inside a `#[target_feature(enable = "avx2,fma")]` wrapper chosen at run
//! time, which lets LLVM use 256-bit vectors and fused multiply-adds for the same source loop.
//! The dense products also have AVX-512F instantiations (see `simd.rs`); [`isa`] makes the
//! choice for every dispatched kernel.

mod activation;
mod blocked;
mod dense;
mod dense_backward;
mod loss;
mod matmul;
mod simd;
mod update;

pub use activation::{act_backward, act_backward_inplace, act_forward, softmax, softmax_backward};
pub use dense::{bias_add, dense_forward};
pub use dense_backward::{bias_backward, dense_backward_input, dense_backward_weight};
pub use loss::{
    binary_cross_entropy, binary_cross_entropy_backward, cross_entropy, cross_entropy_backward,
    mse, mse_backward, sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_backward,
    softmax_cross_entropy, softmax_cross_entropy_backward,
};
pub use matmul::{gemm, gemm_reference};

pub(crate) use matmul::Gemm;
pub(crate) use simd::Simd;
pub(crate) use update::{adam_update, AdamCoefficients};

use crate::float::Float;

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// `x`.
    Identity,
    /// `max(x, 0)`, propagating NaN.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

impl Act {
    /// The activation of one value.
    #[inline(always)]
    pub(crate) fn apply<T: Float>(self, x: T) -> T {
        match self {
            Act::Identity => x,
            Act::Relu => relu(x),
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => x.tanh(),
        }
    }
}

/// `max(x, 0)`, written as a comparison so that NaN propagates like PyTorch's relu.
#[inline(always)]
pub(crate) fn relu<T: Float>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// The logistic function. For very negative `x`, `e^-x` overflows to infinity and the result is
/// a clean 0, so no special case is needed.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

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

/// Runs `$body`, an `#[inline(always)]` generic loop, compiled a second time with AVX2 and FMA
/// enabled when the CPU has them, so that LLVM vectorizes it 8 lanes wide; otherwise the portable
/// compilation. Every element-wise kernel dispatches through this one macro, which writes the
/// `#[target_feature]` wrapper from the parameter list it is given.
macro_rules! vectorized {
    ($body:ident($($arg:ident: $ty:ty),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: $crate::float::Float>($($arg: $ty),*) {
            $body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        if $crate::kernels::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, as checked just above, which is all that
            // `avx2` requires.
            return unsafe { avx2($($arg),*) };
        }
        $body($($arg),*)
    }};
}
pub(crate) use vectorized;

/// Whether the AVX2+FMA variants may run (true also when AVX-512 is preferred).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    isa() != Isa::Portable
}

/// `out = a + b`, element-wise.
pub fn add<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths {}, {} and {} differ",
        a.len(),
        b.len(),
        out.len()
    );
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// `out += a`, element-wise.
pub fn add_assign<T: Float>(out: &mut [T], a: &[T]) {
    assert_eq!(out.len(), a.len(), "add_assign: lengths differ");
    for (o, &x) in out.iter_mut().zip(a) {
        *o += x;
    }
}
