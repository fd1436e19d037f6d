//! Kernels that move values between axes: sums over an axis and their broadcast back, axis
//! permutations, and the batched matrix product of attention (`[…, m, k] · […, k, n]`).
//!
//! The batched product calls the dense layers' packing-free products (`Simd::gemm_nt` and
//! `gemm_nn`) once per matrix rather than `gemm`, because matrixmultiply allocates a packing
//! buffer on every call and generated code must not allocate per step. Against the plain loops
//! it replaces, for 128 matrices of attention over 64 positions of 32 features (`cargo bench -p
//! nnc-runtime --bench kernels -- batch_matmul`): scores 4.86 ms → 0.48 ms, values 1.90 ms →
//! 0.15 ms.

use super::dense::MIN_TASK_MACS;
use super::packed::MatMut;
use super::split::{RowsMut, RowsRef};
use super::Exec;
use crate::float::Float;

/// `out[o, i] = scale · Σ_s x[o, s, i]`: the sum over the middle axis of `outer × size ×
/// inner` values.
pub fn sum_axis<T: Float>(
    _: &Exec,
    outer: usize,
    size: usize,
    inner: usize,
    scale: T,
    x: &[T],
    out: &mut [T],
) {
    assert_eq!(
        x.len(),
        outer * size * inner,
        "sum_axis: x is not {outer}x{size}x{inner}"
    );
    assert_eq!(
        out.len(),
        outer * inner,
        "sum_axis: out is not {outer}x{inner}"
    );
    if inner == 0 || size == 0 {
        out.fill(T::ZERO);
        return;
    }
    for (block, o) in x
        .chunks_exact(size * inner)
        .zip(out.chunks_exact_mut(inner))
    {
        o.copy_from_slice(&block[..inner]);
        for row in block[inner..].chunks_exact(inner) {
            for (o, v) in o.iter_mut().zip(row) {
                *o += *v;
            }
        }
        for o in o.iter_mut() {
            *o *= scale;
        }
    }
}

/// `out[o, s, i] = scale · x[o, i]` for every `s < size`: the gradient of [`sum_axis`].
pub fn expand_axis<T: Float>(
    _: &Exec,
    outer: usize,
    size: usize,
    inner: usize,
    scale: T,
    x: &[T],
    out: &mut [T],
) {
    assert_eq!(
        x.len(),
        outer * inner,
        "expand_axis: x is not {outer}x{inner}"
    );
    assert_eq!(
        out.len(),
        outer * size * inner,
        "expand_axis: out is not {outer}x{size}x{inner}"
    );
    if inner == 0 || size == 0 {
        return;
    }
    for (row, block) in x
        .chunks_exact(inner)
        .zip(out.chunks_exact_mut(size * inner))
    {
        for o in block.chunks_exact_mut(inner) {
            for (o, v) in o.iter_mut().zip(row) {
                *o = scale * *v;
            }
        }
    }
}

/// The most axes [`permute`] takes.
pub const MAX_AXES: usize = 8;

/// `out` is `x` (row-major with dimensions `dims`) with its axes reordered: axis `a` of `out`
/// is axis `perm[a]` of `x`. Walks `out` in order with a counter per axis, so nothing is
/// allocated.
pub fn permute<T: Float>(_: &Exec, dims: &[usize], perm: &[usize], x: &[T], out: &mut [T]) {
    let rank = dims.len();
    assert!(
        rank <= MAX_AXES && perm.len() == rank,
        "permute: {rank} axes, perm {perm:?}"
    );
    let len: usize = dims.iter().product();
    assert_eq!(x.len(), len, "permute: x does not have dims {dims:?}");
    assert_eq!(out.len(), len, "permute: out does not have dims {dims:?}");
    if len == 0 {
        return;
    }
    // The stride in `x` of each axis of `out`, and the size of each axis of `out`.
    let mut strides_x = [0usize; MAX_AXES];
    let mut stride = 1;
    for a in (0..rank).rev() {
        strides_x[a] = stride;
        stride *= dims[a];
    }
    let mut step = [0usize; MAX_AXES];
    let mut size = [0usize; MAX_AXES];
    for a in 0..rank {
        step[a] = strides_x[perm[a]];
        size[a] = dims[perm[a]];
    }
    let mut index = [0usize; MAX_AXES];
    let mut at = 0;
    for o in out.iter_mut() {
        *o = x[at];
        // Advance the counter of the last axis, carrying into the ones before it.
        for a in (0..rank).rev() {
            index[a] += 1;
            at += step[a];
            if index[a] < size[a] {
                break;
            }
            at -= step[a] * size[a];
            index[a] = 0;
        }
    }
}

