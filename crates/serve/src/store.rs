//! What the server keeps in its data folder, so that a restart loses nothing: uploaded files
//! (`files/<id>.json` and `files/<id>.data`), jobs (`jobs/<id>.json`) and their events
//! (`jobs/<id>.events.jsonl`, one JSON object a line, appended as they happen). Records are
//! written whole or not at all (a temporary file, then a rename).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An uploaded file's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub id: String,
    pub bytes: u64,
    pub created_at: u64,
    pub filename: String,
    pub purpose: String,
}

impl FileRecord {
    pub fn json(&self) -> Value {
        json!({
            "object": "file",
            "id": self.id,
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": null,
            "expires_at": null,
        })
    }
}

/// Which local model a job trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Trainer {
    /// The variable-order Markov model of `fine_drums_markov` (seconds).
    Markov,
    /// The drum GPT of `fine_drums_gpt` (minutes).
    Gpt,
}

/// A job's hyperparameters, as asked (`None`: the trainer's default).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Hyper {
    pub n_epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub learning_rate_multiplier: Option<f64>,
}

/// A fine-tuning job's record: what the API shows, and where its model is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub id: String,
    pub created_at: u64,
    pub finished_at: Option<u64>,
    pub model: String,
    pub training_file: String,
    pub validation_file: Option<String>,
    pub hyperparameters: Hyper,
    pub suffix: Option<String>,
    pub seed: u64,
    pub status: String,
    pub fine_tuned_model: Option<String>,
    /// `(code, message)` of a failed job.
    pub error: Option<(String, String)>,
    pub trained_tokens: Option<u64>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub trainer: Trainer,
    /// The trained model's file or folder, once there is one.
    pub model_path: Option<PathBuf>,
}

impl JobRecord {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }

    pub fn json(&self) -> Value {
        let h = &self.hyperparameters;
        let hyper = json!({
            "n_epochs": h.n_epochs.map_or(json!("auto"), |n| json!(n)),
            "batch_size": h.batch_size.map_or(json!("auto"), |n| json!(n)),
            "learning_rate_multiplier": h.learning_rate_multiplier.map_or(json!("auto"), |n| json!(n)),
        });
        json!({
            "object": "fine_tuning.job",
            "id": self.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "model": self.model,
            "fine_tuned_model": self.fine_tuned_model,
            "organization_id": "org-fine-drums",
            "result_files": [],
            "status": self.status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": hyper,
            "method": { "type": "supervised", "supervised": { "hyperparameters": hyper } },
            "trained_tokens": self.trained_tokens,
            "error": self.error.as_ref().map(|(code, message)| json!({
                "code": code, "message": message, "param": null,
            })),
            "seed": self.seed,
            "suffix": self.suffix,
            "estimated_finish": null,
            "integrations": [],
            "metadata": self.metadata,
            "user_provided_suffix": self.suffix,
        })
    }
}

/// One event of a job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub id: String,
    pub created_at: u64,
    pub level: String,
    pub message: String,
    /// `metrics` (with `data`) or `message`.
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Option<Value>,
}

impl EventRecord {
    pub fn json(&self) -> Value {
        json!({
            "object": "fine_tuning.job.event",
            "id": self.id,
            "created_at": self.created_at,
            "level": self.level,
            "message": self.message,
            "type": self.kind,
            "data": self.data,
        })
    }
}

#[derive(Default)]
struct Tables {
    files: BTreeMap<String, FileRecord>,
    jobs: BTreeMap<String, JobRecord>,
    events: BTreeMap<String, Vec<EventRecord>>,
}

/// The data folder and what it holds, in memory too.
pub(crate) struct Store {
    dir: PathBuf,
    tables: Mutex<Tables>,
    counter: AtomicU64,
    /// Held by each read-change-write of a record, so that two cannot interleave.
    writes: Mutex<()>,
}

