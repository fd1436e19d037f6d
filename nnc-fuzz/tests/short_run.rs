//! The fuzzer's short run, part of `cargo test`: fixed seeds, so every machine examines the
//! same inputs, and small enough to finish in well under a minute in a debug build.

use nnc_fuzz::{corpus, oracle, repo_root, run};

/// Mutants per seed. Four seeds of 1000 take about 30 s in CI's debug build; the long run
/// (`cargo run --profile fuzz -p nnc-fuzz -- --seconds 600`) covers far more.
const PER_SEED: u64 = 1000;

#[test]
fn mutants_of_the_fixtures_break_no_promise() {
    let corpus = corpus(repo_root()).expect("the fixtures");
    let mut report = String::new();
    let mut accepted = 0;
    for seed in 1..=4 {
        let s = run(&corpus, seed, PER_SEED, None);
        accepted += s.accepted;
        for f in &s.findings {
            report.push_str(&format!(
                "seed {seed} mutant {} (of {}): {}\n--- input ---\n{}\n---\n",
                f.mutant.index, f.mutant.from, f.finding, f.mutant.text
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{report}replay one with `cargo run -p nnc-fuzz -- --seed S --replay I`"
    );
    // Mutants are mostly rejected; some must be accepted, or code generation goes unfuzzed.
    assert!(accepted > 120, "only {accepted} accepted mutants");
}

/// Every fixture itself, unmutated: the oracle's promises hold for the corpus too. Every input
/// the fuzzer finds a problem with becomes a fixture once fixed, so this is also the regression
/// test for earlier findings.
#[test]
fn the_fixtures_themselves_break_no_promise() {
    let corpus = corpus(repo_root()).expect("the fixtures");
    for (name, text) in &corpus.files {
        let verdict = oracle::examine(text).unwrap_or_else(|f| panic!("{name}: {f}"));
        assert_eq!(
            verdict == oracle::Verdict::Accepted,
            name.starts_with("ok/"),
            "{name}"
        );
    }
}
