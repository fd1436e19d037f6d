//! Rust identifiers for the values and parameters of a program, by the mapping of
//! `reserved.rs`: readable (taken from the model's own names), unique within the generated
//! module, never a Rust keyword or one of the generator's own items, and in the case rustc's
//! lints expect. Allocation is linear in the number of names.

use crate::ir::{Binding, ConvGeom, Op, PoolGeom, Program, ValueId};
use crate::reserved::{is_reserved, snake, upper, LOCALS, MODULE_CONSTS};
use std::collections::{HashMap, HashSet};

/// The names chosen for one program.
pub struct Names {
    /// Local variable name per value (snake case); for inputs, targets and output gradients
    /// also the generated methods' parameter name.
    pub local: Vec<String>,
    /// Arena slot constant per value (upper case), for values that live in the arena.
    pub slot: Vec<String>,
    /// Range constant per parameter (upper case).
    pub param: Vec<String>,
    /// Range constant per state tensor (upper case).
    pub state: Vec<String>,
    /// Per input, the workspace field, accessor and local of its gradient buffer
    /// (`grad_<input>`), for inputs that have one.
    pub input_grad: Vec<Option<String>>,
    /// Per output, the parameter of `backward` holding the caller's gradient of it.
    pub output_grad: Vec<String>,
    /// The constant holding each distinct convolution geometry (upper case), named after the
    /// first layer with it: its forward pass and both gradients use the one constant.
    pub conv: Vec<(ConvGeom, String)>,
    /// Likewise for each distinct pooling geometry, named after the first pooling's value.
    pub pool: Vec<(PoolGeom, String)>,
}

impl Names {
    pub fn new(p: &Program) -> Names {
        let mut locals = Taken::new(LOCALS);
        let mut consts = Taken::new(MODULE_CONSTS);
        let param = p
            .params
            .iter()
            .map(|q| consts.claim(upper(&q.name)))
            .collect();
        let state = p
            .states
            .iter()
            .map(|s| consts.claim(upper(&s.name)))
            .collect();
        let n = p.graph.nodes.len();
        let mut local = vec![String::new(); n];
        // Inputs, targets and output gradients are the methods' own parameters, and the
        // input-gradient buffers are workspace fields bound to locals of the same name: they are
        // named first, so that they keep the model's names and no computed value takes one.
        let mut output_grad = vec![String::new(); p.outputs.len()];
        for id in p.graph.ids() {
            let node = p.graph.node(id);
            match node.op {
                // The step's copy of an input is the same parameter of another function.
                Op::Input(i) if p.inputs[i].value != id => {
                    local[id.index()] = local[p.inputs[i].value.index()].clone();
                }
                Op::Input(_) | Op::Target(_) | Op::OutputGrad(_) => {
                    local[id.index()] = locals.claim(snake(&node.name));
                }
                _ => {}
            }
            if let Op::OutputGrad(i) = node.op {
                output_grad[i] = local[id.index()].clone();
            }
        }
        let input_grad = p
            .inputs
            .iter()
            .zip(&p.requires_grad)
            .map(|(b, grad)| {
                grad.then(|| locals.claim(crate::reserved::input_grad(&local[b.value.index()])))
            })
            .collect();
        let mut slot = vec![String::new(); n];
        for id in p.graph.ids() {
            let node = p.graph.node(id);
            // A reshape is a view of its root's storage and goes by the root's names.
            let root = p.storage_root(id);
            if root != id {
                local[id.index()] = local[root.index()].clone();
                slot[id.index()] = slot[root.index()].clone();
                continue;
            }
            if local[id.index()].is_empty() {
                local[id.index()] = locals.claim(snake(&node.name));
            }
            slot[id.index()] = consts.claim(upper(&node.name));
        }
        let (mut conv, mut pool) = (Vec::new(), Vec::new());
        for id in p.graph.ids() {
            let node = p.graph.node(id);
            match node.op {
                Op::Conv { geom, .. } if !conv.iter().any(|(g, _)| *g == geom) => {
                    let layer = p
                        .param_of(node.args[1])
                        .map_or(node.name.as_str(), |i| p.params[i].name.as_str());
                    let layer = layer.strip_suffix(".weight").unwrap_or(layer);
                    conv.push((geom, consts.claim(upper(&format!("{layer}.geometry")))));
                }
                Op::Pool { geom, .. } if !pool.iter().any(|(g, _)| *g == geom) => {
                    pool.push((geom, consts.claim(upper(&format!("{}.window", node.name)))));
                }
                _ => {}
            }
        }
        Names {
            local,
            slot,
            param,
            state,
            input_grad,
            output_grad,
            conv,
            pool,
        }
    }

    /// The constant of convolution geometry `g` (every one has a forward node, named first).
    pub fn conv(&self, g: &ConvGeom) -> &str {
        self.conv
            .iter()
            .find_map(|(geom, name)| (geom == g).then_some(name.as_str()))
            .unwrap_or("")
    }

    /// The constant of pooling geometry `g`.
    pub fn pool(&self, g: &PoolGeom) -> &str {
        self.pool
            .iter()
            .find_map(|(geom, name)| (geom == g).then_some(name.as_str()))
            .unwrap_or("")
    }

    pub fn local(&self, v: ValueId) -> &str {
        &self.local[v.index()]
    }

    pub fn slot(&self, v: ValueId) -> &str {
        &self.slot[v.index()]
    }

    /// Each of `bindings` (inputs or targets) with its Rust name.
    pub fn bound<'b>(&self, bindings: &'b [Binding]) -> Vec<(&str, &'b Binding)> {
        bindings.iter().map(|b| (self.local(b.value), b)).collect()
    }

    /// The gradient buffer of input `i`; only inputs that have one are asked.
    pub fn input_grad(&self, i: usize) -> &str {
        self.input_grad[i]
            .as_deref()
            .expect("only inputs that require a gradient have a gradient buffer")
    }
}

/// The identifiers of one namespace handed out so far, and for each base name the next suffix
/// to try, so that a thousand values called `h` cost a thousand steps rather than half a
/// million.
struct Taken {
    names: HashSet<String>,
    next: HashMap<String, usize>,
}

impl Taken {
    fn new(generated: &[&str]) -> Taken {
        Taken {
            names: generated.iter().map(|s| s.to_string()).collect(),
            next: HashMap::new(),
        }
    }

    /// `base` itself if it is free, else the first free `base_N` for N = 2, 3, ….
    fn claim(&mut self, base: String) -> String {
        let free = |names: &HashSet<String>, c: &str| !is_reserved(c) && !names.contains(c);
        let name = if free(&self.names, &base) {
            base
        } else {
            let n = self.next.entry(base.clone()).or_insert(2);
            loop {
                let candidate = format!("{base}_{n}");
                *n += 1;
                if free(&self.names, &candidate) {
                    break candidate;
                }
            }
        };
        self.names.insert(name.clone());
        name
    }
}
