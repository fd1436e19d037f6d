//! The storyteller example end to end on the repository's excerpt of Tiny Shakespeare: a short
//! training run learns (the validation loss falls far below the ln 128 of a uniform guess),
//! saves a checkpoint with its vocabulary that `--resume` continues from, and `tell` writes a
//! story longer than the model's context of 64 characters (so the generation helper slides
//! the attention cache), reproducibly for a seed, from characters of the text. The settings
//! file is checked too: unknown fields and bad values are errors that name them.

#[allow(dead_code)]
#[path = "../examples/storyteller.rs"]
mod storyteller;

use clap::Parser;
use storyteller::{tell, train, Config, Storyteller, TellArgs, TrainArgs};

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny_shakespeare.txt")
}

/// A few iterations of small batches: enough to learn the characters' frequencies.
fn short(iterations: u64) -> Config {
    Config {
        iterations,
        batch: 4,
        lr: 3e-3,
        warmup: 5,
        decay_iterations: iterations,
        eval_interval: 20,
        eval_batches: 2,
        final_eval_batches: 4,
        ..Config::default()
    }
}

#[test]
fn the_storyteller_learns_resumes_and_tells() {
    let dir = std::env::temp_dir().join(format!("nnc-storyteller-{}", std::process::id()));
    let checkpoint = dir.join("storyteller.safetensors");
    let args = TrainArgs {
        corpus: corpus(),
        checkpoint: Some(checkpoint.clone()),
        quiet: true,
        ..TrainArgs::parse_from(["train", "--corpus", "x"])
    };
    let report = train(&args, &short(20)).unwrap();
    assert_eq!((report.model, report.iterations), ("Storyteller", 20));
    let resumed = TrainArgs {
        resume: true,
        ..args.clone()
    };
    let report = train(&resumed, &short(40)).unwrap();
    let meta = nnc::train::checkpoint::metadata(&checkpoint).unwrap();
    assert_eq!(meta.get("iteration").map(String::as_str), Some("40"));
    eprintln!("val loss after 40 iterations: {}", report.val_loss);
    assert!(
        report.val_loss < 3.6,
        "val loss {} should be far below a uniform guess over 128 ids (4.85)",
        report.val_loss
    );
    let text = std::fs::read_to_string(corpus()).unwrap();
    let write = |extra: &[&str]| {
        let mut argv = vec!["tell", "--prompt", "ROMEO:", "--max-tokens", "100"];
        argv.extend_from_slice(extra);
        let args = TellArgs {
            checkpoint: Some(checkpoint.clone()),
            ..TellArgs::parse_from(argv)
        };
        let mut streamed = String::new();
        let out = tell(&args, |c| streamed.push(c)).unwrap();
        assert_eq!(out, streamed, "every character is passed on as it comes");
        out
    };
    let a = write(&["--seed", "1"]);
    assert_eq!(a.chars().count(), 100, "past the context of 64");
    assert!(a.chars().all(|c| text.contains(c)), "{a:?}");
    assert_eq!(a, write(&["--seed", "1"]));
    assert_ne!(a, write(&["--seed", "2"]));
    let unknown = TellArgs {
        checkpoint: Some(checkpoint.clone()),
        ..TellArgs::parse_from(["tell", "--prompt", "ROMEO: 狐"])
    };
    let err = tell(&unknown, |_| {}).unwrap_err().to_string();
    assert!(err.contains("never saw"), "{err}");
    let other = TrainArgs {
        corpus: dir.join("missing.txt"),
        ..resumed
    };
    let err = train(&other, &short(1)).unwrap_err().to_string();
    assert!(err.contains("missing.txt"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A resumed run goes on exactly as if it had not stopped: 12 iterations, then 12 more from
/// their checkpoint, end with the bits of 24 in one go. The checkpoint carries the weights, the
/// optimizer's state, the iteration (so the learning-rate schedule) and the generators that
/// draw the training and estimate windows; without the last, the resumed run would draw the
/// first windows again.
#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = std::env::temp_dir().join(format!("nnc-storyteller-resume-{}", std::process::id()));
    let args = |name: &str, resume: bool| TrainArgs {
        corpus: corpus(),
        checkpoint: Some(dir.join(name)),
        quiet: true,
        resume,
        ..TrainArgs::parse_from(["train", "--corpus", "x"])
    };
    let config = |iterations| Config {
        iterations,
        eval_interval: 6,
        ..short(24)
    };
    let whole = train(&args("whole", false), &config(24)).unwrap();
    train(&args("split", false), &config(12)).unwrap();
    let resumed = train(&args("split", true), &config(24)).unwrap();
    let weights = |name: &str| {
        let mut model = Storyteller::new(0);
        nnc::train::checkpoint::load(&mut model, dir.join(name)).unwrap();
        model.params().to_vec()
    };
    assert!(weights("whole") == weights("split"), "the weights differ");
    assert_eq!(whole.val_loss.to_bits(), resumed.val_loss.to_bits());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_settings_file_is_checked() {
    let dir = std::env::temp_dir().join(format!("nnc-storyteller-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, "iterations = 500\nlr = 6e-4\n").unwrap();
    let config = Config::read(&file).unwrap();
    assert_eq!(
        (config.iterations, config.lr, config.batch),
        (500, 6e-4, 12)
    );
    std::fs::write(&file, "iteratons = 500\n").unwrap();
    let err = Config::read(&file).unwrap_err().to_string();
    assert!(
        err.contains("iteratons") && err.contains("config.toml"),
        "{err}"
    );
    std::fs::write(&file, "min_lr = 0.5\n").unwrap();
    let err = Config::read(&file).unwrap_err().to_string();
    assert!(err.contains("min_lr"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
