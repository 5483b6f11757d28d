//! Runs the codec over the whole Groove MIDI Dataset and reports round trips, token costs and
//! the hits each voice map keeps.
//!
//! `cargo run --release --example codec_report -- ../shared/datasets/groove`

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::codec_report::run)
}
