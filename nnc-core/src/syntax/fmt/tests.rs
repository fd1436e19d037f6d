//! Each case goes through [`check`], which also proves the result stable and faithful: the same
//! tokens and the same comments, in the same order.

use super::super::parser::{Grammar, Rule};
use super::format;
use pest::Parser as _;
use std::path::{Path, PathBuf};

/// Formats `input`, compares the result with `expected` (a leading newline in `expected` is
/// ignored so that cases read as blocks), then checks it with [`assert_faithful`].
fn check(input: &str, expected: &str) {
    let expected = expected.strip_prefix('\n').unwrap_or(expected);
    let actual = format(input).expect("the input parses");
    assert_eq!(
        actual, expected,
        "\n--- formatted ---\n{actual}--- expected ---\n{expected}"
    );
    assert_faithful(input, &actual);
}

/// Formatting `output` again changes nothing, and it has the tokens and comments of `input`.
fn assert_faithful(input: &str, output: &str) {
    let again = format(output).expect("the formatted text parses");
    assert_eq!(again, output, "formatting twice changed:\n{output}");
    assert_eq!(
        tokens(input),
        tokens(output),
        "tokens changed:\n{input}\n=>\n{output}"
    );
    assert_eq!(
        comments(input),
        comments(output),
        "comments changed:\n{output}"
    );
}

/// The byte ranges of the tokens: the leaves of the parse tree, end of input included.
fn leaves(src: &str) -> Vec<(usize, usize)> {
    let Ok(pairs) = Grammar::parse(Rule::file, src) else {
        return Vec::new();
    };
    pairs
        .flatten()
        .filter(|p| p.clone().into_inner().next().is_none())
        .map(|p| (p.as_span().start(), p.as_span().end()))
        .collect()
}

/// Each token with the rules of every node around it, trailing commas left out: two texts
/// with equal lists have the same syntax tree.
fn tokens(src: &str) -> Vec<(String, Vec<Rule>)> {
    fn walk(
        p: &pest::iterators::Pair<'_, Rule>,
        path: &mut Vec<Rule>,
        out: &mut Vec<(String, Vec<Rule>)>,
    ) {
        path.push(p.as_rule());
        let mut children = p.clone().into_inner().peekable();
        if children.peek().is_none() {
            out.push((p.as_str().to_string(), path.clone()));
        }
        children.for_each(|c| walk(&c, path, out));
        path.pop();
    }
    let mut out = Vec::new();
    let pairs = Grammar::parse(Rule::file, src).expect("parses");
    pairs.for_each(|p| walk(&p, &mut Vec::new(), &mut out));
    let closes = |t: &(String, Vec<Rule>)| matches!(t.0.as_str(), ")" | "]" | ";");
    let trailing_comma = |i: usize| out[i].0 == "," && out.get(i + 1).is_some_and(closes);
    (0..out.len())
        .filter(|&i| !trailing_comma(i))
        .map(|i| out[i].clone())
        .collect()
}

/// The comments of a text in order, found by a scan independent of the formatter's: no token
/// of the language contains a `/`, so every `//` or `/*` starts a comment.
fn comments(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find('/') {
        rest = &rest[i..];
        let len = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |e| e + 2)
        } else {
            1
        };
        out.push(rest[..len].trim_end().replace("\r\n", "\n"));
        rest = &rest[len..];
    }
    out
}

/// Every `.nnc` file of the test fixtures and examples that parses.
fn parsing_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        "tests/fixtures/ok",
        "tests/fixtures/err",
        "examples",
        "examples/models",
    ];
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(root.join(dir)).expect("fixture directory");
        for path in entries.map(|e| e.expect("directory entry").path()) {
            if path.extension().is_some_and(|x| x == "nnc") {
                let src = std::fs::read_to_string(&path).expect("readable fixture");
                if Grammar::parse(Rule::file, &src).is_ok() {
                    files.push((path, src));
                }
            }
        }
    }
    files.sort();
    files
}

