//! General matrix products: the threaded front end of the packed product (`packed.rs`) that
//! dense layers and generated 2-D products call, a checked, safe front end to `matrixmultiply`'s
//! `sgemm`/`dgemm` (kept as a reference and for callers without scratch), and the naive triple
//! loop the tests use as an oracle.

use super::dense::MIN_TASK_MACS;
use std::ops::Range;

use super::packed::{gemm_scratch_len, MatMut, Strided};
use super::split::{PerTask, SplitCols, SplitRows};
use crate::float::Float;
use crate::kernels::Exec;

/// Row ranges of a threaded packed product start at multiples of this many rows: whole
/// micro-panels of 6 (AVX2) and 8 (AVX-512) rows, so that no task ends in a partial block that
/// another could have filled. Results do not depend on it (see `packed.rs`).
const PACKED_GRAIN: usize = 24;

/// Column ranges of a threaded packed product start at multiples of this many columns: whole
/// 16-column slivers of the AVX2 register block. With AVX-512's 48-column blocks a task may end
/// in a partial block, which costs time, never bits.
const PACKED_COL_GRAIN: usize = 16;

/// `C = A·B` with `A` (`m`x`k`) and `B` (`k`x`n`) read through strides and `C` row-major with
/// row stride `ldc >= n`, overwritten: the product of the generated code for 2-D `matmul`s.
/// Rows or columns are split among the context's tasks, each packing into its own piece of
/// `scratch`, which holds [`gemm_scratch_len`]`(n, k)` elements per thread. Panics unless every
/// operand covers the elements the product touches.
pub fn matmul<T: Float>(
    exec: &Exec,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    c: &mut [T],
    ldc: usize,
    scratch: &mut [T],
) {
    let (a, b) = (
        Strided {
            data: a,
            rs: rsa,
            cs: csa,
        },
        Strided {
            data: b,
            rs: rsb,
            cs: csb,
        },
    );
    packed_product(exec, k, a, b, MatMut::new(c, m, n, ldc), scratch, |_, _| {});
}

/// [`matmul`] into a view of `C`, with `epilogue(columns, block)` run on each task's block of
/// `C` once it is complete: all of its rows, and the columns `columns` of `C`.
///
/// Each task packs its own copy of the operand it does not split. Split by rows, every task
/// copies all of `B` (`k·n` values); split by columns, every task copies all of `A` (`m·k`),
/// unless `A`'s rows are contiguous, which the product reads where they lie. The split takes
/// whichever copies less: a layer's forward and input-gradient products (activations read in
/// place) split columns, a weight gradient the larger of its two dimensions. On 2 threads the
/// row split alone spent 7.4 % of a GPT training step packing `B` (each task all of it). Each
/// element's arithmetic is the same whichever task computes it, so the choice never changes
/// the bits.
pub(crate) fn packed_product<T: Float>(
    exec: &Exec,
    k: usize,
    a: Strided<T>,
    b: Strided<T>,
    c: MatMut<T>,
    scratch: &mut [T],
    epilogue: impl Fn(Range<usize>, MatMut<T>) + Sync,
) {
    let (m, n) = (c.rows(), c.cols());
    let scratch = PerTask::new(scratch, gemm_scratch_len(n, k));
    let tasks = exec
        .tasks_for(usize::MAX, m * n * k, MIN_TASK_MACS)
        .min(scratch.tasks());
    let copies_of_a = if a.cs == 1 { 0 } else { m * k };
    let by_columns = tasks > 1 && n >= tasks * PACKED_COL_GRAIN && copies_of_a < k * n;
    if by_columns {
        let operands = (SplitCols(c), scratch);
        exec.split_rows(
            n,
            PACKED_COL_GRAIN,
            tasks,
            operands,
            |cols, (mut c, scratch)| {
                T::gemm_packed(k, a, b.cols_from(cols.start), c.reborrow(), false, scratch);
                epilogue(cols, c);
            },
        );
    } else {
        let operands = (SplitRows(c), scratch);
        exec.split_rows(
            m,
            PACKED_GRAIN,
            tasks,
            operands,
            |rows, (mut c, scratch)| {
                T::gemm_packed(k, a.rows_from(rows.start), b, c.reborrow(), false, scratch);
                epilogue(0..n, c);
            },
        );
    }
}

