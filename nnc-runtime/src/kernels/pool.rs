//! Max and average pooling over channels-first values `[B, C, H, W]` with PyTorch's
//! `MaxPool2d` and `AvgPool2d` semantics (floor mode, symmetric padding of at most half the
//! kernel, padding counted in the average's divisor as `count_include_pad = True` does), and
//! their gradients.
//!
//! Max pooling keeps no indices: its backward pass reads the forward pass's maxima and finds
//! each one's position in its window again (a LeNet window is 4 values), so the forward pass
//! is a plain branch-free maximum and the arena keeps no integer slots. Ties go to the first
//! maximum in row-major order and the last NaN wins, as in PyTorch. Every plane (one channel of one sample) is independent,
//! and planes are split over threads.

use std::ops::Range;

use super::split::{RowsMut, RowsRef, Split, MIN_TASK_ELEMS};
use super::Exec;
use crate::float::Float;

/// The shape of a pooling: its input, kernel, stride and padding (`[rows, columns]`, on both
/// sides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Channels `C`.
    pub channels: usize,
    /// Input rows `H`.
    pub height: usize,
    /// Input columns `W`.
    pub width: usize,
    /// Window rows and columns.
    pub kernel: [usize; 2],
    /// Steps between windows, down and across.
    pub stride: [usize; 2],
    /// Implicit padding on each side, rows and columns: at most half the window.
    pub padding: [usize; 2],
}