#[test]
fn messy_spacing_becomes_canonical() {
    check(
        "model   Xor{input x:[2];target y :class ( 3 ) ;let p=x->dense hidden( 8 )->tanh\n->dense out(3)->softmax;loss=cross_entropy( p,y );optimizer=adam( lr=1e-3,beta2 = 0.99 );}",
        r"
model Xor {
    input x: [2];
    target y: class(3);
    let p = x -> dense hidden(8) -> tanh -> dense out(3) -> softmax;
    loss = cross_entropy(p, y);
    optimizer = adam(lr = 1e-3, beta2 = 0.99);
}
",
    );
}

#[test]
fn aligned_declarations_lose_their_padding() {
    check(
        "model M {\n    input  image: [28,28];\n    target label: class(10);\n}\n\n\n",
        r"
model M {
    input image: [28, 28];
    target label: class(10);
}
",
    );
}

#[test]
fn numbers_are_kept_as_written_and_negative_ones_lose_their_space() {
    check(
        "model M { optimizer = adam(lr = 1E-3, eps = - 1, beta1 = -0.5, weight_decay = 2.5e+2, x = 10.); }",
        r"
model M {
    optimizer = adam(lr = 1E-3, eps = -1, beta1 = -0.5, weight_decay = 2.5e+2, x = 10.);
}
",
    );
}

#[test]
fn trailing_commas_are_dropped() {
    check(
        "model M { input x: [2, 3,]; output p, q,; optimizer = sgd(lr = 0.1,); }",
        r"
model M {
    input x: [2, 3];
    output p, q;
    optimizer = sgd(lr = 0.1);
}
",
    );
}

#[test]
fn graph_form_statements() {
    check(
        "model G { input x: [784] requires_grad; input y:[784];\nlet h=(x->relu)+y*concat(x,y)-(x - y);\nlet k = x -> dense a(4)*(y);\noutput h,k;\nloss=cross_entropy(h,t)+0.5*mse( k,u );}",
        r"
model G {
    input x: [784] requires_grad;
    input y: [784];
    let h = (x -> relu) + y * concat(x, y) - (x - y);
    let k = x -> dense a(4) * (y);
    output h, k;
    loss = cross_entropy(h, t) + 0.5 * mse(k, u);
}
",
    );
}

#[test]
fn long_chain_breaks_before_every_arrow() {
    check(
        "model M { let probabilities = image -> dense hidden(128, relu) -> dropout(0.2) -> dense out(10) -> softmax; }",
        r"
model M {
    let probabilities = image
        -> dense hidden(128, relu)
        -> dropout(0.2)
        -> dense out(10)
        -> softmax;
}
",
    );
}

#[test]
fn chain_of_exactly_100_columns_stays_on_one_line() {
    let line = "    let p = xs -> dense hidden(128) -> relu -> dense second(64) -> relu -> dense out(10) -> sigmoid;";
    assert_eq!(line.len(), 100);
    check(
        &format!("model M {{\n{line}\n}}"),
        &format!("model M {{\n{line}\n}}\n"),
    );
    let longer = line.replace("sigmoid", "softmax_");
    let expected = "model M {\n    let p = xs\n        -> dense hidden(128)\n        -> relu\n        -> dense second(64)\n        -> relu\n        -> dense out(10)\n        -> softmax_;\n}\n";
    check(&format!("model M {{\n{longer}\n}}"), expected);
}

#[test]
fn long_sums_break_before_every_plus() {
    check(
        "model M { loss = cross_entropy(class_probabilities, labels) + 0.5 * mse(reconstruction, pixels) + 0.01 * mse(z, zero); let total = first_branch -> relu + second_branch -> tanh - third_branch * gate_value_of_the_model; }",
        r"
model M {
    loss = cross_entropy(class_probabilities, labels)
        + 0.5 * mse(reconstruction, pixels)
        + 0.01 * mse(z, zero);
    let total = first_branch -> relu
        + second_branch -> tanh
        - third_branch * gate_value_of_the_model;
}
",
    );
}

