//! `f32` `exp`, `exp_m1`, `ln`, `ln_1p`, `tanh` and `erf` written as straight-line arithmetic, so
//! that a loop over a slice compiles to vector instructions (16 lanes under the AVX-512
//! dispatch of `kernels::vectorized`, 8 under AVX2, 4 with the portable SSE2 build) instead of
//! one library call per element. `Float` uses them for `f32`, and with them every sigmoid,
//! tanh, ELU, softplus, GELU (both forms), softmax and log-sum-exp kernel; `f64` keeps the
//! standard library's (and `libm`'s `erf`), so gradient checks run on the scalar reference.
//!
//! The method is Cephes's (`expf`, `logf`, `tanhf`): range reduction by powers of two and
//! minimax polynomials; `ln_1p` uses Goldberg's correction. The coefficients are public facts;
//! the code is this crate's. Maximum error, measured against the `f64` functions rounded to
//! `f32` over every 61st bit pattern of the whole float range (`tests` below): 1 ulp for `exp`,
//! `ln` and `tanh`, 2 ulp for `exp_m1`, `ln_1p` and `erf` (the tanh test allows 2, since
//! samples miss most inputs). `erf`'s polynomials were fitted for this crate. Subnormals,
//! infinities, zeros and NaN are handled as the standard library handles them. Nothing here
//! branches on the value: both sides of a choice are computed and one is selected, which
//! vectorises.
//!
//! The polynomials are evaluated with fused multiply-adds (`f32::mul_add`), which are one
//! instruction and one rounding under the AVX2 and AVX-512 dispatch, and a call to the C
//! library's `fmaf` in the portable build (exact, so every build gives the same bits, but slow
//! on x86 CPUs without FMA, made before 2013). Fusing them took a third off the GELU kernels
//! (`cargo bench -p nnc-runtime --bench kernels -- act_`, one core, 128 × 64 values, AVX-512:
//! forward 8.0 → 5.6 µs, backward 12.8 → 9.8 µs) and brought `erf` from 3 ulp to 2.
//!
//! Measured on one core against the standard library's scalar functions when this module was
//! written (same benchmark, AVX2): sigmoid 14.6 → 4.9 µs, tanh 64.7 → 7.1 µs, GELU 22.3 →
//! 9.0 µs, tanh-GELU 78.0 → 9.8 µs, ELU 20.1 → 5.9 µs, softplus 131 → 22.6 µs; over 128 rows
//! of 65, softmax 28.3 → 8.9 µs and log-softmax (whose log-sum-exp keeps eight partial sums)
//! 39.7 → 9.3 µs.

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

/// `x = n·ln 2 + r` with `n` an integer and `|r| ≤ ½ ln 2`, after clamping `x` to where `e^x`
/// is finite and not yet rounded to zero. `clamp` keeps NaN, which then flows through the
/// arithmetic; the integer steps wrap rather than overflow for it.
#[inline(always)]
fn reduce(x: f32) -> (i32, f32) {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let t = x * LOG2_E + ROUNDER;
    let n = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let nf = t - ROUNDER;
    (n, (x - nf * LN2_HI) - nf * LN2_LO)
}

/// `2^n` as two factors, each in the normal range for every `n` that [`reduce`] gives.
#[inline(always)]
fn pow2_split(n: i32) -> (f32, f32) {
    let half = n >> 1;
    (pow2(half), pow2(n.wrapping_sub(half)))
}

/// `e^x` to within 1 ulp.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let (n, r) = reduce(x);
    let p = exp_poly(r) * r * r + r + 1.0;
    // Two factors, because `2^n` alone leaves the normal range for results near the
    // overflow and underflow bounds; the final product rounds into subnormals correctly.
    let (s1, s2) = pow2_split(n);
    p * s1 * s2
}

