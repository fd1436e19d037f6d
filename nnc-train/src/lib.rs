//! The training workflow around nnc-generated models: datasets and loaders, `fit` and
//! `evaluate` with progress reporting, safetensors checkpoints, and text generation from
//! models with a step entry point.
//!
//! Everything here is generic over [`nnc_runtime::Model`], the trait every generated model
//! implements, so one `fit` trains any model. Generated code itself never depends on this
//! crate: it only needs nnc-runtime.
//!
//! ```no_run
//! # use nnc_train::{data, fit, FitOptions};
//! # fn demo<M: nnc_runtime::Model<Elem = f32>>() -> Result<(), nnc_train::Error> {
//! let train = data::mnist("../shared/data/mnist", data::Split::Train)?;
//! let mut model = M::new(0);
//! let history = fit(&mut model, &train, &FitOptions { epochs: 5, batch_size: 32, ..FitOptions::default() })?;
//! println!("final validation accuracy: {:?}", history.last().and_then(|e| e.validation));
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod data;
mod error;
mod fit;
pub mod generate;
mod progress;

pub use data::{Column, Dataset};
pub use error::Error;
pub use fit::{
    evaluate, fit, fit_with, predict, Callback, Control, EarlyStopping, Epoch, FitOptions, History,
    Validation, Verbosity,
};
