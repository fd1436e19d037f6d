//! The packed matrix product behind the dense layers and 2-D products at training sizes:
//! `C (+)= A·B` with `A` and `B` read through any strides, copied ("packed") block by block into
//! per-thread scratch and multiplied there by a register-blocked micro-kernel, in the blocking
//! that BLIS made standard (a `KC`-deep panel of `B` kept in L2 and L3, a `MC`x`KC` block of `A`
//! in L2, one `MR`-row micro-panel of `A` and one `NR`-column sliver of `B` in L1).
//!
//! Packing is what the packing-free kernels of `blocked.rs` cannot do without: it turns every
//! operand into one contiguous stream whatever its layout, so that no cache set is overloaded by
//! a power-of-two row stride and the transposed weights of a forward pass become a broadcast
//! product instead of dot products that each end in a horizontal sum. At the small GPT's shapes
//! (768 rows, widths 128 and 512, `cargo bench -p nnc-runtime --bench kernels -- dense_vs_gemm`)
//! the packing-free kernels reached 50-60 GFLOP/s on one core of this VM, `matrixmultiply`
//! 70-77; see the module's figures in ARCHITECTURE.md, "Matrix products".
//!
//! The scratch comes from the workspace (`gemm_scratch_len` sizes it), so nothing is allocated;
//! `matrixmultiply` packs into a buffer it allocates on every call. Each element of `C` is one
//! chain of fused multiply-adds over `l` in order, continued across depth blocks through `C`
//! itself, so its bits depend neither on the block it falls in nor on how rows are split among
//! threads. This module does not thread: `matmul.rs` splits rows or columns among tasks.

use std::marker::PhantomData;
use std::ops::Range;

use super::simd::Lanes;
use crate::float::Float;

/// The depth of one packed panel: a sliver of `B` (`KC`x`NR`) then takes 16 KiB of `f32` with
/// AVX2, half of L1, and a micro-panel of `A` 6 KiB.
const KC: usize = 256;

/// Rows of `A` packed at once (a multiple of every `MR` below): 144x256 `f32` is 144 KiB, well
/// inside a 512 KiB L2 beside the panel of `B` that streams through.
const MC: usize = 144;

/// Columns of `B` packed at once (a multiple of every `NR` below).
const NC: usize = 3072;

/// The largest `MR` and `NR` of any instantiation, which bound the scratch and the edge tiles.
const MR_MAX: usize = 8;
const NR_MAX: usize = 48;

/// Scratch elements one thread needs for a packed product whose `B` is `k`x`n`, whatever the
/// number of rows: one `MC`-row block of `A` and one panel of `B`, each at most `KC` deep.
pub const fn gemm_scratch_len(n: usize, k: usize) -> usize {
    let kc = if k < KC { k } else { KC };
    // `NC` is a multiple of `NR_MAX`, so rounding after the cap stays within it.
    let nc = if n < NC { n } else { NC };
    let nc = nc.div_ceil(NR_MAX) * NR_MAX;
    MC * kc + kc * nc
}

/// A matrix read through strides: element `(i, l)` at `data[i·rs + l·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Strided<'a, T> {
    /// The same matrix from row `i` on (empty past the end).
    pub(crate) fn rows_from(self, i: usize) -> Strided<'a, T> {
        let elements = i * self.rs;
        self.skip(elements)
    }

    /// The same matrix from column `j` on (empty past the end).
    pub(crate) fn cols_from(self, j: usize) -> Strided<'a, T> {
        let elements = j * self.cs;
        self.skip(elements)
    }

    fn skip(self, elements: usize) -> Strided<'a, T> {
        Strided {
            data: &self.data[elements.min(self.data.len())..],
            ..self
        }
    }

    /// Panics unless every element of a `rows`x`cols` matrix lies inside `data`.
    fn check(&self, what: &str, rows: usize, cols: usize) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1).checked_mul(self.rs).and_then(|r| {
            (cols - 1)
                .checked_mul(self.cs)
                .and_then(|c| r.checked_add(c))
        });
        assert!(
            last.is_some_and(|last| last < self.data.len()),
            "gemm_packed: {what} ({rows}x{cols}, strides {}, {}) does not fit in {} elements",
            self.rs,
            self.cs,
            self.data.len()
        );
    }
}

