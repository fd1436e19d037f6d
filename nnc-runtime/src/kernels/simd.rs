//! Per-type vector code for the dense kernels.
//!
//! The register-blocked products in [`super::blocked`] are written once, generic over [`Lanes`],
//! a minimal SIMD vector interface. It has a portable implementation (four lanes of plain
//! arithmetic, which LLVM turns into SSE on x86_64) and, on x86_64, AVX2+FMA implementations for
//! `f32` (eight lanes) and `f64` (four lanes) that are only instantiated inside
//! `#[target_feature(enable = "avx2,fma")]` functions, and AVX-512F implementations (sixteen and
//! eight lanes, 32 registers) only instantiated inside `#[target_feature(enable =
//! "avx512f,avx2,fma")]` functions. `super::isa` picks one at run time, AVX-512 first.
//!
//! The intrinsics are spelled out because LLVM, left to itself, vectorizes blocked dot products
//! across rows (with shuffles) rather than along them, and will not reassociate a reduction.

use super::packed::{self, MatMut, Strided};
use super::{blocked, Isa};
use crate::float::Float;

/// Per-type vector code behind `Float`; sealed in practice like `Gemm`, since it is only
/// re-exported inside the crate.
pub trait Simd: Sized {
    /// `c[i, j] = Σ_l a[i, l] · b[j, l]` for row-major `a` (`m`x`k`) and `b` (`n`x`k`) and an
    /// `m`x`n` view `c` (a whole matrix, or a task's columns of one), overwriting `c`. Panics
    /// unless `a` and `b` have exactly that many elements.
    #[doc(hidden)]
    fn gemm_nt(k: usize, a: &[Self], b: &[Self], c: MatMut<Self>);

    /// `c[r, j] = Σ_s a[r·rsa + s·csa] · b[s, j]` for row-major `b` (`k`x`n`) and `c` (`m`x`n`),
    /// overwriting `c` (with zeros when `k == 0`), or adding to it with `accumulate`. Panics
    /// unless `b` and `c` have exactly that many elements and `a` covers every index the product
    /// reads.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)] // One argument per operand, dimension and stride.
    fn gemm_nn(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        c: &mut [Self],
        accumulate: bool,
    );

    /// `C(i, j) (+)= Σ_l A(i, l) · B(l, j)` over `C`'s rows and columns and `l < k`, through
    /// packed copies in `scratch` (see `packed.rs`), overwriting `C` or adding to it with
    /// `accumulate`. Panics unless `A` and `B` cover the elements the product reads and
    /// `scratch` holds `gemm_scratch_len(n, k)` elements for `C`'s `n` columns.
    #[doc(hidden)]
    fn gemm_packed(
        k: usize,
        a: Strided<Self>,
        b: Strided<Self>,
        c: MatMut<Self>,
        accumulate: bool,
        scratch: &mut [Self],
    );
}

macro_rules! impl_simd {
    ($t:ident, $nt_avx2:ident, $nn_avx2:ident, $nt_avx512:ident, $nn_avx512:ident,
     $packed_avx2:ident, $packed_avx512:ident) => {
        impl Simd for $t {
            #[inline]
            fn gemm_nt(k: usize, a: &[$t], b: &[$t], c: MatMut<$t>) {
                blocked::check_nt(k, a, b, &c);
                match super::isa() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        // SAFETY: `isa` found AVX-512F, AVX2 and FMA on this CPU, and the slice
                        // lengths were checked by `check_nt`.
                        unsafe { x86::$nt_avx512(k, a, b, c) }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: `isa` found AVX2 and FMA on this CPU, and the slice lengths
                        // were checked by `check_nt`.
                        unsafe { x86::$nt_avx2(k, a, b, c) }
                    }
                    // SAFETY: portable lanes need no CPU feature, and the slice lengths were
                    // checked by `check_nt`.
                    Isa::Portable => unsafe { blocked::gemm_nt::<Portable<$t>>(k, a, b, c) },
                }
            }

            #[inline]
            fn gemm_nn(
                m: usize,
                n: usize,
                k: usize,
                a: &[$t],
                rsa: usize,
                csa: usize,
                b: &[$t],
                c: &mut [$t],
                accumulate: bool,
            ) {
                blocked::check_nn(m, n, k, a, rsa, csa, b, c);
                match super::isa() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        // SAFETY: `isa` found AVX-512F, AVX2 and FMA on this CPU, and the slice
                        // lengths and strides were checked by `check_nn`.
                        unsafe { x86::$nn_avx512(m, n, k, a, rsa, csa, b, c, accumulate) }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: `isa` found AVX2 and FMA on this CPU, and the slice lengths
                        // and strides were checked by `check_nn`.
                        unsafe { x86::$nn_avx2(m, n, k, a, rsa, csa, b, c, accumulate) }
                    }
                    // SAFETY: portable lanes need no CPU feature, and the slice lengths and
                    // strides were checked by `check_nn`.
                    Isa::Portable => unsafe {
                        blocked::gemm_nn::<Portable<$t>>(m, n, k, a, rsa, csa, b, c, accumulate)
                    },
                }
            }

            #[inline]
            fn gemm_packed(
                k: usize,
                a: Strided<$t>,
                b: Strided<$t>,
                c: MatMut<$t>,
                accumulate: bool,
                scratch: &mut [$t],
            ) {
                packed::check(k, a, b, &c, scratch);
                match super::isa() {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        // SAFETY: `isa` found AVX-512F, AVX2 and FMA on this CPU, and the
                        // operands passed `packed::check`.
                        unsafe { x86::$packed_avx512(k, a, b, c, accumulate, scratch) }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: `isa` found AVX2 and FMA on this CPU, and the operands passed
                        // `packed::check`.
                        unsafe { x86::$packed_avx2(k, a, b, c, accumulate, scratch) }
                    }
                    // SAFETY: portable lanes need no CPU feature, and the operands passed
                    // `packed::check`.
                    Isa::Portable => unsafe {
                        packed::gemm_packed::<Portable<$t>>(k, a, b, c, accumulate, scratch)
                    },
                }
            }
        }
    };
}

