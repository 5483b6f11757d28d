//! Numbers from a seeded generator. The generator is SplitMix64 (rand_xoshiro): the same seed
//! gives the same numbers on every platform, and the same numbers as the llm crate's sampling
//! draws for that seed.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

/// The generator of a seed.
pub(crate) fn seeded(seed: u64) -> SplitMix64 {
    SplitMix64::seed_from_u64(seed)
}

/// A number in `[0, 1)`, from the top 53 bits of the next number.
pub(crate) fn unit(rng: &mut (impl Rng + ?Sized)) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
