//! LoRA as a backend: [`Complete`] generates with an adapter, [`FineTune`] trains one on the
//! files `prepare` wrote, in the background, with live events.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use fine_drums_codec::Format;
use fine_drums_codec::beat::split_bar;
use fine_drums_dataset::Template;
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, FineTune, FinishReason, Job,
    JobEvent, JobRequest, Metrics, Upload, Usage,
};
use fine_drums_train::Event;
use fine_drums_train::jobs::{Ended, Fields, Hyperparameters, Runner, Work};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::generate::{Adapted, Sampling};
use crate::lora;
use crate::model::Model;
use crate::text::Tokenizer;
use crate::train::{self, Example, TrainOptions, Trainer};

/// The prefix of base model names that name a folder (`lora:models/SmolLM2-135M`); a bare
/// folder path works too.
pub const BASE_PREFIX: &str = "lora:";

/// The file beside an adapter that says how its prompts and completions are written (PEFT,
/// vLLM and SGLang ignore it).
pub const DRUMS: &str = "fine_drums.json";

/// What [`DRUMS`] holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Drums {
    template: Template,
    completion_bars: usize,
}

/// An adapter ready to continue.
#[derive(Debug)]
struct Loaded {
    adapted: Adapted,
    drums: Drums,
}

/// The LoRA backend. Models are adapter folders (their base named in
/// `adapter_config.json`); base models are Hugging Face folders.
pub struct Lora {
    template: Template,
    options: TrainOptions,
    models_dir: Option<PathBuf>,
    device: Device,
    /// Its jobs, uploads and adapters.
    runner: Runner<Loaded>,
}

impl std::fmt::Debug for Lora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lora").field("models_dir", &self.models_dir).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// This crate's error as the llm crate's: the variants the contract has a place for move
/// there, a bad prompt or setting stays invalid input, and the rest is kept whole as the
/// source of `Backend`.
fn llm_error(e: Error) -> fine_drums_llm::Error {
    match e {
        Error::File { path, message, source } => {
            fine_drums_llm::Error::Model { path: path.display().to_string(), message, source }
        }
        Error::Codec(c) => fine_drums_llm::Error::Codec(c),
        Error::Dataset(d) => fine_drums_llm::Error::Dataset(d),
        Error::Invalid { what, message } => fine_drums_llm::Error::Invalid { what, message },
        other => fine_drums_llm::Error::Backend { backend: "lora", source: Box::new(other) },
    }
}

/// The folder a base model name names.
fn base_dir(name: &str) -> PathBuf {
    PathBuf::from(name.strip_prefix(BASE_PREFIX).unwrap_or(name))
}

/// Prompt/completion pairs from a fine-tuning file (legacy or chat lines), each prompt ending
/// in the separator and each completion in the stop sequence, as the legacy files write them.
pub(crate) fn pairs_from_jsonl(
    template: &Template,
    name: &str,
    jsonl: &str,
) -> Result<(Vec<(String, String)>, usize)> {
    let read = fine_drums_dataset::export::read_examples(template, name, jsonl)?;
    let pairs = read
        .examples
        .iter()
        .map(|e| {
            (
                format!("{}\n{}", e.prompt.trim_end(), template.separator),
                format!("\n{}\n{}", e.completion.trim_matches('\n'), template.stop),
            )
        })
        .collect();
    Ok((pairs, read.completion_bars))
}

impl Lora {
    /// A backend on the CPU that trains on files written with `template` (the manifest's).
    pub fn new(template: Template, options: TrainOptions) -> Lora {
        Lora {
            template,
            options,
            models_dir: None,
            device: Device::Cpu,
            runner: Runner::new("lora"),
        }
    }

    /// Runs on `device` (a GPU with the `cuda` feature).
    pub fn with_device(mut self, device: Device) -> Lora {
        self.device = device;
        self
    }

    /// Saves adapters (and the checkpoints of running jobs) in `dir`.
    pub fn with_models_dir(mut self, dir: impl Into<PathBuf>) -> Lora {
        self.models_dir = Some(dir.into());
        self
    }

    /// Loads an adapter folder: its base (named in `adapter_config.json`, or `base`), the
    /// tokenizer, the adapters, and how its prompts are written.
    pub fn load(&self, adapter: &Path, base: Option<&Path>) -> Result<()> {
        let loaded = load(adapter, base, &self.device)?;
        self.runner.insert_model(adapter.display().to_string(), Arc::new(loaded));
        Ok(())
    }

    /// How the prompts of the loaded model `name` are written, if it is loaded.
    pub fn template(&self, name: &str) -> Option<Template> {
        self.runner.get_model(name).map(|m| m.drums.template.clone())
    }

    fn model(&self, name: &str) -> Result<Arc<Loaded>> {
        self.runner.model_or_load(name, || load(Path::new(name), None, &self.device))
    }

