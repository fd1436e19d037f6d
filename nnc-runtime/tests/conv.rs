//! Convolution and pooling kernels against naive loops written from PyTorch's definitions
//! (`Conv2d`, `MaxPool2d`, `AvgPool2d`), over strides, paddings, dilations and groups; their
//! gradients against finite differences of those loops in f64; and the same bits on 2, 3 and 7
//! threads as on one.
//!
//! Tolerances: the f64 kernels sum the same terms as the naive loops in another order, so they
//! agree to a few ulps of the largest partial sum (1e-12 relative is far above that and far
//! below any wrong term); the f32 kernels are held to 1e-5 of the sum of absolute terms, a few
//! f32 ulps per term for the at most 150-term sums used here. Finite differences: see
//! `numeric`; gradients must match them to `common::TOL`.

mod common;

use nnc_runtime::kernels::{
    avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward_input, conv2d_backward_weight,
    max_pool2d, max_pool2d_backward, Conv2d, Pool2d,
};
use nnc_runtime::{Act, Aligned, Exec, Float, Rng};

fn random<T: Float>(len: usize, seed: u64) -> Vec<T> {
    let mut v = vec![T::ZERO; len];
    Rng::new(seed).fill_uniform(-T::ONE, T::ONE, &mut v);
    v
}

/// The geometries under test: square and not, strides, asymmetric padding, dilation, groups
/// (depthwise included), a one-dimensional convolution, and LeNet's first layer.
fn geometries() -> Vec<Conv2d> {
    let g =
        |c, h, w, o, k: [usize; 2], s: [usize; 2], p: [usize; 4], d: [usize; 2], groups| Conv2d {
            in_channels: c,
            height: h,
            width: w,
            out_channels: o,
            kernel: k,
            stride: s,
            padding: p,
            dilation: d,
            groups,
        };
    vec![
        g(1, 28, 28, 6, [5, 5], [1, 1], [0; 4], [1, 1], 1),
        g(3, 7, 9, 4, [3, 3], [1, 1], [1; 4], [1, 1], 1),
        g(2, 9, 8, 3, [3, 2], [2, 3], [0, 1, 2, 0], [1, 1], 1),
        g(4, 8, 8, 6, [3, 3], [1, 2], [2, 2, 2, 2], [2, 1], 2),
        g(4, 6, 5, 4, [3, 3], [1, 1], [1; 4], [1, 1], 4),
        g(3, 1, 17, 5, [1, 4], [1, 2], [0, 0, 1, 2], [1, 2], 1),
        g(5, 4, 4, 7, [1, 1], [1, 1], [0; 4], [1, 1], 1),
    ]
}

fn lens(c: &Conv2d) -> (usize, usize, usize) {
    (
        c.in_channels * c.height * c.width,
        c.out_channels * c.out_height() * c.out_width(),
        c.out_channels * c.patch_len(),
    )
}

/// PyTorch's definition, one output at a time.
fn naive_conv(c: &Conv2d, batch: usize, x: &[f64], w: &[f64], bias: &[f64]) -> Vec<f64> {
    let (oh, ow) = (c.out_height(), c.out_width());
    let (cg, og) = (c.in_channels / c.groups, c.out_channels / c.groups);
    let mut y = Vec::new();
    for b in 0..batch {
        for (o, &b0) in bias.iter().enumerate() {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = b0;
                    for ci in 0..cg {
                        let ch = o / og * cg + ci;
                        for ky in 0..c.kernel[0] {
                            for kx in 0..c.kernel[1] {
                                let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                    - c.padding[2] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= c.height as isize
                                    || ix >= c.width as isize
                                {
                                    continue;
                                }
                                let xi = ((b * c.in_channels + ch) * c.height + iy as usize)
                                    * c.width
                                    + ix as usize;
                                let wi = ((o * cg + ci) * c.kernel[0] + ky) * c.kernel[1] + kx;
                                s += x[xi] * w[wi];
                            }
                        }
                    }
                    y.push(s);
                }
            }
        }
    }
    y
}

