//! Writes the small example groove that the README's first command uses, made by the
//! project's own pattern code (no dataset involved).
//!
//! `cargo run --example make_groove -- examples/grooves/rock.mid --bars 4 --bpm 96`

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::make_groove::run)
}
