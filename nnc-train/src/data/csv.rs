//! Loads numeric CSV files, plain or gzip-compressed, into datasets: classification with one
//! integer label column ([`csv()`]) or regression with float target columns ([`csv_regression`]).
//! It does not read text or categorical features, missing values, or delimiters other than
//! the comma: such files need converting to numbers first.

use super::idx::read_maybe_gzip;
use super::{Column, Dataset};
use crate::Error;
use csv::{ByteRecord, ReaderBuilder};
use std::path::Path;

/// Whether the first row of a CSV file names the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Header {
    /// Decide from the first row: it is a header when one of its cells is neither a number nor
    /// empty (so `x,y,label` is a header and `1,2,0` is data). A header made only of numbers,
    /// such as `0,1,2`, is taken for data; use [`Header::Present`] for such files.
    #[default]
    Auto,
    /// The first row is a header and is skipped, whatever it holds.
    Present,
    /// There is no header: the first row is data.
    Absent,
}

/// How [`csv()`] reads a classification file.
#[derive(Clone, Debug, Default)]
pub struct CsvOptions {
    /// Whether the first row is a header (by default it is detected).
    pub header: Header,
    /// The 0-based column that holds the integer class label; `None` means the last column.
    pub label_column: Option<usize>,
    /// The number of classes; `None` means the largest label plus one, and at least 2.
    pub classes: Option<usize>,
}

/// The most classes [`csv()`] infers from the labels on its own. A larger label almost always
/// means that the label column is not the one intended (an identifier, a measurement), and a
/// one-hot encoding of that many classes would exhaust memory; a caller who does mean it says
/// so with [`CsvOptions::classes`].
pub const MAX_INFERRED_CLASSES: usize = 65_536;

/// Loads a classification CSV file: every column but the label becomes the float input of
/// shape `[features]`, in file order, and the label column becomes a [`Column::Labels`]
/// target.
///
/// Cells are numbers with optional surrounding spaces; labels are whole numbers from 0 (`3`
/// and `3.0` both read as class 3). A file starting with the gzip magic bytes is decompressed
/// first, whatever its name, to at most 1 GiB unless `NNC_MAX_DECOMPRESSED` sets another
/// limit (see [`DEFAULT_MAX_DECOMPRESSED`](super::DEFAULT_MAX_DECOMPRESSED)), and a leading
/// UTF-8 byte-order mark is ignored. Empty lines are skipped. Every problem is an error naming the file, the 1-based line and column, what was
/// found and what was expected: a cell that is not a finite number, a row whose number of
/// fields differs from the first row's, a label that is negative, fractional or not below the
/// number of classes, or a file without data rows.
///
/// ```no_run
/// # use nnc_train::data::{csv, CsvOptions};
/// let digits = csv("data/digits.csv.gz", &CsvOptions::default())?;
/// assert_eq!(digits.len(), 1797);
/// # Ok::<(), nnc_train::Error>(())
/// ```
pub fn csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Dataset<f32>, Error> {
    let path = path.as_ref();
    if let Some(classes) = options.classes {
        if classes < 2 {
            return Err(Error::Data(format!(
                "CsvOptions::classes is {classes}, but classification needs at least 2 classes; \
                 set it to the number of classes in `{}`, or to None to count them",
                path.display()
            )));
        }
    }
    let mut x = Vec::new();
    let mut labels: Vec<u32> = Vec::new();
    // The largest label so far, with its line, to report an implausible inferred class count.
    let mut largest: Option<(u32, usize)> = None;
    let mut label_at = 0;
    let table = read_rows(path, options.header, |row| {
        if row.index == 0 {
            if row.width < 2 {
                return Err(Error::Data(format!(
                    "`{}` has a single column, which leaves no features besides the label; \
                     a classification file needs at least one feature column and a label column",
                    path.display()
                )));
            }
            label_at = match options.label_column {
                None => row.width - 1,
                Some(c) if c < row.width => c,
                Some(c) => {
                    return Err(Error::Data(format!(
                        "`{}` has {} columns (0 to {}), so it has no label column {c}; set \
                         CsvOptions::label_column to one of them, or to None for the last column",
                        path.display(),
                        row.width,
                        row.width - 1
                    )))
                }
            };
        }
        for column in 0..row.width {
            if column == label_at {
                let label = row.label(column, options.classes)?;
                if largest.is_none_or(|(l, _)| label > l) {
                    largest = Some((label, row.line));
                }
                labels.push(label);
            } else {
                x.push(row.number(column)?);
            }
        }
        Ok(())
    })?;
    let classes = match (options.classes, largest) {
        (Some(classes), _) => classes,
        (None, Some((label, line))) => {
            let classes = (label as usize).saturating_add(1);
            if classes > MAX_INFERRED_CLASSES {
                return Err(Error::Parse {
                    file: path.to_path_buf(),
                    line,
                    column: label_at + 1,
                    message: format!(
                        "label {label} would make {classes} classes, more than the \
                         {MAX_INFERRED_CLASSES} inferred at most; if this column is not the \
                         label, set CsvOptions::label_column (0-based) to the one that is, and \
                         if it is, set CsvOptions::classes"
                    ),
                });
            }
            classes.max(2)
        }
        (None, None) => 2,
    };
    let features = table.width - 1;
    Dataset::supervised(x, &[features], Column::labels(labels, classes)?)
}

