//! The first three updates of every optimizer on a small parameter vector, against values worked
//! out from the published update rules (the pseudo-code in PyTorch's `torch.optim`
//! documentation), plus gradient clipping and the checkpoint interface.
//!
//! The expected values were evaluated with a few lines of independent f64 arithmetic (plain
//! Python floats, no PyTorch), following the formula quoted above each test. They are O(1) and
//! each step takes a handful of roundings, so an implementation that evaluates the same formula in
//! a different order (a precomputed reciprocal, `a + w·(b − a)` for `(1 − w)·a + w·b`) differs by
//! around 1e-16; the tolerance of 1e-12 allows for that while any wrong term, factor or step count
//! changes the result by far more.

use nnc_runtime::Exec;
use nnc_runtime::{
    clip_grad_norm, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer, Rmsprop,
    RmspropConfig, Sgd, SgdConfig,
};

const TOL: f64 = 1e-12;

/// The starting parameters of the three-step tests.
const P0: [f64; 3] = [1.0, -2.0, 0.5];
/// The gradients of steps 1, 2 and 3. Element 1's gradient drops from 1.5 to 0.01, so Adam's
/// second moment shrinks and AMSGrad's maximum matters.
const G: [[f64; 3]; 3] = [[0.5, -1.5, 0.1], [0.2, 0.01, -0.3], [-1.0, 0.02, 0.3]];

fn assert_near(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL,
            "{what}, element {i}: got {g:e}, expected {w:e}"
        );
    }
}

/// Runs three steps with the gradients `G` from `P0` and compares each result with `want`.
fn three_steps(what: &str, opt: &mut impl Optimizer<f64>, want: [[f64; 3]; 3]) {
    let mut p = P0;
    for (step, (g, want)) in G.iter().zip(want).enumerate() {
        opt.step(Exec::serial(), &mut p, g);
        assert_near(&format!("{what}, step {}", step + 1), &p, &want);
    }
    assert_eq!(opt.steps(), 3, "{what}: step count");
}

/// The state buffer called `name`.
fn state<'a>(opt: &'a impl Optimizer<f64>, name: &str) -> &'a [f64] {
    opt.state()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no state buffer {name}"))
        .1
}

#[test]
fn sgd_plain() {
    // p_t = p_{t-1} - lr·g_t, lr = 0.1.
    let mut sgd = Sgd::new(
        3,
        SgdConfig {
            lr: 0.1,
            ..SgdConfig::default()
        },
    );
    three_steps(
        "sgd",
        &mut sgd,
        [
            [0.95, -1.85, 0.49],
            [0.93, -1.851, 0.52],
            [1.03, -1.853, 0.49],
        ],
    );
    assert!(sgd.state().is_empty(), "no momentum, no buffer");
    sgd.set_learning_rate(0.5);
    assert_eq!(sgd.learning_rate(), 0.5);
}

#[test]
fn sgd_with_momentum_and_dampening() {
    // b_1 = g_1 (no dampening on the first step); b_t = μ·b_{t-1} + (1 - τ)·g_t afterwards;
    // p_t = p_{t-1} - lr·b_t, with lr = 0.1, μ = 0.9, τ = 0.5.
    let config = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.5,
        ..SgdConfig::default()
    };
    let mut sgd = Sgd::new(3, config);
    three_steps(
        "sgd momentum",
        &mut sgd,
        [
            [0.95, -1.85, 0.49],
            [0.895, -1.7155, 0.496],
            [0.8955, -1.59545, 0.4864],
        ],
    );
    assert_near(
        "momentum_buffer",
        state(&sgd, "momentum_buffer"),
        &[-0.005, -1.2005, 0.096],
    );
}

