//! The OpenAI backend: `babbage-002`, `davinci-002`, their `ft:` models, and any
//! OpenAI-compatible server (vLLM, llama.cpp's server, Ollama) by base URL.
//!
//! Requests go through async-openai 0.43 with this crate's [`RetryPolicy`] as its HTTP
//! service. Fine-tuning jobs are created from raw JSON, because the legacy models take
//! top-level `hyperparameters` while async-openai's request type only has `method`; jobs,
//! events and files are read into this crate's own lenient types (async-openai's
//! checkpoint-metrics type, for one, rejects OpenAI's documented responses).
//!
//! OpenAI stopped new fine-tuning runs on `babbage-002` and `davinci-002` on 2024-10-28
//! and is winding down self-serve fine-tuning. When the service refuses, [`Error::Api`]
//! carries its own message, and a hint towards a compatible server or the offline
//! backend.

mod retry;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::files::{CreateFileRequest, FileInput, FilePurpose};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use retry::RetryPolicy;

use crate::error::{Error, Result};
use crate::traits::{BoxFuture, Complete, FineTune};
use crate::types::{
    Choice, Completion, CompletionRequest, FinishReason, Job, JobEvent, JobRequest, JobStatus,
    Upload, Usage,
};

/// OpenAI's API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The base models of the paper, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BaseModel {
    /// `babbage-002` (cl100k_base, 16k context; fine-tuning examples up to 4,096 tokens).
    Babbage002,
    /// `davinci-002` (cl100k_base, 16k context; fine-tuning examples up to 4,096 tokens).
    Davinci002,
}

impl BaseModel {
    /// The model's API name.
    pub fn as_str(self) -> &'static str {
        match self {
            BaseModel::Babbage002 => "babbage-002",
            BaseModel::Davinci002 => "davinci-002",
        }
    }

    /// The preset a model name is, or was fine-tuned from (`ft:babbage-002:…`).
    pub fn of(model: &str) -> Option<BaseModel> {
        let base = model.strip_prefix("ft:").unwrap_or(model);
        [BaseModel::Babbage002, BaseModel::Davinci002]
            .into_iter()
            .find(|b| base.split(':').next() == Some(b.as_str()))
    }
}

/// An API key. Its `Debug` is redacted and it has no `Display` or `Serialize`, so it
/// cannot leak into logs, errors or files by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key in `OPENAI_API_KEY`, if set and not empty.
    pub fn from_env() -> Option<ApiKey> {
        std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.trim().is_empty()).map(ApiKey)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// How to reach the service.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The API's base URL. Default: [`OPENAI_BASE_URL`].
    pub base_url: String,
    /// The key.
    pub api_key: ApiKey,
    /// The `OpenAI-Organization` header, if any.
    pub organization: Option<String>,
    /// The `OpenAI-Project` header, if any.
    pub project: Option<String>,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    /// Time between two looks at a running job. Default: 10 s.
    pub poll_interval: Duration,
}

impl Config {
    /// A configuration for OpenAI's API with `api_key`.
    pub fn new(api_key: ApiKey) -> Config {
        Config {
            base_url: OPENAI_BASE_URL.to_string(),
            api_key,
            organization: None,
            project: None,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(10),
        }
    }

    /// A configuration with the key from `OPENAI_API_KEY`, and the organisation, project
    /// and base URL from `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID` and `OPENAI_BASE_URL` when set.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::new(ApiKey::from_env().ok_or(Error::MissingKey)?);
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = var("OPENAI_BASE_URL") {
            c.base_url = url;
        }
        c.organization = var("OPENAI_ORG_ID");
        c.project = var("OPENAI_PROJECT_ID");
        Ok(c)
    }
}

/// The OpenAI backend: implements [`Complete`] and [`FineTune`].
#[derive(Clone)]
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    config: Config,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi").field("config", &self.config).finish_non_exhaustive()
    }
}