    /// Completes synchronously: what [`Complete::complete`] does, without a runtime.
    pub fn complete_now(&self, request: &CompletionRequest) -> fine_drums_llm::Result<Completion> {
        request.plain_only("lora")?;
        if !(0.0..=2.0).contains(&request.temperature) || !(0.0..=1.0).contains(&request.top_p) {
            return Err(fine_drums_llm::Error::Invalid {
                what: "sampling",
                message: "temperature must be 0 to 2 and top_p 0 to 1".into(),
            });
        }
        let m = self.model(&request.model).map_err(llm_error)?;
        let t = &m.drums.template;
        let Format::Beat(beat) = t.codec.format else {
            return Err(llm_error(Error::invalid("format", "LoRA models write the beat format")));
        };
        let body = request.prompt.strip_suffix(t.separator.as_str()).unwrap_or(&request.prompt);
        let layout = body
            .lines()
            .rev()
            .filter_map(|l| split_bar(l.trim()))
            .next()
            .map(|b| b.layout)
            .ok_or_else(|| llm_error(Error::invalid("prompt", "it holds no bar to continue")))?;
        let sampling = Sampling::new(request.temperature, 0, request.top_p);
        let seed = request.seed.unwrap_or_else(|| now().wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let prompt = format!("{}\n{}", body.trim_end(), t.separator);
        let out = m
            .adapted
            .generate(
                &prompt,
                &beat,
                layout,
                m.drums.completion_bars,
                &t.stop,
                request.n.max(1) as usize,
                sampling,
                seed,
                request.max_tokens as usize,
            )
            .map_err(llm_error)?;
        let prompt_tokens = m.adapted.tokenizer.encode(&prompt, true).map_or(0, |i| i.len()) as u64;
        let mut usage = Usage::new(prompt_tokens, 0);
        let mut choices = Vec::with_capacity(out.len());
        for g in out {
            usage.completion_tokens += g.tokens as u64;
            let text = g.text.strip_suffix(t.stop.as_str()).unwrap_or(&g.text).to_string();
            choices.push(Choice::new(
                text,
                if g.cut { FinishReason::Length } else { FinishReason::Stop },
            ));
        }
        Ok(Completion::new(choices, usage))
    }
}

fn load(adapter: &Path, base: Option<&Path>, device: &Device) -> Result<Loaded> {
    let drums_path = adapter.join(DRUMS);
    let drums: Drums = serde_json::from_slice(&std::fs::read(&drums_path).map_err(|e| {
        Error::file_because(&drums_path, "cannot read (an adapter fine_tune wrote has it)", e)
    })?)
    .map_err(|e| Error::file_because(&drums_path, "not the adapter's settings", e))?;
    let base = match base {
        Some(b) => b.to_path_buf(),
        None => {
            let path = adapter.join(lora::ADAPTER_CONFIG);
            let config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).map_err(|e| {
                    Error::file_because(&path, "cannot read the adapter's config", e)
                })?)
                .map_err(|e| Error::file_because(&path, "not JSON", e))?;
            let name = config["base_model_name_or_path"].as_str().unwrap_or_default();
            if name.is_empty() {
                return Err(Error::file(
                    &path,
                    "names no base model folder (base_model_name_or_path)",
                ));
            }
            base_dir(name)
        }
    };
    let mut model = Model::load(&base, device)?;
    let tokenizer = Tokenizer::load(&base, model.config().vocab)?;
    lora::load(&mut model, adapter)?;
    Ok(Loaded { adapted: Adapted { model, tokenizer }, drums })
}

/// What a training job runs on.
struct JobSpec {
    base: PathBuf,
    template: Template,
    files: (Upload, Option<Upload>),
    options: TrainOptions,
    /// The checkpoint folder and the adapter folder, when adapters are saved.
    dirs: Option<(PathBuf, PathBuf)>,
    device: Device,
}

