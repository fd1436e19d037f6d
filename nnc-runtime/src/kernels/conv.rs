//! Two-dimensional convolution over channels-first values `[B, C, H, W]`, with PyTorch's
//! `Conv2d` semantics (cross-correlation; stride, zero padding on each side, dilation, groups)
//! and weights `[O, C/groups, kh, kw]`. A one-dimensional convolution is the same with `H = 1`.
//!
//! Every pass goes through the columns of one sample and one group (im2col): a `[K, P]`
//! matrix whose row `r` holds, for each of the `P = out_h · out_w` output positions, the input
//! value (zero in the padding) that tap `r` of the `K = C/groups · kh · kw` taps of a weight row
//! sees. Each row is a shifted copy of input rows, built by contiguous copies of up to `out_w`
//! values where the stride is 1. With it the forward pass is one `gemm_nn` (`y = W · cols`, the
//! weights broadcast against whole vectors of positions), the input gradient one `gemm_nn` into
//! the columns' shape followed by a scatter-add back into the image, and the weight gradient
//! one `gemm_nt` per sample (`gy · colsᵀ`, dot products over the positions). The columns live
//! in scratch space that the caller sizes with [`Conv2d::scratch_len`] per thread (a workspace
//! plans it beside its arena), so nothing is allocated. This layout replaced one with a row per
//! position (`[P, K]`), whose rows of `kw` values were copied one element at a time.
//!
//! Every geometry takes the columns, however few its channels. A direct kernel (each tap's
//! weight times a shifted input row added into every output row, no columns, the inner loop
//! vectorised under AVX2) was measured against them on one sample of each convolution of the
//! examples (`cargo bench -p nnc-runtime --bench kernels -- conv2d`, criterion medians, with
//! bias and relu, on this 2-core AVX-512 VM): LeNet's c1 (1→6, 5×5 on 28×28) 7.2 µs by columns
//! against 52 µs direct, c2 (6→16) 18 against 150 µs, the all-convolutional net's c1 (1→8, 3×3,
//! padding 1) 7.0 against 39 µs, its strided c2 and c3 35 and 20 against 331 and 434 µs, its
//! 1×1 classes layer 4.3 against 21 µs, and the digits CNN's c1 (1→8 on 8×8) 1.4 against
//! 5.2 µs. Even with one input channel the columns cost less than the product reads them, and
//! the blocked product reuses each loaded input value across a block of output channels,
//! which the direct loop reloads per channel; so no rule picks the direct kernel, and it was
//! not kept.
//!
//! The forward pass and the input gradient split the batch over threads (each sample is
//! independent); the weight gradient splits output channels, and each task sums over the batch
//! in order, so results are the same on any number of threads. Bias and activation are fused
//! into the forward pass's last write; their gradients are other kernels' (`channel_sum`,
//! `act_backward`).

use std::ops::Range;

use super::activation::{with_act, Act};
use super::dense::{MIN_TASK_MACS, ROW_GRAIN};
use super::packed::MatMut;
use super::split::{PerTask, RowsMut, RowsRef};
use super::{vectorized, Exec};
use crate::float::Float;

/// The shape of a convolution: its input, output channels, kernel, stride, padding
/// (`[top, bottom, left, right]`), dilation and groups, each pair `[rows, columns]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Input channels `C`.
    pub in_channels: usize,
    /// Input rows `H` (1 for a one-dimensional convolution).
    pub height: usize,
    /// Input columns `W`.
    pub width: usize,
    /// Output channels `O`.
    pub out_channels: usize,
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Steps between windows, down and across.
    pub stride: [usize; 2],
    /// Zeros added above, below, left and right of the input.
    pub padding: [usize; 4],
    /// Steps between a kernel's taps, down and across.
    pub dilation: [usize; 2],
    /// Groups of channels convolved separately: `C` and `O` are both multiples of it.
    pub groups: usize,
}

impl Conv2d {
    /// `⌊(H + top + bottom − dilation·(kh − 1) − 1) / stride⌋ + 1`, PyTorch's formula; the
    /// compiler has checked that it is at least 1.
    pub const fn out_height(&self) -> usize {
        out_size(
            self.height,
            self.padding[0] + self.padding[1],
            self.kernel[0],
            self.stride[0],
            self.dilation[0],
        )
    }

    /// The same formula over the columns.
    pub const fn out_width(&self) -> usize {
        out_size(
            self.width,
            self.padding[2] + self.padding[3],
            self.kernel[1],
            self.stride[1],
            self.dilation[1],
        )
    }

    /// Values one output position sees: `C/groups · kh · kw`, a row of a weight.
    pub const fn patch_len(&self) -> usize {
        self.in_channels / self.groups * self.kernel[0] * self.kernel[1]
    }

