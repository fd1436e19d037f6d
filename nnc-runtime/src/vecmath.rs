//! `f32` exponential and hyperbolic tangent written as straight-line arithmetic, so that a loop
//! over a slice compiles to vector instructions (8 lanes under the AVX2 dispatch of
//! `kernels::vectorized`, 4 with the portable SSE2 build) instead of one `expf` call per
//! element. `Float::exp` and `Float::tanh` use them for `f32`, and with them every sigmoid,
//! softmax and tanh-GELU kernel; `f64` keeps the standard library's functions, so gradient
//! checks run on the scalar reference.
//!
//! The method is Cephes's (`expf`, `tanhf`): range reduction by powers of two and a minimax
//! polynomial. The coefficients are public facts; the code is this crate's. Maximum error,
//! measured against the `f64` functions rounded to `f32` over every 61st bit pattern of the
//! whole float range (`tests` below): 1 ulp for both (the tests allow 1 for `exp` and 2 for
//! `tanh`, whose samples miss most inputs); subnormal results, infinities
//! and NaN are handled as the standard library handles them. Nothing here branches on the
//! value: both sides of a choice are computed and one is selected, which vectorises.

/// `1.5 · 2^23`: adding it rounds an `f32` below `2^22` in magnitude to an integer (to nearest,
/// ties to even), which then sits in the low bits of the sum's mantissa.
const ROUNDER: f32 = 12_582_912.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two, so that `x − n·ln 2` is computed without cancellation error.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `e^x` overflows above this and is zero (after rounding) below the lower bound.
const EXP_MAX: f32 = 89.0;
const EXP_MIN: f32 = -104.0;

/// `2^k` for `-126 ≤ k ≤ 127`, built from its exponent bits.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) as u32).wrapping_shl(23))
}

/// `e^x` to within 1 ulp.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // `clamp` keeps NaN, which then flows through the arithmetic below; the integer steps
    // wrap rather than overflow for it, and the NaN polynomial makes the result NaN.
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let t = x * LOG2_E + ROUNDER;
    let n = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let nf = t - ROUNDER;
    let r = (x - nf * LN2_HI) - nf * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let p = p * r * r + r + 1.0;
    // Two factors, because `2^n` alone leaves the normal range for results near the
    // overflow and underflow bounds; the final product rounds into subnormals correctly.
    let half = n >> 1;
    p * pow2(half) * pow2(n.wrapping_sub(half))
}

/// `tanh x` to within 2 ulp (1 on every sample measured): an odd polynomial below 0.625 in magnitude, where
/// `1 − 2/(e^{2|x|} + 1)` would lose digits to cancellation, and that formula above.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let large = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    // Both have the sign of `x` except at zero, where the polynomial's sum gives +0 for -0.
    if a < 0.625 { small } else { large }.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance in units in the last place between two floats of the same sign (or zero);
    /// `u32::MAX` when one is NaN and the other is not, or the signs differ.
    fn ulps(a: f32, b: f32) -> u32 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() {
                0
            } else {
                u32::MAX
            };
        }
        if a == b {
            return 0;
        }
        if a.is_sign_negative() != b.is_sign_negative() {
            return u32::MAX;
        }
        a.to_bits().abs_diff(b.to_bits())
    }

    /// The largest error of `f` against `reference` (computed in f64, rounded once) over every
    /// `stride`-th bit pattern, and an input where it occurs.
    fn worst(f: fn(f32) -> f32, reference: fn(f64) -> f64, stride: usize) -> (u32, f32) {
        (0..=u32::MAX)
            .step_by(stride)
            .map(f32::from_bits)
            .map(|x| (ulps(f(x), reference(x as f64) as f32), x))
            .max_by_key(|(e, _)| *e)
            .unwrap_or((0, 0.0))
    }

    #[test]
    fn exp_is_within_one_ulp_everywhere() {
        let (error, at) = worst(exp_f32, f64::exp, 61);
        println!("exp: at most {error} ulp (at {at:e})");
        assert!(error <= 1, "exp: {error} ulp at {at:e}");
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        // Around the bounds: the largest finite result, overflow, and the subnormal tail.
        for x in [88.72, 88.73, -87.3, -100.0, -103.9] {
            assert!(ulps(exp_f32(x), (x as f64).exp() as f32) <= 1, "exp({x})");
        }
    }

    #[test]
    fn tanh_is_within_two_ulp_everywhere() {
        let (error, at) = worst(tanh_f32, f64::tanh, 61);
        println!("tanh: at most {error} ulp (at {at:e})");
        assert!(error <= 2, "tanh: {error} ulp at {at:e}");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(tanh_f32(f32::NAN).is_nan());
        // Around the switch between the two formulas, and tiny inputs.
        for x in [0.624_999_9, 0.625, 0.625_000_1, 1e-30, -3e-8, 9.0, -20.0] {
            assert!(
                ulps(tanh_f32(x), (x as f64).tanh() as f32) <= 2,
                "tanh({x})"
            );
        }
    }
}
