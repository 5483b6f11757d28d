//! The HTTP API: OpenAI's routes and shapes, answered by the store and the local models.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fine_drums_llm::{CompletionRequest, FinishReason};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::Error;
use crate::models::{BASE_MODELS, Models, trainer_of};
use crate::store::{FileRecord, Hyper, JobRecord, Store, now};

/// What every handler shares.
pub(crate) struct App {
    pub store: Arc<Store>,
    pub models: Arc<Models>,
    pub key: Option<String>,
    pub jobs: UnboundedSender<String>,
    /// Permits for model work: one a core.
    pub busy: tokio::sync::Semaphore,
}

type Shared = State<Arc<App>>;

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    fn bad(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            param: param.map(String::from),
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::NotFound { what, .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                kind: "invalid_request_error",
                message: e.to_string(),
                param: None,
                code: Some(if *what == "model" { "model_not_found" } else { "not_found" }),
            },
            Error::Invalid { param, message } => ApiError::bad(message.clone(), param.as_deref()),
            Error::Model(fine_drums_llm::Error::Invalid { .. }) => {
                ApiError::bad(e.to_string(), None)
            }
            _ => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "server_error",
                message: e.to_string(),
                param: None,
                code: None,
            },
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        ApiError {
            status: r.status(),
            kind: "invalid_request_error",
            message: r.body_text(),
            param: None,
            code: None,
        }
    }
}

type Reply = Result<Response, ApiError>;

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v).into_response())
}

/// The routes, behind the bearer key (when there is one) and the request size limit.
pub(crate) fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/files", post(upload).get(list_files))
        .route("/v1/files/{id}", get(get_file).delete(delete_file))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/fine_tuning/jobs", post(create_job).get(list_jobs))
        .route("/v1/fine_tuning/jobs/{id}", get(get_job))
        .route("/v1/fine_tuning/jobs/{id}/events", get(job_events))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                kind: "invalid_request_error",
                message: "no such route on this server".into(),
                param: None,
                code: Some("unknown_url"),
            }
        })
        .layer(middleware::from_fn_with_state(app.clone(), authorise))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// With a key set, every request must carry `Authorization: Bearer <key>`.
async fn authorise(State(app): Shared, request: Request, next: Next) -> Response {
    if let Some(key) = &app.key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return ApiError {
                status: StatusCode::UNAUTHORIZED,
                kind: "invalid_request_error",
                message: "missing or wrong API key (Authorization: Bearer <key>)".into(),
                param: None,
                code: Some("invalid_api_key"),
            }
            .into_response();
        }
    }
    next.run(request).await
}

fn parse(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(ApiError::bad("the body must be a JSON object", None));
    }
    Ok(value)
}

fn model_json(id: &str, created: u64, owned_by: &str) -> Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": owned_by })
}

fn fine_tuned(store: &Store) -> Vec<JobRecord> {
    store
        .jobs()
        .into_iter()
        .filter(|j| j.status == "succeeded" && j.fine_tuned_model.is_some())
        .collect()
}

async fn list_models(State(app): Shared) -> Reply {
    let mut data: Vec<Value> =
        BASE_MODELS.iter().map(|(id, _)| model_json(id, 0, "fine-drums")).collect();
    for j in fine_tuned(&app.store) {
        let id = j.fine_tuned_model.unwrap_or_default();
        data.push(model_json(&id, j.finished_at.unwrap_or(j.created_at), "user"));
    }
    ok(json!({ "object": "list", "data": data }))
}

async fn get_model(State(app): Shared, Path(id): Path<String>) -> Reply {
    if BASE_MODELS.iter().any(|(m, _)| *m == id) {
        return ok(model_json(&id, 0, "fine-drums"));
    }
    match fine_tuned(&app.store).into_iter().find(|j| j.fine_tuned_model.as_deref() == Some(&id)) {
        Some(j) => ok(model_json(&id, j.finished_at.unwrap_or(j.created_at), "user")),
        None => Err(Error::NotFound { what: "model", id }.into()),
    }
}

