//! Helpers shared by the runtime's tests: activation lists and the finite-difference gradient
//! checks.
//!
//! Central differences `(f(x+h) - f(x-h)) / 2h` have a truncation error of order `h²·f'''` and a
//! rounding error of order `eps·|f| / h`. With `h = 1e-6` and f64's `eps ≈ 2.2e-16`, both are
//! around 1e-10 to 1e-12 for the O(1) functions checked, so a relative tolerance of 1e-6 leaves a
//! wide margin while still catching any wrong factor or sign.

#![allow(dead_code)] // Each test file uses its own subset.

use nnc_runtime::{Act, Rng};

/// Every activation but the step, whose jump at 0 would make the comparison depend on the
/// rounding of sums that land next to 0 (its epilogue is the same generated loop as the others).
pub const ACTS_BUT_STEP: [Act; 9] = [
    Act::Identity,
    Act::Relu,
    Act::Sigmoid,
    Act::Tanh,
    Act::LeakyRelu(0.1),
    Act::Elu(0.7),
    Act::Gelu,
    Act::GeluTanh,
    Act::Softplus,
];

pub const H: f64 = 1e-6;
pub const TOL: f64 = 1e-6;

/// Central-difference gradient of `f` at `x`.
pub fn numeric(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + H;
            let up = f(&probe);
            probe[i] = x[i] - H;
            let down = f(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * H)
        })
        .collect()
}

/// Largest element-wise relative error. Elements far below the gradient's scale (exact zeros,
/// say) are measured against 1e-3 of the largest element, where rounding noise cannot dominate.
pub fn max_relative_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    assert_eq!(analytic.len(), numeric.len(), "gradient lengths differ");
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| (a - n).abs() / a.abs().max(n.abs()).max(1e-3 * scale).max(1e-300))
        .fold(0.0, f64::max)
}

pub fn assert_gradient(what: &str, analytic: &[f64], numeric: &[f64]) {
    let err = max_relative_error(analytic, numeric);
    assert!(
        err <= TOL,
        "{what}: max relative error {err:e} exceeds {TOL:e}\n analytic {analytic:?}\n numeric  {numeric:?}"
    );
}

/// Asserts that two values agree to `tol`, relative to the larger magnitude (at least 1).
pub fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * got.abs().max(want.abs()).max(1.0),
        "{what}: got {got:e}, expected {want:e}"
    );
}

/// `assert_close` element by element.
pub fn assert_all_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(&format!("{what}[{i}]"), g, w, tol);
    }
}

pub fn uniform(rng: &mut Rng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut v = vec![0.0; len];
    rng.fill_uniform(lo, hi, &mut v);
    v
}

/// Random values with magnitudes in `[0.1, 2)` and random signs, away from 0, where relu-like
/// kinks would break the finite difference.
pub fn away_from_zero(rng: &mut Rng, len: usize) -> Vec<f64> {
    uniform(rng, len, 0.1, 2.0)
        .into_iter()
        .map(|v| if rng.below(2) == 0 { v } else { -v })
        .collect()
}

/// `Σ r·y`: a scalar whose gradient with respect to `y` is `r`, for checking a backward kernel
/// fed `gy = r`.
pub fn dot(y: &[f64], r: &[f64]) -> f64 {
    y.iter().zip(r).map(|(y, r)| y * r).sum()
}
