//! The continuation pipeline: MIDI in, a model's bars appended, MIDI out.

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Format, Groove, Pitch, Voice, VoiceMap};
use fine_drums_dataset::Manifest;
use serde::{Deserialize, Serialize};

use fine_drums_feel::Feel;
use fine_drums_llm::{Complete, CompletionRequest, FinishReason, Steer, Usage};

use crate::error::{Error, Result};

/// How to continue a groove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContinueOptions {
    /// The model to ask.
    pub model: String,
    /// Bars to add. Default: 14.
    pub bars: usize,
    /// Where the new bars start, as a bar index from 0: the bars before it are kept as they
    /// were, and the last prompt bars of them are the prompt. Default: `None`, after the
    /// source's last bar.
    pub from_bar: Option<usize>,
    /// Bars of prompt. Default: `None`, the manifest's (what the model was trained with).
    pub prompt_bars: Option<usize>,
    /// Give the new bars a drummer's velocity and microtiming ([`Feel::gmd`], shifted to the
    /// prompt's own feel) when the format writes hits on the grid with a few loudness levels
    /// (the beat format without microtiming, in gmd9). Default: true.
    pub humanise: bool,
    /// Sampling temperature. Default: 1.
    pub temperature: f32,
    /// Nucleus sampling. Default: 1 (off).
    pub top_p: f32,
    /// Samples per request; the best one is kept. Default: 1.
    pub samples: u32,
    /// Seed of the first request; each resample adds 1. Default: none.
    pub seed: Option<u64>,
    /// Requests to make before giving up on a usable sample (one that gives all the bars
    /// asked for). Default: 3.
    pub attempts: u32,
    /// Most tokens per sample; `None` allows a generous bound from the prompt's bar length.
    pub max_tokens: Option<u32>,
    /// What the new bars are steered by (the drum GPT): style, tempo, and per new bar its
    /// intensity and whether it is a fill. Default: nothing asked for.
    pub steer: Steer,
    /// How much of the drummer's feel the new bars get, 0 (on the grid) to 1. Default: 1.
    pub feel_amount: f32,
}

impl ContinueOptions {
    /// Options for `model` with the defaults above.
    pub fn new(model: impl Into<String>) -> ContinueOptions {
        ContinueOptions {
            model: model.into(),
            bars: 14,
            from_bar: None,
            prompt_bars: None,
            humanise: true,
            temperature: 1.0,
            top_p: 1.0,
            samples: 1,
            seed: None,
            attempts: 3,
            max_tokens: None,
            steer: Steer::default(),
            feel_amount: 1.0,
        }
    }
}

/// What a continuation did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The prompt sent.
    pub prompt: String,
    /// The raw text of each sample that was kept, one per window.
    pub completions: Vec<String>,
    /// The raw text of every sample, kept or not, in the order received.
    pub samples: Vec<String>,
    /// Why the last kept sample ended.
    pub finish_reason: Option<FinishReason>,
    /// Tokens used by every request.
    pub usage: Usage,
    /// Requests made.
    pub requests: u32,
    /// Bars asked for.
    pub bars_asked: usize,
    /// Bars kept from the sample.
    pub bars_kept: usize,
    /// Bars past the number asked for, cut from the last sample.
    pub bars_trimmed: usize,
    /// Bars of the kept samples that the decoder dropped, and why.
    pub dropped: Vec<Dropped>,
    /// Why the continuation ended before the bars asked for, if it did.
    pub stopped_early: Option<String>,
    /// The first prompt bar's index in the source, from 0.
    pub prompt_start: usize,
    /// Notes of the kept source bars that the model's voice map does not list, as (pitch,
    /// count): kept in the output, but not part of the prompt.
    pub unmapped: Vec<(u8, u32)>,
    /// Prompt bars taken from the source.
    pub prompt_bars: usize,
}

/// A bar of a kept sample that the decoder dropped: which request's answer, where in it,
/// and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dropped {
    /// The request whose sample held the bar, from 1.
    pub request: u32,
    /// The line in the sample's encoded bars, from 1 (0 when the decoder named none).
    pub line: usize,
    /// The column in that line, in characters from 1 (0 when the decoder named none).
    pub column: usize,
    /// What the decoder expected.
    pub reason: String,
}

impl Dropped {
    pub(crate) fn new(request: u32, error: &fine_drums_codec::Error) -> Dropped {
        match error {
            fine_drums_codec::Error::Syntax { line, column, message } => {
                Dropped { request, line: *line, column: *column, reason: message.clone() }
            }
            other => Dropped { request, line: 0, column: 0, reason: other.to_string() },
        }
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request {}: ", self.request)?;
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        f.write_str(&self.reason)
    }
}

/// A continued groove: the MIDI file and its report.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Continuation {
    /// A Standard MIDI File: the source up to the end of the prompt (every bar, unless
    /// [`from_bar`](ContinueOptions::from_bar) says otherwise), unchanged, then the new bars,
    /// in the source's tempo and meter.
    pub midi: Vec<u8>,
    /// The whole groove written to [`midi`](Continuation::midi).
    pub groove: Groove,
    /// What happened.
    pub report: Report,
}