#[test]
fn sgd_nesterov_with_weight_decay() {
    // d_t = g_t + wd·p_{t-1}; b_1 = d_1, b_t = μ·b_{t-1} + d_t (dampening 0);
    // p_t = p_{t-1} - lr·(d_t + μ·b_t), with lr = 0.1, μ = 0.9, wd = 0.05.
    let config = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.05,
        ..SgdConfig::default()
    };
    let mut sgd = Sgd::new(3, config);
    three_steps(
        "sgd nesterov",
        &mut sgd,
        [
            [0.8955, -1.696, 0.47625],
            [0.80444275, -1.552188, 0.518600625],
            [0.926878768875, -1.418543414, 0.4699326065625],
        ],
    );
    assert_near(
        "momentum_buffer",
        state(&sgd, "momentum_buffer"),
        &[-0.2939803625, -1.4209294, 0.17861128125],
    );
}

#[test]
fn sgd_with_weight_decay() {
    // p_t = p_{t-1} - lr·(g_t + wd·p_{t-1}), lr = 0.1, wd = 0.1.
    let config = SgdConfig {
        lr: 0.1,
        weight_decay: 0.1,
        ..SgdConfig::default()
    };
    three_steps(
        "sgd weight decay",
        &mut Sgd::new(3, config),
        [
            [0.94, -1.83, 0.485],
            [0.9106, -1.8127, 0.51015],
            [1.001494, -1.796573, 0.4750485],
        ],
    );
}

#[test]
#[should_panic(expected = "Nesterov momentum requires a momentum and zero dampening")]
fn sgd_rejects_nesterov_with_dampening() {
    let config = SgdConfig {
        momentum: 0.9,
        dampening: 0.1,
        nesterov: true,
        ..SgdConfig::default()
    };
    Sgd::<f32>::new(1, config);
}

#[test]
fn adagrad_with_lr_decay() {
    // clr_t = lr / (1 + (t - 1)·lr_decay); s_t = s_{t-1} + g_t², s_0 = 0.1;
    // p_t = p_{t-1} - clr_t·g_t / (sqrt(s_t) + eps), lr = 0.1, lr_decay = 0.5, eps = 1e-10.
    let config = AdagradConfig {
        lr: 0.1,
        lr_decay: 0.5,
        initial_accumulator_value: 0.1,
        ..AdagradConfig::default()
    };
    let mut adagrad = Adagrad::new(3, config);
    three_steps(
        "adagrad",
        &mut adagrad,
        [
            [
                0.915_484_574_541_434_1,
                -1.902_150_789_048_366_7,
                0.469_848_865_551_314_55,
            ],
            [
                0.894_134_154_037_508,
                -1.902_585_665_177_788_8,
                0.514_570_225_091_310_3,
            ],
            [
                0.936_543_600_517_909_4,
                -1.903_237_923_865_268_1,
                0.486_715_924_369_925,
            ],
        ],
    );
    assert_near("sum", state(&adagrad, "sum"), &[1.39, 2.3505, 0.29]);
}

#[test]
fn rmsprop_plain() {
    // v_t = α·v_{t-1} + (1 - α)·g_t²; p_t = p_{t-1} - lr·g_t / (sqrt(v_t) + eps),
    // lr = 0.01, α = 0.9, eps = 1e-8.
    let config = RmspropConfig {
        lr: 0.01,
        alpha: 0.9,
        ..RmspropConfig::default()
    };
    let mut rmsprop = Rmsprop::new(3, config);
    three_steps(
        "rmsprop",
        &mut rmsprop,
        [
            [
                0.968_377_225_398_316,
                -1.968_377_224_064_982_8,
                0.468_377_233_398_313_05,
            ],
            [
                0.956_091_323_816_354,
                -1.968_599_440_795_501_9,
                0.498_528_364_825_786_7,
            ],
            [
                0.984_506_606_585_458_2,
                -1.969_067_863_397_654_6,
                0.476_111_574_517_717_46,
            ],
        ],
    );
    let names: Vec<&str> = rmsprop.state().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["square_avg"]);
    assert_near(
        "square_avg",
        state(&rmsprop, "square_avg"),
        &[0.12385, 0.182299, 0.01791],
    );
}

