//! The `Float` trait: the element types (`f32`, `f64`) that models and kernels are generic over.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::kernels::{Gemm, Simd};

mod sealed {
    /// Keeps `Float` closed: the kernels' fast paths exist for `f32` and `f64` only.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type. Implemented for `f32` and `f64` only (the trait is sealed).
///
/// The supertraits `Gemm` and `Simd` are unnameable, crate-private helpers that route matrix
/// products to `matrixmultiply`'s `sgemm` or `dgemm` and pick per-type vector code; they keep
/// every `unsafe` call inside the kernels.
pub trait Float:
    sealed::Sealed
    + Gemm
    + Simd
    + Copy
    + Default
    + PartialOrd
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact for both implementations).
    fn to_f64(self) -> f64;
    /// Converts a count, rounding to nearest.
    fn from_usize(n: usize) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near zero.
    fn ln_1p(self) -> Self;
    /// `e^self - 1`, accurate near zero.
    fn exp_m1(self) -> Self;
    /// The error function, from the pure-Rust `libm` crate so that results do not depend on
    /// the platform.
    fn erf(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// The larger of two values, ignoring a NaN operand like `f32::max`.
    fn max(self, o: Self) -> Self;
    /// The smaller of two values, ignoring a NaN operand like `f32::min`.
    fn min(self, o: Self) -> Self;
    /// Integer power.
    fn powi(self, n: i32) -> Self;
    /// `self * a + b` with a single rounding. Only fast where the CPU has FMA, so the portable
    /// kernels never call it.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

macro_rules! impl_float {
    ($t:ident, $erf:path, $exp:path, $tanh:path, $ln:path, $ln_1p:path, $exp_m1:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const MIN_POSITIVE: Self = $t::MIN_POSITIVE;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                $exp_m1(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                $t::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                $t::min(self, o)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                $t::powi(self, n)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
        }
    };
}

// `f32` takes the straight-line functions of `vecmath`, which vectorise (within 1 to 3 ulp);
// `f64`, the precision of the gradient checks, keeps the standard library's.
impl_float!(
    f32,
    crate::vecmath::erf_f32,
    crate::vecmath::exp_f32,
    crate::vecmath::tanh_f32,
    crate::vecmath::ln_f32,
    crate::vecmath::ln_1p_f32,
    crate::vecmath::exp_m1_f32
);
impl_float!(
    f64,
    libm::erf,
    f64::exp,
    f64::tanh,
    f64::ln,
    f64::ln_1p,
    f64::exp_m1
);
