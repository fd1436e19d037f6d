//! The pooling stages over `[C, H, W]` per sample: `max_pool2d` and `avg_pool2d` (PyTorch's
//! `MaxPool2d` and `AvgPool2d`: the stride defaults to the kernel, floor mode, padding at most
//! half the kernel and counted in the average), and `global_avg_pool`, the mean of each channel
//! (`[C, H, W]` → `[C]`, PyTorch's `AdaptiveAvgPool2d(1)` then `flatten`). None has parameters.

use super::args::{self, Param};
use super::conv::{size_option, Axis};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Const, Dim, Op, Phase, PoolGeom, Shape, Type, ValueId};
use crate::syntax::ast;

static POOL_SIG: [Param; 3] = [
    size_option(
        "kernel",
        1,
        &[2],
        &[],
        "a positive size or a pair of them",
        false,
        "give the window size, as in `max_pool2d(2)` or `max_pool2d(kernel = (2, 3))`",
    ),
    size_option(
        "stride",
        1,
        &[2],
        &[],
        "a positive size or a pair of them",
        true,
        "the stride is at least 1 and defaults to the kernel size, as in PyTorch",
    ),
    size_option(
        "padding",
        0,
        &[2],
        &[],
        "a size or a pair (rows, columns)",
        true,
        "padding is added on both sides, at most half the kernel, as in PyTorch",
    ),
];

impl Lowerer<'_> {
    /// `-> max_pool2d(kernel, stride = kernel, padding = 0)`, or `avg_pool2d`.
    pub(super) fn pool(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        self.unnamed(stage)?;
        let kind = stage.kind.name.as_str();
        let max = kind == "max_pool2d";
        let what = format!("`{kind}`");
        let errors = self.diags.len();
        let b = args::bind(
            &what,
            stage.span,
            stage.args.as_ref(),
            &POOL_SIG,
            self.diags,
        );
        if self.diags.len() > errors {
            return None;
        }
        let [c, h, w] = self.image(x, producer, stage.span, &what)?;
        let pair = |s: Option<&[usize]>| match s? {
            [n] => Some([*n, *n]),
            [a, b] => Some([*a, *b]),
            _ => None,
        };
        let kernel = pair(b.sizes(0))?;
        let stride = pair(b.sizes(1)).unwrap_or(kernel);
        let padding = pair(b.sizes(2)).unwrap_or([0, 0]);
        let geom = PoolGeom {
            channels: c,
            height: h,
            width: w,
            kernel,
            stride,
            padding,
        };
        if 2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1] {
            let at = b.span(2).unwrap_or(stage.span);
            self.error(
                Diagnostic::error("E0212", at, format!("padding {}x{} of {what} is more than half its {}x{} window", padding[0], padding[1], kernel[0], kernel[1]))
                    .with_span_label("too much padding")
                    .with_help("PyTorch allows padding of at most half the kernel, so that every window holds part of the input"),
            );
            return None;
        }
        let help = "use a smaller window, or pool earlier, where the input is larger";
        let axes = [
            ("rows", "H", ("top", "bottom"), h),
            ("columns", "W", ("left", "right"), w),
        ];
        for (axis, (name, size_name, sides, size)) in axes.into_iter().enumerate() {
            let a = Axis {
                name,
                size_name,
                sides,
                size,
                padding: (padding[axis], padding[axis]),
                kernel: kernel[axis],
                stride: stride[axis],
                dilation: 1,
            };
            if !self.check_out_size(&what, stage.span, a, help) {
                return None;
            }
        }
        let ty = Type::float(geom.output());
        let name = let_name.map_or_else(
            || format!("{}.{kind}", self.graph.node(x).name),
            str::to_string,
        );
        let v = self.push(
            Op::Pool { geom, max },
            vec![x],
            ty,
            name,
            Phase::Forward,
            stage.span,
        );
        let out = format!(
            "{what} ({}x{}x{} output)",
            c,
            geom.out_height(),
            geom.out_width()
        );
        Some((v, out))
    }

    /// `-> global_avg_pool`: the mean over the spatial axes of every channel, `[C, …]` → `[C]`.
    pub(super) fn global_avg_pool(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        self.unnamed(stage)?;
        let what = "`global_avg_pool`";
        args::bind(what, stage.span, stage.args.as_ref(), &[], self.diags);
        let shape = self.graph.ty(x).shape.clone();
        let (c, spread) = match shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(c), rest @ ..] if !rest.is_empty() => {
                (*c, crate::ir::fixed_size(rest))
            }
            _ => {
                self.error(
                    Diagnostic::error("E0205", stage.span, format!("{what} averages each channel over the axes after it, but {producer} has shape {shape}"))
                        .with_span_label("expects [B, C, …]")
                        .with_help("apply it to convolution outputs, `[channels, height, width]` per sample"),
                );
                return None;
            }
        };
        let base = self.graph.node(x).name.clone();
        let flat = self.push(
            Op::Reshape,
            vec![x],
            Type::float(Shape::batched(&[c, spread])),
            format!("{base}.planes"),
            Phase::Forward,
            stage.span,
        );
        let name = let_name.map_or_else(|| format!("{base}.mean"), str::to_string);
        let op = Op::SumAxis {
            axis: 2,
            scale: Const::new(1.0 / spread as f64),
        };
        let ty = Type::float(Shape::batched(&[c]));
        let v = self.push(op, vec![flat], ty, name, Phase::Forward, stage.span);
        Some((v, format!("{what} ({c} channels)")))
    }

    /// The `[C, H, W]` of an image value, or an error saying that `what` needs one.
    fn image(&mut self, x: ValueId, producer: &str, span: Span, what: &str) -> Option<[usize; 3]> {
        let shape = self.graph.ty(x).shape.clone();
        match shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] => Some([*c, *h, *w]),
            _ => {
                self.error(
                    Diagnostic::error("E0205", span, format!("{what} pools [channels, height, width] per sample but {producer} has shape {shape}"))
                        .with_span_label("expects [B, C, H, W]")
                        .with_help("apply it to the output of a `conv2d`, or to an input declared as `[1, 28, 28]`"),
                );
                None
            }
        }
    }
}
