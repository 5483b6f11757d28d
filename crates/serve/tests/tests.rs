//! The server over real HTTP on 127.0.0.1: the project's own OpenAI backend drives the whole
//! flow (upload, job, events, model, continue), and raw requests check the API's edges.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fine_drums_codec::pattern::rock_groove;
use fine_drums_continue::{ContinueOptions, continue_midi};
use fine_drums_dataset::export::{chat_jsonl, legacy_jsonl};
use fine_drums_dataset::{Entry, Manifest, Prepared, Preparer, Split, cl100k};
use fine_drums_llm::{Complete, FineTune, JobEvent, JobRequest, Upload};
use fine_drums_openai::{ApiKey, Config, OpenAi};
use serde_json::{Value, json};

mod hostile;

/// A fresh data folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Starts a server on a free port of 127.0.0.1 over `data`; its address.
async fn start(options: fine_drums_serve::Options) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(fine_drums_serve::serve(listener, options));
    addr
}

fn options(data: &std::path::Path) -> fine_drums_serve::Options {
    let mut o = fine_drums_serve::Options::new(data);
    o.train.preset = "tiny".into();
    o
}

/// The prepared examples of grooves made by code.
fn prepared() -> Prepared {
    let tokens = cl100k().expect("tokenizer");
    let preparer = Preparer::default();
    let mut p = Prepared::default();
    for i in 0..6 {
        let g = rock_groove(32, 80.0 + f64::from(i) * 7.0).expect("rock");
        let midi = fine_drums_codec::midi::write(&g, &Default::default()).expect("write");
        preparer
            .add(&mut p, &Entry::new(format!("{i}.mid"), Split::Train), &midi, &tokens)
            .expect("a generated groove reads");
    }
    p
}

fn client(addr: SocketAddr) -> OpenAi {
    let mut config = Config::new(ApiKey::new("unused"));
    config.base_url = format!("http://{addr}/v1");
    config.poll_interval = Duration::from_millis(50);
    OpenAi::new(config).expect("a client")
}

/// The legacy flow of the paper's scripts, through the project's own OpenAI backend: upload,
/// a job on babbage-002 and one on davinci-002, their events, the models, and a continuation
/// with each that decodes strictly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_flow_runs_end_to_end_over_http() {
    let data = scratch("flow");
    let addr = start(options(&data)).await;
    let api = client(addr);
    let jsonl = legacy_jsonl(prepared().split(Split::Train));
    let file = api.upload(&Upload::new("train.jsonl", jsonl.into_bytes())).await.expect("upload");
    assert!(file.starts_with("file-"), "{file}");
    let manifest = Manifest::of_settings(&Preparer::default());
    let midi =
        fine_drums_codec::midi::write(&rock_groove(4, 100.0).expect("rock"), &Default::default())
            .expect("write");
    for base in ["babbage-002", "davinci-002"] {
        let mut request = JobRequest::new(base, file.clone());
        request.epochs = Some(2);
        request.suffix = Some("test".into());
        let job = api.create_job(&request).await.expect("a job");
        let mut events: Vec<JobEvent> = Vec::new();
        let model = api.wait(&job.id, &mut |e| events.push(e.clone())).await.expect("trained");
        assert!(model.starts_with(&format!("ft:{base}:fine-drums:test:")), "{model}");
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert!(
            messages.first().is_some_and(|m| m.starts_with("Created fine-tuning job")),
            "{messages:?}"
        );
        assert!(
            messages.last().is_some_and(|m| *m == "The job has successfully completed"),
            "{messages:?}"
        );
        // Every event once, in order, though the client read them a page at a time.
        let again = api.events(&job.id, None).await.expect("events");
        assert_eq!(again.len(), events.len());
        let mut options = ContinueOptions::new(&model);
        (options.bars, options.seed) = (4, Some(7));
        let out = continue_midi(&midi, &manifest, &api, &options).await.expect("continued");
        assert_eq!(out.report.bars_kept, 4, "{base}: {:?}", out.report);
        assert!(out.report.dropped.is_empty(), "{base}: every bar decodes: {:?}", out.report);
        // The model scores the drummer's text: echo with logprobs.
        let nll = api
            .nll_per_bar(
                &model,
                "KhC..h. Sh..h. Kh..Kh. Sh..h.>>>",
                "KhC..h. Sh..h. Kh..Kh. Sh..h.",
            )
            .await
            .expect("scored");
        assert!(nll.is_some_and(|n| n.is_finite() && n >= 0.0), "{nll:?}");
    }
    let models =
        json_of(http().get(format!("http://{addr}/v1/models")).send().await.expect("models")).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids.iter().filter(|i| i.starts_with("ft:")).count(), 2, "{ids:?}");
    let _ = std::fs::remove_dir_all(&data);
}

