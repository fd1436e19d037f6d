//! The names the generated code claims, in one place: lowering refuses them for the user's
//! inputs, targets and models, and code generation uses them. Keeping both sides here is what
//! lets lowering check a name without depending on code generation.

/// Locals every generated method uses; user names are renamed around them, and inputs and
/// targets (which become method parameters) may not take them.
pub const LOCALS: &[&str] = &[
    "batch",
    "params",
    "grads",
    "arena",
    "ws",
    "rng",
    "inputs",
    "targets",
    "d_outputs",
    "loss",
    "correct",
    "scored",
    "pred",
    "state",
    "mode",
    // The execution context every generated function passes to its kernels.
    "exec",
    // Functions of the generated module, which a local of that name would shadow.
    "forward",
    "commit",
    "total_loss",
];

/// Constants every generated module defines; slot constants are renamed around them.
pub const MODULE_CONSTS: &[&str] = &[
    "PARAM_COUNT",
    "TRAINABLE_COUNT",
    "ARENA_PER_SAMPLE",
    "ARENA_FIXED",
    "STATE_COUNT",
];

/// Rust's keywords, strict and reserved, and the generated module's alias of the runtime.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "gen", "union", "rt",
];

/// Standard items the generated module names, which a model's struct may not shadow.
const STD_ITEMS: &[&str] = &[
    "Self", "Range", "Result", "Option", "Vec", "Box", "String", "Some", "None", "Ok", "Err",
];

/// Whether `name` is a keyword or a local of the generated methods.
pub fn is_reserved(name: &str) -> bool {
    LOCALS.contains(&name) || KEYWORDS.contains(&name)
}

/// Whether `name` can be a model's struct: a type name that no standard item the generated
/// code uses already has.
pub fn is_model_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && !name.contains("__")
        && !STD_ITEMS.contains(&name)
}

/// The workspace struct of model `model`.
pub fn workspace(model: &str) -> String {
    format!("{model}Workspace")
}

/// The parameter of `backward` holding the caller's gradient of output `output`.
pub fn output_grad(output: &str) -> String {
    format!("d_{output}")
}

/// The workspace field (and accessor) holding the gradient with respect to input `input`.
pub fn input_grad(input: &str) -> String {
    format!("grad_{input}")
}
