//! The offline job runner: the fine-tuning jobs of a backend that trains on this machine
//! (uploads, job ids, events, cancel, the end of a job, and the models it made), written once
//! for every such backend and generic over the model it trains.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fine_drums_llm::jobs::Jobs;
use fine_drums_llm::{Job, JobEvent, JobRequest, JobStatus, Metrics, Upload};

/// How a job's work ended when it made no model.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ended {
    /// It was cancelled and stopped at this step; its last checkpoint is kept.
    Stopped {
        /// Steps done.
        step: u64,
    },
    /// It failed: why, as the job's error shows it.
    Failed(String),
}

/// The settings of a trainer's options that a fine-tuning request may change (OpenAI's
/// `hyperparameters`, and the seed).
#[derive(Debug)]
#[non_exhaustive]
pub struct Fields<'a> {
    /// Epochs over the training file.
    pub epochs: &'a mut u32,
    /// Examples in a batch.
    pub batch: &'a mut usize,
    /// The peak learning rate.
    pub lr: &'a mut f64,
    /// The seed of the run.
    pub seed: &'a mut u64,
}

impl<'a> Fields<'a> {
    /// The four settings, as a trainer's options hold them.
    pub fn new(
        epochs: &'a mut u32,
        batch: &'a mut usize,
        lr: &'a mut f64,
        seed: &'a mut u64,
    ) -> Self {
        Fields { epochs, batch, lr, seed }
    }
}

/// Options that a fine-tuning request may change.
pub trait Hyperparameters {
    /// The settings a request may change.
    fn fields(&mut self) -> Fields<'_>;
}

/// Applies what `request` asks for to `options` (the learning rate multiplied by its
/// multiplier), and leaves the rest as they are.
pub fn apply(request: &JobRequest, options: &mut impl Hyperparameters) {
    let f = options.fields();
    if let Some(e) = request.epochs {
        *f.epochs = e;
    }
    if let Some(b) = request.batch_size {
        *f.batch = b as usize;
    }
    if let Some(m) = request.learning_rate_multiplier {
        *f.lr *= m;
    }
    if let Some(s) = request.seed {
        *f.seed = s;
    }
}

struct State<M> {
    jobs: Jobs,
    models: HashMap<String, Arc<M>>,
    /// The stop flag of each job still at work.
    stops: HashMap<String, Arc<AtomicBool>>,
}

/// The jobs, uploads and models of an offline backend. Clones share them.
pub struct Runner<M> {
    state: Arc<Mutex<State<M>>>,
    /// Held while a model loads, so that requests arriving together load it once.
    loading: Arc<Mutex<()>>,
}

impl<M> Clone for Runner<M> {
    fn clone(&self) -> Runner<M> {
        Runner { state: self.state.clone(), loading: self.loading.clone() }
    }
}

impl<M> std::fmt::Debug for Runner<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}

/// What a job's work is given: its id, the flag that cancelling sets, and its event log.
pub struct Work<M> {
    id: String,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State<M>>>,
}

impl<M> Work<M> {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The flag that [`Runner::cancel`] sets: training stops at its next step once it is.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Adds an event to the job's log, with training figures if any.
    pub fn record(&self, level: &str, message: String, metrics: Option<Metrics>) {
        lock(&self.state).jobs.event(&self.id, now(), level, message, metrics);
    }
}