fn train_job(work: &Work<Loaded>, spec: JobSpec) -> Result<Loaded> {
    let JobSpec { base, template, files, options, dirs, device } = spec;
    let record = |level: &str, message: String, metrics: Option<Metrics>| {
        work.record(level, message, metrics);
    };
    let text = |u: &Upload| {
        std::str::from_utf8(&u.bytes).map(str::to_string).map_err(|e| Error::Invalid {
            what: "training file",
            message: format!("{}: not UTF-8: {e}", u.name),
        })
    };
    let (train_pairs, completion_bars) =
        pairs_from_jsonl(&template, &files.0.name, &text(&files.0)?)?;
    let valid_pairs = match &files.1 {
        Some(v) => pairs_from_jsonl(&template, &v.name, &text(v)?)?.0,
        None => Vec::new(),
    };
    let model = Model::load(&base, &device)?;
    let tokenizer = Tokenizer::load(&base, model.config().vocab)?;
    let longest = options.max_tokens.min(model.config().max_positions);
    let train: Vec<Example> = train::examples(&tokenizer, &train_pairs, longest)?;
    let valid = train::examples(&tokenizer, &valid_pairs, longest)?;
    let checkpoint = dirs.as_ref().map(|(c, _)| c.clone());
    let resumable = match &checkpoint {
        Some(c) => fine_drums_train::checkpoint::exists(c)?,
        None => false,
    };
    let mut trainer = match &checkpoint {
        Some(c) if resumable => {
            record("info", format!("resuming from the checkpoint in {}", c.display()), None);
            Trainer::resume(model, c, train, valid, &options)?
        }
        _ => Trainer::new(model, &base, train, valid, &options)?,
    };
    trainer.stop_when(work.stop_flag());
    let epochs = u64::from(options.epochs);
    let mut total = None;
    let mut on_event = |e: &Event| match e {
        Event::Started { parameters, tokens, steps_per_epoch, from_step, .. } => {
            total = Some(steps_per_epoch * epochs);
            record(
                "info",
                format!(
                    "training LoRA adapters on {}: {parameters} trainable parameters, {tokens} training tokens, {steps_per_epoch} steps per epoch, from step {from_step}",
                    base.display()
                ),
                None,
            );
        }
        Event::Step { epoch, step, loss, tokens_per_second } => {
            let mut m = Metrics::new(*step);
            (m.total_steps, m.train_loss, m.tokens_per_second) =
                (total, Some(*loss), Some(*tokens_per_second));
            record(
                "info",
                format!(
                    "epoch {epoch}, step {step}: training loss {loss:.4}, {tokens_per_second:.0} tokens/s"
                ),
                Some(m),
            );
        }
        Event::Epoch { epoch, train_loss, validation_loss, .. } => {
            record(
                "info",
                format!(
                    "epoch {epoch}: training loss {train_loss:.4}, validation loss {validation_loss:.4}"
                ),
                None,
            );
        }
        Event::Finished { reason, .. } => record("info", format!("finished ({reason})"), None),
        _ => {}
    };
    trainer.run(checkpoint.as_deref(), &mut on_event)?;
    let drums = Drums { template: template.clone(), completion_bars };
    if let Some((_, out)) = &dirs {
        trainer.save_adapter(out)?;
        let bytes = serde_json::to_vec_pretty(&drums)
            .map_err(|e| Error::invalid("settings", e.to_string()))?;
        fine_drums_dataset::fs::write_atomic(&out.join(DRUMS), &bytes)?;
        record("info", format!("saved the adapter in {}", out.display()), None);
    }
    let model = trainer.model().clone();
    Ok(Loaded { adapted: Adapted { model, tokenizer }, drums })
}

fn invalid(what: &'static str, message: impl Into<String>) -> fine_drums_llm::Error {
    fine_drums_llm::Error::Invalid { what, message: message.into() }
}

impl Complete for Lora {
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
            let m = self.model(model).map_err(llm_error)?;
            let t = &m.drums.template;
            let body = prompt.strip_suffix(t.separator.as_str()).unwrap_or(prompt);
            let bars = continuation.lines().filter(|l| !l.trim().is_empty()).count();
            if bars == 0 {
                return Ok(None);
            }
            let prompt = format!("{}\n{}", body.trim_end(), t.separator);
            let completion = format!("\n{}\n", continuation.trim_matches('\n'));
            let (nll, _) = m.adapted.nll(&prompt, &completion).map_err(llm_error)?;
            Ok(Some(nll / bars as f64))
        })
    }
}

impl Hyperparameters for TrainOptions {
    fn fields(&mut self) -> Fields<'_> {
        Fields::new(&mut self.epochs, &mut self.batch, &mut self.lr, &mut self.seed)
    }
}

impl FineTune for Lora {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, fine_drums_llm::Result<String>> {
        Box::pin(async move { Ok(self.runner.upload(file)) })
    }

    /// Trains adapters on the base model folder `request.model` (`lora:<folder>` or the
    /// folder itself).
    fn create_job<'a>(
        &'a self,
        request: &'a JobRequest,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move {
            let base = base_dir(&request.model);
            if !base.join("config.json").is_file() {
                return Err(invalid(
                    "base model",
                    format!(
                        "{:?} is not a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)",
                        request.model
                    ),
                ));
            }
            let training = self.runner.file(&request.training_file)?;
            let validation = match &request.validation_file {
                Some(v) => Some(self.runner.file(v)?),
                None => None,
            };
            let mut options = self.options.clone();
            fine_drums_train::jobs::apply(request, &mut options);
            let suffix = request.suffix.clone().unwrap_or_else(|| "drums".into());
            let id = self.runner.next_job_id();
            let stem =
                base.file_name().map_or_else(|| "base".into(), |n| n.to_string_lossy().to_string());
            let (name, dirs) = match &self.models_dir {
                Some(d) => {
                    let key = format!("{suffix}-{stem}-lora-seed{}", options.seed);
                    let out = d.join(&key);
                    (out.display().to_string(), Some((d.join(format!(".{key}.checkpoint")), out)))
                }
                None => (format!("lora:{suffix}:{id}"), None),
            };
            let spec = JobSpec {
                base,
                template: self.template.clone(),
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

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move { self.runner.cancel(id) })
    }

    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
}
