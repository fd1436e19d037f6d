//! The `conv2d` and `conv1d` layers: PyTorch's `Conv2d` over `[C, H, W]` and `Conv1d` over
//! `[C, L]` per sample (channels first), with parameters `name.weight` `[O, C/groups, kh, kw]`
//! (or `[O, C/groups, k]`) and `name.bias` `[O]` as PyTorch lays them out. Every option is
//! checked here, against the input's shape, with PyTorch's output-size formula shown with the
//! numbers filled in where a configuration leaves no output. Applying a layer again by name
//! (`-> c1`) shares its parameters, on inputs of the shape it was defined for.

use super::args::{Bound, Kind, Param};
use super::dense::{init_of, relu_like, INITS, INIT_HINT, STD};
use super::layers::{Layer, LayerKind};
use super::Lowerer;
use crate::diag::{Diagnostic, Span};
use crate::ir::{out_size, Act, ConvGeom, Dim, Init, Op, Phase, Type, ValueId};
use crate::syntax::ast;

/// A [`Kind::Sizes`] option: one size of at least `min`, a tuple of one of the lengths
/// `tuples`, or one of `names`. An optional one defaults to no sizes at all, which the layer
/// reads as its own default (as an empty name is a [`Kind::Choice`]'s default).
pub(super) const fn size_option(
    name: &'static str,
    min: usize,
    tuples: &'static [usize],
    names: &'static [&'static str],
    words: &'static str,
    optional: bool,
    hint: &'static str,
) -> Param {
    Param {
        name,
        kind: Kind::Sizes {
            min,
            tuples,
            names,
            words,
        },
        default: if optional {
            Some(Bound::Sizes(Vec::new()))
        } else {
            None
        },
        hint,
    }
}

/// The options of `conv2d` (`two_d`) and `conv1d`. A 2-D size may be a pair `(rows, columns)`
/// and a 2-D padding four sizes `(top, bottom, left, right)`; a 1-D layer has one axis, so its
/// binding refuses tuples.
const fn conv_sig(two_d: bool) -> [Param; 10] {
    let (pair, padding): (&'static [usize], &'static [usize]) =
        if two_d { (&[2], &[2, 4]) } else { (&[], &[]) };
    let (positive, sizes) = if two_d {
        (
            "a positive size or a pair of them",
            "a size, a pair (rows, columns), four sizes (top, bottom, left, right), `same` or `valid`",
        )
    } else {
        ("a positive size", "a size, `same` or `valid`")
    };
    [
        Param {
            name: "out_channels",
            kind: Kind::Width,
            default: None,
            hint: "give the number of output channels, as in `conv2d c1(6, kernel = 5)`",
        },
        size_option(
            "kernel",
            1,
            pair,
            &[],
            positive,
            false,
            "write the kernel size, as in `conv2d c1(6, kernel = 5)` or `kernel = (3, 5)`",
        ),
        size_option(
            "stride",
            1,
            pair,
            &[],
            positive,
            true,
            "the stride is at least 1, as in `stride = 2` or `stride = (2, 1)`",
        ),
        size_option(
            "padding",
            0,
            padding,
            &["same", "valid"],
            sizes,
            true,
            "write `padding = 2`, `padding = (1, 2)`, `padding = (0, 1, 0, 1)` or `padding = same`",
        ),
        size_option(
            "dilation",
            1,
            pair,
            &[],
            positive,
            true,
            "the dilation is at least 1, as in `dilation = 2`",
        ),
        Param {
            name: "groups",
            kind: Kind::Width,
            default: Some(Bound::Int(1)),
            hint: "groups divides both channel counts; `groups = C` is a depthwise convolution",
        },
        Param {
            name: "bias",
            kind: Kind::Bool,
            default: Some(Bound::Bool(true)),
            hint: "write `bias = false` to drop the bias",
        },
        Param {
            name: "init",
            kind: Kind::Choice {
                names: INITS,
                or_number: true,
            },
            default: Some(Bound::Name(String::new())),
            hint: INIT_HINT,
        },
        Param {
            name: "frozen",
            kind: Kind::Bool,
            default: Some(Bound::Bool(false)),
            hint: "write `frozen = true` to keep the layer's parameters fixed during training",
        },
        STD,
    ]
}