const HINT: &str = "OpenAI stopped new fine-tuning runs on babbage-002 and davinci-002 on \
     2024-10-28 and is winding down self-serve fine-tuning. Point --base-url at an \
     OpenAI-compatible server (vLLM, llama.cpp, Ollama), or use the offline local backend \
     (--backend local), which needs no key";

impl OpenAi {
    /// A backend for `config`.
    pub fn new(config: Config) -> Result<OpenAi> {
        let url = config.base_url.trim_end_matches('/').to_string();
        if reqwest::Url::parse(&url).is_err() {
            return Err(Error::invalid("base URL", format!("{url:?} is not a URL")));
        }
        // reqwest is built without a default TLS crypto provider; ring is ours. Installing
        // fails harmlessly when the process already has one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.retry.timeout)
            .build()
            .map_err(|e| Error::invalid("HTTP client", e.to_string()))?;
        let mut openai = OpenAIConfig::new().with_api_base(&url).with_api_key(&config.api_key.0);
        if let Some(o) = &config.organization {
            openai = openai.with_org_id(o);
        }
        if let Some(p) = &config.project {
            openai = openai.with_project_id(p);
        }
        let service = retry::RetryService {
            client: http.clone(),
            policy: config.retry,
            seed: Arc::new(AtomicU64::new(seed_from_clock())),
        };
        let client = Client::build(http, openai).with_http_service(service);
        Ok(OpenAi { client, config: Config { base_url: url, ..config } })
    }