impl Store {
    /// Opens (or makes) the data folder `dir` and reads everything in it back.
    pub fn open(dir: &Path) -> Result<Store> {
        let mut tables = Tables::default();
        for sub in ["files", "jobs", "models"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(Error::io(&d))?;
            remove_leftovers(&d)?;
        }
        for path in entries(&dir.join("files"), ".json")? {
            let f: FileRecord = read_json(&path)?;
            tables.files.insert(f.id.clone(), f);
        }
        for path in entries(&dir.join("jobs"), ".json")? {
            let j: JobRecord = read_json(&path)?;
            let events_path = dir.join("jobs").join(format!("{}.events.jsonl", j.id));
            let events = read_events(&events_path)?;
            tables.events.insert(j.id.clone(), events);
            tables.jobs.insert(j.id.clone(), j);
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            tables: Mutex::new(tables),
            counter: AtomicU64::new(0),
            writes: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh id: `prefix` and 24 hexadecimal digits from the clock and a counter.
    pub fn new_id(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let a = mix(nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        format!("{prefix}-{:016x}{:08x}", a, mix(a) as u32)
    }

    /// Where an upload of file `id` is written as it arrives (removed at start if it is left).
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.dir.join("files").join(format!(".{id}.upload"))
    }

    /// Keeps the upload written to [`upload_path`](Store::upload_path) as file `record`: its
    /// data first, then its record, which makes it a file.
    pub fn add_upload(&self, record: FileRecord) -> Result<()> {
        let files = self.dir.join("files");
        let data = files.join(format!("{}.data", record.id));
        std::fs::rename(self.upload_path(&record.id), &data).map_err(Error::io(&data))?;
        if let Err(e) = write_atomic(&files.join(format!("{}.json", record.id)), &to_vec(&record)) {
            let _ = std::fs::remove_file(&data);
            return Err(e);
        }
        self.lock().files.insert(record.id.clone(), record);
        Ok(())
    }

    pub fn file(&self, id: &str) -> Option<FileRecord> {
        self.lock().files.get(id).cloned()
    }

    pub fn files(&self) -> Vec<FileRecord> {
        self.lock().files.values().cloned().collect()
    }

    pub fn file_data(&self, id: &str) -> Result<Vec<u8>> {
        let path = self.dir.join("files").join(format!("{id}.data"));
        std::fs::read(&path).map_err(Error::io(&path))
    }

    /// Deletes file `id`: its record first, so that a record that cannot be removed (a
    /// read-only folder) leaves the file listed and is an error; then its data, whose
    /// removal, if it fails, leaves only data that the next start removes.
    pub fn delete_file(&self, id: &str) -> Result<bool> {
        let _one = self.writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.file(id).is_none() {
            return Ok(false);
        }
        let record = self.dir.join("files").join(format!("{id}.json"));
        std::fs::remove_file(&record).map_err(Error::io(&record))?;
        self.lock().files.remove(id);
        let data = self.dir.join("files").join(format!("{id}.data"));
        if let Err(e) = std::fs::remove_file(&data) {
            eprintln!("serve: {}: {e} (removed at the next start)", data.display());
        }
        Ok(true)
    }

    /// Saves a job (new or changed).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        let path = self.dir.join("jobs").join(format!("{}.json", job.id));
        write_atomic(&path, &to_vec(job))?;
        let mut t = self.lock();
        t.events.entry(job.id.clone()).or_default();
        t.jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }

    pub fn job(&self, id: &str) -> Option<JobRecord> {
        self.lock().jobs.get(id).cloned()
    }

    pub fn jobs(&self) -> Vec<JobRecord> {
        self.lock().jobs.values().cloned().collect()
    }

    /// Changes job `id` with `f` and saves it, unless it has ended: a succeeded, failed or
    /// cancelled job stays as it is, whatever runs late (`None` then). The job after the
    /// change. A record that cannot be written changes nothing and is an error.
    pub fn update_job(
        &self,
        id: &str,
        f: impl FnOnce(&mut JobRecord),
    ) -> Result<Option<JobRecord>> {
        let _one = self.writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut job = self.job(id).ok_or_else(|| Error::NotFound { what: "job", id: id.into() })?;
        if job.is_terminal() {
            return Ok(None);
        }
        f(&mut job);
        self.put_job(&job)?;
        Ok(Some(job))
    }

    /// Marks job `id` failed with `(code, message)`, unless it has ended: in memory even when
    /// its record cannot be written (so that it does not show `running` forever), which is
    /// then the error. At the next start the record on disk runs the job again.
    pub fn fail_job(&self, id: &str, code: &str, message: &str) -> Result<()> {
        let _one = self.writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut job) = self.job(id).filter(|j| !j.is_terminal()) else { return Ok(()) };
        job.status = "failed".into();
        job.error = Some((code.into(), message.into()));
        job.finished_at = Some(now());
        let path = self.dir.join("jobs").join(format!("{}.json", job.id));
        let written = write_atomic(&path, &to_vec(&job));
        self.lock().jobs.insert(job.id.clone(), job);
        written
    }

    /// Appends an event to job `id`'s log (ids `<job>-ev<n>`).
    pub fn event(
        &self,
        id: &str,
        level: &str,
        message: impl Into<String>,
        data: Option<Value>,
    ) -> Result<()> {
        let mut t = self.lock();
        let events = t.events.entry(id.to_string()).or_default();
        let record = EventRecord {
            id: format!("ftevent-{}-{}", id.trim_start_matches("ftjob-"), events.len() + 1),
            created_at: now(),
            level: level.into(),
            message: message.into(),
            kind: if data.is_some() { "metrics" } else { "message" }.into(),
            data,
        };
        let path = self.dir.join("jobs").join(format!("{id}.events.jsonl"));
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&line))
            .map_err(Error::io(&path))?;
        events.push(record);
        Ok(())
    }

    /// Job `id`'s events, oldest first.
    pub fn events(&self, id: &str) -> Vec<EventRecord> {
        self.lock().events.get(id).cloned().unwrap_or_default()
    }
}

