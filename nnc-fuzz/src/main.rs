//! The fuzzer's long run: `cargo run --profile fuzz -p nnc-fuzz -- --seconds 600`.
//!
//! Each job mutates the fixtures with its own seed (`--seed` plus the job's number) until the
//! time or the count runs out, and every finding is written to the output folder as the input
//! (`<seed>-<index>.nnc`) and what went wrong (`<seed>-<index>.txt`). Rerun one input with
//! `--seed S --replay I`.

use clap::Parser;
use nnc_fuzz::{corpus, mutant, oracle, repo_root, run, Summary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Mutation fuzzer for the nnc compiler")]
struct Args {
    /// The first seed; job k uses seed + k.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// Stop after this many inputs per job.
    #[arg(long)]
    count: Option<u64>,
    /// Parallel jobs; by default one per core.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: Option<u64>,
    /// Where findings are written.
    #[arg(long, default_value = "target/fuzz-findings")]
    out: PathBuf,
    /// Examine only mutant I of --seed, printing it and the verdict.
    #[arg(long)]
    replay: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let corpus = match corpus(repo_root()) {
        Ok(c) if !c.files.is_empty() => c,
        Ok(_) => {
            eprintln!("error: no fixtures found under {}", repo_root().display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: reading the fixtures: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(index) = args.replay {
        let m = mutant(&corpus, args.seed, index);
        println!("// from {}\n{}", m.from, m.text);
        return match oracle::examine(&m.text) {
            Ok(verdict) => {
                println!("// {verdict:?}");
                ExitCode::SUCCESS
            }
            Err(finding) => {
                println!("// finding: {finding}");
                ExitCode::FAILURE
            }
        };
    }
    let count = match (args.count, args.seconds) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => 10_000,
    };
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64));
    let started = Instant::now();
    let summaries: Vec<Summary> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|k| {
                let corpus = &corpus;
                s.spawn(move || run(corpus, args.seed.wrapping_add(k), count, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fuzz job"))
            .collect()
    });
    let inputs: u64 = summaries.iter().map(|s| s.inputs).sum();
    let accepted: u64 = summaries.iter().map(|s| s.accepted).sum();
    let findings: Vec<_> = summaries.iter().flat_map(|s| &s.findings).collect();
    println!(
        "{inputs} inputs ({accepted} accepted) in {:.0} s on {jobs} jobs, seeds {}..={}",
        started.elapsed().as_secs_f64(),
        args.seed,
        args.seed.wrapping_add(jobs - 1)
    );
    for (k, s) in summaries.iter().enumerate() {
        if let Some((t, i)) = s.slowest {
            println!(
                "seed {}: slowest input {i}, {:.1} ms",
                args.seed.wrapping_add(k as u64),
                t.as_secs_f64() * 1e3
            );
        }
    }
    if findings.is_empty() {
        println!("no findings");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: creating {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    for f in &findings {
        let stem = args
            .out
            .join(format!("{}-{}", f.mutant.seed, f.mutant.index));
        let written = std::fs::write(stem.with_extension("nnc"), &f.mutant.text).and_then(|()| {
            std::fs::write(
                stem.with_extension("txt"),
                format!("mutant of {}\n{}\n", f.mutant.from, f.finding),
            )
        });
        if let Err(e) = written {
            eprintln!("error: writing {}: {e}", stem.display());
        }
        println!("{}: {}", stem.display(), f.finding);
    }
    println!("{} findings", findings.len());
    ExitCode::FAILURE
}
