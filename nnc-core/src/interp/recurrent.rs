//! The recurrent scans, written from PyTorch's equations one sample and one step at a time,
//! from a zero state. `nn.LSTM`: gates i, f, g, o in that order in the rows of the weights,
//! `c_t = f ⊙ c_{t−1} + i ⊙ g` and `h_t = o ⊙ tanh(c_t)`, its record `[B, 6, T, H]` the planes
//! of h, c, i, f, g, o. `nn.RNN`: `h_t = act(z_t + W_hh h_{t−1})`, its record `[B, 1, T, H]`.
//! A scan may start from a given state instead, whose gradient the backward pass then returns
//! after the steps.
//! Backpropagation through time is derived here step by step from the same equations,
//! independently of the runtime's blocked kernels.

use super::Tensor;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `[B, T, H]` of a record `[B, 6, T, H]`, checked.
fn record_dims(record: &Tensor, hidden: usize) -> Result<(usize, usize), String> {
    match record.shape.as_slice() {
        [b, 6, t, h] if *h == hidden => Ok((*b, *t)),
        other => Err(format!(
            "an LSTM record of shape {other:?} for hidden size {hidden}"
        )),
    }
}

/// Index of plane `p`, step `t`, unit `k` of sample `b` in a record.
fn at(steps: usize, hidden: usize, b: usize, p: usize, t: usize, k: usize) -> usize {
    ((b * 6 + p) * steps + t) * hidden + k
}

/// Sample `b`'s plane `p` of an initial state `[B, P, H]` of `hidden` units, or zeros.
pub fn initial(
    init: Option<&Tensor>,
    b: usize,
    p: usize,
    hidden: usize,
) -> Result<Vec<f64>, String> {
    let Some(init) = init else {
        return Ok(vec![0.0; hidden]);
    };
    match init.shape.as_slice() {
        [_, planes, h] if *h == hidden && p < *planes => {
            let start = (b * planes + p) * hidden;
            init.data
                .get(start..start + hidden)
                .map(<[f64]>::to_vec)
                .ok_or_else(|| format!("an initial state of shape {:?}", init.shape))
        }
        other => Err(format!("an initial state of shape {other:?}")),
    }
}

/// The state after the last step of a record `[B, P, T, H]`: its first `planes` planes at
/// step T − 1, `[B, planes, H]`.
pub fn final_state(record: &Tensor, planes: usize) -> Result<Tensor, String> {
    let (batch, all, steps, hidden) = match record.shape.as_slice() {
        [b, p, t, h] if *p >= planes && *t > 0 => (*b, *p, *t, *h),
        other => return Err(format!("a record of shape {other:?}")),
    };
    let mut out = Tensor::filled(vec![batch, planes, hidden], 0.0);
    for b in 0..batch {
        for p in 0..planes {
            let from = ((b * all + p) * steps + steps - 1) * hidden;
            let to = (b * planes + p) * hidden;
            out.data[to..to + hidden].copy_from_slice(&record.data[from..from + hidden]);
        }
    }
    Ok(out)
}

/// The scan over `z` (`[B, T, 4H]`, the input projections with both biases) with the
/// recurrent weight `w_hh` (`[4H, H]`), from `init` (`[B, 2, H]`, h then c) or from zero.
pub fn scan(
    z: &Tensor,
    w_hh: &Tensor,
    init: Option<&Tensor>,
    hidden: usize,
) -> Result<Tensor, String> {
    let (batch, steps) = match z.shape.as_slice() {
        [b, t, g] if *g == 4 * hidden => (*b, *t),
        other => return Err(format!("LSTM projections of shape {other:?}")),
    };
    if w_hh.shape != [4 * hidden, hidden] {
        return Err(format!("a recurrent weight of shape {:?}", w_hh.shape));
    }
    let h4 = 4 * hidden;
    let mut out = Tensor::filled(vec![batch, 6, steps, hidden], 0.0);
    for b in 0..batch {
        let (mut h, mut c) = (initial(init, b, 0, hidden)?, initial(init, b, 1, hidden)?);
        for t in 0..steps {
            let pre: Vec<f64> = (0..h4)
                .map(|j| {
                    let recurrent: f64 =
                        (0..hidden).map(|k| w_hh.data[j * hidden + k] * h[k]).sum();
                    z.data[(b * steps + t) * h4 + j] + recurrent
                })
                .collect();
            for k in 0..hidden {
                let i = sigmoid(pre[k]);
                let f = sigmoid(pre[hidden + k]);
                let g = pre[2 * hidden + k].tanh();
                let o = sigmoid(pre[3 * hidden + k]);
                c[k] = f * c[k] + i * g;
                h[k] = o * c[k].tanh();
                for (p, v) in [h[k], c[k], i, f, g, o].into_iter().enumerate() {
                    out.data[at(steps, hidden, b, p, t, k)] = v;
                }
            }
        }
    }
    Ok(out)
}

