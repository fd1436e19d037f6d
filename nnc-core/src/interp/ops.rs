//! The ops, one function per family, dispatched by the single `match` in [`eval`]: adding an op
//! to the IR means adding one arm there (and a function here or in `loss.rs`).

use super::{attention, conv, gru, layer_norm, loss, matrix_view, norm, recurrent, Tensor, Value};
use crate::ir::{Act, Mode, Op, ScanStart};

/// The value of a non-leaf op applied to `args`. `out` is the result's shape from the node's
/// type; only the ops whose result shape is not determined by their arguments read it (a
/// product's view of its result, and what a batch reduction keeps). `mode` and `batch` are the
/// run's, for the ops that depend on them (batch norm's statistics and running variance).
pub fn eval(
    op: Op,
    args: &[&Value],
    out: &[usize],
    mode: Mode,
    batch: usize,
) -> Result<Value, String> {
    let x = |i: usize| float_arg(args, i);
    op.check_arity(args.len())?;
    let t = match op {
        Op::Input(_)
        | Op::Target(_)
        | Op::Param(_)
        | Op::OutputGrad(_)
        | Op::DropoutMask(_)
        | Op::State(_)
        | Op::Carried(_) => return Err(format!("{op} is a leaf")),
        Op::PositionRow { .. } | Op::CacheWrite | Op::AttentionStep { .. } => {
            return Err(format!("{op} reads the step's position: see `at_position`"))
        }
        Op::BatchNormStats { eps } => norm::stats(mode, eps.get(), x(0)?, x(1)?, x(2)?)?,
        Op::BatchNorm => norm::normalize(x(0)?, x(1)?, x(2)?, x(3)?)?,
        Op::BatchNormGrad => norm::normalize_grad(x(0)?, x(1)?, x(2)?, x(3)?)?,
        Op::BatchNormScaleGrad => norm::channel_sums(x(0)?, Some((x(1)?, x(2)?)))?,
        Op::ChannelSum => norm::channel_sums(x(0)?, None)?,
        Op::AttentionProbs {
            heads,
            causal,
            scale,
        } => attention::probs(x(0)?, heads, causal, scale.get())?,
        Op::AttentionMix { heads } => attention::mix(x(0)?, x(1)?, heads)?,
        Op::AttentionGrad {
            heads,
            scale,
            dropout,
        } => {
            let mask = if dropout { Some(x(3)?) } else { None };
            attention::grad(x(0)?, x(1)?, x(2)?, mask, heads, scale.get())?
        }
        Op::LayerNorm { eps, bias } => {
            let beta = if bias { Some(x(2)?) } else { None };
            layer_norm::forward(eps.get(), x(0)?, x(1)?, beta)?
        }
        Op::LayerNormGrad { eps } => layer_norm::input_grad(eps.get(), x(0)?, x(1)?, x(2)?)?,
        Op::LayerNormScaleGrad { eps } => layer_norm::scale_grad(eps.get(), x(0)?, x(1)?)?,
        Op::RunningMean { momentum } => norm::running(momentum.get(), x(0)?, args[1], None)?,
        Op::RunningVar {
            momentum,
            per_channel,
        } => norm::running(momentum.get(), x(0)?, args[1], Some(batch * per_channel))?,
        Op::LstmScan { hidden, init } => {
            let init = if init { Some(x(2)?) } else { None };
            recurrent::scan(x(0)?, x(1)?, init, hidden)?
        }
        Op::LstmScanGrad { hidden, start } => {
            let init = if start == ScanStart::Zero {
                None
            } else {
                Some(x(3)?)
            };
            let learned = start == ScanStart::Learned;
            recurrent::scan_grad(x(0)?, x(1)?, x(2)?, init, learned, hidden)?
        }
        Op::RnnScan { hidden, relu, init } => {
            let init = if init { Some(x(2)?) } else { None };
            recurrent::rnn_scan(x(0)?, x(1)?, init, hidden, relu)?
        }
        Op::RnnScanGrad {
            hidden,
            relu,
            start,
        } => {
            let learned = start == ScanStart::Learned;
            recurrent::rnn_scan_grad(x(0)?, x(1)?, x(2)?, learned, hidden, relu)?
        }
        Op::GruScan { hidden, init } => {
            let init = if init { Some(x(3)?) } else { None };
            gru::scan(x(0)?, x(1)?, x(2)?, init, hidden)?
        }
        Op::CarryOut { planes } => recurrent::final_state(x(0)?, planes)?,
        Op::GruScanGrad { hidden, start } => {
            let init = if start == ScanStart::Zero {
                None
            } else {
                Some(x(3)?)
            };
            let learned = start == ScanStart::Learned;
            gru::scan_grad(x(0)?, x(1)?, x(2)?, init, learned, hidden)?
        }
        Op::ScanWeightGrad { hidden, init } => {
            let init = if init { Some(x(2)?) } else { None };
            recurrent::weight_grad(x(0)?, x(1)?, init, hidden)?
        }
        Op::FoldWeight { eps } => norm::fold_weight(eps.get(), x(0)?, x(1)?, x(2)?)?,
        Op::FoldBias { eps, bias } => {
            let b = if bias { Some(x(4)?) } else { None };
            norm::fold_bias(eps.get(), [x(0)?, x(1)?, x(2)?, x(3)?], b)?
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => matmul(x(0)?, x(1)?, transpose_a, transpose_b, out)?,
        Op::Dense { act, bias } => {
            let z = matmul(x(0)?, x(1)?, false, true, out)?;
            let z = if bias { bias_add(&z, x(2)?)? } else { z };
            map(&z, |v| activation(act, v))
        }
        Op::Conv { geom, bias, act } => {
            let b = if bias { Some(x(2)?) } else { None };
            map(&conv::conv(&geom, x(0)?, x(1)?, b, out), |v| {
                activation(act, v)
            })
        }
        Op::ConvInputGrad(geom) => conv::input_grad(&geom, x(0)?, x(1)?, out),
        Op::ConvWeightGrad(geom) => conv::weight_grad(&geom, x(0)?, x(1)?, out),
        Op::Pool { geom, max } => conv::pool(&geom, x(0)?, max, out),
        Op::PoolGrad { geom, max: true } => conv::pool_grad(&geom, Some(x(0)?), x(2)?, out),
        Op::PoolGrad { geom, max: false } => conv::pool_grad(&geom, None, x(0)?, out),
        Op::BiasAdd => bias_add(x(0)?, x(1)?)?,
        Op::SumRows { .. } => reduce_leading(x(0)?, out)?,
        Op::Activation(act) => map(x(0)?, |v| activation(act, v)),
        Op::ActivationGrad(act) => {
            let d = derivative(act)?;
            zip(x(0)?, x(1)?, |v, gy| gy * d(v))?
        }
        Op::Add => zip(x(0)?, x(1)?, |a, b| a + b)?,
        Op::Sub => zip(x(0)?, x(1)?, |a, b| a - b)?,
        Op::Mul => zip(x(0)?, x(1)?, |a, b| a * b)?,
        Op::Scale(c) => map(x(0)?, |v| c.get() * v),
        Op::Softmax => rows(&[x(0)?], |r, o| softmax_row(r[0], o))?,
        Op::LogSoftmax => rows(&[x(0)?], |r, o| log_softmax_row(r[0], o))?,
        Op::SoftmaxGrad => rows(&[x(0)?, x(1)?], |r, o| {
            // gx = y ⊙ (gy − Σ gy ⊙ y).
            let dot: f64 = r[0].iter().zip(r[1]).map(|(y, g)| y * g).sum();
            for ((o, y), g) in o.iter_mut().zip(r[0]).zip(r[1]) {
                *o = y * (g - dot);
            }
        })?,
        Op::LogSoftmaxGrad => rows(&[x(0)?, x(1)?], |r, o| {
            // gx = gy − e^y · Σ gy.
            let sum: f64 = r[1].iter().sum();
            for ((o, y), g) in o.iter_mut().zip(r[0]).zip(r[1]) {
                *o = g - y.exp() * sum;
            }
        })?,
        Op::Concat { axis } => {
            let parts = (0..args.len()).map(x).collect::<Result<Vec<_>, _>>()?;
            concat(&parts, axis)?
        }
        Op::Slice { axis, start, len } => slice(x(0)?, axis, start, len)?,
        Op::Reverse { axis } => reverse(x(0)?, axis)?,
        Op::Pad { axis, start, total } => pad(x(0)?, axis, start, total)?,
        Op::Reshape => {
            let t = x(0)?;
            Tensor::new(out.to_vec(), t.data.clone())?
        }
        Op::Embedding => embedding(ids(args, 0)?, x(1)?, out)?,
        Op::SumAxis { axis, scale } => sum_axis(x(0)?, axis, scale.get())?,
        Op::Expand { axis, size, scale } => expand(x(0)?, axis, size, scale.get())?,
        Op::Permute(perm) => permute(x(0)?, &perm.axes())?,
        Op::BatchMatMul {
            transpose_a,
            transpose_b,
        } => batch_matmul(x(0)?, x(1)?, transpose_a, transpose_b)?,
        Op::EmbeddingGrad => embedding_grad(ids(args, 0)?, x(1)?, out)?,
        Op::SelectRow => select_row(x(0)?, ids(args, 1)?, out)?,
        Op::SelectRowGrad { rows } => select_row_grad(x(0)?, ids(args, 1)?, rows, out)?,
        Op::Loss(spec) => Tensor::scalar(loss::value(spec, x(0)?, args[1])?),
        Op::LossGrad(spec) => loss::gradient(spec, x(0)?, args[1])?,
        Op::SoftmaxLossGrad(spec) => loss::softmax_gradient(spec, x(0)?, args[1])?,
        Op::SigmoidLossGrad(spec) => loss::sigmoid_gradient(spec, x(0)?, args[1])?,
    };
    Ok(Value::Float(t))
}

/// Argument `i` of an op, which must exist and hold floats.
fn float_arg<'a>(args: &[&'a Value], i: usize) -> Result<&'a Tensor, String> {
    args.get(i)
        .ok_or_else(|| format!("argument {i} is missing"))?
        .float()
}