    /// Output positions per channel, `out_h · out_w`.
    pub const fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Scratch elements one thread needs: one sample's columns for one group, and one
    /// sample's share of a group's weight gradient, each rounded up to a whole number of
    /// 64-byte lines, so that every thread's pieces start on a line and the products see the
    /// same alignment (and give the same bits) on every thread.
    pub const fn scratch_len(&self) -> usize {
        self.cols_len() + (self.out_channels / self.groups * self.patch_len()).div_ceil(16) * 16
    }

    /// One sample's columns for one group, rounded up to 16 elements.
    const fn cols_len(&self) -> usize {
        (self.positions() * self.patch_len()).div_ceil(16) * 16
    }

    /// Elements of one input sample, one output sample and the weight.
    fn lens(&self) -> (usize, usize, usize) {
        (
            self.in_channels * self.height * self.width,
            self.out_channels * self.positions(),
            self.out_channels * self.patch_len(),
        )
    }

    /// Multiply-adds of one sample's product, the measure of work behind the thread split.
    fn macs(&self) -> usize {
        self.out_channels * self.patch_len() * self.positions()
    }

    fn check<T>(&self, what: &str, batch: usize, x: &[T], y: &[T], w: &[T]) {
        let (x_len, y_len, w_len) = self.lens();
        assert!(
            self.groups > 0
                && self.in_channels.is_multiple_of(self.groups)
                && self.out_channels.is_multiple_of(self.groups)
                && self.stride[0] > 0
                && self.stride[1] > 0
                && self.positions() > 0,
            "{what}: impossible geometry {self:?}"
        );
        assert_eq!(
            Some(x.len()),
            batch.checked_mul(x_len),
            "{what}: x is not batch x C x H x W"
        );
        assert_eq!(
            Some(y.len()),
            batch.checked_mul(y_len),
            "{what}: y is not batch x O x out_h x out_w"
        );
        assert_eq!(w.len(), w_len, "{what}: w is not O x C/groups x kh x kw");
    }

    /// The output columns whose tap `kx` reads the input rather than the padding, and the
    /// input column the first of them reads.
    #[inline(always)]
    fn valid_columns(&self, kx: usize) -> (Range<usize>, usize) {
        let (sw, ow) = (self.stride[1], self.out_width());
        let (offset, pad) = (kx * self.dilation[1], self.padding[2]);
        // Output column `ox` reads input column `ox·sw + offset − pad`, which must lie in
        // `0..width`.
        let lo = pad.saturating_sub(offset).div_ceil(sw).min(ow);
        let hi = (pad + self.width)
            .saturating_sub(offset)
            .div_ceil(sw)
            .clamp(lo, ow);
        (lo..hi, (lo * sw + offset).saturating_sub(pad))
    }

    /// Calls `f(row, channel, valid, ix, oy, iy)` for every row of group `g`'s columns and
    /// every output row `oy` whose tap reads input row `iy` (rows that read padding are
    /// skipped); `valid` and `ix` are the tap's [`Conv2d::valid_columns`], found once per row.
    #[inline(always)]
    fn each_tap_row(
        &self,
        g: usize,
        mut f: impl FnMut(usize, usize, &Range<usize>, usize, usize, usize),
    ) {
        let cg = self.in_channels / self.groups;
        let ([kh, kw], [sh, _], [dh, _]) = (self.kernel, self.stride, self.dilation);
        for ci in 0..cg {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = (ci * kh + ky) * kw + kx;
                    let (valid, ix) = self.valid_columns(kx);
                    for oy in 0..self.out_height() {
                        let iy = (oy * sh + ky * dh).wrapping_sub(self.padding[0]);
                        if iy < self.height {
                            f(row, g * cg + ci, &valid, ix, oy, iy);
                        }
                    }
                }
            }
        }
    }

    /// Writes the columns (`[K, P]`) of group `g` of one sample `x` (`[C, H, W]`) into `out`.
    fn cols<T: Float>(&self, x: &[T], g: usize, out: &mut [T]) {
        let (h, w, ow, sw) = (self.height, self.width, self.out_width(), self.stride[1]);
        let p = self.positions();
        // What reads the padding stays zero; everything else is written below, so without
        // padding every element is, and the zeroing would be a second pass for nothing.
        if self.padding != [0; 4] {
            out[..self.patch_len() * p].fill(T::ZERO);
        }
        self.each_tap_row(g, |row, c, valid, ix, oy, iy| {
            let line = &x[(c * h + iy) * w..(c * h + iy + 1) * w];
            let dst = &mut out[row * p + oy * ow..][valid.clone()];
            // Runs are short (8 to 24 values in LeNet): a loop the compiler vectorises costs
            // less than a call to `memmove` each.
            if sw == 1 {
                for (d, &v) in dst.iter_mut().zip(&line[ix..]) {
                    *d = v;
                }
            } else {
                for (d, &v) in dst.iter_mut().zip(line[ix..].iter().step_by(sw)) {
                    *d = v;
                }
            }
        });
    }

    /// Adds the column gradients `d` (`[K, P]`) of group `g` into the image gradient `gx`
    /// (`[C, H, W]`) at the places the columns were read from; padding gets nothing.
    fn uncols<T: Float>(&self, d: &[T], g: usize, gx: &mut [T]) {
        let (h, w, ow, sw) = (self.height, self.width, self.out_width(), self.stride[1]);
        let p = self.positions();
        self.each_tap_row(g, |row, c, valid, ix, oy, iy| {
            let line = &mut gx[(c * h + iy) * w..(c * h + iy + 1) * w];
            let src = &d[row * p + oy * ow..][valid.clone()];
            if sw == 1 {
                for (l, &v) in line[ix..].iter_mut().zip(src) {
                    *l += v;
                }
            } else {
                for (l, &v) in line[ix..].iter_mut().step_by(sw).zip(src) {
                    *l += v;
                }
            }
        });
    }
}

