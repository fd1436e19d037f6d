//! The recurrent layers against PyTorch's `nn.LSTM` and `nn.RNN` (tanh and relu;
//! `input_size = 3, hidden_size = 4, batch_first`, zero initial state), with numbers PyTorch
//! 2.15 printed in float64 for parameters and inputs filled by fixed formulas (the script is in
//! the comment above the constants): the output at every step, and the gradients of
//! `L = Σ out ⊙ r` with respect to the input and all four parameters, which PyTorch's
//! `gradcheck` confirmed by finite differences. Also the LSTM's output against its equations
//! written out naively here, and a recurrent model that diverges without gradient clipping and
//! learns with it.
//!
//! Tolerance: the models are compiled to f64; both sides evaluate the same equations, summing
//! in another order, so values agree to about 1e-15; 1e-12 (absolute, on values of order 0.01
//! to 1) is far below what a wrong gate order, sign or time shift gives (1e-2 or more).

use nnc::runtime::{Model, Values};

mod exploding {
    // A relu RNN over 24 steps, trained with and without clipping (see
    // `clipping_keeps_a_recurrent_model_from_exploding`).
    nnc::model! {
        model Unclipped {
            input x: [24, 2];
            target y: [1];
            let h = x -> rnn rnn(8, nonlinearity = relu, return_sequences = false) -> dense out(1);
            loss = mse(h, y);
            optimizer = sgd(lr = 1.0);
        }
        model Clipped {
            input x: [24, 2];
            target y: [1];
            let h = x -> rnn rnn(8, nonlinearity = relu, return_sequences = false) -> dense out(1);
            loss = mse(h, y);
            optimizer = sgd(lr = 1.0, clip_grad_norm = 1.0);
        }
    }
}

