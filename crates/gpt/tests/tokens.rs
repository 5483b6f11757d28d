//! The vocabulary: closed under the grammar, and a round trip for any bar.

use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::{Format, Meter};
use fine_drums_gpt::tokens::{BAR, Vocabulary};

const TEXT: &str = "KhC..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh..h. Kh..Kh.ss Sh..h.\n";

#[test]
fn known_steps_are_one_token_and_unknown_ones_are_spelled() {
    let v = Vocabulary::learn(BeatOptions::default(), [TEXT], 1).expect("a vocabulary");
    let e = v.encode(TEXT).expect("tokens");
    // A bar token and 16 step tokens a bar.
    assert_eq!(e.len(), 34);
    assert_eq!(e.ids[0], BAR);
    assert_eq!(e.slot[1..17].to_vec(), (1..=16).collect::<Vec<u16>>());
    assert_eq!(e.bar[20], 1);
    // A step training never saw: a tom and a ride, spelled hit by hit.
    let unseen = "Kh..h. Sh..h. Kh..Kh. Sh..lR.\n";
    let e = v.encode(unseen).expect("an unseen step is still tokens");
    assert!(e.len() > 17);
    assert_eq!(v.decode(&e.ids, Meter::FOUR_FOUR).expect("decodes"), unseen);
}

#[test]
fn any_bar_the_codec_writes_round_trips() {
    let beat = BeatOptions::default();
    let v = Vocabulary::new(beat, [String::from("Kh")]).expect("a vocabulary");
    let format = Format::Beat(beat);
    for bars in 1..6 {
        let groove = fine_drums_codec::pattern::rock_groove(bars, 100.0).expect("a groove");
        let text = format.encode(&groove).expect("text");
        let e = v.encode(&text).expect("tokens");
        assert_eq!(v.decode(&e.ids, Meter::FOUR_FOUR).expect("decodes"), text);
    }
    // Marks: a meter change and a tempo change.
    let text = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n3/4 q=96.5 Kh..h. Sh..h. h.h.h.h\n";
    let e = v.encode(text).expect("tokens");
    assert_eq!(v.decode(&e.ids, Meter::FOUR_FOUR).expect("decodes"), text);
}

#[test]
fn bad_text_and_bad_tokens_are_errors() {
    let v = Vocabulary::new(BeatOptions::default(), Vec::<String>::new()).expect("a vocabulary");
    let e = v.encode("Kh..h. Sh..h.\nKh..h. Sh..x.\n").expect_err("x is no drum");
    assert!(e.to_string().starts_with("line 2: "), "{e}");
    let e = v.decode(&[BAR, BAR], Meter::FOUR_FOUR).expect_err("a bar inside a bar");
    assert!(e.to_string().contains("token 1"), "{e}");
    assert!(Vocabulary::new(BeatOptions::default(), [String::from("junk!")]).is_err());
}