/// Removes what a write cut short left in `dir` (a full disk, a crash): temporary files
/// (`.<name>.tmp`, uploads' `.<id>.upload`) and the data of a file whose record was never
/// written or was deleted.
fn remove_leftovers(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = e.map_err(Error::io(dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temporary =
            name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".upload"));
        let orphan =
            name.strip_suffix(".data").is_some_and(|id| !dir.join(format!("{id}.json")).exists());
        if (temporary || orphan) && path.is_file() {
            std::fs::remove_file(&path).map_err(Error::io(&path))?;
        }
    }
    Ok(())
}

fn to_vec(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

fn entries(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = e.map_err(Error::io(dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(suffix) && !name.starts_with('.') && !name.ends_with(".events.jsonl") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        line: None,
        source: e,
    })
}

/// A job's events. A last line cut short by a crash is dropped; any other bad line is an error.
fn read_events(path: &Path) -> Result<Vec<EventRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path)(e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    line: Some(i + 1),
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fine_drums_dataset::fs::write_atomic(path, bytes).map_err(|e| match e {
        // The file system's own error, kept as the source, under the record's path.
        fine_drums_dataset::Error::Io { source, .. } => {
            Error::Io { path: path.to_path_buf(), source }
        }
        other => Error::Write { path: path.to_path_buf(), message: other.to_string() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            created_at: 0,
            finished_at: None,
            model: "babbage-002".into(),
            training_file: "file-1".into(),
            validation_file: None,
            hyperparameters: Hyper::default(),
            suffix: None,
            seed: 1,
            status: "running".into(),
            fine_tuned_model: None,
            error: None,
            trained_tokens: None,
            metadata: None,
            trainer: Trainer::Markov,
            model_path: None,
        }
    }

    /// A job whose "failed" record cannot be written shows `failed`, not `running` for
    /// ever, and the write's error comes back; an ended job is never changed again (issue 29,
    /// items 5 and 7).
    #[test]
    fn a_failure_that_cannot_be_written_still_ends_the_job() {
        let dir = std::env::temp_dir().join(format!("fine-drums-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).expect("a store");
        store.put_job(&job("ftjob-1")).expect("a job");
        // A folder where the record goes: no write or rename can replace it.
        let record = dir.join("jobs/ftjob-1.json");
        std::fs::remove_file(&record).expect("remove");
        std::fs::create_dir_all(record.join("x")).expect("a folder in the way");
        let e = store.fail_job("ftjob-1", "server_error", "boom").expect_err("not written");
        assert!(e.to_string().contains("ftjob-1.json"), "{e}");
        assert_eq!(store.job("ftjob-1").map(|j| j.status), Some("failed".into()));
        // No temporary file is left by the failed write.
        let left: Vec<_> = std::fs::read_dir(dir.join("jobs"))
            .expect("jobs")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // Ended: neither a late "succeeded" nor "running" changes it.
        std::fs::remove_dir_all(&record).expect("the folder away");
        assert!(
            store.update_job("ftjob-1", |j| j.status = "succeeded".into()).expect("ok").is_none()
        );
        assert_eq!(store.job("ftjob-1").map(|j| j.status), Some("failed".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store opened again on its folder (a restart) has every file, job and event, and a
    /// record damaged on disk is an error that names its file and line.
    #[test]
    fn a_store_opened_again_has_everything_and_names_a_damaged_record() {
        let dir =
            std::env::temp_dir().join(format!("fine-drums-store-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).expect("a store");
        let id = store.new_id("ftjob");
        assert!(id.starts_with("ftjob-"), "{id}");
        store.put_job(&job(&id)).expect("a job");
        store.event(&id, "info", "Created", None).expect("an event");
        store.event(&id, "info", "step 1", Some(serde_json::json!({"step": 1}))).expect("another");
        drop(store);
        let again = Store::open(&dir).expect("the same store");
        assert_eq!(again.job(&id).map(|j| j.model), Some("babbage-002".into()));
        let events: Vec<String> = again.events(&id).into_iter().map(|e| e.message).collect();
        assert_eq!(events, ["Created", "step 1"]);
        assert_ne!(again.new_id("ftjob"), id, "ids are not given twice across a restart");
        drop(again);
        let log = dir.join("jobs").join(format!("{id}.events.jsonl"));
        let good = std::fs::read_to_string(&log).expect("the log");
        // A torn last line (a crash mid-append) is dropped; the records before it are kept.
        std::fs::write(&log, format!("{good}{{\"id\": \"ev")).expect("torn");
        assert_eq!(Store::open(&dir).expect("a torn line is no damage").events(&id).len(), 2);
        // A whole line that is not a record is damage: an error naming the file and line.
        std::fs::write(&log, format!("{good}{{not a record\n")).expect("damaged");
        let said = Store::open(&dir).err().expect("damaged").to_string();
        assert!(said.contains(".events.jsonl, line 3"), "{said}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
