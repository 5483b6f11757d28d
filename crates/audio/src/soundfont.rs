//! Rendering through a General MIDI SoundFont, with rustysynth: each hit is a note on the
//! percussion channel at its own pitch and velocity.

use std::sync::Arc;

use fine_drums_codec::Groove;

use crate::error::{Error, Result};
use crate::render::{Audio, limit, timeline};

/// A General MIDI SoundFont (`.sf2`), read from its bytes.
#[derive(Clone)]
pub struct SoundFont(Arc<rustysynth::SoundFont>);

impl std::fmt::Debug for SoundFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SoundFont").field(&self.0.get_info().get_bank_name()).finish()
    }
}

impl SoundFont {
    /// Reads a SoundFont from the bytes of an `.sf2` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<SoundFont> {
        let font = rustysynth::SoundFont::new(&mut std::io::Cursor::new(bytes))
            .map_err(|e| Error::SoundFont(Box::new(e)))?;
        Ok(SoundFont(Arc::new(font)))
    }

    /// Renders `groove` at `rate` samples a second (8,000 to 192,000; rustysynth's own
    /// range is 16,000 to 192,000) to exactly its length, each hit a note of its pitch on
    /// the percussion channel, mixed to mono.
    pub fn render(&self, groove: &Groove, rate: u32) -> Result<Audio> {
        if !(16_000..=192_000).contains(&rate) {
            return Err(Error::Invalid {
                what: "sample rate",
                message: format!("{rate} (16000 to 192000 for a SoundFont)"),
            });
        }
        let (mut hits, end) = timeline(groove)?;
        hits.sort_by(|a, b| a.0.total_cmp(&b.0));
        let settings = rustysynth::SynthesizerSettings::new(rate as i32);
        let mut synth = rustysynth::Synthesizer::new(&self.0, &settings)
            .map_err(|e| Error::SoundFont(Box::new(e)))?;
        let n = (end * f64::from(rate)).round() as usize;
        let (mut left, mut right) = (vec![0f32; n], vec![0f32; n]);
        let channel = rustysynth::Synthesizer::PERCUSSION_CHANNEL as i32;
        let mut done = 0;
        for (at, pitch, velocity) in hits {
            let at = ((at * f64::from(rate)).round().max(0.0) as usize).min(n);
            if at > done {
                synth.render(&mut left[done..at], &mut right[done..at]);
                done = at;
            }
            synth.note_on(channel, i32::from(pitch), i32::from(velocity));
        }
        if n > done {
            synth.render(&mut left[done..], &mut right[done..]);
        }
        let mut samples: Vec<f32> = left.iter().zip(&right).map(|(l, r)| 0.5 * (l + r)).collect();
        limit(&mut samples);
        Ok(Audio { rate, samples, skipped: 0 })
    }
}