const fn out_size(size: usize, pad: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    let span = dilation * (kernel - 1) + 1;
    if stride == 0 || size + pad < span {
        0
    } else {
        (size + pad - span) / stride + 1
    }
}

/// The fewest output channels a task of the weight gradient is given.
const MIN_TASK_CHANNELS: usize = 32;

/// How many tasks a pass over `units` independent pieces should use: as many as the work
/// (`macs` multiply-adds) is worth, and no more than the scratch serves.
fn tasks(exec: &Exec, units: usize, macs: usize, scratch: &PerTask<'_, impl Sized>) -> usize {
    exec.tasks_for(units, macs, MIN_TASK_MACS)
        .min(scratch.tasks())
}

/// `y = act(conv(x, w) + bias)` for a batch of `batch` samples: `x` `[B, C, H, W]`, `w`
/// `[O, C/groups, kh, kw]`, `bias` `[O]`, `y` `[B, O, out_h, out_w]`. `scratch` holds
/// [`Conv2d::scratch_len`] elements for each thread that may take part (fewer threads are used
/// when it holds less).
#[allow(clippy::too_many_arguments)] // The geometry, the operands and the fused epilogue.
pub fn conv2d<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Conv2d,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    act: Act,
    y: &mut [T],
    scratch: &mut [T],
) {
    geom.check("conv2d", batch, x, y, w);
    if let Some(b) = bias {
        assert_eq!(b.len(), geom.out_channels, "conv2d: bias is not O long");
    }
    let (x_len, y_len, _) = geom.lens();
    let (k, p) = (geom.patch_len(), geom.positions());
    let og = geom.out_channels / geom.groups;
    let scratch = PerTask::new(scratch, geom.scratch_len());
    let tasks = tasks(exec, batch, batch * geom.macs(), &scratch);
    let operands = (RowsRef(x, x_len), RowsMut::new(y, y_len), scratch);
    exec.split_rows(batch, 1, tasks, operands, |_, (x, y, cols)| {
        for (x, y) in x.chunks_exact(x_len).zip(y.chunks_exact_mut(y_len)) {
            for g in 0..geom.groups {
                geom.cols(x, g, cols);
                let y = &mut y[g * og * p..(g + 1) * og * p];
                let w = &w[g * og * k..(g + 1) * og * k];
                T::gemm_nn(og, p, k, w, k, 1, &cols[..k * p], y, false);
            }
            channel_epilogue(p, bias, act, y);
        }
    });
}

/// `y[o, :] = act(y[o, :] + bias[o])` over the channels of one sample.
fn channel_epilogue<T: Float>(positions: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    if bias.is_none() && act == Act::Identity {
        return;
    }
    vectorized!(channel_epilogue_body(positions: usize, bias: Option<&[T]>, act: Act, y: &mut [T]));
}

#[inline(always)]
fn channel_epilogue_body<T: Float>(positions: usize, bias: Option<&[T]>, act: Act, y: &mut [T]) {
    with_act!(act, T, |f| {
        for (o, row) in y.chunks_exact_mut(positions).enumerate() {
            let b = bias.map_or(T::ZERO, |b| b[o]);
            for v in row.iter_mut() {
                *v = f(*v + b);
            }
        }
    })
}

