//! Safetensors checkpoints of a model's parameters and state (batch norm's running statistics)
//! and, on request, its optimizer state: [`save`] writes one atomically and [`load`] checks a whole file against the model before restoring
//! anything. Checkpoints do not hold the optimizer's hyperparameters, the learning-rate schedule,
//! the training history or the random state of dropout: those come from the model's definition
//! and from the caller.
//!
//! # Layout
//!
//! A checkpoint is a plain [safetensors](https://huggingface.co/docs/safetensors) file, readable
//! by PyTorch's `safetensors.torch.load_file`:
//!
//! - one tensor per parameter, named like the parameter (`hidden.weight`), with its shape and the
//!   model's element type (`F32` or `F64`, little-endian);
//! - one tensor per state tensor of the model, named like it (`bn.running_mean`,
//!   `bn.running_var`, as PyTorch names these buffers in a `state_dict`), always: predictions
//!   depend on it as much as on the parameters;
//! - with [`SaveOptions::optimizer`], one tensor per optimizer state buffer and trainable
//!   parameter, named `optimizer.{buffer}.{parameter}` (`optimizer.exp_avg.hidden.weight`), with
//!   the parameter's shape;
//! - the string metadata `format` = `nnc`, `model` = the model's name, `elem` = `f32` or `f64`,
//!   and with the optimizer state `optimizer_steps` = the optimizer's step count; plus any
//!   string metadata of the caller's ([`SaveOptions::metadata`], say a model's vocabulary), read
//!   back with [`metadata`].
//!
//! # Element types
//!
//! A checkpoint of an `f32` model loads into an `f64` model of the same name: every `f32` value
//! is exactly representable as an `f64`, so the conversion loses nothing. The reverse would round
//! every value, so an `F64` tensor is refused by an `f32` model, as is any other element type.
//!
//! ```no_run
//! # use nnc_train::checkpoint::{self, SaveOptions};
//! # fn demo<M: nnc_runtime::Model>(model: &mut M) -> Result<(), nnc_train::Error> {
//! checkpoint::save(model, "model.safetensors", &SaveOptions { optimizer: true, ..SaveOptions::default() })?;
//! let loaded = checkpoint::load(model, "model.safetensors")?;
//! assert_eq!(loaded.steps, Some(model.optimizer().steps()));
//! # Ok(()) }
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use nnc_runtime::{Float, Model, ParamInfo};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::Error;

/// The metadata key naming the writer; its value is [`FORMAT`].
const FORMAT_KEY: &str = "format";
/// The value of the `format` metadata.
const FORMAT: &str = "nnc";
/// The metadata key holding the model's name.
const MODEL_KEY: &str = "model";
/// The metadata key holding the element type, `f32` or `f64`.
const ELEM_KEY: &str = "elem";
/// The metadata key holding the optimizer's step count, present with the optimizer state.
const STEPS_KEY: &str = "optimizer_steps";
/// The prefix of the optimizer state's tensor names.
const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The number of bytes of the header length that starts a safetensors file.
const HEADER_LENGTH_BYTES: usize = 8;

/// What [`save`] writes besides the parameters.
#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    /// Whether to save the optimizer's state buffers and step count too, so that training can
    /// resume exactly where it stopped.
    pub optimizer: bool,
    /// String metadata to store with the tensors, such as the vocabulary of a language model;
    /// the keys `format`, `model`, `elem` and `optimizer_steps` are nnc's own.
    pub metadata: Vec<(String, String)>,
}

/// What [`load`] restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Whether the checkpoint held optimizer state, which was then restored; without it the
    /// model's optimizer was left as it was.
    pub optimizer: bool,
    /// The optimizer's restored step count, when the optimizer state was restored.
    pub steps: Option<u64>,
}

