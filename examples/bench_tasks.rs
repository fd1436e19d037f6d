//! The standard benchmark tasks, measured the way `bench/README.md` describes, so that nnc can be
//! compared run-for-run with PyTorch (`bench/pytorch_tasks.py` prints the same JSON lines).
//!
//! ```text
//! cargo build --release --example bench_tasks
//! taskset -c 0   target/release/examples/bench_tasks --task all --threads 1
//! taskset -c 0,1 target/release/examples/bench_tasks --task all --threads 2
//! ```
//!
//! Tasks: `mlp_train` (batch 1, 32, 128, 1024), `mlp_infer` (batch-1 latency, batch-64
//! throughput), `iris_train` (batch 32), `cnn_train` (LeNet-like, batch 64), `cnn_infer` (its
//! batch-1 latency), `lstm_train` (an LSTM over 32 steps of 64 features, hidden 128, batch
//! 32, sequences per second) and `lstm_generate` (the `char_lstm` example's model, one character
//! at a time through its `step` at batch 1: the latency of a token and tokens per second),
//! `gpt_train` (the `storyteller` example's GPT at batch 12, windows and tokens per second)
//! and `gpt_generate` (its cached step at batch 1, over every context length);
//! beyond the standard ones, `bn_train` and `bn_infer`: the all-convolutional
//! MNIST model with batch norm after each convolution, trained at batch 64, and its batch-1
//! latency and batch-64 throughput in inference (after a few training steps, so that the
//! running statistics are not their initial values). Method: random normal inputs and uniform labels
//! from seed 0, 4 batches generated before timing and cycled; the first call timed on its own;
//! at least 0.3 s of warm-up; then 5 blocks of about 0.15 s, reporting the median block's
//! samples per second. Batch-1 latency is the median (and 10th / 90th percentiles) of at least
//! 500 synchronous calls, each timed on its own.
//!
//! One JSON object per measurement is printed per line on stdout; progress goes to stderr.
//! `--threads N` gives every workspace N threads (the caller's and N - 1 workers, see
//! `rt::Exec`); pin the process to N cores with `taskset` so that the figures say what N cores
//! do.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nnc::runtime::{Model, Rng, Values};

mod mlp {
    nnc::include_model!("examples/models/bench_mlp.nnc");
}

mod iris {
    nnc::include_model!("examples/models/bench_iris.nnc");
}

mod cnn {
    nnc::include_model!("examples/models/bench_cnn.nnc");
}

mod lstm {
    nnc::include_model!("examples/models/bench_lstm.nnc");
}

mod char_lstm {
    nnc::include_model!("examples/char_lstm.nnc");
}

mod allconv {
    nnc::include_model!("examples/mnist_allconv.nnc");
}

mod gpt {
    nnc::include_model!("examples/storyteller.nnc");
}

/// How many distinct batches are generated before timing and cycled through.
const BATCHES: usize = 4;
const WARMUP: Duration = Duration::from_millis(300);
const BLOCK: Duration = Duration::from_millis(150);
const BLOCKS: usize = 5;
/// Fewest timed calls for a latency measurement; more are taken while they fit in `LATENCY_TIME`.
const LATENCY_CALLS: usize = 500;
const LATENCY_TIME: Duration = Duration::from_millis(500);
const LATENCY_MAX_CALLS: usize = 200_000;

/// Inputs and integer labels for `BATCHES` batches: normal inputs then uniform labels for each
/// batch in turn, all from one generator seeded with 0.
struct Data {
    x: Vec<Vec<f32>>,
    y: Vec<Vec<u32>>,
}