/// The length checks behind [`gemm_packed`]'s safety contract (`C`'s own were made when its
/// view was built).
pub(super) fn check<T>(k: usize, a: Strided<T>, b: Strided<T>, c: &MatMut<T>, scratch: &[T]) {
    let (m, n) = (c.rows, c.cols);
    a.check("a", m, k);
    b.check("b", k, n);
    let need = gemm_scratch_len(n, k);
    assert!(
        scratch.len() >= need,
        "gemm_packed: scratch of {} elements is less than the {need} a {k}x{n} product needs",
        scratch.len()
    );
}

/// A matrix written in place: element `(i, j)` at `ptr[i·ld + j]` for `i < rows` and
/// `j < cols`, borrowed exclusively. Unlike a `&mut [T]` it does not own the elements between
/// the end of one row and the start of the next, so the columns of one matrix can be handed to
/// different threads.
pub struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    ld: usize,
    life: PhantomData<&'a mut [T]>,
}

impl<'a, T> MatMut<'a, T> {
    /// The `rows`x`cols` matrix at the start of `data` with row stride `ld`. Panics unless
    /// `ld >= cols` and every element lies inside `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize, ld: usize) -> Self {
        assert!(
            ld >= cols,
            "matrix view: row stride {ld} is less than {cols} columns"
        );
        if rows > 0 && cols > 0 {
            let last = (rows - 1).checked_mul(ld).and_then(|r| r.checked_add(cols));
            assert!(
                last.is_some_and(|last| last <= data.len()),
                "matrix view: {rows}x{cols} at row stride {ld} does not fit in {} elements",
                data.len()
            );
        }
        MatMut {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            ld,
            life: PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`'s `cols` elements. Panics unless `i < rows`.
    pub fn row(&mut self, i: usize) -> &mut [T] {
        assert!(i < self.rows, "matrix view: row {i} of {}", self.rows);
        // SAFETY: the row lies inside the elements this view borrows exclusively (`new` or
        // `cols`), and the borrow of `self` keeps it the only live slice of them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.ld), self.cols) }
    }

    /// Sets every element of the view to `value`.
    pub(super) fn fill(&mut self, value: T)
    where
        T: Copy,
    {
        (0..self.rows).for_each(|i| self.row(i).fill(value));
    }

    /// The first element's address and the row stride, for a kernel that writes the view
    /// through raw pointers; the view is consumed, so nothing else writes it meanwhile.
    pub(super) fn raw_parts(self) -> (*mut T, usize) {
        (self.ptr, self.ld)
    }

    /// The same elements, borrowed from this view for a shorter time.
    pub fn reborrow(&mut self) -> MatMut<'_, T> {
        MatMut {
            life: PhantomData,
            ..*self
        }
    }

    /// Rows `range`, as a view of their own that lives as long as this one.
    ///
    /// # Safety
    ///
    /// `range` lies inside `0..rows`, and no two views taken from this one that are used while
    /// both live share an element.
    pub(crate) unsafe fn rows_unchecked(&self, range: Range<usize>) -> MatMut<'a, T> {
        debug_assert!(range.start <= range.end && range.end <= self.rows);
        MatMut {
            // Wrapping, since an empty range may point past the borrowed elements (it is never
            // read through).
            ptr: self.ptr.wrapping_add(range.start * self.ld),
            rows: range.len(),
            ..*self
        }
    }

    /// Columns `range` of every row, as a view of their own that lives as long as this one.
    ///
    /// # Safety
    ///
    /// As for [`MatMut::rows_unchecked`], with `range` inside `0..cols`.
    pub(crate) unsafe fn cols_unchecked(&self, range: Range<usize>) -> MatMut<'a, T> {
        debug_assert!(range.start <= range.end && range.end <= self.cols);
        MatMut {
            ptr: self.ptr.wrapping_add(range.start),
            cols: range.len(),
            ..*self
        }
    }
}

/// `C(i, j) (+)= Σ_l A(i, l) · B(l, j)` over `C`'s rows and columns: overwriting `C` (zeros
/// when `k == 0`), or adding to it with `accumulate`.
///
/// # Safety
///
/// The CPU must support `V`'s instructions, and the arguments must pass [`check`].
#[inline(always)]
pub(super) unsafe fn gemm_packed<V: Lanes>(
    k: usize,
    a: Strided<V::Elem>,
    b: Strided<V::Elem>,
    mut c: MatMut<V::Elem>,
    accumulate: bool,
    scratch: &mut [V::Elem],
) {
    let (m, n) = (c.rows, c.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(V::Elem::ZERO);
        }
        return;
    }
    let product = Product {
        m,
        n,
        k,
        a,
        b,
        c: c.ptr,
        ldc: c.ld,
        accumulate,
    };
    // SAFETY: forwarded from this function's contract; `check` sized the scratch.
    unsafe {
        if V::REGISTERS >= 32 {
            product.run::<V, 8, 3>(scratch)
        } else {
            product.run::<V, 6, 2>(scratch)
        }
    }
}

/// One product's operands, for [`Product::run`].
struct Product<'a, T> {
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'a, T>,
    b: Strided<'a, T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
}

impl<T: Float> Product<'_, T> {
    /// The whole product in `MR`x`NV·LANES` register blocks.
    ///
    /// # Safety
    ///
    /// As for [`gemm_packed`], with `m, n, k > 0`, `MR <= MR_MAX` and `NV·LANES <= NR_MAX`.
    #[inline(always)]
    unsafe fn run<V: Lanes<Elem = T>, const MR: usize, const NV: usize>(&self, scratch: &mut [T]) {
        let nr = NV * V::LANES;
        debug_assert!(
            MR <= MR_MAX
                && NV <= 3
                && nr <= NR_MAX
                && MC.is_multiple_of(MR)
                && NC.is_multiple_of(nr)
        );
        let (packed_a, packed_b) = scratch.split_at_mut(MC * self.k.min(KC));
        // Rows of `A` that are contiguous are read where they lie: each step of a block then
        // broadcasts from `MR` rows advancing together, which streams as well as a packed copy
        // and saves copying it (scalar copies that interleave rows took 13 % of a GPT training
        // step). Any other layout is packed: a column-major `A` (a weight gradient's `gzᵀ`)
        // read in place would put every step on a new cache line at a power-of-two stride.
        let pack = self.a.cs != 1;
        for jc in (0..self.n).step_by(NC) {
            let ncb = (self.n - jc).min(NC);
            for pc in (0..self.k).step_by(KC) {
                let kc = (self.k - pc).min(KC);
                pack_b::<V, NV>(self.b, pc, jc, kc, ncb, packed_b);
                // Later depth blocks continue each element's chain from `C`.
                let load = self.accumulate || pc > 0;
                for ic in (0..self.m).step_by(MC) {
                    let mcb = (self.m - ic).min(MC);
                    if pack {
                        pack_a::<T, MR>(self.a, ic, pc, mcb, kc, packed_a);
                    }
                    for jr in (0..ncb).step_by(nr) {
                        let cols = (ncb - jr).min(nr);
                        // The last sliver is only as many vectors wide as its columns need
                        // (`pack_b`), so a width of 128 is two slivers of 48 and one of 32, not
                        // three of 48 with a third of the last one's arithmetic on zeros.
                        let nv = cols.div_ceil(V::LANES);
                        let b = &packed_b[jr * kc..(jr + nv * V::LANES) * kc];
                        for ir in (0..mcb).step_by(MR) {
                            let rows = (mcb - ir).min(MR);
                            let a = if pack {
                                Strided {
                                    data: &packed_a[ir * kc..(ir + MR) * kc],
                                    rs: 1,
                                    cs: MR,
                                }
                            } else {
                                let start = (ic + ir) * self.a.rs + pc;
                                Strided {
                                    data: &self.a.data[start..],
                                    ..self.a
                                }
                            };
                            // SAFETY: the block's rows `ic + ir..+ rows <= m` and columns
                            // `jc + jr..+ cols <= n` of `C` lie inside `c` (`check`), `a` holds
                            // `rows` rows of `kc` steps (packed, or `A`'s own, `check`ed), and
                            // `b` `kc` steps of `nr` elements.
                            unsafe {
                                let c = self.c.add((ic + ir) * self.ldc + jc + jr);
                                let block = Block {
                                    kc,
                                    a,
                                    b,
                                    c,
                                    ldc: self.ldc,
                                    load,
                                    cols,
                                };
                                match nv {
                                    1 => block.rows::<V, 1>(rows),
                                    2 if NV >= 2 => block.rows::<V, 2>(rows),
                                    _ => block.rows::<V, NV>(rows),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies rows `i0..i0 + rows` and columns `l0..l0 + kc` of `A` into micro-panels of `MR` rows,
/// each stored step by step (`MR` consecutive values per `l`); rows past the end are left as
/// they are, since no block reads them.
fn pack_a<T: Float, const MR: usize>(
    a: Strided<T>,
    i0: usize,
    l0: usize,
    rows: usize,
    kc: usize,
    out: &mut [T],
) {
    for (p, panel) in out[..rows.div_ceil(MR) * MR * kc]
        .chunks_exact_mut(MR * kc)
        .enumerate()
    {
        let base = i0 + p * MR;
        let live = (rows - p * MR).min(MR);
        for (l, step) in panel.chunks_exact_mut(MR).enumerate() {
            let start = base * a.rs + (l0 + l) * a.cs;
            if a.rs == 1 && live == MR {
                // A step's values are contiguous: one fixed-size copy.
                step.copy_from_slice(&a.data[start..start + MR]);
            } else {
                for (i, dst) in step[..live].iter_mut().enumerate() {
                    *dst = a.data[start + i * a.rs];
                }
            }
        }
    }
}

/// Copies rows `l0..l0 + kc` and columns `j0..j0 + cols` of `B` into slivers of `NV·LANES`
/// columns, each stored step by step (`NV·LANES` consecutive values per `l`); the last sliver
/// is as many whole vectors wide as its columns need, with the columns past the end zero, and
/// starts where a full one would.
fn pack_b<V: Lanes, const NV: usize>(
    b: Strided<V::Elem>,
    l0: usize,
    j0: usize,
    kc: usize,
    cols: usize,
    out: &mut [V::Elem],
) {
    let nr = NV * V::LANES;
    for q in 0..cols.div_ceil(nr) {
        let base = j0 + q * nr;
        let live = (cols - q * nr).min(nr);
        let width = live.div_ceil(V::LANES) * V::LANES;
        let sliver = &mut out[q * nr * kc..(q * nr + width) * kc];
        if b.cs == 1 {
            for (l, step) in sliver.chunks_exact_mut(width).enumerate() {
                let start = (l0 + l) * b.rs + base;
                if live == nr {
                    // A fixed-size copy, which compiles to vector moves.
                    step.copy_from_slice(&b.data[start..start + nr]);
                } else {
                    step[..live].copy_from_slice(&b.data[start..start + live]);
                    step[live..].fill(V::Elem::ZERO);
                }
            }
        } else {
            // Columns are contiguous (a transposed row-major matrix, such as a layer's weights
            // in its forward pass): read each along `l`, write every `nr`-th value.
            for j in 0..live {
                let col = &b.data[(base + j) * b.cs + l0 * b.rs..];
                for (l, dst) in sliver[j..].iter_mut().step_by(width).take(kc).enumerate() {
                    *dst = col[l * b.rs];
                }
            }
            if live < width {
                for step in sliver.chunks_exact_mut(width) {
                    step[live..].fill(V::Elem::ZERO);
                }
            }
        }
    }
}

/// One register block: `kc` steps of `A` (read through its strides), a packed sliver of `B`, and
/// the block of `C` at `c`, of which the first `cols` columns exist.
struct Block<'a, T> {
    kc: usize,
    a: Strided<'a, T>,
    b: &'a [T],
    c: *mut T,
    ldc: usize,
    load: bool,
    cols: usize,
}

impl<T: Float> Block<'_, T> {
    /// [`Block::run`] for a block of `rows <= MR_MAX` rows.
    ///
    /// # Safety
    ///
    /// As for [`Block::run`] with `MR = rows`.
    #[inline(always)]
    unsafe fn rows<V: Lanes<Elem = T>, const NV: usize>(&self, rows: usize) {
        // SAFETY: every arm forwards this function's contract with `MR = rows`.
        unsafe {
            match rows {
                1 => self.run::<V, 1, NV>(),
                2 => self.run::<V, 2, NV>(),
                3 => self.run::<V, 3, NV>(),
                4 => self.run::<V, 4, NV>(),
                5 => self.run::<V, 5, NV>(),
                6 => self.run::<V, 6, NV>(),
                7 => self.run::<V, 7, NV>(),
                _ => self.run::<V, 8, NV>(),
            }
        }
    }

    /// The block's `MR` rows: straight into `C` when every column exists, else through a tile
    /// on the stack, with the same arithmetic for every element (the packed padding is zero).
    ///
    /// # Safety
    ///
    /// The CPU must support `V`'s instructions; `a` must hold `MR` rows of `kc` steps, `b`
    /// `kc·NV·LANES` elements, and `c` be valid for reads and writes of `MR` rows of `cols`
    /// elements at row stride `ldc`.
    #[inline(always)]
    unsafe fn run<V: Lanes<Elem = T>, const MR: usize, const NV: usize>(&self) {
        let nr = NV * V::LANES;
        let a = &self.a;
        let (ap, bp) = (a.data.as_ptr(), self.b.as_ptr());
        // SAFETY: as this function's contract; the tile holds `MR_MAX` rows of `NR_MAX >= nr`.
        unsafe {
            if self.cols == nr {
                return micro::<V, MR, NV>(
                    self.kc, ap, a.rs, a.cs, bp, self.c, self.ldc, self.load,
                );
            }
            let mut tile = [T::ZERO; MR_MAX * NR_MAX];
            let t = tile.as_mut_ptr();
            if self.load {
                for i in 0..MR {
                    std::ptr::copy_nonoverlapping(
                        self.c.add(i * self.ldc),
                        t.add(i * nr),
                        self.cols,
                    );
                }
            }
            micro::<V, MR, NV>(self.kc, ap, a.rs, a.cs, bp, t, nr, self.load);
            for i in 0..MR {
                std::ptr::copy_nonoverlapping(t.add(i * nr), self.c.add(i * self.ldc), self.cols);
            }
        }
    }
}

/// `c[i·ldc + v·LANES + e] = C₀ + Σ_l a[i·rsa + l·csa] · b[l·NR + v·LANES + e]` over `l < kc`,
/// with `C₀` the element's current value when `load`, else zero: `MR·NV` vector accumulators,
/// `NV` loads of `B` and `MR` broadcasts of `A` per step.
///
/// # Safety
///
/// The CPU must support `V`'s instructions; `a` must be valid for reads of `MR` rows of `kc`
/// steps through its strides, `b` of `kc·NV·LANES` elements, and `c` for reads and writes of
/// `MR` rows of `NV·LANES` elements at row stride `ldc`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // The operands with their strides.
unsafe fn micro<V: Lanes, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const V::Elem,
    rsa: usize,
    csa: usize,
    b: *const V::Elem,
    c: *mut V::Elem,
    ldc: usize,
    load: bool,
) {
    let w = V::LANES;
    let nr = NV * w;
    // SAFETY: every access below is inside what this function's contract makes accessible, and
    // the CPU supports `V` by the same contract.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        if load {
            for (i, acc) in acc.iter_mut().enumerate() {
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = V::load(c.add(i * ldc + v * w));
                }
            }
        }
        let rows: [*const V::Elem; MR] = std::array::from_fn(|i| a.add(i * rsa));
        for l in 0..kc {
            let bv: [V; NV] = std::array::from_fn(|v| V::load(b.add(l * nr + v * w)));
            for (acc, &row) in acc.iter_mut().zip(&rows) {
                let av = V::splat(*row.add(l * csa));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = V::fmadd(av, bv, *acc);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                acc.store(c.add(i * ldc + v * w));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Portable, Simd};
    use super::*;
    use crate::rng::Rng;

    /// Both instantiations a test can name on any CPU (the dispatched one, AVX2 or AVX-512 here,
    /// and the portable one) against naive `f64` sums, over every layout of `A` and `B` the
    /// generated code uses, blocks cut at every edge (rows past `MC`, depth past `KC`, partial
    /// register blocks), adding to `C` and not, with a row stride of `C` wider than its rows.
    #[test]
    fn packed_products_match_naive_sums_in_every_layout() {
        let mut rng = Rng::new(3);
        for (m, n, k) in [
            (1, 1, 1),
            (7, 17, 3),
            (13, 9, 40),
            (150, 50, 300),
            (6, 16, 257),
            (9, 128, 20),
            (3, 80, 7),
        ] {
            let mut a = vec![0.0f64; m * k];
            let mut b = vec![0.0f64; k * n];
            rng.fill_uniform(-1.0, 1.0, &mut a);
            rng.fill_uniform(-1.0, 1.0, &mut b);
            let ldc = n + 3;
            let mut c0 = vec![0.0f64; m * ldc];
            rng.fill_uniform(-1.0, 1.0, &mut c0);
            for (rsa, csa) in [(k, 1), (1, m)] {
                for (rsb, csb) in [(n, 1), (1, k)] {
                    let av = Strided {
                        data: &a,
                        rs: rsa,
                        cs: csa,
                    };
                    let bv = Strided {
                        data: &b,
                        rs: rsb,
                        cs: csb,
                    };
                    for accumulate in [false, true] {
                        let want: Vec<f64> = (0..m * ldc)
                            .map(|e| {
                                let (i, j) = (e / ldc, e % ldc);
                                if j >= n {
                                    return c0[e];
                                }
                                let sum: f64 = (0..k)
                                    .map(|l| a[i * rsa + l * csa] * b[l * rsb + j * csb])
                                    .sum();
                                sum + if accumulate { c0[e] } else { 0.0 }
                            })
                            .collect();
                        let mut scratch = vec![f64::NAN; gemm_scratch_len(n, k)];
                        let mut fast = c0.clone();
                        let view = MatMut::new(&mut fast, m, n, ldc);
                        f64::gemm_packed(k, av, bv, view, accumulate, &mut scratch);
                        let mut portable = c0.clone();
                        // SAFETY: portable lanes need no CPU feature; the operands are the ones
                        // `gemm_packed` just checked.
                        unsafe {
                            let view = MatMut::new(&mut portable, m, n, ldc);
                            gemm_packed::<Portable<f64>>(k, av, bv, view, accumulate, &mut scratch)
                        };
                        for (name, got) in [("dispatched", &fast), ("portable", &portable)] {
                            for (e, (g, w)) in got.iter().zip(&want).enumerate() {
                                assert!(
                                    (g - w).abs() <= 1e-14 * (k as f64 + 1.0),
                                    "{name} {m}x{n}x{k} a ({rsa}, {csa}) b ({rsb}, {csb}) \
                                     accumulate {accumulate}: element {e} is {g}, expected {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// An 8x8 product of ones with `a_len` elements of `A` and `scratch` elements of scratch.
    fn ones_product(a_len: usize, scratch: usize) {
        let (a, b) = (vec![1.0f32; a_len], vec![1.0f32; 8 * 8]);
        let mut c = vec![0.0f32; 8 * 8];
        fn row_major(data: &[f32]) -> Strided<'_, f32> {
            Strided { data, rs: 8, cs: 1 }
        }
        let mut scratch = vec![0.0; scratch];
        let (a, b) = (row_major(&a), row_major(&b));
        f32::gemm_packed(8, a, b, MatMut::new(&mut c, 8, 8, 8), false, &mut scratch);
        assert_eq!(c, [8.0; 64]);
    }

    /// A short scratch or an operand that does not cover its strides is a panic before any
    /// unsafe code runs.
    #[test]
    #[should_panic(expected = "scratch")]
    fn packed_products_reject_short_scratch() {
        ones_product(64, 10);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn packed_products_reject_operands_past_their_slices() {
        ones_product(63, gemm_scratch_len(8, 8));
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn matrix_views_reject_elements_past_their_slice() {
        MatMut::new(&mut [0.0f32; 63], 8, 8, 8);
    }

    #[test]
    fn packed_products_of_exact_operands_pass_the_checks() {
        ones_product(64, gemm_scratch_len(8, 8));
    }
}
