//! The built-in kit: each of the nine gmd9 drums synthesised from sines and noise.

use std::f32::consts::TAU;

use crate::error::{Error, Result};

/// Noise from a fixed seed (xorshift32), so that a kit is the same on every machine.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 as f32 / u32::MAX as f32) * 2.0 - 1.0
    }
}

/// A sine whose frequency falls from `start` to `end` Hz with time constant `fall` seconds.
fn sweep(rate: f32, len: f32, start: f32, end: f32, fall: f32, decay: f32) -> Vec<f32> {
    let n = (rate * len) as usize;
    let mut phase = 0f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate;
            let f = end + (start - end) * (-t / fall).exp();
            phase = (phase + TAU * f / rate) % TAU;
            phase.sin() * (-t / decay).exp()
        })
        .collect()
}

/// Noise through a one-pole high-pass (`bright` near 1 keeps only the top), decaying.
fn hiss(rate: f32, len: f32, bright: f32, decay: f32, seed: u32) -> Vec<f32> {
    let mut noise = Noise(seed);
    let (mut prev_in, mut prev_out) = (0f32, 0f32);
    (0..(rate * len) as usize)
        .map(|i| {
            let x = noise.next();
            let y = bright * (prev_out + x - prev_in);
            (prev_in, prev_out) = (x, y);
            y * (-(i as f32 / rate) / decay).exp()
        })
        .collect()
}

/// Inharmonic square waves, as cymbals ring, through the high-pass, decaying.
fn metal(rate: f32, len: f32, freqs: &[f32], decay: f32, seed: u32) -> Vec<f32> {
    let noise = hiss(rate, len, 0.9, decay, seed);
    let mut prev = (0f32, 0f32);
    (0..(rate * len) as usize)
        .map(|i| {
            let t = i as f32 / rate;
            let sq: f32 =
                freqs.iter().map(|f| if (t * f).fract() < 0.5 { 1.0 } else { -1.0 }).sum();
            let x = sq / freqs.len() as f32;
            let y = 0.95 * (prev.1 + x - prev.0);
            prev = (x, y);
            0.5 * y * (-t / decay).exp() + 0.5 * noise[i]
        })
        .collect()
}

fn mix(a: Vec<f32>, wa: f32, b: &[f32], wb: f32) -> Vec<f32> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| wa * a.get(i).copied().unwrap_or(0.0) + wb * b.get(i).copied().unwrap_or(0.0))
        .collect()
}

/// One sound per drum, at a sample rate.
#[derive(Clone, Debug)]
pub struct Kit {
    rate: u32,
    /// By gmd9 voice: kick, snare, closed hi-hat, open hi-hat, low, mid and high tom, crash,
    /// ride.
    sounds: Vec<Vec<f32>>,
}

impl Kit {
    /// The built-in kit at `rate` samples a second (8,000 to 192,000), synthesised in code.
    pub fn built_in(rate: u32) -> Result<Kit> {
        if !(8_000..=192_000).contains(&rate) {
            return Err(Error::Invalid {
                what: "sample rate",
                message: format!("{rate} (8000 to 192000)"),
            });
        }
        let r = rate as f32;
        let kick =
            mix(sweep(r, 0.45, 160.0, 48.0, 0.035, 0.22), 1.0, &hiss(r, 0.01, 0.5, 0.002, 1), 0.4);
        let snare =
            mix(sweep(r, 0.3, 260.0, 180.0, 0.02, 0.07), 0.55, &hiss(r, 0.3, 0.7, 0.09, 2), 0.8);
        let closed = hiss(r, 0.09, 0.97, 0.02, 3);
        let open = hiss(r, 0.7, 0.97, 0.22, 4);
        let tom = |f: f32| sweep(r, 0.6, f * 1.6, f, 0.06, 0.25);
        let crash = metal(r, 1.8, &[317.0, 461.0, 587.0, 733.0, 914.0, 1187.0], 0.8, 5);
        let ride = mix(
            metal(r, 1.4, &[411.0, 539.0, 823.0, 1061.0], 0.7, 6),
            0.6,
            &sweep(r, 1.4, 2350.0, 2350.0, 1.0, 0.5),
            0.2,
        );
        let sounds = vec![
            kick,
            snare,
            closed.iter().map(|x| 0.6 * x).collect(),
            open.iter().map(|x| 0.5 * x).collect(),
            tom(82.0),
            tom(110.0),
            tom(146.0),
            crash.iter().map(|x| 0.6 * x).collect(),
            ride.iter().map(|x| 0.5 * x).collect(),
        ];
        Ok(Kit { rate, sounds })
    }

    /// Samples a second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The sound of gmd9 voice `voice` (0 kick to 8 ride), if the kit has it.
    pub fn sound(&self, voice: usize) -> Option<&[f32]> {
        self.sounds.get(voice).map(Vec::as_slice)
    }
}
