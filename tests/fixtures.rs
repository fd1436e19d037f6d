//! Fixture-driven compiler tests: every `tests/fixtures/ok/*.nnc` must compile, and its IR at
//! each stage and its generated Rust are snapshotted; every `tests/fixtures/err/*.nnc` must
//! fail with the codes its `// expect:` line names, and its rendered diagnostics are
//! snapshotted. Cheap invariants run on every fixture: generated code parses as a Rust file,
//! f64 generation succeeds, and every diagnostic span lies inside the source.

use std::fs;
use std::path::Path;

fn settings(path: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.set_input_file(path);
    s.set_snapshot_path("snapshots");
    s
}

/// Compiles an `ok` fixture and returns the IR of every stage and the Rust text.
fn check_ok(path: &Path) -> (String, String) {
    let src = fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let compilation = nnc_core::analyze(&src).unwrap_or_else(|d| {
        panic!(
            "{name} should compile:\n{}",
            nnc_core::render(&d, &name, &src, false)
        )
    });
    let mut ir = String::new();
    for (stage, text) in &compilation.stages {
        ir.push_str(&format!("## {}\n{text}\n", stage.as_str()));
    }
    // Generate from the analysis above rather than running the pipeline a second time.
    let rust = nnc_core::codegen::generate(&compilation.programs, &nnc_core::Options::default());
    syn::parse_file(&rust).unwrap_or_else(|e| panic!("{name}: generated Rust does not parse: {e}"));
    let f64_options = nnc_core::Options {
        elem: nnc_core::Elem::F64,
        ..Default::default()
    };
    let rust64 = nnc_core::compile(&src, &f64_options).unwrap();
    assert!(
        rust64.contains("Vec<f64>"),
        "{name}: f64 code should use f64"
    );
    (ir, rust)
}

/// Checks an `err` fixture and returns its rendered diagnostics.
fn check_err(path: &Path) -> String {
    let src = fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let diags = nnc_core::check(&src);
    assert!(diags.has_errors(), "{name} should fail to compile");
    let expected: Vec<&str> = src
        .lines()
        .find_map(|l| l.strip_prefix("// expect:"))
        .unwrap_or_else(|| panic!("{name} needs an `// expect: CODE` first line"))
        .split_whitespace()
        .collect();
    let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
    for code in &expected {
        assert!(
            found.contains(code),
            "{name}: expected {code}, found {found:?}"
        );
    }
    for d in &diags {
        assert!(
            d.span.end as usize <= src.len() && d.span.start <= d.span.end,
            "{name}: bad span {}",
            d.span
        );
        assert!(
            !d.message.ends_with('.'),
            "{name}: message ends with a period: {}",
            d.message
        );
        assert!(
            !d.message.starts_with(|c: char| c.is_uppercase()),
            "{name}: message starts uppercase: {}",
            d.message
        );
    }
    nnc_core::render(&diags, &name, &src, false)
}

#[test]
fn ok_fixtures() {
    insta::glob!("fixtures/ok/*.nnc", |path| {
        let (ir, rust) = check_ok(path);
        settings(path).bind(|| {
            insta::assert_snapshot!("ir", ir);
            insta::assert_snapshot!("rust", rust);
        });
    });
}

#[test]
fn err_fixtures() {
    insta::glob!("fixtures/err/*.nnc", |path| {
        let rendered = check_err(path);
        settings(path).bind(|| insta::assert_snapshot!("diagnostics", rendered));
    });
}

/// `nnc summary` and `nnc graph` (forward, and with the backward pass) for a few fixtures.
#[test]
fn report_fixtures() {
    insta::glob!(
        "fixtures/ok/{conv,lstm,mnist_mlp,no_bias,two_models,xor}.nnc",
        |path| {
            let src = fs::read_to_string(path).unwrap();
            let programs = nnc_core::analyze(&src).unwrap().programs;
            let summaries: Vec<String> = programs
                .iter()
                .map(|p| nnc_core::report::summary(p, 32))
                .collect();
            let forward = nnc_core::report::dot_all(&programs, &Default::default());
            let backward = nnc_core::report::dot_all(
                &programs,
                &nnc_core::report::DotOptions { backward: true },
            );
            settings(path).bind(|| {
                insta::assert_snapshot!("summary", summaries.join("\n"));
                insta::assert_snapshot!("graph", forward);
                insta::assert_snapshot!("graph_backward", backward);
            });
        }
    );
}

