//! The evaluation protocol: the test windows and the training data they are scored against,
//! the systems that continue them, the resumable cache of their outputs, and the scores.
//!
//! No I/O here: the caller reads the dataset's files and passes their bytes to
//! [`Data::add`], implements [`System`] for its backends and [`Cache`] for wherever outputs
//! are kept, and writes what [`Evaluation`] renders.

use std::collections::{BTreeMap, HashSet};

use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::{Context, Format, Groove, Voice, VoiceMap};
use fine_drums_dataset::{CountTokens, Entry, Pair, Prepared, Preparer, Split, Template, Windows};
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::accuracy::{Accuracy, Validity};
use crate::baseline::{Density, random, repeat};
use crate::dist::{compare, distributions};
use crate::error::{BoxError, Error, Result};
use crate::phrase::phrases;
use crate::report::{Evaluation, Played, Scores};
use crate::structure::{RollPiece, roll_bars, structure};

/// How an evaluation is run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Protocol {
    /// How grooves become text for the models (the manifest's template): the format, and
    /// where windows start (after leading silence or not). Default: the default template.
    pub template: Template,
    /// Which files are used (the manifest's filter). Default: grooves only.
    pub filter: fine_drums_dataset::Filter,
    /// Bars of prompt. Default: 2.
    pub prompt_bars: usize,
    /// Bars each system continues with. Default: 14.
    pub bars: usize,
    /// The base seed: piece `i` is generated with seed `seed + i`. Default: 0.
    pub seed: u64,
    /// Onset-matching tolerance in ticks at 480 per quarter. Default: 60 (half a 16th).
    pub tolerance: i64,
    /// Only the test files whose `midi_filename` is listed, when given. Default: all.
    pub only: Option<HashSet<String>>,
    /// The split whose files are cut into pieces: the test split to report, the validation
    /// split to choose settings on. Default: test.
    pub split: Split,
}

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol {
            template: Template::default(),
            filter: fine_drums_dataset::Filter::default(),
            prompt_bars: 2,
            bars: 14,
            seed: 0,
            tolerance: 60,
            only: None,
            split: Split::Test,
        }
    }
}

/// One evaluation window of a test file: a prompt and the drummer's true continuation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Piece {
    /// `<file>@<bar>`, the file's path with `/` as `_` and the window's first bar after any
    /// leading silence.
    pub id: String,
    /// The prompt bars, as played.
    pub prompt: Groove,
    /// The bars the drummer played next.
    pub truth: Groove,
}

/// The windows of the test split, and what the training split gives the scores and the
/// baselines: its bars (for duplication), its density of hits (for the random baseline) and
/// its prompt/completion pairs (to train a model on).
#[derive(Clone, Debug)]
pub struct Data {
    protocol: Protocol,
    preparer: Preparer,
    read: ReadOptions,
    pieces: Vec<Piece>,
    train_grooves: Vec<Groove>,
    train_bars: HashSet<String>,
    prepared: Prepared,
}

impl Data {
    /// No data yet, for `protocol`.
    pub fn new(protocol: &Protocol) -> Data {
        let mut preparer = Preparer::default();
        preparer.template = protocol.template.clone();
        preparer.windows = protocol.windows();
        preparer.filter = protocol.filter.clone();
        let mut read = ReadOptions::default();
        read.voices = VoiceMap::Gmd9;
        Data {
            protocol: protocol.clone(),
            preparer,
            read,
            pieces: Vec::new(),
            train_grooves: Vec::new(),
            train_bars: HashSet::new(),
            prepared: Prepared::default(),
        }
    }

    /// Whether `entry` is one that [`add`](Data::add) uses: a training file or a file of the
    /// protocol's split that the filter keeps.
    pub fn wants(&self, entry: &Entry) -> bool {
        self.preparer.filter.reject(entry).is_none()
            && (entry.split == Split::Train || entry.split == self.protocol.split)
    }