/// A plain HTTP client (reqwest is built without a default TLS provider: ring is the
/// workspace's).
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A response's body as JSON (`Null` when it is not JSON).
async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.expect("a body");
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: impl Into<reqwest::Body>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut r = http()
        .post(format!("http://{addr}/v1/{path}"))
        .body(body)
        .header("content-type", "application/json");
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let r = r.send().await.expect("a response");
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// The drum GPT takes `suffix` (an infill) and the `drums` extension; the Markov model
/// refuses them with a 400 that says which model does take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drum_gpt_is_steered_and_infills_over_http() {
    let data = scratch("steer");
    let addr = start(options(&data)).await;
    let groove = "Kh..h. Sh..h. Kh..Kh. Sh..h.\n";
    let steered = json!({ "model": "davinci-002", "prompt": format!("{groove}{groove}>>>"),
        "max_tokens": 400, "seed": 5, "suffix": groove,
        "drums": { "style": "rock", "intensity": [3, 3], "fills": [false, true], "bars": 2 } });
    let (status, v) = post(addr, "completions", steered.to_string(), None).await;
    assert_eq!(status, 200, "{v}");
    let text = v["choices"][0]["text"].as_str().expect("a text");
    assert_eq!(text.lines().filter(|l| !l.trim().is_empty()).count(), 2, "{text:?}");
    let (again, w) = (post(addr, "completions", steered.to_string(), None).await).clone();
    assert_eq!((again, &w["choices"]), (200, &v["choices"]), "the same seed, the same bars");
    let unknown = json!({ "model": "davinci-002", "prompt": format!("{groove}>>>"),
        "drums": { "style": "zydeco" } });
    let (status, v) = post(addr, "completions", unknown.to_string(), None).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("funk")), "{v}");
    let markov = json!({ "model": "babbage-002", "prompt": format!("{groove}>>>"),
        "drums": { "fills": [true] } });
    let (status, v) = post(addr, "completions", markov.to_string(), None).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("drum GPT")), "{v}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Bad requests get OpenAI's error shape and the right status; with a key, no request
/// without it gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_openais_shape_and_the_key_is_enforced() {
    let data = scratch("errors");
    let mut o = options(&data);
    o.key = Some("sesame".into());
    (o.max_body, o.limits.json_body) = (4096, 4096);
    let addr = start(o).await;
    let complete = |model: &str| {
        json!({ "model": model, "prompt": "KhC..h. Sh..h. Kh..Kh. Sh..h.>>>", "max_tokens": 40 })
            .to_string()
    };
    let (status, body) = post(addr, "completions", complete("babbage-002"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")), "{body}");
    let (status, body) = post(addr, "completions", complete("babbage-002"), Some("wrong")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(addr, "completions", complete("babbage-002"), Some("sesame")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["text"].as_str().is_some_and(|t| t.starts_with('\n')), "{body}");
    let (status, body) = post(addr, "completions", complete("ft:nothing"), Some("sesame")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")), "{body}");
    let (status, body) = post(addr, "completions", "{not json", Some("sesame")).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| m.contains("not valid JSON")),
        "{body}"
    );
    let (status, body) = post(
        addr,
        "completions",
        json!({"model": "babbage-002", "prompt": "x>>>", "temperature": 9}).to_string(),
        Some("sesame"),
    )
    .await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("temperature")), "{body}");
    let (status, _) = post(addr, "completions", "x".repeat(10_000), Some("sesame")).await;
    assert_eq!(status, 413, "a body over the limit");
    let (status, body) = post(
        addr,
        "fine_tuning/jobs",
        json!({"model": "gpt-5", "training_file": "file-x"}).to_string(),
        Some("sesame"),
    )
    .await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("model")), "{body}");
    let (status, body) = post(
        addr,
        "fine_tuning/jobs",
        json!({"model": "babbage-002", "training_file": "file-x"}).to_string(),
        Some("sesame"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let r = http()
        .get(format!("http://{addr}/v1/nowhere"))
        .bearer_auth("sesame")
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status().as_u16(), 404);
    let _ = std::fs::remove_dir_all(&data);
}

