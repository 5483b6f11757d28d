//! The options the commands share: the text format, the backend, sampling, and the manifest
//! prompts are built with.

use std::error::Error;
use std::path::Path;

use crate::report::{At, warn_withheld_key};

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
    /// The format these options describe.
    pub fn format(&self) -> Result<fine_drums_codec::Format, Box<dyn Error>> {
        use fine_drums_codec::{Format, Levels, beat::BeatOptions};
        Ok(match self.format.as_str() {
            "drumroll" => Format::DRUMROLL,
            "exact" => Format::EXACT,
            _ => {
                let mut o = BeatOptions::default();
                o.grid = self.grid;
                o.levels = Levels::new(self.levels)?;
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

/// The backend options of `continue`, `evaluate` and `fine_tune`, turned into the llm
/// crate's [`Settings`](fine_drums_backends::Settings), which builds the backend.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// gpt (the drum GPT, offline, the default), markov (the offline Markov model; `local`
    /// also names it), lora (a pretrained model with LoRA adapters, offline), or openai
    /// (OpenAI or any compatible server).
    #[arg(long, default_value = "gpt", value_parser = ["gpt", "markov", "local", "lora", "openai"])]
    pub backend: String,
    /// The model: for gpt, a model folder from fine_tune (default: the built-in
    /// drums-small-gmd); for markov, `local` (the prompt's own statistics) or a .fdlm file
    /// from fine_tune; for lora, an adapter folder from fine_tune --backend lora (its base
    /// model is the folder its adapter_config.json names); for openai, e.g.
    /// ft:babbage-002:org:drums:id.
    #[arg(long)]
    pub model: Option<String>,
    /// Base URL of an OpenAI-compatible API (default: OPENAI_BASE_URL or OpenAI's). The key
    /// (OPENAI_API_KEY) is optional for servers other than OpenAI's.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Send OPENAI_API_KEY even over plain http to a host other than this machine (it is
    /// withheld otherwise: anyone on the way could read it).
    #[arg(long)]
    pub allow_insecure_key: bool,
    /// Which endpoint completes (openai): chat for gpt-* models and completions for others
    /// (auto), or always one of them.
    #[arg(long, default_value = "auto", value_parser = ["auto", "completions", "chat"])]
    pub endpoint: String,
}

/// Sampling options of `continue` and `evaluate`; the defaults depend on the backend.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature (0 = always the likeliest; default: 1.2 for the drum GPT, 0.8
    /// when it writes bars between others, chosen on the validation split with its top-p,
    /// else 1).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass (default: 0.75 for the drum GPT, else 1).
    #[arg(long)]
    pub top_p: Option<f32>,
}

impl SamplingArgs {
    /// The temperature and top-p for the backend of `settings`.
    pub fn of(&self, settings: &fine_drums_backends::Settings) -> (f32, f32) {
        let (t, p) = settings.sampling();
        (self.temperature.unwrap_or(t), self.top_p.unwrap_or(p))
    }

    /// The temperature and top-p for writing bars between others (an infill).
    pub fn of_infill(&self, settings: &fine_drums_backends::Settings) -> (f32, f32) {
        let (t, p) = settings.infill_sampling();
        (self.temperature.unwrap_or(t), self.top_p.unwrap_or(p))
    }
}

/// A backend that continues prompts, the model to ask it for, and the manifest its prompts
/// are built with.
pub struct Completer {
    /// The backend.
    pub backend: Box<dyn fine_drums_llm::Complete>,
    /// The model's name there.
    pub model: String,
    /// The manifest: the one given, else the default settings with the model's template.
    pub manifest: fine_drums_dataset::Manifest,
}

impl Completer {
    /// The backend `settings` name, for continuing; `manifest` is the --manifest path. A
    /// trained model brings its own template when no manifest is given.
    pub fn of(
        settings: &fine_drums_backends::Settings,
        manifest: Option<&Path>,
    ) -> Result<Completer, Box<dyn Error>> {
        if settings.kind == fine_drums_backends::Kind::Lora && settings.model.is_none() {
            return Err("--backend lora needs --model <adapter folder> (fine_tune --backend lora writes one)".into());
        }
        let given = manifest.map(|p| self::manifest(Some(p), None)).transpose()?;
        let c = settings.completer(given.as_ref().map(|m| &m.template))?;
        let manifest = match given {
            Some(m) => m,
            None => self::manifest(None, c.template.as_ref())?,
        };
        Ok(Completer { backend: c.backend, model: c.model, manifest })
    }
}

impl BackendArgs {
    /// The backend settings of these arguments (and, for OpenAI, a note on stderr when the
    /// key will be withheld).
    pub fn settings(&self) -> Result<fine_drums_backends::Settings, Box<dyn Error>> {
        let mut s = fine_drums_backends::Settings::of(self.backend.parse()?);
        s.model = self.model.clone();
        s.base_url = self.base_url.clone();
        s.allow_insecure_key = self.allow_insecure_key;
        s.endpoint = self.endpoint.parse()?;
        if s.kind == fine_drums_backends::Kind::OpenAi {
            warn_withheld_key(s.base_url.as_deref(), s.allow_insecure_key);
        }
        Ok(s)
    }
}

/// The manifest at `path`, else one with the default settings (or `template`'s).
pub fn manifest(
    path: Option<&Path>,
    template: Option<&fine_drums_dataset::Template>,
) -> Result<fine_drums_dataset::Manifest, Box<dyn Error>> {
    use fine_drums_dataset::{Manifest, Preparer};
    if let Some(p) = path {
        let text = std::fs::read_to_string(p).at(p)?;
        return Ok(Manifest::from_json(&text).at(p)?);
    }
    let mut p = Preparer::default();
    if let Some(t) = template {
        p.template = t.clone();
    }
    Ok(Manifest::of_settings(&p))
}
