//! Hand-vectorized dot products for the small-batch dense path.
//!
//! LLVM's SLP vectorizer turns four interleaved dot products into shuffles across the rows
//! instead of vectors along them (measured: 7 GFLOP/s), and without permission to reassociate it
//! will not vectorize a single reduction at all. So on x86_64 with AVX2 and FMA the four dot
//! products are written with intrinsics, one pair of 256-bit accumulators per row.

use crate::float::Float;

/// Per-type vector code behind `Float`; sealed in practice like `Gemm`, since it is only
/// re-exported inside the crate.
pub trait Simd: Sized {
    /// Dot products of `x` with four rows of the same length.
    #[doc(hidden)]
    fn dot4(x: &[Self], w: [&[Self]; 4]) -> [Self; 4];
}

/// The portable version: independent accumulators per row, added in a fixed order.
#[inline(always)]
fn dot4_portable<T: Float>(x: &[T], w: [&[T]; 4]) -> [T; 4] {
    let mut out = [T::ZERO; 4];
    for (out, w) in out.iter_mut().zip(w) {
        let mut acc = [T::ZERO; 4];
        for (x, w) in x.chunks_exact(4).zip(w.chunks_exact(4)) {
            for j in 0..4 {
                acc[j] += x[j] * w[j];
            }
        }
        let tail = x.len() - x.len() % 4;
        let mut sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for (&x, &w) in x[tail..].iter().zip(&w[tail..]) {
            sum += x * w;
        }
        *out = sum;
    }
    out
}

fn assert_rows<T>(x: &[T], w: &[&[T]; 4]) {
    assert!(
        w.iter().all(|row| row.len() == x.len()),
        "dot4: every row must have the length of x"
    );
}

macro_rules! impl_simd {
    ($t:ident, $avx2:ident) => {
        impl Simd for $t {
            #[inline]
            fn dot4(x: &[$t], w: [&[$t]; 4]) -> [$t; 4] {
                assert_rows(x, &w);
                #[cfg(target_arch = "x86_64")]
                if super::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA, as checked just above, and every row
                    // has the length of `x`, as asserted above.
                    return unsafe { x86::$avx2(x, w) };
                }
                dot4_portable(x, w)
            }
        }
    };
}

impl_simd!(f32, dot4_f32);
impl_simd!(f64, dot4_f64);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Sum of the eight lanes of a `__m256`.
    #[inline(always)]
    unsafe fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }

    /// Sum of the four lanes of a `__m256d`.
    #[inline(always)]
    unsafe fn hsum_pd(v: __m256d) -> f64 {
        let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    }

    macro_rules! dot4 {
        ($name:ident, $t:ty, $width:expr, $zero:ident, $load:ident, $fmadd:ident, $add:ident, $hsum:ident) => {
            /// Four dot products with two accumulators per row, eight in flight in total, which
            /// covers the latency of FMA on current cores.
            ///
            /// # Safety
            ///
            /// The CPU must support AVX2 and FMA, and every row of `w` must have `x.len()`
            /// elements.
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn $name(x: &[$t], w: [&[$t]; 4]) -> [$t; 4] {
                const W: usize = $width;
                let n = x.len();
                let mut acc = [$zero(); 8];
                let mut i = 0;
                while i + 2 * W <= n {
                    // SAFETY: `i + 2W <= n`, and `x` and every row hold `n` elements, so both
                    // W-wide unaligned loads at `i` and `i + W` are in bounds.
                    let (x0, x1) =
                        unsafe { ($load(x.as_ptr().add(i)), $load(x.as_ptr().add(i + W))) };
                    for r in 0..4 {
                        // SAFETY: as above, for row `r`.
                        let (w0, w1) = unsafe {
                            ($load(w[r].as_ptr().add(i)), $load(w[r].as_ptr().add(i + W)))
                        };
                        acc[2 * r] = $fmadd(w0, x0, acc[2 * r]);
                        acc[2 * r + 1] = $fmadd(w1, x1, acc[2 * r + 1]);
                    }
                    i += 2 * W;
                }
                if i + W <= n {
                    // SAFETY: `i + W <= n`, so one more W-wide load fits in `x` and every row.
                    let x0 = unsafe { $load(x.as_ptr().add(i)) };
                    for r in 0..4 {
                        // SAFETY: as above, for row `r`.
                        let w0 = unsafe { $load(w[r].as_ptr().add(i)) };
                        acc[2 * r] = $fmadd(w0, x0, acc[2 * r]);
                    }
                    i += W;
                }
                let mut out = [0.0; 4];
                for r in 0..4 {
                    let mut sum = $hsum($add(acc[2 * r], acc[2 * r + 1]));
                    for (&x, &w) in x[i..].iter().zip(&w[r][i..]) {
                        sum = x.mul_add(w, sum);
                    }
                    out[r] = sum;
                }
                out
            }
        };
    }

    dot4!(
        dot4_f32,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        hsum_ps
    );
    dot4!(
        dot4_f64,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        hsum_pd
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_dot4_matches_portable() {
        for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 100] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|r| (0..n).map(|i| ((i + 3 * r) as f32 * 0.11).cos()).collect())
                .collect();
            let w = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let (fast, slow) = (f32::dot4(&x, w), dot4_portable(&x, w));
            for (f, s) in fast.iter().zip(slow) {
                assert!(
                    (f - s).abs() <= 1e-5 * (n as f32 + 1.0),
                    "n = {n}: {f} vs {s}"
                );
            }
            let xd: Vec<f64> = x.iter().map(|&v| v.into()).collect();
            let rd: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| r.iter().map(|&v| v.into()).collect())
                .collect();
            let wd = [&rd[0][..], &rd[1][..], &rd[2][..], &rd[3][..]];
            let (fast, slow) = (f64::dot4(&xd, wd), dot4_portable(&xd, wd));
            for (f, s) in fast.iter().zip(slow) {
                assert!(
                    (f - s).abs() <= 1e-13 * (n as f64 + 1.0),
                    "n = {n}: {f} vs {s}"
                );
            }
        }
    }
}
