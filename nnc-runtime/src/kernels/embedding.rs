//! Embedding lookups: rows of a table gathered by integer ids, and the table's gradient; and
//! the per-sample form, `select`: each sample's row at its own index (the last real step of a
//! padded sequence), and its gradient.
//!
//! The ids were range-checked by the generated method before any kernel runs, so indexing
//! here cannot fail on caller input; a bad id would be a generator bug and panics.

use crate::float::Float;
use crate::kernels::Exec;

/// `out[i, :] = table[ids[i], :]` for every id: `ids.len() × dim` values.
pub fn embedding<T: Float>(_: &Exec, dim: usize, ids: &[u32], table: &[T], out: &mut [T]) {
    assert_eq!(
        out.len(),
        ids.len() * dim,
        "embedding: out is not {}x{dim}",
        ids.len()
    );
    if dim == 0 {
        return;
    }
    for (&id, row) in ids.iter().zip(out.chunks_exact_mut(dim)) {
        let start = id as usize * dim;
        row.copy_from_slice(&table[start..start + dim]);
    }
}

/// The table gradient of [`embedding`]: `g_table[v, :] = Σ g[i, :]` over the positions `i`
/// whose id is `v`, and zero for every id that does not occur.
///
/// The whole table is cleared first. The optimizer reads the gradient buffer as a dense
/// tensor, exactly like PyTorch's `nn.Embedding(sparse=False)`: rows of ids absent from the
/// batch hold zeros, so Adam's moments decay there and weight decay still applies. Clearing
/// only the rows of the previous batch would need that batch's ids in the model, which a
/// second workspace would overwrite. The clear is cheap next to the layers after the table:
/// for `examples/char_mlp.nnc` at batch 128 (1,024 ids, a 65 × 24 table) the whole backward
/// kernel, clear included, takes 5.0 µs, against 1.07 ms for the forward product of the
/// hidden layer it feeds (`cargo bench -p nnc-runtime --bench kernels -- embedding`).
pub fn embedding_backward<T: Float>(_: &Exec, dim: usize, ids: &[u32], g: &[T], g_table: &mut [T]) {
    assert_eq!(
        g.len(),
        ids.len() * dim,
        "embedding_backward: g is not {}x{dim}",
        ids.len()
    );
    g_table.fill(T::ZERO);
    if dim == 0 {
        return;
    }
    for (&id, row) in ids.iter().zip(g.chunks_exact(dim)) {
        let start = id as usize * dim;
        for (t, x) in g_table[start..start + dim].iter_mut().zip(row) {
            *t += *x;
        }
    }
}

/// `out[b, :] = x[b, index[b], :]` for each sample `b` of `x` (`[B, rows, width]`): one row of
/// every sample, picked by that sample's index.
pub fn select_rows<T: Float>(
    _: &Exec,
    rows: usize,
    width: usize,
    x: &[T],
    index: &[u32],
    out: &mut [T],
) {
    let batch = index.len();
    assert_eq!(
        x.len(),
        batch * rows * width,
        "select_rows: x is not B x {rows} x {width}"
    );
    assert_eq!(
        out.len(),
        batch * width,
        "select_rows: out is not B x {width}"
    );
    if width == 0 {
        return;
    }
    let samples = x
        .chunks_exact(rows * width)
        .zip(out.chunks_exact_mut(width));
    for ((sample, row), &i) in samples.zip(index) {
        let start = i as usize * width;
        row.copy_from_slice(&sample[start..start + width]);
    }
}

/// The gradient of [`select_rows`]: each sample's `g` row at its index, zeros elsewhere
/// (`[B, rows, width]`).
pub fn select_rows_backward<T: Float>(
    _: &Exec,
    rows: usize,
    width: usize,
    g: &[T],
    index: &[u32],
    dx: &mut [T],
) {
    let batch = index.len();
    assert_eq!(
        g.len(),
        batch * width,
        "select_rows_backward: g is not B x {width}"
    );
    assert_eq!(
        dx.len(),
        batch * rows * width,
        "select_rows_backward: dx is not B x {rows} x {width}"
    );
    dx.fill(T::ZERO);
    if width == 0 {
        return;
    }
    let samples = dx.chunks_exact_mut(rows * width).zip(g.chunks_exact(width));
    for ((sample, row), &i) in samples.zip(index) {
        let start = i as usize * width;
        sample[start..start + width].copy_from_slice(row);
    }
}