/// Central differences with step `h`. The functions checked here are linear in each argument
/// (or piecewise linear, away from the kinks), so a large step has no truncation error and
/// keeps the rounding error, about `ε·Σ|terms| / h`, near 1e-9 for sums of a few thousand terms.
fn numeric(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let up = f(&probe);
            probe[i] = x[i] - h;
            let down = f(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Values `0, 1/n, …` in a scrambled order: distinct and at least `1/n` apart, so that a step
/// below `1/(2n)` never changes which element of a pooling window is largest.
fn spaced(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}: element {i} is {g}, expected {w}"
        );
    }
}

#[test]
fn conv_forward_matches_the_definition() {
    for (n, c) in geometries().iter().enumerate() {
        let batch = 3;
        let (xl, yl, wl) = lens(c);
        let (x, w, bias) = (
            random::<f64>(batch * xl, 1 + n as u64),
            random::<f64>(wl, 2),
            random::<f64>(c.out_channels, 3),
        );
        let want = naive_conv(c, batch, &x, &w, &bias);
        let mut y = vec![f64::NAN; batch * yl];
        let mut scratch = vec![0.0; c.scratch_len()];
        let exec = Exec::serial();
        conv2d(
            exec,
            batch,
            c,
            &x,
            &w,
            Some(&bias),
            Act::Identity,
            &mut y,
            &mut scratch,
        );
        assert_close(&format!("conv2d {c:?}"), &y, &want, 1e-12);
        // The fused activation is applied after the bias.
        conv2d(
            exec,
            batch,
            c,
            &x,
            &w,
            Some(&bias),
            Act::Relu,
            &mut y,
            &mut scratch,
        );
        let relu: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
        assert_close(&format!("conv2d+relu {c:?}"), &y, &relu, 1e-12);
        // f32 against the f64 definition.
        let (x32, w32, b32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            w.iter().map(|&v| v as f32).collect(),
            bias.iter().map(|&v| v as f32).collect(),
        );
        let mut y32 = vec![f32::NAN; batch * yl];
        let mut s32 = vec![0.0f32; c.scratch_len()];
        conv2d(
            exec,
            batch,
            c,
            &x32,
            &w32,
            Some(&b32),
            Act::Identity,
            &mut y32,
            &mut s32,
        );
        let y32: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
        assert_close(&format!("conv2d f32 {c:?}"), &y32, &want, 1e-5);
    }
}

/// `Σ y ⊙ r` for a fixed random `r`, whose gradient with respect to `y` is `r`.
fn probe_loss(c: &Conv2d, batch: usize, x: &[f64], w: &[f64], r: &[f64]) -> f64 {
    let zero = vec![0.0; c.out_channels];
    naive_conv(c, batch, x, w, &zero)
        .iter()
        .zip(r)
        .map(|(y, r)| y * r)
        .sum()
}

#[test]
fn conv_gradients_match_finite_differences() {
    for (n, c) in geometries().iter().enumerate().skip(1) {
        let batch = 2;
        let (xl, yl, wl) = lens(c);
        let x = random::<f64>(batch * xl, 10 + n as u64);
        let w = random::<f64>(wl, 20 + n as u64);
        let r = random::<f64>(batch * yl, 30 + n as u64);
        let mut scratch = vec![0.0; 3 * c.scratch_len()];
        let exec = Exec::new(3);
        let mut gx = vec![f64::NAN; batch * xl];
        conv2d_backward_input(&exec, batch, c, &r, &w, &mut gx, &mut scratch);
        let mut gw = vec![f64::NAN; wl];
        conv2d_backward_weight(&exec, batch, c, &r, &x, &mut gw, &mut scratch);
        let num_x = numeric(&x, 1e-3, |x| probe_loss(c, batch, x, &w, &r));
        let num_w = numeric(&w, 1e-3, |w| probe_loss(c, batch, &x, w, &r));
        let ex = common::max_relative_error(&gx, &num_x);
        let ew = common::max_relative_error(&gw, &num_w);
        assert!(ex < common::TOL, "conv2d input gradient {c:?}: error {ex}");
        assert!(ew < common::TOL, "conv2d weight gradient {c:?}: error {ew}");
    }
}

