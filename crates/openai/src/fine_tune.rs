//! Fine-tuning: uploads, jobs created exactly once whatever the network does, their status
//! and events, and cancelling.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::files::{CreateFileRequest, FileInput, FilePurpose};
use fine_drums_llm::{
    BoxFuture, Error, FineTune, Job, JobEvent, JobRequest, Result, Upload, random,
};
use serde_json::Value;

use crate::client::{OpenAi, from_openai, with_hint};
use crate::config::BaseModel;
use crate::retry;
use crate::wire::{
    EventList, FileObject, Hyperparameters, JobCreateRequest, JobList, JobObject, Method, Setting,
    Supervised,
};

/// The `metadata` key of the client id that makes job creation idempotent.
pub const CLIENT_ID: &str = "fine_drums_client_id";

impl OpenAi {
    /// The job created with client id `client_id`, if the service has one.
    async fn job_by_client_id(&self, client_id: &str) -> Result<Option<Job>> {
        let query = [(format!("metadata[{CLIENT_ID}]"), client_id.to_string())];
        let page: JobList = self
            .client
            .fine_tuning()
            .query(&query)
            .map_err(|e| from_openai(e, "fine-tuning jobs"))?
            .list_paginated_byot()
            .await
            .map_err(|e| from_openai(e, "fine-tuning jobs"))?;
        // Only a job that carries the id: a server that ignores the filter lists others.
        let ours = |j: &JobObject| {
            j.metadata.as_ref().and_then(|m| m.get(CLIENT_ID)).and_then(Value::as_str)
                == Some(client_id)
        };
        Ok(page.data.into_iter().find(ours).map(Job::from))
    }
}

/// Pages of 100 events [`OpenAi`]'s `events` reads back at most in one call: a poll
/// normally needs one.
const MAX_EVENT_PAGES: usize = 50;

/// The job creation's body: top-level `hyperparameters` for `babbage-002` and
/// `davinci-002` (as their API takes them), `method.supervised.hyperparameters` for
/// every other model.
pub fn job_body(request: &JobRequest) -> JobCreateRequest {
    let hyper = Hyperparameters {
        n_epochs: request.epochs.map(Setting::from),
        batch_size: request.batch_size.map(Setting::from),
        learning_rate_multiplier: request.learning_rate_multiplier.map(Setting::from),
    };
    let mut body = JobCreateRequest {
        model: Some(request.model.clone()),
        training_file: Some(request.training_file.clone()),
        validation_file: request.validation_file.clone(),
        suffix: request.suffix.clone(),
        seed: request.seed,
        ..JobCreateRequest::default()
    };
    if !hyper.is_empty() {
        if BaseModel::of(&request.model).is_some() {
            body.hyperparameters = Some(hyper);
        } else {
            body.method = Some(Method {
                kind: Some("supervised".into()),
                supervised: Some(Supervised { hyperparameters: Some(hyper) }),
            });
        }
    }
    body
}

impl FineTune for OpenAi {
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let request = CreateFileRequest {
                file: FileInput::from_vec_u8(file.name.clone(), file.bytes.clone()),
                purpose: FilePurpose::FineTune,
                expires_after: None,
            };
            let body: FileObject = self
                .client
                .files()
                .create_byot(request)
                .await
                .map_err(|e| from_openai(e, "file upload"))?;
            Ok(body.id)
        })
    }

    /// Creates the job once, whatever the network does: the request carries a client id in
    /// its `metadata` (`fine_drums_client_id`), and before any retry the jobs are looked up
    /// by it, so that a job the service created before a 5xx or a timeout is returned rather
    /// than created (and billed) again.
    fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let mut rng = random::seeded(self.seed.fetch_add(1, Ordering::Relaxed));
            let client_id = format!("fd-{:016x}", rand_core::Rng::next_u64(&mut rng));
            let mut body = job_body(request);
            body.metadata = Some([(CLIENT_ID.to_string(), client_id.clone())].into());
            let policy = self.config.retry;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let created =
                    self.once.fine_tuning().create_byot::<_, JobObject>(body.clone()).await;
                let error = match created {
                    Ok(job) => return Ok(job.into()),
                    Err(e) => with_hint(from_openai(e, "fine-tuning job"), &request.model, true),
                };
                let retryable = match &error {
                    Error::Api { status, .. } => retry::is_retryable(*status),
                    Error::Timeout { .. } | Error::Connection { .. } => true,
                    _ => false,
                };
                if !retryable {
                    return Err(error);
                }
                if let Some(job) = self.job_by_client_id(&client_id).await? {
                    return Ok(job);
                }
                if attempt > policy.max_retries {
                    return Err(error);
                }
                tokio::time::sleep(policy.delay(attempt, None, &mut rng)).await;
            }
        })
    }

    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let body: JobObject = self
                .client
                .fine_tuning()
                .retrieve_byot(id)
                .await
                .map_err(|e| from_openai(e, "fine-tuning job"))?;
            Ok(body.into())
        })
    }

    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<JobEvent>>> {
        Box::pin(async move {
            // The API lists events newest first, a page at a time, each page continuing
            // after the last event of the one before: read back until `after` (or the
            // job's first event) is reached, at most MAX_EVENT_PAGES pages.
            let mut out: Vec<JobEvent> = Vec::new();
            for _ in 0..MAX_EVENT_PAGES {
                let mut query = vec![("limit", "100".to_string())];
                if let Some(last) = out.last() {
                    query.push(("after", last.id.clone()));
                }
                let body: EventList = self
                    .client
                    .fine_tuning()
                    .query(&query)
                    .map_err(|e| from_openai(e, "fine-tuning events"))?
                    .list_events_byot(id)
                    .await
                    .map_err(|e| from_openai(e, "fine-tuning events"))?;
                let page = body.data.len();
                let before = out.len();
                out.extend(body.data.into_iter().take_while(|e| Some(e.id.as_str()) != after).map(
                    |e| {
                        let metrics = (e.kind == "metrics")
                            .then(|| e.data.and_then(|d| serde_json::from_value(d).ok()))
                            .flatten();
                        let event = JobEvent::new(e.id, e.created_at, &e.level, e.message);
                        match metrics {
                            Some(m) => event.with_metrics(m),
                            None => event,
                        }
                    },
                ));
                if !body.has_more || page == 0 || out.len() - before < page {
                    break;
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let body: JobObject = self
                .client
                .fine_tuning()
                .cancel_byot(id)
                .await
                .map_err(|e| from_openai(e, "fine-tuning job"))?;
            Ok(body.into())
        })
    }

    fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    fn status_patience(&self) -> Duration {
        self.config.status_patience
    }

    fn pause<'a>(&'a self, duration: Duration) -> BoxFuture<'a, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}