/// The value of an op that reads the step entry point's current `position`.
pub fn at_position(op: Op, args: &[&Value], position: usize) -> Result<Value, String> {
    let x = |i: usize| float_arg(args, i);
    op.check_arity(args.len())?;
    let t = match op {
        Op::PositionRow { axis } => {
            let x = x(0)?;
            match x.shape.get(axis) {
                Some(&n) if position < n => slice(x, axis, position, 1)?,
                _ => {
                    return Err(format!(
                        "position {position} is outside axis {axis} of {:?}",
                        x.shape
                    ))
                }
            }
        }
        Op::CacheWrite => attention::cache_write(x(0)?, x(1)?, position)?,
        Op::AttentionStep { heads, scale } => {
            attention::step(x(0)?, x(1)?, heads, scale.get(), position)?
        }
        _ => return Err(format!("{op} does not read the position")),
    };
    Ok(Value::Float(t))
}

/// `op(a) · op(b)` on the matrix views `[leading product, last axis]` of both operands, where
/// `op` transposes the view when its flag is set. The result is `[m, n]` as a matrix and takes
/// the shape `out` of the node's type, whose own matrix view must be `[m, n]`.
fn matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool, out: &[usize]) -> Result<Tensor, String> {
    let (ra, ca) = a.rows_cols()?;
    let (rb, cb) = b.rows_cols()?;
    let (m, k) = if ta { (ca, ra) } else { (ra, ca) };
    let (k2, n) = if tb { (cb, rb) } else { (rb, cb) };
    if k != k2 {
        return Err(format!(
            "inner dimensions differ: {k} ({:?}) and {k2} ({:?})",
            a.shape, b.shape
        ));
    }
    if matrix_view(out)? != (m, n) {
        return Err(format!(
            "the product is {m}x{n}, which does not fit the result shape {out:?}"
        ));
    }
    let at = |i: usize, l: usize| {
        if ta {
            a.data[l * ca + i]
        } else {
            a.data[i * ca + l]
        }
    };
    let bt = |l: usize, j: usize| {
        if tb {
            b.data[j * cb + l]
        } else {
            b.data[l * cb + j]
        }
    };
    let mut data = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            data[i * n + j] = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
        }
    }
    Tensor::new(out.to_vec(), data)
}

