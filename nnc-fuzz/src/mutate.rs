//! Mutations of nnc source text: byte-level edits, token-level edits and splices of two files.
//! Everything is driven by one seeded generator, so a seed names an input for good. This file
//! does not judge the results; `oracle.rs` does.

/// A small, fast generator (xorshift64*). Quality beyond "well mixed" does not matter here;
/// determinism across platforms and releases does, so no external RNG crate is used.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that neighbouring seeds start far apart and 0 is allowed.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What a token is, as far as mutations care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Space,
    Comment,
    Ident,
    Number,
    Punct,
    Other,
}

/// A token as a byte range of the source.
#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Splits source text into tokens. It never fails: anything it does not know is one `Other`
/// character, so it works on the broken text that mutations produce.
pub fn tokens(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let kind = if b.is_ascii_whitespace() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            Kind::Space
        } else if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(bytes.len(), |n| i + n);
            Kind::Comment
        } else if src[i..].starts_with("/*") {
            i = src[i + 2..].find("*/").map_or(bytes.len(), |n| i + n + 4);
            Kind::Comment
        } else if b.is_ascii_alphabetic() || b == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Ident
        } else if b.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            Kind::Number
        } else if src[i..].starts_with("->") {
            i += 2;
            Kind::Punct
        } else if b.is_ascii_punctuation() {
            i += 1;
            Kind::Punct
        } else {
            i += src[i..].chars().next().map_or(1, char::len_utf8);
            Kind::Other
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// Names chosen to break generated Rust: keywords, prelude items, the generated code's own
/// names, case variants that collide after mapping, and nnc's statement keywords.
pub const HOSTILE_NAMES: &[&str] = &[
    "fn",
    "type",
    "match",
    "mod",
    "impl",
    "loop",
    "use",
    "ref",
    "struct",
    "as",
    "self",
    "Self",
    "crate",
    "super",
    "async",
    "await",
    "dyn",
    "try",
    "union",
    "static",
    "const",
    "move",
    "r",
    "None",
    "Some",
    "Ok",
    "Err",
    "Vec",
    "String",
    "Box",
    "Result",
    "Option",
    "Default",
    "Model",
    "_",
    "__",
    "_1",
    "forward",
    "backward",
    "workspace",
    "exec",
    "rt",
    "params",
    "grads",
    "state",
    "H",
    "HIDDEN",
    "PARAM_COUNT",
    "X",
    "x_2",
    "grad_x",
    "main",
    "std",
    "core",
    "f32",
    "usize",
    "batch",
    "i",
    "n",
    "loss",
    "model",
    "input",
    "target",
    "let",
    "ids",
    "class",
    "output",
    "optimizer",
    "Fn",
    "Type",
    "Try",
    "AB",
    "Crate",
    "T",
];

/// Tokens worth inserting: every kind of punctuation, nnc's layers and keywords, and numbers
/// at the edges of what the compiler accepts.
pub const DICTIONARY: &[&str] = &[
    ";",
    ",",
    ":",
    "=",
    "->",
    "-",
    "+",
    "*",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "/*",
    "*/",
    "//",
    "\n",
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "-1",
    "0.5",
    "1e-3",
    "1e39",
    "1e-45",
    "65536",
    "18446744073709551616",
    "1.",
    "dense",
    "relu",
    "tanh",
    "sigmoid",
    "softmax",
    "log_softmax",
    "dropout",
    "embedding",
    "flatten",
    "reshape",
    "concat",
    "matmul",
    "transpose",
    "permute",
    "mean",
    "sum",
    "layer_norm",
    "batch_norm",
    "gelu",
    "requires_grad",
    "ids",
    "class",
    "mse",
    "cross_entropy",
    "binary_cross_entropy",
    "sgd",
    "adam",
    "lr",
    "axis",
    "out",
    "é",
    "\u{202e}",
    "\u{feff}",
    "\t",
];

/// Applies one to four random mutations to `src`, with `other` available for splices.
pub fn mutate(rng: &mut Rng, src: &str, other: &str) -> String {
    let mut text = src.to_string();
    for _ in 0..1 + rng.below(4) {
        text = match rng.below(12) {
            0 => truncate(rng, &text),
            1 => byte_insert(rng, &text),
            2 => byte_delete(rng, &text),
            3 | 4 => token_replace(rng, &text),
            5 => token_delete(rng, &text),
            6 => token_duplicate(rng, &text),
            7 => token_swap(rng, &text),
            8 => rename_everywhere(rng, &text),
            9 => change_number(rng, &text),
            10 => splice_statement(rng, &text, other),
            _ => splice_tail(rng, &text, other),
        };
    }
    text
}

/// Mutations that keep a file's syntax and usually its meaning: renaming an identifier at all
/// of its uses and changing a number. Accepted results exercise the hand-off to rustc.
pub fn mutate_gently(rng: &mut Rng, src: &str) -> String {
    let mut text = src.to_string();
    for _ in 0..1 + rng.below(3) {
        text = if rng.below(3) == 0 {
            change_number(rng, &text)
        } else {
            rename_everywhere(rng, &text)
        };
    }
    text
}

fn boundary(rng: &mut Rng, src: &str) -> usize {
    let mut at = rng.below(src.len() + 1);
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn splice(src: &str, start: usize, end: usize, with: &str) -> String {
    let mut out = String::with_capacity(src.len() + with.len());
    out.push_str(&src[..start]);
    out.push_str(with);
    out.push_str(&src[end..]);
    out
}

fn truncate(rng: &mut Rng, src: &str) -> String {
    src[..boundary(rng, src)].to_string()
}

fn byte_insert(rng: &mut Rng, src: &str) -> String {
    let at = boundary(rng, src);
    let with = if rng.below(2) == 0 {
        rng.pick(DICTIONARY).to_string()
    } else {
        // Any byte value as a char, so that control characters and Latin-1 appear too.
        char::from(rng.below(256) as u8).to_string()
    };
    splice(src, at, at, &with)
}

fn byte_delete(rng: &mut Rng, src: &str) -> String {
    let start = boundary(rng, src);
    let mut end = (start + 1 + rng.below(8)).min(src.len());
    while !src.is_char_boundary(end) {
        end += 1;
    }
    splice(src, start, end, "")
}

/// The tokens that are not whitespace or comments.
fn solid(src: &str) -> Vec<Token> {
    tokens(src)
        .into_iter()
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment))
        .collect()
}

