//! The OpenAI backend: OpenAI's API as it is today, and any OpenAI-compatible server
//! (vLLM, SGLang, llama.cpp's server, Ollama, the project's own `serve`) by base URL.
//!
//! Requests go through async-openai 0.43 with this crate's [`RetryPolicy`] as its HTTP
//! service. Fine-tuning jobs are created from raw JSON, because the legacy models take
//! top-level `hyperparameters` while async-openai's request type only has `method`; jobs,
//! events and files are read into this crate's own lenient types (async-openai's
//! checkpoint-metrics type, for one, rejects OpenAI's documented responses).
//!
//! **The models, as of December 2026.** `babbage-002` and `davinci-002` shut down on
//! 2026-09-28, and every model fine-tuned from them on 2026-10-23. OpenAI fine-tunes only
//! chat models ([`CHAT_FINE_TUNABLE`]), on chat files, for organisations still eligible, and
//! closes self-serve fine-tuning to everyone on 2027-01-06. A chat model is completed through
//! `/v1/chat/completions` ([`Endpoint`]); the project's `serve` still fine-tunes and serves
//! the legacy names, offline. When a service refuses, [`Error::Api`] carries its own message
//! and a hint.

mod retry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::files::{CreateFileRequest, FileInput, FilePurpose};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use crate::types::Endpoint;
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

/// How to reach the service. Its `Debug` shows neither the key nor any `user:password@` or
/// query string of the base URL.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The API's base URL. Default: [`OPENAI_BASE_URL`].
    pub base_url: String,
    /// The key: OpenAI's API needs one; other servers may not.
    pub api_key: Option<ApiKey>,
    /// Send the key over plain `http://` to a host other than this machine's loopback
    /// address, where anyone on the way can read it. Default: `false` (the key is withheld).
    pub allow_insecure_key: bool,
    /// The `OpenAI-Organization` header, if any (none is sent otherwise, whatever the
    /// environment holds).
    pub organization: Option<String>,
    /// The `OpenAI-Project` header, if any.
    pub project: Option<String>,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
    /// Time between two looks at a running job. Default: 10 s.
    pub poll_interval: Duration,
    /// How long a job may stay paused, or in a status this crate does not know, before
    /// waiting for it gives up. Default: 15 min.
    pub status_patience: Duration,
    /// Which endpoint completes. Default: [`Endpoint::Auto`].
    pub endpoint: Endpoint,
    /// How chat requests are written. Default: the default template's.
    pub chat: ChatTemplate,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &redact(&self.base_url))
            .field("api_key", &self.api_key)
            .field("allow_insecure_key", &self.allow_insecure_key)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("retry", &self.retry)
            .field("poll_interval", &self.poll_interval)
            .field("status_patience", &self.status_patience)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A URL as errors and logs show it: no `user:password@`, no query string.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let had_user = !u.username().is_empty() || u.password().is_some();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            let text = u.to_string();
            if had_user { text.replacen("://", "://[redacted]@", 1) } else { text }
        }
        Err(_) => "[a URL that does not parse]".into(),
    }
}