/// Writes `model`'s parameters, and with `options.optimizer` its optimizer state, to `path` as a
/// safetensors file (see the [module documentation](self) for the layout).
///
/// The file is written atomically: to a temporary file in the same directory, flushed to disk,
/// then renamed over `path`. Readers see the old file or the new one, never a partial one; on
/// any error the temporary file is removed and an existing `path` is left untouched.
pub fn save<M: Model>(
    model: &M,
    path: impl AsRef<Path>,
    options: &SaveOptions,
) -> Result<(), Error> {
    let path = path.as_ref();
    let elem = Elem::of::<M::Elem>();
    let cannot_save = |problem: String| {
        Error::Data(format!(
            "cannot save model `{}` to `{}`: {problem}",
            M::NAME,
            path.display()
        ))
    };

    let mut tensors: Vec<(String, Tensor<'_, M::Elem>)> = Vec::new();
    for (kind, infos, values) in [
        ("parameter", M::PARAMS, model.params()),
        ("state", M::STATE, model.state()),
    ] {
        for info in infos {
            let slice = values
                .get(info.offset..info.offset + info.len)
                .ok_or_else(|| {
                    cannot_save(format!(
                        "{kind} `{}` spans {}..{} but the model has {} {kind} values",
                        info.name,
                        info.offset,
                        info.offset + info.len,
                        values.len()
                    ))
                })?;
            tensors.push((info.name.to_string(), Tensor::new(slice, info, elem)));
        }
    }

    let mut metadata = HashMap::new();
    for (key, value) in &options.metadata {
        if [FORMAT_KEY, MODEL_KEY, ELEM_KEY, STEPS_KEY].contains(&key.as_str()) {
            return Err(cannot_save(format!(
                "the metadata key `{key}` is nnc's own; store the value under another key"
            )));
        }
        metadata.insert(key.clone(), value.clone());
    }
    metadata.extend([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (MODEL_KEY.to_string(), M::NAME.to_string()),
        (ELEM_KEY.to_string(), elem.name().to_string()),
    ]);
    if options.optimizer {
        let optimizer = model.optimizer();
        for (buffer, state) in optimizer.state() {
            for info in M::PARAMS.iter().filter(|p| p.trainable) {
                let range = info.offset..info.offset + info.len;
                let Some(values) = state.get(range.clone()) else {
                    return Err(cannot_save(format!(
                        "the optimizer's `{buffer}` buffer has {} values, too few for trainable \
                         parameter `{}` at {range:?}",
                        state.len(),
                        info.name,
                    )));
                };
                let name = format!("{OPTIMIZER_PREFIX}{buffer}.{}", info.name);
                tensors.push((name, Tensor::new(values, info, elem)));
            }
        }
        metadata.insert(STEPS_KEY.to_string(), optimizer.steps().to_string());
    }

    // safetensors keeps one tensor per name, so a repeated name would silently lose data.
    let mut seen = HashSet::new();
    if let Some((name, _)) = tensors.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return Err(cannot_save(format!("two tensors would be named `{name}`")));
    }

    let bytes = safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| cannot_save(format!("safetensors could not serialise it: {e}")))?;
    write_atomic(path, &bytes)
}

/// The string metadata of the safetensors file at `path`: nnc's own keys (`format`, `model`,
/// `elem`, `optimizer_steps`) and those the caller saved with it. Reads the header only.
pub fn metadata(
    path: impl AsRef<Path>,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Format {
        file: path.to_path_buf(),
        format: "safetensors",
        message: explain(&e, &bytes),
    })?;
    Ok(header
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// Restores `model`'s parameters and state, and its optimizer state when the checkpoint holds it, from the
/// safetensors file at `path`.
///
/// Everything is checked before anything is written, so the model is never half-loaded: the file
/// must parse as safetensors ([`Error::Format`] otherwise), and its `model` metadata, tensor names,
/// shapes and element types must all fit the model. Every mismatch found is listed in one
/// [`Error::Checkpoint`]. Optimizer state, when present, must be complete and match the buffers
/// of the model's optimizer; when absent, the optimizer is left as it is.
pub fn load<M: Model>(model: &mut M, path: impl AsRef<Path>) -> Result<Loaded, Error> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let not_safetensors = |message: String| Error::Format {
        file: path.to_path_buf(),
        format: "safetensors",
        message,
    };
    let (header_len, metadata) =
        SafeTensors::read_metadata(&bytes).map_err(|e| not_safetensors(explain(&e, &bytes)))?;
    let data = HEADER_LENGTH_BYTES
        .checked_add(header_len)
        .and_then(|start| bytes.get(start..))
        .ok_or_else(|| not_safetensors("the header runs past the end of the file".into()))?;

    let plan = plan::<M>(model, &metadata, data).map_err(|problems| Error::Checkpoint {
        file: path.to_path_buf(),
        model: M::NAME,
        problems,
    })?;

    // Every check passed: from here on nothing can fail.
    apply(&plan.params, model.params_mut());
    apply(&plan.model_state, model.state_mut());
    let Some(steps) = plan.steps else {
        return Ok(Loaded {
            optimizer: false,
            steps: None,
        });
    };
    let optimizer = model.optimizer_mut();
    let mut state = optimizer.state_mut();
    for copy in &plan.state {
        let buffer = state.iter_mut().find(|(name, _)| *name == copy.buffer);
        if let Some(target) = buffer.and_then(|(_, b)| b.get_mut(copy.start..copy.start + copy.len))
        {
            decode(copy.bytes, copy.dtype, target);
        }
    }
    drop(state);
    optimizer.set_steps(steps);
    Ok(Loaded {
        optimizer: true,
        steps: Some(steps),
    })
}

