//! The drum GPT as a backend: [`Complete`] samples continuations, [`FineTune`] trains a model
//! on the files `prepare` wrote, in the background, with live events.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use candle_core::Device;
use fine_drums_codec::beat::{Layout, split_bar};
use fine_drums_codec::{Grid, Meter};
use fine_drums_dataset::{CountTokens, Template};
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, FineTune, FinishReason, Job,
    JobEvent, JobRequest, Metrics, Upload, Usage,
};
use fine_drums_train::jobs::{Ended, Fields, Hyperparameters, Runner, Work};

use crate::checkpoint;
use crate::error::Error;
use crate::sample::{Drummer, Sampling};
use crate::train::{Event, TrainOptions, Trainer, examples_from_jsonl, pieces_from_jsonl};

/// The base model name of a GPT trained from scratch.
pub const BASE_MODEL: &str = "gpt";

/// A model ready to continue: the network, and how its prompts and completions are written.
#[derive(Clone, Debug)]
pub struct Model {
    /// The network and its tokens.
    pub drummer: Drummer,
    /// How prompts and completions are written.
    pub template: Template,
    /// Bars a completion holds.
    pub completion_bars: usize,
}

/// The name of the model built into the crate.
pub const EMBEDDED: &str = "drums-small-gmd";

/// The sampling temperature of [`EMBEDDED`], with [`TOP_P`] and the
/// [`FILL_HEAT`](crate::FILL_HEAT) of its fills: chosen on the GMD validation split as the
/// setting whose stability, 2-means distance, in-cluster spread and share of bars identical
/// to a neighbour were all within 10% of the drummers' over three seeds, with the density
/// drift and tom hits nearest theirs (see the crate README).
pub const TEMPERATURE: f32 = 1.2;

/// The nucleus (top-p) mass of [`EMBEDDED`]'s sampling, with [`TEMPERATURE`]: the model keeps
/// to the steps it is sure of and varies where it is not, which brings both its exact
/// repetition and its variation nearer a drummer's than a temperature alone.
pub const TOP_P: f32 = 0.75;

/// The sampling temperature of [`EMBEDDED`] when it writes bars between others (an infill),
/// with [`TOP_P`]: chosen on the GMD validation split as the one whose last written bar
/// departed from the bar after it as much as the drummers' did (at 1.0, a tenth more).
pub const INFILL_TEMPERATURE: f32 = 0.8;

/// The files of the model built into the crate (see `model/README.md`, its model card).
const EMBEDDED_FILES: [(&str, &[u8]); 4] = [
    (checkpoint::CHECKSUMS, include_bytes!("../model/checksums.json")),
    (checkpoint::CONFIG, include_bytes!("../model/config.json")),
    (checkpoint::VOCAB, include_bytes!("../model/vocab.json")),
    (checkpoint::WEIGHTS, include_bytes!("../model/model.safetensors")),
];

impl Model {
    /// Loads the model saved in `dir`.
    pub fn load(dir: &Path, device: &Device) -> crate::Result<Model> {
        Ok(Model::of(checkpoint::load(dir, device)?))
    }

    /// The model built into the crate, [`EMBEDDED`]: the `small` preset trained on the
    /// Groove MIDI Dataset's train split (CC BY 4.0; see `model/README.md`).
    pub fn embedded(device: &Device) -> crate::Result<Model> {
        let dir = Path::new(EMBEDDED);
        let loaded = checkpoint::load_with(dir, device, &mut |name| {
            EMBEDDED_FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bytes)| bytes.to_vec())
                .ok_or_else(|| Error::checkpoint(&dir.join(name), "not built into the crate", None))
        })?;
        Ok(Model::of(loaded))
    }

    /// The meter of the last bar of `prompt` (beat-format bars), by its shape on the model's
    /// grid; 4/4 when no line is a bar.
    fn meter_of(&self, prompt: &str) -> Meter {
        let grid = self.drummer.vocab.beat().grid;
        let last = prompt.lines().rev().filter_map(|l| split_bar(l.trim())).next();
        last.and_then(|b| meter_of(b.layout, grid)).unwrap_or(Meter::FOUR_FOUR)
    }

    fn of(l: checkpoint::Loaded) -> Model {
        Model {
            drummer: Drummer { gpt: l.gpt, vocab: l.vocab },
            template: l.meta.template,
            completion_bars: l.meta.training.completion_bars.max(1),
        }
    }
}

