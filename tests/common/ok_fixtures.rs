// The list of every `ok` fixture with the models it defines, shared by the tests that run all
// of them (`gradcheck.rs`, `interpreter.rs`) through `include!`: adding a fixture is one line
// here, and `assert_every_ok_fixture_listed` fails until it is added.

/// Calls `$callback! { module => "file": [Model, ...], ... }` with every ok fixture.
macro_rules! ok_fixtures {
    ($callback:ident) => {
        $callback! {
            activations => "tests/fixtures/ok/activations.nnc": [Activations],
            attention => "tests/fixtures/ok/attention.nnc": [Attention, Heads, SelfAttention, CausalBlock],
            autoencoder => "tests/fixtures/ok/autoencoder.nnc": [AutoEncoder],
            batch_norm => "tests/fixtures/ok/batch_norm.nnc": [BatchNormMlp, Norm, Channels, Named],
            bce_unfused => "tests/fixtures/ok/bce_unfused.nnc": [BceUnfused],
            carried_state => "tests/fixtures/ok/carried_state.nnc": [
                CarriedLstm, LearnedStartGru, Seq2Seq, RnnCarried, StackedStarts
            ],
            char_mlp => "tests/fixtures/ok/char_mlp.nnc": [CharMlp],
            concat_axes => "tests/fixtures/ok/concat_axes.nnc": [ConcatAxes],
            conv => "tests/fixtures/ok/conv.nnc": [SmallCnn, ConvOptions, Conv1d, ClassMaps, FoldedBn],
            cross_entropy_unfused => "tests/fixtures/ok/cross_entropy_unfused.nnc": [CeUnfused],
            deep_relu => "tests/fixtures/ok/deep_relu.nnc": [Deep],
            gan => "tests/fixtures/ok/gan.nnc": [Generator, Discriminator],
            graph => "tests/fixtures/ok/graph.nnc": [Siamese],
            gru => "tests/fixtures/ok/gru.nnc": [GruClassifier, GruTagger, GruOverLstm],
            iris => "tests/fixtures/ok/iris.nnc": [Iris],
            keras_iris => "tests/fixtures/ok/keras_iris.nnc": [KerasIris],
            keras_mnist => "tests/fixtures/ok/keras_mnist.nnc": [KerasMnist],
            layer_norm => "tests/fixtures/ok/layer_norm.nnc": [LayerNormMlp, LayerNormTagger],
            gpt => "tests/fixtures/ok/gpt.nnc": [TinyGpt],
            lenet => "tests/fixtures/ok/lenet.nnc": [LeNet],
            linear_regression => "tests/fixtures/ok/linear_regression.nnc": [Linear],
            logistic => "tests/fixtures/ok/logistic.nnc": [Logistic],
            lstm => "tests/fixtures/ok/lstm.nnc": [LstmClassifier, StackedLstm, SharedLstm, BiLstm],
            losses => "tests/fixtures/ok/losses.nnc": [
                Mae, BceLogits, BceFromLogits, SoftTargets, SoftProbs, SparseLogits,
                SmoothedProbs, ProbsUnfused
            ],
            mnist_mlp => "tests/fixtures/ok/mnist_mlp.nnc": [MnistMlp],
            multi_label => "tests/fixtures/ok/multi_label.nnc": [MultiLabel],
            no_bias => "tests/fixtures/ok/no_bias.nnc": [NoBias],
            padded => "tests/fixtures/ok/padded.nnc": [PaddedTagger, PaddedLstm, PaddedNll, PaddedClassifier],
            positions => "tests/fixtures/ok/positions.nnc": [Positions],
            residual => "tests/fixtures/ok/residual.nnc": [Residual],
            rnn => "tests/fixtures/ok/rnn.nnc": [RnnClassifier, StackedRnn, BiRnn],
            rust_unfriendly_names => "tests/fixtures/ok/rust_unfriendly_names.nnc": [Type, Try, Flat],
            sequence => "tests/fixtures/ok/sequence.nnc": [TinyLm],
            shared_input_gradient => "tests/fixtures/ok/shared_input_gradient.nnc": [SharedGrad],
            sine_regression => "tests/fixtures/ok/sine_regression.nnc": [Sine],
            softmax_mse => "tests/fixtures/ok/softmax_mse.nnc": [SoftMse],
            stacked_activations => "tests/fixtures/ok/stacked_activations.nnc": [Stacked],
            straight_through => "tests/fixtures/ok/straight_through.nnc": [StraightThrough],
            two_models => "tests/fixtures/ok/two_models.nnc": [Encoder, Classifier],
            two_outputs => "tests/fixtures/ok/two_outputs.nnc": [TwoHeads],
            xor => "tests/fixtures/ok/xor.nnc": [Xor],
        }
    };
}

/// Fails when a file in `tests/fixtures/ok` is missing from `listed`.
fn assert_every_ok_fixture_listed(listed: &[&str]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ok");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = format!(
            "tests/fixtures/ok/{}",
            entry.unwrap().file_name().to_string_lossy()
        );
        assert!(
            listed.contains(&name.as_str()),
            "{name} is not in tests/common/ok_fixtures.rs"
        );
    }
}