#[test]
fn rmsprop_centered_with_momentum_and_weight_decay() {
    // g'_t = g_t + wd·p_{t-1}; v_t = α·v_{t-1} + (1 - α)·g'_t²; a_t = α·a_{t-1} + (1 - α)·g'_t;
    // b_t = μ·b_{t-1} + g'_t / (sqrt(v_t - a_t²) + eps); p_t = p_{t-1} - lr·b_t,
    // lr = 0.01, α = 0.9, eps = 1e-8, μ = 0.5, wd = 0.1.
    let config = RmspropConfig {
        lr: 0.01,
        alpha: 0.9,
        weight_decay: 0.1,
        momentum: 0.5,
        centered: true,
        ..RmspropConfig::default()
    };
    let mut rmsprop = Rmsprop::new(3, config);
    three_steps(
        "rmsprop centered",
        &mut rmsprop,
        [
            [
                0.966_666_668_518_518_5,
                -1.966_666_667_320_261_5,
                0.466_666_674_074_072_4,
            ],
            [
                0.933_958_342_072_939_2,
                -1.946_142_090_523_725_9,
                0.477_802_348_474_607_3,
            ],
            [
                0.943_881_106_102_937_9,
                -1.932_075_781_255_721,
                0.458_213_230_684_112_46,
            ],
        ],
    );
    assert_near(
        "square_avg",
        state(&rmsprop, "square_avg"),
        &[
            0.119_274_111_353_157_71,
            0.240_275_012_202_494_6,
            0.019_693_609_141_277_72,
        ],
    );
    assert_near(
        "grad_avg",
        state(&rmsprop, "grad_avg"),
        &[
            -0.015_360_416_562_603_937,
            -0.171_961_420_911_119_57,
            0.024_128_023_551_412_726,
        ],
    );
    assert_near(
        "momentum_buffer",
        state(&rmsprop, "momentum_buffer"),
        &[
            -0.992_276_402_999_864_5,
            -1.406_630_926_800_5,
            1.958_911_779_049_484_5,
        ],
    );
}

/// The Adam family's rule, with `g'` the gradient (plus `wd·p` for Adam's L2 penalty):
/// `m_t = β1·m + (1 - β1)·g'`, `v_t = β2·v + (1 - β2)·g'²`, `v̂ = max(v̂, v_t)` with AMSGrad (the
/// raw moments, as PyTorch implements it) else `v_t`, and
/// `p_t = p_{t-1} - (lr / (1 - β1^t))·m_t / (sqrt(v̂) / sqrt(1 - β2^t) + eps)`, where AdamW first
/// sets `p_{t-1} *= 1 - lr·wd`. Here lr = 0.01, β = (0.9, 0.999), eps = 1e-8.
fn adam_config(weight_decay: f64, amsgrad: bool) -> AdamConfig {
    AdamConfig {
        lr: 0.01,
        weight_decay,
        amsgrad,
        ..AdamConfig::default()
    }
}

/// `m_3` and `v_3` of every Adam test without weight decay in the gradient (Adam with wd = 0, and
/// AdamW, whose decay does not enter the moments).
const ADAM_M3: [f64; 3] = [-0.0415, -0.1186, 0.0111];
const ADAM_V3: [f64; 3] = [0.001_289_460_25, 0.002_246_002_15, 0.000_189_890_01];