async fn upload(State(app): Shared, mut form: Multipart) -> Reply {
    let (mut file, mut purpose) = (None, None);
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::bad(e.body_text(), None))?
    {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("upload.jsonl").to_string();
                let bytes =
                    field.bytes().await.map_err(|e| ApiError::bad(e.body_text(), Some("file")))?;
                file = Some((name, bytes));
            }
            Some("purpose") => {
                purpose = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| ApiError::bad(e.body_text(), Some("purpose")))?,
                );
            }
            _ => {}
        }
    }
    let (filename, bytes) =
        file.ok_or_else(|| ApiError::bad("no `file` in the form", Some("file")))?;
    let purpose =
        purpose.ok_or_else(|| ApiError::bad("no `purpose` in the form", Some("purpose")))?;
    let record = FileRecord {
        id: app.store.new_id("file"),
        bytes: bytes.len() as u64,
        created_at: now(),
        filename,
        purpose,
    };
    app.store.add_file(record.clone(), &bytes)?;
    ok(record.json())
}

async fn list_files(State(app): Shared, Query(q): Query<BTreeMap<String, String>>) -> Reply {
    let data: Vec<Value> = app
        .store
        .files()
        .iter()
        .filter(|f| q.get("purpose").is_none_or(|p| *p == f.purpose))
        .map(FileRecord::json)
        .collect();
    ok(json!({ "object": "list", "data": data, "has_more": false }))
}

fn file_of(store: &Store, id: &str) -> Result<FileRecord, ApiError> {
    store.file(id).ok_or_else(|| Error::NotFound { what: "file", id: id.into() }.into())
}

async fn get_file(State(app): Shared, Path(id): Path<String>) -> Reply {
    ok(file_of(&app.store, &id)?.json())
}

async fn file_content(State(app): Shared, Path(id): Path<String>) -> Reply {
    file_of(&app.store, &id)?;
    let bytes = app.store.file_data(&id)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn delete_file(State(app): Shared, Path(id): Path<String>) -> Reply {
    if !app.store.delete_file(&id)? {
        return Err(Error::NotFound { what: "file", id }.into());
    }
    ok(json!({ "id": id, "object": "file", "deleted": true }))
}

/// `n_epochs` and the others: a number, or `"auto"` for the trainer's default.
fn hyper(v: Option<&Value>) -> Result<Hyper, ApiError> {
    let mut h = Hyper::default();
    let Some(v) = v else { return Ok(h) };
    let field = |name: &str| -> Result<Option<f64>, ApiError> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s == "auto" => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(ApiError::bad(
                format!("{name} must be a number or \"auto\", not {other}"),
                Some(name),
            )),
        }
    };
    let whole = |name: &str, x: Option<f64>| -> Result<Option<u32>, ApiError> {
        x.map(|x| {
            if x >= 1.0 && x.fract() == 0.0 && x <= 1000.0 {
                Ok(x as u32)
            } else {
                Err(ApiError::bad(
                    format!("{name} must be a whole number from 1 to 1000, not {x}"),
                    Some(name),
                ))
            }
        })
        .transpose()
    };
    h.n_epochs = whole("n_epochs", field("n_epochs")?)?;
    h.batch_size = whole("batch_size", field("batch_size")?)?;
    h.learning_rate_multiplier = field("learning_rate_multiplier")?;
    if h.learning_rate_multiplier.is_some_and(|x| !(x > 0.0 && x <= 100.0)) {
        return Err(ApiError::bad(
            "learning_rate_multiplier must be above 0 and at most 100",
            Some("learning_rate_multiplier"),
        ));
    }
    Ok(h)
}

