//! Finding a General MIDI SoundFont from any test of the workspace (included by `#[path]`).

/// The bytes of the SoundFont the tests use: `FINE_DRUMS_SOUNDFONT`, else Debian's TimGM6mb
/// (`apt-get install timgm6mb-soundfont`, which `.ci/run` does). The tests that need it are
/// `#[ignore]`d with the reason and run with `cargo test -- --ignored`: asked for, a missing
/// SoundFont fails the test.
pub fn soundfont() -> (std::path::PathBuf, Vec<u8>) {
    let path = std::env::var_os("FINE_DRUMS_SOUNDFONT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/sounds/sf2/TimGM6mb.sf2".into());
    match std::fs::read(&path) {
        Ok(bytes) => (path, bytes),
        Err(e) => panic!("no SoundFont at {} ({e}; set FINE_DRUMS_SOUNDFONT)", path.display()),
    }
}