/// Routes a product to `sgemm` or `dgemm`. Sealed in practice: the trait lives in a private module
/// and is only re-exported inside the crate, so `Float` can require it without exposing it.
pub trait Gemm: Sized {
    /// Calls `matrixmultiply`'s gemm for this element type.
    ///
    /// # Safety
    ///
    /// Exactly `matrixmultiply::sgemm`'s contract: every element `a + i*rsa + l*csa`
    /// (`i < m`, `l < k`), `b + l*rsb + j*csb` and `c + i*rsc + j*csc` (`j < n`) must be in
    /// bounds of its allocation; `c` must be valid for writes, must not alias `a` or `b`, and no two
    /// distinct `(i, j)` may address the same element of `c`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_gemm {
    ($t:ty, $f:path) => {
        impl Gemm for $t {
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: this function's contract is matrixmultiply's contract, word for word,
                // and the caller upholds it.
                unsafe { $f(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_gemm!(f32, matrixmultiply::sgemm);
impl_gemm!(f64, matrixmultiply::dgemm);

/// Asserts that every index `i*rs + j*cs` (`i < rows`, `j < cols`) lies inside a slice of `len`
/// elements. Arithmetic is done in `i128`, so no stride or size can overflow the check itself.
fn assert_extent(name: &str, len: usize, rows: usize, cols: usize, rs: isize, cs: isize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last_row = (rows - 1) as i128 * rs as i128;
    let last_col = (cols - 1) as i128 * cs as i128;
    let lowest = last_row.min(0) + last_col.min(0);
    let highest = last_row.max(0) + last_col.max(0);
    assert!(
        lowest >= 0,
        "gemm: {name} ({rows}x{cols}, strides {rs}, {cs}) would index before the start of its slice"
    );
    assert!(
        highest < len as i128,
        "gemm: {name} ({rows}x{cols}, strides {rs}, {cs}) needs {} elements but its slice has {len}",
        highest + 1
    );
}

/// Asserts that no two elements of the `rows`x`cols` output address the same memory, which
/// `matrixmultiply` (and its threaded mode in particular) relies on. The check accepts every
/// layout where one stride steps over a whole run of the other, which covers all row-major,
/// column-major and padded layouts.
fn assert_no_self_overlap(rows: usize, cols: usize, rs: isize, cs: isize) {
    let (rs, cs) = (rs.unsigned_abs(), cs.unsigned_abs());
    let ok = match (rows > 1, cols > 1) {
        (false, false) => true,
        (true, false) => rs > 0,
        (false, true) => cs > 0,
        (true, true) => {
            let (small, small_extent, large) = if rs <= cs {
                (rs, rows, cs)
            } else {
                (cs, cols, rs)
            };
            small > 0 && large as u128 >= small as u128 * small_extent as u128
        }
    };
    assert!(
        ok,
        "gemm: c ({rows}x{cols}, strides {rs}, {cs}) addresses some elements twice"
    );
}

/// General matrix product `C = alpha·op(A)·op(B) + beta·C` in `matrixmultiply`'s convention:
/// `A` is `m`x`k` with element `(i, l)` at `a[i*rsa + l*csa]`, `B` is `k`x`n`, `C` is `m`x`n`.
/// Transposes are expressed through the strides.
///
/// Panics unless each slice covers every index the product touches, and unless no two elements
/// of `C` share memory. Negative strides are rejected because element `(0, 0)` sits at index 0.
/// With `beta == 0`, `C` is overwritten without being read, so it may hold NaNs.
#[allow(clippy::too_many_arguments)] // The signature mirrors BLAS and matrixmultiply on purpose.
pub fn gemm<T: Float>(
    _: &Exec,
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: isize,
    csa: isize,
    b: &[T],
    rsb: isize,
    csb: isize,
    beta: T,
    c: &mut [T],
    rsc: isize,
    csc: isize,
) {
    assert_extent("a", a.len(), m, k, rsa, csa);
    assert_extent("b", b.len(), k, n, rsb, csb);
    assert_extent("c", c.len(), m, n, rsc, csc);
    assert_no_self_overlap(m, n, rsc, csc);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertions above prove that every index matrixmultiply touches in `a`, `b` and
    // `c` is inside the slice (so inside its allocation), and that distinct elements of `c` do not
    // share memory. `c` is a unique borrow, so it aliases neither `a` nor `b`. With `k == 0`
    // matrixmultiply only scales `c` by beta, touching the same `m`x`n` indices checked above.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// Index of element `(i, j)` in a strided matrix; the caller's extent check keeps it in range.
fn at(i: usize, j: usize, rs: isize, cs: isize) -> usize {
    (i as isize * rs + j as isize * cs) as usize
}

/// Naive triple loop with the same contract as [`gemm`]; the tests' oracle. It accumulates in
/// `f64`, so it is at least as accurate as the fast path for both element types.
#[allow(clippy::too_many_arguments)] // Same signature as `gemm`.
pub fn gemm_reference<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: isize,
    csa: isize,
    b: &[T],
    rsb: isize,
    csb: isize,
    beta: T,
    c: &mut [T],
    rsc: isize,
    csc: isize,
) {
    assert_extent("a", a.len(), m, k, rsa, csa);
    assert_extent("b", b.len(), k, n, rsb, csb);
    assert_extent("c", c.len(), m, n, rsc, csc);
    assert_no_self_overlap(m, n, rsc, csc);
    for i in 0..m {
        for j in 0..n {
            let sum: f64 = (0..k)
                .map(|l| a[at(i, l, rsa, csa)].to_f64() * b[at(l, j, rsb, csb)].to_f64())
                .sum();
            let out = &mut c[at(i, j, rsc, csc)];
            let scaled = alpha.to_f64() * sum;
            // beta == 0 overwrites without reading, as matrixmultiply does, so NaNs in C vanish.
            *out = if beta == T::ZERO {
                T::from_f64(scaled)
            } else {
                T::from_f64(scaled + beta.to_f64() * out.to_f64())
            };
        }
    }
}
