//! Packing-free, register-blocked matrix products for the dense layers. Unlike `matrixmultiply`
//! they never allocate, and they need no packing because every operand they stream is already
//! contiguous along the vectorized dimension.
//!
//! Two shapes cover the three dense kernels:
//!
//! - [`gemm_nt`], `C = A·Bᵀ` with `A` and `B` row-major, is the forward pass: every output is a dot
//!   product of two contiguous rows. A block of 4 rows of `A` by 3 rows of `B` keeps 12 vector
//!   accumulators in registers (7 loads per 12 FMAs) and reduces each horizontally once at the
//!   end.
//! - [`gemm_nn`], `C = A·B` with `B` and `C` row-major and `A` arbitrarily strided, is both
//!   backward products: each row of `C` is a combination of rows of `B`. A block of 6 rows by 2
//!   vectors of columns keeps 12 accumulators (8 loads per 12 FMAs, `A` broadcast), and `C` is
//!   written once per block.
//!
//! Both are generic over [`Lanes`], so the same source is the portable fallback, the AVX2+FMA
//! kernel and the AVX-512F kernel for `f32` and `f64`. With AVX-512's 32 vector registers the
//! main blocks grow (8x2 dot products in `gemm_nt`, 8 rows by 3 vectors in `gemm_nn`), and
//! `gemm_nt` starts each dot product with a masked partial step that makes the loads of the
//! first row of `A` cache-line aligned (a 64-byte load that straddles two lines costs nearly
//! two). Remainder rows and columns get their own smaller register blocks (the block shapes are
//! const generics); the last fewer-than-`LANES` elements of each dot product in `gemm_nt` are one
//! partial (zero-padded) vector step, and the last fewer-than-`LANES` columns of `gemm_nn` one
//! masked vector per row. No path is scalar: a scalar column tail once made a 64x784x8 product
//! take 825 µs instead of 12 µs.

use std::array;
use std::mem::size_of;

use super::packed::MatMut;
use super::simd::Lanes;
use crate::float::Float;

/// Bytes of `A` rows that `gemm_nt` keeps in one tile (at least one 4-row block), so that the
/// tile stays in L1 cache while every block of `B` visits it, each block then being reused from
/// L1 by the tile's later row blocks.
const NT_TILE_BYTES: usize = 32 * 1024;

/// Bytes of `B` behind one column block of `gemm_nn` in one depth pass (`kc` rows of up to
/// 4 vectors): they then stay in L1 cache while every row block of `C` uses them.
const NN_PANEL_BYTES: usize = 32 * 1024;

/// The `gemm_nt` register block with 32 vector registers (AVX-512): 8 rows of `A` by 2 of `B`,
/// 16 accumulators (10 loads per 16 FMAs). Larger blocks (8x3, 6x4) measured slower, as LLVM
/// then spills accumulators.
const NT_MR_WIDE: usize = 8;
const NT_NR_WIDE: usize = 2;

/// The `gemm_nt` register block's columns with 16 vector registers (AVX2 and portable).
const NT_NR: usize = 3;

/// Rows of `b` whose multiples start a block of columns in `gemm_nt` on every instruction set
/// (the least common multiple of [`NT_NR_WIDE`] and [`NT_NR`]): a product split among threads
/// at multiples of it gives every output the same block, and so the same bits.
pub(super) const NT_COLUMN_GRAIN: usize = NT_NR_WIDE * NT_NR;

/// The `gemm_nn` register block with 32 vector registers (AVX-512): 8 rows by 3 vectors of
/// columns, 24 accumulators (3 loads and 8 broadcasts per 24 FMAs).
const NN_MR_WIDE: usize = 8;
const NN_NV_WIDE: usize = 3;

/// The length checks behind [`gemm_nt`]'s safety contract.
pub(super) fn check_nt<T>(k: usize, a: &[T], b: &[T], c: &MatMut<T>) {
    let (m, n) = (c.rows(), c.cols());
    assert_eq!(Some(a.len()), m.checked_mul(k), "gemm_nt: a is not m x k");
    assert_eq!(Some(b.len()), n.checked_mul(k), "gemm_nt: b is not n x k");
}