struct Sample {
    text: String,
    finish: FinishReason,
    groove: Groove,
    dropped: Vec<Dropped>,
}

/// The built-in feel, read once.
pub(crate) fn gmd_feel() -> &'static Feel {
    static FEEL: std::sync::OnceLock<Feel> = std::sync::OnceLock::new();
    FEEL.get_or_init(Feel::gmd)
}

/// Whether the built-in feel applies to bars written in `format`: the beat format on the
/// grid (no microtiming) in gmd9, the one it was learnt for.
pub(crate) fn feels(format: Format) -> bool {
    matches!(format, Format::Beat(o) if o.microtiming.is_none() && o.voices == VoiceMap::Gmd9)
}

/// `bars` (in the model's voices) in every pitch and on `grid`, each voice with the pitch
/// `played` (lossless, pitches as voices) played it with most often: a pedal hi-hat stays 44.
pub(crate) fn as_played(
    bars: &Groove,
    played: &Groove,
    grid: fine_drums_codec::Grid,
) -> Result<Groove> {
    let mut new = bars.with_voices(VoiceMap::Full)?.with_grid(grid)?;
    let pitch = pitches_used(played, bars.voices);
    for hit in new.bars.iter_mut().flat_map(|b| b.hits.iter_mut()) {
        hit.voice = Voice::new(pitch[hit.voice.index() & 127]);
    }
    Ok(new)
}

/// For each voice of `map`, the pitch that `source`'s hits (pitches as voices, as a lossless
/// read gives them) played it with most often, as a table from the pitch `map` writes for the
/// voice to that one; pitches of voices the source never played map to themselves.
fn pitches_used(source: &Groove, map: VoiceMap) -> [u8; 128] {
    let mut counts = vec![[0u32; 128]; map.len()];
    for hit in source.bars.iter().flat_map(|b| &b.hits) {
        let p = (hit.voice.index() & 127) as u8;
        if let Some(v) = map.voice_of(Pitch::new(p)) {
            counts[v.index()][usize::from(p)] += 1;
        }
    }
    let mut table: [u8; 128] = std::array::from_fn(|p| p as u8);
    for (v, count) in counts.iter().enumerate() {
        let (best, n) =
            count.iter().enumerate().fold((0, 0), |b, (p, &n)| if n > b.1 { (p, n) } else { b });
        if n > 0 {
            table[usize::from(map.pitch_of(Voice::new(v as u8)).as_int())] = best as u8;
        }
    }
    table
}

