//! Parses source text with the pest grammar and builds the [`ast`](super::ast) from the pairs.
//!
//! Syntax errors become one diagnostic naming what was expected and what was found. The tree
//! walk below trusts the grammar's structure; it never indexes into text that pest did not
//! produce, so no input can make it panic.

use super::ast::*;
use crate::diag::{Diagnostic, Diagnostics, Span};
use pest::iterators::{Pair, Pairs};
use pest::Parser as _;

// Shared with the formatter in `fmt`, which walks the same parse tree (`Rule` is generated
// `pub` inside this private module, so it is visible to the crate already).
#[derive(pest_derive::Parser)]
#[grammar = "syntax/nnc.pest"]
pub(crate) struct Grammar;

type P<'a> = Pair<'a, Rule>;

/// How deeply parentheses may nest. The parser and the passes after it recurse over nested
/// expressions, so without a limit a deep enough file would overflow the stack.
const MAX_NESTING: usize = 128;

/// How many `+`, `-` and `*` one statement may hold. Its operators fold into a left-nested tree
/// that lowering, formatting and dropping all walk recursively, so its depth must be bounded
/// like the nesting of parentheses; 256 operands is more than any model writes by hand.
const MAX_OPERATORS: usize = 256;

/// Parses a whole file.
pub fn parse(source: &str) -> Result<File, Diagnostics> {
    check_nesting(source)?;
    let mut pairs = Grammar::parse(Rule::file, source).map_err(|e| recover(source, e))?;
    check_operators(pairs.clone())?;
    let file = pairs.next().map(|p| p.into_inner()).into_iter().flatten();
    let models = file
        .filter(|p| p.as_rule() == Rule::model)
        .map(model)
        .collect();
    Ok(File { models })
}

/// How many syntax errors one run reports. Each costs a parse of the whole file, so the
/// limit bounds the time a broken file takes; past it, later errors are rarely independent.
const MAX_SYNTAX_ERRORS: usize = 20;

/// Reports the syntax error `first` and the independent ones after it. pest stops at the
/// first error, so each later one is found by blanking the text that failed (with spaces, so
/// every offset stays put) and parsing again: the failing statement when the error is inside
/// a model, up to its `;` or the brace that ends the model; or everything up to the next
/// `model` when it is between models. The search stops when blanking would change nothing or
/// the next error is not further on, so one mistake is not reported twice.
fn recover(source: &str, first: pest::error::Error<Rule>) -> Diagnostics {
    let mut diags = syntax_error(source, &first);
    let mut text = source.to_string();
    let mut pos = error_pos(&first);
    while diags.len() < MAX_SYNTAX_ERRORS {
        match resync(&text, pos) {
            Some(Edit::Blank(range)) => {
                let blank: String = text[range.clone()]
                    .chars()
                    .map(|c| match c {
                        '\n' => "\n".to_string(),
                        _ => " ".repeat(c.len_utf8()),
                    })
                    .collect();
                text.replace_range(range, &blank);
            }
            Some(Edit::Close(at)) => text.replace_range(at..at + 1, "}"),
            None => break,
        }
        let Err(e) = Grammar::parse(Rule::file, &text) else {
            break;
        };
        let next = error_pos(&e);
        if next <= pos {
            break;
        }
        diags.extend(syntax_error(&text, &e));
        pos = next;
    }
    diags
}

fn error_pos(e: &pest::error::Error<Rule>) -> usize {
    match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
}

/// How [`recover`] changes the text to parse on past an error; both keep every offset.
enum Edit {
    /// Replace a range with spaces.
    Blank(std::ops::Range<usize>),
    /// Replace the white-space byte at this offset with `}`: the model before it lacks its
    /// closing brace, and the next model starts right after.
    Close(usize),
}

