//! Request bodies, read into the OpenAI client's own wire types (`fine_drums_openai::wire`)
//! and checked: what a handler gets is a request the models can run, or an error in OpenAI's
//! shape that names the field at fault.

use std::collections::BTreeMap;

use fine_drums_llm::CompletionRequest;
use fine_drums_openai::wire::{
    ChatRequest, CompletionsRequest, JobCreateRequest, Prompt, Setting, Stop,
};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::store::Hyper;

/// A field's error: `message`, about `param`.
fn bad(param: &str, message: impl Into<String>) -> Error {
    Error::invalid(Some(param), message)
}

/// `body` as a `T`: not JSON, not an object, or a field of the wrong type is an error that
/// says so, naming the field by its path (`temperature`, `messages[0].content`).
pub(crate) fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    // A struct also reads from a list (its fields in order): only an object is a request.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Error::invalid(None, "the body must be a JSON object"),
            Err(e) => Error::invalid(None, format!("the body is not valid JSON: {e}")),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                Error::invalid(Some(&path), format!("{path}: {inner}"))
            }
            serde_json::error::Category::Data => Error::invalid(None, inner.to_string()),
            _ => Error::invalid(None, format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| Error::invalid(None, format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The sampling fields that completions and chat completions share.
struct Sampling<'a> {
    model: Option<&'a str>,
    stream: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    n: Option<u32>,
    seed: Option<u64>,
    stop: Option<&'a Stop>,
}

impl Sampling<'_> {
    /// The request for `prompt`, with `max_tokens` new tokens at most.
    fn request(&self, prompt: String, max_tokens: u32) -> Result<CompletionRequest> {
        let model = self.model.ok_or_else(|| bad("model", "`model` is required"))?;
        if self.stream == Some(true) {
            return Err(bad("stream", "streaming is not supported by this server"));
        }
        let within = |name: &str, x: Option<f64>, default: f64, lo: f64, hi: f64| {
            let x = x.unwrap_or(default);
            if (lo..=hi).contains(&x) {
                Ok(x)
            } else {
                Err(bad(name, format!("{name} must be a number from {lo} to {hi}")))
            }
        };
        let mut r = CompletionRequest::new(model, prompt, max_tokens);
        r.temperature = within("temperature", self.temperature, 1.0, 0.0, 2.0)? as f32;
        r.top_p = within("top_p", self.top_p, 1.0, 0.0, 1.0)? as f32;
        r.n = self.n.unwrap_or(1);
        if !(1..=128).contains(&r.n) {
            return Err(bad("n", "n must be a number from 1 to 128"));
        }
        r.seed = self.seed;
        r.stop = self.stop.cloned().map(Stop::into_vec).unwrap_or_default();
        if r.stop.len() > 4 {
            return Err(bad("stop", "stop must be a string or up to 4 strings"));
        }
        Ok(r)
    }
}

/// A legacy completion request: one request per prompt, and how to answer.
#[derive(Debug)]
pub(crate) struct Completions {
    /// The model, as asked for.
    pub model: String,
    /// One request per prompt, in order.
    pub requests: Vec<CompletionRequest>,
    /// Whether each text starts with its prompt.
    pub echo: bool,
    /// Whether log-probabilities were asked for.
    pub logprobs: bool,
}

/// `POST /v1/completions`.
pub(crate) fn completions(body: &[u8]) -> Result<Completions> {
    let c: CompletionsRequest = read(body)?;
    let prompts = match c.prompt.clone() {
        Some(Prompt::One(p)) => vec![p],
        Some(Prompt::Many(ps)) if !ps.is_empty() => ps,
        _ => return Err(bad("prompt", "prompt must be a string or a list of strings")),
    };
    let sampling = Sampling {
        model: c.model.as_deref(),
        stream: c.stream,
        temperature: c.temperature,
        top_p: c.top_p,
        n: c.n,
        seed: c.seed,
        stop: c.stop.as_ref(),
    };
    // OpenAI's default for legacy completions: 16 tokens.
    let max = c.max_tokens.unwrap_or(16);
    let mut requests =
        prompts.into_iter().map(|p| sampling.request(p, max)).collect::<Result<Vec<_>>>()?;
    for r in &mut requests {
        r.suffix.clone_from(&c.suffix);
        r.steer = c.drums.clone().unwrap_or_default();
    }
    Ok(Completions {
        model: c.model.unwrap_or_default(),
        requests,
        echo: c.echo.unwrap_or(false),
        logprobs: c.logprobs.is_some(),
    })
}

