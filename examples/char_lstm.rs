//! A character-level LSTM that writes, written in `examples/char_lstm.nnc`: two stacked LSTM
//! layers over windows of 64 characters, trained to predict every next character, then run one
//! character at a time through the generated `step` entry point to continue a prompt.
//!
//! ```text
//! cargo run --release --example char_lstm                       # train on Tiny Shakespeare
//! cargo run --release --example char_lstm -- train --corpus ../shared/data/chinese_stories/stories_zh_hans.txt
//! cargo run --release --example char_lstm -- sample --prompt "ROMEO:" --temperature 0.8 --max-tokens 400
//! ```
//!
//! Training runs for `--minutes` (5 by default) on random windows of the first 90% of the text,
//! with the learning rate decayed by a cosine over that time, reports training and validation
//! loss in nats per character, and saves a checkpoint with its vocabulary (the last training
//! run's unless `--checkpoint` names another file). A text of up to 128 distinct characters
//! trains `CharLstm`; up to 4096 (Chinese), `CharLstmWide`. `sample` prints the text as it is
//! generated.

use clap::{Parser, Subcommand};
use nnc::runtime::{Model, Values};
use nnc::train::checkpoint::{self, SaveOptions};
use nnc::train::data::{next_char_sequences, text_file, Vocab};
use nnc::train::evaluate;
use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

nnc::include_model!("examples/char_lstm.nnc");

#[path = "support/writing.rs"]
mod writing;

/// The characters of each training window, as declared in `char_lstm.nnc`.
pub const STEPS: usize = 64;

#[derive(Parser)]
#[command(about = "A character-level LSTM: train it on a text, then let it write")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train on a text and save a checkpoint (the default command).
    Train(TrainArgs),
    /// Continue a prompt with the model of a checkpoint.
    Sample(SampleArgs),
}

