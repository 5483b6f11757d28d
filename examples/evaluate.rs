//! Scores drum continuations on the GMD test split: human drummers, repeat-the-prompt,
//! random at human density, the offline local model, and any other backend.
//!
//! `cargo run --release --example evaluate -- ../shared/datasets/groove --out eval/` writes
//! `eval/results.md`, `eval/results.json`, `eval/stability.svg`, a piano roll per piece
//! in `eval/pictures/`, recordings in `eval/audio/`, and `eval/report.html` over them all.
//! Model outputs are saved in `eval/outputs/` as they arrive, and a rerun reuses them, so
//! an interrupted run loses nothing. The protocol is `fine_drums_eval::Protocol`; this file
//! reads and writes files around it.

/// The drum GPT allocates a tensor per operation: see the workspace manifest.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::evaluate::run)
}
