//! The storyteller: a small GPT written in `examples/storyteller.nnc` (nanoGPT's character-level
//! recipe), trained from scratch on a story corpus, then telling a story from a prompt one
//! character at a time through the generated `step` entry point and its key and value cache.
//!
//! ```text
//! cargo run --release --example storyteller -- train --corpus ../shared/data/tinyshakespeare/input.txt
//! cargo run --release --example storyteller -- tell --prompt "ROMEO:" --temperature 0.8 --max-tokens 300
//! cargo run --release --example storyteller -- train --corpus ../shared/data/chinese_stories/stories_zh_hans.txt
//! ```
//!
//! Training follows nanoGPT's recipe unless `--config FILE` (TOML, the fields of [`Config`])
//! says otherwise: 2000 iterations of 12 random windows of 64 characters from the first 90% of
//! the text, AdamW (betas 0.9/0.99, weight decay 0.1 on matrices, gradient clipping 1.0, in the
//! model file), the learning rate warmed up over 100 iterations to 1e-3 and decayed by a cosine
//! to 1e-4 at iteration 2000. Every 250 iterations it estimates the training and validation
//! loss in nats per character over 20 random batches each and saves a checkpoint (atomically,
//! with the vocabulary, the optimizer state, the iteration and the generators that draw the
//! windows), which `--resume` continues from exactly as if the run had not stopped;
//! at the end it estimates the validation loss over 200 batches. A text of up to 128 distinct
//! characters trains `Storyteller`; up to 4096 (Chinese), `StorytellerWide`.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nnc::runtime::schedule::{Cosine, Schedule, Warmup};
use nnc::runtime::{Model, Rng, Values};
use nnc::train::checkpoint::{self, SaveOptions};
use nnc::train::data::{text_file, Vocab};
use serde::Deserialize;
use std::error::Error;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

nnc::include_model!("examples/storyteller.nnc");

#[path = "support/writing.rs"]
mod writing;

/// The characters of each training window: the context, as declared in `storyteller.nnc`.
pub const CONTEXT: usize = 64;

#[derive(Parser)]
#[command(about = "A small GPT that tells stories: train it on a corpus, then give it a prompt")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on a corpus, saving checkpoints as it goes.
    Train(TrainArgs),
    /// Tell a story from a prompt with the model of a checkpoint.
    Tell(TellArgs),
}

#[derive(Parser, Clone, Debug)]
pub struct TrainArgs {
    /// The text to learn.
    #[arg(long)]
    pub corpus: PathBuf,
    /// A TOML file of training settings (iterations, batch, lr, min_lr, warmup, decay_iterations,
    /// eval_interval, eval_batches, final_eval_batches, seed); nanoGPT's recipe by default.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to save checkpoints; `target/storyteller.safetensors` by default.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint: its weights, optimizer state and iteration.
    #[arg(long)]
    pub resume: bool,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// How to tell a story: the prompt and the sampling.
pub type TellArgs = writing::WriteArgs;

/// Training settings: nanoGPT's `train_shakespeare_char` on a CPU by default.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Optimizer steps in all.
    pub iterations: u64,
    /// Windows per step.
    pub batch: usize,
    /// The learning rate after the warm-up.
    pub lr: f64,
    /// The learning rate at the end of the cosine decay and after it.
    pub min_lr: f64,
    /// Iterations of linear warm-up.
    pub warmup: u64,
    /// The iteration at which the cosine reaches `min_lr`.
    pub decay_iterations: u64,
    /// Iterations between loss estimates and checkpoints.
    pub eval_interval: u64,
    /// Random batches per loss estimate.
    pub eval_batches: usize,
    /// Random batches of the final validation estimate.
    pub final_eval_batches: usize,
    /// The seed of the initial weights and of the windows.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            iterations: 2000,
            batch: 12,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            decay_iterations: 2000,
            eval_interval: 250,
            eval_batches: 20,
            final_eval_batches: 200,
            seed: 1337,
        }
    }
}