impl Data {
    fn new(batch: usize, features: usize, classes: usize) -> Data {
        let mut rng = Rng::new(0);
        let mut x = Vec::with_capacity(BATCHES);
        let mut y = Vec::with_capacity(BATCHES);
        for _ in 0..BATCHES {
            let mut xb = vec![0.0f32; batch * features];
            rng.fill_normal(0.0, 1.0, &mut xb);
            let yb: Vec<u32> = (0..batch).map(|_| rng.below(classes) as u32).collect();
            x.push(xb);
            y.push(yb);
        }
        Data { x, y }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Throughput of `call(i)` (which runs batch `i % BATCHES` of `batch` samples): the first call
/// in microseconds, and the median block's samples per second.
fn throughput(batch: usize, mut call: impl FnMut(usize)) -> (f64, f64) {
    let start = Instant::now();
    call(0);
    let first_call_us = micros(start.elapsed());

    // Warm up, and learn how many calls fill a block.
    let mut i = 1;
    let start = Instant::now();
    let mut warm_calls = 0usize;
    while start.elapsed() < WARMUP {
        call(i);
        i += 1;
        warm_calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / warm_calls as f64;
    let calls_per_block = ((BLOCK.as_secs_f64() / per_call).ceil() as usize).max(1);

    let mut rates = Vec::with_capacity(BLOCKS);
    for _ in 0..BLOCKS {
        let start = Instant::now();
        for _ in 0..calls_per_block {
            call(i);
            i += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push((calls_per_block * batch) as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    (first_call_us, rates[BLOCKS / 2])
}

struct Latency {
    first_call_us: f64,
    median_us: f64,
    p10_us: f64,
    p90_us: f64,
    calls: usize,
}

/// Latency of synchronous calls `call(i)`: warm-up as for throughput, then each call timed on
/// its own, at least `LATENCY_CALLS` of them.
fn latency(mut call: impl FnMut(usize)) -> Latency {
    let start = Instant::now();
    call(0);
    let first_call_us = micros(start.elapsed());

    let mut i = 1;
    let start = Instant::now();
    while start.elapsed() < WARMUP {
        call(i);
        i += 1;
    }

    let mut samples = Vec::with_capacity(LATENCY_MAX_CALLS);
    let start = Instant::now();
    while samples.len() < LATENCY_CALLS
        || (start.elapsed() < LATENCY_TIME && samples.len() < LATENCY_MAX_CALLS)
    {
        let t = Instant::now();
        call(i);
        samples.push(micros(t.elapsed()));
        i += 1;
    }
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Latency {
        first_call_us,
        median_us: pick(0.5),
        p10_us: pick(0.1),
        p90_us: pick(0.9),
        calls: samples.len(),
    }
}

/// One JSON line. Keys are fixed identifiers and values are numbers or fixed task names, so
/// nothing needs escaping.
fn json_line(task: &str, batch: usize, threads: usize, fields: &[(&str, f64)]) {
    let mut line = format!(
        "{{\"framework\":\"nnc\",\"task\":\"{task}\",\"batch\":{batch},\"threads\":{threads}"
    );
    for (key, value) in fields {
        line.push_str(&format!(",\"{key}\":{value:.3}"));
    }
    line.push('}');
    println!("{line}");
}

fn report_throughput(task: &str, batch: usize, threads: usize, (first, rate): (f64, f64)) {
    eprintln!("{task} batch {batch}: {rate:.0} samples/s (first call {first:.1} µs)");
    json_line(
        task,
        batch,
        threads,
        &[("samples_per_s", rate), ("first_call_us", first)],
    );
}

fn report_latency(task: &str, threads: usize, lat: &Latency) {
    eprintln!(
        "{task} batch 1: median {:.2} µs, p10 {:.2}, p90 {:.2} over {} calls",
        lat.median_us, lat.p10_us, lat.p90_us, lat.calls
    );
    json_line(
        task,
        1,
        threads,
        &[
            ("median_us", lat.median_us),
            ("p10_us", lat.p10_us),
            ("p90_us", lat.p90_us),
            ("first_call_us", lat.first_call_us),
            ("calls", lat.calls as f64),
        ],
    );
}

/// Training throughput of a fresh model (seed 0) with one input of `features` values and
/// integer labels in `0..classes`, at `batch`: the task of every `*_train` line.
fn train_task<M: Model<Elem = f32>>(
    task: &str,
    batch: usize,
    features: usize,
    classes: usize,
    threads: usize,
) {
    let data = Data::new(batch, features, classes);
    let mut model = M::new(0);
    let mut ws = model.workspace_with_threads(batch, threads);
    let result = throughput(batch, |i| {
        let k = i % BATCHES;
        let (x, y) = ([Values::Float(&data.x[k])], [Values::Ids(&data.y[k])]);
        let loss = model.train_step_dyn(&mut ws, &x, &y).unwrap();
        black_box(loss);
    });
    report_throughput(task, batch, threads, result);
}

fn mlp_train(threads: usize) {
    for batch in [1, 32, 128, 1024] {
        train_task::<mlp::BenchMlp>("mlp_train", batch, 784, 10, threads);
    }
}

fn mlp_infer(threads: usize) {
    let data = Data::new(1, 784, 10);
    let model = mlp::BenchMlp::new(0);
    let mut ws = model.workspace_with_threads(1, threads);
    let lat = latency(|i| {
        let probs = model.predict(&mut ws, &data.x[i % BATCHES]).unwrap();
        black_box(probs);
    });
    report_latency("mlp_infer", threads, &lat);

    let batch = 64;
    let data = Data::new(batch, 784, 10);
    let mut ws = model.workspace_with_threads(batch, threads);
    let result = throughput(batch, |i| {
        let probs = model.predict(&mut ws, &data.x[i % BATCHES]).unwrap();
        black_box(probs);
    });
    report_throughput("mlp_infer", batch, threads, result);
}

fn iris_train(threads: usize) {
    train_task::<iris::BenchIris>("iris_train", 32, 4, 3, threads);
}

fn cnn_train(threads: usize) {
    train_task::<cnn::BenchCnn>("cnn_train", 64, 784, 10, threads);
}

/// Single-image latency of the `cnn_train` model's prediction (no training).
fn cnn_infer(threads: usize) {
    let data = Data::new(1, 784, 10);
    let model = cnn::BenchCnn::new(0);
    let mut ws = model.workspace_with_threads(1, threads);
    let lat = latency(|i| {
        let probs = model.predict(&mut ws, &data.x[i % BATCHES]).unwrap();
        black_box(probs);
    });
    report_latency("cnn_infer", threads, &lat);
}

fn lstm_train(threads: usize) {
    train_task::<lstm::BenchLstm>("lstm_train", 32, 32 * 64, 10, threads);
}

/// Generation with the `char_lstm` model: the latency of one `step` at batch 1, each continuing
/// the state of the one before, over characters drawn uniformly.
fn lstm_generate(threads: usize) {
    let model = char_lstm::CharLstm::new(0);
    let mut ws = model.workspace_with_threads(1, threads);
    let mut rng = Rng::new(0);
    let ids: Vec<u32> = (0..64).map(|_| rng.below(65) as u32).collect();
    let lat = latency(|i| {
        let probs = model.step(&mut ws, &ids[i % ids.len()..][..1]).unwrap();
        black_box(probs);
    });
    eprintln!("lstm_generate: {:.0} tokens/s", 1e6 / lat.median_us);
    report_latency("lstm_generate", threads, &lat);
}

/// Training throughput of the `storyteller` example's GPT (nanoGPT's character-level recipe)
/// at batch 12 on windows of 64 uniform ids below 65, reported in windows and tokens per second.
fn gpt_train(threads: usize) {
    let (batch, context) = (12, 64);
    let mut rng = Rng::new(0);
    let windows: Vec<(Vec<u32>, Vec<u32>)> = (0..BATCHES)
        .map(|_| {
            let mut ids = || (0..batch * context).map(|_| rng.below(65) as u32).collect();
            (ids(), ids())
        })
        .collect();
    let mut model = gpt::Storyteller::new(0);
    let mut ws = model.workspace_with_threads(batch, threads);
    let (first, rate) = throughput(batch, |i| {
        let (x, y) = &windows[i % BATCHES];
        black_box(model.train_step(&mut ws, x, y).unwrap());
    });
    eprintln!("gpt_train: {:.0} tokens/s", rate * context as f64);
    json_line(
        "gpt_train",
        batch,
        threads,
        &[
            ("samples_per_s", rate),
            ("tokens_per_s", rate * context as f64),
            ("first_call_us", first),
        ],
    );
}

/// Generation with the `storyteller` GPT: one token at batch 1 through the key and value
/// cache, each step continuing the sequence of the one before and starting a new one when the
/// 64 positions are full, so that the figure averages over every context length.
fn gpt_generate(threads: usize) {
    let model = gpt::Storyteller::new(0);
    let mut ws = model.workspace_with_threads(1, threads);
    let mut rng = Rng::new(0);
    let ids: Vec<u32> = (0..64).map(|_| rng.below(65) as u32).collect();
    let lat = latency(|i| {
        if ws.position() == 64 {
            ws.reset_sequences();
        }
        let probs = model.step(&mut ws, &ids[i % ids.len()..][..1]).unwrap();
        black_box(probs);
    });
    eprintln!("gpt_generate: {:.0} tokens/s", 1e6 / lat.median_us);
    report_latency("gpt_generate", threads, &lat);
}

fn bn_train(threads: usize) {
    train_task::<allconv::AllConv>("bn_train", 64, 784, 10, threads);
}

fn bn_infer(threads: usize) {
    let batch = 64;
    let data = Data::new(batch, 784, 10);
    let mut model = allconv::AllConv::new(0);
    let mut ws = model.workspace_with_threads(batch, threads);
    for k in 0..BATCHES {
        model.train_step(&mut ws, &data.x[k], &data.y[k]).unwrap();
    }
    let single = Data::new(1, 784, 10);
    let mut one = model.workspace_with_threads(1, threads);
    let lat = latency(|i| {
        let probs = model.predict(&mut one, &single.x[i % BATCHES]).unwrap();
        black_box(probs);
    });
    report_latency("bn_infer", threads, &lat);
    let result = throughput(batch, |i| {
        let probs = model.predict(&mut ws, &data.x[i % BATCHES]).unwrap();
        black_box(probs);
    });
    report_throughput("bn_infer", batch, threads, result);
}

const USAGE: &str = "usage: bench_tasks [--task mlp_train|mlp_infer|iris_train|cnn_train|cnn_infer|lstm_train|lstm_generate|gpt_train|gpt_generate|bn_train|bn_infer|all] [--threads N]";

fn main() -> ExitCode {
    let mut task = String::from("all");
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match key.as_str() {
            "--task" => match value() {
                Some(v) => task = v,
                None => {
                    eprintln!("--task needs a value\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "--threads" => match value().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => threads = n,
                _ => {
                    eprintln!("--threads needs a positive integer\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("unknown argument `{arg}`\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    match task.as_str() {
        "mlp_train" => mlp_train(threads),
        "mlp_infer" => mlp_infer(threads),
        "iris_train" => iris_train(threads),
        "cnn_train" => cnn_train(threads),
        "cnn_infer" => cnn_infer(threads),
        "lstm_train" => lstm_train(threads),
        "lstm_generate" => lstm_generate(threads),
        "gpt_train" => gpt_train(threads),
        "gpt_generate" => gpt_generate(threads),
        "bn_train" => bn_train(threads),
        "bn_infer" => bn_infer(threads),
        "all" => {
            mlp_train(threads);
            mlp_infer(threads);
            iris_train(threads);
            cnn_train(threads);
            cnn_infer(threads);
            lstm_train(threads);
        }
        other => {
            eprintln!("unknown task `{other}`\n{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
