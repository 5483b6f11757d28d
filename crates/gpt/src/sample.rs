//! Continuing bars, and scoring them: sampling with a KV cache under the grammar of bars, so
//! that every output decodes strictly, and the negative log-likelihood of a continuation.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{D, Tensor};
use fine_drums_codec::Meter;
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;

pub use fine_drums_llm::sample::Sampling;

use crate::controls::{self, Steer};
use crate::error::{Error, Result};
use crate::model::{Batch, Cache, Gpt};
use crate::tokens::{self, Control, Encoded, Grammar, Next, Vocabulary};

/// What to generate: see [`Drummer::generate`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Generation<'a> {
    /// The bars before, beat-format text, one a line.
    pub prompt: &'a str,
    /// For an infill, the bars after the ones to write.
    pub suffix: Option<&'a str>,
    /// The meter of the prompt's first bar (marks change it). Default: 4/4.
    pub meter: Meter,
    /// Bars to write.
    pub bars: usize,
    /// Samples, drawn together. Default: 1.
    pub n: usize,
    /// How tokens are drawn. Default: the sampler's default.
    pub sampling: Sampling,
    /// The seed of the first sample; sample `i` uses `seed + i`. Default: 0.
    pub seed: u64,
    /// The controls. Default: none.
    pub steer: &'a Steer,
    /// How much hotter the steps of a fill are drawn, as a factor of the temperature, with
    /// no nucleus: a bar asked to be a fill, or one the model marks as a fill itself. 1 draws
    /// them as hot as any other bar. Default: [`FILL_HEAT`].
    pub fill_heat: f32,
    /// The same factor for the steps of a bar asked for an intensity and not a fill: below
    /// 1, such a bar is drawn cooler, nearer the intensity asked. Default: [`STEERED_HEAT`].
    pub steered_heat: f32,
}

/// The default [`Generation::fill_heat`], chosen on the GMD validation split (see the
/// crate README).
pub const FILL_HEAT: f32 = 1.5;

/// The default [`Generation::steered_heat`], chosen on the GMD validation split as the one
/// whose bars came nearest the intensity asked (see the crate README).
pub const STEERED_HEAT: f32 = 0.9;

static FREE: std::sync::LazyLock<Steer> = std::sync::LazyLock::new(Steer::default);

impl<'a> Generation<'a> {
    /// `bars` bars after `prompt`, with the defaults above.
    pub fn new(prompt: &'a str, bars: usize) -> Generation<'a> {
        Generation {
            prompt,
            suffix: None,
            meter: Meter::FOUR_FOUR,
            bars,
            n: 1,
            sampling: Sampling::default(),
            seed: 0,
            steer: &FREE,
            fill_heat: FILL_HEAT,
            steered_heat: STEERED_HEAT,
        }
    }
}

/// Draws a token from `logits` (changed in place), among those `allowed`.
fn draw(logits: &mut [f32], allowed: &[bool], s: Sampling, rng: &mut SplitMix64) -> u32 {
    for (l, &ok) in logits.iter_mut().zip(allowed) {
        if !ok {
            *l = f32::NEG_INFINITY;
        }
    }
    let best = logits
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |b, (i, &l)| if l > b.1 { (i, l) } else { b });
    if s.temperature <= 0.0 {
        return best.0 as u32;
    }
    let mut p: Vec<f64> =
        logits.iter().map(|&l| f64::from((l - best.1) / s.temperature).exp()).collect();
    s.draw(&mut p, rng)
}

/// The step slot that token `id`, taken next by grammar `g`, carries into the model: as
/// [`Vocabulary::encode`] gives it, 0 for a bar line and a bar's controls, else the step it
/// fills.
fn fed_slot(g: &Grammar, vocab: &Vocabulary, id: u32) -> usize {
    if g.next() == Next::Bar || vocab.as_control(id).is_some() { 0 } else { g.slot() }
}

