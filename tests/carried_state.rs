//! Recurrent layers that start from given states and hand on their final ones (`h0`, `c0`,
//! `h_n`, `c_n`), which is what truncated backpropagation through time relies on: a sequence
//! cut in two, the second half starting from the states the first half ended with, gives the
//! outputs of the whole sequence, for the LSTM (h and c) and the GRU; after a training step
//! the final states are still there to start the next batch; and an LSTM started from given
//! `(h0, c0)` matches PyTorch's `nn.LSTM(x, (h0, c0))`: its output, `(h_n, c_n)`, and the
//! gradients of the input, both initial states and `W_hh`.
//!
//! Tolerance (against PyTorch, as in `tests/recurrent.rs`): 1e-12 absolute in f64, since both
//! sides evaluate the same equations, summing in other orders.
//!
//! Tolerance (the halves): the models are compiled to f64 and run the same equations in the same order,
//! except that the input projection of 5 steps and of 10 may go through different product
//! kernels; 1e-12 on values of order 0.1 to 1 allows for that and nothing else (a state carried
//! wrongly, or dropped, changes the second half by 1e-2 or more).

use nnc::runtime::{Model, Values};

mod models {
    nnc::model! {
        #![elem = f64]
        model WholeLstm {
            input x: [10, 3];
            let out = x -> lstm enc(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
        model HalfLstm {
            input x: [5, 3];
            input h: [4];
            input c: [4];
            target y: [5, 4];
            let out = x -> lstm enc(4, h0 = h, c0 = c);
            let h1 = h_n(enc);
            let c1 = c_n(enc);
            output out, h1, c1;
            loss = mse(out, y);
            optimizer = sgd(lr = 0.1);
        }
        model WholeGru {
            input x: [10, 3];
            let out = x -> gru enc(4);
            output out;
            optimizer = sgd(lr = 0.1);
        }
        model PytorchStart {
            input x: [5, 3] requires_grad;
            input h: [4] requires_grad;
            input c: [4] requires_grad;
            let out = x -> lstm rnn(4, h0 = h, c0 = c);
            let hn = h_n(rnn);
            let cn = c_n(rnn);
            output out, hn, cn;
            optimizer = sgd(lr = 0.1);
        }
        model HalfGru {
            input x: [5, 3];
            input h: [4];
            let out = x -> gru enc(4, h0 = h);
            let h1 = h_n(enc);
            output out, h1;
            optimizer = sgd(lr = 0.1);
        }
    }
}
use models::{HalfGru, HalfLstm, PytorchStart, WholeGru, WholeLstm};

#[path = "common/pytorch_recurrent.rs"]
mod pytorch;
use pytorch::{close, filled, setup};

// More than one block of 16 samples (`RECURRENT_BLOCK`), the second one ragged.
const BATCH: usize = 19;

/// Inputs `[BATCH, 10, 3]` from a fixed formula.
fn sequence() -> Vec<f64> {
    (0..BATCH * 10 * 3)
        .map(|i| ((i * 37 % 23) as f64 / 11.0 - 1.0) * 0.9)
        .collect()
}

/// Steps `from .. from + 5` of every sample of `x` (`[BATCH, steps, width]`).
fn steps(x: &[f64], steps: usize, width: usize, from: usize) -> Vec<f64> {
    x.chunks_exact(steps * width)
        .flat_map(|s| s[from * width..(from + 5) * width].to_vec())
        .collect()
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12,
            "{what}: element {i} is {x}, {y} expected"
        );
    }
}