/// The length and stride checks behind [`gemm_nn`]'s safety contract.
#[allow(clippy::too_many_arguments)] // One argument per operand, dimension and stride.
pub(super) fn check_nn<T>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    c: &[T],
) {
    assert_eq!(Some(b.len()), k.checked_mul(n), "gemm_nn: b is not k x n");
    assert_eq!(Some(c.len()), m.checked_mul(n), "gemm_nn: c is not m x n");
    if m > 0 && k > 0 {
        let last = (m - 1)
            .checked_mul(rsa)
            .and_then(|r| (k - 1).checked_mul(csa).and_then(|s| r.checked_add(s)));
        assert!(
            last.is_some_and(|last| last < a.len()),
            "gemm_nn: a ({m}x{k}, strides {rsa}, {csa}) does not fit in {} elements",
            a.len()
        );
    }
}

/// `c[i, j] = Σ_l a[i, l] · b[j, l]` with `a` `m`x`k` and `b` `n`x`k` row-major and contiguous,
/// and `c` any `m`x`n` view (a task's block of columns of a wider matrix, say); `c` is
/// overwritten.
///
/// # Safety
///
/// The CPU must support `V`'s instructions, and the arguments must pass [`check_nt`].
#[inline(always)]
pub(super) unsafe fn gemm_nt<V: Lanes>(
    k: usize,
    a: &[V::Elem],
    b: &[V::Elem],
    mut c: MatMut<V::Elem>,
) {
    let (m, n) = (c.rows(), c.cols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(V::Elem::ZERO);
        return;
    }
    let (c, ldc) = c.raw_parts();
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if V::REGISTERS >= 32 {
            nt_tiles::<V, NT_MR_WIDE, NT_NR_WIDE>(m, n, k, a, b, c, ldc)
        } else {
            nt_tiles::<V, 4, NT_NR>(m, n, k, a, b, c, ldc)
        }
    }
}

/// [`gemm_nt`] for `m, n, k > 0` in `MR`x`NR` register blocks, writing `c` at `cp`, row stride
/// `ldc`; partial blocks at the edges are split into blocks of at most 4x3.
///
/// # Safety
///
/// As for [`gemm_nt`], with `cp` and `ldc` the raw parts of its `c`.
#[inline(always)]
unsafe fn nt_tiles<V: Lanes, const MR: usize, const NR: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: &[V::Elem],
    b: &[V::Elem],
    cp: *mut V::Elem,
    ldc: usize,
) {
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let tile = (NT_TILE_BYTES / (k * size_of::<V::Elem>())).max(MR) / MR * MR;
    let mut i0 = 0;
    while i0 < m {
        let i1 = (i0 + tile).min(m);
        let mut j = 0;
        while j < n {
            let nr = (n - j).min(NR);
            let mut i = i0;
            while i < i1 {
                let mr = (i1 - i).min(MR);
                // SAFETY: rows `i..i + mr` of `a` and `j..j + nr` of `b` exist (`i + mr <= m`,
                // `j + nr <= n`) and hold `k` elements each, and the `mr`x`nr` block of `c` at
                // `(i, j)` is inside its `m` rows of stride `ldc`: `check_nt` checked all three.
                // The CPU supports `V` by this function's contract.
                unsafe {
                    let (a, b, c) = (ap.add(i * k), bp.add(j * k), cp.add(i * ldc + j));
                    if mr == MR && nr == NR {
                        nt_block::<V, MR, NR, 1>(k, a, b, c, ldc);
                    } else {
                        let mut ii = 0;
                        while ii < mr {
                            let mr = (mr - ii).min(4);
                            let mut jj = 0;
                            while jj < nr {
                                let nr = (nr - jj).min(3);
                                nt_dispatch::<V>(
                                    mr,
                                    nr,
                                    k,
                                    a.add(ii * k),
                                    b.add(jj * k),
                                    c.add(ii * ldc + jj),
                                    ldc,
                                );
                                jj += nr;
                            }
                            ii += mr;
                        }
                    }
                }
                i += mr;
            }
            j += nr;
        }
        i0 = i1;
    }
}

