//! A reference interpreter of the IR, for tests only. It evaluates a [`Program`] node by node
//! with naive `f64` loops written from each op's definition, so that lowering, autodiff,
//! fusion, memory planning, code generation and the runtime's kernels can all be checked
//! against one plain statement of what every op means. It is the semantic oracle, not an
//! engine: it is independent of nnc-runtime (nnc-core does not depend on it), generated code
//! never calls it, and it is slow on purpose (no blocking, no SIMD, no in-place updates, a
//! fresh vector for every value). It does not plan memory, run the optimizer, compute metrics
//! or draw dropout masks itself (the caller supplies them, see [`Env::dropout`]).
//!
//! Shapes follow [`Op::infer`]: a value's shape is its type's shape with the batch dimension
//! resolved to [`Env::batch`]. Ops that work "per row" (matrix products, softmax, class losses)
//! view a value as the matrix `[product of all leading axes, last axis]`, so they hold for any
//! rank. Every mismatch between a value and what its op expects is an `Err`, never a panic.

mod attention;
mod conv;
mod gru;
mod layer_norm;
mod loss;
mod norm;
mod ops;
mod recurrent;
#[cfg(test)]
mod tests;

use crate::ir::{DType, Dim, Gradients, Mode, Op, Phase, Program, Schedule, Shape, ValueId};

/// A dense, row-major tensor of `f64` with every dimension known.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Tensor {
    /// A tensor of `shape` holding `data`, which must have exactly as many elements.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Tensor, String> {
        let len: usize = shape.iter().product();
        if len != data.len() {
            return Err(format!(
                "a tensor of shape {shape:?} needs {len} values, got {}",
                data.len()
            ));
        }
        Ok(Tensor { shape, data })
    }

    pub fn filled(shape: Vec<usize>, value: f64) -> Tensor {
        let len = shape.iter().product();
        Tensor {
            shape,
            data: vec![value; len],
        }
    }

    pub fn scalar(x: f64) -> Tensor {
        Tensor {
            shape: Vec::new(),
            data: vec![x],
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// This tensor's [`matrix_view`].
    pub fn rows_cols(&self) -> Result<(usize, usize), String> {
        matrix_view(&self.shape)
    }
}

/// The matrix view `[rows, cols]` of a shape: `cols` is the last axis and `rows` the product of
/// the others (1 for a vector). A scalar has no last axis and so no such view.
pub fn matrix_view(shape: &[usize]) -> Result<(usize, usize), String> {
    match shape.split_last() {
        Some((&cols, lead)) => Ok((lead.iter().product(), cols)),
        None => Err("a scalar has no rows".into()),
    }
}

/// The value of one node: floats, or integer ids (token ids of an input, class labels of a
/// target).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(Tensor),
    Ids(Vec<u32>),
}

impl Value {
    pub fn float(&self) -> Result<&Tensor, String> {
        match self {
            Value::Float(t) => Ok(t),
            Value::Ids(_) => Err("expected float values, found integer ids".into()),
        }
    }
}

/// `shape` with the batch dimension replaced by `batch`.
pub fn resolve(shape: &Shape, batch: usize) -> Vec<usize> {
    shape
        .0
        .iter()
        .map(|d| match d {
            Dim::Batch => batch,
            Dim::Fixed(n) => *n,
        })
        .collect()
}

/// Draws one dropout mask: called with the rate and the number of elements, it returns that
/// many mask values.
pub type MaskSource<'a> = &'a mut dyn FnMut(f64, usize) -> Vec<f64>;

/// Everything a program reads from outside: the batch size and one value per input, target,
/// parameter (in `Program::params` order) and output gradient, each in declaration order.
pub struct Env<'a> {
    pub batch: usize,
    pub inputs: Vec<Value>,
    /// Targets may be left out when the schedule run does not read them (`predict`).
    pub targets: Vec<Value>,
    pub params: Vec<Tensor>,
    /// The seeds of the pullback, one per output; only the pullback reads them.
    pub output_grads: Vec<Tensor>,
    /// The model's state before the run, one tensor per state (in `Program::states` order).
    pub state: Vec<Tensor>,
    /// The state the step entry point carries, one tensor per `Step::carries`; zeros where
    /// left out (a new sequence).
    pub carried: Vec<Tensor>,
    /// The step entry point's position in its sequences (0 for the first step), for the ops
    /// that read it.
    pub position: usize,
    /// Draws the dropout masks of a training run: called once per `dropout_mask` node, in
    /// schedule order. Inference never calls it (every mask is all ones); a training run of a
    /// model with dropout fails without it.
    pub dropout: Option<MaskSource<'a>>,
}