fn token_replace(rng: &mut Rng, src: &str) -> String {
    let toks = solid(src);
    if toks.is_empty() {
        return byte_insert(rng, src);
    }
    let t = *rng.pick(&toks);
    let with = match rng.below(3) {
        0 => rng.pick(HOSTILE_NAMES).to_string(),
        1 => rng.pick(DICTIONARY).to_string(),
        _ => {
            let u = rng.pick(&toks);
            src[u.start..u.end].to_string()
        }
    };
    splice(src, t.start, t.end, &with)
}

fn token_delete(rng: &mut Rng, src: &str) -> String {
    let toks = solid(src);
    if toks.is_empty() {
        return src.to_string();
    }
    let t = rng.pick(&toks);
    splice(src, t.start, t.end, "")
}

fn token_duplicate(rng: &mut Rng, src: &str) -> String {
    let toks = solid(src);
    if toks.is_empty() {
        return src.to_string();
    }
    let first = rng.below(toks.len());
    let last = (first + rng.below(6)).min(toks.len() - 1);
    let (start, end) = (toks[first].start, toks[last].end);
    splice(src, end, end, &format!(" {}", &src[start..end]))
}

fn token_swap(rng: &mut Rng, src: &str) -> String {
    let toks = solid(src);
    if toks.len() < 2 {
        return src.to_string();
    }
    let a = rng.below(toks.len() - 1);
    let b = a + 1 + rng.below((toks.len() - a - 1).min(8));
    let (ta, tb) = (toks[a], toks[b]);
    let mut out = String::with_capacity(src.len());
    out.push_str(&src[..ta.start]);
    out.push_str(&src[tb.start..tb.end]);
    out.push_str(&src[ta.end..tb.start]);
    out.push_str(&src[ta.start..ta.end]);
    out.push_str(&src[tb.end..]);
    out
}

