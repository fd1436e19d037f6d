//! Element-wise activations, their gradients (expressed through the activation's output), and
//! row-wise softmax.

use super::vectorized;
use super::{relu, sigmoid, Act};
use crate::float::Float;

/// `y = act(x)`, element-wise.
pub fn act_forward<T: Float>(act: Act, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "act_forward: x and y lengths differ");
    vectorized!(act_forward_body(act: Act, x: &[T], y: &mut [T]));
}

/// The loop shared by both variants; the `match` sits outside so each loop body is branch-free.
#[inline(always)]
fn act_forward_body<T: Float>(act: Act, x: &[T], y: &mut [T]) {
    match act {
        Act::Identity => y.copy_from_slice(x),
        Act::Relu => y.iter_mut().zip(x).for_each(|(y, &x)| *y = relu(x)),
        Act::Sigmoid => y.iter_mut().zip(x).for_each(|(y, &x)| *y = sigmoid(x)),
        Act::Tanh => y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.tanh()),
    }
}

/// The derivative of `act` at the input that produced output `y`.
#[inline(always)]
fn derivative<T: Float>(act: Act, y: T) -> T {
    match act {
        Act::Identity => T::ONE,
        Act::Relu => {
            if y > T::ZERO {
                T::ONE
            } else {
                T::ZERO
            }
        }
        Act::Sigmoid => y * (T::ONE - y),
        Act::Tanh => T::ONE - y * y,
    }
}

/// `gx = gy * act'(.)`, with the derivative expressed through the output `y`: relu `y > 0`,
/// sigmoid `y(1-y)`, tanh `1-y²`, identity 1.
pub fn act_backward<T: Float>(act: Act, y: &[T], gy: &[T], gx: &mut [T]) {
    assert!(
        y.len() == gx.len() && gy.len() == gx.len(),
        "act_backward: lengths of y ({}), gy ({}) and gx ({}) differ",
        y.len(),
        gy.len(),
        gx.len()
    );
    vectorized!(act_backward_body(act: Act, y: &[T], gy: &[T], gx: &mut [T]));
}

#[inline(always)]
fn act_backward_body<T: Float>(act: Act, y: &[T], gy: &[T], gx: &mut [T]) {
    // Monomorphising the loop per activation keeps the select or multiply inside it branch-free.
    macro_rules! each {
        ($act:expr) => {
            for ((g, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
                *g = gy * derivative($act, y);
            }
        };
    }
    match act {
        Act::Identity => gx.copy_from_slice(gy),
        Act::Relu => each!(Act::Relu),
        Act::Sigmoid => each!(Act::Sigmoid),
        Act::Tanh => each!(Act::Tanh),
    }
}

/// In-place variant for a reused gradient buffer: `g *= act'(.)`, through the output `y`.
pub fn act_backward_inplace<T: Float>(act: Act, y: &[T], g: &mut [T]) {
    assert_eq!(
        y.len(),
        g.len(),
        "act_backward_inplace: y and g lengths differ"
    );
    vectorized!(act_backward_inplace_body(act: Act, y: &[T], g: &mut [T]));
}

#[inline(always)]
fn act_backward_inplace_body<T: Float>(act: Act, y: &[T], g: &mut [T]) {
    macro_rules! each {
        ($act:expr) => {
            for (g, &y) in g.iter_mut().zip(y) {
                *g *= derivative($act, y);
            }
        };
    }
    match act {
        Act::Identity => {}
        Act::Relu => each!(Act::Relu),
        Act::Sigmoid => each!(Act::Sigmoid),
        Act::Tanh => each!(Act::Tanh),
    }
}

/// Row-wise softmax over `batch` rows of `n` values, subtracting each row's maximum first so that
/// `exp` cannot overflow.
pub fn softmax<T: Float>(batch: usize, n: usize, x: &[T], y: &mut [T]) {
    assert!(
        x.len() == batch * n && y.len() == batch * n,
        "softmax: expected {batch}x{n} values, got x {} and y {}",
        x.len(),
        y.len()
    );
    if n == 0 {
        return;
    }
    for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let max = x.iter().fold(x[0], |m, &v| m.max(v));
        let mut sum = T::ZERO;
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x - max).exp();
            sum += *y;
        }
        let inv = T::ONE / sum;
        y.iter_mut().for_each(|y| *y *= inv);
    }
}

/// Softmax gradient: `gx = y ⊙ (gy − Σ_j gy_j y_j)` per row.
pub fn softmax_backward<T: Float>(batch: usize, n: usize, y: &[T], gy: &[T], gx: &mut [T]) {
    let len = batch * n;
    assert!(
        y.len() == len && gy.len() == len && gx.len() == len,
        "softmax_backward: expected {batch}x{n} values, got y {}, gy {} and gx {}",
        y.len(),
        gy.len(),
        gx.len()
    );
    if n == 0 {
        return;
    }
    for ((y, gy), gx) in y
        .chunks_exact(n)
        .zip(gy.chunks_exact(n))
        .zip(gx.chunks_exact_mut(n))
    {
        let dot: T = y.iter().zip(gy).map(|(&y, &g)| y * g).sum();
        for ((gx, &y), &gy) in gx.iter_mut().zip(y).zip(gy) {
            *gx = y * (gy - dot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_activations_match_portable_loops() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.3).collect();
        for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
            let (mut fast, mut slow) = (vec![0.0; 37], vec![0.0; 37]);
            act_forward(act, &x, &mut fast);
            act_forward_body(act, &x, &mut slow);
            assert_eq!(fast, slow, "{act:?}");
            let (mut gf, mut gs) = (vec![0.0; 37], vec![0.0; 37]);
            act_backward(act, &fast, &x, &mut gf);
            act_backward_body(act, &fast, &x, &mut gs);
            assert_eq!(gf, gs, "{act:?}");
            let (mut gf, mut gs) = (x.clone(), x.clone());
            act_backward_inplace(act, &fast, &mut gf);
            act_backward_inplace_body(act, &fast, &mut gs);
            assert_eq!(gf, gs, "{act:?}");
        }
        let mut y = [0.0f32; 3];
        act_forward(Act::Relu, &[f32::NAN, -1.0, 2.0], &mut y);
        assert!(
            y[0].is_nan() && y[1] == 0.0 && y[2] == 2.0,
            "relu propagates NaN: {y:?}"
        );
    }
}
