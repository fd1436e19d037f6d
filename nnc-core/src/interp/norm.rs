//! Batch normalisation, written from PyTorch's definition (`BatchNorm1d`/`2d`): each channel,
//! the first per-sample axis, is normalised over the batch and every later axis. The backward
//! formula is derived independently here, with the batch statistics as functions of `x`, so
//! that it checks the runtime's kernel rather than repeating it.

use super::{Tensor, Value};
use crate::ir::Mode;

/// `[batch, channels, spread]` of a batch-normalised value.
fn layout(x: &Tensor) -> Result<(usize, usize, usize), String> {
    match x.shape.as_slice() {
        [b, c, rest @ ..] => Ok((*b, *c, rest.iter().product())),
        _ => Err(format!(
            "batch norm needs [B, C, …] values, found {:?}",
            x.shape
        )),
    }
}

/// The values of channel `c`, in order.
fn channel(x: &Tensor, c: usize) -> Result<Vec<f64>, String> {
    let (b, channels, s) = layout(x)?;
    Ok((0..b)
        .flat_map(|i| {
            let start = (i * channels + c) * s;
            x.data[start..start + s].iter().copied()
        })
        .collect())
}

/// Writes the values of channel `c` back in the layout of `x`.
fn set_channel(x: &mut Tensor, c: usize, values: &[f64]) -> Result<(), String> {
    let (b, channels, s) = layout(x)?;
    for (i, chunk) in (0..b).zip(values.chunks(s.max(1))) {
        let start = (i * channels + c) * s;
        x.data[start..start + s].copy_from_slice(chunk);
    }
    Ok(())
}

/// `[3, C]`: mean, 1/√(var + eps), var — the batch's (biased variance) in training, the
/// running ones in inference.
pub fn stats(
    mode: Mode,
    eps: f64,
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<Tensor, String> {
    let (_, c, _) = layout(x)?;
    if mean.len() != c || var.len() != c {
        return Err(format!(
            "running statistics of {} and {} values for {c} channels",
            mean.len(),
            var.len()
        ));
    }
    let (mut m, mut v) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        (m[ch], v[ch]) = match mode {
            Mode::Infer => (mean.data[ch], var.data[ch]),
            Mode::Train => {
                let values = channel(x, ch)?;
                let n = values.len() as f64;
                let mu = values.iter().sum::<f64>() / n;
                (mu, values.iter().map(|e| (e - mu).powi(2)).sum::<f64>() / n)
            }
        };
    }
    let inv: Vec<f64> = v.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    Tensor::new(vec![3, c], [m, inv, v].concat())
}

