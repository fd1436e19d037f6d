//! The 8×8 digits that the `digits` and `digits_cnn` examples share: `data/digits.csv.gz`
//! (kept in the repository), pixel counts scaled into [0, 1], and one fixed 80/20 split.

use nnc::train::data::{csv, CsvOptions, Header};
use nnc::train::Dataset;
use std::error::Error;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");

/// The training and test parts: the same shuffle (seed 0) every run, so that the test fifth is
/// never trained on and both examples score the same images.
pub fn split() -> Result<(Dataset<f32>, Dataset<f32>), Box<dyn Error>> {
    let options = CsvOptions {
        header: Header::Absent,
        label_column: None,
        classes: Some(10),
    };
    let mut all: Dataset<f32> = csv(DATA, &options)?;
    // Pixel counts run from 0 to 16.
    all.scale_inputs(1.0 / 16.0);
    Ok(all.split(0.2, 0))
}
