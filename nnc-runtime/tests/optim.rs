//! The first three updates of `Sgd` and `Adam` on a two-element parameter vector with constant
//! gradients, against values worked out by hand from the published update rules.

use nnc_runtime::{Adam, Optimizer, Sgd};

const P0: [f64; 2] = [1.0, -2.0];
const G: [f64; 2] = [0.5, -1.5];

fn assert_near(step: usize, got: &[f64], want: &[f64]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12,
            "step {step}, element {i}: got {g}, expected {w}"
        );
    }
}

#[test]
fn sgd_without_weight_decay() {
    // p_t = p_{t-1} - lr·g with lr = 0.1: each step moves p by (-0.05, +0.15).
    let want = [[0.95, -1.85], [0.90, -1.70], [0.85, -1.55]];
    let mut sgd = Sgd::new(0.1, 0.0);
    let mut p = P0;
    for (step, want) in want.iter().enumerate() {
        sgd.step(&mut p, &G);
        assert_near(step + 1, &p, want);
    }
    assert_eq!(sgd.steps(), 3);
}

#[test]
fn sgd_with_weight_decay() {
    // p_t = p_{t-1} - lr·(g + wd·p_{t-1}) = (1 - lr·wd)·p_{t-1} - lr·g, lr = 0.1, wd = 0.01:
    // p1 = 0.999·( 1, -2) - (0.05, -0.15) = (0.949, -1.848)
    // p2 = 0.999·p1 - (0.05, -0.15)       = (0.898051, -1.696152)
    // p3 = 0.999·p2 - (0.05, -0.15)       = (0.847152949, -1.544455848)
    let want = [
        [0.949, -1.848],
        [0.898051, -1.696152],
        [0.847152949, -1.544455848],
    ];
    let mut sgd = Sgd::new(0.1, 0.01);
    let mut p = P0;
    for (step, want) in want.iter().enumerate() {
        sgd.step(&mut p, &G);
        assert_near(step + 1, &p, want);
    }
    sgd.set_learning_rate(0.5);
    assert_eq!(sgd.learning_rate(), 0.5);
}

#[test]
fn adam_without_weight_decay() {
    // With a constant gradient g and zero initial moments, m_t = (1-β1^t)·g and
    // v_t = (1-β2^t)·g², so the bias-corrected ratio is exactly g/|g| up to eps:
    //   p_t = p_{t-1} - lr·g / (|g| + eps),  lr = 0.01, eps = 1e-8.
    // Element 0: 0.01·0.5/(0.5 + 1e-8) = 0.01 - 2e-10;  element 1: -(0.01 - 0.6667e-10).
    let want = [
        [0.990_000_000_2, -1.990_000_000_066_666_7],
        [0.980_000_000_4, -1.980_000_000_133_333_3],
        [0.970_000_000_6, -1.970_000_000_2],
    ];
    // m_3 = (1 - 0.9³)·g = 0.271·g and v_3 = (1 - 0.999³)·g² = 0.002997001·g².
    let want_m = [0.1355, -0.4065];
    let want_v = [0.000_749_250_25, 0.006_743_252_25];
    let mut adam = Adam::new(2, 0.01, 0.9, 0.999, 1e-8, 0.0);
    let mut p = P0;
    for (step, want) in want.iter().enumerate() {
        adam.step(&mut p, &G);
        assert_near(step + 1, &p, want);
    }
    let (m, v) = adam.moments();
    assert_near(3, m, &want_m);
    assert_near(3, v, &want_v);
    assert_eq!(adam.steps(), 3);
}

#[test]
fn adam_with_weight_decay() {
    // Same setting with wd = 0.1, so the effective gradient is g + 0.1·p_{t-1}:
    // t = 1: g' = (0.6, -1.7); m = 0.1·g'; v = 0.001·g'²; bias-corrected ratio = sign(g'),
    //        p1 = p0 - 0.01·g'/(|g'| + 1e-8) = (0.9900000001666667, -1.9900000000588236).
    // t = 2: g' = g + 0.1·p1 = (0.59900000000, -1.69900000000);
    //        m = 0.9·m + 0.1·g', v = 0.999·v + 0.001·g'², step size lr/(1 - 0.81),
    //        denominator sqrt(v)/sqrt(1 - 0.998001) + eps; and likewise for t = 3.
    let want = [
        [0.990_000_000_166_666_7, -1.990_000_000_058_823_6],
        [0.980_000_438_601_569_9, -1.980_000_153_923_006_3],
        [0.970_001_607_359_831_3, -1.970_000_563_866_305_6],
    ];
    let mut adam = Adam::new(2, 0.01, 0.9, 0.999, 1e-8, 0.1);
    let mut p = P0;
    for (step, want) in want.iter().enumerate() {
        adam.step(&mut p, &G);
        assert_near(step + 1, &p, want);
    }
    let (m, v) = adam.moments();
    assert_near(3, m, &[0.162_310_004_387_515_67, -0.460_410_001_539_759_36]);
    assert_near(
        3,
        v,
        &[0.001_075_326_611_476_697_5, 0.008_651_141_341_292_228],
    );
}

#[test]
fn adam_defaults_and_f32() {
    let mut adam = Adam::<f32>::with_defaults(2, 1e-3);
    assert_eq!(
        (adam.beta1, adam.beta2, adam.eps, adam.weight_decay),
        (0.9, 0.999, 1e-8, 0.0)
    );
    let mut p = [1.0f32, -2.0];
    adam.step(&mut p, &[0.5, -1.5]);
    // The first Adam step moves every parameter by lr against the sign of its gradient.
    assert!(
        (p[0] - 0.999).abs() < 1e-6 && (p[1] + 1.999).abs() < 1e-6,
        "{p:?}"
    );
}
