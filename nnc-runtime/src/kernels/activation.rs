//! Element-wise activations and their gradients, expressed through the activation's output
//! where that is possible and through its input otherwise (see [`Act::derivative_from_input`]).

use super::split::{RowsMut, RowsRef};
use super::Exec;
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, SQRT_2};

use super::vectorized;
use crate::float::Float;

/// An element-wise activation function, with PyTorch's definitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `x`.
    Identity,
    /// `max(x, 0)`, propagating NaN.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// The Heaviside step: 1 for `x > 0`, 0 otherwise (0 at 0); NaN stays NaN. Its derivative is
    /// taken to be 0 everywhere.
    Step,
    /// `x` for `x > 0`, `alpha·x` otherwise. PyTorch's default alpha is 0.01; alpha must be >= 0
    /// so that the derivative can be read off the output's sign.
    LeakyRelu(f64),
    /// `x` for `x > 0`, `alpha·(e^x - 1)` otherwise (PyTorch's default alpha is 1); alpha must be
    /// >= 0.
    Elu(f64),
    /// The exact GELU, `0.5·x·(1 + erf(x/√2))`.
    Gelu,
    /// GELU's tanh approximation, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    /// (PyTorch's `approximate='tanh'`).
    GeluTanh,
    /// `ln(1 + e^x)`, or `x` itself above 20 (PyTorch's beta 1 and threshold 20).
    Softplus,
}

impl Act {
    /// Whether the backward kernels need the activation's input `x` rather than its output `y`.
    ///
    /// True for the two GELUs, which are not monotonic, so their output does not determine their
    /// input; every other activation's derivative is written through `y`: relu `y > 0`, sigmoid
    /// `y(1-y)`, tanh `1-y²`, identity 1, step 0, leaky relu `y > 0 ? 1 : alpha`, elu
    /// `y > 0 ? 1 : y + alpha`, softplus `1 - e^-y` (which is `sigmoid(x)`).
    pub fn derivative_from_input(self) -> bool {
        matches!(self, Act::Gelu | Act::GeluTanh)
    }

    /// What one element costs, in cheap element-wise operations, for the threading threshold.
    /// The vectorised transcendental functions take about 10 times as long per element as an
    /// add (`cargo bench -p nnc-runtime --bench threads`, one core: tanh over 65,536 values
    /// 108 µs, an add 10 µs); 8 leans towards splitting, which already pays off for tanh over
    /// 16,384 values (48 µs on one thread, 19 µs on two).
    pub(crate) fn cost(self) -> usize {
        match self {
            Act::Identity | Act::Relu | Act::Step | Act::LeakyRelu(_) => 1,
            _ => 8,
        }
    }
}

/// Softplus's linear threshold (PyTorch's default `threshold=20`).
const SOFTPLUS_THRESHOLD: f64 = 20.0;
/// `√(2/π)`, the scale inside the tanh approximation of GELU.
const GELU_TANH_BETA: f64 = SQRT_2 * FRAC_2_SQRT_PI * 0.5;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_KAPPA: f64 = 0.044715;
/// `1/√(2π)`, the normal density's constant.
const INV_SQRT_2PI: f64 = FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5;

/// `max(x, 0)`, written as a comparison so that NaN propagates like PyTorch's relu.
#[inline(always)]
pub(crate) fn relu<T: Float>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// The logistic function. For very negative `x`, `e^-x` overflows to infinity and the result is
/// a clean 0, so no special case is needed.
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

/// The Heaviside step. The second comparison is false only for NaN, which is passed through.
#[inline(always)]
pub(crate) fn step<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x <= T::ZERO {
        T::ZERO
    } else {
        x
    }
}

#[inline(always)]
pub(crate) fn leaky_relu<T: Float>(x: T, alpha: T) -> T {
    if x > T::ZERO {
        x
    } else {
        alpha * x
    }
}

/// ELU, with `exp_m1` so that values just below 0 keep their precision.
#[inline(always)]
pub(crate) fn elu<T: Float>(x: T, alpha: T) -> T {
    if x > T::ZERO {
        x
    } else {
        alpha * x.exp_m1()
    }
}

