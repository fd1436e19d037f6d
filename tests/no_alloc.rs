//! After construction, a training step, a prediction and a generation step allocate nothing,
//! on one thread or several: a counting global allocator watches a few hundred steps of the MNIST-sized model and
//! of models with integer inputs, embeddings, a label per position, and batch norm's running
//! statistics, with workspaces of 1, 2 and 3 threads (the MNIST model's products are large
//! enough to be split over the workers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

nnc::include_model!("tests/fixtures/ok/mnist_mlp.nnc");

mod keras {
    nnc::include_model!("tests/fixtures/ok/keras_mnist.nnc");
}
mod heads {
    nnc::include_model!("tests/fixtures/ok/two_outputs.nnc");
}
mod gan {
    nnc::include_model!("tests/fixtures/ok/gan.nnc");
}
mod sequence {
    nnc::include_model!("tests/fixtures/ok/sequence.nnc");
}
mod char_mlp {
    nnc::include_model!("tests/fixtures/ok/char_mlp.nnc");
}
mod attention {
    nnc::include_model!("tests/fixtures/ok/attention.nnc");
}
mod positions {
    nnc::include_model!("tests/fixtures/ok/positions.nnc");
}
mod batch_norm {
    nnc::include_model!("tests/fixtures/ok/batch_norm.nnc");
}
mod lenet {
    nnc::include_model!("tests/fixtures/ok/lenet.nnc");
}
mod conv {
    nnc::include_model!("tests/fixtures/ok/conv.nnc");
}
mod lstm {
    nnc::include_model!("tests/fixtures/ok/lstm.nnc");
}
mod gru {
    nnc::include_model!("tests/fixtures/ok/gru.nnc");
}
mod carried {
    nnc::include_model!("tests/fixtures/ok/carried_state.nnc");
}
mod padded {
    nnc::include_model!("tests/fixtures/ok/padded.nnc");
}
mod gpt {
    nnc::include_model!("tests/fixtures/ok/gpt.nnc");
}

/// One test, because the counter is global: tests running in parallel would count each
/// other's allocations.
#[test]
fn training_and_inference_allocate_nothing() {
    for threads in [1, 2, 3] {
        allocation_free_steps(threads);
    }
}