async fn create_job(State(app): Shared, body: Result<Bytes, BytesRejection>) -> Reply {
    let v = parse(body)?;
    let text = |name: &str| v.get(name).and_then(Value::as_str).map(String::from);
    let model = text("model").ok_or_else(|| ApiError::bad("`model` is required", Some("model")))?;
    let trainer = trainer_of(&model).ok_or_else(|| {
        ApiError::bad(
            format!("model {model:?} cannot be fine-tuned here: use babbage-002 or davinci-002 (or gpt-4o-mini-2024-07-18, gpt-4.1-mini-2025-04-14, gpt-4o-2024-08-06, gpt-4.1-2025-04-14 for chat files)"),
            Some("model"),
        )
    })?;
    let training_file = text("training_file")
        .ok_or_else(|| ApiError::bad("`training_file` is required", Some("training_file")))?;
    file_of(&app.store, &training_file)?;
    let validation_file = text("validation_file");
    if let Some(f) = &validation_file {
        file_of(&app.store, f)?;
    }
    let method = v.pointer("/method/supervised/hyperparameters");
    let hyperparameters = hyper(v.get("hyperparameters").or(method))?;
    let suffix = text("suffix");
    if suffix.as_ref().is_some_and(|s| s.len() > 64 || s.contains(':')) {
        return Err(ApiError::bad(
            "suffix must be at most 64 characters, without ':'",
            Some("suffix"),
        ));
    }
    let metadata = match v.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(ApiError::bad("metadata values must be strings", Some("metadata"))),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        ),
        Some(_) => return Err(ApiError::bad("metadata must be an object", Some("metadata"))),
    };
    let seed = match v.get("seed") {
        None | Some(Value::Null) => now() % 1_000_000,
        Some(s) => {
            s.as_u64().ok_or_else(|| ApiError::bad("seed must be a whole number", Some("seed")))?
        }
    };
    let job = JobRecord {
        id: app.store.new_id("ftjob"),
        created_at: now(),
        finished_at: None,
        model,
        training_file,
        validation_file,
        hyperparameters,
        suffix,
        seed,
        status: "validating_files".into(),
        fine_tuned_model: None,
        error: None,
        trained_tokens: None,
        metadata,
        trainer,
        model_path: None,
    };
    app.store.put_job(&job)?;
    app.store.event(&job.id, "info", format!("Created fine-tuning job: {}", job.id), None)?;
    let _ = app.jobs.send(job.id.clone());
    ok(job.json())
}

/// A page of `items` (newest first) after the one with id `after`, `limit` long.
fn page(items: Vec<Value>, q: &[(String, String)]) -> Result<Value, ApiError> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let limit = match get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=10_000).contains(l))
            .ok_or_else(|| ApiError::bad("limit must be 1 to 10000", Some("limit")))?,
        None => 20,
    };
    let start = match get("after") {
        Some(a) => items.iter().position(|i| i["id"] == a).map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let data: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + data.len() < items.len();
    Ok(json!({ "object": "list", "data": data, "has_more": has_more }))
}

async fn list_jobs(State(app): Shared, Query(q): Query<Vec<(String, String)>>) -> Reply {
    let wanted: Vec<(&str, &str)> = q
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?, v.as_str())))
        .collect();
    let mut jobs = app.store.jobs();
    jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = jobs
        .iter()
        .filter(|j| {
            wanted.iter().all(|(k, v)| {
                j.metadata.as_ref().and_then(|m| m.get(*k)).map(String::as_str) == Some(*v)
            })
        })
        .map(JobRecord::json)
        .collect();
    ok(page(items, &q)?)
}

fn job_of(store: &Store, id: &str) -> Result<JobRecord, ApiError> {
    store.job(id).ok_or_else(|| Error::NotFound { what: "job", id: id.into() }.into())
}

async fn get_job(State(app): Shared, Path(id): Path<String>) -> Reply {
    ok(job_of(&app.store, &id)?.json())
}

