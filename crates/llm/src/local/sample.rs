//! Drawing a step from the model's distribution: temperature, top-k and top-p.

use crate::random;

/// Sampling settings for [`Model::generate`](super::Model::generate).
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

/// Draws a symbol from `probs` (changed in place) under `sampling`.
pub(super) fn sample(probs: &mut [f64], sampling: Sampling, rng: &mut impl rand_core::Rng) -> u32 {
    if sampling.temperature <= 0.0 {
        let best = probs
            .iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b });
        return best.0 as u32;
    }
    if (sampling.temperature - 1.0).abs() > f32::EPSILON {
        let inv = 1.0 / f64::from(sampling.temperature);
        for p in probs.iter_mut() {
            *p = p.powf(inv);
        }
    }
    if sampling.top_k > 0 || sampling.top_p < 1.0 {
        let mut order: Vec<u32> = (0..probs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            probs[b as usize].total_cmp(&probs[a as usize]).then(a.cmp(&b))
        });
        let total: f64 = probs.iter().sum();
        let mut keep =
            if sampling.top_k > 0 { sampling.top_k.min(order.len()) } else { order.len() };
        if sampling.top_p < 1.0 {
            let mut mass = 0.0;
            for (i, &s) in order.iter().enumerate().take(keep) {
                mass += probs[s as usize] / total;
                if mass >= f64::from(sampling.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
        for &s in &order[keep.max(1)..] {
            probs[s as usize] = 0.0;
        }
    }
    let total: f64 = probs.iter().sum();
    let mut u = random::unit(rng) * total;
    let mut last = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            last = i;
            if u < p {
                return i as u32;
            }
            u -= p;
        }
    }
    last as u32
}
