//! The OpenAI backend against real HTTP servers on 127.0.0.1 (wiremock): what is sent,
//! what comes back, and every fault the retry policy must handle.

use std::time::Duration;

use fine_drums_llm::Complete;
use fine_drums_llm::{
    CompletionRequest, Error, FineTune, FinishReason, JobEvent, JobRequest, JobStatus, Upload,
};
use fine_drums_openai::{ApiKey, Config, OpenAi, RetryPolicy, job_body};
use serde_json::{Value, json};
use wiremock::matchers::{
    body_partial_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk-test-0123456789abcdef";

fn backend(server: &MockServer, max_retries: u32) -> OpenAi {
    let mut config = Config::new(ApiKey::new(KEY));
    config.base_url = format!("{}/v1", server.uri());
    config.organization = Some("org-drums".into());
    config.project = Some("proj-groove".into());
    config.retry.max_retries = max_retries;
    config.retry.initial_backoff = Duration::from_millis(5);
    config.retry.timeout = Duration::from_secs(5);
    config.poll_interval = Duration::from_millis(5);
    OpenAi::new(config).expect("a backend")
}

fn job(id: &str, status: &str) -> Value {
    json!({
        "object": "fine_tuning.job", "id": id, "model": "babbage-002", "created_at": 1_700_000_000,
        "status": status, "fine_tuned_model": null, "error": null, "trained_tokens": null,
        "training_file": "file-train", "validation_file": null, "result_files": [],
        "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 0.1},
        "organization_id": "org-drums", "seed": 7, "finished_at": null,
    })
}

fn completion_json() -> Value {
    json!({
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "ft:babbage-002:org:drums:abc",
        "choices": [
            {"text": "\nKh..h. Sh..h.\n", "index": 1, "logprobs": null, "finish_reason": "length"},
            {"text": "\nKh..h. Sh..h. Kh..Kh. Sh..h.\n", "index": 0, "logprobs": null, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 41, "completion_tokens": 30, "total_tokens": 71},
    })
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

#[tokio::test]
async fn completion_sends_the_request_and_reads_the_samples() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("openai-organization", "org-drums"))
        .and(header("openai-project", "proj-groove"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_json()))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = CompletionRequest::new("ft:babbage-002:org:drums:abc", "Kh..h.\n>>>", 300);
    request.stop = vec!["<<<".into()];
    request.n = 2;
    request.seed = Some(42);
    request.temperature = 0.8;
    let out = backend(&server, 0).complete(&request).await.expect("completion");
    assert_eq!(out.choices.len(), 2);
    assert_eq!(out.choices[0].text, "\nKh..h. Sh..h. Kh..Kh. Sh..h.\n");
    assert_eq!(out.choices[0].finish_reason, FinishReason::Stop);
    assert_eq!(out.choices[1].finish_reason, FinishReason::Length);
    assert_eq!((out.usage.prompt_tokens, out.usage.completion_tokens), (41, 30));
    let sent: Value = requests(&server).await[0].body_json().expect("JSON body");
    assert_eq!(
        sent,
        json!({"model": "ft:babbage-002:org:drums:abc", "prompt": "Kh..h.\n>>>", "max_tokens": 300,
               "temperature": 0.800000011920929, "top_p": 1.0, "n": 2, "stop": ["<<<"], "seed": 42})
    );
}

#[tokio::test]
async fn upload_sends_a_multipart_fine_tune_file() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "file-abc", "object": "file", "bytes": 62, "created_at": 1, "filename": "train.jsonl",
            "purpose": "fine-tune", "status": "processed"})))
        .mount(&server)
        .await;
    let jsonl = b"{\"prompt\":\"Kh..h.\\n>>>\",\"completion\":\"\\nSh..h.\\n<<<\"}\n".to_vec();
    let id = backend(&server, 0)
        .upload(&Upload::new("train.jsonl", jsonl.clone()))
        .await
        .expect("upload");
    assert_eq!(id, "file-abc");
    let r = &requests(&server).await[0];
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("name=\"purpose\"\r\n\r\nfine-tune\r\n"), "{body}");
    assert!(body.contains("name=\"file\"; filename=\"train.jsonl\""), "{body}");
    assert!(body.contains(std::str::from_utf8(&jsonl).expect("utf-8")), "{body}");
}

