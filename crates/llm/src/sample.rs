//! The one sampler of every offline backend: temperature, top-k, top-p and a seeded generator
//! (think of candle-transformers' `LogitsProcessor`). The Markov model draws its steps with it,
//! and the drum GPT its tokens, so that the same settings mean the same thing in both.
//!
//! ```
//! use fine_drums_llm::random;
//! use fine_drums_llm::sample::Sampling;
//!
//! let mut sampling = Sampling::default();
//! sampling.top_k = 1; // only the heaviest can be drawn
//! let mut weights = [0.1, 0.7, 0.2];
//! assert_eq!(sampling.draw(&mut weights, &mut random::seeded(7)), 1);
//! ```

use crate::random;

/// Sampling settings: how a backend draws from its distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Sampling {
    /// 0 picks the likeliest step every time; 1 samples the model as it is. Default: 1.
    pub temperature: f32,
    /// Keep only the `top_k` likeliest steps (0: all). Default: 0.
    pub top_k: usize,
    /// Keep the likeliest steps up to this probability mass. Default: 1 (all).
    pub top_p: f32,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling { temperature: 1.0, top_k: 0, top_p: 1.0 }
    }
}

impl Sampling {
    /// Settings of `temperature`, `top_k` (0: all) and `top_p` (1: all).
    pub fn new(temperature: f32, top_k: usize, top_p: f32) -> Sampling {
        Sampling { temperature, top_k, top_p }
    }

    /// Draws an index from `weights` (non-negative, already at this sampling's temperature;
    /// changed in place): only the `top_k` heaviest and, of those, the heaviest up to
    /// `top_p` of the mass can be drawn. The drum GPT draws its tokens with this too.
    pub fn draw(&self, weights: &mut [f64], rng: &mut impl rand_core::Rng) -> u32 {
        if self.top_k > 0 || self.top_p < 1.0 {
            let mut order: Vec<u32> = (0..weights.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                weights[b as usize].total_cmp(&weights[a as usize]).then(a.cmp(&b))
            });
            let total: f64 = weights.iter().sum();
            let mut keep = if self.top_k > 0 { self.top_k.min(order.len()) } else { order.len() };
            if self.top_p < 1.0 {
                let mut mass = 0.0;
                for (i, &s) in order.iter().enumerate().take(keep) {
                    mass += weights[s as usize] / total;
                    if mass >= f64::from(self.top_p) {
                        keep = i + 1;
                        break;
                    }
                }
            }
            for &s in &order[keep.max(1)..] {
                weights[s as usize] = 0.0;
            }
        }
        let total: f64 = weights.iter().sum();
        let mut u = random::unit(rng) * total;
        let mut last = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                last = i;
                if u < w {
                    return i as u32;
                }
                u -= w;
            }
        }
        last as u32
    }
}