impl Config {
    /// The settings of a TOML file, each left out taking the recipe's value.
    pub fn read(path: &Path) -> Result<Config, Box<dyn Error>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config `{}`: {e}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .map_err(|e| format!("config `{}`: {}", path.display(), e.message()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let positive = [
            ("batch", self.batch as f64),
            ("lr", self.lr),
            ("eval_interval", self.eval_interval as f64),
            ("eval_batches", self.eval_batches as f64),
            ("final_eval_batches", self.final_eval_batches as f64),
        ];
        if let Some((name, value)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("config: `{name}` must be positive, found {value}"));
        }
        if !(self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(format!(
                "config: `min_lr` must be between 0 and `lr` ({}), found {}",
                self.lr, self.min_lr
            ));
        }
        Ok(())
    }

    /// nanoGPT's schedule: linear warm-up, then a cosine to `min_lr` at `decay_iterations`.
    fn schedule(&self) -> Warmup<Cosine> {
        Warmup {
            steps: self.warmup,
            inner: Cosine {
                base: self.lr,
                min: self.min_lr,
                period: self.decay_iterations.saturating_sub(self.warmup),
            },
        }
    }
}

/// The checkpoint the last training run wrote, when none is named.
pub fn default_checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/storyteller.safetensors")
}

/// The metadata key of the iterations a checkpoint was trained for (the vocabulary's is
/// `writing::VOCAB_KEY`).
const ITERATION_KEY: &str = "iteration";
/// The metadata key of the generators that draw the training windows and the two estimates'
/// windows, so that `--resume` continues their streams.
const WINDOWS_KEY: &str = "windows";
use writing::VOCAB_KEY;

/// What a training run measured, in nats per character.
#[derive(Debug)]
pub struct Report {
    /// The model trained, `Storyteller` or `StorytellerWide`.
    pub model: &'static str,
    pub iterations: u64,
    pub seconds: f64,
    /// The last estimate of the training loss.
    pub train_loss: f64,
    /// The final estimate of the validation loss.
    pub val_loss: f64,
    pub checkpoint: PathBuf,
}

/// Trains the model that fits the corpus's characters, saving checkpoints.
pub fn train(args: &TrainArgs, config: &Config) -> Result<Report, Box<dyn Error>> {
    config.check()?;
    let text = text_file(&args.corpus).map_err(|e| {
        format!(
            "{e}\nthe storyteller trains on a text file, such as \
             ../shared/data/tinyshakespeare/input.txt, \
             ../shared/data/tinystories/tinystories_train_head.txt or \
             ../shared/data/chinese_stories/stories_zh_hans.txt"
        )
    })?;
    let vocab = Vocab::from_text(&text);
    if vocab.len() <= writing::ids_of::<Storyteller>() {
        train_model::<Storyteller>(args, config, &text, &vocab)
    } else if vocab.len() <= writing::ids_of::<StorytellerWide>() {
        train_model::<StorytellerWide>(args, config, &text, &vocab)
    } else {
        Err(format!(
            "`{}` has {} distinct characters, more than the {} of the widest model; raise the \
             vocabulary of StorytellerWide in storyteller.nnc",
            args.corpus.display(),
            vocab.len(),
            writing::ids_of::<StorytellerWide>()
        )
        .into())
    }
}

/// The mean loss over `batches` random batches: nanoGPT's `estimate_loss`.
fn estimate<M: Model<Elem = f32>>(
    model: &M,
    ws: &mut M::Workspace,
    windows: &mut writing::Windows<'_>,
    batches: usize,
) -> Result<f64, Box<dyn Error>> {
    let mut total = 0.0;
    for _ in 0..batches {
        let (x, y) = windows.draw();
        total += f64::from(
            model
                .evaluate_dyn(ws, &[Values::Ids(x)], &[Values::Ids(y)])?
                .loss,
        );
    }
    Ok(total / batches as f64)
}

