//! LoRA as a backend: [`Complete`] generates with an adapter, [`FineTune`] trains one on the
//! files `prepare` wrote, in the background, with live events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::Device;
use fine_drums_codec::Format;
use fine_drums_codec::beat::split_bar;
use fine_drums_dataset::Template;
use fine_drums_llm::jobs::Jobs;
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, FineTune, FinishReason, Job,
    JobEvent, JobRequest, JobStatus, Metrics, Upload, Usage,
};
use fine_drums_train::Event;
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

struct State {
    jobs: Jobs,
    models: HashMap<String, Arc<Loaded>>,
    stops: HashMap<String, Arc<AtomicBool>>,
}

/// The LoRA backend. Models are adapter folders (their base named in
/// `adapter_config.json`); base models are Hugging Face folders.
pub struct Lora {
    template: Template,
    options: TrainOptions,
    models_dir: Option<PathBuf>,
    device: Device,
    state: Arc<Mutex<State>>,
    loading: Mutex<()>,
}

impl std::fmt::Debug for Lora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lora").field("models_dir", &self.models_dir).finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// This crate's error as the llm crate's, keeping the message.
fn llm_error(e: Error) -> fine_drums_llm::Error {
    match e {
        Error::File { path, message, source } => {
            fine_drums_llm::Error::Model { path: path.display().to_string(), message, source }
        }
        Error::Codec(c) => fine_drums_llm::Error::Codec(c),
        Error::Dataset(d) => fine_drums_llm::Error::Dataset(d),
        other => fine_drums_llm::Error::Invalid { what: "lora", message: other.to_string() },
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
            state: Arc::new(Mutex::new(State {
                jobs: Jobs::new("lora"),
                models: HashMap::new(),
                stops: HashMap::new(),
            })),
            loading: Mutex::new(()),
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
        lock(&self.state).models.insert(adapter.display().to_string(), Arc::new(loaded));
        Ok(())
    }

    /// How the prompts of the loaded model `name` are written, if it is loaded.
    pub fn template(&self, name: &str) -> Option<Template> {
        lock(&self.state).models.get(name).map(|m| m.drums.template.clone())
    }

    fn model(&self, name: &str) -> Result<Arc<Loaded>> {
        if let Some(m) = lock(&self.state).models.get(name) {
            return Ok(m.clone());
        }
        let _loading = self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(m) = lock(&self.state).models.get(name) {
            return Ok(m.clone());
        }
        let m = Arc::new(load(Path::new(name), None, &self.device)?);
        lock(&self.state).models.insert(name.to_string(), m.clone());
        Ok(m)
    }

    /// Completes synchronously: what [`Complete::complete`] does, without a runtime.
    pub fn complete_now(&self, request: &CompletionRequest) -> fine_drums_llm::Result<Completion> {
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
        let mut sampling = Sampling::default();
        (sampling.temperature, sampling.top_p) = (request.temperature, request.top_p);
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
    id: String,
    base: PathBuf,
    template: Template,
    files: (Upload, Option<Upload>),
    options: TrainOptions,
    /// The checkpoint folder and the adapter folder, when adapters are saved.
    dirs: Option<(PathBuf, PathBuf)>,
    device: Device,
    stop: Arc<AtomicBool>,
}

fn train_job(state: &Mutex<State>, spec: JobSpec) -> Result<Loaded> {
    let JobSpec { id, base, template, files, options, dirs, device, stop } = spec;
    let record = |level: &str, message: String, metrics: Option<Metrics>| {
        lock(state).jobs.event(&id, now(), level, message, metrics);
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
    trainer.stop_when(stop);
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

impl FineTune for Lora {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, fine_drums_llm::Result<String>> {
        Box::pin(async move { Ok(lock(&self.state).jobs.upload(file)) })
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
            let training = lock(&self.state).jobs.file(&request.training_file)?;
            let validation = match &request.validation_file {
                Some(v) => Some(lock(&self.state).jobs.file(v)?),
                None => None,
            };
            let mut options = self.options.clone();
            if let Some(e) = request.epochs {
                options.epochs = e;
            }
            if let Some(b) = request.batch_size {
                options.batch = b as usize;
            }
            if let Some(m) = request.learning_rate_multiplier {
                options.lr *= m;
            }
            if let Some(s) = request.seed {
                options.seed = s;
            }
            let suffix = request.suffix.clone().unwrap_or_else(|| "drums".into());
            let id = lock(&self.state).jobs.next_job_id();
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
            let job = Job::new(&id, &request.model, JobStatus::Running);
            let stop = Arc::new(AtomicBool::new(false));
            {
                let mut st = lock(&self.state);
                st.jobs.insert(job.clone());
                st.stops.insert(id.clone(), stop.clone());
            }
            let spec = JobSpec {
                id: id.clone(),
                base,
                template: self.template.clone(),
                files: (training, validation),
                options,
                dirs,
                device: self.device.clone(),
                stop,
            };
            let state = self.state.clone();
            std::thread::spawn(move || {
                let result = train_job(&state, spec);
                let mut st = lock(&state);
                st.stops.remove(&id);
                match result {
                    Ok(m) => {
                        let cancelled =
                            st.jobs.job(&id).is_ok_and(|j| j.status == JobStatus::Cancelled);
                        if !cancelled {
                            st.models.insert(name.clone(), Arc::new(m));
                            if let Ok(job) = st.jobs.job_mut(&id) {
                                job.status = JobStatus::Succeeded;
                                job.fine_tuned_model = Some(name);
                            }
                        }
                    }
                    Err(Error::Stopped { step }) => {
                        let message = format!(
                            "cancelled at step {step}; the last epoch's checkpoint is kept"
                        );
                        st.jobs.event(&id, now(), "info", message, None);
                    }
                    Err(e) => {
                        if let Ok(job) = st.jobs.job_mut(&id) {
                            job.status = JobStatus::Failed;
                            job.error = Some(e.to_string());
                        }
                        st.jobs.event(&id, now(), "error", e.to_string(), None);
                    }
                }
            });
            Ok(job)
        })
    }

    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move { lock(&self.state).jobs.job(id) })
    }

    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, fine_drums_llm::Result<Vec<JobEvent>>> {
        Box::pin(async move { lock(&self.state).jobs.events(id, after) })
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, fine_drums_llm::Result<Job>> {
        Box::pin(async move {
            let mut st = lock(&self.state);
            let job = st.jobs.job(id)?;
            if job.status.is_terminal() {
                return Err(invalid(
                    "cancel",
                    format!("job {id} has already ended ({:?})", job.status),
                ));
            }
            if let Some(stop) = st.stops.get(id) {
                stop.store(true, Ordering::Relaxed);
            }
            let job = st.jobs.job_mut(id)?;
            job.status = JobStatus::Cancelled;
            Ok(job.clone())
        })
    }

    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
}