/// Runs the `mr`x`nr` block of [`gemm_nt`]. Blocks with few accumulators also unroll along `k`, so
/// that at least 6 independent FMA chains are in flight.
///
/// # Safety
///
/// As for [`nt_block`] with `MR = mr` and `NR = nr`; `1 <= mr <= 4` and `1 <= nr <= 3`.
#[inline(always)]
unsafe fn nt_dispatch<V: Lanes>(
    mr: usize,
    nr: usize,
    k: usize,
    a: *const V::Elem,
    b: *const V::Elem,
    c: *mut V::Elem,
    ldc: usize,
) {
    // SAFETY: every arm forwards this function's contract with `MR = mr` and `NR = nr`.
    unsafe {
        match (mr, nr) {
            (4, 3) => nt_block::<V, 4, 3, 1>(k, a, b, c, ldc),
            (4, 2) => nt_block::<V, 4, 2, 1>(k, a, b, c, ldc),
            (4, _) => nt_block::<V, 4, 1, 2>(k, a, b, c, ldc),
            (3, 3) => nt_block::<V, 3, 3, 1>(k, a, b, c, ldc),
            (3, 2) => nt_block::<V, 3, 2, 2>(k, a, b, c, ldc),
            (3, _) => nt_block::<V, 3, 1, 2>(k, a, b, c, ldc),
            (2, 3) => nt_block::<V, 2, 3, 2>(k, a, b, c, ldc),
            (2, 2) => nt_block::<V, 2, 2, 2>(k, a, b, c, ldc),
            (2, _) => nt_block::<V, 2, 1, 4>(k, a, b, c, ldc),
            (_, 3) => nt_block::<V, 1, 3, 2>(k, a, b, c, ldc),
            (_, 2) => nt_block::<V, 1, 2, 4>(k, a, b, c, ldc),
            _ => nt_block::<V, 1, 1, 4>(k, a, b, c, ldc),
        }
    }
}

/// `c[i·ldc + j] = Σ_l a[i·k + l] · b[j·k + l]` for `i < MR`, `j < NR`: `MR·NR` dot products held
/// as `KU·MR·NR` vector accumulators.
///
/// # Safety
///
/// The CPU must support `V`'s instructions; `a` must be valid for reads of `MR` rows of `k`
/// elements and `b` of `NR` rows of `k` elements (row stride `k`), and `c` for writes of
/// `c[i·ldc + j]`, `i < MR`, `j < NR`.
#[inline(always)]
unsafe fn nt_block<V: Lanes, const MR: usize, const NR: usize, const KU: usize>(
    k: usize,
    a: *const V::Elem,
    b: *const V::Elem,
    c: *mut V::Elem,
    ldc: usize,
) {
    let w = V::LANES;
    // With 32 registers (AVX-512), a vector is a whole cache line, and unaligned loads that
    // straddle two lines cost nearly twice as much: a partial first step makes the loads of the
    // first row of one operand (and of every row, when rows are a whole number of lines apart)
    // aligned. Both can only be aligned together when they share an alignment, so the operand
    // with more rows in this block, whose loads dominate, is the one aligned: `a` in the main
    // blocks, the weights `b` when a single sample meets several of their rows.
    let head = if V::REGISTERS >= 32 {
        let anchor = if MR >= NR { a } else { b };
        anchor.align_offset(w * size_of::<V::Elem>()).min(k)
    } else {
        0
    };
    // SAFETY: the partial steps read offsets `0..head` and `l..k` of each row, and every full
    // load reads `w` elements at an offset `off` with `off + w <= k`, so all reads stay inside the
    // rows this function's contract makes readable; the stores write exactly the `MR`x`NR`
    // elements of `c` the contract makes writable. The CPU supports `V` by the contract.
    unsafe {
        let mut acc = [[[V::zero(); NR]; MR]; KU];
        let mut l = head;
        while l + KU * w <= k {
            for (u, acc) in acc.iter_mut().enumerate() {
                let off = l + u * w;
                let bv: [V; NR] = array::from_fn(|j| V::load(b.add(j * k + off)));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let av = V::load(a.add(i * k + off));
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = V::fmadd(av, bv, *acc);
                    }
                }
            }
            l += KU * w;
        }
        while l + w <= k {
            let bv: [V; NR] = array::from_fn(|j| V::load(b.add(j * k + l)));
            for (i, acc) in acc[0].iter_mut().enumerate() {
                let av = V::load(a.add(i * k + l));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = V::fmadd(av, bv, *acc);
                }
            }
            l += w;
        }
        // The partial steps come after the loops, which keeps the loops' register allocation
        // as simple as without them.
        if l < k {
            nt_partial::<V, MR, NR>(&mut acc[KU - 1], k, a, b, l, k - l);
        }
        if head > 0 {
            nt_partial::<V, MR, NR>(&mut acc[0], k, a, b, 0, head);
        }
        if MR * NR == 16 && KU == 1 {
            // The 8x2 block of AVX-512: its sixteen sums share their shuffles (`hsum16`).
            let sums = V::hsum16(&array::from_fn(|e| acc[0][e / NR][e % NR]));
            for (e, &sum) in sums.iter().enumerate() {
                *c.add(e / NR * ldc + e % NR) = sum;
            }
            return;
        }
        for i in 0..MR {
            for j in 0..NR {
                let mut v = acc[0][i][j];
                for acc in &acc[1..] {
                    v = V::add(v, acc[i][j]);
                }
                *c.add(i * ldc + j) = v.hsum();
            }
        }
    }
}