/// `x + b`, with `b` (shaped like the last axes of `x`) added at every index of the others.
fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    if b.shape.is_empty() || b.shape.len() >= x.shape.len() || !x.shape.ends_with(&b.shape) {
        return Err(format!("bias {:?} does not fit {:?}", b.shape, x.shape));
    }
    let n = b.len();
    let mut y = x.clone();
    for (i, v) in y.data.iter_mut().enumerate() {
        *v += b.data[i % n];
    }
    Ok(y)
}

/// The sum over every leading axis of `x` that the result shape `out` does not keep: `out` must
/// be the trailing axes of `x`.
fn reduce_leading(x: &Tensor, out: &[usize]) -> Result<Tensor, String> {
    if out.len() > x.shape.len() || !x.shape.ends_with(out) {
        return Err(format!("{out:?} is not a trailing part of {:?}", x.shape));
    }
    let n: usize = out.iter().product();
    let mut data = vec![0.0; n];
    for (i, v) in x.data.iter().enumerate() {
        data[i % n.max(1)] += v;
    }
    Tensor::new(out.to_vec(), data)
}

fn map(x: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
    Tensor {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&v| f(v)).collect(),
    }
}

/// `f` element by element over two tensors of one shape.
fn zip(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Result<Tensor, String> {
    if a.shape != b.shape {
        return Err(format!("shapes differ: {:?} and {:?}", a.shape, b.shape));
    }
    Ok(Tensor {
        shape: a.shape.clone(),
        data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
    })
}

/// A row-wise op: `f` sees the same row (last axis) of every operand, all of the first's shape,
/// and writes the result's row.
fn rows(xs: &[&Tensor], f: impl Fn(&[&[f64]], &mut [f64])) -> Result<Tensor, String> {
    let (r, n) = xs[0].rows_cols()?;
    if let Some(other) = xs.iter().find(|t| t.shape != xs[0].shape) {
        return Err(format!(
            "shapes differ: {:?} and {:?}",
            xs[0].shape, other.shape
        ));
    }
    let mut out = Tensor::filled(xs[0].shape.clone(), 0.0);
    for i in 0..r {
        let row: Vec<&[f64]> = xs.iter().map(|t| &t.data[i * n..(i + 1) * n]).collect();
        f(&row, &mut out.data[i * n..(i + 1) * n]);
    }
    Ok(out)
}

/// `e^(x − max) / Σ e^(x − max)`: the softmax, with the row's maximum taken out so that no
/// exponential overflows (it cancels in the ratio).
fn softmax_row(x: &[f64], y: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x.iter().map(|v| (v - max).exp()).sum();
    for (y, v) in y.iter_mut().zip(x) {
        *y = (v - max).exp() / sum;
    }
}

/// `x − ln Σ e^x`, written as `(x − max) − ln Σ e^(x − max)` for the same reason.
fn log_softmax_row(x: &[f64], y: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    for (y, v) in y.iter_mut().zip(x) {
        *y = (v - max) - log_sum;
    }
}

/// The ids of argument `i`.
fn ids<'v>(args: &[&'v Value], i: usize) -> Result<&'v [u32], String> {
    match args.get(i) {
        Some(Value::Ids(ids)) => Ok(ids),
        _ => Err(format!("argument {i} is not ids")),
    }
}