#[test]
fn long_argument_lists_put_one_argument_per_line() {
    check(
        "model M { optimizer = adam(learning_rate = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0); }",
        r"
model M {
    optimizer = adam(
        learning_rate = 0.001,
        beta1 = 0.9,
        beta2 = 0.999,
        eps = 1e-8,
        weight_decay = 0
    );
}
",
    );
}

#[test]
fn comments_above_and_after_statements() {
    check(
        "// The file.\n/* Block comments\n   keep their lines. */\nmodel M { // the model\n  // inputs first\ninput x: [2]; // two of them\n\n\n\n   /* a label */ target y: [1];   // one\n  let p = x -> sigmoid; /* inline */\n  // the end of the body\n} // done\n// after\n",
        r"
// The file.
/* Block comments
   keep their lines. */
model M { // the model
    // inputs first
    input x: [2]; // two of them

    /* a label */
    target y: [1]; // one
    let p = x -> sigmoid; /* inline */
    // the end of the body
} // done
// after
",
    );
}

#[test]
fn blank_lines_collapse_and_leave_the_edges_of_a_body() {
    check(
        "\n\n// top\n\n\n\nmodel M {\n\n\n    input x: [2];\n\n\n\n    // about y\n\n    target y: [1];\n\n\n}\n\n\n\n// end\n\n\n",
        r"
// top

model M {
    input x: [2];

    // about y

    target y: [1];
}

// end
",
    );
}

#[test]
fn models_are_separated_by_one_blank_line() {
    check(
        "model A { input x: [1]; } model B { input x: [1]; }\n\n\n// C comes last\n\n\nmodel C { input x: [1]; }",
        r"
model A {
    input x: [1];
}

model B {
    input x: [1];
}

// C comes last

model C {
    input x: [1];
}
",
    );
}

#[test]
fn comments_inside_a_chain_break_it() {
    check(
        "model M { let p = x // the input\n -> dense hidden(8) -> relu\n // the head\n -> dense out(1) /* no activation */ -> identity; }",
        r"
model M {
    let p = x // the input
        -> dense hidden(8)
        -> relu
        // the head
        -> dense out(1) /* no activation */
        -> identity;
}
",
    );
}

#[test]
fn comments_inside_argument_lists() {
    check(
        "model M {\n optimizer = adam(lr = 1e-3, // small steps\n beta2 = 0.99 /* slow */, \n // no decay\n weight_decay = 0, // really\n );\n let p = x -> dense a(4 /* units */) -> relu; }",
        r"
model M {
    optimizer = adam(
        lr = 1e-3, // small steps
        beta2 = 0.99 /* slow */,
        // no decay
        weight_decay = 0 // really
    );
    let p = x -> dense a(4 /* units */) -> relu;
}
",
    );
}

#[test]
fn comments_in_odd_places_keep_their_side_of_the_line_break() {
    check(
        "model /* name */ M\n// brace\n{ input x // the name\n : [ /* dims */ 2 ]; let a = // value\n x; optimizer = sgd(eps = - /* sign */ 1, lr = 1\n// before the comma\n,); loss = mse( /* first */ p, y); }",
        r"
model /* name */ M
    // brace
    {
    input x // the name
        : [ /* dims */ 2];
    let a = // value
        x;
    optimizer = sgd(
        eps = - /* sign */ 1,
        lr = 1
        // before the comma
    );
    loss = mse( /* first */ p, y);
}
",
    );
}

#[test]
fn line_ends_and_empty_files() {
    check(
        "model M {\r\n  input x: [1]; // crlf\r\n}\r\n",
        "model M {\n    input x: [1]; // crlf\n}\n",
    );
    check("", "");
    check(" \n\n\t\n", "");
    check(
        "\n\n// only a comment\n\n\n/* and another */",
        "// only a comment\n\n/* and another */\n",
    );
}

