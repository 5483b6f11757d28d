//! `evaluate --protocol controls` and `--protocol infill`: how well a model follows what it
//! is asked (intensity, fills, style) and how well it writes bars between others, on the
//! windows of a split (prompt + continuation bars, as the default protocol cuts them).
//!
//! - **Intensity**: each window's continuation is asked for the drummer's own intensity bar
//!   by bar; a bar agrees when its measured intensity is within one bucket.
//! - **Fills**: fills are asked for at the window's bars 4, 8, 12 and 16 and no fill at the
//!   others; a bar's departure from the bar before is set against the drummers' median
//!   departure of a fill bar (fills as `fine_drums_dataset::controls` marks them, in the
//!   same windows). The same bars with no control asked are the baseline. The other bars
//!   are split: the bar right after a fill departs from it as a drummer's does coming back
//!   to the groove, so it is set against the drummers' own bars after their fills, and
//!   against the bar before the fill (does the groove come back?).
//! - **Style**: the drummer's continuation is scored under every style; it should be likelier
//!   under its own than under the others on average. A confusion table counts the likeliest.
//! - **Infill**: bars 5-8 of each 16-bar window, scored with bars 1-4 before and 9-12 after
//!   against bars 1-4 alone, and against another window's bars 9-12 after (how much the
//!   model reads them); then written, and the seam (the last written bar against bar 9) set
//!   against the drummers' own seam there.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;

use fine_drums_codec::{Format, Groove};
use fine_drums_dataset::controls::{departure, fills, intensity};
use fine_drums_dataset::{Index, Template};
use fine_drums_eval::Piece;
use fine_drums_llm::{Complete, CompletionRequest, Steer};

/// A window of the split as text.
struct Case {
    id: String,
    genre: Option<String>,
    /// The whole window (prompt and continuation), quantised.
    window: Groove,
    /// Its bars, beat-format lines.
    bars: Vec<String>,
}

/// What every protocol here needs.
pub struct Run<'a> {
    /// The backend and its model.
    pub backend: &'a dyn Complete,
    /// The model's name.
    pub model: &'a str,
    /// How prompts are written.
    pub template: &'a Template,
    /// Prompt bars of the windows.
    pub prompt_bars: usize,
    /// Temperature and top-p.
    pub sampling: (f32, f32),
    /// The base seed: window i uses seed + i.
    pub seed: u64,
}

fn cases(run: &Run<'_>, pieces: &[Piece], index: &Index) -> Result<Vec<Case>, Box<dyn Error>> {
    let genres: BTreeMap<String, String> = index
        .entries
        .iter()
        .filter_map(|e| {
            let key = e.path.trim_end_matches(".mid").replace('/', "_");
            Some((key, e.genre()?.to_string()))
        })
        .collect();
    let format = run.template.codec.format;
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        let mut window = p.prompt.clone();
        window.bars.extend(p.truth.bars.iter().cloned());
        let window = format.quantise(&window)?;
        let text = format.encode(&window)?;
        let bars: Vec<String> =
            text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        let file = p.id.rsplit_once('@').map_or(p.id.as_str(), |(f, _)| f);
        out.push(Case { id: p.id.clone(), genre: genres.get(file).cloned(), window, bars });
    }
    Ok(out)
}

fn beat(template: &Template) -> Result<fine_drums_codec::beat::BeatOptions, Box<dyn Error>> {
    match template.codec.format {
        Format::Beat(b) => Ok(b),
        f => Err(format!("the steering protocols read the beat format, not {}", f.name()).into()),
    }
}

/// Bars `range` of a window: the prompt text (with the separator) and the plain text.
fn texts(
    run: &Run<'_>,
    c: &Case,
    range: std::ops::Range<usize>,
) -> Result<(String, String), Box<dyn Error>> {
    let slice = c.window.slice(range);
    Ok((run.template.prompt_text(&slice)?, run.template.codec.format.encode(&slice)?))
}

