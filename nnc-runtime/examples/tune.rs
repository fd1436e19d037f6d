//! Temporary: crossover between the small-batch loops and gemm.
use nnc_runtime::kernels::*;
use nnc_runtime::{Act, Rng};
use std::hint::black_box;
use std::time::Instant;

fn random(len: usize) -> Vec<f32> {
    let mut v = vec![0.0; len];
    Rng::new(len as u64).fill_uniform(-1.0, 1.0, &mut v);
    v
}
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..20 { f(); }
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..50 { f(); }
        best = best.min(t.elapsed().as_secs_f64() / 50.0 * 1e6);
    }
    best
}
fn main() {
    for (inputs, outputs) in [(784usize, 128usize), (128, 10), (64, 64)] {
        let w = random(inputs * outputs);
        let bias = random(outputs);
        for batch in [1usize, 2, 4, 8, 12, 16, 24, 32, 64] {
            let x = random(batch * inputs);
            let gz = random(batch * outputs);
            let mut y = vec![0.0f32; batch * outputs];
            let mut gx = vec![0.0f32; batch * inputs];
            let mut gw = vec![0.0f32; inputs * outputs];
            let (i, o) = (inputs as isize, outputs as isize);
            let small_f = time(|| dense_forward(batch, inputs, outputs, black_box(&x), &w, Some(&bias), Act::Relu, &mut y));
            let gemm_f = time(|| { gemm(batch, inputs, outputs, 1.0, black_box(&x), i, 1, &w, 1, i, 0.0, &mut y, o, 1); act_forward(Act::Relu, &y.clone(), &mut y); });
            let small_bi = time(|| dense_backward_input(batch, inputs, outputs, black_box(&gz), &w, &mut gx));
            let gemm_bi = time(|| gemm(batch, outputs, inputs, 1.0, black_box(&gz), o, 1, &w, i, 1, 0.0, &mut gx, i, 1));
            let small_bw = time(|| dense_backward_weight(batch, inputs, outputs, black_box(&gz), &x, &mut gw));
            let gemm_bw = time(|| gemm(outputs, batch, inputs, 1.0, black_box(&gz), 1, o, &x, i, 1, 0.0, &mut gw, i, 1));
            println!("{inputs}x{outputs} b{batch:3}: fwd small {small_f:8.2} gemm {gemm_f:8.2} | bwd_in small {small_bi:8.2} gemm {gemm_bi:8.2} | bwd_w small {small_bw:8.2} gemm {gemm_bw:8.2} (us)");
        }
    }
}
