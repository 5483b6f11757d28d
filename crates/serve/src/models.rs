//! The models the server serves and trains: which base names it takes, what each job
//! trains, where the trained models go, and completion on any of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fine_drums_backends::{Kind, Settings};
use fine_drums_dataset::Template;
use fine_drums_gpt::train::TrainOptions;
use fine_drums_gpt::{EMBEDDED, Gpt};
use fine_drums_llm::{
    Complete, Completion, CompletionRequest, FineTune, JobRequest, JobStatus, Upload,
};
use fine_drums_markov::{MODEL_EXTENSION, Markov, Model, PROMPT_MODEL};
use serde_json::json;

use crate::error::{Error, Result};
use crate::limits::MIB;
use crate::store::{JobRecord, Store, Trainer, now};

/// The base models a job may name, what each trains, and what each completes with before any
/// fine-tuning. The legacy names are those of the paper's scripts; the chat names are those
/// OpenAI still fine-tunes, for scripts written against today's API.
pub const BASE_MODELS: [(&str, &str); 8] = [
    ("babbage-002", "the Markov model; untrained, it continues from the prompt's own bars"),
    ("davinci-002", "the drum GPT; untrained, it is the built-in drums-small-gmd"),
    ("gpt-4o-mini-2024-07-18", "as babbage-002, for chat-format jobs"),
    ("gpt-4.1-mini-2025-04-14", "as babbage-002, for chat-format jobs"),
    ("gpt-4o-2024-08-06", "as davinci-002, for chat-format jobs"),
    ("gpt-4.1-2025-04-14", "as davinci-002, for chat-format jobs"),
    (PROMPT_MODEL, "the Markov model of the prompt's own bars (no training)"),
    (EMBEDDED, "the built-in drum GPT, trained on the GMD's train split (CC BY 4.0)"),
];

/// What a base model trains: the Markov model for the small names, the drum GPT for the others.
pub(crate) fn trainer_of(base: &str) -> Option<Trainer> {
    match base {
        "babbage-002" | "gpt-4o-mini-2024-07-18" | "gpt-4.1-mini-2025-04-14" => {
            Some(Trainer::Markov)
        }
        "davinci-002" | "gpt-4o-2024-08-06" | "gpt-4.1-2025-04-14" => Some(Trainer::Gpt),
        _ => None,
    }
}

/// What a model call costs in memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cost {
    /// MiB a sample holds while it is drawn.
    pub sample_mib: u32,
    /// MiB a call holds whatever its samples.
    pub fixed_mib: u32,
    /// Whether the samples may be drawn a chunk at a time.
    pub chunks: bool,
}

/// The local backends behind every model name.
pub(crate) struct Models {
    pub template: Template,
    local: Markov,
    gpt: Gpt,
    store: Arc<Store>,
    /// The drum GPT backend's id of each of the server's running GPT jobs.
    running: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Models {
    pub fn new(template: Template, train: TrainOptions, store: Arc<Store>) -> Result<Models> {
        let mut gpt = Settings::of(Kind::Gpt);
        gpt.models_dir = Some(store.dir().join("models"));
        gpt.training.preset = train.preset.clone();
        Ok(Models {
            local: Settings::of(Kind::Markov).markov(&template),
            gpt: gpt.gpt(&template, train)?,
            template,
            store,
            running: std::sync::Mutex::default(),
        })
    }

    /// Stops job `id`'s training, if it is the drum GPT's and running (the Markov model's
    /// training takes seconds and runs to its end).
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let inner =
            self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned();
        if let Some(inner) = inner {
            self.gpt.cancel(&inner).await?;
        }
        Ok(())
    }

    /// Which backend serves `model`, and its name there: a base name completes with the
    /// untrained model of what it trains (see [`BASE_MODELS`]).
    fn resolve(&self, model: &str) -> Result<(Trainer, String)> {
        match (trainer_of(model), model) {
            (Some(Trainer::Markov), _) | (None, PROMPT_MODEL) => {
                return Ok((Trainer::Markov, PROMPT_MODEL.into()));
            }
            (Some(Trainer::Gpt), _) | (None, EMBEDDED) => {
                return Ok((Trainer::Gpt, EMBEDDED.into()));
            }
            _ => {}
        }
        let job = self
            .store
            .jobs()
            .into_iter()
            .find(|j| j.fine_tuned_model.as_deref() == Some(model) && j.status == "succeeded");
        match job.and_then(|j| Some((j.trainer, j.model_path?))) {
            Some((trainer, path)) => Ok((trainer, path.display().to_string())),
            None => Err(Error::NotFound { what: "model", id: model.into() }),
        }
    }