/// The element types a model can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
}

impl Elem {
    /// The element type of `T`. `Float` is sealed to `f32` and `f64`, so anything but `f32` is
    /// `f64`.
    fn of<T: Float>() -> Elem {
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
            Elem::F32
        } else {
            Elem::F64
        }
    }

    /// The safetensors dtype storing it.
    fn dtype(self) -> Dtype {
        match self {
            Elem::F32 => Dtype::F32,
            Elem::F64 => Dtype::F64,
        }
    }

    /// Its name in the `elem` metadata and in messages.
    fn name(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
        }
    }

    /// Its size in bytes.
    fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }

    /// Whether a tensor of `dtype` loads into this element type without losing anything, and the
    /// size of its elements if so.
    fn accepts(self, dtype: Dtype) -> Option<usize> {
        match (self, dtype) {
            (_, Dtype::F32) => Some(4),
            (Elem::F64, Dtype::F64) => Some(8),
            _ => None,
        }
    }
}

/// One tensor to serialise: a borrowed slice of a model's parameters or optimizer state,
/// converted to little-endian bytes only when safetensors asks for them.
struct Tensor<'a, T> {
    values: &'a [T],
    shape: &'static [usize],
    elem: Elem,
}

impl<'a, T: Float> Tensor<'a, T> {
    fn new(values: &'a [T], info: &ParamInfo, elem: Elem) -> Self {
        Tensor {
            values,
            shape: info.shape,
            elem,
        }
    }
}

impl<T: Float> View for Tensor<'_, T> {
    fn dtype(&self) -> Dtype {
        self.elem.dtype()
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let mut bytes = Vec::with_capacity(self.data_len());
        for value in self.values {
            // A downcast rather than `to_f64` keeps every bit, NaN payloads included.
            let value: &dyn Any = value;
            if let Some(x) = value.downcast_ref::<f32>() {
                bytes.extend_from_slice(&x.to_le_bytes());
            } else if let Some(x) = value.downcast_ref::<f64>() {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.values.len() * self.elem.size()
    }
}

/// Writes checked copies into the flat buffer they were planned for.
fn apply<T: Float>(copies: &[Transfer<'_>], buffer: &mut [T]) {
    for copy in copies {
        if let Some(target) = buffer.get_mut(copy.start..copy.start + copy.len) {
            decode(copy.bytes, copy.dtype, target);
        }
    }
}

/// Decodes little-endian `bytes` of `dtype` (already checked to fit `T`) into `target`.
fn decode<T: Float>(bytes: &[u8], dtype: Dtype, target: &mut [T]) {
    if dtype == Dtype::F32 {
        for (slot, chunk) in target.iter_mut().zip(bytes.chunks_exact(4)) {
            if let Ok(b) = <[u8; 4]>::try_from(chunk) {
                let x = f32::from_le_bytes(b);
                let slot: &mut dyn Any = slot;
                if let Some(s) = slot.downcast_mut::<f32>() {
                    *s = x;
                } else if let Some(s) = slot.downcast_mut::<f64>() {
                    *s = f64::from(x);
                }
            }
        }
    } else {
        for (slot, chunk) in target.iter_mut().zip(bytes.chunks_exact(8)) {
            if let (Ok(b), Some(s)) = (
                <[u8; 8]>::try_from(chunk),
                (slot as &mut dyn Any).downcast_mut::<f64>(),
            ) {
                *s = f64::from_le_bytes(b);
            }
        }
    }
}

/// A checked copy from the file into the model.
struct Transfer<'a> {
    /// The optimizer buffer it goes to, or `""` for the parameters.
    buffer: &'static str,
    /// Where it starts in the parameters or the buffer.
    start: usize,
    /// Its number of elements.
    len: usize,
    /// The tensor's bytes in the file.
    bytes: &'a [u8],
    /// Their element type.
    dtype: Dtype,
}

/// Everything `load` writes, once checked.
struct Plan<'a> {
    params: Vec<Transfer<'a>>,
    /// The model's state (running statistics).
    model_state: Vec<Transfer<'a>>,
    state: Vec<Transfer<'a>>,
    /// The optimizer's step count, when the checkpoint holds optimizer state.
    steps: Option<u64>,
}

