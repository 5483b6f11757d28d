//! Numbers from a seeded generator, as every backend's sampling and the OpenAI client's retry
//! jitter use them, so that one seed means the same numbers everywhere. The generator is
//! SplitMix64 (rand_xoshiro): the same seed gives the same numbers on every platform.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

/// The generator of a seed.
pub fn seeded(seed: u64) -> SplitMix64 {
    SplitMix64::seed_from_u64(seed)
}

/// A number in `[0, 1)`, from the top 53 bits of the next number.
pub fn unit(rng: &mut (impl Rng + ?Sized)) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
