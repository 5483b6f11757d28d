//! Prepares fine-tuning files from a folder of drum MIDI.
//!
//! `cargo run --release --example prepare -- ../shared/datasets/groove --out data/` writes
//! `train.jsonl`, `validation.jsonl` and `test.jsonl` (legacy prompt/completion, for
//! `babbage-002` and `davinci-002`), their chat (`*.chat.jsonl`) and plain-text (`*.txt`)
//! twins, and `manifest.json`, then prints what went in and what it costs to train on.

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::prepare::run)
}
