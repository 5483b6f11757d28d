//! The session behind the audio thread: what it captured, taken in from its ring; the model;
//! the last phrase. Only the host's main thread and the background thread lock it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::capture::{Capture, Heard};
use crate::error::{Error, Result};
use crate::generate::{Ask, Generator};
use crate::phrase::{Phrase, Sent};

/// The environment variable that names a model folder (`fine_tune --backend gpt` wrote it)
/// for every instance whose session names none.
pub const MODEL_ENV: &str = "FINE_DRUMS_PLUGIN_MODEL";
/// The environment variable that names the folder the last phrase is written to as
/// `last-phrase.mid` (default: [`phrases_dir`]).
pub const PHRASES_ENV: &str = "FINE_DRUMS_PLUGIN_PHRASES";
/// The file in the phrases folder that the last phrase is written to.
pub const LAST_PHRASE: &str = "last-phrase.mid";

/// What the host saves with its project: the captured bars, the last phrase, the seed
/// presses, and the model folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Saved {
    /// The captured bars.
    pub capture: Capture,
    /// The last phrase generated.
    pub phrase: Option<Phrase>,
    /// "New seed" presses: added to the seed parameter.
    pub seed_presses: u64,
    /// The model's folder; `None`: [`MODEL_ENV`], else the built-in model.
    pub model: Option<PathBuf>,
}

struct Store {
    saved: Saved,
    /// A trigger taken in from the ring and not yet acted on.
    trigger: Option<(i64, bool)>,
}

/// The session shared by the plugin's threads.
pub struct Shared {
    store: Mutex<Store>,
    /// What the audio thread heard.
    heard: Mutex<rtrb::Consumer<Heard>>,
    /// Phrases for the audio thread.
    sent: Mutex<rtrb::Producer<Sent>>,
    /// The model, loaded at the first phrase, with the folder it came from.
    generator: Mutex<Option<(Option<PathBuf>, Arc<Generator>)>>,
    /// Whether a phrase is being generated.
    busy: AtomicBool,
    /// Why the last phrase failed, if it did.
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Locks `m`, taking over from a thread that panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The folder the last phrase is written to when [`PHRASES_ENV`] is not set: the user's data
/// folder's `fine-drums/phrases` (`$XDG_DATA_HOME` or `~/.local/share` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows).
pub fn phrases_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(PHRASES_ENV) {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let data = if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".local/share")))
    };
    data.map(|d| d.join("fine-drums").join("phrases"))
}

impl Shared {
    /// The session, with the ends of the rings the audio thread does not hold.
    pub fn new(heard: rtrb::Consumer<Heard>, sent: rtrb::Producer<Sent>) -> Shared {
        Shared {
            store: Mutex::new(Store { saved: Saved::default(), trigger: None }),
            heard: Mutex::new(heard),
            sent: Mutex::new(sent),
            generator: Mutex::new(None),
            busy: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// Takes in what the audio thread heard since the last look.
    fn take_in(&self, store: &mut Store) {
        let mut heard = lock(&self.heard);
        while let Ok(h) = heard.pop() {
            match h {
                Heard::Trigger { bar, fill } => store.trigger = Some((bar, fill)),
                Heard::Reseed => store.saved.seed_presses += 1,
                other => store.saved.capture.take(other),
            }
        }
    }

    /// Applies `f` to the session as it is now (what the host saves).
    pub fn with_saved<R>(&self, f: impl Fn(&Saved) -> R) -> R {
        let mut store = lock(&self.store);
        self.take_in(&mut store);
        f(&store.saved)
    }

    /// Replaces the session (the host loads a project): what the audio thread heard before
    /// is dropped, and a capture larger than the plugin keeps is cut to it.
    pub fn restore(&self, mut saved: Saved) {
        saved.capture = saved.capture.sanitized();
        let mut store = lock(&self.store);
        let mut heard = lock(&self.heard);
        while heard.pop().is_ok() {}
        *store = Store { saved, trigger: None };
    }

    /// Whether a phrase is being generated.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Marks a phrase as asked for (the audio thread, as it sends the trigger).
    pub fn set_busy(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// Why the last phrase failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Generates the phrase the last trigger asked for, with `ask` (the parameters now), and
    /// sends it to the audio thread; the session keeps it, and it is written to the phrases
    /// folder. Nothing to do without a trigger. Runs on the background thread.
    pub fn generate(&self, ask: impl Fn(bool, u64) -> Ask) -> Result<Option<Phrase>> {
        let out = self.generate_inner(ask);
        if let Err(e) = &out {
            *lock(&self.last_error) = Some(e.to_string());
        }
        self.busy.store(false, Ordering::Release);
        out
    }

    fn generate_inner(&self, ask: impl Fn(bool, u64) -> Ask) -> Result<Option<Phrase>> {
        let (capture, follows, ask, model) = {
            let mut store = lock(&self.store);
            self.take_in(&mut store);
            let Some((follows, fill)) = store.trigger.take() else { return Ok(None) };
            let ask = ask(fill, store.saved.seed_presses);
            (store.saved.capture.clone(), follows, ask, store.saved.model.clone())
        };
        let generator = self.generator(model)?;
        let phrase = generator.generate(&capture, follows, &ask)?;
        self.send(&phrase);
        lock(&self.store).saved.phrase = Some(phrase.clone());
        *lock(&self.last_error) = None;
        if let Some(dir) = phrases_dir() {
            write_phrase(&dir, &phrase)?;
        }
        Ok(Some(phrase))
    }

    /// The model of `model` (the session's folder), else [`MODEL_ENV`]'s, else the built-in
    /// one: loaded once, again when the folder changes.
    fn generator(&self, model: Option<PathBuf>) -> Result<Arc<Generator>> {
        let model = model.or_else(|| std::env::var_os(MODEL_ENV).map(PathBuf::from));
        let mut cached = lock(&self.generator);
        if let Some((dir, g)) = cached.as_ref()
            && *dir == model
        {
            return Ok(g.clone());
        }
        let g = Arc::new(Generator::load(model.as_deref())?);
        *cached = Some((model, g.clone()));
        Ok(g)
    }

    /// Sends `phrase` to the audio thread, waiting for room in the ring while the audio thread
    /// plays (up to 10 seconds: a host that stopped processing gets the phrase cut).
    fn send(&self, phrase: &Phrase) {
        let mut ring = lock(&self.sent);
        let begin = Sent::Begin { bars: phrase.bars as u32, quarters: phrase.quarters() };
        let all = std::iter::once(begin)
            .chain(phrase.notes.iter().map(|&n| Sent::Note(n)))
            .chain(std::iter::once(Sent::End));
        let deadline = Instant::now() + Duration::from_secs(10);
        for mut s in all {
            loop {
                match ring.push(s) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(back)) if Instant::now() < deadline => {
                        s = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => return,
                }
            }
        }
    }
}

/// Writes `phrase` as `last-phrase.mid` in `dir` (made if missing), atomically.
pub fn write_phrase(dir: &Path, phrase: &Phrase) -> Result<PathBuf> {
    let path = dir.join(LAST_PHRASE);
    let midi = phrase.to_midi()?;
    std::fs::create_dir_all(dir)
        .map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
    fine_drums_dataset::fs::write_atomic(&path, &midi)?;
    Ok(path)
}
