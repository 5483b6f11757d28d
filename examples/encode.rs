//! Encodes drum MIDI files as text.
//!
//! `cargo run --example encode -- groove.mid` prints the beat-format text;
//! `cargo run --example encode -- ../shared/datasets/groove --out texts/` writes one `.txt`
//! per MIDI file found below the folder, keeping the folder layout.

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::encode::run)
}