/// How the next token of a bar is drawn, from the generation's `sampling`:
/// - a bar's own controls (`opening`: its fill marker and intensity where not asked for)
///   from the model's whole distribution at temperature 1 (or the generation's, if lower),
///   so that fills and intensities come as often as the drummers' did: a nucleus cut the
///   fill marker, which the model gives less than a quarter's chance at a phrase end;
/// - the steps of a fill (asked, or marked by the model) with no nucleus and `fill_heat`
///   times hotter: the nucleus cuts exactly the rarer steps that make a fill;
/// - the steps of a bar asked for an intensity with no nucleus, `steered_heat` times as hot;
/// - any other step as `sampling` says.
fn bar_sampling(
    sampling: Sampling,
    opening: bool,
    fill: bool,
    intensity_asked: bool,
    generation: &Generation<'_>,
) -> Sampling {
    let mut s = sampling;
    if opening {
        s.temperature = s.temperature.min(1.0);
    } else if fill {
        s.temperature *= generation.fill_heat;
    } else if intensity_asked {
        s.temperature *= generation.steered_heat;
    } else {
        return sampling;
    }
    (s.top_k, s.top_p) = (0, 1.0);
    s
}

/// The model with its vocabulary: what continues and scores bars.
#[derive(Clone, Debug)]
pub struct Drummer {
    /// The network.
    pub gpt: Gpt,
    /// Its tokens.
    pub vocab: Vocabulary,
}

