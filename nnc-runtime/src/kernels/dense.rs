//! Dense (fully connected) layers with weights stored `[out, in]` like PyTorch's `nn.Linear`.
//!
//! Large batches go through `matrixmultiply`. Small batches use dedicated loops instead, because
//! packing the whole weight matrix for a handful of rows costs more than the product itself
//! (`matrixmultiply` manages about 5 GFLOP/s on a 1x784x128 product).

use super::{gemm, Act};
use crate::float::Float;

/// Largest batch for which `dense_forward` uses dot products instead of `gemm`.
const FORWARD_SMALL_BATCH: usize = 1000;
/// Largest batch for which the backward products use row combinations instead of `gemm`.
const BACKWARD_SMALL_BATCH: usize = 1000;
/// Accumulator lanes in the dot products: one 256-bit register of `f32`, two of `f64`.
const LANES: usize = 8;

/// `a * b + c`, fused only in the AVX2+FMA instantiation, where it is a single instruction.
/// Elsewhere `mul_add` may be a slow library call, so the portable code multiplies and adds.
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Dense layer forward with a fused epilogue: `y[b, o] = act(x[b, :] · w[o, :] + bias[o])`.
/// `bias: None` means no bias.
#[allow(clippy::too_many_arguments)] // One argument per operand and dimension, as in BLAS.
pub fn dense_forward<T: Float>(
    batch: usize,
    inputs: usize,
    outputs: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Act,
    y: &mut [T],
) {
    assert_eq!(
        x.len(),
        batch * inputs,
        "dense_forward: x is not batch x inputs"
    );
    assert_eq!(
        w.len(),
        outputs * inputs,
        "dense_forward: w is not outputs x inputs"
    );
    assert_eq!(
        y.len(),
        batch * outputs,
        "dense_forward: y is not batch x outputs"
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            outputs,
            "dense_forward: bias length is not outputs"
        );
    }
    if y.is_empty() {
        return;
    }
    if inputs == 0 {
        // Every dot product is empty; only the bias and activation remain.
        y.fill(T::ZERO);
        epilogue(outputs, bias, act, y);
        return;
    }
    if batch <= FORWARD_SMALL_BATCH {
        #[cfg(target_arch = "x86_64")]
        if super::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, as checked just above.
            unsafe { matvec_avx2(inputs, x, w, bias, act, y) };
            return;
        }
        matvec::<T, false>(inputs, x, w, bias, act, y);
    } else {
        // y = x · wᵀ: wᵀ is read through swapped strides, and beta = 0 overwrites y.
        let (i, o) = (inputs as isize, outputs as isize);
        gemm(
            batch,
            inputs,
            outputs,
            T::ONE,
            x,
            i,
            1,
            w,
            1,
            i,
            T::ZERO,
            y,
            o,
            1,
        );
        epilogue(outputs, bias, act, y);
    }
}

