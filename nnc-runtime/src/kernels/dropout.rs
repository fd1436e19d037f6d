//! Dropout masks with inverted scaling: the mask is multiplied into the activations in training
//! and into their gradient in the backward pass, and inference needs no rescaling.

use crate::float::Float;
use crate::kernels::Exec;
use crate::model::Mode;
use crate::rng::Rng;

/// Fills `mask` for dropout at `rate`, the probability of dropping an element (in `[0, 1)`).
///
/// In training each element is independently 0 with probability `rate` and `1 / (1 − rate)`
/// otherwise, so the mask's expected value is 1, as in PyTorch and Keras. In inference, or at
/// a rate of 0, the mask is all ones and nothing is drawn. One 64-bit draw per element: the
/// element is dropped when the draw is below `rate · 2^64`, so the result is determined by the
/// generator's state. Training needs `rng`; inference ignores it.
pub fn dropout_mask<T: Float>(
    _: &Exec,
    mode: Mode,
    rng: Option<&mut Rng>,
    rate: f64,
    mask: &mut [T],
) {
    assert!(
        (0.0..1.0).contains(&rate),
        "dropout_mask: rate {rate} is outside [0, 1)"
    );
    if mode == Mode::Infer || rate == 0.0 {
        mask.fill(T::ONE);
        return;
    }
    let rng = rng.expect("dropout_mask: training mode needs the model's random state");
    // rate < 1 makes the product below 2^64, so the conversion cannot saturate; it truncates,
    // which biases the drop probability by less than 2^-64.
    let threshold = (rate * 18_446_744_073_709_551_616.0) as u64;
    let keep = T::from_f64(1.0 / (1.0 - rate));
    for m in mask {
        *m = if rng.next_u64() < threshold {
            T::ZERO
        } else {
            keep
        };
    }
}