/// Generates `bars` bars after bars `..end` of the window (and before `suffix`), strictly
/// decoded; `None` when the sample does not decode strictly into that many bars.
fn generate(
    rt: &tokio::runtime::Runtime,
    run: &Run<'_>,
    c: &Case,
    end: usize,
    suffix: Option<String>,
    steer: Steer,
    seed: u64,
) -> Result<Option<Vec<String>>, Box<dyn Error>> {
    let bars = steer.bars.unwrap_or(1);
    let (prompt, _) = texts(run, c, 0..end)?;
    let mut request = CompletionRequest::new(run.model, prompt, 64 * (bars as u32 + 1));
    (request.temperature, request.top_p, request.seed) =
        (run.sampling.0, run.sampling.1, Some(seed));
    request.stop = vec![run.template.stop.clone()];
    (request.suffix, request.steer) = (suffix, steer);
    let completion = rt.block_on(run.backend.complete(&request))?;
    let Some(choice) = completion.choices.first() else { return Ok(None) };
    let body = run.template.completion_body(&choice.text);
    let context = c.window.slice(0..end).context_after();
    let format = run.template.codec.format;
    if format.decode(body, &context).is_err() {
        return Ok(None);
    }
    let lines: Vec<String> =
        body.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    Ok((lines.len() >= bars).then(|| lines[..bars].to_vec()))
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / of as f64) }
}

fn median(mut v: Vec<usize>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] as f64 } else { (v[m - 1] + v[m]) as f64 / 2.0 }
}

