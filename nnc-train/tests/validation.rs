//! The public dataset helpers reject bad arguments with an error that says what was wrong,
//! rather than panicking.

use nnc_train::data::Standardizer;
use nnc_train::{Column, Dataset};

fn dataset(samples: usize) -> Dataset<f32> {
    let x = Column::float((0..samples * 2).map(|v| v as f32).collect(), &[2]);
    let y = Column::labels((0..samples as u32).map(|v| v % 2).collect(), 2).unwrap();
    Dataset::new(vec![x], vec![y]).unwrap()
}

#[test]
fn subset_rejects_rows_past_the_end() {
    let data = dataset(3);
    assert_eq!(data.subset(&[2, 0]).unwrap().len(), 2);
    let e = data.subset(&[1, 3]).unwrap_err().to_string();
    assert!(e.contains("row 3") && e.contains("3 samples"), "{e}");
}

#[test]
fn standardizer_needs_data_and_matching_statistics() {
    let empty = dataset(0);
    let e = Standardizer::fit(&empty, 0).unwrap_err().to_string();
    assert!(e.contains("no values"), "{e}");

    let mut data = dataset(4);
    let fitted = Standardizer::fit(&data, 0).unwrap();
    fitted.apply(&mut data, 0).unwrap();
    for bad in [
        Standardizer {
            mean: vec![],
            std: vec![],
        },
        Standardizer {
            mean: vec![0.0; 2],
            std: vec![1.0],
        },
        Standardizer {
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
        },
    ] {
        assert!(bad.apply(&mut data, 0).is_err());
    }
}