#[test]
fn adam_three_steps() {
    let mut adam = Adam::new(3, adam_config(0.0, false));
    three_steps(
        "adam",
        &mut adam,
        [
            [0.990_000_000_2, -1.990_000_000_066_666_7, 0.490_000_001],
            [
                0.981_014_248_390_292_8,
                -1.983_349_199_474_639,
                0.494_941_899_112_006_53,
            ],
            [
                0.983_348_879_475_438_6,
                -1.978_293_820_088_374_2,
                0.493_314_679_927_229_9,
            ],
        ],
    );
    assert_near("exp_avg", state(&adam, "exp_avg"), &ADAM_M3);
    assert_near("exp_avg_sq", state(&adam, "exp_avg_sq"), &ADAM_V3);
    assert_eq!(adam.state().len(), 2, "no max_exp_avg_sq without amsgrad");
}

#[test]
fn adam_amsgrad() {
    // Element 1's second moment shrinks after step 1 (0.00225 → 0.00224785 → 0.00224600215),
    // so its denominator keeps using 0.00225; elements 0 and 2 match plain Adam.
    let mut adam = Adam::new(3, adam_config(0.0, true));
    three_steps(
        "adam amsgrad",
        &mut adam,
        [
            [0.990_000_000_2, -1.990_000_000_066_666_7, 0.490_000_001],
            [
                0.981_014_248_390_292_8,
                -1.983_352_377_838_793_6,
                0.494_941_899_112_006_53,
            ],
            [
                0.983_348_879_475_438_6,
                -1.978_301_491_704_509_4,
                0.493_314_679_927_229_9,
            ],
        ],
    );
    assert_near(
        "max_exp_avg_sq",
        state(&adam, "max_exp_avg_sq"),
        &[0.001_289_460_25, 0.00225, 0.000_189_890_01],
    );
    assert_near("exp_avg_sq", state(&adam, "exp_avg_sq"), &ADAM_V3);
}

#[test]
fn adamw_three_steps() {
    // wd = 0.1: each step first multiplies p by 1 - 0.01·0.1 = 0.999.
    let mut adamw = AdamW::new(3, adam_config(0.1, false));
    three_steps(
        "adamw",
        &mut adamw,
        [
            [0.989_000_000_2, -1.988_000_000_066_666_7, 0.489_500_001],
            [
                0.979_025_248_390_092_9,
                -1.979_361_199_474_572_3,
                0.493_952_399_111_006_5,
            ],
            [
                0.980_380_854_226_848_5,
                -1.972_326_458_888_833,
                0.491_831_227_527_118_9,
            ],
        ],
    );
    assert_near("exp_avg", state(&adamw, "exp_avg"), &ADAM_M3);
    assert_near("exp_avg_sq", state(&adamw, "exp_avg_sq"), &ADAM_V3);

    let mut amsgrad = AdamW::new(3, adam_config(0.1, true));
    let mut p = P0;
    for g in &G {
        amsgrad.step(Exec::serial(), &mut p, g);
    }
    assert_near(
        "adamw amsgrad, step 3",
        &p,
        &[
            0.980_380_854_226_848_5,
            -1.972_334_127_326_604,
            0.491_831_227_527_118_9,
        ],
    );
}

#[test]
fn adam_with_constant_gradient_and_weight_decay() {
    // With a constant gradient g, zero initial moments and no weight decay, m_t = (1-β1^t)·g and
    // v_t = (1-β2^t)·g², so each step moves p by lr·g/(|g| + eps). With wd = 0.1 the effective
    // gradient is g + 0.1·p_{t-1}: t = 1: g' = (0.6, -1.7), p1 = p0 - 0.01·g'/(|g'| + 1e-8).
    let mut adam = Adam::new(2, adam_config(0.1, false));
    let mut p = [1.0, -2.0];
    let want = [
        [0.990_000_000_166_666_7, -1.990_000_000_058_823_6],
        [0.980_000_438_601_569_9, -1.980_000_153_923_006_3],
        [0.970_001_607_359_831_3, -1.970_000_563_866_305_6],
    ];
    for (step, want) in want.iter().enumerate() {
        adam.step(Exec::serial(), &mut p, &[0.5, -1.5]);
        assert_near(&format!("adam wd step {}", step + 1), &p, want);
    }
    let (m, v) = adam.moments();
    assert_near(
        "m",
        m,
        &[0.162_310_004_387_515_67, -0.460_410_001_539_759_36],
    );
    assert_near(
        "v",
        v,
        &[0.001_075_326_611_476_697_5, 0.008_651_141_341_292_228],
    );
}

