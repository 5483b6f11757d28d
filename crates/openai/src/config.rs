//! How to reach the service: the base URL, the key (which never leaks into logs), the retry
//! policy and the endpoint, and what this crate knows of OpenAI's models.

use std::time::Duration;

pub use fine_drums_llm::Endpoint;
use fine_drums_llm::{Error, Result};

pub use crate::retry::RetryPolicy;

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

    /// The key itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
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