/// The number of blocks before `axis` and the elements of one block from `axis` on.
fn blocks(shape: &[usize], axis: usize) -> Result<(usize, usize), String> {
    if axis >= shape.len() {
        return Err(format!("{shape:?} has no axis {axis}"));
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis..].iter().product(),
    ))
}

/// The parts joined along `axis`; every other axis must agree.
fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor, String> {
    let first = &parts[0].shape;
    let mut shape = first.clone();
    let last = shape.len().saturating_sub(1);
    shape[axis.min(last)] = 0;
    for p in parts {
        let agrees = p.shape.len() == first.len()
            && (0..first.len()).all(|k| k == axis || p.shape[k] == first[k]);
        if !agrees || axis >= first.len() {
            return Err(format!(
                "{:?} and {:?} differ off axis {axis}",
                first, p.shape
            ));
        }
        shape[axis] += p.shape[axis];
    }
    let (outer, _) = blocks(first, axis)?;
    let mut data = Vec::new();
    for o in 0..outer {
        for p in parts {
            let (_, w) = blocks(&p.shape, axis)?;
            data.extend_from_slice(&p.data[o * w..(o + 1) * w]);
        }
    }
    Tensor::new(shape, data)
}

/// Positions `start .. start + len` along `axis`.
fn slice(x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor, String> {
    let (outer, w) = blocks(&x.shape, axis)?;
    let n = x.shape[axis];
    if start.checked_add(len).is_none_or(|end| end > n) {
        return Err(format!(
            "{len} positions from {start} do not fit an axis of {n}"
        ));
    }
    let step = w / n.max(1);
    let mut data = Vec::new();
    for o in 0..outer {
        data.extend_from_slice(&x.data[o * w + start * step..o * w + (start + len) * step]);
    }
    let mut shape = x.shape.clone();
    shape[axis] = len;
    Tensor::new(shape, data)
}

/// `x` with the positions along `axis` in reverse order.
fn reverse(x: &Tensor, axis: usize) -> Result<Tensor, String> {
    let (outer, w) = blocks(&x.shape, axis)?;
    let n = x.shape[axis];
    let step = w / n.max(1);
    let mut data = Vec::with_capacity(x.data.len());
    for o in 0..outer {
        for i in (0..n).rev() {
            data.extend_from_slice(&x.data[o * w + i * step..o * w + (i + 1) * step]);
        }
    }
    Tensor::new(x.shape.clone(), data)
}

/// `x` placed at `start` along `axis` in zeros of size `total` there.
fn pad(x: &Tensor, axis: usize, start: usize, total: usize) -> Result<Tensor, String> {
    let (outer, w) = blocks(&x.shape, axis)?;
    let n = x.shape[axis];
    if start + n > total {
        return Err(format!(
            "{n} positions from {start} do not fit an axis of {total}"
        ));
    }
    let step = w / n.max(1);
    let mut shape = x.shape.clone();
    shape[axis] = total;
    let mut y = Tensor::filled(shape, 0.0);
    for o in 0..outer {
        let at = o * total * step + start * step;
        y.data[at..at + w].copy_from_slice(&x.data[o * w..(o + 1) * w]);
    }
    Ok(y)
}

/// Row `ids[i]` of `table` for every id, in order: `ids` shape plus the table's width.
fn embedding(ids: &[u32], table: &Tensor, out: &[usize]) -> Result<Tensor, String> {
    let (vocab, dim) = table.rows_cols()?;
    let mut data = Vec::with_capacity(ids.len() * dim);
    for &id in ids {
        let id = id as usize;
        if id >= vocab {
            return Err(format!("id {id} is not below the table's {vocab} rows"));
        }
        data.extend_from_slice(&table.data[id * dim..(id + 1) * dim]);
    }
    Tensor::new(out.to_vec(), data)
}

/// Each sample's row of `x` (`[B, T, …]`) at its index.
fn select_row(x: &Tensor, index: &[u32], out: &[usize]) -> Result<Tensor, String> {
    let (batch, rows) = (index.len(), x.shape.get(1).copied().unwrap_or(0));
    let width = x.len() / (batch * rows).max(1);
    let mut data = Vec::with_capacity(batch * width);
    for (b, &i) in index.iter().enumerate() {
        let i = i as usize;
        if i >= rows {
            return Err(format!(
                "index {i} of sample {b} is not below its {rows} rows"
            ));
        }
        let start = (b * rows + i) * width;
        data.extend_from_slice(&x.data[start..start + width]);
    }
    Tensor::new(out.to_vec(), data)
}

/// The gradient of `select_row`: each sample's `g` at its index of `rows`, zeros elsewhere.
fn select_row_grad(
    g: &Tensor,
    index: &[u32],
    rows: usize,
    out: &[usize],
) -> Result<Tensor, String> {
    let batch = index.len();
    let width = g.len() / batch.max(1);
    let mut t = Tensor::filled(out.to_vec(), 0.0);
    if t.len() != batch * rows * width {
        return Err(format!(
            "a select gradient of shape {out:?} for {batch} x {rows} x {width}"
        ));
    }
    for (b, &i) in index.iter().enumerate() {
        let start = (b * rows + i as usize) * width;
        t.data[start..start + width].copy_from_slice(&g.data[b * width..(b + 1) * width]);
    }
    Ok(t)
}

/// The table gradient: row `v` is the sum of the rows of `g` whose id is `v`.
fn embedding_grad(ids: &[u32], g: &Tensor, out: &[usize]) -> Result<Tensor, String> {
    let (vocab, dim) = matrix_view(out)?;
    if g.len() != ids.len() * dim {
        return Err(format!(
            "{} gradient values for {} ids of width {dim}",
            g.len(),
            ids.len()
        ));
    }
    let mut t = Tensor::filled(out.to_vec(), 0.0);
    for (i, &id) in ids.iter().enumerate() {
        let id = id as usize;
        if id >= vocab {
            return Err(format!("id {id} is not below the table's {vocab} rows"));
        }
        for k in 0..dim {
            t.data[id * dim + k] += g.data[i * dim + k];
        }
    }
    Ok(t)
}

/// Softplus is linear above this input (PyTorch's default `threshold=20`, with `beta=1`).
const SOFTPLUS_THRESHOLD: f64 = 20.0;
/// The cubic coefficient of GELU's tanh approximation.
const GELU_KAPPA: f64 = 0.044715;

/// `√(2/π)`, the scale inside GELU's tanh approximation.
fn gelu_beta() -> f64 {
    (2.0 / std::f64::consts::PI).sqrt()
}

/// The activation `act` at `x`, with PyTorch's definitions.
pub fn activation(act: Act, x: f64) -> f64 {
    match act {
        Act::Identity => x,
        // Comparisons written so that NaN passes through, as in PyTorch.
        Act::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Act::Tanh => x.tanh(),
        Act::Step { .. } => {
            if x > 0.0 {
                1.0
            } else if x <= 0.0 {
                0.0
            } else {
                x
            }
        }
        Act::LeakyRelu(a) => {
            if x > 0.0 {
                x
            } else {
                a.get() * x
            }
        }
        Act::Elu(a) => {
            if x > 0.0 {
                x
            } else {
                a.get() * x.exp_m1()
            }
        }
        Act::Gelu => x * normal_cdf(x),
        Act::GeluTanh => 0.5 * x * (1.0 + (gelu_beta() * (x + GELU_KAPPA * x * x * x)).tanh()),
        Act::Softplus => {
            if x > SOFTPLUS_THRESHOLD {
                x
            } else {
                x.exp().ln_1p()
            }
        }
    }
}

/// The derivative of `act` as a function of the value `activation_grad` receives: the
/// activation's output `y`, or its input `x` where [`Act::derivative_from_input`] says so. Each
/// formula is the derivative in `x` rewritten in `y`.
pub fn derivative(act: Act) -> Result<Box<dyn Fn(f64) -> f64>, String> {
    Ok(match act {
        Act::Identity => Box::new(|_| 1.0),
        Act::Relu => Box::new(|y| if y > 0.0 { 1.0 } else { 0.0 }),
        Act::Sigmoid => Box::new(|y| y * (1.0 - y)),
        Act::Tanh => Box::new(|y| 1.0 - y * y),
        // The step is flat; straight-through asks for the identity's derivative instead.
        Act::Step { straight_through } => {
            let d = if straight_through { 1.0 } else { 0.0 };
            Box::new(move |_| d)
        }
        // Both read the sign of x off y, which needs a slope that keeps the sign.
        Act::LeakyRelu(a) | Act::Elu(a) if a.get() < 0.0 => {
            return Err(format!(
                "{act} has a negative slope: y does not give x's sign"
            ))
        }
        Act::LeakyRelu(a) => {
            let a = a.get();
            Box::new(move |y| if y > 0.0 { 1.0 } else { a })
        }
        // For x ≤ 0, d/dx a·(e^x − 1) = a·e^x = y + a.
        Act::Elu(a) => {
            let a = a.get();
            Box::new(move |y| if y > 0.0 { 1.0 } else { y + a })
        }
        // Φ(x) + x·φ(x).
        Act::Gelu => Box::new(|x| {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            normal_cdf(x) + x * pdf
        }),
        Act::GeluTanh => Box::new(|x| {
            let (beta, x2) = (gelu_beta(), x * x);
            let th = (beta * (x + GELU_KAPPA * x2 * x)).tanh();
            0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * beta * (1.0 + 3.0 * GELU_KAPPA * x2)
        }),
        // σ(x) = 1 − e^(−y); above the threshold the forward pass is x itself, slope 1.
        Act::Softplus => Box::new(|y| {
            if y > SOFTPLUS_THRESHOLD {
                1.0
            } else {
                -(-y).exp_m1()
            }
        }),
    })
}

/// The standard normal distribution function `Φ(x) = erfc(−x/√2) / 2`, written through
/// `erfc` so that it keeps its relative precision far into the lower tail, where GELU's
/// `x·Φ(x)` is tiny.
fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The error function: its series below 1, `1 − erfc` above. GELU needs only `erfc`; this is
/// here so that the tests can check the series against known values of `erf`.
#[cfg(test)]
pub fn erf(x: f64) -> f64 {
    if x < 0.0 {
        -erf(-x)
    } else if x < 1.0 {
        erf_series(x)
    } else {
        1.0 - erfc(x)
    }
}

/// The complementary error function `1 − erf(z)`. From 1 on, Laplace's continued fraction
/// `erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …))))`, evaluated from a depth
/// of 500 back to the top (converged to an ulp for every z ≥ 1); below 1, `1 − erf(z)` loses at
/// most a factor 1/erfc(1) ≈ 6.4 of relative precision.
pub fn erfc(z: f64) -> f64 {
    if z < 0.0 {
        return 2.0 - erfc(-z);
    }
    if z < 1.0 {
        return 1.0 - erf_series(z);
    }
    let mut f = z;
    for n in (1..=500).rev() {
        f = z + f64::from(n) * 0.5 / f;
    }
    (-z * z).exp() / std::f64::consts::PI.sqrt() / f
}

/// `erf(x) = 2/√π · e^(−x²) · Σ_n 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`, a series that converges
/// everywhere and whose terms all have one sign, so that the sum loses nothing to cancellation.
fn erf_series(x: f64) -> f64 {
    let (x2, mut term, mut sum) = (x * x, x, x);
    let mut n = 0.0;
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
}

/// `scale · Σ` over `axis`, which the result drops.
fn sum_axis(x: &Tensor, axis: usize, scale: f64) -> Result<Tensor, String> {
    let (outer, w) = blocks(&x.shape, axis)?;
    let size = x.shape[axis];
    let inner = w / size.max(1);
    let mut data = vec![0.0; outer * inner];
    for o in 0..outer {
        for s in 0..size {
            for i in 0..inner {
                data[o * inner + i] += x.data[(o * size + s) * inner + i];
            }
        }
    }
    let mut shape = x.shape.clone();
    shape.remove(axis);
    Tensor::new(shape, data.into_iter().map(|v| scale * v).collect())
}

/// A new axis of `size` at `axis`, `scale · x` repeated along it.
fn expand(x: &Tensor, axis: usize, size: usize, scale: f64) -> Result<Tensor, String> {
    if axis > x.shape.len() {
        return Err(format!("{:?} has no axis {axis} to insert before", x.shape));
    }
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis..].iter().product();
    let mut data = Vec::with_capacity(outer * size * inner);
    for o in 0..outer {
        for _ in 0..size {
            data.extend(x.data[o * inner..(o + 1) * inner].iter().map(|v| scale * v));
        }
    }
    let mut shape = x.shape.clone();
    shape.insert(axis, size);
    Tensor::new(shape, data)
}

