//! `nnc graph`: a program's value graph in Graphviz's DOT language.
//!
//! One node per IR value, labelled `name\nop [shape]`, and one edge per argument, labelled
//! with the shape that flows along it. Inputs, targets and parameters have shapes and colours
//! of their own; loss, backward and pullback nodes are tinted. A fused node is drawn as a cluster
//! `fused dense: hidden` holding one small node per step its kernel performs (`matmul`,
//! `bias_add`, `relu`), chained; each argument enters the step that consumes it and the users
//! leave from the last step.

use crate::ir::{Act, DType, Node, Op, Phase, Program, ValueId};
use std::fmt::Write as _;

/// What to draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DotOptions {
    /// Also draw the backward passes: the loss's, and the pullback from output gradients.
    pub backward: bool,
}

/// One program as a `digraph` named after the model.
pub fn dot(program: &Program, options: &DotOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&program.name));
    graph_attributes(&mut out);
    let _ = writeln!(out, "  label={};", quote(&program.name));
    body(&mut out, program, "", "  ", options);
    out.push_str("}\n");
    out
}

/// Every program of a file in one `digraph`: a single program as [`dot`] draws it, several as
/// one cluster per model, so that Graphviz lays them out side by side in one picture.
pub fn dot_all(programs: &[Program], options: &DotOptions) -> String {
    if let [program] = programs {
        return dot(program, options);
    }
    let mut out = String::from("digraph models {\n");
    graph_attributes(&mut out);
    for (k, program) in programs.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_model_{k} {{");
        let _ = writeln!(out, "    label={};", quote(&program.name));
        out.push_str("    style=rounded;\n    color=\"#9ca3af\";\n");
        body(&mut out, program, &format!("m{k}_"), "    ", options);
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

fn graph_attributes(out: &mut String) {
    out.push_str(concat!(
        "  graph [fontname=\"Helvetica\", fontsize=12, labelloc=t];\n",
        "  node [fontname=\"Helvetica\", fontsize=10, shape=box, style=rounded];\n",
        "  edge [fontname=\"Helvetica\", fontsize=9];\n",
    ));
}

/// One elementary step of a fused kernel.
struct Step {
    label: &'static str,
    /// The arguments of the fused node that this step reads.
    args: &'static [usize],
}

/// The steps a fused op performs, in order; `None` for an op that is one step.
fn steps(op: Op) -> Option<Vec<Step>> {
    let step = |label, args| Step { label, args };
    let steps = match op {
        Op::Dense { act, bias } => {
            let mut steps = vec![step("matmul", &[0, 1][..])];
            if bias {
                steps.push(step("bias_add", &[2]));
            }
            if act != Act::Identity {
                steps.push(step(act.name(), &[]));
            }
            steps
        }
        Op::Conv { geom, bias, act } => {
            let mut steps = vec![step(
                if geom.one_d { "conv1d" } else { "conv2d" },
                &[0, 1][..],
            )];
            if bias {
                steps.push(step("bias_add", &[2]));
            }
            if act != Act::Identity {
                steps.push(step(act.name(), &[]));
            }
            steps
        }
        Op::SoftmaxLossGrad(_) => vec![step("softmax - target", &[0, 1]), step("· scale", &[])],
        Op::SigmoidLossGrad(_) => vec![step("sigmoid - target", &[0, 1]), step("· scale", &[])],
        _ => return None,
    };
    (steps.len() > 1).then_some(steps)
}

/// What a fused node is called in its cluster's label: `fused dense: hidden`.
fn fused_kind(op: Op) -> String {
    match op {
        Op::Dense { .. } => "dense".to_string(),
        Op::Conv { geom, .. } if geom.one_d => "conv1d".to_string(),
        Op::Conv { .. } => "conv2d".to_string(),
        other => other.to_string(),
    }
}

/// The nodes and edges of one program, with ids prefixed by `prefix`.
fn body(out: &mut String, program: &Program, prefix: &str, indent: &str, options: &DotOptions) {
    let graph = &program.graph;
    // The inference-only copies of the forward pass (batch norm folded, one step) would draw
    // the model again; the drawing shows the model as written.
    let drawn = |node: &Node| match node.phase {
        Phase::Backward | Phase::Pullback => options.backward,
        Phase::Fold | Phase::Infer | Phase::Step => false,
        Phase::Forward | Phase::Commit | Phase::Loss => true,
    };
    let id = |v: ValueId| format!("{prefix}v{}", v.index());
    let step_id = |v: ValueId, i: usize| format!("{prefix}v{}_{i}", v.index());
    // Where the edges leaving a value start: the last step of a fused node.
    let tail = |v: ValueId| match steps(graph.node(v).op) {
        Some(steps) => step_id(v, steps.len() - 1),
        None => id(v),
    };
    for v in graph.ids() {
        let node = graph.node(v);
        if !drawn(node) {
            continue;
        }
        let style = Style::of(program, v);
        let heads: Vec<String> = match steps(node.op) {
            Some(steps) => {
                let cluster = format!("cluster_{prefix}{}", v.index());
                let _ = writeln!(out, "{indent}subgraph {cluster} {{");
                let label = format!("fused {}: {}", fused_kind(node.op), node.name);
                let _ = writeln!(out, "{indent}  label={};", quote(&label));
                let _ = writeln!(
                    out,
                    "{indent}  style=\"rounded,dashed\";\n{indent}  color=\"#6b7280\";\n{indent}  fontsize=10;"
                );
                let last = steps.len() - 1;
                for (i, step) in steps.iter().enumerate() {
                    // Only the last step stands for the value (the output's double border).
                    let step_style = Style {
                        peripheries: if i == last { style.peripheries } else { 1 },
                        ..style
                    };
                    let attrs = step_style.attributes(step.label, "fontsize=9, height=0.3");
                    let _ = writeln!(out, "{indent}  {} [{attrs}];", step_id(v, i));
                }
                for i in 1..steps.len() {
                    let _ = writeln!(
                        out,
                        "{indent}  {} -> {} [label={}];",
                        step_id(v, i - 1),
                        step_id(v, i),
                        // Every step of a fused kernel has the fused result's shape.
                        quote(&shape_label(program, v))
                    );
                }
                let _ = writeln!(out, "{indent}}}");
                (0..node.args.len())
                    .map(|a| {
                        let i = steps.iter().position(|s| s.args.contains(&a)).unwrap_or(0);
                        step_id(v, i)
                    })
                    .collect()
            }
            None => {
                let label = format!("{}\n{} {}", node.name, op_label(node.op), node.ty.shape);
                let attrs = style.attributes(&label, "");
                let _ = writeln!(out, "{indent}{} [{attrs}];", id(v));
                vec![id(v); node.args.len()]
            }
        };
        for (arg, head) in node.args.iter().zip(heads) {
            let mut attrs = format!("label={}", quote(&shape_label(program, *arg)));
            if node.phase == Phase::Backward {
                attrs.push_str(", color=\"#9ca3af\"");
            }
            let _ = writeln!(out, "{indent}{} -> {head} [{attrs}];", tail(*arg));
        }
    }
}

/// Leaves by their role, every other op by its IR name.
fn op_label(op: Op) -> String {
    match op {
        Op::Input(_) => "input".to_string(),
        Op::Target(_) => "target".to_string(),
        Op::Param(_) => "param".to_string(),
        other => other.to_string(),
    }
}

/// The shape on an edge: `[B, 128]`, or `ids(10)[B]` for integer ids and labels.
fn shape_label(program: &Program, v: ValueId) -> String {
    let ty = program.graph.ty(v);
    match ty.dtype {
        DType::Float => ty.shape.to_string(),
        DType::Ids(_) => ty.to_string(),
    }
}

/// How a value's node looks.
#[derive(Clone, Copy)]
struct Style {
    shape: &'static str,
    style: &'static str,
    fill: Option<&'static str>,
    /// 2 for the model's outputs.
    peripheries: u8,
}

impl Style {
    fn of(program: &Program, v: ValueId) -> Style {
        let node = program.graph.node(v);
        let peripheries = if program.outputs.iter().any(|b| b.value == v) {
            2
        } else {
            1
        };
        let (shape, style, fill) = match node.op {
            Op::Input(_) => ("invhouse", "filled", Some("#bfdbfe")),
            Op::Target(_) => ("invhouse", "filled", Some("#fde68a")),
            Op::Param(i) if program.params[i].frozen => ("box", "filled,dashed", Some("#f3f4f6")),
            Op::Param(_) => ("box", "filled", Some("#e5e7eb")),
            _ => match node.phase {
                Phase::Forward | Phase::Commit | Phase::Fold | Phase::Infer | Phase::Step => {
                    ("box", "rounded", None)
                }
                Phase::Loss => ("box", "rounded,filled", Some("#fef3c7")),
                Phase::Backward => ("box", "rounded,filled", Some("#fee2e2")),
                Phase::Pullback => ("box", "rounded,filled", Some("#e0e7ff")),
            },
        };
        Style {
            shape,
            style,
            fill,
            peripheries,
        }
    }

    fn attributes(&self, label: &str, extra: &str) -> String {
        let mut attrs = format!(
            "label={}, shape={}, style={}",
            quote(label),
            self.shape,
            quote(self.style)
        );
        if let Some(fill) = self.fill {
            let _ = write!(attrs, ", fillcolor={}", quote(fill));
        }
        if self.peripheries > 1 {
            let _ = write!(attrs, ", peripheries={}", self.peripheries);
        }
        if !extra.is_empty() {
            let _ = write!(attrs, ", {extra}");
        }
        attrs
    }
}

/// A DOT string literal: quotes and backslashes escaped, newlines as `\n` line breaks.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::XOR;
    use super::*;

    #[test]
    fn quotes_escape_what_dot_reads_specially() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(quote("hidden"), "\"hidden\"");
    }

    #[test]
    fn fused_nodes_become_clusters_of_steps() {
        let programs = crate::analyze(XOR).unwrap().programs;
        let text = dot(&programs[0], &DotOptions::default());
        assert!(text.contains("label=\"fused dense: hidden\""), "{text}");
        // x enters the product, and the layer's users leave from the activation.
        assert!(text.contains("v0 -> v4_0 [label=\"[B, 2]\"]"), "{text}");
        assert!(text.contains("v4_2 -> v7_0 [label=\"[B, 8]\"]"), "{text}");
        assert!(
            !text.contains("_grad"),
            "no backward nodes unless asked: {text}"
        );
        let backward = dot(&programs[0], &DotOptions { backward: true });
        assert!(
            backward.contains("fused sigmoid_loss_grad.binary_cross_entropy: d_out"),
            "{backward}"
        );
    }

    #[test]
    fn the_unfused_graph_has_no_clusters() {
        let programs = super::super::programs_at(XOR, crate::Stage::Grad).unwrap();
        let text = dot(&programs[0], &DotOptions { backward: true });
        assert!(!text.contains("cluster"), "{text}");
        assert!(text.contains("tanh_grad"), "{text}");
    }

    #[test]
    fn several_models_share_one_graph() {
        let two = format!("{XOR}\n{}", XOR.replace("Xor", "Other"));
        let programs = crate::analyze(&two).unwrap().programs;
        let text = dot_all(&programs, &DotOptions::default());
        assert_eq!(text.matches("digraph").count(), 1, "{text}");
        assert!(text.contains("subgraph cluster_model_1 {"), "{text}");
        assert!(text.contains("m1_v0 ->"), "{text}");
    }
}
