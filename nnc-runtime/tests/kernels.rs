//! Checks the matrix and dense-layer kernels against naive references over odd sizes, strided
//! layouts, both element types, and batch sizes and widths that hit every remainder of the dense
//! kernels' register blocks (4 or 6 rows, 3 rows or 1 to 4 vectors of columns, 8 or 4 lanes).

use nnc_runtime::kernels::{
    bias_add, bias_backward, dense_backward_input, dense_backward_weight, dense_forward, gemm,
    gemm_reference, gemm_scratch_len,
};
mod common;

use common::ACTS_BUT_STEP;
use nnc_runtime::Exec;
use nnc_runtime::{Act, Float, Mode, Rng};

const SIZES: [usize; 6] = [1, 3, 7, 17, 33, 65];

/// Machine epsilon of `T`, told apart by the type's size since `Float` has only two types.
fn eps<T: Float>() -> f64 {
    if std::mem::size_of::<T>() == 4 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

fn random<T: Float>(rng: &mut Rng, len: usize) -> Vec<T> {
    let mut v = vec![T::ZERO; len];
    rng.fill_uniform(T::from_f64(-1.0), T::ONE, &mut v);
    v
}

/// One matrix layout: (rows, cols) → (row stride, column stride, slice length).
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major with two padding elements after each row.
    PaddedRows,
    /// Column-major with one padding element after each column.
    PaddedCols,
}

impl Layout {
    fn strides(self, rows: usize, cols: usize) -> (isize, isize, usize) {
        let (r, c) = (rows as isize, cols as isize);
        match self {
            Layout::RowMajor => (c, 1, rows * cols),
            Layout::ColMajor => (1, r, rows * cols),
            Layout::PaddedRows => (c + 2, 1, rows * (cols + 2)),
            Layout::PaddedCols => (1, r + 1, (rows + 1) * cols),
        }
    }
}

/// Compares `gemm` with `gemm_reference` on one case. The tolerance is the classical dot-product
/// error bound `(k + 2)·eps·(|alpha|·Σ|a||b| + |beta·c|)`, with the absolute sums computed by the
/// reference on absolute values; a real bug produces errors of order one instead.
#[allow(clippy::too_many_arguments)]
fn check_gemm<T: Float>(
    rng: &mut Rng,
    (m, k, n): (usize, usize, usize),
    la: Layout,
    lb: Layout,
    lc: Layout,
    beta: f64,
) {
    let (rsa, csa, len_a) = la.strides(m, k);
    let (rsb, csb, len_b) = lb.strides(k, n);
    let (rsc, csc, len_c) = lc.strides(m, n);
    let a: Vec<T> = random(rng, len_a);
    let b: Vec<T> = random(rng, len_b);
    let c0: Vec<T> = random(rng, len_c);
    let alpha = T::from_f64(0.75);
    let beta = T::from_f64(beta);

    let mut fast = c0.clone();
    let mut slow = c0.clone();
    gemm(
        Exec::serial(),
        m,
        k,
        n,
        alpha,
        &a,
        rsa,
        csa,
        &b,
        rsb,
        csb,
        beta,
        &mut fast,
        rsc,
        csc,
    );
    gemm_reference(
        m, k, n, alpha, &a, rsa, csa, &b, rsb, csb, beta, &mut slow, rsc, csc,
    );

    let abs = |v: &[T]| v.iter().map(|x| x.abs()).collect::<Vec<T>>();
    let mut bound = abs(&c0);
    gemm_reference(
        m,
        k,
        n,
        alpha.abs(),
        &abs(&a),
        rsa,
        csa,
        &abs(&b),
        rsb,
        csb,
        beta.abs(),
        &mut bound,
        rsc,
        csc,
    );
    let tol_scale = (k as f64 + 2.0) * eps::<T>();
    for i in 0..m {
        for j in 0..n {
            let at = (i as isize * rsc + j as isize * csc) as usize;
            let (f, s) = (fast[at].to_f64(), slow[at].to_f64());
            let tol = tol_scale * bound[at].to_f64() + f64::MIN_POSITIVE;
            assert!(
                (f - s).abs() <= tol,
                "gemm {m}x{k}x{n} {la:?} {lb:?} {lc:?} beta {beta}: c[{i},{j}] = {f}, \
                 reference {s}, tolerance {tol}"
            );
        }
    }
    // Padding between the elements of C must be left untouched.
    let mut is_element = vec![false; len_c];
    for i in 0..m {
        for j in 0..n {
            is_element[(i as isize * rsc + j as isize * csc) as usize] = true;
        }
    }
    for (idx, _) in is_element.iter().enumerate().filter(|(_, &e)| !e) {
        assert_eq!(fast[idx], c0[idx], "gemm wrote padding at {idx} ({lc:?})");
    }
}