/// The axes of `x` reordered: axis `a` of the result is axis `perm[a]` of `x`.
fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let rank = x.shape.len();
    if perm.len() != rank {
        return Err(format!("permutation {perm:?} of {:?}", x.shape));
    }
    let shape: Vec<usize> = perm.iter().map(|&a| x.shape[a]).collect();
    let strides: Vec<usize> = (0..rank)
        .map(|a| x.shape[a + 1..].iter().product())
        .collect();
    let len = x.data.len();
    let mut data = Vec::with_capacity(len);
    for flat in 0..len {
        // The result index of `flat`, axis by axis, mapped to the position in `x`.
        let mut rest = flat;
        let mut at = 0;
        for a in (0..rank).rev() {
            at += (rest % shape[a]) * strides[perm[a]];
            rest /= shape[a];
        }
        data.push(x.data[at]);
    }
    Tensor::new(shape, data)
}

/// `op(a) · op(b)` for each matrix of the last two axes, the leading axes paired.
fn batch_matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor, String> {
    let r = a.shape.len();
    if r < 3 || b.shape.len() != r || a.shape[..r - 2] != b.shape[..r - 2] {
        return Err(format!("{:?} and {:?} do not pair", a.shape, b.shape));
    }
    let (ar, ac, br, bc) = (
        a.shape[r - 2],
        a.shape[r - 1],
        b.shape[r - 2],
        b.shape[r - 1],
    );
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    if k != k2 {
        return Err(format!("inner sizes {k} and {k2} differ"));
    }
    let count: usize = a.shape[..r - 2].iter().product();
    let mut data = Vec::with_capacity(count * m * n);
    for c in 0..count {
        let (a, b) = (&a.data[c * m * k..], &b.data[c * k * n..]);
        for i in 0..m {
            for j in 0..n {
                data.push(
                    (0..k)
                        .map(|l| {
                            let x = if ta { a[l * m + i] } else { a[i * k + l] };
                            let y = if tb { b[j * k + l] } else { b[l * n + j] };
                            x * y
                        })
                        .sum(),
                );
            }
        }
    }
    let mut shape = a.shape[..r - 2].to_vec();
    shape.extend([m, n]);
    Tensor::new(shape, data)
}
