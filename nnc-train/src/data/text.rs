//! Character-level text for language models: reading a UTF-8 file, a vocabulary of Unicode
//! code points (not bytes, so Chinese or accented text gets one id per character), and the
//! fixed-window next-character dataset. It does no word or subword tokenisation and no
//! Unicode normalisation: two spellings of the same glyph are two characters.

use super::idx::{hex, read_maybe_gzip};
use super::{Column, Dataset};
use crate::Error;
use std::path::Path;

/// Reads a UTF-8 text file whole, decompressing it first if it starts with the gzip magic
/// bytes (to at most 1 GiB unless `NNC_MAX_DECOMPRESSED` sets another limit; see
/// [`DEFAULT_MAX_DECOMPRESSED`](super::DEFAULT_MAX_DECOMPRESSED)). A leading byte-order mark
/// is dropped, since it is an encoding marker rather than a character of the text; nothing
/// else is changed (line endings stay as they are).
///
/// Bytes that are not valid UTF-8 are an [`Error::Format`] giving their byte offset, line and
/// column, and how to re-encode the file.
pub fn text_file(path: impl AsRef<Path>) -> Result<String, Error> {
    let path = path.as_ref();
    let bytes = read_maybe_gzip(path)?;
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.drain(..'\u{feff}'.len_utf8());
            }
            Ok(text)
        }
        Err(e) => {
            let bytes = e.as_bytes();
            let offset = e.utf8_error().valid_up_to();
            let before = &bytes[..offset];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            // The prefix is valid UTF-8 by definition of `valid_up_to`.
            let column =
                std::str::from_utf8(&before[line_start..]).map_or(0, |s| s.chars().count()) + 1;
            let found = match e.utf8_error().error_len() {
                Some(n) => format!(
                    "the bytes {}, which are not valid UTF-8",
                    hex(&bytes[offset..offset + n])
                ),
                None => format!(
                    "the bytes {}, an incomplete character at the end of the file",
                    hex(&bytes[offset..])
                ),
            };
            Err(Error::Format {
                file: path.to_path_buf(),
                format: "UTF-8 text",
                message: format!(
                    "at byte offset {offset} (line {line}, column {column}) expected UTF-8, \
                     found {found}; re-encode the file as UTF-8, for example with \
                     `iconv -f LATIN1 -t UTF-8` if it is Latin-1"
                ),
            })
        }
    }
}

/// A character vocabulary: the distinct Unicode code points of a text, sorted, with ids
/// `0..len` in that order.
///
/// Sorting (rather than numbering characters as they first appear) makes the ids depend only
/// on the set of characters, so a vocabulary rebuilt from the same text, or from
/// [`chars`](Vocab::chars) saved next to a checkpoint, gives the same ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocab {
    /// The characters, sorted and distinct; a character's id is its index.
    chars: Vec<char>,
}

impl Vocab {
    /// The vocabulary of every distinct character in `text`.
    pub fn from_text(text: &str) -> Vocab {
        Vocab::from_chars(text.chars())
    }

    /// The vocabulary of the given characters, sorted, duplicates dropped; for example the
    /// [`chars`](Vocab::chars) of a saved vocabulary.
    pub fn from_chars(chars: impl IntoIterator<Item = char>) -> Vocab {
        let mut chars: Vec<char> = chars.into_iter().collect();
        chars.sort_unstable();
        chars.dedup();
        Vocab { chars }
    }