/// `y[b, o] = act(y[b, o] + bias[o])` in one pass over `y`.
fn epilogue<T: Float>(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    if bias.is_none() && act == Act::Identity {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, as checked just above.
        unsafe { epilogue_avx2(outputs, bias, act, y) };
        return;
    }
    epilogue_body(outputs, bias, act, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn epilogue_avx2<T: Float>(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    epilogue_body(outputs, bias, act, y);
}

#[inline(always)]
fn epilogue_body<T: Float>(outputs: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    // One loop per (bias, activation) pair keeps every loop body branch-free and vectorizable.
    macro_rules! rows {
        ($act:expr) => {
            match bias {
                Some(b) => {
                    for row in y.chunks_exact_mut(outputs) {
                        for (v, &b) in row.iter_mut().zip(b) {
                            *v = $act.apply(*v + b);
                        }
                    }
                }
                None => y.iter_mut().for_each(|v| *v = $act.apply(*v)),
            }
        };
    }
    match act {
        Act::Identity => rows!(Act::Identity),
        Act::Relu => rows!(Act::Relu),
        Act::Sigmoid => rows!(Act::Sigmoid),
        Act::Tanh => rows!(Act::Tanh),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2<T: Float>(
    inputs: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Act,
    y: &mut [T],
) {
    matvec::<T, true>(inputs, x, w, bias, act, y);
}

/// Small-batch forward: dot products of each sample with contiguous rows of `w`, four rows at a
/// time so that every load of `x` feeds four accumulators. The outer loop runs over blocks of
/// `w`, which then stay in L1 cache while every sample of the batch visits them.
#[inline(always)]
fn matvec<T: Float, const FMA: bool>(
    inputs: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Act,
    y: &mut [T],
) {
    let outputs = w.len() / inputs;
    let bias_at = |o: usize| bias.map_or(T::ZERO, |b| b[o]);
    let mut blocks = w.chunks_exact(4 * inputs);
    for (block, o) in blocks.by_ref().zip((0..).step_by(4)) {
        let (w0, rest) = block.split_at(inputs);
        let (w1, rest) = rest.split_at(inputs);
        let (w2, w3) = rest.split_at(inputs);
        for (x, y) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
            let d = dot4::<T, FMA>(x, [w0, w1, w2, w3]);
            for (r, d) in d.into_iter().enumerate() {
                y[o + r] = act.apply(d + bias_at(o + r));
            }
        }
    }
    let first = outputs - blocks.remainder().len() / inputs;
    for (row, o) in blocks.remainder().chunks_exact(inputs).zip(first..) {
        for (x, y) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
            y[o] = act.apply(dot::<T, FMA>(x, row) + bias_at(o));
        }
    }
}

/// Four dot products sharing one vector `x`, with `LANES` independent accumulators per row.
#[inline(always)]
fn dot4<T: Float, const FMA: bool>(x: &[T], w: [&[T]; 4]) -> [T; 4] {
    let mut acc = [[T::ZERO; LANES]; 4];
    let chunks = x
        .chunks_exact(LANES)
        .zip(w[0].chunks_exact(LANES))
        .zip(w[1].chunks_exact(LANES))
        .zip(w[2].chunks_exact(LANES))
        .zip(w[3].chunks_exact(LANES));
    for ((((x, w0), w1), w2), w3) in chunks {
        for (acc, w) in acc.iter_mut().zip([w0, w1, w2, w3]) {
            for ((a, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                *a = madd::<T, FMA>(x, w, *a);
            }
        }
    }
    let tail = x.len() - x.len() % LANES;
    let mut out = [T::ZERO; 4];
    for ((out, acc), w) in out.iter_mut().zip(&acc).zip(w) {
        let mut sum = hsum(acc);
        for (&x, &w) in x[tail..].iter().zip(&w[tail..]) {
            sum = madd::<T, FMA>(x, w, sum);
        }
        *out = sum;
    }
    out
}

/// One dot product with `LANES` independent accumulators.
#[inline(always)]
fn dot<T: Float, const FMA: bool>(x: &[T], w: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    for (x, w) in x.chunks_exact(LANES).zip(w.chunks_exact(LANES)) {
        for ((a, &x), &w) in acc.iter_mut().zip(x).zip(w) {
            *a = madd::<T, FMA>(x, w, *a);
        }
    }
    let tail = x.len() - x.len() % LANES;
    let mut sum = hsum(&acc);
    for (&x, &w) in x[tail..].iter().zip(&w[tail..]) {
        sum = madd::<T, FMA>(x, w, sum);
    }
    sum
}

/// Pairwise sum of the accumulator lanes.
#[inline(always)]
fn hsum<T: Float>(acc: &[T; LANES]) -> T {
    let quad = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (quad[0] + quad[2]) + (quad[1] + quad[3])
}

/// `gx[b, i] = gz[b, :] · w[:, i]`, overwriting `gx`.
pub fn dense_backward_input<T: Float>(
    batch: usize,
    inputs: usize,
    outputs: usize,
    gz: &[T],
    w: &[T],
    gx: &mut [T],
) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "dense_backward_input: gz is not batch x outputs"
    );
    assert_eq!(
        w.len(),
        outputs * inputs,
        "dense_backward_input: w is not outputs x inputs"
    );
    assert_eq!(
        gx.len(),
        batch * inputs,
        "dense_backward_input: gx is not batch x inputs"
    );
    if gx.is_empty() {
        return;
    }
    if batch <= BACKWARD_SMALL_BATCH {
        // Each row of gx is a combination of the rows of w, weighted by that sample's gz.
        for (gz, gx) in gz
            .chunks_exact(outputs.max(1))
            .zip(gx.chunks_exact_mut(inputs))
        {
            combine_rows(gx, w, gz.iter().copied());
        }
    } else {
        let (i, o) = (inputs as isize, outputs as isize);
        gemm(
            batch,
            outputs,
            inputs,
            T::ONE,
            gz,
            o,
            1,
            w,
            i,
            1,
            T::ZERO,
            gx,
            i,
            1,
        );
    }
}

/// `gw[o, i] = Σ_b gz[b, o] · x[b, i]`, overwriting `gw`.
pub fn dense_backward_weight<T: Float>(
    batch: usize,
    inputs: usize,
    outputs: usize,
    gz: &[T],
    x: &[T],
    gw: &mut [T],
) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "dense_backward_weight: gz is not batch x outputs"
    );
    assert_eq!(
        x.len(),
        batch * inputs,
        "dense_backward_weight: x is not batch x inputs"
    );
    assert_eq!(
        gw.len(),
        outputs * inputs,
        "dense_backward_weight: gw is not outputs x inputs"
    );
    if gw.is_empty() {
        return;
    }
    if batch <= BACKWARD_SMALL_BATCH {
        // Row o of gw is a combination of the samples, weighted by column o of gz.
        for (o, gw) in gw.chunks_exact_mut(inputs).enumerate() {
            combine_rows(gw, x, gz.iter().skip(o).step_by(outputs).copied());
        }
    } else {
        let (i, o) = (inputs as isize, outputs as isize);
        gemm(
            outputs,
            batch,
            inputs,
            T::ONE,
            gz,
            1,
            o,
            x,
            i,
            1,
            T::ZERO,
            gw,
            i,
            1,
        );
    }
}

