//! Compiles every `tests/fixtures/ok/*.nnc` into `OUT_DIR` with `nnc_core::build`, the way a
//! user's build script would, and writes the list of modules for `src/lib.rs` to include.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ok");
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
    std::fs::write(Path::new(&out).join("modules.rs"), modules).expect("writing modules.rs");
}