/// d loss / d z from the record and its gradient, whose h and c planes carry what the rest of
/// the model sends back to each step.
pub fn scan_grad(
    record: &Tensor,
    d_record: &Tensor,
    w_hh: &Tensor,
    init: Option<&Tensor>,
    learned: bool,
    hidden: usize,
) -> Result<Tensor, String> {
    let (batch, steps) = record_dims(record, hidden)?;
    if d_record.shape != record.shape {
        return Err("the record's gradient has another shape".into());
    }
    let h4 = 4 * hidden;
    let rows = steps + usize::from(learned);
    let mut dz = Tensor::filled(vec![batch, rows, h4], 0.0);
    let plane = |data: &[f64], b, p, t, k| data[at(steps, hidden, b, p, t, k)];
    for b in 0..batch {
        let c_init = initial(init, b, 1, hidden)?;
        // The gradients flowing back into step t from step t + 1.
        let (mut dh_next, mut dc_next) = (vec![0.0; hidden], vec![0.0; hidden]);
        for t in (0..steps).rev() {
            let mut dpre = vec![0.0; h4];
            for k in 0..hidden {
                let dh = plane(&d_record.data, b, 0, t, k) + dh_next[k];
                let c = plane(&record.data, b, 1, t, k);
                let [i, f, g, o] = [2, 3, 4, 5].map(|p| plane(&record.data, b, p, t, k));
                let c_prev = if t > 0 {
                    plane(&record.data, b, 1, t - 1, k)
                } else {
                    c_init[k]
                };
                // h = o·tanh(c): both factors get a share of dh.
                let tc = c.tanh();
                let dc = plane(&d_record.data, b, 1, t, k) + dc_next[k] + dh * o * (1.0 - tc * tc);
                let d_o = dh * tc;
                // c = f·c_prev + i·g.
                let (di, df, dg) = (dc * g, dc * c_prev, dc * i);
                dc_next[k] = dc * f;
                dpre[k] = di * i * (1.0 - i);
                dpre[hidden + k] = df * f * (1.0 - f);
                dpre[2 * hidden + k] = dg * (1.0 - g * g);
                dpre[3 * hidden + k] = d_o * o * (1.0 - o);
            }
            dz.data[(b * rows + t) * h4..(b * rows + t + 1) * h4].copy_from_slice(&dpre);
            // pre = z + W_hh·h_prev: h_prev gets W_hhᵀ·dpre.
            for (k, d) in dh_next.iter_mut().enumerate() {
                *d = (0..h4).map(|j| dpre[j] * w_hh.data[j * hidden + k]).sum();
            }
        }
        if learned {
            // What reaches the initial h and c, after the steps.
            let row = (b * rows + steps) * h4;
            dz.data[row..row + hidden].copy_from_slice(&dh_next);
            dz.data[row + hidden..row + 2 * hidden].copy_from_slice(&dc_next);
        }
    }
    Ok(dz)
}

