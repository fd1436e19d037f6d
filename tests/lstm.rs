//! The LSTM layer against PyTorch's `nn.LSTM` (`input_size = 3, hidden_size = 4, batch_first`,
//! zero initial state), with numbers PyTorch 2.15 printed in float64 for parameters and inputs
//! filled by fixed formulas (the script is in the comment above the constants): the
//! output at every step, and the gradients of `L = Σ out ⊙ r` with respect to the input and all
//! four parameters, which PyTorch's `gradcheck` confirmed by finite differences. Also the
//! output against the LSTM equations written out naively here.
//!
//! Tolerance: the model is compiled to f64; both sides evaluate the same equations, summing in
//! another order, so values agree to about 1e-15; 1e-12 (absolute, on values of order 0.01 to
//! 1) is far below what a wrong gate order, sign or time shift gives (1e-2 or more).

use nnc::runtime::Model;

mod fixture {
    nnc::model! {
        #![elem = f64]
        model Seq {
            input x: [5, 3] requires_grad;
            let out = x -> lstm rnn(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
    }
}
use fixture::Seq;

/// `f(k)` for every flat index `k` of a tensor of `n` values.
fn filled(n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..n).map(|k| f(k as f64)).collect()
}

/// The model with PyTorch's parameters, and the input.
fn setup() -> (Seq, Vec<f64>) {
    let mut model = Seq::new(0);
    let fills: [(&str, Vec<f64>); 4] = [
        (
            "rnn.weight_ih_l0",
            filled(48, |k| 0.5 * (0.37 * k + 0.1).sin()),
        ),
        (
            "rnn.weight_hh_l0",
            filled(64, |k| 0.4 * (0.23 * k + 0.2).cos()),
        ),
        ("rnn.bias_ih_l0", filled(16, |k| 0.1 * (0.5 * k).sin())),
        ("rnn.bias_hh_l0", filled(16, |k| -0.05 * (0.7 * k).cos())),
    ];
    for (name, values) in fills {
        model.param_mut(name).unwrap().copy_from_slice(&values);
    }
    let x = filled(30, |k| (0.3 * k).sin() + 0.2 * (1.1 * k).cos());
    (model, x)
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

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn output_follows_the_equations() {
    // i = σ(W_ii x + b_ii + W_hi h + b_hi), f, g (tanh), o likewise with their rows of the
    // weights, c' = f c + i g, h' = o tanh(c'), for each sample from zero state.
    let (model, x) = setup();
    let p = |name: &str| model.param(name).unwrap().to_vec();
    let (w_ih, w_hh, b_ih, b_hh) = (
        p("rnn.weight_ih_l0"),
        p("rnn.weight_hh_l0"),
        p("rnn.bias_ih_l0"),
        p("rnn.bias_hh_l0"),
    );
    let mut expected = Vec::new();
    for sample in x.chunks(15) {
        let (mut h, mut c) = ([0.0f64; 4], [0.0f64; 4]);
        for step in sample.chunks(3) {
            let gate = |row: usize, h: &[f64; 4]| {
                let input: f64 = (0..3).map(|j| w_ih[row * 3 + j] * step[j]).sum();
                let recurrent: f64 = (0..4).map(|j| w_hh[row * 4 + j] * h[j]).sum();
                input + b_ih[row] + recurrent + b_hh[row]
            };
            let old = h;
            for u in 0..4 {
                let i = sigmoid(gate(u, &old));
                let f = sigmoid(gate(4 + u, &old));
                let g = gate(8 + u, &old).tanh();
                let o = sigmoid(gate(12 + u, &old));
                c[u] = f * c[u] + i * g;
                h[u] = o * c[u].tanh();
            }
            expected.extend_from_slice(&h);
        }
    }
    let mut model = model;
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap().to_vec();
    close("output against the equations", &out, &expected);
    let trained = model.forward_train(&mut ws, &x).unwrap().to_vec();
    close("training-mode output", &trained, &expected);
}

#[test]
fn output_and_gradients_match_pytorch() {
    let (mut model, x) = setup();
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap().to_vec();
    close("output", &out, &OUT);
    // PyTorch's final hidden state is each sample's last step of the output.
    let last: Vec<f64> = out.chunks(20).flat_map(|s| s[16..].to_vec()).collect();
    close("final hidden state", &last, &HN);
    model.forward_train(&mut ws, &x).unwrap();
    let r = filled(40, |k| (0.17 * k).cos() - 0.3);
    model.backward(&mut ws, &x, &r).unwrap();
    close("d x", ws.grad_x(), &D_X);
    let grad = |name: &str| {
        let info = Seq::PARAMS.iter().find(|p| p.name == name).unwrap();
        model.grads()[info.offset..info.offset + info.len].to_vec()
    };
    close("d weight_ih_l0", &grad("rnn.weight_ih_l0"), &D_W_IH);
    close("d weight_hh_l0", &grad("rnn.weight_hh_l0"), &D_W_HH);
    close("d bias_ih_l0", &grad("rnn.bias_ih_l0"), &D_B_IH);
    close("d bias_hh_l0", &grad("rnn.bias_hh_l0"), &D_B_HH);
}

// PyTorch 2.15, float64:
//
// torch.set_default_dtype(torch.float64)
// lstm = torch.nn.LSTM(input_size=3, hidden_size=4, num_layers=1, batch_first=True)
// fill = lambda t, f: t.data.copy_(torch.tensor([f(k) for k in range(t.numel())]).view_as(t))
// fill(lstm.weight_ih_l0, lambda k: 0.5 * math.sin(0.37 * k + 0.1))
// fill(lstm.weight_hh_l0, lambda k: 0.4 * math.cos(0.23 * k + 0.2))
// fill(lstm.bias_ih_l0, lambda k: 0.1 * math.sin(0.5 * k))
// fill(lstm.bias_hh_l0, lambda k: -0.05 * math.cos(0.7 * k))
// x = torch.tensor([math.sin(0.3 * k) + 0.2 * math.cos(1.1 * k) for k in range(30)])
// x = x.view(2, 5, 3).requires_grad_()
// out, _ = lstm(x)
// r = torch.tensor([math.cos(0.17 * k) - 0.3 for k in range(40)]).view(2, 5, 4)
// (out * r).sum().backward()
//
// (The two bias gradients are equal in exact arithmetic; PyTorch's differ in the last bit of
// three entries, from the order of its sums.)

const OUT: [f64; 40] = [
    -0.04141155384495975,
    -0.1919699925568896,
    -0.12702401342636263,
    0.004039231566912073,
    -0.0708633970069848,
    -0.4461721938839416,
    -0.23103220123814935,
    0.02087976099040252,
    0.014527766008508221,
    -0.47533995870769036,
    -0.3101098109018601,
    0.0222775481295046,
    -0.006125849071583052,
    -0.20116441130734714,
    -0.2089739259939874,
    0.022641975434330653,
    -0.005894326760059155,
    -0.01493070752871023,
    0.10302150810733605,
    -0.138378739652204,
    -0.022330666482993426,
    0.043749243383576324,
    0.1651160105993221,
    -0.08916095328125749,
    -0.04872136259168672,
    0.08783053898650565,
    0.17825700052312574,
    -0.09711714717483338,
    -0.12381651476782587,
    -0.15781414657836465,
    -0.031561770925181074,
    -0.01369840997755329,
    -0.05492616394990575,
    -0.42289674977623276,
    -0.209707367235015,
    0.004262050684168382,
    -0.014750417242984652,
    -0.4968846797756224,
    -0.27980121431724936,
    0.017851834874533276,
];
const HN: [f64; 8] = [
    -0.005894326760059155,
    -0.01493070752871023,
    0.10302150810733605,
    -0.138378739652204,
    -0.014750417242984652,
    -0.4968846797756224,
    -0.27980121431724936,
    0.017851834874533276,
];
const D_X: [f64; 30] = [
    -0.09720700714305243,
    -0.15528892401089237,
    -0.19235321350713247,
    0.04068540011486824,
    -0.015876565901682748,
    -0.07028971320377835,
    0.09341573667103939,
    0.07617582761976416,
    0.04862587765711597,
    0.28133190874321434,
    0.26646244311393,
    0.2155285358410049,
    0.08632251778128928,
    0.011126633395958638,
    -0.06557518862211761,
    0.004690030660890618,
    -0.034061134053122936,
    -0.06820228406104908,
    -0.001969489007634046,
    0.021745018484753135,
    0.04251643973572211,
    -0.055355818606138155,
    -0.01926740228415992,
    0.019428766549509088,
    -0.07007108531731426,
    -0.07837789891081023,
    -0.0760766315740734,
    -0.051828058960517585,
    -0.07538875402257589,
    -0.0887459348923113,
];
const D_W_IH: [f64; 48] = [
    -0.06157891119201883,
    -0.06022339320338911,
    -0.0542586630143281,
    0.054149161110455674,
    0.04675477704295906,
    0.03750870190231471,
    0.19041799282572391,
    0.20176709078222319,
    0.19828072056462892,
    -0.05215274708396702,
    -0.06791408262843043,
    -0.07855484982809309,
    -0.02571513877283388,
    -0.025205467733124095,
    -0.023334984179805097,
    0.005840026560649896,
    -0.03959062531026929,
    -0.07860028243921391,
    0.0522725824838992,
    0.001275186181182804,
    -0.04909819238366047,
    -0.01299781150816452,
    -0.009307094545946793,
    -0.003975407228629594,
    0.8797231869118827,
    1.0276370314013996,
    1.0552794172226059,
    0.13408007477799788,
    0.24029603327450028,
    0.30687917901434225,
    0.13098318376685286,
    0.2970682634054314,
    0.41907046272211984,
    0.6316025191685128,
    0.9230459289537336,
    1.130238498674195,
    -0.05908961341084706,
    -0.05502802687430666,
    -0.04585856443729363,
    -0.13102809477496602,
    -0.1742170832228644,
    -0.19195070786247087,
    -0.03357823173479047,
    -0.06139117229733858,
    -0.07287834031146534,
    -0.03464459888935672,
    -0.04733509398768867,
    -0.05532553011738964,
];
const D_W_HH: [f64; 64] = [
    0.00031553197722520324,
    0.0009573058720974974,
    0.0031655617671195817,
    -0.0019004186223474998,
    0.006062804698999123,
    0.017507557422867068,
    0.009031489505736746,
    0.002239934079627057,
    0.004764370435198292,
    0.014164303146998694,
    0.011025575281729844,
    0.0028781172902993864,
    -0.0008810268938177034,
    -0.0069421347103829825,
    -0.006426977995376851,
    -0.0002443608676438846,
    0.0017937965606538973,
    0.007515802973956504,
    0.004905721090524808,
    -0.000891909590244826,
    0.003466875345112146,
    -0.05533374868946246,
    -0.04257666979624926,
    0.0050085961321036,
    -0.0005732829892369155,
    -0.0865768675226635,
    -0.06176995535245844,
    0.005618058464449688,
    0.0008056408851605221,
    0.011950045718791553,
    0.0075667679250728944,
    -0.0002900934267461717,
    -0.04538216833353436,
    -0.08314162020711913,
    -0.0406275227008015,
    0.009905391380074386,
    -0.011143716821099409,
    0.12182481519712374,
    0.08135982296736383,
    -0.004235053377110571,
    -0.007449028910045716,
    0.21043219264020072,
    0.15310087561866714,
    -0.01372340423540826,
    -0.002503300802716748,
    0.393195352889896,
    0.30381188508848017,
    -0.02916643237392967,
    -0.00048148887498849184,
    0.00393709970952591,
    0.007844766994331991,
    -0.0040314215008008785,
    0.017178711097754006,
    0.0384546984990441,
    0.007955045495978823,
    0.004087153195850675,
    0.016699065969654658,
    0.027777452699464425,
    0.005341574055361861,
    0.004941973792039379,
    -0.0010950450985444567,
    -0.005625725029113233,
    -0.005200404853665508,
    -0.00021528738305182007,
];
const D_B_IH: [f64; 16] = [
    0.03241974143147877,
    -0.2469086876123666,
    -0.31563594542625245,
    0.08061120380638692,
    -0.01599451490041194,
    0.1147086095862109,
    0.222068518315086,
    -0.036362837808895335,
    0.34079021761826955,
    -0.14847187696173453,
    -0.5603647331041754,
    -1.75054700208585,
    0.04773292021173671,
    -0.2787421751575684,
    -0.31807210188845114,
    0.06869371879778739,
];
const D_B_HH: [f64; 16] = [
    0.03241974143147877,
    -0.24690868761236662,
    -0.31563594542625245,
    0.08061120380638692,
    -0.01599451490041194,
    0.1147086095862109,
    0.222068518315086,
    -0.036362837808895335,
    0.34079021761826955,
    -0.1484718769617345,
    -0.5603647331041754,
    -1.75054700208585,
    0.04773292021173671,
    -0.2787421751575684,
    -0.31807210188845114,
    0.06869371879778738,
];
