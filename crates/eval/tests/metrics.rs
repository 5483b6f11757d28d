//! Each metric pinned on hand-made cases.

use std::collections::HashSet;

use fine_drums_codec::pattern::rock_groove;
use fine_drums_codec::{Context, Format, Groove, Hit, Velocity, Voice};
use fine_drums_eval::{
    Accuracy, Density, PROFILE_GROUPS, RollPiece, Validity, compare, distributions, kl,
    levenshtein, overlap, phrases, random, repeat, roll_bars, stabilities, structure, two_means,
};
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;

fn bars(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn levenshtein_counts_edits() {
    assert_eq!(levenshtein(b"", b""), 0);
    assert_eq!(levenshtein(b"abc", b""), 3);
    assert_eq!(levenshtein(b"", b"ab"), 2);
    assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
    assert_eq!(levenshtein(b"flaw", b"lawn"), 2);
    assert_eq!(levenshtein(b"o--o", b"o--o"), 0);
    assert_eq!(levenshtein(b"o-o-", b"-o-o"), 2);
}

#[test]
fn stability_is_the_distance_to_the_nearer_neighbour() {
    // a, a, b (1 edit from a), c (2 from b), c
    let b = bars(&["oooo", "oooo", "ooo-", "o---", "o---"]);
    assert_eq!(stabilities(&b), [0, 1, 0]);
    assert!(stabilities(&bars(&["o", "-"])).is_empty(), "no bar has two neighbours");
}

#[test]
fn two_means_finds_the_best_split() {
    let k = two_means(&[1.0, 2.0, 3.0, 10.0, 11.0, 12.0]).expect("clusters");
    assert_eq!((k.low, k.high, k.distance), (2.0, 11.0, 9.0));
    assert!((k.spread - 4.0 / 6.0).abs() < 1e-12, "{}", k.spread);
    let same = two_means(&[5.0, 5.0, 5.0]).expect("clusters");
    assert_eq!((same.distance, same.spread), (0.0, 0.0));
    assert!(two_means(&[1.0]).is_none());
}

#[test]
fn structure_counts_identical_and_duplicated_bars() {
    let training: HashSet<String> = ["aaaa", "bbbb"].iter().map(|s| s.to_string()).collect();
    let pieces = [
        RollPiece { bars: bars(&["aaaa", "aaaa", "aaaa", "bbbb"]), continuation: 2 },
        RollPiece { bars: bars(&["cccc", "cccd", "cccc", "zzzz"]), continuation: 2 },
    ];
    let s = structure(&pieces, &training);
    // piece 1: stabilities [0, 0] -> mean 0; piece 2: [1, 1] -> mean 1.
    assert_eq!(s.stability, 0.5);
    assert_eq!(s.identical, 0.5);
    // continuation bars: aaaa, bbbb (both in training), cccc, zzzz (neither).
    assert_eq!((s.duplicated, s.unseen), (0.5, 0.5));
    assert_eq!(s.curve, [0.5, 0.5]);
}

#[test]
fn roll_bars_follow_the_paper_layout() {
    let g = rock_groove(2, 100.0).expect("rock");
    let b = roll_bars(&g).expect("drumroll");
    assert_eq!(b.len(), 2);
    // First 16th of bar 1: crash, kick and hi-hat (columns c r s k h t).
    assert_eq!(&b[0][..6], "o--oo-");
    assert_eq!(b[1].len(), 96);
}

fn groove(hits: &[(u32, u8, u8)], offset: i32) -> Groove {
    let mut g = rock_groove(1, 120.0).expect("rock");
    g.bars[0].hits = hits
        .iter()
        .map(|&(step, v, vel)| Hit {
            step,
            offset,
            voice: Voice::new(v),
            velocity: Velocity::new(vel),
            length: 60,
        })
        .collect();
    g
}

#[test]
fn onset_f1_matches_within_the_tolerance() {
    let truth = groove(&[(0, 0, 100), (4, 1, 90), (8, 0, 100), (12, 1, 90)], 0);
    // Kick on 0 and 8 late by 30 ticks; snare on 4 only; a stray kick on 2.
    let mut generated = groove(&[(0, 0, 80), (2, 0, 80), (4, 1, 90), (8, 0, 100)], 0);
    for h in &mut generated.bars[0].hits {
        if h.voice == Voice::new(0) && h.step != 2 {
            h.offset = 30;
        }
    }
    let mut a = Accuracy::new(2);
    a.add(&truth, &generated, 60);
    assert_eq!(a.counts, [[2, 1, 0], [1, 0, 1]]);
    assert!((a.f1(0) - 0.8).abs() < 1e-12);
    assert!((a.f1(1) - 2.0 / 3.0).abs() < 1e-12);
    assert!((a.f1_all() - 6.0 / 8.0).abs() < 1e-12);
    assert!((a.velocity_mae() - 20.0 / 3.0).abs() < 1e-12);
    // With no tolerance, the late kicks miss.
    let mut strict = Accuracy::new(2);
    strict.add(&truth, &generated, 0);
    assert_eq!(strict.counts[0], [0, 3, 2]);
}

#[test]
fn overlap_and_kl_on_known_histograms() {
    let human = distributions(&[groove(&[(0, 0, 100), (4, 1, 100)], 0)], &["k".into(), "s".into()]);
    let same = distributions(&[groove(&[(8, 0, 100), (12, 1, 100)], 0)], &["k".into(), "s".into()]);
    let kicks = distributions(&[groove(&[(0, 0, 10), (8, 0, 10)], 0)], &["k".into(), "s".into()]);
    assert_eq!(overlap(&human.voices, &same.voices), 1.0);
    assert!(kl(&human.voices, &same.voices).abs() < 1e-9);
    assert_eq!(overlap(&human.voices, &kicks.voices), 0.5);
    let c = compare(&human, &kicks);
    assert_eq!(c.velocity.0, 0.0, "100 and 10 fall in different bins");
    assert!(c.velocity.1 > 10.0, "a bin the system never fills costs a lot: {}", c.velocity.1);
    assert_eq!(human.density, [1.0, 1.0]);
    assert_eq!(human.hits_per_bar.counts[1], 1.0, "two hits fall in the 2-3 bin");
    let late = distributions(&[groove(&[(0, 0, 100)], 30)], &["k".into()]);
    // 30 ticks late at 120 ticks a 16th is +0.25 step: the +0.2 bin.
    assert_eq!(late.microtiming.counts[7], 1.0);
}

#[test]
fn the_onset_profile_compares_where_each_voice_group_plays() {
    let names: Vec<String> =
        ["kick", "snare", "closed hi-hat", "open hi-hat", "crash"].map(String::from).to_vec();
    // Kick on 1 and 3, snare on 2, a closed and an open hi-hat, a crash.
    let human =
        groove(&[(0, 0, 100), (4, 1, 100), (6, 2, 80), (7, 3, 80), (8, 0, 100), (0, 4, 100)], 0);
    // The second kick on the "&" of 3 instead; the rest the same.
    let system =
        groove(&[(0, 0, 100), (4, 1, 100), (6, 2, 80), (7, 3, 80), (10, 0, 100), (0, 4, 100)], 0);
    let (human, system) = (distributions(&[human], &names), distributions(&[system], &names));
    assert_eq!(human.onset_profile.len(), PROFILE_GROUPS.len());
    assert_eq!(human.onset_profile[0].counts[8], 1.0, "a kick on the 9th 16th");
    assert_eq!(human.onset_profile[2].counts[6..8], [1.0, 1.0], "both hi-hats in one group");
    assert_eq!(human.onset_profile[3].counts[0], 1.0, "the crash with the other voices");
    let c = compare(&human, &system);
    assert_eq!(c.onset_profile.len(), PROFILE_GROUPS.len());
    assert_eq!(c.onset_profile[0].0, 0.5, "one kick of two moved");
    for (name, (area, _)) in PROFILE_GROUPS.iter().zip(&c.onset_profile).skip(1) {
        assert_eq!(*area, 1.0, "{name}");
    }
}

#[test]
fn phrases_measure_drift_phrase_end_changes_toms_and_crashes() {
    let names: Vec<String> =
        ["kick", "snare", "closed hi-hat", "low tom", "crash"].map(String::from).to_vec();
    let beat = [(0, 0, 100), (4, 1, 100), (8, 0, 100), (12, 1, 100)];
    let prompt = {
        let mut g = groove(&beat, 0);
        g.bars.push(g.bars[0].clone());
        g
    };
    // Bars 3 to 6: the groove, a fill on bar 4 (two toms in place of the last snare), a crash
    // on bar 5's first 16th, then the groove.
    let mut cont = groove(&beat, 0);
    let mut fill = groove(&[(0, 0, 100), (4, 1, 100), (8, 0, 100), (12, 3, 100), (14, 3, 90)], 0);
    let mut crash = groove(&[(0, 0, 100), (0, 4, 110), (4, 1, 100), (8, 0, 100), (12, 1, 100)], 0);
    cont.bars.append(&mut fill.bars);
    cont.bars.append(&mut crash.bars);
    cont.bars.push(cont.bars[0].clone());
    let ph = phrases([(&prompt, &cont)], &names);
    assert_eq!(ph.pieces, 1);
    // 4 hits a bar in the prompt; 4, 5, 5 and 4 in the continuation.
    assert!((ph.density_drift - 0.5).abs() < 1e-12, "{}", ph.density_drift);
    // Bar 4 departs from bar 3 by 3 (snare out, two toms in); bars 3, 5, 6 by 0, 4, 1.
    assert_eq!(ph.phrase_end_change, 3.0);
    assert!((ph.other_change - 5.0 / 3.0).abs() < 1e-12, "{}", ph.other_change);
    assert!((ph.extra_change() - 4.0 / 3.0).abs() < 1e-12);
    assert_eq!(ph.toms_per_bar, 0.5);
    assert_eq!(ph.crash_on_phrase_start, 1.0, "bar 5 is the one phrase start, with a crash");
}

#[test]
fn validity_sorts_outputs() {
    let format = Format::default();
    let ctx = Context::default();
    let mut v = Validity::default();
    v.add(&format, "Kh..h. Sh..h. Kh..Kh. Sh..h.\n", &ctx);
    v.add(&format, "Kh..h. Sh..h. Kh..Kh. Sh..h.\njunk here\n", &ctx);
    v.add(&format, "nothing\n", &ctx);
    v.add(&format, "", &ctx);
    assert_eq!((v.strict, v.lenient, v.none), (1, 1, 2));
    assert_eq!(v.shares(), [0.25, 0.25, 0.5]);
}

#[test]
fn baselines_repeat_and_draw_at_the_human_density() {
    let prompt = rock_groove(2, 100.0).expect("rock");
    let r = repeat(&prompt, 5);
    assert_eq!(r.bars.len(), 5);
    assert_eq!(r.bars[2].hits, prompt.bars[0].hits);
    assert_eq!(r.bars[3].hits, prompt.bars[1].hits);
    // Every step of the rock groove's kick and hat pattern, drawn 400 bars long.
    let d = Density::of(&[rock_groove(64, 100.0).expect("rock")], 9, 16);
    assert_eq!(d.p[2][0], 1.0, "the hi-hat plays every downbeat");
    assert_eq!(d.p[2][1], 0.0);
    let g = random(&prompt, &d, 400, &mut SplitMix64::seed_from_u64(1));
    let hats = g
        .bars
        .iter()
        .filter(|b| b.hits.iter().any(|h| h.step == 0 && h.voice == Voice::new(2)))
        .count();
    assert_eq!(hats, 400);
    let ghosts = g.bars.iter().filter(|b| b.hits.iter().any(|h| h.step == 11)).count();
    assert!((150..250).contains(&ghosts), "a ghost note in half the bars: {ghosts}");
    assert_eq!(
        random(&prompt, &d, 3, &mut SplitMix64::seed_from_u64(9)),
        random(&prompt, &d, 3, &mut SplitMix64::seed_from_u64(9))
    );
}

#[test]
fn pictures_are_svg() {
    let g = rock_groove(4, 100.0).expect("rock");
    let svg = fine_drums_eval::svg::piano_roll(
        "a <piece>",
        &["k".into(), "s".into(), "h".into()],
        2,
        &[("human", &g), ("model", &g)],
    );
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("a &lt;piece&gt;"));
    assert!(svg.contains(">model</text>"));
    let curves = fine_drums_eval::svg::stability_curves(&[("human", vec![1.0, 2.0, 3.0])]);
    assert!(curves.contains("<polyline"));
}

