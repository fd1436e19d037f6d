//! Finite-difference checks, in f64, of every backward kernel: activations, softmax and losses,
//! plus the fused loss gradients against the composition of their unfused parts.
//!
//! Central differences `(f(x+h) - f(x-h)) / 2h` have a truncation error of order `h²·f'''` and a
//! rounding error of order `eps·|f| / h`. With `h = 1e-6` and f64's `eps ≈ 2.2e-16`, both are
//! around 1e-10 to 1e-12 for the O(1) functions below, so a relative tolerance of 1e-6 leaves a
//! wide margin while still catching any wrong factor or sign.

use nnc_runtime::kernels::{
    act_backward, act_backward_inplace, act_forward, binary_cross_entropy,
    binary_cross_entropy_backward, cross_entropy, cross_entropy_backward, mse, mse_backward,
    sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_backward, softmax, softmax_backward,
    softmax_cross_entropy, softmax_cross_entropy_backward,
};
use nnc_runtime::{Act, Rng};

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;
const BATCH: usize = 3;
const N: usize = 5;
const LABELS: [u32; BATCH] = [4, 0, 2];

/// Central-difference gradient of `f` at `x`.
fn numeric(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
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
fn max_relative_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| (a - n).abs() / a.abs().max(n.abs()).max(1e-3 * scale).max(1e-300))
        .fold(0.0, f64::max)
}

fn assert_gradient(what: &str, analytic: &[f64], numeric: &[f64]) {
    let err = max_relative_error(analytic, numeric);
    assert!(
        err <= TOL,
        "{what}: max relative error {err:e} exceeds {TOL:e}\n analytic {analytic:?}\n numeric  {numeric:?}"
    );
}

fn uniform(rng: &mut Rng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut v = vec![0.0; len];
    rng.fill_uniform(lo, hi, &mut v);
    v
}

/// Random inputs kept away from 0, where relu's kink would break the finite difference.
fn away_from_zero(rng: &mut Rng, len: usize) -> Vec<f64> {
    uniform(rng, len, 0.1, 2.0)
        .into_iter()
        .map(|v| if rng.below(2) == 0 { v } else { -v })
        .collect()
}

#[test]
fn activation_gradients() {
    let mut rng = Rng::new(1);
    let x = away_from_zero(&mut rng, 12);
    let r = uniform(&mut rng, 12, -1.0, 1.0);
    for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
        // L = Σ r·act(x), so dL/dact = r and dL/dx = r·act'(x).
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            act_forward(act, x, &mut y);
            y.iter().zip(&r).map(|(y, r)| y * r).sum()
        };
        let mut y = vec![0.0; 12];
        act_forward(act, &x, &mut y);
        let mut gx = vec![0.0; 12];
        act_backward(act, &y, &r, &mut gx);
        assert_gradient(&format!("act_backward {act:?}"), &gx, &numeric(&x, loss));
        let mut g = r.clone();
        act_backward_inplace(act, &y, &mut g);
        assert_eq!(
            g, gx,
            "act_backward_inplace {act:?} differs from act_backward"
        );
    }
}

#[test]
fn softmax_gradient() {
    let mut rng = Rng::new(2);
    let x = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let r = uniform(&mut rng, BATCH * N, -1.0, 1.0);
    let loss = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        softmax(BATCH, N, x, &mut y);
        y.iter().zip(&r).map(|(y, r)| y * r).sum()
    };
    let mut y = vec![0.0; BATCH * N];
    softmax(BATCH, N, &x, &mut y);
    for row in y.chunks(N) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let mut gx = vec![0.0; BATCH * N];
    softmax_backward(BATCH, N, &y, &r, &mut gx);
    assert_gradient("softmax_backward", &gx, &numeric(&x, loss));
}

#[test]
fn softmax_is_stable_for_large_logits() {
    let mut y = [0.0f32; 3];
    softmax(1, 3, &[1000.0, 1000.0, -1000.0], &mut y);
    assert_eq!(y, [0.5, 0.5, 0.0]);
    let loss = softmax_cross_entropy(1, 3, &[1000.0f32, 0.0, -1000.0], &[1]);
    assert_eq!(loss, 1000.0);
}

