//! Whole models on several threads: training on 2, 3 and 7 threads gives the same bits as on
//! one (every threaded kernel splits an output dimension, never a sum, see ARCHITECTURE.md,
//! "Threads"), the same run twice gives the same bits, and dropping a workspace joins its
//! worker threads.

use nnc::runtime::Model;

nnc::include_model!("tests/fixtures/ok/mnist_mlp.nnc");

mod keras {
    nnc::include_model!("tests/fixtures/ok/keras_mnist.nnc");
}
mod attention {
    nnc::include_model!("tests/fixtures/ok/attention.nnc");
}
mod lenet {
    nnc::include_model!("tests/fixtures/ok/lenet.nnc");
}

/// Parameters and per-step losses after `steps` training steps of batch `batch` on `threads`
/// threads, from seed 0, the batch size changing between steps.
fn train<M: Model<Elem = f32>>(
    threads: usize,
    inputs: usize,
    classes: u32,
    steps: usize,
) -> (Vec<u32>, Vec<u32>) {
    let batch = 67;
    let mut model = M::new(0);
    let mut ws = model.workspace_with_threads(batch, threads);
    // The inputs sit at the same alignment in every run: on AVX-512 the first layer aligns its
    // loads to the input's cache lines, so an input at another address modulo 64 bytes can
    // change the last bit of its sums (ARCHITECTURE.md, "Threads").
    let mut x = nnc::runtime::Aligned::zeros(batch * inputs);
    for (i, v) in x.iter_mut().enumerate() {
        *v = ((i * 7919) % 1013) as f32 / 1013.0 - 0.5;
    }
    let y: Vec<u32> = (0..batch as u32).map(|i| i * 7 % classes).collect();
    let mut losses = Vec::new();
    for step in 0..steps {
        let n = if step % 2 == 0 { batch } else { 41 };
        let inputs = [nnc::runtime::Values::Float(&x[..n * inputs])];
        let targets = [nnc::runtime::Values::Ids(&y[..n])];
        let loss = model.train_step_dyn(&mut ws, &inputs, &targets).unwrap();
        losses.push(loss.to_bits());
    }
    let params = model.params().iter().map(|p| p.to_bits()).collect();
    (params, losses)
}

fn same_bits_on_every_thread_count<M: Model<Elem = f32>>(inputs: usize, classes: u32) {
    let one = train::<M>(1, inputs, classes, 6);
    assert_eq!(
        one,
        train::<M>(1, inputs, classes, 6),
        "{}: two runs differ",
        M::NAME
    );
    for threads in [2, 3, 7] {
        let many = train::<M>(threads, inputs, classes, 6);
        assert!(
            many.1 == one.1,
            "{} on {threads} threads: losses {:?}, on one thread {:?}",
            M::NAME,
            many.1
                .iter()
                .map(|b| f32::from_bits(*b))
                .collect::<Vec<_>>(),
            one.1.iter().map(|b| f32::from_bits(*b)).collect::<Vec<_>>()
        );
        let differ = many.0.iter().zip(&one.0).position(|(a, b)| a != b);
        assert!(
            differ.is_none(),
            "{} on {threads} threads: parameter {differ:?} differs from one thread's",
            M::NAME
        );
    }
}

/// The threads of this process, from Linux's per-thread directory.
#[cfg(target_os = "linux")]
fn live_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// One test, because the thread count of the process is global: tests running in parallel
/// would count each other's workers.
#[test]
fn threads_change_speed_not_results_and_leave_with_their_workspace() {
    same_bits_on_every_thread_count::<MnistMlp>(784, 10);
    // Dropout masks are drawn in order on the calling thread, whatever the thread count.
    same_bits_on_every_thread_count::<keras::KerasMnist>(784, 10);
    // Convolutions split samples (and the weight gradient output channels), each thread with
    // its own patches.
    same_bits_on_every_thread_count::<lenet::LeNet>(784, 10);

    #[cfg(target_os = "linux")]
    {
        let model = MnistMlp::new(0);
        let before = live_threads();
        let ws = model.workspace_with_threads(8, 5);
        assert_eq!(ws.threads(), 5);
        assert_eq!(
            live_threads(),
            before + 4,
            "a workspace of 5 threads starts 4 workers"
        );
        drop(ws);
        assert_eq!(
            live_threads(),
            before,
            "dropping the workspace joins its workers"
        );
        // Nor does a workspace that has run the workers.
        let mut trained = attention::Attention::new(0);
        let mut ws = trained.workspace_with_threads(4, 3);
        let x = vec![0.5f32; 4 * 32];
        let y = vec![0.1f32; 4 * 3];
        trained.train_step(&mut ws, &x, &y).unwrap();
        drop(ws);
        assert_eq!(live_threads(), before);
    }
}