impl<'a> Env<'a> {
    /// An environment for `batch` samples with nothing in it yet, in inference mode.
    pub fn new(batch: usize) -> Env<'a> {
        Env {
            batch,
            inputs: Vec::new(),
            targets: Vec::new(),
            params: Vec::new(),
            output_grads: Vec::new(),
            state: Vec::new(),
            carried: Vec::new(),
            position: 0,
            dropout: None,
        }
    }
}

/// The final gradients of a run, as tensors: per parameter and per input, `None` where the
/// run computes none (frozen parameters, inputs without `requires_grad`, and parameters
/// the run does not reach).
#[derive(Clone, Debug, PartialEq)]
pub struct FinalGradients {
    pub params: Vec<Option<Tensor>>,
    pub inputs: Vec<Option<Tensor>>,
}

/// The value of every node after a run; `None` for nodes in phases the schedule does not run,
/// and for targets that were not given.
#[derive(Clone, Debug)]
pub struct Values {
    pub nodes: Vec<Option<Value>>,
    pub schedule: Schedule,
}

impl Values {
    pub fn get(&self, id: ValueId) -> Option<&Value> {
        self.nodes.get(id.index()).and_then(Option::as_ref)
    }

    /// The float value of `id`, or why there is none.
    pub fn tensor(&self, id: ValueId) -> Result<&Tensor, String> {
        self.get(id)
            .ok_or_else(|| format!("{id} has no value in this run"))?
            .float()
    }

    /// The model's outputs, in `Program::outputs` order (the inference pass's copies when the
    /// schedule ran it).
    pub fn outputs(&self, p: &Program) -> Result<Vec<&Tensor>, String> {
        p.outputs_of(&self.schedule)
            .into_iter()
            .map(|v| self.tensor(v))
            .collect()
    }

    /// The total loss, after a run of a schedule with the loss.
    pub fn loss(&self, p: &Program) -> Result<f64, String> {
        let id = p.loss.ok_or_else(|| format!("{} has no loss", p.name))?;
        match self.tensor(id)?.data.as_slice() {
            [x] => Ok(*x),
            other => Err(format!("the loss has {} values, not 1", other.len())),
        }
    }

    /// The model's state after the run: the values its `Commit` nodes wrote, and `before` for
    /// state the run did not write (every state in inference).
    pub fn state(&self, p: &Program, before: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let mut state = before.to_vec();
        for id in p
            .graph
            .ids()
            .filter(|id| p.graph.node(*id).op.writes_state())
        {
            if let (Some(i), Some(v)) = (p.state_of(id), self.get(id)) {
                *state
                    .get_mut(i)
                    .ok_or_else(|| format!("{id} writes a state that was not given"))? =
                    v.float()?.clone();
            }
        }
        Ok(state)
    }

    /// The carried state after a run of the step entry point, in `Step::carries` order.
    pub fn carried(&self, p: &Program) -> Result<Vec<Tensor>, String> {
        let step = p.step.as_ref().map_err(Clone::clone)?;
        step.carries
            .iter()
            .map(|c| self.tensor(c.write).cloned())
            .collect()
    }

    /// The final gradients of the schedule that was run.
    pub fn gradients(&self, p: &Program) -> Result<FinalGradients, String> {
        let grads: &Gradients = if self.schedule.runs(Phase::Backward) {
            p.backward
                .as_ref()
                .ok_or_else(|| format!("{} has no backward pass", p.name))?
        } else if self.schedule.runs(Phase::Pullback) {
            &p.pullback
        } else {
            return Err(format!("{} computes no gradients", self.schedule.name));
        };
        let take = |ids: &[Option<ValueId>]| -> Result<Vec<Option<Tensor>>, String> {
            ids.iter()
                .map(|id| id.map(|id| self.tensor(id).cloned()).transpose())
                .collect()
        };
        Ok(FinalGradients {
            params: take(&grads.params)?,
            inputs: take(&grads.inputs)?,
        })
    }
}

