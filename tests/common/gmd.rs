//! Finding the Groove MIDI Dataset from any test of the workspace (included by `#[path]`).

use std::path::PathBuf;

/// The dataset folder: `FINE_DRUMS_GMD`, else `../shared/datasets/groove` beside the
/// workspace. `None` (with the reason printed) when it is missing outside CI; under
/// `CI=true` a missing dataset fails the test instead of skipping it.
pub fn gmd() -> Option<PathBuf> {
    let dir = std::env::var_os("FINE_DRUMS_GMD").map(PathBuf::from).unwrap_or_else(|| {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = here.ancestors().find(|p| p.join("crates").is_dir()).unwrap_or(&here);
        root.join("../shared/datasets/groove")
    });
    if dir.join("info.csv").is_file() {
        return Some(dir);
    }
    let msg = format!("GMD not found at {} (set FINE_DRUMS_GMD)", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}
