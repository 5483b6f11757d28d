//! The Markov model of fine_drums: an offline backend that fine-tunes and continues with no
//! key, no network and no tensors.
//!
//! ```
//! use fine_drums_dataset::Template;
//! use fine_drums_llm::{Complete, CompletionRequest};
//! use fine_drums_markov::{Markov, PROMPT_MODEL};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let markov = Markov::new(Template::default());
//! let bar = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
//! let prompt = format!("#beat 4/4 16\n{}\n>>>", bar.repeat(4).trim_end());
//! let mut request = CompletionRequest::new(PROMPT_MODEL, prompt, 400);
//! request.seed = Some(7);
//! let out = markov.complete_now(&request)?;
//! assert!(out.choices[0].text.lines().any(|l| l.contains('K')));
//! # Ok(())
//! # }
//! ```
//!
//! "Fine-tuning" counts a [`Model`] (a variable-order Markov model over the beat format's
//! steps; see its documentation for what it can and cannot learn) from the same JSONL
//! files the OpenAI path uploads. Completion samples from it with temperature, top-k,
//! top-p and a seed, and writes only whole, grammatical bars. The model name `local`
//! needs no training at all: the model is counted from the prompt's own bars.
//!
//! It implements [`Complete`] and [`FineTune`] of `fine-drums-llm` like every other backend,
//! so the pipeline and every example run on it. It draws with the contract's shared sampler
//! ([`Sampling`]), as the drum GPT does.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod file;
mod model;
mod sample;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use fine_drums_dataset::fs::{MAX_MODEL_FILE, read_model_file};
use fine_drums_dataset::{CountTokens, Template};

pub use file::MODEL_VERSION;
pub use fine_drums_llm::sample::Sampling;
pub use model::{Model, TrainStats};

use fine_drums_llm::jobs::Jobs;
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, Error, FineTune, FinishReason, Job,
    JobEvent, JobRequest, JobStatus, Result, Upload, Usage, random,
};

/// The model name that continues from the prompt's own statistics.
pub const PROMPT_MODEL: &str = "local";

/// The file extension of saved models.
pub const MODEL_EXTENSION: &str = "fdlm";

struct State {
    jobs: Jobs,
    models: HashMap<String, Arc<Model>>,
}

impl Default for State {
    fn default() -> State {
        State { jobs: Jobs::new("local"), models: HashMap::new() }
    }
}

/// The offline backend.
///
/// Models are named `local` (the prompt's own statistics), by the name a job gave them,
/// or by the path of a saved model file (loaded once, then kept).
pub struct Markov {
    template: Template,
    models_dir: Option<PathBuf>,
    top_k: usize,
    state: Mutex<State>,
    tokens: OnceLock<Option<tiktoken_rs::CoreBPE>>,
}

impl std::fmt::Debug for Markov {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Markov").field("models_dir", &self.models_dir).finish_non_exhaustive()
    }
}

impl Markov {
    /// A backend that reads prompts with `template` (the manifest's) and keeps the models
    /// it trains in memory.
    pub fn new(template: Template) -> Markov {
        Markov {
            template,
            models_dir: None,
            top_k: 0,
            state: Mutex::default(),
            tokens: OnceLock::new(),
        }
    }

    /// Saves trained models in `dir` (as `<suffix>-<job>.fdlm`); their names are the paths.
    pub fn with_models_dir(mut self, dir: impl Into<PathBuf>) -> Markov {
        self.models_dir = Some(dir.into());
        self
    }

    /// Samples only among the `k` likeliest steps (0: all). The OpenAI API has no top-k,
    /// so it is a setting of the backend rather than of the request.
    pub fn with_top_k(mut self, k: usize) -> Markov {
        self.top_k = k;
        self
    }

    /// Registers a model under `name`.
    pub fn insert_model(&self, name: impl Into<String>, model: Model) {
        self.lock().models.insert(name.into(), Arc::new(model));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, text: &str) -> u64 {
        let bpe = self.tokens.get_or_init(|| fine_drums_dataset::cl100k().ok());
        match bpe {
            Some(b) => b.count_tokens(text) as u64,
            // Without the tokenizer, a byte per token: never under the true count.
            None => text.len() as u64,
        }
    }

    fn model(&self, name: &str, prompt: &str) -> Result<Arc<Model>> {
        if name == PROMPT_MODEL || name.is_empty() {
            let mut m = Model::new(&self.template)?;
            let body = prompt.strip_suffix(self.template.separator.as_str()).unwrap_or(prompt);
            m.train_text(body);
            return Ok(Arc::new(m));
        }
        if let Some(m) = self.lock().models.get(name) {
            return Ok(m.clone());
        }
        let bytes = read_model_file(Path::new(name), MAX_MODEL_FILE).map_err(|e| {
            let message = format!(
                "{e} (a local model is `local`, a trained model's name, or a .{MODEL_EXTENSION} file)"
            );
            Error::model_from(name, message, e)
        })?;
        let model = Arc::new(Model::from_bytes(name, &bytes)?);
        self.lock().models.insert(name.to_string(), model.clone());
        Ok(model)
    }

