//! The HTTP API: OpenAI's routes and shapes, answered by the store and the local models.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fine_drums_dataset::CountTokens;
use fine_drums_llm::{CompletionRequest, FinishReason};
use http_body::Body as _;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::Error;
use crate::limits::{Admission, CancelOnDrop, Held, Limits, MIB, Refusal};
use crate::models::{BASE_MODELS, Cost, Models, trainer_of};
use crate::request;
use crate::store::{FileRecord, JobRecord, Store, now};

/// What every handler shares.
pub(crate) struct App {
    pub store: Arc<Store>,
    pub models: Arc<Models>,
    pub key: Option<String>,
    pub jobs: UnboundedSender<String>,
    /// Memory and cores for model work.
    pub admission: Admission,
    /// Permits for uploads at once.
    pub uploads: Arc<tokio::sync::Semaphore>,
    pub limits: Limits,
    /// The tokenizer that counts prompts against `limits.prompt_tokens` (cl100k).
    pub tokens: OnceLock<Option<Box<dyn CountTokens + Send + Sync>>>,
}

/// The longest request target the router takes (beyond it: 414, in OpenAI's shape).
const URI_LIMIT: usize = 16 << 10;
/// The most bytes of headers the router takes (beyond it: 431, in OpenAI's shape).
const HEAD_LIMIT: usize = 64 << 10;

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
        ApiError::status(StatusCode::BAD_REQUEST, message, param)
    }

    fn status(status: StatusCode, message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status,
            kind: if status.is_server_error() { "server_error" } else { "invalid_request_error" },
            message: message.into(),
            param: param.map(String::from),
            code: None,
        }
    }

    fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// 429: the server is busy; the client should come back in a second.
    fn busy(what: &str) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "requests",
            message: format!("the server is busy ({what}); retry after the time in Retry-After"),
            param: None,
            code: Some("rate_limit_exceeded"),
        }
    }

    fn refused(r: Refusal, what: &str) -> ApiError {
        match r {
            Refusal::Busy => ApiError::busy("every model call's place in the queue is taken"),
            Refusal::TooLarge { mib, budget } => ApiError::bad(
                format!(
                    "{what} needs {mib} MiB, more than the {budget} MiB of model work this server allows (serve --memory-mib)"
                ),
                Some("n"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::NotFound { what, .. } => {
                ApiError::status(StatusCode::NOT_FOUND, e.to_string(), None)
                    .code(if *what == "model" { "model_not_found" } else { "not_found" })
            }
            Error::Invalid { param, message } => ApiError::bad(message.clone(), param.as_deref()),
            Error::Model(fine_drums_llm::Error::Invalid { .. }) => {
                ApiError::bad(e.to_string(), None)
            }
            Error::Cancelled => ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request's work stopped before it ended (its deadline passed)",
                None,
            )
            .code("timeout"),
            _ => {
                // The operator sees the whole error; the client, no path of the server's.
                eprintln!("serve: {e}");
                ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, e.public(), None)
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        ApiError::status(r.status(), r.body_text(), None)
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> ApiError {
        // 413 for a body over the limit, 400 for a form that does not read.
        ApiError::status(e.status(), e.body_text(), Some("file"))
    }
}

type Reply = Result<Response, ApiError>;

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v).into_response())
}

/// The routes, behind the bearer key (when there is one), the limits of a request's head and
/// body, and its deadline. Uploads may be `max_body` bytes; JSON bodies `limits.json_body`.
pub(crate) fn router(app: Arc<App>, max_body: usize) -> Router {
    let json = app.limits.json_body;
    let limited = |limit: usize| {
        (DefaultBodyLimit::max(limit), middleware::from_fn(move |r, n| limit_body(limit, r, n)))
    };
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/files", post(upload).get(list_files).route_layer(limited(max_body)))
        .route("/v1/files/{id}", get(get_file).delete(delete_file))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/fine_tuning/jobs", post(create_job).get(list_jobs).route_layer(limited(json)))
        .route("/v1/fine_tuning/jobs/{id}", get(get_job))
        .route("/v1/fine_tuning/jobs/{id}/events", get(job_events))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/completions", post(completions).route_layer(limited(json)))
        .route("/v1/chat/completions", post(chat_completions).route_layer(limited(json)))
        .fallback(|| async {
            ApiError::status(StatusCode::NOT_FOUND, "no such route on this server", None)
                .code("unknown_url")
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::status(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {}", request.method(), request.uri().path()),
                None,
            )
            .code("method_not_allowed")
        })
        .layer(middleware::from_fn_with_state(app.clone(), authorise))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Every request: its head within the router's limits (414 and 431 in OpenAI's shape), its
