//! Weight initializers matching PyTorch's `torch.nn.init`, for weights stored `[out, in]`.
//!
//! The bounds and standard deviations are PyTorch's; the random streams come from [`Rng`], so
//! values are reproducible across runs and platforms but differ from PyTorch's own generator.

use crate::float::Float;
use crate::rng::Rng;

/// Kaiming normal with the relu gain (`kaiming_normal_`, fan-in mode): `N(0, sqrt(2 / fan_in))`.
pub fn he_normal<T: Float>(rng: &mut Rng, fan_in: usize, w: &mut [T]) {
    let std = (2.0 / fan_in as f64).sqrt();
    rng.fill_normal(T::ZERO, T::from_f64(std), w);
}

/// Kaiming uniform with the relu gain (`kaiming_uniform_`, fan-in mode):
/// `U(-sqrt(6 / fan_in), sqrt(6 / fan_in))`.
pub fn he_uniform<T: Float>(rng: &mut Rng, fan_in: usize, w: &mut [T]) {
    let bound = (6.0 / fan_in as f64).sqrt();
    rng.fill_uniform(T::from_f64(-bound), T::from_f64(bound), w);
}

/// Glorot uniform (`xavier_uniform_`): `U(±sqrt(6 / (fan_in + fan_out)))`.
pub fn xavier_uniform<T: Float>(rng: &mut Rng, fan_in: usize, fan_out: usize, w: &mut [T]) {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    rng.fill_uniform(T::from_f64(-bound), T::from_f64(bound), w);
}

/// Glorot normal (`xavier_normal_`): `N(0, sqrt(2 / (fan_in + fan_out)))`.
pub fn xavier_normal<T: Float>(rng: &mut Rng, fan_in: usize, fan_out: usize, w: &mut [T]) {
    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
    rng.fill_normal(T::ZERO, T::from_f64(std), w);
}

/// Normal with a fixed standard deviation (`normal_`): `N(0, std)`. PyTorch fills
/// `nn.Embedding` tables from `N(0, 1)`.
pub fn normal<T: Float>(rng: &mut Rng, std: f64, w: &mut [T]) {
    rng.fill_normal(T::ZERO, T::from_f64(std), w);
}

/// Uniform in `[−bound, bound]` (`uniform_`): PyTorch's `nn.LSTM` and `nn.GRU` draw every
/// weight and bias from `U(±1/√hidden_size)`.
pub fn uniform<T: Float>(rng: &mut Rng, bound: f64, w: &mut [T]) {
    rng.fill_uniform(T::from_f64(-bound), T::from_f64(bound), w);
}

/// Every element set to `value` (`constant_`), typically zeros for biases.
pub fn constant<T: Float>(value: T, w: &mut [T]) {
    w.fill(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(w: &[f64]) -> (f64, f64) {
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn scales_match_pytorch() {
        let mut rng = Rng::new(0);
        let mut w = vec![0.0f64; 40_000];

        he_normal(&mut rng, 200, &mut w);
        let (mean, std) = moments(&w);
        assert!(
            mean.abs() < 0.005 && (std - 0.1).abs() < 0.002,
            "{mean} {std}"
        );

        // A uniform on ±b has standard deviation b / sqrt(3).
        he_uniform(&mut rng, 600, &mut w);
        assert!(w.iter().all(|v| v.abs() <= 0.1));
        let (_, std) = moments(&w);
        assert!((std - 0.1 / 3f64.sqrt()).abs() < 0.002, "{std}");

        xavier_uniform(&mut rng, 400, 200, &mut w);
        assert!(w.iter().all(|v| v.abs() <= 0.1));

        xavier_normal(&mut rng, 100, 100, &mut w);
        let (_, std) = moments(&w);
        assert!((std - 0.1).abs() < 0.002, "{std}");

        constant(0.5, &mut w);
        assert!(w.iter().all(|&v| v == 0.5));
    }
}
