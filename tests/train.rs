//! The training workflow end to end, through generated models: `fit` (determinism, partial
//! batches, validation, schedules, early stopping, callbacks), `evaluate`, checkpoints of a
//! generated model, and the examples' accuracy bars with fewer epochs. Tests that need
//! `../shared/data` say why they skip when it is absent; those on the repository's own data
//! never skip.

use nnc::runtime::schedule::StepDecay;
use nnc::train::checkpoint::{self, SaveOptions};
use nnc::train::{
    evaluate, fit, fit_with, predict, Column, Control, Dataset, EarlyStopping, Epoch, FitOptions,
    Validation, Verbosity,
};

// Both digits examples load `examples/support/digits.rs`, each being a program of its own.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../examples/digits_cnn.rs"]
mod digits_cnn_example;
#[allow(dead_code)]
#[path = "../examples/digits.rs"]
mod digits_example;
#[allow(dead_code)]
#[path = "../examples/gan.rs"]
mod gan_example;
#[allow(dead_code)]
#[path = "../examples/sine.rs"]
mod sine_example;

#[path = "../examples/char_mlp.rs"]
mod char_mlp_example;

#[path = "../examples/char_lstm.rs"]
mod char_lstm_example;
mod keras {
    nnc::include_model!("tests/fixtures/ok/keras_iris.nnc");
    nnc::include_model!("tests/fixtures/ok/keras_mnist.nnc");
}

/// Two noisy blobs in four dimensions, one per class, as one-hot targets for KerasIris's three
/// outputs (the third class is never used).
fn blobs(n: usize) -> Dataset<f32> {
    let mut rng = nnc::runtime::Rng::new(11);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = i % 2;
        for _ in 0..4 {
            x.push(if class == 0 { -1.0 } else { 1.0 } + rng.normal::<f32>(0.0, 0.5));
        }
        y.extend_from_slice(if class == 0 {
            &[1.0, 0.0, 0.0]
        } else {
            &[0.0, 1.0, 0.0]
        });
    }
    Dataset::supervised(x, &[4], Column::float(y, &[3])).unwrap()
}

fn quiet<'a>(epochs: usize, batch_size: usize) -> FitOptions<'a, f32> {
    FitOptions {
        epochs,
        batch_size,
        verbosity: Verbosity::Quiet,
        ..FitOptions::default()
    }
}

#[test]
fn fit_is_deterministic_and_converges() {
    let data = blobs(50);
    let run = || {
        let mut model = keras::KerasIris::new(5);
        fit(&mut model, &data, &quiet(20, 8)).unwrap()
    };
    let (a, b) = (run(), run());
    let losses = |h: &[Epoch]| h.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b), "same seed, same loss curve");
    assert!(a[19].loss < a[0].loss / 4.0, "{:?}", losses(&a));
    assert_eq!(a[19].accuracy, Some(1.0));
}

#[test]
fn a_batch_size_beyond_the_data_sizes_the_workspace_from_the_data() {
    // A workspace for 2^40 samples would need terabytes; the data has 20 samples.
    let data = blobs(20);
    let mut model = keras::KerasIris::new(5);
    let history = fit(&mut model, &data, &quiet(2, 1 << 40)).unwrap();
    assert_eq!(history.len(), 2);
    assert!(evaluate(&model, &data, 1 << 40).is_ok());
}

#[test]
fn an_impossible_workspace_is_an_error() {
    let model = keras::KerasIris::new(5);
    for capacity in [usize::MAX, 1 << 50] {
        let e = model.try_workspace_with_threads(capacity, 1).err().unwrap();
        assert!(
            e.to_string().starts_with("cannot allocate the arena"),
            "{e}"
        );
    }
    assert!(model.try_workspace_with_threads(8, 1).is_ok());
}

#[test]
fn the_last_partial_batch_is_trained_unless_dropped() {
    // 50 samples in batches of 16: three full batches and one of 2.
    let data = blobs(50);
    let mut seen = Vec::new();
    let mut count = |e: &Epoch, m: &mut keras::KerasIris| {
        seen.push((e.epoch, m.optimizer().steps()));
        Ok(Control::Continue)
    };
    let mut model = keras::KerasIris::new(5);
    fit_with(&mut model, &data, &quiet(2, 16), &mut [&mut count]).unwrap();
    assert_eq!(seen, vec![(1, 4), (2, 8)]);
    let mut model = keras::KerasIris::new(5);
    let options = FitOptions {
        drop_last: true,
        ..quiet(2, 16)
    };
    fit(&mut model, &data, &options).unwrap();
    assert_eq!(model.optimizer().steps(), 6);
}

