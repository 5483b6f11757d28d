//! Integration tests of fine-drums-feel: the built-in feel, and what it does to bars on the grid.

use fine_drums_codec::Groove;
use fine_drums_codec::pattern::rock_groove;
use fine_drums_feel::Feel;

const SNARE: usize = 1;
const KICK: usize = 0;

/// The mean offset in ticks of `voice`'s hits.
fn mean_offset(g: &Groove, voice: usize) -> f64 {
    let offs: Vec<f64> = g
        .bars
        .iter()
        .flat_map(|b| &b.hits)
        .filter(|h| h.voice.index() == voice)
        .map(|h| f64::from(h.offset))
        .collect();
    offs.iter().sum::<f64>() / offs.len() as f64
}

#[test]
fn the_built_in_feel_is_whole_and_bad_tables_are_refused() {
    let feel = Feel::gmd();
    assert!(!feel.is_empty());
    assert_eq!(Feel::from_json(&feel.to_json()).expect("round trip"), feel);
    let err = Feel::from_json("{not json").expect_err("garbage");
    assert!(err.to_string().contains("not a feel table"), "{err}");
    let short = r#"{"levels":3,"classes":{"0/0/2":{"velocity":[1],"offset":[1]}}}"#;
    let err = Feel::from_json(short).expect_err("short bins");
    assert!(err.to_string().contains("class 0/0/2"), "{err}");
}

#[test]
fn humanised_bars_keep_their_hits_and_take_the_prompts_feel() {
    let feel = Feel::gmd();
    // A prompt whose drummer plays the snare a sixth of a 16th late (480 ticks a quarter).
    let mut prompt = rock_groove(2, 100.0).expect("rock");
    for h in prompt.bars.iter_mut().flat_map(|b| b.hits.iter_mut()) {
        if h.voice.index() == SNARE {
            h.offset = 20;
        }
    }
    let grid = rock_groove(8, 100.0).expect("rock");
    let mut new = grid.clone();
    feel.humanise(&mut new, &prompt, 7);
    // The same hits on the same steps, now with offsets inside the step and varied loudness.
    for (a, b) in grid.bars.iter().zip(&new.bars) {
        let steps = |bar: &fine_drums_codec::Bar| -> Vec<(u32, usize)> {
            bar.hits.iter().map(|h| (h.step, h.voice.index())).collect()
        };
        assert_eq!(steps(a), steps(b));
        assert!(b.hits.iter().all(|h| (-60..60).contains(&h.offset)), "{:?}", b.hits);
    }
    let velocities: std::collections::BTreeSet<u8> =
        new.bars.iter().flat_map(|b| &b.hits).map(|h| h.velocity.as_int()).collect();
    assert!(velocities.len() > 10, "{velocities:?}");
    // The snare stays late; the kick, which the prompt plays on the grid, stays near it.
    assert!(mean_offset(&new, SNARE) > 12.0, "{}", mean_offset(&new, SNARE));
    assert!(mean_offset(&new, KICK).abs() < 8.0, "{}", mean_offset(&new, KICK));
    // The first beat of the bars does not start before them.
    assert!(new.bars[0].hits.iter().filter(|h| h.step == 0).all(|h| h.offset >= 0));
    // The same seed gives the same feel; another seed another.
    let mut again = grid.clone();
    feel.humanise(&mut again, &prompt, 7);
    assert_eq!(again, new);
    let mut other = grid.clone();
    feel.humanise(&mut other, &prompt, 8);
    assert_ne!(other, new);
}
