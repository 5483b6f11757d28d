//! Completion: legacy `/v1/completions` and `/v1/chat/completions`, `n` samples however the
//! server takes them, and scoring by the prompt's log-probabilities.

use std::sync::atomic::Ordering;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use fine_drums_llm::{BoxFuture, Complete, Completion, CompletionRequest, Endpoint, Error, Result};

use crate::client::{OpenAi, completion_of, from_openai, with_hint};
use crate::config::{ChatTemplate, is_chat_model, is_openai};
use crate::retry;
use crate::wire::{
    ChatMessage, ChatRequest, ChatResponse, CompletionChoice, CompletionsRequest,
    CompletionsResponse, Prompt, Stop,
};

/// The body of a completion request.
pub fn completion_body(request: &CompletionRequest) -> CompletionsRequest {
    CompletionsRequest {
        model: Some(request.model.clone()),
        prompt: Some(Prompt::One(request.prompt.clone())),
        max_tokens: Some(request.max_tokens),
        temperature: Some(f64::from(request.temperature)),
        top_p: Some(f64::from(request.top_p)),
        n: Some(request.n),
        stop: Stop::of(&request.stop),
        seed: request.seed,
        ..CompletionsRequest::default()
    }
}

/// The body of a chat completion request: the system message of the chat files, the
/// prompt's bars (without the separator) as the user's message. OpenAI's API takes the
/// limit as `max_completion_tokens`; other servers as `max_tokens`.
pub fn chat_body(request: &CompletionRequest, chat: &ChatTemplate, openai: bool) -> ChatRequest {
    let user = request.prompt.strip_suffix(chat.separator.as_str()).unwrap_or(&request.prompt);
    let limit = Some(request.max_tokens);
    ChatRequest {
        model: Some(request.model.clone()),
        messages: Some(vec![
            ChatMessage::new("system", &chat.system),
            ChatMessage::new("user", user),
        ]),
        max_completion_tokens: limit.filter(|_| openai),
        max_tokens: limit.filter(|_| !openai),
        temperature: Some(f64::from(request.temperature)),
        top_p: Some(f64::from(request.top_p)),
        n: Some(request.n),
        stop: Stop::of(&request.stop),
        seed: request.seed,
        stream: None,
    }
}

/// The body that asks a server for the log-probabilities of `prompt` followed by
/// `continuation` (a newline between, as the training completions had it), generating
/// nothing: `echo` with `logprobs` and no new tokens.
pub fn scoring_body(model: &str, prompt: &str, continuation: &str) -> CompletionsRequest {
    CompletionsRequest {
        model: Some(model.to_string()),
        prompt: Some(Prompt::One(format!("{prompt}\n{continuation}"))),
        max_tokens: Some(0),
        echo: Some(true),
        logprobs: Some(0),
        temperature: Some(0.0),
        ..CompletionsRequest::default()
    }
}

impl OpenAi {
    /// Whether `model` is completed through `/v1/chat/completions`.
    fn chat(&self, model: &str) -> bool {
        match self.config.endpoint {
            Endpoint::Completions => false,
            Endpoint::Chat => true,
            _ => is_chat_model(model),
        }
    }

    /// One completion request through `client`, at the endpoint the model takes. A chat
    /// reply comes back as a completion: a newline, then the assistant's bars.
    async fn completion(
        &self,
        client: &Client<OpenAIConfig>,
        request: &CompletionRequest,
    ) -> Result<CompletionsResponse> {
        if !self.chat(&request.model) {
            return client
                .completions()
                .create_byot(completion_body(request))
                .await
                .map_err(|e| with_hint(from_openai(e, "completion"), &request.model, false));
        }
        let body = chat_body(request, &self.config.chat, is_openai(&self.config.base_url));
        let reply: ChatResponse = client
            .chat()
            .create_byot(body)
            .await
            .map_err(|e| with_hint(from_openai(e, "chat completion"), &request.model, false))?;
        Ok(CompletionsResponse {
            choices: reply
                .choices
                .into_iter()
                .map(|c| CompletionChoice {
                    text: format!("\n{}\n", c.message.text().unwrap_or_default().trim()),
                    index: c.index,
                    finish_reason: c.finish_reason,
                    logprobs: None,
                })
                .collect(),
            usage: reply.usage,
        })
    }

    /// `request` as `count` requests of one sample each (seeds `seed`, `seed + 1`, ...).
    async fn singly(
        &self,
        request: &CompletionRequest,
        count: u32,
    ) -> Result<Vec<CompletionsResponse>> {
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

impl Complete for OpenAi {
    /// Asks for `n` samples in one request. A server that refuses `n > 1` (llama.cpp answers
    /// 500) is asked `n` times for one sample, at once and for the rest of this backend's life;
    /// one that returns fewer samples than asked (Ollama ignores `n`) is asked for the rest
    /// one at a time.
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(async move {
            request.plain_only("openai")?;
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
            let body: CompletionsResponse = self
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
