//! The layout kernels against plain references: the batched product against `gemm_reference`
//! for every transpose combination at odd sizes, permutations against index arithmetic, and
//! sums over an axis against their broadcast back.

use nnc_runtime::kernels::{batch_matmul, expand_axis, gemm_reference, permute, sum_axis};
use nnc_runtime::Exec;
use nnc_runtime::Rng;

fn random(rng: &mut Rng, len: usize) -> Vec<f64> {
    let mut v = vec![0.0; len];
    rng.fill_uniform(-1.0, 1.0, &mut v);
    v
}

#[test]
fn batch_matmul_matches_the_reference_product_per_matrix() {
    let mut rng = Rng::new(1);
    for (count, m, k, n) in [
        (1, 1, 1, 1),
        (3, 2, 5, 7),
        (2, 7, 3, 4),
        (4, 6, 6, 1),
        (3, 2, 0, 5),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let (a, b) = (
                random(&mut rng, count * m * k),
                random(&mut rng, count * k * n),
            );
            let mut out = vec![f64::NAN; count * m * n];
            batch_matmul(Exec::serial(), count, m, k, n, ta, tb, &a, &b, &mut out);
            for c in 0..count {
                // Row-major strides of each stored matrix, swapped when it is read transposed.
                let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
                let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
                let mut want = vec![0.0; m * n];
                let (a, b) = (
                    &a[c * m * k..(c + 1) * m * k],
                    &b[c * k * n..(c + 1) * k * n],
                );
                gemm_reference(
                    m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, &mut want, n as isize, 1,
                );
                for (got, want) in out[c * m * n..(c + 1) * m * n].iter().zip(&want) {
                    assert!((got - want).abs() < 1e-12, "{count}x{m}x{k}x{n} {ta} {tb}");
                }
            }
        }
    }
}

#[test]
fn permute_moves_every_element_to_its_new_index() {
    let dims = [2, 3, 4, 5];
    let x: Vec<f64> = (0..120).map(f64::from).collect();
    let perm = [0, 3, 1, 2];
    let mut out = vec![0.0; 120];
    permute(Exec::serial(), &dims, &perm, &x, &mut out);
    // out[b, l, i, j] = x[b, i, j, l].
    for b in 0..2 {
        for l in 0..5 {
            for i in 0..3 {
                for j in 0..4 {
                    let got = out[((b * 5 + l) * 3 + i) * 4 + j];
                    assert_eq!(got, x[((b * 3 + i) * 4 + j) * 5 + l]);
                }
            }
        }
    }
    // The inverse permutation restores the original.
    let mut back = vec![0.0; 120];
    permute(
        Exec::serial(),
        &[2, 5, 3, 4],
        &[0, 2, 3, 1],
        &out,
        &mut back,
    );
    assert_eq!(back, x);
}

#[test]
fn sum_over_an_axis_and_its_broadcast_back() {
    // [2, 3, 2]: sum over the middle axis.
    let x = [
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
    ];
    let mut s = [0.0; 4];
    sum_axis(Exec::serial(), 2, 3, 2, 0.5, &x, &mut s);
    assert_eq!(s, [4.5, 6.0, 13.5, 15.0]);
    let mut e = [0.0; 12];
    expand_axis(Exec::serial(), 2, 3, 2, 2.0, &s, &mut e);
    assert_eq!(
        e,
        [9.0, 12.0, 9.0, 12.0, 9.0, 12.0, 27.0, 30.0, 27.0, 30.0, 27.0, 30.0]
    );
}