/// Renames one identifier at every use, to a hostile name or to a variant of itself.
fn rename_everywhere(rng: &mut Rng, src: &str) -> String {
    let toks = tokens(src);
    let idents: Vec<&Token> = toks.iter().filter(|t| t.kind == Kind::Ident).collect();
    if idents.is_empty() {
        return src.to_string();
    }
    let from = {
        let t = rng.pick(&idents);
        &src[t.start..t.end]
    };
    let to = match rng.below(4) {
        0 => from.to_uppercase(),
        1 => format!("{}{from}", &from[..1].to_uppercase()),
        _ => rng.pick(HOSTILE_NAMES).to_string(),
    };
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for t in toks.iter().filter(|t| t.kind == Kind::Ident) {
        if &src[t.start..t.end] == from {
            out.push_str(&src[last..t.start]);
            out.push_str(&to);
            last = t.end;
        }
    }
    out.push_str(&src[last..]);
    out
}

fn change_number(rng: &mut Rng, src: &str) -> String {
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "5",
        "16",
        "100",
        "0.0",
        "0.5",
        "1.5",
        "1e-8",
        "1e30",
        "1e39",
        "3e38",
        "4294967296",
        "99999999999999999999",
    ];
    let toks = solid(src);
    let numbers: Vec<&Token> = toks.iter().filter(|t| t.kind == Kind::Number).collect();
    if numbers.is_empty() {
        return token_replace(rng, src);
    }
    let t = rng.pick(&numbers);
    let with = *rng.pick(NUMBERS);
    splice(src, t.start, t.end, with)
}

/// Copies one statement (a run of tokens ending in `;`) of `other` after a `;` of `src`.
fn splice_statement(rng: &mut Rng, src: &str, other: &str) -> String {
    let ends = |s: &str| -> Vec<usize> {
        solid(s)
            .iter()
            .filter(|t| &s[t.start..t.end] == ";")
            .map(|t| t.end)
            .collect()
    };
    let (here, there) = (ends(src), ends(other));
    if here.is_empty() || there.len() < 2 {
        return splice_tail(rng, src, other);
    }
    let i = rng.below(there.len() - 1);
    let statement = &other[there[i]..there[i + 1]];
    let at = *rng.pick(&here);
    splice(src, at, at, statement)
}

/// A prefix of `src` followed by a suffix of `other`, cut at token boundaries.
fn splice_tail(rng: &mut Rng, src: &str, other: &str) -> String {
    let (a, b) = (tokens(src), tokens(other));
    let cut_a = if a.is_empty() { 0 } else { rng.pick(&a).start };
    let cut_b = if b.is_empty() { 0 } else { rng.pick(&b).start };
    format!("{}{}", &src[..cut_a], &other[cut_b..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_the_source_exactly() {
        let src = "model A { let p = x -> dense h(8); /* c */ } // é\n\u{202e}";
        let toks = tokens(src);
        let mut at = 0;
        for t in &toks {
            assert_eq!(t.start, at);
            at = t.end;
        }
        assert_eq!(at, src.len());
        assert!(toks.iter().any(|t| &src[t.start..t.end] == "->"));
    }

    #[test]
    fn a_seed_names_one_mutant() {
        let src = "model A { input x: [2]; let p = x -> relu; }";
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| mutate(&mut rng, src, src))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn renaming_changes_every_use() {
        let src = "let h = x; let q = h + h;";
        let mut rng = Rng::new(1);
        for _ in 0..40 {
            let out = rename_everywhere(&mut rng, src);
            let idents: Vec<&str> = tokens(&out)
                .iter()
                .filter(|t| t.kind == Kind::Ident)
                .map(|t| &out[t.start..t.end])
                .collect();
            // Renaming keeps the number of identifiers and the punctuation.
            assert_eq!(idents.len(), 7, "{out}");
            assert_eq!(out.matches(';').count(), 2);
        }
    }
}
