//! How the commands report: errors that name their file, the exit code with every cause,
//! progress bars, warnings on stderr, and seeds that can be given back.

use std::error::Error;
use std::path::Path;

/// Says on stderr when OPENAI_API_KEY is set but will not be sent to the base URL.
pub fn warn_withheld_key(base_url: Option<&str>, allowed: bool) {
    // Without the OpenAI backend there is no key to send.
    #[cfg(not(feature = "openai"))]
    let _ = (base_url, allowed);
    #[cfg(feature = "openai")]
    {
        let Ok(config) = fine_drums_openai::Config::from_env_for(base_url) else { return };
        if config.api_key.is_some()
            && !allowed
            && !fine_drums_openai::key_safe_for(&config.base_url)
        {
            eprintln!(
                "note: OPENAI_API_KEY is not sent to {}: plain http to another machine (--allow-insecure-key sends it)",
                fine_drums_openai::redact(&config.base_url)
            );
        }
    }
}

/// Says on stderr which notes of `what` a voice map drops (`counts[pitch]`, from
/// [`Groove::unmapped`](fine_drums_codec::Groove::unmapped)), if any: nothing is lost
/// silently.
pub fn warn_unmapped(
    what: &dyn std::fmt::Display,
    map: fine_drums_codec::VoiceMap,
    counts: &[u32; 128],
) {
    let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
    if total > 0 {
        let list: Vec<String> =
            (0..128).filter(|&p| counts[p] > 0).map(|p| format!("{p} (x{})", counts[p])).collect();
        eprintln!(
            "{what}: {total} notes dropped, at pitches the {map} map does not list: {}",
            list.join(", ")
        );
    }
}

/// A seed from the clock, for runs not given one (printed, so that they can be made again).
pub fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    // Small enough to type back.
    now.map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
}

/// An error with the file or stream it concerns.
#[derive(Debug)]
pub struct AtPath {
    /// The file or stream.
    pub path: String,
    /// What went wrong with it.
    pub source: Box<dyn Error + Send + Sync>,
}

impl std::fmt::Display for AtPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.source)
    }
}

impl Error for AtPath {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Names the file an error concerns: `std::fs::read(&p).at(&p)?`.
pub trait At<T> {
    /// The error, if any, with `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T, AtPath>;
}

impl<T, E: Into<Box<dyn Error + Send + Sync>>> At<T> for Result<T, E> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, AtPath> {
        self.map_err(|e| AtPath { path: path.as_ref().display().to_string(), source: e.into() })
    }
}

/// The end of every example's `main`: success, or the error and the errors behind it on
/// standard error, and exit 1.
pub fn exit(result: Result<(), Box<dyn Error>>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut told = e.to_string();
            eprintln!("error: {told}");
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                // A message that already quotes its source is not repeated.
                if !told.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                told = text;
                source = s.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}