#[test]
fn mse_gradient() {
    let mut rng = Rng::new(3);
    let p = uniform(&mut rng, 7, -2.0, 2.0);
    let t = uniform(&mut rng, 7, -2.0, 2.0);
    let mut g = vec![0.0; 7];
    mse_backward(&p, &t, &mut g);
    assert_gradient("mse_backward", &g, &numeric(&p, |p| mse(p, &t)));
}

#[test]
fn binary_cross_entropy_gradients() {
    let mut rng = Rng::new(4);
    let p = uniform(&mut rng, 8, 0.05, 0.95);
    // Soft targets exercise both terms of the loss at once.
    let t = uniform(&mut rng, 8, 0.0, 1.0);
    let mut g = vec![0.0; 8];
    binary_cross_entropy_backward(&p, &t, &mut g);
    assert_gradient(
        "binary_cross_entropy_backward",
        &g,
        &numeric(&p, |p| binary_cross_entropy(p, &t)),
    );

    // The fused version from logits.
    let z = uniform(&mut rng, 8, -4.0, 4.0);
    let mut p = vec![0.0; 8];
    act_forward(Act::Sigmoid, &z, &mut p);
    let mut fused = vec![0.0; 8];
    sigmoid_binary_cross_entropy_backward(&p, &t, &mut fused);
    assert_gradient(
        "sigmoid_binary_cross_entropy_backward",
        &fused,
        &numeric(&z, |z| sigmoid_binary_cross_entropy(z, &t)),
    );
    // Its value equals BCE of the sigmoid, and its gradient the chained unfused gradients.
    let unfused_loss = binary_cross_entropy(&p, &t);
    assert!((sigmoid_binary_cross_entropy(&z, &t) - unfused_loss).abs() < 1e-12);
    let mut g = vec![0.0; 8];
    binary_cross_entropy_backward(&p, &t, &mut g);
    act_backward_inplace(Act::Sigmoid, &p, &mut g);
    assert_gradient("sigmoid + binary_cross_entropy chained", &fused, &g);
}

#[test]
fn binary_cross_entropy_clamps_like_pytorch() {
    // ln(0) is clamped to -100, so a confident wrong prediction costs 100, not infinity.
    assert_eq!(binary_cross_entropy(&[0.0f64, 1.0], &[1.0, 0.0]), 100.0);
    assert_eq!(binary_cross_entropy(&[1.0f64], &[1.0]), 0.0);
    let mut g = [0.0f64];
    binary_cross_entropy_backward(&[0.0], &[1.0], &mut g);
    assert_eq!(g, [-1e12]);
    // The logit form stays finite far into the saturated region.
    assert!((sigmoid_binary_cross_entropy(&[-800.0f64], &[1.0]) - 800.0).abs() < 1e-9);
}

#[test]
fn cross_entropy_gradients() {
    let mut rng = Rng::new(5);
    let z = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let mut p = vec![0.0; BATCH * N];
    softmax(BATCH, N, &z, &mut p);

    let mut g = vec![0.0; BATCH * N];
    cross_entropy_backward(BATCH, N, &p, &LABELS, &mut g);
    assert_gradient(
        "cross_entropy_backward",
        &g,
        &numeric(&p, |p| cross_entropy(BATCH, N, p, &LABELS)),
    );

    let mut fused = vec![0.0; BATCH * N];
    softmax_cross_entropy_backward(BATCH, N, &p, &LABELS, &mut fused);
    assert_gradient(
        "softmax_cross_entropy_backward",
        &fused,
        &numeric(&z, |z| softmax_cross_entropy(BATCH, N, z, &LABELS)),
    );
    let unfused_loss = cross_entropy(BATCH, N, &p, &LABELS);
    assert!((softmax_cross_entropy(BATCH, N, &z, &LABELS) - unfused_loss).abs() < 1e-12);
    let mut chained = vec![0.0; BATCH * N];
    softmax_backward(BATCH, N, &p, &g, &mut chained);
    assert_gradient("softmax + cross_entropy chained", &fused, &chained);
}
