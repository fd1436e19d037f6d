//! Learning-rate schedules against values worked out from their formulas.

use nnc_runtime::schedule::{Constant, Cosine, Schedule, StepDecay, Warmup};

fn assert_lr(s: &impl Schedule, step: u64, want: f64) {
    let got = s.lr(step);
    assert!(
        (got - want).abs() <= 1e-15,
        "step {step}: got {got}, expected {want}"
    );
}

#[test]
fn constant() {
    let s = Constant { lr: 0.3 };
    assert_lr(&s, 0, 0.3);
    assert_lr(&s, 1_000_000, 0.3);
}

#[test]
fn step_decay() {
    // base · gamma^⌊step / 3⌋.
    let s = StepDecay {
        base: 0.1,
        step_size: 3,
        gamma: 0.5,
    };
    for (step, want) in [
        (0, 0.1),
        (2, 0.1),
        (3, 0.05),
        (5, 0.05),
        (6, 0.025),
        (7, 0.025),
    ] {
        assert_lr(&s, step, want);
    }
}

#[test]
fn cosine() {
    // min + (base - min)·(1 + cos(π·step/4))/2 with base 1, min 0.1; min from step 4 on.
    let s = Cosine {
        base: 1.0,
        min: 0.1,
        period: 4,
    };
    let quarter = 0.1 + 0.45 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
    for (step, want) in [(0, 1.0), (1, quarter), (2, 0.55), (4, 0.1), (10, 0.1)] {
        assert_lr(&s, step, want);
    }
    assert_lr(
        &Cosine {
            base: 1.0,
            min: 0.2,
            period: 0,
        },
        0,
        0.2,
    );
}

#[test]
fn warmup() {
    // Steps 0..4 ramp to inner.lr(0) = 0.2 as 0.2·(s + 1)/4; then the inner schedule restarts.
    let s = Warmup {
        steps: 4,
        inner: StepDecay {
            base: 0.2,
            step_size: 2,
            gamma: 0.1,
        },
    };
    for (step, want) in [(0, 0.05), (1, 0.1), (3, 0.2), (4, 0.2), (5, 0.2), (6, 0.02)] {
        assert_lr(&s, step, want);
    }
    let none = Warmup {
        steps: 0,
        inner: Constant { lr: 0.7 },
    };
    assert_lr(&none, 0, 0.7);
    // Schedules can be chosen at run time.
    let boxed: Box<dyn Schedule> = Box::new(s);
    assert_lr(&boxed, 3, 0.2);
}