/// `count` products `out[c] = op(a[c]) · op(b[c])` of `m × k` by `k × n` matrices, where
/// `op` transposes a matrix stored the other way round (`a` is then `k × m`, `b` `n × k`).
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul<T: Float>(
    exec: &Exec,
    count: usize,
    m: usize,
    k: usize,
    n: usize,
    transpose_a: bool,
    transpose_b: bool,
    a: &[T],
    b: &[T],
    out: &mut [T],
) {
    assert_eq!(
        a.len(),
        count * m * k,
        "batch_matmul: a is not {count}x{m}x{k}"
    );
    assert_eq!(
        b.len(),
        count * k * n,
        "batch_matmul: b is not {count}x{k}x{n}"
    );
    assert_eq!(
        out.len(),
        count * m * n,
        "batch_matmul: out is not {count}x{m}x{n}"
    );
    if m * n == 0 {
        return;
    }
    if k == 0 {
        // Every entry is an empty sum.
        out.fill(T::ZERO);
        return;
    }
    // Each task takes whole products, so every product is computed as on one thread.
    let tasks = exec.tasks_for(count, count * m * n * k, MIN_TASK_MACS);
    let operands = (
        RowsRef(a, m * k),
        RowsRef(b, k * n),
        RowsMut::new(out, m * n),
    );
    exec.split_rows(count, 1, tasks, operands, |_, (a, b, out)| {
        for ((a, b), c) in a
            .chunks_exact(m * k)
            .zip(b.chunks_exact(k * n))
            .zip(out.chunks_exact_mut(m * n))
        {
            product(m, k, n, transpose_a, transpose_b, a, b, c);
        }
    });
}

/// One product of [`batch_matmul`].
#[allow(clippy::too_many_arguments)] // The dimensions and layout of one product.
fn product<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    transpose_a: bool,
    transpose_b: bool,
    a: &[T],
    b: &[T],
    c: &mut [T],
) {
    match (transpose_a, transpose_b) {
        // The dense layers' packing-free products; a transposed `a` is read through strides.
        (false, true) => T::gemm_nt(k, a, b, MatMut::new(c, m, n, n)),
        (false, false) => T::gemm_nn(m, n, k, a, k, 1, b, c, false),
        (true, false) => T::gemm_nn(m, n, k, a, 1, m, b, c, false),
        // Both transposed, which attention does not use: row j of `b` is column j of op(b),
        // so each entry is a dot product with a strided `a`.
        (true, true) => {
            for (i, row) in c.chunks_exact_mut(n).enumerate() {
                for (j, o) in row.iter_mut().enumerate() {
                    let bj = &b[j * k..(j + 1) * k];
                    *o = (0..k).fold(T::ZERO, |s, l| s + a[l * m + i] * bj[l]);
                }
            }
        }
    }
}

/// Entry `position` of the middle axis of `x` `[outer, steps, inner]`, `[outer, 1, inner]`: the
/// row of a position table that the step entry point adds at the current position.
pub fn select_position<T: Float>(
    _: &Exec,
    outer: usize,
    steps: usize,
    inner: usize,
    position: usize,
    x: &[T],
    out: &mut [T],
) {
    assert_eq!(
        x.len(),
        outer * steps * inner,
        "select_position: x is not [{outer}, {steps}, {inner}]"
    );
    assert_eq!(
        out.len(),
        outer * inner,
        "select_position: out is not [{outer}, 1, {inner}]"
    );
    assert!(
        position < steps,
        "select_position: position {position} of {steps}"
    );
    if inner == 0 {
        return;
    }
    for (block, o) in x
        .chunks_exact(steps * inner)
        .zip(out.chunks_exact_mut(inner))
    {
        o.copy_from_slice(&block[position * inner..(position + 1) * inner]);
    }
}
