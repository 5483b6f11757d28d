//! Fine-tunes a model on the files `prepare` wrote.
//!
//! `cargo run --release --example fine_tune -- data/` trains the offline local model (no
//! key, no network) and prints its path; `--backend openai` uploads the JSONL files (the
//! chat ones for a chat model: gpt-4o-mini-2024-07-18 by default), creates the job, and
//! follows it with live events until it ends; `--base-url` points it at any compatible
//! server, the project's own `serve` among them (which fine-tunes babbage-002 and
//! davinci-002 offline).
//! `--backend lora --base <folder>` trains LoRA adapters on a pretrained model in a local
//! Hugging Face folder (SmolLM2, Qwen2.5, Llama, GPT-2) and saves them in PEFT's format.
//! `--dry-run` prints what would be sent and what it would cost, and sends nothing.

/// The drum GPT allocates a tensor per operation: see the workspace manifest.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::fine_tune::run)
}