#[tokio::test]
async fn job_create_status_events_and_cancel() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "validating_files")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "running")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1/events"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "has_more": false, "data": [
            {"object": "fine_tuning.job.event", "id": "ev-3", "created_at": 30, "level": "info", "message": "Step 2/10: training loss=0.9", "type": "metrics", "data": {"step": 2}},
            {"object": "fine_tuning.job.event", "id": "ev-2", "created_at": 20, "level": "info", "message": "Fine-tuning job started", "type": "message"},
            {"object": "fine_tuning.job.event", "id": "ev-1", "created_at": 10, "level": "info", "message": "Validating training file", "type": "message"},
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "cancelled")))
        .mount(&server)
        .await;
    let b = backend(&server, 0);
    let mut request = JobRequest::new("babbage-002", "file-train");
    request.validation_file = Some("file-valid".into());
    request.epochs = Some(3);
    request.batch_size = Some(8);
    request.learning_rate_multiplier = Some(0.1);
    request.suffix = Some("drums".into());
    request.seed = Some(7);
    let created = b.create_job(&request).await.expect("create");
    assert_eq!((created.id.as_str(), created.status), ("ftjob-1", JobStatus::ValidatingFiles));
    let mut sent: Value = requests(&server).await[0].body_json().expect("JSON");
    // The client id that makes creation idempotent (see a_502_on_job_creation_makes_one_job_not_two).
    let metadata = sent.as_object_mut().and_then(|o| o.remove("metadata")).expect("metadata");
    assert!(metadata["fine_drums_client_id"].is_string());
    assert_eq!(
        sent,
        json!({"model": "babbage-002", "training_file": "file-train", "validation_file": "file-valid",
               "suffix": "drums", "seed": 7,
               "hyperparameters": {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.1}})
    );
    assert_eq!(b.job("ftjob-1").await.expect("status").status, JobStatus::Running);
    let all = b.events("ftjob-1", None).await.expect("events");
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ev-1", "ev-2", "ev-3"], "oldest first");
    let newer = b.events("ftjob-1", Some("ev-2")).await.expect("events");
    // A `metrics` event's data come through as typed figures.
    let step = JobEvent::new("ev-3", 30, "info", "Step 2/10: training loss=0.9");
    assert_eq!(newer, [step.with_metrics(fine_drums_llm::Metrics::new(2))]);
    assert_eq!(b.cancel("ftjob-1").await.expect("cancel").status, JobStatus::Cancelled);
}

/// Events beyond one page are read back page by page, each continuing after the last
/// event of the one before, and reading stops at the event asked to read after.
#[tokio::test]
async fn events_are_read_across_pages() {
    let server = MockServer::start().await;
    let event = |n: u64| {
        json!({"object": "fine_tuning.job.event", "id": format!("ev-{n}"), "created_at": n,
               "level": "info", "message": format!("event {n}"), "type": "message"})
    };
    let pages = [
        (None, vec![event(5), event(4)], true),
        (Some("ev-4"), vec![event(3), event(2)], true),
        (Some("ev-2"), vec![event(1)], false),
    ];
    for (after, data, more) in pages {
        let mock = Mock::given(method("GET")).and(path("/v1/fine_tuning/jobs/ftjob-1/events"));
        let mock = match after {
            Some(a) => mock.and(query_param("after", a)),
            None => mock.and(query_param_is_missing("after")),
        };
        mock.respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "has_more": more, "data": data})),
        )
        .mount(&server)
        .await;
    }
    let b = backend(&server, 0);
    let all = b.events("ftjob-1", None).await.expect("events");
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"], "oldest first, all pages");
    assert_eq!(requests(&server).await.len(), 3);
    let newer = b.events("ftjob-1", Some("ev-3")).await.expect("events");
    let ids: Vec<&str> = newer.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ev-4", "ev-5"]);
    assert_eq!(requests(&server).await.len(), 5, "stops at the page holding ev-3");
}