/// One step of [`nt_block`] over the `len <= LANES` elements at offset `off` of each row.
///
/// # Safety
///
/// As for [`nt_block`], and `off + len <= k`.
#[inline(always)]
unsafe fn nt_partial<V: Lanes, const MR: usize, const NR: usize>(
    acc: &mut [[V; NR]; MR],
    k: usize,
    a: *const V::Elem,
    b: *const V::Elem,
    off: usize,
    len: usize,
) {
    // SAFETY: each partial load reads offsets `off..off + len` of a row, inside the `k` elements
    // this function's contract makes readable; the CPU supports `V` by the same contract.
    unsafe {
        let bv: [V; NR] = array::from_fn(|j| V::load_partial(b.add(j * k + off), len));
        for (i, acc) in acc.iter_mut().enumerate() {
            let av = V::load_partial(a.add(i * k + off), len);
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = V::fmadd(av, bv, *acc);
            }
        }
    }
}

/// `c[r, j] = Σ_s a[r·rsa + s·csa] · b[s, j]` with `b` `k`x`n` and `c` `m`x`n`, row-major and
/// contiguous; `c` is overwritten (with zeros when `k == 0`), or added to with `accumulate`.
///
/// # Safety
///
/// The CPU must support `V`'s instructions, and the arguments must pass [`check_nn`].
#[inline(always)]
#[allow(clippy::too_many_arguments)] // One argument per operand, dimension and stride.
pub(super) unsafe fn gemm_nn<V: Lanes>(
    m: usize,
    n: usize,
    k: usize,
    a: &[V::Elem],
    rsa: usize,
    csa: usize,
    b: &[V::Elem],
    c: &mut [V::Elem],
    accumulate: bool,
) {
    if accumulate && k == 0 {
        return;
    }
    if is_empty_product(m, n, k, c) {
        return;
    }
    let w = V::LANES;
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let mut k0 = 0;
    while k0 < k {
        // Taken afresh each pass, since the scalar tail below writes through `c` itself.
        let cp = c.as_mut_ptr();
        let kc = (NN_PANEL_BYTES / (4 * w * size_of::<V::Elem>())).min(k - k0);
        let first = k0 == 0 && !accumulate;
        // Columns `j..j + width` of rows `k0..k0 + kc` of `b`, and of all rows of `c`.
        let panel = Panel {
            m,
            kc,
            // SAFETY: `k0 < k`, so `A(0, k0)` is inside `a` (`check_nn`).
            a: unsafe { ap.add(k0 * csa) },
            rsa,
            csa,
            // SAFETY: `k0 < k`, so row `k0` of `b` is inside its `k·n` elements.
            b: unsafe { bp.add(k0 * n) },
            c: cp,
            n,
            first,
        };
        let mut j = 0;
        // SAFETY (all four calls): each covers columns `j..j + NV·w <= n` of rows `k0..k0 + kc`
        // of `b` and of every row of `c`, all inside the checked lengths; the CPU supports `V`.
        unsafe {
            if m <= 2 {
                // One or two rows: wider blocks keep 4 or 8 independent accumulators in flight.
                while j + 4 * w <= n {
                    panel.run::<V, 2, 4>(j);
                    j += 4 * w;
                }
                while j + 2 * w <= n {
                    panel.run::<V, 2, 2>(j);
                    j += 2 * w;
                }
            } else if V::REGISTERS >= 32 {
                while j + NN_NV_WIDE * w <= n {
                    panel.run::<V, NN_MR_WIDE, NN_NV_WIDE>(j);
                    j += NN_NV_WIDE * w;
                }
                while j + 2 * w <= n {
                    panel.run::<V, 6, 2>(j);
                    j += 2 * w;
                }
            } else {
                while j + 2 * w <= n {
                    panel.run::<V, 6, 2>(j);
                    j += 2 * w;
                }
            }
            while j + w <= n {
                panel.run::<V, 6, 1>(j);
                j += w;
            }
        }
        // The last fewer-than-`w` columns: one masked vector per row.
        if j < n {
            // SAFETY: columns `j..n` of rows `k0..k0 + kc` of `b` and of every row of `c` are
            // inside the checked lengths; the CPU supports `V`.
            unsafe {
                if V::REGISTERS >= 32 {
                    panel.run_tail::<V, NN_MR_WIDE>(j, n - j)
                } else {
                    panel.run_tail::<V, 6>(j, n - j)
                }
            }
        }
        k0 += kc;
    }
}