/// Loads a regression CSV file: the last `target_columns` columns become a float target of
/// shape `[target_columns]` and the columns before them the float input of shape
/// `[features]`, both in file order.
///
/// The file is read as in [`csv()`] (gzip detected, header per `header`, every cell a finite
/// number, every row as long as the first), and errors the same way; `target_columns` must
/// leave at least one feature column.
pub fn csv_regression(
    path: impl AsRef<Path>,
    header: Header,
    target_columns: usize,
) -> Result<Dataset<f32>, Error> {
    let path = path.as_ref();
    if target_columns == 0 {
        return Err(Error::Data(format!(
            "csv_regression needs at least one target column for `{}`; pass how many of the \
             last columns are targets (1 for a single value)",
            path.display()
        )));
    }
    let mut x = Vec::new();
    let mut y = Vec::new();
    let table = read_rows(path, header, |row| {
        if row.index == 0 && target_columns >= row.width {
            return Err(Error::Data(format!(
                "`{}` has {} columns, so {target_columns} target columns leave no features; \
                 pass fewer target columns (at most {})",
                path.display(),
                row.width,
                row.width.saturating_sub(1)
            )));
        }
        let features = row.width - target_columns;
        for column in 0..row.width {
            let value = row.number(column)?;
            if column < features {
                x.push(value);
            } else {
                y.push(value);
            }
        }
        Ok(())
    })?;
    let features = table.width - target_columns;
    Dataset::supervised(x, &[features], Column::float(y, &[target_columns]))
}

/// What [`read_rows`] found, once every row has been handed over.
struct Table {
    /// The number of fields of every row.
    width: usize,
}

/// One data row, as handed to the callback of [`read_rows`].
struct Row<'a> {
    /// The file, for error messages.
    file: &'a Path,
    /// The 1-based line on which the row starts.
    line: usize,
    /// The 0-based index of the row among the data rows (the header does not count).
    index: usize,
    /// Whether the row is the first of a file read with [`Header::Absent`], so that an error
    /// in it can suggest that it is a header after all.
    first_of_file: bool,
    /// The number of fields, the same for every row.
    width: usize,
    /// The fields.
    cells: &'a ByteRecord,
}

