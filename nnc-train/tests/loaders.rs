//! Tests of the data loaders (CSV, IDX and MNIST, character text) on small files written at
//! run time, every error path included, and on the real datasets when they are present.
//! `csv_regression` and `next_char_dataset` are tested in their modules' unit tests.

use flate2::write::GzEncoder;
use flate2::Compression;
use nnc_train::data::{csv, idx, mnist, text_file, CsvOptions, Header, Split, Vocab};
use nnc_train::{Column, Error};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory of its own for one test under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("nnc-train-loaders-{}-{test}", std::process::id()));
        // A leftover from an interrupted run would otherwise leak into this one.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `bytes` to `name` in the directory and returns its path.
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An IDX file of type `code` with `dims` and `body`.
fn idx_bytes(code: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn floats(c: &Column<f32>) -> (&[f32], &[usize]) {
    match c {
        Column::Float { values, shape } => (values, shape),
        Column::Ids { .. } => panic!("expected a float column, found ids"),
    }
}

fn labels(c: &Column<f32>) -> (&[u32], usize) {
    match c {
        Column::Ids { ids, range, .. } => (ids, *range),
        Column::Float { .. } => panic!("expected labels, found a float column"),
    }
}

/// The data root shared by the project, if this machine has it.
fn shared(path: &str) -> Option<PathBuf> {
    let p = Path::new("/work/shared/data").join(path);
    p.exists().then_some(p)
}

/// Asserts `err` is a parse error at `line` and `column` whose message names the file and
/// contains every string of `parts`.
fn assert_parse(err: &Error, file: &Path, line: usize, column: usize, parts: &[&str]) {
    match err {
        Error::Parse {
            file: f,
            line: l,
            column: c,
            ..
        } => {
            assert_eq!((f.as_path(), *l, *c), (file, line, column), "{err}");
        }
        other => panic!("expected a parse error, found {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("line {line}, column {column}")),
        "{text}"
    );
    for p in parts {
        assert!(text.contains(p), "`{p}` missing from: {text}");
    }
}

fn assert_format(err: &Error, format: &str, parts: &[&str]) {
    assert!(
        matches!(err, Error::Format { format: f, .. } if *f == format),
        "expected a {format} format error, found {err:?}"
    );
    let text = err.to_string();
    for p in parts {
        assert!(text.contains(p), "`{p}` missing from: {text}");
    }
}

fn assert_data(err: &Error, parts: &[&str]) {
    assert!(
        matches!(err, Error::Data(_)),
        "expected a data error, found {err:?}"
    );
    let text = err.to_string();
    for p in parts {
        assert!(text.contains(p), "`{p}` missing from: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_with_a_detected_header() {
    let dir = TempDir::new("csv_header");
    let path = dir.file("a.csv", "x,y,label\n1,2,0\n3.5, 4 ,1\n\n-5,6e1,2\n");
    let data = csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(data.len(), 3);
    let (x, shape) = floats(&data.inputs[0]);
    assert_eq!(shape, &[2]);
    assert_eq!(x, &[1.0, 2.0, 3.5, 4.0, -5.0, 60.0]);
    assert_eq!(labels(&data.targets[0]), (&[0, 1, 2][..], 3));
}

#[test]
fn csv_without_a_header_is_detected_too() {
    let dir = TempDir::new("csv_no_header");
    let path = dir.file("a.csv", "1,2,0\n3,4,1\n");
    let data = csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(data.len(), 2);
    // A single label value still makes two classes.
    let path = dir.file("b.csv", "1,2,0\n3,4,0\n");
    let data = csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(labels(&data.targets[0]), (&[0, 0][..], 2));
}

#[test]
fn csv_header_present_and_absent_override_detection() {
    let dir = TempDir::new("csv_header_modes");
    // A header of numbers only is taken for data unless it is declared.
    let path = dir.file("numbers.csv", "0,1,2\n1,2,1\n");
    let options = CsvOptions {
        header: Header::Present,
        ..CsvOptions::default()
    };
    assert_eq!(csv(&path, &options).unwrap().len(), 1);
    assert_eq!(csv(&path, &CsvOptions::default()).unwrap().len(), 2);
    // A named header read as data fails at line 1 and suggests Header::Present.
    let path = dir.file("named.csv", "x,y,label\n1,2,0\n");
    let options = CsvOptions {
        header: Header::Absent,
        ..CsvOptions::default()
    };
    let err = csv(&path, &options).unwrap_err();
    assert_parse(
        &err,
        &path,
        1,
        1,
        &["expected a number, found \"x\"", "Header::Present"],
    );
}

#[test]
fn csv_label_column_and_classes() {
    let dir = TempDir::new("csv_label_column");
    let path = dir.file("a.csv", "1,0.5,0.25\n0,1,2\n");
    let options = CsvOptions {
        label_column: Some(0),
        classes: Some(4),
        ..CsvOptions::default()
    };
    let data = csv(&path, &options).unwrap();
    assert_eq!(floats(&data.inputs[0]).0, &[0.5, 0.25, 1.0, 2.0]);
    assert_eq!(labels(&data.targets[0]), (&[1, 0][..], 4));
    // A middle label column keeps the other columns in order.
    let options = CsvOptions {
        label_column: Some(1),
        classes: None,
        ..CsvOptions::default()
    };
    let path = dir.file("b.csv", "7,1,8\n9,2,10\n");
    let data = csv(&path, &options).unwrap();
    assert_eq!(floats(&data.inputs[0]).0, &[7.0, 8.0, 9.0, 10.0]);
    assert_eq!(labels(&data.targets[0]), (&[1, 2][..], 3));
    // A column that does not exist.
    let options = CsvOptions {
        label_column: Some(3),
        ..CsvOptions::default()
    };
    let err = csv(&path, &options).unwrap_err();
    assert_data(&err, &["3 columns", "label column 3"]);
    // Too few classes asked for.
    let options = CsvOptions {
        classes: Some(1),
        ..CsvOptions::default()
    };
    assert_data(&csv(&path, &options).unwrap_err(), &["at least 2 classes"]);
}

#[test]
fn csv_bad_cells_name_file_line_and_column() {
    let dir = TempDir::new("csv_bad_cell");
    let path = dir.file("a.csv", "1,2,0\n3,abc,1\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 2, &["expected a number, found \"abc\""]);

    let path = dir.file("empty_cell.csv", "1,2,0\n3,,1\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 2, &["empty cell"]);

    let path = dir.file("nan.csv", "1,2,0\nNaN,1,1\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 1, &["finite number", "\"NaN\""]);

    let path = dir.file("latin1.csv", b"1,2,0\n3,\xe9,1\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 2, &["not UTF-8"]);

    // A very long cell is cut short in the message.
    let long = "z".repeat(500);
    let path = dir.file("long.csv", format!("1,2,0\n{long},1,1\n"));
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert!(err.to_string().len() < 400, "{err}");
}

#[test]
fn csv_ragged_rows_name_both_counts() {
    let dir = TempDir::new("csv_ragged");
    let path = dir.file("short.csv", "a,b,c\n1,2,0\n3,4\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(
        &err,
        &path,
        3,
        3,
        &["expected 3 fields", "line 1", "found 2"],
    );
    let path = dir.file("long.csv", "1,2,0\n3,4,1,5\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 4, &["expected 3 fields", "found 4"]);
}

#[test]
fn csv_bad_labels() {
    let dir = TempDir::new("csv_bad_label");
    let cases = [
        ("1,2,-1\n", "0 or more"),
        ("1,2,1.5\n", "whole-number"),
        ("1,2,cat\n", "integer class label"),
        ("1,2,inf\n", "integer class label"),
    ];
    for (i, (text, part)) in cases.iter().enumerate() {
        let path = dir.file(&format!("{i}.csv"), format!("1,2,0\n{text}"));
        let err = csv(&path, &CsvOptions::default()).unwrap_err();
        assert_parse(&err, &path, 2, 3, &[part]);
    }
    // 3.0 is a whole number.
    let path = dir.file("whole.csv", "1,2,0\n1,2,3.0\n");
    assert_eq!(
        labels(&csv(&path, &CsvOptions::default()).unwrap().targets[0]).1,
        4
    );
    // A label not below the classes given.
    let path = dir.file("big.csv", "1,2,0\n1,2,3\n");
    let options = CsvOptions {
        classes: Some(3),
        ..CsvOptions::default()
    };
    let err = csv(&path, &options).unwrap_err();
    assert_parse(&err, &path, 2, 3, &["below the 3 classes", "\"3\""]);
    // An implausibly large inferred class count points at the label column.
    let path = dir.file("id.csv", "1,2,0\n1,2,1000000\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_parse(&err, &path, 2, 3, &["label_column"]);
}

#[test]
fn csv_with_an_unclosed_quote_says_so() {
    let dir = TempDir::new("csv_quote");
    let path = dir.file("quote.csv", "x,y,label\n1,\"2,0\n3,4,1\n5,6,0\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_format(&err, "CSV", &["line 2, field 2", "closing `\"`"]);
}

#[test]
fn csv_without_data_rows_is_an_error() {
    let dir = TempDir::new("csv_empty");
    let path = dir.file("empty.csv", "");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_format(&err, "CSV", &["empty file"]);
    let path = dir.file("header.csv", "x,y,label\n");
    let err = csv(&path, &CsvOptions::default()).unwrap_err();
    assert_format(
        &err,
        "CSV",
        &["after the header on line 1", "Header::Absent"],
    );
    let path = dir.file("one_column.csv", "1\n2\n");
    assert_data(
        &csv(&path, &CsvOptions::default()).unwrap_err(),
        &["single column"],
    );
    let err = csv(dir.0.join("missing.csv"), &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn csv_gzipped_whatever_its_name_and_with_a_bom() {
    let dir = TempDir::new("csv_gzip");
    let text = "\u{feff}x,y,label\n1,2,0\n3,4,1\n";
    let plain = csv(dir.file("a.csv", text), &CsvOptions::default()).unwrap();
    let gz = csv(
        dir.file("b.csv", gzip(text.as_bytes())),
        &CsvOptions::default(),
    )
    .unwrap();
    assert_eq!(plain, gz);
    assert_eq!(plain.len(), 2);
    // A damaged stream is a gzip format error, not garbage data.
    let mut bad = gzip(text.as_bytes());
    let n = bad.len();
    bad.truncate(n - 6);
    let err = csv(dir.file("c.csv.gz", bad), &CsvOptions::default()).unwrap_err();
    assert_format(&err, "gzip", &["damaged or cut short"]);
}

#[test]
fn csv_repo_digits() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/digits.csv.gz");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let data = csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(data.len(), 1797);
    let (x, shape) = floats(&data.inputs[0]);
    assert_eq!(shape, &[64]);
    assert!(x.iter().all(|&v| (0.0..=16.0).contains(&v)));
    let (y, classes) = labels(&data.targets[0]);
    assert_eq!(classes, 10);
    assert_eq!(y.iter().filter(|&&l| l == 0).count(), 178);
}

#[test]
fn csv_repo_iris() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/iris.csv");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let data = csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(data.len(), 150);
    assert_eq!(floats(&data.inputs[0]).1, &[4]);
    assert_eq!(labels(&data.targets[0]).1, 3);
}

// ---------------------------------------------------------------------------------------------
// IDX and MNIST

#[test]
fn idx_plain_and_gzipped() {
    let dir = TempDir::new("idx_ok");
    let bytes = idx_bytes(0x08, &[3, 2, 2], &(0..12).collect::<Vec<u8>>());
    let plain = idx(dir.file("a.idx", &bytes)).unwrap();
    assert_eq!(plain.dims, vec![3, 2, 2]);
    assert_eq!(plain.data, (0..12).collect::<Vec<u8>>());
    assert_eq!((plain.count(), plain.item_len()), (3, 4));
    assert_eq!(plain.item(1), Some(&[4, 5, 6, 7][..]));
    assert_eq!(plain.item(3), None);
    // The gzip magic decides, not the name.
    let gz = idx(dir.file("a.idx", gzip(&bytes))).unwrap();
    assert_eq!(plain, gz);
    let one = idx(dir.file("b.gz", idx_bytes(0x08, &[2], &[7, 9]))).unwrap();
    assert_eq!(
        (one.count(), one.item_len(), one.item(1)),
        (2, 1, Some(&[9][..]))
    );
}

#[test]
fn idx_bad_headers() {
    let dir = TempDir::new("idx_header");
    let check = |name: &str, bytes: &[u8], parts: &[&str]| {
        let err = idx(dir.file(name, bytes)).unwrap_err();
        assert_format(&err, "IDX", parts);
        // The same problem inside a gzip stream is found the same way.
        let err = idx(dir.file(&format!("{name}.gz"), gzip(bytes))).unwrap_err();
        assert_format(&err, "IDX", parts);
    };
    check(
        "magic",
        b"<!DOCTYPE html>",
        &["two zero bytes", "3c 21 44 4f", "failed download"],
    );
    check(
        "float",
        &idx_bytes(0x0D, &[2], &[0; 8]),
        &["0x0D", "32-bit float", "0x08"],
    );
    check(
        "unknown",
        &idx_bytes(0x05, &[2], &[0; 2]),
        &["0x05", "not an IDX type"],
    );
    check(
        "ndims0",
        &idx_bytes(0x08, &[], &[]),
        &["1 to 4 dimensions", "found 0"],
    );
    check(
        "ndims5",
        &idx_bytes(0x08, &[1; 5], &[0]),
        &["1 to 4 dimensions", "found 5"],
    );
    check(
        "zero_dim",
        &idx_bytes(0x08, &[3, 0, 2], &[]),
        &["dimension 2 of 3", "be 0"],
    );
    check("empty", &[], &["found only 0 bytes"]);
    check(
        "short_header",
        &[0, 0, 8, 3, 0, 0, 0, 1],
        &["16-byte header", "found only 8"],
    );
    check(
        "overflow",
        &idx_bytes(0x08, &[u32::MAX; 4], &[]),
        &["multiply to more bytes"],
    );
}

#[test]
fn idx_truncated_and_trailing_bodies() {
    let dir = TempDir::new("idx_body");
    for gz in [false, true] {
        let wrap = |b: Vec<u8>| if gz { gzip(&b) } else { b };
        let truncated = wrap(idx_bytes(0x08, &[3, 4], &[1; 10]));
        let err = idx(dir.file("t", truncated)).unwrap_err();
        assert_format(&err, "IDX", &["expected 12 bytes", "found 10", "cut short"]);
        let trailing = wrap(idx_bytes(0x08, &[3, 4], &[1; 15]));
        let err = idx(dir.file("t", trailing)).unwrap_err();
        assert_format(&err, "IDX", &["exactly 12 bytes", "found 3 bytes more"]);
    }
}

#[test]
fn idx_corrupt_gzip() {
    let dir = TempDir::new("idx_gzip");
    let good = gzip(&idx_bytes(0x08, &[100], &(0..100).collect::<Vec<u8>>()));
    // Garbage after the gzip header.
    let mut garbage = good[..10].to_vec();
    garbage.extend_from_slice(&[0xff; 40]);
    let err = idx(dir.file("garbage", garbage)).unwrap_err();
    assert_format(&err, "gzip", &["damaged or cut short", "gzip -t"]);
    // A stream cut short.
    let err = idx(dir.file("cut", &good[..good.len() - 10])).unwrap_err();
    assert_format(&err, "gzip", &["damaged or cut short"]);
    // A flipped byte in the compressed body fails the checksum, or the inflater before it.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    assert!(idx(dir.file("flipped", flipped)).is_err());
    let err = idx(dir.0.join("missing")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

/// Writes MNIST-like files of `count` 2×3 images and `labels` to `dir` under `prefix`.
fn write_mnist(dir: &TempDir, prefix: &str, count: u32, labels: &[u8], gz: bool) {
    let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 51 % 256) as u8).collect();
    let images = idx_bytes(0x08, &[count, 2, 3], &pixels);
    let labels = idx_bytes(0x08, &[labels.len() as u32], labels);
    if gz {
        dir.file(&format!("{prefix}-images-idx3-ubyte.gz"), gzip(&images));
        dir.file(&format!("{prefix}-labels-idx1-ubyte.gz"), gzip(&labels));
    } else {
        dir.file(&format!("{prefix}-images-idx3-ubyte"), images);
        dir.file(&format!("{prefix}-labels-idx1-ubyte"), labels);
    }
}

#[test]
fn mnist_from_small_files() {
    let dir = TempDir::new("mnist_ok");
    write_mnist(&dir, "train", 3, &[5, 0, 9], true);
    write_mnist(&dir, "t10k", 2, &[1, 2], false);
    let train = mnist(&dir.0, Split::Train).unwrap();
    assert_eq!(train.len(), 3);
    let (x, shape) = floats(&train.inputs[0]);
    assert_eq!(shape, &[6]);
    assert_eq!(&x[..6], &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    assert_eq!(labels(&train.targets[0]), (&[5, 0, 9][..], 10));
    let test = mnist(&dir.0, Split::Test).unwrap();
    assert_eq!(labels(&test.targets[0]).0, &[1, 2]);
}

#[test]
fn mnist_inconsistent_files() {
    let dir = TempDir::new("mnist_bad");
    write_mnist(&dir, "train", 3, &[5, 0], false);
    let err = mnist(&dir.0, Split::Train).unwrap_err();
    assert_data(&err, &["3 images", "2 labels", "train-images-idx3-ubyte"]);

    write_mnist(&dir, "train", 2, &[5, 10], false);
    let err = mnist(&dir.0, Split::Train).unwrap_err();
    assert_format(&err, "MNIST labels", &["label 10 for item 1", "0 to 9"]);

    // Images that are not three-dimensional.
    dir.file("t10k-images-idx3-ubyte", idx_bytes(0x08, &[2, 6], &[0; 12]));
    dir.file("t10k-labels-idx1-ubyte", idx_bytes(0x08, &[2], &[0, 1]));
    let err = mnist(&dir.0, Split::Test).unwrap_err();
    assert_format(&err, "MNIST images", &["3 dimensions", "[2, 6]"]);
}

#[test]
fn mnist_missing_files_say_where_to_get_them() {
    let dir = TempDir::new("mnist_missing");
    let err = mnist(&dir.0, Split::Train).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    let text = err.to_string();
    for part in [
        "train-images-idx3-ubyte.gz",
        "`train-images-idx3-ubyte`",
        "https://yann.lecun.com/exdb/mnist/",
        "pass the directory",
    ] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
    // The labels are looked for too, and for the test split under t10k-.
    dir.file("t10k-images-idx3-ubyte", idx_bytes(0x08, &[1, 1, 1], &[0]));
    let text = mnist(&dir.0, Split::Test).unwrap_err().to_string();
    assert!(text.contains("t10k-labels-idx1-ubyte.gz"), "{text}");
    let text = mnist(dir.0.join("nowhere"), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(text.contains("not a directory"), "{text}");
}

#[test]
fn mnist_real_files() {
    let Some(dir) = shared("mnist") else {
        eprintln!("skipped: /work/shared/data/mnist is absent");
        return;
    };
    let test = mnist(&dir, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(floats(&test.inputs[0]).1, &[784]);
    let train = mnist(&dir, Split::Train).unwrap();
    assert_eq!(train.len(), 60_000);
    let (x, _) = floats(&train.inputs[0]);
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let (y, classes) = labels(&train.targets[0]);
    assert_eq!((y[0], classes), (5, 10));
    assert_eq!(y.iter().filter(|&&l| l == 0).count(), 5923);
}

// ---------------------------------------------------------------------------------------------
// Text

#[test]
fn text_files_plain_gzipped_and_with_a_bom() {
    let dir = TempDir::new("text_ok");
    let text = "hello, 世界\nline two\r\n";
    assert_eq!(text_file(dir.file("a.txt", text)).unwrap(), text);
    assert_eq!(
        text_file(dir.file("b.txt", gzip(text.as_bytes()))).unwrap(),
        text
    );
    let bom = format!("\u{feff}{text}");
    assert_eq!(text_file(dir.file("c.txt", bom)).unwrap(), text);
    assert_eq!(text_file(dir.file("empty.txt", "")).unwrap(), "");
    let err = text_file(dir.0.join("missing.txt")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn text_invalid_utf8_names_the_offset() {
    let dir = TempDir::new("text_bad");
    let err = text_file(dir.file("latin1.txt", b"ab\ncd\xe9f")).unwrap_err();
    assert_format(
        &err,
        "UTF-8 text",
        &["byte offset 5", "line 2, column 3", "e9", "re-encode"],
    );
    // A multi-byte character cut off at the end of the file.
    let err = text_file(dir.file("cut.txt", &"世".as_bytes()[..2])).unwrap_err();
    assert_format(
        &err,
        "UTF-8 text",
        &["byte offset 0", "incomplete character"],
    );
}

#[test]
fn vocab_encodes_and_decodes() {
    let v = Vocab::from_text("hello world");
    assert_eq!(v.chars(), &[' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    assert_eq!((v.len(), v.is_empty()), (8, false));
    assert_eq!((v.id('h'), v.id('z')), (Some(3), None));
    assert_eq!((v.char(7), v.char(8)), (Some('w'), None));
    let ids = v.encode("hello").unwrap();
    assert_eq!(ids, vec![3, 2, 4, 4, 5]);
    assert_eq!(v.decode(&ids).unwrap(), "hello");
    // The same characters in another order give the same vocabulary.
    assert_eq!(Vocab::from_text("dlrow olleh"), v);
    assert_eq!(Vocab::from_chars(v.chars().iter().copied()), v);
    assert!(Vocab::from_text("").is_empty());
}

#[test]
fn vocab_errors_and_lossy_encoding() {
    let v = Vocab::from_text("ab\n");
    let err = v.encode("ab\nbaz").unwrap_err();
    assert_data(
        &err,
        &[
            "'z'",
            "U+007A",
            "line 2, column 3",
            "byte offset 5",
            "encode_lossy",
        ],
    );
    assert_eq!(v.encode_lossy("azb?"), vec![1, 2]);
    let err = v.decode(&[0, 3]).unwrap_err();
    assert_data(&err, &["id 3 at position 1", "vocabulary size 3"]);
}

#[test]
fn vocab_counts_code_points_not_bytes() {
    let text = "你好，世界！你好";
    let v = Vocab::from_text(text);
    assert_eq!(v.len(), 6);
    let ids = v.encode(text).unwrap();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids[0], ids[6]);
    assert_eq!(v.decode(&ids).unwrap(), text);
    let err = v.encode("你们").unwrap_err();
    assert_data(&err, &["'们'", "U+4EEC", "column 2", "byte offset 3"]);
}

#[test]
fn tiny_shakespeare() {
    let Some(path) = shared("tinyshakespeare/input.txt") else {
        eprintln!("skipped: /work/shared/data/tinyshakespeare/input.txt is absent");
        return;
    };
    let text = text_file(path).unwrap();
    let v = Vocab::from_text(&text);
    assert_eq!(v.len(), 65);
    let ids = v.encode(&text).unwrap();
    assert_eq!(ids.len(), text.chars().count());
    assert_eq!(
        v.decode(&ids[..20]).unwrap(),
        text.chars().take(20).collect::<String>()
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// Arbitrary bytes, plain and behind gzip and IDX magic numbers, give errors or data but never
/// a panic, from every loader.
#[test]
fn arbitrary_bytes_never_panic() {
    let dir = TempDir::new("fuzz");
    // A fixed xorshift sequence keeps the inputs the same on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"0123456789,.-e\n\r\" abc\xff\xc3";
    for case in 0..300 {
        let len = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if case % 2 == 0 {
                    alphabet[(r % alphabet.len() as u64) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        match case % 5 {
            1 => {
                let mut idx = vec![0, 0, 8, (next() % 6) as u8];
                idx.extend_from_slice(&bytes);
                bytes = idx;
            }
            2 => bytes = gzip(&bytes),
            3 => {
                let mut gz = gzip(&idx_bytes(0x08, &[2, 3], &bytes));
                let cut = (next() as usize) % gz.len();
                gz.truncate(cut.max(2));
                bytes = gz;
            }
            _ => {}
        }
        let path = dir.file("input", &bytes);
        let _ = csv(&path, &CsvOptions::default());
        let _ = csv(
            &path,
            &CsvOptions {
                header: Header::Absent,
                label_column: Some(0),
                classes: Some(3),
            },
        );
        let _ = idx(&path);
        let _ = text_file(&path);
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
            dir.file(name, &bytes);
        }
        let _ = mnist(&dir.0, Split::Train);
    }
}
