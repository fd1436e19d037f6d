//! Finite-difference checks, in f64, of the activation, softmax, log-softmax, element-wise and
//! layout backward passes (see `common` for the step size and the tolerance of 1e-6). The losses
//! have their own file, `loss_gradients.rs`.

mod common;

use common::{assert_all_close, assert_gradient, away_from_zero, dot, numeric, uniform, H, TOL};
use nnc_runtime::kernels::{
    accumulate, act_backward, act_backward_inplace, act_forward, copy_cols, dropout_mask,
    log_softmax, log_softmax_backward, mul, mul_inplace, scale, slice_cols, softmax,
    softmax_backward, sub,
};
use nnc_runtime::Exec;
use nnc_runtime::{Act, Mode, Rng};

const BATCH: usize = 3;
const N: usize = 5;

/// Every activation, the parametrised ones with their defaults and with other parameters.
const ACTS: [Act; 14] = [
    Act::Identity,
    Act::Relu,
    Act::Sigmoid,
    Act::Tanh,
    Act::Step,
    Act::LeakyRelu(0.01),
    Act::LeakyRelu(0.3),
    Act::LeakyRelu(0.0),
    Act::Elu(1.0),
    Act::Elu(0.5),
    Act::Elu(2.5),
    Act::Gelu,
    Act::GeluTanh,
    Act::Softplus,
];

#[test]
fn activation_gradients() {
    let mut rng = Rng::new(1);
    let x = away_from_zero(&mut rng, 12);
    let r = uniform(&mut rng, 12, -1.0, 1.0);
    for act in ACTS {
        // L = Σ r·act(x), so dL/dact = r and dL/dx = r·act'(x).
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            act_forward(Exec::serial(), act, x, &mut y);
            dot(&y, &r)
        };
        let mut y = vec![0.0; 12];
        act_forward(Exec::serial(), act, &x, &mut y);
        let v = if act.derivative_from_input() { &x } else { &y };
        let mut gx = vec![0.0; 12];
        act_backward(Exec::serial(), act, v, &r, &mut gx);
        assert_gradient(&format!("act_backward {act:?}"), &gx, &numeric(&x, loss));
        let mut g = r.clone();
        act_backward_inplace(Exec::serial(), act, v, &mut g);
        assert_eq!(
            g, gx,
            "act_backward_inplace {act:?} differs from act_backward"
        );
    }
}

/// The derivatives in the tails: on both sides of softplus's threshold of 20 (at least 1 away,
/// so the finite difference does not straddle the switch) and where the sigmoid, the GELUs and
/// ELU saturate. Each point is differenced on its own, so the rounding noise is that of one
/// value, about `1e-16·|y| / h ≤ 3e-9`; derivatives that small are compared absolutely.
#[test]
fn activation_gradients_in_the_tails() {
    let x = [-25.0, -6.0, 6.0, 15.0, 19.0, 21.0, 25.0];
    let act_at = |act: Act, x: f64| {
        let mut y = [0.0];
        act_forward(Exec::serial(), act, &[x], &mut y);
        y[0]
    };
    for act in ACTS {
        for &x in &x {
            let y = act_at(act, x);
            let v = if act.derivative_from_input() { x } else { y };
            let mut g = [0.0];
            act_backward(Exec::serial(), act, &[v], &[1.0], &mut g);
            let numeric = (act_at(act, x + H) - act_at(act, x - H)) / (2.0 * H);
            assert!(
                (g[0] - numeric).abs() <= TOL * g[0].abs().max(numeric.abs()) + 1e-8,
                "{act:?} at {x}: analytic {} numeric {numeric}",
                g[0]
            );
        }
    }
}

#[test]
fn derivative_from_input_is_only_for_the_gelus() {
    for act in ACTS {
        assert_eq!(
            act.derivative_from_input(),
            matches!(act, Act::Gelu | Act::GeluTanh),
            "{act:?}"
        );
    }
}