/// One depth pass of [`gemm_nn`]: `kc` rows of `A`'s columns and `B`, all `m` rows of `C`.
struct Panel<T> {
    m: usize,
    kc: usize,
    /// `A(0, k0)`.
    a: *const T,
    rsa: usize,
    csa: usize,
    /// Row `k0` of `B`.
    b: *const T,
    /// Row 0 of `C`.
    c: *mut T,
    /// Columns of `B` and `C`, and so their row stride.
    n: usize,
    /// Whether this pass overwrites `C` rather than adding to it.
    first: bool,
}

impl<T: Float> Panel<T> {
    /// Columns `j..j + NV·LANES` of every row of `C`, in blocks of `MR` rows and then one block of
    /// the remaining rows.
    ///
    /// # Safety
    ///
    /// The CPU must support `V`'s instructions. `A(r, s)` at `a[r·rsa + s·csa]` must be readable
    /// for `r < m`, `s < kc`, rows `0..kc` of `B` readable and rows `0..m` of `C` writable at
    /// columns `j..j + NV·LANES`, which must not exceed `n`.
    #[inline(always)]
    unsafe fn run<V: Lanes<Elem = T>, const MR: usize, const NV: usize>(&self, j: usize) {
        let block = |r: usize| {
            // SAFETY: row `r < m` of `A` and of `C` exist, so these offsets stay in bounds.
            unsafe {
                (
                    self.a.add(r * self.rsa),
                    self.b.add(j),
                    self.c.add(r * self.n + j),
                )
            }
        };
        let (kc, rsa, csa, n, first) = (self.kc, self.rsa, self.csa, self.n, self.first);
        let mut r = 0;
        // SAFETY: each block covers rows `r..r + rows <= m` of `A` and `C` and the columns this
        // function's contract makes accessible, which is `nn_block`'s contract.
        unsafe {
            while r + MR <= self.m {
                let (a, b, c) = block(r);
                nn_block::<V, MR, NV>(kc, a, rsa, csa, b, n, c, n, first);
                r += MR;
            }
            while r < self.m {
                let (a, b, c) = block(r);
                let rows = (self.m - r).min(6);
                match rows {
                    1 => nn_block::<V, 1, NV>(kc, a, rsa, csa, b, n, c, n, first),
                    2 => nn_block::<V, 2, NV>(kc, a, rsa, csa, b, n, c, n, first),
                    3 => nn_block::<V, 3, NV>(kc, a, rsa, csa, b, n, c, n, first),
                    4 => nn_block::<V, 4, NV>(kc, a, rsa, csa, b, n, c, n, first),
                    5 => nn_block::<V, 5, NV>(kc, a, rsa, csa, b, n, c, n, first),
                    _ => nn_block::<V, 6, NV>(kc, a, rsa, csa, b, n, c, n, first),
                }
                r += rows;
            }
        }
    }
}

