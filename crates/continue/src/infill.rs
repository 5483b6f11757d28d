//! Infilling: bars in the middle of a groove written again, between the bars before and
//! the bars after, with every other bar kept as it was.

use std::ops::Range;

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_dataset::Manifest;
use fine_drums_llm::{Complete, CompletionRequest, Usage};

use crate::error::{Error, Result};
use crate::pipeline::{Continuation, ContinueOptions, Dropped, Report, as_played, feels, gmd_feel};

/// Bars after the infill that the model is shown (fewer where the file has fewer).
pub const SUFFIX_BARS: usize = 4;

/// Writes bars `bars` (indices from 0; the end is excluded) of the groove in `midi` again
/// with `backend`, which sees the bars before them (the prompt, as in
/// [`continue_midi`](crate::continue_midi)) and up to [`SUFFIX_BARS`] bars after them (the
/// request's `suffix`). Every bar outside `bars` is kept exactly as it was: its notes, its
/// tempo changes and its meter. The new bars take the tempo changes of the bars they
/// replace, and a drummer's feel as continuations do.
///
/// A range with no bar before it or after it, empty, or past the file's end, is an error
/// that names the range and the file's bars. A sample with fewer bars than asked is drawn
/// again (up to [`attempts`](ContinueOptions::attempts)); a sample with more is cut.
pub async fn infill_midi(
    midi: &[u8],
    manifest: &Manifest,
    backend: &(impl Complete + ?Sized),
    options: &ContinueOptions,
    bars: Range<usize>,
) -> Result<Continuation> {
    if options.attempts == 0 || options.samples == 0 {
        return Err(Error::invalid("options", "attempts and samples must be 1 or more"));
    }
    let template = &manifest.template;
    let mut read = ReadOptions::lossless();
    read.channel = template.codec.channel;
    let source = midi::read(midi, &read)?;
    let n = source.bars.len();
    let shown = format!("bars {}-{}", bars.start + 1, bars.end);
    if bars.is_empty() || bars.end > n {
        return Err(Error::invalid(
            "infill",
            format!("{shown}: the file has bars 1-{n}; give a range inside it, first to last"),
        ));
    }
    if bars.start == 0 || bars.end == n {
        return Err(Error::invalid(
            "infill",
            format!(
                "{shown} of a {n}-bar file: an infill needs at least one bar before it and one after it (to write after the last bar, continue instead)"
            ),
        ));
    }
    let p = options.prompt_bars.unwrap_or(manifest.windows.prompt_bars).clamp(1, bars.start);
    let prompt = manifest.prompt_before(midi, Some(bars.start), p)?;
    let s = SUFFIX_BARS.min(n - bars.end);
    let after = manifest.prompt_before(midi, Some(bars.end + s), s)?;
    let suffix = after.text.strip_suffix(template.separator.as_str()).unwrap_or(&after.text);
    let k = bars.len();
    let longest = prompt.text.lines().map(str::len).max().unwrap_or(0);
    let max_tokens = options
        .max_tokens
        .unwrap_or_else(|| u32::try_from((2 * longest).max(64) * (k + 1)).unwrap_or(u32::MAX));
    let format = template.codec.format;
    let context = prompt.bars.context_after();
    let mut usage = Usage::default();
    let (mut requests, mut samples, mut reasons) = (0u32, Vec::new(), Vec::new());
    let mut best = None;
    while requests < options.attempts {
        let mut request = CompletionRequest::new(&options.model, &prompt.text, max_tokens);
        (request.temperature, request.top_p, request.n) =
            (options.temperature, options.top_p, options.samples);
        request.stop = vec![template.stop.clone()];
        request.seed = options.seed.map(|s| s.wrapping_add(u64::from(requests)));
        request.suffix = Some(suffix.to_string());
        request.steer = options.steer.clone();
        request.steer.bars = Some(k);
        request.steer.prompt_start = Some(prompt.first_bar);
        let completion = backend.complete(&request).await?;
        requests += 1;
        usage += completion.usage;
        for choice in completion.choices {
            samples.push(choice.text.clone());
            let body = template.completion_body(&choice.text);
            match format.decode_lenient(body, &context) {
                Ok(l) if l.groove.bars.len() >= k && l.dropped.is_empty() => {
                    best = Some((choice.text, choice.finish_reason, l.groove));
                }
                Ok(l) => reasons.push(match l.dropped.first() {
                    Some(e) => Dropped::new(requests, e).to_string(),
                    None => format!("request {requests}: {} of {k} bars", l.groove.bars.len()),
                }),
                Err(e) => reasons.push(format!("request {requests}: {e}")),
            }
            if best.is_some() {
                break;
            }
        }
        if best.is_some() {
            break;
        }
    }
    let Some((text, finish, mut fresh)) = best else {
        return Err(Error::Unusable { attempts: requests, reasons });
    };
    let trimmed = fresh.bars.len() - k;
    fresh.bars.truncate(k);
    let played = source.slice(prompt.first_bar..bars.start);
    if options.humanise && feels(format) {
        let played = played.with_voices(fresh.voices)?.with_grid(fresh.grid)?;
        let seed = options.seed.unwrap_or(0) ^ 0x6665_656c; // "feel"
        gmd_feel().humanise_by(&mut fresh, &played, seed, f64::from(options.feel_amount));
    }
    let new = as_played(&fresh, &played, source.grid)?;
    let mut out = source.clone();
    for (i, mut bar) in new.bars.into_iter().enumerate() {
        let old = &out.bars[bars.start + i];
        (bar.tempos, bar.meter) = (old.tempos.clone(), old.meter);
        out.bars[bars.start + i] = bar;
    }
    let unmapped = out.unmapped(fresh.voices);
    let unmapped = (0..128u8).map(|p| (p, unmapped[usize::from(p)])).filter(|u| u.1 > 0).collect();
    let mut write = WriteOptions::default();
    write.channel = read.channel;
    let bytes = midi::write(&out, &write)?;
    Ok(Continuation {
        midi: bytes,
        groove: out,
        report: Report {
            prompt: prompt.text,
            completions: vec![text],
            samples,
            finish_reason: Some(finish),
            usage,
            requests,
            bars_asked: k,
            bars_kept: k,
            bars_trimmed: trimmed,
            dropped: Vec::new(),
            stopped_early: None,
            prompt_start: prompt.first_bar,
            unmapped,
            prompt_bars: p,
        },
    })
}