    /// Completes synchronously: what [`Complete::complete`] does, without a runtime.
    pub fn complete_now(&self, request: &CompletionRequest) -> Result<Completion> {
        request.plain_only("markov")?;
        if !(0.0..=2.0).contains(&request.temperature) || !(0.0..=1.0).contains(&request.top_p) {
            return Err(Error::invalid("sampling", "temperature must be 0 to 2 and top_p 0 to 1"));
        }
        let model = self.model(&request.model, &request.prompt)?;
        let mut rng = random::seeded(request.seed.unwrap_or_else(clock_seed));
        let sampling = Sampling::new(request.temperature, self.top_k, request.top_p);
        let budget = u64::from(request.max_tokens);
        let mut usage = Usage::new(self.count(&request.prompt), 0);
        let mut choices = Vec::with_capacity(request.n as usize);
        for _ in 0..request.n.max(1) {
            let mut used = self.count("\n");
            let (text, cut) = model.generate(
                &request.prompt,
                model.completion_bars(),
                sampling,
                &mut rng,
                |_, line| {
                    let t = self.count(line) + self.count("\n");
                    used += t;
                    used <= budget
                },
            );
            usage.completion_tokens += self.count(&text);
            let finish = if cut { FinishReason::Length } else { FinishReason::Stop };
            choices.push(Choice::new(text, finish));
        }
        Ok(Completion::new(choices, usage))
    }

    fn train(&self, request: &JobRequest) -> Result<(Model, Vec<String>)> {
        if request.model != PROMPT_MODEL {
            return Err(Error::invalid(
                "base model",
                format!(
                    "the local backend trains from scratch: use the base model `{PROMPT_MODEL}`, not {:?}",
                    request.model
                ),
            ));
        }
        let file = |id: &str| self.lock().jobs.file(id);
        let training = file(&request.training_file)?;
        let started = Instant::now();
        let mut model = Model::new(&self.template)?;
        let text = std::str::from_utf8(&training.bytes)
            .map_err(|e| Error::model_from(&training.name, "not UTF-8 text", e))?;
        model.train_jsonl(&training.name, text)?;
        let s = model.stats();
        let mut log = vec![format!(
            "trained on {}: {} examples, {} bars ({} lines skipped) -> {} step symbols, {} contexts, in {:.0} ms",
            training.name,
            s.examples,
            s.bars,
            s.skipped_lines,
            model.vocabulary(),
            model.contexts(),
            started.elapsed().as_secs_f64() * 1e3
        )];
        if request.epochs.is_some()
            || request.batch_size.is_some()
            || request.learning_rate_multiplier.is_some()
        {
            log.push(
                "epochs, batch size and learning rate do not apply to a counting model: ignored"
                    .into(),
            );
        }
        if let Some(v) = &request.validation_file {
            let v = file(v)?;
            log.push(format!(
                "validation file {} kept for evaluation ({} bytes)",
                v.name,
                v.bytes.len()
            ));
        }
        Ok((model, log))
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Complete for Markov {
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(async move { self.complete_now(request) })
    }

    /// Scores with [`Model::nll_per_bar`].
    fn nll_per_bar<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        continuation: &'a str,
    ) -> BoxFuture<'a, Result<Option<f64>>> {
        Box::pin(async move { Ok(self.model(model, prompt)?.nll_per_bar(prompt, continuation)) })
    }
}

impl FineTune for Markov {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move { Ok(self.lock().jobs.upload(file)) })
    }

    fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            // Job ids never name a model file that is already there: nothing is overwritten.
            let suffix = request.suffix.as_deref().unwrap_or("drums");
            let id = loop {
                let id = self.lock().jobs.next_job_id();
                let taken = self
                    .models_dir
                    .as_ref()
                    .is_some_and(|d| d.join(format!("{suffix}-{id}.{MODEL_EXTENSION}")).exists());
                if !taken {
                    break id;
                }
            };
            let (model, mut log) = self.train(request)?;
            let name = match &self.models_dir {
                Some(dir) => {
                    let path = dir.join(format!("{suffix}-{id}.{MODEL_EXTENSION}"));
                    let bytes = model.to_bytes();
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::model_from(dir.display().to_string(), e.to_string(), e)
                    })?;
                    fine_drums_dataset::fs::write_atomic(&path, &bytes)?;
                    log.push(format!("saved {} ({} bytes)", path.display(), bytes.len()));
                    path.display().to_string()
                }
                None => format!("local:{suffix}:{id}"),
            };
            let mut job = Job::new(&id, &request.model, JobStatus::Succeeded);
            job.fine_tuned_model = Some(name.clone());
            job.trained_tokens = None;
            let now = clock_seed() / 1_000_000_000;
            let mut st = self.lock();
            st.models.insert(name, Arc::new(model));
            st.jobs.insert(job.clone());
            for m in log {
                st.jobs.event(&id, now, "info", m, None);
            }
            Ok(job)
        })
    }

    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move { self.lock().jobs.job(id) })
    }

    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<JobEvent>>> {
        Box::pin(async move { self.lock().jobs.events(id, after) })
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let job = self.lock().jobs.job(id)?;
            Err(Error::invalid(
                "cancel",
                format!(
                    "job {id} already ended ({:?}); local jobs finish as they are created",
                    job.status
                ),
            ))
        })
    }

    fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
