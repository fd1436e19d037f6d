//! A small, seeded random number generator whose streams are identical on every platform.
//!
//! The generator is xoshiro256++ (Blackman and Vigna, <https://prng.di.unimi.it/xoshiro256plusplus.c>),
//! with its 256-bit state filled from the seed by SplitMix64
//! (<https://prng.di.unimi.it/splitmix64.c>), the seeding the authors recommend and the one
//! `rand_xoshiro`'s `seed_from_u64` uses. Normal samples use Marsaglia's polar method, whose only
//! transcendental function is a logarithm; that logarithm is computed here from basic IEEE
//! operations rather than the platform's libm, so normal streams are bit-identical everywhere.

use crate::float::Float;

/// A seeded xoshiro256++ generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    /// The second value of the last polar-method pair, waiting to be returned.
    spare_normal: Option<f64>,
}

/// One step of SplitMix64, which turns a counter into well-mixed 64-bit words.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose stream is determined by `seed` alone.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [(); 4].map(|_| splitmix64(&mut sm));
        Rng::from_state(s)
    }

    /// A generator with the given raw state, which must not be all zeros (the one state from
    /// which xoshiro never escapes). SplitMix64 cannot produce four zero words in a row.
    pub(crate) fn from_state(s: [u64; 4]) -> Rng {
        assert!(s != [0; 4], "xoshiro256++ state must not be all zeros");
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits, the full precision of the type.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform value in `[lo, hi)`; rounding to `f32` can occasionally produce `hi` itself.
    pub fn uniform<T: Float>(&mut self, lo: T, hi: T) -> T {
        let (lo, hi) = (lo.to_f64(), hi.to_f64());
        T::from_f64(lo + (hi - lo) * self.unit())
    }

    /// A normal sample with the given mean and standard deviation.
    pub fn normal<T: Float>(&mut self, mean: T, std: T) -> T {
        let z = match self.spare_normal.take() {
            Some(z) => z,
            None => {
                let (z0, z1) = self.polar_pair();
                self.spare_normal = Some(z1);
                z0
            }
        };
        T::from_f64(mean.to_f64() + std.to_f64() * z)
    }

    /// Two independent standard normal samples by Marsaglia's polar method.
    fn polar_pair(&mut self) -> (f64, f64) {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s < 1.0 && s > 0.0 {
                let factor = (-2.0 * ln(s) / s).sqrt();
                return (u * factor, v * factor);
            }
        }
    }

    /// Fills `out` with uniform values in `[lo, hi)`.
    pub fn fill_uniform<T: Float>(&mut self, lo: T, hi: T, out: &mut [T]) {
        out.iter_mut().for_each(|v| *v = self.uniform(lo, hi));
    }

    /// Fills `out` with normal samples.
    pub fn fill_normal<T: Float>(&mut self, mean: T, std: T, out: &mut [T]) {
        out.iter_mut().for_each(|v| *v = self.normal(mean, std));
    }

    /// A uniform integer in `0..n` without modulo bias (Lemire's multiply-and-reject method).
    /// Panics if `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below needs a non-empty range");
        let n = n as u64;
        // Products whose low half falls below 2^64 mod n would over-represent some values.
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as usize;
            }
        }
    }

    /// Shuffles `items` uniformly (Fisher–Yates), for example to reorder samples between epochs.
    pub fn shuffle<E>(&mut self, items: &mut [E]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Natural logarithm of a positive, normal `x` from basic IEEE operations only, so the result
/// does not depend on the platform's libm. `x = 2^e · m` with `m` in `[√½, √2)`, and
/// `ln m = 2 atanh(f)` with `f = (m-1)/(m+1)`, `|f| < 0.172`; the series
/// `2(f + f³/3 + f⁵/5 + …)` truncated after `f²³` has a relative error below 1e-19.
fn ln(x: f64) -> f64 {
    debug_assert!(x.is_normal() && x > 0.0);
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let f = (m - 1.0) / (m + 1.0);
    let f2 = f * f;
    let mut series = 0.0;
    for k in (0..12).rev() {
        series = series * f2 + 1.0 / (2 * k + 1) as f64;
    }
    e as f64 * std::f64::consts::LN_2 + 2.0 * f * series
}

/// The generator's whole state as text, for a checkpoint to carry so that a resumed run draws
/// what the uninterrupted one would have: the four state words in hexadecimal joined by `-`,
/// then `+` and the bits of a pending normal sample if there is one. [`str::parse`] reads it
/// back.
impl std::fmt::Display for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.s;
        write!(f, "{a:016x}-{b:016x}-{c:016x}-{d:016x}")?;
        if let Some(spare) = self.spare_normal {
            write!(f, "+{:016x}", spare.to_bits())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Rng {
    type Err = String;

    /// The state [`Rng`]'s `Display` wrote; an error says what is wrong with any other text.
    fn from_str(text: &str) -> Result<Rng, String> {
        let bad = || {
            format!(
                "`{text}` is not a random generator's state (four hexadecimal words joined by `-`)"
            )
        };
        let (words, spare) = match text.split_once('+') {
            Some((w, s)) => (w, Some(s)),
            None => (text, None),
        };
        let words: Vec<u64> = words
            .split('-')
            .map(|w| u64::from_str_radix(w, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let s: [u64; 4] = words.try_into().map_err(|_| bad())?;
        if s == [0; 4] {
            return Err(format!(
                "`{text}` is the all-zero state, which no generator reaches"
            ));
        }
        let spare_normal = match spare {
            Some(bits) => Some(f64::from_bits(
                u64::from_str_radix(bits, 16).map_err(|_| bad())?,
            )),
            None => None,
        };
        Ok(Rng { s, spare_normal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_written_as_text_continues_the_same_stream() {
        let mut rng = Rng::new(5);
        rng.normal(0.0f64, 1.0); // leaves the pair's second value pending
        let mut copy: Rng = rng.to_string().parse().unwrap();
        for _ in 0..10 {
            assert_eq!(copy.normal(0.0f64, 1.0), rng.normal(0.0f64, 1.0));
            assert_eq!(copy.next_u64(), rng.next_u64());
        }
        for bad in ["", "1-2-3", "1-2-3-x", "0-0-0-0", "1-2-3-4+zz"] {
            assert!(bad.parse::<Rng>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        // Values from the authors' xoshiro256plusplus.c with state {1, 2, 3, 4}, as also checked
        // by rand_xoshiro's test suite.
        let mut rng = Rng::from_state([1, 2, 3, 4]);
        let expected: [u64; 5] = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
        ];
        for e in expected {
            assert_eq!(rng.next_u64(), e);
        }
    }

    #[test]
    fn splitmix_matches_the_reference_implementation() {
        // Values from the authors' splitmix64.c, as checked by rand_xoshiro's test suite.
        let mut state = 1477776061723855037;
        let expected: [u64; 3] = [
            1985237415132408290,
            2979275885539914483,
            13511426838097143398,
        ];
        for e in expected {
            assert_eq!(splitmix64(&mut state), e);
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b, mut c) = (Rng::new(42), Rng::new(42), Rng::new(43));
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut u = [0.0f32; 8];
        let mut v = [0.0f32; 8];
        Rng::new(7).fill_normal(0.0, 1.0, &mut u);
        Rng::new(7).fill_normal(0.0, 1.0, &mut v);
        assert_eq!(u, v);
    }

    #[test]
    fn portable_ln_is_accurate() {
        for &x in &[
            1e-300, 1e-30, 0.001, 0.3, 0.707, 0.708, 0.999_999, 1.0, 1.5, 1e10,
        ] {
            let (ours, libm) = (ln(x), f64::ln(x));
            assert!(
                (ours - libm).abs() <= 4.0 * f64::EPSILON * libm.abs().max(1.0),
                "ln({x}): {ours} vs {libm}"
            );
        }
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut rng = Rng::new(1);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u: f64 = rng.uniform(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&u));
            sum += u;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.05);
    }

    #[test]
    fn normal_moments() {
        let mut rng = Rng::new(2024);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal(0.0, 1.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // The standard error of the mean is 1/sqrt(n) ≈ 0.003 and that of the standard
        // deviation ≈ 0.0022; the bounds allow five standard errors.
        assert!(mean.abs() < 0.016, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.011, "std {}", var.sqrt());
    }

    #[test]
    fn below_and_shuffle() {
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[rng.below(3)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let mut items: Vec<usize> = (0..50).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
