//! Max and average pooling over channels-first values `[B, C, H, W]` with PyTorch's
//! `MaxPool2d` and `AvgPool2d` semantics (floor mode, symmetric padding of at most half the
//! kernel, padding counted in the average's divisor as `count_include_pad = True` does), and
//! their gradients.
//!
//! Max pooling's backward pass finds each window's maximum again in the input rather than
//! keeping indices from the forward pass: a window of a LeNet layer is 4 values, so the search
//! costs less than writing and reading an index array would, and the arena keeps no integer
//! slots. Ties go to the first maximum in row-major order and the last NaN wins (as in PyTorch), so
//! both passes pick the same element. Every plane (one channel of one sample) is independent,
//! and planes are split over threads.

use super::split::{RowsMut, RowsRef, MIN_TASK_ELEMS};
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

    /// The input rows and columns of output position `(oy, ox)`'s window, clipped to the
    /// input (padding holds nothing).
    fn window(&self, oy: usize, ox: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let clip = |o: usize, axis: usize, size: usize| {
            let start = o * self.stride[axis];
            let (lo, hi) = (start, start + self.kernel[axis]);
            let pad = self.padding[axis];
            lo.saturating_sub(pad)..(hi - pad).min(size)
        };
        (clip(oy, 0, self.height), clip(ox, 1, self.width))
    }

    /// Runs `f(src plane, dst plane)` for every plane (channel of a sample) of `batch`
    /// samples, the planes split over threads.
    #[allow(clippy::too_many_arguments)] // Two operands, each with its plane length.
    fn over_planes<T: Float>(
        &self,
        exec: &Exec,
        batch: usize,
        src: &[T],
        src_len: usize,
        dst: &mut [T],
        dst_len: usize,
        f: impl Fn(&[T], &mut [T]) + Sync,
    ) {
        let planes = batch * self.channels;
        let work = planes * self.plane_lens().1 * self.kernel[0] * self.kernel[1];
        let tasks = exec.tasks_for(planes, work, MIN_TASK_ELEMS);
        let operands = (RowsRef(src, src_len), RowsMut::new(dst, dst_len));
        exec.split_rows(planes, 1, tasks, operands, |_, (src, dst)| {
            for (s, d) in src.chunks_exact(src_len).zip(dst.chunks_exact_mut(dst_len)) {
                f(s, d);
            }
        });
    }

    /// The index in the plane `x` of the maximum of output position `(oy, ox)`'s window.
    fn argmax<T: Float>(&self, x: &[T], oy: usize, ox: usize) -> usize {
        let (rows, cols) = self.window(oy, ox);
        let mut best = rows.start * self.width + cols.start;
        for iy in rows {
            for ix in cols.clone() {
                let i = iy * self.width + ix;
                if x[i] > x[best] || x[i].is_nan() {
                    best = i;
                }
            }
        }
        best
    }
}

/// `y` = the maximum of each window of `x`.
pub fn max_pool2d<T: Float>(exec: &Exec, batch: usize, geom: &Pool2d, x: &[T], y: &mut [T]) {
    geom.check("max_pool2d", batch, x, y);
    let (x_len, y_len) = geom.plane_lens();
    let ow = geom.out_width();
    geom.over_planes(exec, batch, x, x_len, y, y_len, |x, y| {
        for (o, y) in y.iter_mut().enumerate() {
            *y = x[geom.argmax(x, o / ow, o % ow)];
        }
    });
}

/// `gx` = each `gy` added at its window's maximum in `x`, zero elsewhere.
pub fn max_pool2d_backward<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Pool2d,
    x: &[T],
    gy: &[T],
    gx: &mut [T],
) {
    geom.check("max_pool2d_backward", batch, x, gy);
    assert_eq!(
        x.len(),
        gx.len(),
        "max_pool2d_backward: gx is not shaped like x"
    );
    let (x_len, y_len) = geom.plane_lens();
    let ow = geom.out_width();
    let planes = batch * geom.channels;
    let tasks = exec.tasks_for(
        planes,
        planes * y_len * geom.kernel[0] * geom.kernel[1],
        MIN_TASK_ELEMS,
    );
    let operands = (
        RowsRef(x, x_len),
        RowsRef(gy, y_len),
        RowsMut::new(gx, x_len),
    );
    exec.split_rows(planes, 1, tasks, operands, |_, (x, gy, gx)| {
        let planes = x.chunks_exact(x_len).zip(gy.chunks_exact(y_len));
        for ((x, gy), gx) in planes.zip(gx.chunks_exact_mut(x_len)) {
            gx.fill(T::ZERO);
            for (o, &g) in gy.iter().enumerate() {
                gx[geom.argmax(x, o / ow, o % ow)] += g;
            }
        }
    });
}

/// `y` = the mean of each window of `x`, padding counted as zeros in the divisor `kh · kw`.
pub fn avg_pool2d<T: Float>(exec: &Exec, batch: usize, geom: &Pool2d, x: &[T], y: &mut [T]) {
    geom.check("avg_pool2d", batch, x, y);
    let (x_len, y_len) = geom.plane_lens();
    let ow = geom.out_width();
    let scale = T::ONE / T::from_f64((geom.kernel[0] * geom.kernel[1]) as f64);
    geom.over_planes(exec, batch, x, x_len, y, y_len, |x, y| {
        for (o, y) in y.iter_mut().enumerate() {
            let (rows, cols) = geom.window(o / ow, o % ow);
            let mut sum = T::ZERO;
            for iy in rows {
                for &v in &x[iy * geom.width + cols.start..iy * geom.width + cols.end] {
                    sum += v;
                }
            }
            *y = sum * scale;
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
    let ow = geom.out_width();
    let scale = T::ONE / T::from_f64((geom.kernel[0] * geom.kernel[1]) as f64);
    geom.over_planes(exec, batch, gy, y_len, gx, x_len, |gy, gx| {
        gx.fill(T::ZERO);
        for (o, &g) in gy.iter().enumerate() {
            let (rows, cols) = geom.window(o / ow, o % ow);
            let g = g * scale;
            for iy in rows {
                for v in &mut gx[iy * geom.width + cols.start..iy * geom.width + cols.end] {
                    *v += g;
                }
            }
        }
    });
}