/// Whether a key may go to `url`: over https, or plain http to this machine's loopback
/// address (`localhost`, 127.0.0.0/8, ::1).
pub fn key_safe_for(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else { return false };
    let host = u.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    match u.scheme() {
        "https" => true,
        "http" => {
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// Whether `url` is OpenAI's own API.
pub fn is_openai(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.host_str() == Some("api.openai.com"))
}

impl Config {
    /// A configuration for OpenAI's API with `api_key`.
    pub fn new(api_key: ApiKey) -> Config {
        Config {
            base_url: OPENAI_BASE_URL.to_string(),
            api_key: Some(api_key),
            allow_insecure_key: false,
            organization: None,
            project: None,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(10),
            status_patience: Duration::from_secs(15 * 60),
            endpoint: Endpoint::Auto,
            chat: ChatTemplate::of(&fine_drums_dataset::Template::default()),
        }
    }

    /// A configuration with the base URL from `OPENAI_BASE_URL` (else OpenAI's), the key
    /// from `OPENAI_API_KEY` (which only OpenAI's API requires), and, for OpenAI's API only,
    /// the organisation and project from `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`.
    pub fn from_env() -> Result<Config> {
        Config::from_env_for(None)
    }

    /// [`from_env`](Config::from_env) with `base_url`, when given, in place of
    /// `OPENAI_BASE_URL`.
    pub fn from_env_for(base_url: Option<&str>) -> Result<Config> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let mut c = Config::new(ApiKey::new(String::new()));
        c.api_key = ApiKey::from_env();
        let url = base_url.map(String::from).or_else(|| var("OPENAI_BASE_URL"));
        c.set_base_url(&url.unwrap_or_else(|| OPENAI_BASE_URL.into()));
        if c.api_key.is_none() && is_openai(&c.base_url) {
            return Err(Error::MissingKey);
        }
        Ok(c)
    }

    /// Points the configuration at `url`: the organisation and project of the environment
    /// go with OpenAI's API only.
    pub fn set_base_url(&mut self, url: &str) {
        self.base_url = url.to_string();
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        if is_openai(url) {
            self.organization = self.organization.take().or_else(|| var("OPENAI_ORG_ID"));
            self.project = self.project.take().or_else(|| var("OPENAI_PROJECT_ID"));
        } else {
            (self.organization, self.project) = (None, None);
        }
    }
}

/// The OpenAI backend: implements [`Complete`] and [`FineTune`].
#[derive(Clone)]
pub struct OpenAi {
    client: Client<OpenAIConfig>,
    /// The same client without retries, for requests this backend retries itself (job
    /// creation, which must not create two jobs).
    once: Client<OpenAIConfig>,
    config: Config,
    seed: Arc<AtomicU64>,
    /// Set once the server has refused `n > 1`: samples are asked one at a time.
    single: Arc<AtomicBool>,
    /// Whether the key was kept back (plain http to a host off loopback).
    withheld: bool,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi").field("config", &self.config).finish_non_exhaustive()
    }
}

const HINT: &str = "babbage-002 and davinci-002 shut down on 2026-09-28, and the models \
     fine-tuned from them on 2026-10-23. OpenAI fine-tunes only chat models \
     (gpt-4o-mini-2024-07-18, gpt-4o-2024-08-06, gpt-4.1-2025-04-14, gpt-4.1-mini-2025-04-14, \
     on chat files) for organisations still eligible, until 2027-01-06. Or run the project's \
     own OpenAI-compatible server (cargo run --release --example serve), which fine-tunes \
     babbage-002 and davinci-002 offline, and point --base-url at it; or use the offline \
     backends (--backend gpt or local), which need no key";

const CHAT_HINT: &str = "this is a chat model: it is completed through /v1/chat/completions \
     (--endpoint chat, or auto, the default, for gpt-* names)";

/// The models OpenAI fine-tunes today (chat format, `method: supervised`), until self-serve
/// fine-tuning closes on 2027-01-06.
pub const CHAT_FINE_TUNABLE: [&str; 4] = [
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
];

/// Whether `model` is a chat model: OpenAI's `gpt-*`, `o1`/`o3`/`o4` families and
/// `chatgpt-*`, and models fine-tuned from them (`ft:gpt-4o-mini-2024-07-18:…`). Other names
/// (the legacy models, a server's own) are taken for completion models.
pub fn is_chat_model(model: &str) -> bool {
    let base = model.strip_prefix("ft:").unwrap_or(model);
    base.starts_with("gpt-")
        || base.starts_with("chatgpt-")
        || ["o1", "o3", "o4"].iter().any(|p| base == *p || base.starts_with(&format!("{p}-")))
}

/// How a chat model's messages are written: the system message of the chat fine-tuning
/// files, and the separator that ends a legacy prompt (left out of the user's message).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatTemplate {
    /// The system message.
    pub system: String,
    /// The separator a prompt ends with.
    pub separator: String,
}

