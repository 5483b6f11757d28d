//! Rendering grooves to audio: the built-in kit, or a General MIDI SoundFont.

use std::error::Error;
use std::path::Path;

use crate::report::At;

/// What renders grooves to audio: the built-in kit, or a General MIDI SoundFont.
pub enum Renderer {
    /// The built-in kit, at its rate.
    Kit(fine_drums_audio::Kit),
    /// A SoundFont, and the rate to render at.
    Font(fine_drums_audio::SoundFont, u32),
}

impl Renderer {
    /// The SoundFont at `soundfont` (read once), or else the built-in kit, at `rate`.
    pub fn new(rate: u32, soundfont: Option<&Path>) -> Result<Renderer, Box<dyn Error>> {
        Ok(match soundfont {
            Some(sf) => Renderer::Font(
                fine_drums_audio::SoundFont::from_bytes(&std::fs::read(sf).at(sf)?).at(sf)?,
                rate,
            ),
            None => Renderer::Kit(fine_drums_audio::Kit::built_in(rate)?),
        })
    }

    /// Renders `groove` and writes it to `path` as WAV (atomically); the audio's length in
    /// seconds. Hits of pitches the kit has no drum for are said on stderr.
    pub fn write_wav(
        &self,
        groove: &fine_drums_codec::Groove,
        path: &Path,
    ) -> Result<f64, Box<dyn Error>> {
        let audio = match self {
            Renderer::Font(font, rate) => font.render(groove, *rate).at(path)?,
            Renderer::Kit(kit) => kit.render(groove).at(path)?,
        };
        if audio.skipped > 0 {
            eprintln!(
                "{}: {} hits of pitches the kit has no drum for, left silent",
                path.display(),
                audio.skipped
            );
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        fine_drums_dataset::fs::write_atomic(path, &audio.wav())?;
        Ok(audio.seconds())
    }
}