#[test]
fn other_models_get_the_method_shape() {
    let mut request = JobRequest::new("gpt-4o-mini-2024-07-18", "file-train");
    request.epochs = Some(2);
    assert_eq!(
        serde_json::to_value(job_body(&request)).expect("a body"),
        json!({"model": "gpt-4o-mini-2024-07-18", "training_file": "file-train",
               "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}})
    );
    // With no hyperparameters set, neither shape is sent and the service chooses.
    let plain = serde_json::to_value(job_body(&JobRequest::new("davinci-002", "file-train")))
        .expect("a body");
    assert_eq!(plain, json!({"model": "davinci-002", "training_file": "file-train"}));
}

/// Mounts `responses` for GET /v1/fine_tuning/jobs/ftjob-9, one per request, in order.
async fn job_sequence(server: &MockServer, statuses: &[Value]) {
    for (i, body) in statuses.iter().enumerate() {
        let mock = Mock::given(method("GET"))
            .and(path("/v1/fine_tuning/jobs/ftjob-9"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.clone()));
        let mock = if i + 1 < statuses.len() { mock.up_to_n_times(1) } else { mock };
        mock.with_priority(1 + i as u8).mount(server).await;
    }
}

async fn events_mock(server: &MockServer, data: Value) {
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-9/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "has_more": false, "data": data})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn wait_reports_events_and_returns_the_model() {
    let server = MockServer::start().await;
    let mut done = job("ftjob-9", "succeeded");
    done["fine_tuned_model"] = json!("ft:babbage-002:org-drums:drums:9xYz");
    job_sequence(&server, &[job("ftjob-9", "queued"), job("ftjob-9", "running"), done]).await;
    events_mock(&server, json!([
        {"id": "ev-2", "created_at": 2, "level": "info", "message": "The job has successfully completed"},
        {"id": "ev-1", "created_at": 1, "level": "info", "message": "Fine-tuning job started"},
    ]))
    .await;
    let mut seen = Vec::new();
    let model = backend(&server, 0)
        .wait("ftjob-9", &mut |e: &JobEvent| seen.push(e.message.clone()))
        .await
        .expect("succeeded");
    assert_eq!(model, "ft:babbage-002:org-drums:drums:9xYz");
    assert_eq!(
        seen,
        ["Fine-tuning job started", "The job has successfully completed"],
        "each event once"
    );
    let polls = requests(&server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/v1/fine_tuning/jobs/ftjob-9")
        .count();
    assert_eq!(polls, 3);
}

#[tokio::test]
async fn wait_returns_the_failure_the_service_gave() {
    let server = MockServer::start().await;
    let mut failed = job("ftjob-9", "failed");
    failed["error"] = json!({"code": "invalid_training_file", "message": "The file has 3 examples; at least 10 are required.", "param": "training_file"});
    job_sequence(&server, &[job("ftjob-9", "running"), failed]).await;
    events_mock(&server, json!([])).await;
    let err =
        backend(&server, 0).wait("ftjob-9", &mut |_: &JobEvent| {}).await.expect_err("failed");
    assert!(matches!(err, Error::JobFailed { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "fine-tuning job ftjob-9 failed: The file has 3 examples; at least 10 are required. (invalid_training_file)"
    );
}

#[tokio::test]
async fn wait_reports_a_cancelled_job() {
    let server = MockServer::start().await;
    job_sequence(&server, &[job("ftjob-9", "cancelled")]).await;
    events_mock(
        &server,
        json!([{"id": "ev-1", "created_at": 1, "level": "info", "message": "Job cancelled"}]),
    )
    .await;
    let err =
        backend(&server, 0).wait("ftjob-9", &mut |_: &JobEvent| {}).await.expect_err("cancelled");
    assert!(matches!(err, Error::JobCancelled { ref id } if id == "ftjob-9"), "{err:?}");
}

#[tokio::test]
async fn fine_tune_runs_upload_create_wait() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "file-t", "object": "file"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .and(body_partial_json(json!({"training_file": "file-t", "validation_file": "file-t"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-9", "queued")))
        .mount(&server)
        .await;
    let mut done = job("ftjob-9", "succeeded");
    done["fine_tuned_model"] = json!("ft:babbage-002:org:drums:1");
    job_sequence(&server, &[done]).await;
    events_mock(&server, json!([])).await;
    let file = Upload::new("train.jsonl", b"{}\n".to_vec());
    let model = backend(&server, 0)
        .fine_tune(&file, Some(&file), &JobRequest::new("babbage-002", ""), &mut |_: &JobEvent| {})
        .await
        .expect("fine-tuned");
    assert_eq!(model, "ft:babbage-002:org:drums:1");
}

fn rate_limited(headers: &[(&str, &str)], body: &str) -> ResponseTemplate {
    headers
        .iter()
        .fold(ResponseTemplate::new(429).set_body_string(body), |r, (k, v)| r.insert_header(*k, *v))
}

async fn completions_after(server: &MockServer, first: ResponseTemplate, failures: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(first)
        .up_to_n_times(failures)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_json()))
        .with_priority(2)
        .mount(server)
        .await;
}

fn request() -> CompletionRequest {
    CompletionRequest::new("babbage-002", "Kh..h.\n>>>", 64)
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    let server = MockServer::start().await;
    let body = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    completions_after(&server, rate_limited(&[("retry-after", "1")], body), 1).await;
    let started = std::time::Instant::now();
    backend(&server, 2).complete(&request()).await.expect("retried");
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_ms_and_a_non_json_body_is_retried() {
    let server = MockServer::start().await;
    completions_after(
        &server,
        rate_limited(&[("retry-after-ms", "20")], "<html>slow down</html>"),
        2,
    )
    .await;
    backend(&server, 3).complete(&request()).await.expect("retried");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let server = MockServer::start().await;
    let body = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    completions_after(&server, rate_limited(&[("retry-after", "0")], body), 5).await;
    let err = backend(&server, 4).complete(&request()).await.expect_err("no quota");
    assert!(matches!(err, Error::Api { status: 429, attempts: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("You exceeded your current quota"), "{err}");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn bursts_of_500_and_503_are_retried_then_given_up() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    completions_after(&server, ResponseTemplate::new(503).set_body_string("overloaded"), 1).await;
    backend(&server, 4).complete(&request()).await.expect("recovers after 500, 500, 503");
    assert_eq!(requests(&server).await.len(), 4);

    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&down)
        .await;
    let err = backend(&down, 2).complete(&request()).await.expect_err("always down");
    assert!(matches!(err, Error::Api { status: 503, attempts: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("after 3 attempts: HTTP 503: Service Unavailable"), "{err}");
}

#[tokio::test]
async fn a_slow_server_times_out_per_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion_json())
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let mut config = Config::new(ApiKey::new(KEY));
    config.base_url = format!("{}/v1", server.uri());
    config.retry = RetryPolicy::default();
    config.retry.max_retries = 1;
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.timeout = Duration::from_millis(200);
    let err =
        OpenAi::new(config).expect("backend").complete(&request()).await.expect_err("timeout");
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err:?}");
    assert!(
        err.to_string().contains("/v1/completions: no answer within 200ms (2 attempts)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"choices\": [{\"text\": 3"))
        .mount(&server)
        .await;
    let err = backend(&server, 3).complete(&request()).await.expect_err("malformed");
    assert!(matches!(err, Error::Decode { what: "completion", .. }), "{err:?}");
    assert_eq!(requests(&server).await.len(), 1, "a bad body is not retried");
}

#[tokio::test]
async fn a_refused_fine_tune_shows_the_service_message_and_a_hint() {
    let server = MockServer::start().await;
    // The refusal OpenAI gives for a model that can no longer be fine-tuned.
    let refusal = json!({"error": {
        "message": "Model babbage-002 is not available for fine-tuning or does not exist.",
        "type": "invalid_request_error", "param": "model", "code": "model_not_available"}});
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(400).set_body_json(refusal))
        .mount(&server)
        .await;
    let err = backend(&server, 3)
        .create_job(&JobRequest::new("babbage-002", "file-t"))
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.starts_with("the service refused: HTTP 400 (model_not_available): Model babbage-002 is not available for fine-tuning or does not exist.\nhint: babbage-002 and davinci-002 shut down on 2026-09-28"), "{text}");
    assert!(text.contains("gpt-4o-mini-2024-07-18") && text.contains("2027-01-06"), "{text}");
    assert!(text.contains("--example serve") && text.contains("--backend gpt or local"), "{text}");
    assert_eq!(requests(&server).await.len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_missing_model_and_a_non_json_404_are_clear() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(404).set_body_string("404 page not found"))
        .mount(&server)
        .await;
    let mut r = request();
    r.model = "llama3".into();
    let err = backend(&server, 3).complete(&r).await.expect_err("404");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the service refused: HTTP 404: 404 page not found\nhint: the model may not exist"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let mut config = Config::new(ApiKey::new(KEY));
    config.base_url = format!("http://127.0.0.1:{port}/v1");
    config.retry.max_retries = 2;
    config.retry.initial_backoff = Duration::from_millis(1);
    let err =
        OpenAi::new(config).expect("backend").complete(&request()).await.expect_err("refused");
    assert!(matches!(err, Error::Connection { attempts: 3, .. }), "{err:?}");
    // The HTTP client's own report is kept as the source, not flattened into a string.
    let source = std::error::Error::source(&err).expect("the client's error as the source");
    assert!(source.is::<reqwest::Error>(), "{source:?}");
}

#[tokio::test]
async fn the_key_never_shows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key provided: sk-test-****cdef.", "type": "invalid_request_error", "code": "invalid_api_key"}})))
        .mount(&server)
        .await;
    let b = backend(&server, 0);
    let err = b.complete(&request()).await.expect_err("401");
    for text in [format!("{b:?}"), format!("{:?}", b.config()), err.to_string(), format!("{err:?}")]
    {
        assert!(!text.contains(KEY), "{text}");
    }
    assert!(format!("{b:?}").contains("[redacted]"));
}

#[tokio::test]
async fn a_server_with_prompt_logprobs_scores_the_true_continuation() {
    let server = MockServer::start().await;
    let (prompt, truth) = ("kh>>>", "k... ... ... ...\ns... ... ... ...\n");
    // Echoed tokens: the prompt's at offsets 0 and 3, the newline at 5, the continuation's
    // from 6 on; only those count.
    let logprobs = json!({
        "tokens": ["kh", ">>>", "\n", "k...", " s..."],
        "token_logprobs": [null, -1.0, -0.5, -2.0, -1.0],
        "text_offset": [0, 2, 5, 6, 20],
    });
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .and(body_partial_json(json!({
            "model": "drums", "prompt": format!("{prompt}\n{truth}"), "max_tokens": 0,
            "echo": true, "logprobs": 0,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cmpl-2", "object": "text_completion", "created": 1, "model": "drums",
            "choices": [{"text": "", "index": 0, "logprobs": logprobs, "finish_reason": "length"}],
        })))
        .mount(&server)
        .await;
    let nll = backend(&server, 0).nll_per_bar("drums", prompt, truth).await.expect("scored");
    assert_eq!(nll, Some(1.5), "(2.0 + 1.0) nats over 2 bars");
    // A server that returns no log-probabilities cannot score: None, not a number.
    let quiet = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_json()))
        .mount(&quiet)
        .await;
    assert_eq!(backend(&quiet, 0).nll_per_bar("drums", prompt, truth).await.expect("ok"), None);
}

// ---- The audit of December 2026: one test per finding. ----

/// A 502 on job creation after the service made the job: the retry finds it by the client
/// id in its metadata, so there is one job (one POST), not two.
#[tokio::test]
async fn a_502_on_job_creation_makes_one_job_not_two() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .mount(&server)
        .await;
    // The service lists the job it made, under the client id the request carried.
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(|req: &Request| {
            let id = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "metadata[fine_drums_client_id]")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let mut j = job("ftjob-made", "queued");
            j["metadata"] = json!({ "fine_drums_client_id": id });
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [j], "has_more": false}))
        })
        .mount(&server)
        .await;
    let b = backend(&server, 3);
    let created = b.create_job(&JobRequest::new("babbage-002", "file-train")).await.expect("a job");
    assert_eq!(created.id, "ftjob-made");
    let posts: Vec<Request> =
        requests(&server).await.into_iter().filter(|r| r.method.as_str() == "POST").collect();
    assert_eq!(posts.len(), 1, "one POST: the retry looked the job up instead");
    let body: Value = serde_json::from_slice(&posts[0].body).expect("JSON");
    assert!(
        body["metadata"]["fine_drums_client_id"].as_str().is_some_and(|s| s.starts_with("fd-"))
    );
}