static CONV2D_SIG: [Param; 10] = conv_sig(true);
static CONV1D_SIG: [Param; 10] = conv_sig(false);

/// A convolution layer's parameters and geometry, for applying it again by name.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvLayer {
    pub weight: ValueId,
    pub bias: Option<ValueId>,
    pub geom: ConvGeom,
}

impl Lowerer<'_> {
    /// `-> conv2d name(out_channels, kernel, stride = 1, padding = 0, dilation = 1, groups = 1,
    /// bias = true)`, or `conv1d` with the same options over `[C, L]`.
    pub(super) fn conv(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        next: Option<&str>,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let one_d = stage.kind.name == "conv1d";
        let kind = if one_d {
            "conv1d layer"
        } else {
            "conv2d layer"
        };
        let (layer, what, b) = self.named_layer(
            stage,
            kind,
            if one_d { &CONV1D_SIG } else { &CONV2D_SIG },
            "write `conv2d c1(6, kernel = 5)`: the name gives the parameters their stable names `c1.weight` and `c1.bias`",
            "rename one of the layers, or write `-> {}` to apply the first layer again with the same parameters",
        )?;
        let shape = self.graph.ty(x).shape.clone();
        let (c, h, w) = match shape.0.as_slice() {
            [Dim::Batch, Dim::Fixed(c), Dim::Fixed(w)] if one_d => (*c, 1, *w),
            [Dim::Batch, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] if !one_d => (*c, *h, *w),
            _ => {
                let (wants, example) = if one_d {
                    ("[channels, length]", "`[1, 100]`")
                } else {
                    ("[channels, height, width]", "`[1, 28, 28]`")
                };
                self.error(
                    Diagnostic::error(
                        "E0205",
                        stage.span,
                        format!("{what} takes {wants} per sample but {producer} has shape {shape}"),
                    )
                    .with_span_label(format!("expects [B, {}]", &wants[1..wants.len() - 1]))
                    .with_help(format!(
                        "declare the input with a per-sample shape such as {example}, or reshape a vector first (`-> reshape({})`)",
                        if one_d { "1, 100" } else { "1, 28, 28" }
                    )),
                );
                return None;
            }
        };
        let geom = self.conv_geom(&b, &what, stage.span, one_d, [c, h, w])?;
        let (o, cg) = (geom.out_channels, c / geom.groups);
        let taps = geom.kernel[0] * geom.kernel[1];
        let weight_len = o.checked_mul(cg).and_then(|n| n.checked_mul(taps));
        self.within_budget(weight_len.and_then(|n| n.checked_add(o)), stage.span, &what)?;
        let (bias, frozen) = (b.bool(6)?, b.bool(8)?);
        let (fan_in, fan_out) = (cg * taps, o / geom.groups * taps);
        let default_init = if relu_like(next.unwrap_or("")) {
            Init::HeNormal
        } else {
            Init::XavierUniform
        };
        let weight = self.param(
            format!("{}.weight", layer.name),
            geom.weight_dims(),
            init_of(&b, 7, default_init, b.real(9)?),
            (fan_in, fan_out),
            frozen,
            layer.span,
        );
        let bias = bias.then(|| {
            self.param(
                format!("{}.bias", layer.name),
                vec![o],
                Init::Zeros,
                (fan_in, fan_out),
                frozen,
                layer.span,
            )
        });
        let info = ConvLayer { weight, bias, geom };
        self.layers.insert(
            layer.name.clone(),
            Layer {
                span: layer.span,
                kind: LayerKind::Conv(info),
            },
        );
        let v = self.apply_conv(x, &layer.name, &info, stage.span, let_name);
        Some((v, format!("{what} ({})", describe_output(&geom))))
    }

    /// `-> name` for a convolution defined earlier, on an input of the shape it was defined
    /// for.
    pub(super) fn reuse_conv(
        &mut self,
        x: ValueId,
        producer: &str,
        stage: &ast::Stage,
        defined: Span,
        layer: &ConvLayer,
        let_name: Option<&str>,
    ) -> Option<(ValueId, String)> {
        let name = &stage.kind.name;
        let what = format!("convolution `{name}`");
        let (shape, want) = (&self.graph.ty(x).shape, layer.geom.input());
        if *shape != want {
            let d = Diagnostic::error(
                "E0205",
                stage.span,
                format!("{what} takes {want} values but {producer} has shape {shape}"),
            )
            .with_label(defined, format!("defined for {want} here"))
            .with_help(
                "a shared layer must be applied to values of the shape it was first applied to",
            );
            self.error(d);
            return None;
        }
        let v = self.apply_conv(x, name, layer, stage.span, let_name);
        Some((v, format!("{what} ({})", describe_output(&layer.geom))))
    }

    fn apply_conv(
        &mut self,
        x: ValueId,
        layer: &str,
        info: &ConvLayer,
        span: Span,
        let_name: Option<&str>,
    ) -> ValueId {
        let mut args = vec![x, info.weight];
        args.extend(info.bias);
        let op = Op::Conv {
            geom: info.geom,
            bias: info.bias.is_some(),
            act: Act::Identity,
        };
        let ty = Type::float(info.geom.output());
        let name = let_name.unwrap_or(layer).to_string();
        self.push(op, args, ty, name, Phase::Forward, span)
    }

    /// The geometry from the bound options and the input `[c, h, w]`, or diagnostics for every
    /// option that cannot work with this input.
    fn conv_geom(
        &mut self,
        b: &super::args::BoundArgs,
        what: &str,
        span: Span,
        one_d: bool,
        [c, h, w]: [usize; 3],
    ) -> Option<ConvGeom> {
        let out_channels = b.int(0)?;
        let groups = b.int(5)?;
        // A single size applies to every spatial axis; a 1-D layer's sizes are its columns',
        // and its row sizes are 1. No sizes is the option's default.
        let pair = |i: usize, default: usize| match b.sizes(i) {
            Some(&[n]) if one_d => [1, n],
            Some(&[n]) => [n, n],
            Some(&[rows, cols]) => [rows, cols],
            _ => [default, default],
        };
        let (kernel, stride, dilation) = (pair(1, 1), pair(2, 1), pair(4, 1));
        let padding = match (b.choice(3), b.sizes(3)) {
            (Some("same"), _) => {
                if stride != [1, 1] {
                    let at = b.span(3).unwrap_or(span);
                    self.error(
                        Diagnostic::error("E0403", at, format!("`padding = same` of {what} needs stride 1"))
                            .with_span_label("`same` padding")
                            .with_help("as in PyTorch, a strided convolution gives its padding as sizes; for stride s and kernel k, `padding = (k - 1) / 2` keeps ⌈size / s⌉ outputs for odd k"),
                    );
                    return None;
                }
                // PyTorch's rule: the total `dilation·(kernel − 1)` split with the smaller
                // half before, so an even kernel pads one more after.
                let split = |k: usize, d: usize| {
                    let total = d * (k - 1);
                    (total / 2, total - total / 2)
                };
                let (top, bottom) = split(kernel[0], dilation[0]);
                let (left, right) = split(kernel[1], dilation[1]);
                [top, bottom, left, right]
            }
            (_, Some(&[n])) if one_d => [0, 0, n, n],
            (_, Some(&[n])) => [n; 4],
            (_, Some(&[rows, cols])) => [rows, rows, cols, cols],
            (_, Some(&[top, bottom, left, right])) => [top, bottom, left, right],
            // `valid`, or the default.
            _ => [0; 4],
        };
        let geom = ConvGeom {
            in_channels: c,
            height: h,
            width: w,
            out_channels,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            one_d,
        };
        let mut ok = true;
        for (count, side) in [(c, "input"), (out_channels, "output")] {
            if count % groups != 0 {
                ok = false;
                let at = b.span(5).unwrap_or(span);
                self.error(
                    Diagnostic::error("E0212", at, format!("`groups = {groups}` of {what} does not divide its {count} {side} channels"))
                        .with_span_label(format!("{groups} groups"))
                        .with_help(format!("each group convolves C/groups input channels into O/groups output channels; here C = {c} and O = {out_channels}, so groups must divide both")),
                );
            }
        }
        // A 1-D layer's single row always fits.
        let help = "use a smaller kernel or dilation, or more padding, or apply the layer earlier, where the input is larger";
        for axis in usize::from(one_d)..2 {
            ok &= self.check_out_size(what, span, Axis::of_conv(&geom, axis), help);
        }
        if !ok {
            return None;
        }
        // Padding can make the output (and the patches a thread copies) larger than any input:
        // both must stay within the per-sample bound of every value.
        let positions = geom.out_height() as u128 * geom.out_width() as u128;
        let taps = (c / groups * kernel[0] * kernel[1]) as u128;
        let largest = (positions * out_channels as u128).max(positions * taps);
        if largest > 1 << 31 {
            self.error(
                Diagnostic::error("E0002", span, format!("{what} makes a value too large"))
                    .with_span_label(format!("{largest} values per sample"))
                    .with_note("a value, and a convolution's patches, may have at most 2^31 elements per sample"),
            );
            return None;
        }
        Some(geom)
    }

    /// Reports (E0212) an axis where PyTorch's formula leaves no output, with the numbers
    /// filled in and `help` on what to change; returns whether the axis has an output.
    pub(super) fn check_out_size(&mut self, what: &str, span: Span, a: Axis, help: &str) -> bool {
        let (before, after) = a.padding;
        let (k, s, d) = (a.kernel, a.stride, a.dilation);
        if out_size(a.size, before + after, k, s, d) >= 1 {
            return true;
        }
        let (size, name) = (a.size, a.name);
        let numerator = size as i64 + before as i64 + after as i64 - d as i64 * (k as i64 - 1) - 1;
        let (size_name, (b_name, a_name)) = (a.size_name, a.sides);
        let formula = format!(
            "⌊({size_name} + {b_name} + {a_name} − dilation·(kernel − 1) − 1) / stride⌋ + 1 = ⌊({size} + {before} + {after} − {d}·({k} − 1) − 1) / {s}⌋ + 1 = {}",
            numerator.div_euclid(s as i64) + 1
        );
        self.error(
            Diagnostic::error("E0212", span, format!("{what} leaves no output {name}: its kernel spans {} {name} of an input padded to {}", d * (k - 1) + 1, size + before + after))
                .with_span_label("no output")
                .with_note(format!("PyTorch's output size: {formula}"))
                .with_help(help.to_string()),
        );
        false
    }
}

