//! Rust identifiers for the values and parameters of a program: readable (taken from the
//! model's own names), unique within the generated module, and never a Rust keyword or one of
//! the generator's own locals.

use crate::ir::{Op, Program, ValueId};
use crate::reserved::{is_reserved, LOCALS, MODULE_CONSTS};
use std::collections::HashSet;

/// The names chosen for one program.
pub struct Names {
    /// Local variable name per value (snake case).
    pub local: Vec<String>,
    /// Arena slot constant per value (upper case), for values that live in the arena.
    pub slot: Vec<String>,
    /// Range constant per parameter (upper case).
    pub param: Vec<String>,
    /// Range constant per state tensor (upper case).
    pub state: Vec<String>,
}

impl Names {
    pub fn new(p: &Program) -> Names {
        let mut locals: HashSet<String> = LOCALS.iter().map(|s| s.to_string()).collect();
        let mut consts: HashSet<String> = MODULE_CONSTS.iter().map(|s| s.to_string()).collect();
        let param: Vec<String> = p
            .params
            .iter()
            .map(|q| unique(&mut consts, &q.name.to_uppercase()))
            .collect();
        let state: Vec<String> = p
            .states
            .iter()
            .map(|s| unique(&mut consts, &s.name.to_uppercase()))
            .collect();
        // Inputs, targets and output gradients are the methods' own parameters and keep the
        // user's names (lowering has checked that they are not reserved); they are claimed
        // first, so that no computed value takes one of them.
        let caller = |id: ValueId| {
            matches!(
                p.graph.node(id).op,
                Op::Input(_) | Op::Target(_) | Op::OutputGrad(_)
            )
        };
        for id in p.graph.ids().filter(|id| caller(*id)) {
            locals.insert(p.graph.node(id).name.clone());
        }
        let mut local: Vec<String> = Vec::new();
        let mut slot: Vec<String> = Vec::new();
        for id in p.graph.ids() {
            let node = p.graph.node(id);
            // A reshape is a view of its root's storage and goes by the root's names.
            let root = p.storage_root(id);
            if root != id {
                local.push(local[root.index()].clone());
                slot.push(slot[root.index()].clone());
                continue;
            }
            let base = if caller(id) {
                node.name.clone()
            } else {
                unique(&mut locals, &node.name)
            };
            local.push(base);
            slot.push(unique(&mut consts, &node.name.to_uppercase()));
        }
        Names {
            local,
            slot,
            param,
            state,
        }
    }

    pub fn local(&self, v: ValueId) -> &str {
        &self.local[v.index()]
    }

    pub fn slot(&self, v: ValueId) -> &str {
        &self.slot[v.index()]
    }
}

fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'v');
    }
    s
}

fn unique(taken: &mut HashSet<String>, name: &str) -> String {
    let base = sanitize(name);
    let mut candidate = base.clone();
    let mut n = 2;
    while is_reserved(&candidate) || taken.contains(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}