/// A server that ignores the metadata filter lists other jobs: none of them is taken for
/// ours, and the creation is retried.
#[tokio::test]
async fn a_job_without_our_client_id_is_not_taken_for_ours() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-new", "queued")))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [job("ftjob-someone-elses", "running")], "has_more": false}),
        ))
        .mount(&server)
        .await;
    let b = backend(&server, 3);
    let created = b.create_job(&JobRequest::new("babbage-002", "file-train")).await.expect("a job");
    assert_eq!(created.id, "ftjob-new");
}

/// Mistral writes statuses in capitals; OpenAI pauses jobs. Both are understood, and a job
/// that stays paused (or in a status nobody knows) ends the wait with a clear error.
#[tokio::test]
async fn uppercase_paused_and_unknown_statuses() {
    let server = MockServer::start().await;
    let mut done = job("ftjob-9", "SUCCESS");
    done["fine_tuned_model"] = json!("ft:mistral:drums");
    job_sequence(&server, &[job("ftjob-9", "QUEUED"), job("ftjob-9", "RUNNING"), done]).await;
    events_mock(&server, json!([])).await;
    let b = backend(&server, 0);
    assert_eq!(b.wait("ftjob-9", &mut |_| {}).await.expect("done"), "ft:mistral:drums");
    assert_eq!(JobStatus::parse("FAILED_VALIDATION"), JobStatus::Failed);
    assert_eq!(JobStatus::parse("CANCELLATION_REQUESTED"), JobStatus::Cancelling);
    assert_eq!(serde_json::to_value(JobStatus::Paused).expect("JSON"), json!("paused"));
    for status in ["paused", "mystery"] {
        let server = MockServer::start().await;
        job_sequence(&server, &[job("ftjob-9", status)]).await;
        events_mock(&server, json!([])).await;
        let mut config = Config::new(ApiKey::new(KEY));
        config.base_url = format!("{}/v1", server.uri());
        config.poll_interval = Duration::from_millis(5);
        config.status_patience = Duration::from_millis(60);
        let b = OpenAi::new(config).expect("a backend");
        let err = b.wait("ftjob-9", &mut |_| {}).await.expect_err("never ends");
        match &err {
            Error::JobStuck { status: s, .. } => assert_eq!(s, status),
            other => panic!("{other:?}"),
        }
        let hint = if status == "paused" { "resume it there" } else { "does not know" };
        assert!(err.to_string().contains(hint), "{err}");
    }
}

