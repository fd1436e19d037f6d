//! Element-wise arithmetic on whole tensors, and the column copies that concatenate tensors along
//! their last dimension and split the gradient back.
//!
//! These loops are memory-bound, so the baseline vector width that LLVM already uses for them is
//! enough and they are not dispatched to AVX2.

use super::split::{RowsMut, RowsRef};
use super::Exec;
use crate::float::Float;

/// Asserts that the operands of an element-wise kernel have one length.
fn assert_same_len(what: &str, lens: &[usize]) {
    assert!(
        lens.windows(2).all(|w| w[0] == w[1]),
        "{what}: operand lengths {lens:?} differ"
    );
}

/// `out = a + b`, element-wise.
pub fn add<T: Float>(exec: &Exec, a: &[T], b: &[T], out: &mut [T]) {
    assert_same_len("add", &[a.len(), b.len(), out.len()]);
    let operands = (RowsRef(a, 1), RowsRef(b, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(a, b, out)| {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    });
}

/// `out += a`, element-wise (the same as [`accumulate`] with the arguments swapped).
pub fn add_assign<T: Float>(exec: &Exec, out: &mut [T], a: &[T]) {
    assert_same_len("add_assign", &[out.len(), a.len()]);
    let operands = (RowsRef(a, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(a, out)| {
        for (o, &x) in out.iter_mut().zip(a) {
            *o += x;
        }
    });
}

/// `out += x`, element-wise: adds a gradient contribution into an accumulator.
pub fn accumulate<T: Float>(exec: &Exec, x: &[T], out: &mut [T]) {
    assert_same_len("accumulate", &[x.len(), out.len()]);
    let operands = (RowsRef(x, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(x, out)| {
        for (o, &x) in out.iter_mut().zip(x) {
            *o += x;
        }
    });
}

/// `out = a − b`, element-wise.
pub fn sub<T: Float>(exec: &Exec, a: &[T], b: &[T], out: &mut [T]) {
    assert_same_len("sub", &[a.len(), b.len(), out.len()]);
    let operands = (RowsRef(a, 1), RowsRef(b, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(a, b, out)| {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x - y;
        }
    });
}

/// `out = a ⊙ b`, element-wise.
pub fn mul<T: Float>(exec: &Exec, a: &[T], b: &[T], out: &mut [T]) {
    assert_same_len("mul", &[a.len(), b.len(), out.len()]);
    let operands = (RowsRef(a, 1), RowsRef(b, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(a, b, out)| {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x * y;
        }
    });
}

/// `g ⊙= a`, element-wise; for example the backward pass of dropout applied in place, with `a`
/// its mask.
pub fn mul_inplace<T: Float>(exec: &Exec, a: &[T], g: &mut [T]) {
    assert_same_len("mul_inplace", &[a.len(), g.len()]);
    let operands = (RowsRef(a, 1), RowsMut::new(g, 1));
    exec.split_elems(1, operands, |(a, g)| {
        for (g, &a) in g.iter_mut().zip(a) {
            *g *= a;
        }
    });
}

/// `out = c·x`, element-wise.
pub fn scale<T: Float>(exec: &Exec, x: &[T], c: T, out: &mut [T]) {
    assert_same_len("scale", &[x.len(), out.len()]);
    let operands = (RowsRef(x, 1), RowsMut::new(out, 1));
    exec.split_elems(1, operands, |(x, out)| {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = c * x;
        }
    });
}

/// Copies each row of `src` (`batch × src_width`) into columns
/// `dst_offset..dst_offset + src_width` of `dst` (`batch × dst_width`), leaving the other columns
/// alone: one call per part concatenates tensors along their last dimension.
pub fn copy_cols<T: Float>(
    _: &Exec,
    batch: usize,
    src: &[T],
    src_width: usize,
    dst: &mut [T],
    dst_width: usize,
    dst_offset: usize,
) {
    assert_eq!(
        src.len(),
        batch * src_width,
        "copy_cols: src is not {batch}x{src_width}"
    );
    assert_eq!(
        dst.len(),
        batch * dst_width,
        "copy_cols: dst is not {batch}x{dst_width}"
    );
    assert!(
        dst_offset + src_width <= dst_width,
        "copy_cols: columns {dst_offset}..{} do not fit in a row of {dst_width}",
        dst_offset + src_width
    );
    // `chunks_exact` rejects a width of 0; with src_width 0 there is nothing to copy.
    if src_width == 0 {
        return;
    }
    for (s, d) in src
        .chunks_exact(src_width)
        .zip(dst.chunks_exact_mut(dst_width))
    {
        d[dst_offset..dst_offset + src_width].copy_from_slice(s);
    }
}

/// `dst[b, j] = src[b, src_offset + j]` for `j < dst_width`: reads one part back out of a
/// concatenation, which is the gradient of [`copy_cols`].
pub fn slice_cols<T: Float>(
    _: &Exec,
    batch: usize,
    src: &[T],
    src_width: usize,
    src_offset: usize,
    dst: &mut [T],
    dst_width: usize,
) {
    assert_eq!(
        src.len(),
        batch * src_width,
        "slice_cols: src is not {batch}x{src_width}"
    );
    assert_eq!(
        dst.len(),
        batch * dst_width,
        "slice_cols: dst is not {batch}x{dst_width}"
    );
    assert!(
        src_offset + dst_width <= src_width,
        "slice_cols: columns {src_offset}..{} do not fit in a row of {src_width}",
        src_offset + dst_width
    );
    if dst_width == 0 {
        return;
    }
    for (s, d) in src
        .chunks_exact(src_width)
        .zip(dst.chunks_exact_mut(dst_width))
    {
        d.copy_from_slice(&s[src_offset..src_offset + dst_width]);
    }
}

/// `dst` = `src` with the positions of each row reversed: rows of `width` values hold
/// `width / step` positions of `step` values each (a sequence of steps along one axis), and
/// position `i` of a row goes to position `n − 1 − i`. A bidirectional layer reads its sequence
/// this way, and its gradient goes back the same way.
pub fn reverse_blocks<T: Float>(
    _: &Exec,
    rows: usize,
    src: &[T],
    width: usize,
    step: usize,
    dst: &mut [T],
) {
    assert!(
        step > 0 && width.is_multiple_of(step),
        "reverse_blocks: rows of {width} are not whole positions of {step}"
    );
    assert_eq!(
        src.len(),
        rows * width,
        "reverse_blocks: src is not {rows}x{width}"
    );
    assert_eq!(
        dst.len(),
        rows * width,
        "reverse_blocks: dst is not {rows}x{width}"
    );
    for (s, d) in src.chunks_exact(width).zip(dst.chunks_exact_mut(width)) {
        for (from, to) in s.chunks_exact(step).zip(d.chunks_exact_mut(step).rev()) {
            to.copy_from_slice(from);
        }
    }
}