mod fixture {
    nnc::model! {
        #![elem = f64]
        model Seq {
            input x: [5, 3] requires_grad;
            let out = x -> lstm rnn(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
        model Tanh {
            input x: [5, 3] requires_grad;
            let out = x -> rnn rnn(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
        model Relu {
            input x: [5, 3] requires_grad;
            let out = x -> rnn rnn(4, nonlinearity = relu);
            output out;
            optimizer = sgd(lr = 0.1);
        }
    }
}
use fixture::{Relu, Seq, Tanh};

#[path = "common/pytorch_recurrent.rs"]
mod pytorch;
use pytorch::{close, matches_pytorch, setup};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn lstm_output_follows_the_equations() {
    // i = σ(W_ii x + b_ii + W_hi h + b_hi), f, g (tanh), o likewise with their rows of the
    // weights, c' = f c + i g, h' = o tanh(c'), for each sample from zero state.
    let (mut model, x) = setup::<Seq>(4);
    let p = |name: &str| model.param(name).unwrap().to_vec();
    let (w_ih, w_hh) = (p("rnn.weight_ih_l0"), p("rnn.weight_hh_l0"));
    let (b_ih, b_hh) = (p("rnn.bias_ih_l0"), p("rnn.bias_hh_l0"));
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
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap().to_vec();
    close("output against the equations", &out, &expected);
    let trained = model.forward_train(&mut ws, &x).unwrap().to_vec();
    close("training-mode output", &trained, &expected);
}

#[test]
fn lstm_matches_pytorch() {
    matches_pytorch::<Seq>(4, [&OUT, &D_X, &D_W_IH, &D_W_HH, &D_B_IH, &D_B_HH]);
    // PyTorch's final hidden state is each sample's last step of the output.
    let (model, x) = setup::<Seq>(4);
    let mut ws = model.workspace(2);
    let out = model.predict(&mut ws, &x).unwrap();
    let last: Vec<f64> = out.chunks(20).flat_map(|s| s[16..].to_vec()).collect();
    close("final hidden state", &last, &HN);
}

#[test]
fn rnn_matches_pytorch() {
    let tanh = [
        &TANH_OUT[..],
        &TANH_D_X,
        &TANH_D_W_IH,
        &TANH_D_W_HH,
        &TANH_D_B_IH,
        &TANH_D_B_HH,
    ];
    matches_pytorch::<Tanh>(1, tanh);
    let relu = [
        &RELU_OUT[..],
        &RELU_D_X,
        &RELU_D_W_IH,
        &RELU_D_W_HH,
        &RELU_D_B_IH,
        &RELU_D_B_HH,
    ];
    matches_pytorch::<Relu>(1, relu);
}

/// Trains a relu RNN whose recurrent weight starts at 0.95 times the identity (the state
/// carries 95% of itself into the next step) for 100 steps of SGD at a learning rate of 1 on
/// the sum of a sequence's first feature; returns the loss before and after.
fn train_recurrent<M: Model<Elem = f32>>() -> (f32, f32) {
    let mut model = M::new(3);
    let eye: Vec<f32> = (0..64)
        .map(|k| if k % 9 == 0 { 0.95 } else { 0.0 })
        .collect();
    model
        .param_mut("rnn.weight_hh_l0")
        .unwrap()
        .copy_from_slice(&eye);
    let mut rng = nnc::runtime::Rng::new(11);
    let batch = 16;
    let mut ws = model.workspace(batch);
    let x: Vec<f32> = (0..batch * 48)
        .map(|_| rng.uniform(0.0, 1.0) as f32)
        .collect();
    let y: Vec<f32> = x
        .chunks(48)
        .map(|s| s.iter().step_by(2).sum::<f32>() / 12.0)
        .collect();
    let inputs = [Values::Float(&x)];
    let targets = [Values::Float(&y)];
    let first = model.evaluate_dyn(&mut ws, &inputs, &targets).unwrap().loss;
    for _ in 0..100 {
        model.train_step_dyn(&mut ws, &inputs, &targets).unwrap();
    }
    let last = model.evaluate_dyn(&mut ws, &inputs, &targets).unwrap().loss;
    (first, last)
}

#[test]
fn clipping_keeps_a_recurrent_model_from_exploding() {
    // At a learning rate of 1 the gradients summed back through the 24 steps throw the
    // unclipped model's parameters off (its loss 11.1 ends near 32, and NaN at 3), while with
    // every update's gradient norm clipped to 1 the same model learns (to about 0.01).
    let (first, last) = train_recurrent::<exploding::Unclipped>();
    println!("without clipping: loss {first} -> {last}");
    assert!(
        last.is_nan() || last > first,
        "without clipping the loss went {first} -> {last}"
    );
    let (first, last) = train_recurrent::<exploding::Clipped>();
    println!("with clipping: loss {first} -> {last}");
    assert!(
        last < first / 100.0,
        "with clipping the loss went {first} -> {last}"
    );
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

// nn.RNN with the same formulas (weight rows 4 instead of 16), nonlinearity tanh and relu; no
// relu pre-activation lies within 1e-6 of its kink (the nearest is 0.024 away).
const TANH_OUT: [f64; 40] = [
    0.21064944261254762,
    0.465233035898102,
    0.24619903264051896,
    -0.2098464189771154,
    0.7050320095246432,
    0.8727776588940597,
    0.35107967112801336,
    -0.7626971099994964,
    0.7231634104802648,
    0.9069052570028351,
    0.4873758030393979,
    -0.7732637684637732,
    0.5189915277550131,
    0.449527162554368,
    -0.03811973444187431,
    -0.48307919160908197,
    -0.3708089580107044,
    -0.6638130905553089,
    -0.24310669201920102,
    0.5648038675982828,
    -0.5285638163303448,
    -0.8662769089032667,
    -0.513097010922567,
    0.7070209228788277,
    -0.7226521291185158,
    -0.79122006413046,
    -0.10034648143073233,
    0.8092018087346656,
    -0.0661570881206819,
    0.27280620910430897,
    0.2398914913053562,
    0.0276296416654662,
    0.5579640762687017,
    0.8309203508859677,
    0.42130909507411873,
    -0.6474825293539704,
    0.7743763443599305,
    0.9184131790361042,
    0.433332676885357,
    -0.8233803473348092,
];
const TANH_D_X: [f64; 30] = [
    0.4320965544143141,
    0.4109512700340151,
    0.33418565911417,
    0.15046394598831064,
    0.14949351873084438,
    0.1282898450189576,
    -0.06209161244692028,
    -0.026992650224478217,
    0.011759640577600454,
    -0.44198478891810483,
    -0.3884913972540769,
    -0.2824175174672411,
    -0.7052846515819191,
    -0.5877450171409151,
    -0.39065685186640603,
    -0.39817085405822555,
    -0.40214324703587995,
    -0.35168743806648184,
    -0.4063744346237454,
    -0.37736095307922973,
    -0.2972734368156976,
    -0.12262209360296263,
    -0.18433686880868125,
    -0.22110251358448857,
    0.15027838257777293,
    0.10166871560122706,
    0.0392986649175608,
    0.23916405164249618,
    0.17522626001754704,
    0.08757241612276871,
];
const TANH_D_W_IH: [f64; 12] = [
    2.27122194766073,
    2.679460186985172,
    2.8041860891675876,
    0.9588103230108962,
    1.3245892281682055,
    1.5135822062654962,
    2.3465594582247693,
    3.029913040126772,
    3.319530593186041,
    1.1003217504975271,
    1.6331900479739176,
    1.9600144664907344,
];
const TANH_D_W_HH: [f64; 16] = [
    -0.2747333972725192,
    0.0997219117386422,
    0.28869606919726964,
    0.11730988325422709,
    -0.4051615106576876,
    -0.24175122995977483,
    0.040467073704001294,
    0.320633873868948,
    -0.4572708718328775,
    0.05293445645688699,
    0.42100715286530094,
    0.2652923533604491,
    -0.7019838786738115,
    -0.5304578508406215,
    0.022042099773828372,
    0.6466379881090297,
];
const TANH_D_B_IH: [f64; 4] = [
    -1.9218854417082838,
    -1.1978609856339206,
    -1.7521598655095854,
    -0.9371228808539606,
];
const TANH_D_B_HH: [f64; 4] = [
    -1.9218854417082836,
    -1.1978609856339206,
    -1.7521598655095856,
    -0.9371228808539606,
];
const RELU_OUT: [f64; 40] = [
    0.21385084796135073,
    0.5039692533942168,
    0.2513625298598486,
    0.0,
    0.9470387470888677,
    1.3286656776276065,
    0.2775401538907092,
    0.0,
    1.343654593525186,
    1.5199105372990436,
    0.1154417521255956,
    0.0,
    1.1182385123459782,
    0.5740290707392273,
    0.0,
    0.0,
    0.024495328077509204,
    0.0,
    0.0,
    0.17090688176761482,
    0.0,
    0.0,
    0.0,
    0.8812018912500568,
    0.0,
    0.0,
    0.0,
    0.31246215899133095,
    0.41136940734455035,
    0.5218523121910048,
    0.06020315167548969,
    0.0,
    0.8438877331458841,
    1.2994191546015221,
    0.36650818446330236,
    0.0,
    1.4592937905244021,
    1.6085022492695082,
    0.07186372102262473,
    0.0,
];
const RELU_D_X: [f64; 30] = [
    0.6265676601871474,
    0.6988601702939538,
    0.6765652348527388,
    0.24923664981036037,
    0.269602144236413,
    0.25347825320089995,
    -0.541520443033,
    -0.5549282618515956,
    -0.49322914371473703,
    -0.4192117415538006,
    -0.5722476438375826,
    -0.647832512063001,
    0.1238003851766104,
    0.12196450599015984,
    0.10362130307930345,
    0.12200570826157407,
    0.2624592364529261,
    0.36739013824231215,
    0.06557318123998535,
    0.1410613267629897,
    0.19745748345722192,
    0.058589046864606455,
    0.046548709024248645,
    0.028208221787324343,
    0.5291496035496861,
    0.576157416499819,
    0.5451850260033272,
    0.6123061627064744,
    0.6548131459582385,
    0.6086942417718881,
];
const RELU_D_W_IH: [f64; 12] = [
    1.0820223380087377,
    2.0805284123446675,
    2.7922366295191634,
    0.606240849133851,
    1.1198656909994753,
    1.4697523345242296,
    0.653825145463354,
    1.0936440587040217,
    1.3725569134096223,
    1.6265053997081238,
    2.0303482588725377,
    2.222317388688133,
];
const RELU_D_W_HH: [f64; 16] = [
    -1.9057429857584764,
    -1.1018879521130143,
    0.1370690726519769,
    -9.115687855209034e-05,
    -0.7555989319734846,
    -0.6551261964082977,
    0.10740666489515423,
    0.016512125354319087,
    0.25266128493277756,
    0.4573937972346376,
    0.17247145030533298,
    0.028916829681687416,
    -1.4493429143676808,
    -0.7439959875568629,
    0.0,
    -0.4063149622349997,
];
const RELU_D_B_IH: [f64; 4] = [
    -0.02030183141607922,
    0.9934656940882977,
    1.6138564157779993,
    -2.615095543981199,
];
const RELU_D_B_HH: [f64; 4] = [
    -0.02030183141607933,
    0.9934656940882975,
    1.6138564157779993,
    -2.615095543981199,
];