/// The drum GPT backend.
///
/// Models are named by the folder they are saved in, or by the name a job gave them.
pub struct Gpt {
    template: Template,
    models_dir: Option<PathBuf>,
    options: TrainOptions,
    top_k: usize,
    device: Device,
    /// Its jobs, uploads and models.
    runner: Runner<Model>,
    tokens: OnceLock<Option<Box<dyn CountTokens + Send + Sync>>>,
}

impl std::fmt::Debug for Gpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt").field("models_dir", &self.models_dir).finish_non_exhaustive()
    }
}

fn meter_of(layout: Layout, grid: Grid) -> Option<Meter> {
    let common = [(4, 4), (3, 4), (2, 4), (6, 8), (12, 8), (9, 8), (5, 4), (7, 8), (5, 8), (2, 2)];
    let all = (1..=32u8).flat_map(|n| [4u8, 8, 2, 16, 1, 32, 64].map(move |d| (n, d)));
    common
        .into_iter()
        .chain(all)
        .filter_map(|(n, d)| Meter::new(n, d).ok())
        .find(|m| Layout::of(*m, grid).ok() == Some(layout))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Gpt {
    /// A backend on the CPU that trains on files written with `template` (the manifest's)
    /// with `options`, and keeps the models it trains in memory.
    pub fn new(template: Template, options: TrainOptions) -> Gpt {
        Gpt {
            template,
            models_dir: None,
            options,
            top_k: 0,
            device: Device::Cpu,
            runner: Runner::new("gpt"),
            tokens: OnceLock::new(),
        }
    }

    /// Runs on `device` (a GPU with the `cuda` feature).
    pub fn with_device(mut self, device: Device) -> Gpt {
        self.device = device;
        self
    }

    /// Saves trained models (and the checkpoints of running jobs) in `dir`.
    pub fn with_models_dir(mut self, dir: impl Into<PathBuf>) -> Gpt {
        self.models_dir = Some(dir.into());
        self
    }

    /// Samples among the `k` likeliest tokens only (0: all).
    pub fn with_top_k(mut self, k: usize) -> Gpt {
        self.top_k = k;
        self
    }

    /// Registers a model under `name`.
    pub fn insert_model(&self, name: impl Into<String>, model: Model) {
        self.runner.insert_model(name, Arc::new(model));
    }

    /// Whether job `id`'s training is still at work (a cancelled job's until it has stopped
    /// and said so in its events).
    pub fn is_training(&self, id: &str) -> bool {
        self.runner.is_training(id)
    }

    /// The model named `name`: registered, the built-in [`EMBEDDED`], or loaded from the
    /// folder of that name.
    pub fn model(&self, name: &str) -> fine_drums_llm::Result<Arc<Model>> {
        self.runner
            .model_or_load(name, || {
                if name == EMBEDDED {
                    Model::embedded(&self.device)
                } else {
                    Model::load(Path::new(name), &self.device)
                }
            })
            .map_err(llm_error)
    }

    fn count(&self, text: &str) -> u64 {
        let bpe = self.tokens.get_or_init(|| {
            fine_drums_dataset::cl100k()
                .ok()
                .map(|b| Box::new(b) as Box<dyn CountTokens + Send + Sync>)
        });
        match bpe {
            Some(b) => b.count_tokens(text) as u64,
            None => text.len() as u64,
        }
    }

    /// Completes synchronously: what [`Complete::complete`] does, without a runtime.
    pub fn complete_now(&self, request: &CompletionRequest) -> fine_drums_llm::Result<Completion> {
        self.complete_until(request, &AtomicBool::new(false))
    }

    /// [`complete_now`](Gpt::complete_now) that stops within one step of the model once
    /// `cancel` is set (a server whose client has gone sets it), with an error.
    pub fn complete_until(
        &self,
        request: &CompletionRequest,
        cancel: &AtomicBool,
    ) -> fine_drums_llm::Result<Completion> {
        if !(0.0..=2.0).contains(&request.temperature) || !(0.0..=1.0).contains(&request.top_p) {
            return Err(invalid("sampling", "temperature must be 0 to 2 and top_p 0 to 1"));
        }
        let model = self.model(&request.model)?;
        let t = &model.template;
        let body = request.prompt.strip_suffix(t.separator.as_str()).unwrap_or(&request.prompt);
        let meter = model.meter_of(body);
        let mut sampling = Sampling::default();
        (sampling.temperature, sampling.top_k, sampling.top_p) =
            (request.temperature, self.top_k, request.top_p);
        let seed = request.seed.unwrap_or_else(|| now().wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let n = request.n.max(1) as usize;
        let bars = request.steer.bars.unwrap_or(model.completion_bars);
        if bars == 0 || bars > fine_drums_llm::MAX_COMPLETION_BARS {
            return Err(invalid(
                "bars",
                format!(
                    "{bars}: a completion holds 1 to {} bars",
                    fine_drums_llm::MAX_COMPLETION_BARS
                ),
            ));
        }
        let suffix = request.suffix.as_deref().map(|s| s.trim_start_matches('\n'));
        let mut g = crate::Generation::new(body, bars);
        (g.suffix, g.meter, g.n, g.sampling, g.seed, g.steer) =
            (suffix, meter, n, sampling, seed, &request.steer);
        let texts = model.drummer.generate(&g, cancel).map_err(llm_error)?;
        let mut usage = Usage::new(self.count(&request.prompt), 0);
        let budget = u64::from(request.max_tokens);
        let mut choices = Vec::with_capacity(n);
        for text in texts {
            // Whole bars while they fit the token budget, as a model that stops mid-bar would
            // leave a bar the decoder drops.
            let mut out = String::from("\n");
            let mut used = self.count("\n");
            let mut cut = false;
            for line in text.lines() {
                let cost = self.count(line) + self.count("\n");
                if used + cost > budget {
                    cut = true;
                    break;
                }
                used += cost;
                out.push_str(line);
                out.push('\n');
            }
            usage.completion_tokens += used;
            let finish = if cut { FinishReason::Length } else { FinishReason::Stop };
            choices.push(Choice::new(out, finish));
        }
        Ok(Completion::new(choices, usage))
    }

    /// The negative log-likelihood per bar of `continuation` after `prompt` (beat-format
    /// bars) under the model named `model`.
    pub fn nll_per_bar(
        &self,
        model: &str,
        prompt: &str,
        continuation: &str,
    ) -> fine_drums_llm::Result<f64> {
        let model = self.model(model)?;
        model.drummer.nll_per_bar(prompt, continuation, model.meter_of(prompt)).map_err(llm_error)
    }
}

fn invalid(what: &'static str, message: impl Into<String>) -> fine_drums_llm::Error {
    fine_drums_llm::Error::Invalid { what, message: message.into() }
}

/// This crate's error as the llm crate's: the variants the contract has a place for move
/// there, a bad prompt or setting stays invalid input, and the rest is kept whole as the
/// source of `Backend`.
fn llm_error(e: Error) -> fine_drums_llm::Error {
    match e {
        Error::Checkpoint { path, message, source } => {
            fine_drums_llm::Error::Model { path, message, source }
        }
        Error::Codec(c) => fine_drums_llm::Error::Codec(c),
        Error::Dataset(d) => fine_drums_llm::Error::Dataset(d),
        Error::Invalid { what, message } => invalid(what, message),
        e @ Error::Text { .. } => invalid("prompt", e.to_string()),
        other => fine_drums_llm::Error::Backend { backend: "gpt", source: Box::new(other) },
    }
}

impl Complete for Gpt {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Completion>> {
        Box::pin(async move { self.complete_now(request) })
    }

    fn nll_per_bar<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        continuation: &'a str,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Option<f64>>> {
        Box::pin(async move {
            let m = self.model(model)?;
            let prompt = prompt.strip_suffix(m.template.separator.as_str()).unwrap_or(prompt);
            Gpt::nll_per_bar(self, model, prompt, continuation).map(Some)
        })
    }

    fn nll_per_bar_steered<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        suffix: Option<&'a str>,
        continuation: &'a str,
        steer: &'a fine_drums_llm::Steer,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Option<f64>>> {
        Box::pin(async move {
            let m = self.model(model)?;
            let prompt = prompt.strip_suffix(m.template.separator.as_str()).unwrap_or(prompt);
            m.drummer
                .nll_per_bar_with(prompt, suffix, continuation, m.meter_of(prompt), steer)
                .map(Some)
                .map_err(llm_error)
        })
    }
}