/// `--protocol controls`: intensity, fills and style, as markdown.
pub fn controls(
    run: &Run<'_>,
    pieces: &[Piece],
    index: &Index,
    styles: &[String],
) -> Result<String, Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let beat = beat(run.template)?;
    let cases = cases(run, pieces, index)?;
    let p = run.prompt_bars;
    let bar = crate::progress(cases.len() as u64 * 4, "controls");
    // The drummers' median fill departure, in the same windows; and how far their bar after
    // a fill departs from it (coming back to the groove departs as far as the fill did).
    let (mut fill_departures, mut returns, mut back) = (Vec::new(), Vec::new(), Vec::new());
    for c in &cases {
        let lines: Vec<&str> = c.bars.iter().map(String::as_str).collect();
        let marked = fills(&lines, &beat, false);
        for (i, &f) in marked.iter().enumerate() {
            if f && i > 0 {
                fill_departures.push(departure(lines[i - 1], lines[i], &beat));
            }
            if f && marked.get(i + 1) == Some(&false) {
                returns.push(departure(lines[i], lines[i + 1], &beat));
                if i > 0 {
                    back.push(departure(lines[i - 1], lines[i + 1], &beat) as f64);
                }
            }
        }
    }
    let threshold = median(fill_departures.clone());
    let returns_below = returns.iter().filter(|&&d| (d as f64) < threshold).count();
    let (mut agree, mut exact, mut asked_bars, mut failed) = (0, 0, 0, 0);
    let (mut fill_hit, mut fill_n, mut plain_below, mut plain_n) = (0, 0, 0, 0);
    let (mut free_hit, mut free_n, mut free_below, mut free_plain) = (0, 0, 0, 0);
    let (mut after_below, mut after_n, mut model_back) = (0, 0, 0.0);
    let (mut style_ok, mut style_n) = (0, 0);
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let seed = run.seed + i as u64;
        let n = c.bars.len() - p;
        // Intensity: the drummer's own, bar by bar.
        let asked: Vec<Option<u8>> = c.bars[p..].iter().map(|l| intensity(l, &beat)).collect();
        let mut steer = Steer::default();
        (steer.intensity, steer.bars) = (asked.clone(), Some(n));
        match generate(&rt, run, c, p, None, steer, seed)? {
            Some(got) => {
                for (line, want) in got.iter().zip(&asked) {
                    let (Some(g), Some(w)) = (intensity(line, &beat), want) else { continue };
                    asked_bars += 1;
                    agree += usize::from(g.abs_diff(*w) <= 1);
                    exact += usize::from(g == *w);
                }
            }
            None => failed += 1,
        }
        bar.inc(1);
        // Fills at the window's bars 4, 8, 12, 16; none elsewhere; then nothing asked.
        let is_fill = |j: usize| (p + j + 1).is_multiple_of(4);
        for asked in [true, false] {
            let mut steer = Steer::default();
            steer.bars = Some(n);
            if asked {
                steer.fills = (0..n).map(|j| Some(is_fill(j))).collect();
            }
            let Some(got) = generate(&rt, run, c, p, None, steer, seed)? else {
                failed += 1;
                continue;
            };
            for (j, line) in got.iter().enumerate() {
                let before = if j == 0 { &c.bars[p - 1] } else { &got[j - 1] };
                let d = departure(before, line, &beat) as f64;
                let (hit, n_fill, below, n_plain) = if asked {
                    (&mut fill_hit, &mut fill_n, &mut plain_below, &mut plain_n)
                } else {
                    (&mut free_hit, &mut free_n, &mut free_below, &mut free_plain)
                };
                if asked && j > 0 && is_fill(j - 1) {
                    after_n += 1;
                    after_below += usize::from(d < threshold);
                    let groove = if j == 1 { &c.bars[p - 1] } else { &got[j - 2] };
                    model_back += departure(groove, line, &beat) as f64;
                }
                if is_fill(j) {
                    *n_fill += 1;
                    *hit += usize::from(d >= threshold);
                } else {
                    *n_plain += 1;
                    *below += usize::from(d < threshold);
                }
            }
            bar.inc(1);
        }
        // Style: the drummer's continuation under every style.
        if let Some(genre) = c.genre.as_ref().filter(|g| styles.contains(g)) {
            let (prompt, _) = texts(run, c, 0..p)?;
            let (_, truth) = texts(run, c, p..c.bars.len())?;
            let mut scores = Vec::with_capacity(styles.len());
            for s in styles {
                let mut steer = Steer::default();
                steer.style = Some(s.clone());
                let nll = rt.block_on(
                    run.backend.nll_per_bar_steered(run.model, &prompt, None, &truth, &steer),
                )?;
                let nll = nll.ok_or("the backend cannot score text under a style")?;
                scores.push((s, nll));
            }
            let own = scores.iter().find(|(s, _)| *s == genre).map_or(f64::NAN, |x| x.1);
            let others: Vec<f64> =
                scores.iter().filter(|(s, _)| *s != genre).map(|x| x.1).collect();
            let mean = others.iter().sum::<f64>() / others.len().max(1) as f64;
            style_n += 1;
            style_ok += usize::from(own < mean);
            let best = scores.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|x| x.0.clone());
            *confusion
                .entry(genre.clone())
                .or_default()
                .entry(best.unwrap_or_default())
                .or_default() += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Controls: {} windows of {p} + {} bars, seed {}\n",
        cases.len(),
        cases.first().map_or(0, |c| c.bars.len() - p),
        run.seed
    );
    let _ = writeln!(md, "Samples that did not decode strictly into the bars asked: {failed}.\n");
    let _ = writeln!(md, "## Intensity (asked: the drummer's own, bar by bar)\n");
    let _ = writeln!(md, "| bars | within one bucket | exact |\n|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| {asked_bars} | {} | {} |\n",
        pct(agree, asked_bars),
        pct(exact, asked_bars)
    );
    let _ = writeln!(
        md,
        "## Fills (asked at bars 4, 8, 12, 16; the drummers' median fill departure: {threshold})\n"
    );
    let _ = writeln!(md, "| | fill bars at or above it | other bars below it |\n|---|---:|---:|");
    let _ = writeln!(
        md,
        "| fills asked | {} of {fill_n} | {} of {plain_n} |",
        pct(fill_hit, fill_n),
        pct(plain_below, plain_n)
    );
    let _ = writeln!(
        md,
        "| nothing asked | {} of {free_n} | {} of {free_plain} |\n",
        pct(free_hit, free_n),
        pct(free_below, free_plain)
    );
    let _ = writeln!(
        md,
        "The other bars with fills asked, split: the bar right after a fill (5, 9, 13) is \
         below it in {} of {after_n}, the rest in {} of {}. A drummer's bar after a fill of \
         theirs (in the same windows) is below it in {} of {}: coming back to the groove \
         departs from the fill about as far as the fill departed from the groove.\n",
        pct(after_below, after_n),
        pct(plain_below - after_below, plain_n - after_n),
        plain_n - after_n,
        pct(returns_below, returns.len()),
        returns.len()
    );
    let _ = writeln!(
        md,
        "Does the groove come back after a fill? The bar after a fill departs from the bar \
         before it by {:.1} on average in the model's bars (fills asked), by {:.1} in the \
         drummers' (their own fills).\n",
        model_back / after_n.max(1) as f64,
        back.iter().sum::<f64>() / back.len().max(1) as f64
    );
    let _ = writeln!(
        md,
        "## Style (the drummer's continuation likelier under its own style than the others' mean)\n"
    );
    let _ = writeln!(md, "{} of {style_n} windows.\n", pct(style_ok, style_n));
    let cols: Vec<&String> =
        styles.iter().filter(|s| confusion.values().any(|r| r.contains_key(*s))).collect();
    let _ = writeln!(md, "Likeliest style (columns) by true style (rows):\n");
    let _ = writeln!(
        md,
        "| true \\ likeliest | {} |",
        cols.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---:|".repeat(cols.len()));
    for (genre, row) in &confusion {
        let cells: Vec<String> =
            cols.iter().map(|s| row.get(*s).map_or(String::new(), usize::to_string)).collect();
        let _ = writeln!(md, "| {genre} | {} |", cells.join(" | "));
    }
    Ok(md)
}