#[test]
fn input_that_does_not_parse_is_an_error() {
    for src in [
        "model M { input x: [2] }",
        "model",
        "/* open",
        "model M { let p = x ->; }",
    ] {
        let err = format(src).expect_err(src);
        assert!(err.message().starts_with("syntax error at line 1"), "{err}");
    }
}

#[test]
fn deep_nesting_is_formatted_or_refused_without_a_crash() {
    let nested = |n: usize| format!("model M {{ let a = {}x{}; }}", "(".repeat(n), ")".repeat(n));
    let shallow = nested(100);
    let formatted = format(&shallow).expect("100 levels format");
    assert_faithful(&shallow, &formatted);
    assert!(format(&nested(2000)).is_err());
}

#[test]
fn the_readme_example_is_formatted() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammar/README.md");
    let readme = std::fs::read_to_string(readme).expect("grammar/README.md");
    let section = readme
        .split("## Formatting")
        .nth(1)
        .expect("a Formatting section");
    let example = section.split("```\n").nth(1).expect("an example block");
    check(example, example);
}

#[test]
fn fixtures_are_stable_and_faithful() {
    let files = parsing_files();
    assert!(files.len() >= 40, "only {} fixtures found", files.len());
    for (path, src) in files {
        let formatted = format(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_faithful(&src, &formatted);
    }
}

/// Every fixture rewritten with the same trivia in every gap between tokens: comments of each
/// kind in every position, everything on one line, or blank lines everywhere.
#[test]
fn property_tokens_and_comments_survive_any_trivia() {
    let gaps: [&dyn Fn(usize) -> String; 7] = [
        &|_| " ".to_string(),
        &|_| "\n\n\n".to_string(),
        &|i| format!(" /*c{i}*/ "),
        &|i| format!(" //c{i}\n"),
        &|i| format!("\n//c{i}\n"),
        &|i| format!("\n\n/*c{i}\n  more*/\n"),
        &|i| format!("/*a{i}*/ //b{i}\n\n /*c{i}*/\n"),
    ];
    for (path, src) in parsing_files() {
        let ranges = leaves(&src);
        for gap in gaps {
            // The last token is the empty end of input, so the last gap ends the file.
            let mut variant = String::new();
            for (n, &(start, end)) in ranges.iter().enumerate() {
                variant.push_str(&gap(n));
                variant.push_str(&src[start..end]);
            }
            let formatted =
                format(&variant).unwrap_or_else(|e| panic!("{}: {e}\n{variant}", path.display()));
            assert_faithful(&variant, &formatted);
        }
    }
}

#[test]
fn a_repeat_block_is_laid_out_like_a_model_body() {
    check(
        "model R {\n  input x: [4, 8];  target y: [4, 8];\n  let h = x -> dense a(8);\n  // blocks\n  repeat 2 as   b {   // trailing\n     // inside\n     let h = h -> dense f(8) ;\n\n\n     let h = h+h;\n  // end of body\n  }\n  loss = mse(h, y); optimizer = sgd(lr = 0.1);\n}\n",
        r#"
model R {
    input x: [4, 8];
    target y: [4, 8];
    let h = x -> dense a(8);
    // blocks
    repeat 2 as b { // trailing
        // inside
        let h = h -> dense f(8);

        let h = h + h;
        // end of body
    }
    loss = mse(h, y);
    optimizer = sgd(lr = 0.1);
}
"#,
    );
    check(
        "model R { input x: [2]; let h = x; repeat 3 { } output h; optimizer = sgd(lr = 0.1); }",
        r#"
model R {
    input x: [2];
    let h = x;
    repeat 3 {
    }
    output h;
    optimizer = sgd(lr = 0.1);
}
"#,
    );
}
