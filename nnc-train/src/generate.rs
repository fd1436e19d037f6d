//! Text generation with any model that has a step entry point (a character-level recurrent
//! model, say): the prompt goes through the model one character at a time, then each next
//! character is drawn from the model's output at the last position and fed back, until a length
//! or a stop string is reached. Text goes in and comes out as UTF-8 through a [`Vocab`].
//!
//! Drawing follows the usual rules, in this order: the distribution is sharpened or flattened by
//! a temperature (`p^(1/T)`, renormalised, which is the softmax of the logits divided by `T`;
//! temperature 0 takes the most likely character), cut to the `top_k` most likely characters,
//! then to the smallest set of the most likely whose probabilities sum to at least `top_p`
//! (nucleus sampling), and drawn from a seeded generator, so that a seed gives the same text.
//! After the first call, drawing allocates nothing: the sampler keeps its buffer.

use crate::data::Vocab;
use crate::Error;
use nnc_runtime::{Float, Model, Rng, Values};

/// How the next character is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Below 1 favours likely characters, above 1 flattens the distribution; 0 always takes
    /// the most likely one (greedy decoding).
    pub temperature: f64,
    /// Draw only among the `top_k` most likely characters; 0 for no limit.
    pub top_k: usize,
    /// Draw only among the most likely characters whose probabilities sum to `top_p`
    /// (after the temperature and `top_k`); 1 for no limit.
    pub top_p: f64,
    /// The seed of the generator the draws come from.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks the settings, naming the first that is out of range.
    pub fn check(&self) -> Result<(), Error> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Config(format!(
                "the temperature must be a finite number ≥ 0 (0 for greedy decoding), found {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Config(format!(
                "top_p must be in (0, 1] (1 for no limit), found {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Draws ids from distributions by the rules of a [`Sampling`].
#[derive(Clone, Debug)]
pub struct Sampler {
    sampling: Sampling,
    rng: Rng,
    /// The candidates of one draw, `(weight, id)`, kept between draws.
    candidates: Vec<(f64, u32)>,
}

impl Sampler {
    /// A sampler with its generator seeded from `sampling.seed`.
    pub fn new(sampling: Sampling) -> Result<Sampler, Error> {
        sampling.check()?;
        Ok(Sampler {
            sampling,
            rng: Rng::new(sampling.seed),
            candidates: Vec::new(),
        })
    }

    /// An id drawn from `probabilities` (one per id, summing to about 1; the first `ids`
    /// only are candidates, so that ids a model has room for but the vocabulary does not use
    /// are never drawn). Errors if no candidate has a positive, finite probability.
    pub fn draw<T: Float>(&mut self, probabilities: &[T], ids: usize) -> Result<u32, Error> {
        let s = self.sampling;
        let p = &probabilities[..ids.min(probabilities.len())];
        let valid = |q: f64| q > 0.0 && q.is_finite();
        if s.temperature == 0.0 || s.top_k == 1 {
            // Greedy: the first of the most likely.
            let mut best: Option<(f64, usize)> = None;
            for (i, q) in p.iter().enumerate() {
                let q = q.to_f64();
                if valid(q) && best.is_none_or(|(b, _)| q > b) {
                    best = Some((q, i));
                }
            }
            return best.map(|(_, i)| i as u32).ok_or_else(no_candidate);
        }
        self.candidates.clear();
        for (i, q) in p.iter().enumerate() {
            let q = q.to_f64();
            if valid(q) {
                // In logarithms: the weights are rescaled by the largest below.
                self.candidates.push((q.ln() / s.temperature, i as u32));
            }
        }
        if self.candidates.is_empty() {
            return Err(no_candidate());
        }
        // The cuts need the most likely first (ties keep the lower id first, so the order is
        // deterministic); without them the candidates stay in id order, and a draw costs no
        // sort of the vocabulary.
        if s.top_k > 0 || s.top_p < 1.0 {
            self.candidates
                .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        }
        if s.top_k > 0 {
            self.candidates.truncate(s.top_k);
        }
        // Rescaled by the largest, so that a low temperature does not underflow every weight.
        let top = self
            .candidates
            .iter()
            .map(|c| c.0)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        for c in &mut self.candidates {
            c.0 = (c.0 - top).exp();
            total += c.0;
        }
        if s.top_p < 1.0 {
            let mut kept = 0.0;
            let mut n = 0;
            while n < self.candidates.len() && kept < s.top_p * total {
                kept += self.candidates[n].0;
                n += 1;
            }
            self.candidates.truncate(n.max(1));
            total = kept.max(self.candidates[0].0);
        }
        let mut u = self.rng.uniform(0.0, total);
        for &(w, id) in &self.candidates {
            if u < w {
                return Ok(id);
            }
            u -= w;
        }
        // Rounding can leave `u` just above the last weight.
        Ok(self.candidates[self.candidates.len() - 1].1)
    }
}

fn no_candidate() -> Error {
    Error::Data(
        "the model's output has no character with a positive, finite probability; is the \
         model's output a softmax over the vocabulary, and has training diverged?"
            .into(),
    )
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// How each character is drawn.
    pub sampling: Sampling,
    /// The most characters to generate after the prompt.
    pub max_tokens: usize,
    /// Stop once the generated text ends with this (included in the result); `None` or
    /// empty for no stop string.
    pub stop: Option<String>,
}

/// Continues `prompt` with `model` (batch 1, on `ws`), calling `emit` with each generated
/// character as it comes, and returns the generated text (without the prompt).
///
/// The model must have a step entry point (`M::HAS_STEP`) reading one id per position and
/// returning, as its first output, a probability per id (a softmax over at least the
/// vocabulary's ids). The prompt's characters must be in the vocabulary; an empty prompt starts
/// from a newline, or from id 0 where the vocabulary has none. The workspace's carried state is
/// reset first. A model whose context is limited (attention's cache of `M::STEP_POSITIONS`
/// positions) slides it when it is full: the sequence starts again from the last half of the
/// positions, so a prompt and a text may be longer than the context.
pub fn generate<M: Model>(
    model: &M,
    ws: &mut M::Workspace,
    vocab: &Vocab,
    prompt: &str,
    generation: &Generation,
    mut emit: impl FnMut(char),
) -> Result<String, Error> {
    if !M::HAS_STEP {
        // The model's own error says why it has no step.
        model.step_dyn(ws, &[])?;
    }
    let mut prompt_ids = vocab.encode(prompt)?;
    if prompt_ids.is_empty() {
        prompt_ids.push(vocab.id('\n').unwrap_or(0));
    }
    let ids = vocab.len();
    let mut sampler = Sampler::new(generation.sampling)?;
    M::reset_sequences(ws);
    let mut window = Vec::with_capacity(M::STEP_POSITIONS.unwrap_or(0));
    let mut next = 0;
    for &id in &prompt_ids {
        let p = feed(model, ws, &mut window, id)?;
        check_output::<M>(p.len(), ids)?;
        next = sampler.draw(p, ids)?;
    }
    let stop = generation.stop.as_deref().filter(|s| !s.is_empty());
    let mut text = String::with_capacity(generation.max_tokens * 4);
    for n in 0..generation.max_tokens {
        let c = vocab.char(next).unwrap_or(char::REPLACEMENT_CHARACTER);
        text.push(c);
        emit(c);
        if stop.is_some_and(|s| text.ends_with(s)) || n + 1 == generation.max_tokens {
            break;
        }
        let p = feed(model, ws, &mut window, next)?;
        next = sampler.draw(p, ids)?;
    }
    Ok(text)
}

/// Steps `id`, the next token of the sequence whose last positions `window` holds, and returns
/// the step's first output. A model whose step holds at most `M::STEP_POSITIONS` positions (an
/// attention's cache) has its window slid first when it is full: the sequence starts again
/// from the last half of the window, which the step reads again, so that every token is
/// predicted from at least that many before it. Other models step on and keep no window.
fn feed<'w, M: Model>(
    model: &M,
    ws: &'w mut M::Workspace,
    window: &mut Vec<u32>,
    id: u32,
) -> Result<&'w [M::Elem], Error> {
    if let Some(limit) = M::STEP_POSITIONS {
        if window.len() >= limit {
            window.drain(..window.len() - limit / 2);
            M::reset_sequences(ws);
            for &kept in window.iter() {
                model.step_dyn(ws, &[Values::Ids(&[kept])])?;
            }
        }
        window.push(id);
    }
    model
        .step_dyn(ws, &[Values::Ids(&[id])])
        .map_err(Into::into)
}