    /// A backend configured from the environment (see [`Config::from_env`]).
    pub fn from_env() -> Result<OpenAi> {
        OpenAi::new(Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// async-openai's error as this crate's.
fn from_openai(e: OpenAIError, what: &'static str) -> Error {
    match e {
        OpenAIError::Boxed(b) => match b.downcast::<Error>() {
            Ok(e) => *e,
            Err(b) => Error::invalid("request", b.to_string()),
        },
        OpenAIError::JSONDeserialize(err, body) => {
            Error::Decode { what, message: err.to_string(), body: body.chars().take(200).collect() }
        }
        OpenAIError::ApiError(a) => Error::Api {
            status: a.status_code.as_u16(),
            code: a.api_error.code.clone(),
            message: a.api_error.message,
            attempts: 1,
            hint: None,
        },
        other => Error::invalid("request", other.to_string()),
    }
}

/// Adds the fine-tuning hint to a refusal of a legacy model.
fn with_hint(e: Error, model: &str, fine_tuning: bool) -> Error {
    match e {
        Error::Api { status, code, message, attempts, hint: None }
            if (400..500).contains(&status)
                && status != 429
                && (fine_tuning || status == 404 || BaseModel::of(model).is_some()) =>
        {
            let hint = if BaseModel::of(model).is_some() || fine_tuning {
                HINT.to_string()
            } else {
                "the model may not exist on this server, or may have been shut down; check \
                 --model and --base-url, or use the offline local backend (--backend local)"
                    .to_string()
            };
            Error::Api { status, code, message, attempts, hint: Some(hint) }
        }
        e => e,
    }
}

#[derive(Deserialize)]
struct CompletionBody {
    choices: Vec<ChoiceBody>,
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct ChoiceBody {
    text: String,
    #[serde(default)]
    index: u32,
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<LogprobsBody>,
}

/// The log-probabilities of a legacy completion: each token's, and where it starts.
#[derive(Deserialize)]
struct LogprobsBody {
    #[serde(default)]
    token_logprobs: Vec<Option<f64>>,
    #[serde(default)]
    text_offset: Vec<usize>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct FileBody {
    id: String,
}

#[derive(Deserialize)]
struct JobBody {
    id: String,
    #[serde(default)]
    model: String,
    status: JobStatus,
    fine_tuned_model: Option<String>,
    error: Option<Value>,
    trained_tokens: Option<u64>,
}

impl From<JobBody> for Job {
    fn from(b: JobBody) -> Job {
        let error = b.error.and_then(|e| match e {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Object(o) => {
                let message = o.get("message").and_then(Value::as_str).unwrap_or_default();
                let code = o.get("code").and_then(Value::as_str);
                match (message.is_empty(), code) {
                    (true, None) => None,
                    (_, Some(c)) => Some(format!("{message} ({c})").trim().to_string()),
                    (false, None) => Some(message.to_string()),
                }
            }
            other => Some(other.to_string()),
        });
        Job {
            id: b.id,
            model: b.model,
            status: b.status,
            fine_tuned_model: b.fine_tuned_model,
            error,
            trained_tokens: b.trained_tokens,
        }
    }
}

#[derive(Deserialize)]
struct EventsBody {
    data: Vec<EventBody>,
    /// Whether older events follow this page.
    #[serde(default)]
    has_more: bool,
}

/// Pages of 100 events [`OpenAi`]'s `events` reads back at most in one call: a poll
/// normally needs one.
const MAX_EVENT_PAGES: usize = 50;

#[derive(Deserialize)]
struct EventBody {
    id: String,
    #[serde(default)]
    created_at: u64,
    #[serde(default)]
    level: String,
    #[serde(default)]
    message: String,
    /// `metrics` for a training step's figures, else `message`.
    #[serde(default, rename = "type")]
    kind: String,
    /// Kept as JSON: a `data` object this crate does not expect is no reason to lose the page.
    #[serde(default)]
    data: Option<Value>,
}

/// The JSON body of a completion request.
pub fn completion_body(request: &CompletionRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "n": request.n,
    });
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    if let Some(seed) = request.seed {
        body["seed"] = json!(seed);
    }
    body
}

/// The JSON body that asks a server for the log-probabilities of `prompt` followed by
/// `continuation` (a newline between, as the training completions had it), generating
/// nothing: `echo` with `logprobs` and no new tokens.
pub fn scoring_body(model: &str, prompt: &str, continuation: &str) -> Value {
    json!({
        "model": model,
        "prompt": format!("{prompt}\n{continuation}"),
        "max_tokens": 0,
        "echo": true,
        "logprobs": 0,
        "temperature": 0,
    })
}

/// The job creation's JSON body: top-level `hyperparameters` for `babbage-002` and
/// `davinci-002` (as their API takes them), `method.supervised.hyperparameters` for
/// every other model.
pub fn job_body(request: &JobRequest) -> Value {
    let mut hyper = Map::new();
    if let Some(e) = request.epochs {
        hyper.insert("n_epochs".into(), json!(e));
    }
    if let Some(b) = request.batch_size {
        hyper.insert("batch_size".into(), json!(b));
    }
    if let Some(l) = request.learning_rate_multiplier {
        hyper.insert("learning_rate_multiplier".into(), json!(l));
    }
    let mut body = json!({ "model": request.model, "training_file": request.training_file });
    if let Some(v) = &request.validation_file {
        body["validation_file"] = json!(v);
    }
    if let Some(s) = &request.suffix {
        body["suffix"] = json!(s);
    }
    if let Some(s) = request.seed {
        body["seed"] = json!(s);
    }
    if !hyper.is_empty() {
        if BaseModel::of(&request.model).is_some() {
            body["hyperparameters"] = Value::Object(hyper);
        } else {
            body["method"] =
                json!({ "type": "supervised", "supervised": { "hyperparameters": hyper } });
        }
    }
    body
}

impl Complete for OpenAi {
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(async move {
            let body: CompletionBody = self
                .client
                .completions()
                .create_byot(completion_body(request))
                .await
                .map_err(|e| with_hint(from_openai(e, "completion"), &request.model, false))?;
            let mut choices = body.choices;
            choices.sort_by_key(|c| c.index);
            let usage = body
                .usage
                .map_or(Usage::default(), |u| Usage::new(u.prompt_tokens, u.completion_tokens));
            Ok(Completion::new(
                choices
                    .into_iter()
                    .map(|c| Choice {
                        text: c.text,
                        finish_reason: match c.finish_reason.as_deref() {
                            Some("stop") | None => FinishReason::Stop,
                            Some("length") => FinishReason::Length,
                            Some(o) => FinishReason::Other(o.to_string()),
                        },
                    })
                    .collect(),
                usage,
            ))
        })
    }

    /// Scores the continuation with the server's prompt log-probabilities (`echo` and
    /// `logprobs`, as OpenAI's legacy models, vLLM and SGLang give them): the tokens from
    /// the continuation's first character on. `None` when the server returns none.
    fn nll_per_bar<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        continuation: &'a str,
    ) -> BoxFuture<'a, Result<Option<f64>>> {
        Box::pin(async move {
            let bars = continuation.lines().filter(|l| !l.trim().is_empty()).count();
            if bars == 0 {
                return Ok(None);
            }
            let body: CompletionBody = self
                .client
                .completions()
                .create_byot(scoring_body(model, prompt, continuation))
                .await
                .map_err(|e| with_hint(from_openai(e, "scoring"), model, false))?;
            let Some(lp) = body.choices.into_iter().next().and_then(|c| c.logprobs) else {
                return Ok(None);
            };
            // The continuation starts after the prompt and its newline.
            let start = prompt.len() + 1;
            let mut total = 0.0;
            let mut scored = false;
            for (offset, logprob) in lp.text_offset.iter().zip(&lp.token_logprobs) {
                match logprob {
                    Some(l) if *offset >= start => {
                        total -= l;
                        scored = true;
                    }
                    _ => {}
                }
            }
            Ok(scored.then(|| total / bars as f64))
        })
    }
}

