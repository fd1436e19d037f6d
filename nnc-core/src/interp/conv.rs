//! Convolution and pooling, written from PyTorch's definitions (`Conv1d`/`Conv2d`,
//! `MaxPool2d`, `AvgPool2d`) as loops over every tap of every window. The gradients are the
//! same loops with each multiply-add sent the other way, independent of the runtime's patch
//! matrices and products. A one-dimensional convolution is the two-dimensional one with one
//! row.

use super::Tensor;
use crate::ir::{ConvGeom, PoolGeom};

/// Calls `f(x index, w index, y index)` for every tap of a convolution over `batch` samples
/// that reads the input rather than padding.
fn taps(g: &ConvGeom, batch: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (g.out_height(), g.out_width());
    let (cg, og) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let [kh, kw] = g.kernel;
    for b in 0..batch {
        for o in 0..g.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((b * g.out_channels + o) * oh + oy) * ow + ox;
                    for ci in 0..cg {
                        let c = o / og * cg + ci;
                        for ky in 0..kh {
                            let iy =
                                (oy * g.stride[0] + ky * g.dilation[0]).checked_sub(g.padding[0]);
                            let Some(iy) = iy.filter(|&iy| iy < g.height) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let ix = (ox * g.stride[1] + kx * g.dilation[1])
                                    .checked_sub(g.padding[2]);
                                let Some(ix) = ix.filter(|&ix| ix < g.width) else {
                                    continue;
                                };
                                let xi = ((b * g.in_channels + c) * g.height + iy) * g.width + ix;
                                let wi = ((o * cg + ci) * kh + ky) * kw + kx;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn batch_of(t: &Tensor) -> usize {
    t.shape.first().copied().unwrap_or(0)
}

fn zeros(shape: Vec<usize>) -> Tensor {
    let len = shape.iter().product();
    Tensor {
        shape,
        data: vec![0.0; len],
    }
}

/// `conv(x, w) + b`, `out` being the result's shape.
pub fn conv(g: &ConvGeom, x: &Tensor, w: &Tensor, b: Option<&Tensor>, out: &[usize]) -> Tensor {
    let mut y = zeros(out.to_vec());
    taps(g, batch_of(x), |xi, wi, yi| {
        y.data[yi] += x.data[xi] * w.data[wi]
    });
    if let Some(b) = b {
        let per_channel = g.out_height() * g.out_width();
        for (i, v) in y.data.iter_mut().enumerate() {
            *v += b.data[i / per_channel % g.out_channels];
        }
    }
    y
}

/// d loss / d x from the result's gradient `gy`; `out` is x's shape.
pub fn input_grad(g: &ConvGeom, gy: &Tensor, w: &Tensor, out: &[usize]) -> Tensor {
    let mut gx = zeros(out.to_vec());
    taps(g, batch_of(gy), |xi, wi, yi| {
        gx.data[xi] += gy.data[yi] * w.data[wi]
    });
    gx
}

/// d loss / d w from the result's gradient `gy`; `out` is w's shape.
pub fn weight_grad(g: &ConvGeom, gy: &Tensor, x: &Tensor, out: &[usize]) -> Tensor {
    let mut gw = zeros(out.to_vec());
    taps(g, batch_of(gy), |xi, wi, yi| {
        gw.data[wi] += gy.data[yi] * x.data[xi]
    });
    gw
}

/// The input indices of each window of a pooling over `batch` samples, window by window in the
/// output's order, padding left out.
fn windows(p: &PoolGeom, batch: usize) -> Vec<Vec<usize>> {
    let (oh, ow) = (p.out_height(), p.out_width());
    let mut all = Vec::with_capacity(batch * p.channels * oh * ow);
    for plane in 0..batch * p.channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut w = Vec::new();
                for ky in 0..p.kernel[0] {
                    let Some(iy) = (oy * p.stride[0] + ky).checked_sub(p.padding[0]) else {
                        continue;
                    };
                    for kx in 0..p.kernel[1] {
                        let Some(ix) = (ox * p.stride[1] + kx).checked_sub(p.padding[1]) else {
                            continue;
                        };
                        if iy < p.height && ix < p.width {
                            w.push((plane * p.height + iy) * p.width + ix);
                        }
                    }
                }
                all.push(w);
            }
        }
    }
    all
}

/// PyTorch's choice of maximum: the first largest value, unless a NaN comes later.
fn argmax(x: &Tensor, window: &[usize]) -> usize {
    let mut best = window[0];
    for &i in window {
        if x.data[i] > x.data[best] || x.data[i].is_nan() {
            best = i;
        }
    }
    best
}

/// The maximum, or the mean with the window's full size as divisor, of each window.
pub fn pool(p: &PoolGeom, x: &Tensor, max: bool, out: &[usize]) -> Tensor {
    let area = (p.kernel[0] * p.kernel[1]) as f64;
    let data = windows(p, batch_of(x))
        .iter()
        .map(|w| {
            if max {
                x.data[argmax(x, w)]
            } else {
                w.iter().map(|&i| x.data[i]).sum::<f64>() / area
            }
        })
        .collect();
    Tensor {
        shape: out.to_vec(),
        data,
    }
}

/// d loss / d x of a pooling; `x` is only read for max pooling, whose maxima are found again
/// in it (the forward pass's output, which the kernel also reads, is not needed here).
pub fn pool_grad(p: &PoolGeom, x: Option<&Tensor>, gy: &Tensor, out: &[usize]) -> Tensor {
    let mut gx = zeros(out.to_vec());
    let area = (p.kernel[0] * p.kernel[1]) as f64;
    for (w, &g) in windows(p, batch_of(gy)).iter().zip(&gy.data) {
        match x {
            Some(x) => gx.data[argmax(x, w)] += g,
            None => w.iter().for_each(|&i| gx.data[i] += g / area),
        }
    }
    gx
}
