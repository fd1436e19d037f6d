//! Binds the arguments of a call (`adam(lr = 1e-3)`, `dense h(8)`) to a signature, reporting
//! unknown, repeated, missing and mistyped arguments with their spans.

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::syntax::ast::{Arg, ArgList, Value};

/// What kind of value an argument takes, and which values are allowed.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A positive integer (a layer width).
    Width,
    /// An integer of at least `min` (an axis, which counts from the end when negative, or a
    /// start index).
    Integer { min: i64, words: &'static str },
    /// A finite real number in a range; the `&str` says the range in words for messages.
    Real {
        min: f64,
        min_inclusive: bool,
        max: f64,
        max_inclusive: bool,
        words: &'static str,
    },
    /// `true` or `false`.
    Bool,
    /// A reference to a named value of the model.
    Name,
    /// A size per spatial axis (a kernel, a stride, a padding): one integer of at least `min`
    /// for every axis, or one per entry of `tuple` in parentheses, or one of `names` (such as
    /// `same`).
    Sizes {
        min: usize,
        tuples: &'static [usize],
        names: &'static [&'static str],
        words: &'static str,
    },
    /// One of a fixed set of names (an activation, an initializer), or a number if allowed.
    Choice {
        names: &'static [&'static str],
        or_number: bool,
    },
}

impl Kind {
    pub const POSITIVE: Kind = Kind::Real {
        min: 0.0,
        min_inclusive: false,
        max: f64::INFINITY,
        max_inclusive: false,
        words: "a positive number",
    };
    pub const NON_NEGATIVE: Kind = Kind::Real {
        min: 0.0,
        min_inclusive: true,
        max: f64::INFINITY,
        max_inclusive: false,
        words: "zero or a positive number",
    };
    pub const UNIT_OPEN: Kind = Kind::Real {
        min: 0.0,
        min_inclusive: true,
        max: 1.0,
        max_inclusive: false,
        words: "in [0, 1)",
    };
}

/// One parameter of a signature. `default: None` means required.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<Bound>,
    /// The help line shown when the value is out of range.
    pub hint: &'static str,
}

/// A checked argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    Int(usize),
    Signed(i64),
    Real(f64),
    Bool(bool),
    Name(String),
    /// Sizes as written: one, or a tuple of them.
    Sizes(Vec<usize>),
}

/// The bound values, in signature order, with the span of each (the call's span for defaults).
pub struct BoundArgs {
    pub values: Vec<Option<(Bound, Span)>>,
}

impl BoundArgs {
    pub fn int(&self, i: usize) -> Option<usize> {
        match self.values.get(i)? {
            Some((Bound::Int(v), _)) => Some(*v),
            _ => None,
        }
    }

    pub fn signed(&self, i: usize) -> Option<i64> {
        match self.values.get(i)? {
            Some((Bound::Signed(v), _)) => Some(*v),
            _ => None,
        }
    }

    pub fn real(&self, i: usize) -> Option<f64> {
        match self.values.get(i)? {
            Some((Bound::Real(v), _)) => Some(*v),
            _ => None,
        }
    }

    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.values.get(i)? {
            Some((Bound::Bool(v), _)) => Some(*v),
            _ => None,
        }
    }

    /// A name chosen from a [`Kind::Choice`]; the empty string when the default was taken.
    pub fn choice(&self, i: usize) -> Option<&str> {
        match self.values.get(i)? {
            Some((Bound::Name(v), _)) => Some(v.as_str()),
            _ => None,
        }
    }

    /// Sizes bound to a [`Kind::Sizes`] parameter: one number or a tuple.
    pub fn sizes(&self, i: usize) -> Option<&[usize]> {
        match self.values.get(i)? {
            Some((Bound::Sizes(v), _)) => Some(v),
            _ => None,
        }
    }

    /// Where the argument bound to parameter `i` was written (the call, for a default).
    pub fn span(&self, i: usize) -> Option<Span> {
        self.values.get(i)?.as_ref().map(|(_, sp)| *sp)
    }

    pub fn name(&self, i: usize) -> Option<(&str, Span)> {
        match self.values.get(i)? {
            Some((Bound::Name(v), sp)) => Some((v.as_str(), *sp)),
            _ => None,
        }
    }
}

