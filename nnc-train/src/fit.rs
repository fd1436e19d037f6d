//! `fit`, `evaluate` and `predict`: the Keras-style training loop over any generated model.
//!
//! `fit` runs epochs of (optionally shuffled) mini-batches through the model's training step,
//! keeps the last partial batch unless told to drop it, measures each epoch's loss, accuracy and
//! throughput from the training forward passes themselves (no extra pass), evaluates on
//! validation data, applies a learning-rate schedule, stops early, and calls callbacks. It does
//! not allocate per batch: batches are slices of the dataset or are gathered into buffers made
//! once, and the argument lists live on the stack.

use crate::data::{empty_arguments, slices, Batcher, Dataset, MAX_COLUMNS};
use crate::progress::Progress;
use crate::Error;
use nnc_runtime::schedule::Schedule;
use nnc_runtime::{ElemKind, Float, Metrics, Model, Rng, Values};
use std::time::Instant;

/// How much `fit` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// A progress bar when stderr is a terminal, one line per epoch otherwise.
    #[default]
    Auto,
    /// Always a progress bar (drawn only on a terminal).
    Progress,
    /// One line per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

/// Where validation figures come from.
#[derive(Clone, Copy, Debug, Default)]
pub enum Validation<'a, T> {
    /// No validation.
    #[default]
    None,
    /// Hold out this fraction of the training data (shuffled with the fit's seed), like
    /// Keras's `validation_split`.
    Split(f64),
    /// A separate validation set.
    Data(&'a Dataset<T>),
}

/// Stop when the monitored loss (validation loss if there is validation data, else training
/// loss) has not improved by more than `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement to tolerate.
    pub patience: usize,
    /// The least decrease that counts as an improvement.
    pub min_delta: f64,
    /// Put back the parameters of the best epoch when stopping (or at the end).
    pub restore_best: bool,
}

/// The settings of [`fit`]; `FitOptions::default()` is 1 epoch of batches of 32, shuffled with
/// seed 0, no validation, automatic progress display.
pub struct FitOptions<'a, T> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per training step; also the workspace capacity.
    pub batch_size: usize,
    /// Shuffle the samples before every epoch.
    pub shuffle: bool,
    /// Seed of the shuffles and of a validation split.
    pub seed: u64,
    /// Skip the last batch of an epoch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Validation data.
    pub validation: Validation<'a, T>,
    /// The learning rate of each epoch (0-based), set before the epoch starts.
    pub schedule: Option<&'a dyn Schedule>,
    /// Early stopping.
    pub early_stopping: Option<EarlyStopping>,
    /// What to print.
    pub verbosity: Verbosity,
    /// Threads the kernels run on; `None` takes `NNC_NUM_THREADS`, or as many as the machine
    /// has. For a given count, a seeded fit gives the same bits run to run.
    pub threads: Option<usize>,
}

impl<T> Default for FitOptions<'_, T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            drop_last: false,
            validation: Validation::None,
            schedule: None,
            early_stopping: None,
            verbosity: Verbosity::Auto,
            threads: None,
        }
    }
}

/// The figures of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epoch {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples, from the training forward passes.
    pub loss: f64,
    /// Training accuracy, when the model's loss classifies.
    pub accuracy: Option<f64>,
    /// Validation loss and accuracy, when there is validation data.
    pub validation: Option<(f64, Option<f64>)>,
    /// Training samples per second (training steps only, not validation).
    pub samples_per_second: f64,
    /// The learning rate used during the epoch.
    pub learning_rate: f64,
}

/// Every epoch of a `fit`, in order.
pub type History = Vec<Epoch>;

/// What a callback asks of the training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Called after every epoch with its figures and the model (to save a checkpoint, write
/// samples, or stop).
pub trait Callback<M> {
    /// Runs at the end of an epoch.
    fn on_epoch_end(&mut self, epoch: &Epoch, model: &mut M) -> Result<Control, Error>;
}