#[inline(always)]
pub(crate) fn gelu<T: Float>(x: T) -> T {
    let half = T::from_f64(0.5);
    half * x * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).erf())
}

#[inline(always)]
pub(crate) fn gelu_tanh<T: Float>(x: T) -> T {
    let inner = T::from_f64(GELU_TANH_BETA) * (x + T::from_f64(GELU_TANH_KAPPA) * x * x * x);
    T::from_f64(0.5) * x * (T::ONE + inner.tanh())
}

/// Softplus as `max(x, 0) + ln(1 + e^-|x|)`, which neither overflows for large `x` nor loses
/// the result to rounding for very negative `x`.
#[inline(always)]
pub(crate) fn softplus<T: Float>(x: T) -> T {
    if x > T::from_f64(SOFTPLUS_THRESHOLD) {
        x
    } else {
        x.max(T::ZERO) + (-x.abs()).exp().ln_1p()
    }
}

/// The derivative of GELU at `x`: `Φ(x) + x·φ(x)`, with `Φ` and `φ` the standard normal
/// distribution and density, as in PyTorch's `GeluBackward`.
#[inline(always)]
pub(crate) fn gelu_derivative<T: Float>(x: T) -> T {
    let half = T::from_f64(0.5);
    let cdf = half * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).erf());
    let pdf = T::from_f64(INV_SQRT_2PI) * (-half * x * x).exp();
    cdf + x * pdf
}

/// The derivative of the tanh approximation of GELU at `x`, differentiated by hand as in
/// PyTorch's `GeluBackward` with `approximate='tanh'`.
#[inline(always)]
pub(crate) fn gelu_tanh_derivative<T: Float>(x: T) -> T {
    let (half, beta, kappa) = (
        T::from_f64(0.5),
        T::from_f64(GELU_TANH_BETA),
        T::from_f64(GELU_TANH_KAPPA),
    );
    let x2 = x * x;
    let th = (beta * (x + kappa * x2 * x)).tanh();
    let inner_derivative = beta * (T::ONE + T::from_f64(3.0) * kappa * x2);
    half * (T::ONE + th) + half * x * (T::ONE - th * th) * inner_derivative
}

/// The derivative of softplus through its output: `1 - e^-y = sigmoid(x)`, with `exp_m1` to keep
/// precision where `y` is tiny, and exactly 1 where the forward pass returned `x` itself.
#[inline(always)]
pub(crate) fn softplus_derivative<T: Float>(y: T) -> T {
    if y > T::from_f64(SOFTPLUS_THRESHOLD) {
        T::ONE
    } else {
        -(-y).exp_m1()
    }
}

/// Expands `$body` once per activation with `$f` bound to that activation's scalar function of
/// one `$t`, any parameter already converted to `$t` outside the loop. Matching once outside the
/// loop and compiling a separate loop per activation keeps every loop body branch-free.
macro_rules! with_act {
    ($act:expr, $t:ty, |$f:ident| $body:expr) => {{
        use $crate::kernels::activation as a;
        match $act {
            a::Act::Identity => {
                let $f = |x: $t| x;
                $body
            }
            a::Act::Relu => {
                let $f = a::relu::<$t>;
                $body
            }
            a::Act::Sigmoid => {
                let $f = a::sigmoid::<$t>;
                $body
            }
            a::Act::Tanh => {
                let $f = |x: $t| x.tanh();
                $body
            }
            a::Act::Step => {
                let $f = a::step::<$t>;
                $body
            }
            a::Act::LeakyRelu(alpha) => {
                let alpha = <$t>::from_f64(alpha);
                let $f = move |x: $t| a::leaky_relu(x, alpha);
                $body
            }
            a::Act::Elu(alpha) => {
                let alpha = <$t>::from_f64(alpha);
                let $f = move |x: $t| a::elu(x, alpha);
                $body
            }
            a::Act::Gelu => {
                let $f = a::gelu::<$t>;
                $body
            }
            a::Act::GeluTanh => {
                let $f = a::gelu_tanh::<$t>;
                $body
            }
            a::Act::Softplus => {
                let $f = a::softplus::<$t>;
                $body
            }
        }
    }};
}
pub(crate) use with_act;

