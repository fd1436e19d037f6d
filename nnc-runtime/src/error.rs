//! Run-time errors a user of a generated model can cause with bad arguments.
//!
//! Everything a caller controls (batch sizes, input lengths, labels, the number and kind of
//! inputs and targets) is reported through [`Error`] rather than a panic. Panics are reserved for
//! inconsistencies that only a bug in the code generator can produce.

use thiserror::Error as ThisError;

/// An invalid argument to a generated model's method. Each message says what was expected, what
/// was found, and how to fix it.
#[derive(Clone, PartialEq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// An input holds no values at all.
    #[error("input `{input}` is empty: a batch needs at least one sample")]
    EmptyBatch {
        /// The input's name.
        input: &'static str,
    },

    /// An input's length is not a multiple of its per-sample size.
    #[error(
        "input `{input}` has {len} values, which is not a whole number of samples of \
         {per_sample} values each; each sample of `{input}` must hold exactly {per_sample} \
         values, so pass a multiple of {per_sample}"
    )]
    RaggedInput {
        /// The input's name.
        input: &'static str,
        /// The number of values passed.
        len: usize,
        /// The number of values in one sample.
        per_sample: usize,
    },

    /// A batch is larger than the workspace was created for.
    #[error(
        "batch of {batch} samples in `{input}` exceeds the workspace capacity of {capacity}; \
         create the workspace with `workspace({batch})` or split the batch"
    )]
    BatchTooLarge {
        /// The input whose length determined the batch.
        input: &'static str,
        /// The number of samples passed.
        batch: usize,
        /// The workspace's capacity in samples.
        capacity: usize,
    },

    /// A training batch too small for batch norm's statistics.
    #[error(
        "batch norm `{layer}` sees {found} value(s) per channel in this training batch, but \
         training needs at least 2 to estimate a variance; train with a batch of at least \
         {min_batch} samples (PyTorch refuses the same)"
    )]
    BatchTooSmall {
        /// The batch norm layer.
        layer: &'static str,
        /// The values per channel in this batch (batch size times the values per channel of
        /// one sample).
        found: usize,
        /// The smallest batch that works.
        min_batch: usize,
    },

    /// Two inputs of the same call disagree on the number of samples.
    #[error(
        "`{name}` holds {found} samples but the batch has {expected}; every input of one call \
         must hold the same number of samples"
    )]
    BatchMismatch {
        /// The input that disagrees with the first one.
        name: &'static str,
        /// The batch size set by the first input.
        expected: usize,
        /// The number of samples this input holds.
        found: usize,
    },

    /// A `step` continues another number of sequences than the workspace carries.
    #[error(
        "`{input}` holds {found} sequences but the workspace carries the state of {carried}; \
         step every sequence each time, or call `reset_sequences` on the workspace to start \
         {found} new ones"
    )]
    StepBatch {
        /// The input that set the batch.
        input: &'static str,
        /// The sequences whose state the workspace carries.
        carried: usize,
        /// The sequences this call holds.
        found: usize,
    },

    /// A `step` past the last position a model with attention or a position table was compiled
    /// for.
    #[error(
        "the workspace's sequences already hold {positions} positions, all that the model \
         attends over; call `reset_sequences` and step the last positions again to go on (the \
         generation helper slides this window itself)"
    )]
    ContextFull {
        /// The positions the model was compiled for.
        positions: usize,
    },

    /// A target holds the wrong number of values for the batch.
    #[error(
        "target `{target}` expects {expected} values for a batch of {batch} samples \
         ({} per sample) but got {len}",
        per_sample(*expected, *batch)
    )]
    TargetLength {
        /// The target's name.
        target: &'static str,
        /// The number of values the batch requires.
        expected: usize,
        /// The number of values passed.
        len: usize,
        /// The batch size.
        batch: usize,
    },

    /// A class label is not smaller than the number of classes (and is not the loss's
    /// `ignore_index`).
    #[error(
        "label {label} at position {index} of target `{target}` is out of range: the model has \
         {classes} classes ({}{})",
        label_range(*classes),
        ignore.map_or(String::new(), |i| format!(", or {i} to ignore the position"))
    )]
    LabelOutOfRange {
        /// The target's name.
        target: &'static str,
        /// The position of the first bad label in the target's values.
        index: usize,
        /// The bad label.
        label: u32,
        /// The number of classes.
        classes: usize,
        /// The loss's `ignore_index`, a label that is valid whatever the class count.
        ignore: Option<u32>,
    },

    /// A token id of an integer input is not smaller than the input's declared range.
    #[error(
        "id {id} at position {index} of input `{input}` (sample {}, element {}) is out of \
         range: `{input}` holds ids below {range}; map unknown tokens to an id in 0..{range} \
         before calling the model",
        index / per_sample.max(&1), index % per_sample.max(&1)
    )]
    IdOutOfRange {
        /// The input's name.
        input: &'static str,
        /// The position of the first bad id in the input's values.
        index: usize,
        /// The number of ids per sample, to locate the position within its sample.
        per_sample: usize,
        /// The bad id.
        id: u32,
        /// The declared range of the input's ids.
        range: usize,
    },

    /// The wrong number of inputs or targets was passed to a `*_dyn` method.
    #[error("model `{model}` takes {expected} {what} but {found} were passed; pass them in declaration order")]
    Arity {
        /// `"inputs"`, `"targets"` or `"output gradients"`.
        what: &'static str,
        /// The model's name.
        model: &'static str,
        /// The number the model declares.
        expected: usize,
        /// The number passed.
        found: usize,
    },

    /// `backward` was called without a `forward_train` on the same workspace just before it.
    #[error(
        "`backward` of model `{model}` needs the forward pass of the same batch: call \
         `forward_train` on this workspace first (each `backward` consumes one `forward_train`)"
    )]
    NoForward {
        /// The model's name.
        model: &'static str,
    },

    /// Generation was asked of a model without a step entry point.
    #[error("model `{model}` has no step entry point: {why}")]
    NoStep {
        /// The model's name.
        model: &'static str,
        /// Why the compiler gave it none.
        why: &'static str,
    },

    /// A loss-based method was called on a model that declares no loss.
    #[error(
        "model `{model}` has no loss, so it cannot compute one; train it with `forward_train` \
         and `backward` from output gradients, or add a `loss` to the model"
    )]
    NoLoss {
        /// The model's name.
        model: &'static str,
    },

    /// Values of the wrong kind (integer ids versus float values) were passed for an input
    /// or a target.
    #[error(
        "`{name}` expects {expected} but {found} were passed; wrap it in the matching \
         `Values` variant"
    )]
    ValueKind {
        /// The input's or target's name.
        name: &'static str,
        /// What the model expects, for example "class labels (u32)".
        expected: &'static str,
        /// What was passed, for example "float values".
        found: &'static str,
    },

    /// A learning rate that is negative, infinite or NaN.
    #[error(
        "the learning rate must be a finite number of at least 0, found {lr}; pass a small \
         positive rate such as 1e-3"
    )]
    LearningRate {
        /// The rejected rate.
        lr: f64,
    },

    /// A buffer of a workspace (or another preallocated buffer) could not be allocated.
    #[error(
        "cannot allocate the {what}: {elements} elements{}; ask for a smaller capacity",
        match bytes { Some(b) => format!(" ({:.1} GiB)", *b as f64 / (1u64 << 30) as f64), None => " (more than the address space)".to_string() }
    )]
    Allocation {
        /// The buffer, for example "arena of a workspace for 1099511627776 samples".
        what: String,
        /// Its length in elements, saturated at `usize::MAX` where the size overflows.
        elements: usize,
        /// Its size in bytes, or `None` where that overflows `usize`.
        bytes: Option<usize>,
    },

    /// The operating system refused to start a worker thread of a workspace.
    #[error(
        "cannot start worker thread {index} of {workers} ({reason}); ask for fewer threads, \
         or set NNC_NUM_THREADS"
    )]
    Thread {
        /// The 1-based number of the worker that failed to start.
        index: usize,
        /// How many workers were asked for (the thread count less the caller's).
        workers: usize,
        /// The operating system's reason.
        reason: String,
    },
}

/// Values per sample for the `TargetLength` message; a zero batch cannot reach it through
/// `check::target`, but the message must not divide by zero either way.
fn per_sample(expected: usize, batch: usize) -> usize {
    expected.checked_div(batch).unwrap_or(0)
}

/// The valid label range, written so that a model with no classes does not print `0..=-1`.
fn label_range(classes: usize) -> String {
    match classes {
        0 => "no label is valid".to_string(),
        n => format!("labels 0..={}", n - 1),
    }
}

/// The same text as `Display`, so that an error returned from `main` through `?` prints its
/// message (Rust prints a `main` error with `Debug`) rather than the variant's fields.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