#[test]
fn defaults_are_pytorchs() {
    assert_eq!(
        AdamConfig::default(),
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false
        }
    );
    assert_eq!(AdamConfig::adamw().weight_decay, 1e-2);
    let sgd = SgdConfig::default();
    assert_eq!(
        (
            sgd.lr,
            sgd.momentum,
            sgd.dampening,
            sgd.nesterov,
            sgd.weight_decay
        ),
        (1e-3, 0.0, 0.0, false, 0.0)
    );
    let a = AdagradConfig::default();
    assert_eq!(
        (
            a.lr,
            a.lr_decay,
            a.weight_decay,
            a.initial_accumulator_value,
            a.eps
        ),
        (1e-2, 0.0, 0.0, 0.0, 1e-10)
    );
    let r = RmspropConfig::default();
    assert_eq!(
        (r.lr, r.alpha, r.eps, r.weight_decay, r.momentum, r.centered),
        (1e-2, 0.99, 1e-8, 0.0, 0.0, false)
    );
}

#[test]
fn adam_in_f32() {
    let mut adam = Adam::<f32>::with_defaults(2, 1e-3);
    // The f32 learning rate is stored as the f64 it converts to, so compare everything else.
    assert_eq!(
        *adam.config(),
        AdamConfig {
            lr: adam.config().lr,
            ..AdamConfig::default()
        }
    );
    let mut p = [1.0f32, -2.0];
    adam.step(Exec::serial(), &mut p, &[0.5, -1.5]);
    // The first Adam step moves every parameter by lr against the sign of its gradient.
    assert!(
        (p[0] - 0.999).abs() < 1e-6 && (p[1] + 1.999).abs() < 1e-6,
        "{p:?}"
    );
    assert_eq!(adam.learning_rate(), 1e-3);
}

#[test]
fn checkpoint_round_trip() {
    // Two steps, then a copy of the state and step count into a fresh optimizer: the third step
    // must match an uninterrupted run bit for bit.
    let config = adam_config(0.0, true);
    let mut straight = Adam::new(3, config);
    let mut p_straight = P0;
    for g in &G {
        straight.step(Exec::serial(), &mut p_straight, g);
    }
    let mut first = Adam::new(3, config);
    let mut p = P0;
    first.step(Exec::serial(), &mut p, &G[0]);
    first.step(Exec::serial(), &mut p, &G[1]);
    let mut resumed = Adam::new(3, config);
    for ((name, to), (from_name, from)) in resumed.state_mut().into_iter().zip(first.state()) {
        assert_eq!(name, from_name);
        to.copy_from_slice(from);
    }
    resumed.set_steps(first.steps());
    resumed.step(Exec::serial(), &mut p, &G[2]);
    assert_eq!(p, p_straight);

    // SGD takes a restored buffer as initialised once steps > 0.
    let config = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let mut sgd = Sgd::new(1, config);
    sgd.state_mut()[0].1[0] = 1.0;
    sgd.set_steps(5);
    let mut p = [0.0f64];
    sgd.step(Exec::serial(), &mut p, &[1.0]);
    // b = 0.9·1 + 1 = 1.9, p = -0.19.
    assert!((p[0] + 0.19).abs() < TOL, "{p:?}");
}

