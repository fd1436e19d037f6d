//! Layer normalisation over the last axis, written from PyTorch's definition (`LayerNorm`):
//! every row normalised with its own mean and biased variance. The input gradient is the
//! row's Jacobian applied to the upstream gradient, `∂x̂_j/∂x_i = (δ_ij − 1/n − x̂_i·x̂_j/n)/σ`,
//! summed term by term rather than through the runtime's closed form, so that the two check
//! each other.

use super::Tensor;

/// The rows of `x` (every axis but the last) and their width, checking each parameter's length.
fn layout(x: &Tensor, params: &[&Tensor]) -> Result<(usize, usize), String> {
    let (rows, width) = x.rows_cols()?;
    if let Some(p) = params.iter().find(|p| p.shape != [width]) {
        return Err(format!(
            "a layer norm parameter of shape {:?} does not fit rows of {width}",
            p.shape
        ));
    }
    Ok((rows, width))
}

/// A row's normalised values and its `√(var + eps)`.
fn normalized(row: &[f64], eps: f64) -> (Vec<f64>, f64) {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let sigma = (var + eps).sqrt();
    (row.iter().map(|v| (v - mean) / sigma).collect(), sigma)
}

/// `γ·x̂ + β` per row.
pub fn forward(
    eps: f64,
    x: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
) -> Result<Tensor, String> {
    let params: Vec<&Tensor> = std::iter::once(gamma).chain(beta).collect();
    let (_, width) = layout(x, &params)?;
    let mut out = Tensor::filled(x.shape.clone(), 0.0);
    for (row, y) in x.data.chunks(width).zip(out.data.chunks_mut(width)) {
        let (xhat, _) = normalized(row, eps);
        for (j, y) in y.iter_mut().enumerate() {
            *y = gamma.data[j] * xhat[j] + beta.map_or(0.0, |b| b.data[j]);
        }
    }
    Ok(out)
}

/// d loss / d x: `Σ_j g_j·γ_j·∂x̂_j/∂x_i` per row.
pub fn input_grad(eps: f64, g: &Tensor, x: &Tensor, gamma: &Tensor) -> Result<Tensor, String> {
    let (_, width) = layout(x, &[gamma])?;
    if g.shape != x.shape {
        return Err(format!("gradient {:?} does not fit {:?}", g.shape, x.shape));
    }
    let n = width as f64;
    let mut out = Tensor::filled(x.shape.clone(), 0.0);
    let rows = x.data.chunks(width).zip(g.data.chunks(width));
    for ((row, g), dx) in rows.zip(out.data.chunks_mut(width)) {
        let (xhat, sigma) = normalized(row, eps);
        for (i, dx) in dx.iter_mut().enumerate() {
            *dx = (0..width)
                .map(|j| {
                    let delta = if i == j { 1.0 } else { 0.0 };
                    g[j] * gamma.data[j] * (delta - 1.0 / n - xhat[i] * xhat[j] / n) / sigma
                })
                .sum();
        }
    }
    Ok(out)
}

/// d loss / d γ: `Σ over rows of g ⊙ x̂`.
pub fn scale_grad(eps: f64, g: &Tensor, x: &Tensor) -> Result<Tensor, String> {
    let (_, width) = layout(x, &[])?;
    if g.shape != x.shape {
        return Err(format!("gradient {:?} does not fit {:?}", g.shape, x.shape));
    }
    let mut out = Tensor::filled(vec![width], 0.0);
    for (row, g) in x.data.chunks(width).zip(g.data.chunks(width)) {
        let (xhat, _) = normalized(row, eps);
        for (j, o) in out.data.iter_mut().enumerate() {
            *o += g[j] * xhat[j];
        }
    }
    Ok(out)
}