impl_simd!(
    f32,
    gemm_nt_f32_avx2,
    gemm_nn_f32_avx2,
    gemm_nt_f32_avx512,
    gemm_nn_f32_avx512,
    gemm_packed_f32_avx2,
    gemm_packed_f32_avx512
);
impl_simd!(
    f64,
    gemm_nt_f64_avx2,
    gemm_nn_f64_avx2,
    gemm_nt_f64_avx512,
    gemm_nn_f64_avx512,
    gemm_packed_f64_avx2,
    gemm_packed_f64_avx512
);

/// A SIMD vector of `LANES` elements, as used by the blocked kernels.
///
/// # Safety
///
/// Every method may only run on a CPU that supports the implementation's instructions (none for
/// [`Portable`], AVX2 and FMA for the x86 vectors). `load` and `store` additionally need `p` to be
/// valid for reads (writes) of `LANES` consecutive elements, and `load_partial` of `n`; no
/// alignment is required.
pub(super) trait Lanes: Copy {
    /// The element type.
    type Elem: Float;
    /// Number of elements per vector.
    const LANES: usize;
    /// Number of vector registers the instruction set has, which bounds the register blocks.
    const REGISTERS: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: Self::Elem) -> Self;
    /// Unaligned load of `LANES` elements.
    unsafe fn load(p: *const Self::Elem) -> Self;
    /// Unaligned load of the first `n <= LANES` elements at `p`, the other lanes zero; `p` need
    /// only be valid for reads of `n` elements.
    unsafe fn load_partial(p: *const Self::Elem, n: usize) -> Self;
    /// Unaligned store of `LANES` elements.
    unsafe fn store(self, p: *mut Self::Elem);
    /// Unaligned store of the first `n <= LANES` lanes at `p`, which need only be valid for
    /// writes of `n` elements; memory past them is not touched.
    unsafe fn store_partial(self, p: *mut Self::Elem, n: usize);
    /// `a * b + c`, fused where the instruction set has FMA.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// Sum of the lanes.
    unsafe fn hsum(self) -> Self::Elem;
    /// The sums of the lanes of sixteen vectors, each bit for bit [`Lanes::hsum`]'s. This
    /// default sums them one at a time; sixteen-lane vectors override it with a transpose whose
    /// shuffles serve several vectors at once.
    #[inline(always)]
    unsafe fn hsum16(vs: &[Self; 16]) -> [Self::Elem; 16] {
        // SAFETY: forwarded from this function's contract.
        std::array::from_fn(|v| unsafe { vs[v].hsum() })
    }
}

/// Four lanes of plain arithmetic: the portable fallback. Fixed-size array operations like these
/// become SSE instructions on x86_64.
#[derive(Clone, Copy)]
pub(super) struct Portable<T>([T; 4]);