impl ChatTemplate {
    /// The chat form of `template`, as `prepare` writes its chat files.
    pub fn of(template: &fine_drums_dataset::Template) -> ChatTemplate {
        ChatTemplate {
            system: fine_drums_dataset::export::system_message(template),
            separator: template.separator.clone(),
        }
    }
}

impl OpenAi {
    /// A backend for `config`.
    pub fn new(config: Config) -> Result<OpenAi> {
        let url = config.base_url.trim_end_matches('/').to_string();
        if reqwest::Url::parse(&url).is_err() {
            return Err(Error::invalid("base URL", format!("{:?} is not a URL", redact(&url))));
        }
        // reqwest is built without a default TLS crypto provider; ring is ours. Installing
        // fails harmlessly when the process already has one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.retry.timeout)
            .build()
            .map_err(|e| Error::invalid("HTTP client", e.to_string()))?;
        if config.api_key.is_none() && is_openai(&url) {
            return Err(Error::MissingKey);
        }
        // async-openai fills the key, organisation and project from the environment by
        // itself: each is set here, empty (not sent) unless configured.
        let withheld =
            config.api_key.is_some() && !config.allow_insecure_key && !key_safe_for(&url);
        let key = match &config.api_key {
            Some(k) if !withheld => k.0.clone(),
            _ => String::new(),
        };
        let openai = OpenAIConfig::new()
            .with_api_base(&url)
            .with_api_key(key)
            .with_org_id(config.organization.clone().unwrap_or_default())
            .with_project_id(config.project.clone().unwrap_or_default());
        let seed = Arc::new(AtomicU64::new(seed_from_clock()));
        let service =
            retry::RetryService { client: http.clone(), policy: config.retry, seed: seed.clone() };
        let mut no_retries = service.clone();
        no_retries.policy.max_retries = 0;
        let once = Client::build(http.clone(), openai.clone()).with_http_service(no_retries);
        let client = Client::build(http, openai).with_http_service(service);
        Ok(OpenAi {
            client,
            once,
            config: Config { base_url: url, ..config },
            seed,
            single: Arc::default(),
            withheld,
        })
    }