impl Drummer {
    /// Beat-format bars as tokens, bars numbered from `first`; each bar with its fill marker
    /// and intensity when the vocabulary has controls.
    fn bars(&self, text: &str, first: usize) -> Result<Encoded> {
        if self.vocab.controls().is_none() {
            let mut e = self.vocab.encode(text)?;
            e.bar.iter_mut().for_each(|b| *b = b.saturating_add(first as u16));
            return Ok(e);
        }
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(n, l)| (n, l.trim()))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let bars: Vec<&str> = lines.iter().map(|l| l.1).collect();
        let controls = controls::bar_controls(&self.vocab, &bars, false);
        let mut e = Encoded::default();
        for (k, (n, line)) in lines.iter().enumerate() {
            let c = controls.get(k).map_or(&[][..], |c| &c[..]);
            self.vocab
                .encode_bar_with(line, first + k, c, &mut e)
                .map_err(|e| Error::Text { line: n + 1, message: e.to_string() })?;
        }
        Ok(e)
    }

    /// How many of `seq`'s first tokens are the piece's controls (style, tempo).
    fn header_len(&self, seq: &Encoded) -> usize {
        seq.ids
            .iter()
            .take_while(|&&id| {
                matches!(self.vocab.as_control(id), Some(Control::Style(_) | Control::Tempo(_)))
            })
            .count()
    }

    /// The prompt's tokens, its bars numbered from `first`, its oldest bars dropped while it
    /// holds more than `keep` tokens (and, for a single bar longer than that, its oldest
    /// tokens); the meter its last bar is in; and the number of the bar after it.
    fn prompt(
        &self,
        prompt: &str,
        meter: Meter,
        keep: usize,
        first: usize,
    ) -> Result<(Encoded, Meter, usize)> {
        let full = self.bars(prompt, first)?;
        let bars = full.bar.last().map_or(first, |&b| usize::from(b) + 1);
        let mut e = full.clone();
        if e.len() > keep {
            // The first bar token that leaves at most `keep` tokens (found in one pass, so
            // that a long prompt costs its length, not its length times its bars), else the
            // last `keep` tokens of the one bar too long to keep whole.
            let least = e.len() - keep;
            let cut = e
                .ids
                .iter()
                .enumerate()
                .skip(least.max(1))
                .find(|&(_, &t)| t == tokens::BAR)
                .map_or(least, |(i, _)| i);
            e.ids.drain(..cut);
            e.slot.drain(..cut);
            e.bar.drain(..cut);
        }
        // The meter the continuation is in: the prompt's last mark, else `meter`.
        let mut grammar = Grammar::new(meter, self.vocab.beat());
        let mut scratch = String::new();
        for &id in &full.ids {
            grammar.push(&self.vocab, id, &mut scratch)?;
        }
        Ok((e, grammar.meter(), bars))
    }

    /// The whole input of a generation: the piece's controls, then the prompt (the bars
    /// before), or for an infill the prefix, the suffix (the bars after, numbered past the
    /// `bars` to write) and the middle marker. Returns it with the meter to write in and the
    /// number of the first bar to write.
    fn input(
        &self,
        prompt: &str,
        suffix: Option<&str>,
        meter: Meter,
        bars: usize,
        steer: &Steer,
    ) -> Result<(Encoded, Meter, usize)> {
        controls::check(steer, &self.vocab)?;
        let context = self.gpt.config().context;
        // Only the prompt's place in a 16-bar phrase matters (phrases of 4, 8 and 16 bars).
        let start = steer.prompt_start.map_or(0, |s| s % 16);
        let mut out = Encoded::default();
        for id in controls::header(steer, &self.vocab) {
            out.push(id, 0, 0);
        }
        let Some(suffix) = suffix else {
            let (p, meter, first) = self.prompt(prompt, meter, context / 2 - out.len(), start)?;
            out.extend(&p);
            return Ok((out, meter, first));
        };
        let marker = |c: Control| {
            self.vocab.control(&c).ok_or_else(|| {
                Error::invalid("infill", "this model was trained without fill-in-the-middle")
            })
        };
        let (pre, suf, mid) =
            (marker(Control::Prefix)?, marker(Control::Suffix)?, marker(Control::Middle)?);
        let (p, meter, first) = self.prompt(prompt, meter, context / 4, start)?;
        let mut after = self.bars(suffix, first + bars)?;
        if after.is_empty() {
            return Err(Error::invalid("infill", "no bar after the bars to write"));
        }
        if after.len() > context / 4 {
            // The first bars after, whole: cut at the last bar line inside the budget.
            let cut = (1..=context / 4)
                .rev()
                .find(|&k| after.ids.get(k) == Some(&tokens::BAR))
                .unwrap_or(context / 4);
            after.ids.truncate(cut);
            after.slot.truncate(cut);
            after.bar.truncate(cut);
        }
        out.push(pre, 0, p.bar.first().map_or(0, |&b| usize::from(b)));
        out.extend(&p);
        out.push(suf, 0, first + bars);
        out.extend(&after);
        out.push(mid, 0, first);
        Ok((out, meter, first))
    }

    /// `n` continuations of `prompt` (beat-format bars read in `meter`), `bars` bars each,
    /// sampled together with `seed` (sample `i` uses `seed + i`). Each is beat-format text, a
    /// bar a line, and decodes strictly: only tokens the grammar allows are drawn, in the
    /// prompt's meter, with no marks.
    pub fn continue_bars(
        &self,
        prompt: &str,
        meter: Meter,
        bars: usize,
        n: usize,
        sampling: Sampling,
        seed: u64,
    ) -> Result<Vec<String>> {
        self.continue_bars_until(prompt, meter, bars, n, sampling, seed, &AtomicBool::new(false))
    }

    /// [`continue_bars`](Drummer::continue_bars) that gives up, with [`Error::Cancelled`],
    /// once `cancel` is set: it is read before every token, so a caller whose client has
    /// gone stops the work within one step of the model.
    #[allow(clippy::too_many_arguments)]
    pub fn continue_bars_until(
        &self,
        prompt: &str,
        meter: Meter,
        bars: usize,
        n: usize,
        sampling: Sampling,
        seed: u64,
        cancel: &AtomicBool,
    ) -> Result<Vec<String>> {
        let mut g = Generation::new(prompt, bars);
        (g.meter, g.n, g.sampling, g.seed) = (meter, n, sampling, seed);
        self.generate(&g, cancel)
    }

    /// The bars `generation` asks for: a continuation of its prompt, or the bars between
    /// its prompt and its suffix, steered by its controls. Gives up, with
    /// [`Error::Cancelled`], once `cancel` is set. An unknown style, an intensity out of
    /// range, controls or a suffix for a model trained without them, are errors.
    pub fn generate(
        &self,
        generation: &Generation<'_>,
        cancel: &AtomicBool,
    ) -> Result<Vec<String>> {
        let Generation { prompt, suffix, meter, bars, n, sampling, seed, steer, .. } = generation;
        let (bars, sampling, seed, steer) = (*bars, *sampling, *seed, *steer);
        let n = (*n).max(1);
        let (prompt, meter, first_bar) = self.input(prompt, *suffix, *meter, bars, steer)?;
        let device = self.gpt.device();
        let mut cache = Cache::default();
        let mut rngs: Vec<SplitMix64> =
            (0..n).map(|i| SplitMix64::seed_from_u64(seed.wrapping_add(i as u64))).collect();
        let mut grammars: Vec<Grammar> =
            (0..n).map(|_| Grammar::new(meter, self.vocab.beat())).collect();
        let mut texts = vec![String::new(); n];
        let mut done_bars = vec![0usize; n];
        let vocab_len = self.vocab.len();
        let mut allowed = vec![false; vocab_len];
        // The prompt, once per sample; every row grows by one token a step, so the rows stay
        // aligned and share one cache.
        let mut rows: Vec<Encoded> = vec![prompt.clone(); n];
        let starts: Vec<usize> = vec![0; n];
        let batch = Batch::windows(&prompt, &starts, prompt.len(), device)?;
        let mut logits = self.gpt.forward_cached(&batch, &mut cache)?;
        let context = self.gpt.config().context;
        // Whether each row's current bar is a fill: asked for, or marked so by the model.
        let mut fill_bar = vec![false; n];
        loop {
            if done_bars.iter().all(|&b| b >= bars) {
                break;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            if cache.len + 1 > context {
                // The context is full: keep the piece's controls (style, tempo) and the newer
                // half of every row, and start again. Every row keeps as many tokens, so the
                // rows stay aligned.
                let keep = context / 2;
                let mut all = Encoded::default();
                let mut starts = Vec::with_capacity(n);
                for row in &mut rows {
                    let head = self.header_len(row).min(keep / 2);
                    let cut = row.len() - (keep - head);
                    row.ids.drain(head..cut);
                    row.slot.drain(head..cut);
                    row.bar.drain(head..cut);
                    starts.push(all.len());
                    all.extend(row);
                }
                cache = Cache::default();
                let batch = Batch::windows(&all, &starts, keep, device)?;
                logits = self.gpt.forward_cached(&batch, &mut cache)?;
            }
            let last = logits.dim(1)? - 1;
            let scores: Vec<Vec<f32>> = logits
                .narrow(1, last, 1)?
                .squeeze(1)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec2()?;
            let mut next = Encoded::default();
            for (i, mut row) in scores.into_iter().enumerate() {
                let g = &grammars[i];
                let finished = done_bars[i] >= bars;
                let k = done_bars[i];
                let at_start = g.next() == Next::Step && g.slot() == 1;
                let want_int = steer.intensity.get(k).copied().flatten();
                let want_fill = steer.fills.get(k).copied().flatten();
                // Forced bar controls are the only tokens allowed where they come: the fill
                // marker first, then the intensity (the model may mark the fill itself when
                // only the intensity is asked for).
                let forced: Option<(Control, bool)> = match (at_start, g.bar_controls()) {
                    (true, 0) => want_fill
                        .map(|f| (Control::Fill(f), false))
                        .or(want_int.map(|i| (Control::Intensity(i), true))),
                    (true, 1) => want_int.map(|i| (Control::Intensity(i), false)),
                    _ => None,
                };
                for (t, a) in allowed.iter_mut().enumerate() {
                    let t = t as u32;
                    let control = self.vocab.as_control(t);
                    *a = !finished
                        && t != tokens::END
                        && t != tokens::METER
                        && t != tokens::TEMPO
                        && g.allows(&self.vocab, t)
                        && match (&forced, &control) {
                            (Some((c, free_fill)), Some(got)) => {
                                got == c || (*free_fill && matches!(got, Control::Fill(_)))
                            }
                            (Some(_), None) => false,
                            (None, Some(got)) => {
                                matches!(got, Control::Intensity(_) | Control::Fill(_))
                            }
                            (None, None) => true,
                        };
                }
                let draw_with = bar_sampling(
                    sampling,
                    at_start && g.bar_controls() < 2 && forced.is_none(),
                    fill_bar[i],
                    want_int.is_some(),
                    generation,
                );
                let id = if finished {
                    tokens::PAD
                } else {
                    draw(&mut row, &allowed, draw_with, &mut rngs[i])
                };
                if id == tokens::BAR {
                    fill_bar[i] = false;
                } else if let Some(Control::Fill(f)) = self.vocab.as_control(id) {
                    fill_bar[i] = f;
                }
                let slot = fed_slot(g, &self.vocab, id);
                next.push(id, slot, first_bar + done_bars[i]);
                rows[i].push(id, slot, first_bar + done_bars[i]);
                if !finished {
                    grammars[i].push(&self.vocab, id, &mut texts[i])?;
                    if !grammars[i].in_bar() && id != tokens::BAR {
                        done_bars[i] += 1;
                    }
                }
            }
            let batch = Batch::windows(&next, &(0..n).collect::<Vec<_>>(), 1, device)?;
            logits = self.gpt.forward_cached(&batch, &mut cache)?;
        }
        Ok(texts)
    }

    /// The negative log-likelihood (in nats) of `continuation`'s tokens after `prompt`'s,
    /// per bar of the continuation. The prompt's oldest bars are dropped if both do not fit
    /// the context.
    pub fn nll_per_bar(&self, prompt: &str, continuation: &str, meter: Meter) -> Result<f64> {
        self.nll_per_bar_with(prompt, None, continuation, meter, &Steer::default())
    }

    /// [`nll_per_bar`](Drummer::nll_per_bar) with controls, and for an infill the bars
    /// after (`suffix`). With a vocabulary of controls, each bar of the continuation is
    /// scored with its own fill marker and intensity: the likelihood of both, never more
    /// than that of the bar alone.
    pub fn nll_per_bar_with(
        &self,
        prompt: &str,
        suffix: Option<&str>,
        continuation: &str,
        meter: Meter,
        steer: &Steer,
    ) -> Result<f64> {
        let lines = continuation.lines().filter(|l| !l.trim().is_empty()).count();
        if lines == 0 {
            return Err(Error::invalid("continuation", "no bar to score"));
        }
        let (mut seq, _, first_bar) = self.input(prompt, suffix, meter, lines, steer)?;
        let cont = self.bars(continuation, first_bar)?;
        let bars = lines;
        let context = self.gpt.config().context;
        let p = seq.len();
        if p == 0 {
            return Err(Error::invalid("prompt", "no bar to continue from"));
        }
        seq.extend(&cont);
        // Windows of the context's length, each scoring the tokens the one before did not,
        // with at least half a context before them. As in training, a window after the first
        // opens with the piece's controls (style, tempo), then bars from a bar line.
        let head = self.header_len(&seq).min(context / 4);
        let mut picked = 0f32;
        let mut scored = p;
        while scored < seq.len() {
            let (w, shift) = if scored == p && p < context {
                let mut w = Encoded::default();
                w.extend_from(&seq, 0..context.min(seq.len()));
                (w, 0)
            } else {
                let least = scored - (context / 2 - head);
                let from =
                    (least..scored).find(|&i| seq.ids[i] == tokens::BAR).unwrap_or(least).max(head);
                let mut w = Encoded::default();
                w.extend_from(&seq, 0..head);
                w.extend_from(&seq, from..(from + context - head).min(seq.len()));
                (w, from - head)
            };
            let len = w.len();
            let end = shift + len;
            let batch = Batch::windows(&w, &[0], len, self.gpt.device())?;
            let logits = self.gpt.forward(&batch)?.squeeze(0)?;
            let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            let new = end - scored;
            let targets = Tensor::from_vec(seq.ids[scored..end].to_vec(), new, self.gpt.device())?;
            // Token k is predicted at the window position before it.
            let rows = logp.narrow(0, scored - 1 - shift, new)?;
            picked += rows.gather(&targets.unsqueeze(1)?, 1)?.sum_all()?.to_scalar::<f32>()?;
            scored = end;
        }
        Ok(-f64::from(picked) / bars as f64)
    }
}