/// `e^x − 1` to within 2 ulp: near zero from the reduced argument's own `e^r − 1`, so that
/// nothing cancels; where `2^n` alone would overflow, as `e^x − 1` (the 1 no longer matters).
#[inline(always)]
pub fn exp_m1_f32(x: f32) -> f32 {
    let (n, r) = reduce(x);
    // e^r − 1, the polynomial of `exp_f32` without its final 1.
    let em1 = exp_poly(r) * r * r + r;
    let (s1, s2) = pow2_split(n);
    // 2^n·(e^r − 1) + (2^n − 1): both terms exact to a rounding for |n| ≤ 24.
    let near = em1 * (s1 * s2) + (s1 * s2 - 1.0);
    let far = (em1 + 1.0) * s1 * s2 - 1.0;
    // e^x − 1 has the sign of x, zeros included (the sums above give +0 for −0).
    if n > 24 { far } else { near }.copysign(x)
}

/// The polynomial of `e^r` on the reduced argument: `e^r ≈ 1 + r + r²·exp_poly(r)`.
#[inline(always)]
fn exp_poly(r: f32) -> f32 {
    horner(
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ],
    )
}

/// `ln x` to within 1 ulp: `x = m·2^e` with `m` in `[√½, √2)`, a polynomial in `m − 1`, and
/// `e·ln 2` added in two parts. Subnormal inputs are scaled into the normal range first; 0
/// gives −∞, negative inputs NaN, +∞ itself.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let tiny = x < f32::MIN_POSITIVE;
    let scaled = if tiny { x * 8_388_608.0 } else { x };
    let bits = scaled.to_bits() as i32;
    let mut e = ((bits >> 23) & 0xff).wrapping_sub(126) - if tiny { 23 } else { 0 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    // m is in [0.5, 1): fold [0.5, √½) up to [1, √2) so that m − 1 stays small.
    let low = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= low as i32;
    let m = if low { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let y = horner(
        m,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    ) * m
        * z;
    let ef = e as f32;
    let r = (y + ef * LN2_LO - 0.5 * z + m) + ef * LN2_HI;
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        // Negative inputs and NaN.
        f32::NAN
    } else if x == f32::INFINITY {
        x
    } else {
        r
    }
}

/// `ln(1 + u)` to within 2 ulp, by Goldberg's correction: with `w = 1 + u` rounded,
/// `ln(w)·u/(w − 1)` cancels the rounding of `w`.
#[inline(always)]
pub fn ln_1p_f32(u: f32) -> f32 {
    let w = 1.0 + u;
    let corrected = ln_f32(w) * (u / (w - 1.0));
    // Where 1 + u rounds to 1, ln(1 + u) is u itself; at +∞ the quotient would be ∞/∞.
    if w == 1.0 || u == f32::INFINITY {
        u
    } else {
        corrected
    }
}

/// `tanh x` to within 2 ulp (1 on every sample measured): an odd polynomial below 0.625 in magnitude, where
/// `1 − 2/(e^{2|x|} + 1)` would lose digits to cancellation, and that formula above.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = horner(
        z,
        &[
            -5.704_988_7e-3,
            2.063_909e-2,
            -5.373_971_6e-2,
            1.333_144_2e-1,
            -3.333_328e-1,
        ],
    ) * z
        * x
        + x;
    let large = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    // Both have the sign of `x` except at zero, where the polynomial's sum gives +0 for -0.
    if a < 0.625 { small } else { large }.copysign(x)
}

/// `Σ c[i]·t^(k−1−i)`, the coefficients highest power first (Horner's rule; a constant slice
/// unrolls).
#[inline(always)]
fn horner(t: f32, c: &[f32]) -> f32 {
    c.iter().fold(0.0, |acc, &k| acc.mul_add(t, k))
}

