//! Decodes text (yours or a model's) back into a MIDI file.
//!
//! `cargo run --example decode -- groove.txt --out groove.mid`

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::decode::run)
}