    /// The number of characters, which is also the number of classes of a model predicting
    /// them.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary has no characters.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        let i = self.chars.binary_search(&c).ok()?;
        u32::try_from(i).ok()
    }

    /// The character of `id`, if the id is below [`len`](Vocab::len).
    pub fn char(&self, id: u32) -> Option<char> {
        self.chars.get(usize::try_from(id).ok()?).copied()
    }

    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The ids of the characters of `text`; errors at the first character not in the
    /// vocabulary, naming it and its line, column and byte offset.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        let mut ids = Vec::with_capacity(text.len());
        let (mut line, mut column) = (1, 1);
        for (offset, c) in text.char_indices() {
            let Some(id) = self.id(c) else {
                return Err(Error::Data(format!(
                    "character {c:?} (U+{:04X}) at line {line}, column {column} (byte offset \
                     {offset}) is not in the vocabulary of {} characters; build the vocabulary \
                     from text that contains it (say, the training and validation text \
                     together), or use encode_lossy to skip unknown characters",
                    u32::from(c),
                    self.len()
                )));
            };
            ids.push(id);
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Ok(ids)
    }

    /// The ids of the characters of `text` that are in the vocabulary; unknown characters are
    /// skipped. Skipping, rather than mapping them to a reserved "unknown" id, keeps every id a
    /// real character: the vocabulary has no such slot, and a model trained with one would
    /// learn to predict it.
    pub fn encode_lossy(&self, text: &str) -> Vec<u32> {
        text.chars().filter_map(|c| self.id(c)).collect()
    }

    /// The text of `ids`; errors at the first id not below [`len`](Vocab::len).
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        ids.iter()
            .enumerate()
            .map(|(i, &id)| {
                self.char(id).ok_or_else(|| {
                    Error::Data(format!(
                        "id {id} at position {i} is not below the vocabulary size {}; decode \
                         ids with the vocabulary that encoded them (a model's output size must \
                         equal the vocabulary's length)",
                        self.len()
                    ))
                })
            })
            .collect()
    }
}

/// Every id must be below `vocab`, the size the model's ids and classes are declared with.
fn check_ids(ids: &[u32], vocab: usize) -> Result<(), Error> {
    match ids
        .iter()
        .enumerate()
        .find(|(_, &id)| usize::try_from(id).map_or(true, |id| id >= vocab))
    {
        Some((i, id)) => Err(Error::Data(format!(
            "id {id} at position {i} is not below the vocabulary size {vocab}; pass the \
             length of the vocabulary that encoded the text"
        ))),
        None => Ok(()),
    }
}

/// The fixed-window next-character dataset of a language model: for each position `i` from
/// `context` on, the input is the `context` ids before it (oldest first), an
/// [`Column::Ids`] of shape `[context]` for a model input such as `input chars: [8] ids(65);`,
/// and the target is `ids[i]`, one label of `vocab` classes. There are `ids.len() - context`
/// samples, taking `(context + 1) × 4` bytes each. Call [`Column::one_hot`] on the input for a
/// model that takes one-hot floats instead of ids.
///
/// Errors if `context` or `vocab` is 0, if an id is not below `vocab`, or if there are fewer
/// than `context + 1` ids.
pub fn next_char_dataset(ids: &[u32], context: usize, vocab: usize) -> Result<Dataset<f32>, Error> {
    if context == 0 || vocab == 0 {
        return Err(Error::Data(format!(
            "next_char_dataset needs a context of at least 1 character and a vocabulary of at \
             least 1, found context {context} and vocabulary {vocab}"
        )));
    }
    if ids.len() <= context {
        return Err(Error::Data(format!(
            "the text has {} characters, but a context of {context} needs at least {} (the \
             context plus the character to predict); use a longer text or a shorter context",
            ids.len(),
            context.saturating_add(1)
        )));
    }
    check_ids(ids, vocab)?;
    let samples = ids.len() - context;
    let too_big = || {
        Error::Data(format!(
            "{samples} samples of {context} ids do not fit in memory; use a shorter text or a \
             shorter context"
        ))
    };
    let total = samples.checked_mul(context).ok_or_else(too_big)?;
    let mut x: Vec<u32> = Vec::new();
    // A failed allocation becomes an error instead of aborting the process.
    x.try_reserve_exact(total).map_err(|_| too_big())?;
    for window in ids.windows(context).take(samples) {
        x.extend_from_slice(window);
    }
    // Every id was checked against `vocab` above; the windows need no second scan.
    let inputs = Column::Ids {
        ids: x,
        shape: vec![context],
        range: vocab,
    };
    let targets = Column::Ids {
        ids: ids[context..].to_vec(),
        shape: Vec::new(),
        range: vocab,
    };
    Dataset::new(vec![inputs], vec![targets])
}