/// The edit that lets parsing go on past an error at `pos` (see [`recover`]), or `None`
/// where no edit would help.
fn resync(text: &str, pos: usize) -> Option<Edit> {
    let tokens: Vec<(usize, u8)> = Code::new(text).collect();
    let mut depth = 0usize;
    let mut start = 0;
    for &(i, b) in tokens.iter().take_while(|(i, _)| *i < pos) {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if matches!(b, b'{' | b'}' | b';') {
            start = i + 1;
        }
    }
    let after = tokens.iter().skip_while(|(i, _)| *i < pos);
    let word_at = |i: usize| {
        text[i..].starts_with("model")
            && (i == 0 || !is_ident_byte(text.as_bytes()[i - 1]))
            && !text
                .as_bytes()
                .get(i + 5)
                .is_some_and(|b| is_ident_byte(*b))
    };
    // A `model` where a statement should be: the model before it was not closed.
    if depth > 0 && word_at(pos) && pos > 0 && text.as_bytes()[pos - 1].is_ascii_whitespace() {
        return Some(Edit::Close(pos - 1));
    }
    let range = if depth == 0 {
        // Between models or in a model's header: from the end of the last model to the next
        // `model` that starts a word at the top level.
        let mut level = 0usize;
        let mut end = text.len();
        for &(i, b) in after {
            match b {
                b'{' => level += 1,
                b'}' => level = level.saturating_sub(1),
                b'm' if level == 0 && i > pos && word_at(i) => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        start..end
    } else {
        // Inside a model: the statement, through its `;`, or up to a brace.
        let end = after
            .clone()
            .find(|(_, b)| matches!(b, b';' | b'{' | b'}'))
            .map_or(text.len(), |&(i, b)| if b == b';' { i + 1 } else { i });
        start..end.max(pos)
    };
    text[range.clone()]
        .chars()
        .any(|c| !c.is_whitespace())
        .then_some(Edit::Blank(range))
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The bytes of a text outside its comments, with their offsets, in order. It stops at a
/// block comment that never ends and records where that comment opened, so that the one
/// scanner serves both the nesting check and syntax recovery.
#[derive(Clone)]
struct Code<'a> {
    text: &'a str,
    at: usize,
    unclosed: Option<usize>,
}

impl<'a> Code<'a> {
    fn new(text: &'a str) -> Code<'a> {
        Code {
            text,
            at: 0,
            unclosed: None,
        }
    }
}

impl Iterator for Code<'_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() {
            let i = self.at;
            if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'/') {
                self.at = self.text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            } else if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                match self.text[i + 2..].find("*/") {
                    Some(n) => self.at = i + n + 4,
                    None => {
                        self.unclosed = Some(i);
                        self.at = bytes.len();
                    }
                }
            } else {
                self.at = i + 1;
                return Some((i, bytes[i]));
            }
        }
        None
    }
}

