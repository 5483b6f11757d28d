//! Gives a drum MIDI file a drummer's feel: velocity and microtiming, learnt from the GMD's
//! drummers, or taken from a reference clip, by an amount.
//!
//! `cargo run --release --example humanize -- stiff.mid --like played.mid --amount 0.7`
//! writes `stiff.humanized.mid`.

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::humanize::run)
}
