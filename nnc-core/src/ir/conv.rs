//! The geometry of convolutions and poolings: every size fixed at compile time, the shapes of
//! their operands derived from it, and PyTorch's output-size formula. Lowering builds these from
//! a layer's options after checking them (with diagnostics); the type rules and the kernels
//! only read them.

use super::{Dim, Shape};
use std::fmt;

/// A convolution over channels-first values: `[B, C, H, W]` into `[B, O, out_h, out_w]` with
/// weights `[O, C/groups, kh, kw]`, or, for a one-dimensional convolution, the same without the
/// height axis (`[B, C, L]`, weights `[O, C/groups, k]`, `height` and the row sizes 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    /// `[rows, columns]`, as are `stride` and `dilation`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    pub dilation: [usize; 2],
    pub groups: usize,
    /// Values are `[B, C, L]` rather than `[B, C, H, W]`.
    pub one_d: bool,
}

/// PyTorch's output size, `⌊(size + pad − dilation·(kernel − 1) − 1) / stride⌋ + 1`, or 0 where
/// the window does not fit or the stride is 0.
pub fn out_size(size: usize, pad: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    let span = dilation * kernel.saturating_sub(1) + 1;
    if stride == 0 || size + pad < span {
        0
    } else {
        (size + pad - span) / stride + 1
    }
}

impl ConvGeom {
    pub fn out_height(&self) -> usize {
        let pad = self.padding[0] + self.padding[1];
        out_size(
            self.height,
            pad,
            self.kernel[0],
            self.stride[0],
            self.dilation[0],
        )
    }

    pub fn out_width(&self) -> usize {
        let pad = self.padding[2] + self.padding[3];
        out_size(
            self.width,
            pad,
            self.kernel[1],
            self.stride[1],
            self.dilation[1],
        )
    }

    /// The spatial axes of a value: `[h, w]`, or `[w]` for a one-dimensional convolution.
    fn spatial(&self, h: usize, w: usize) -> Vec<Dim> {
        if self.one_d {
            vec![Dim::Fixed(w)]
        } else {
            vec![Dim::Fixed(h), Dim::Fixed(w)]
        }
    }

    fn batched(&self, channels: usize, h: usize, w: usize) -> Shape {
        let mut dims = vec![Dim::Batch, Dim::Fixed(channels)];
        dims.extend(self.spatial(h, w));
        Shape(dims)
    }

    pub fn input(&self) -> Shape {
        self.batched(self.in_channels, self.height, self.width)
    }

    pub fn output(&self) -> Shape {
        self.batched(self.out_channels, self.out_height(), self.out_width())
    }

    pub fn weight(&self) -> Shape {
        Shape::fixed(&self.weight_dims())
    }

    /// The weight's dimensions, `[O, C/groups, kh, kw]` (`[O, C/groups, k]` in 1-D).
    pub fn weight_dims(&self) -> Vec<usize> {
        let mut dims = vec![self.out_channels, self.in_channels / self.groups.max(1)];
        if !self.one_d {
            dims.push(self.kernel[0]);
        }
        dims.push(self.kernel[1]);
        dims
    }
}

impl fmt::Display for ConvGeom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pair = |p: [usize; 2]| {
            if self.one_d {
                format!("{}", p[1])
            } else {
                format!("{}x{}", p[0], p[1])
            }
        };
        write!(
            f,
            "kernel {}, stride {}, padding {}",
            pair(self.kernel),
            pair(self.stride),
            if self.one_d {
                format!("{},{}", self.padding[2], self.padding[3])
            } else {
                let p = self.padding;
                format!("{},{},{},{}", p[0], p[1], p[2], p[3])
            }
        )?;
        if self.dilation != [1, 1] {
            write!(f, ", dilation {}", pair(self.dilation))?;
        }
        if self.groups != 1 {
            write!(f, ", groups {}", self.groups)?;
        }
        Ok(())
    }
}

/// A max or average pooling over `[B, C, H, W]`, PyTorch's floor mode, symmetric padding of at
/// most half the window, and padding counted in an average's divisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolGeom {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `[rows, columns]`, as are `stride` and `padding` (on both sides).
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolGeom {
    pub fn out_height(&self) -> usize {
        out_size(
            self.height,
            2 * self.padding[0],
            self.kernel[0],
            self.stride[0],
            1,
        )
    }

    pub fn out_width(&self) -> usize {
        out_size(
            self.width,
            2 * self.padding[1],
            self.kernel[1],
            self.stride[1],
            1,
        )
    }

    pub fn input(&self) -> Shape {
        Shape::batched(&[self.channels, self.height, self.width])
    }

    pub fn output(&self) -> Shape {
        Shape::batched(&[self.channels, self.out_height(), self.out_width()])
    }
}

impl fmt::Display for PoolGeom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ([kh, kw], [sh, sw], [ph, pw]) = (self.kernel, self.stride, self.padding);
        write!(f, "kernel {kh}x{kw}, stride {sh}x{sw}")?;
        if self.padding != [0, 0] {
            write!(f, ", padding {ph}x{pw}")?;
        }
        Ok(())
    }
}