/// Runs `schedule` of `p` on `env` and returns every node's value.
pub fn run(p: &Program, env: &mut Env<'_>, schedule: Schedule) -> Result<Values, String> {
    if !p.schedules().contains(&schedule) {
        return Err(format!("{} has no entry point {}", p.name, schedule.name));
    }
    let g = &p.graph;
    let mut nodes: Vec<Option<Value>> = vec![None; g.nodes.len()];
    for id in g.ids() {
        let node = g.node(id);
        // Inputs, parameters and state belong to the forward pass but are read by the
        // inference-only phases too, which run without it; the step pass has inputs of its
        // own, holding one position.
        let shared = match node.op {
            Op::Param(_) | Op::State(_) => true,
            Op::Input(_) => node.phase == Phase::Forward && !schedule.runs(Phase::Step),
            _ => false,
        };
        if !schedule.runs(node.phase) && !shared {
            continue;
        }
        let shape = resolve(&node.ty.shape, env.batch);
        let what = || format!("{id} = {} ({})", node.op, node.name);
        let value = if node.op.is_leaf() {
            leaf(p, env, schedule.mode, node.op, &shape).map_err(|e| format!("{}: {e}", what()))?
        } else {
            let mut args = Vec::with_capacity(node.args.len());
            for a in &node.args {
                let v = nodes
                    .get(a.index())
                    .and_then(Option::as_ref)
                    .ok_or_else(|| {
                        format!(
                            "{}: argument {a} has no value (not given, or not run)",
                            what()
                        )
                    })?;
                args.push(v);
            }
            let value = if node.op.reads_position() {
                ops::at_position(node.op, &args, env.position)
            } else {
                ops::eval(node.op, &args, &shape, schedule.mode, env.batch)
            };
            Some(value.map_err(|e| format!("{}: {e}", what()))?)
        };
        if let Some(v) = &value {
            check_type(v, node.ty.dtype, &shape).map_err(|e| format!("{}: {e}", what()))?;
        }
        nodes[id.index()] = value;
    }
    Ok(Values { nodes, schedule })
}

/// The value of a leaf node: from the environment, or a dropout mask. `None` for a target the
/// caller left out, which is an error only if something reads it.
fn leaf(
    p: &Program,
    env: &mut Env<'_>,
    mode: Mode,
    op: Op,
    shape: &[usize],
) -> Result<Option<Value>, String> {
    let given = |t: Option<&Tensor>, what: &str| -> Result<Option<Value>, String> {
        t.map(|t| Value::Float(t.clone()))
            .ok_or_else(|| format!("{what} was not given"))
            .map(Some)
    };
    match op {
        Op::Input(i) => env
            .inputs
            .get(i)
            .cloned()
            .map(Some)
            .ok_or_else(|| "the input was not given".to_string()),
        Op::Param(i) => {
            let declared = p.params.get(i).map(|q| q.shape.as_slice());
            if declared != Some(shape) {
                return Err(format!(
                    "parameter #{i} is declared {declared:?} but typed {shape:?}"
                ));
            }
            given(env.params.get(i), "the parameter")
        }
        Op::OutputGrad(i) => given(env.output_grads.get(i), "the output gradient"),
        Op::State(i) => given(env.state.get(i), "the state"),
        Op::Carried(i) => Ok(Some(Value::Float(match env.carried.get(i) {
            Some(t) => t.clone(),
            None => Tensor::filled(shape.to_vec(), 0.0),
        }))),
        Op::Target(i) => Ok(env.targets.get(i).cloned()),
        Op::DropoutMask(rate) => {
            let rate = rate.get();
            if !(0.0..1.0).contains(&rate) {
                return Err(format!("dropout rate {rate} is outside [0, 1)"));
            }
            let len = shape.iter().product();
            let data = match (mode, env.dropout.as_mut()) {
                (Mode::Infer, _) => vec![1.0; len],
                (Mode::Train, Some(draw)) => draw(rate, len),
                (Mode::Train, None) => return Err("a training run needs Env::dropout".into()),
            };
            Tensor::new(shape.to_vec(), data).map(|t| Some(Value::Float(t)))
        }
        _ => Err(format!("{op} is not a leaf")),
    }
}

/// Whether `v` has the node's type, with the batch resolved.
fn check_type(v: &Value, dtype: DType, shape: &[usize]) -> Result<(), String> {
    match (v, dtype) {
        // The fields are public, so a tensor from the caller may disagree with its own shape.
        (Value::Float(t), DType::Float) if t.data.len() != shape.iter().product() => Err(format!(
            "{} values for a value of shape {shape:?}",
            t.data.len()
        )),
        (Value::Float(t), DType::Float) if t.shape == shape => Ok(()),
        (Value::Float(t), DType::Float) => Err(format!(
            "the value has shape {:?}, the type says {shape:?}",
            t.shape
        )),
        (Value::Ids(l), DType::Ids(range)) if l.len() == shape.iter().product::<usize>() => {
            match l.iter().find(|&&id| id as usize >= range) {
                Some(id) => Err(format!("id {id} is not below the range {range}")),
                None => Ok(()),
            }
        }
        (Value::Ids(l), DType::Ids(_)) => {
            Err(format!("{} ids for a value of shape {shape:?}", l.len()))
        }
        (Value::Float(_), DType::Ids(_)) => Err("float values where ids are expected".into()),
        (Value::Ids(_), DType::Float) => Err("ids where float values are expected".into()),
    }
}
