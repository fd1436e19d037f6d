//! The README's main job, run as a test: the Iris example chooses a model by cross-validation
//! and trains it from the repository's own copy of the data, so this never skips.

#[allow(dead_code)]
#[path = "../examples/iris.rs"]
mod iris_example;

#[test]
fn iris_example_learns_the_species() {
    let report = iris_example::run().unwrap();
    let (_, best) = report
        .candidates
        .iter()
        .find(|(name, _)| *name == report.chosen)
        .copied()
        .unwrap();
    // Cross-validated accuracy of the chosen model over the 120 training flowers.
    assert!(best >= 0.95, "cross-validation accuracy {best}");
    // The fixed test fifth holds rows 120 and 135, two virginica flowers that sit inside the
    // versicolor cluster (linear discriminant analysis misclassifies them too), so 28 of 30 is
    // the honest ceiling seen here; anything below 27 would be a real regression.
    let test = report.test;
    assert_eq!(test.scored, 30);
    assert!(test.correct >= 27, "{} of 30 test flowers", test.correct);
}