/// Like [`with_act`], with `$d` bound to the activation's derivative as a function of the value
/// the backward kernels receive: the output, or the input when `derivative_from_input()`.
macro_rules! with_derivative {
    ($act:expr, $t:ty, |$d:ident| $body:expr) => {{
        match $act {
            Act::Identity => {
                let $d = |_: $t| <$t>::ONE;
                $body
            }
            Act::Relu => {
                let $d = |y: $t| {
                    if y > <$t>::ZERO {
                        <$t>::ONE
                    } else {
                        <$t>::ZERO
                    }
                };
                $body
            }
            Act::Sigmoid => {
                let $d = |y: $t| y * (<$t>::ONE - y);
                $body
            }
            Act::Tanh => {
                let $d = |y: $t| <$t>::ONE - y * y;
                $body
            }
            Act::Step => {
                let $d = |_: $t| <$t>::ZERO;
                $body
            }
            // With alpha >= 0 the output has the input's sign, so `y > 0` is `x > 0`.
            Act::LeakyRelu(alpha) => {
                let alpha = <$t>::from_f64(alpha);
                let $d = move |y: $t| if y > <$t>::ZERO { <$t>::ONE } else { alpha };
                $body
            }
            // For x <= 0, d/dx alpha·(e^x - 1) = alpha·e^x = y + alpha.
            Act::Elu(alpha) => {
                let alpha = <$t>::from_f64(alpha);
                let $d = move |y: $t| if y > <$t>::ZERO { <$t>::ONE } else { y + alpha };
                $body
            }
            Act::Gelu => {
                let $d = gelu_derivative::<$t>;
                $body
            }
            Act::GeluTanh => {
                let $d = gelu_tanh_derivative::<$t>;
                $body
            }
            Act::Softplus => {
                let $d = softplus_derivative::<$t>;
                $body
            }
        }
    }};
}

/// `y = act(x)`, element-wise.
pub fn act_forward<T: Float>(exec: &Exec, act: Act, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "act_forward: x and y lengths differ");
    let operands = (RowsRef(x, 1), RowsMut::new(y, 1));
    exec.split_elems(
        act.cost(),
        operands,
        |(x, y)| vectorized!(act_forward_body(act: Act, x: &[T], y: &mut [T])),
    );
}

/// The loop shared by both variants; the `match` sits outside so each loop body is branch-free.
#[inline(always)]
fn act_forward_body<T: Float>(act: Act, x: &[T], y: &mut [T]) {
    if act == Act::Identity {
        y.copy_from_slice(x);
        return;
    }
    with_act!(act, T, |f| {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = f(x);
        }
    })
}

/// `gx = gy ⊙ act'(.)`. `v` is the activation's output `y`, or its input `x` when
/// [`Act::derivative_from_input`] is true (the GELUs).
pub fn act_backward<T: Float>(exec: &Exec, act: Act, v: &[T], gy: &[T], gx: &mut [T]) {
    assert!(
        v.len() == gx.len() && gy.len() == gx.len(),
        "act_backward: lengths of v ({}), gy ({}) and gx ({}) differ",
        v.len(),
        gy.len(),
        gx.len()
    );
    let operands = (RowsRef(v, 1), RowsRef(gy, 1), RowsMut::new(gx, 1));
    exec.split_elems(
        act.cost(),
        operands,
        |(v, gy, gx)| vectorized!(act_backward_body(act: Act, v: &[T], gy: &[T], gx: &mut [T])),
    );
}

#[inline(always)]
fn act_backward_body<T: Float>(act: Act, v: &[T], gy: &[T], gx: &mut [T]) {
    if act == Act::Identity {
        gx.copy_from_slice(gy);
        return;
    }
    with_derivative!(act, T, |d| {
        for ((g, &v), &gy) in gx.iter_mut().zip(v).zip(gy) {
            *g = gy * d(v);
        }
    })
}

/// In-place variant for a reused gradient buffer: `g ⊙= act'(.)`, with `v` as in
/// [`act_backward`].
pub fn act_backward_inplace<T: Float>(exec: &Exec, act: Act, v: &[T], g: &mut [T]) {
    assert_eq!(
        v.len(),
        g.len(),
        "act_backward_inplace: v and g lengths differ"
    );
    let operands = (RowsRef(v, 1), RowsMut::new(g, 1));
    exec.split_elems(
        act.cost(),
        operands,
        |(v, g)| vectorized!(act_backward_inplace_body(act: Act, v: &[T], g: &mut [T])),
    );
}

