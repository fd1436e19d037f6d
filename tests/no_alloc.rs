//! After construction, a training step and a prediction allocate nothing: a counting global
//! allocator watches a few hundred steps of the MNIST-sized model.

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

#[test]
fn train_step_and_predict_allocate_nothing() {
    let batch = 32;
    let mut model = MnistMlp::new(0);
    let mut ws = model.workspace(batch);
    let x: Vec<f32> = (0..batch * 784).map(|i| (i % 17) as f32 / 17.0).collect();
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut single = model.workspace(1);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for step in 0..50 {
        // Odd steps use a partial batch: the batch size varies at run time within the capacity.
        let n = if step % 2 == 0 { batch } else { batch / 2 + 1 };
        model.train_step(&mut ws, &x[..n * 784], &y[..n]).unwrap();
        model.predict(&mut single, &x[..784]).unwrap();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{} allocations during training",
        after - before
    );
}
