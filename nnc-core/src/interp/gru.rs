//! PyTorch's `nn.GRU`, written from its equations one sample and one step at a time from a
//! zero state, gates r, z, n in the rows of the weights:
//! `r = σ(x_r + W_hr h + b_hr)`, `z = σ(x_z + W_hz h + b_hz)`,
//! `n = tanh(x_n + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`, with `x` the input
//! projection including `b_ih`. The record `[B, 5, T, H]` holds h, r, z, n and `W_hn h + b_hn`;
//! the gradient is `[B, 2, T, 3H]`, d x then d (W_hh h + b_hh). Backpropagation through time is
//! derived here from the same equations, independently of the runtime's blocked kernels.

use super::recurrent::initial;
use super::Tensor;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Index of plane `p`, step `t`, unit `k` of sample `b` in a record.
fn at(steps: usize, hidden: usize, b: usize, p: usize, t: usize, k: usize) -> usize {
    ((b * 5 + p) * steps + t) * hidden + k
}

/// `W_hh · h + b_hh`, the hidden product of one step, `3H` values.
fn hidden_product(w_hh: &Tensor, b_hh: &Tensor, h: &[f64]) -> Vec<f64> {
    let hidden = h.len();
    (0..3 * hidden)
        .map(|j| {
            let dot: f64 = (0..hidden).map(|k| w_hh.data[j * hidden + k] * h[k]).sum();
            dot + b_hh.data[j]
        })
        .collect()
}

/// The scan over `x` (`[B, T, 3H]`) with `w_hh` (`[3H, H]`) and `b_hh` (`[3H]`), from `init`
/// (`[B, 1, H]`) or from zero.
pub fn scan(
    x: &Tensor,
    w_hh: &Tensor,
    b_hh: &Tensor,
    init: Option<&Tensor>,
    hidden: usize,
) -> Result<Tensor, String> {
    let (batch, steps) = match x.shape.as_slice() {
        [b, t, g] if *g == 3 * hidden => (*b, *t),
        other => return Err(format!("GRU projections of shape {other:?}")),
    };
    if w_hh.shape != [3 * hidden, hidden] || b_hh.shape != [3 * hidden] {
        return Err(format!(
            "a recurrent weight of shape {:?} and bias of shape {:?}",
            w_hh.shape, b_hh.shape
        ));
    }
    let h3 = 3 * hidden;
    let mut out = Tensor::filled(vec![batch, 5, steps, hidden], 0.0);
    for b in 0..batch {
        let mut h = initial(init, b, 0, hidden)?;
        for t in 0..steps {
            let gh = hidden_product(w_hh, b_hh, &h);
            let gx = &x.data[(b * steps + t) * h3..(b * steps + t + 1) * h3];
            for k in 0..hidden {
                let r = sigmoid(gx[k] + gh[k]);
                let z = sigmoid(gx[hidden + k] + gh[hidden + k]);
                let hn = gh[2 * hidden + k];
                let n = (gx[2 * hidden + k] + r * hn).tanh();
                h[k] = (1.0 - z) * n + z * h[k];
                for (p, v) in [h[k], r, z, n, hn].into_iter().enumerate() {
                    out.data[at(steps, hidden, b, p, t, k)] = v;
                }
            }
        }
    }
    Ok(out)
}

/// The gradients of the input projection and of the hidden product from the record and its
/// gradient, whose h plane carries what the rest of the model sends back to each step.
pub fn scan_grad(
    record: &Tensor,
    d_record: &Tensor,
    w_hh: &Tensor,
    init: Option<&Tensor>,
    learned: bool,
    hidden: usize,
) -> Result<Tensor, String> {
    let (batch, steps) = match record.shape.as_slice() {
        [b, 5, t, h] if *h == hidden => (*b, *t),
        other => return Err(format!("a GRU record of shape {other:?}")),
    };
    if d_record.shape != record.shape {
        return Err("the record's gradient has another shape".into());
    }
    let h3 = 3 * hidden;
    let rows = 2 * steps + usize::from(learned);
    let mut out = Tensor::filled(vec![batch, rows, h3], 0.0);
    let plane = |data: &[f64], b, p, t, k| data[at(steps, hidden, b, p, t, k)];
    for b in 0..batch {
        let h_init = initial(init, b, 0, hidden)?;
        let mut dh_next = vec![0.0; hidden];
        for t in (0..steps).rev() {
            let (mut d_x, mut d_gh) = (vec![0.0; h3], vec![0.0; h3]);
            let mut d_prev = vec![0.0; hidden];
            for k in 0..hidden {
                let dh = plane(&d_record.data, b, 0, t, k) + dh_next[k];
                let [r, z, n, hn] = [1, 2, 3, 4].map(|p| plane(&record.data, b, p, t, k));
                let h_prev = if t > 0 {
                    plane(&record.data, b, 0, t - 1, k)
                } else {
                    h_init[k]
                };
                // h' = (1 − z)·n + z·h_prev.
                let (dn, dz) = (dh * (1.0 - z), dh * (h_prev - n));
                d_prev[k] = dh * z;
                // n = tanh(x_n + r·hn), r = σ(x_r + gh_r), z = σ(x_z + gh_z).
                let dn_pre = dn * (1.0 - n * n);
                let dr_pre = dn_pre * hn * r * (1.0 - r);
                let dz_pre = dz * z * (1.0 - z);
                d_x[k] = dr_pre;
                d_x[hidden + k] = dz_pre;
                d_x[2 * hidden + k] = dn_pre;
                d_gh[k] = dr_pre;
                d_gh[hidden + k] = dz_pre;
                d_gh[2 * hidden + k] = dn_pre * r;
            }
            // gh = W_hh·h_prev + b_hh: h_prev also gets W_hhᵀ·d_gh.
            for (k, d) in d_prev.iter_mut().enumerate() {
                *d += (0..h3)
                    .map(|j| d_gh[j] * w_hh.data[j * hidden + k])
                    .sum::<f64>();
            }
            dh_next = d_prev;
            let row = |p: usize| (b * rows + p * steps + t) * h3;
            out.data[row(0)..row(0) + h3].copy_from_slice(&d_x);
            out.data[row(1)..row(1) + h3].copy_from_slice(&d_gh);
        }
        if learned {
            // What reaches the initial state, after the steps.
            let row = (b * rows + 2 * steps) * h3;
            out.data[row..row + hidden].copy_from_slice(&dh_next);
        }
    }
    Ok(out)
}