/// What a training job runs on.
struct JobSpec {
    /// The fine-tuned model's name.
    name: String,
    template: Template,
    /// The training and validation files.
    files: (Upload, Option<Upload>),
    options: TrainOptions,
    /// The checkpoint folder and the model folder, when models are saved.
    dirs: Option<(PathBuf, PathBuf)>,
    device: Device,
}

/// Runs a training job to its end, recording its events.
fn train_job(work: &Work<Model>, spec: JobSpec) -> crate::Result<Model> {
    let JobSpec { name, template, files, options, dirs, device } = spec;
    let (name, template, options, device) = (&name, &template, &options, &device);
    let record = |level: &str, message: String, metrics: Option<Metrics>| {
        work.record(level, message, metrics);
    };
    let text = |u: &Upload| {
        std::str::from_utf8(&u.bytes)
            .map(str::to_string)
            .map_err(|e| Error::invalid("file", format!("{}: not UTF-8: {e}", u.name)))
    };
    let train_text = text(&files.0)?;
    let valid_text = files.1.as_ref().map(|v| text(v).map(|t| (v.name.clone(), t))).transpose()?;
    let checkpoint_dir = dirs.as_ref().map(|(c, _)| c.clone());
    let resumable = match &checkpoint_dir {
        Some(c) => checkpoint::exists(c)?,
        None => false,
    };
    let resume_from = checkpoint_dir.as_ref().filter(|_| resumable);
    if let Some(c) = resume_from {
        record("info", format!("resuming from the checkpoint in {}", c.display()), None);
    }
    // Whole pieces (`*.pieces.jsonl`) train with controls; prompt/completion files as before.
    let (mut trainer, has_validation) = match pieces_from_jsonl(&files.0.name, &train_text)? {
        Some(train) => {
            let valid = match &valid_text {
                Some((name, t)) => pieces_from_jsonl(name, t)?.ok_or_else(|| {
                    Error::invalid(
                        "file",
                        format!("{name}: the training file holds pieces, this one does not"),
                    )
                })?,
                None => Vec::new(),
            };
            let trainer = match resume_from {
                Some(c) => Trainer::resume_on_pieces(c, &train, &valid, options, device)?,
                None => Trainer::on_pieces(template, &train, &valid, options, device)?,
            };
            (trainer, !valid.is_empty())
        }
        None => {
            let (train, completion_bars) =
                examples_from_jsonl(template, &files.0.name, &train_text)?;
            let valid = match &valid_text {
                Some((name, t)) => examples_from_jsonl(template, name, t)?.0,
                None => Vec::new(),
            };
            let trainer = match resume_from {
                Some(c) => Trainer::resume(c, &train, &valid, options, device)?,
                None => Trainer::new(template, &train, &valid, completion_bars, options, device)?,
            };
            (trainer, !valid.is_empty())
        }
    };
    trainer.stop_when(work.stop_flag());
    let mut total = None;
    let epochs = u64::from(options.epochs);
    let mut on_event = |e: &Event| match e {
        Event::Started { parameters, vocabulary, tokens, steps_per_epoch, from_step } => {
            total = Some(steps_per_epoch * epochs);
            let message = format!(
                "training {name}: {parameters} parameters, {vocabulary} tokens in the vocabulary, {tokens} training tokens, {steps_per_epoch} steps per epoch, from step {from_step}"
            );
            record("info", message, None);
        }
        Event::Step { epoch, step, loss, tokens_per_second } => {
            let mut m = Metrics::new(*step);
            (m.total_steps, m.train_loss, m.tokens_per_second) =
                (total, Some(*loss), Some(*tokens_per_second));
            let message = format!(
                "epoch {epoch}, step {step}: training loss {loss:.4}, {tokens_per_second:.0} tokens/s"
            );
            record("info", message, Some(m));
        }
        Event::Epoch { epoch, train_loss, validation_loss, best } => {
            let valid = if validation_loss.is_nan() {
                "no validation examples".to_string()
            } else {
                format!("validation loss {validation_loss:.4}")
            };
            let message = format!(
                "epoch {epoch}: training loss {train_loss:.4}, {valid}{}",
                if *best { " (best so far)" } else { "" }
            );
            record("info", message, None);
        }
        Event::Finished { reason, validation_loss } => {
            record(
                "info",
                format!(
                    "finished ({reason}); best {} loss {validation_loss:.4}",
                    if has_validation { "validation" } else { "training" }
                ),
                None,
            );
        }
        // Events a later toolkit adds are not recorded.
        _ => {}
    };
    trainer.run(checkpoint_dir.as_deref(), &mut on_event)?;
    if let Some((_, out)) = &dirs {
        trainer.save_model(out, true)?;
        record("info", format!("saved {}", out.display()), None);
    }
    Ok(Model {
        drummer: Drummer { gpt: trainer.gpt().clone(), vocab: trainer.vocab().clone() },
        template: template.clone(),
        completion_bars: trainer.meta().training.completion_bars.max(1),
    })
}