/// llama.cpp answers 500 to n > 1: the samples are asked one at a time (the refusal is not
/// retried as a fault), and from then on directly.
#[tokio::test]
async fn n_falls_back_to_single_requests_where_a_server_refuses_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .and(body_partial_json(json!({"n": 3})))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"message": "Only one completion choice is allowed", "type": "server_error"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .and(body_partial_json(json!({"n": 1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"text": "\nKh..h. Sh..h. Kh..Kh. Sh..h.\n", "index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 12},
        })))
        .mount(&server)
        .await;
    let b = backend(&server, 4);
    let mut r = request();
    (r.n, r.seed) = (3, Some(40));
    let c = b.complete(&r).await.expect("three samples");
    assert_eq!(c.choices.len(), 3);
    assert_eq!(c.usage.completion_tokens, 36);
    let bodies = |reqs: Vec<Request>| -> Vec<Value> {
        reqs.iter().map(|r| serde_json::from_slice(&r.body).expect("JSON")).collect()
    };
    let sent = bodies(requests(&server).await);
    assert_eq!(sent.iter().filter(|b| b["n"] == 3).count(), 1, "the refusal is not retried");
    let seeds: Vec<&Value> = sent.iter().filter(|b| b["n"] == 1).map(|b| &b["seed"]).collect();
    assert_eq!(seeds, [&json!(40), &json!(41), &json!(42)], "a seed per sample");
    // Next time, straight to single requests.
    b.complete(&r).await.expect("three samples");
    assert_eq!(bodies(requests(&server).await).iter().filter(|b| b["n"] == 3).count(), 1);
}