    /// What one sample of `model` costs in memory, in MiB, and whether its samples may be
    /// drawn in chunks (the drum GPT's: sample `i` draws with `seed + i` however they are
    /// grouped) or must be drawn in one call (the Markov model's share one generator). The
    /// model is loaded, if it was not, to read its shape (blocking).
    pub fn cost(&self, model: &str, prompt_bytes: usize) -> Result<Cost> {
        let (trainer, name) = self.resolve(model)?;
        Ok(match trainer {
            // Its samples are text; what it holds is the model of the prompt's bars, or its
            // file: a few times the prompt, and a few MiB.
            Trainer::Markov => Cost {
                sample_mib: 1,
                fixed_mib: 8 + (prompt_bytes as u64 * 32).div_ceil(MIB) as u32,
                chunks: false,
            },
            Trainer::Gpt => {
                let c = self.gpt.model(&name)?.drummer.gpt.config().clone();
                // The keys and values of every block for the whole context, and the
                // activations, logits and sampling state around them: measured at 14 MB a
                // sample for the small preset (1 MiB of keys and values), so 16 times those.
                let kv = 2 * c.layers as u64 * c.context as u64 * c.d_model as u64 * 4;
                Cost {
                    sample_mib: u32::try_from((16 * kv).div_ceil(MIB)).unwrap_or(u32::MAX),
                    fixed_mib: 8,
                    chunks: true,
                }
            }
        })
    }

    /// Completes `request` with the model it names (blocking: call it off the async threads);
    /// the drum GPT stops within a step once `cancel` is set.
    pub fn complete(&self, request: &CompletionRequest, cancel: &AtomicBool) -> Result<Completion> {
        let (trainer, name) = self.resolve(&request.model)?;
        let mut request = request.clone();
        request.model = name;
        Ok(match trainer {
            Trainer::Markov => self.local.complete_now(&request)?,
            Trainer::Gpt => match self.gpt.complete_until(&request, cancel) {
                Err(_) if cancel.load(Ordering::Relaxed) => return Err(Error::Cancelled),
                other => other?,
            },
        })
    }

    /// The negative log-likelihood (nats) of all of `continuation` after `prompt`, through the
    /// backends' own scoring, which keeps their loaded models (blocking: call it off the
    /// async threads, inside the runtime).
    pub fn nll(&self, model: &str, prompt: &str, continuation: &str) -> Result<Option<f64>> {
        let (trainer, name) = self.resolve(model)?;
        let bars = continuation.lines().filter(|l| !l.trim().is_empty()).count() as f64;
        let scoring = match trainer {
            Trainer::Markov => self.local.nll_per_bar(&name, prompt, continuation),
            Trainer::Gpt => Complete::nll_per_bar(&self.gpt, &name, prompt, continuation),
        };
        let per_bar = tokio::runtime::Handle::current().block_on(scoring)?;
        Ok(per_bar.map(|n| n * bars))
    }

    /// Runs job `id` to its end, recording its events as they happen. A job found running
    /// after a restart runs again: the Markov model from the start (seconds), the drum GPT
    /// from its last checkpoint.
    pub async fn run(&self, id: &str) -> Result<()> {
        let Some(job) = self.store.job(id) else { return Ok(()) };
        if job.is_terminal() {
            return Ok(());
        }
        let store = &self.store;
        let restarted = job.status != "validating_files";
        if restarted {
            store.event(id, "info", "The server restarted during this job; it runs again", None)?;
        }
        let file = |fid: &str| -> Result<Upload> {
            let record =
                store.file(fid).ok_or_else(|| Error::NotFound { what: "file", id: fid.into() })?;
            Ok(Upload::new(record.filename, store.file_data(fid)?))
        };
        let training = file(&job.training_file)?;
        let validation = job.validation_file.as_deref().map(file).transpose()?;
        store.event(
            id,
            "info",
            format!("Validating training file: {}", job.training_file),
            None,
        )?;
        let check = Model::new(&self.template)
            .and_then(|mut m| {
                let text = String::from_utf8_lossy(&training.bytes);
                m.train_jsonl(&training.name, &text).map(|()| m)
            })
            .map_err(|e| Error::invalid(Some("training_file"), e.to_string()))?;
        // The same rule for every trainer: a file with no example, or no bar, trains nothing.
        let stats = check.stats();
        if stats.examples == 0 || stats.bars == 0 {
            return Err(Error::invalid(
                Some("training_file"),
                format!(
                    "{}: {} examples with {} bars of drums: a job needs at least one bar to learn from",
                    training.name, stats.examples, stats.bars
                ),
            ));
        }
        // A job cancelled meanwhile stays cancelled: each step goes on only from a live state.
        if store.update_job(id, |j| j.status = "queued".into())?.is_none() {
            return Ok(());
        }
        store.event(id, "info", format!("Files validated: {} examples", stats.examples), None)?;
        if store.update_job(id, |j| j.status = "running".into())?.is_none() {
            return Ok(());
        }
        store.event(id, "info", "Fine-tuning job started", None)?;
        let path = match job.trainer {
            Trainer::Markov => self.train_markov(&job, check)?,
            Trainer::Gpt => match self.train_gpt(&job, training, validation).await? {
                Some(path) => path,
                None => return Ok(()),
            },
        };
        let short = id.trim_start_matches("ftjob-");
        let name = format!(
            "ft:{}:fine-drums:{}:{}",
            job.model,
            job.suffix.as_deref().unwrap_or("drums"),
            &short[..short.len().min(8)]
        );
        let done = store.update_job(id, |j| {
            j.model_path = Some(path);
            j.fine_tuned_model = Some(name.clone());
            j.status = "succeeded".into();
            j.finished_at = Some(now());
        })?;
        if done.is_none() {
            return Ok(());
        }
        store.event(id, "info", format!("New fine-tuned model created: {name}"), None)?;
        store.event(id, "info", "The job has successfully completed", None)?;
        Ok(())
    }

