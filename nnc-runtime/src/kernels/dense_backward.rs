//! Dense (fully connected) layer backward: gradients with respect to the input, the weights
//! (stored `[out, in]`) and the bias.
//!
//! Both products are linear combinations of contiguous rows (of `w` for the input gradient, of
//! `x` for the weight gradient), computed at every batch size by the register-blocked,
//! packing-free `Simd::gemm_nn` in `blocked.rs`, which allocates nothing.

use crate::float::Float;

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
    // gx[b, :] = Σ_o gz[b, o] · w[o, :]; no outputs leaves the empty sum, zero.
    T::gemm_nn(batch, inputs, outputs, gz, outputs, 1, w, gx);
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
    // gw[o, :] = Σ_b gz[b, o] · x[b, :], reading gzᵀ through swapped strides; an empty batch
    // leaves the empty sum, zero.
    T::gemm_nn(outputs, inputs, batch, gz, 1, outputs, x, gw);
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
