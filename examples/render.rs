//! Renders a drum MIDI file to a WAV file with the built-in synthesised kit (nothing to
//! download), or through any General MIDI SoundFont with `--soundfont`:
//! `cargo run --release --example render -- examples/grooves/rock.mid`.

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::render::run)
}