#[test]
fn softplus_keeps_precision_in_its_tails() {
    // ln(1 + e^-40) ≈ e^-40 ≈ 4.25e-18, which ln(1 + e^x) computed naively rounds to 0.
    let mut y = [0.0f64; 2];
    act_forward(Exec::serial(), Act::Softplus, &[-40.0, 19.0], &mut y);
    assert!((y[0] / (-40f64).exp() - 1.0).abs() < 1e-12, "{}", y[0]);
    assert!((y[1] - (19.0 + (-19f64).exp().ln_1p())).abs() < 1e-12);
    // Its derivative through the output, 1 - e^-y, is sigmoid(x) to full relative precision.
    let mut g = [1.0f64];
    act_backward(Exec::serial(), Act::Softplus, &y[..1], &[1.0], &mut g);
    assert!((g[0] / (-40f64).exp() - 1.0).abs() < 1e-12, "{}", g[0]);
}

#[test]
fn softmax_gradient() {
    let mut rng = Rng::new(2);
    let x = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let r = uniform(&mut rng, BATCH * N, -1.0, 1.0);
    let loss = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        softmax(Exec::serial(), BATCH, N, x, &mut y);
        dot(&y, &r)
    };
    let mut y = vec![0.0; BATCH * N];
    softmax(Exec::serial(), BATCH, N, &x, &mut y);
    for row in y.chunks(N) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let mut gx = vec![0.0; BATCH * N];
    softmax_backward(Exec::serial(), BATCH, N, &y, &r, &mut gx);
    assert_gradient("softmax_backward", &gx, &numeric(&x, loss));
}

#[test]
fn log_softmax_gradient() {
    let mut rng = Rng::new(3);
    let x = uniform(&mut rng, BATCH * N, -3.0, 3.0);
    let r = uniform(&mut rng, BATCH * N, -1.0, 1.0);
    let loss = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        log_softmax(Exec::serial(), BATCH, N, x, &mut y);
        dot(&y, &r)
    };
    let mut y = vec![0.0; BATCH * N];
    log_softmax(Exec::serial(), BATCH, N, &x, &mut y);
    // log_softmax is the log of softmax.
    let mut p = vec![0.0; BATCH * N];
    softmax(Exec::serial(), BATCH, N, &x, &mut p);
    let logs: Vec<f64> = p.iter().map(|p| p.ln()).collect();
    assert_all_close("log_softmax", &y, &logs, 1e-14);
    let mut gx = vec![0.0; BATCH * N];
    log_softmax_backward(Exec::serial(), BATCH, N, &y, &r, &mut gx);
    assert_gradient("log_softmax_backward", &gx, &numeric(&x, loss));
}

#[test]
fn softmax_and_log_softmax_are_stable_for_large_logits() {
    let mut y = [0.0f32; 3];
    softmax(Exec::serial(), 1, 3, &[1000.0, 1000.0, -1000.0], &mut y);
    assert_eq!(y, [0.5, 0.5, 0.0]);
    log_softmax(Exec::serial(), 1, 3, &[1000.0, 1000.0, -1000.0], &mut y);
    assert_eq!(
        y,
        [
            -std::f32::consts::LN_2,
            -std::f32::consts::LN_2,
            -2000.0 - std::f32::consts::LN_2
        ]
    );
}

/// The element-wise kernels are linear in each operand, so their gradients are other kernels:
/// each composition below must match the finite difference of `Σ r·op(a, b)`.
#[test]
fn elementwise_gradients() {
    let mut rng = Rng::new(4);
    let len = 9;
    let a = uniform(&mut rng, len, -2.0, 2.0);
    let b = uniform(&mut rng, len, -2.0, 2.0);
    let r = uniform(&mut rng, len, -1.0, 1.0);
    let c = 0.75;
    let mut out = vec![0.0; len];

    // sub: d/da = r, d/db = -r (scale by -1).
    let mut gb = vec![0.0; len];
    scale(Exec::serial(), &r, -1.0, &mut gb);
    let f = |b: &[f64]| {
        let mut o = vec![0.0; len];
        sub(Exec::serial(), &a, b, &mut o);
        dot(&o, &r)
    };
    assert_gradient("sub wrt b", &gb, &numeric(&b, f));
    let f = |a: &[f64]| {
        let mut o = vec![0.0; len];
        sub(Exec::serial(), a, &b, &mut o);
        dot(&o, &r)
    };
    assert_gradient("sub wrt a", &r, &numeric(&a, f));

    // mul: d/da = r ⊙ b, computed both out of place and in place.
    mul(Exec::serial(), &r, &b, &mut out);
    let mut inplace = r.clone();
    mul_inplace(Exec::serial(), &b, &mut inplace);
    assert_eq!(inplace, out);
    let f = |a: &[f64]| {
        let mut o = vec![0.0; len];
        mul(Exec::serial(), a, &b, &mut o);
        dot(&o, &r)
    };
    assert_gradient("mul wrt a", &out, &numeric(&a, f));

    // scale: d/dx = c·r.
    scale(Exec::serial(), &r, c, &mut out);
    let f = |x: &[f64]| {
        let mut o = vec![0.0; len];
        scale(Exec::serial(), x, c, &mut o);
        dot(&o, &r)
    };
    assert_gradient("scale", &out, &numeric(&a, f));

    // accumulate: out += x, so d/dx = r.
    let f = |x: &[f64]| {
        let mut o = b.clone();
        accumulate(Exec::serial(), x, &mut o);
        dot(&o, &r)
    };
    assert_gradient("accumulate", &r, &numeric(&a, f));
}