/// `POST /v1/chat/completions`: the last user message is the prompt, ended by `separator`.
pub(crate) fn chat(body: &[u8], separator: &str) -> Result<CompletionRequest> {
    let c: ChatRequest = read(body)?;
    let messages = c.messages.as_ref().ok_or_else(|| bad("messages", "`messages` is required"))?;
    let user = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.text())
        .ok_or_else(|| bad("messages", "no user message with text content"))?;
    let mut prompt = user.trim_end().to_string();
    if !prompt.ends_with(separator) {
        prompt.push_str(separator);
    }
    let sampling = Sampling {
        model: c.model.as_deref(),
        stream: c.stream,
        temperature: c.temperature,
        top_p: c.top_p,
        n: c.n,
        seed: c.seed,
        stop: c.stop.as_ref(),
    };
    // Chat completions have no default limit but the model's context.
    sampling.request(prompt, c.max_completion_tokens.or(c.max_tokens).unwrap_or(16_384))
}

/// A fine-tuning job as asked for, checked.
#[derive(Debug)]
pub(crate) struct NewJob {
    /// The base model.
    pub model: String,
    /// The training file's id.
    pub training_file: String,
    /// The validation file's id.
    pub validation_file: Option<String>,
    /// Epochs, batch size and learning-rate multiplier (`None`: the trainer's).
    pub hyperparameters: Hyper,
    /// What goes into the model's name.
    pub suffix: Option<String>,
    /// The pairs kept with the job.
    pub metadata: Option<BTreeMap<String, String>>,
    /// The training seed, if given.
    pub seed: Option<u64>,
}

/// `POST /v1/fine_tuning/jobs`.
pub(crate) fn job(body: &[u8]) -> Result<NewJob> {
    let j: JobCreateRequest = read(body)?;
    let model = j.model.clone().ok_or_else(|| bad("model", "`model` is required"))?;
    let training_file = j
        .training_file
        .clone()
        .ok_or_else(|| bad("training_file", "`training_file` is required"))?;
    let hyperparameters = hyper(j.hyperparameters())?;
    // It goes into the model's name: letters, digits, `-` and `_` only (no `:`, which
    // separates the name's parts, no `/`, `.`, spaces or control characters).
    let name_safe =
        |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if j.suffix.as_ref().is_some_and(|s| s.is_empty() || s.chars().count() > 64 || !name_safe(s)) {
        return Err(bad(
            "suffix",
            "suffix must be 1 to 64 characters, each a letter, a digit, '-' or '_'",
        ));
    }
    // As OpenAI documents it: at most 16 pairs, keys of at most 64 characters, values of at
    // most 512.
    if let Some(m) = &j.metadata {
        if m.len() > 16 {
            return Err(bad("metadata", "metadata holds at most 16 pairs"));
        }
        if m.iter().any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 512) {
            return Err(bad(
                "metadata",
                "metadata keys must be at most 64 characters and values at most 512",
            ));
        }
    }
    Ok(NewJob {
        model,
        training_file,
        validation_file: j.validation_file,
        hyperparameters,
        suffix: j.suffix,
        metadata: j.metadata,
        seed: j.seed,
    })
}

