//! The server against hostile or unlucky clients (issue 29): requests that would take all
//! the memory or time, clients that leave, idle and slow connections, uploads over the limit,
//! jobs cancelled mid-way, faults on disk, and the smaller leaks. Every loop is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{http, json_of, options, post, scratch, start};

const BAR: &str = "KhC..h. Sh..h. Kh..Kh. Sh..h.\n";

fn completion(model: &str, n: u32, seed: u64) -> String {
    json!({ "model": model, "prompt": format!("{BAR}>>>"), "n": n, "seed": seed, "max_tokens": 400 })
        .to_string()
}

/// `n` is served in chunks that fit the request's memory, with the same samples as in one
/// call; a request of which not one sample fits gets a 400 that says why (item 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_come_in_chunks_that_fit_the_budget() {
    let roomy = scratch("chunks-roomy");
    let whole = start(options(&roomy)).await;
    let tight = scratch("chunks-tight");
    let mut o = options(&tight);
    // The small drum GPT costs 16 MiB a sample (and 8 a call): two samples a chunk.
    o.limits.request_memory = 40 << 20;
    let chunked = start(o).await;
    let (status, one_call) =
        post(whole, "completions", completion("davinci-002", 5, 11), None).await;
    assert_eq!(status, 200, "{one_call}");
    let (status, chunks) =
        post(chunked, "completions", completion("davinci-002", 5, 11), None).await;
    assert_eq!(status, 200, "{chunks}");
    let texts = |v: &Value| -> Vec<String> {
        v["choices"].as_array().expect("choices").iter().map(|c| c["text"].to_string()).collect()
    };
    assert_eq!(texts(&chunks).len(), 5);
    assert_eq!(texts(&chunks), texts(&one_call), "the same samples, chunk by chunk");

    let tiny = scratch("chunks-tiny");
    let mut o = options(&tiny);
    o.limits.request_memory = 8 << 20;
    let refusing = start(o).await;
    let (status, body) = post(refusing, "completions", completion("davinci-002", 1, 1), None).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("MiB") && message.contains("--request-memory-mib"), "{message}");
    for d in [roomy, tight, tiny] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A server with one core for model work and no queue: while a call holds the core, any
/// other model call (scoring too) gets a 429 with Retry-After at once.
fn one_core(name: &str) -> (std::path::PathBuf, fine_drums_serve::Options) {
    let data = scratch(name);
    let mut o = options(&data);
    (o.limits.cores, o.limits.queue) = (1, 0);
    (data, o)
}

/// A long request: 16 prompts of 128 samples each on the drum GPT (minutes of work).
fn long_request() -> String {
    json!({ "model": "davinci-002", "prompt": vec![format!("{BAR}>>>"); 16], "n": 128, "seed": 3 })
        .to_string()
}

/// Sends a short request until it is admitted (200), up to `tries` times 100 ms apart;
/// how many 429s (or 503s: on a slow machine, the first request loads the model and may pass
/// a short deadline) came first, or `None` if it never was.
async fn until_admitted(addr: SocketAddr, tries: usize) -> Option<usize> {
    for i in 0..tries {
        let (status, body) = post(addr, "completions", completion("babbage-002", 1, 1), None).await;
        match status {
            200 => return Some(i),
            429 | 503 => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("{status}: {body}"),
        }
    }
    None
}

/// Opens a connection and sends `body` to the completions route without reading the answer.
async fn send_and_hold(addr: SocketAddr, body: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("a connection");
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(body.as_bytes()).await.expect("body");
    s
}

/// A client that leaves stops its work: the core it held is free again at once, where the
/// work would have gone on for minutes (item 2). Scoring waits its turn like any model call
/// (item 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_stops_its_work_and_scoring_is_admitted_too() {
    let (data, o) = one_core("leave");
    let addr = start(o).await;
    // The model is loaded before the clock matters.
    assert!(until_admitted(addr, 600).await.is_some(), "the model loads");
    let mut held = send_and_hold(addr, &long_request()).await;
    // Once it holds the core, a short request is refused with a 429 and Retry-After. A short
    // request that came first may have taken the core, and the long one been refused (no
    // queue): then its answer is waiting on its connection, and it is sent again.
    let mut busy = None;
    for _ in 0..600 {
        let r = http()
            .post(format!("http://{addr}/v1/completions"))
            .body(completion("davinci-002", 1, 1))
            .send()
            .await
            .expect("a response");
        if r.status() == 429 {
            busy = Some(r.headers().get("retry-after").cloned());
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(50), held.read(&mut buf)).await
        {
            let n = read.unwrap_or(0);
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 429") || n == 0,
                "the long request was answered: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            held = send_and_hold(addr, &long_request()).await;
        }
    }
    let retry = busy.expect("a 429 while the long request works");
    assert_eq!(retry.and_then(|v| v.to_str().ok().map(String::from)).as_deref(), Some("1"));
    // Scoring is a model call like the others.
    let scoring = json!({ "model": "davinci-002", "prompt": format!("{BAR}>>>\n{BAR}"),
                          "echo": true, "logprobs": 0, "max_tokens": 0 });
    let (status, body) = post(addr, "completions", scoring.to_string(), None).await;
    assert_eq!(status, 429, "scoring while the core is taken: {body}");
    // The client leaves; its work stops within a model step, so the core is free again
    // (the loop stops after about 20 s; the work would take minutes).
    drop(held);
    assert!(until_admitted(addr, 200).await.is_some(), "the work went on after its client left");
    let _ = std::fs::remove_dir_all(&data);
}

