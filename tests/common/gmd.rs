//! Finding the Groove MIDI Dataset from any test of the workspace (included by `#[path]`).

use std::path::PathBuf;

/// The dataset folder: `FINE_DRUMS_GMD`, else `../shared/datasets/groove` beside the
/// workspace. The tests that need it are `#[ignore]`d with the reason (so a run without it
/// shows them as ignored, never as passed), and run with `cargo test -- --ignored`, as
/// `.ci/run` does: asked for, a missing dataset fails the test.
pub fn gmd() -> PathBuf {
    let dir = std::env::var_os("FINE_DRUMS_GMD").map(PathBuf::from).unwrap_or_else(|| {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = here.ancestors().find(|p| p.join("crates").is_dir()).unwrap_or(&here);
        root.join("../shared/datasets/groove")
    });
    assert!(
        dir.join("info.csv").is_file(),
        "the GMD is not at {} (set FINE_DRUMS_GMD to its folder)",
        dir.display()
    );
    dir
}