/// Continues the drum groove in `midi` with `backend`, after its last bar (or from
/// [`from_bar`](ContinueOptions::from_bar)).
///
/// The first prompt is the last [`prompt_bars`](ContinueOptions::prompt_bars) bars before
/// the new ones, encoded by the manifest exactly as the training prompts were. Each
/// sample is decoded leniently; a sample with no bar, or with bars the decoder had to
/// drop, is resampled (seed plus one) up to [`attempts`](ContinueOptions::attempts)
/// requests, keeping the best seen. A model trained on windows of C completion bars
/// writes about C bars per request; for more, the pipeline slides the window as training
/// did: the last P bars so far become the next prompt. Bars past the number asked for
/// are trimmed. Only a first request with no usable bar at all is an error; later
/// failures end the continuation early, and the report says so.
pub async fn continue_midi(
    midi: &[u8],
    manifest: &Manifest,
    backend: &(impl Complete + ?Sized),
    options: &ContinueOptions,
) -> Result<Continuation> {
    if options.bars == 0 || options.attempts == 0 || options.samples == 0 {
        return Err(Error::invalid("options", "bars, attempts and samples must be 1 or more"));
    }
    let template = &manifest.template;
    let format = template.codec.format;
    // The bars asked for must fit the format's bar limit with the prompt before them, which
    // is known before any request is sent: no model is asked for what cannot be written.
    let max_bars = format.limits().max_bars;
    if options.bars > max_bars {
        return Err(Error::invalid(
            "bars",
            format!("{} new bars is more than the {max_bars} a groove may hold", options.bars),
        ));
    }
    let p = options.prompt_bars.unwrap_or(manifest.windows.prompt_bars);
    let prompt = manifest.prompt_before(midi, options.from_bar, p)?;
    let before = prompt.first_bar + prompt.bars.bars.len();
    if before + options.bars > max_bars {
        return Err(Error::invalid(
            "bars",
            format!(
                "{before} bars up to the prompt's end and {} new ones is more than the {max_bars} a groove may hold",
                options.bars
            ),
        ));
    }
    let longest = prompt.text.lines().map(str::len).max().unwrap_or(0);
    let max_tokens = options.max_tokens.unwrap_or_else(|| {
        // A token is at least one byte: twice the longest prompt line per bar is generous.
        let per_bar = (2 * longest).max(64);
        u32::try_from(per_bar * (manifest.windows.completion_bars + 1)).unwrap_or(u32::MAX)
    });

    let mut usage = Usage::default();
    let mut requests = 0;
    let mut report_dropped = Vec::new();
    let mut completions = Vec::new();
    let mut samples = Vec::new();
    let mut finish = None;
    let mut trimmed = 0;
    let mut so_far = prompt.bars.clone();
    let mut stopped_early = None;
    while so_far.bars.len() - p < options.bars {
        let window = so_far.slice(so_far.bars.len() - p..so_far.bars.len());
        let text = if completions.is_empty() {
            prompt.text.clone()
        } else {
            template.prompt_text(&window)?
        };
        let context = window.context_after();
        let mut best: Option<Sample> = None;
        let mut reasons = Vec::new();
        let mut tries = 0;
        while tries < options.attempts {
            let mut request = CompletionRequest::new(&options.model, &text, max_tokens);
            request.temperature = options.temperature;
            request.top_p = options.top_p;
            request.n = options.samples;
            request.stop = vec![template.stop.clone()];
            request.seed = options.seed.map(|s| s.wrapping_add(u64::from(requests)));
            let done = so_far.bars.len() - p;
            request.steer = options.steer.from_bar(done);
            if !options.steer.is_free() {
                request.steer.bars = Some(options.bars - done);
            }
            // Where this request's prompt starts in the file, for the model's phrases.
            request.steer.prompt_start = Some(prompt.first_bar + done);
            let completion = backend.complete(&request).await?;
            requests += 1;
            tries += 1;
            usage += completion.usage;
            for choice in completion.choices {
                samples.push(choice.text.clone());
                let body = template.completion_body(&choice.text);
                let lenient = match format.decode_lenient(body, &context) {
                    Ok(l) => l,
                    Err(e) => {
                        reasons.push(format!("request {requests}: {e}"));
                        continue;
                    }
                };
                let dropped: Vec<Dropped> =
                    lenient.dropped.iter().map(|e| Dropped::new(requests, e)).collect();
                if lenient.groove.bars.is_empty() {
                    reasons.push(match dropped.first() {
                        Some(d) => d.to_string(),
                        None => format!("request {requests}: no bar in the sample"),
                    });
                    continue;
                }
                let sample = Sample {
                    text: choice.text,
                    finish: choice.finish_reason,
                    groove: lenient.groove,
                    dropped,
                };
                let rank = |s: &Sample| (s.groove.bars.len(), usize::MAX - s.dropped.len());
                if best.as_ref().is_none_or(|b| rank(&sample) > rank(b)) {
                    best = Some(sample);
                }
            }
            if best.as_ref().is_some_and(|b| b.dropped.is_empty()) {
                break;
            }
        }
        let Some(mut best) = best else {
            if completions.is_empty() {
                return Err(Error::Unusable { attempts: requests, reasons });
            }
            stopped_early = Some(reasons.join("; "));
            break;
        };
        let room = options.bars - (so_far.bars.len() - p);
        if best.groove.bars.len() > room {
            trimmed += best.groove.bars.len() - room;
            best.groove.bars.truncate(room);
        }
        report_dropped.append(&mut best.dropped);
        finish = Some(best.finish);
        completions.push(best.text);
        so_far.bars.extend(best.groove.bars);
    }

    // The source as it was, up to the end of the prompt, then the new bars.
    let mut read = ReadOptions::lossless();
    read.channel = template.codec.channel;
    let source = midi::read(midi, &read)?;
    let prompt_end = (prompt.first_bar + p).min(source.bars.len());
    let mut out = source.slice(0..prompt_end);
    let mut fresh = so_far.slice(p..so_far.bars.len());
    if options.humanise && feels(format) {
        // The prompt as the drummer played it, in the model's voices.
        let played = out.slice(prompt.first_bar.min(prompt_end)..prompt_end);
        let played = played.with_voices(so_far.voices)?.with_grid(so_far.grid)?;
        let seed = options.seed.unwrap_or(0) ^ 0x6665_656c; // "feel"
        gmd_feel().humanise_by(&mut fresh, &played, seed, f64::from(options.feel_amount));
    }
    let played = out.slice(prompt.first_bar.min(prompt_end)..prompt_end);
    let new = as_played(&fresh, &played, out.grid)?;
    let unmapped = out.unmapped(so_far.voices);
    let unmapped = (0..128u8).map(|p| (p, unmapped[usize::from(p)])).filter(|u| u.1 > 0).collect();
    let bars_kept = new.bars.len();
    out.bars.extend(new.bars.into_iter().map(|mut b| {
        // The source's tempo carries on: the slice's restatement of it, and tempo marks
        // a model may write, are not kept.
        b.tempos.clear();
        b
    }));
    let mut write = WriteOptions::default();
    write.channel = read.channel;
    let bytes = midi::write(&out, &write)?;
    Ok(Continuation {
        midi: bytes,
        groove: out,
        report: Report {
            prompt: prompt.text,
            completions,
            samples,
            finish_reason: finish,
            usage,
            requests,
            bars_asked: options.bars,
            bars_kept,
            bars_trimmed: trimmed,
            dropped: report_dropped,
            stopped_early,
            prompt_start: prompt.first_bar,
            unmapped,
            prompt_bars: p,
        },
    })
}
