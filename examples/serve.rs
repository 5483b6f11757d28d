//! An OpenAI-compatible API over the local models, for scripts written against OpenAI's
//! legacy fine-tuning API.
//!
//! `cargo run --release --features serve --example serve -- --port 8080 --data serve-data/` serves
//! `http://127.0.0.1:8080/v1`: upload a prompt/completion JSONL file, fine-tune `babbage-002`
//! (the Markov model) or `davinci-002` (the drum GPT), poll the job, and complete with the
//! fine-tuned model, with the official SDKs or `fine_tune`/`continue --base-url`. Files, jobs
//! and models are kept in `--data`, so a restart loses nothing. The server is
//! `fine_drums_serve`; this file reads the command line around it.

/// The drum GPT allocates a tensor per operation: see the workspace manifest.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::serve::run)
}
