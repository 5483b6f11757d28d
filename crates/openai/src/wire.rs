//! The JSON of OpenAI's API, as typed structs that serialize and deserialize both: the
//! client writes requests and reads responses with them, and the project's `serve` reads
//! the same requests with them.
//!
//! Every field a request may leave out is an `Option`, skipped when it is `None`, so a body
//! says only what it means to. Fields a struct does not name are ignored when it is read, as
//! OpenAI's clients send many this project has no use for (`user`, `logit_bias`, …).
//! Responses are read leniently: a field a server leaves out takes its default.
//!
//! ```
//! use fine_drums_openai::wire::{CompletionsRequest, Prompt};
//!
//! let body = r#"{"model": "babbage-002", "prompt": "Kh.. >>>", "max_tokens": 400, "user": "x"}"#;
//! let request: CompletionsRequest = serde_json::from_str(body)?;
//! assert_eq!(request.prompt, Some(Prompt::One("Kh.. >>>".into())));
//! assert_eq!(request.max_tokens, Some(400));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use fine_drums_llm::JobStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A prompt: one text, or several (each completed on its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
}

/// `stop`: one sequence, or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several sequences (OpenAI takes at most 4).
    Many(Vec<String>),
}

impl Stop {
    /// The sequences as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }

    /// `Some` list of `stop`, `None` when it is empty (and then left out of a body).
    pub fn of(stop: &[String]) -> Option<Stop> {
        (!stop.is_empty()).then(|| Stop::Many(stop.to_vec()))
    }
}

/// `POST /v1/completions`: the legacy completion request (and, with `echo` and no new
/// tokens, the scoring request).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionsRequest {
    /// The model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt or prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    /// The most tokens to generate per sample (OpenAI's default: 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling: the share of probability kept, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Samples per prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Where a sample stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// The sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Whether the reply starts with the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// How many likeliest tokens to list with each token's log-probability (0: only its
    /// own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// Server-sent events instead of one reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// The text after the completion: an infill writes the bars between the prompt and it
    /// (OpenAI's legacy field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// An extension of fine_drums' server: what the drum GPT is steered by (style, tempo,
    /// and per new bar its intensity and whether it is a fill) and how many bars it writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drums: Option<fine_drums_llm::Steer>,
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text, or its parts.
    #[serde(default)]
    pub content: Option<Content>,
}

impl ChatMessage {
    /// A message of text.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: Some(Content::Text(text.into())) }
    }

    /// The message's text: its text, or its text parts joined; `None` when it has none.
    pub fn text(&self) -> Option<String> {
        match self.content.as_ref()? {
            Content::Text(t) => Some(t.clone()),
            Content::Parts(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter(|p| p.kind == "text")
                    .filter_map(|p| p.text.as_deref())
                    .collect();
                (!texts.is_empty()).then(|| texts.concat())
            }
        }
    }
}

/// A message's content: text, or a list of parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Text.
    Text(String),
    /// Parts, of which this project reads the `text` ones.
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContentPart {
    /// `text`, `image_url`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// A text part's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The chat so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// The most tokens to generate per sample, as OpenAI's API takes it today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// The same limit, as other servers take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Where a sample stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// The sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Server-sent events instead of one reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// A hyperparameter: a number, or `"auto"` for the trainer's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `"auto"`.
    Auto,
    /// A number, whole or not, as it was written.
    Number(serde_json::Number),
}

impl Setting {
    /// The number, `None` for `"auto"`.
    pub fn number(&self) -> Option<f64> {
        match self {
            Setting::Auto => None,
            Setting::Number(n) => n.as_f64(),
        }
    }
}

impl From<u32> for Setting {
    fn from(n: u32) -> Setting {
        Setting::Number(n.into())
    }
}

impl From<f64> for Setting {
    /// A number; `"auto"` for one JSON cannot hold (NaN, infinite).
    fn from(x: f64) -> Setting {
        serde_json::Number::from_f64(x).map_or(Setting::Auto, Setting::Number)
    }
}

