//! Headless Chromium for the report tests (included by `#[path]`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser the tests use: `FINE_DRUMS_CHROMIUM`, else the first of `chromium`,
/// `chromium-browser` and `google-chrome` on the `PATH` (Debian's `chromium` package,
/// which `.ci/run` installs). The test that needs it is `#[ignore]`d with the reason and
/// runs with `cargo test -- --ignored`: asked for, a missing browser fails it.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("FINE_DRUMS_CHROMIUM") {
        return PathBuf::from(path);
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
        .find(|p| p.is_file());
    found.expect(
        "no headless browser (chromium, chromium-browser or google-chrome on the PATH, or \
         FINE_DRUMS_CHROMIUM; `apt-get install chromium`)",
    )
}

/// Runs `browser` headless on the page at `page` with `args` (a sandbox-free, GPU-free
/// profile in a folder of its own); its standard output.
pub fn headless(browser: &Path, page: &Path, args: &[&str]) -> String {
    let profile = page.with_file_name("chromium-profile");
    let url = format!("file://{}", page.canonicalize().expect("the page exists").display());
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .output()
        .expect("the browser runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
