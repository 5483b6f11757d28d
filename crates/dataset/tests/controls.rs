//! The controls: tempo and intensity buckets, departure and the fill marker.

use fine_drums_codec::beat::BeatOptions;
use fine_drums_dataset::controls::{departure, fills, intensity, tempo_bucket};

#[test]
fn buckets_have_their_edges() {
    assert_eq!(tempo_bucket(79.9), 0);
    assert_eq!(tempo_bucket(80.0), 1);
    assert_eq!(tempo_bucket(139.0), 3);
    assert_eq!(tempo_bucket(200.0), 4);
    let beat = BeatOptions::default();
    assert_eq!(intensity("... ... ... ...", &beat), Some(1));
    assert_eq!(intensity("not a bar at all", &beat), None);
    let loud = "KHC.H.H.H H.H.H.H SH.H.H.H H.H.H.H";
    assert_eq!(intensity(loud, &beat), Some(5));
}

#[test]
fn a_change_that_stays_is_no_fill() {
    let beat = BeatOptions::default();
    let a = "Kh..h. Sh..h. Kh..Kh. Sh..h.";
    let b = "S.s.S.s T.T.T.T L.L.L.L S.S.S.S";
    assert_eq!(fills(&[a, a, b, b, b], &beat, false), [false; 5]);
    assert_eq!(fills(&[a, b], &beat, false), [false, true]);
    assert_eq!(fills(&[a, b], &beat, true), [true, true]);
    assert_eq!(fills(&["... ...ss", b], &beat, true), [false, true]);
    assert_eq!(departure(a, a, &beat), 0);
    assert_eq!(departure(a, "... ...", &beat), 13);
    assert_eq!(departure("Kh... ... ... ...", "K... ... ... ...", &beat), 1);
}
