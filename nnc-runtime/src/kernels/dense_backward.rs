//! Dense (fully connected) layer backward: gradients with respect to the input, the weights
//! (stored `[out, in]`) and the bias.
//!
//! As in the forward pass, small batches avoid `matrixmultiply`, whose packing dominates when one
//! side of the product has only a few rows. Here the small-batch loops are linear combinations of
//! contiguous rows, which vectorize without any reduction.

use super::{gemm, madd};
use crate::float::Float;

// The thresholds below were measured in f32 on an AVX2 Xeon at 784→128, 128→10 and 64→64.

/// Largest batch for which `dense_backward_input` uses row combinations instead of `gemm`. At
/// 784→128: 7 µs against 32 µs at batch 1, 27 µs against 33 µs at batch 4, and slower at 8.
const INPUT_GRAD_SMALL_BATCH: usize = 4;
/// Largest batch for which `dense_backward_weight` uses row combinations instead of `gemm`. At
/// 784→128: 10 µs against 17 µs at batch 1, even at 2 to 4, and twice as slow at 8.
const WEIGHT_GRAD_SMALL_BATCH: usize = 4;

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
    if outputs == 0 {
        gx.fill(T::ZERO);
    } else if batch <= INPUT_GRAD_SMALL_BATCH {
        #[cfg(target_arch = "x86_64")]
        if super::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, as checked just above.
            unsafe { input_grad_small_avx2(inputs, outputs, gz, w, gx) };
            return;
        }
        input_grad_small::<T, false>(inputs, outputs, gz, w, gx);
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_grad_small_avx2<T: Float>(
    inputs: usize,
    outputs: usize,
    gz: &[T],
    w: &[T],
    gx: &mut [T],
) {
    input_grad_small::<T, true>(inputs, outputs, gz, w, gx);
}

/// Each row of `gx` is a combination of the rows of `w`, weighted by that sample's `gz`.
#[inline(always)]
fn input_grad_small<T: Float, const FMA: bool>(
    inputs: usize,
    outputs: usize,
    gz: &[T],
    w: &[T],
    gx: &mut [T],
) {
    for (gz, gx) in gz.chunks_exact(outputs).zip(gx.chunks_exact_mut(inputs)) {
        combine_rows::<T, FMA>(gx, w, gz.iter().copied());
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
    if batch <= WEIGHT_GRAD_SMALL_BATCH {
        #[cfg(target_arch = "x86_64")]
        if super::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA, as checked just above.
            unsafe { weight_grad_small_avx2(inputs, outputs, gz, x, gw) };
            return;
        }
        weight_grad_small::<T, false>(inputs, outputs, gz, x, gw);
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_grad_small_avx2<T: Float>(
    inputs: usize,
    outputs: usize,
    gz: &[T],
    x: &[T],
    gw: &mut [T],
) {
    weight_grad_small::<T, true>(inputs, outputs, gz, x, gw);
}

/// Row `o` of `gw` is a combination of the samples, weighted by column `o` of `gz`.
#[inline(always)]
fn weight_grad_small<T: Float, const FMA: bool>(
    inputs: usize,
    outputs: usize,
    gz: &[T],
    x: &[T],
    gw: &mut [T],
) {
    for (o, gw) in gw.chunks_exact_mut(inputs).enumerate() {
        combine_rows::<T, FMA>(gw, x, gz.iter().skip(o).step_by(outputs).copied());
    }
}

/// `out = Σ_r coef_r · rows[r, :]`, overwriting `out`; `rows` holds one row per coefficient.
/// Four rows per pass, so each element of `out` is loaded and stored once per four rows.
#[inline(always)]
fn combine_rows<T: Float, const FMA: bool>(
    out: &mut [T],
    rows: &[T],
    mut coefs: impl Iterator<Item = T>,
) {
    let n = out.len();
    let mut blocks = rows.chunks_exact(4 * n);
    let mut first = true;
    for block in blocks.by_ref() {
        let c = [(); 4].map(|_| coefs.next().unwrap_or(T::ZERO));
        let (r0, rest) = block.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        for ((((o, &a), &b), &d), &e) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            // The first block overwrites, which saves a separate pass zeroing `out`.
            let s = if first {
                c[0] * a
            } else {
                madd::<T, FMA>(c[0], a, *o)
            };
            let s = madd::<T, FMA>(c[1], b, s);
            let s = madd::<T, FMA>(c[2], d, s);
            *o = madd::<T, FMA>(c[3], e, s);
        }
        first = false;
    }
    for (row, c) in blocks.remainder().chunks_exact(n).zip(coefs) {
        if first {
            out.iter_mut().zip(row).for_each(|(o, &r)| *o = c * r);
            first = false;
        } else {
            out.iter_mut()
                .zip(row)
                .for_each(|(o, &r)| *o = madd::<T, FMA>(c, r, *o));
        }
    }
    if first {
        // No rows at all: the empty sum.
        out.fill(T::ZERO);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The portable and AVX2+FMA instantiations must agree up to rounding (FMA rounds once).
    #[test]
    fn portable_and_fused_small_paths_agree() {
        let mut rng = Rng::new(9);
        let (batch, inputs, outputs) = (3, 37, 11);
        let mut gz = vec![0.0f64; batch * outputs];
        let mut w = vec![0.0f64; outputs * inputs];
        let mut x = vec![0.0f64; batch * inputs];
        rng.fill_uniform(-1.0, 1.0, &mut gz);
        rng.fill_uniform(-1.0, 1.0, &mut w);
        rng.fill_uniform(-1.0, 1.0, &mut x);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-12);

        let (mut portable, mut fused) = (vec![0.0; batch * inputs], vec![0.0; batch * inputs]);
        input_grad_small::<f64, false>(inputs, outputs, &gz, &w, &mut portable);
        input_grad_small::<f64, true>(inputs, outputs, &gz, &w, &mut fused);
        assert!(close(&portable, &fused));

        let (mut portable, mut fused) = (vec![0.0; outputs * inputs], vec![0.0; outputs * inputs]);
        weight_grad_small::<f64, false>(inputs, outputs, &gz, &x, &mut portable);
        weight_grad_small::<f64, true>(inputs, outputs, &gz, &x, &mut fused);
        assert!(close(&portable, &fused));
    }
}