impl Hyperparameters for TrainOptions {
    fn fields(&mut self) -> Fields<'_> {
        Fields::new(&mut self.epochs, &mut self.batch, &mut self.lr, &mut self.seed)
    }
}

impl FineTune for Gpt {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, fine_drums_llm::Result<String>> {
        Box::pin(async move { Ok(self.runner.upload(file)) })
    }

    fn create_job<'a>(
        &'a self,
        request: &'a JobRequest,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move {
            if request.model != BASE_MODEL {
                return Err(invalid(
                    "base model",
                    format!(
                        "the drum GPT trains from scratch: use the base model `{BASE_MODEL}`, not {:?}",
                        request.model
                    ),
                ));
            }
            let training = self.runner.file(&request.training_file)?;
            let validation = match &request.validation_file {
                Some(v) => Some(self.runner.file(v)?),
                None => None,
            };
            let template = self.template.clone();
            let mut options = self.options.clone();
            fine_drums_train::jobs::apply(request, &mut options);
            let suffix = request.suffix.clone().unwrap_or_else(|| "drums".into());
            let id = self.runner.next_job_id();
            // A job's checkpoint is named by its settings, so that the same job started
            // again after a crash resumes it.
            let (name, dirs) = match &self.models_dir {
                Some(d) => {
                    let key = format!("{suffix}-{}-seed{}", options.preset, options.seed);
                    let out = d.join(&key);
                    (out.display().to_string(), Some((d.join(format!(".{key}.checkpoint")), out)))
                }
                None => (format!("gpt:{suffix}:{id}"), None),
            };
            let spec = JobSpec {
                name: name.clone(),
                template,
                files: (training, validation),
                options,
                dirs,
                device: self.device.clone(),
            };
            Ok(self.runner.spawn(&id, &request.model, name, move |work| {
                train_job(work, spec).map_err(|e| match e {
                    Error::Stopped { step } => Ended::Stopped { step },
                    e => Ended::Failed(e.to_string()),
                })
            }))
        })
    }

    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move { self.runner.job(id) })
    }

    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Vec<JobEvent>>> {
        Box::pin(async move { self.runner.events(id, after) })
    }

    /// Stops a running job at its next training step; its last epoch's checkpoint stays, so
    /// the same job created again resumes from it.
    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move { self.runner.cancel(id) })
    }

    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
}
