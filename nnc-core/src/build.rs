//! Compiling `.nnc` files from a build script, in the style of `prost-build`.
//!
//! Generating code in `build.rs` keeps the model in its own file, leaves the generated Rust
//! on disk where it can be read, and runs the compiler once per change rather than inside
//! every rustc invocation. Add `nnc-core` as a build dependency and `nnc` as a normal one:
//!
//! ```toml
//! [dependencies]
//! nnc = "0.1"
//!
//! [build-dependencies]
//! nnc-core = "0.1"
//! ```
//!
//! `build.rs`:
//!
//! ```no_run
//! fn main() -> Result<(), nnc_core::build::BuildError> {
//!     // Writes $OUT_DIR/xor.rs and asks cargo to rerun when models/xor.nnc changes.
//!     nnc_core::build::compile(&["models/xor.nnc"])?;
//!
//!     // Or with settings:
//!     nnc_core::build::Config::new()
//!         .elem(nnc_core::Elem::F64)
//!         .compile(&["models/precise.nnc"])?;
//!     Ok(())
//! }
//! ```
//!
//! and in the crate:
//!
//! ```text
//! include!(concat!(env!("OUT_DIR"), "/xor.rs"));
//! ```
//!
//! A model with errors fails the build, and the error holds the same report, with source
//! excerpts, that `nnc check` prints.

use crate::{Elem, Options};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Settings for compiling models in a build script.
#[derive(Clone, Debug, Default)]
pub struct Config {
    options: Options,
    out_dir: Option<PathBuf>,
}

impl Config {
    /// The defaults: `f32` code naming the runtime as `::nnc::runtime`, written to `OUT_DIR`.
    pub fn new() -> Self {
        Config::default()
    }

    /// The floating-point type of the generated code.
    pub fn elem(&mut self, elem: Elem) -> &mut Self {
        self.options.elem = elem;
        self
    }

    /// The path through which generated code names the runtime, e.g. `::nnc_runtime` for a
    /// crate that depends on `nnc-runtime` directly rather than on `nnc`.
    pub fn runtime_path(&mut self, path: impl Into<String>) -> &mut Self {
        self.options.runtime_path = path.into();
        self
    }

    /// Where to write the generated files; by default the `OUT_DIR` cargo gives build scripts.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Compiles each file to `<out dir>/<file stem>.rs` and prints
    /// `cargo:rerun-if-changed=<file>` for each, so cargo reruns the build script when a
    /// model changes.
    ///
    /// Every file is attempted; the first failure is returned after the others have been
    /// written, with the rendered diagnostics of a model that does not compile.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), BuildError> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError {
                    file: None,
                    kind: ErrorKind::NoOutDir,
                })?,
        };
        let mut first_error = None;
        for file in files {
            let file = file.as_ref();
            // Printed before compiling, so that fixing a broken model reruns the script.
            println!("cargo:rerun-if-changed={}", file.display());
            if let Err(e) = self.compile_one(file, &out_dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn compile_one(&self, file: &Path, out_dir: &Path) -> Result<(), BuildError> {
        let error = |kind| BuildError {
            file: Some(file.to_path_buf()),
            kind,
        };
        let stem = file
            .file_stem()
            .ok_or_else(|| error(ErrorKind::NoFileStem))?;
        let source = crate::source::read(file).map_err(|e| error(ErrorKind::Read(e)))?;
        let rust = crate::compile(&source, &self.options).map_err(|diags| {
            let name = file.display().to_string();
            error(ErrorKind::Compile(crate::render(
                &diags, &name, &source, false,
            )))
        })?;
        // Not `with_extension`: a stem such as `xor.v2` must keep its own dot.
        let mut name = stem.to_os_string();
        name.push(".rs");
        let out = out_dir.join(name);
        write_atomic(&out, &rust).map_err(|e| error(ErrorKind::Write(out, e)))
    }
}

/// Compiles each file with the default [`Config`].
pub fn compile(files: &[impl AsRef<Path>]) -> Result<(), BuildError> {
    Config::new().compile(files)
}

/// Writes `contents` to `path` so that readers see the old file or the new one, never a
/// half-written one: through a `tempfile` in the same directory (so the rename stays on one
/// file system), flushed to disk, persisted over `path`, and the directory flushed. A file
/// that is replaced keeps its permissions; a new one gets the usual ones (`0o666` less the
/// umask), not the temporary file's private `0o600`. On failure the temporary file is removed.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".nnc-");
    // A new file is created with the usual mode, which the umask then narrows as for any
    // file; a replaced file's mode is set afterwards, past the umask, so it is kept exactly.
    if let Some(p) = default_permissions() {
        builder.permissions(p);
    }
    let mut file = builder.tempfile_in(dir)?;
    if let Ok(existing) = std::fs::metadata(path) {
        file.as_file().set_permissions(existing.permissions())?;
    }
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    // Flushing the directory makes the rename itself durable; not every platform allows it,
    // and the file is complete either way, so a failure here is ignored.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o666))
}

