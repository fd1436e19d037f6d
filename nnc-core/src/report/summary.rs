//! `nnc summary`: a Keras-style table of a planned program's forward graph, then its parameter
//! and memory totals.
//!
//! The rows are the forward nodes of the program as it runs, after fusion, so that the bytes
//! column counts only values that are really stored: a dense layer fused with its activation is
//! one row of kind `dense+relu`. A row that reads parameters is named by their layer
//! (`hidden` for `hidden.weight`), any other by its value's name.

use crate::ir::{Act, DType, Op, Optimizer, Phase, Program, Type};
use crate::Elem;
use std::fmt::Write as _;

/// What the memory figures of a summary are computed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryOptions {
    /// The batch size the arena is sized for.
    pub batch: usize,
    /// The element type of the generated code, which sets the bytes per value.
    pub elem: Elem,
}

impl Default for SummaryOptions {
    fn default() -> SummaryOptions {
        SummaryOptions {
            batch: 32,
            elem: Elem::F32,
        }
    }
}

/// The summary of a planned program for `f32` code at batch size `batch`.
pub fn summary(program: &Program, batch: usize) -> String {
    summary_with(
        program,
        &SummaryOptions {
            batch,
            elem: Elem::F32,
        },
    )
}

/// The summary of a planned program: a header, one row per forward layer or op, and totals
/// for parameters, optimizer state and the arena.
pub fn summary_with(program: &Program, options: &SummaryOptions) -> String {
    let elem = elem_bytes(options.elem);
    let rows = rows(program, elem);
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(program));
    out.push('\n');

    let total_params: usize = rows.iter().map(|r| r.params).sum();
    let total_bytes: u128 = rows.iter().map(|r| r.bytes).sum();
    let titles = ["Layer", "Kind", "Output", "Params", "Bytes/sample"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.kind.clone(),
                r.shape.clone(),
                group(r.params as u128),
                bytes(r.bytes),
            ]
        })
        .collect();
    let total = [
        "Total".to_string(),
        String::new(),
        String::new(),
        group(total_params as u128),
        bytes(total_bytes),
    ];
    let mut widths = titles.map(width);
    for row in cells.iter().chain([&total]) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let rule = "─".repeat(widths.iter().sum::<usize>() + 3 * (widths.len() - 1));
    line(&mut out, &titles.map(String::from), &widths);
    let _ = writeln!(out, "{rule}");
    for row in &cells {
        line(&mut out, row, &widths);
    }
    let _ = writeln!(out, "{rule}");
    line(&mut out, &total, &widths);
    out.push('\n');

    // Counted from the parameter list, the authority, rather than from the rows (which agree
    // as long as every parameter is read by a forward node).
    let all = program.param_count() as u128;
    let frozen: u128 = program
        .params
        .iter()
        .filter(|p| p.frozen)
        .map(|p| p.len() as u128)
        .sum();
    let trainable = all - frozen;
    let (optimizer, buffers) = optimizer_state(&program.optimizer);
    let state = trainable * buffers as u128;
    let mut facts: Vec<(String, String)> = vec![
        ("Total params".into(), count_and_bytes(all, elem)),
        ("  trainable".into(), count_and_bytes(trainable, elem)),
        ("  frozen".into(), count_and_bytes(frozen, elem)),
        (
            "Optimizer state".into(),
            format!(
                "{} ({optimizer}: {buffers} value{} per trainable param)",
                bytes(state * elem),
                if buffers == 1 { "" } else { "s" }
            ),
        ),
    ];
    if let Some(decay) = weight_decay(program) {
        facts.push(("Weight decay".into(), decay));
    }
    if !program.states.is_empty() {
        let values: u128 = program.states.iter().map(|s| s.len() as u128).sum();
        let names: Vec<&str> = program.states.iter().map(|s| s.name.as_str()).collect();
        facts.push((
            "Model state".into(),
            format!("{} ({})", count_and_bytes(values, elem), names.join(", ")),
        ));
    }
    if let Some(folded) = folded(program) {
        facts.push(("Folded for predict".into(), folded));
    }
    if let Some(step) = step(program) {
        facts.push(("Step".into(), step));
    }
    match &program.plan {
        Some(plan) => {
            let elements = plan.per_sample as u128 * options.batch as u128 + plan.fixed as u128;
            facts.push((
                format!("Arena at batch {}", group(options.batch as u128)),
                bytes_and_elements(elements, elem),
            ));
            facts.push((
                "  per sample".into(),
                bytes_and_elements(plan.per_sample as u128, elem),
            ));
            facts.push((
                "  fixed".into(),
                bytes_and_elements(plan.fixed as u128, elem),
            ));
        }
        None => facts.push(("Arena".into(), "not planned yet".into())),
    }
    facts.push(("Loss".into(), loss(program)));
    let key_width = facts.iter().map(|(k, _)| width(k) + 1).max().unwrap_or(0);
    for (key, value) in facts {
        let key = format!("{key}:");
        let _ = writeln!(out, "{key:<key_width$}  {value}");
    }
    let _ = writeln!(
        out,
        "\nShapes and bytes per sample leave out the batch; elements are {} ({elem} bytes).",
        options.elem
    );
    out
}

