//! A character-level language model on Tiny Shakespeare in the style of Bengio et al. (2003),
//! written in `examples/char_mlp.nnc`: the 8 characters before each position are looked up in
//! an embedding table, flattened, passed through a tanh layer and scored over the vocabulary.
//! It trains on the first 90% of the text, reports training and validation loss in nats per
//! character next to the unigram and bigram baselines, and samples a few lines from a prompt.
//!
//! Run with `cargo run --release --example char_mlp [PATH] [EPOCHS]`. The text is read from
//! PATH, `$NNC_DATA/tinyshakespeare/input.txt` or `../shared/data/tinyshakespeare/input.txt`.

use nnc::runtime::{Model, Rng, Values};
use nnc::train::data::{next_char_dataset, text_file, Vocab};
use nnc::train::{evaluate, fit, FitOptions, Validation, Verbosity};
use std::error::Error;
use std::path::PathBuf;

nnc::include_model!("examples/char_mlp.nnc");

/// The characters of context the model reads, as declared in `char_mlp.nnc`.
pub const CONTEXT: usize = 8;
/// The largest vocabulary the model takes, as declared in `char_mlp.nnc`.
pub const VOCAB: usize = 65;

/// What a training run measured, in nats per character.
pub struct Report {
    pub train_loss: f64,
    pub val_loss: f64,
    pub unigram: f64,
    pub bigram: f64,
    pub sample: String,
}

/// Where the full text is looked for when no path is given.
pub fn default_path() -> PathBuf {
    match std::env::var_os("NNC_DATA") {
        Some(dir) => PathBuf::from(dir).join("tinyshakespeare/input.txt"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/tinyshakespeare/input.txt"),
    }
}

/// Trains on the text at `path` for `epochs` epochs and samples from `prompt`.
pub fn run(path: &std::path::Path, epochs: usize, quiet: bool) -> Result<Report, Box<dyn Error>> {
    let text = text_file(path).map_err(|e| {
        format!(
            "{e}\nthe char_mlp example reads Tiny Shakespeare: pass the path of `input.txt` \
             (from karpathy/char-rnn, data/tinyshakespeare), set NNC_DATA to a folder holding \
             `tinyshakespeare/input.txt`, or try `data/tiny_shakespeare.txt` for a short excerpt"
        )
    })?;
    let vocab = Vocab::from_text(&text);
    if vocab.len() > VOCAB {
        return Err(format!(
            "the text has {} distinct characters but the model takes at most {VOCAB}; \
             change `ids(65)`, `class(65)` and the table sizes in char_mlp.nnc",
            vocab.len()
        )
        .into());
    }
    let ids = vocab.encode(&text)?;
    // The common split of this corpus: the first 90% of the characters train, the rest validate.
    let cut = ids.len() * 9 / 10;
    let (train_ids, val_ids) = (&ids[..cut], &ids[cut.saturating_sub(CONTEXT)..]);
    // The ids are declared in 0..VOCAB; a text with fewer characters uses the first rows.
    let train = next_char_dataset(train_ids, CONTEXT, VOCAB)?;
    let val = next_char_dataset(val_ids, CONTEXT, VOCAB)?;
    let (unigram, bigram) = baselines(train_ids, val_ids, vocab.len());
    if !quiet {
        println!(
            "char_mlp: {} training and {} validation characters, {} distinct, {} parameters",
            train.len(),
            val.len(),
            vocab.len(),
            char_mlp::PARAM_COUNT
        );
        println!(
            "baselines on validation: unigram {unigram:.4}, bigram {bigram:.4} nats per character"
        );
    }
    let mut model = CharMlp::new(1);
    let history = fit(
        &mut model,
        &train,
        &FitOptions {
            epochs,
            batch_size: 128,
            validation: Validation::Data(&val),
            verbosity: if quiet {
                Verbosity::Quiet
            } else {
                Verbosity::Auto
            },
            ..FitOptions::default()
        },
    )?;
    let train_loss = history.last().map_or(f64::NAN, |e| e.loss);
    let val_loss = evaluate(&model, &val, 512)?.loss as f64;
    let mut rng = Rng::new(7);
    let sample = sample(&model, &vocab, "ROMEO:\n", 200, 0.8, &mut rng)?;
    Ok(Report {
        train_loss,
        val_loss,
        unigram,
        bigram,
        sample,
    })
}

/// The validation loss of the unigram and bigram models fitted on the training ids, in nats
/// per character, with add-one smoothing so that an unseen character costs a finite amount.
fn baselines(train: &[u32], val: &[u32], vocab: usize) -> (f64, f64) {
    let mut uni = vec![1.0; vocab];
    let mut bi = vec![1.0; vocab * vocab];
    for &c in train {
        uni[c as usize] += 1.0;
    }
    for w in train.windows(2) {
        bi[w[0] as usize * vocab + w[1] as usize] += 1.0;
    }
    let total: f64 = uni.iter().sum();
    let scored = &val[CONTEXT..];
    let unigram = -scored
        .iter()
        .map(|&c| (uni[c as usize] / total).ln())
        .sum::<f64>()
        / scored.len() as f64;
    let bigram = -val[CONTEXT - 1..]
        .windows(2)
        .map(|w| {
            let row = &bi[w[0] as usize * vocab..(w[0] as usize + 1) * vocab];
            (row[w[1] as usize] / row.iter().sum::<f64>()).ln()
        })
        .sum::<f64>()
        / scored.len() as f64;
    (unigram, bigram)
}

/// `length` characters continuing `prompt`, each drawn from the model's distribution
/// sharpened by `temperature` (below 1 favours likely characters).
pub fn sample(
    model: &CharMlp,
    vocab: &Vocab,
    prompt: &str,
    length: usize,
    temperature: f64,
    rng: &mut Rng,
) -> Result<String, Box<dyn Error>> {
    let mut ids = vocab.encode_lossy(prompt);
    // A prompt shorter than the context is padded on the left with the id of a newline
    // (or 0), as if the text started there.
    let pad = vocab.id('\n').unwrap_or(0);
    while ids.len() < CONTEXT {
        ids.insert(0, pad);
    }
    let mut ws = model.workspace(1);
    let mut out = String::from(prompt);
    for _ in 0..length {
        let window = &ids[ids.len() - CONTEXT..];
        let p = model.predict_dyn(&mut ws, &[Values::Ids(window)])?;
        // p^(1/T), renormalised, is the softmax of the logits divided by T; ids past the
        // vocabulary never occur in the text and are not drawn.
        let weights = p[..vocab.len()]
            .iter()
            .map(|&q| f64::from(q).max(1e-30).powf(1.0 / temperature));
        let mut u = rng.uniform(0.0, weights.clone().sum::<f64>());
        let mut next = vocab.len() - 1;
        for (i, w) in weights.enumerate() {
            if u < w {
                next = i;
                break;
            }
            u -= w;
        }
        ids.push(next as u32);
        out.push(vocab.char(next as u32).unwrap_or('?'));
    }
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(default_path, PathBuf::from);
    let epochs = match args.next() {
        Some(e) => e
            .parse()
            .map_err(|_| format!("EPOCHS must be a whole number, found `{e}`"))?,
        None => 3,
    };
    let report = run(&path, epochs, false)?;
    println!(
        "train loss {:.4}, val loss {:.4} nats per character (unigram {:.4}, bigram {:.4})",
        report.train_loss, report.val_loss, report.unigram, report.bigram
    );
    println!("--- sample, temperature 0.8 ---\n{}\n---", report.sample);
    println!("val loss {:.4}", report.val_loss);
    Ok(())
}
