//! Integration tests of fine-drums-llm, built as one binary: the shared sampler.

use fine_drums_llm::random;
use fine_drums_llm::sample::Sampling;
use proptest::prelude::*;

fn draws(sampling: Sampling, weights: &[f64], seed: u64, count: usize) -> Vec<u32> {
    let mut rng = random::seeded(seed);
    (0..count).map(|_| sampling.draw(&mut weights.to_vec(), &mut rng)).collect()
}

#[test]
fn the_same_seed_draws_the_same_indices() {
    let weights = [0.1, 0.2, 0.3, 0.4];
    let s = Sampling::default();
    assert_eq!(draws(s, &weights, 9, 200), draws(s, &weights, 9, 200));
    assert_ne!(draws(s, &weights, 9, 200), draws(s, &weights, 10, 200));
}

#[test]
fn draws_follow_the_weights() {
    let weights = [1.0, 3.0, 0.0, 6.0];
    let got = draws(Sampling::default(), &weights, 1, 20_000);
    let share = |i: u32| got.iter().filter(|&&g| g == i).count() as f64 / got.len() as f64;
    assert_eq!(share(2), 0.0, "a weight of 0 is never drawn");
    for (i, want) in [(0, 0.1), (1, 0.3), (3, 0.6)] {
        assert!((share(i) - want).abs() < 0.02, "index {i}: {} against {want}", share(i));
    }
}

#[test]
fn top_k_and_top_p_keep_only_the_heaviest() {
    let weights = [0.05, 0.5, 0.15, 0.3];
    let top1 = Sampling::new(1.0, 1, 1.0);
    assert!(draws(top1, &weights, 3, 500).iter().all(|&i| i == 1));
    let top2 = Sampling::new(1.0, 2, 1.0);
    assert!(draws(top2, &weights, 3, 500).iter().all(|&i| i == 1 || i == 3));
    // The heaviest up to 0.7 of the mass: 0.5, then 0.3 reaches it.
    let nucleus = Sampling::new(1.0, 0, 0.7);
    let got = draws(nucleus, &weights, 3, 2_000);
    assert!(got.iter().all(|&i| i == 1 || i == 3));
    assert!(got.contains(&1) && got.contains(&3));
    // A top_p below the heaviest weight still keeps that one.
    let tiny = Sampling::new(1.0, 0, 0.01);
    assert!(draws(tiny, &weights, 3, 200).iter().all(|&i| i == 1));
}

proptest! {
    #[test]
    fn a_draw_is_always_an_index_with_weight(
        weights in prop::collection::vec(0.0f64..10.0, 1..40),
        top_k in 0usize..8,
        top_p in 0.0f32..=1.0,
        seed in any::<u64>(),
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0.0));
        let i = Sampling::new(1.0, top_k, top_p).draw(&mut weights.clone(), &mut random::seeded(seed));
        prop_assert!((i as usize) < weights.len());
        prop_assert!(weights[i as usize] > 0.0);
    }
}