/// Ollama ignores `n`: the missing samples are asked for one at a time.
#[tokio::test]
async fn a_server_that_ignores_n_is_asked_for_the_rest() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"text": "\nKh..h. Sh..h. Kh..Kh. Sh..h.\n", "index": 0, "finish_reason": "stop"}],
        })))
        .mount(&server)
        .await;
    let b = backend(&server, 0);
    let mut r = request();
    r.n = 2;
    assert_eq!(b.complete(&r).await.expect("two samples").choices.len(), 2);
    assert_eq!(requests(&server).await.len(), 2);
}

/// `x-should-retry` decides, both ways; a wait beyond the cap is not waited out.
#[tokio::test]
async fn x_should_retry_and_waits_beyond_the_cap() {
    for (status, header_value, expected) in [(400u16, "true", 2usize), (503, "false", 1)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/completions"))
            .respond_with(
                ResponseTemplate::new(status).insert_header("x-should-retry", header_value),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/completions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion_json()))
            .with_priority(2)
            .mount(&server)
            .await;
        let result = backend(&server, 3).complete(&request()).await;
        assert_eq!(
            requests(&server).await.len(),
            expected,
            "{status} with x-should-retry: {header_value}"
        );
        assert_eq!(result.is_ok(), expected == 2);
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "600"))
        .mount(&server)
        .await;
    let err = backend(&server, 3).complete(&request()).await.expect_err("not waited out");
    assert_eq!(requests(&server).await.len(), 1);
    assert!(err.to_string().contains("retry after 600 s"), "{err}");
}