/// Past the deadline a request gets a 503 in OpenAI's shape, and its work stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_stopped() {
    let (data, mut o) = one_core("deadline");
    o.limits.deadline = Duration::from_secs(2);
    let addr = start(o).await;
    assert!(until_admitted(addr, 600).await.is_some(), "the model loads");
    let (status, body) = post(addr, "completions", long_request(), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("timeout")), "{body}");
    assert!(until_admitted(addr, 200).await.is_some(), "the work went on past the deadline");
    let _ = std::fs::remove_dir_all(&data);
}

/// Idle connections are closed after the header timeout, and 200 of them do not keep a
/// normal request from its answer (item 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_do_not_starve_others() {
    let data = scratch("idle");
    let mut o = options(&data);
    o.limits.header_timeout = Duration::from_secs(1);
    let addr = start(o).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("a connection"));
    }
    // A slow client: half a request line, then nothing.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("a connection");
    slow.write_all(b"GET /v1/mod").await.expect("a few bytes");
    let (status, body) = post(addr, "completions", completion("babbage-002", 1, 1), None).await;
    assert_eq!(status, 200, "{body}");
    // Both kinds are closed by the server (read gives the end of the stream, or a 408).
    for s in [&mut idle[0], &mut slow] {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        let n = read.expect("closed by the server before 20 s").unwrap_or(0);
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&buf));
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// A job cancelled while its file is validated stays cancelled: it is never queued, run or
/// succeeded after (item 5), for the Markov model and the drum GPT alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_stays_cancelled() {
    let data = scratch("cancel");
    let addr = start(options(&data)).await;
    // A file big enough that validating it takes a while.
    let line = json!({ "prompt": format!("{}>>>", BAR.repeat(4)), "completion": format!("\n{}<<<", BAR.repeat(14)) });
    let jsonl = format!("{line}\n").repeat(20_000);
    let form = reqwest::multipart::Form::new()
        .text("purpose", "fine-tune")
        .part("file", reqwest::multipart::Part::bytes(jsonl.into_bytes()).file_name("big.jsonl"));
    let r = http().post(format!("http://{addr}/v1/files")).multipart(form).send().await;
    let file = json_of(r.expect("an upload")).await;
    let file = file["id"].as_str().expect("a file id").to_string();
    for model in ["babbage-002", "davinci-002"] {
        let body = json!({ "model": model, "training_file": file }).to_string();
        let (status, job) = post(addr, "fine_tuning/jobs", body, None).await;
        assert_eq!(status, 200, "{job}");
        let id = job["id"].as_str().expect("an id").to_string();
        let get = |path: String| async move {
            json_of(http().get(format!("http://{addr}/v1/{path}")).send().await.expect("get")).await
        };
        // Cancelled once its file is being validated.
        for _ in 0..200 {
            let events = get(format!("fine_tuning/jobs/{id}/events")).await;
            if events.to_string().contains("Validating training file") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, body) = post(addr, &format!("fine_tuning/jobs/{id}/cancel"), "", None).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");
        // Watched for 3 s: it stays cancelled, with no model.
        for _ in 0..30 {
            let job = get(format!("fine_tuning/jobs/{id}")).await;
            assert_eq!(job["status"], "cancelled", "{model}: {job}");
            assert!(job["fine_tuned_model"].is_null(), "{job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// Uploads over the limit get a 413, whether the length is given or found while streaming,
/// and leave no file behind (item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_limit_get_413_and_leave_nothing() {
    let data = scratch("upload");
    let mut o = options(&data);
    o.max_body = 64 << 10;
    let addr = start(o).await;
    let form = || {
        reqwest::multipart::Form::new().text("purpose", "fine-tune").part(
            "file",
            reqwest::multipart::Part::bytes(vec![b'{'; 256 << 10]).file_name("big.jsonl"),
        )
    };
    // With a length: refused from it, and the client reads the 413 (not a reset).
    let r = http().post(format!("http://{addr}/v1/files")).multipart(form()).send().await;
    let r = r.expect("a 413, not a reset connection");
    assert_eq!(r.status(), 413);
    let body = json_of(r).await;
    assert!(body["error"]["message"].as_str().is_some(), "{body}");
    // Without one (chunked): refused once the streamed part passes the limit.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("a connection");
    let head = "POST /v1/files HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: multipart/form-data; boundary=B\r\n\r\n";
    s.write_all(head.as_bytes()).await.expect("head");
    let chunk = |bytes: &[u8]| {
        let mut c = format!("{:x}\r\n", bytes.len()).into_bytes();
        c.extend_from_slice(bytes);
        c.extend_from_slice(b"\r\n");
        c
    };
    let part =
        "--B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n";
    let mut sent = chunk(part.as_bytes());
    for _ in 0..16 {
        sent.extend(chunk(&[b'x'; 8 << 10]));
    }
    // The server may answer before it has read all of it: what it answers is what counts.
    let _ = s.write_all(&sent).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let left: Vec<_> = std::fs::read_dir(data.join("files")).expect("files").collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Every status has OpenAI's error shape (405, 414, 431 too); no absolute path reaches a
/// client; `suffix` and `metadata` are checked as OpenAI documents them; a babbage-002 job on
/// a file with no bar fails as a davinci-002 one does (item 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_openais_shape_and_no_server_path() {
    let data = scratch("shape");
    let addr = start(options(&data)).await;
    let client = http();
    let shaped = |v: &Value| v["error"]["message"].as_str().is_some();
    let r = client.delete(format!("http://{addr}/v1/completions")).send().await.expect("405");
    assert_eq!(r.status(), 405);
    assert!(shaped(&json_of(r).await));
    let long = "a".repeat(20 << 10);
    let r = client.get(format!("http://{addr}/v1/models?x={long}")).send().await.expect("414");
    assert_eq!(r.status(), 414);
    assert!(shaped(&json_of(r).await));
    let r = client.get(format!("http://{addr}/v1/models")).header("x-big", "b".repeat(100 << 10));
    let r = r.send().await.expect("431");
    assert_eq!(r.status(), 431);
    assert!(shaped(&json_of(r).await));

    // A file with no bar: both trainers refuse it.
    let form = reqwest::multipart::Form::new()
        .text("purpose", "fine-tune")
        .part("file", reqwest::multipart::Part::bytes(b"\n".to_vec()).file_name("empty.jsonl"));
    let file = json_of(
        client
            .post(format!("http://{addr}/v1/files"))
            .multipart(form)
            .send()
            .await
            .expect("upload"),
    )
    .await;
    let file = file["id"].as_str().expect("an id").to_string();
    for (field, value) in [
        ("suffix", json!("a/b")),
        ("suffix", json!("..")),
        ("suffix", json!("x\ny")),
        ("suffix", json!("nul\u{0}")),
        (
            "metadata",
            json!(
                (0..17).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()
            ),
        ),
        ("metadata", json!({ "k": "v".repeat(513) })),
    ] {
        let mut body = json!({ "model": "babbage-002", "training_file": file });
        body[field] = value;
        let (status, body) = post(addr, "fine_tuning/jobs", body.to_string(), None).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some(field)), "{body}");
    }

    for model in ["babbage-002", "davinci-002"] {
        let body = json!({ "model": model, "training_file": file }).to_string();
        let (_, job) = post(addr, "fine_tuning/jobs", body, None).await;
        let id = job["id"].as_str().expect("an id").to_string();
        let mut last = Value::Null;
        for _ in 0..100 {
            let r = client.get(format!("http://{addr}/v1/fine_tuning/jobs/{id}")).send().await;
            last = json_of(r.expect("a job")).await;
            if last["status"] == "failed" || last["status"] == "succeeded" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(last["status"], "failed", "{model}: {last}");
        assert_eq!(last["error"]["code"], "invalid_training_file", "{last}");
    }

    // A file whose record cannot be removed (a folder in its place, as a read-only folder
    // would): 500 without the data folder's path, and the file still listed.
    let id = file;
    let record = data.join("files").join(format!("{id}.json"));
    std::fs::remove_file(&record).expect("remove");
    std::fs::create_dir_all(record.join("x")).expect("a folder in the way");
    let r = client.delete(format!("http://{addr}/v1/files/{id}")).send().await.expect("delete");
    assert_eq!(r.status(), 500);
    let body = json_of(r).await;
    let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(!message.contains(&data.display().to_string()), "{message}");
    assert!(message.contains(&format!("files/{id}.json")), "{message}");
    let listed =
        json_of(client.get(format!("http://{addr}/v1/files/{id}")).send().await.expect("get"))
            .await;
    assert_eq!(listed["id"], id.as_str(), "{listed}");
    let _ = std::fs::remove_dir_all(&data);
}

/// What a write cut short leaves (a full disk, a crash) is removed at the next start.
#[tokio::test]
async fn leftovers_of_cut_writes_are_removed_at_start() {
    let data = scratch("leftovers");
    for (dir, name) in [
        ("files", ".file-1.json.tmp"),
        ("files", ".file-2.upload"),
        ("files", "file-3.data"),
        ("jobs", ".ftjob-1.json.tmp"),
    ] {
        std::fs::create_dir_all(data.join(dir)).expect("a folder");
        std::fs::write(data.join(dir).join(name), b"half").expect("write");
    }
    let _router = fine_drums_serve::router(options(&data)).expect("a server");
    for dir in ["files", "jobs"] {
        let left: Vec<_> = std::fs::read_dir(data.join(dir)).expect("a folder").collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    let _ = std::fs::remove_dir_all(&data);
}