/// Concatenation along the last dimension with `copy_cols` and its gradient with `slice_cols`.
#[test]
fn concatenation_gradients() {
    let mut rng = Rng::new(5);
    let (w1, w2) = (2, 3);
    let width = w1 + w2;
    let x1 = uniform(&mut rng, BATCH * w1, -1.0, 1.0);
    let x2 = uniform(&mut rng, BATCH * w2, -1.0, 1.0);
    let r = uniform(&mut rng, BATCH * width, -1.0, 1.0);
    let concat = |x1: &[f64], x2: &[f64]| {
        let mut y = vec![f64::NAN; BATCH * width];
        copy_cols(Exec::serial(), BATCH, x1, w1, &mut y, width, 0);
        copy_cols(Exec::serial(), BATCH, x2, w2, &mut y, width, w1);
        y
    };
    let y = concat(&x1, &x2);
    for b in 0..BATCH {
        assert_eq!(y[b * width..b * width + w1], x1[b * w1..(b + 1) * w1]);
        assert_eq!(y[b * width + w1..(b + 1) * width], x2[b * w2..(b + 1) * w2]);
    }
    let mut g1 = vec![0.0; BATCH * w1];
    slice_cols(Exec::serial(), BATCH, &r, width, 0, &mut g1, w1);
    assert_gradient(
        "slice_cols (first part)",
        &g1,
        &numeric(&x1, |x1| dot(&concat(x1, &x2), &r)),
    );
    let mut g2 = vec![0.0; BATCH * w2];
    slice_cols(Exec::serial(), BATCH, &r, width, w1, &mut g2, w2);
    assert_gradient(
        "slice_cols (second part)",
        &g2,
        &numeric(&x2, |x2| dot(&concat(&x1, x2), &r)),
    );
    // And slice_cols' own gradient is copy_cols into zeros.
    let slice = |x: &[f64]| {
        let mut part = vec![0.0; BATCH * w2];
        slice_cols(Exec::serial(), BATCH, x, width, w1, &mut part, w2);
        part
    };
    let rp = uniform(&mut rng, BATCH * w2, -1.0, 1.0);
    let mut g = vec![0.0; BATCH * width];
    copy_cols(Exec::serial(), BATCH, &rp, w2, &mut g, width, w1);
    assert_gradient(
        "copy_cols as slice_cols' gradient",
        &g,
        &numeric(&y, |x| dot(&slice(x), &rp)),
    );
}

/// Dropout's backward pass multiplies the gradient by the same mask, which is the exact gradient
/// of `y = mask ⊙ x`.
#[test]
fn dropout_gradient() {
    let mut rng = Rng::new(6);
    let x = uniform(&mut rng, 20, -1.0, 1.0);
    let r = uniform(&mut rng, 20, -1.0, 1.0);
    let mut mask = vec![0.0; 20];
    dropout_mask(Exec::serial(), Mode::Train, Some(&mut rng), 0.4, &mut mask);
    let mut g = r.clone();
    mul_inplace(Exec::serial(), &mask, &mut g);
    let f = |x: &[f64]| {
        let mut y = vec![0.0; x.len()];
        mul(Exec::serial(), &mask, x, &mut y);
        dot(&y, &r)
    };
    assert_gradient("dropout", &g, &numeric(&x, f));
}