/// Runs `Whole` over the sequence, then `Half`, with the same parameters, over its two halves,
/// each starting from the `states` final states (outputs 1 on) the last one ended with, and
/// asserts that the halves' outputs are the whole's.
fn carried_halves<W: Model<Elem = f64>, H: Model<Elem = f64>>(states: usize) {
    let whole = W::new(7);
    let mut half = H::new(1);
    // The same parameters under the same names, in the same order.
    half.params_mut().copy_from_slice(whole.params());
    let x = sequence();
    let mut ws = whole.workspace(BATCH);
    let expected = whole
        .predict_dyn(&mut ws, &[Values::Float(&x)])
        .unwrap()
        .to_vec();
    let mut hs = half.workspace(BATCH);
    let mut carried = vec![vec![0.0; BATCH * 4]; states];
    for from in [0, 5] {
        let part = steps(&x, 10, 3, from);
        let inputs: Vec<Values<'_, f64>> = std::iter::once(&part)
            .chain(&carried)
            .map(|v| Values::Float(v))
            .collect();
        let out = half.predict_dyn(&mut hs, &inputs).unwrap().to_vec();
        assert_close(
            &format!("steps {from}.."),
            &out,
            &steps(&expected, 10, 4, from),
        );
        carried = (1..=states)
            .map(|k| H::output(&hs, k).expect("a final state").to_vec())
            .collect();
        // h_n is the last step's output.
        let last: Vec<f64> = out
            .chunks_exact(5 * 4)
            .flat_map(|s| s[4 * 4..].to_vec())
            .collect();
        assert_close("h_n", &carried[0], &last);
    }
}

#[test]
fn an_lstm_carrying_its_state_across_two_halves_gives_the_whole_sequence() {
    carried_halves::<WholeLstm, HalfLstm>(2);
}

#[test]
fn a_gru_carrying_its_state_across_two_halves_gives_the_whole_sequence() {
    carried_halves::<WholeGru, HalfGru>(1);
}

#[test]
fn the_final_states_stay_readable_after_a_training_step() {
    // Two identical models: one predicts, the other takes a training step.
    let (a, mut b) = (HalfLstm::new(3), HalfLstm::new(3));
    let x = steps(&sequence(), 10, 3, 2);
    let h: Vec<f64> = (0..BATCH * 4).map(|i| (i as f64 * 0.3).sin()).collect();
    let c: Vec<f64> = (0..BATCH * 4).map(|i| (i as f64 * 0.7).cos()).collect();
    let y = vec![0.25; BATCH * 5 * 4];
    let mut wa = a.workspace(BATCH);
    let (_, h1, c1) = a.predict(&mut wa, &x, &h, &c).unwrap();
    let mut wb = b.workspace(BATCH);
    b.train_step(&mut wb, &x, &h, &c, &y).unwrap();
    let read = |i: usize| HalfLstm::output(&wb, i).expect("an output").to_vec();
    assert_close("h_n after the step", &read(1), h1);
    assert_close("c_n after the step", &read(2), c1);
}

#[test]
fn an_lstm_from_given_states_matches_pytorch() {
    let (mut model, x) = setup::<PytorchStart>(4);
    let h0 = filled(8, |k| 0.3 * (0.9 * k + 0.4).sin());
    let c0 = filled(8, |k| 0.5 * (0.6 * k).cos());
    let inputs = [Values::Float(&x), Values::Float(&h0), Values::Float(&c0)];
    let mut ws = model.workspace(2);
    model.forward_train_dyn(&mut ws, &inputs).unwrap();
    let output = |i: usize| PytorchStart::output(&ws, i).unwrap().to_vec();
    close("output", &output(0), &H0_OUT);
    close("h_n", &output(1), &H0_HN);
    close("c_n", &output(2), &H0_CN);
    let r = filled(40, |k| (0.17 * k).cos() - 0.3);
    let a = filled(8, |k| 0.2 * (0.8 * k).sin());
    let b = filled(8, |k| 0.1 * k - 0.35);
    model.backward_dyn(&mut ws, &inputs, &[&r, &a, &b]).unwrap();
    let input_grad = |i: usize| PytorchStart::input_grad(&ws, i).unwrap().to_vec();
    close("d x", &input_grad(0), &H0_D_X);
    close("d h0", &input_grad(1), &H0_D_H0);
    close("d c0", &input_grad(2), &H0_D_C0);
    let info = PytorchStart::PARAMS
        .iter()
        .find(|p| p.name == "rnn.weight_hh_l0")
        .unwrap();
    close(
        "d weight_hh_l0",
        &model.grads()[info.offset..info.offset + info.len],
        &H0_D_W_HH,
    );
}

