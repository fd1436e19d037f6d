//! nnc: a declarative neural-network compiler for Rust.
//!
//! Write a model in the nnc language, and nnc compiles it into plain, specialized Rust:
//! forward pass, backward pass and optimizer step, every size a constant, no allocation
//! per training step.
//!
//! ```
//! nnc::model! {
//!     model Xor {
//!         input  x: [2];
//!         target y: [1];
//!         let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;
//!         loss = binary_cross_entropy(p, y);
//!         optimizer = sgd(lr = 0.5);
//!     }
//! }
//!
//! let mut model = Xor::new(7);
//! let mut ws = model.workspace(4);
//! let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
//! let y = [0.0, 1.0, 1.0, 0.0];
//! for _ in 0..2000 {
//!     model.train_step(&mut ws, &x, &y).unwrap();
//! }
//! let p = model.predict(&mut ws, &x).unwrap();
//! assert!(p[1] > 0.5 && p[0] < 0.5);
//! ```
//!
//! For real data, `nnc::train` (the default feature `train`) loads CSV, MNIST and text files
//! and trains any model with `fit(&mut model, &data, &FitOptions { epochs: 5, ..Default::default() })`.
//!
//! The language is documented in `grammar/README.md`; the pipeline in `ARCHITECTURE.md`.

pub use nnc_macros::{include_model, model};
/// The runtime that generated code calls: kernels, initializers, optimizers, the `Model` trait.
pub use nnc_runtime as runtime;
pub use nnc_runtime::{Error, Model};
/// The training workflow: datasets and loaders, `fit`/`evaluate` with progress, checkpoints.
/// It is the `train` feature, on by default.
#[cfg(feature = "train")]
pub use nnc_train as train;

/// The README's Rust blocks, compiled (and, unless marked `no_run`, run) as doctests so that
/// the examples a newcomer copies first stay true.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "train"))]
pub struct ReadmeDoctests;