/// The input gradient: `gx = convᵀ(gy, w)`, overwriting `gx` (`[B, C, H, W]`) from `gy`
/// (`[B, O, out_h, out_w]`).
#[allow(clippy::too_many_arguments)] // The geometry and the operands.
pub fn conv2d_backward_input<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Conv2d,
    gy: &[T],
    w: &[T],
    gx: &mut [T],
    scratch: &mut [T],
) {
    geom.check("conv2d_backward_input", batch, gx, gy, w);
    let (x_len, y_len, _) = geom.lens();
    let (k, p) = (geom.patch_len(), geom.positions());
    let og = geom.out_channels / geom.groups;
    let scratch = PerTask::new(scratch, geom.scratch_len());
    let tasks = tasks(exec, batch, batch * geom.macs(), &scratch);
    let operands = (RowsRef(gy, y_len), RowsMut::new(gx, x_len), scratch);
    exec.split_rows(batch, 1, tasks, operands, |_, (gy, gx, d)| {
        for (gy, gx) in gy.chunks_exact(y_len).zip(gx.chunks_exact_mut(x_len)) {
            gx.fill(T::ZERO);
            for g in 0..geom.groups {
                // d[r, p] = Σ_o w[o, r] · gy[o, p], `w` read transposed.
                let gy = &gy[g * og * p..(g + 1) * og * p];
                let w = &w[g * og * k..(g + 1) * og * k];
                T::gemm_nn(k, p, og, w, 1, k, gy, &mut d[..k * p], false);
                geom.uncols(d, g, gx);
            }
        }
    });
}

/// The weight gradient: `gw[o, r] = Σ_b Σ_p gy[b, o, p] · patches_b[p, r]`, overwriting `gw`
/// (`[O, C/groups, kh, kw]`). Output channels are split over threads, and every task sums the
/// samples in order.
#[allow(clippy::too_many_arguments)] // The geometry and the operands.
pub fn conv2d_backward_weight<T: Float>(
    exec: &Exec,
    batch: usize,
    geom: &Conv2d,
    gy: &[T],
    x: &[T],
    gw: &mut [T],
    scratch: &mut [T],
) {
    geom.check("conv2d_backward_weight", batch, x, gy, gw);
    let (x_len, y_len, _) = geom.lens();
    let (k, p) = (geom.patch_len(), geom.positions());
    let og = geom.out_channels / geom.groups;
    if batch == 0 {
        gw.fill(T::ZERO);
        return;
    }
    let scratch = PerTask::new(scratch, geom.scratch_len());
    // Every task builds the columns of every sample again, so a task is only worth its copies
    // when it has many output channels to multiply them by: LeNet's 6 → 16 layer (batch 64,
    // 12x12 input) took 1.4-1.6 ms on one thread and 1.6-3.2 ms split 8 + 8 on two.
    let tasks = tasks(exec, geom.out_channels, batch * geom.macs(), &scratch)
        .min(geom.out_channels.div_ceil(MIN_TASK_CHANNELS));
    let operands = (RowsMut::new(gw, k), scratch);
    let cols_len = geom.cols_len();
    // Tasks start where the one-thread product starts a register block (every `ROW_GRAIN`
    // rows of a group, or whole groups where a group is not a multiple of it), so each row of
    // `gw` meets the same blocks, and the same bits, on any number of threads.
    let grain = if geom.groups == 1 || og.is_multiple_of(ROW_GRAIN) {
        ROW_GRAIN
    } else {
        og
    };
    exec.split_rows(
        geom.out_channels,
        grain,
        tasks,
        operands,
        |rows, (gw, scratch)| {
            let (cols, share) = scratch.split_at_mut(cols_len);
            let samples = x.chunks_exact(x_len).zip(gy.chunks_exact(y_len));
            for (b, (x, gy)) in samples.enumerate() {
                for g in rows.start / og..rows.end.div_ceil(og) {
                    let (lo, hi) = (rows.start.max(g * og), rows.end.min((g + 1) * og));
                    geom.cols(x, g, cols);
                    // This sample's share, gw[o, r] = Σ_p gy[o, p] · cols[r, p], added to the
                    // samples' before it in order.
                    let gw = &mut gw[(lo - rows.start) * k..(hi - rows.start) * k];
                    let (gy, cols) = (&gy[lo * p..hi * p], &cols[..k * p]);
                    if b == 0 {
                        T::gemm_nt(p, gy, cols, MatMut::new(gw, hi - lo, k, k));
                    } else {
                        let share = &mut share[..(hi - lo) * k];
                        T::gemm_nt(p, gy, cols, MatMut::new(share, hi - lo, k, k));
                        for (w, &s) in gw.iter_mut().zip(share.iter()) {
                            *w += s;
                        }
                    }
                }
            }
        },
    );
}