impl<T: Float> Panel<T> {
    /// Columns `j..j + cols` (`cols < LANES`) of every row of `C`, one masked vector per row, in
    /// blocks of `MR` rows and then one block of the remaining rows.
    ///
    /// # Safety
    ///
    /// As for [`Panel::run`], with the columns `j..j + cols`.
    #[inline(always)]
    unsafe fn run_tail<V: Lanes<Elem = T>, const MR: usize>(&self, j: usize, cols: usize) {
        let (kc, rsa, csa, n, first) = (self.kc, self.rsa, self.csa, self.n, self.first);
        let mut r = 0;
        while r < self.m {
            let rows = (self.m - r).min(MR);
            // SAFETY: rows `r..r + rows <= m` of `A` and `C` exist, and the block covers the
            // columns this function's contract makes accessible, which is `nn_tail`'s contract.
            unsafe {
                let (a, b, c) = (self.a.add(r * rsa), self.b.add(j), self.c.add(r * n + j));
                if rows == MR {
                    nn_tail::<V, MR>(kc, a, rsa, csa, b, n, c, n, first, cols);
                } else {
                    for i in 0..rows {
                        let (a, c) = (a.add(i * rsa), c.add(i * n));
                        nn_tail::<V, 1>(kc, a, rsa, csa, b, n, c, n, first, cols);
                    }
                }
            }
            r += rows;
        }
    }
}

/// [`nn_block`] with one vector of which only the first `cols < LANES` lanes exist: `B` is read
/// and `C` written through masks, so neither is touched past column `cols`. Each element's sum
/// runs over `s` in the same order as in the full blocks, so results do not depend on which
/// block computed a column.
///
/// # Safety
///
/// As for [`nn_block`] with `NV = 1`, with columns `0..cols` in place of `0..LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // One argument per operand, dimension and stride.
unsafe fn nn_tail<V: Lanes, const MR: usize>(
    kc: usize,
    a: *const V::Elem,
    rsa: usize,
    csa: usize,
    b: *const V::Elem,
    ldb: usize,
    c: *mut V::Elem,
    ldc: usize,
    first: bool,
    cols: usize,
) {
    // SAFETY: every pointer below addresses an index this function's contract makes valid, the
    // masked accesses touching only columns `0..cols`; the CPU supports `V` by the contract.
    unsafe {
        let mut acc = [V::zero(); MR];
        for s in 0..kc {
            let bv = V::load_partial(b.add(s * ldb), cols);
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = V::fmadd(V::splat(*a.add(r * rsa + s * csa)), bv, *acc);
            }
        }
        for (r, &acc) in acc.iter().enumerate() {
            let p = c.add(r * ldc);
            let out = if first {
                acc
            } else {
                V::add(V::load_partial(p, cols), acc)
            };
            out.store_partial(p, cols);
        }
    }
}

/// `c[r·ldc + j] (+)= Σ_s a[r·rsa + s·csa] · b[s·ldb + j]` for `r < MR`, `j < NV·LANES`, `s < kc`:
/// `MR·NV` vector accumulators, one broadcast of `A` per row and step, and one store per
/// accumulator. With `first` the block overwrites `c`, otherwise it adds to it.
///
/// # Safety
///
/// The CPU must support `V`'s instructions, and every index above must be valid for reads
/// (`a`, `b`) or for reads and writes (`c`).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // One argument per operand, dimension and stride.
unsafe fn nn_block<V: Lanes, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const V::Elem,
    rsa: usize,
    csa: usize,
    b: *const V::Elem,
    ldb: usize,
    c: *mut V::Elem,
    ldc: usize,
    first: bool,
) {
    let w = V::LANES;
    // SAFETY: every pointer below addresses an index this function's contract makes valid, and
    // the CPU supports `V` by the same contract.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for s in 0..kc {
            let bv: [V; NV] = array::from_fn(|v| V::load(b.add(s * ldb + v * w)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = V::splat(*a.add(r * rsa + s * csa));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = V::fmadd(av, bv, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                let p = c.add(r * ldc + v * w);
                let out = if first { acc } else { V::add(V::load(p), acc) };
                out.store(p);
            }
        }
    }
}

/// Handles the products with nothing to multiply: an empty `C` is left alone, and an empty sum
/// (`k == 0`) makes `C` zero. Returns whether the product is done.
fn is_empty_product<T: Float>(m: usize, n: usize, k: usize, c: &mut [T]) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        c.fill(T::ZERO);
        return true;
    }
    false
}