    /// Adds one dataset file from its bytes: a training file to the training data, a file of
    /// the protocol's split as its whole windows. A file that does not read is an error naming it.
    pub fn add(&mut self, entry: &Entry, bytes: &[u8], tokens: &dyn CountTokens) -> Result<()> {
        if !self.wants(entry) {
            return Ok(());
        }
        let at = |source| Error::File { path: entry.path.clone(), source };
        let raw = midi::read(bytes, &self.read).map_err(at)?;
        let format = &self.protocol.template.codec.format;
        let q = format.quantise(&raw).map_err(at)?;
        if entry.split == Split::Train {
            self.preparer.add(&mut self.prepared, entry, bytes, tokens)?;
            self.train_bars.extend(roll_bars(&q).unwrap_or_default());
            self.train_grooves.push(raw);
            return Ok(());
        }
        if self.protocol.only.as_ref().is_some_and(|w| !w.contains(&entry.path)) {
            return Ok(());
        }
        let (p, c) = (self.protocol.prompt_bars, self.protocol.bars);
        let played = self.protocol.template.played(&q);
        let (first, bars) =
            (played.start, played.len().min(raw.bars.len().saturating_sub(played.start)));
        for start in self.protocol.windows().starts(bars, p + c) {
            let k = first + start;
            self.pieces.push(Piece {
                id: piece_id(&entry.path, start),
                prompt: raw.slice(k..k + p),
                truth: raw.slice(k + p..k + p + c),
            });
        }
        Ok(())
    }

    /// The test windows, in the order their files were added.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The prompt/completion pairs of the training split, as `prepare` cuts them.
    pub fn train_pairs(&self) -> impl Iterator<Item = &Pair> {
        self.prepared.split(Split::Train)
    }
}

impl Protocol {
    /// The protocol for a model trained on the files a manifest describes: its template,
    /// its filter, and its windows' prompt and completion bars.
    pub fn of_manifest(manifest: &fine_drums_dataset::Manifest) -> Protocol {
        Protocol {
            template: manifest.template.clone(),
            filter: manifest.filter.clone(),
            prompt_bars: manifest.windows.prompt_bars,
            bars: manifest.windows.completion_bars,
            ..Protocol::default()
        }
    }

    /// The windows of an evaluation: the prompt and the bars after it, one after another.
    fn windows(&self) -> Windows {
        let mut w = Windows::default();
        w.prompt_bars = self.prompt_bars;
        w.completion_bars = self.bars;
        w.stride = self.prompt_bars + self.bars;
        w
    }
}

fn piece_id(path: &str, start: usize) -> String {
    format!("{}@{start}", path.trim_end_matches(".mid").replace('/', "_"))
}

/// What a system wrote for one piece.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Generated {
    /// Every raw sample the model wrote (resamples included), as text.
    pub samples: Vec<String>,
    /// The bars it continued the prompt with.
    pub continuation: Groove,
}

impl Generated {
    /// What a system wrote: its raw samples and the bars kept from them.
    pub fn new(samples: Vec<String>, continuation: Groove) -> Generated {
        Generated { samples, continuation }
    }
}

/// A system that continues prompts: a language model behind some backend.
pub trait System {
    /// Its name in the tables (`local`, `openai:ft:…`).
    fn name(&self) -> &str;

    /// Continues `piece.prompt` with `bars` bars, sampling with `seed`.
    fn generate(
        &mut self,
        piece: &Piece,
        bars: usize,
        seed: u64,
    ) -> std::result::Result<Generated, BoxError>;

    /// The negative log-likelihood (nats) per bar of `truth` (the drummer's bars, encoded)
    /// after `prompt` (as the template writes it), for systems that can score text;
    /// `Ok(None)` (the default) for those that cannot.
    fn nll_per_bar(
        &mut self,
        prompt: &str,
        truth: &str,
    ) -> std::result::Result<Option<f64>, BoxError> {
        let _ = (prompt, truth);
        Ok(None)
    }
}

impl<S: System + ?Sized> System for &mut S {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn generate(
        &mut self,
        piece: &Piece,
        bars: usize,
        seed: u64,
    ) -> std::result::Result<Generated, BoxError> {
        (**self).generate(piece, bars, seed)
    }

    fn nll_per_bar(
        &mut self,
        prompt: &str,
        truth: &str,
    ) -> std::result::Result<Option<f64>, BoxError> {
        (**self).nll_per_bar(prompt, truth)
    }
}

/// The scorer of an [`FnSystem`] made with [`FnSystem::scoring`].
type Scorer = Box<dyn FnMut(&str, &str) -> std::result::Result<Option<f64>, BoxError>>;

/// A [`System`] made of a name and a function: see [`system`].
pub struct FnSystem<F> {
    name: String,
    generate: F,
    score: Option<Scorer>,
}

impl<F> FnSystem<F> {
    /// The same system, scoring text with `score(prompt, truth)` (see
    /// [`System::nll_per_bar`]).
    pub fn scoring(
        mut self,
        score: impl FnMut(&str, &str) -> std::result::Result<Option<f64>, BoxError> + 'static,
    ) -> FnSystem<F> {
        self.score = Some(Box::new(score));
        self
    }
}