/// The key goes over https, or plain http to this machine; elsewhere it is withheld unless
/// allowed. Organisation and project headers go only when configured.
#[tokio::test]
async fn the_key_stays_off_plain_http_to_other_hosts() {
    use fine_drums_openai::key_safe_for;
    for (url, safe) in [
        ("https://api.openai.com/v1", true),
        ("https://gpu-box.lan/v1", true),
        ("http://127.0.0.1:8000/v1", true),
        ("http://localhost:8000/v1", true),
        ("http://[::1]:8000/v1", true),
        ("http://192.168.1.20:8000/v1", false),
        ("http://gpu-box.lan/v1", false),
        ("ftp://127.0.0.1/v1", false),
    ] {
        assert_eq!(key_safe_for(url), safe, "{url}");
    }
    let with = |url: &str, allow: bool| {
        let mut c = Config::new(ApiKey::new(KEY));
        (c.base_url, c.allow_insecure_key) = (url.to_string(), allow);
        OpenAi::new(c).expect("a backend").key_withheld()
    };
    assert!(with("http://192.168.1.20:8000/v1", false));
    assert!(!with("http://192.168.1.20:8000/v1", true), "the user said so");
    assert!(!with("https://gpu-box.lan/v1", false));
    // On loopback the key is sent; no organisation or project header unless configured.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_json()))
        .mount(&server)
        .await;
    let mut c = Config::new(ApiKey::new(KEY));
    c.base_url = format!("{}/v1", server.uri());
    OpenAi::new(c).expect("a backend").complete(&request()).await.expect("sent with the key");
    let sent = &requests(&server).await[0];
    assert!(sent.headers.get("openai-organization").is_none());
    assert!(sent.headers.get("openai-project").is_none());
    // No key at all is fine for a server other than OpenAI's, and an error for OpenAI's.
    let mut c = Config::new(ApiKey::new(KEY));
    (c.base_url, c.api_key) = (format!("{}/v1", server.uri()), None);
    assert!(OpenAi::new(c).is_ok());
    let mut c = Config::new(ApiKey::new(KEY));
    c.api_key = None;
    assert!(matches!(OpenAi::new(c), Err(Error::MissingKey)));
}

