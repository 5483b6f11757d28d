//! One place that builds a backend by name from settings, as a command line gives them: the
//! offline local backend (a trained model file, or the prompt's own statistics) or the
//! OpenAI backend (OpenAI or any compatible server, feature `openai`). The examples and
//! `serve` share it instead of each building its own.
//!
//! ```
//! use fine_drums_dataset::Template;
//! use fine_drums_backends::{Kind, Settings};
//!
//! let settings = Settings::default(); // the local backend, model `local`
//! assert_eq!(settings.kind, Kind::Markov);
//! assert_eq!(settings.model_name()?, "local");
//! let backend = settings.complete(&Template::default(), settings.local_model()?)?;
//! # let _ = backend;
//! # Ok::<(), fine_drums_llm::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use fine_drums_dataset::Template;
use fine_drums_dataset::fs::{MAX_MODEL_FILE, read_model_file};

use fine_drums_llm::{Complete, Endpoint, Error, FineTune, Result};
use fine_drums_markov::{Markov, Model, PROMPT_MODEL};

/// Which backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The Markov model (`fine-drums-markov`), offline: no key, no network.
    #[default]
    Markov,
    /// OpenAI, or any OpenAI-compatible server by base URL (feature `openai`).
    OpenAi,
}

impl Kind {
    /// `markov` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Markov => "markov",
            Kind::OpenAi => "openai",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Kind> {
        match s {
            // `local`, its name before it had a crate of its own, still works.
            "markov" | "local" => Ok(Kind::Markov),
            "openai" => Ok(Kind::OpenAi),
            _ => Err(Error::invalid("backend", format!("{s:?} (expected markov or openai)"))),
        }
    }
}

/// What a backend is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Which backend. Default: local.
    pub kind: Kind,
    /// The model: for the local backend, `local` (the prompt's own statistics) or the path
    /// of a trained `.fdlm` file; for OpenAI, the model's name, which it needs. Default:
    /// none (`local` for the local backend).
    pub model: Option<String>,
    /// The base URL of an OpenAI-compatible API. Default: `OPENAI_BASE_URL`, else OpenAI's.
    pub base_url: Option<String>,
    /// HTTP retries per request (OpenAI). Default: the backend's (4).
    pub max_retries: Option<u32>,
    /// How long one HTTP request may take (OpenAI). Default: the backend's (120 s).
    pub timeout: Option<Duration>,
    /// How long to wait between two looks at a running job (OpenAI). Default: 10 s.
    pub poll_interval: Option<Duration>,
    /// Sample among the k likeliest steps only (local; 0 = all). Default: 0.
    pub top_k: usize,
    /// Where the local backend saves the models it trains. Default: kept in memory.
    pub models_dir: Option<PathBuf>,
    /// Send the key over plain http to a host off loopback (OpenAI). Default: `false`.
    pub allow_insecure_key: bool,
    /// Which endpoint completes (OpenAI). Default: chat for chat models, else completions.
    pub endpoint: Endpoint,
}

impl Settings {
    /// The model to ask for: the one named, or `local` for the local backend. OpenAI has no
    /// default model.
    pub fn model_name(&self) -> Result<String> {
        match (&self.model, self.kind) {
            (Some(m), _) => Ok(m.clone()),
            (None, Kind::Markov) => Ok(PROMPT_MODEL.to_string()),
            (None, _) => Err(Error::invalid(
                "model",
                "the openai backend needs a model (e.g. ft:babbage-002:org:drums:id, or one your server serves)",
            )),
        }
    }

    /// The trained local model the settings name, read from its file: `None` for the
    /// model `local` and for other backends.
    pub fn local_model(&self) -> Result<Option<Model>> {
        match (&self.model, self.kind) {
            (Some(path), Kind::Markov) if path != PROMPT_MODEL => {
                let bytes = read_model_file(Path::new(path), MAX_MODEL_FILE)
                    .map_err(|e| Error::model_from(path, e.to_string(), e))?;
                Model::from_bytes(path, &bytes).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A backend that completes prompts built with `template`; `trained` is the model
    /// [`local_model`](Settings::local_model) read, registered under its path.
    pub fn complete(
        &self,
        template: &Template,
        trained: Option<Model>,
    ) -> Result<Box<dyn Complete>> {
        match self.kind {
            Kind::Markov => {
                let local = Markov::new(template.clone()).with_top_k(self.top_k);
                if let Some(m) = trained {
                    local.insert_model(self.model_name()?, m);
                }
                Ok(Box::new(local))
            }
            Kind::OpenAi => Ok(self.openai(template)?),
        }
    }

    /// A backend that fine-tunes on files prepared with `template`.
    pub fn fine_tune(&self, template: &Template) -> Result<Box<dyn FineTune>> {
        match self.kind {
            Kind::Markov => {
                let local = Markov::new(template.clone());
                Ok(Box::new(match &self.models_dir {
                    Some(dir) => local.with_models_dir(dir),
                    None => local,
                }))
            }
            Kind::OpenAi => Ok(self.openai(template)?),
        }
    }

    #[cfg(feature = "openai")]
    fn openai(&self, template: &Template) -> Result<Box<fine_drums_openai::OpenAi>> {
        let mut config = fine_drums_openai::Config::from_env_for(self.base_url.as_deref())?;
        config.allow_insecure_key = self.allow_insecure_key;
        config.endpoint = self.endpoint;
        config.chat = fine_drums_openai::ChatTemplate::of(template);
        if let Some(n) = self.max_retries {
            config.retry.max_retries = n;
        }
        if let Some(t) = self.timeout {
            config.retry.timeout = t;
        }
        if let Some(p) = self.poll_interval {
            config.poll_interval = p;
        }
        Ok(Box::new(fine_drums_openai::OpenAi::new(config)?))
    }

    #[cfg(not(feature = "openai"))]
    fn openai(&self, _: &Template) -> Result<Box<Markov>> {
        Err(Error::invalid(
            "backend",
            "this build has no OpenAI backend: enable the `openai` feature of fine-drums-backends",
        ))
    }
}
