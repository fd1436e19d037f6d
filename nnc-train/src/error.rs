//! The errors of loading data, training and checkpoints. Each message says what was expected,
//! what was found and where, and how to fix it.

use std::path::PathBuf;
use thiserror::Error as ThisError;

#[derive(ThisError)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A value in a text file (CSV) is not what its column needs.
    #[error("{}, line {line}, column {column}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// 1-based column number (a CSV field).
        column: usize,
        /// What was expected and found.
        message: String,
    },

    /// A binary file does not have the layout its format requires (a wrong magic number, a
    /// truncated body, an inconsistent header).
    #[error("`{}` is not a valid {format} file: {message}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// The format expected, for example "IDX" or "safetensors".
        format: &'static str,
        /// What is wrong.
        message: String,
    },

    /// A checkpoint does not fit the model it is loaded into; nothing was loaded.
    #[error(
        "checkpoint `{}` does not fit model `{model}`, so nothing was loaded:\n  - {}",
        file.display(),
        problems.join("\n  - ")
    )]
    Checkpoint {
        /// The checkpoint file.
        file: PathBuf,
        /// The model it was loaded into.
        model: &'static str,
        /// Every mismatch found.
        problems: Vec<String>,
    },

    /// A dataset does not fit the model or the operation (sample counts, shapes, kinds).
    #[error("{0}")]
    Data(String),

    /// An option is out of its range (a sampling temperature, a learning rate schedule).
    #[error("{0}")]
    Config(String),

    /// The model rejected a batch.
    #[error(transparent)]
    Model(#[from] nnc_runtime::Error),
}

impl Error {
    /// An `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The same text as `Display`, so that an error returned from `main` through `?` prints its
/// message (Rust prints a `main` error with `Debug`) rather than the variant's fields.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
