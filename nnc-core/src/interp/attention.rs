//! Multi-head scaled dot-product self-attention, written from its definition ("Attention Is
//! All You Need", and PyTorch's `scaled_dot_product_attention` with `is_causal`): for each head,
//! `P = softmax(scale · Q Kᵀ + mask)` with the mask `−∞` above the diagonal when causal, and
//! `O = P V`. Each weight, score and gradient is one explicit sum, in the order the definition
//! reads, not the runtime's blocked products.

use super::Tensor;

/// The sizes of packed projections `[B, T, 3D]` for `heads` heads: B, T, D and the head width.
fn sizes(qkv: &Tensor, heads: usize) -> Result<(usize, usize, usize, usize), String> {
    match qkv.shape.as_slice() {
        [b, t, w] if heads > 0 && w % (3 * heads) == 0 => Ok((*b, *t, w / 3, w / 3 / heads)),
        _ => Err(format!(
            "attention over {heads} heads needs packed projections [B, T, 3D], found {:?}",
            qkv.shape
        )),
    }
}

/// Element `c` of head `h`'s query (`part` 0), key (1) or value (2) at position `t` of sample
/// `b`.
fn at(
    qkv: &Tensor,
    dims: (usize, usize, usize, usize),
    b: usize,
    t: usize,
    part: usize,
    h: usize,
    c: usize,
) -> f64 {
    let (_, steps, model, head) = dims;
    qkv.data[(b * steps + t) * 3 * model + part * model + h * head + c]
}

/// The weights `[B, heads, T, T]`.
pub fn probs(qkv: &Tensor, heads: usize, causal: bool, scale: f64) -> Result<Tensor, String> {
    let dims = sizes(qkv, heads)?;
    let (batch, steps, _, head) = dims;
    let mut out = Tensor::filled(vec![batch, heads, steps, steps], 0.0);
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..steps {
                let seen = if causal { i + 1 } else { steps };
                let scores: Vec<f64> = (0..seen)
                    .map(|j| {
                        let dot: f64 = (0..head)
                            .map(|c| at(qkv, dims, b, i, 0, h, c) * at(qkv, dims, b, j, 1, h, c))
                            .sum();
                        scale * dot
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                let row = ((b * heads + h) * steps + i) * steps;
                for (j, s) in scores.iter().enumerate() {
                    out.data[row + j] = (s - max).exp() / total;
                }
            }
        }
    }
    Ok(out)
}

/// Checks that `p` is the weights of `qkv`'s attention.
fn fits(p: &Tensor, dims: (usize, usize, usize, usize), heads: usize) -> Result<(), String> {
    let (batch, steps, ..) = dims;
    if p.shape != [batch, heads, steps, steps] {
        return Err(format!(
            "weights {:?} do not fit {heads} heads over {steps} positions",
            p.shape
        ));
    }
    Ok(())
}

/// `O[b, i, h·hs + c] = Σ_j P[b, h, i, j] · v_j[h·hs + c]`.
pub fn mix(p: &Tensor, qkv: &Tensor, heads: usize) -> Result<Tensor, String> {
    let dims = sizes(qkv, heads)?;
    fits(p, dims, heads)?;
    let (batch, steps, model, head) = dims;
    let mut out = Tensor::filled(vec![batch, steps, model], 0.0);
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..steps {
                for c in 0..head {
                    out.data[(b * steps + i) * model + h * head + c] = (0..steps)
                        .map(|j| {
                            p.data[((b * heads + h) * steps + i) * steps + j]
                                * at(qkv, dims, b, j, 2, h, c)
                        })
                        .sum();
                }
            }
        }
    }
    Ok(out)
}