/// A system named `name` that continues a piece with `generate(piece, bars, seed)`.
///
/// ```
/// use fine_drums_eval::{Generated, Piece, System, system};
///
/// // A "model" that plays the prompt's first bar again and again.
/// let mut again = system("again", |piece: &Piece, bars: usize, _seed: u64| {
///     let mut continuation = piece.prompt.slice(0..1);
///     continuation.bars = vec![piece.prompt.bars[0].clone(); bars];
///     Ok(Generated::new(Vec::new(), continuation))
/// });
/// assert_eq!(again.name(), "again");
/// ```
pub fn system<F>(name: impl Into<String>, generate: F) -> FnSystem<F>
where
    F: FnMut(&Piece, usize, u64) -> std::result::Result<Generated, BoxError>,
{
    FnSystem { name: name.into(), generate, score: None }
}

impl<F> System for FnSystem<F>
where
    F: FnMut(&Piece, usize, u64) -> std::result::Result<Generated, BoxError>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &mut self,
        piece: &Piece,
        bars: usize,
        seed: u64,
    ) -> std::result::Result<Generated, BoxError> {
        (self.generate)(piece, bars, seed)
    }

    fn nll_per_bar(
        &mut self,
        prompt: &str,
        truth: &str,
    ) -> std::result::Result<Option<f64>, BoxError> {
        self.score.as_mut().map_or(Ok(None), |f| f(prompt, truth))
    }
}

/// Where the outputs of systems are kept as they arrive, so that an evaluation stopped by a
/// failure goes on where it stopped: a folder of files, or memory.
pub trait Cache {
    /// The saved output of `system` on `piece`, if any.
    fn load(&mut self, system: &str, piece: &str) -> Option<Vec<u8>>;

    /// Saves the output of `system` on `piece`.
    fn save(
        &mut self,
        system: &str,
        piece: &str,
        bytes: &[u8],
    ) -> std::result::Result<(), BoxError>;
}

/// A [`Cache`] that keeps nothing between runs.
#[derive(Clone, Debug, Default)]
pub struct MemoryCache(BTreeMap<(String, String), Vec<u8>>);

impl Cache for MemoryCache {
    fn load(&mut self, system: &str, piece: &str) -> Option<Vec<u8>> {
        self.0.get(&(system.to_string(), piece.to_string())).cloned()
    }

    fn save(
        &mut self,
        system: &str,
        piece: &str,
        bytes: &[u8],
    ) -> std::result::Result<(), BoxError> {
        self.0.insert((system.to_string(), piece.to_string()), bytes.to_vec());
        Ok(())
    }
}

/// An output as the cache keeps it: the raw samples, and the continuation in the exact
/// format (so that it reads back as it was).
#[derive(Serialize, Deserialize)]
struct Saved {
    samples: Vec<String>,
    continuation: String,
}

/// Outputs of another tool to score beside the systems: drumroll text per piece id (prompt
/// bars first, or the continuation alone). A piece with no text counts as an unusable output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Import {
    /// Its name in the tables.
    pub name: String,
    /// The text of each piece, by [`Piece::id`].
    pub texts: BTreeMap<String, String>,
}

impl Import {
    /// An import named `name`, with no text yet.
    pub fn new(name: impl Into<String>) -> Import {
        Import { name: name.into(), texts: BTreeMap::new() }
    }
}

/// Progress of an evaluation, for a progress bar: a system has finished `done` of `total`
/// pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// The system at work.
    pub system: &'a str,
    /// Pieces done.
    pub done: usize,
    /// Pieces in all.
    pub total: usize,
}

/// The voice names of the map every system is scored in.
fn voice_names() -> Vec<String> {
    (0..VoiceMap::Gmd9.len()).map(|v| VoiceMap::Gmd9.name(Voice::new(v as u8))).collect()
}

/// One system's continuations of every piece, as the scoring takes them.
struct Run {
    name: String,
    grooves: Vec<Groove>,
    validity: Option<Validity>,
    /// Pieces with no output at all.
    missing: usize,
}

impl Run {
    fn new(name: &str, grooves: Vec<Groove>, validity: Option<Validity>) -> Run {
        Run { name: name.to_string(), grooves, validity, missing: 0 }
    }
}