/// Rejects text whose parentheses nest more than `MAX_NESTING` deep, before pest recurses
/// into them, and a block comment that never ends, which pest would report as a stray `/` far
/// from its cause. Parentheses inside comments do not count.
fn check_nesting(source: &str) -> Result<(), Diagnostics> {
    let mut depth = 0usize;
    let mut code = Code::new(source);
    for (i, b) in code.by_ref() {
        match b {
            b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let d = Diagnostic::error(
                        "E0001",
                        Span::new(i, i + 1),
                        format!("parentheses nest more than {MAX_NESTING} deep"),
                    )
                    .with_span_label("too deep")
                    .with_help("name intermediate values with `let` instead of nesting them");
                    return Err(d.into());
                }
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(i) = code.unclosed {
        let d = Diagnostic::error(
            "E0001",
            Span::new(i, i + 2),
            "this block comment is never closed",
        )
        .with_span_label("opened here")
        .with_help("end it with `*/`; block comments do not nest");
        return Err(d.into());
    }
    Ok(())
}

/// Rejects a `let` with more than `MAX_OPERATORS` operators, before its tree is built. pest's
/// flattened view walks the parse without recursion.
fn check_operators(pairs: Pairs<'_, Rule>) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    // Every statement that can hold an expression: a `let`, and, since call arguments may be
    // expressions, the loss and the optimizer.
    let statements = pairs.flatten().filter(|p| {
        matches!(
            p.as_rule(),
            Rule::let_stmt | Rule::loss_stmt | Rule::optimizer_stmt
        )
    });
    for stmt in statements {
        // The operators of a sum or product are its direct children; a `-` inside a negative
        // argument (`alpha = -0.1`) is not one.
        let mut ops: Vec<P<'_>> = stmt
            .clone()
            .into_inner()
            .flatten()
            .filter(|p| matches!(p.as_rule(), Rule::expr | Rule::product))
            .flat_map(|p| p.into_inner())
            .filter(|p| matches!(p.as_rule(), Rule::plus | Rule::minus | Rule::star))
            .collect();
        ops.sort_by_key(|op| op.as_span().start());
        if let Some(op) = ops.get(MAX_OPERATORS) {
            diags.push(
                Diagnostic::error(
                    "E0001",
                    span(op),
                    format!("this statement has more than {MAX_OPERATORS} `+`, `-` and `*`"),
                )
                .with_span_label("one too many")
                .with_help("split the sum into several `let`s, each adding a part"),
            );
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

fn span(p: &P<'_>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

/// The children of a pair that carry meaning: punctuation and keywords are dropped.
fn parts<'a>(p: P<'a>) -> impl Iterator<Item = P<'a>> {
    p.into_inner().filter(|c| !is_token(c.as_rule()))
}

fn is_token(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::colon
            | Rule::semi
            | Rule::comma
            | Rule::eq
            | Rule::arrow
            | Rule::minus
            | Rule::plus
            | Rule::star
            | Rule::kw_output
            | Rule::kw_model
            | Rule::kw_input
            | Rule::kw_target
            | Rule::kw_class
            | Rule::kw_ids
            | Rule::kw_let
            | Rule::kw_repeat
            | Rule::kw_as
            | Rule::kw_loss
            | Rule::kw_optimizer
            | Rule::EOI
    )
}

fn ident(p: P<'_>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

fn int(p: P<'_>) -> Int {
    Int {
        value: p.as_str().parse().ok(),
        span: span(&p),
    }
}

fn model(p: P<'_>) -> Model {
    let sp = span(&p);
    let mut it = parts(p);
    let name = it.next().map(ident).unwrap_or_else(|| Ident {
        name: String::new(),
        span: sp,
    });
    let items = it.filter_map(item).collect();
    Model {
        name,
        items,
        span: sp,
    }
}

fn item(p: P<'_>) -> Option<Item> {
    let sp = span(&p);
    let rule = p.as_rule();
    let mut it = parts(p);
    Some(match rule {
        Rule::input_decl => {
            let name = ident(it.next()?);
            let shape = shape(it.next()?);
            let mut next = it.next();
            let ids = match &next {
                Some(p) if p.as_rule() == Rule::ids_type => {
                    let ids_span = span(p);
                    let count = int(parts(p.clone()).next()?);
                    next = it.next();
                    Some((count, ids_span))
                }
                _ => None,
            };
            let requires_grad = next.map(|p| span(&p));
            Item::Input(InputDecl {
                name,
                shape,
                ids,
                requires_grad,
                span: sp,
            })
        }
        Rule::target_decl => {
            let name = ident(it.next()?);
            let ty = it.next()?;
            let kind = match (ty.as_rule(), it.next()) {
                (Rule::class_type, _) => TargetKind::Classes {
                    span: span(&ty),
                    count: int(parts(ty).next()?),
                    shape: None,
                },
                (_, Some(class)) => TargetKind::Classes {
                    span: span(&class),
                    count: int(parts(class).next()?),
                    shape: Some(shape(ty)),
                },
                _ => TargetKind::Float(shape(ty)),
            };
            Item::Target(TargetDecl {
                name,
                kind,
                span: sp,
            })
        }
        Rule::let_stmt => {
            let name = ident(it.next()?);
            let value = expr(it.next()?)?;
            Item::Let(Let {
                name,
                value,
                span: sp,
            })
        }
        Rule::repeat_stmt => {
            let count = int(it.next()?);
            let mut name = None;
            let mut body = Vec::new();
            for c in it {
                match c.as_rule() {
                    Rule::ident => name = Some(ident(c)),
                    _ => {
                        if let Some(Item::Let(l)) = item(c) {
                            body.push(l);
                        }
                    }
                }
            }
            Item::Repeat(Repeat {
                count,
                name,
                body,
                span: sp,
            })
        }
        Rule::output_stmt => Item::Output(OutputDecl {
            names: it.map(ident).collect(),
            span: sp,
        }),
        Rule::loss_stmt => Item::Loss(LossDecl {
            terms: it.filter_map(loss_term).collect(),
            span: sp,
        }),
        Rule::optimizer_stmt => Item::Optimizer(call(it.next()?)?),
        _ => return None,
    })
}

fn loss_term(p: P<'_>) -> Option<LossTerm> {
    let sp = span(&p);
    let mut weight = None;
    for c in parts(p) {
        match c.as_rule() {
            Rule::number => weight = Some((c.as_str().to_string(), span(&c))),
            Rule::call => {
                return Some(LossTerm {
                    weight,
                    call: call(c)?,
                    span: sp,
                })
            }
            _ => {}
        }
    }
    None
}

/// An expression: `expr` and `product` fold their operands left to right; `chain` applies its
/// stages to its primary.
fn expr(p: P<'_>) -> Option<Expr> {
    match p.as_rule() {
        Rule::expr | Rule::product => {
            let mut it = p.into_inner();
            let mut lhs = expr(it.next()?)?;
            while let Some(op) = it.next() {
                let bin = match op.as_rule() {
                    Rule::plus => BinOp::Add,
                    Rule::minus => BinOp::Sub,
                    _ => BinOp::Mul,
                };
                let rhs = expr(it.next()?)?;
                let whole = lhs.span().to(rhs.span());
                lhs = Expr::Binary {
                    op: bin,
                    op_span: span(&op),
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                    span: whole,
                };
            }
            Some(lhs)
        }
        Rule::chain => {
            let sp = span(&p);
            let mut it = parts(p);
            let source = expr(it.next()?)?;
            let stages: Vec<Stage> = it.map(stage).collect();
            if stages.is_empty() {
                Some(source)
            } else {
                Some(Expr::Chain {
                    source: Box::new(source),
                    stages,
                    span: sp,
                })
            }
        }
        Rule::primary => {
            let inner = parts(p).next()?;
            expr(inner)
        }
        Rule::call => Some(Expr::Call(call(p)?)),
        Rule::ident => Some(Expr::Name(ident(p))),
        _ => None,
    }
}

fn shape(p: P<'_>) -> ShapeLit {
    let sp = span(&p);
    ShapeLit {
        dims: parts(p).map(int).collect(),
        span: sp,
    }
}

fn stage(p: P<'_>) -> Stage {
    let sp = span(&p);
    let mut kind = None;
    let mut name = None;
    let mut args = None;
    for c in parts(p) {
        match c.as_rule() {
            Rule::ident if kind.is_none() => kind = Some(ident(c)),
            Rule::ident => name = Some(ident(c)),
            Rule::arg_list => args = Some(arg_list(c)),
            _ => {}
        }
    }
    let kind = kind.unwrap_or(Ident {
        name: String::new(),
        span: sp,
    });
    Stage {
        kind,
        name,
        args,
        span: sp,
    }
}

fn call(p: P<'_>) -> Option<Call> {
    let sp = span(&p);
    let mut it = parts(p);
    let func = ident(it.next()?);
    let args = arg_list(it.next()?);
    Some(Call {
        func,
        args,
        span: sp,
    })
}

fn arg_list(p: P<'_>) -> ArgList {
    let sp = span(&p);
    ArgList {
        args: parts(p).filter_map(arg).collect(),
        span: sp,
    }
}

/// A number or a negative number as written.
fn number(p: P<'_>) -> Option<Value> {
    let sp = span(&p);
    let text = if p.as_rule() == Rule::neg_number {
        format!("-{}", parts(p).next()?.as_str())
    } else {
        p.as_str().to_string()
    };
    Some(Value::Number { text, span: sp })
}

fn arg(p: P<'_>) -> Option<Arg> {
    let sp = span(&p);
    let children: Vec<P<'_>> = parts(p).collect();
    let (key, value) = match children.as_slice() {
        [k, v] => (Some(ident(k.clone())), v.clone()),
        [v] => (None, v.clone()),
        _ => return None,
    };
    let value = match value.as_rule() {
        // A bare name stays a name: it may be an option's choice (`relu`, `true`) as well as
        // a value of the model.
        Rule::expr => match expr(value)? {
            Expr::Name(id) => Value::Ident(id),
            e => Value::Expr(Box::new(e)),
        },
        Rule::tuple => Value::Tuple {
            span: span(&value),
            items: parts(value).filter_map(number).collect(),
        },
        _ => number(value)?,
    };
    Some(Arg {
        key,
        value,
        span: sp,
    })
}

/// Turns pest's error into a diagnostic that names the expected tokens in words and quotes
/// what was found instead.
fn syntax_error(source: &str, e: &pest::error::Error<Rule>) -> Diagnostics {
    use pest::error::ErrorVariant;
    let pos = error_pos(e);
    let found = token_at(source, pos);
    let found_text = if found.is_empty() {
        "end of input".to_string()
    } else {
        format!("`{found}`")
    };
    let span = Span::new(pos, pos + found.len());
    let expected = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| describe(*r)).collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let message = match expected.as_slice() {
        [] => format!("unexpected {found_text}"),
        [one] => format!("expected {one}, found {found_text}"),
        [init @ .., last] => format!("expected {} or {last}, found {found_text}", init.join(", ")),
    };
    let mut d = Diagnostic::error("E0001", span, message).with_span_label("unexpected token");
    if expected.contains(&"`;`") {
        d = d.with_help("every statement ends with `;`");
    }
    if expected.contains(&"`}`") && found == "model" {
        d = d.with_help("the model above is not closed: end it with `}` before the next begins");
    }
    if expected.contains(&"`model`") && found == "{" {
        d = d.with_help("a model starts with `model Name {`");
    }
    d.into()
}

/// The token starting at byte `pos`: an identifier or number, or a single other character.
fn token_at(source: &str, pos: usize) -> &str {
    let Some(rest) = source.get(pos..) else {
        return "";
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() || pos >= source.len() {
        return "";
    }
    if rest.starts_with("->") {
        return &source[pos..pos + 2];
    }
    let word = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(rest.len(), |(i, _)| i);
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    &source[pos..pos + len]
}

fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::model | Rule::kw_model => "`model`",
        Rule::input_decl | Rule::kw_input => "`input`",
        Rule::target_decl | Rule::kw_target => "`target`",
        Rule::let_stmt | Rule::kw_let => "`let`",
        Rule::repeat_stmt | Rule::kw_repeat => "`repeat`",
        Rule::kw_as => "`as`",
        Rule::loss_stmt | Rule::kw_loss => "`loss`",
        Rule::optimizer_stmt | Rule::kw_optimizer => "`optimizer`",
        Rule::class_type | Rule::kw_class => "`class(N)`",
        Rule::ids_type | Rule::kw_ids => "`ids(N)`",
        Rule::shape => "a shape such as `[784]`",
        Rule::stage => "a layer or activation",
        Rule::chain | Rule::expr | Rule::product | Rule::primary => "a value",
        Rule::output_stmt | Rule::kw_output => "`output`",
        Rule::requires_grad | Rule::kw_requires_grad => "`requires_grad`",
        Rule::loss_term => "a loss term",
        Rule::plus => "`+`",
        Rule::star => "`*`",
        Rule::call => "a function call such as `mse(p, y)`",
        Rule::arg_list => "`(`",
        Rule::arg => "an argument",
        Rule::tuple => "numbers in parentheses",
        Rule::number | Rule::neg_number => "a number",
        Rule::integer => "an integer",
        Rule::ident => "an identifier",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::colon => "`:`",
        Rule::semi => "`;`",
        Rule::comma => "`,`",
        Rule::eq => "`=`",
        Rule::arrow => "`->`",
        Rule::minus => "`-`",
        Rule::EOI => "end of input",
        Rule::file | Rule::WHITESPACE | Rule::COMMENT => "a model",
        Rule::statement => "a statement",
        Rule::ident_char => "a letter, digit or `_`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_xor_model() {
        let src = "model Xor { input x: [2]; target y: [1];\n let p = x -> dense hidden(8) -> tanh -> dense out(1) -> sigmoid;\n loss = binary_cross_entropy(p, y); optimizer = sgd(lr = 0.5); }";
        let file = parse(src).unwrap();
        assert_eq!(file.models.len(), 1);
        let m = &file.models[0];
        assert_eq!(m.name.name, "Xor");
        assert_eq!(m.items.len(), 5);
        let Item::Let(l) = &m.items[2] else {
            panic!("expected let")
        };
        let Expr::Chain { stages, .. } = &l.value else {
            panic!("expected a chain")
        };
        assert_eq!(stages.len(), 4);
        assert_eq!(stages[0].name.as_ref().unwrap().name, "hidden");
    }

    #[test]
    fn arithmetic_binds_looser_than_chains() {
        let src = "model M { input x: [2]; let a = x -> relu + x * x - (x -> tanh); }";
        let file = parse(src).unwrap();
        let Item::Let(l) = &file.models[0].items[1] else {
            panic!("expected let")
        };
        // ((x -> relu) + (x * x)) - (x -> tanh)
        let Expr::Binary {
            op: BinOp::Sub,
            lhs,
            rhs,
            ..
        } = &l.value
        else {
            panic!("expected a subtraction, got {:?}", l.value)
        };
        assert!(matches!(**rhs, Expr::Chain { .. }));
        let Expr::Binary {
            op: BinOp::Add,
            lhs: a,
            rhs: b,
            ..
        } = &**lhs
        else {
            panic!("expected an addition")
        };
        assert!(matches!(**a, Expr::Chain { .. }));
        assert!(matches!(**b, Expr::Binary { op: BinOp::Mul, .. }));
    }

    #[test]
    fn rust_tokenized_spacing_parses() {
        // What the proc macro reconstructs from token trees: spaces between most tokens.
        let src = "model M { input x : [ 2 ] ; target y : class ( 3 ) ; let p = x -> dense h ( 3 ) -> softmax ; loss = cross_entropy ( p , y ) ; optimizer = adam ( lr = 1e-3 , eps = - 1 ) ; }";
        parse(src).unwrap();
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let src = format!(
            "model M {{ input x: [2]; let p = {}x{}; }}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        let err = parse(&src).unwrap_err();
        assert!(err
            .iter()
            .next()
            .unwrap()
            .message
            .contains("nest more than 128"));
    }

    #[test]
    fn syntax_error_names_expected_token() {
        let err = parse("model M { input x: [2] }").unwrap_err();
        let d = err.iter().next().unwrap();
        assert_eq!(
            d.message,
            "expected `;`, `ids(N)` or `requires_grad`, found `}`"
        );
    }
}

#[cfg(test)]
mod lexical_tests {
    use super::parse;

    const MODEL: &str =
        "model M { input x: [2]; let p = x -> dense d(1); output p; optimizer = sgd(); }";

    #[test]
    fn a_byte_order_mark_is_allowed() {
        assert!(parse(&format!("\u{feff}{MODEL}")).is_ok());
    }

    #[test]
    fn parentheses_in_comments_do_not_count_towards_nesting() {
        let open = "(".repeat(200);
        assert!(parse(&format!("// {open}\n/* {open} */\n{MODEL}")).is_ok());
    }

    #[test]
    fn an_unclosed_block_comment_is_named() {
        let err = parse(&format!("{MODEL}\n/* note")).unwrap_err();
        let d = err.iter().next().unwrap();
        assert_eq!(d.message, "this block comment is never closed");
    }
}
