//! The transformer's layers against PyTorch: `attention` (nn.MultiheadAttention as
//! self-attention, causal and not) followed by `layer_norm` (nn.LayerNorm), with PyTorch's
//! parameter names and layout, outputs and every gradient equal to the numbers PyTorch 2.15
//! printed in float64 (`common/pytorch_attention.rs` holds them and the script); layer norm
//! against its definition written out here; and a causal attention layer that learns what only
//! attention can: to repeat the previous token.
//!
//! Tolerance: 1e-12 absolute in f64. Both sides evaluate the same formulas in another order
//! (agreement to about 1e-15 at these sizes); a wrong head split, scale, mask or gate of the
//! gradient moves values by 1e-3 or more.

mod fixture {
    nnc::model! {
        #![elem = f64]
        model CausalNorm {
            input x: [4, 6] requires_grad;
            let y = x -> attention attn(2, causal = true) -> layer_norm ln;
            output y;
            optimizer = sgd(lr = 0.1);
        }
    }
    nnc::model! {
        #![elem = f64]
        model FullNorm {
            input x: [4, 6] requires_grad;
            let y = x -> attention attn(2) -> layer_norm ln;
            output y;
            optimizer = sgd(lr = 0.1);
        }
    }
    nnc::model! {
        #![elem = f64]
        model Norm {
            input x: [3, 5];
            let y = x -> layer_norm ln(eps = 0.01);
            output y;
            optimizer = sgd(lr = 0.1);
        }
    }
    nnc::model! {
        model Previous {
            input tokens: [8] ids(8);
            target prev: [8] class(8);
            let h = tokens -> embedding tok(8, 16) -> bias pos(axes = 2, init = normal, std = 0.5);
            // `repeat` inside `model!`: the Rust tokens `repeat 1 as block { ... }`.
            repeat 1 as block {
                let h = h + (h -> attention attn(2, causal = true));
            }
            let p = h -> layer_norm ln -> dense head(8) -> softmax;
            loss = cross_entropy(p, prev);
            optimizer = adam(lr = 0.01);
        }
    }
}
use fixture::{CausalNorm, FullNorm, Norm, Previous};
use nnc::runtime::{Model, Values};

#[path = "common/pytorch_attention.rs"]
mod pytorch;
use pytorch::*;

fn filled(n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..n).map(|k| f(k as f64)).collect()
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12,
            "{what}[{i}]: {a} but PyTorch gives {b}"
        );
    }
}

/// The model with the script's parameters, its output, and the gradients of `L = Σ y ⊙ r`.
fn matches_pytorch<M: Model<Elem = f64>>(want: [&[f64]; 8]) {
    let mut model = M::new(0);
    let fills: [(&str, Vec<f64>); 6] = [
        (
            "attn.in_proj_weight",
            filled(108, |k| 0.5 * (0.37 * k + 0.1).sin()),
        ),
        ("attn.in_proj_bias", filled(18, |k| 0.1 * (0.5 * k).sin())),
        (
            "attn.out_proj.weight",
            filled(36, |k| 0.4 * (0.23 * k + 0.2).cos()),
        ),
        ("attn.out_proj.bias", filled(6, |k| -0.05 * (0.7 * k).cos())),
        ("ln.weight", filled(6, |k| 1.0 + 0.1 * k.sin())),
        ("ln.bias", filled(6, |k| 0.05 * k.cos())),
    ];
    for (name, values) in &fills {
        model.param_mut(name).unwrap().copy_from_slice(values);
    }
    let x = filled(48, |k| (0.3 * k).sin() + 0.2 * (1.1 * k).cos());
    let r = filled(48, |k| (0.17 * k).cos() - 0.3);
    let mut ws = model.workspace(2);
    let inputs = [Values::Float(&x)];
    let out = model.predict_dyn(&mut ws, &inputs).unwrap().to_vec();
    close("output", &out, want[0]);
    model.forward_train_dyn(&mut ws, &inputs).unwrap();
    model.backward_dyn(&mut ws, &inputs, &[&r]).unwrap();
    close("d x", M::input_grad(&ws, 0).unwrap(), want[1]);
    for ((name, _), want) in fills.iter().zip(&want[2..]) {
        let info = M::PARAMS.iter().find(|p| p.name == *name).unwrap();
        let grad = &model.grads()[info.offset..info.offset + info.len];
        close(&format!("d {name}"), grad, want);
    }
}

#[test]
fn causal_attention_and_layer_norm_match_pytorch() {
    matches_pytorch::<CausalNorm>([
        &CAUSAL_OUT,
        &CAUSAL_D_X,
        &CAUSAL_D_IN_W,
        &CAUSAL_D_IN_B,
        &CAUSAL_D_OUT_W,
        &CAUSAL_D_OUT_B,
        &CAUSAL_D_LN_W,
        &CAUSAL_D_LN_B,
    ]);
}

#[test]
fn full_attention_and_layer_norm_match_pytorch() {
    matches_pytorch::<FullNorm>([
        &FULL_OUT,
        &FULL_D_X,
        &FULL_D_IN_W,
        &FULL_D_IN_B,
        &FULL_D_OUT_W,
        &FULL_D_OUT_B,
        &FULL_D_LN_W,
        &FULL_D_LN_B,
    ]);
}

#[test]
fn layer_norm_follows_its_definition() {
    // Each row of 5 normalised by its own mean and biased variance (divided by 5), eps inside
    // the square root, then γ·x̂ + β per feature.
    let mut model = Norm::new(0);
    assert_eq!(model.param("ln.weight").unwrap(), &[1.0; 5]);
    assert_eq!(model.param("ln.bias").unwrap(), &[0.0; 5]);
    let gamma = [0.5, 1.0, 1.5, 2.0, -1.0];
    let beta = [0.1, 0.0, -0.1, 0.2, 0.3];
    model
        .param_mut("ln.weight")
        .unwrap()
        .copy_from_slice(&gamma);
    model.param_mut("ln.bias").unwrap().copy_from_slice(&beta);
    let x = filled(30, |k| (0.7 * k).sin() * (1.0 + 0.1 * k));
    let mut want = Vec::new();
    for row in x.chunks(5) {
        let mean = row.iter().sum::<f64>() / 5.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 5.0;
        for (j, v) in row.iter().enumerate() {
            want.push(gamma[j] * (v - mean) / (var + 0.01).sqrt() + beta[j]);
        }
    }
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap();
    close("output", out, &want);
}

/// Every token's target is the token before it (the first one's, 0): a model that sees one
/// position at a time can do no better than guessing (a loss of ln 8 ≈ 2.08), so a low loss
/// shows the causal attention carrying the previous position forward.
#[test]
fn causal_attention_learns_to_repeat_the_previous_token() {
    let mut model = Previous::new(5);
    let mut ws = model.workspace(32);
    let mut rng = nnc::runtime::Rng::new(3);
    let batch = |rng: &mut nnc::runtime::Rng| {
        let tokens: Vec<u32> = (0..32 * 8).map(|_| rng.below(8) as u32).collect();
        let prev: Vec<u32> = tokens
            .chunks(8)
            .flat_map(|s| std::iter::once(0).chain(s[..7].iter().copied()))
            .collect();
        (tokens, prev)
    };
    for _ in 0..300 {
        let (tokens, prev) = batch(&mut rng);
        model.train_step(&mut ws, &tokens, &prev).unwrap();
    }
    let (tokens, prev) = batch(&mut rng);
    let loss = model.evaluate(&mut ws, &tokens, &prev).unwrap().loss;
    assert!(loss < 0.3, "the loss is {loss}");
}
