//! Continues a drum MIDI file with a language model, after its last bar.
//!
//! `cargo run --release --example continue -- examples/grooves/rock.mid` uses the built-in
//! drum GPT (no key, no network) and writes `examples/grooves/rock.continued.mid`: every bar
//! of the input, then 14 new ones. `--backend local` uses the Markov model; `--backend openai
//! --model ft:...` uses OpenAI or, with `--base-url`, any OpenAI-compatible server.

/// The drum GPT allocates a tensor per operation: see the workspace manifest.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::continuation::run)
}