#[derive(Parser, Clone, Debug)]
pub struct TrainArgs {
    /// The text to learn; Tiny Shakespeare by default.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Minutes of training.
    #[arg(long, default_value_t = 5.0)]
    pub minutes: f64,
    /// Stop after this many steps even if time remains.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Windows per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Where to save the checkpoint.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The seed of the initial weights, the windows and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// How to continue a prompt.
pub type SampleArgs = writing::WriteArgs;

/// Where Tiny Shakespeare is looked for: `$NNC_DATA/tinyshakespeare/input.txt`, else the
/// shared data folder.
pub fn default_corpus() -> PathBuf {
    match std::env::var_os("NNC_DATA") {
        Some(dir) => PathBuf::from(dir).join("tinyshakespeare/input.txt"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/tinyshakespeare/input.txt"),
    }
}

/// The checkpoint the last training run wrote, when none is named.
pub fn default_checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/char_lstm.safetensors")
}

use writing::VOCAB_KEY;

/// What a training run measured, in nats per character.
#[derive(Debug)]
pub struct Report {
    /// The model trained, `CharLstm` or `CharLstmWide`.
    pub model: &'static str,
    pub steps: usize,
    pub seconds: f64,
    pub train_loss: f64,
    pub val_loss: f64,
    /// The validation loss of predicting each character by its frequency in the training text.
    pub unigram: f64,
    pub checkpoint: PathBuf,
}

/// Trains the model that fits the corpus's characters and saves it.
pub fn train(args: &TrainArgs) -> Result<Report, Box<dyn Error>> {
    let path = args.corpus.clone().unwrap_or_else(default_corpus);
    let text = text_file(&path).map_err(|e| {
        format!(
            "{e}\nchar_lstm trains on a text file: pass one with `--corpus FILE`, set NNC_DATA \
             to a folder holding `tinyshakespeare/input.txt`, or try `--corpus \
             data/tiny_shakespeare.txt` for a short excerpt"
        )
    })?;
    let vocab = Vocab::from_text(&text);
    if vocab.len() <= writing::ids_of::<CharLstm>() {
        train_model::<CharLstm>(args, &text, &vocab)
    } else if vocab.len() <= writing::ids_of::<CharLstmWide>() {
        train_model::<CharLstmWide>(args, &text, &vocab)
    } else {
        Err(format!(
            "`{}` has {} distinct characters, more than the {} of the widest model; raise \
             `ids(4096)`, `class(4096)` and the table sizes of CharLstmWide in char_lstm.nnc",
            path.display(),
            vocab.len(),
            writing::ids_of::<CharLstmWide>()
        )
        .into())
    }
}

fn train_model<M: Model<Elem = f32>>(
    args: &TrainArgs,
    text: &str,
    vocab: &Vocab,
) -> Result<Report, Box<dyn Error>> {
    let ids = vocab.encode(text)?;
    let range = writing::ids_of::<M>();
    // The common split: the first 90% of the characters train, the rest validate.
    let cut = ids.len() * 9 / 10;
    let (train_ids, val_ids) = (&ids[..cut], &ids[cut..]);
    if train_ids.len() <= STEPS + 1 || val_ids.len() <= STEPS {
        return Err(format!(
            "the text has {} characters; char_lstm needs enough for windows of {STEPS} in both \
             its first 90% and its last 10%",
            ids.len()
        )
        .into());
    }
    let val = next_char_sequences(val_ids, STEPS, STEPS, range)?;
    let unigram = unigram(train_ids, val_ids, vocab.len());
    let mut model = M::new(args.seed);
    model.reseed(args.seed);
    let batch = args.batch.max(1);
    let mut ws = model.workspace(batch);
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    say(format!(
        "char_lstm: {} ({} parameters), {} training and {} validation characters, {} distinct; \
         unigram baseline {unigram:.4} nats per character",
        M::NAME,
        M::PARAMS.iter().map(|p| p.len).sum::<usize>(),
        train_ids.len(),
        val_ids.len(),
        vocab.len()
    ));
    let budget = Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    let max_steps = args.max_steps.unwrap_or(usize::MAX);
    let base_lr = model.learning_rate();
    let mut windows = writing::Windows::new(train_ids, STEPS, batch, args.seed ^ 0x5eed);
    let start = Instant::now();
    let (mut step, mut recent, mut last_report) = (0, Vec::new(), Instant::now());
    while step < max_steps && start.elapsed() < budget {
        // A cosine from the base rate down to a tenth of it over the time (or the steps).
        let by_time = start.elapsed().as_secs_f64() / budget.as_secs_f64().max(1e-9);
        let by_steps = step as f64 / max_steps as f64;
        let done = by_time.max(by_steps).min(1.0);
        let scale = 0.1 + 0.45 * (1.0 + (std::f64::consts::PI * done).cos());
        model.set_learning_rate(base_lr * scale as f32)?;
        let (x, y) = windows.draw();
        let loss = model.train_step_dyn(&mut ws, &[Values::Ids(x)], &[Values::Ids(y)])?;
        if !loss.is_finite() {
            return Err(format!("the training loss became {loss} at step {step}").into());
        }
        recent.push(f64::from(loss));
        step += 1;
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            let train_loss = mean_of_last(&recent, 100);
            say(format!(
                "step {step:>6}  train {train_loss:.4}  ({:.0} s, {:.0} characters/s)",
                start.elapsed().as_secs_f64(),
                (step * batch * STEPS) as f64 / start.elapsed().as_secs_f64()
            ));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let val_loss = f64::from(evaluate(&model, &val, batch)?.loss);
    let train_loss = mean_of_last(&recent, 100);
    let checkpoint = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    if let Some(dir) = checkpoint.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let vocab_text: String = vocab.chars().iter().collect();
    let options = SaveOptions {
        metadata: vec![(VOCAB_KEY.into(), vocab_text)],
        ..SaveOptions::default()
    };
    checkpoint::save(&model, &checkpoint, &options)?;
    say(format!(
        "{step} steps in {seconds:.0} s; saved `{}`",
        checkpoint.display()
    ));
    Ok(Report {
        model: M::NAME,
        steps: step,
        seconds,
        train_loss,
        val_loss,
        unigram,
        checkpoint,
    })
}

fn mean_of_last(values: &[f64], n: usize) -> f64 {
    let tail = &values[values.len().saturating_sub(n)..];
    tail.iter().sum::<f64>() / tail.len().max(1) as f64
}

/// The validation loss of the training text's character frequencies (add-one smoothed).
fn unigram(train: &[u32], val: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![1.0; vocab];
    for &c in train {
        counts[c as usize] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    -val.iter()
        .map(|&c| (counts[c as usize] / total).ln())
        .sum::<f64>()
        / val.len() as f64
}

/// Continues the prompt with the checkpoint's model, passing each character to `emit`.
pub fn sample(args: &SampleArgs, emit: impl FnMut(char)) -> Result<String, Box<dyn Error>> {
    let path = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let train = "cargo run --release --example char_lstm";
    let (vocab, model) = writing::checkpoint_vocab(&path, "char_lstm", train)?;
    match model.as_deref() {
        Some("CharLstm") => writing::write_with::<CharLstm>(args, &path, &vocab, emit),
        Some("CharLstmWide") => writing::write_with::<CharLstmWide>(args, &path, &vocab, emit),
        other => Err(format!(
            "`{}` holds model {other:?}, not one of char_lstm's",
            path.display()
        )
        .into()),
    }
}

#[allow(dead_code)]
fn main() {
    writing::exit_on_error(run(Cli::parse()));
}

#[allow(dead_code)]
fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    match cli.command {
        Some(Command::Sample(args)) => {
            writing::print_as_written(&args.prompt, |emit| sample(&args, emit))?;
        }
        command => {
            let args = match command {
                Some(Command::Train(args)) => args,
                _ => TrainArgs::parse_from(["train"]),
            };
            let report = train(&args)?;
            let prompt = if report.model == "CharLstm" {
                "ROMEO:"
            } else {
                ""
            };
            let sample_args = SampleArgs::parse_from(["sample", "--max-tokens", "300"]);
            let sample_args = SampleArgs {
                prompt: prompt.into(),
                checkpoint: Some(report.checkpoint.clone()),
                ..sample_args
            };
            println!("--- sample, temperature 0.8 ---");
            print!("{prompt}");
            sample(&sample_args, |c| print!("{c}"))?;
            println!("\n---");
            println!(
                "train loss {:.4}, val loss {:.4} nats per character (unigram {:.4}) after {} steps in {:.0} s",
                report.train_loss, report.val_loss, report.unigram, report.steps, report.seconds
            );
            println!("val loss {:.4}", report.val_loss);
        }
    }
    Ok(())
}