/// Runs `kernel` into a NaN-filled output on one thread and on 2, 3 and 7, each with scratch
/// for every thread, and asserts the same bits.
fn same_bits(
    what: &str,
    len: usize,
    scratch: usize,
    kernel: impl Fn(&Exec, &mut [f32], &mut [f32]),
) {
    let run = |exec: &Exec| {
        let mut out = vec![f32::NAN; len];
        // Aligned like a workspace's scratch, on which the products' lane grouping depends.
        let mut s = Aligned::<f32>::zeros(scratch * exec.threads());
        kernel(exec, &mut out, &mut s);
        out
    };
    let one = run(Exec::serial());
    assert!(
        one.iter().all(|v| !v.is_nan()),
        "{what}: output left unwritten"
    );
    for threads in [2, 3, 7] {
        let many = run(&Exec::new(threads));
        let same = one
            .iter()
            .zip(&many)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: {threads} threads differ from one");
    }
}

#[test]
fn conv_kernels_give_the_same_bits_on_any_thread_count() {
    for c in geometries() {
        // Enough samples for every kernel to pass its threshold and split unevenly.
        let batch = 2 + (1 << 17) / (c.out_channels * c.patch_len() * c.positions()).max(1);
        let batch = batch.min(61);
        let (xl, yl, wl) = lens(&c);
        let (x, w, b, gy) = (
            random::<f32>(batch * xl, 5),
            random::<f32>(wl, 6),
            random::<f32>(c.out_channels, 7),
            random::<f32>(batch * yl, 8),
        );
        let s = c.scratch_len();
        same_bits("conv2d", batch * yl, s, |e, y, s| {
            conv2d(e, batch, &c, &x, &w, Some(&b), Act::Tanh, y, s)
        });
        same_bits("conv2d_backward_input", batch * xl, s, |e, gx, s| {
            conv2d_backward_input(e, batch, &c, &gy, &w, gx, s)
        });
        same_bits("conv2d_backward_weight", wl, s, |e, gw, s| {
            conv2d_backward_weight(e, batch, &c, &gy, &x, gw, s)
        });
    }
}

fn pools() -> Vec<Pool2d> {
    let p = |c, h, w, k: [usize; 2], s: [usize; 2], pad: [usize; 2]| Pool2d {
        channels: c,
        height: h,
        width: w,
        kernel: k,
        stride: s,
        padding: pad,
    };
    vec![
        p(6, 24, 24, [2, 2], [2, 2], [0, 0]),
        p(3, 7, 9, [3, 3], [2, 2], [1, 1]),
        p(2, 5, 8, [2, 3], [1, 2], [1, 0]),
        p(4, 1, 12, [1, 3], [1, 3], [0, 1]),
    ]
}

/// PyTorch's definitions: the maximum (or the mean with padding counted) of each window.
fn naive_pool(p: &Pool2d, batch: usize, x: &[f64], max: bool) -> Vec<f64> {
    let (oh, ow) = (p.out_height(), p.out_width());
    let mut y = Vec::new();
    for plane in 0..batch * p.channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let iy = (oy * p.stride[0] + ky) as isize - p.padding[0] as isize;
                        let ix = (ox * p.stride[1] + kx) as isize - p.padding[1] as isize;
                        if iy < 0 || ix < 0 || iy >= p.height as isize || ix >= p.width as isize {
                            continue;
                        }
                        let v = x[(plane * p.height + iy as usize) * p.width + ix as usize];
                        acc = if max { acc.max(v) } else { acc + v };
                    }
                }
                y.push(if max {
                    acc
                } else {
                    acc / (p.kernel[0] * p.kernel[1]) as f64
                });
            }
        }
    }
    y
}