/// `--protocol infill`: likelihood with and without the bars after, and the seam.
pub fn infill(run: &Run<'_>, pieces: &[Piece], index: &Index) -> Result<String, Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let beat = beat(run.template)?;
    let cases: Vec<Case> =
        cases(run, pieces, index)?.into_iter().filter(|c| c.bars.len() >= 12).collect();
    let bar = crate::progress(cases.len() as u64, "infill");
    let (mut both, mut left, mut scored) = (0.0, 0.0, 0usize);
    let (mut wrong, mut swaps) = (0.0, 0usize);
    let (mut seam_model, mut seam_human, mut written, mut failed) = (0.0, 0.0, 0usize, 0usize);
    for (i, c) in cases.iter().enumerate() {
        let (prefix, _) = texts(run, c, 0..4)?;
        let (_, middle) = texts(run, c, 4..8)?;
        let (_, suffix) = texts(run, c, 8..12)?;
        let free = Steer::default();
        let with = rt.block_on(run.backend.nll_per_bar_steered(
            run.model,
            &prefix,
            Some(&suffix),
            &middle,
            &free,
        ))?;
        let without =
            rt.block_on(run.backend.nll_per_bar_steered(run.model, &prefix, None, &middle, &free))?;
        let (Some(with), Some(without)) = (with, without) else {
            return Err("the backend cannot score an infill".into());
        };
        (both, left, scored) = (both + with, left + without, scored + 1);
        // The same, with another window's bars after: how much the model reads them.
        if cases.len() > 1 {
            let other = &cases[(i + cases.len() / 2) % cases.len()];
            let (_, elsewhere) = texts(run, other, 8..12)?;
            let swapped = rt.block_on(run.backend.nll_per_bar_steered(
                run.model,
                &prefix,
                Some(&elsewhere),
                &middle,
                &free,
            ))?;
            wrong += swapped.ok_or("the backend cannot score an infill")?;
            swaps += 1;
        }
        let mut steer = Steer::default();
        steer.bars = Some(4);
        match generate(&rt, run, c, 4, Some(suffix), steer, run.seed + i as u64)? {
            Some(got) => {
                seam_model += departure(&got[3], &c.bars[8], &beat) as f64;
                seam_human += departure(&c.bars[7], &c.bars[8], &beat) as f64;
                written += 1;
            }
            None => failed += 1,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mean = |x: f64, n: usize| x / n.max(1) as f64;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Infill: bars 5-8 of {} windows, between bars 1-4 and 9-12, seed {}\n",
        cases.len(),
        run.seed
    );
    let _ = writeln!(md, "| | NLL per bar of the drummer's bars 5-8 |\n|---|---:|");
    let _ = writeln!(md, "| bars 1-4 before and 9-12 after | {:.2} |", mean(both, scored));
    let _ = writeln!(md, "| bars 1-4 before only | {:.2} |", mean(left, scored));
    let _ = writeln!(
        md,
        "| bars 1-4 before and another window's 9-12 after | {} |",
        if swaps == 0 { "-".to_string() } else { format!("{:.2}", mean(wrong, swaps)) }
    );
    let _ = writeln!(md, "| ratio | {:.3} |\n", mean(both, scored) / mean(left, scored));
    let _ = writeln!(md, "| | seam: bar 8 against bar 9 (departure) |\n|---|---:|");
    let _ = writeln!(md, "| the model's bar 8 | {:.2} |", mean(seam_model, written));
    let _ = writeln!(md, "| the drummer's bar 8 | {:.2} |", mean(seam_human, written));
    let _ =
        writeln!(md, "| ratio | {:.3} |\n", mean(seam_model, written) / mean(seam_human, written));
    let _ = writeln!(
        md,
        "Infills written: {written}; not decoding strictly into 4 bars: {failed}. Case ids: {} ...",
        cases.iter().take(3).map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(md)
}
