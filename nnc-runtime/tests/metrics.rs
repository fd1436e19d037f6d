//! Accuracy counts on small hand-checked batches, and combining per-batch `Metrics` into an
//! epoch's figure.

use nnc_runtime::kernels::{argmax_correct, argmax_match, threshold_correct};
use nnc_runtime::Exec;
use nnc_runtime::Metrics;

#[test]
fn argmax_against_labels() {
    // Row 0's maximum is class 1; row 1 ties classes 0 and 1, and the first maximum wins.
    let p = [0.1f32, 0.7, 0.2, 0.5, 0.5, 0.0];
    assert_eq!(argmax_correct(Exec::serial(), 2, 3, &p, &[1, 1], None), 1);
    assert_eq!(argmax_correct(Exec::serial(), 2, 3, &p, &[1, 0], None), 2);
    assert_eq!(argmax_correct(Exec::serial(), 2, 3, &p, &[0, 2], None), 0);
    // An ignored row is not counted even where its label is the argmax.
    assert_eq!(
        argmax_correct(Exec::serial(), 2, 3, &p, &[1, 0], Some(1)),
        1
    );
    // Logits work the same way, negative ones included.
    assert_eq!(
        argmax_correct(Exec::serial(), 1, 3, &[-3.0f64, -1.0, -2.0], &[1], None),
        1
    );
    assert_eq!(
        argmax_correct::<f64>(Exec::serial(), 0, 3, &[], &[], None),
        0
    );
}

#[test]
fn argmax_against_float_targets() {
    let p = [0.1f64, 0.7, 0.2, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6];
    // One-hot targets for classes 1, 0 and 0; then soft targets peaking at 1, 2 and 2.
    let one_hot = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    assert_eq!(argmax_match(Exec::serial(), 3, 3, &p, &one_hot), 2);
    let soft = [0.2, 0.5, 0.3, 0.3, 0.3, 0.4, 0.1, 0.1, 0.8];
    assert_eq!(argmax_match(Exec::serial(), 3, 3, &p, &soft), 2);
}

#[test]
fn binary_accuracy() {
    let t = [0.0f32, 1.0, 1.0, 0.0];
    // Probabilities against 0.5: right, right, wrong (0.5 is not above 0.5), wrong.
    assert_eq!(
        threshold_correct(Exec::serial(), &[0.2, 0.6, 0.5, 0.9], &t, 0.5),
        2
    );
    // Logits against 0.
    assert_eq!(
        threshold_correct(Exec::serial(), &[-1.0, 2.0, 0.0, 3.0], &t, 0.0),
        2
    );
    assert_eq!(
        threshold_correct(Exec::serial(), &[-1.0, 2.0, 0.1, -3.0], &t, 0.0),
        4
    );
    // Soft targets count as 1 above 0.5.
    assert_eq!(
        threshold_correct(Exec::serial(), &[0.9f64, 0.1], &[0.7, 0.3], 0.5),
        2
    );
}

#[test]
fn metrics_merge_into_an_epoch_figure() {
    // Batches of 10 and 30 samples with mean losses 0.5 and 1.0: the epoch's mean over all 40
    // samples is (10·0.5 + 30·1.0)/40 = 0.875, not the unweighted 0.75.
    let mut epoch = Metrics::<f32>::default();
    assert_eq!(epoch.accuracy(), None);
    epoch.merge(&Metrics::new(0.5, 10, 7, 10));
    assert_eq!(epoch.loss, 0.5);
    epoch.merge(&Metrics::new(1.0, 30, 15, 30));
    assert_eq!(epoch.loss, 0.875);
    assert_eq!((epoch.correct, epoch.scored, epoch.samples), (22, 40, 40));
    assert_eq!(epoch.loss_sum, 35.0);
    assert_eq!(epoch.accuracy(), Some(0.55));
    // A figure without accuracy (a regression) scores nothing.
    let regression = Metrics::new(2.0f64, 4, 0, 0);
    assert_eq!(regression.accuracy(), None);
    // Merging an empty figure changes nothing.
    let before = epoch;
    epoch.merge(&Metrics::default());
    assert_eq!(epoch, before);
}
