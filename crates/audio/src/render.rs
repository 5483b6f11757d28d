//! Groove to samples: each hit's time from the bars, their meters and tempos; each hit's sound
//! from the kit, louder with its velocity; the sum, kept below full scale.

use fine_drums_codec::{Groove, Pitch, VoiceMap};

use crate::error::{Error, Result};
use crate::kit::Kit;

/// The longest audio a groove may render to, in seconds (an hour: 635 MB of 44.1 kHz
/// samples in memory).
pub const MAX_SECONDS: u32 = 3600;

/// Mono audio.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Audio {
    /// Samples a second.
    pub rate: u32,
    /// Samples, within -1 to 1.
    pub samples: Vec<f32>,
    /// Hits whose pitch is no drum of the kit's (none for gmd9 grooves), left silent.
    pub skipped: usize,
}

impl Audio {
    /// The length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }

    /// The loudest sample's magnitude.
    pub fn peak(&self) -> f32 {
        self.samples.iter().fold(0f32, |m, s| m.max(s.abs()))
    }

    /// The audio as a WAV file: 16-bit PCM, mono.
    pub fn wav(&self) -> Vec<u8> {
        let data = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + data as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes()); // the fmt chunk's size
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * 2).to_le_bytes()); // bytes a second
        out.extend_from_slice(&2u16.to_le_bytes()); // bytes a frame
        out.extend_from_slice(&16u16.to_le_bytes()); // bits a sample
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
        }
        out
    }
}

/// A hit as heard: when (seconds), which General MIDI pitch, how hard.
pub(crate) type Heard = (f64, u8, u8);

/// When each hit sounds, and the groove's end in seconds.
pub(crate) fn timeline(groove: &Groove) -> Result<(Vec<Heard>, f64)> {
    let tpq = f64::from(groove.ticks_per_quarter.max(1));
    let mut tempo = groove.tempo_at_bar(0);
    let mut start = 0f64;
    let mut hits = Vec::with_capacity(groove.hit_count());
    for (i, bar) in groove.bars.iter().enumerate() {
        let ticks = bar
            .meter
            .bar_ticks(groove.ticks_per_quarter)
            .map_err(|source| Error::Codec { bar: i + 1, source })?;
        // The bar's tempo segments: (first tick, seconds at it, seconds a tick).
        let mut segments = vec![(0i64, start, f64::from(tempo.micros()) / 1e6 / tpq)];
        let mut changes = bar.tempos.clone();
        changes.sort_by_key(|c| c.tick);
        for c in changes {
            let (t0, s0, per) = *segments.last().unwrap_or(&(0, start, 0.0));
            let tick = i64::from(c.tick);
            segments.push((
                tick,
                s0 + (tick - t0) as f64 * per,
                f64::from(c.tempo.micros()) / 1e6 / tpq,
            ));
            tempo = c.tempo;
        }
        let at = |tick: i64| -> f64 {
            let seg = segments.iter().rev().find(|s| s.0 <= tick).unwrap_or(&segments[0]);
            seg.1 + (tick - seg.0) as f64 * seg.2
        };
        for h in &bar.hits {
            let tick =
                groove.grid.step_tick(h.step, groove.ticks_per_quarter) + i64::from(h.offset);
            let pitch = groove.voices.pitch_of(h.voice).as_int();
            hits.push((at(tick), pitch, h.velocity.as_int()));
        }
        start = at(i64::from(ticks));
        if start > f64::from(MAX_SECONDS) {
            return Err(Error::TooLong { bar: i + 1, seconds: start, limit: MAX_SECONDS });
        }
    }
    Ok((hits, start))
}

/// Scales `samples` below full scale if they reach it.
pub(crate) fn limit(samples: &mut [f32]) {
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    if peak > 0.99 {
        let k = 0.99 / peak;
        samples.iter_mut().for_each(|s| *s *= k);
    }
}

impl Kit {
    /// Renders `groove` (any voice map: each hit sounds as the gmd9 drum its pitch belongs
    /// to) to exactly its length: every bar, at its meter and tempo. Sounds still ringing at
    /// the end are cut there.
    pub fn render(&self, groove: &Groove) -> Result<Audio> {
        let (hits, end) = timeline(groove)?;
        let rate = f64::from(self.rate());
        let mut samples = vec![0f32; (end * rate).round() as usize];
        let mut skipped = 0;
        for (at, pitch, velocity) in hits {
            let voice = VoiceMap::Gmd9.voice_of(Pitch::new(pitch));
            let Some(sound) = voice.and_then(|v| self.sound(v.index())) else {
                skipped += 1;
                continue;
            };
            let gain = (f32::from(velocity) / 127.0).powf(1.5);
            let first = (at * rate).round() as i64;
            // A hit played just before the start keeps what falls after it.
            let skip = usize::try_from(-first).unwrap_or(0);
            let from = usize::try_from(first).unwrap_or(0);
            if from >= samples.len() || skip >= sound.len() {
                continue;
            }
            for (out, s) in samples[from..].iter_mut().zip(&sound[skip..]) {
                *out += gain * s;
            }
        }
        limit(&mut samples);
        Ok(Audio { rate: self.rate(), samples, skipped })
    }
}