/// `out = Σ_r coef_r · rows[r, :]`, overwriting `out`; `rows` holds one row per coefficient.
fn combine_rows<T: Float>(out: &mut [T], rows: &[T], coefs: impl Iterator<Item = T>) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, as checked just above.
        unsafe { combine_rows_avx2(out, rows, coefs) };
        return;
    }
    combine_rows_body::<T, false>(out, rows, coefs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn combine_rows_avx2<T: Float>(out: &mut [T], rows: &[T], coefs: impl Iterator<Item = T>) {
    combine_rows_body::<T, true>(out, rows, coefs);
}

/// Four rows per pass, so each element of `out` is loaded and stored once per four rows.
#[inline(always)]
fn combine_rows_body<T: Float, const FMA: bool>(
    out: &mut [T],
    rows: &[T],
    mut coefs: impl Iterator<Item = T>,
) {
    let n = out.len();
    out.fill(T::ZERO);
    let mut blocks = rows.chunks_exact(4 * n);
    for block in blocks.by_ref() {
        let c = [(); 4].map(|_| coefs.next().unwrap_or(T::ZERO));
        let (r0, rest) = block.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        for ((((o, &a), &b), &d), &e) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            let s = madd::<T, FMA>(c[0], a, *o);
            let s = madd::<T, FMA>(c[1], b, s);
            let s = madd::<T, FMA>(c[2], d, s);
            *o = madd::<T, FMA>(c[3], e, s);
        }
    }
    for (row, c) in blocks.remainder().chunks_exact(n).zip(coefs) {
        for (o, &r) in out.iter_mut().zip(row) {
            *o = madd::<T, FMA>(c, r, *o);
        }
    }
}

/// `gb[o] = Σ_b gz[b, o]`, overwriting `gb`.
pub fn bias_backward<T: Float>(batch: usize, outputs: usize, gz: &[T], gb: &mut [T]) {
    assert_eq!(
        gz.len(),
        batch * outputs,
        "bias_backward: gz is not batch x outputs"
    );
    assert_eq!(gb.len(), outputs, "bias_backward: gb length is not outputs");
    gb.fill(T::ZERO);
    if outputs == 0 {
        return;
    }
    for row in gz.chunks_exact(outputs) {
        for (g, &v) in gb.iter_mut().zip(row) {
            *g += v;
        }
    }
}