impl Serialize for Setting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Setting::Auto => s.serialize_str("auto"),
            Setting::Number(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Setting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Setting, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Setting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or \"auto\"")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Setting, E> {
                Ok(Setting::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Setting, E> {
                Ok(Setting::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Setting, E> {
                serde_json::Number::from_f64(x)
                    .map(Setting::Number)
                    .ok_or_else(|| E::custom("a number JSON can hold"))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Setting, E> {
                match s {
                    "auto" => Ok(Setting::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A fine-tuning job's hyperparameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hyperparameters {
    /// Passes over the training file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_epochs: Option<Setting>,
    /// Examples per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Setting>,
    /// A multiple of the trainer's learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate_multiplier: Option<Setting>,
}

impl Hyperparameters {
    /// Whether no hyperparameter is set.
    pub fn is_empty(&self) -> bool {
        self.n_epochs.is_none()
            && self.batch_size.is_none()
            && self.learning_rate_multiplier.is_none()
    }
}

/// A job's `method`: how chat models are fine-tuned (`{"type": "supervised", "supervised":
/// {"hyperparameters": …}}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Method {
    /// `supervised` (or `dpo`, `reinforcement`, which this project does not train).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The supervised method's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<Supervised>,
}

/// The settings of supervised fine-tuning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Supervised {
    /// Its hyperparameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<Hyperparameters>,
}

/// `POST /v1/fine_tuning/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobCreateRequest {
    /// The model to fine-tune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The uploaded training file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_file: Option<String>,
    /// The uploaded validation file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_file: Option<String>,
    /// Up to 64 characters that go into the fine-tuned model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// The training seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The legacy models' hyperparameters (top level, as `babbage-002` and `davinci-002`
    /// take them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hyperparameters: Option<Hyperparameters>,
    /// How chat models are fine-tuned, their hyperparameters included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Up to 16 pairs of text, kept with the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl JobCreateRequest {
    /// The hyperparameters, wherever the request put them: at the top level, else in
    /// `method.supervised`.
    pub fn hyperparameters(&self) -> Option<&Hyperparameters> {
        self.hyperparameters
            .as_ref()
            .or_else(|| self.method.as_ref()?.supervised.as_ref()?.hyperparameters.as_ref())
    }
}

/// A completion response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionsResponse {
    /// The samples.
    pub choices: Vec<CompletionChoice>,
    /// Tokens read and written.
    #[serde(default)]
    pub usage: Option<UsageBody>,
}

/// One sample of a completion response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompletionChoice {
    /// Its text.
    pub text: String,
    /// Which sample it is.
    #[serde(default)]
    pub index: u32,
    /// `stop`, `length`, …
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Its tokens' log-probabilities, when asked for.
    #[serde(default)]
    pub logprobs: Option<Logprobs>,
}

/// The log-probabilities of a legacy completion: each token's, and where it starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Logprobs {
    /// Each token's log-probability (`null` for the first).
    #[serde(default)]
    pub token_logprobs: Vec<Option<f64>>,
    /// Where each token starts in the text, in bytes.
    #[serde(default)]
    pub text_offset: Vec<usize>,
}

/// Tokens read and written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageBody {
    /// Tokens of the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// A chat completion response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The samples.
    pub choices: Vec<ChatChoice>,
    /// Tokens read and written.
    #[serde(default)]
    pub usage: Option<UsageBody>,
}

/// One sample of a chat completion response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChoice {
    /// Which sample it is.
    #[serde(default)]
    pub index: u32,
    /// The assistant's message.
    pub message: ChatMessage,
    /// `stop`, `length`, …
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// An uploaded file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileObject {
    /// Its id.
    pub id: String,
}

/// A fine-tuning job, as the service describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobObject {
    /// Its id.
    pub id: String,
    /// The model it fine-tunes.
    #[serde(default)]
    pub model: String,
    /// Where it stands.
    pub status: JobStatus,
    /// The model it made, once it has.
    #[serde(default)]
    pub fine_tuned_model: Option<String>,
    /// Why it failed: an object with `message` and `code` (or, from some servers, text).
    #[serde(default)]
    pub error: Option<Value>,
    /// Tokens trained on.
    #[serde(default)]
    pub trained_tokens: Option<u64>,
    /// The pairs the request kept with it.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A page of fine-tuning jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobList {
    /// The jobs.
    pub data: Vec<JobObject>,
}

/// A page of a job's events, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventList {
    /// The events.
    pub data: Vec<EventObject>,
    /// Whether older events follow this page.
    #[serde(default)]
    pub has_more: bool,
}

/// One event of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventObject {
    /// Its id.
    pub id: String,
    /// When, in seconds since 1970.
    #[serde(default)]
    pub created_at: u64,
    /// `info`, `warn` or `error`.
    #[serde(default)]
    pub level: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
    /// `metrics` for a training step's figures, else `message`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Kept as JSON: a `data` object this crate does not expect is no reason to lose the
    /// page.
    #[serde(default)]
    pub data: Option<Value>,
}
