//! The continuation pipeline: MIDI in, a model's bars appended, MIDI out.

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Channel, Groove, VoiceMap};
use fine_drums_dataset::Manifest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::traits::Complete;
use crate::types::{CompletionRequest, FinishReason, Usage};

/// How to continue a groove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContinueOptions {
    /// The model to ask.
    pub model: String,
    /// Bars to add. Default: 14.
    pub bars: usize,
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
}

impl ContinueOptions {
    /// Options for `model` with the defaults above.
    pub fn new(model: impl Into<String>) -> ContinueOptions {
        ContinueOptions {
            model: model.into(),
            bars: 14,
            temperature: 1.0,
            top_p: 1.0,
            samples: 1,
            seed: None,
            attempts: 3,
            max_tokens: None,
        }
    }
}

/// What a continuation did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The prompt sent.
    pub prompt: String,
    /// The raw text of the sample that was kept.
    pub completion: String,
    /// Why that sample ended.
    pub finish_reason: Option<FinishReason>,
    /// Tokens used by every request.
    pub usage: Usage,
    /// Requests made.
    pub requests: u32,
    /// Bars asked for.
    pub bars_asked: usize,
    /// Bars kept from the sample.
    pub bars_kept: usize,
    /// Bars of the kept sample that were dropped, and why (line and column).
    pub dropped: Vec<String>,
    /// Leading silent bars of the source before the prompt.
    pub silent_bars: usize,
    /// Prompt bars taken from the source.
    pub prompt_bars: usize,
}

/// A continued groove: the MIDI file and its report.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Continuation {
    /// A Standard MIDI File: the source up to the end of the prompt, unchanged, then the
    /// new bars, in the source's tempo and meter.
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
    dropped: Vec<String>,
}

/// Continues the drum groove in `midi` with `backend`.
///
/// The prompt is built by the manifest exactly as the training files were; each sample
/// is decoded leniently; a sample that gives fewer bars than asked is resampled (with
/// the seed plus one) up to [`attempts`](ContinueOptions::attempts) requests, and the
/// best one seen is kept. Only a run in which no sample gives a single bar is an error.
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
    let format = template.codec.format()?;
    let prompt = manifest.prompt(midi)?;
    let context = prompt.bars.context_after();
    let longest = prompt.text.lines().map(str::len).max().unwrap_or(0);
    let max_tokens = options.max_tokens.unwrap_or_else(|| {
        // A token is at least one byte: twice the longest prompt line per bar is generous.
        let per_bar = (2 * longest).max(64);
        u32::try_from(per_bar * (options.bars + 1)).unwrap_or(u32::MAX)
    });

    let mut usage = Usage::default();
    let mut best: Option<Sample> = None;
    let mut reasons = Vec::new();
    let mut requests = 0;
    while requests < options.attempts {
        let mut request = CompletionRequest::new(&options.model, &prompt.text, max_tokens);
        request.temperature = options.temperature;
        request.top_p = options.top_p;
        request.n = options.samples;
        request.stop = vec![template.stop.clone()];
        request.seed = options.seed.map(|s| s.wrapping_add(u64::from(requests)));
        let completion = backend.complete(&request).await?;
        requests += 1;
        usage += completion.usage;
        for choice in completion.choices {
            let body = template.completion_body(&choice.text);
            let mut lenient = match format.decode_lenient(body, &context) {
                Ok(l) => l,
                Err(e) => {
                    reasons.push(format!("request {requests}: {e}"));
                    continue;
                }
            };
            let mut dropped: Vec<String> =
                lenient.dropped.iter().map(ToString::to_string).collect();
            let extra = lenient.groove.bars.len().saturating_sub(options.bars);
            if extra > 0 {
                lenient.groove.bars.truncate(options.bars);
                dropped.push(format!("{extra} bars past the {} asked for", options.bars));
            }
            if lenient.groove.bars.is_empty() {
                let why = dropped.first().cloned().unwrap_or_else(|| "no bar in the sample".into());
                reasons.push(format!("request {requests}: {why}"));
                continue;
            }
            let sample = Sample {
                text: choice.text,
                finish: choice.finish_reason,
                groove: lenient.groove,
                dropped,
            };
            let better = best.as_ref().is_none_or(|b| {
                (sample.groove.bars.len(), usize::MAX - sample.dropped.len())
                    > (b.groove.bars.len(), usize::MAX - b.dropped.len())
            });
            if better {
                best = Some(sample);
            }
        }
        if best.as_ref().is_some_and(|b| b.groove.bars.len() == options.bars) {
            break;
        }
    }
    let Some(best) = best else {
        return Err(Error::Unusable { attempts: requests, reasons });
    };

    // The source as it was, up to the end of the prompt, then the new bars.
    let mut read = ReadOptions::lossless();
    read.channel = Channel::try_from(template.codec.channel)?;
    let source = midi::read(midi, &read)?;
    let prompt_end = prompt.first_bar + manifest.windows.prompt_bars;
    let mut out = source.slice(0..prompt_end);
    let new = best.groove.with_voices(VoiceMap::Full)?.with_grid(out.grid)?;
    let bars_kept = new.bars.len();
    out.bars.extend(new.bars);
    let mut write = WriteOptions::default();
    write.channel = read.channel;
    let bytes = midi::write(&out, &write)?;
    Ok(Continuation {
        midi: bytes,
        groove: out,
        report: Report {
            prompt: prompt.text,
            completion: best.text,
            finish_reason: Some(best.finish),
            usage,
            requests,
            bars_asked: options.bars,
            bars_kept,
            dropped: best.dropped,
            silent_bars: prompt.first_bar,
            prompt_bars: manifest.windows.prompt_bars,
        },
    })
}