/// `erf x / x` as a polynomial in `x²`, on `|x| < 0.75`.
const ERF_SMALL: [f32; 7] = [
    8.578_745e-5,
    -8.192_115e-4,
    5.205_426e-3,
    -2.686_120_8e-2,
    1.128_372_9e-1,
    -3.761_263_5e-1,
    // The fitted constant term is 2/√π, the slope of erf at 0, to f32 precision.
    std::f32::consts::FRAC_2_SQRT_PI,
];
/// `erf x` as a polynomial in `x − 1.475`, on `0.75 ≤ x < 2.2`.
const ERF_MID: [f32; 10] = [
    1.354_568_2e-3,
    -2.705_268_6e-3,
    -4.043_041e-3,
    2.008_239e-2,
    -1.786_813_3e-2,
    -4.255_03e-2,
    1.431_168_6e-1,
    -1.889_671_1e-1,
    1.281_128_7e-1,
    9.630_182_4e-1,
];
/// `erf x` as a polynomial in `x − 3.06`, on `2.2 ≤ x < 3.92`; above, `erf x` rounds to 1.
const ERF_FAR: [f32; 9] = [
    -1.020_556_5e-4,
    3.471_45e-4,
    -6.034_240_4e-4,
    7.711_944_6e-4,
    -7.720_421e-4,
    5.732_719e-4,
    -2.966_379e-4,
    9.674_548e-5,
    9.999_849e-1,
];

/// `erf x` to within 2 ulp: three polynomials, fitted by least squares in `f64` for this crate
/// (by `numpy.polyfit` at Chebyshev nodes) and chosen for their measured `f32` error, then 1.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let small = x * horner(x * x, &ERF_SMALL);
    let mid = horner(a - 1.475, &ERF_MID);
    let far = horner(a - 3.06, &ERF_FAR);
    let big = if a < 2.2 {
        mid
    } else if a < 3.92 {
        far
    } else {
        1.0
    };
    if a < 0.75 {
        small
    } else if x.is_nan() {
        x
    } else {
        big.copysign(x)
    }
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
    fn exp_m1_ln_and_ln_1p_are_within_two_ulp_everywhere() {
        for (name, f, reference, bound) in [
            (
                "exp_m1",
                exp_m1_f32 as fn(f32) -> f32,
                f64::exp_m1 as fn(f64) -> f64,
                2,
            ),
            ("ln", ln_f32, f64::ln, 1),
            ("ln_1p", ln_1p_f32, f64::ln_1p, 2),
        ] {
            let (error, at) = worst(f, reference, 61);
            println!("{name}: at most {error} ulp (at {at:e})");
            assert!(error <= bound, "{name}: {error} ulp at {at:e}");
        }
        assert_eq!(exp_m1_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(exp_m1_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(exp_m1_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_1p_f32(-1.0), f32::NEG_INFINITY);
        assert!(ln_1p_f32(-2.0).is_nan());
        for x in [
            1e-45,
            1e-40,
            1e-38,
            88.7,
            2.0f32.powi(24),
            -24.0,
            1e-7,
            -1e-7,
        ] {
            assert!(
                ulps(exp_m1_f32(x), (x as f64).exp_m1() as f32) <= 2,
                "exp_m1({x})"
            );
            if x > 0.0 {
                assert!(ulps(ln_f32(x), (x as f64).ln() as f32) <= 1, "ln({x})");
            }
        }
    }

    #[test]
    fn erf_is_within_two_ulp_everywhere() {
        let (error, at) = worst(erf_f32, libm::erf, 61);
        println!("erf: at most {error} ulp (at {at:e})");
        assert!(error <= 2, "erf: {error} ulp at {at:e}");
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(erf_f32(f32::NAN).is_nan());
        // The joins between the pieces, both sides.
        for x in [
            0.749_999_94,
            0.75,
            2.199_999_8,
            2.2,
            3.919_999_8,
            3.92,
            -1e-30,
            1e-45,
        ] {
            assert!(
                ulps(erf_f32(x), libm::erf(x as f64) as f32) <= 2,
                "erf({x})"
            );
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