#[test]
fn validation_schedules_early_stopping_and_callbacks() {
    let data = blobs(60);
    let schedule = StepDecay {
        base: 1e-2,
        step_size: 2,
        gamma: 0.5,
    };
    let mut model = keras::KerasIris::new(5);
    let options = FitOptions {
        validation: Validation::Split(0.25),
        schedule: Some(&schedule),
        early_stopping: Some(EarlyStopping {
            patience: 2,
            min_delta: 1.0,
            restore_best: true,
        }),
        ..quiet(10, 8)
    };
    let history = fit(&mut model, &data, &options).unwrap();
    // A min_delta of 1.0 is never reached after the first epoch: stop after 1 + 2 epochs.
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|e| e.validation.is_some()));
    let rates: Vec<f64> = history.iter().map(|e| e.learning_rate).collect();
    // The model keeps its learning rate in f32.
    let expected: Vec<f64> = [1e-2f32, 1e-2, 5e-3].iter().map(|&r| r as f64).collect();
    assert_eq!(rates, expected);
    // A callback can stop training too.
    let mut stop = |e: &Epoch, _: &mut keras::KerasIris| {
        Ok(if e.epoch == 2 {
            Control::Stop
        } else {
            Control::Continue
        })
    };
    let mut model = keras::KerasIris::new(5);
    let history = fit_with(&mut model, &data, &quiet(10, 8), &mut [&mut stop]).unwrap();
    assert_eq!(history.len(), 2);
}

#[test]
fn data_that_does_not_fit_the_model_is_an_error() {
    let mut model = keras::KerasIris::new(5);
    let wrong =
        Dataset::supervised(vec![0.0f32; 10], &[5], Column::float(vec![0.0; 6], &[3])).unwrap();
    let err = fit(&mut model, &wrong, &quiet(1, 4)).unwrap_err();
    assert!(
        err.to_string().contains("takes float values of shape [4]"),
        "{err}"
    );
    let labels = Dataset::supervised(
        vec![0.0f32; 8],
        &[4],
        Column::labels(vec![0, 1], 3).unwrap(),
    )
    .unwrap();
    let err = fit(&mut model, &labels, &quiet(1, 4)).unwrap_err();
    assert!(err.to_string().contains("target `species`"), "{err}");
    let options = FitOptions {
        validation: Validation::Split(1.5),
        ..quiet(1, 4)
    };
    assert!(fit(&mut model, &blobs(8), &options).is_err());
}