async fn job_events(
    State(app): Shared,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Reply {
    job_of(&app.store, &id)?;
    let items = app.store.events(&id).iter().rev().map(|e| e.json()).collect();
    ok(page(items, &q)?)
}

async fn cancel_job(State(app): Shared, Path(id): Path<String>) -> Reply {
    let job = job_of(&app.store, &id)?;
    if job.is_terminal() {
        return Err(ApiError::bad(format!("job {id} has already ended ({})", job.status), None));
    }
    let job = app.store.update_job(&id, |j| {
        j.status = "cancelled".into();
        j.finished_at = Some(now());
    })?;
    app.models.cancel(&id).await?;
    app.store.event(&id, "info", "The job was cancelled", None)?;
    ok(job.json())
}

/// The sampling fields common to completions and chat completions.
fn request_of(
    v: &Value,
    prompt: String,
    max_tokens: Option<&Value>,
    default_max: u32,
) -> Result<CompletionRequest, ApiError> {
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("`model` is required", Some("model")))?;
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad("streaming is not supported by this server", Some("stream")));
    }
    let number = |name: &str,
                  default: f64,
                  range: std::ops::RangeInclusive<f64>|
     -> Result<f64, ApiError> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_f64().filter(|x| range.contains(x)).ok_or_else(|| {
                ApiError::bad(
                    format!("{name} must be a number from {} to {}", range.start(), range.end()),
                    Some(name),
                )
            }),
        }
    };
    let max = match max_tokens {
        None | Some(Value::Null) => default_max,
        Some(m) => m.as_u64().and_then(|m| u32::try_from(m).ok()).ok_or_else(|| {
            ApiError::bad("max_tokens must be a whole number", Some("max_tokens"))
        })?,
    };
    let mut r = CompletionRequest::new(model, prompt, max);
    r.temperature = number("temperature", 1.0, 0.0..=2.0)? as f32;
    r.top_p = number("top_p", 1.0, 0.0..=1.0)? as f32;
    r.n = number("n", 1.0, 1.0..=128.0)? as u32;
    r.seed = match v.get("seed") {
        None | Some(Value::Null) => None,
        Some(s) => Some(
            s.as_u64().ok_or_else(|| ApiError::bad("seed must be a whole number", Some("seed")))?,
        ),
    };
    r.stop = match v.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.len() <= 4 => {
            a.iter().filter_map(Value::as_str).map(String::from).collect()
        }
        Some(_) => {
            return Err(ApiError::bad("stop must be a string or up to 4 strings", Some("stop")));
        }
    };
    Ok(r)
}

/// `text` up to the first of `stop`, and whether one was found.
fn cut_at_stop<'a>(text: &'a str, stop: &[String]) -> (&'a str, bool) {
    let first = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min();
    first.map_or((text, false), |i| (&text[..i], true))
}

async fn complete(app: &App, r: CompletionRequest) -> Result<fine_drums_llm::Completion, ApiError> {
    let models = app.models.clone();
    // As many models at work as cores: more would only share them, and each holds memory.
    let _permit = app
        .busy
        .acquire()
        .await
        .map_err(|e| ApiError::from(Error::invalid(None, e.to_string())))?;
    tokio::task::spawn_blocking(move || models.complete(&r))
        .await
        .map_err(|e| ApiError::from(Error::invalid(None, format!("the model stopped: {e}"))))?
        .map_err(ApiError::from)
}

fn finish(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Other(o) => o,
        _ => "stop",
    }
}

