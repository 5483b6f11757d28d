//! The HTTP service under async-openai: one request, retried by this crate's policy.
//!
//! async-openai 0.43's own retry layer ignores `retry-after-ms` and HTTP-date
//! `Retry-After`, and does not retry a 429 whose body is not JSON, so this service
//! replaces it (through async-openai's `with_http_service`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use fine_drums_llm::{BoxFuture, Error, random};

/// When and how often a request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default: 4.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it. Default: 500 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts. A server asking (by `Retry-After`) for a
    /// longer one is not retried, as OpenAI's SDKs do not. Default: 60 s.
    pub max_backoff: Duration,
    /// How long one attempt may take, body included. Default: 120 s.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (from 1): the server's wish when it gave one,
    /// else exponential backoff with "equal jitter" (half fixed, half random), capped at
    /// [`max_backoff`](RetryPolicy::max_backoff).
    pub(crate) fn delay(
        &self,
        retry: u32,
        server: Option<Duration>,
        rng: &mut impl rand_core::Rng,
    ) -> Duration {
        if let Some(d) = server {
            return d.min(self.max_backoff);
        }
        let exp = self.initial_backoff.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff);
        capped / 2 + capped.mul_f64(random::unit(rng) / 2.0)
    }
}

/// Whether a status is worth another attempt: 408, 409, 429 and 5xx.
pub(crate) fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..600).contains(&status)
}

/// The server's `x-should-retry` header: `Some(true)` or `Some(false)` when it says,
/// `None` when it is absent or neither.
pub(crate) fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()).map(str::trim) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

/// The server's requested wait: `retry-after-ms` (milliseconds), else `Retry-After` in
/// seconds or as an HTTP date.
pub(crate) fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The service's error object, or the start of whatever the body was.
pub(crate) fn api_error(status: u16, body: &[u8], attempts: u32) -> Error {
    #[derive(serde::Deserialize)]
    struct Wrapped {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: Option<String>,
        code: Option<serde_json::Value>,
        r#type: Option<String>,
    }
    let (message, code) = match serde_json::from_slice::<Wrapped>(body) {
        Ok(w) => {
            let code = match w.error.code {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => w.error.r#type,
            };
            (w.error.message.unwrap_or_default(), code)
        }
        Err(_) => (snippet(body), None),
    };
    Error::Api { status, code, message, attempts, hint: None }
}

pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    text.chars().take(200).collect()
}

/// async-openai's HTTP service: sends with reqwest, retries by the policy, and turns every
/// failure into this crate's [`Error`] (carried in `OpenAIError::Boxed`).
#[derive(Clone)]
pub(crate) struct RetryService {
    pub client: reqwest::Client,
    pub policy: RetryPolicy,
    pub seed: Arc<AtomicU64>,
}

impl tower::Service<HttpRequestFactory> for RetryService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), OpenAIError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let this = self.clone();
        Box::pin(
            async move { this.run(factory).await.map_err(|e| OpenAIError::Boxed(Box::new(e))) },
        )
    }
}

enum Attempt {
    Done(reqwest::Response),
    Retry { error: Error, server: Option<Duration> },
    Fail(Error),
}

impl RetryService {
    async fn run(self, factory: HttpRequestFactory) -> Result<reqwest::Response, Error> {
        let mut rng = random::seeded(self.seed.fetch_add(1, Ordering::Relaxed));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let request =
                factory.build().await.map_err(|e| Error::invalid("request", e.to_string()))?;
            let url = super::redact(request.url().as_str());
            match self.once(request, &url, attempts).await {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { error, server } => {
                    if attempts > self.policy.max_retries {
                        return Err(error);
                    }
                    tokio::time::sleep(self.policy.delay(attempts, server, &mut rng)).await;
                }
            }
        }
    }

    async fn once(&self, request: reqwest::Request, url: &str, attempts: u32) -> Attempt {
        let timeout = self.policy.timeout;
        let sent = tokio::time::timeout(timeout, async {
            let response = self.client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>((status, headers, body))
        })
        .await;
        let (status, headers, body) = match sent {
            Err(_) => {
                let error = Error::Timeout { url: url.into(), after: timeout, attempts };
                return Attempt::Retry { error, server: None };
            }
            Ok(Err(e)) if e.is_timeout() => {
                let error = Error::Timeout { url: url.into(), after: timeout, attempts };
                return Attempt::Retry { error, server: None };
            }
            Ok(Err(e)) => {
                let retry = e.is_connect() || e.is_request() || e.is_body();
                let error = Error::Connection {
                    url: url.into(),
                    attempts,
                    source: Box::new(e.without_url()),
                };
                return if retry {
                    Attempt::Retry { error, server: None }
                } else {
                    Attempt::Fail(error)
                };
            }
            Ok(Ok(parts)) => parts,
        };
        if status.is_success() {
            return Attempt::Done(rebuild(status, headers, body));
        }
        let code = status.as_u16();
        let error = api_error(code, &body, attempts);
        let no_quota =
            matches!(&error, Error::Api { code: Some(c), .. } if c == "insufficient_quota");
        // The server's word first, as OpenAI's own SDKs take it: `x-should-retry`.
        let retry = match should_retry(&headers) {
            Some(told) => told,
            None => is_retryable(code) && !no_quota,
        };
        if !retry {
            return Attempt::Fail(error);
        }
        match server_delay(&headers, SystemTime::now()) {
            // A wait beyond the cap is not waited out: the error says how long was asked.
            Some(wait) if wait > self.policy.max_backoff => Attempt::Fail(match error {
                Error::Api { status, code, message, attempts, hint } => Error::Api {
                    status,
                    code,
                    message: format!(
                        "{message} (the server asked to retry after {} s, beyond the {} s this client waits)",
                        wait.as_secs(),
                        self.policy.max_backoff.as_secs()
                    ),
                    attempts,
                    hint,
                },
                other => other,
            }),
            server => Attempt::Retry { error, server },
        }
    }
}

fn rebuild(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> reqwest::Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    reqwest::Response::from(response)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{RetryPolicy, is_retryable, server_delay};

    #[test]
    fn retryable_statuses_are_408_409_429_and_5xx() {
        for code in [408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable(code), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 422, 600] {
            assert!(!is_retryable(code), "{code}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_milliseconds_and_dates() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).expect("header"));
            }
            h
        };
        assert_eq!(
            server_delay(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            server_delay(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")]), now),
            Some(Duration::from_millis(250))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            server_delay(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(server_delay(&headers(&[("retry-after", &past)]), now), Some(Duration::ZERO));
        assert_eq!(server_delay(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(server_delay(&headers(&[]), now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_the_cap() {
        let policy = RetryPolicy::default();
        let mut rng = fine_drums_llm::random::seeded(1);
        for retry in 1..8 {
            let full = (policy.initial_backoff * (1 << (retry - 1))).min(policy.max_backoff);
            let d = policy.delay(retry, None, &mut rng);
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?} vs {full:?}");
        }
        assert_eq!(policy.delay(1, Some(Duration::from_secs(600)), &mut rng), policy.max_backoff);
    }
}