/// Binds `args` (absent list = no arguments) of `what` (e.g. "optimizer `adam`") to `sig`.
/// Errors go to `diags`; a parameter whose argument was wrong is left `None`.
pub fn bind(
    what: &str,
    call_span: Span,
    args: Option<&ArgList>,
    sig: &[Param],
    diags: &mut Diagnostics,
) -> BoundArgs {
    let mut values: Vec<Option<(Bound, Span)>> = vec![None; sig.len()];
    let mut seen: Vec<Option<Span>> = vec![None; sig.len()];
    let list = expand_tuples(what, args.map_or(&[][..], |a| &a.args), sig, diags);
    let mut positional = 0;
    for arg in &list {
        let slot = match &arg.key {
            Some(key) => match sig.iter().position(|p| p.name == key.name) {
                Some(i) => i,
                None => {
                    let names: Vec<&str> = sig.iter().map(|p| p.name).collect();
                    let mut d = Diagnostic::error(
                        "E0402",
                        key.span,
                        format!("{what} has no parameter `{}`", key.name),
                    )
                    .with_span_label("unknown parameter");
                    d = match super::suggest(&key.name, names.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None if names.is_empty() => {
                            d.with_help(format!("{what} takes no arguments"))
                        }
                        None => d.with_help(format!("its parameters are {}", quoted(&names))),
                    };
                    diags.push(d);
                    continue;
                }
            },
            None => {
                let i = positional;
                positional += 1;
                if i >= sig.len() {
                    let d = Diagnostic::error(
                        "E0405",
                        arg.span,
                        format!(
                            "{what} takes {} positional argument{}",
                            sig.len(),
                            plural(sig.len())
                        ),
                    )
                    .with_span_label("unexpected argument");
                    let names: Vec<&str> = sig.iter().map(|p| p.name).collect();
                    diags.push(if sig.is_empty() {
                        d.with_help(format!("write `{}` without parentheses", what_name(what)))
                    } else {
                        d.with_help(format!("its parameters are {}", quoted(&names)))
                    });
                    continue;
                }
                i
            }
        };
        if let Some(first) = seen[slot] {
            diags.push(
                Diagnostic::error(
                    "E0405",
                    arg.span,
                    format!("`{}` is given twice", sig[slot].name),
                )
                .with_span_label("second value")
                .with_label(first, "first value"),
            );
            continue;
        }
        seen[slot] = Some(arg.span);
        if let Some(v) = check_value(what, &sig[slot], arg, diags) {
            values[slot] = Some((v, arg.value.span()));
        }
    }
    for (i, p) in sig.iter().enumerate() {
        if seen[i].is_none() {
            match &p.default {
                Some(d) => values[i] = Some((d.clone(), call_span)),
                None => diags.push(
                    Diagnostic::error("E0405", call_span, format!("{what} needs `{}`", p.name))
                        .with_span_label(format!("missing `{}`", p.name))
                        .with_help(p.hint),
                ),
            }
        }
    }
    BoundArgs { values }
}

/// Options that PyTorch takes as one tuple and nnc as separate parameters: `betas = (a, b)`
/// binds `beta1 = a, beta2 = b` wherever a signature has both.
const TUPLES: &[(&str, &[&str])] = &[("betas", &["beta1", "beta2"])];

/// The arguments with every tuple option of [`TUPLES`] replaced by its parameters, each
/// spanning its number; a tuple option of the wrong form is reported and dropped.
fn expand_tuples(what: &str, args: &[Arg], sig: &[Param], diags: &mut Diagnostics) -> Vec<Arg> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let tuple = arg.key.as_ref().and_then(|key| {
            TUPLES
                .iter()
                .find(|(name, parts)| {
                    *name == key.name && parts.iter().all(|p| sig.iter().any(|s| s.name == *p))
                })
                .map(|(name, parts)| (key, *name, *parts))
        });
        let Some((key, name, parts)) = tuple else {
            out.push(arg.clone());
            continue;
        };
        let example = format!(
            "write `{name} = (0.9, 0.999)`, or {} separately",
            quoted(parts)
        );
        match &arg.value {
            Value::Tuple { items, .. } if items.len() == parts.len() => {
                out.extend(parts.iter().zip(items).map(|(part, item)| Arg {
                    key: Some(crate::syntax::ast::Ident {
                        name: part.to_string(),
                        span: key.span,
                    }),
                    value: item.clone(),
                    span: item.span(),
                }));
            }
            v => diags.push(
                Diagnostic::error(
                    "E0403",
                    v.span(),
                    format!(
                        "`{name}` of {what} must be {} numbers in parentheses, found {}",
                        parts.len(),
                        describe(v)
                    ),
                )
                .with_span_label(format!("expected {} numbers", parts.len()))
                .with_help(example),
            ),
        }
    }
    out
}