impl<T: Float> Lanes for Portable<T> {
    type Elem = T;
    const LANES: usize = 4;
    const REGISTERS: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable([T::ZERO; 4])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Portable([x; 4])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller guarantees `p` is valid for reads of 4 elements; the read is
        // unaligned, and `[T; 4]` has the layout of 4 consecutive `T`.
        Portable(unsafe { p.cast::<[T; 4]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const T, n: usize) -> Self {
        let mut v = [T::ZERO; 4];
        for (i, v) in v.iter_mut().enumerate().take(n) {
            // SAFETY: the caller guarantees `p` is valid for reads of `n` elements, and `i < n`.
            *v = unsafe { *p.add(i) };
        }
        Portable(v)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller guarantees `p` is valid for writes of 4 elements.
        unsafe { p.cast::<[T; 4]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut T, n: usize) {
        // SAFETY: the caller guarantees `p` is valid for writes of `n <= 4` elements.
        unsafe { p.copy_from_nonoverlapping(self.0.as_ptr(), n) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        // Not fused: `mul_add` may be a slow library call without FMA hardware.
        Portable([0, 1, 2, 3].map(|i| a.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Portable([0, 1, 2, 3].map(|i| a.0[i] + b.0[i]))
    }
    #[inline(always)]
    unsafe fn hsum(self) -> T {
        let v = self.0;
        (v[0] + v[2]) + (v[1] + v[3])
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::blocked;
    use super::super::packed::{self, MatMut, Strided};
    use super::Lanes;

    /// Eight `f32` lanes in a 256-bit register.
    #[derive(Clone, Copy)]
    pub(super) struct F32x8(__m256);

    /// Four `f64` lanes in a 256-bit register.
    #[derive(Clone, Copy)]
    pub(super) struct F64x4(__m256d);

    // The methods below are `#[inline(always)]` wrappers around single intrinsics; they are only
    // instantiated inside `#[target_feature(enable = "avx2,fma")]` functions, where the
    // intrinsics inline to single instructions. The trait's contract (the CPU has AVX2 and FMA,
    // pointers are valid for 8 or 4 elements) is exactly what each intrinsic requires.

    /// The `Lanes` methods every x86 type shares, each a wrapper around the one intrinsic named
    /// in the invocation. `load_partial`, `store_partial` and `hsum` differ between instruction sets and are
    /// written out by each invocation. Every method is only instantiated inside a
    /// `#[target_feature]` function whose features include the type's instruction set, and the
    /// trait's contract (that instruction set is available; pointers are valid for `LANES`
    /// elements) is exactly what each intrinsic requires.
    macro_rules! lanes {
        (
            $name:ident($elem:ty; $lanes:literal lanes, $registers:literal registers),
            setzero = $setzero:ident, set1 = $set1:ident, loadu = $loadu:ident,
            storeu = $storeu:ident, fmadd = $fmadd:ident, add = $add:ident,
            $($specific:tt)*
        ) => {
            impl Lanes for $name {
                type Elem = $elem;
                const LANES: usize = $lanes;
                const REGISTERS: usize = $registers;

                #[inline(always)]
                unsafe fn zero() -> Self {
                    // SAFETY: the trait contract guarantees the instruction set.
                    $name(unsafe { $setzero() })
                }
                #[inline(always)]
                unsafe fn splat(x: $elem) -> Self {
                    // SAFETY: the trait contract guarantees the instruction set.
                    $name(unsafe { $set1(x) })
                }
                #[inline(always)]
                unsafe fn load(p: *const $elem) -> Self {
                    // SAFETY: the trait contract guarantees the instruction set and `LANES`
                    // readable elements at `p`.
                    $name(unsafe { $loadu(p) })
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $elem) {
                    // SAFETY: the trait contract guarantees the instruction set and `LANES`
                    // writable elements at `p`.
                    unsafe { $storeu(p, self.0) }
                }
                #[inline(always)]
                unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
                    // SAFETY: the trait contract guarantees FMA, part of every set used here.
                    $name(unsafe { $fmadd(a.0, b.0, c.0) })
                }
                #[inline(always)]
                unsafe fn add(a: Self, b: Self) -> Self {
                    // SAFETY: the trait contract guarantees the instruction set.
                    $name(unsafe { $add(a.0, b.0) })
                }
                $($specific)*
            }
        };
    }

    /// The AVX2 mask that selects the first `n <= 8` of eight 32-bit lanes (sign bit set).
    #[inline(always)]
    unsafe fn lane_mask32(n: usize) -> __m256i {
        // SAFETY: only called from `Lanes` methods, whose contract guarantees AVX2.
        unsafe {
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(n as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        }
    }

    /// The AVX2 mask that selects the first `n <= 4` of four 64-bit lanes (sign bit set).
    #[inline(always)]
    unsafe fn lane_mask64(n: usize) -> __m256i {
        // SAFETY: only called from `Lanes` methods, whose contract guarantees AVX2.
        unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
    }

    lanes! {
        F32x8(f32; 8 lanes, 16 registers),
        setzero = _mm256_setzero_ps, set1 = _mm256_set1_ps, loadu = _mm256_loadu_ps,
        storeu = _mm256_storeu_ps, fmadd = _mm256_fmadd_ps, add = _mm256_add_ps,
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            // SAFETY: the trait contract guarantees AVX2 support and `n <= 8` readable
            // elements at `p`; the masked load does not touch memory outside the mask.
            F32x8(unsafe { _mm256_maskload_ps(p, lane_mask32(n)) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            // SAFETY: as for `load_partial`, with `n` writable elements.
            unsafe { _mm256_maskstore_ps(p, lane_mask32(n), self.0) }
        }
        #[inline(always)]
        unsafe fn hsum(self) -> f32 {
            // SAFETY: the trait contract guarantees AVX support (SSE is part of x86_64).
            unsafe {
                let v = self.0;
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
                _mm_cvtss_f32(s)
            }
        }
    }

    lanes! {
        F64x4(f64; 4 lanes, 16 registers),
        setzero = _mm256_setzero_pd, set1 = _mm256_set1_pd, loadu = _mm256_loadu_pd,
        storeu = _mm256_storeu_pd, fmadd = _mm256_fmadd_pd, add = _mm256_add_pd,
        #[inline(always)]
        unsafe fn load_partial(p: *const f64, n: usize) -> Self {
            // SAFETY: the trait contract guarantees AVX2 support and `n <= 4` readable
            // elements at `p`; the masked load does not touch memory outside the mask.
            F64x4(unsafe { _mm256_maskload_pd(p, lane_mask64(n)) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f64, n: usize) {
            // SAFETY: as for `load_partial`, with `n` writable elements.
            unsafe { _mm256_maskstore_pd(p, lane_mask64(n), self.0) }
        }
        #[inline(always)]
        unsafe fn hsum(self) -> f64 {
            // SAFETY: the trait contract guarantees AVX support (SSE2 is part of x86_64).
            unsafe {
                let v = self.0;
                let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
                _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
            }
        }
    }

    /// Sixteen `f32` lanes in a 512-bit register.
    #[derive(Clone, Copy)]
    pub(super) struct F32x16(__m512);

    /// Eight `f64` lanes in a 512-bit register.
    #[derive(Clone, Copy)]
    pub(super) struct F64x8(__m512d);

    // As above, but only instantiated inside `#[target_feature(enable = "avx512f,avx2,fma")]`
    // functions, and the trait's contract is that the CPU has AVX-512F (and AVX2 and FMA).

    lanes! {
        F32x16(f32; 16 lanes, 32 registers),
        setzero = _mm512_setzero_ps, set1 = _mm512_set1_ps, loadu = _mm512_loadu_ps,
        storeu = _mm512_storeu_ps, fmadd = _mm512_fmadd_ps, add = _mm512_add_ps,
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            let mask = ((1u32 << n) - 1) as u16;
            // SAFETY: the trait contract guarantees AVX-512F support and `n` readable elements
            // at `p`; the masked load does not touch the lanes (and memory) outside the mask.
            F32x16(unsafe { _mm512_maskz_loadu_ps(mask, p) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            let mask = ((1u32 << n) - 1) as u16;
            // SAFETY: as for `load_partial`, with `n` writable elements.
            unsafe { _mm512_mask_storeu_ps(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn hsum(self) -> f32 {
            // SAFETY: the trait contract guarantees AVX-512F support.
            unsafe { _mm512_reduce_add_ps(self.0) }
        }
        /// `_mm512_reduce_add_ps` adds a vector's halves, then the halves of that, down to one
        /// lane: `s8[i] = v[i] + v[i + 8]`, `s4[i] = s8[i] + s8[i + 4]`, `s2[i] = s4[i] +
        /// s4[i + 2]`, `s2[0] + s2[1]`. Each step here makes the same additions for several
        /// vectors at once, packing their partial sums into fewer registers: 8 + 4 + 2 + 1
        /// additions and twice as many shuffles for all sixteen, where one at a time takes
        /// four additions and four shuffles or extractions each. A register block of `gemm_nt`
        /// ends in sixteen sums; at the MNIST MLP's batch-64 inference (784 → 128, then 128 →
        /// 10) they had cost a few percent of the forward pass.
        #[inline(always)]
        unsafe fn hsum16(vs: &[Self; 16]) -> [f32; 16] {
            // SAFETY: the trait contract guarantees AVX-512F support; the shuffles and
            // additions only read and write registers.
            unsafe {
                // [v[2k]'s s8 | v[2k + 1]'s s8]: the 256-bit halves of two vectors added.
                let t: [__m512; 8] = std::array::from_fn(|k| {
                    let (a, b) = (vs[2 * k].0, vs[2 * k + 1].0);
                    _mm512_add_ps(
                        _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                        _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
                    )
                });
                // 128-bit block j of u[m] is v[4m + j]'s s4.
                let u: [__m512; 4] = std::array::from_fn(|m| {
                    let (a, b) = (t[2 * m], t[2 * m + 1]);
                    _mm512_add_ps(
                        _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
                        _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
                    )
                });
                // Block j of w[h] is v[8h + j]'s s2, then v[8h + 4 + j]'s.
                let w: [__m512; 2] = std::array::from_fn(|h| {
                    let (a, b) = (u[2 * h], u[2 * h + 1]);
                    _mm512_add_ps(
                        _mm512_shuffle_ps::<0b01_00_01_00>(a, b),
                        _mm512_shuffle_ps::<0b11_10_11_10>(a, b),
                    )
                });
                // Lane 4j + r of z is the sum of v[4r + j].
                let z = _mm512_add_ps(
                    _mm512_shuffle_ps::<0b10_00_10_00>(w[0], w[1]),
                    _mm512_shuffle_ps::<0b11_01_11_01>(w[0], w[1]),
                );
                let mut lanes = [0.0f32; 16];
                _mm512_storeu_ps(lanes.as_mut_ptr(), z);
                std::array::from_fn(|v| lanes[4 * (v % 4) + v / 4])
            }
        }
    }

    lanes! {
        F64x8(f64; 8 lanes, 32 registers),
        setzero = _mm512_setzero_pd, set1 = _mm512_set1_pd, loadu = _mm512_loadu_pd,
        storeu = _mm512_storeu_pd, fmadd = _mm512_fmadd_pd, add = _mm512_add_pd,
        #[inline(always)]
        unsafe fn load_partial(p: *const f64, n: usize) -> Self {
            let mask = ((1u32 << n) - 1) as u8;
            // SAFETY: the trait contract guarantees AVX-512F support and `n` readable elements
            // at `p`; the masked load does not touch the lanes (and memory) outside the mask.
            F64x8(unsafe { _mm512_maskz_loadu_pd(mask, p) })
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f64, n: usize) {
            let mask = ((1u32 << n) - 1) as u8;
            // SAFETY: as for `load_partial`, with `n` writable elements.
            unsafe { _mm512_mask_storeu_pd(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn hsum(self) -> f64 {
            // SAFETY: the trait contract guarantees AVX-512F support.
            unsafe { _mm512_reduce_add_pd(self.0) }
        }
    }

    macro_rules! entry_points {
        ($lanes:ident, $t:ty, $features:literal, $isa:literal, $nt:ident, $nn:ident,
         $packed:ident) => {
            #[doc = concat!($isa, " instantiation of [`blocked::gemm_nt`].")]
            ///
            /// # Safety
            ///
            #[doc = concat!("The CPU must support ", $isa, ", and the arguments must pass")]
            /// [`blocked::check_nt`].
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $nt(k: usize, a: &[$t], b: &[$t], c: MatMut<$t>) {
                // SAFETY: this function's contract is `gemm_nt`'s, with the instructions that
                // `$lanes` needs as its required CPU features.
                unsafe { blocked::gemm_nt::<$lanes>(k, a, b, c) }
            }

            #[doc = concat!($isa, " instantiation of [`blocked::gemm_nn`].")]
            ///
            /// # Safety
            ///
            #[doc = concat!("The CPU must support ", $isa, ", and the arguments must pass")]
            /// [`blocked::check_nn`].
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $nn(
                m: usize,
                n: usize,
                k: usize,
                a: &[$t],
                rsa: usize,
                csa: usize,
                b: &[$t],
                c: &mut [$t],
                accumulate: bool,
            ) {
                // SAFETY: this function's contract is `gemm_nn`'s, with the instructions that
                // `$lanes` needs as its required CPU features.
                unsafe { blocked::gemm_nn::<$lanes>(m, n, k, a, rsa, csa, b, c, accumulate) }
            }

            #[doc = concat!($isa, " instantiation of [`packed::gemm_packed`].")]
            ///
            /// # Safety
            ///
            #[doc = concat!("The CPU must support ", $isa, ", and the arguments must pass")]
            /// [`packed::check`].
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $packed(
                k: usize,
                a: Strided<$t>,
                b: Strided<$t>,
                c: MatMut<$t>,
                accumulate: bool,
                scratch: &mut [$t],
            ) {
                // SAFETY: this function's contract is `gemm_packed`'s, with the instructions
                // that `$lanes` needs as its required CPU features.
                unsafe { packed::gemm_packed::<$lanes>(k, a, b, c, accumulate, scratch) }
            }
        };
    }

    entry_points!(
        F32x8,
        f32,
        "avx2,fma",
        "AVX2+FMA",
        gemm_nt_f32_avx2,
        gemm_nn_f32_avx2,
        gemm_packed_f32_avx2
    );
    entry_points!(
        F64x4,
        f64,
        "avx2,fma",
        "AVX2+FMA",
        gemm_nt_f64_avx2,
        gemm_nn_f64_avx2,
        gemm_packed_f64_avx2
    );
    entry_points!(
        F32x16,
        f32,
        "avx512f,avx2,fma",
        "AVX-512F+AVX2+FMA",
        gemm_nt_f32_avx512,
        gemm_nn_f32_avx512,
        gemm_packed_f32_avx512
    );
    entry_points!(
        F64x8,
        f64,
        "avx512f,avx2,fma",
        "AVX-512F+AVX2+FMA",
        gemm_nt_f64_avx512,
        gemm_nn_f64_avx512,
        gemm_packed_f64_avx512
    );

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::rng::Rng;

        /// Sixteen lane sums at once give the bits of sixteen `_mm512_reduce_add_ps`, over
        /// values spread across forty binades, where adding in any other order rounds
        /// differently.
        #[test]
        fn sixteen_sums_at_once_match_one_at_a_time() {
            if !is_x86_feature_detected!("avx512f") {
                eprintln!("skipped: this CPU has no AVX-512F");
                return;
            }
            let mut rng = Rng::new(17);
            let mut x = vec![0.0f32; 256];
            for round in 0..2000 {
                rng.fill_uniform(-1.0, 1.0, &mut x);
                for (i, v) in x.iter_mut().enumerate() {
                    *v *= 2f32.powi(((i * 7 + round) % 40) as i32 - 20);
                }
                // SAFETY: the CPU has AVX-512F (checked above).
                let (together, alone) = unsafe { sums(&x) };
                let bits = |s: [f32; 16]| s.map(f32::to_bits);
                assert_eq!(bits(together), bits(alone), "round {round}");
            }
        }

        /// `hsum16` and sixteen `hsum`s of the sixteen vectors in `x` (256 values).
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn sums(x: &[f32]) -> ([f32; 16], [f32; 16]) {
            // SAFETY: the caller checked the CPU; each load reads 16 of x's 256 values.
            unsafe {
                let vs: [F32x16; 16] = std::array::from_fn(|v| F32x16::load(x[16 * v..].as_ptr()));
                (F32x16::hsum16(&vs), std::array::from_fn(|v| vs[v].hsum()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(rng: &mut Rng, len: usize) -> Vec<f64> {
        let mut v = vec![0.0; len];
        rng.fill_uniform(-1.0, 1.0, &mut v);
        v
    }

    fn assert_close(what: &str, got: &[f64], want: &[f64], terms: usize) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-14 * (terms as f64 + 1.0),
                "{what}: element {i} is {g}, expected {w}"
            );
        }
    }

    /// A product written into a block of columns of a wider matrix (one task's share of a split
    /// by columns) must give those columns the bits of the whole product and leave every other
    /// element alone.
    #[test]
    fn gemm_nt_into_a_column_view_matches_the_whole_product() {
        let mut rng = Rng::new(3);
        let (m, n, k) = (13, 20, 37);
        let a = random(&mut rng, m * k);
        let b = random(&mut rng, n * k);
        let mut whole = vec![0.0f64; m * n];
        f64::gemm_nt(k, &a, &b, MatMut::new(&mut whole, m, n, n));
        // Boundaries at multiples of 6, which every instruction set's column block divides.
        for cols in [0..6, 6..18, 18..20] {
            let mut c = vec![f64::NAN; m * n];
            let view = MatMut::new(&mut c[cols.start..], m, cols.len(), n);
            f64::gemm_nt(k, &a, &b[cols.start * k..cols.end * k], view);
            for (e, (&got, &want)) in c.iter().zip(&whole).enumerate() {
                if cols.contains(&(e % n)) {
                    assert_eq!(got.to_bits(), want.to_bits(), "element {e} of {cols:?}");
                } else {
                    assert!(got.is_nan(), "element {e} outside {cols:?} was written");
                }
            }
        }
    }

    /// The portable instantiation (which only runs on CPUs without AVX2 and FMA) must compute the
    /// same products as the dispatched one, over every block remainder and several depth passes.
    #[test]
    fn portable_lanes_match_dispatched_products() {
        let mut rng = Rng::new(11);
        let dims = [1usize, 2, 3, 4, 5, 6, 7, 9, 13, 17, 33];
        for &m in &dims {
            for &n in &dims {
                for k in [0usize, 1, 3, 5, 8, 17, 40] {
                    let a = random(&mut rng, m * k);
                    let b = random(&mut rng, n * k);
                    let mut fast = vec![f64::NAN; m * n];
                    let mut slow = vec![f64::NAN; m * n];
                    f64::gemm_nt(k, &a, &b, MatMut::new(&mut fast, m, n, n));
                    // SAFETY: portable lanes need no CPU feature, and the lengths are exact.
                    unsafe {
                        blocked::gemm_nt::<Portable<f64>>(
                            k,
                            &a,
                            &b,
                            MatMut::new(&mut slow, m, n, n),
                        )
                    };
                    assert_close(&format!("gemm_nt {m}x{n}x{k}"), &fast, &slow, k);
                }
                for k in [0usize, 1, 4, 7, 300, 600] {
                    let a = random(&mut rng, m * k);
                    let b = random(&mut rng, k * n);
                    // Both stride orders of `a`: row-major (input gradient) and transposed
                    // (weight gradient).
                    for (rsa, csa) in [(k, 1), (1, m)] {
                        let mut fast = vec![f64::NAN; m * n];
                        let mut slow = vec![f64::NAN; m * n];
                        f64::gemm_nn(m, n, k, &a, rsa, csa, &b, &mut fast, false);
                        // SAFETY: portable lanes need no CPU feature; `a` holds `m·k` elements,
                        // which both stride orders address exactly, and `b` and `c` are exact.
                        unsafe {
                            blocked::gemm_nn::<Portable<f64>>(
                                m, n, k, &a, rsa, csa, &b, &mut slow, false,
                            )
                        };
                        assert_close(&format!("gemm_nn {m}x{n}x{k}"), &fast, &slow, k);
                        let naive: Vec<f64> = (0..m * n)
                            .map(|e| {
                                (0..k)
                                    .map(|s| a[e / n * rsa + s * csa] * b[s * n + e % n])
                                    .sum()
                            })
                            .collect();
                        assert_close(&format!("gemm_nn naive {m}x{n}x{k}"), &fast, &naive, k);
                    }
                }
            }
        }
    }

    type NtFn<T> = unsafe fn(usize, &[T], &[T], MatMut<T>);
    type NnFn<T> = unsafe fn(usize, usize, usize, &[T], usize, usize, &[T], &mut [T], bool);

    /// Every `Lanes` instantiation this CPU can run, by name: portable always, AVX2 and AVX-512
    /// when `isa` would pick them (AVX-512 implies that AVX2 runs too).
    macro_rules! implementations {
        ($t:ident, $nt2:ident, $nn2:ident, $nt512:ident, $nn512:ident) => {{
            #[allow(unused_mut)]
            let mut v: Vec<(&str, NtFn<$t>, NnFn<$t>)> = vec![(
                "portable",
                blocked::gemm_nt::<Portable<$t>>,
                blocked::gemm_nn::<Portable<$t>>,
            )];
            #[cfg(target_arch = "x86_64")]
            {
                let isa = super::super::isa();
                if isa != Isa::Portable {
                    v.push(("avx2", x86::$nt2, x86::$nn2));
                }
                if isa == Isa::Avx512 {
                    v.push(("avx512", x86::$nt512, x86::$nn512));
                }
            }
            v
        }};
    }

    /// Runs one instantiation's products, on operands at every small misalignment, against naive
    /// sums in `f64`, over every block remainder of every instantiation and several depth passes.
    fn check_against_naive<T: Float>(name: &str, nt: NtFn<T>, nn: NnFn<T>, tol_per_term: f64) {
        let mut rng = Rng::new(5);
        let mut random = |len: usize, skip: usize| {
            let mut v = vec![T::ZERO; skip + len];
            rng.fill_uniform(-T::ONE, T::ONE, &mut v);
            v
        };
        let check = |what: &str, got: &[T], want: &[f64], terms: usize| {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g.to_f64() - w).abs() <= tol_per_term * (terms as f64 + 1.0),
                    "{name} {what}: element {i} is {}, expected {w}",
                    g.to_f64()
                );
            }
        };
        let dims = [1usize, 2, 3, 5, 7, 8, 9, 13, 17, 26, 50];
        for skip in [0usize, 1, 3] {
            for &m in &dims {
                for &n in &dims {
                    for k in [0usize, 1, 3, 8, 15, 16, 17, 40, 100] {
                        let (a, b) = (random(m * k, skip), random(n * k, skip));
                        let (a, b) = (&a[skip..], &b[skip..]);
                        let naive: Vec<f64> = (0..m * n)
                            .map(|e| {
                                let (i, j) = (e / n, e % n);
                                (0..k)
                                    .map(|l| a[i * k + l].to_f64() * b[j * k + l].to_f64())
                                    .sum()
                            })
                            .collect();
                        let mut c = vec![T::from_f64(f64::NAN); m * n];
                        // SAFETY: `implementations!` lists only what this CPU runs, and the
                        // lengths are exact.
                        unsafe { nt(k, a, b, MatMut::new(&mut c, m, n, n)) };
                        check(&format!("gemm_nt {m}x{n}x{k}+{skip}"), &c, &naive, k);
                    }
                    for k in [0usize, 1, 4, 9, 300] {
                        let (a, b) = (random(m * k, skip), random(k * n, skip));
                        let (a, b) = (&a[skip..], &b[skip..]);
                        // Both stride orders of `a`: row-major (input gradient) and transposed
                        // (weight gradient).
                        for (rsa, csa) in [(k, 1), (1, m)] {
                            let naive: Vec<f64> = (0..m * n)
                                .map(|e| {
                                    let (r, j) = (e / n, e % n);
                                    (0..k)
                                        .map(|s| {
                                            a[r * rsa + s * csa].to_f64() * b[s * n + j].to_f64()
                                        })
                                        .sum()
                                })
                                .collect();
                            // Guard elements after `c` catch a masked store that writes
                            // past the last column of the last row.
                            let mut c = vec![T::from_f64(f64::NAN); m * n + 16];
                            let (c, guard) = c.split_at_mut(m * n);
                            // SAFETY: as above; `a` holds `m·k` elements, which both stride
                            // orders address exactly.
                            unsafe { nn(m, n, k, a, rsa, csa, b, c, false) };
                            assert!(
                                guard.iter().all(|g| g.to_f64().is_nan()),
                                "{name} gemm_nn wrote past c"
                            );
                            check(
                                &format!("gemm_nn {m}x{n}x{k}+{skip} ({rsa}, {csa})"),
                                c,
                                &naive,
                                k,
                            );
                            // Accumulating adds the same product to what `c` holds.
                            c.fill(T::ONE);
                            // SAFETY: as above.
                            unsafe { nn(m, n, k, a, rsa, csa, b, c, true) };
                            let plus_one: Vec<f64> = naive.iter().map(|v| v + 1.0).collect();
                            check(
                                &format!("gemm_nn += {m}x{n}x{k}+{skip} ({rsa}, {csa})"),
                                c,
                                &plus_one,
                                k + 1,
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_lanes_implementation_matches_naive_products() {
        let f64s = implementations!(
            f64,
            gemm_nt_f64_avx2,
            gemm_nn_f64_avx2,
            gemm_nt_f64_avx512,
            gemm_nn_f64_avx512
        );
        let f32s = implementations!(
            f32,
            gemm_nt_f32_avx2,
            gemm_nn_f32_avx2,
            gemm_nt_f32_avx512,
            gemm_nn_f32_avx512
        );
        for (name, nt, nn) in f64s {
            check_against_naive(name, nt, nn, 1e-14);
        }
        for (name, nt, nn) in f32s {
            check_against_naive(name, nt, nn, 1e-6);
        }
    }

    #[test]
    #[should_panic(expected = "gemm_nn: a")]
    fn gemm_nn_rejects_strides_past_the_end() {
        let mut c = [0.0f32; 4];
        f32::gemm_nn(2, 2, 2, &[0.0; 4], 2, 2, &[0.0; 4], &mut c, false);
    }
}
