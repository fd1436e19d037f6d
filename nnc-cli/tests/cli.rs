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

#[test]
fn check_json_prints_one_object_per_diagnostic() {
    let tmp = Temp::new("check-json");
    let file = tmp.file("bad.nnc", BROKEN);
    let out = nnc(&[
        "check".as_ref(),
        "--message-format=json".as_ref(),
        file.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
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
    for cmd in ["check", "compile", "ir"] {
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