/// Gives every hit of the drum groove in `midi` a drummer's feel: its velocity and
/// microtiming drawn from the learned feel ([`fine_drums_feel::Feel::gmd`]), shifted to the
/// feel of `like` (another drum MIDI file) when one is given, by `amount` (0: on the grid
/// at the format's loudness levels; 1: the whole feel). The hits are first put on the
/// manifest's grid and levels; tempo, meter and each voice's pitch are kept. The same seed
/// gives the same file.
///
/// The manifest's format must be the beat format in gmd9 without microtiming (the
/// default), the one the feel was learnt for.
pub fn humanize_midi(
    midi: &[u8],
    like: Option<&[u8]>,
    manifest: &Manifest,
    amount: f64,
    seed: u64,
) -> Result<Vec<u8>> {
    let template = &manifest.template;
    if !feels(template.codec.format) {
        return Err(Error::invalid(
            "format",
            "humanizing needs the beat format in gmd9 without microtiming (the feel's)",
        ));
    }
    if !(0.0..=1.0).contains(&amount) {
        return Err(Error::invalid("amount", format!("{amount}: an amount from 0 to 1")));
    }
    let mut read = ReadOptions::lossless();
    read.channel = template.codec.channel;
    let source = midi::read(midi, &read)?;
    let mut grid = template.read_all(midi)?;
    let played = match like {
        Some(bytes) => {
            let g = midi::read(bytes, &read)?;
            g.with_voices(grid.voices)?.with_grid(grid.grid)?
        }
        None => grid.slice(0..0),
    };
    gmd_feel().humanise_by(&mut grid, &played, seed, amount);
    let new = as_played(&grid, &source, source.grid)?;
    let mut out = source.clone();
    for (bar, new) in out.bars.iter_mut().zip(new.bars) {
        bar.hits = new.hits;
    }
    // Notes the voice map does not know are kept as they were.
    for (bar, old) in out.bars.iter_mut().zip(&source.bars) {
        let kept = old.hits.iter().filter(|h| {
            grid.voices
                .voice_of(fine_drums_codec::Pitch::new((h.voice.index() & 127) as u8))
                .is_none()
        });
        bar.hits.extend(kept.cloned());
        bar.hits
            .sort_by_key(|h| (h.step, h.offset, h.voice.index(), h.velocity.as_int(), h.length));
    }
    let mut write = WriteOptions::default();
    write.channel = read.channel;
    Ok(midi::write(&out, &write)?)
}