/// `n_epochs` and the others: a number, or `"auto"` for the trainer's default.
fn hyper(h: Option<&fine_drums_openai::wire::Hyperparameters>) -> Result<Hyper> {
    let mut out = Hyper::default();
    let Some(h) = h else { return Ok(out) };
    let whole = |name: &str, s: &Option<Setting>| -> Result<Option<u32>> {
        match s.as_ref().and_then(Setting::number) {
            None => Ok(None),
            Some(x) if x >= 1.0 && x.fract() == 0.0 && x <= 1000.0 => Ok(Some(x as u32)),
            Some(x) => {
                Err(bad(name, format!("{name} must be a whole number from 1 to 1000, not {x}")))
            }
        }
    };
    out.n_epochs = whole("n_epochs", &h.n_epochs)?;
    out.batch_size = whole("batch_size", &h.batch_size)?;
    out.learning_rate_multiplier = h.learning_rate_multiplier.as_ref().and_then(Setting::number);
    if out.learning_rate_multiplier.is_some_and(|x| !(x > 0.0 && x <= 100.0)) {
        return Err(bad(
            "learning_rate_multiplier",
            "learning_rate_multiplier must be above 0 and at most 100",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(e: &Error) -> Option<&str> {
        match e {
            Error::Invalid { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn a_completion_request_becomes_one_request_per_prompt() {
        let body = br#"{"model": "babbage-002", "prompt": ["a>>>", "b>>>"], "max_tokens": 40,
            "temperature": 0.5, "n": 2, "seed": 7, "stop": "<<<", "echo": false, "user": "x"}"#;
        let c = completions(body).expect("a valid request");
        assert_eq!(c.model, "babbage-002");
        assert_eq!(c.requests.len(), 2);
        let r = &c.requests[1];
        assert_eq!((r.prompt.as_str(), r.max_tokens, r.n, r.seed), ("b>>>", 40, 2, Some(7)));
        assert_eq!((r.temperature, r.top_p), (0.5, 1.0));
        assert_eq!(r.stop, ["<<<"]);
        assert!(!c.echo && !c.logprobs);
        let scoring = completions(
            br#"{"model": "m", "prompt": "x", "echo": true, "logprobs": 0, "max_tokens": 0}"#,
        )
        .expect("a scoring request");
        assert!(scoring.echo && scoring.logprobs);
        assert_eq!(scoring.requests[0].max_tokens, 0);
        let default = completions(br#"{"model": "m", "prompt": "x"}"#).expect("defaults");
        assert_eq!(default.requests[0].max_tokens, 16, "OpenAI's default");
    }

    #[test]
    fn suffix_and_drums_steer_every_prompt() {
        let body = br#"{"model": "davinci-002", "prompt": ["a>>>", "b>>>"], "suffix": "Kh..\n",
            "drums": {"style": "funk", "intensity": [2, null], "fills": [false, true], "bars": 2,
            "prompt_start": 6}}"#;
        let c = completions(body).expect("a request");
        for r in &c.requests {
            assert_eq!(r.suffix.as_deref(), Some("Kh..\n"));
            assert_eq!(r.steer.style.as_deref(), Some("funk"));
            assert_eq!(r.steer.intensity, [Some(2), None]);
            assert_eq!(r.steer.fills, [Some(false), Some(true)]);
            assert_eq!(r.steer.bars, Some(2));
            assert_eq!(r.steer.prompt_start, Some(6));
        }
        let e = completions(br#"{"model": "m", "prompt": "x", "drums": {"loudness": 3}}"#)
            .expect_err("an unknown control");
        assert!(e.to_string().contains("loudness"), "{e}");
        let e = completions(br#"{"model": "m", "prompt": "x", "drums": {"intensity": [300]}}"#)
            .expect_err("not a bucket");
        assert_eq!(param(&e), Some("drums.intensity[0]"), "{e}");
    }

    #[test]
    fn a_bad_field_is_named() {
        for (body, field) in [
            (r#"{"model": "m", "prompt": "x", "temperature": "hot"}"#, "temperature"),
            (r#"{"model": "m", "prompt": "x", "temperature": 9}"#, "temperature"),
            (r#"{"model": "m", "prompt": "x", "top_p": 1.5}"#, "top_p"),
            (r#"{"model": "m", "prompt": "x", "n": 0}"#, "n"),
            (r#"{"model": "m", "prompt": "x", "n": 2.5}"#, "n"),
            (r#"{"model": "m", "prompt": "x", "max_tokens": -1}"#, "max_tokens"),
            (r#"{"model": "m", "prompt": "x", "seed": "s"}"#, "seed"),
            (r#"{"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}"#, "stop"),
            (r#"{"model": "m", "prompt": "x", "stream": true}"#, "stream"),
            (r#"{"model": "m", "prompt": []}"#, "prompt"),
            (r#"{"model": "m", "prompt": 3}"#, "prompt"),
            (r#"{"prompt": "x"}"#, "model"),
        ] {
            let e = completions(body.as_bytes()).expect_err(body);
            assert_eq!(param(&e), Some(field), "{body}: {e}");
            assert!(e.to_string().contains(field), "{body}: {e}");
        }
        let e = completions(b"[1, 2]").expect_err("not an object");
        assert_eq!(param(&e), None);
        assert!(e.to_string().contains("JSON object"), "{e}");
        for body in [&b"{\"model\": "[..], b"{} {}", b"\xff"] {
            let e = completions(body).expect_err("not JSON");
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
    }

    #[test]
    fn a_chat_request_completes_the_last_user_message() {
        let body = br#"{"model": "gpt-4o-mini-2024-07-18", "max_completion_tokens": 300,
            "messages": [{"role": "system", "content": "drums"},
                         {"role": "user", "content": "old"},
                         {"role": "assistant", "content": "x"},
                         {"role": "user", "content": [{"type": "text", "text": "Kh.. "}]}]}"#;
        let r = chat(body, ">>>").expect("a valid request");
        assert_eq!((r.prompt.as_str(), r.max_tokens), ("Kh..>>>", 300));
        let e = chat(br#"{"model": "m", "messages": [{"role": "system", "content": "x"}]}"#, ">>>")
            .expect_err("no user message");
        assert_eq!(param(&e), Some("messages"));
        let e = chat(br#"{"model": "m", "messages": [{"role": 1}]}"#, ">>>").expect_err("a number");
        assert_eq!(param(&e), Some("messages[0].role"), "{e}");
        let r = chat(br#"{"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "a>>>"}]}"#, ">>>")
            .expect("the other limit");
        assert_eq!((r.prompt.as_str(), r.max_tokens), ("a>>>", 9));
    }

    #[test]
    fn a_job_request_takes_either_shape_of_hyperparameters() {
        let legacy = job(br#"{"model": "babbage-002", "training_file": "file-1",
            "hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 0.5},
            "suffix": "drums", "seed": 4, "metadata": {"k": "v"}}"#)
        .expect("a valid job");
        assert_eq!(
            (legacy.model.as_str(), legacy.training_file.as_str()),
            ("babbage-002", "file-1")
        );
        let h = &legacy.hyperparameters;
        assert_eq!(
            (h.n_epochs, h.batch_size, h.learning_rate_multiplier),
            (Some(3), None, Some(0.5))
        );
        assert_eq!((legacy.suffix.as_deref(), legacy.seed), (Some("drums"), Some(4)));
        let chat = job(
            br#"{"model": "gpt-4o-mini-2024-07-18", "training_file": "f",
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}"#,
        )
        .expect("the method shape");
        assert_eq!(chat.hyperparameters.n_epochs, Some(2));
        for (body, field) in [
            (r#"{"training_file": "f"}"#, "model"),
            (r#"{"model": "m"}"#, "training_file"),
            (
                r#"{"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": 0}}"#,
                "n_epochs",
            ),
            (
                r#"{"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": 1.5}}"#,
                "n_epochs",
            ),
            (
                r#"{"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": "many"}}"#,
                "hyperparameters.n_epochs",
            ),
            (
                r#"{"model": "m", "training_file": "f", "hyperparameters": {"learning_rate_multiplier": 0}}"#,
                "learning_rate_multiplier",
            ),
            (r#"{"model": "m", "training_file": "f", "suffix": "a/b"}"#, "suffix"),
            (r#"{"model": "m", "training_file": "f", "metadata": {"k": 1}}"#, "metadata.k"),
            (r#"{"model": "m", "training_file": "f", "metadata": []}"#, "metadata"),
            (r#"{"model": "m", "training_file": "f", "seed": -1}"#, "seed"),
        ] {
            let e = job(body.as_bytes()).expect_err(body);
            assert_eq!(param(&e), Some(field), "{body}: {e}");
        }
    }
}