// PyTorch 2.15, float64, with the parameters and input of `tests/recurrent.rs`'s LSTM script:
//
// h0 = torch.tensor([0.3 * math.sin(0.9 * k + 0.4) for k in range(8)]).view(1, 2, 4).requires_grad_()
// c0 = torch.tensor([0.5 * math.cos(0.6 * k) for k in range(8)]).view(1, 2, 4).requires_grad_()
// out, (hn, cn) = lstm(x, (h0, c0))
// r = torch.tensor([math.cos(0.17 * k) - 0.3 for k in range(40)]).view(2, 5, 4)
// a = torch.tensor([0.2 * math.sin(0.8 * k) for k in range(8)]).view(1, 2, 4)
// b = torch.tensor([0.1 * k - 0.35 for k in range(8)]).view(1, 2, 4)
// ((out * r).sum() + (hn * a).sum() + (cn * b).sum()).backward()
//
// torch.autograd.gradcheck confirmed the gradients with respect to x, h0 and c0.
const H0_OUT: [f64; 40] = [
    0.07710512405439304,
    -0.13173867643793255,
    -0.11224076053175254,
    -0.04088858507677004,
    -0.02494930608035507,
    -0.4350748778798425,
    -0.23262069845659442,
    -0.0039686819143687525,
    0.031013138961195973,
    -0.4712782274026952,
    -0.3110842377155394,
    0.0022211707883880052,
    0.000926667515392367,
    -0.19695771834354328,
    -0.2078952944140882,
    0.0029362412524279267,
    -0.0028244166041292685,
    -0.012554361807525283,
    0.10455188638853487,
    -0.14761577477671342,
    -0.08235442744326336,
    -0.03506711296712463,
    0.12079947344294371,
    -0.05902968987712935,
    -0.1132096856272511,
    0.024700126835102865,
    0.17330357332078025,
    -0.07500386348237024,
    -0.18260910245451695,
    -0.19723180360857817,
    -0.025685442388319345,
    -0.0010371030323263412,
    -0.08032226448490454,
    -0.4300996795862543,
    -0.20140122000169755,
    0.01271474099380345,
    -0.023887451712791823,
    -0.4992505672495532,
    -0.27601442390423847,
    0.024035381126662012,
];
const H0_HN: [f64; 8] = [
    -0.0028244166041292685,
    -0.012554361807525283,
    0.10455188638853487,
    -0.14761577477671342,
    -0.023887451712791823,
    -0.4992505672495532,
    -0.27601442390423847,
    0.024035381126662012,
];
const H0_CN: [f64; 8] = [
    -0.011029211731330375,
    -0.03799919079032896,
    0.1738591781212061,
    -0.19700649156641198,
    -0.03171853672232953,
    -0.9270861837467388,
    -0.8998306727764404,
    0.10162404515449158,
];
const H0_D_X: [f64; 30] = [
    -0.11117560027128004,
    -0.16164251706541033,
    -0.19023187747406406,
    0.03290893115320994,
    -0.017175804250761855,
    -0.06493587512473302,
    0.0801660736931126,
    0.08136521434252936,
    0.07155195493216032,
    0.2695434388719989,
    0.2893927779004001,
    0.270074162042875,
    0.052534623203828415,
    0.009257783733805716,
    -0.03527205333436033,
    0.055388764810261615,
    0.022206756433511086,
    -0.013980832249910969,
    0.002483615397824832,
    0.04039462762691495,
    0.07283841650646673,
    -0.08517620941638904,
    -0.031510016152923245,
    0.026420909976672426,
    -0.11302356407839798,
    -0.10108073107033377,
    -0.07545709530304558,
    -0.10827775848658341,
    -0.12542605168776128,
    -0.1255985171932082,
];
const H0_D_H0: [f64; 8] = [
    -0.07779185833485243,
    -0.09497454255815924,
    -0.10715518260492234,
    -0.11369225814799575,
    0.21211375014629888,
    0.21115780764922562,
    0.19908077255582038,
    0.17651870860939559,
];
const H0_D_C0: [f64; 8] = [
    0.21120137779914153,
    0.24547923757735587,
    0.16114772497133897,
    0.013970867844938973,
    -0.3818321313177637,
    -0.2718197420225205,
    -0.15832109632221925,
    -0.1406526559398063,
];
const H0_D_W_HH: [f64; 64] = [
    -0.01069471220321729,
    -0.01514783205974007,
    -0.006440624627096841,
    0.0024753618014115297,
    0.015780790484780136,
    0.02541657742883508,
    0.006695854869905933,
    -0.006126667376085638,
    0.04473683306705638,
    0.0661553774230609,
    0.02802224001316233,
    -0.014328636641176968,
    -0.007642626952377529,
    -0.01843433648877779,
    -0.010234500399604341,
    0.00032092245068160674,
    0.0035009210784753978,
    0.022134368207988003,
    0.021751466386141553,
    0.0007925448854503771,
    0.004506693675753911,
    -0.06232649813091036,
    -0.04438516765392139,
    0.006036086185274107,
    -0.004807915962358032,
    -0.08501031010224859,
    -0.05901836705085606,
    0.0056063694471946285,
    -0.00549861315933502,
    -0.010927815651439052,
    -0.006651476067981944,
    0.003914573331293866,
    0.03778988244913043,
    0.1737053679393666,
    0.1462040992910118,
    -0.005736391064860147,
    0.002489359940253781,
    0.20504322374952438,
    0.15127342776832162,
    0.0010923314210712488,
    -0.01901320725725794,
    0.21057553845098176,
    0.1790466731993445,
    -0.010881629514809829,
    0.05522183012184581,
    0.45736482861872363,
    0.3624841059284601,
    -0.07542059585017152,
    -0.024283709417502478,
    -0.018732499257944676,
    0.006991647820896429,
    0.0038896495304202063,
    0.001370381978044238,
    0.012819791609191,
    -0.0026255837710097048,
    0.004581068102771851,
    0.027135549476929775,
    0.025851308148830167,
    -0.000984654312186477,
    -0.003790177592896974,
    -0.006207570302217961,
    -0.01929422677824675,
    -0.013518270494966976,
    0.0009100784463494605,
];

