//! Runs the `nnc` binary on small models written to temporary files and checks its output and
//! exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

const XOR: &str = "model Xor {
    input  x: [2];
    target y: [1];
    let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;
    loss = binary_cross_entropy(p, y);
    optimizer = sgd(lr = 0.5);
}
";

/// `relux` is not an activation; the message must name it.
const BROKEN: &str = "model Bad {
    input  x: [2];
    target y: [1];
    let p = x -> dense out(1) -> relux;
    loss = binary_cross_entropy(p, y);
    optimizer = sgd(lr = 0.5);
}
";

/// A file in a directory of its own, removed when dropped, so tests can run in parallel.
struct Temp {
    dir: PathBuf,
}

impl Temp {
    fn new(test: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!("nnc-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Temp { dir }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nnc(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run nnc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_a_good_model() {
    let tmp = Temp::new("check-ok");
    let file = tmp.file("xor.nnc", XOR);
    let out = nnc(&["check".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok: 1 model");
}

#[test]
fn check_renders_errors_with_their_location() {
    let tmp = Temp::new("check-err");
    let file = tmp.file("bad.nnc", BROKEN);
    let out = nnc(&["check".as_ref(), "--color=never".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("relux"), "{err}");
    assert!(err.contains("error["), "{err}");
    // The location line, pointing into the file: `--> /tmp/.../bad.nnc:4:34` (drawn as `┌─`
    // with codespan-reporting's default characters).
    assert!(
        err.contains(&format!(" {}:4:34\n", file.display())),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "no colour was asked for: {err}");
}

#[test]
fn check_colours_when_asked() {
    let tmp = Temp::new("check-color");
    let file = tmp.file("bad.nnc", BROKEN);
    let out = nnc(&["check".as_ref(), "--color=always".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains('\x1b'));
}

/// The stdout of `nnc check --message-format=json` on a file with errors.
fn check_json(file: &std::path::Path) -> String {
    let out = nnc(&[
        "check".as_ref(),
        "--message-format=json".as_ref(),
        file.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    text(&out.stdout)
}

#[test]
fn check_json_prints_one_object_per_diagnostic() {
    let tmp = Temp::new("check-json");
    let file = tmp.file("bad.nnc", BROKEN);
    let stdout = check_json(&file);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["severity"], "error");
        assert!(
            v["code"].as_str().is_some_and(|c| c.starts_with('E')),
            "{v}"
        );
        assert_eq!(v["file"], file.display().to_string());
        assert!(v["help"].is_array());
        let (start, end) = (v["start"].as_u64().unwrap(), v["end"].as_u64().unwrap());
        assert!(start <= end && end as usize <= BROKEN.len());
        assert!(v["line"].as_u64().unwrap() >= 1 && v["column"].as_u64().unwrap() >= 1);
    }
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert!(
        first["message"].as_str().unwrap().contains("relux"),
        "{first}"
    );
    assert_eq!(first["line"], 4);
}

#[test]
fn check_json_gives_end_positions_and_secondary_labels() {
    let tmp = Temp::new("check-json-labels");
    let src = "model M {\n    input x: [2];\n    target y: [1];\n    let h = x -> relu;\n    let h = x -> tanh;\n    let p = h -> dense out(1);\n    loss = mse(p, y);\n    optimizer = sgd(lr = 0.1);\n}\n";
    let file = tmp.file("twice.nnc", src);
    let stdout = check_json(&file);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["code"], "E0102", "{v}");
    // The second `h`, on line 5, columns 9 to 10, and the first definition as a label.
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(5), Some(9)),
        "{v}"
    );
    assert_eq!(
        (v["end_line"].as_u64(), v["end_column"].as_u64()),
        (Some(5), Some(10)),
        "{v}"
    );
    let labels = v["labels"].as_array().expect("labels");
    assert!(
        labels
            .iter()
            .any(|l| l["line"] == 4 && l["column"] == 9 && l["end_column"] == 10),
        "{v}"
    );
    assert!(
        labels
            .iter()
            .all(|l| !l["message"].as_str().unwrap().is_empty()),
        "{v}"
    );
}

#[test]
fn compile_writes_what_the_library_generates() {
    let tmp = Temp::new("compile");
    let file = tmp.file("xor.nnc", XOR);
    let rs = tmp.dir.join("xor.rs");
    let out = nnc(&[
        "compile".as_ref(),
        file.as_ref(),
        "-o".as_ref(),
        rs.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let written = std::fs::read_to_string(&rs).unwrap();
    assert_eq!(
        written,
        nnc_core::compile(XOR, &nnc_core::Options::default()).unwrap()
    );
}

#[test]
fn compile_to_stdout_honours_the_settings() {
    let tmp = Temp::new("compile-stdout");
    let file = tmp.file("xor.nnc", XOR);
    let args = [
        "compile",
        "--elem",
        "f64",
        "--runtime-path",
        "::nnc_runtime",
    ];
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    args.push(file.as_ref());
    let out = nnc(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let options = nnc_core::Options {
        elem: nnc_core::Elem::F64,
        runtime_path: "::nnc_runtime".to_string(),
    };
    assert_eq!(text(&out.stdout), nnc_core::compile(XOR, &options).unwrap());
}

#[test]
fn compile_reports_errors_and_writes_nothing() {
    let tmp = Temp::new("compile-err");
    let file = tmp.file("bad.nnc", BROKEN);
    let rs = tmp.dir.join("bad.rs");
    let out = nnc(&[
        "compile".as_ref(),
        file.as_ref(),
        "-o".as_ref(),
        rs.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("relux"));
    assert!(!rs.exists());
}

#[test]
fn ir_prints_one_stage_or_all() {
    let tmp = Temp::new("ir");
    let file = tmp.file("xor.nnc", XOR);
    let out = nnc(&[
        "ir".as_ref(),
        file.as_ref(),
        "--stage".as_ref(),
        "fused".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        nnc_core::dump(XOR, nnc_core::Stage::Fused)
            .unwrap()
            .trim_end()
    );

    let out = nnc(&["ir".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(0));
    let all = text(&out.stdout);
    for stage in nnc_core::Stage::ALL {
        assert!(
            all.contains(&format!("// stage: {}\n", stage.as_str())),
            "{all}"
        );
    }
}

#[test]
fn a_missing_file_exits_with_2() {
    let tmp = Temp::new("missing");
    let file = tmp.dir.join("nope.nnc");
    for cmd in ["check", "compile", "ir", "summary", "graph"] {
        let out = nnc(&[cmd.as_ref(), file.as_ref()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("error: cannot read `{}`: ", file.display())),
            "{err}"
        );
    }
}

#[test]
fn bad_arguments_are_clap_errors() {
    let out = nnc(&[
        "ir".as_ref(),
        "x.nnc".as_ref(),
        "--stage".as_ref(),
        "nope".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("possible values"));
}

#[test]
fn summary_prints_the_library_table() {
    let tmp = Temp::new("summary");
    let file = tmp.file("xor.nnc", XOR);
    let out = nnc(&[
        "summary".as_ref(),
        file.as_ref(),
        "--batch".as_ref(),
        "8".as_ref(),
        "--elem".as_ref(),
        "f64".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let program = nnc_core::analyze(XOR).unwrap().programs.remove(0);
    let options = nnc_core::report::SummaryOptions {
        batch: 8,
        elem: nnc_core::Elem::F64,
    };
    let stdout = text(&out.stdout);
    assert_eq!(stdout, nnc_core::report::summary_with(&program, &options));
    assert!(
        stdout.starts_with("Model: Xor (input x [2], output p [1])\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Arena at batch 8:"), "{stdout}");

    let out = nnc(&["summary".as_ref(), file.as_ref()]);
    assert_eq!(text(&out.stdout), nnc_core::report::summary(&program, 32));
}

#[test]
fn graph_prints_the_library_dot() {
    let tmp = Temp::new("graph");
    let file = tmp.file("xor.nnc", XOR);
    let out = nnc(&[
        "graph".as_ref(),
        file.as_ref(),
        "--format".as_ref(),
        "dot".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let programs = nnc_core::analyze(XOR).unwrap().programs;
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        nnc_core::report::dot_all(&programs, &Default::default())
    );
    assert!(stdout.contains("subgraph cluster_"), "{stdout}");

    // The graph before fusion with the backward pass, written to a file.
    let dot = tmp.dir.join("xor.dot");
    let out = nnc(&[
        "graph".as_ref(),
        file.as_ref(),
        "--stage".as_ref(),
        "grad".as_ref(),
        "--backward".as_ref(),
        "-o".as_ref(),
        dot.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let grad = nnc_core::report::programs_at(XOR, nnc_core::Stage::Grad).unwrap();
    let options = nnc_core::report::DotOptions { backward: true };
    assert_eq!(
        std::fs::read_to_string(&dot).unwrap(),
        nnc_core::report::dot_all(&grad, &options)
    );
}

#[test]
fn reports_on_a_broken_model_render_its_errors() {
    let tmp = Temp::new("report-err");
    let file = tmp.file("bad.nnc", BROKEN);
    for cmd in ["summary", "graph"] {
        let out = nnc(&[cmd.as_ref(), "--color=never".as_ref(), file.as_ref()]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(text(&out.stderr).contains("relux"), "{cmd}");
        assert!(out.stdout.is_empty(), "{cmd}");
    }
}

const NO_DOT: &str = "error: graphviz's `dot` program was not found
help: install graphviz (apt install graphviz) or use --format dot
";

/// Whatever this machine has: SVG from Graphviz when `dot` is installed, the clear error when not.
#[test]
fn graph_svg_renders_or_explains() {
    let tmp = Temp::new("svg");
    let file = tmp.file("xor.nnc", XOR);
    let out = nnc(&[
        "graph".as_ref(),
        file.as_ref(),
        "--format".as_ref(),
        "svg".as_ref(),
    ]);
    let have_dot = Command::new("dot").arg("-V").output().is_ok();
    if have_dot {
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("<svg"), "{}", text(&out.stdout));
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(text(&out.stderr), NO_DOT);
    }
}

/// With no `dot` on the PATH, whether or not this machine has Graphviz.
#[test]
fn graph_svg_without_graphviz_is_a_clear_error() {
    let tmp = Temp::new("svg-missing");
    let file = tmp.file("xor.nnc", XOR);
    let svg = tmp.dir.join("xor.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args([
            "graph".as_ref(),
            file.as_os_str(),
            "--format=svg".as_ref(),
            "-o".as_ref(),
            svg.as_os_str(),
        ])
        .env("PATH", &tmp.dir)
        .output()
        .expect("run nnc");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), NO_DOT);
    assert!(!svg.exists());
}

/// A stand-in `dot` on the PATH: the DOT text goes to its stdin with `-Tsvg`, and what it
/// prints is written to `-o`.
#[cfg(unix)]
#[test]
fn graph_svg_writes_what_dot_prints() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = Temp::new("svg-fake");
    let file = tmp.file("xor.nnc", XOR);
    let fake = tmp.file(
        "dot",
        "#!/bin/sh\n[ \"$1\" = -Tsvg ] || exit 3\necho '<svg>'\ncat\necho '</svg>'\n",
    );
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = std::ffi::OsString::from(&tmp.dir);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    let svg = tmp.dir.join("xor.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args([
            "graph".as_ref(),
            file.as_os_str(),
            "--format=svg".as_ref(),
            "-o".as_ref(),
            svg.as_os_str(),
        ])
        .env("PATH", path)
        .output()
        .expect("run nnc");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let programs = nnc_core::analyze(XOR).unwrap().programs;
    let dot = nnc_core::report::dot_all(&programs, &Default::default());
    assert_eq!(
        std::fs::read_to_string(&svg).unwrap(),
        format!("<svg>\n{dot}</svg>\n")
    );
}

#[test]
fn fmt_rewrites_and_check_reports() {
    let tmp = Temp::new("fmt");
    let messy = "model M{input  x:[2];target y:[1];\n\n\n  let p=x->dense out(1)->sigmoid; // keep me\nloss=binary_cross_entropy(p,y);optimizer=sgd(lr=0.5);}\n";
    let file = tmp.file("m.nnc", messy);
    let tidy = tmp.file("tidy.nnc", &nnc_core::syntax::fmt::format(messy).unwrap());
    // --check changes nothing and names the file that would change.
    let out = nnc(&[
        "fmt".as_ref(),
        "--check".as_ref(),
        file.as_ref(),
        tidy.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), file.display().to_string());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy);
    // Without it, the file is rewritten; then it is formatted.
    let out = nnc(&["fmt".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert!(
        formatted.contains("    let p = x -> dense out(1) -> sigmoid; // keep me\n"),
        "{formatted}"
    );
    let out = nnc(&["fmt".as_ref(), "--check".as_ref(), file.as_ref()]);
    assert_eq!(out.status.code(), Some(0));
    // A syntax error is reported, and the file left alone.
    let broken = tmp.file("broken.nnc", "model M { input x: [2] }");
    let out = nnc(&["fmt".as_ref(), broken.as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("E0001"), "{}", text(&out.stderr));
}