impl Row<'_> {
    /// An error at `column` (0-based) of this row; `message` says what was expected and found.
    fn error(&self, column: usize, message: String) -> Error {
        // A word in the first row usually means a header that was not expected.
        let hint = if self.first_of_file {
            "; if the first line is a header, read the file with Header::Present"
        } else {
            ""
        };
        Error::Parse {
            file: self.file.to_path_buf(),
            line: self.line,
            column: column + 1,
            message: format!("{message}{hint}"),
        }
    }

    /// The text of `column`, or an error if it is not UTF-8.
    fn text(&self, column: usize, expected: &str) -> Result<&str, Error> {
        let bytes = self.cells.get(column).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| {
            self.error(
                column,
                format!(
                    "expected {expected}, found bytes that are not UTF-8 text ({}); save the \
                     file as UTF-8",
                    shown(&String::from_utf8_lossy(bytes))
                ),
            )
        })
    }

    /// The finite number in `column`.
    fn number(&self, column: usize) -> Result<f32, Error> {
        let text = self.text(column, "a number")?;
        match parse_number(text) {
            Some(v) if v.is_finite() => Ok(v),
            Some(_) => Err(self.error(
                column,
                format!(
                    "expected a finite number, found {}; a NaN or infinite value (or one \
                     beyond ±3.4e38) would spoil training, so fill in or drop it first",
                    shown(text)
                ),
            )),
            None if text.trim().is_empty() => Err(self.error(
                column,
                "expected a number, found an empty cell; fill in or drop missing values first"
                    .to_string(),
            )),
            None => Err(self.error(
                column,
                format!(
                    "expected a number, found {}; every column but the label must hold \
                     numbers, so convert or drop text columns first",
                    shown(text)
                ),
            )),
        }
    }

    /// The class label in `column`: a whole number from 0, below `classes` when given.
    fn label(&self, column: usize, classes: Option<usize>) -> Result<u32, Error> {
        let expected = "an integer class label (0, 1, 2, ...)";
        let text = self.text(column, expected)?;
        let Some(value) = text.trim().parse::<f64>().ok().filter(|v| v.is_finite()) else {
            return Err(self.error(
                column,
                format!(
                    "expected {expected}, found {}; turn class names into integers first, or \
                     set CsvOptions::label_column if the label is another column",
                    shown(text)
                ),
            ));
        };
        if value < 0.0 {
            return Err(self.error(
                column,
                format!(
                    "expected a class label of 0 or more, found {}; labels are class \
                     indices 0, 1, 2, ...",
                    shown(text)
                ),
            ));
        }
        if value.fract() != 0.0 {
            return Err(self.error(
                column,
                format!(
                    "expected a whole-number class label, found {}; if this column is a \
                     continuous target, load the file with csv_regression",
                    shown(text)
                ),
            ));
        }
        if value > f64::from(u32::MAX) {
            return Err(self.error(
                column,
                format!(
                    "expected a class label of at most {}, found {}",
                    u32::MAX,
                    shown(text)
                ),
            ));
        }
        // The checks above make the value a whole number in u32's range.
        let label = value as u32;
        if let Some(classes) = classes {
            if label as usize >= classes {
                return Err(self.error(
                    column,
                    format!(
                        "expected a class label below the {classes} classes of \
                         CsvOptions::classes (0 to {}), found {}; fix the label or raise \
                         CsvOptions::classes",
                        classes - 1,
                        shown(text)
                    ),
                ));
            }
        }
        Ok(label)
    }
}

/// A cell's number, if it is one; surrounding spaces are allowed.
fn parse_number(text: &str) -> Option<f32> {
    text.trim().parse::<f32>().ok()
}

/// A cell's text for a message: quoted and escaped, and cut short when long.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let short: String = text.chars().take(MAX).collect();
        format!("{short:?}...")
    } else {
        format!("{text:?}")
    }
}