#[test]
fn the_papers_structure_counts_their_bars_their_way() {
    use fine_drums_eval::paper;
    let bar = |row: &str| format!("{row}\n").repeat(16);
    // Four bars, A A B A, as published: 6 columns, 16 lines a bar, no separators.
    let (a, b) = (bar("--o-o-"), bar("o---o-"));
    let text = format!("{a}{a}{b}{a}");
    let bars = paper::bar_strings(&text);
    assert_eq!(bars.len(), 4);
    assert_eq!(bars[0].len(), 127, "16 lines with their newlines, joined by newlines");
    // Bar 2 equals bar 1; bar 3 differs from both neighbours in two columns of 16 lines.
    assert_eq!(paper::stabilities(&bars), [0.0, 32.0]);
    // Only the first 16 bars count, and the figures pool bars across pieces.
    let long = a.repeat(20);
    assert_eq!(paper::bar_strings(&long).len(), 16);
    let s = paper::structure(&[&text, &long]);
    assert_eq!(s.pieces, 2);
    assert_eq!(s.stability, 32.0 / 16.0);
    assert_eq!(s.identical, 15.0 / 16.0);
    assert_eq!((s.distance, s.spread), ((32.0 + 0.0) / 2.0, 0.0));
}

#[test]
fn the_papers_text_of_a_groove_is_theirs() {
    use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
    use fine_drums_eval::paper;
    let rock = fine_drums_codec::pattern::rock_groove(2, 100.0).unwrap();
    let bytes = midi::write(&rock, &WriteOptions::default()).unwrap();
    let g = midi::read(&bytes, &ReadOptions::lossless()).unwrap();
    let text = paper::text_of(&g).expect("4/4");
    let lines: Vec<&str> = text.lines().collect();
    // 16 bars of 16ths, 6 columns: crash, ride, snare, kick, hi-hat, tom; two bars played.
    assert_eq!(lines.len(), 256);
    assert_eq!(&lines[..5], ["o--oo-", "------", "----o-", "------", "--o-o-"]);
    assert!(lines[32..].iter().all(|l| *l == "------"));
    // Their quantisation: a note 59 ticks into the bar (480 a quarter) is on the first
    // 16th, one at 60 on the second; a note past the 16th bar ends the reading.
    let mut g2 = g.clone();
    g2.bars.truncate(1);
    g2.bars[0].hits = vec![g.bars[0].hits[0]];
    (g2.bars[0].hits[0].step, g2.bars[0].hits[0].offset) = (0, 59);
    assert_eq!(paper::text_of(&g2).unwrap().lines().next(), Some("---o--"));
    g2.bars[0].hits[0].offset = 60;
    assert_eq!(paper::text_of(&g2).unwrap().lines().nth(1), Some("---o--"));
    // Meters not over 4 were skipped.
    g2.bars[0].meter = fine_drums_codec::Meter::new(6, 8).unwrap();
    assert_eq!(paper::text_of(&g2), None);
}