impl Protocol {
    /// Runs the evaluation: the human continuations, the repeat and random baselines, each
    /// system (through `cache`), and each import, all scored on the same pieces.
    pub fn run(
        &self,
        data: &Data,
        systems: &mut [Box<dyn System + '_>],
        imports: &[Import],
        cache: &mut dyn Cache,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Evaluation> {
        let pieces = &data.pieces;
        if pieces.is_empty() {
            return Err(Error::Invalid {
                what: "pieces",
                message: "no test piece has enough bars for the window (or the list of pieces matched none)".into(),
            });
        }
        let c = self.bars;
        let names = voice_names();
        let mut results: Vec<Run> = Vec::new();
        let mut nll = vec![None; 3];
        results.push(Run::new("human", pieces.iter().map(|x| x.truth.clone()).collect(), None));
        results.push(Run::new(
            "repeat",
            pieces.iter().map(|x| repeat(&x.prompt, c)).collect(),
            None,
        ));
        let density = Density::of(&data.train_grooves, names.len(), 16);
        let mut baseline = Vec::with_capacity(pieces.len());
        for (i, x) in pieces.iter().enumerate() {
            let mut rng = SplitMix64::seed_from_u64(self.seed + i as u64);
            baseline.push(random(&x.prompt, &density, c, &mut rng));
        }
        results.push(Run::new("random", baseline, None));
        for system in systems.iter_mut() {
            let (grooves, validity, score) =
                self.generate(&mut **system, pieces, cache, progress)?;
            results.push(Run::new(system.name(), grooves, Some(validity)));
            nll.push(score);
        }
        for import in imports {
            let (grooves, validity, missing) = self.import(import, pieces)?;
            let mut run = Run::new(&import.name, grooves, Some(validity));
            run.missing = missing;
            results.push(run);
            nll.push(None);
        }
        let mut evaluation = self.score(data, &results, &names);
        for (s, n) in evaluation.scores.iter_mut().zip(nll) {
            s.nll_per_bar = n;
        }
        Ok(evaluation)
    }

    /// One system's continuation of every piece, from the cache where it has them.
    fn generate(
        &self,
        system: &mut dyn System,
        pieces: &[Piece],
        cache: &mut dyn Cache,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<(Vec<Groove>, Validity, Option<f64>)> {
        let name = system.name().to_string();
        let mut nll = Some(0.0);
        let format = &self.template.codec.format;
        let mut grooves = Vec::with_capacity(pieces.len());
        let mut validity = Validity::default();
        for (i, piece) in pieces.iter().enumerate() {
            let fail = |source: BoxError| Error::System {
                system: name.clone(),
                piece: piece.id.clone(),
                source,
            };
            let saved =
                match cache.load(&name, &piece.id).and_then(|b| serde_json::from_slice(&b).ok()) {
                    Some(saved) => saved,
                    None => {
                        let out = system
                            .generate(piece, self.bars, self.seed + i as u64)
                            .map_err(fail)?;
                        let saved = Saved {
                            samples: out.samples,
                            continuation: Format::EXACT
                                .encode(&out.continuation)
                                .map_err(|e| fail(e.into()))?,
                        };
                        let json = serde_json::to_vec(&saved).map_err(|e| fail(e.into()))?;
                        cache.save(&name, &piece.id, &json).map_err(fail)?;
                        saved
                    }
                };
            let ctx = piece.prompt.context_after();
            for s in &saved.samples {
                validity.add(format, self.template.completion_body(s), &ctx);
            }
            let context = Context::new(ctx.ticks_per_quarter, ctx.meter, ctx.tempo);
            let full = Format::EXACT
                .decode(&saved.continuation, &context)
                .and_then(|g| g.with_voices(VoiceMap::Gmd9))
                .map_err(|e| fail(e.into()))?;
            grooves.push(full);
            let prompt = self.template.prompt_text(&piece.prompt).map_err(|e| fail(e.into()))?;
            let truth = format.encode(&piece.truth).map_err(|e| fail(e.into()))?;
            nll = match (nll, system.nll_per_bar(&prompt, &truth).map_err(fail)?) {
                (Some(sum), Some(score)) => Some(sum + score),
                _ => None,
            };
            progress(Progress { system: &name, done: i + 1, total: pieces.len() });
        }
        Ok((grooves, validity, nll.map(|sum| sum / pieces.len() as f64)))
    }

    /// An import's continuation of every piece, and how many pieces it has no file for. A
    /// file may hold the prompt bars first: they are recognised by their content (or by the
    /// file holding the whole window) and left out.
    fn import(&self, import: &Import, pieces: &[Piece]) -> Result<(Vec<Groove>, Validity, usize)> {
        let (p, c) = (self.prompt_bars, self.bars);
        let mut grooves = Vec::with_capacity(pieces.len());
        let mut validity = Validity::default();
        let mut missing = 0;
        for piece in pieces {
            let Some(text) = import.texts.get(&piece.id) else {
                missing += 1;
                grooves.push(Groove::new(480, fine_drums_codec::Grid::SIXTEENTH, VoiceMap::Gmd9));
                continue;
            };
            let ctx = piece.prompt.context_after();
            validity.add(&Format::DRUMROLL, text, &ctx);
            let mut g =
                Format::DRUMROLL.decode_lenient(text, &ctx).map(|l| l.groove).unwrap_or_else(
                    |_| Groove::new(480, fine_drums_codec::Grid::SIXTEENTH, VoiceMap::Paper6),
                );
            let starts_with_prompt = g.bars.len() >= p
                && roll_bars(&g.slice(0..p)).ok()
                    == roll_bars(&piece.prompt.with_voices(VoiceMap::Paper6)?).ok();
            if g.bars.len() >= p + c || starts_with_prompt {
                g = g.slice(p..g.bars.len());
            }
            g.bars.truncate(c);
            grooves.push(g.with_voices(VoiceMap::Gmd9)?);
        }
        Ok((grooves, validity, missing))
    }

    /// Scores every system's continuations, and draws every piece.
    fn score(&self, data: &Data, results: &[Run], names: &[String]) -> Evaluation {
        let pieces = &data.pieces;
        let (p, c) = (self.prompt_bars, self.bars);
        let whole = |piece: &Piece, g: &Groove| {
            let mut whole = piece.prompt.clone();
            whole.bars.extend(g.bars.iter().cloned());
            whole
        };
        let human = distributions(&results[0].grooves, names);
        let mut scores = Vec::with_capacity(results.len());
        for Run { name, grooves, validity, missing } in results {
            // Structure is scored only where the continuation is whole: a missing or short
            // one would otherwise count as a steady, or a shorter, piece.
            let rolls: Vec<RollPiece> = pieces
                .iter()
                .zip(grooves)
                .filter(|(_, g)| g.bars.len() == c)
                .map(|(piece, g)| RollPiece {
                    bars: roll_bars(&whole(piece, g)).unwrap_or_default(),
                    continuation: p,
                })
                .collect();
            let dist = distributions(grooves, names);
            let phrases = phrases(
                pieces
                    .iter()
                    .zip(grooves)
                    .filter(|(_, g)| g.bars.len() == c)
                    .map(|(p, g)| (&p.prompt, g)),
                names,
            );
            let mut acc = Accuracy::new(names.len());
            for (piece, g) in pieces.iter().zip(grooves) {
                acc.add(&piece.truth, g, self.tolerance);
            }
            scores.push(Scores {
                name: name.clone(),
                pieces: pieces.len(),
                bars_asked: pieces.len() * c,
                bars_produced: grooves.iter().map(|g| g.bars.len()).sum(),
                missing: *missing,
                validity: *validity,
                structure: structure(&rolls, &data.train_bars),
                versus_human: compare(&human, &dist),
                phrases,
                distributions: dist,
                onset_f1: acc.f1_all(),
                onset_f1_per_voice: names
                    .iter()
                    .enumerate()
                    .map(|(v, n)| (n.clone(), acc.f1(v)))
                    .collect(),
                velocity_mae: acc.velocity_mae(),
                nll_per_bar: None,
            });
        }
        let (mut pictures, mut played) = (Vec::new(), Vec::new());
        for (i, piece) in pieces.iter().enumerate() {
            let systems: Vec<(String, Groove)> =
                results.iter().map(|r| (r.name.clone(), whole(piece, &r.grooves[i]))).collect();
            let panels: Vec<(&str, &Groove)> =
                systems.iter().map(|(n, g)| (n.as_str(), g)).collect();
            let svg = crate::svg::piano_roll(&piece.id, names, p, &panels);
            let picture = format!("{}.svg", piece.id);
            played.push(Played { id: piece.id.clone(), picture: picture.clone(), systems });
            pictures.push((picture, svg));
        }
        Evaluation {
            split: self.split,
            pieces: pieces.len(),
            prompt_bars: p,
            bars: c,
            scores,
            pictures,
            played,
        }
    }
}