/// Reads `path` and hands each data row to `each`, after checking that it has as many fields
/// as the first row; skips the header as `header` says. Errors if there are no data rows.
fn read_rows(
    path: &Path,
    header: Header,
    mut each: impl FnMut(&Row<'_>) -> Result<(), Error>,
) -> Result<Table, Error> {
    let bytes = read_maybe_gzip(path)?;
    // The csv crate keeps a byte-order mark as part of the first cell, which would then not
    // read as a number.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // Flexible so that a ragged row reaches the check below, which says where and how it
    // differs, rather than the csv crate's shorter message.
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = ByteRecord::new();
    // The first row's line and number of fields, which every row must match.
    let mut first: Option<(usize, usize)> = None;
    let mut header_line = None;
    let mut rows = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading from memory into byte records cannot fail today; should a later csv
                // version report something, it still becomes an error rather than a panic.
                return Err(Error::Format {
                    file: path.to_path_buf(),
                    format: "CSV",
                    message: format!("reading stopped after {rows} data rows: {e}"),
                });
            }
        }
        let line = record
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        // A quote that is never closed makes the csv crate read the rest of the file as one
        // cell; no cell of numeric data holds a line break, so one that does is that mistake.
        if let Some(cell) = record.iter().position(|c| c.contains(&b'\n')) {
            return Err(Error::Format {
                file: path.to_path_buf(),
                format: "CSV",
                message: format!(
                    "line {line}, field {}: a quoted cell runs over a line break; a closing `\"` is probably missing",
                    cell + 1
                ),
            });
        }
        let Some((first_line, width)) = first else {
            first = Some((line, record.len()));
            let is_header = match header {
                Header::Present => true,
                Header::Absent => false,
                Header::Auto => record.iter().any(|cell| {
                    std::str::from_utf8(cell).map_or(true, |t| {
                        !t.trim().is_empty() && parse_number(t).is_none_or(|v| !v.is_finite())
                    })
                }),
            };
            if is_header {
                header_line = Some(line);
            } else {
                each(&Row {
                    file: path,
                    line,
                    index: 0,
                    first_of_file: header == Header::Absent,
                    width: record.len(),
                    cells: &record,
                })?;
                rows += 1;
            }
            continue;
        };
        if record.len() != width {
            return Err(Error::Parse {
                file: path.to_path_buf(),
                line,
                column: record.len().min(width) + 1,
                message: format!(
                    "expected {width} fields like the first row (line {first_line}), found {}; \
                     every row needs the same number of comma-separated fields, so look for a \
                     missing or extra comma",
                    record.len()
                ),
            });
        }
        each(&Row {
            file: path,
            line,
            index: rows,
            first_of_file: false,
            width,
            cells: &record,
        })?;
        rows += 1;
    }
    match (first, header_line) {
        (Some((_, width)), _) if rows > 0 => Ok(Table { width }),
        (_, Some(line)) => Err(Error::Format {
            file: path.to_path_buf(),
            format: "CSV",
            message: format!(
                "expected data rows after the header on line {line}, found none; if that line \
                 is data, read the file with Header::Absent"
            ),
        }),
        _ => Err(Error::Format {
            file: path.to_path_buf(),
            format: "CSV",
            message: "expected rows of comma-separated numbers, found an empty file".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a file of its own under the temp dir; the caller removes the dir.
    fn file(test: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("nnc-train-csv-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn regression_targets_are_the_last_columns() {
        let (dir, path) = file("regression", "a,b,c,d\n1,2,3,4\n5,6,7,8\n");
        let data = csv_regression(&path, Header::Auto, 2).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(
            data.inputs[0],
            Column::float(vec![1.0, 2.0, 5.0, 6.0], &[2])
        );
        assert_eq!(
            data.targets[0],
            Column::float(vec![3.0, 4.0, 7.0, 8.0], &[2])
        );
        let err = csv_regression(&path, Header::Auto, 4).unwrap_err();
        assert!(err.to_string().contains("leave no features"), "{err}");
        let err = csv_regression(&path, Header::Auto, 0).unwrap_err();
        assert!(err.to_string().contains("at least one target"), "{err}");
        let err = csv_regression(&path, Header::Absent, 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Parse {
                    line: 1,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn regression_errors_like_classification() {
        let (dir, path) = file("regression_bad", "1,2,3\n4,x,6\n7,8\n");
        let err = csv_regression(&path, Header::Auto, 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Parse {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("found \"x\""), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