/// A chat-format file trains through a chat model's name, and chat completions answer with
/// bars alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_files_train_and_chat_completions_answer() {
    let data = scratch("chat");
    let addr = start(options(&data)).await;
    let api = client(addr);
    let p = prepared();
    let template = fine_drums_dataset::Template::default();
    let jsonl = chat_jsonl(&template, p.split(Split::Train));
    let file =
        api.upload(&Upload::new("train.chat.jsonl", jsonl.into_bytes())).await.expect("upload");
    let job =
        api.create_job(&JobRequest::new("gpt-4o-mini-2024-07-18", file)).await.expect("a job");
    let model = api.wait(&job.id, &mut |_| {}).await.expect("trained");
    let bar = "KhC..h. Sh..h. Kh..Kh. Sh..h.";
    let body = json!({ "model": model, "messages": [
        { "role": "system", "content": fine_drums_dataset::export::system_message(&template) },
        { "role": "user", "content": format!("{bar}\n{bar}") },
    ], "max_completion_tokens": 200, "seed": 3 });
    let (status, reply) = post(addr, "chat/completions", body.to_string(), None).await;
    assert_eq!(status, 200, "{reply}");
    let content = reply["choices"][0]["message"]["content"].as_str().expect("content");
    let ctx = fine_drums_codec::Context::default();
    let decoded = template.codec.format.decode(content, &ctx).expect("bars that decode strictly");
    assert!(!decoded.bars.is_empty(), "{content}");
    // The project's own client sends a chat model to the chat endpoint by itself.
    let manifest = Manifest::of_settings(&Preparer::default());
    let midi =
        fine_drums_codec::midi::write(&rock_groove(4, 100.0).expect("rock"), &Default::default())
            .expect("write");
    let mut options = ContinueOptions::new(&model);
    (options.bars, options.seed) = (4, Some(2));
    let out = continue_midi(&midi, &manifest, &api, &options).await.expect("continued");
    assert_eq!(out.report.bars_kept, 4, "{:?}", out.report);
    let _ = std::fs::remove_dir_all(&data);
}

/// 200 completion requests at once: every one answered, none lost. The latencies are printed
/// (run with --nocapture), never asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_completions_all_complete() {
    let data = scratch("load");
    let mut o = options(&data);
    // The last of 200 requests waits for the 199 before it: on a busy 2-core machine that
    // can pass the default deadline, which is not what this test is about.
    o.limits.deadline = Duration::from_secs(1800);
    let addr = start(o).await;
    let client = http();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let (client, url) = (client.clone(), format!("http://{addr}/v1/completions"));
        // Both kinds of model at once; a quarter on the drum GPT, whose real work (about 0.3 s
        // a completion in a debug build) is not what this test is about.
        let model = if i % 4 == 0 { "davinci-002" } else { "babbage-002" };
        tasks.push(tokio::spawn(async move {
            let body = json!({ "model": model, "prompt": "KhC..h. Sh..h. Kh..Kh. Sh..h.>>>", "max_tokens": 60, "seed": i });
            let t = Instant::now();
            let r = client.post(url).body(body.to_string()).send().await.expect("a response");
            let status = r.status().as_u16();
            let v = json_of(r).await;
            (status, v, t.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        let (status, v, elapsed) = t.await.expect("a task");
        assert_eq!(status, 200, "{v}");
        assert!(v["choices"][0]["text"].as_str().is_some_and(|t| t.contains('.')), "{v}");
        latencies.push(elapsed);
    }
    assert_eq!(latencies.len(), 200);
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "200 concurrent completions in {:.2} s: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        started.elapsed().as_secs_f64(),
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// A record the server did not write stops it at start, naming the file.
#[tokio::test]
async fn a_corrupt_record_is_named_at_start() {
    let data = scratch("corrupt");
    std::fs::create_dir_all(data.join("jobs")).expect("a folder");
    std::fs::write(data.join("jobs/ftjob-1.json"), b"{\"id\": 3").expect("write");
    let err = fine_drums_serve::router(options(&data)).expect_err("a corrupt job");
    assert!(err.to_string().contains("ftjob-1.json"), "{err}");
    let _ = std::fs::remove_dir_all(&data);
}