/// Checks the whole checkpoint against `model` and returns what to copy, or every problem found.
fn plan<'a, M: Model>(
    model: &M,
    metadata: &Metadata,
    data: &'a [u8],
) -> Result<Plan<'a>, Vec<String>> {
    let elem = Elem::of::<M::Elem>();
    let mut problems = Vec::new();
    let strings = metadata.metadata().clone().unwrap_or_default();
    let tensors = metadata.tensors();

    match strings.get(MODEL_KEY) {
        Some(name) if name == M::NAME => {}
        Some(name) => problems.push(format!(
            "it was written by model `{name}`, not `{}`",
            M::NAME
        )),
        None => problems.push(format!(
            "its metadata names no `{MODEL_KEY}`, so it was not written by nnc's checkpoint::save"
        )),
    }
    if let Some(format) = strings.get(FORMAT_KEY).filter(|f| *f != FORMAT) {
        problems.push(format!(
            "its metadata says format `{format}`, not `{FORMAT}`"
        ));
    }

    // The parameters and the model's state: every tensor must be present with its shape and a
    // dtype the model accepts.
    let mut expected: HashSet<String> = HashSet::new();
    let mut copies = [Vec::new(), Vec::new()];
    let kinds = [
        ("parameter", M::PARAMS, model.params().len()),
        ("state", M::STATE, model.state().len()),
    ];
    for ((kind, infos, have), copies) in kinds.into_iter().zip(&mut copies) {
        for info in infos {
            expected.insert(info.name.to_string());
            if info.offset + info.len > have {
                problems.push(format!(
                    "the model's {kind} `{}` spans {}..{} but the model has {have} {kind} values",
                    info.name,
                    info.offset,
                    info.offset + info.len
                ));
            }
            let what = format!("{kind} `{}`", info.name);
            if let Some(copy) = check(&tensors, info.name, &what, info, elem, data, &mut problems) {
                copies.push(Transfer {
                    buffer: "",
                    start: info.offset,
                    ..copy
                });
            }
        }
    }
    let [params, model_state] = copies;

    // The optimizer state is present when any of its tensors or its step count is.
    let has_state = tensors
        .keys()
        .any(|name| name.starts_with(OPTIMIZER_PREFIX) && !expected.contains(name));
    let steps_text = strings.get(STEPS_KEY);
    let mut state = Vec::new();
    let mut steps = None;
    if has_state || steps_text.is_some() {
        match steps_text.map(|s| s.parse::<u64>()) {
            Some(Ok(n)) => steps = Some(n),
            Some(Err(_)) => problems.push(format!(
                "its `{STEPS_KEY}` metadata `{}` is not a step count",
                steps_text.map_or("", String::as_str)
            )),
            None => problems.push(format!(
                "it holds optimizer state but no `{STEPS_KEY}` metadata"
            )),
        }
        let buffers = model.optimizer().state();
        for (buffer, values) in &buffers {
            for info in M::PARAMS.iter().filter(|p| p.trainable) {
                let name = format!("{OPTIMIZER_PREFIX}{buffer}.{}", info.name);
                if info.offset + info.len > values.len() {
                    problems.push(format!(
                        "the model's optimizer buffer `{buffer}` has {} values, too few for \
                         parameter `{}` at {}..{}",
                        values.len(),
                        info.name,
                        info.offset,
                        info.offset + info.len
                    ));
                }
                let what = format!("optimizer state `{name}`");
                if let Some(copy) = check(&tensors, &name, &what, info, elem, data, &mut problems) {
                    state.push(Transfer {
                        buffer,
                        start: info.offset,
                        ..copy
                    });
                }
                expected.insert(name);
            }
        }
        let kept: Vec<&str> = buffers.iter().map(|(name, _)| *name).collect();
        let mut unexpected: Vec<&String> = tensors
            .keys()
            .filter(|name| name.starts_with(OPTIMIZER_PREFIX) && !expected.contains(*name))
            .collect();
        unexpected.sort();
        for name in unexpected {
            problems.push(format!(
                "unexpected optimizer state `{name}`: the model's optimizer keeps {}",
                if kept.is_empty() {
                    "no state".to_string()
                } else {
                    format!("{} for its trainable parameters", quoted(&kept))
                }
            ));
            expected.insert(name.clone());
        }
    }

    // Anything else is a tensor the model does not have.
    let mut unexpected: Vec<(&String, &&TensorInfo)> = tensors
        .iter()
        .filter(|(name, _)| !expected.contains(*name))
        .collect();
    unexpected.sort_by(|a, b| a.0.cmp(b.0));
    for (name, info) in unexpected {
        problems.push(format!(
            "unexpected tensor `{name}` ({:?} {:?}): the model has no such parameter or state",
            info.dtype, info.shape
        ));
    }

    if problems.is_empty() {
        Ok(Plan {
            params,
            model_state,
            state,
            steps,
        })
    } else {
        Err(problems)
    }
}

