//! The GRU against PyTorch's `nn.GRU` (`input_size = 3, hidden_size = 4, batch_first`, zero
//! initial state), with the numbers PyTorch 2.15 printed in float64 for the parameters and inputs
//! of `tests/recurrent.rs` (the script is in the comment above the constants): the output at
//! every step and the gradients of `L = Σ out ⊙ r` with respect to the input and all four
//! parameters, which PyTorch's `gradcheck` confirmed by finite differences. Also the output
//! against the equations written out naively here, and a GRU that learns a task only memory
//! solves.
//!
//! Tolerance: as in `tests/recurrent.rs`, 1e-12 absolute in f64, where both sides evaluate the
//! same equations in another order (agreement to about 1e-15) and a wrong gate order, a bias
//! added outside the reset gate instead of inside, or a time shift moves values by 1e-2 or more.

mod fixture {
    nnc::model! {
        #![elem = f64]
        model Gru {
            input x: [5, 3] requires_grad;
            let out = x -> gru rnn(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
    }
    nnc::model! {
        model Recall {
            input x: [6, 2];
            target y: [1];
            let h = x -> gru memory(16, return_sequences = false) -> dense out(1);
            loss = mse(h, y);
            optimizer = adam(lr = 0.01);
        }
    }
}
use fixture::{Gru, Recall};

#[path = "common/pytorch_recurrent.rs"]
mod pytorch;
use pytorch::{close, matches_pytorch, setup};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn gru_output_follows_the_equations() {
    // r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise with its rows, n = tanh(W_in x + b_in +
    // r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h: the gates in the order r, z, n.
    let (model, x) = setup::<Gru>(3);
    let p = |name: &str| model.param(name).unwrap().to_vec();
    let (w_ih, w_hh) = (p("rnn.weight_ih_l0"), p("rnn.weight_hh_l0"));
    let (b_ih, b_hh) = (p("rnn.bias_ih_l0"), p("rnn.bias_hh_l0"));
    let mut want = Vec::new();
    for sample in x.chunks(15) {
        let mut h = [0.0; 4];
        for xt in sample.chunks(3) {
            let gi = |j: usize| b_ih[j] + (0..3).map(|k| w_ih[j * 3 + k] * xt[k]).sum::<f64>();
            let gh = |j: usize| b_hh[j] + (0..4).map(|k| w_hh[j * 4 + k] * h[k]).sum::<f64>();
            let next: Vec<f64> = (0..4)
                .map(|u| {
                    let r = sigmoid(gi(u) + gh(u));
                    let z = sigmoid(gi(4 + u) + gh(4 + u));
                    let n = (gi(8 + u) + r * gh(8 + u)).tanh();
                    (1.0 - z) * n + z * h[u]
                })
                .collect();
            h.copy_from_slice(&next);
            want.extend_from_slice(&h);
        }
    }
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap();
    close("output", out, &want);
}

#[test]
fn gru_matches_pytorch() {
    let want = [
        &GRU_OUT[..],
        &GRU_D_X,
        &GRU_D_W_IH,
        &GRU_D_W_HH,
        &GRU_D_B_IH,
        &GRU_D_B_HH,
    ];
    matches_pytorch::<Gru>(3, want);
}

/// A sequence whose target is its first step's first feature, hidden behind five steps of
/// noise: a model that keeps nothing from step to step cannot do better than predicting the
/// mean (a loss of about 1/3 for values uniform in ±1).
#[test]
fn gru_remembers_across_steps() {
    let mut model = Recall::new(7);
    let mut ws = model.workspace(32);
    let mut rng = nnc::runtime::Rng::new(11);
    let batch = |rng: &mut nnc::runtime::Rng| {
        let x: Vec<f32> = (0..32 * 12).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y: Vec<f32> = x.chunks(12).map(|s| s[0]).collect();
        (x, y)
    };
    let (x, y) = batch(&mut rng);
    let before = model.evaluate(&mut ws, &x, &y).unwrap().loss;
    for _ in 0..400 {
        let (x, y) = batch(&mut rng);
        model.train_step(&mut ws, &x, &y).unwrap();
    }
    let (x, y) = batch(&mut rng);
    let after = model.evaluate(&mut ws, &x, &y).unwrap().loss;
    assert!(
        before > 0.2 && after < 0.02,
        "the loss went from {before} to {after}"
    );
}

// PyTorch 2.15, float64, as for the LSTM in `tests/recurrent.rs` with `nn.GRU` in place of
// `nn.LSTM` (weight rows 12 instead of 16):
//
// gru = torch.nn.GRU(input_size=3, hidden_size=4, num_layers=1, batch_first=True)
// (the same fills, input and r)
// out, _ = gru(x)
// (out * r).sum().backward()
const GRU_OUT: [f64; 40] = [
    -0.060898732339853434,
    -0.25754632970970703,
    -0.18366060011359642,
    0.010639300802651686,
    -0.09478222861593098,
    -0.5613107465415585,
    -0.35490636804020254,
    0.06278345397591067,
    0.04814535696958755,
    -0.6588336092574069,
    -0.4988149081350425,
    0.049197170908806945,
    0.011908761110319032,
    -0.3507032402483544,
    -0.2492719064311865,
    0.019451392542585832,
    0.0047739708020036985,
    0.13656729069777995,
    0.3962046006792095,
    -0.19173760006543356,
    -0.048013505155620334,
    0.2834849390036072,
    0.5552588144487152,
    -0.12191648981415243,
    -0.0915074855774655,
    0.3620546514576619,
    0.5135472153753406,
    -0.16487220649660314,
    -0.1681801913717826,
    -0.09756085274317094,
    0.18451530346772937,
    -0.06722660509807302,
    -0.0592743268234128,
    -0.4882746807540374,
    -0.10416429359689328,
    -0.03068256587079056,
    -0.003853884411905057,
    -0.6746063315281621,
    -0.3210890459958894,
    0.0056175703659599036,
];
const GRU_D_X: [f64; 30] = [
    -0.12241210080910217,
    -0.18142143641188826,
    -0.2158762316827572,
    0.05349583784308849,
    -0.01395655881759192,
    -0.07952000071548813,
    0.01632595095062863,
    0.0368023821790108,
    0.0522977836272433,
    0.37041131294965574,
    0.45872732567608415,
    0.48495674685942153,
    0.3389515532240716,
    0.31645996646127983,
    0.2511370078187687,
    0.22323763538398483,
    0.2432401089012525,
    0.23032117476967065,
    -0.008285815375342419,
    0.09960139745634632,
    0.1940080283935961,
    -0.17596637673922888,
    -0.05468861886298305,
    0.07399098702045828,
    -0.049650069869681415,
    -0.025979705207386305,
    0.0012068906784218924,
    0.00893758414270517,
    -0.0391606816095195,
    -0.08195873281695773,
];
const GRU_D_W_IH: [f64; 36] = [
    -0.013914298894248747,
    -0.017045571661716313,
    -0.018283727479871673,
    -0.021928489059186,
    -0.013261672691997939,
    -0.0025294979575060193,
    -0.010014868191411464,
    0.0022821096136531353,
    0.014693339401507344,
    -0.0037693292358435583,
    0.0019274116435452184,
    0.007355197826119323,
    0.10477963210559353,
    0.09467395663681655,
    0.0753606837635669,
    -0.20304077797450448,
    -0.25117292236889105,
    -0.28622138802867636,
    -0.01118367897245322,
    0.021639329579112777,
    0.034472079919196,
    0.0027708698693888973,
    0.004531393373696214,
    0.012982357235448315,
    1.195645820043136,
    1.558401400885917,
    1.7321807836224432,
    0.5071689952886044,
    0.798523961584991,
    0.9779781397664409,
    0.473727849097086,
    0.8736138814112153,
    1.162820356917057,
    0.823496978338096,
    1.390223535110681,
    1.8226903519497142,
];
const GRU_D_W_HH: [f64; 48] = [
    0.0010801825915484672,
    3.432292201321343e-05,
    -0.001310742065642109,
    0.0004505788107858563,
    -0.002194009401858267,
    0.036771276726616016,
    0.030835186988365716,
    -0.0035536195811449005,
    -0.0014359109450814166,
    0.03837299188045548,
    0.026754521092634004,
    -0.0014944369560618072,
    -5.890307368089251e-05,
    0.016313240722879232,
    0.010178072345574244,
    -0.0003106540743266105,
    0.001666981104697039,
    0.00489453876601845,
    -0.012538984417568663,
    0.005253350545348115,
    -0.02097574775611165,
    -0.23517375424738185,
    -0.09928597281647064,
    -0.010832693672858067,
    -0.044516706944777905,
    -0.1319482120725099,
    0.02316767337541174,
    -0.03922494371606965,
    0.009554982474296944,
    0.024119798478725855,
    -0.008686642912838254,
    0.009946732829496641,
    -0.0553434355009427,
    0.032535087055845915,
    0.10063823840045057,
    -0.0263117839015905,
    -0.036951847202893795,
    0.23783377601561267,
    0.22203308298162738,
    -0.03550317789770477,
    -0.038414451523858396,
    0.360837554555613,
    0.31821364562881393,
    -0.047143194068954924,
    -0.05297078087113646,
    0.582775244641965,
    0.5335041262545259,
    -0.08098686293093724,
];
const GRU_D_B_IH: [f64; 12] = [
    -0.0018576560371209865,
    -0.05178254777263956,
    -0.08649085990201422,
    -0.04585534517443258,
    -0.12306491372809866,
    1.1838803776294102,
    1.0197138908508965,
    -0.20687178600701148,
    -0.24205899348268684,
    -0.8193238899590176,
    -0.9886176852293106,
    -1.4100185429204743,
];
const GRU_D_B_HH: [f64; 12] = [
    -0.0018576560371209865,
    -0.05178254777263956,
    -0.08649085990201422,
    -0.045855345174432585,
    -0.12306491372809868,
    1.1838803776294102,
    1.0197138908508965,
    -0.20687178600701148,
    0.16996252219092595,
    -0.15616662463390135,
    -0.484756221475261,
    -1.206133571606834,
];