fn lock<M>(state: &Mutex<State<M>>) -> MutexGuard<'_, State<M>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since 1970, as OpenAI's events give them.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl<M: Send + Sync + 'static> Runner<M> {
    /// An empty runner whose file and job ids carry `prefix` (`gpt`, `lora`).
    pub fn new(prefix: &str) -> Runner<M> {
        let state =
            State { jobs: Jobs::new(prefix), models: HashMap::new(), stops: HashMap::new() };
        Runner { state: Arc::new(Mutex::new(state)), loading: Arc::new(Mutex::new(())) }
    }

    /// Keeps an uploaded file and returns its id.
    pub fn upload(&self, file: &Upload) -> String {
        lock(&self.state).jobs.upload(file)
    }

    /// The uploaded file `id`.
    pub fn file(&self, id: &str) -> fine_drums_llm::Result<Upload> {
        lock(&self.state).jobs.file(id)
    }

    /// The job `id`.
    pub fn job(&self, id: &str) -> fine_drums_llm::Result<Job> {
        lock(&self.state).jobs.job(id)
    }

    /// The events of job `id` after the event `after` (all of them when `None`).
    pub fn events(&self, id: &str, after: Option<&str>) -> fine_drums_llm::Result<Vec<JobEvent>> {
        lock(&self.state).jobs.events(id, after)
    }

    /// An id for the next job.
    pub fn next_job_id(&self) -> String {
        lock(&self.state).jobs.next_job_id()
    }

    /// Cancels job `id`: it shows `cancelled` at once, and its work stops at its next step
    /// (it never succeeds after). A job that has already ended is an error.
    pub fn cancel(&self, id: &str) -> fine_drums_llm::Result<Job> {
        let mut st = lock(&self.state);
        let job = st.jobs.cancel(id)?;
        if let Some(stop) = st.stops.get(id) {
            stop.store(true, Ordering::Relaxed);
        }
        Ok(job)
    }

    /// Whether job `id`'s work is still going (a cancelled job's until it has stopped and
    /// said so in its events).
    pub fn is_training(&self, id: &str) -> bool {
        lock(&self.state).stops.contains_key(id)
    }

    /// Registers a model under `name`.
    pub fn insert_model(&self, name: impl Into<String>, model: Arc<M>) {
        lock(&self.state).models.insert(name.into(), model);
    }

    /// The model registered as `name`, if any.
    pub fn get_model(&self, name: &str) -> Option<Arc<M>> {
        lock(&self.state).models.get(name).cloned()
    }

    /// The model registered as `name`, or else the one `load` gives, registered under that
    /// name; one load at a time, so that requests arriving together load a model once.
    pub fn model_or_load<E>(
        &self,
        name: &str,
        load: impl FnOnce() -> Result<M, E>,
    ) -> Result<Arc<M>, E> {
        if let Some(m) = self.get_model(name) {
            return Ok(m);
        }
        let _loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = self.get_model(name) {
            return Ok(m);
        }
        let model = Arc::new(load()?);
        self.insert_model(name, model.clone());
        Ok(model)
    }

    /// Starts job `id` on `base_model` (running, with no events yet) and returns it; `work`
    /// runs on a thread of its own. When it ends, its model is registered as `model_name`
    /// and the job succeeds, unless it was cancelled; a job that stopped says at which step,
    /// and one that failed keeps its error.
    pub fn spawn(
        &self,
        id: &str,
        base_model: &str,
        model_name: String,
        work: impl FnOnce(&Work<M>) -> Result<M, Ended> + Send + 'static,
    ) -> Job {
        let job = Job::new(id, base_model, JobStatus::Running);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut st = lock(&self.state);
            st.jobs.insert(job.clone());
            st.stops.insert(id.to_string(), stop.clone());
        }
        let w = Work { id: id.to_string(), stop, state: self.state.clone() };
        std::thread::spawn(move || {
            let result = work(&w);
            let id = &w.id;
            let mut st = lock(&w.state);
            st.stops.remove(id);
            match result {
                Ok(model) => {
                    let cancelled = st.jobs.job(id).is_ok_and(|j| j.status == JobStatus::Cancelled);
                    if !cancelled {
                        st.models.insert(model_name.clone(), Arc::new(model));
                        if let Ok(job) = st.jobs.job_mut(id) {
                            job.status = JobStatus::Succeeded;
                            job.fine_tuned_model = Some(model_name);
                        }
                    }
                }
                Err(Ended::Stopped { step }) => {
                    let message =
                        format!("cancelled at step {step}; the last epoch's checkpoint is kept");
                    st.jobs.event(id, now(), "info", message, None);
                }
                Err(Ended::Failed(error)) => {
                    if let Ok(job) = st.jobs.job_mut(id) {
                        job.status = JobStatus::Failed;
                        job.error = Some(error.clone());
                    }
                    st.jobs.event(id, now(), "error", error, None);
                }
            }
        });
        job
    }
}