/// body read with no pause longer than the body timeout, and its answer within the deadline
/// (503 past it; its handler is dropped, which stops its model work).
async fn guard(State(app): Shared, request: Request, next: Next) -> Response {
    let uri = request.uri().to_string().len();
    if uri > URI_LIMIT {
        return ApiError::status(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {uri} bytes; this server takes at most {URI_LIMIT}"),
            None,
        )
        .into_response();
    }
    let head: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if head > HEAD_LIMIT {
        return ApiError::status(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the headers are {head} bytes; this server takes at most {HEAD_LIMIT}"),
            None,
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::new(TimedBody::new(body, app.limits.body_timeout));
    let deadline = app.limits.deadline;
    match tokio::time::timeout(deadline, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) => ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than this server's deadline of {} s, and its work was stopped (serve --deadline-secs)",
                deadline.as_secs()
            ),
            None,
        )
        .code("timeout")
        .into_response(),
    }
}

/// A body over `limit` bytes, by its `Content-Length`, gets a 413 before anything of it is
/// kept. It is read and dropped first (up to 1 GiB more, within the body timeout), so that
/// the client, still sending, reads the 413 rather than a reset connection.
async fn limit_body(limit: usize, request: Request, next: Next) -> Response {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = length.filter(|&l| l > limit as u64) else {
        return next.run(request).await;
    };
    if length <= limit as u64 + (1 << 30) {
        let mut body = request.into_body();
        while let Some(Ok(_)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
        }
    }
    ApiError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is {length} bytes; this route takes at most {limit}"),
        None,
    )
    .code("request_too_large")
    .into_response()
}