/// Whether `stats` is `[3, c]` and every parameter `[c]`, or why not.
fn fits(c: usize, stats: &Tensor, params: &[&Tensor]) -> Result<(), String> {
    if stats.shape != [3, c] || params.iter().any(|p| p.shape != [c]) {
        return Err(format!(
            "statistics {:?} and parameters {:?} do not fit {c} channels",
            stats.shape,
            params.iter().map(|p| &p.shape).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// The per-channel scalars of `stats`: (mean, inv_std).
fn moments(stats: &Tensor, c: usize) -> (f64, f64) {
    let channels = stats.len() / 3;
    (stats.data[c], stats.data[channels + c])
}

/// `γ·(x − mean)·inv_std + β`.
pub fn normalize(
    x: &Tensor,
    stats: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
) -> Result<Tensor, String> {
    let (_, c, _) = layout(x)?;
    fits(c, stats, &[gamma, beta])?;
    let mut y = x.clone();
    for ch in 0..c {
        let (mean, inv) = moments(stats, ch);
        let values: Vec<f64> = channel(x, ch)?
            .iter()
            .map(|e| gamma.data[ch] * (e - mean) * inv + beta.data[ch])
            .collect();
        set_channel(&mut y, ch, &values)?;
    }
    Ok(y)
}

/// d loss / d x through y = γ·x̂ + β with x̂ = (x − μ)/σ, μ and σ² = mean((x − μ)²) of the
/// channel's n values: dx̂ = γ·g, dσ² = Σ dx̂·(x − μ)·(−½)σ⁻³, dμ = −Σ dx̂/σ (the term through
/// σ² vanishes, since Σ (x − μ) = 0), dx = dx̂/σ + dσ²·2(x − μ)/n + dμ/n.
pub fn normalize_grad(
    g: &Tensor,
    x: &Tensor,
    stats: &Tensor,
    gamma: &Tensor,
) -> Result<Tensor, String> {
    let (_, c, _) = layout(x)?;
    fits(c, stats, &[gamma])?;
    if g.shape != x.shape {
        return Err(format!("gradient {:?} for values {:?}", g.shape, x.shape));
    }
    let mut dx = x.clone();
    for ch in 0..c {
        let (mu, inv) = moments(stats, ch);
        let (gs, xs) = (channel(g, ch)?, channel(x, ch)?);
        let n = xs.len() as f64;
        let dxhat: Vec<f64> = gs.iter().map(|g| gamma.data[ch] * g).collect();
        let dvar: f64 = dxhat
            .iter()
            .zip(&xs)
            .map(|(d, x)| d * (x - mu) * -0.5 * inv.powi(3))
            .sum();
        let dmu: f64 = -dxhat.iter().sum::<f64>() * inv;
        let values: Vec<f64> = dxhat
            .iter()
            .zip(&xs)
            .map(|(d, x)| d * inv + dvar * 2.0 * (x - mu) / n + dmu / n)
            .collect();
        set_channel(&mut dx, ch, &values)?;
    }
    Ok(dx)
}

/// `Σ g·x̂` per channel when `with_xhat`, else `Σ g`.
pub fn channel_sums(g: &Tensor, x: Option<(&Tensor, &Tensor)>) -> Result<Tensor, String> {
    let (_, c, _) = layout(g)?;
    let mut out = vec![0.0; c];
    for (ch, o) in out.iter_mut().enumerate() {
        let gs = channel(g, ch)?;
        *o = match x {
            None => gs.iter().sum(),
            Some((x, stats)) => {
                fits(c, stats, &[])?;
                if x.shape != g.shape {
                    return Err(format!("gradient {:?} for values {:?}", g.shape, x.shape));
                }
                let (mean, inv) = moments(stats, ch);
                gs.iter()
                    .zip(channel(x, ch)?)
                    .map(|(g, x)| g * (x - mean) * inv)
                    .sum()
            }
        };
    }
    Tensor::new(vec![c], out)
}

/// The next running statistic: `(1 − m)·running + m·batch statistic`, where the variance is
/// made unbiased over the `n` values of a channel.
pub fn running(
    momentum: f64,
    stats: &Tensor,
    state: &Value,
    var_over: Option<usize>,
) -> Result<Tensor, String> {
    let state = state.float()?;
    let c = state.len();
    fits(c, stats, &[])?;
    let row = if var_over.is_some() { 2 } else { 0 };
    let correction = match var_over {
        Some(n) if n < 2 => {
            return Err(format!(
                "{n} value(s) per channel give no unbiased variance"
            ))
        }
        Some(n) => n as f64 / (n as f64 - 1.0),
        None => 1.0,
    };
    let data = (0..c)
        .map(|i| (1.0 - momentum) * state.data[i] + momentum * stats.data[row * c + i] * correction)
        .collect();
    Tensor::new(vec![c], data)
}

/// Batch norm's factor per channel in inference, `s = γ/√(var + eps)`: folding it into the
/// convolution before it gives the weight `w'[o, …] = w[o, …]·s[o]` and the bias
/// `b'[o] = (b[o] − mean[o])·s[o] + β[o]` (`b` zero when absent). Written from the algebra of the
/// two layers, so that it checks the folding pass and the runtime's kernels rather than
/// repeating them.
fn fold_scale(
    eps: f64,
    gamma: &Tensor,
    var: &Tensor,
    rest: &[&Tensor],
) -> Result<Vec<f64>, String> {
    let c = gamma.len();
    if std::iter::once(var)
        .chain(rest.iter().copied())
        .any(|t| t.shape != [c])
    {
        return Err(format!("folding needs [{c}] per-channel values"));
    }
    Ok((0..c)
        .map(|o| gamma.data[o] / (var.data[o] + eps).sqrt())
        .collect())
}

/// The folded weight `w'[o, …] = w[o, …]·s[o]` (see [`fold_scale`]).
pub fn fold_weight(eps: f64, w: &Tensor, gamma: &Tensor, var: &Tensor) -> Result<Tensor, String> {
    let scale = fold_scale(eps, gamma, var, &[])?;
    let c = scale.len();
    if w.shape.first() != Some(&c) {
        return Err(format!("a weight of shape {:?} for {c} channels", w.shape));
    }
    let per_channel = w.len() / c;
    let data = w
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| v * scale[i / per_channel])
        .collect();
    Tensor::new(w.shape.clone(), data)
}

/// The folded bias `b'[o] = (b[o] − mean[o])·s[o] + β[o]` (see [`fold_scale`]).
pub fn fold_bias(
    eps: f64,
    [gamma, beta, mean, var]: [&Tensor; 4],
    bias: Option<&Tensor>,
) -> Result<Tensor, String> {
    let scale = fold_scale(
        eps,
        gamma,
        var,
        &[[beta, mean].as_slice(), bias.as_slice()].concat(),
    )?;
    let data = (0..scale.len())
        .map(|o| (bias.map_or(0.0, |b| b.data[o]) - mean.data[o]) * scale[o] + beta.data[o])
        .collect();
    Tensor::new(vec![scale.len()], data)
}
