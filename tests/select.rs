//! `select(x, index)` reads each padded sequence at its own last real step: an LSTM over
//! sequences padded to 6 steps, read at index `len − 1`, gives what the same layer gives over
//! just the first `len` steps, whatever the padding holds; and the gradient reaches only the
//! steps up to the one selected.
//!
//! Tolerance: f64, the same equations in the same order except for the input projection's
//! product over more rows; 1e-12 on values of order 0.1 (a wrong row differs by 1e-2 or more).

use nnc::runtime::{Model, Values};

mod models {
    nnc::model! {
        #![elem = f64]
        model Padded {
            input x: [6, 3] requires_grad;
            input last: [1] ids(6);
            let states = x -> lstm enc(4);
            let h = select(states, last);
            output h;
            optimizer = sgd(lr = 0.1);
        }
        model Short {
            input x: [4, 3];
            let h = x -> lstm enc(4, return_sequences = false);
            output h;
            optimizer = sgd(lr = 0.1);
        }
    }
}
use models::{Padded, Short};

#[test]
fn select_reads_each_padded_sequence_at_its_last_real_step() {
    let short = Short::new(5);
    let mut padded = Padded::new(9);
    padded.params_mut().copy_from_slice(short.params());
    // Two samples of 4 real steps, padded with different garbage.
    let real: Vec<f64> = (0..2 * 4 * 3).map(|k| (0.37 * k as f64).sin()).collect();
    let mut x = Vec::new();
    for (s, sample) in real.chunks(12).enumerate() {
        x.extend_from_slice(sample);
        x.extend((0..6).map(|k| 10.0 * (s as f64 + 1.0) * (k as f64 - 2.5)));
    }
    let mut ws = short.workspace(2);
    let expected = short.predict(&mut ws, &real).unwrap().to_vec();
    let mut wp = padded.workspace(2);
    let got = padded.predict(&mut wp, &x, &[3, 3]).unwrap().to_vec();
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12,
            "element {i}: {a} against {b} unpadded"
        );
    }
    // No gradient reaches the padding: d x is zero after the selected step.
    let inputs = [Values::Float(&x), Values::Ids(&[3, 1])];
    padded.forward_train_dyn(&mut wp, &inputs).unwrap();
    padded.backward_dyn(&mut wp, &inputs, &[&[1.0; 8]]).unwrap();
    let dx = Padded::input_grad(&wp, 0).unwrap().to_vec();
    for (s, last) in [(0, 3), (1, 1)] {
        let sample = &dx[s * 18..(s + 1) * 18];
        assert!(
            sample[..(last + 1) * 3].iter().any(|v| *v != 0.0),
            "sample {s}: no gradient"
        );
        assert!(
            sample[(last + 1) * 3..].iter().all(|v| *v == 0.0),
            "sample {s}: gradient past its end"
        );
    }
    // An index out of range is an error in the backward pass too, not a panic.
    padded.forward_train_dyn(&mut wp, &inputs).unwrap();
    let bad = [Values::Float(&x), Values::Ids(&[3, 6])];
    let err = padded
        .backward_dyn(&mut wp, &bad, &[&[1.0; 8]])
        .unwrap_err();
    assert!(err.to_string().contains("last"), "{err}");
}