    fn train_markov(&self, job: &JobRecord, model: Model) -> Result<PathBuf> {
        let s = model.stats();
        let message = format!(
            "Trained the Markov model: {} examples, {} bars ({} lines skipped), {} step symbols, {} contexts",
            s.examples,
            s.bars,
            s.skipped_lines,
            model.vocabulary(),
            model.contexts()
        );
        self.store.event(&job.id, "info", message, Some(json!({ "step": 1, "total_steps": 1 })))?;
        let path = self.store.dir().join("models").join(format!("{}.{MODEL_EXTENSION}", job.id));
        fine_drums_dataset::fs::write_atomic(&path, &model.to_bytes())
            .map_err(|e| Error::Write { path: path.clone(), message: e.to_string() })?;
        Ok(path)
    }

    /// Trains the drum GPT through its backend, copying its events into the job's log;
    /// `None` when the job was cancelled meanwhile.
    async fn train_gpt(
        &self,
        job: &JobRecord,
        training: Upload,
        validation: Option<Upload>,
    ) -> Result<Option<PathBuf>> {
        let gpt = &self.gpt;
        let mut request = JobRequest::new(fine_drums_gpt::BASE_MODEL, gpt.upload(&training).await?);
        if let Some(v) = validation {
            request.validation_file = Some(gpt.upload(&v).await?);
        }
        let h = &job.hyperparameters;
        (request.epochs, request.batch_size, request.learning_rate_multiplier) =
            (h.n_epochs, h.batch_size, h.learning_rate_multiplier);
        // The job's id names the checkpoint: the same job after a restart resumes it.
        (request.suffix, request.seed) = (Some(job.id.clone()), Some(job.seed));
        let inner = gpt.create_job(&request).await?;
        let running = || self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        running().insert(job.id.clone(), inner.id.clone());
        let result = self.follow(&job.id, &inner.id).await;
        running().remove(&job.id);
        result
    }

    /// Copies the drum GPT job `inner`'s events into job `id`'s log until it ends; the
    /// model's folder, or `None` when the job was cancelled.
    async fn follow(&self, id: &str, inner: &str) -> Result<Option<PathBuf>> {
        let gpt = &self.gpt;
        let mut last: Option<String> = None;
        loop {
            let state = gpt.job(inner).await?;
            // Read before the events: once it is false, they are all there.
            let training = gpt.is_training(inner);
            for e in gpt.events(inner, last.as_deref()).await? {
                let data = e.metrics.map(|m| {
                    json!({ "step": m.step, "total_steps": m.total_steps, "train_loss": m.train_loss,
                            "valid_loss": m.valid_loss, "tokens_per_second": m.tokens_per_second })
                });
                self.store.event(id, &e.level, e.message, data)?;
                last = Some(e.id);
            }
            if self.store.job(id).is_some_and(|j| j.status == "cancelled") {
                // Until the training has stopped, and said where. A cancel that came before
                // the training was registered did not reach it: stop it now.
                if !training {
                    return Ok(None);
                }
                let _ = gpt.cancel(inner).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            match state.status {
                JobStatus::Succeeded => {
                    let path = state.fine_tuned_model.unwrap_or_default();
                    return Ok(Some(PathBuf::from(path)));
                }
                JobStatus::Failed | JobStatus::Cancelled => {
                    let message = state.error.unwrap_or_else(|| "training stopped".into());
                    return Err(Error::invalid(None, message));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
