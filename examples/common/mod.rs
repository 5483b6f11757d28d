//! Helpers the examples share: finding MIDI files, format and backend options, errors that
//! name their file, progress bars, the default manifest and the exit code.
#![allow(dead_code)]

use std::error::Error;
use std::path::{Path, PathBuf};

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

/// Says on stderr when OPENAI_API_KEY is set but will not be sent to the base URL.
pub fn warn_withheld_key(base_url: Option<&str>, allowed: bool) {
    let Ok(config) = fine_drums_openai::Config::from_env_for(base_url) else { return };
    if config.api_key.is_some() && !allowed && !fine_drums_openai::key_safe_for(&config.base_url) {
        eprintln!(
            "note: OPENAI_API_KEY is not sent to {}: plain http to another machine (--allow-insecure-key sends it)",
            fine_drums_openai::redact(&config.base_url)
        );
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

/// The recordings behind `evaluate`'s report.
#[derive(clap::Args, Debug, Clone)]
pub struct AudioArgs {
    /// Record the first N pieces for the report's players: each system's prompt and
    /// continuation as WAV (about 1.5 MB a piece and system at 22.05 kHz); 0 for none.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub audio: usize,
    /// Samples a second of those recordings.
    #[arg(long, default_value_t = 22_050)]
    pub audio_rate: u32,
    /// Render them through this General MIDI SoundFont (.sf2) instead of the built-in kit.
    #[arg(long)]
    pub soundfont: Option<PathBuf>,
}

impl AudioArgs {
    /// Writes the recordings under `out` (at `fine_drums_eval::fs::audio_path`); how many.
    pub fn record(
        &self,
        evaluation: &fine_drums_eval::Evaluation,
        out: &Path,
    ) -> Result<usize, Box<dyn Error>> {
        if self.audio == 0 {
            return Ok(0);
        }
        let renderer = Renderer::new(self.audio_rate, self.soundfont.as_deref())?;
        let mut written = 0;
        for piece in evaluation.played.iter().take(self.audio) {
            for (system, groove) in &piece.systems {
                let path = fine_drums_eval::fs::audio_path(out, &piece.id, system);
                renderer.write_wav(groove, &path)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// `NAME=DIR`, as `--import` takes it.
pub fn name_and_dir(spec: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = spec.split_once('=').ok_or(format!("takes NAME=DIR, not {spec:?}"))?;
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// `evaluate --protocol paper`: the paper's table from the GMD and their published outputs,
/// printed and written to `<out>/results.md` and `<out>/report.html`.
pub fn paper(gmd: &Path, imports: &[(String, PathBuf)], out: &Path) -> Result<(), Box<dyn Error>> {
    let rows = fine_drums_eval::fs::read_paper(gmd, imports)?;
    let table = fine_drums_eval::paper::markdown(&rows);
    std::fs::create_dir_all(out).at(out)?;
    fine_drums_dataset::fs::write_atomic(&out.join("results.md"), table.as_bytes())?;
    let html = fine_drums_eval::paper::html(&rows);
    fine_drums_dataset::fs::write_atomic(&out.join("report.html"), html.as_bytes())?;
    println!("{table}");
    Ok(())
}

/// A seed from the clock, for runs not given one (printed, so that they can be made again).
pub fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    // Small enough to type back.
    now.map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
}

/// Sampling options of `continue` and `evaluate`; the defaults depend on the backend.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature (0 = always the likeliest; default: 1.25 for the drum GPT,
    /// chosen on the validation split with its top-p, else 1).
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
}

/// A backend that continues prompts, the model to ask it for, and the manifest its prompts
/// are built with.
pub struct Completer {
    pub backend: Box<dyn fine_drums_llm::Complete>,
    pub model: String,
    pub manifest: fine_drums_dataset::Manifest,
}

impl BackendArgs {
    /// The backend these arguments name, for continuing; `manifest` is the --manifest path.
    /// A trained model brings its own template when no manifest is given.
    pub fn completer(
        &self,
        manifest: Option<&Path>,
        top_k: usize,
        tune: impl FnOnce(&mut fine_drums_backends::Settings),
    ) -> Result<Completer, Box<dyn Error>> {
        let mut settings = self.settings()?;
        if settings.kind == fine_drums_backends::Kind::Lora && settings.model.is_none() {
            return Err("--backend lora needs --model <adapter folder> (fine_tune --backend lora writes one)".into());
        }
        settings.top_k = top_k;
        tune(&mut settings);
        let given = manifest.map(|p| self::manifest(Some(p), None)).transpose()?;
        let c = settings.completer(given.as_ref().map(|m| &m.template))?;
        let manifest = match given {
            Some(m) => m,
            None => self::manifest(None, c.template.as_ref())?,
        };
        Ok(Completer { backend: c.backend, model: c.model, manifest })
    }

    /// The backend settings of these arguments.
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

/// An error with the file or stream it concerns.
#[derive(Debug)]
pub struct AtPath {
    pub path: String,
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

/// A progress bar per system of an evaluation (and for reading the data), each cleared
/// when it is full.
pub fn progress_bars() -> impl FnMut(fine_drums_eval::Progress<'_>) {
    let mut bars = std::collections::HashMap::new();
    move |p: fine_drums_eval::Progress<'_>| {
        let bar = bars.entry(p.system.to_string());
        let bar = bar.or_insert_with(|| progress(p.total as u64, p.system));
        bar.set_position(p.done as u64);
        if p.done == p.total {
            bar.finish_and_clear();
        }
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

/// A backend behind the continuation pipeline, as the protocol sees it: it continues a
/// piece's prompt as `continue` would, with the protocol's seed, and scores the drummer's
/// continuation when the backend can.
pub fn continuing(
    name: &str,
    model: String,
    backend: Box<dyn fine_drums_llm::Complete>,
    manifest: &fine_drums_dataset::Manifest,
    (temperature, top_p): (f32, f32),
) -> Result<impl fine_drums_eval::System + use<>, Box<dyn Error>> {
    use fine_drums_codec::midi::{self, WriteOptions};
    use fine_drums_continue::{ContinueOptions, continue_midi};
    use fine_drums_eval::{BoxError, Generated, Piece, system};
    use std::rc::Rc;
    let runtime = Rc::new(tokio::runtime::Builder::new_current_thread().enable_all().build()?);
    let (manifest, backend) = (manifest.clone(), Rc::new(backend));
    let (rt, scorer, scored) = (runtime.clone(), backend.clone(), model.clone());
    let generate = move |piece: &Piece, bars, seed| -> Result<Generated, BoxError> {
        let mut options = ContinueOptions::new(&model);
        (options.bars, options.temperature, options.top_p) = (bars, temperature, top_p);
        options.seed = Some(seed);
        let midi = midi::write(&piece.prompt, &WriteOptions::default())?;
        let out = runtime.block_on(continue_midi(&midi, &manifest, backend.as_ref(), &options))?;
        let continuation = out.groove.slice(manifest.windows.prompt_bars..out.groove.bars.len());
        Ok(Generated::new(out.report.samples, continuation))
    };
    Ok(system(name, generate)
        .scoring(move |prompt, truth| Ok(rt.block_on(scorer.nll_per_bar(&scored, prompt, truth))?)))
}