fn train_model<M: Model<Elem = f32>>(
    args: &TrainArgs,
    config: &Config,
    text: &str,
    vocab: &Vocab,
) -> Result<Report, Box<dyn Error>> {
    let ids = vocab.encode(text)?;
    // nanoGPT's split: the first 90% of the characters train, the rest validate.
    let cut = ids.len() * 9 / 10;
    let (train_ids, val_ids) = (&ids[..cut], &ids[cut..]);
    if train_ids.len() <= CONTEXT + 1 || val_ids.len() <= CONTEXT + 1 {
        return Err(format!(
            "the text has {} characters; the storyteller needs windows of {} in both its first \
             90% and its last 10%",
            ids.len(),
            CONTEXT + 1
        )
        .into());
    }
    let checkpoint = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let vocab_text: String = vocab.chars().iter().collect();
    let mut model = M::new(config.seed);
    let mut windows = [
        writing::Windows::new(train_ids, CONTEXT, config.batch, config.seed ^ 0x5eed),
        writing::Windows::new(train_ids, CONTEXT, config.batch, config.seed ^ 0x7a1),
        writing::Windows::new(val_ids, CONTEXT, config.batch, config.seed ^ 0x7a2),
    ];
    let mut start_iteration = 0;
    if args.resume {
        start_iteration = resume(&mut model, &checkpoint, &vocab_text, &mut windows)?;
    }
    let threads = nnc::runtime::Exec::default_threads();
    let mut ws = model.try_workspace_with_threads(config.batch, threads)?;
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    say(format!(
        "storyteller: {} ({} parameters), {} training and {} validation characters, {} distinct",
        M::NAME,
        M::PARAMS.iter().map(|p| p.len).sum::<usize>(),
        train_ids.len(),
        val_ids.len(),
        vocab.len()
    ));
    let [batches, train_eval, val_eval] = &mut windows;
    let schedule = config.schedule();
    let bar = progress(args.quiet, config.iterations, start_iteration);
    let started = Instant::now();
    let mut train_loss = f64::NAN;
    for iteration in start_iteration..config.iterations {
        model.set_learning_rate(schedule.lr(iteration) as f32)?;
        let (x, y) = batches.draw();
        let loss = model.train_step_dyn(&mut ws, &[Values::Ids(x)], &[Values::Ids(y)])?;
        if !loss.is_finite() {
            return Err(format!("the training loss became {loss} at iteration {iteration}").into());
        }
        let done = iteration + 1;
        if let Some(bar) = &bar {
            bar.inc(1);
            if done % 10 == 0 {
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
        if done % config.eval_interval == 0 || done == config.iterations {
            train_loss = estimate(&model, &mut ws, train_eval, config.eval_batches)?;
            let val = estimate(&model, &mut ws, val_eval, config.eval_batches)?;
            let seconds = started.elapsed().as_secs_f64();
            let line = format!(
                "iteration {done:>5}: train loss {train_loss:.4}, val loss {val:.4} nats per \
                 character ({seconds:.0} s, {:.0} tokens/s)",
                ((done - start_iteration) as usize * config.batch * CONTEXT) as f64 / seconds
            );
            match &bar {
                Some(bar) => bar.println(line),
                None => say(line),
            }
            save(
                &model,
                &checkpoint,
                &vocab_text,
                done,
                [batches, train_eval, val_eval],
            )?;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let val_loss = estimate(&model, &mut ws, val_eval, config.final_eval_batches)?;
    say(format!(
        "{} iterations in {seconds:.1} s; saved `{}`",
        config.iterations - start_iteration.min(config.iterations),
        checkpoint.display()
    ));
    Ok(Report {
        model: M::NAME,
        iterations: config.iterations,
        seconds,
        train_loss,
        val_loss,
        checkpoint,
    })
}

/// A progress bar on a terminal; none in logs and CI, where the evaluation lines say enough.
fn progress(quiet: bool, iterations: u64, start: u64) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(iterations), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "[{bar:30}] {pos}/{len} iterations  {msg}  ({elapsed}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(start);
    Some(bar)
}

/// Saves the model with its vocabulary, optimizer state, iteration and the state of the
/// generators that draw its windows (atomically: a reader never sees half a file).
fn save<M: Model>(
    model: &M,
    path: &Path,
    vocab: &str,
    iteration: u64,
    windows: [&writing::Windows; 3],
) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let options = SaveOptions {
        optimizer: true,
        metadata: vec![
            (VOCAB_KEY.into(), vocab.into()),
            (ITERATION_KEY.into(), iteration.to_string()),
            (
                WINDOWS_KEY.into(),
                windows.map(|w| w.rng().to_string()).join(";"),
            ),
        ],
    };
    checkpoint::save(model, path, &options)?;
    Ok(())
}

/// Loads a checkpoint to continue training, with the generators of its windows; returns its
/// iteration.
fn resume<M: Model>(
    model: &mut M,
    path: &Path,
    vocab: &str,
    windows: &mut [writing::Windows; 3],
) -> Result<u64, Box<dyn Error>> {
    let metadata = checkpoint::metadata(path)
        .map_err(|e| format!("{e}\n`--resume` continues from the checkpoint of an earlier run"))?;
    if metadata.get(VOCAB_KEY).map(String::as_str) != Some(vocab) {
        return Err(format!(
            "`{}` was trained on another text (its vocabulary differs from this corpus's); \
             resume with the corpus it was trained on",
            path.display()
        )
        .into());
    }
    let iteration = metadata
        .get(ITERATION_KEY)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("`{}` does not say how far it was trained", path.display()))?;
    let states = metadata.get(WINDOWS_KEY).ok_or_else(|| {
        format!(
            "`{}` does not record where its training windows were drawn, so a resumed run \
             would repeat the first ones; train it again from the start",
            path.display()
        )
    })?;
    let rngs: Vec<Rng> = states
        .split(';')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: the windows' state is damaged: {e}", path.display()))?;
    let rngs: [Rng; 3] = rngs.try_into().map_err(|_| {
        format!(
            "`{}`: the windows' state does not hold three generators",
            path.display()
        )
    })?;
    checkpoint::load(model, path)?;
    for (w, rng) in windows.iter_mut().zip(rngs) {
        w.set_rng(rng);
    }
    Ok(iteration)
}

/// Tells a story from the prompt with the checkpoint's model, passing each character to `emit`.
pub fn tell(args: &TellArgs, emit: impl FnMut(char)) -> Result<String, Box<dyn Error>> {
    let path = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
    let train = "cargo run --release --example storyteller -- train --corpus FILE";
    let (vocab, model) = writing::checkpoint_vocab(&path, "the storyteller", train)?;
    match model.as_deref() {
        Some("Storyteller") => writing::write_with::<Storyteller>(args, &path, &vocab, emit),
        Some("StorytellerWide") => {
            writing::write_with::<StorytellerWide>(args, &path, &vocab, emit)
        }
        other => Err(format!(
            "`{}` holds model {other:?}, not one of the storyteller's",
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
        Command::Tell(args) => {
            writing::print_as_written(&args.prompt, |emit| tell(&args, emit))?;
        }
        Command::Train(args) => {
            let config = match &args.config {
                Some(path) => Config::read(path)?,
                None => Config::default(),
            };
            let report = train(&args, &config)?;
            println!(
                "{}: train loss {:.4}, val loss {:.4} nats per character after {} iterations in \
                 {:.1} s",
                report.model, report.train_loss, report.val_loss, report.iterations, report.seconds
            );
            println!("val loss {:.4}", report.val_loss);
        }
    }
    Ok(())
}