/// On every fixture, before and after fusion, the drawing declares each value it shows (as a
/// node `vN` or the steps `vN_0`... of a fused kernel) and every edge joins declared nodes.
#[test]
fn graphs_join_declared_nodes() {
    use nnc_core::ir::Phase;
    use nnc_core::report::{dot_all, programs_at, DotOptions};
    use std::collections::HashSet;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ok");
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let src = fs::read_to_string(&path).unwrap();
        for stage in [nnc_core::Stage::Grad, nnc_core::Stage::Fused] {
            let programs = programs_at(&src, stage).unwrap();
            for backward in [false, true] {
                let text = dot_all(&programs, &DotOptions { backward });
                let what = format!(
                    "{} at {} (backward {backward})",
                    path.display(),
                    stage.as_str()
                );
                let mut declared = HashSet::new();
                let mut edges = Vec::new();
                for line in text.lines().map(str::trim) {
                    let Some((head, _)) = line.split_once(" [") else {
                        continue;
                    };
                    match head.split_once(" -> ") {
                        Some((from, to)) => edges.push((from.to_string(), to.to_string())),
                        None if !["graph", "node", "edge"].contains(&head) => {
                            assert!(declared.insert(head.to_string()), "{what}: {head} twice");
                        }
                        None => {}
                    }
                }
                for (from, to) in &edges {
                    assert!(
                        declared.contains(from) && declared.contains(to),
                        "{what}: {from} -> {to}"
                    );
                }
                let prefix = |k: usize| {
                    if programs.len() == 1 {
                        String::new()
                    } else {
                        format!("m{k}_")
                    }
                };
                for (k, program) in programs.iter().enumerate() {
                    for (i, node) in program.graph.nodes.iter().enumerate() {
                        let id = format!("{}v{i}", prefix(k));
                        let shown = declared.contains(&id) || declared.contains(&format!("{id}_0"));
                        // The inference-only copies (batch norm folded, one step) are never
                        // drawn.
                        let wanted = match node.phase {
                            Phase::Backward | Phase::Pullback => backward,
                            Phase::Fold | Phase::Infer | Phase::Step => false,
                            _ => true,
                        };
                        assert_eq!(shown, wanted, "{what}: value %{i} ({})", node.name);
                    }
                }
            }
        }
    }
}

/// Every snapshot file belongs to a fixture that still exists, so renamed or deleted fixtures
/// cannot leave stale snapshots behind.
#[test]
fn no_unreferenced_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for entry in fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            file.ends_with(".snap"),
            "unexpected file {file} in tests/snapshots (an unreviewed snapshot?)"
        );
        let (kind, fixture) = file
            .trim_end_matches(".snap")
            .split_once('@')
            .expect("snapshot names are kind@fixture");
        let folder = if kind == "diagnostics" { "err" } else { "ok" };
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(folder)
            .join(fixture);
        assert!(
            source.exists(),
            "snapshot {file} has no fixture {}",
            source.display()
        );
    }
}

/// Every model file in the repository is in the canonical layout of `nnc fmt` (files with
/// syntax errors excepted), so the examples teach the style the formatter produces.
#[test]
fn model_files_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        "tests/fixtures/ok",
        "tests/fixtures/err",
        "examples",
        "examples/models",
    ];
    let mut checked = 0;
    for dir in dirs {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "nnc") {
                continue;
            }
            let src = fs::read_to_string(&path).unwrap();
            let Ok(formatted) = nnc_core::syntax::fmt::format(&src) else {
                continue;
            };
            assert!(
                formatted == src,
                "{} is not formatted: run `cargo run -p nnc-cli -- fmt {}`",
                path.display(),
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} files checked");
}
