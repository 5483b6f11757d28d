//! The host's bar grid, arithmetic only.

use fine_drums_plugin::{Clock, Signature};

#[test]
fn bar_lines_fall_on_exact_samples() {
    let s = Signature::of_host(Some(7), Some(8), Some(93.0));
    assert_eq!(s.bar_quarters(), 3.5);
    // The block starts a quarter into bar 2 (from 0).
    let c = Clock::new(48_000.0, s, 7.25, Some((7.0, 2)));
    assert_eq!(c.next_bar_line(), (10.5, 3));
    let spq: f64 = 48_000.0 * 60.0 / 93.0;
    assert_eq!(c.sample_of(10.5), ((10.5 - 7.25) * spq).round() as i64);
    assert_eq!(c.bar_of(c.at_sample(0)), (2, 0.25));
    // Without the host's bar, bars are counted from the song's start.
    let c = Clock::new(48_000.0, s, 7.0, None);
    assert_eq!((c.bar, c.next_bar_line()), (2, (7.0, 2)));
}

#[test]
fn a_host_that_counts_a_bar_line_in_the_bar_before_is_corrected() {
    let c = Clock::new(44_100.0, Signature::DEFAULT, 8.0, Some((4.0, 1)));
    assert_eq!((c.bar, c.bar_start), (2, 8.0));
}

#[test]
fn nonsense_from_the_host_is_four_four_at_120() {
    assert_eq!(Signature::of_host(Some(0), Some(3), Some(f64::NAN)), Signature::DEFAULT);
}
