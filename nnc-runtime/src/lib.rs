//! The runtime that nnc-generated models call: kernels, the activation arena, argument checks,
//! initializers, optimizers, learning-rate schedules, metrics, and the `Model` trait every
//! generated model implements.
//!
//! Generated code refers to this crate as `rt`. Everything numeric is generic over [`Float`],
//! which is implemented for `f32` and `f64`. Tensors are row-major slices; a batched value with
//! `n` elements per sample and a batch of `b` samples is `b * n` contiguous elements.
//!
//! All `unsafe` code lives in [`kernels`], each block justified by a `SAFETY:` comment.

#![warn(missing_docs)]

pub mod aligned;
pub mod arena;
pub mod check;
pub mod error;
mod float;
pub mod init;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod revision;
pub mod rng;
pub mod schedule;
pub mod vecmath;

pub use aligned::Aligned;
pub use arena::{scratch_per_thread, Arena, Slot};
pub use error::Error;
pub use float::Float;
pub use kernels::{Act, Exec};
pub use metrics::Metrics;
pub use model::{ElemKind, Mode, Model, ParamInfo, TensorInfo, Values};
pub use optim::{
    clip_grad_norm, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer, Rmsprop,
    RmspropConfig, Sgd, SgdConfig,
};
pub use revision::Revision;
pub use rng::Rng;
