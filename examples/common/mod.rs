//! Helpers the examples share: finding MIDI files, format options, progress bars, the
//! default manifest and the exit code.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Files below `dir` whose names end in `.mid` or `.midi`, sorted.
pub fn midi_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The text format options every example takes.
#[derive(clap::Args, Debug, Clone)]
pub struct FormatArgs {
    /// Text format: beat (compact, for language models), drumroll (Zhang & Callison-Burch
    /// 2023) or exact (lossless).
    #[arg(long, default_value = "beat", value_parser = ["beat", "drumroll", "exact"])]
    pub format: String,
    /// Step grid of the beat format: 4, 8, 8t, 16, 16t, 32, 32t or 64.
    #[arg(long, default_value = "16")]
    pub grid: fine_drums_codec::Grid,
    /// Velocity levels of the beat format, 1 to 127.
    #[arg(long, default_value_t = 3)]
    pub levels: u8,
    /// Microtiming of the beat format, in divisions of a step (e.g. 8), or "off".
    #[arg(long, default_value = "off")]
    pub micro: String,
    /// Voice map: gmd9, paper6 or full (full only with --format exact).
    #[arg(long, default_value = "gmd9")]
    pub map: fine_drums_codec::VoiceMap,
    /// Start beat-format text with a #beat header so that it decodes on its own.
    #[arg(long)]
    pub header: bool,
}

impl FormatArgs {
    pub fn format(&self) -> Result<fine_drums_codec::Format, String> {
        use fine_drums_codec::{Format, Levels, beat::BeatOptions};
        Ok(match self.format.as_str() {
            "drumroll" => Format::DRUMROLL,
            "exact" => Format::EXACT,
            _ => {
                let mut o = BeatOptions::default();
                o.grid = self.grid;
                o.levels = Levels::new(self.levels).map_err(|e| e.to_string())?;
                o.microtiming = match self.micro.as_str() {
                    "off" => None,
                    m => Some(
                        m.parse()
                            .map_err(|_| format!("--micro takes a number or off, not {m:?}"))?,
                    ),
                };
                o.voices = self.map;
                o.header = self.header;
                Format::Beat(o)
            }
        })
    }
}

/// The end of every example's `main`: success, or the error on standard error and exit 1.
pub fn exit(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
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

/// The manifest at `path`, else one with the default settings (or `template`'s).
pub fn manifest(
    path: Option<&Path>,
    template: Option<&fine_drums_dataset::Template>,
) -> Result<fine_drums_dataset::Manifest, String> {
    use fine_drums_dataset::{Manifest, Preparer};
    if let Some(p) = path {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        return Manifest::from_json(&text).map_err(|e| format!("{}: {e}", p.display()));
    }
    let mut p = Preparer::default();
    if let Some(t) = template {
        p.template = t.clone();
    }
    Ok(Manifest::of_settings(&p))
}