#[test]
fn clip_grad_norm_clips_only_above_the_bound() {
    // ‖(3, 4)‖ = 5 > 1: scaled by 1/(5 + 1e-6).
    let mut g = [3.0f64, 4.0];
    let norm = clip_grad_norm(&mut g, 1.0);
    assert_eq!(norm, 5.0);
    let coef = 1.0 / (5.0 + 1e-6);
    assert_near("clipped", &g, &[3.0 * coef, 4.0 * coef]);
    // Within the bound: unchanged, bit for bit.
    let mut g = [3.0f32, 4.0];
    assert_eq!(clip_grad_norm(&mut g, 10.0), 5.0);
    assert_eq!(g, [3.0, 4.0]);
    // At the bound the coefficient 5/(5 + 1e-6) is just below 1, so PyTorch scales; so do we.
    let mut g = [3.0f64, 4.0];
    clip_grad_norm(&mut g, 5.0);
    assert!(g[0] < 3.0 && g[0] > 3.0 - 1e-5, "{g:?}");
    assert_eq!(clip_grad_norm::<f32>(&mut [], 1.0), 0.0);
}

/// The norm over a long vector (whole blocks of running sums and a ragged tail) is the norm a
/// plain sum gives, up to the rounding of a different order of f64 additions: 1e-14 relative
/// is about 50 ulps, far below any difference a wrong term (a skipped tail, a lane counted
/// twice) would make (at least 1e-4 here).
#[test]
fn clip_grad_norm_sums_every_gradient() {
    for len in [1, 15, 16, 17, 1003] {
        let mut g: Vec<f32> = (0..len)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let plain = g
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let norm = clip_grad_norm(&mut g, f64::INFINITY);
        assert!(
            (norm - plain).abs() <= 1e-14 * plain,
            "{len}: {norm} against {plain}"
        );
    }
}

/// `without_decay`: the exempt parameters move exactly as with no weight decay at all, the
/// others exactly as with it, with or without AMSGrad, for Adam's penalty and AdamW's decay.
#[test]
fn parameters_without_decay_follow_the_undecayed_rule() {
    let p0: Vec<f64> = (0..11).map(|i| 0.3 * i as f64 - 1.2).collect();
    let grads: Vec<Vec<f64>> = (0..3)
        .map(|s| {
            (0..11)
                .map(|i| ((i * 7 + s * 3) % 5) as f64 * 0.1 - 0.2)
                .collect()
        })
        .collect();
    let exempt = [2..4, 7..8, 3..5];
    let is_exempt = |i: usize| exempt.iter().any(|r| r.contains(&i));
    for amsgrad in [false, true] {
        let config = adam_config(0.1, amsgrad);
        let plain = AdamConfig {
            weight_decay: 0.0,
            ..config
        };
        let run = |mut o: Box<dyn Optimizer<f64>>| {
            let mut p = p0.clone();
            for g in &grads {
                o.step(Exec::serial(), &mut p, g);
            }
            p
        };
        let pairs: [[Box<dyn Optimizer<f64>>; 3]; 2] = [
            [
                Box::new(AdamW::new(11, config).without_decay(&exempt)),
                Box::new(AdamW::new(11, config)),
                Box::new(AdamW::new(11, plain)),
            ],
            [
                Box::new(Adam::new(11, config).without_decay(&exempt)),
                Box::new(Adam::new(11, config)),
                Box::new(Adam::new(11, plain)),
            ],
        ];
        for [mixed, decayed, undecayed] in pairs {
            let (mixed, decayed, undecayed) = (run(mixed), run(decayed), run(undecayed));
            for i in 0..11 {
                let want = if is_exempt(i) {
                    undecayed[i]
                } else {
                    decayed[i]
                };
                assert_eq!(mixed[i].to_bits(), want.to_bits(), "parameter {i}");
            }
            assert_ne!(
                decayed[2], undecayed[2],
                "the decay must matter for the test to"
            );
        }
    }
}

#[test]
#[should_panic(expected = "Adam: tensors of Some(10) elements in all for 12 parameters")]
fn tensors_must_cover_the_parameters() {
    let _ = Adam::<f32>::new(12, AdamConfig::default()).with_tensors(&[[2, 3], [4, 1]]);
}