impl FineTune for OpenAi {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let request = CreateFileRequest {
                file: FileInput::from_vec_u8(file.name.clone(), file.bytes.clone()),
                purpose: FilePurpose::FineTune,
                expires_after: None,
            };
            let body: FileBody = self
                .client
                .files()
                .create_byot(request)
                .await
                .map_err(|e| from_openai(e, "file upload"))?;
            Ok(body.id)
        })
    }

    fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let body: JobBody =
                self.client.fine_tuning().create_byot(job_body(request)).await.map_err(|e| {
                    with_hint(from_openai(e, "fine-tuning job"), &request.model, true)
                })?;
            Ok(body.into())
        })
    }

    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let body: JobBody = self
                .client
                .fine_tuning()
                .retrieve_byot(id)
                .await
                .map_err(|e| from_openai(e, "fine-tuning job"))?;
            Ok(body.into())
        })
    }

    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<JobEvent>>> {
        Box::pin(async move {
            // The API lists events newest first, a page at a time, each page continuing
            // after the last event of the one before: read back until `after` (or the
            // job's first event) is reached, at most MAX_EVENT_PAGES pages.
            let mut out: Vec<JobEvent> = Vec::new();
            for _ in 0..MAX_EVENT_PAGES {
                let mut query = vec![("limit", "100".to_string())];
                if let Some(last) = out.last() {
                    query.push(("after", last.id.clone()));
                }
                let body: EventsBody = self
                    .client
                    .fine_tuning()
                    .query(&query)
                    .map_err(|e| from_openai(e, "fine-tuning events"))?
                    .list_events_byot(id)
                    .await
                    .map_err(|e| from_openai(e, "fine-tuning events"))?;
                let page = body.data.len();
                let before = out.len();
                out.extend(body.data.into_iter().take_while(|e| Some(e.id.as_str()) != after).map(
                    |e| {
                        let metrics = (e.kind == "metrics")
                            .then(|| e.data.and_then(|d| serde_json::from_value(d).ok()))
                            .flatten();
                        let event = JobEvent::new(e.id, e.created_at, &e.level, e.message);
                        match metrics {
                            Some(m) => event.with_metrics(m),
                            None => event,
                        }
                    },
                ));
                if !body.has_more || page == 0 || out.len() - before < page {
                    break;
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let body: JobBody = self
                .client
                .fine_tuning()
                .cancel_byot(id)
                .await
                .map_err(|e| from_openai(e, "fine-tuning job"))?;
            Ok(body.into())
        })
    }

    fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    fn pause<'a>(&'a self, duration: Duration) -> BoxFuture<'a, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