/// d loss / d qkv from the weights, the projections and `g` = d loss / d O, where O mixed the
/// values with `P ⊙ M` (M the dropout mask, all ones without one): `dv_j = Σ_i P_ij M_ij g_i`,
/// `dP_ij = M_ij · g_i · v_j`, `dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik)`, `dq_i = scale Σ_j
/// dS_ij k_j`, `dk_j = scale Σ_i dS_ij q_i`, per head.
pub fn grad(
    p: &Tensor,
    qkv: &Tensor,
    g: &Tensor,
    mask: Option<&Tensor>,
    heads: usize,
    scale: f64,
) -> Result<Tensor, String> {
    let dims = sizes(qkv, heads)?;
    fits(p, dims, heads)?;
    let (batch, steps, model, head) = dims;
    if g.shape != [batch, steps, model] {
        return Err(format!(
            "gradient {:?} does not fit [{batch}, {steps}, {model}]",
            g.shape
        ));
    }
    if mask.is_some_and(|m| m.shape != p.shape) {
        return Err(format!(
            "a dropout mask of another shape than the weights {:?}",
            p.shape
        ));
    }
    let mut out = Tensor::filled(qkv.shape.clone(), 0.0);
    let go =
        |b: usize, i: usize, h: usize, c: usize| g.data[(b * steps + i) * model + h * head + c];
    let slot = |b: usize, t: usize, part: usize, h: usize, c: usize| {
        (b * steps + t) * 3 * model + part * model + h * head + c
    };
    for b in 0..batch {
        for h in 0..heads {
            let at_ij = |i: usize, j: usize| ((b * heads + h) * steps + i) * steps + j;
            let weight = |i: usize, j: usize| p.data[at_ij(i, j)];
            let kept = |i: usize, j: usize| mask.map_or(1.0, |m| m.data[at_ij(i, j)]);
            let dp: Vec<Vec<f64>> = (0..steps)
                .map(|i| {
                    (0..steps)
                        .map(|j| {
                            kept(i, j)
                                * (0..head)
                                    .map(|c| go(b, i, h, c) * at(qkv, dims, b, j, 2, h, c))
                                    .sum::<f64>()
                        })
                        .collect()
                })
                .collect();
            let ds: Vec<Vec<f64>> = (0..steps)
                .map(|i| {
                    let dot: f64 = (0..steps).map(|k| weight(i, k) * dp[i][k]).sum();
                    (0..steps)
                        .map(|j| weight(i, j) * (dp[i][j] - dot))
                        .collect()
                })
                .collect();
            for (t, ds_t) in ds.iter().enumerate() {
                for c in 0..head {
                    out.data[slot(b, t, 0, h, c)] = scale
                        * (0..steps)
                            .map(|j| ds_t[j] * at(qkv, dims, b, j, 1, h, c))
                            .sum::<f64>();
                    out.data[slot(b, t, 1, h, c)] = scale
                        * (0..steps)
                            .map(|i| ds[i][t] * at(qkv, dims, b, i, 0, h, c))
                            .sum::<f64>();
                    out.data[slot(b, t, 2, h, c)] = (0..steps)
                        .map(|i| weight(i, t) * kept(i, t) * go(b, i, h, c))
                        .sum();
                }
            }
        }
    }
    Ok(out)
}

/// The cache `[B, T, 2D]` with row `position` of each sample replaced by the key and value of
/// `qkv` `[B, 1, 3D]`.
pub fn cache_write(qkv: &Tensor, cache: &Tensor, position: usize) -> Result<Tensor, String> {
    let (batch, steps, width) = match (qkv.shape.as_slice(), cache.shape.as_slice()) {
        ([b, 1, w], [b2, t, w2]) if b == b2 && w % 3 == 0 && *w2 == w / 3 * 2 && position < *t => {
            (*b, *t, w / 3)
        }
        _ => {
            return Err(format!(
                "cannot write {:?} into the cache {:?} at {position}",
                qkv.shape, cache.shape
            ))
        }
    };
    let mut out = cache.clone();
    for b in 0..batch {
        for c in 0..2 * width {
            out.data[(b * steps + position) * 2 * width + c] = qkv.data[b * 3 * width + width + c];
        }
    }
    Ok(out)
}

/// The attention of the position `position` of each sample: its query (from `qkv` `[B, 1,
/// 3D]`) against the cached keys of positions `0..=position`, mixing their cached values,
/// `[B, 1, D]`, by the definition as in [`probs`] and [`mix`].
pub fn step(
    qkv: &Tensor,
    cache: &Tensor,
    heads: usize,
    scale: f64,
    position: usize,
) -> Result<Tensor, String> {
    let (batch, steps, width) = match (qkv.shape.as_slice(), cache.shape.as_slice()) {
        ([b, 1, w], [b2, t, w2])
            if b == b2
                && w % 3 == 0
                && *w2 == w / 3 * 2
                && position < *t
                && heads > 0
                && (w / 3) % heads == 0 =>
        {
            (*b, *t, w / 3)
        }
        _ => {
            return Err(format!(
                "attention at {position} of {:?} over the cache {:?} does not fit {heads} heads",
                qkv.shape, cache.shape
            ))
        }
    };
    let head = width / heads;
    let mut out = Tensor::filled(vec![batch, 1, width], 0.0);
    for b in 0..batch {
        let key = |j: usize, c: usize| cache.data[(b * steps + j) * 2 * width + c];
        for h in 0..heads {
            let scores: Vec<f64> = (0..=position)
                .map(|j| {
                    scale
                        * (0..head)
                            .map(|c| qkv.data[b * 3 * width + h * head + c] * key(j, h * head + c))
                            .sum::<f64>()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for c in 0..head {
                out.data[b * width + h * head + c] = scores
                    .iter()
                    .enumerate()
                    .map(|(j, s)| (s - max).exp() / total * key(j, width + h * head + c))
                    .sum();
            }
        }
    }
    Ok(out)
}