#[test]
fn a_checkpoint_of_a_generated_model_reproduces_its_predictions() {
    let data = blobs(40);
    let mut model = keras::KerasIris::new(5);
    fit(&mut model, &data, &quiet(3, 8)).unwrap();
    let dir = std::env::temp_dir().join(format!("nnc-train-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("iris.safetensors");
    checkpoint::save(
        &model,
        &path,
        &SaveOptions {
            optimizer: true,
            ..SaveOptions::default()
        },
    )
    .unwrap();
    let mut restored = keras::KerasIris::new(99);
    let loaded = checkpoint::load(&mut restored, &path).unwrap();
    assert_eq!(loaded.steps, Some(15));
    assert_eq!(
        predict(&model, &data, 16).unwrap(),
        predict(&restored, &data, 16).unwrap()
    );
    // Training goes on identically from the restored optimizer state.
    fit(&mut model, &data, &quiet(1, 8)).unwrap();
    fit(&mut restored, &data, &quiet(1, 8)).unwrap();
    assert_eq!(model.params(), restored.params());
    // Another model's checkpoint is refused, and nothing is loaded.
    let mut other = keras::KerasMnist::new(0);
    let before = other.params().to_vec();
    let err = checkpoint::load(&mut other, &path).unwrap_err();
    assert!(err.to_string().contains("KerasIris"), "{err}");
    assert_eq!(other.params(), &before[..]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn digits_reach_95_percent() {
    // The example trains 40 epochs; 25 already clear the bar, in well under a second.
    let accuracy = digits_example::run(25, true).unwrap();
    assert!(accuracy >= 0.95, "test accuracy {accuracy}");
}

#[test]
fn digits_cnn_beats_the_mlp() {
    // The example trains 30 epochs to about 99% on the test fifth; 15 clear the MLP's 97%.
    let accuracy = digits_cnn_example::run(15, true).unwrap();
    assert!(accuracy >= 0.975, "test accuracy {accuracy}");
}

#[test]
fn sine_is_learned() {
    let (mse, worst) = sine_example::run(150, true).unwrap();
    assert!(
        mse < 1e-3 && worst < 0.1,
        "mse {mse}, largest error {worst}"
    );
}

#[test]
fn the_gan_trains_and_writes_images() {
    let dir = std::env::temp_dir().join(format!("nnc-gan-{}", std::process::id()));
    let report = gan_example::run(20, 10, &dir, true).unwrap();
    assert_eq!(report.images.len(), 2);
    for path in &report.images {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    }
    // Neither side has won outright: the discriminator still hesitates on both kinds.
    assert!(
        (0.05..0.95).contains(&report.real_score),
        "{}",
        report.real_score
    );
    assert!(
        (0.05..0.95).contains(&report.fake_score),
        "{}",
        report.fake_score
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keras_mnist_trains_on_mnist() {
    // This file is built by `nnc-tests`, one folder below the repository, which sits beside
    // `shared/`.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist");
    let (train, test) = match (
        nnc::train::data::mnist(&dir, nnc::train::data::Split::Train),
        nnc::train::data::mnist(&dir, nnc::train::data::Split::Test),
    ) {
        (Ok(train), Ok(test)) => (train, test),
        (Err(e), _) | (_, Err(e)) => {
            println!("skipping: MNIST is not available ({e})");
            return;
        }
    };
    // One epoch on a third of the training set: the Keras model passes 93% on the test set.
    let mut model = keras::KerasMnist::new(0);
    fit(&mut model, &train.take(20_000), &quiet(1, 32)).unwrap();
    let result = evaluate(&model, &test, 500).unwrap();
    let accuracy = result.accuracy().unwrap();
    assert!(accuracy > 0.93, "test accuracy {accuracy}");
}

/// The character model learns the excerpt kept in the repository: after a few epochs its
/// validation loss beats the unigram baseline (a model that ignores the context), and the
/// sample continues the prompt with characters of the text.
#[test]
fn char_mlp_learns_the_excerpt() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny_shakespeare.txt");
    let report = char_mlp_example::run(&path, 8, true).unwrap();
    assert!(report.train_loss.is_finite() && report.val_loss.is_finite());
    assert!(
        report.bigram < report.unigram,
        "{} {}",
        report.bigram,
        report.unigram
    );
    assert!(
        report.val_loss < report.unigram,
        "val loss {} should beat the unigram baseline {}",
        report.val_loss,
        report.unigram
    );
    assert!(report.sample.starts_with("ROMEO:\n") && report.sample.chars().count() == 207);
}

/// A missing text is an error that says where to get it.
#[test]
fn char_mlp_explains_a_missing_text() {
    let err = char_mlp_example::run(std::path::Path::new("/nonexistent/input.txt"), 1, true)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tinyshakespeare"), "{err}");
}

/// The character LSTM learns the 4 KB excerpt of Tiny Shakespeare in 60 steps
/// (validation loss below the unigram baseline), saves its vocabulary with the checkpoint, and
/// writes from it through the step entry point: the same seed gives the same text, greedy
/// decoding ignores the seed, and a stop string ends the text.
#[test]
fn char_lstm_learns_and_writes() {
    use char_lstm_example::{sample, train, SampleArgs, TrainArgs};
    use clap::Parser;
    let dir = std::env::temp_dir().join(format!("nnc-char-lstm-{}", std::process::id()));
    let checkpoint = dir.join("char_lstm.safetensors");
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny_shakespeare.txt");
    let args = TrainArgs {
        corpus: Some(corpus),
        max_steps: Some(60),
        minutes: 10.0,
        batch: 8,
        checkpoint: Some(checkpoint.clone()),
        quiet: true,
        ..TrainArgs::parse_from(["train"])
    };
    let report = train(&args).unwrap();
    assert_eq!((report.model, report.steps), ("CharLstm", 60));
    eprintln!(
        "val loss {} against the unigram {}",
        report.val_loss, report.unigram
    );
    assert!(
        report.val_loss < report.unigram,
        "val loss {} should beat the unigram baseline {}",
        report.val_loss,
        report.unigram
    );
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny_shakespeare.txt"),
    )
    .unwrap();
    let write = |extra: &[&str]| {
        let mut argv = vec!["sample", "--prompt", "ROMEO:", "--max-tokens", "80"];
        argv.extend_from_slice(extra);
        let args = SampleArgs {
            checkpoint: Some(checkpoint.clone()),
            ..SampleArgs::parse_from(argv)
        };
        let mut streamed = String::new();
        let out = sample(&args, |c| streamed.push(c)).unwrap();
        assert_eq!(out, streamed, "every character is passed on as it comes");
        out
    };
    let a = write(&["--seed", "1"]);
    assert_eq!(a.chars().count(), 80);
    assert!(
        a.chars().all(|c| text.contains(c)),
        "{a:?} uses characters of the text"
    );
    assert_eq!(a, write(&["--seed", "1"]));
    assert_ne!(a, write(&["--seed", "2"]));
    let greedy = write(&["--temperature", "0", "--seed", "3"]);
    assert_eq!(greedy, write(&["--temperature", "0", "--seed", "4"]));
    let stopped = write(&["--seed", "1", "--stop", "e"]);
    assert!(
        stopped.ends_with('e') && a.starts_with(&stopped),
        "{stopped:?} is {a:?} up to its first e"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
