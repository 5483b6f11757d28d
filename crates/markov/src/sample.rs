//! Drawing a step from the model's distribution: the temperature, then the shared sampler.

use fine_drums_llm::sample::Sampling;

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
    sampling.draw(probs, rng)
}
