//! Values of the element-wise and layout kernels and the statistics of dropout masks. Their
//! gradients are checked in `gradients.rs`.

use nnc_runtime::kernels::{
    accumulate, add, add_assign, copy_cols, dropout_mask, mul, mul_inplace, scale, slice_cols, sub,
};
use nnc_runtime::Exec;
use nnc_runtime::{Mode, Rng};

#[test]
fn arithmetic() {
    let (a, b) = ([1.0f32, 2.0, -3.0], [0.5f32, -1.0, 2.0]);
    let mut out = [f32::NAN; 3];
    add(Exec::serial(), &a, &b, &mut out);
    assert_eq!(out, [1.5, 1.0, -1.0]);
    sub(Exec::serial(), &a, &b, &mut out);
    assert_eq!(out, [0.5, 3.0, -5.0]);
    mul(Exec::serial(), &a, &b, &mut out);
    assert_eq!(out, [0.5, -2.0, -6.0]);
    scale(Exec::serial(), &a, 2.0, &mut out);
    assert_eq!(out, [2.0, 4.0, -6.0]);
    accumulate(Exec::serial(), &a, &mut out);
    assert_eq!(out, [3.0, 6.0, -9.0]);
    add_assign(Exec::serial(), &mut out, &b);
    assert_eq!(out, [3.5, 5.0, -7.0]);
    mul_inplace(Exec::serial(), &b, &mut out);
    assert_eq!(out, [1.75, -5.0, -14.0]);
}

#[test]
#[should_panic(expected = "sub: operand lengths [2, 2, 3] differ")]
fn arithmetic_rejects_mismatched_lengths() {
    sub(Exec::serial(), &[1.0f64, 2.0], &[1.0, 2.0], &mut [0.0; 3]);
}

#[test]
fn concatenate_and_split_columns() {
    // Rows (1, 2) and (3, 4) beside rows (5) and (6), then read back.
    let (x1, x2) = ([1.0f64, 2.0, 3.0, 4.0], [5.0f64, 6.0]);
    let mut y = [0.0; 6];
    copy_cols(Exec::serial(), 2, &x1, 2, &mut y, 3, 0);
    copy_cols(Exec::serial(), 2, &x2, 1, &mut y, 3, 2);
    assert_eq!(y, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let mut back = [0.0; 2];
    slice_cols(Exec::serial(), 2, &y, 3, 2, &mut back, 1);
    assert_eq!(back, x2);
    let mut middle = [0.0; 4];
    slice_cols(Exec::serial(), 2, &y, 3, 1, &mut middle, 2);
    assert_eq!(middle, [2.0, 5.0, 4.0, 6.0]);
    // Empty parts and empty batches are no-ops.
    copy_cols(Exec::serial(), 2, &[], 0, &mut y, 3, 3);
    slice_cols::<f64>(Exec::serial(), 0, &[], 3, 0, &mut [], 2);
    assert_eq!(y, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
}

#[test]
#[should_panic(expected = "copy_cols: columns 2..4 do not fit in a row of 3")]
fn copy_cols_rejects_columns_past_the_row() {
    copy_cols(Exec::serial(), 1, &[1.0f32, 2.0], 2, &mut [0.0; 3], 3, 2);
}

#[test]
fn dropout_masks_have_the_right_statistics() {
    let n = 100_000;
    for rate in [0.1, 0.3, 0.5] {
        let mut mask = vec![0.0f64; n];
        dropout_mask(
            Exec::serial(),
            Mode::Train,
            Some(&mut Rng::new(17)),
            rate,
            &mut mask,
        );
        let keep = 1.0 / (1.0 - rate);
        assert!(mask.iter().all(|&m| m == 0.0 || m == keep), "rate {rate}");
        // Four standard errors: the mean of n masks has variance (1/(1-rate) - 1)/n, the fraction
        // of zeros rate·(1 - rate)/n.
        let mean = mask.iter().sum::<f64>() / n as f64;
        let sigma_mean = ((keep - 1.0) / n as f64).sqrt();
        assert!(
            (mean - 1.0).abs() < 4.0 * sigma_mean,
            "rate {rate}: mean {mean}"
        );
        let zeros = mask.iter().filter(|&&m| m == 0.0).count() as f64 / n as f64;
        let sigma_zeros = (rate * (1.0 - rate) / n as f64).sqrt();
        assert!(
            (zeros - rate).abs() < 4.0 * sigma_zeros,
            "rate {rate}: zeros {zeros}"
        );
    }
}

#[test]
fn dropout_masks_are_reproducible() {
    let draw = |seed| {
        let mut mask = vec![0.0f32; 64];
        dropout_mask(
            Exec::serial(),
            Mode::Train,
            Some(&mut Rng::new(seed)),
            0.5,
            &mut mask,
        );
        mask
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
    assert!(draw(3).iter().all(|&m| m == 0.0 || m == 2.0));
}

#[test]
fn dropout_in_inference_or_at_rate_zero_keeps_everything() {
    let mut mask = [f32::NAN; 5];
    dropout_mask(Exec::serial(), Mode::Infer, None, 0.5, &mut mask);
    assert_eq!(mask, [1.0; 5]);
    // Rate 0 draws nothing: the generator continues exactly where it was.
    let mut rng = Rng::new(9);
    let mut mask = [f64::NAN; 5];
    dropout_mask(Exec::serial(), Mode::Train, Some(&mut rng), 0.0, &mut mask);
    assert_eq!(mask, [1.0; 5]);
    assert_eq!(rng.next_u64(), Rng::new(9).next_u64());
}

#[test]
#[should_panic(expected = "dropout_mask: rate 1 is outside [0, 1)")]
fn dropout_rejects_rate_one() {
    dropout_mask(
        Exec::serial(),
        Mode::Train,
        Some(&mut Rng::new(1)),
        1.0,
        &mut [0.0f32; 2],
    );
}