#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

/// Why compiling a model in a build script failed, and for which file.
#[derive(Debug)]
pub struct BuildError {
    file: Option<PathBuf>,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    NoOutDir,
    NoFileStem,
    Read(std::io::Error),
    /// The rendered diagnostics.
    Compile(String),
    Write(PathBuf, std::io::Error),
}

impl BuildError {
    /// The model file the error is about, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_deref().unwrap_or(Path::new("")).display();
        match &self.kind {
            ErrorKind::NoOutDir => write!(
                f,
                "`OUT_DIR` is not set: call this from a build script, or set `Config::out_dir`"
            ),
            ErrorKind::NoFileStem => write!(f, "`{file}` names no file to compile"),
            ErrorKind::Read(e) => write!(f, "cannot read `{file}`: {e}"),
            ErrorKind::Compile(report) => {
                write!(f, "`{file}` does not compile:\n{}", report.trim_end())
            }
            ErrorKind::Write(out, e) => {
                write!(
                    f,
                    "cannot write the code for `{file}` to `{}`: {e}",
                    out.display()
                )
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Read(e) | ErrorKind::Write(_, e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "model Tiny { input x: [2]; target y: [1];
        let p = x -> dense out(1) -> sigmoid;
        loss = binary_cross_entropy(p, y); optimizer = sgd(lr = 0.1); }";

    /// A fresh directory per test, so tests can run in parallel.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nnc-build-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    #[test]
    fn compiles_each_file_to_its_stem() {
        let dir = temp_dir("ok");
        let model = dir.join("tiny.nnc");
        std::fs::write(&model, TINY).unwrap();
        Config::new().out_dir(&dir).compile(&[&model]).unwrap();
        let written = std::fs::read_to_string(dir.join("tiny.rs")).unwrap();
        assert_eq!(written, crate::compile(TINY, &Options::default()).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn settings_reach_the_generated_code() {
        let dir = temp_dir("settings");
        let model = dir.join("tiny.nnc");
        std::fs::write(&model, TINY).unwrap();
        Config::new()
            .elem(Elem::F64)
            .runtime_path("::my_runtime")
            .out_dir(&dir)
            .compile(&[&model])
            .unwrap();
        let written = std::fs::read_to_string(dir.join("tiny.rs")).unwrap();
        let options = Options {
            elem: Elem::F64,
            runtime_path: "::my_runtime".into(),
        };
        assert_eq!(written, crate::compile(TINY, &options).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_model_reports_the_file_and_the_diagnostics() {
        let dir = temp_dir("broken");
        let model = dir.join("broken.nnc");
        std::fs::write(&model, "model M { input x: [2] }").unwrap();
        let err = Config::new().out_dir(&dir).compile(&[&model]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("broken.nnc"), "{text}");
        assert!(text.contains("expected"), "{text}");
        assert_eq!(err.file(), Some(model.as_path()));
        assert!(!dir.join("broken.rs").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_says_which() {
        let dir = temp_dir("missing");
        let err = Config::new()
            .out_dir(&dir)
            .compile(&[dir.join("nope.nnc")])
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot read `"), "{err}");
        assert!(err.to_string().contains("nope.nnc"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
        let dir = temp_dir("atomic");
        let path = dir.join("out.rs");
        write_atomic(&path, "first").unwrap();
        write_atomic(&path, "second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_keeps_permissions_and_does_not_make_files_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("modes");
        let path = dir.join("out.rs");
        write_atomic(&path, "new").unwrap();
        // A new file gets what `File::create` would give under the same umask.
        let plain = dir.join("plain.rs");
        std::fs::File::create(&plain).unwrap();
        let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode_of(&path), mode_of(&plain));
        std::fs::remove_file(&plain).unwrap();
        // A replaced file keeps its mode exactly, whatever the umask.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, "replaced").unwrap();
        assert_eq!(mode_of(&path), 0o640);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_atomic_fails_cleanly_without_a_directory() {
        let dir = temp_dir("nodir");
        assert!(write_atomic(&dir.join("missing").join("out.rs"), "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
