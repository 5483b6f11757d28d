//! The offline model: a variable-order Markov model over the beat format's steps.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use fine_drums_codec::beat::{BeatOptions, Layout, split_bar};
use fine_drums_codec::{Format, Grid, Meter};
use fine_drums_dataset::{Pair, Template};
use serde::{Deserialize, Serialize};

use crate::sample::sample;
use fine_drums_llm::sample::Sampling;
use fine_drums_llm::{Error, Result};

const NONE: u32 = u32::MAX;
const UNKNOWN: u32 = u32::MAX - 1;
/// Context levels, from the shortest: position; + the same step a bar ago; + the previous
/// step; + the step before it; + the same step two bars ago.
const LEVELS: usize = 5;

/// Keys are already mixed 64-bit numbers: hashing them again is wasted work.
#[derive(Default)]
pub(super) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) type Map<V> = HashMap<u64, V, BuildHasherDefault<Identity>>;

/// What followed one context, and how often.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) total: u32,
    pub(super) next: Vec<(u32, u32)>,
}

/// What training read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrainStats {
    /// Examples (JSONL lines or texts) read.
    pub examples: usize,
    /// Bars learned from.
    pub bars: usize,
    /// Lines that were not well-formed bars, and were skipped.
    pub skipped_lines: usize,
}

/// A variable-order Markov model of drum bars in the beat format.
///
/// A bar is a sequence of steps; a step's symbol is what the beat format writes for it
/// (`Kh`, `ss`, ``, `h+2`, …). The model predicts each step from five nested contexts:
///
/// 1. its position in the bar (and the bar's layout),
/// 2. \+ the symbol at the same position one bar earlier,
/// 3. \+ the previous step,
/// 4. \+ the step before that,
/// 5. \+ the symbol at the same position two bars earlier.
///
/// Probabilities are interpolated from the longest context down with Witten-Bell
/// smoothing (the weight a context leaves to shorter ones is its number of distinct
/// continuations over that plus its count, as in PPM method C), ending in the
/// add-one unigram over every symbol seen. On top of that sits a cache model (Kuhn & De
/// Mori 1990): the same five contexts counted over the prompt's own bars, interpolated
/// last and leaving one extra unit of weight to the trained model, so that a continuation
/// keeps the prompt's groove instead of drifting to the training set's commonest one. The
/// bar-ago contexts and the cache are what keep a groove steady; the smoothing and the
/// temperature are what vary it.
///
/// Output is built from symbols that decoded strictly in training, joined in the layout
/// of the prompt's last bar, so every bar it writes is grammatical.
///
/// # Limits
///
/// It has no notion of song form beyond two bars: it will not place a fill before a
/// section change on purpose, or build intensity over 16 bars. It cannot invent a step
/// (a drum combination or microtiming value) it never saw. It copies the prompt's meter
/// and never changes tempo. Its memory of a piece is two bars long, so long
/// continuations drift towards the training set's most common patterns at each position.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub(super) template: Template,
    /// The beat format settings of the template.
    pub(super) beat: BeatOptions,
    pub(super) completion_bars: usize,
    pub(super) vocab: Vec<String>,
    pub(super) ids: HashMap<String, u32>,
    pub(super) unigram: Vec<u32>,
    pub(super) nodes: Map<Node>,
    pub(super) stats: TrainStats,
    pub(super) lengths: HashMap<usize, usize>,
    pub(super) valid: HashMap<String, bool>,
    pub(super) layouts: Vec<Layout>,
}