async fn completions(State(app): Shared, body: Result<Bytes, BytesRejection>) -> Reply {
    let v = parse(body)?;
    let prompts: Vec<String> = match v.get("prompt") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(String::from).collect()
        }
        _ => {
            return Err(ApiError::bad(
                "prompt must be a string or a list of strings",
                Some("prompt"),
            ));
        }
    };
    let echo = v.get("echo").and_then(Value::as_bool).unwrap_or(false);
    let logprobs = v.get("logprobs").is_some_and(|l| !l.is_null());
    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    let model = v.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    for prompt in prompts {
        // OpenAI's default for legacy completions: 16 tokens.
        let r = request_of(&v, prompt.clone(), v.get("max_tokens"), 16)?;
        if echo && r.max_tokens == 0 {
            // Scoring: the log-probability of the text after the prompt's separator, as one
            // span (the server's models have no tokens of OpenAI's).
            choices.push(score(&app, &r.model, &prompt, logprobs, choices.len()).await?);
            continue;
        }
        let completion = complete(&app, r.clone()).await?;
        prompt_tokens += completion.usage.prompt_tokens;
        completion_tokens += completion.usage.completion_tokens;
        for c in completion.choices {
            let (text, stopped) = cut_at_stop(&c.text, &r.stop);
            let reason = if stopped { "stop" } else { finish(&c.finish_reason) };
            let text = if echo { format!("{prompt}{text}") } else { text.to_string() };
            choices.push(json!({ "text": text, "index": choices.len(), "logprobs": null, "finish_reason": reason }));
        }
    }
    ok(json!({
        "id": app.store.new_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens + completion_tokens },
    }))
}

async fn score(
    app: &App,
    model: &str,
    text: &str,
    logprobs: bool,
    index: usize,
) -> Result<Value, ApiError> {
    let sep = app.models.template.separator.clone();
    let Some(at) = text.find(sep.as_str()) else {
        return Err(ApiError::bad(
            format!(
                "echo with max_tokens 0 scores the text after the separator {sep:?}, and this prompt has none"
            ),
            Some("prompt"),
        ));
    };
    let (prompt, rest) = text.split_at(at + sep.len());
    let continuation = rest.strip_prefix('\n').unwrap_or(rest).to_string();
    let start = text.len() - continuation.len();
    let (models, m, p, c) =
        (app.models.clone(), model.to_string(), prompt.to_string(), continuation.clone());
    let nll = tokio::task::spawn_blocking(move || models.nll(&m, &p, &c))
        .await
        .map_err(|e| ApiError::from(Error::invalid(None, format!("the model stopped: {e}"))))??;
    let lp = match (logprobs, nll) {
        (true, Some(nll)) => json!({
            "tokens": [&text[..start], continuation],
            "token_logprobs": [null, -nll],
            "text_offset": [0, start],
            "top_logprobs": null,
        }),
        _ => Value::Null,
    };
    Ok(json!({ "text": text, "index": index, "logprobs": lp, "finish_reason": "length" }))
}

async fn chat_completions(State(app): Shared, body: Result<Bytes, BytesRejection>) -> Reply {
    let v = parse(body)?;
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad("`messages` is required", Some("messages")))?;
    let user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .ok_or_else(|| ApiError::bad("no user message with text content", Some("messages")))?;
    let template = &app.models.template;
    let mut prompt = user.trim_end().to_string();
    if !prompt.ends_with(template.separator.as_str()) {
        prompt.push_str(&template.separator);
    }
    let max = v.get("max_completion_tokens").or_else(|| v.get("max_tokens"));
    // Chat completions have no default limit but the model's context.
    let r = request_of(&v, prompt, max, 16_384)?;
    let completion = complete(&app, r.clone()).await?;
    let choices: Vec<Value> = completion
        .choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let body = template.completion_body(&c.text);
            let (content, stopped) = cut_at_stop(body, &r.stop);
            let reason = if stopped { "stop" } else { finish(&c.finish_reason) };
            json!({ "index": i, "message": { "role": "assistant", "content": content.trim_end(), "refusal": null },
                    "logprobs": null, "finish_reason": reason })
        })
        .collect();
    let u = completion.usage;
    ok(json!({
        "id": app.store.new_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": r.model,
        "choices": choices,
        "usage": { "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                   "total_tokens": u.total() },
    }))
}
