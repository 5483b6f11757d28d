//! The uploads and fine-tuning jobs of an offline backend, kept in memory: what the Markov
//! model's backend and the drum GPT's share, so that each implements only its training.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::types::{Job, JobEvent, Metrics, Upload};

/// Uploaded files and jobs with their events, named `file-<prefix>-<n>` and
/// `ftjob-<prefix>-<n>`.
#[derive(Debug, Default)]
pub struct Jobs {
    prefix: String,
    files: HashMap<String, Upload>,
    jobs: HashMap<String, (Job, Vec<JobEvent>)>,
    next_file: u64,
    next_job: u64,
}

impl Jobs {
    /// An empty store whose ids carry `prefix` (`local`, `gpt`).
    pub fn new(prefix: &str) -> Jobs {
        Jobs { prefix: prefix.to_string(), ..Jobs::default() }
    }

    /// Keeps an uploaded file and returns its id.
    pub fn upload(&mut self, file: &Upload) -> String {
        self.next_file += 1;
        let id = format!("file-{}-{}", self.prefix, self.next_file);
        self.files.insert(id.clone(), file.clone());
        id
    }

    /// The uploaded file `id`.
    pub fn file(&self, id: &str) -> Result<Upload> {
        self.files
            .get(id)
            .cloned()
            .ok_or_else(|| Error::invalid("file", format!("no uploaded file {id:?}")))
    }

    /// An id for the next job.
    pub fn next_job_id(&mut self) -> String {
        self.next_job += 1;
        format!("ftjob-{}-{}", self.prefix, self.next_job)
    }

    /// Keeps a job (replacing one of its id) with no events yet.
    pub fn insert(&mut self, job: Job) {
        self.jobs.insert(job.id.clone(), (job, Vec::new()));
    }

    /// The job `id`.
    pub fn job(&self, id: &str) -> Result<Job> {
        self.jobs.get(id).map(|(j, _)| j.clone()).ok_or_else(|| no_job(id))
    }

    /// The job `id`, to change its status.
    pub fn job_mut(&mut self, id: &str) -> Result<&mut Job> {
        self.jobs.get_mut(id).map(|(j, _)| j).ok_or_else(|| no_job(id))
    }

    /// Adds an event to job `id` (ids `<job>-ev<n>`), with training figures if any.
    pub fn event(
        &mut self,
        id: &str,
        created_at: u64,
        level: &str,
        message: String,
        metrics: Option<Metrics>,
    ) {
        if let Some((_, events)) = self.jobs.get_mut(id) {
            let event =
                JobEvent::new(format!("{id}-ev{}", events.len() + 1), created_at, level, message);
            events.push(match metrics {
                Some(m) => event.with_metrics(m),
                None => event,
            });
        }
    }

    /// Marks job `id` cancelled, unless it has already ended (an error that says how).
    pub fn cancel(&mut self, id: &str) -> Result<Job> {
        let job = self.job_mut(id)?;
        if job.status.is_terminal() {
            return Err(Error::invalid(
                "cancel",
                format!("job {id} has already ended ({:?})", job.status),
            ));
        }
        job.status = crate::types::JobStatus::Cancelled;
        Ok(job.clone())
    }

    /// The events of job `id` after the event `after` (all of them when `None`).
    pub fn events(&self, id: &str, after: Option<&str>) -> Result<Vec<JobEvent>> {
        let (_, events) = self.jobs.get(id).ok_or_else(|| no_job(id))?;
        let start = after.and_then(|a| events.iter().position(|e| e.id == a)).map_or(0, |i| i + 1);
        Ok(events[start..].to_vec())
    }
}

fn no_job(id: &str) -> Error {
    Error::invalid("job", format!("no job {id:?}"))
}