impl<M, F: FnMut(&Epoch, &mut M) -> Result<Control, Error>> Callback<M> for F {
    fn on_epoch_end(&mut self, epoch: &Epoch, model: &mut M) -> Result<Control, Error> {
        self(epoch, model)
    }
}

/// Trains `model` on `data`; see [`FitOptions`]. Returns the figures of every epoch run.
pub fn fit<M: Model>(
    model: &mut M,
    data: &Dataset<M::Elem>,
    options: &FitOptions<'_, M::Elem>,
) -> Result<History, Error> {
    fit_with(model, data, options, &mut [])
}

/// [`fit`] with callbacks run after every epoch, in order.
pub fn fit_with<M: Model>(
    model: &mut M,
    data: &Dataset<M::Elem>,
    options: &FitOptions<'_, M::Elem>,
    callbacks: &mut [&mut dyn Callback<M>],
) -> Result<History, Error> {
    check_fits::<M>(data, "training")?;
    if options.batch_size == 0 {
        return Err(Error::Data(
            "the batch size is 0; use at least 1 sample per batch".into(),
        ));
    }
    let split;
    let (train, validation) = match options.validation {
        Validation::None => (data, None),
        Validation::Data(v) => {
            check_fits::<M>(v, "validation")?;
            (data, Some(v))
        }
        Validation::Split(fraction) => {
            if !(0.0..1.0).contains(&fraction) {
                return Err(Error::Data(format!(
                    "the validation split is {fraction}; it must be in [0, 1), such as 0.1"
                )));
            }
            split = data.split(fraction, options.seed);
            (&split.0, Some(&split.1).filter(|v| !v.is_empty()))
        }
    };
    if train.is_empty() {
        return Err(Error::Data("the training data has no samples".into()));
    }
    let threads = options
        .threads
        .unwrap_or_else(nnc_runtime::Exec::default_threads);
    // No batch is larger than the data it comes from, so a batch size beyond the largest set
    // would only reserve memory that no step uses.
    let largest = train.len().max(validation.map_or(0, |v| v.len()));
    let capacity = options.batch_size.min(largest);
    let mut ws = model.try_workspace_with_threads(capacity, threads)?;
    let mut batcher = Batcher::new(train, capacity);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = Rng::new(options.seed);
    let steps = if options.drop_last {
        train.len() / options.batch_size
    } else {
        train.len().div_ceil(options.batch_size)
    };
    let mut progress = Progress::new(options.verbosity, options.epochs, steps);
    let mut history = History::new();
    let mut best: Option<(f64, usize, Vec<M::Elem>)> = None;
    for epoch in 1..=options.epochs {
        if let Some(schedule) = options.schedule {
            let lr = schedule.lr((epoch - 1) as u64);
            model.set_learning_rate(M::Elem::from_f64(lr))?;
        }
        let learning_rate = model.learning_rate().to_f64();
        if options.shuffle {
            rng.shuffle(&mut order);
        }
        progress.start_epoch(epoch);
        let started = Instant::now();
        let mut seen = Metrics::<M::Elem>::default();
        for rows in order.chunks(options.batch_size) {
            if options.drop_last && rows.len() < options.batch_size {
                break;
            }
            let (mut x, mut t) = empty_arguments();
            batcher.batch(train, rows, &mut x, &mut t);
            let (ni, nt) = (train.inputs.len(), train.targets.len());
            match model.train_step_dyn(&mut ws, &x[..ni], &t[..nt]) {
                // Only the epoch's last, partial batch can be this small: say how to avoid it.
                Err(nnc_runtime::Error::BatchTooSmall { layer, .. }) => {
                    return Err(Error::Data(format!(
                        "the last batch of each epoch holds {} of the {} training samples, too few \
                         for batch norm `{layer}` to estimate a variance; set `drop_last: true` \
                         or choose a batch size that leaves at least 2 samples over",
                        rows.len(),
                        train.len()
                    )))
                }
                result => result?,
            };
            seen.merge(&M::metrics(&ws));
            progress.step(seen.loss.to_f64(), seen.accuracy());
        }
        let seconds = started.elapsed().as_secs_f64();
        let validation = validation
            .map(|v| evaluate_with(model, &mut ws, v, options.batch_size))
            .transpose()?
            .map(|m| (m.loss.to_f64(), m.accuracy()));
        let record = Epoch {
            epoch,
            loss: seen.loss.to_f64(),
            accuracy: seen.accuracy(),
            validation,
            samples_per_second: seen.samples as f64 / seconds.max(1e-9),
            learning_rate,
        };
        progress.end_epoch(&record);
        history.push(record);
        let mut stop = false;
        for callback in callbacks.iter_mut() {
            stop |= callback.on_epoch_end(&record, model)? == Control::Stop;
        }
        if let Some(rule) = options.early_stopping {
            let monitored = validation.map_or(record.loss, |v| v.0);
            // Keras's rule: an epoch improves when the loss falls by more than `min_delta`
            // (a NaN loss never does); training stops once `patience` epochs in a row have not.
            let improved = match &best {
                Some((loss, _, _)) => monitored < *loss - rule.min_delta,
                None => !monitored.is_nan(),
            };
            if improved {
                let params = if rule.restore_best {
                    model.params().to_vec()
                } else {
                    Vec::new()
                };
                best = Some((monitored, epoch, params));
            } else {
                let since = best.as_ref().map_or(0, |b| b.1);
                if epoch - since >= rule.patience {
                    progress.note(&format!(
                        "early stopping: no improvement for {} epochs since epoch {since}",
                        epoch - since
                    ));
                    stop = true;
                }
            }
        }
        if stop {
            break;
        }
    }
    if let (Some(rule), Some((_, _, params))) = (options.early_stopping, &best) {
        if rule.restore_best && params.len() == model.params().len() {
            model.params_mut().copy_from_slice(params);
        }
    }
    progress.finish();
    Ok(history)
}