/// Checks the tensor `name`, which should have `info`'s shape and a dtype `elem` accepts, and
/// returns its copy (to be completed with where it goes) or adds its problems.
fn check<'a>(
    tensors: &HashMap<String, &TensorInfo>,
    name: &str,
    what: &str,
    info: &ParamInfo,
    elem: Elem,
    data: &'a [u8],
    problems: &mut Vec<String>,
) -> Option<Transfer<'a>> {
    let Some(tensor) = tensors.get(name) else {
        problems.push(format!("missing {what} (shape {:?})", info.shape));
        return None;
    };
    let mut fits = true;
    if tensor.shape != info.shape {
        problems.push(format!(
            "{what} has shape {:?} in the file but {:?} in the model",
            tensor.shape, info.shape
        ));
        fits = false;
    }
    let size = elem.accepts(tensor.dtype);
    if size.is_none() {
        let why = if tensor.dtype == Dtype::F64 {
            "; narrowing to f32 would round every value, so convert the checkpoint explicitly"
        } else {
            ""
        };
        problems.push(format!(
            "{what} is stored as {:?} but the model's elements are {}{why}",
            tensor.dtype,
            elem.name()
        ));
    }
    let (begin, end) = tensor.data_offsets;
    let bytes = data.get(begin..end);
    match (size, bytes) {
        (Some(size), Some(bytes)) if fits && bytes.len() == info.len * size => Some(Transfer {
            buffer: "",
            start: 0,
            len: info.len,
            bytes,
            dtype: tensor.dtype,
        }),
        (Some(_), _) if fits => {
            // The shape matches, so safetensors' own checks make this unreachable; it is a
            // problem rather than a panic all the same.
            problems.push(format!(
                "{what} has {} bytes of data, which does not fit its shape",
                end.saturating_sub(begin)
            ));
            None
        }
        _ => None,
    }
}