fn allocation_free_steps(threads: usize) {
    let batch = 32;
    let mut model = MnistMlp::new(0);
    let mut ws = model.workspace_with_threads(batch, threads);
    let x: Vec<f32> = (0..batch * 784).map(|i| (i % 17) as f32 / 17.0).collect();
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut single = model.workspace_with_threads(1, threads);
    // A batch large enough for the packed products, which copy operands into per-thread scratch.
    let big = 300;
    let mut big_ws = model.workspace_with_threads(big, threads);
    let big_x: Vec<f32> = (0..big * 784).map(|i| (i % 13) as f32 / 13.0).collect();
    let big_y: Vec<u32> = (0..big as u32).map(|i| i % 10).collect();
    // Dropout, Adam and metrics.
    let mut keras = keras::KerasMnist::new(0);
    let mut keras_ws = keras.workspace_with_threads(batch, threads);
    // Two loss terms, label smoothing, AdamW with gradient clipping.
    let mut heads = heads::TwoHeads::new(0);
    let mut heads_ws = heads.workspace_with_threads(batch, threads);
    let boxes: Vec<f32> = (0..batch * 2).map(|i| i as f32 / 64.0).collect();
    let labels4: Vec<u32> = (0..batch as u32).map(|i| i % 4).collect();
    // Two models trained together: input gradients and backward from given gradients.
    let (mut generator, mut discriminator) = (gan::Generator::new(0), gan::Discriminator::new(1));
    let (mut g_ws, mut d_ws) = (
        generator.workspace_with_threads(batch, threads),
        discriminator.workspace_with_threads(batch, threads),
    );
    let ones = vec![1.0f32; batch];
    // Integer inputs: embeddings, reshapes, cuts along both axes, a label per position.
    let mut lm = sequence::TinyLm::new(0);
    let mut lm_ws = lm.workspace_with_threads(batch, threads);
    let tokens: Vec<u32> = (0..batch as u32 * 6).map(|i| i * 7 % 11).collect();
    let mut chars = char_mlp::CharMlp::new(0);
    let mut chars_ws = chars.workspace_with_threads(batch, threads);
    let context: Vec<u32> = (0..batch as u32 * 8).map(|i| i * 5 % 65).collect();
    // Batched products, permutations, and sums over an axis.
    let mut attend = attention::Heads::new(0);
    let mut attend_ws = attend.workspace_with_threads(batch, threads);
    // State kept across calls: batch norm's running statistics, updated in training.
    let mut normed = batch_norm::BatchNormMlp::new(0);
    let mut normed_ws = normed.workspace_with_threads(batch, threads);
    let labels3: Vec<u32> = (0..batch as u32).map(|i| i % 3).collect();
    // A learned position table broadcast over the batch.
    let mut positioned = positions::Positions::new(0);
    let mut positioned_ws = positioned.workspace_with_threads(batch, threads);
    let mut lenet = lenet::LeNet::new(0);
    let mut lenet_ws = lenet.workspace_with_threads(batch, threads);
    let mut convs = conv::ConvOptions::new(0);
    let mut convs_ws = convs.workspace_with_threads(batch, threads);
    let mut folded = conv::FoldedBn::new(0);
    let mut folded_ws = folded.workspace_with_threads(batch, threads);
    // A recurrent scan and backpropagation through time on per-thread scratch.
    let mut recurrent = lstm::LstmClassifier::new(0);
    let mut recurrent_ws = recurrent.workspace_with_threads(batch, threads);
    let labels2: Vec<u32> = (0..batch as u32).map(|i| i % 2).collect();
    // Truncated backpropagation through time: each step starts from the last one's states.
    let mut carried = carried::CarriedLstm::new(0);
    let mut carried_ws = carried.workspace_with_threads(batch, threads);
    let mut states = vec![0.0f32; 2 * batch * 4];
    // Padded sequences read at each one's last real step.
    let mut classifier = padded::PaddedClassifier::new(0);
    let mut classifier_ws = classifier.workspace_with_threads(batch, threads);
    let last: Vec<u32> = (0..batch as u32).map(|i| i % 6).collect();
    // Generation: one position at a time from the carried state, through stacked layers.
    let tagger = gru::GruTagger::new(0);
    let mut tagger_ws = tagger.workspace_with_threads(batch, threads);
    let ids7: Vec<u32> = (0..batch as u32).map(|i| i % 7).collect();
    let mut stacked = lstm::StackedLstm::new(0);
    let mut stacked_ws = stacked.workspace_with_threads(batch, threads);
    // A GPT: attention, layer norm, tied weights and AdamW with matrices-only decay in training,
    // and generation from the key and value cache.
    let mut gpt = gpt::TinyGpt::new(0);
    let mut gpt_ws = gpt.workspace_with_threads(batch, threads);
    let ids11: Vec<u32> = (0..batch as u32 * 6).map(|i| i % 11).collect();
    let mut cached_ws = gpt.workspace_with_threads(batch, threads);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for step in 0..50 {
        // Odd steps use a partial batch: the batch size varies at run time within the capacity.
        let n = if step % 2 == 0 { batch } else { batch / 2 + 1 };
        model.train_step(&mut ws, &x[..n * 784], &y[..n]).unwrap();
        model.train_step(&mut big_ws, &big_x, &big_y).unwrap();
        model.predict(&mut single, &x[..784]).unwrap();
        keras
            .train_step(&mut keras_ws, &x[..n * 784], &y[..n])
            .unwrap();
        let _ = keras_ws.metrics().accuracy();
        keras
            .evaluate(&mut keras_ws, &x[..n * 784], &y[..n])
            .unwrap();
        heads
            .train_step(&mut heads_ws, &x[..n * 12], &labels4[..n], &boxes[..n * 2])
            .unwrap();
        let fake = generator.forward_train(&mut g_ws, &x[..n * 4]).unwrap();
        discriminator
            .forward_backward(&mut d_ws, fake, &ones[..n])
            .unwrap();
        let d_fake = d_ws.grad_sample();
        generator.backward(&mut g_ws, &x[..n * 4], d_fake).unwrap();
        generator.update_with(&g_ws);
        let (t, p) = (&tokens[..n * 6], &tokens[batch * 6 - n * 6..]);
        lm.train_step(&mut lm_ws, t, p, p).unwrap();
        lm.predict(&mut lm_ws, t, p).unwrap();
        chars
            .train_step(&mut chars_ws, &context[..n * 8], &y[..n])
            .unwrap();
        attend
            .train_step(&mut attend_ws, &x[..n * 32], &x[32..32 + n * 32])
            .unwrap();
        normed
            .train_step(&mut normed_ws, &x[..n * 6], &labels3[..n])
            .unwrap();
        normed.predict(&mut normed_ws, &x[..n * 6]).unwrap();
        positioned
            .train_step(&mut positioned_ws, &tokens[..n * 6], &tokens[..n * 6])
            .unwrap();
        // Convolutions run on per-thread scratch planned with the workspace.
        lenet
            .train_step(&mut lenet_ws, &x[..n * 784], &y[..n])
            .unwrap();
        lenet.predict(&mut lenet_ws, &x[..n * 784]).unwrap();
        convs
            .train_step(&mut convs_ws, &x[..n * 252], &x[..n * 3])
            .unwrap();
        // Batch norm folded into convolutions: every step changes the model, so each
        // prediction computes the folded weights again, in the workspace's own buffer.
        folded
            .train_step(&mut folded_ws, &x[..n * 128], &labels4[..n])
            .unwrap();
        folded.predict(&mut folded_ws, &x[..n * 128]).unwrap();
        recurrent
            .train_step(&mut recurrent_ws, &x[..n * 15], &labels2[..n])
            .unwrap();
        recurrent.predict(&mut recurrent_ws, &x[..n * 15]).unwrap();
        let (h, c) = states.split_at_mut(batch * 4);
        let (xs, ys) = (&x[..n * 15], &x[..n * 10]);
        carried
            .train_step(&mut carried_ws, xs, &h[..n * 4], &c[..n * 4], ys)
            .unwrap();
        let (xs, ids) = (&x[..n * 18], &last[..n]);
        classifier
            .train_step(&mut classifier_ws, xs, ids, &labels3[..n])
            .unwrap();
        let state = |i| <carried::CarriedLstm as nnc::runtime::Model>::output(&carried_ws, i);
        h[..n * 4].copy_from_slice(state(1).unwrap());
        c[..n * 4].copy_from_slice(state(2).unwrap());
        if step % 10 == 0 {
            tagger_ws.reset_sequences();
        }
        tagger.step(&mut tagger_ws, &ids7).unwrap();
        stacked
            .train_step(&mut stacked_ws, &x[..batch * 8], &x[..batch * 12])
            .unwrap();
        stacked.step(&mut stacked_ws, &x[..batch * 2]).unwrap();
        gpt.train_step(&mut gpt_ws, &ids11[..n * 6], &ids11[..n * 6])
            .unwrap();
        if cached_ws.position() == 6 {
            cached_ws.reset_sequences();
        }
        gpt.step(&mut cached_ws, &ids11[..batch]).unwrap();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{} allocations during training on {threads} threads",
        after - before
    );
}
