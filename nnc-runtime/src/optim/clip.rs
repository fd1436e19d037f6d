//! Gradient clipping by global norm, like `torch.nn.utils.clip_grad_norm_`.

use crate::float::Float;

/// Scales `grads` so that their total L2 norm is at most about `max_norm`, and returns the norm
/// before clipping.
///
/// As in PyTorch, the scale is `max_norm / (norm + 1e-6)` and is applied only when it is below 1,
/// so gradients already within the bound are left bit-for-bit unchanged. The norm is accumulated
/// in `f64`, so an `f32` gradient vector of any length keeps its norm accurate.
pub fn clip_grad_norm<T: Float>(grads: &mut [T], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .map(|&g| {
            let g = g.to_f64();
            g * g
        })
        .sum::<f64>()
        .sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let coef = T::from_f64(coef);
        grads.iter_mut().for_each(|g| *g *= coef);
    }
    norm
}