/// The sequence dataset of a recurrent language model: windows of `steps` ids starting every
/// `stride` ids, each input an [`Column::Ids`] of shape `[steps]` (for a model input such as
/// `input text: [64] ids(65);`) and its target the same window one id later, a label per
/// position (`target next: [64] class(65);`). With `stride = steps` the windows do not overlap
/// and every id is predicted once.
///
/// Errors if `steps`, `stride` or `vocab` is 0, if an id is not below `vocab`, or if there are
/// fewer than `steps + 1` ids.
pub fn next_char_sequences(
    ids: &[u32],
    steps: usize,
    stride: usize,
    vocab: usize,
) -> Result<Dataset<f32>, Error> {
    if steps == 0 || stride == 0 || vocab == 0 {
        return Err(Error::Data(format!(
            "next_char_sequences needs windows of at least 1 step, a stride of at least 1 and a \
             vocabulary of at least 1, found {steps}, {stride} and {vocab}"
        )));
    }
    if ids.len() <= steps {
        return Err(Error::Data(format!(
            "the text has {} characters, but windows of {steps} need at least {} (the window \
             plus the character after it); use a longer text or shorter windows",
            ids.len(),
            steps.saturating_add(1)
        )));
    }
    check_ids(ids, vocab)?;
    let starts: Vec<usize> = (0..ids.len() - steps).step_by(stride).collect();
    let column = |offset: usize| -> Vec<u32> {
        starts
            .iter()
            .flat_map(|&s| ids[s + offset..s + offset + steps].iter().copied())
            .collect()
    };
    let ids_of = |ids: Vec<u32>| Column::Ids {
        ids,
        shape: vec![steps],
        range: vocab,
    };
    Dataset::new(vec![ids_of(column(0))], vec![ids_of(column(1))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_context_ids_predict_the_next_id() {
        let ids = [0, 1, 2, 1, 0];
        let data = next_char_dataset(&ids, 2, 3).unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(
            data.inputs[0],
            Column::ids(vec![0, 1, 1, 2, 2, 1], &[2], 3).unwrap()
        );
        assert_eq!(data.targets[0], Column::labels(vec![2, 1, 0], 3).unwrap());
        // One-hot only where it is asked for.
        let Column::Float { values, shape } = data.inputs[0].one_hot() else {
            panic!("expected float values")
        };
        assert_eq!(shape, &[2, 3]);
        #[rustfmt::skip]
        assert_eq!(&values[..6], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        // The shortest text that works: one sample.
        assert_eq!(next_char_dataset(&ids, 4, 3).unwrap().len(), 1);
    }

    #[test]
    fn next_char_dataset_errors() {
        let err = next_char_dataset(&[0, 1], 2, 2).unwrap_err();
        assert!(err.to_string().contains("has 2 characters"), "{err}");
        assert!(err.to_string().contains("at least 3"), "{err}");
        let err = next_char_dataset(&[0, 1, 5], 1, 3).unwrap_err();
        assert!(err.to_string().contains("id 5 at position 2"), "{err}");
        assert!(next_char_dataset(&[0, 1], 0, 2).is_err());
        assert!(next_char_dataset(&[0, 1], 1, 0).is_err());
        let err = next_char_dataset(&[0; 4], usize::MAX / 2, 4).unwrap_err();
        assert!(err.to_string().contains("has 4 characters"), "{err}");
    }

    #[test]
    fn chinese_text_round_trips() {
        let text = "床前明月光，疑是地上霜。";
        let vocab = Vocab::from_text(text);
        let ids = vocab.encode(text).unwrap();
        assert_eq!(ids.len(), 12);
        let data = next_char_dataset(&ids, 3, vocab.len()).unwrap();
        assert_eq!(data.len(), 9);
        assert_eq!(data.inputs[0].per_sample(), 3);
    }

    #[test]
    fn sequences_are_windows_and_their_next_ids() {
        let ids: Vec<u32> = (0..10).collect();
        let data = next_char_sequences(&ids, 4, 3, 10).unwrap();
        let (Column::Ids { ids: x, .. }, Column::Ids { ids: y, .. }) =
            (&data.inputs[0], &data.targets[0])
        else {
            panic!("id columns");
        };
        // Windows start at 0 and 3; one at 6 would have no id after its last.
        assert_eq!(x, &[0, 1, 2, 3, 3, 4, 5, 6][..]);
        assert_eq!(y, &[1, 2, 3, 4, 4, 5, 6, 7][..]);
        assert!(next_char_sequences(&ids, 10, 1, 10).is_err());
        assert!(next_char_sequences(&ids, 4, 4, 9).is_err());
    }
}