/// Which batch norms `predict` folds into the convolution before them (`bn1 into c1, …`),
/// with the size of the workspace's buffer for the folded weights.
fn folded(program: &Program) -> Option<String> {
    let g = &program.graph;
    let layer = |v: crate::ir::ValueId, suffix: &str| -> String {
        let name = match program.param_of(v) {
            Some(i) => program.params[i].name.as_str(),
            None => g.node(v).name.as_str(),
        };
        name.strip_suffix(suffix).unwrap_or(name).to_string()
    };
    let pairs: Vec<String> = g
        .ids()
        .filter(|id| matches!(g.node(*id).op, crate::ir::Op::FoldWeight { .. }))
        .map(|id| {
            let node = g.node(id);
            format!(
                "{} into {}",
                layer(node.args[1], ".weight"),
                layer(node.args[0], ".weight")
            )
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let size = program.plan.as_ref().map_or(String::new(), |plan| {
        format!(
            " ({} elements in the workspace)",
            group(plan.folded as u128)
        )
    });
    Some(format!("{}{size}", pairs.join(", ")))
}

/// Whether the model has a step entry point, with the state it carries per sequence and the
/// layers that carry it, or why it has none; nothing for a model without recurrent layers.
fn step(program: &Program) -> Option<String> {
    match &program.step {
        Ok(step) => {
            // A layer applied to several sequences carries a state for each application.
            let mut layers: Vec<(&str, usize)> = Vec::new();
            for c in &step.carries {
                match layers.iter_mut().find(|(name, _)| *name == c.layer) {
                    Some((_, n)) => *n += 1,
                    None => layers.push((&c.layer, 1)),
                }
            }
            let layers: Vec<String> = layers
                .into_iter()
                .map(|(name, n)| match n {
                    1 => name.to_string(),
                    n => format!("{name} ({n} applications)"),
                })
                .collect();
            let per_sequence = program.plan.as_ref().map_or(String::new(), |plan| {
                format!("{} elements per sequence, ", group(plan.carry as u128))
            });
            let limit = step.positions.map_or(String::new(), |n| {
                if program.attends() {
                    format!("; attention caches the keys and values of up to {n} positions")
                } else {
                    format!("; a position table limits a sequence to {n} positions")
                }
            });
            Some(format!(
                "one position at a time, carrying {per_sequence}from {}{limit}",
                layers.join(", ")
            ))
        }
        Err(why) => (program.is_recurrent() || program.attends()).then(|| format!("none: {why}")),
    }
}

/// Which trainable parameters weight decay reaches, when some are left out by `decay =
/// matrices`: the rule, so that a reader can check it against the model.
fn weight_decay(program: &Program) -> Option<String> {
    let o = &program.optimizer;
    let wd = o.real("weight_decay");
    if wd == 0.0 || !o.decay_matrices_only {
        return None;
    }
    let trainable = program.params.iter().filter(|p| !p.frozen);
    let (decayed, exempt): (Vec<_>, Vec<_>) = trainable.partition(|p| o.decays(&p.shape));
    let count = |ps: &[&crate::ir::Param]| ps.iter().map(|p| p.len() as u128).sum::<u128>();
    Some(format!(
        "{wd} on the {} matrices ({} values); not on the {} vectors ({} values: biases, norms' scales)",
        decayed.len(),
        group(count(&decayed)),
        exempt.len(),
        group(count(&exempt)),
    ))
}

/// How many values of optimizer state each trainable parameter element carries.
fn optimizer_state(optimizer: &Optimizer) -> (&'static str, usize) {
    (optimizer.kind.name(), optimizer.state_per_param())
}

fn elem_bytes(elem: Elem) -> u128 {
    match elem {
        Elem::F32 => 4,
        Elem::F64 => 8,
    }
}

struct Row {
    name: String,
    kind: String,
    shape: String,
    params: usize,
    bytes: u128,
}

/// One row per forward node that computes something, in schedule order.
fn rows(program: &Program, elem: u128) -> Vec<Row> {
    let graph = &program.graph;
    let mut rows = Vec::new();
    // A parameter is counted on the row of its first use; a layer applied again (shared
    // weights, a tied output projection) says so instead.
    let mut counted = std::collections::HashSet::new();
    for id in graph.ids() {
        let node = graph.node(id);
        // Values without a batch axis (batch norm's statistics) are not per sample.
        if node.phase != Phase::Forward
            || !node.ty.shape.is_batched()
            || matches!(
                node.op,
                Op::Input(_) | Op::Target(_) | Op::Param(_) | Op::State(_)
            )
        {
            continue;
        }
        // A layer's parameters are its node's arguments, or the arguments of a value computed
        // from parameters alone for it (an LSTM's two biases, added into one).
        let mut params: Vec<usize> = Vec::new();
        for &a in &node.args {
            let arg = graph.node(a);
            let from_params = arg.phase == Phase::Forward && !arg.ty.shape.is_batched();
            let sources = if from_params {
                arg.args.as_slice()
            } else {
                &[]
            };
            params.extend(
                std::iter::once(&a)
                    .chain(sources)
                    .filter_map(|v| program.param_of(*v)),
            );
        }
        params.dedup();
        let name = match params.first() {
            Some(&p) => layer_of(&program.params[p].name).to_string(),
            None => node.name.clone(),
        };
        let shared = !params.is_empty() && params.iter().all(|p| counted.contains(p));
        let new_params = params
            .iter()
            .filter(|&&p| counted.insert(p))
            .map(|&p| program.params[p].len())
            .sum();
        let kind = if shared {
            format!("{} (shared)", kind(node.op))
        } else {
            kind(node.op)
        };
        rows.push(Row {
            name,
            kind,
            shape: per_sample(&node.ty),
            params: new_params,
            bytes: node.ty.shape.elems_per_sample() as u128 * elem,
        });
    }
    rows
}

/// `hidden.weight` → `hidden`.
fn layer_of(param: &str) -> &str {
    param.rsplit_once('.').map_or(param, |(layer, _)| layer)
}

/// The kind column: a fused dense layer by what it does, any other op by its IR name.
fn kind(op: Op) -> String {
    match op {
        Op::Dense {
            act: Act::Identity, ..
        } => "dense".to_string(),
        Op::Dense { act, .. } => format!("dense+{}", act.name()),
        other => other.to_string(),
    }
}

/// A type without its batch dimension: `float[B, 128]` → `[128]`, `label[B]` → `label[]`.
fn per_sample(ty: &Type) -> String {
    let shape = ty.shape.per_sample();
    match ty.dtype {
        DType::Float => shape.to_string(),
        DType::Ids(range) => format!("ids({range}){shape}"),
    }
}

/// `Model: MnistMlp (input image [784], output probs [10])`.
fn header(program: &Program) -> String {
    let mut parts: Vec<String> = program
        .inputs
        .iter()
        .map(|b| format!("input {} {}", b.name, per_sample(program.graph.ty(b.value))))
        .collect();
    for output in &program.outputs {
        parts.push(format!(
            "output {} {}",
            output.name,
            per_sample(program.graph.ty(output.value))
        ));
    }
    format!("Model: {} ({})", program.name, parts.join(", "))
}

/// `loss.sparse_cross_entropy_with_logits(out, label)`: the loss terms as they are computed,
/// after fusion; `none` for a model trained from output gradients.
fn loss(program: &Program) -> String {
    let terms: Vec<String> = program
        .loss_terms
        .iter()
        .map(|t| {
            let node = program.graph.node(*t);
            let args: Vec<&str> = node
                .args
                .iter()
                .map(|a| program.graph.node(*a).name.as_str())
                .collect();
            format!("{}({})", node.op, args.join(", "))
        })
        .collect();
    if terms.is_empty() {
        "none (trained from output gradients)".to_string()
    } else {
        terms.join(" + ")
    }
}

fn line(out: &mut String, cells: &[String; 5], widths: &[usize; 5]) {
    let mut text = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            text.push_str("   ");
        }
        let pad = " ".repeat(w - width(cell));
        // Text left, numbers right.
        if i < 3 {
            text.push_str(cell);
            text.push_str(&pad);
        } else {
            text.push_str(&pad);
            text.push_str(cell);
        }
    }
    let _ = writeln!(out, "{}", text.trim_end());
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `34.5 KiB (8,832 elements)`.
fn bytes_and_elements(count: u128, elem: u128) -> String {
    format!("{} ({} elements)", bytes(count * elem), group(count))
}

fn count_and_bytes(count: u128, elem: u128) -> String {
    format!("{} ({})", group(count), bytes(count * elem))
}

/// `101770` → `101,770`.
fn group(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes for people: `512 B`, `397.5 KiB`, `1.2 MiB`.
fn bytes(n: u128) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: &str = "model Mnist { input x: [784]; target c: class(10);
        let p = x -> dense hidden(128) -> relu -> dense out(10) -> softmax;
        loss = cross_entropy(p, c); optimizer = adam(lr = 1e-3); }";

    fn planned(src: &str) -> Program {
        crate::analyze(src).unwrap().programs.remove(0)
    }

    #[test]
    fn numbers_are_grouped_and_bytes_scaled() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(101_770), "101,770");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(407_080), "397.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn optimizer_state_per_parameter() {
        use crate::ir::{Hyper, OptimizerKind};
        let sgd = |momentum| Optimizer {
            kind: OptimizerKind::Sgd,
            hyper: vec![("momentum", Hyper::Real(momentum))],
            clip_grad_norm: None,
            decay_matrices_only: false,
        };
        assert_eq!(optimizer_state(&sgd(0.0)), ("sgd", 0));
        // The momentum buffer.
        assert_eq!(optimizer_state(&sgd(0.9)), ("sgd", 1));
        let program = planned(MNIST);
        assert_eq!(optimizer_state(&program.optimizer), ("adam", 2));
    }

    #[test]
    fn rows_follow_the_fused_forward_graph() {
        let text = summary(&planned(MNIST), 32);
        assert!(
            text.starts_with("Model: Mnist (input x [784], output p [10])\n"),
            "{text}"
        );
        assert!(text.contains("\nhidden   dense+relu"), "{text}");
        assert!(text.contains("100,480"), "{text}");
        assert!(text.contains("Total params:"), "{text}");
        assert!(
            text.contains("loss.sparse_cross_entropy_with_logits(out, c)"),
            "{text}"
        );
    }

    #[test]
    fn frozen_parameters_keep_no_optimizer_state() {
        let mut program = planned(MNIST);
        program.params[0].frozen = true; // hidden.weight: 100,352 values
        let text = summary(&program, 32);
        assert!(
            text.contains("  frozen:           100,352 (392.0 KiB)\n"),
            "{text}"
        );
        // (101,770 − 100,352) trainable values × 2 × 4 bytes.
        assert!(
            text.contains("Optimizer state:    11.1 KiB (adam"),
            "{text}"
        );
    }

    #[test]
    fn the_arena_scales_with_batch_and_element_size() {
        let program = planned(MNIST);
        let plan = program.plan.clone().unwrap();
        let f64_text = summary_with(
            &program,
            &SummaryOptions {
                batch: 1,
                elem: Elem::F64,
            },
        );
        let expected = format!(
            "Arena at batch 1:  {} ({} elements)",
            bytes((plan.per_sample + plan.fixed) as u128 * 8),
            group((plan.per_sample + plan.fixed) as u128)
        );
        assert!(f64_text.contains(&expected), "{f64_text}");
        assert!(f64_text.contains("f64 (8 bytes)"), "{f64_text}");
    }
}
