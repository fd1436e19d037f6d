//! What the examples that write text share (`char_lstm`, `storyteller`): random training
//! windows of a text, the options of a generation, reading a checkpoint's vocabulary and model,
//! continuing a prompt with a model through its step entry point, each character passed on as
//! it comes, and how a failed command is reported.

use clap::Parser;
use nnc::runtime::{ElemKind, Model, Rng};
use nnc::train::checkpoint;
use nnc::train::data::Vocab;
use nnc::train::generate::{generate, Generation, Sampling};
use std::error::Error;
use std::path::{Path, PathBuf};

/// The metadata key of the vocabulary in a checkpoint: its characters in id order.
pub const VOCAB_KEY: &str = "vocab";

/// The number of ids the model's input takes.
pub fn ids_of<M: Model>() -> usize {
    match M::INPUTS[0].kind {
        ElemKind::Ids { range } => range,
        ElemKind::Float => 0,
    }
}

/// Random windows of `len` ids of a text and the ids that follow each position, `batch` at a
/// time.
pub struct Windows<'t> {
    ids: &'t [u32],
    len: usize,
    rng: Rng,
    x: Vec<u32>,
    y: Vec<u32>,
}

impl<'t> Windows<'t> {
    /// Windows of `ids`, which must hold more than `len` ids.
    pub fn new(ids: &'t [u32], len: usize, batch: usize, seed: u64) -> Windows<'t> {
        Windows {
            ids,
            len,
            rng: Rng::new(seed),
            x: vec![0; batch * len],
            y: vec![0; batch * len],
        }
    }

    /// The generator that picks the windows' starts, for a checkpoint to record.
    #[allow(dead_code)] // `char_lstm` does not resume.
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// Continues from a recorded generator, so that a resumed run draws the windows an
    /// uninterrupted one would have.
    #[allow(dead_code)] // `char_lstm` does not resume.
    pub fn set_rng(&mut self, rng: Rng) {
        self.rng = rng;
    }

    /// Draws a batch of windows with uniform starts, as nanoGPT's `get_batch` does: the inputs,
    /// then the targets (each input window shifted by one).
    pub fn draw(&mut self) -> (&[u32], &[u32]) {
        let len = self.len;
        for (xs, ys) in self
            .x
            .chunks_exact_mut(len)
            .zip(self.y.chunks_exact_mut(len))
        {
            let s = self.rng.below(self.ids.len() - len);
            xs.copy_from_slice(&self.ids[s..s + len]);
            ys.copy_from_slice(&self.ids[s + 1..s + len + 1]);
        }
        (&self.x, &self.y)
    }
}

/// Ends the program with `error: ` and the message of a failed command (rather than the `Debug`
/// form `main` would print), exit status 1.
pub fn exit_on_error(result: Result<(), Box<dyn Error>>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// How to continue a prompt.
#[derive(Parser, Clone, Debug)]
pub struct WriteArgs {
    /// The text to continue.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Below 1 favours likely characters; 0 always takes the most likely.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Characters to generate.
    #[arg(long, default_value_t = 300)]
    pub max_tokens: usize,
    /// Draw among the k most likely characters only (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Draw among the most likely characters whose probabilities sum to p (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Stop once the text ends with this.
    #[arg(long)]
    pub stop: Option<String>,
    /// The seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The checkpoint to read; the last training run's by default.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

/// The vocabulary and the model name of the checkpoint at `path`, written by `example`
/// (whose training command `train` says how to make one).
pub fn checkpoint_vocab(
    path: &Path,
    example: &str,
    train: &str,
) -> Result<(Vocab, Option<String>), Box<dyn Error>> {
    let metadata = checkpoint::metadata(path).map_err(|e| {
        format!(
            "{e}\ntrain a model first (`{train}`), or name a checkpoint with `--checkpoint FILE`"
        )
    })?;
    let vocab = metadata.get(VOCAB_KEY).ok_or_else(|| {
        format!(
            "`{}` has no vocabulary: it was not written by {example}",
            path.display()
        )
    })?;
    Ok((
        Vocab::from_chars(vocab.chars()),
        metadata.get("model").cloned(),
    ))
}

/// Continues the prompt with model `M` loaded from `path`, passing each character to `emit`.
pub fn write_with<M: Model<Elem = f32>>(
    args: &WriteArgs,
    path: &Path,
    vocab: &Vocab,
    emit: impl FnMut(char),
) -> Result<String, Box<dyn Error>> {
    if let Some(c) = args.prompt.chars().find(|&c| vocab.id(c).is_none()) {
        return Err(format!(
            "the prompt has the character {c:?}, which the model never saw (its vocabulary has \
             {} characters); leave it out, or train on a text that has it",
            vocab.len()
        )
        .into());
    }
    let mut model = M::new(0);
    checkpoint::load(&mut model, path)?;
    let mut ws = model.workspace(1);
    let generation = Generation {
        sampling: Sampling {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        max_tokens: args.max_tokens,
        stop: args.stop.clone(),
    };
    Ok(generate(
        &model,
        &mut ws,
        vocab,
        &args.prompt,
        &generation,
        emit,
    )?)
}

/// Runs `write` with a callback that prints the prompt with the first generated character
/// (once it is known to be in the model's vocabulary) and then each character as it comes.
pub fn print_as_written(
    prompt: &str,
    write: impl FnOnce(&mut dyn FnMut(char)) -> Result<String, Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    use std::io::Write;
    let mut out = std::io::stdout();
    let mut prompt = Some(prompt.to_string());
    write(&mut |c| {
        if let Some(p) = prompt.take() {
            print!("{p}");
        }
        print!("{c}");
        let _ = out.flush();
    })?;
    println!();
    Ok(())
}