/// Says in words why safetensors could not parse `bytes`, followed by its own message.
fn explain(error: &SafeTensorError, bytes: &[u8]) -> String {
    use SafeTensorError as E;
    let size = bytes.len();
    let declared = bytes
        .get(..HEADER_LENGTH_BYTES)
        .and_then(|b| <[u8; HEADER_LENGTH_BYTES]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    let why = match error {
        E::HeaderTooSmall => format!(
            "the file has {size} bytes, fewer than the {HEADER_LENGTH_BYTES} of the header length \
             that starts a safetensors file"
        ),
        E::HeaderTooLarge => format!(
            "the header length at its start says {declared} bytes, more than safetensors allows \
             (is it a safetensors file at all?)"
        ),
        E::InvalidHeaderLength => format!(
            "the header length at its start says {declared} bytes, but only {} follow (is the file \
             truncated?)",
            size.saturating_sub(HEADER_LENGTH_BYTES)
        ),
        E::InvalidHeader(_) => "the header is not UTF-8 text".to_string(),
        E::InvalidHeaderDeserialization(_) | E::JsonError(_) => {
            "the header is not the JSON object of tensor descriptions safetensors expects".into()
        }
        E::InvalidOffset(_) => {
            "the tensors' data offsets leave a gap or overlap between tensors".into()
        }
        E::TensorInvalidInfo | E::ValidationOverflow => {
            "a tensor's data size does not match its shape and dtype".into()
        }
        E::MetadataIncompleteBuffer => format!(
            "the tensors' data does not end where the file does, after {size} bytes (is the file \
             truncated, or has something been appended?)"
        ),
        _ => "safetensors rejects it".into(),
    };
    format!("{why} (safetensors: {error})")
}

/// `names` as a list of code spans: "`a`, `b`".
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a partial
/// one: through a `tempfile` in the same directory (so the rename stays on one file system),
/// flushed to disk, persisted over `path`, and the directory flushed. A replaced checkpoint
/// keeps its permissions and a new one gets the usual `0o666` less the umask, as
/// `nnc_core::build::write_atomic` does for generated code (the crates share no dependency
/// to put one copy in). On failure the temporary file is removed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".nnc-");
    // A new file is created with the usual mode, which the umask then narrows as for any
    // file; a replaced file's mode is set afterwards, past the umask, so it is kept exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let result = (|| {
        let mut file = builder.tempfile_in(dir)?;
        if let Ok(existing) = fs::metadata(path) {
            file.as_file().set_permissions(existing.permissions())?;
        }
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)
    })();
    result.map_err(|e| Error::io(path, e))?;
    // Flushing the directory makes the rename itself durable; not every platform allows it, and
    // the file is complete either way, so a failure here is ignored.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_and_the_dtypes_they_accept() {
        assert_eq!(Elem::of::<f32>(), Elem::F32);
        assert_eq!(Elem::of::<f64>(), Elem::F64);
        assert_eq!(Elem::F32.accepts(Dtype::F32), Some(4));
        assert_eq!(Elem::F32.accepts(Dtype::F64), None);
        assert_eq!(Elem::F64.accepts(Dtype::F32), Some(4));
        assert_eq!(Elem::F64.accepts(Dtype::F64), Some(8));
        for dtype in [Dtype::F16, Dtype::BF16, Dtype::I32, Dtype::U8] {
            assert_eq!(Elem::F32.accepts(dtype), None);
            assert_eq!(Elem::F64.accepts(dtype), None);
        }
    }

    #[test]
    fn encoding_and_decoding_keep_every_bit() {
        // A NaN with a payload would not survive a detour through another type.
        let values = [1.5f32, -0.0, f32::from_bits(0x7fc0_1234), f32::MIN_POSITIVE];
        let info = ParamInfo {
            name: "w",
            shape: &[4],
            offset: 0,
            len: 4,
            trainable: true,
        };
        let tensor = Tensor::new(&values, &info, Elem::F32);
        let bytes = tensor.data().into_owned();
        assert_eq!(bytes.len(), tensor.data_len());
        assert_eq!(bytes[..4], 1.5f32.to_le_bytes());
        let mut back = [0f32; 4];
        decode(&bytes, Dtype::F32, &mut back);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));

        // f32 values widen exactly into an f64 model.
        let mut wide = [0f64; 4];
        decode(&bytes, Dtype::F32, &mut wide);
        assert_eq!(wide[0], 1.5);
        assert_eq!(wide[3], f64::from(f32::MIN_POSITIVE));
    }

    #[test]
    fn parse_errors_are_explained() {
        let error = SafeTensors::read_metadata(&[1, 2, 3]).expect_err("too short");
        let message = explain(&error, &[1, 2, 3]);
        assert!(
            message.starts_with("the file has 3 bytes, fewer than the 8"),
            "{message}"
        );

        let mut truncated = 64u64.to_le_bytes().to_vec();
        truncated.extend_from_slice(b"{}");
        let error = SafeTensors::read_metadata(&truncated).expect_err("truncated");
        let message = explain(&error, &truncated);
        assert!(
            message.contains("says 64 bytes, but only 2 follow"),
            "{message}"
        );
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        match write_atomic(Path::new("/"), b"x") {
            Err(Error::Io { .. }) => {}
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
}