/// A request body that fails once no piece of it has come for `idle`.
struct TimedBody {
    inner: axum::body::Body,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: axum::body::Body, idle: Duration) -> TimedBody {
        TimedBody { inner, idle, timer: Box::pin(tokio::time::sleep(idle)) }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending if this.timer.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Some(Err(axum::Error::new(format!(
                    "no byte of the body came for {} s (serve --body-timeout-secs)",
                    this.idle.as_secs()
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
            return ApiError::status(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key (Authorization: Bearer <key>)",
                None,
            )
            .code("invalid_api_key")
            .into_response();
        }
    }
    next.run(request).await
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

/// The file an upload is written to as it arrives: removed when it is dropped unless it was
/// kept, so that an upload refused, cut off or abandoned by its client leaves nothing.
struct Partial {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            self.file = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The most bytes of a form's fields other than the file (`purpose`).
const FIELD_LIMIT: usize = 1024;

/// `POST /v1/files`: the form's file goes to disk piece by piece as it arrives (the body limit
/// counted as it goes), so that an upload holds a few pieces of memory, whatever its size.
async fn upload(State(app): Shared, mut form: Multipart) -> Reply {
    let _slot = app
        .uploads
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("every upload slot is taken"))?;
    let id = app.store.new_id("file");
    let (mut file, mut purpose) = (None::<(String, u64, Partial)>, None);
    while let Some(mut field) = form.next_field().await? {
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().unwrap_or("upload.jsonl").to_string();
                let path = app.store.upload_path(&id);
                let created = std::fs::File::create(&path).map_err(Error::io(&path))?;
                let mut partial = Partial { path, file: Some(created), kept: false };
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await? {
                    bytes += chunk.len() as u64;
                    // A piece at a time to the page cache: microseconds, on the async thread.
                    if let Some(f) = partial.file.as_mut() {
                        std::io::Write::write_all(f, &chunk).map_err(Error::io(&partial.path))?;
                    }
                }
                file = Some((name, bytes, partial));
            }
            Some("purpose") => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await? {
                    text.extend_from_slice(&chunk);
                    if text.len() > FIELD_LIMIT {
                        return Err(ApiError::bad(
                            format!("purpose is over {FIELD_LIMIT} bytes"),
                            Some("purpose"),
                        ));
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|_| ApiError::bad("purpose is not UTF-8", Some("purpose")))?;
                purpose = Some(text);
            }
            _ => while field.chunk().await?.is_some() {},
        }
    }
    let (filename, bytes, mut partial) =
        file.ok_or_else(|| ApiError::bad("no `file` in the form", Some("file")))?;
    let purpose =
        purpose.ok_or_else(|| ApiError::bad("no `purpose` in the form", Some("purpose")))?;
    drop(partial.file.take());
    let record = FileRecord { id, bytes, created_at: now(), filename, purpose };
    app.store.add_upload(record.clone())?;
    partial.kept = true;
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

async fn create_job(State(app): Shared, body: Result<Bytes, BytesRejection>) -> Reply {
    let j = request::job(&body?)?;
    let trainer = trainer_of(&j.model).ok_or_else(|| {
        ApiError::bad(
            format!("model {:?} cannot be fine-tuned here: use babbage-002 or davinci-002 (or gpt-4o-mini-2024-07-18, gpt-4.1-mini-2025-04-14, gpt-4o-2024-08-06, gpt-4.1-2025-04-14 for chat files)", j.model),
            Some("model"),
        )
    })?;
    file_of(&app.store, &j.training_file)?;
    if let Some(f) = &j.validation_file {
        file_of(&app.store, f)?;
    }
    let job = JobRecord {
        id: app.store.new_id("ftjob"),
        created_at: now(),
        finished_at: None,
        model: j.model,
        training_file: j.training_file,
        validation_file: j.validation_file,
        hyperparameters: j.hyperparameters,
        suffix: j.suffix,
        seed: j.seed.unwrap_or_else(|| now() % 1_000_000),
        status: "validating_files".into(),
        fine_tuned_model: None,
        error: None,
        trained_tokens: None,
        metadata: j.metadata,
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
    let cancelled = app.store.update_job(&id, |j| {
        j.status = "cancelled".into();
        j.finished_at = Some(now());
    })?;
    let Some(job) = cancelled else {
        return Err(ApiError::bad(format!("job {id} has already ended ({})", job.status), None));
    };
    app.models.cancel(&id).await?;
    app.store.event(&id, "info", "The job was cancelled", None)?;
    ok(job.json())
}

/// `text` up to the first of `stop`, and whether one was found.
fn cut_at_stop<'a>(text: &'a str, stop: &[String]) -> (&'a str, bool) {
    let first = stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min();
    first.map_or((text, false), |i| (&text[..i], true))
}

/// Refuses a prompt over the server's token limit (`limits.prompt_tokens`, cl100k tokens).
async fn check_prompt(app: &Arc<App>, prompt: &str) -> Result<(), ApiError> {
    let limit = app.limits.prompt_tokens;
    let over = |tokens: u64| {
        ApiError::bad(
            format!(
                "the prompt is {tokens} tokens; this server's models read at most {limit} (serve --prompt-tokens)"
            ),
            Some("prompt"),
        )
        .code("context_length_exceeded")
    };
    // No token is 256 bytes long: a prompt that long is over without counting.
    if prompt.len() as u64 > limit.saturating_mul(256) {
        return Err(over(prompt.len() as u64 / 256));
    }
    let (app2, text) = (app.clone(), prompt.to_string());
    let tokens = tokio::task::spawn_blocking(move || {
        let bpe = app2.tokens.get_or_init(|| {
            fine_drums_dataset::cl100k()
                .ok()
                .map(|b| Box::new(b) as Box<dyn CountTokens + Send + Sync>)
        });
        bpe.as_ref().map_or(text.len(), |b| b.count_tokens(&text)) as u64
    })
    .await
    .map_err(|e| ApiError::from(Error::invalid(None, format!("counting stopped: {e}"))))?;
    if tokens > limit { Err(over(tokens)) } else { Ok(()) }
}

/// What one call of `model` on a prompt of `bytes` costs (blocking: it may load the model).
async fn cost_of(app: &Arc<App>, model: &str, bytes: usize) -> Result<Cost, ApiError> {
    let (models, model) = (app.models.clone(), model.to_string());
    tokio::task::spawn_blocking(move || models.cost(&model, bytes))
        .await
        .map_err(|e| ApiError::from(Error::invalid(None, format!("the model stopped: {e}"))))?
        .map_err(ApiError::from)
}

/// Completes `r` under the server's budgets: its samples in chunks that fit the request's
/// memory, each chunk admitted (memory and a core) before it runs, and all of it stopped
/// within a model step once the handler is dropped (the client gone, the deadline passed).
async fn complete(
    app: &Arc<App>,
    mut r: CompletionRequest,
    held: &mut Held,
) -> Result<fine_drums_llm::Completion, ApiError> {
    check_prompt(app, &r.prompt).await?;
    let cost = cost_of(app, &r.model, r.prompt.len()).await?;
    let n = r.n.max(1);
    let request_mib = u32::try_from(app.limits.request_memory / MIB).unwrap_or(u32::MAX);
    let one = cost.fixed_mib.saturating_add(cost.sample_mib);
    let whole = cost.fixed_mib.saturating_add(cost.sample_mib.saturating_mul(n));
    let per_chunk = if cost.chunks {
        if one > request_mib {
            return Err(ApiError::bad(
                format!(
                    "one sample of {} needs {one} MiB, more than the {request_mib} MiB a request may hold (serve --request-memory-mib)",
                    r.model
                ),
                Some("model"),
            ));
        }
        ((request_mib - cost.fixed_mib) / cost.sample_mib.max(1)).clamp(1, n)
    } else if whole > request_mib {
        return Err(ApiError::bad(
            format!(
                "{n} samples of {} need {whole} MiB, more than the {request_mib} MiB a request may hold (serve --request-memory-mib): ask for fewer",
                r.model
            ),
            Some("n"),
        ));
    } else {
        n
    };
    if cost.chunks && per_chunk < n && r.seed.is_none() {
        // One seed for every chunk, so that sample i draws with seed + i as in one call.
        r.seed = Some(now().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    let cancel = CancelOnDrop::new();
    let mut all: Option<fine_drums_llm::Completion> = None;
    let mut done = 0;
    while done < n {
        let k = per_chunk.min(n - done);
        let mib = cost.fixed_mib + cost.sample_mib * k;
        let ticket = app.admission.admit_held(held, mib).await.map_err(|refusal| {
            ApiError::refused(refusal, &format!("{k} samples of {}", r.model))
        })?;
        let mut part = r.clone();
        part.n = k;
        part.seed = r.seed.map(|s| s.wrapping_add(u64::from(done)));
        let (models, flag) = (app.models.clone(), cancel.0.clone());
        let c = tokio::task::spawn_blocking(move || {
            let _ticket = ticket;
            models.complete(&part, &flag)
        })
        .await
        .map_err(|e| ApiError::from(Error::invalid(None, format!("the model stopped: {e}"))))?
        .map_err(ApiError::from)?;
        match all.as_mut() {
            None => all = Some(c),
            Some(a) => {
                a.usage.completion_tokens += c.usage.completion_tokens;
                a.choices.extend(c.choices);
            }
        }
        done += k;
    }
    all.ok_or_else(|| ApiError::from(Error::invalid(None, "no sample was asked for")))
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
    let request::Completions { model, requests, echo, logprobs } = request::completions(&body?)?;
    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    // One admission for the whole request: once begun, it is not refused half-way.
    let mut held = Held::default();
    for r in requests {
        let prompt = r.prompt.clone();
        if echo && r.max_tokens == 0 {
            // Scoring: the log-probability of the text after the prompt's separator, as one
            // span (the server's models have no tokens of OpenAI's).
            choices.push(score(&app, &r.model, &prompt, logprobs, choices.len(), &mut held).await?);
            continue;
        }
        let completion = complete(&app, r.clone(), &mut held).await?;
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
    app: &Arc<App>,
    model: &str,
    text: &str,
    logprobs: bool,
    index: usize,
    held: &mut Held,
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
    // Scoring is model work like any other: the prompt limit, and admitted as one sample.
    check_prompt(app, text).await?;
    let cost = cost_of(app, model, text.len()).await?;
    let mib = cost.fixed_mib.saturating_add(cost.sample_mib);
    let ticket = app
        .admission
        .admit_held(held, mib)
        .await
        .map_err(|refusal| ApiError::refused(refusal, &format!("scoring with {model}")))?;
    let (models, m, p, c) =
        (app.models.clone(), model.to_string(), prompt.to_string(), continuation.clone());
    let nll = tokio::task::spawn_blocking(move || {
        let _ticket = ticket;
        models.nll(&m, &p, &c)
    })
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
    let template = &app.models.template;
    let r = request::chat(&body?, &template.separator)?;
    let completion = complete(&app, r.clone(), &mut Held::default()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The status and JSON body a client gets for `e`.
    fn answer(e: ApiError) -> (StatusCode, Value) {
        let response = e.into_response();
        let status = response.status();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .expect("the body");
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[test]
    fn errors_take_openai_shape_with_the_field_at_fault() {
        let (status, body) = answer(Error::invalid(Some("temperature"), "too hot").into());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": {"message": "too hot", "type": "invalid_request_error",
                             "param": "temperature", "code": null}})
        );
        let (status, body) = answer(Error::NotFound { what: "model", id: "ft:x".into() }.into());
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "model_not_found");
        let (status, body) = answer(Error::Cancelled.into());
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("timeout"))
        );
        let (status, body) = answer(ApiError::busy("a test"));
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        let io = std::io::Error::other("disk on fire");
        let (status, body) =
            answer(Error::io(std::path::Path::new("/srv/d/files/f.jsonl"))(io).into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(body["error"]["message"], "files/f.jsonl: disk on fire", "no server path");
    }

    #[test]
    fn a_bad_request_body_is_refused_before_any_work() {
        for (body, param) in
            [(&br#"{"model": "m", "prompt": "x", "n": "two"}"#[..], Some("n")), (b"not json", None)]
        {
            let e: ApiError = request::completions(body).expect_err("refused").into();
            let (status, json) = answer(e);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(json["error"]["param"].as_str(), param, "{json}");
        }
    }
}
