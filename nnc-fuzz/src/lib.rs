//! A mutation fuzzer for the nnc compiler, kept in the repository so that it runs with the
//! tests and finds the same things on every machine.
//!
//! Inputs are the fixtures under `tests/fixtures/{ok,err}` mutated by [`mutate`] (byte and
//! token edits, renames to hostile names, splices of two fixtures), judged by
//! [`oracle::examine`]. Every run is a pure function of its seed and length: the same seed
//! gives the same inputs and the same findings.
//!
//! - `cargo test -p nnc-fuzz` runs a short, fixed-seed sample (`tests/short_run.rs`) and the
//!   unmutated fixtures. An input the fuzzer finds a problem with becomes a fixture once
//!   fixed, so that test is also the regression test.
//! - `cargo run --profile fuzz -p nnc-fuzz -- --seconds 600` is the long run: an optimised
//!   build that keeps debug assertions, so the IR verifier still runs after every pass. It
//!   writes each finding to `target/fuzz-findings/`.
//! - `nnc-build-check` compiles a sample of accepted mutants ([`accepted_mutants`]) under
//!   rustc and clippy, which this crate cannot do in-process.

pub mod mutate;
pub mod oracle;

use mutate::Rng;
use oracle::{Finding, Verdict};
use std::path::Path;
use std::time::{Duration, Instant};

/// The fixture files a run mutates, as (file name, text), sorted by name so that a seed means
/// the same inputs wherever the repository is checked out; and which of them are ok fixtures,
/// the sources of gentle mutants.
pub struct Corpus {
    pub files: Vec<(String, String)>,
    ok: Vec<usize>,
}

/// Reads the corpus from `tests/fixtures/{ok,err}` under `repo`.
pub fn corpus(repo: &Path) -> std::io::Result<Corpus> {
    let mut files = Vec::new();
    for folder in ["ok", "err"] {
        for entry in std::fs::read_dir(repo.join("tests/fixtures").join(folder))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "nnc") {
                let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
                files.push((name, std::fs::read_to_string(&path)?));
            }
        }
    }
    files.sort();
    let ok = (0..files.len())
        .filter(|&i| files[i].0.starts_with("ok/"))
        .collect();
    Ok(Corpus { files, ok })
}

/// The repository root, for tools and tests inside the workspace.
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// One mutant: where it came from and its text.
pub struct Mutant {
    pub seed: u64,
    pub index: u64,
    pub from: String,
    pub text: String,
}

/// The `index`-th mutant of the run with `seed`: a pure function of both.
pub fn mutant(corpus: &Corpus, seed: u64, index: u64) -> Mutant {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut from = rng.below(corpus.files.len());
    let other = &corpus.files[rng.below(corpus.files.len())].1;
    // One in four mutants only renames and renumbers an ok fixture, so that enough of them
    // are accepted for code generation to be fuzzed as hard as the front end.
    let text = if rng.below(4) == 0 {
        if !corpus.ok.is_empty() {
            from = *rng.pick(&corpus.ok);
        }
        mutate::mutate_gently(&mut rng, &corpus.files[from].1)
    } else {
        mutate::mutate(&mut rng, &corpus.files[from].1, other)
    };
    Mutant {
        seed,
        index,
        from: corpus.files[from].0.clone(),
        text,
    }
}

/// A finding with the mutant that caused it.
pub struct Found {
    pub mutant: Mutant,
    pub finding: Finding,
}

/// What a run did.
#[derive(Default)]
pub struct Summary {
    pub inputs: u64,
    pub accepted: u64,
    pub findings: Vec<Found>,
    /// The slowest input and its time, to catch stalls.
    pub slowest: Option<(Duration, u64)>,
}

/// Examines mutants `0..count` of `seed`, stopping early at `deadline`.
pub fn run(corpus: &Corpus, seed: u64, count: u64, deadline: Option<Instant>) -> Summary {
    // proc-macro2, outside a proc macro and with the `span-locations` feature nnc-core needs,
    // keeps the text of every token stream parsed from a string in a thread-local source map
    // for as long as the thread lives (about 30 KB per accepted input here, 1.4 GB in a
    // 15-minute run). Examining each chunk on a thread of its own frees it as the thread ends.
    const CHUNK: u64 = 512;
    let mut summary = Summary::default();
    let mut start = 0;
    while start < count && deadline.is_none_or(|d| Instant::now() < d) {
        let end = count.min(start.saturating_add(CHUNK));
        let part = std::thread::scope(|s| {
            s.spawn(|| run_chunk(corpus, seed, start..end, deadline))
                .join()
                .expect("the oracle catches every panic")
        });
        summary.inputs += part.inputs;
        summary.accepted += part.accepted;
        summary.findings.extend(part.findings);
        if let Some((t, i)) = part.slowest {
            if summary.slowest.is_none_or(|(worst, _)| t > worst) {
                summary.slowest = Some((t, i));
            }
        }
        start = end;
    }
    summary
}

fn run_chunk(
    corpus: &Corpus,
    seed: u64,
    indices: std::ops::Range<u64>,
    deadline: Option<Instant>,
) -> Summary {
    let mut summary = Summary::default();
    for index in indices {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let m = mutant(corpus, seed, index);
        let start = Instant::now();
        // The oracle guards each stage; this catches a panic in its own checks (the `syn`
        // parse, formatting comparisons), so that the finding still names the mutant.
        let result = std::panic::catch_unwind(|| oracle::examine(&m.text)).unwrap_or_else(|_| {
            Err(Finding::Panic {
                stage: "oracle",
                message: "a panic outside the compiler's entry points".to_string(),
            })
        });
        let took = start.elapsed();
        if summary.slowest.is_none_or(|(t, _)| took > t) {
            summary.slowest = Some((took, index));
        }
        summary.inputs += 1;
        match result {
            Ok(Verdict::Accepted) => summary.accepted += 1,
            Ok(Verdict::Rejected) => {}
            Err(finding) => summary.findings.push(Found { mutant: m, finding }),
        }
    }
    summary
}

/// `count` distinct accepted mutants of the ok fixtures, made by renames and number changes
/// only (see [`mutate::mutate_gently`]), which keep most files valid while giving their names
/// and numbers values that the generated Rust must survive. Deterministic in `seed`; it tries
/// at most fifty times `count` mutants, so it may return fewer.
pub fn accepted_mutants(corpus: &Corpus, seed: u64, count: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut rng = Rng::new(seed);
    for _ in 0..count * 50 {
        if out.len() == count || corpus.ok.is_empty() {
            break;
        }
        let src = &corpus.files[*rng.pick(&corpus.ok)].1;
        let text = mutate::mutate_gently(&mut rng, src);
        if &text != src && !nnc_core::check(&text).has_errors() && seen.insert(text.clone()) {
            out.push(text);
        }
    }
    out
}