/// One spatial axis of a convolution or a pooling, as the output-size check reads it.
pub(super) struct Axis {
    /// `rows`, `columns` or `positions`.
    pub name: &'static str,
    /// `H`, `W` or `L`.
    pub size_name: &'static str,
    /// The sides padding is added on: `(top, bottom)` or `(left, right)`.
    pub sides: (&'static str, &'static str),
    pub size: usize,
    pub padding: (usize, usize),
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
}

impl Axis {
    /// Axis `axis` (0 for rows, 1 for columns) of a convolution.
    fn of_conv(g: &ConvGeom, axis: usize) -> Axis {
        let (name, size_name, sides, size) = match (axis, g.one_d) {
            (_, true) => ("positions", "L", ("left", "right"), g.width),
            (0, false) => ("rows", "H", ("top", "bottom"), g.height),
            _ => ("columns", "W", ("left", "right"), g.width),
        };
        Axis {
            name,
            size_name,
            sides,
            size,
            padding: (g.padding[2 * axis], g.padding[2 * axis + 1]),
            kernel: g.kernel[axis],
            stride: g.stride[axis],
            dilation: g.dilation[axis],
        }
    }
}

/// `6x24x24` (or `6x96` for a 1-D layer): the layer's output per sample, for messages.
pub(super) fn describe_output(g: &ConvGeom) -> String {
    if g.one_d {
        format!("{}x{} output", g.out_channels, g.out_width())
    } else {
        format!(
            "{}x{}x{} output",
            g.out_channels,
            g.out_height(),
            g.out_width()
        )
    }
}