/// d loss / d W_hh of any scan: `Σ_b Σ_t dz[b, t]ᵀ · h[b, t − 1]`, h the record's first plane,
/// and before the first step the given initial hidden state (the first plane of `init`) or zero.
pub fn weight_grad(
    dz: &Tensor,
    record: &Tensor,
    init: Option<&Tensor>,
    hidden: usize,
) -> Result<Tensor, String> {
    let (batch, planes, steps) = match record.shape.as_slice() {
        [b, p, t, h] if *h == hidden => (*b, *p, *t),
        other => {
            return Err(format!(
                "a record of shape {other:?} for hidden size {hidden}"
            ))
        }
    };
    let width = match dz.shape.as_slice() {
        [b, t, w] if *b == batch && *t == steps => *w,
        other => return Err(format!("dz of shape {other:?}")),
    };
    let mut dw = Tensor::filled(vec![width, hidden], 0.0);
    for b in 0..batch {
        let h_init = initial(init, b, 0, hidden)?;
        for t in 0..steps {
            let h_prev = match t {
                0 => &h_init[..],
                _ => {
                    let start = ((b * planes) * steps + t - 1) * hidden;
                    &record.data[start..start + hidden]
                }
            };
            for j in 0..width {
                for (k, h) in h_prev.iter().enumerate() {
                    dw.data[j * hidden + k] += dz.data[(b * steps + t) * width + j] * h;
                }
            }
        }
    }
    Ok(dw)
}

/// The activation of an RNN and its derivative written through its output.
fn rnn_act(relu: bool, x: f64) -> f64 {
    if relu {
        x.max(0.0)
    } else {
        x.tanh()
    }
}

/// The RNN's scan over `z` (`[B, T, H]`) with `w_hh` (`[H, H]`), from `init` (`[B, 1, H]`) or
/// from zero: the record `[B, 1, T, H]`.
pub fn rnn_scan(
    z: &Tensor,
    w_hh: &Tensor,
    init: Option<&Tensor>,
    hidden: usize,
    relu: bool,
) -> Result<Tensor, String> {
    let (batch, steps) = match z.shape.as_slice() {
        [b, t, h] if *h == hidden => (*b, *t),
        other => return Err(format!("RNN projections of shape {other:?}")),
    };
    if w_hh.shape != [hidden, hidden] {
        return Err(format!("a recurrent weight of shape {:?}", w_hh.shape));
    }
    let mut out = Tensor::filled(vec![batch, 1, steps, hidden], 0.0);
    for b in 0..batch {
        let mut h = initial(init, b, 0, hidden)?;
        for t in 0..steps {
            let next: Vec<f64> = (0..hidden)
                .map(|j| {
                    let recurrent: f64 =
                        (0..hidden).map(|k| w_hh.data[j * hidden + k] * h[k]).sum();
                    rnn_act(relu, z.data[(b * steps + t) * hidden + j] + recurrent)
                })
                .collect();
            out.data[(b * steps + t) * hidden..(b * steps + t + 1) * hidden].copy_from_slice(&next);
            h = next;
        }
    }
    Ok(out)
}

/// d loss / d z of the RNN from its record and the record's gradient.
pub fn rnn_scan_grad(
    record: &Tensor,
    d_record: &Tensor,
    w_hh: &Tensor,
    learned: bool,
    hidden: usize,
    relu: bool,
) -> Result<Tensor, String> {
    let (batch, steps) = match record.shape.as_slice() {
        [b, 1, t, h] if *h == hidden => (*b, *t),
        other => return Err(format!("an RNN record of shape {other:?}")),
    };
    if d_record.shape != record.shape {
        return Err("the record's gradient has another shape".into());
    }
    let rows = steps + usize::from(learned);
    let mut dz = Tensor::filled(vec![batch, rows, hidden], 0.0);
    for b in 0..batch {
        let mut dh_next = vec![0.0; hidden];
        for t in (0..steps).rev() {
            let row = (b * steps + t) * hidden;
            let out = (b * rows + t) * hidden;
            let dpre: Vec<f64> = (0..hidden)
                .map(|k| {
                    let (h, dh) = (record.data[row + k], d_record.data[row + k] + dh_next[k]);
                    // tanh' = 1 − h², relu' = 1 where the output is positive.
                    let slope = if relu {
                        f64::from(h > 0.0)
                    } else {
                        1.0 - h * h
                    };
                    dh * slope
                })
                .collect();
            dz.data[out..out + hidden].copy_from_slice(&dpre);
            for (k, d) in dh_next.iter_mut().enumerate() {
                *d = (0..hidden)
                    .map(|j| dpre[j] * w_hh.data[j * hidden + k])
                    .sum();
            }
        }
        if learned {
            // What reaches the initial state, after the steps.
            let out = (b * rows + steps) * hidden;
            dz.data[out..out + hidden].copy_from_slice(&dh_next);
        }
    }
    Ok(dz)
}
