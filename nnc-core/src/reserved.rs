//! The names the generated code claims, and the one mapping from a model's names to Rust
//! identifiers, in one place: lowering refuses what cannot be mapped (a model name that is not
//! UpperCamelCase, say), and code generation maps everything else. Keeping both sides here is
//! what lets lowering check a name without depending on code generation.
//!
//! The mapping, which every identifier in generated code goes through:
//! - a model `MnistNet` is the struct `MnistNet`, the workspace `MnistNetWorkspace` and the
//!   module `mnist_net` (`fn_` for a model `Fn`, whose module would be the keyword `fn`);
//! - every input, target, value and gradient is a snake_case local ([`snake`]: `H` → `h`,
//!   `None` → `none`), every parameter, state tensor and arena slot an UPPER_CASE constant
//!   ([`upper`]), each made unique with a `_2`, `_3`, … suffix when it would meet a keyword, a
//!   generated item or an earlier name, so that no model the checks accept can make rustc
//!   reject or warn about the generated code.

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
    // The workspace's buffer of batch-norm weights folded into convolutions.
    "folded",
    // The workspace's carried recurrent state, and the capacity its regions are laid out by.
    "carry",
    "capacity",
    // The execution context every generated function passes to its kernels.
    "exec",
    // Functions of the generated module, which a local of that name would shadow.
    "forward",
    "commit",
    "total_loss",
    "fold",
    "infer",
    "step_pass",
];

/// Constants every generated module defines; slot constants are renamed around them.
pub const MODULE_CONSTS: &[&str] = &[
    "PARAM_COUNT",
    "TRAINABLE_COUNT",
    "ARENA_PER_SAMPLE",
    "ARENA_FIXED",
    "STATE_COUNT",
    "SCRATCH_PER_THREAD",
    "FOLDED_COUNT",
    "CARRY_PER_SAMPLE",
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

/// Whether `name` is a keyword, strict or reserved, in every edition the generated code may be
/// compiled in.
pub fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name)
}

/// Why `name` cannot be a model's struct, if it cannot: it must be UpperCamelCase (ASCII
/// letters and digits, starting with an uppercase letter, so that rustc's `non_camel_case_types`
/// stays quiet and the module name derived from it is unique) and must not be a standard item
/// the generated code uses.
pub fn model_name_problem(name: &str) -> Option<&'static str> {
    if !name.starts_with(|c: char| c.is_ascii_uppercase())
        || !name.chars().all(|c| c.is_ascii_alphanumeric())
    {
        Some("write it in UpperCamelCase (letters and digits, starting with an uppercase letter), like `MnistNet`; it becomes the generated struct's name")
    } else if STD_ITEMS.contains(&name) {
        Some("this name belongs to a standard Rust item that the generated code uses; choose another, like `MnistNet`")
    } else {
        None
    }
}

/// The module of model `model` (an UpperCamelCase name): its snake_case form, which is unique
/// because model names have no underscores, with a trailing `_` where that form is a keyword
/// (`Fn` → `fn_`); no other model's module ends in `_`.
pub fn module(model: &str) -> String {
    let mut out = String::new();
    for (i, c) in model.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    if is_keyword(&out) {
        out.push('_');
    }
    out
}

/// The snake_case form of a model's name for a Rust local or method parameter: ASCII letters
/// lowercased, every run of other characters one `_` between words (none at either end), and
/// `v` when nothing is left or it would start with a digit. Several names may share a form;
/// code generation adds suffixes.
pub fn snake(name: &str) -> String {
    words(name, char::to_ascii_lowercase)
}

/// The UPPER_CASE form of a model's name for a Rust constant, by the rules of [`snake`].
pub fn upper(name: &str) -> String {
    words(name, char::to_ascii_uppercase)
}

fn words(name: &str, case: fn(&char) -> char) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(case(&c));
        } else {
            gap = true;
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, case(&'v'));
    }
    out
}

/// The workspace struct of model `model`.
pub fn workspace(model: &str) -> String {
    format!("{model}Workspace")
}

/// The parameter of `backward` holding the caller's gradient of output `output`, before the
/// mapping to a Rust local.
pub fn output_grad(output: &str) -> String {
    format!("d_{output}")
}

/// The workspace field (and accessor) holding the gradient with respect to input `input`, before
/// the mapping to a Rust identifier.
pub fn input_grad(input: &str) -> String {
    format!("grad_{input}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_snake_and_upper_case() {
        for (name, snake_form, upper_form) in [
            ("x", "x", "X"),
            ("H", "h", "H"),
            ("None", "none", "NONE"),
            ("Param_Count", "param_count", "PARAM_COUNT"),
            ("a__b_", "a_b", "A_B"),
            ("_", "v", "V"),
            ("__x", "x", "X"),
        ] {
            assert_eq!(snake(name), snake_form, "snake({name})");
            assert_eq!(upper(name), upper_form, "upper({name})");
        }
    }

    #[test]
    fn modules_are_unique_and_never_keywords() {
        assert_eq!(module("MnistNet"), "mnist_net");
        assert_eq!(module("Fn"), "fn_");
        assert_eq!(module("Try"), "try_");
        assert_eq!(module("Crate"), "crate_");
        assert_ne!(module("AB"), module("Ab"));
        assert!(model_name_problem("A_b").is_some());
        assert!(model_name_problem("mnist").is_some());
        assert!(model_name_problem("Vec").is_some());
        assert!(model_name_problem("Net2").is_none());
    }
}