    /// A backend configured from the environment (see [`Config::from_env`]).
    pub fn from_env() -> Result<OpenAi> {
        OpenAi::new(Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the configured key is kept back: the base URL is plain `http://` to a host
    /// off this machine's loopback address, and [`Config::allow_insecure_key`] is not set.
    pub fn key_withheld(&self) -> bool {
        self.withheld
    }
}

/// The `metadata` key of the client id that makes job creation idempotent.
pub const CLIENT_ID: &str = "fine_drums_client_id";

#[derive(Deserialize)]
struct JobsBody {
    data: Vec<JobBody>,
}

impl OpenAi {
    /// The job created with client id `client_id`, if the service has one.
    async fn job_by_client_id(&self, client_id: &str) -> Result<Option<Job>> {
        let query = [(format!("metadata[{CLIENT_ID}]"), client_id.to_string())];
        let page: JobsBody = self
            .client
            .fine_tuning()
            .query(&query)
            .map_err(|e| from_openai(e, "fine-tuning jobs"))?
            .list_paginated_byot()
            .await
            .map_err(|e| from_openai(e, "fine-tuning jobs"))?;
        // Only a job that carries the id: a server that ignores the filter lists others.
        let ours = |j: &JobBody| {
            j.metadata.as_ref().and_then(|m| m.get(CLIENT_ID)).and_then(Value::as_str)
                == Some(client_id)
        };
        Ok(page.data.into_iter().find(ours).map(Job::from))
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

/// Adds a hint to a refusal: a chat model sent to `/v1/completions`, a legacy model, a
/// model the server does not have.
fn with_hint(e: Error, model: &str, fine_tuning: bool) -> Error {
    match e {
        Error::Api { status, code, message, attempts, hint: None }
            if message.contains("chat model") && message.contains("completions") =>
        {
            Error::Api { status, code, message, attempts, hint: Some(CHAT_HINT.into()) }
        }
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
    #[serde(default)]
    metadata: Option<Value>,
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

#[derive(Deserialize)]
struct ChatBody {
    choices: Vec<ChatChoiceBody>,
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct ChatChoiceBody {
    #[serde(default)]
    index: u32,
    message: ChatMessageBody,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessageBody {
    content: Option<String>,
}

/// The JSON body of a chat completion request: the system message of the chat files, the
/// prompt's bars (without the separator) as the user's message. OpenAI's API takes the
/// limit as `max_completion_tokens`; other servers as `max_tokens`.
pub fn chat_body(request: &CompletionRequest, chat: &ChatTemplate, openai: bool) -> Value {
    let user = request.prompt.strip_suffix(chat.separator.as_str()).unwrap_or(&request.prompt);
    let mut body = json!({
        "model": request.model,
        "messages": [
            { "role": "system", "content": chat.system },
            { "role": "user", "content": user },
        ],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "n": request.n,
    });
    let limit = if openai { "max_completion_tokens" } else { "max_tokens" };
    body[limit] = json!(request.max_tokens);
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

impl OpenAi {
    /// Whether `model` is completed through `/v1/chat/completions`.
    fn chat(&self, model: &str) -> bool {
        match self.config.endpoint {
            Endpoint::Auto => is_chat_model(model),
            Endpoint::Completions => false,
            Endpoint::Chat => true,
        }
    }

    /// One completion request through `client`, at the endpoint the model takes. A chat
    /// reply comes back as a completion: a newline, then the assistant's bars.
    async fn completion(
        &self,
        client: &Client<OpenAIConfig>,
        request: &CompletionRequest,
    ) -> Result<CompletionBody> {
        if !self.chat(&request.model) {
            return client
                .completions()
                .create_byot(completion_body(request))
                .await
                .map_err(|e| with_hint(from_openai(e, "completion"), &request.model, false));
        }
        let body = chat_body(request, &self.config.chat, is_openai(&self.config.base_url));
        let reply: ChatBody = client
            .chat()
            .create_byot(body)
            .await
            .map_err(|e| with_hint(from_openai(e, "chat completion"), &request.model, false))?;
        Ok(CompletionBody {
            choices: reply
                .choices
                .into_iter()
                .map(|c| ChoiceBody {
                    text: format!("\n{}\n", c.message.content.unwrap_or_default().trim()),
                    index: c.index,
                    finish_reason: c.finish_reason,
                    logprobs: None,
                })
                .collect(),
            usage: reply.usage,
        })
    }

    /// `request` as `count` requests of one sample each (seeds `seed`, `seed + 1`, ...).
    async fn singly(&self, request: &CompletionRequest, count: u32) -> Result<Vec<CompletionBody>> {
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            let mut one = request.clone();
            one.n = 1;
            one.seed = request.seed.map(|s| s.wrapping_add(u64::from(i)));
            out.push(self.completion(&self.client, &one).await?);
        }
        Ok(out)
    }
}

/// A `/v1/completions` response body as this backend reads it (what the fuzz target
/// `openai_json` feeds with arbitrary bytes).
pub fn read_completion(body: &[u8]) -> Result<Completion> {
    let parsed: CompletionBody = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: "completion",
        message: e.to_string(),
        body: String::from_utf8_lossy(body).chars().take(200).collect(),
    })?;
    Ok(completion_of(vec![parsed]))
}

/// A fine-tuning job response body as this backend reads it.
pub fn read_job(body: &[u8]) -> Result<Job> {
    let parsed: JobBody = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: "fine-tuning job",
        message: e.to_string(),
        body: String::from_utf8_lossy(body).chars().take(200).collect(),
    })?;
    Ok(parsed.into())
}

/// An error response (status and body) as this backend reports it: the service's message
/// and code, or the start of whatever the body was.
pub fn read_error(status: u16, body: &[u8]) -> Error {
    retry::api_error(status, body, 1)
}

/// The choices (in index order) and usage of completion bodies.
fn completion_of(bodies: Vec<CompletionBody>) -> Completion {
    let mut usage = Usage::default();
    let mut choices = Vec::new();
    for body in bodies {
        let mut cs = body.choices;
        cs.sort_by_key(|c| c.index);
        choices.extend(cs.into_iter().map(|c| Choice {
            text: c.text,
            finish_reason: match c.finish_reason.as_deref() {
                Some("stop") | None => FinishReason::Stop,
                Some("length") => FinishReason::Length,
                Some(o) => FinishReason::Other(o.to_string()),
            },
        }));
        if let Some(u) = body.usage {
            usage += Usage::new(u.prompt_tokens, u.completion_tokens);
        }
    }
    Completion::new(choices, usage)
}

impl Complete for OpenAi {
    /// Asks for `n` samples in one request. A server that refuses `n > 1` (llama.cpp answers
    /// 500) is asked `n` times for one sample, at once and for the rest of this backend's life;
    /// one that returns fewer samples than asked (Ollama ignores `n`) is asked for the rest
    /// one at a time.
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(async move {
            if request.n <= 1 || self.single.load(Ordering::Relaxed) {
                let bodies = if request.n <= 1 {
                    vec![self.completion(&self.client, request).await?]
                } else {
                    self.singly(request, request.n).await?
                };
                return Ok(completion_of(bodies));
            }
            // Once without retries: a refusal of `n` must not be retried as a fault.
            let body = match self.completion(&self.once, request).await {
                Ok(body) => body,
                Err(Error::Api { status: 400 | 422 | 500 | 501, .. }) => {
                    self.single.store(true, Ordering::Relaxed);
                    return Ok(completion_of(self.singly(request, request.n).await?));
                }
                Err(Error::Api { status, .. }) if retry::is_retryable(status) => {
                    self.completion(&self.client, request).await?
                }
                Err(Error::Timeout { .. } | Error::Connection { .. }) => {
                    self.completion(&self.client, request).await?
                }
                Err(e) => return Err(e),
            };
            let got = body.choices.len() as u32;
            let mut bodies = vec![body];
            if got < request.n {
                let mut rest = request.clone();
                rest.seed = request.seed.map(|s| s.wrapping_add(u64::from(got)));
                bodies.extend(self.singly(&rest, request.n - got).await?);
            }
            Ok(completion_of(bodies))
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

    /// Creates the job once, whatever the network does: the request carries a client id in
    /// its `metadata` (`fine_drums_client_id`), and before any retry the jobs are looked up
    /// by it, so that a job the service created before a 5xx or a timeout is returned rather
    /// than created (and billed) again.
    fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let mut rng = crate::random::seeded(self.seed.fetch_add(1, Ordering::Relaxed));
            let client_id = format!("fd-{:016x}", rand_core::Rng::next_u64(&mut rng));
            let mut body = job_body(request);
            body["metadata"] = json!({ CLIENT_ID: client_id });
            let policy = self.config.retry;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let created = self.once.fine_tuning().create_byot::<_, JobBody>(body.clone()).await;
                let error = match created {
                    Ok(job) => return Ok(job.into()),
                    Err(e) => with_hint(from_openai(e, "fine-tuning job"), &request.model, true),
                };
                let retryable = match &error {
                    Error::Api { status, .. } => retry::is_retryable(*status),
                    Error::Timeout { .. } | Error::Connection { .. } => true,
                    _ => false,
                };
                if !retryable {
                    return Err(error);
                }
                if let Some(job) = self.job_by_client_id(&client_id).await? {
                    return Ok(job);
                }
                if attempt > policy.max_retries {
                    return Err(error);
                }
                tokio::time::sleep(policy.delay(attempt, None, &mut rng)).await;
            }
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

    fn status_patience(&self) -> Duration {
        self.config.status_patience
    }

    fn pause<'a>(&'a self, duration: Duration) -> BoxFuture<'a, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