/// The layouts of every meter the codec writes on the format's grid (numerators 1 to 32,
/// denominators 1 to 64): a line of any other shape is not a bar.
fn layouts(grid: Grid) -> Vec<Layout> {
    let mut out: Vec<Layout> = (1..=32u8)
        .flat_map(|n| [1u8, 2, 4, 8, 16, 32, 64].map(move |d| (n, d)))
        .filter_map(|(n, d)| Meter::new(n, d).ok())
        .filter_map(|m| Layout::of(m, grid).ok())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(level: usize, layout: Layout, pos: usize, ctx: [u32; 4]) -> u64 {
    let [b1, s1, s2, b2] = ctx;
    let parts = [
        level as u64
            | (u64::from(layout.groups) << 8)
            | (u64::from(layout.per) << 24)
            | ((pos as u64) << 40),
        u64::from(b1) | (u64::from(s1) << 32),
        u64::from(s2) | (u64::from(b2) << 32),
    ];
    parts.iter().fold(0x243f_6a88_85a3_08d3, |h, &p| mix(h ^ p))
}

/// The context of each level: later levels see more.
fn contexts(b1: u32, s1: u32, s2: u32, b2: u32) -> [[u32; 4]; LEVELS] {
    [
        [NONE, NONE, NONE, NONE],
        [b1, NONE, NONE, NONE],
        [b1, s1, NONE, NONE],
        [b1, s1, s2, NONE],
        [b1, s1, s2, b2],
    ]
}

/// Adds the contexts of `bars[from..]` to `nodes` with `weight`, reading the bars before
/// `from` as history. Unknown symbols are context only, never counted as continuations.
fn count(
    nodes: &mut Map<Node>,
    mut unigram: Option<&mut Vec<u32>>,
    bars: &[(Layout, Vec<u32>)],
    from: usize,
    weight: u32,
) {
    let (mut s1, mut s2) = (NONE, NONE);
    for (i, (layout, steps)) in bars.iter().enumerate() {
        let back = |n: usize, pos: usize| {
            i.checked_sub(n)
                .and_then(|j| bars.get(j))
                .filter(|(l, _)| l == layout)
                .map_or(NONE, |(_, s)| s[pos])
        };
        for (pos, &sym) in steps.iter().enumerate() {
            if i >= from && sym != UNKNOWN {
                if let Some(u) = unigram.as_deref_mut() {
                    u[sym as usize] += weight;
                }
                for (level, ctx) in
                    contexts(back(1, pos), s1, s2, back(2, pos)).into_iter().enumerate()
                {
                    let node = nodes.entry(key(level, *layout, pos, ctx)).or_default();
                    node.total += weight;
                    match node.next.iter_mut().find(|(s, _)| *s == sym) {
                        Some((_, c)) => *c += weight,
                        None => node.next.push((sym, weight)),
                    }
                }
            }
            s2 = s1;
            s1 = sym;
        }
    }
}

/// How much a bar of the prompt counts in the cache model (Kuhn & De Mori 1990) that
/// keeps a continuation close to its own groove.
const CACHE_WEIGHT: u32 = 1;
/// The extra weight a cache context leaves to the trained model, so that a prompt of two
/// bars steers the continuation without freezing it.
const CACHE_ESCAPE: f64 = 1.0;
/// The probability [`Model::nll_per_bar`] gives a step the model cannot write.
const UNSEEN: f64 = 1e-6;

/// Witten-Bell interpolation of one context's counts over the distribution below it.
fn interpolate(node: Option<&Node>, escape: f64, probs: &mut [f64]) {
    let Some(node) = node else { return };
    let distinct = node.next.len() as f64 + escape;
    let denom = f64::from(node.total) + distinct;
    let keep = distinct / denom;
    for p in probs.iter_mut() {
        *p *= keep;
    }
    for &(s, n) in &node.next {
        probs[s as usize] += f64::from(n) / denom;
    }
}

impl Model {
    /// An untrained model for the beat format settings of `template`.
    pub fn new(template: &Template) -> Result<Model> {
        let Format::Beat(beat) = template.codec.format else {
            return Err(Error::invalid(
                "format",
                format!(
                    "the local backend models the beat format, not {}; prepare the data with --format beat",
                    template.codec.format.name()
                ),
            ));
        };
        Ok(Model {
            template: template.clone(),
            completion_bars: 14,
            vocab: Vec::new(),
            ids: HashMap::new(),
            unigram: Vec::new(),
            nodes: Map::default(),
            stats: TrainStats::default(),
            lengths: HashMap::new(),
            valid: HashMap::new(),
            layouts: layouts(beat.grid),
            beat,
        })
    }

    /// The template the model reads prompts with.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// What training read so far.
    pub fn stats(&self) -> TrainStats {
        self.stats
    }

    /// Distinct step symbols known.
    pub fn vocabulary(&self) -> usize {
        self.vocab.len()
    }

    /// Contexts with counts.
    pub fn contexts(&self) -> usize {
        self.nodes.len()
    }

    /// Bars a completion holds when the model writes one: the commonest completion length
    /// in training (14 before any training).
    pub fn completion_bars(&self) -> usize {
        self.completion_bars
    }

    /// Whether `symbol` is a step the codec accepts, remembered once checked.
    fn is_valid(&mut self, symbol: &str) -> bool {
        if let Some(&v) = self.valid.get(symbol) {
            return v;
        }
        let ok = self.beat.parse_step(symbol).is_ok();
        self.valid.insert(symbol.to_string(), ok);
        ok
    }

    pub(super) fn intern(&mut self, symbol: &str) -> u32 {
        if let Some(&id) = self.ids.get(symbol) {
            return id;
        }
        let id = self.vocab.len() as u32;
        self.vocab.push(symbol.to_string());
        self.ids.insert(symbol.to_string(), id);
        self.unigram.push(0);
        id
    }

    /// Training bars: well-formed lines as interned ids, and the count of skipped lines.
    fn learn_bars(&mut self, text: &str) -> (Vec<(Layout, Vec<u32>)>, usize) {
        let mut out = Vec::new();
        let mut skipped = 0;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match split_bar(line) {
                Some(bar)
                    if self.layouts.contains(&bar.layout)
                        && bar.steps.iter().all(|s| self.is_valid(s)) =>
                {
                    let ids = bar.steps.iter().map(|s| self.intern(s)).collect();
                    out.push((bar.layout, ids));
                }
                _ => skipped += 1,
            }
        }
        (out, skipped)
    }

    /// Prompt bars: well-formed lines, with symbols the model never saw as [`UNKNOWN`].
    fn prompt_bars(&self, text: &str) -> Vec<(Layout, Vec<u32>)> {
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some(bar) = split_bar(line).filter(|b| self.layouts.contains(&b.layout)) else {
                continue;
            };
            let ids: Option<Vec<u32>> = bar
                .steps
                .iter()
                .map(|s| match self.ids.get(*s) {
                    Some(&id) => Some(id),
                    None => self.beat.parse_step(s).is_ok().then_some(UNKNOWN),
                })
                .collect();
            if let Some(ids) = ids {
                out.push((bar.layout, ids));
            }
        }
        out
    }

    /// Learns from the bars of one text (one example: prompt bars then completion bars).
    pub fn train_text(&mut self, text: &str) {
        let (bars, skipped) = self.learn_bars(text);
        self.stats.examples += 1;
        self.stats.bars += bars.len();
        self.stats.skipped_lines += skipped;
        count(&mut self.nodes, Some(&mut self.unigram), &bars, 0, 1);
    }

    /// Learns from a groove directly, encoded with the model's format settings (one
    /// example: every bar of the groove, in order).
    pub fn train_groove(&mut self, groove: &fine_drums_codec::Groove) -> Result<()> {
        let text = self.template.codec.format.encode(groove)?;
        self.train_text(&text);
        Ok(())
    }

    /// Learns from one prompt/completion example as the template writes them (the prompt
    /// ends with the separator, the completion starts with a newline and ends with the stop
    /// sequence; either may lack them).
    pub fn train_example(&mut self, prompt: &str, completion: &str) {
        let prompt = prompt.strip_suffix(self.template.separator.as_str()).unwrap_or(prompt);
        let completion = self.template.completion_body(completion);
        let bars = completion.lines().filter(|l| !l.trim().is_empty()).count();
        *self.lengths.entry(bars).or_default() += 1;
        self.train_text(&format!("{prompt}\n{completion}"));
        self.settle_completion_bars();
    }

    /// A model for `template` counted from `pairs` (see [`train_pairs`](Model::train_pairs)).
    pub fn from_pairs<'a>(
        template: &Template,
        pairs: impl IntoIterator<Item = &'a Pair>,
    ) -> Result<Model> {
        let mut model = Model::new(template)?;
        model.train_pairs(pairs);
        Ok(model)
    }

    /// Learns from the pairs the dataset crate cut, as they are: no JSON in between.
    pub fn train_pairs<'a>(&mut self, pairs: impl IntoIterator<Item = &'a Pair>) {
        for pair in pairs {
            self.train_example(&pair.prompt, &pair.completion);
        }
    }

    /// Learns from a fine-tuning file: legacy prompt/completion JSONL or chat JSONL, as
    /// `prepare` writes them. A line that is neither is an error naming it.
    pub fn train_jsonl(&mut self, name: &str, jsonl: &str) -> Result<()> {
        let read = fine_drums_dataset::export::read_examples(&self.template, name, jsonl)?;
        for example in &read.examples {
            self.train_example(&example.prompt, &example.completion);
        }
        Ok(())
    }

    /// Sets the bars a completion holds to the commonest completion length seen.
    fn settle_completion_bars(&mut self) {
        if let Some((&bars, _)) = self.lengths.iter().max_by_key(|(b, n)| (**n, **b)) {
            self.completion_bars = bars.clamp(1, fine_drums_llm::MAX_COMPLETION_BARS);
        }
    }

    /// Continues the bars of `prompt` with `bars` new bars, sampled with `sampling` from
    /// `rng`, while `fits(text so far, next line)` allows. Returns the text (a newline,
    /// then one line per bar) and whether `fits` cut it short.
    ///
    /// The model continues in the layout of the prompt's last well-formed bar (4/4 when
    /// there is none). Lines of the prompt that are not bars are ignored.
    pub fn generate(
        &self,
        prompt: &str,
        bars: usize,
        sampling: Sampling,
        rng: &mut impl rand_core::Rng,
        mut fits: impl FnMut(&str, &str) -> bool,
    ) -> (String, bool) {
        let prompt = prompt.strip_suffix(self.template.separator.as_str()).unwrap_or(prompt);
        let mut history = self.prompt_bars(prompt);
        let layout = history
            .last()
            .map(|(l, _)| *l)
            .or_else(|| Layout::of(Meter::FOUR_FOUR, self.beat.grid).ok())
            .unwrap_or(Layout { groups: 4, per: 4 });
        let mut out = String::from("\n");
        let mut probs = vec![0f64; self.vocab.len()];
        if self.vocab.is_empty() {
            return (out, false);
        }
        let (mut s1, mut s2) = history.last().map_or((NONE, NONE), |(_, s)| {
            (s[s.len() - 1], s.len().checked_sub(2).map_or(NONE, |j| s[j]))
        });
        let mut line = String::new();
        let mut cache = Map::default();
        count(&mut cache, None, &history, 0, CACHE_WEIGHT);
        for _ in 0..bars {
            let n = history.len();
            let back = |k: usize, pos: usize| {
                n.checked_sub(k)
                    .and_then(|j| history.get(j))
                    .filter(|(l, _)| *l == layout)
                    .map_or(NONE, |(_, s)| s[pos])
            };
            let mut steps = Vec::with_capacity(layout.steps());
            for pos in 0..layout.steps() {
                let ctx = contexts(back(1, pos), s1, s2, back(2, pos));
                self.distribution(&cache, layout, pos, ctx, &mut probs);
                let sym = sample(&mut probs, sampling, rng);
                steps.push(sym);
                s2 = s1;
                s1 = sym;
            }
            line.clear();
            let words: Vec<&str> = steps.iter().map(|&s| self.vocab[s as usize].as_str()).collect();
            layout.write(&words, &mut line);
            if !fits(&out, &line) {
                return (out, true);
            }
            out.push_str(&line);
            out.push('\n');
            history.push((layout, steps));
        }
        (out, false)
    }

    /// The negative log-likelihood (in nats) per bar of the bars of `continuation` after
    /// those of `prompt`, under the same model that [`generate`](Model::generate) samples:
    /// the trained counts and the cache of the prompt's bars. A step the model never saw
    /// (which it could never write) counts as probability 1e-6. Lines that are not bars are
    /// skipped; `None` when `continuation` holds no bar.
    pub fn nll_per_bar(&self, prompt: &str, continuation: &str) -> Option<f64> {
        let prompt = prompt.strip_suffix(self.template.separator.as_str()).unwrap_or(prompt);
        let mut history = self.prompt_bars(prompt);
        let bars = self.prompt_bars(continuation);
        if bars.is_empty() || self.vocab.is_empty() {
            return None;
        }
        let mut cache = Map::default();
        count(&mut cache, None, &history, 0, CACHE_WEIGHT);
        let (mut s1, mut s2) = history.last().map_or((NONE, NONE), |(_, s)| {
            (s[s.len() - 1], s.len().checked_sub(2).map_or(NONE, |j| s[j]))
        });
        let mut probs = vec![0f64; self.vocab.len()];
        let mut nll = 0.0;
        for (layout, steps) in &bars {
            let n = history.len();
            let back = |k: usize, pos: usize| {
                n.checked_sub(k)
                    .and_then(|j| history.get(j))
                    .filter(|(l, _)| l == layout)
                    .map_or(NONE, |(_, s)| s[pos])
            };
            for (pos, &sym) in steps.iter().enumerate() {
                let ctx = contexts(back(1, pos), s1, s2, back(2, pos));
                self.distribution(&cache, *layout, pos, ctx, &mut probs);
                let p = probs.get(sym as usize).copied().unwrap_or(0.0).max(UNSEEN);
                nll -= p.ln();
                s2 = s1;
                s1 = sym;
            }
            history.push((*layout, steps.clone()));
        }
        Some(nll / bars.len() as f64)
    }

    /// The interpolated distribution of the next step, into `probs`.
    fn distribution(
        &self,
        cache: &Map<Node>,
        layout: Layout,
        pos: usize,
        ctx: [[u32; 4]; LEVELS],
        probs: &mut [f64],
    ) {
        let total: f64 = self.unigram.iter().map(|&c| f64::from(c) + 1.0).sum();
        for (p, &c) in probs.iter_mut().zip(&self.unigram) {
            *p = (f64::from(c) + 1.0) / total;
        }
        for (level, c) in ctx.into_iter().enumerate() {
            interpolate(self.nodes.get(&key(level, layout, pos, c)), 0.0, probs);
        }
        // The piece itself speaks last, backing off to everything above.
        for (level, c) in ctx.into_iter().enumerate() {
            interpolate(cache.get(&key(level, layout, pos, c)), CACHE_ESCAPE, probs);
        }
    }
}
