//! What goes to a model and what comes back.

use serde::{Deserialize, Serialize};

/// The most bars a model may write per completion: a model file (Markov or drum GPT) that
/// asks for more is refused, and training data whose commonest completion is longer settles
/// on this. No GMD piece comes near it; a crafted file could otherwise ask for 10^9.
pub const MAX_COMPLETION_BARS: usize = 1024;

/// A text completion request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionRequest {
    /// The model: `babbage-002`, `ft:babbage-002:org:drums:id`, a local model's name, …
    pub model: String,
    /// The prompt, ending with the manifest's separator.
    pub prompt: String,
    /// Most tokens to generate per sample.
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2. Default: 1.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this.
    /// Default: 1 (off).
    pub top_p: f32,
    /// Samples to return. Default: 1.
    pub n: u32,
    /// Sequences that end a sample (not included in it).
    pub stop: Vec<String>,
    /// A seed for reproducible sampling, where the backend supports it.
    pub seed: Option<u64>,
    /// For an infill: the text that comes after the completion (OpenAI's legacy `suffix`).
    /// The drum GPT writes the bars between the prompt and it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// What a drum model is steered by; backends without controls refuse any.
    #[serde(default, skip_serializing_if = "Steer::is_free")]
    pub steer: Steer,
}

impl CompletionRequest {
    /// An error for a backend (`backend` names it) that takes neither controls nor a
    /// suffix, when the request asks for either.
    pub fn plain_only(&self, backend: &'static str) -> crate::Result<()> {
        if !self.steer.without_controls() || self.suffix.is_some() {
            return Err(crate::Error::Invalid {
                what: "request",
                message: format!(
                    "the {backend} backend takes no controls (style, tempo, intensity, fills) and no suffix (infill): the drum GPT does"
                ),
            });
        }
        Ok(())
    }
}

/// What a drum model's bars are steered by: every control is optional. One left out is read
/// from the prompt where it can be (each prompt bar's intensity and fill marker), or left to
/// the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Steer {
    /// The style: a GMD genre (`rock`, `funk`, `jazz`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// The tempo in BPM (a model may know it as a bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tempo: Option<f64>,
    /// Per new bar, its intensity (1 to 5); bars past the list, and `null`s, are free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intensity: Vec<Option<u8>>,
    /// Per new bar, whether it is a fill; bars past the list, and `null`s, are free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<Option<bool>>,
    /// Bars to write; `None`: as many as the model writes per completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bars: Option<usize>,
    /// Where the prompt starts in its piece: the number of its first bar, from 0. The drum
    /// GPT counts its 4-, 8- and 16-bar phrases from the piece's first bar, so this puts its
    /// phrase ends (and fills) where the piece's are. `None`: the prompt opens a phrase. Not a
    /// control: a model that knows no phrases ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_start: Option<usize>,
}

impl Steer {
    /// Whether nothing is asked for: no control and no number of bars (where the prompt
    /// starts is not asked for).
    pub fn is_free(&self) -> bool {
        self.without_controls() && self.bars.is_none()
    }

    /// Whether no control is asked for (the number of bars is not one).
    pub fn without_controls(&self) -> bool {
        self.style.is_none()
            && self.tempo.is_none()
            && self.intensity.iter().all(Option::is_none)
            && self.fills.iter().all(Option::is_none)
    }

    /// The same controls for the bars from `offset` on (for a second request that goes on
    /// where the first ended, its prompt as long as the first's, so `offset` bars later).
    pub fn from_bar(&self, offset: usize) -> Steer {
        fn tail<T: Clone>(v: &[T], offset: usize) -> Vec<T> {
            v.get(offset..).map_or(Vec::new(), <[T]>::to_vec)
        }
        Steer {
            style: self.style.clone(),
            tempo: self.tempo,
            intensity: tail(&self.intensity, offset),
            fills: tail(&self.fills, offset),
            bars: self.bars.map(|b| b.saturating_sub(offset)),
            prompt_start: self.prompt_start.map(|s| s.saturating_add(offset)),
        }
    }
}

impl CompletionRequest {
    /// A request with the default sampling settings.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>, max_tokens: u32) -> Self {
        CompletionRequest {
            model: model.into(),
            prompt: prompt.into(),
            max_tokens,
            temperature: 1.0,
            top_p: 1.0,
            n: 1,
            stop: Vec::new(),
            seed: None,
            suffix: None,
            steer: Steer::default(),
        }
    }
}

/// Why a sample ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// A stop sequence, or the model's own end.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// Anything else the service said.
    #[serde(untagged)]
    Other(String),
}

/// One sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Choice {
    /// The generated text.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

impl Choice {
    /// A sample.
    pub fn new(text: impl Into<String>, finish_reason: FinishReason) -> Choice {
        Choice { text: text.into(), finish_reason }
    }
}

/// Tokens used by a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

impl Usage {
    /// A usage record.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage { prompt_tokens, completion_tokens }
    }

    /// Prompt plus completion tokens.
    pub fn total(self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

/// What a completion request returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Completion {
    /// The samples, `n` of them.
    pub choices: Vec<Choice>,
    /// Tokens used.
    pub usage: Usage,
}

impl Completion {
    /// A completion.
    pub fn new(choices: Vec<Choice>, usage: Usage) -> Completion {
        Completion { choices, usage }
    }
}

/// A file to upload for fine-tuning.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upload {
    /// The file name the service records (`train.jsonl`).
    pub name: String,
    /// The JSONL bytes.
    pub bytes: Vec<u8>,
}