#[inline(always)]
fn act_backward_inplace_body<T: Float>(act: Act, v: &[T], g: &mut [T]) {
    if act == Act::Identity {
        return;
    }
    with_derivative!(act, T, |d| {
        for (g, &v) in g.iter_mut().zip(v) {
            *g *= d(v);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Act; 10] = [
        Act::Identity,
        Act::Relu,
        Act::Sigmoid,
        Act::Tanh,
        Act::Step,
        Act::LeakyRelu(0.2),
        Act::Elu(1.5),
        Act::Gelu,
        Act::GeluTanh,
        Act::Softplus,
    ];

    #[test]
    fn dispatched_activations_match_portable_loops() {
        // The range reaches past softplus's threshold of 20 on both sides.
        let x: Vec<f32> = (0..45).map(|i| (i as f32 - 22.0) * 1.1).collect();
        for act in ALL {
            let (mut fast, mut slow) = (vec![0.0; 45], vec![0.0; 45]);
            act_forward(Exec::serial(), act, &x, &mut fast);
            act_forward_body(act, &x, &mut slow);
            assert_eq!(fast, slow, "{act:?}");
            let v = if act.derivative_from_input() {
                &x
            } else {
                &fast
            };
            let (mut gf, mut gs) = (vec![0.0; 45], vec![0.0; 45]);
            act_backward(Exec::serial(), act, v, &x, &mut gf);
            act_backward_body(act, v, &x, &mut gs);
            assert_eq!(gf, gs, "{act:?}");
            let (mut gf, mut gs) = (x.clone(), x.clone());
            act_backward_inplace(Exec::serial(), act, v, &mut gf);
            act_backward_inplace_body(act, v, &mut gs);
            assert_eq!(gf, gs, "{act:?}");
        }
    }

    #[test]
    fn nan_propagates() {
        for act in ALL {
            let mut y = [0.0f32; 1];
            act_forward(Exec::serial(), act, &[f32::NAN], &mut y);
            assert!(y[0].is_nan(), "{act:?} maps NaN to {}", y[0]);
        }
        let mut y = [0.0f32; 3];
        act_forward(Exec::serial(), Act::Relu, &[f32::NAN, -1.0, 2.0], &mut y);
        assert!(y[1] == 0.0 && y[2] == 2.0, "{y:?}");
    }

    #[test]
    fn known_values() {
        let x = [-2.0f64, 0.0, 0.5, 25.0];
        let mut y = [0.0; 4];
        act_forward(Exec::serial(), Act::Step, &x, &mut y);
        assert_eq!(y, [0.0, 0.0, 1.0, 1.0]);
        act_forward(Exec::serial(), Act::LeakyRelu(0.01), &x, &mut y);
        assert_eq!(y, [-0.02, 0.0, 0.5, 25.0]);
        act_forward(Exec::serial(), Act::Elu(2.0), &x, &mut y);
        assert_eq!(y[1..], [0.0, 0.5, 25.0]);
        assert!((y[0] - 2.0 * ((-2.0f64).exp() - 1.0)).abs() < 1e-15);
        // Softplus is linear above its threshold, and ln 2 at 0.
        act_forward(Exec::serial(), Act::Softplus, &x, &mut y);
        assert_eq!(y[3], 25.0);
        assert!((y[1] - std::f64::consts::LN_2).abs() < 1e-15);
        // The defining formulas evaluated with Python's math.erf and math.tanh in f64:
        // 0.5·0.5·(1 + erf(0.5/√2)) = 0.34573123063700656 and the tanh form 0.34571400982514394.
        act_forward(Exec::serial(), Act::Gelu, &x, &mut y);
        assert!((y[2] - 0.345_731_230_637_006_56).abs() < 1e-15, "{}", y[2]);
        assert_eq!(y[3], 25.0);
        act_forward(Exec::serial(), Act::GeluTanh, &x, &mut y);
        assert!((y[2] - 0.345_714_009_825_143_94).abs() < 1e-15, "{}", y[2]);
    }
}