/// Loss and accuracy of `model` over `data` in inference mode, in batches of `batch_size`.
pub fn evaluate<M: Model>(
    model: &M,
    data: &Dataset<M::Elem>,
    batch_size: usize,
) -> Result<Metrics<M::Elem>, Error> {
    check_fits::<M>(data, "evaluation")?;
    let mut ws = workspace_for(model, data, batch_size)?;
    evaluate_with(model, &mut ws, data, batch_size.max(1))
}

/// A workspace for passes over `data` in batches of `batch_size`, no larger than the data.
fn workspace_for<M: Model>(
    model: &M,
    data: &Dataset<M::Elem>,
    batch_size: usize,
) -> Result<M::Workspace, Error> {
    let capacity = batch_size.min(data.len()).max(1);
    Ok(model.try_workspace_with_threads(capacity, nnc_runtime::Exec::default_threads())?)
}

fn evaluate_with<M: Model>(
    model: &M,
    ws: &mut M::Workspace,
    data: &Dataset<M::Elem>,
    batch_size: usize,
) -> Result<Metrics<M::Elem>, Error> {
    let mut total = Metrics::default();
    in_order(data, batch_size, |x, t| {
        total.merge(&model.evaluate_dyn(ws, x, t)?);
        Ok(())
    })?;
    Ok(total)
}