fn gemm_all_cases<T: Float>() {
    let mut rng = Rng::new(11);
    let layouts = [Layout::RowMajor, Layout::ColMajor];
    let c_layouts = [Layout::PaddedRows, Layout::PaddedCols, Layout::RowMajor];
    for &m in &SIZES {
        for &k in &SIZES {
            for &n in &SIZES {
                for la in layouts {
                    for lb in layouts {
                        for lc in c_layouts {
                            for beta in [0.0, 1.0] {
                                check_gemm::<T>(&mut rng, (m, k, n), la, lb, lc, beta);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_reference_f32() {
    gemm_all_cases::<f32>();
}

#[test]
fn gemm_matches_reference_f64() {
    gemm_all_cases::<f64>();
}

#[test]
fn gemm_beta_zero_ignores_nan_and_k_zero_scales() {
    let a = [1.0f32, 2.0];
    let b = [3.0f32, 4.0];
    let mut c = [f32::NAN];
    gemm(
        Exec::serial(),
        1,
        2,
        1,
        1.0,
        &a,
        2,
        1,
        &b,
        1,
        1,
        0.0,
        &mut c,
        1,
        1,
    );
    assert_eq!(c, [11.0]);
    let mut c = [f32::NAN; 4];
    gemm(
        Exec::serial(),
        2,
        0,
        2,
        1.0,
        &[],
        0,
        1,
        &[],
        2,
        1,
        0.0,
        &mut c,
        2,
        1,
    );
    assert_eq!(c, [0.0; 4]);
    let mut c = [2.0f64; 4];
    gemm(
        Exec::serial(),
        2,
        0,
        2,
        1.0,
        &[],
        0,
        1,
        &[],
        2,
        1,
        0.5,
        &mut c,
        2,
        1,
    );
    assert_eq!(c, [1.0; 4]);
}

#[test]
fn gemm_rejects_short_and_overlapping_slices() {
    let short = std::panic::catch_unwind(|| {
        let mut c = [0.0f32; 4];
        gemm(
            Exec::serial(),
            2,
            3,
            2,
            1.0,
            &[0.0; 5],
            3,
            1,
            &[0.0; 6],
            2,
            1,
            0.0,
            &mut c,
            2,
            1,
        );
    });
    assert!(short.is_err(), "a too-short A must be rejected");
    let overlapping = std::panic::catch_unwind(|| {
        let mut c = [0.0f32; 4];
        gemm(
            Exec::serial(),
            2,
            3,
            2,
            1.0,
            &[0.0; 6],
            3,
            1,
            &[0.0; 6],
            2,
            1,
            0.0,
            &mut c,
            1,
            1,
        );
    });
    assert!(
        overlapping.is_err(),
        "a C whose elements overlap must be rejected"
    );
    let negative = std::panic::catch_unwind(|| {
        let mut c = [0.0f32; 4];
        gemm(
            Exec::serial(),
            2,
            3,
            2,
            1.0,
            &[0.0; 6],
            -3,
            1,
            &[0.0; 6],
            2,
            1,
            0.0,
            &mut c,
            2,
            1,
        );
    });
    assert!(
        negative.is_err(),
        "a negative stride reaching before the slice must be rejected"
    );
}

/// The activations from their textbook definitions, with libm's erf for the exact GELU.
fn naive_act(act: Act, v: f64) -> f64 {
    match act {
        Act::Identity => v,
        Act::Relu => v.max(0.0),
        Act::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Act::Tanh => v.tanh(),
        Act::Step => f64::from(u8::from(v > 0.0)),
        Act::LeakyRelu(a) => {
            if v > 0.0 {
                v
            } else {
                a * v
            }
        }
        Act::Elu(a) => {
            if v > 0.0 {
                v
            } else {
                a * (v.exp() - 1.0)
            }
        }
        Act::Gelu => 0.5 * v * (1.0 + libm::erf(v / 2f64.sqrt())),
        Act::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * v * (1.0 + (k * (v + 0.044715 * v.powi(3))).tanh())
        }
        Act::Softplus => {
            if v > 20.0 {
                v
            } else {
                v.exp().ln_1p()
            }
        }
    }
}

/// Asserts `got` matches `want` within `tol` relative to the magnitude of the values.
fn assert_close<T: Float>(what: &str, got: &[T], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g.to_f64();
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: element {i} is {g}, expected {w}"
        );
    }
}

const BATCHES: [usize; 8] = [1, 2, 4, 5, 8, 9, 32, 64];
const SHAPES: [(usize, usize); 5] = [(1, 1), (13, 7), (37, 19), (100, 33), (8, 4)];

/// Every batch size from 1 to 9, then both sides of 16 and 32, 64, and just above 128.
const REMAINDER_BATCHES: [usize; 17] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 129];
/// Odd widths: below, between and just above the vector and block widths.
const REMAINDER_WIDTHS: [usize; 6] = [1, 3, 7, 17, 33, 129];

/// One thread's scratch for the packed products of a `k`-deep product with `n` columns.
fn scratch<T: Float>(n: usize, k: usize) -> Vec<T> {
    vec![T::ZERO; gemm_scratch_len(n, k)]
}

fn dense_cases<T: Float>(tol: f64) {
    dense_cases_over::<T>(tol, &BATCHES, &SHAPES, &ACTS_BUT_STEP);
}

/// Every kernel at every batch of `batches` and every shape of `shapes`, the forward pass with
/// every activation of `acts`, with and without bias.
fn dense_cases_over<T: Float>(
    tol: f64,
    batches: &[usize],
    shapes: &[(usize, usize)],
    acts: &[Act],
) {
    let mut rng = Rng::new(5);
    for &batch in batches {
        for &(inputs, outputs) in shapes {
            let x: Vec<T> = random(&mut rng, batch * inputs);
            let w: Vec<T> = random(&mut rng, outputs * inputs);
            let bias: Vec<T> = random(&mut rng, outputs);
            let gz: Vec<T> = random(&mut rng, batch * outputs);
            let f = |v: &[T], i: usize| v[i].to_f64();

            for &act in acts {
                for use_bias in [false, true] {
                    let mut want = vec![0.0; batch * outputs];
                    for b in 0..batch {
                        for o in 0..outputs {
                            let mut s = if use_bias { f(&bias, o) } else { 0.0 };
                            for i in 0..inputs {
                                s += f(&x, b * inputs + i) * f(&w, o * inputs + i);
                            }
                            want[b * outputs + o] = naive_act(act, s);
                        }
                    }
                    let mut y = vec![T::from_f64(f64::NAN); batch * outputs];
                    let bias = use_bias.then_some(&bias[..]);
                    dense_forward(
                        Exec::serial(),
                        Mode::Infer,
                        batch,
                        inputs,
                        outputs,
                        &x,
                        &w,
                        bias,
                        act,
                        &mut y,
                        &mut scratch(outputs, inputs),
                    );
                    let what =
                        format!("dense_forward {batch}x{inputs}->{outputs} {act:?} {use_bias}");
                    assert_close(&what, &y, &want, tol * inputs as f64);
                }
            }

            let mut want = vec![0.0; batch * inputs];
            for b in 0..batch {
                for i in 0..inputs {
                    want[b * inputs + i] = (0..outputs)
                        .map(|o| f(&gz, b * outputs + o) * f(&w, o * inputs + i))
                        .sum();
                }
            }
            let mut gx = vec![T::from_f64(f64::NAN); batch * inputs];
            dense_backward_input(
                Exec::serial(),
                batch,
                inputs,
                outputs,
                &gz,
                &w,
                &mut gx,
                &mut scratch(inputs, outputs),
            );
            let what = format!("dense_backward_input {batch}x{inputs}->{outputs}");
            assert_close(&what, &gx, &want, tol * outputs as f64);

            let mut want = vec![0.0; outputs * inputs];
            for o in 0..outputs {
                for i in 0..inputs {
                    want[o * inputs + i] = (0..batch)
                        .map(|b| f(&gz, b * outputs + o) * f(&x, b * inputs + i))
                        .sum();
                }
            }
            let mut gw = vec![T::from_f64(f64::NAN); outputs * inputs];
            dense_backward_weight(
                Exec::serial(),
                batch,
                inputs,
                outputs,
                &gz,
                &x,
                &mut gw,
                &mut scratch(inputs, batch),
            );
            let what = format!("dense_backward_weight {batch}x{inputs}->{outputs}");
            assert_close(&what, &gw, &want, tol * batch as f64);

            let want: Vec<f64> = (0..outputs)
                .map(|o| (0..batch).map(|b| f(&gz, b * outputs + o)).sum())
                .collect();
            let mut gb = vec![T::from_f64(f64::NAN); outputs];
            bias_backward(Exec::serial(), batch, outputs, &gz, &mut gb);
            assert_close("bias_backward", &gb, &want, tol * batch as f64);
        }
    }
}

#[test]
fn dense_kernels_match_naive_f32() {
    dense_cases::<f32>(4.0 * f32::EPSILON as f64);
}

#[test]
fn dense_kernels_match_naive_f64() {
    dense_cases::<f64>(4.0 * f64::EPSILON);
}

fn remainder_shapes() -> Vec<(usize, usize)> {
    REMAINDER_WIDTHS
        .iter()
        .flat_map(|&i| REMAINDER_WIDTHS.iter().map(move |&o| (i, o)))
        .collect()
}

#[test]
fn dense_kernels_hit_every_block_remainder_f32() {
    let acts = [Act::Identity, Act::Relu];
    dense_cases_over::<f32>(
        4.0 * eps::<f32>(),
        &REMAINDER_BATCHES,
        &remainder_shapes(),
        &acts,
    );
}

#[test]
fn dense_kernels_hit_every_block_remainder_f64() {
    let acts = [Act::Identity, Act::Tanh];
    dense_cases_over::<f64>(
        4.0 * eps::<f64>(),
        &REMAINDER_BATCHES,
        &remainder_shapes(),
        &acts,
    );
}

/// Batches of 64, and of more than 256 (more than one depth pass of the weight gradient), with
/// the MNIST shapes and odd ones; 515 outputs take the packed weight gradient.
#[test]
fn dense_kernels_match_naive_at_large_batches() {
    let shapes = [(784, 128), (128, 10), (33, 17), (7, 129), (17, 515)];
    dense_cases_over::<f32>(4.0 * eps::<f32>(), &[64, 300], &shapes, &[Act::Relu]);
    let shapes = [(33, 17), (129, 7), (3, 33)];
    dense_cases_over::<f64>(
        4.0 * eps::<f64>(),
        &[64, 300, 520],
        &shapes,
        &[Act::Sigmoid],
    );
}

#[test]
fn bias_add_adds_the_bias_to_every_row() {
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut y = [f32::NAN; 6];
    bias_add(Exec::serial(), 2, 3, &x, &[10.0, 20.0, 30.0], &mut y);
    assert_eq!(y, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    let mut rng = Rng::new(3);
    for (batch, n) in [(0, 5), (5, 0), (1, 1), (9, 17), (4, 33)] {
        let x: Vec<f64> = random(&mut rng, batch * n);
        let b: Vec<f64> = random(&mut rng, n);
        let mut y = vec![f64::NAN; batch * n];
        bias_add(Exec::serial(), batch, n, &x, &b, &mut y);
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, x[i] + b[i % n], "bias_add {batch}x{n}: element {i}");
        }
    }
}

#[test]
#[should_panic(expected = "bias_add")]
fn bias_add_rejects_a_short_bias() {
    let mut y = [0.0f32; 4];
    bias_add(Exec::serial(), 2, 2, &[0.0; 4], &[0.0], &mut y);
}

#[test]
fn dense_forward_without_inputs_is_bias_then_activation() {
    let mut y = [f64::NAN; 4];
    dense_forward(
        Exec::serial(),
        Mode::Infer,
        2,
        0,
        2,
        &[],
        &[],
        Some(&[-1.0, 2.0]),
        Act::Relu,
        &mut y,
        &mut [],
    );
    assert_eq!(y, [0.0, 2.0, 0.0, 2.0]);
}

#[test]
fn dense_backward_with_empty_dimensions_writes_zeros() {
    // No outputs: every input gradient is an empty sum.
    let mut gx = [f32::NAN; 6];
    dense_backward_input(Exec::serial(), 2, 3, 0, &[], &[], &mut gx, &mut []);
    assert_eq!(gx, [0.0; 6]);
    // No samples: every weight and bias gradient is an empty sum.
    let mut gw = [f32::NAN; 6];
    dense_backward_weight(Exec::serial(), 0, 3, 2, &[], &[], &mut gw, &mut []);
    assert_eq!(gw, [0.0; 6]);
    let mut gb = [f32::NAN; 2];
    bias_backward(Exec::serial(), 0, 2, &[], &mut gb);
    assert_eq!(gb, [0.0; 2]);
}
