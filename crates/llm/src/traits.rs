//! The two traits every backend implements. No HTTP here.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::types::{Completion, CompletionRequest, Job, JobEvent, JobRequest, JobStatus, Upload};

/// A boxed future, so that the traits work as `dyn` objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model that continues text.
///
/// One required method. Implemented for `&T`, `Box<T>` and `Arc<T>`, so a backend can be
/// passed by value, by reference or as `Box<dyn Complete>` / `Arc<dyn Complete>`.
pub trait Complete: Send + Sync {
    /// Samples `request.n` continuations of `request.prompt`.
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>>;

    /// The negative log-likelihood (in nats) per bar of `continuation` (encoded bars) after
    /// `prompt` (as the template writes it) under `model`, for backends that can score text;
    /// `None` for those that cannot (the default).
    fn nll_per_bar<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        continuation: &'a str,
    ) -> BoxFuture<'a, Result<Option<f64>>> {
        let _ = (model, prompt, continuation);
        Box::pin(async { Ok(None) })
    }

    /// [`nll_per_bar`](Complete::nll_per_bar) with the bars after the continuation
    /// (`suffix`, for an infill) and controls. The default scores a request with neither
    /// as `nll_per_bar` does, and has no score (`None`) for one with either.
    fn nll_per_bar_steered<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a str,
        suffix: Option<&'a str>,
        continuation: &'a str,
        steer: &'a crate::Steer,
    ) -> BoxFuture<'a, Result<Option<f64>>> {
        if suffix.is_none() && steer.without_controls() {
            return self.nll_per_bar(model, prompt, continuation);
        }
        Box::pin(async { Ok(None) })
    }
}

/// A service that fine-tunes models.
///
/// Five required methods (upload, create, status, events, cancel); [`wait`](FineTune::wait)
/// and [`fine_tune`](FineTune::fine_tune) are built on them. Backends that talk over the
/// network should override [`pause`](FineTune::pause) with their runtime's timer.
pub trait FineTune: Send + Sync {
    /// Uploads a training or validation file and returns its id.
    fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, Result<String>>;

    /// Creates a job.
    fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>>;

    /// Reads a job's status.
    fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>>;

    /// A job's events after the event `after` (all of them when `None`), oldest first.
    fn events<'a>(
        &'a self,
        id: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<JobEvent>>>;

    /// Cancels a job.
    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>>;

    /// How long [`wait`](FineTune::wait) waits between two looks at a job. Default: 10 s.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// How long [`wait`](FineTune::wait) waits on a job that is paused, or in a status this
    /// crate does not know, before it gives up with [`Error::JobStuck`]. Default: 15 min.
    fn status_patience(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }

    /// Waits `duration` without blocking the executor's thread: the default future is woken
    /// by a timer thread of its own, so it works on any executor. Backends with a runtime may
    /// override it with the runtime's timer.
    fn pause<'a>(&'a self, duration: Duration) -> BoxFuture<'a, ()> {
        Box::pin(Pause { until: Instant::now() + duration, waker: None })
    }

    /// Waits for a job to end, passing each new event to `on_event`, and returns the
    /// fine-tuned model's name, or the failure the service gave.
    fn wait<'a>(
        &'a self,
        id: &'a str,
        on_event: &'a mut (dyn FnMut(&JobEvent) + Send),
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut last: Option<String> = None;
            let mut last_error: Option<String> = None;
            // A status that may never change on its own, and since when.
            let mut stuck: Option<(String, Instant)> = None;
            loop {
                let job = self.job(id).await?;
                for e in self.events(id, last.as_deref()).await? {
                    if e.level == "error" {
                        last_error = Some(e.message.clone());
                    }
                    on_event(&e);
                    last = Some(e.id);
                }
                match job.status {
                    JobStatus::Succeeded => {
                        return job.fine_tuned_model.ok_or_else(|| Error::Decode {
                            what: "fine-tuning job",
                            message: "the job succeeded but names no fine-tuned model".into(),
                            body: String::new(),
                        });
                    }
                    JobStatus::Failed => {
                        let message = job
                            .error
                            .or(last_error)
                            .unwrap_or_else(|| "the service gave no reason".into());
                        return Err(Error::JobFailed { id: id.to_string(), message });
                    }
                    JobStatus::Cancelled => return Err(Error::JobCancelled { id: id.to_string() }),
                    JobStatus::ValidatingFiles
                    | JobStatus::Queued
                    | JobStatus::Running
                    | JobStatus::Cancelling => stuck = None,
                    other => {
                        let name = other.as_str().to_string();
                        let since = match &stuck {
                            Some((n, t)) if *n == name => *t,
                            _ => stuck.insert((name.clone(), Instant::now())).1,
                        };
                        let waited = since.elapsed();
                        if waited >= self.status_patience() {
                            return Err(Error::JobStuck {
                                id: id.to_string(),
                                status: name,
                                waited,
                            });
                        }
                    }
                }
                self.pause(self.poll_interval()).await;
            }
        })
    }

    /// Uploads the files, creates the job (its file ids are filled in) and waits for it.
    fn fine_tune<'a>(
        &'a self,
        training: &'a Upload,
        validation: Option<&'a Upload>,
        job: &'a JobRequest,
        on_event: &'a mut (dyn FnMut(&JobEvent) + Send),
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut job = job.clone();
            job.training_file = self.upload(training).await?;
            if let Some(v) = validation {
                job.validation_file = Some(self.upload(v).await?);
            }
            let created = self.create_job(&job).await?;
            self.wait(&created.id, on_event).await
        })
    }
}

macro_rules! forward {
    ($($ptr:ty),*) => {$(
        impl<T: Complete + ?Sized> Complete for $ptr {
            fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
                (**self).complete(request)
            }
            fn nll_per_bar<'a>(&'a self, model: &'a str, prompt: &'a str, continuation: &'a str) -> BoxFuture<'a, Result<Option<f64>>> {
                (**self).nll_per_bar(model, prompt, continuation)
            }
            fn nll_per_bar_steered<'a>(&'a self, model: &'a str, prompt: &'a str, suffix: Option<&'a str>, continuation: &'a str, steer: &'a crate::Steer) -> BoxFuture<'a, Result<Option<f64>>> {
                (**self).nll_per_bar_steered(model, prompt, suffix, continuation, steer)
            }
        }

        impl<T: FineTune + ?Sized> FineTune for $ptr {
            fn upload<'a>(&'a self, file: &'a Upload) -> BoxFuture<'a, Result<String>> {
                (**self).upload(file)
            }
            fn create_job<'a>(&'a self, request: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
                (**self).create_job(request)
            }
            fn job<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
                (**self).job(id)
            }
            fn events<'a>(&'a self, id: &'a str, after: Option<&'a str>) -> BoxFuture<'a, Result<Vec<JobEvent>>> {
                (**self).events(id, after)
            }
            fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Job>> {
                (**self).cancel(id)
            }
            fn poll_interval(&self) -> Duration {
                (**self).poll_interval()
            }
            fn status_patience(&self) -> Duration {
                (**self).status_patience()
            }
            fn pause<'a>(&'a self, duration: Duration) -> BoxFuture<'a, ()> {
                (**self).pause(duration)
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);

/// The default [`FineTune::pause`]: ready once `until` has passed; until then a timer thread,
/// started on the first poll, wakes the latest waker when the time comes.
struct Pause {
    until: Instant,
    /// The waker the timer thread wakes, shared with it.
    waker: Option<Arc<Mutex<Waker>>>,
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let until = self.until;
        let now = Instant::now();
        if now >= until {
            return Poll::Ready(());
        }
        match &self.waker {
            Some(w) => {
                let mut w = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                w.clone_from(cx.waker());
            }
            None => {
                let shared = Arc::new(Mutex::new(cx.waker().clone()));
                let theirs = Arc::clone(&shared);
                std::thread::spawn(move || {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    theirs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).wake_by_ref();
                });
                self.waker = Some(shared);
            }
        }
        Poll::Pending
    }
}
