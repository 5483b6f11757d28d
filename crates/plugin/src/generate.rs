//! The generating side: the drum GPT continues the captured bars (on a background thread,
//! never the audio thread).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use fine_drums_codec::{Pitch, VoiceMap};
use fine_drums_continue::{ContinueOptions, continue_midi};
use fine_drums_dataset::{Manifest, Preparer};
use fine_drums_gpt::train::TrainOptions;
use serde::{Deserialize, Serialize};

use crate::capture::Capture;
use crate::error::{Error, Result};
use crate::phrase::{Note, Phrase};

/// What to generate: the plugin's parameters at the moment it was asked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ask {
    /// Bars to play. Default: 4.
    pub bars: usize,
    /// Captured bars the model reads before them. Default: 2 (what the built-in model was
    /// trained with).
    pub prompt_bars: usize,
    /// Sampling temperature. Default: the built-in model's, 1.2.
    pub temperature: f32,
    /// A GMD style (`rock`, `funk`, …); `None`: the model reads it from the bars.
    pub style: Option<String>,
    /// Intensity of every new bar, 1 to 5; `None`: the model's choice.
    pub intensity: Option<u8>,
    /// Bars whose number (from 1, as the host shows them) is a multiple of this are fills;
    /// `None`: the model places its own.
    pub fill_every: Option<u32>,
    /// A one-bar fill, whatever `bars` says ("Fill next bar").
    pub fill: bool,
    /// The drummer's feel, 0 (on the grid) to 1. Default: 1.
    pub feel_amount: f32,
    /// The seed. Default: 0.
    pub seed: u64,
    /// General MIDI pitches out (kick 36, snare 38, closed hi-hat 42, …) rather than the
    /// pitches the captured bars played each drum with. Default: false.
    pub general_midi: bool,
}

impl Default for Ask {
    fn default() -> Ask {
        Ask {
            bars: 4,
            prompt_bars: 2,
            temperature: fine_drums_gpt::TEMPERATURE,
            style: None,
            intensity: None,
            fill_every: None,
            fill: false,
            feel_amount: 1.0,
            seed: 0,
            general_midi: false,
        }
    }
}

/// The model and how its prompts are written.
pub struct Generator {
    backend: fine_drums_gpt::Gpt,
    model: String,
    manifest: Manifest,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator").field("model", &self.model).finish_non_exhaustive()
    }
}

/// The most captured bars one prompt file holds: the bars before its last
/// [`prompt_bars`](Ask::prompt_bars) only number the phrase (4, 8 and 16 bars).
const FILE_BARS: usize = 32;

impl Generator {
    /// The drum GPT in `model` (a folder `fine_tune --backend gpt` wrote), or the built-in
    /// model when `None`. On the CPU.
    pub fn load(model: Option<&Path>) -> Result<Generator> {
        let name = model.map_or(fine_drums_gpt::EMBEDDED.to_string(), |p| p.display().to_string());
        let cpu = fine_drums_gpt::Device::Cpu;
        let loaded = match model {
            None => fine_drums_gpt::Model::embedded(&cpu),
            Some(dir) => fine_drums_gpt::Model::load(dir, &cpu),
        }
        .map_err(|source| Error::Model { model: name.clone(), source })?;
        let mut preparer = Preparer::default();
        preparer.template = loaded.template.clone();
        let backend = fine_drums_gpt::Gpt::new(Default::default(), TrainOptions::default());
        backend.insert_model(&name, loaded);
        Ok(Generator { backend, model: name, manifest: Manifest::of_settings(&preparer) })
    }

    /// The model's name: its folder, or the built-in one's.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The phrase for the bars after bar `follows`, which the drummer is playing as it is
    /// asked: the model reads the bars captured before it, writes that bar too, and the
    /// phrase is what it writes after.
    pub fn generate(&self, capture: &Capture, follows: i64, ask: &Ask) -> Result<Phrase> {
        if ask.bars == 0 || ask.prompt_bars == 0 {
            return Err(Error::invalid("bars", "bars and prompt bars must be 1 or more"));
        }
        if !(0.0..=1.0).contains(&ask.feel_amount) {
            return Err(Error::invalid("feel amount", format!("{} (0 to 1)", ask.feel_amount)));
        }
        let (midi, first, signature) = capture.midi_before(follows, FILE_BARS)?;
        // The model writes bar `follows` too (the one the drummer is playing as it is asked),
        // and that bar is dropped: the phrase is the bars after it, from the next bar line.
        let bars = if ask.fill { 1 } else { ask.bars };
        let mut options = ContinueOptions::new(&self.model);
        (options.bars, options.prompt_bars) = (bars + 1, Some(ask.prompt_bars));
        (options.temperature, options.top_p) = (ask.temperature, fine_drums_gpt::TOP_P);
        (options.seed, options.feel_amount) = (Some(ask.seed), ask.feel_amount);
        options.humanise = ask.feel_amount > 0.0;
        options.steer.style = ask.style.clone();
        options.steer.tempo = Some(signature.bpm);
        if let Some(i) = ask.intensity {
            options.steer.intensity = vec![Some(i); bars + 1];
        }
        if ask.fill {
            options.steer.fills = vec![None, Some(true)];
        } else if let Some(n) = ask.fill_every.filter(|&n| n > 0) {
            // Bar `follows + i` (from 0) is bar `follows + i + 1` as the host shows it.
            let shown = |i: usize| follows + i as i64 + 1;
            options.steer.fills =
                (0..=bars).map(|i| Some(shown(i).rem_euclid(i64::from(n)) == 0)).collect();
        }
        let out = block_on(continue_midi(&midi, &self.manifest, &self.backend, &options))
            .map_err(|source| Error::Continue { first, last: follows - 1, source })?;

        let groove = &out.groove;
        let kept = out.report.bars_kept.min(groove.bars.len());
        let tpq = f64::from(groove.ticks_per_quarter);
        let bar_quarters = signature.bar_quarters();
        let mut notes = Vec::new();
        let new = &groove.bars[groove.bars.len() - kept..];
        for (i, bar) in new.iter().enumerate().skip(1) {
            for hit in &bar.hits {
                let tick = groove.grid.step_tick(hit.step, groove.ticks_per_quarter)
                    + i64::from(hit.offset);
                let within = tick as f64 / tpq;
                // A bar the model wrote longer than the host's (another meter) is cut there.
                if within >= bar_quarters {
                    continue;
                }
                let at = ((i - 1) as f64 * bar_quarters + within).max(0.0);
                let played = groove.voices.pitch_of(hit.voice).as_int();
                let pitch = if ask.general_midi { general_midi(played) } else { played };
                let length = (f64::from(hit.length.max(1)) / tpq).min(0.25);
                let velocity = hit.velocity.as_int().max(1);
                notes.push(Note { at, pitch, velocity, on: true });
                notes.push(Note { at: at + length, pitch, velocity: 0, on: false });
            }
        }
        notes.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.on.cmp(&b.on)));
        let bars = kept.saturating_sub(1);
        Ok(Phrase { bars, signature, notes, seed: ask.seed, first_bar: follows + 1 })
    }
}

/// The General MIDI pitch of the drum that `pitch` plays (GrooVAE's nine voices), or `pitch`
/// itself when it is none of them.
fn general_midi(pitch: u8) -> u8 {
    let map = VoiceMap::Gmd9;
    map.voice_of(Pitch::new(pitch)).map_or(pitch, |v| map.pitch_of(v).as_int())
}

/// Wakes the thread that waits on a future.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to its end on this thread (the backends' futures need no runtime: the drum
/// GPT's work is on the CPU, in the future's own poll).
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
