//! Compiles every `tests/fixtures/ok/*.nnc` into `OUT_DIR` with `nnc_core::build`, the way a
//! user's build script would, then a fixed sample of accepted fuzz mutants of those fixtures
//! (renamed and renumbered, see `nnc_fuzz::accepted_mutants`), and writes the list of modules
//! for `src/lib.rs` to include. Building this crate is the test that what `nnc check`
//! accepts compiles, without warnings, under rustc and clippy.

use std::fmt::Write as _;
use std::path::Path;

/// How many mutants to build, and from which seed; the seed is fixed so every build checks the
/// same code. Two hundred mutants are about 200,000 lines of generated Rust: on this 2-core VM
/// they took the crate's debug build from 36 s to about 90 s, and its clippy run from 14 s to
/// 46 s.
const MUTANTS: usize = 200;
const MUTANT_SEED: u64 = 13;

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixtures = repo.join("tests/fixtures/ok");
    println!("cargo:rerun-if-changed={}", fixtures.display());
    let mut files: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("the ok fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "nnc"))
        .collect();
    files.sort();
    nnc_core::build::Config::new()
        .runtime_path("::nnc_runtime")
        .compile(&files)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = std::env::var("OUT_DIR").expect("OUT_DIR in a build script");
    let out = Path::new(&out);
    let mut modules = String::new();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        writeln!(
            modules,
            "pub mod fixture_{stem} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{stem}.rs\")); }}"
        )
        .expect("writing to a String");
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let corpus = nnc_fuzz::corpus(&repo).expect("the fixtures");
    let options = nnc_core::Options {
        runtime_path: "::nnc_runtime".to_string(),
        ..nnc_core::Options::default()
    };
    let mutants = nnc_fuzz::accepted_mutants(&corpus, MUTANT_SEED, MUTANTS);
    assert!(
        mutants.len() * 4 >= MUTANTS * 3,
        "only {} accepted mutants",
        mutants.len()
    );
    for (i, text) in mutants.iter().enumerate() {
        let rust = nnc_core::compile(text, &options)
            .unwrap_or_else(|d| panic!("mutant {i} was accepted and then failed:\n{d:?}\n{text}"));
        // The mutant's source goes beside its Rust, so that a rustc error can be traced back.
        std::fs::write(out.join(format!("mutant_{i}.nnc")), text).expect("writing a mutant");
        std::fs::write(out.join(format!("mutant_{i}.rs")), rust).expect("writing a mutant");
        writeln!(
            modules,
            "pub mod mutant_{i} {{ include!(concat!(env!(\"OUT_DIR\"), \"/mutant_{i}.rs\")); }}"
        )
        .expect("writing to a String");
    }
    std::fs::write(out.join("modules.rs"), modules).expect("writing modules.rs");
}