fn check_value(what: &str, p: &Param, arg: &Arg, diags: &mut Diagnostics) -> Option<Bound> {
    let span = arg.value.span();
    let mismatch = |expected: &str, found: &str| {
        Diagnostic::error(
            "E0403",
            span,
            format!("`{}` of {what} must be {expected}, found {found}", p.name),
        )
        .with_span_label(format!("expected {expected}"))
        .with_help(p.hint)
    };
    let result = match (&p.kind, &arg.value) {
        (Kind::Width, Value::Number { text, .. }) => match text.parse::<u64>() {
            Ok(0) => Err(mismatch("at least 1", "0")),
            Ok(n) if n > 1 << 31 => Err(mismatch("at most 2147483648", &quote_literal(text))),
            Ok(n) => Ok(Bound::Int(n as usize)),
            Err(_) => Err(mismatch("a positive integer", &quote_literal(text))),
        },
        (Kind::Integer { min, words }, Value::Number { text, .. }) => match text.parse::<i64>() {
            Ok(n) if n >= *min && n.unsigned_abs() <= 1 << 31 => Ok(Bound::Signed(n)),
            _ => Err(mismatch(words, &quote_literal(text))),
        },
        (
            Kind::Real {
                min,
                min_inclusive,
                max,
                max_inclusive,
                words,
            },
            Value::Number { text, .. },
        ) => match text.parse::<f64>() {
            Ok(v) if !fits_f32(v) => Err(mismatch(words, TOO_LARGE)),
            Ok(v) => {
                let above = if *min_inclusive { v >= *min } else { v > *min };
                let below = if *max_inclusive { v <= *max } else { v < *max };
                if above && below {
                    Ok(Bound::Real(v))
                } else {
                    Err(mismatch(words, &quote_literal(text)))
                }
            }
            Err(_) => Err(mismatch(words, &quote_literal(text))),
        },
        (Kind::Sizes { names, .. }, Value::Ident(id)) if names.contains(&id.name.as_str()) => {
            Ok(Bound::Name(id.name.clone()))
        }
        (Kind::Sizes { min, words, .. }, Value::Number { text, .. }) => match text.parse::<u64>() {
            Ok(n) if n >= *min as u64 && n <= 1 << 31 => Ok(Bound::Sizes(vec![n as usize])),
            _ => Err(mismatch(words, &quote_literal(text))),
        },
        (
            Kind::Sizes {
                min, tuples, words, ..
            },
            Value::Tuple { items, .. },
        ) if tuples.contains(&items.len()) => {
            let sizes: Option<Vec<usize>> = items
                .iter()
                .map(|v| match v {
                    Value::Number { text, .. } => text
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n >= *min as u64 && *n <= 1 << 31)
                        .map(|n| n as usize),
                    _ => None,
                })
                .collect();
            sizes
                .map(Bound::Sizes)
                .ok_or_else(|| mismatch(words, &describe(&arg.value)))
        }
        (Kind::Sizes { words, .. }, v) => Err(mismatch(words, &describe(v))),
        (Kind::Bool, Value::Ident(id)) if id.name == "true" || id.name == "false" => {
            Ok(Bound::Bool(id.name == "true"))
        }
        (Kind::Bool, v) => Err(mismatch("`true` or `false`", &describe(v))),
        (Kind::Name, Value::Ident(id)) => Ok(Bound::Name(id.name.clone())),
        (Kind::Name, v) => Err(mismatch("a value name", &describe(v))),
        (Kind::Choice { names, .. }, Value::Ident(id)) if names.contains(&id.name.as_str()) => {
            Ok(Bound::Name(id.name.clone()))
        }
        (Kind::Choice { names, .. }, Value::Ident(id)) => {
            let d = Diagnostic::error(
                "E0403",
                span,
                format!("`{}` of {what} cannot be `{}`", p.name, id.name),
            )
            .with_span_label("not a known choice");
            Err(match super::suggest(&id.name, names.iter().copied()) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!("the choices are {}", quoted(names))),
            })
        }
        (
            Kind::Choice {
                or_number: true, ..
            },
            Value::Number { text, .. },
        ) => match text.parse::<f64>() {
            Ok(v) if fits_f32(v) => Ok(Bound::Real(v)),
            Ok(_) => Err(mismatch("a finite number", TOO_LARGE)),
            Err(_) => Err(mismatch("a finite number", &quote_literal(text))),
        },
        (Kind::Choice { names, .. }, v) => {
            Err(mismatch(&format!("one of {}", quoted(names)), &describe(v)))
        }
        (Kind::Width, v) | (Kind::Real { .. }, v) | (Kind::Integer { .. }, v) => {
            Err(mismatch("a number", &describe(v)))
        }
    };
    result
        .map_err(|d| {
            diags.push(match (&arg.value, &p.kind) {
                (Value::Expr(_), Kind::Name) => d.with_help(
                    "only functions of values such as `concat` take expressions; name this \
                     one with a `let` and pass its name",
                ),
                _ => d,
            })
        })
        .ok()
}

/// A number as the source wrote it, in backticks, cut to its first 24 characters when longer
/// so that a message never echoes a whole pasted blob.
pub fn quote_literal(text: &str) -> String {
    match text.char_indices().nth(24) {
        Some((cut, _)) => format!("`{}…` ({} characters)", &text[..cut], text.chars().count()),
        None => format!("`{text}`"),
    }
}

/// How a number outside [`fits_f32`] is described in messages.
pub const TOO_LARGE: &str = "a number beyond the range of f32 (±3.4e38)";

/// Whether a literal of the language can become a number of the generated code: every number
/// must be finite in `f32`, the narrowest element type, because rustc rejects an `f32` literal
/// that overflows to infinity.
pub fn fits_f32(v: f64) -> bool {
    v.is_finite() && v.abs() <= f64::from(f32::MAX)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number { text, .. } => format!("the number {}", quote_literal(text)),
        Value::Ident(id) => format!("`{}`", id.name),
        Value::Expr(_) => "an expression".to_string(),
        Value::Tuple { items, .. } => format!(
            "{} number{} in parentheses",
            items.len(),
            plural(items.len())
        ),
    }
}

fn what_name(what: &str) -> &str {
    what.rsplit('`').nth(1).unwrap_or(what)
}

pub fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