impl Upload {
    /// A file to upload.
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Upload {
        Upload { name: name.into(), bytes }
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A fine-tuning job to create.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRequest {
    /// The base model (`babbage-002`, `davinci-002`, …).
    pub model: String,
    /// The uploaded training file's id.
    pub training_file: String,
    /// The uploaded validation file's id, if any.
    pub validation_file: Option<String>,
    /// Epochs; `None` lets the service choose.
    pub epochs: Option<u32>,
    /// Batch size; `None` lets the service choose.
    pub batch_size: Option<u32>,
    /// Learning-rate multiplier; `None` lets the service choose.
    pub learning_rate_multiplier: Option<f64>,
    /// Up to 18 characters added to the fine-tuned model's name.
    pub suffix: Option<String>,
    /// A seed for reproducible training.
    pub seed: Option<u64>,
}

impl JobRequest {
    /// A job on `model` over `training_file` with the service's default hyperparameters.
    pub fn new(model: impl Into<String>, training_file: impl Into<String>) -> JobRequest {
        JobRequest {
            model: model.into(),
            training_file: training_file.into(),
            ..JobRequest::default()
        }
    }
}

/// Where a fine-tuning job is.
///
/// Read case-insensitively, with the names other services use: Mistral's `VALIDATING`,
/// `SUCCESS`, `FAILED_VALIDATION` and `CANCELLATION_REQUESTED` among them. Written in
/// OpenAI's snake case.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// The service is checking the files.
    ValidatingFiles,
    /// Waiting to start.
    Queued,
    /// Training.
    Running,
    /// Stopped by the service (OpenAI pauses jobs, for one, when billing fails) until it is
    /// resumed there.
    Paused,
    /// Asked to cancel, not cancelled yet.
    Cancelling,
    /// Done; the model is ready.
    Succeeded,
    /// Ended in an error.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A status this crate does not know.
    Other(String),
}

impl JobStatus {
    /// Whether the job can no longer change.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The status as OpenAI writes it (an unknown one as it came).
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::ValidatingFiles => "validating_files",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Cancelling => "cancelling",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Other(s) => s,
        }
    }

    /// The status a service's name stands for, in any case.
    pub fn parse(name: &str) -> JobStatus {
        match name.to_ascii_lowercase().as_str() {
            "validating_files" | "validating" => JobStatus::ValidatingFiles,
            "queued" | "pending" => JobStatus::Queued,
            "running" | "started" | "in_progress" => JobStatus::Running,
            "paused" | "pausing" => JobStatus::Paused,
            "cancelling" | "cancellation_requested" => JobStatus::Cancelling,
            "succeeded" | "success" | "completed" => JobStatus::Succeeded,
            "failed" | "failed_validation" | "error" => JobStatus::Failed,
            "cancelled" | "canceled" => JobStatus::Cancelled,
            _ => JobStatus::Other(name.to_string()),
        }
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<JobStatus, D::Error> {
        let name = String::deserialize(d)?;
        Ok(JobStatus::parse(&name))
    }
}

/// A fine-tuning job as the service reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// The base model.
    pub model: String,
    /// Its status.
    pub status: JobStatus,
    /// The fine-tuned model's name, once it succeeded.
    pub fine_tuned_model: Option<String>,
    /// The service's reason, when it failed.
    pub error: Option<String>,
    /// Tokens trained on, when known.
    pub trained_tokens: Option<u64>,
}

impl Job {
    /// A job record.
    pub fn new(id: impl Into<String>, model: impl Into<String>, status: JobStatus) -> Job {
        Job {
            id: id.into(),
            model: model.into(),
            status,
            fine_tuned_model: None,
            error: None,
            trained_tokens: None,
        }
    }
}

/// A line of a fine-tuning job's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// The event's id (events are listed after one of these).
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
    /// Training figures, for a progress bar: OpenAI's `metrics` events, and the drum GPT's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// The figures of one training step, as OpenAI's `metrics` events give them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// The step, from 1.
    pub step: u64,
    /// Steps the job will take at most, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_steps: Option<u64>,
    /// The training loss of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// The validation loss, when the step ran one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_loss: Option<f64>,
    /// Training tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
}

impl Metrics {
    /// The figures of step `step`.
    pub fn new(step: u64) -> Metrics {
        Metrics { step, ..Metrics::default() }
    }
}

impl JobEvent {
    /// An event.
    pub fn new(
        id: impl Into<String>,
        created_at: u64,
        level: &str,
        message: impl Into<String>,
    ) -> Self {
        JobEvent {
            id: id.into(),
            created_at,
            level: level.into(),
            message: message.into(),
            metrics: None,
        }
    }

    /// The same event with training figures.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// Which endpoint completes a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/v1/chat/completions` for chat models (`openai::is_chat_model`), `/v1/completions`
    /// for the others.
    #[default]
    Auto,
    /// Always `/v1/completions`.
    Completions,
    /// Always `/v1/chat/completions`.
    Chat,
}

impl std::str::FromStr for Endpoint {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Endpoint> {
        match s {
            "auto" => Ok(Endpoint::Auto),
            "completions" => Ok(Endpoint::Completions),
            "chat" => Ok(Endpoint::Chat),
            other => Err(crate::error::Error::invalid(
                "endpoint",
                format!("{other:?}: auto, completions or chat"),
            )),
        }
    }
}