#[test]
fn initial_state_gradients_do_not_depend_on_the_other_samples() {
    // 19 samples cross a block of 16 (`RECURRENT_BLOCK`): each sample's gradients with respect
    // to its input and initial states must be those it gets alone, at batch 1.
    let (mut model, _) = setup::<PytorchStart>(4);
    let x = filled(BATCH * 15, |k| (0.41 * k).sin());
    let h0 = filled(BATCH * 4, |k| 0.3 * (0.9 * k + 0.4).sin());
    let c0 = filled(BATCH * 4, |k| 0.5 * (0.6 * k).cos());
    let d_out = filled(BATCH * 20, |k| (0.17 * k).cos() - 0.3);
    let d_h = filled(BATCH * 4, |k| 0.2 * (0.8 * k).sin());
    let d_c = filled(BATCH * 4, |k| 0.1 * (k % 8.0) - 0.35);
    let grads = |model: &mut PytorchStart, range: std::ops::Range<usize>| {
        let n = range.len();
        let part = |v: &[f64], per: usize| v[range.start * per..range.end * per].to_vec();
        let (x, h0, c0) = (part(&x, 15), part(&h0, 4), part(&c0, 4));
        let inputs = [Values::Float(&x), Values::Float(&h0), Values::Float(&c0)];
        let mut ws = model.workspace(n);
        model.forward_train_dyn(&mut ws, &inputs).unwrap();
        let seeds = [part(&d_out, 20), part(&d_h, 4), part(&d_c, 4)];
        let seeds = [&seeds[0][..], &seeds[1][..], &seeds[2][..]];
        model.backward_dyn(&mut ws, &inputs, &seeds).unwrap();
        (0..3)
            .map(|i| PytorchStart::input_grad(&ws, i).unwrap().to_vec())
            .collect::<Vec<_>>()
    };
    let all = grads(&mut model, 0..BATCH);
    for s in 0..BATCH {
        let alone = grads(&mut model, s..s + 1);
        for (i, per) in [15, 4, 4].into_iter().enumerate() {
            let what = format!("sample {s}, gradient of input {i}");
            assert_close(&what, &all[i][s * per..(s + 1) * per], &alone[i]);
        }
    }
}