#[test]
fn pools_match_the_definition_and_finite_differences() {
    for (n, p) in pools().iter().enumerate() {
        let batch = 2;
        let xl = batch * p.channels * p.height * p.width;
        let yl = batch * p.channels * p.out_height() * p.out_width();
        let x = spaced(xl);
        let r = random::<f64>(yl, 50 + n as u64);
        let exec = Exec::new(2);
        for max in [true, false] {
            let what = format!("{} {p:?}", if max { "max_pool2d" } else { "avg_pool2d" });
            let mut y = vec![f64::NAN; yl];
            let mut gx = vec![f64::NAN; xl];
            if max {
                max_pool2d(&exec, batch, p, &x, &mut y);
                max_pool2d_backward(&exec, batch, p, &x, &y, &r, &mut gx);
            } else {
                avg_pool2d(&exec, batch, p, &x, &mut y);
                avg_pool2d_backward(&exec, batch, p, &r, &mut gx);
            }
            assert_close(&what, &y, &naive_pool(p, batch, &x, max), 1e-12);
            // The inputs are spaced further apart than twice the step, so every window's
            // maximum stays where it is.
            let h = 0.25 / xl as f64;
            let num = numeric(&x, h, |x| {
                naive_pool(p, batch, x, max)
                    .iter()
                    .zip(&r)
                    .map(|(y, r)| y * r)
                    .sum()
            });
            let e = common::max_relative_error(&gx, &num);
            assert!(e < common::TOL, "{what} gradient: error {e}");
        }
    }
}

#[test]
fn max_pool_follows_pytorch_on_ties_and_nan() {
    let p = Pool2d {
        channels: 1,
        height: 2,
        width: 2,
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
    };
    let exec = Exec::serial();
    // A tie: the gradient goes to the first maximum in row-major order.
    let x = [1.0f32, 3.0, 3.0, 2.0];
    let (mut y, mut gx) = ([0.0f32], [f32::NAN; 4]);
    max_pool2d(exec, 1, &p, &x, &mut y);
    max_pool2d_backward(exec, 1, &p, &x, &y, &[1.0], &mut gx);
    assert_eq!(gx, [0.0, 1.0, 0.0, 0.0]);
    // A NaN is the maximum, and propagates; of two NaNs the last one gets the gradient.
    let x = [1.0f32, f32::NAN, f32::NAN, 2.0];
    max_pool2d(exec, 1, &p, &x, &mut y);
    assert!(y[0].is_nan());
    max_pool2d_backward(exec, 1, &p, &x, &y, &[1.0], &mut gx);
    assert_eq!(gx, [0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn pool_kernels_give_the_same_bits_on_any_thread_count() {
    for p in pools() {
        let batch = 1 + (1 << 16) / (p.channels * p.out_height() * p.out_width());
        let batch = batch.min(97);
        let xl = batch * p.channels * p.height * p.width;
        let yl = batch * p.channels * p.out_height() * p.out_width();
        let (x, gy) = (random::<f32>(xl, 9), random::<f32>(yl, 10));
        same_bits("max_pool2d", yl, 0, |e, y, _| {
            max_pool2d(e, batch, &p, &x, y)
        });
        let mut y = vec![0.0f32; yl];
        max_pool2d(Exec::serial(), batch, &p, &x, &mut y);
        same_bits("max_pool2d_backward", xl, 0, |e, gx, _| {
            max_pool2d_backward(e, batch, &p, &x, &y, &gy, gx)
        });
        same_bits("avg_pool2d", yl, 0, |e, y, _| {
            avg_pool2d(e, batch, &p, &x, y)
        });
        same_bits("avg_pool2d_backward", xl, 0, |e, gx, _| {
            avg_pool2d_backward(e, batch, &p, &gy, gx)
        });
    }
}
