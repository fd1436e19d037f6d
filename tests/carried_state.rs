//! Recurrent layers that start from given states and hand on their final ones (`h0`, `c0`,
//! `h_n`, `c_n`), which is what truncated backpropagation through time relies on: a sequence
//! cut in two, the second half starting from the states the first half ended with, gives the
//! outputs of the whole sequence, for the LSTM (h and c) and the GRU; and after a training
//! step the final states are still there to start the next batch.
//!
//! Tolerance: the models are compiled to f64 and run the same equations in the same order,
//! except that the input projection of 5 steps and of 10 may go through different product
//! kernels; 1e-12 on values of order 0.1 to 1 allows for that and nothing else (a state carried
//! wrongly, or dropped, changes the second half by 1e-2 or more).

use nnc::runtime::Model;

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
use models::{HalfGru, HalfLstm, WholeGru, WholeLstm};

const BATCH: usize = 3;

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

#[test]
fn an_lstm_carrying_its_state_across_two_halves_gives_the_whole_sequence() {
    let whole = WholeLstm::new(7);
    let mut half = HalfLstm::new(1);
    // The same parameters under the same names, in the same order.
    half.params_mut().copy_from_slice(whole.params());
    let x = sequence();
    let mut ws = whole.workspace(BATCH);
    let expected = whole.predict(&mut ws, &x).unwrap().to_vec();
    let mut hs = half.workspace(BATCH);
    let zero = vec![0.0; BATCH * 4];
    let (first, h1, c1) = half
        .predict(&mut hs, &steps(&x, 10, 3, 0), &zero, &zero)
        .unwrap();
    let (first, h1, c1) = (first.to_vec(), h1.to_vec(), c1.to_vec());
    let (second, ..) = half
        .predict(&mut hs, &steps(&x, 10, 3, 5), &h1, &c1)
        .unwrap();
    assert_close("first half", &first, &steps(&expected, 10, 4, 0));
    assert_close("second half", second, &steps(&expected, 10, 4, 5));
    // h_n is the last output of the first half.
    let last: Vec<f64> = first
        .chunks_exact(5 * 4)
        .flat_map(|s| s[4 * 4..].to_vec())
        .collect();
    assert_close("h_n", &h1, &last);
}

#[test]
fn a_gru_carrying_its_state_across_two_halves_gives_the_whole_sequence() {
    let whole = WholeGru::new(7);
    let mut half = HalfGru::new(1);
    half.params_mut().copy_from_slice(whole.params());
    let x = sequence();
    let mut ws = whole.workspace(BATCH);
    let expected = whole.predict(&mut ws, &x).unwrap().to_vec();
    let mut hs = half.workspace(BATCH);
    let zero = vec![0.0; BATCH * 4];
    let (first, h1) = half.predict(&mut hs, &steps(&x, 10, 3, 0), &zero).unwrap();
    let (first, h1) = (first.to_vec(), h1.to_vec());
    let (second, _) = half.predict(&mut hs, &steps(&x, 10, 3, 5), &h1).unwrap();
    assert_close("first half", &first, &steps(&expected, 10, 4, 0));
    assert_close("second half", second, &steps(&expected, 10, 4, 5));
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