/// The step's first output must hold a probability for every id of the vocabulary.
fn check_output<M: Model>(len: usize, ids: usize) -> Result<(), Error> {
    if len < ids {
        return Err(Error::Config(format!(
            "model `{}` returns {len} values per position but the vocabulary has {ids} \
             characters; generation needs a probability for each",
            M::NAME
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(sampling: Sampling, p: &[f64], n: usize) -> Vec<u32> {
        let mut s = Sampler::new(sampling).unwrap();
        (0..n).map(|_| s.draw(p, p.len()).unwrap()).collect()
    }

    #[test]
    fn greedy_takes_the_most_likely() {
        let greedy = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        };
        assert_eq!(draws(greedy, &[0.1, 0.5, 0.4], 3), [1, 1, 1]);
        let top1 = Sampling {
            top_k: 1,
            ..Sampling::default()
        };
        assert_eq!(draws(top1, &[0.1, 0.5, 0.4], 2), [1, 1]);
    }

    #[test]
    fn a_seed_gives_the_same_draws() {
        let p = [0.2, 0.3, 0.5];
        let s = Sampling {
            seed: 9,
            ..Sampling::default()
        };
        assert_eq!(draws(s, &p, 50), draws(s, &p, 50));
        assert_ne!(draws(s, &p, 50), draws(Sampling { seed: 10, ..s }, &p, 50));
    }

    #[test]
    fn draws_follow_the_distribution_and_its_cuts() {
        let p = [0.1, 0.2, 0.3, 0.4];
        let n = 20_000;
        let share = |d: &[u32], id: u32| d.iter().filter(|&&x| x == id).count() as f64 / n as f64;
        let all = draws(Sampling::default(), &p, n);
        for (id, q) in p.iter().enumerate() {
            // Binomial standard deviation at most 0.0035: 0.015 is over four of them.
            assert!((share(&all, id as u32) - q).abs() < 0.015, "id {id}");
        }
        // Temperature 0.5 squares the probabilities: 1, 4, 9, 16 over 30.
        let sharp = draws(
            Sampling {
                temperature: 0.5,
                ..Sampling::default()
            },
            &p,
            n,
        );
        assert!((share(&sharp, 3) - 16.0 / 30.0).abs() < 0.015);
        // The two most likely, renormalised: 3/7 and 4/7.
        let top2 = draws(
            Sampling {
                top_k: 2,
                ..Sampling::default()
            },
            &p,
            n,
        );
        assert_eq!(share(&top2, 0) + share(&top2, 1), 0.0);
        assert!((share(&top2, 2) - 3.0 / 7.0).abs() < 0.015);
        // 0.4 + 0.3 reaches 0.6: the nucleus is ids 3 and 2.
        let nucleus = draws(
            Sampling {
                top_p: 0.6,
                ..Sampling::default()
            },
            &p,
            n,
        );
        assert_eq!(share(&nucleus, 0) + share(&nucleus, 1), 0.0);
        assert!((share(&nucleus, 3) - 4.0 / 7.0).abs() < 0.015);
    }

    #[test]
    fn ids_past_the_vocabulary_and_bad_settings_are_refused() {
        let mut s = Sampler::new(Sampling::default()).unwrap();
        // Only the first two ids are candidates, however likely the third.
        for _ in 0..100 {
            assert!(s.draw(&[0.1f32, 0.1, 0.8], 2).unwrap() < 2);
        }
        assert!(s.draw(&[0.0f32, f32::NAN], 2).is_err());
        let bad = Sampling {
            temperature: -1.0,
            ..Sampling::default()
        };
        assert!(Sampler::new(bad)
            .unwrap_err()
            .to_string()
            .contains("temperature"));
        let bad = Sampling {
            top_p: 0.0,
            ..Sampling::default()
        };
        assert!(Sampler::new(bad).unwrap_err().to_string().contains("top_p"));
    }
}