/// The model's first output for every sample of `data`, in order, in inference mode.
pub fn predict<M: Model>(
    model: &M,
    data: &Dataset<M::Elem>,
    batch_size: usize,
) -> Result<Vec<M::Elem>, Error> {
    check_inputs::<M>(data, "prediction")?;
    let mut ws = workspace_for(model, data, batch_size)?;
    let batch_size = batch_size.max(1);
    let per_sample = M::OUTPUTS.first().map_or(0, |o| o.per_sample());
    let mut out = Vec::with_capacity(data.len() * per_sample);
    in_order(data, batch_size, |x, _| {
        out.extend_from_slice(model.predict_dyn(&mut ws, x)?);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` on the batches of `data` in order; they are slices of the dataset, copied nowhere.
fn in_order<T: Float>(
    data: &Dataset<T>,
    batch_size: usize,
    mut f: impl FnMut(&[Values<'_, T>], &[Values<'_, T>]) -> Result<(), Error>,
) -> Result<(), Error> {
    let (ni, nt) = (data.inputs.len(), data.targets.len());
    for start in (0..data.len()).step_by(batch_size) {
        let (mut x, mut t) = empty_arguments();
        slices(
            data,
            start..(start + batch_size).min(data.len()),
            &mut x,
            &mut t,
        );
        f(&x[..ni], &t[..nt])?;
    }
    Ok(())
}

/// Whether a column holds what a model's input or target declares: the same kind, as many
/// values per sample, and for ids a range no wider than the model's.
fn fits(info: &nnc_runtime::TensorInfo, column: &crate::data::Column<impl Float>) -> bool {
    use crate::data::Column;
    let kind = match (info.kind, column) {
        (ElemKind::Float, Column::Float { .. }) => true,
        (ElemKind::Ids { range }, Column::Ids { range: r, .. }) => *r <= range,
        _ => false,
    };
    kind && column.per_sample() == info.per_sample()
}

/// How a column is described in a mismatch message.
fn describe(column: &crate::data::Column<impl Float>) -> String {
    use crate::data::Column;
    match column {
        Column::Float { shape, .. } => format!("float values of shape {shape:?}"),
        Column::Ids { shape, range, .. } => format!("ids below {range} of shape {shape:?}"),
    }
}
/// How a model's input or target is described in a mismatch message.
fn declared(info: &nnc_runtime::TensorInfo) -> String {
    match info.kind {
        ElemKind::Float => format!("float values of shape {:?}", info.shape),
        ElemKind::Ids { range } => format!("ids below {range} of shape {:?}", info.shape),
    }
}

/// Checks that `data` has the inputs and targets `M` takes, with the right kinds and sizes.
fn check_fits<M: Model>(data: &Dataset<M::Elem>, what: &str) -> Result<(), Error> {
    check_inputs::<M>(data, what)?;
    check_columns(M::NAME, "target", M::TARGETS, &data.targets, what)
}

/// Checks that `data` has the inputs `M` takes, of the right kinds and widths.
fn check_inputs<M: Model>(data: &Dataset<M::Elem>, what: &str) -> Result<(), Error> {
    if data.inputs.len() > MAX_COLUMNS || data.targets.len() > MAX_COLUMNS {
        return Err(Error::Data(format!(
            "nnc-train handles at most {MAX_COLUMNS} inputs and {MAX_COLUMNS} targets"
        )));
    }
    check_columns(M::NAME, "input", M::INPUTS, &data.inputs, what)
}

/// Checks that `columns` match the model's `infos` (its inputs or its targets, named by
/// `role`) in number, kind and size.
fn check_columns<T: Float>(
    model: &str,
    role: &str,
    infos: &[nnc_runtime::TensorInfo],
    columns: &[crate::data::Column<T>],
    what: &str,
) -> Result<(), Error> {
    if columns.len() != infos.len() {
        return Err(Error::Data(format!(
            "model `{model}` takes {} {role}(s) but the {what} data has {}",
            infos.len(),
            columns.len()
        )));
    }
    match infos
        .iter()
        .zip(columns)
        .find(|(info, column)| !fits(info, column))
    {
        Some((info, column)) => Err(Error::Data(format!(
            "{role} `{}` of model `{model}` takes {}, but the {what} data's column holds {}",
            info.name,
            declared(info),
            describe(column)
        ))),
        None => Ok(()),
    }
}
