//! The client: one async-openai client with this crate's retry policy as its HTTP
//! service, how its errors become the contract's, and the readers of response bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use fine_drums_llm::{Choice, Completion, Error, FinishReason, Job, Result, Usage};
use serde_json::Value;

use crate::config::{BaseModel, Config, is_openai, key_safe_for, redact};
use crate::retry;
use crate::wire::{CompletionsResponse, JobObject};

/// The OpenAI backend: implements [`Complete`](fine_drums_llm::Complete) and
/// [`FineTune`](fine_drums_llm::FineTune).
#[derive(Clone)]
pub struct OpenAi {
    pub(crate) client: Client<OpenAIConfig>,
    /// The same client without retries, for requests this backend retries itself (job
    /// creation, which must not create two jobs).
    pub(crate) once: Client<OpenAIConfig>,
    pub(crate) config: Config,
    pub(crate) seed: Arc<AtomicU64>,
    /// Set once the server has refused `n > 1`: samples are asked one at a time.
    pub(crate) single: Arc<AtomicBool>,
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
     own OpenAI-compatible server (cargo run --release --features serve --example serve), which fine-tunes \
     babbage-002 and davinci-002 offline, and point --base-url at it; or use the offline \
     backends (--backend gpt or local), which need no key";

const CHAT_HINT: &str = "this is a chat model: it is completed through /v1/chat/completions \
     (--endpoint chat, or auto, the default, for gpt-* names)";

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
            Some(k) if !withheld => k.expose().to_string(),
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

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// async-openai's error as this crate's.
pub(crate) fn from_openai(e: OpenAIError, what: &'static str) -> Error {
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
pub(crate) fn with_hint(e: Error, model: &str, fine_tuning: bool) -> Error {
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

impl From<JobObject> for Job {
    fn from(b: JobObject) -> Job {
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
        let mut job = Job::new(b.id, b.model, b.status);
        job.fine_tuned_model = b.fine_tuned_model;
        job.error = error;
        job.trained_tokens = b.trained_tokens;
        job
    }
}

/// A `/v1/completions` response body as this backend reads it (what the fuzz target
/// `openai_json` feeds with arbitrary bytes).
pub fn read_completion(body: &[u8]) -> Result<Completion> {
    let parsed: CompletionsResponse = serde_json::from_slice(body).map_err(|e| Error::Decode {
        what: "completion",
        message: e.to_string(),
        body: String::from_utf8_lossy(body).chars().take(200).collect(),
    })?;
    Ok(completion_of(vec![parsed]))
}

/// A fine-tuning job response body as this backend reads it.
pub fn read_job(body: &[u8]) -> Result<Job> {
    let parsed: JobObject = serde_json::from_slice(body).map_err(|e| Error::Decode {
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
pub(crate) fn completion_of(bodies: Vec<CompletionsResponse>) -> Completion {
    let mut usage = Usage::default();
    let mut choices = Vec::new();
    for body in bodies {
        let mut cs = body.choices;
        cs.sort_by_key(|c| c.index);
        choices.extend(cs.into_iter().map(|c| {
            let reason = match c.finish_reason.as_deref() {
                Some("stop") | None => FinishReason::Stop,
                Some("length") => FinishReason::Length,
                Some(o) => FinishReason::Other(o.to_string()),
            };
            Choice::new(c.text, reason)
        }));
        if let Some(u) = body.usage {
            usage += Usage::new(u.prompt_tokens, u.completion_tokens);
        }
    }
    Completion::new(choices, usage)
}