impl Pool2d {
    /// `⌊(H + 2·pad − kh) / stride⌋ + 1`; the compiler has checked that it is at least 1.
    pub const fn out_height(&self) -> usize {
        (self.height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    /// The same formula over the columns.
    pub const fn out_width(&self) -> usize {
        (self.width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    fn check<T>(&self, what: &str, batch: usize, x: &[T], y: &[T]) {
        assert!(
            self.stride[0] > 0
                && self.stride[1] > 0
                && 2 * self.padding[0] <= self.kernel[0]
                && 2 * self.padding[1] <= self.kernel[1]
                && self.height + 2 * self.padding[0] >= self.kernel[0]
                && self.width + 2 * self.padding[1] >= self.kernel[1],
            "{what}: impossible geometry {self:?}"
        );
        let planes = batch.checked_mul(self.channels);
        let (x_len, y_len) = self.plane_lens();
        assert_eq!(
            Some(x.len()),
            planes.and_then(|n| n.checked_mul(x_len)),
            "{what}: x is not batch x C x H x W"
        );
        assert_eq!(
            Some(y.len()),
            planes.and_then(|n| n.checked_mul(y_len)),
            "{what}: y is not batch x C x out_h x out_w"
        );
    }

    fn plane_lens(&self) -> (usize, usize) {
        (
            self.height * self.width,
            self.out_height() * self.out_width(),
        )
    }

    /// Runs `f` on the operands' pieces for the planes (channels of samples) of `batch`
    /// samples, split over threads when the windows' work is worth it; each operand holds one
    /// row per plane.
    fn split_planes<S: Split>(
        &self,
        exec: &Exec,
        batch: usize,
        operands: S,
        f: impl Fn(S::Part) + Sync,
    ) {
        let planes = batch * self.channels;
        let work = planes * self.plane_lens().1 * self.kernel[0] * self.kernel[1];
        let tasks = exec.tasks_for(planes, work, MIN_TASK_ELEMS);
        exec.split_rows(planes, 1, tasks, operands, |_, parts| f(parts));
    }

    /// Calls `f(output index, window rows, window columns)` for every output position of a
    /// plane, row by row (no division per position).
    #[inline(always)]
    fn each_window(&self, mut f: impl FnMut(usize, Range<usize>, Range<usize>)) {
        let ow = self.out_width();
        for oy in 0..self.out_height() {
            let rows = self.window_axis(oy, 0, self.height);
            for ox in 0..ow {
                f(
                    oy * ow + ox,
                    rows.clone(),
                    self.window_axis(ox, 1, self.width),
                );
            }
        }
    }

    /// The input rows (`axis` 0) or columns (1) of output position `o`'s window, clipped to
    /// the input (padding holds nothing).
    #[inline(always)]
    fn window_axis(&self, o: usize, axis: usize, size: usize) -> Range<usize> {
        let start = o * self.stride[axis];
        let pad = self.padding[axis];
        start.saturating_sub(pad)..(start + self.kernel[axis] - pad).min(size)
    }

    /// The maximum of the window `rows` x `cols` of the plane `x`, NaN if it holds one. The
    /// maximum and the NaN test are two independent folds with no branch, which runs about four
    /// times faster than tracking the position of the maximum as it goes (0.32 ms against
    /// 1.3 ms for 64 samples of 6x24x24 in 2x2 windows).
    #[inline(always)]
    fn max_of<T: Float>(&self, x: &[T], rows: Range<usize>, cols: Range<usize>) -> T {
        let w = self.width;
        let mut top = x[rows.start * w + cols.start];
        let mut nan = false;
        for iy in rows {
            for &v in &x[iy * w + cols.start..iy * w + cols.end] {
                top = top.max(v);
                nan |= v.is_nan();
            }
        }
        if nan {
            T::from_f64(f64::NAN)
        } else {
            top
        }
    }

    /// [`Pool2d::max_of`] over every window of a plane for the common unpadded 2x2 and 3x3
    /// windows, whose loops the compiler unrolls (0.2 ms instead of 1.2 ms for 64 samples of
    /// 6x24x24 in 2x2 windows).
    #[inline(always)]
    fn max_plane<T: Float, const KH: usize, const KW: usize>(&self, x: &[T], y: &mut [T]) {
        let ([sh, sw], w, ow) = (self.stride, self.width, self.out_width());
        for (oy, y) in y.chunks_exact_mut(ow).enumerate() {
            for (ox, y) in y.iter_mut().enumerate() {
                let corner = oy * sh * w + ox * sw;
                let window: [[T; KW]; KH] =
                    std::array::from_fn(|ky| std::array::from_fn(|kx| x[corner + ky * w + kx]));
                let mut top = window[0][0];
                let mut nan = false;
                for &v in window.as_flattened() {
                    top = top.max(v);
                    nan |= v.is_nan();
                }
                *y = if nan { T::from_f64(f64::NAN) } else { top };
            }
        }
    }

    /// Where in the window of the plane `x` the maximum `top` that the forward pass found lies:
    /// PyTorch's choice, the first position holding it in row-major order, or the last NaN.
    #[inline(always)]
    fn position_of<T: Float>(
        &self,
        x: &[T],
        rows: Range<usize>,
        cols: Range<usize>,
        top: T,
    ) -> usize {
        let w = self.width;
        let mut found = rows.start * w + cols.start;
        for iy in rows.rev() {
            for i in (iy * w + cols.start..iy * w + cols.end).rev() {
                // Scanning backwards, the last match is the first in row-major order; a NaN
                // maximum matches the last NaN first.
                if x[i] == top {
                    found = i;
                } else if top.is_nan() && x[i].is_nan() {
                    return i;
                }
            }
        }
        found
    }
}

/// `y` = the maximum of each window of `x`.
pub fn max_pool2d<T: Float>(exec: &Exec, batch: usize, geom: &Pool2d, x: &[T], y: &mut [T]) {
    geom.check("max_pool2d", batch, x, y);
    let (x_len, y_len) = geom.plane_lens();
    let operands = (RowsRef(x, x_len), RowsMut::new(y, y_len));
    geom.split_planes(exec, batch, operands, |(x, y)| {
        for (x, y) in x.chunks_exact(x_len).zip(y.chunks_exact_mut(y_len)) {
            match (geom.padding, geom.kernel) {
                ([0, 0], [2, 2]) => geom.max_plane::<T, 2, 2>(x, y),
                ([0, 0], [3, 3]) => geom.max_plane::<T, 3, 3>(x, y),
                _ => geom.each_window(|o, rows, cols| y[o] = geom.max_of(x, rows, cols)),
            }
        }
    });
}

/// `gx` = each `gy` added at its window's maximum in `x`, zero elsewhere; `y` is the forward
/// pass's output, the maxima, which saves finding them again.
#[allow(clippy::too_many_arguments)] // The geometry and the operands.
pub fn max_pool2d_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Pool2d,
    x: &[T],
    y: &[T],
    gy: &[T],
    gx: &mut [T],
) {
    geom.check("max_pool2d_backward", batch, x, gy);
    assert_eq!(
        x.len(),
        gx.len(),
        "max_pool2d_backward: gx is not shaped like x"
    );
    assert_eq!(
        y.len(),
        gy.len(),
        "max_pool2d_backward: y is not shaped like gy"
    );
    let (x_len, y_len) = geom.plane_lens();
    let operands = (
        RowsRef(x, x_len),
        RowsRef(y, y_len),
        RowsRef(gy, y_len),
        RowsMut::new(gx, x_len),
    );
    geom.split_planes(exec, batch, operands, |(x, y, gy, gx)| {
        let planes = x
            .chunks_exact(x_len)
            .zip(y.chunks_exact(y_len))
            .zip(gy.chunks_exact(y_len));
        for (((x, y), gy), gx) in planes.zip(gx.chunks_exact_mut(x_len)) {
            gx.fill(T::ZERO);
            geom.each_window(|o, rows, cols| gx[geom.position_of(x, rows, cols, y[o])] += gy[o]);
        }
    });
}

/// `y` = the mean of each window of `x`, padding counted as zeros in the divisor `kh · kw`.
pub fn avg_pool2d<T: Float>(exec: &Exec, batch: usize, geom: &Pool2d, x: &[T], y: &mut [T]) {
    geom.check("avg_pool2d", batch, x, y);
    let (x_len, y_len) = geom.plane_lens();
    let scale = T::ONE / T::from_f64((geom.kernel[0] * geom.kernel[1]) as f64);
    let w = geom.width;
    let operands = (RowsRef(x, x_len), RowsMut::new(y, y_len));
    geom.split_planes(exec, batch, operands, |(x, y)| {
        for (x, y) in x.chunks_exact(x_len).zip(y.chunks_exact_mut(y_len)) {
            geom.each_window(|o, rows, cols| {
                let mut sum = T::ZERO;
                for iy in rows {
                    for &v in &x[iy * w + cols.start..iy * w + cols.end] {
                        sum += v;
                    }
                }
                y[o] = sum * scale;
            });
        }
    });
}

/// `gx` = each `gy / (kh · kw)` added over its window.
pub fn avg_pool2d_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Pool2d,
    gy: &[T],
    gx: &mut [T],
) {
    geom.check("avg_pool2d_backward", batch, gx, gy);
    let (x_len, y_len) = geom.plane_lens();
    let scale = T::ONE / T::from_f64((geom.kernel[0] * geom.kernel[1]) as f64);
    let w = geom.width;
    let operands = (RowsRef(gy, y_len), RowsMut::new(gx, x_len));
    geom.split_planes(exec, batch, operands, |(gy, gx)| {
        for (gy, gx) in gy.chunks_exact(y_len).zip(gx.chunks_exact_mut(x_len)) {
            gx.fill(T::ZERO);
            geom.each_window(|o, rows, cols| {
                let g = gy[o] * scale;
                for iy in rows {
                    for v in &mut gx[iy * w + cols.start..iy * w + cols.end] {
                        *v += g;
                    }
                }
            });
        }
    });
}
