//! The plugin's parameters: every one automatable, and its session (the captured bars, the
//! last phrase) saved with them in the host's project.
// nice-plug's `Params` is an unsafe trait (the wrapper reads parameters through pointers);
// its derive writes the `unsafe impl`, and nothing else here is unsafe.
#![allow(unsafe_code)]

use std::sync::Arc;

use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::*;

use crate::generate::Ask;
use crate::session::{Saved, Shared};

/// A GMD style, or "auto" (the model reads it from the bars).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Style {
    #[id = "auto"]
    Auto,
    #[id = "afrobeat"]
    Afrobeat,
    #[id = "afrocuban"]
    Afrocuban,
    #[id = "blues"]
    Blues,
    #[id = "country"]
    Country,
    #[id = "dance"]
    Dance,
    #[id = "funk"]
    Funk,
    #[id = "gospel"]
    Gospel,
    #[id = "highlife"]
    Highlife,
    #[id = "hiphop"]
    Hiphop,
    #[id = "jazz"]
    Jazz,
    #[id = "latin"]
    Latin,
    #[id = "middleeastern"]
    Middleeastern,
    #[id = "neworleans"]
    Neworleans,
    #[id = "pop"]
    Pop,
    #[id = "punk"]
    Punk,
    #[id = "reggae"]
    Reggae,
    #[id = "rock"]
    Rock,
    #[id = "soul"]
    Soul,
}

impl Style {
    /// The style's name as the model knows it; `None` for auto.
    pub fn name(self) -> Option<String> {
        match self {
            Style::Auto => None,
            s => Style::ids().and_then(|ids| ids.get(s.to_index())).map(|s| s.to_string()),
        }
    }
}

/// Which pitches the phrase plays each drum with.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voices {
    /// The pitches the captured bars played each drum with (the GMD's Roland kit, or
    /// whatever the track uses).
    #[id = "gmd"]
    #[name = "As played (GMD)"]
    AsPlayed,
    /// General MIDI: kick 36, snare 38, closed hi-hat 42, open 46, toms 43/47/50, crash 49,
    /// ride 51.
    #[id = "gm"]
    #[name = "General MIDI"]
    GeneralMidi,
}

/// The parameters.
#[derive(Params)]
pub struct DrumParams {
    /// Press (a rising edge) to play the model's bars after the one playing, from the next
    /// bar line.
    #[id = "cont"]
    pub continue_: BoolParam,
    /// Press for a one-bar fill at the next bar line.
    #[id = "fill"]
    pub fill_next: BoolParam,
    /// Continue on its own after every captured phrase of `prompt bars` bars.
    #[id = "auto"]
    pub auto: BoolParam,
    /// Bars to generate.
    #[id = "bars"]
    pub bars: IntParam,
    /// Captured bars the model reads.
    #[id = "prompt"]
    pub prompt_bars: IntParam,
    /// Sampling temperature.
    #[id = "temp"]
    pub temperature: FloatParam,
    /// The style asked for.
    #[id = "style"]
    pub style: EnumParam<Style>,
    /// The intensity asked for (0: auto, 1 to 5).
    #[id = "inten"]
    pub intensity: IntParam,
    /// Bars whose number is a multiple of this are fills (0: the model's own).
    #[id = "fevery"]
    pub fill_every: IntParam,
    /// How much of the drummer's feel the phrase gets.
    #[id = "feel"]
    pub feel_amount: FloatParam,
    /// The seed: the same seed and bars give the same phrase.
    #[id = "seed"]
    pub seed: IntParam,
    /// Press for a new seed (the seed parameter plus the presses so far).
    #[id = "reseed"]
    pub new_seed: BoolParam,
    /// Which pitches the phrase plays.
    #[id = "voices"]
    pub voices: EnumParam<Voices>,
    /// Whether the captured notes pass through to the output while a phrase plays.
    #[id = "thru"]
    pub pass_through: BoolParam,
    /// The session: the captured bars, the last phrase, the seed presses and the model's
    /// folder, saved in the host's project.
    #[persist = "session"]
    pub session: SessionField,
}

impl DrumParams {
    /// The parameters at their defaults, saving the session in `shared`.
    pub fn new(shared: Arc<Shared>) -> DrumParams {
        let ask = Ask::default();
        DrumParams {
            continue_: BoolParam::new("Continue", false),
            fill_next: BoolParam::new("Fill next bar", false),
            auto: BoolParam::new("Auto continue", false),
            bars: IntParam::new("Bars", ask.bars as i32, IntRange::Linear { min: 1, max: 16 }),
            prompt_bars: IntParam::new(
                "Prompt bars",
                ask.prompt_bars as i32,
                IntRange::Linear { min: 1, max: 8 },
            ),
            temperature: FloatParam::new(
                "Temperature",
                ask.temperature,
                FloatRange::Linear { min: 0.0, max: 2.0 },
            )
            .with_step_size(0.01),
            style: EnumParam::new("Style", Style::Auto),
            intensity: IntParam::new("Intensity", 0, IntRange::Linear { min: 0, max: 5 })
                .with_value_to_string(Arc::new(
                    |v| {
                        if v == 0 { "auto".into() } else { v.to_string() }
                    },
                )),
            fill_every: IntParam::new("Fill every", 0, IntRange::Linear { min: 0, max: 16 })
                .with_unit(" bars")
                .with_value_to_string(Arc::new(|v| {
                    if v == 0 { "the model's".into() } else { v.to_string() }
                })),
            feel_amount: FloatParam::new(
                "Feel",
                ask.feel_amount,
                FloatRange::Linear { min: 0.0, max: 1.0 },
            )
            .with_step_size(0.01),
            seed: IntParam::new("Seed", 0, IntRange::Linear { min: 0, max: 99_999 }),
            new_seed: BoolParam::new("New seed", false),
            voices: EnumParam::new("Voices", Voices::AsPlayed),
            pass_through: BoolParam::new("Pass through", true),
            session: SessionField(shared),
        }
    }

    /// What to generate now: the parameters' values, and `fill` for a one-bar fill.
    pub fn ask(&self, fill: bool, seed_presses: u64) -> Ask {
        Ask {
            bars: self.bars.value().max(1) as usize,
            prompt_bars: self.prompt_bars.value().max(1) as usize,
            temperature: self.temperature.value(),
            style: self.style.value().name(),
            intensity: u8::try_from(self.intensity.value()).ok().filter(|&i| i > 0),
            fill_every: u32::try_from(self.fill_every.value()).ok().filter(|&n| n > 0),
            fill,
            feel_amount: self.feel_amount.value().clamp(0.0, 1.0),
            seed: u64::try_from(self.seed.value()).unwrap_or(0) + seed_presses,
            general_midi: self.voices.value() == Voices::GeneralMidi,
        }
    }
}

/// The session as a persistent field: saving takes in what the audio thread captured since
/// the last look, loading replaces the session.
pub struct SessionField(pub Arc<Shared>);

impl<'a> PersistentField<'a, Saved> for SessionField {
    fn set(&self, new_value: Saved) {
        self.0.restore(new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Saved) -> R,
    {
        self.0.with_saved(f)
    }
}