/// A base URL's `user:password@` and query string show nowhere: not in Debug, not in errors.
#[tokio::test]
async fn base_urls_are_redacted() {
    let mut c = Config::new(ApiKey::new(KEY));
    c.base_url = "http://drummer:s3cret@127.0.0.1:9/v1?token=t0ken".into();
    c.retry.max_retries = 0;
    let b = OpenAi::new(c).expect("a backend");
    let err = b.complete(&request()).await.expect_err("nothing listens on port 9");
    // The error's chain too: the HTTP client's own report drops the URL.
    let chain = std::error::Error::source(&err).map(|s| format!("{s} {s:?}")).unwrap_or_default();
    for text in
        [format!("{:?}", b.config()), format!("{b:?}"), err.to_string(), format!("{err:?}"), chain]
    {
        assert!(!text.contains("s3cret") && !text.contains("t0ken"), "{text}");
    }
    assert!(format!("{:?}", b.config()).contains("[redacted]@127.0.0.1"));
}

/// A chat model is completed through /v1/chat/completions: the chat files' system message,
/// the prompt's bars without the separator, and the reply read back as a completion.
#[tokio::test]
async fn chat_models_go_to_chat_completions() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Kh..h. Sh..h. Kh..Kh. Sh..h."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12},
        })))
        .mount(&server)
        .await;
    let b = backend(&server, 0);
    let mut r = request();
    r.model = "ft:gpt-4o-mini-2024-07-18:org:drums:abc".into();
    let c = b.complete(&r).await.expect("a chat reply");
    assert_eq!(c.choices[0].text, "\nKh..h. Sh..h. Kh..Kh. Sh..h.\n");
    let body: Value = serde_json::from_slice(&requests(&server).await[0].body).expect("JSON");
    assert_eq!(body["messages"][0]["role"], "system");
    let user = body["messages"][1]["content"].as_str().expect("the user's bars");
    assert!(!user.ends_with(">>>") && r.prompt.starts_with(user), "{user}");
    assert_eq!(body["max_tokens"], json!(r.max_tokens), "not OpenAI's: max_tokens");
    // Sent to /v1/completions anyway, OpenAI's refusal gets a hint towards the chat endpoint.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/completions"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "message": "This is a chat model and not supported in the v1/completions endpoint. Did you mean to use v1/chat/completions?",
            "type": "invalid_request_error", "code": null}})))
        .mount(&server)
        .await;
    let mut c = Config::new(ApiKey::new(KEY));
    c.base_url = format!("{}/v1", server.uri());
    c.endpoint = fine_drums_llm::Endpoint::Completions;
    let err = OpenAi::new(c).expect("a backend").complete(&r).await.expect_err("404");
    assert!(err.to_string().contains("--endpoint chat"), "{err}");
}
