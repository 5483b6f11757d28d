//! The drumroll of Zhang & Callison-Burch 2023, "Language Models are Drummers".
//!
//! One line per 16th step, six characters a line for crash, ride, snare, kick, hi-hat and tom
//! (`o` hit, `-` rest), a `SEP` line between bars and an `END` line after the last:
//!
//! ```text
//! ---oo-
//! ------
//! ----o-
//! …(16 lines a 4/4 bar)
//! SEP
//! …
//! END
//! ```
//!
//! It has no dynamics, microtiming, tempo or meter marks: velocities decode as 64, and every
//! bar is read in the context's meter (`steps` lines per bar, 16 in 4/4).

use crate::error::{Error, Result};
use crate::groove::{Bar, Context, Groove, Hit, Limits};
use crate::quantise::Quantise;
use crate::text::{
    Lenient, Mode, TextFormat, check_bars, lines, sealed, without_trailing_blank_lines,
};
use crate::units::{Grid, Levels, TempoChange};
use crate::voice::{Voice, VoiceMap};

/// What the drumroll keeps: 16ths, the six voices, one velocity level, no microtiming.
pub const QUANTISE: Quantise = Quantise {
    grid: Grid::SIXTEENTH,
    voices: VoiceMap::Paper6,
    levels: Levels::new_const(1),
    microtiming: None,
};

/// Settings of the drumroll: only the bounds of a decode, since the format itself is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrumrollOptions {
    /// Bounds on what a decode accepts. Default: [`Limits::default`].
    pub limits: Limits,
}

impl DrumrollOptions {
    /// The default settings, as a constant.
    pub const DEFAULT: DrumrollOptions = DrumrollOptions { limits: Limits::DEFAULT };
}

impl Default for DrumrollOptions {
    fn default() -> DrumrollOptions {
        DrumrollOptions::DEFAULT
    }
}

impl sealed::Sealed for DrumrollOptions {}

impl TextFormat for DrumrollOptions {
    fn name(&self) -> &'static str {
        "drumroll"
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Encodes a groove as a drumroll. All bars must share one meter.
    fn encode(&self, groove: &Groove) -> Result<String> {
        encode(groove)
    }

    /// Decodes a drumroll: strictly, it must end with `END`; leniently, a bar with a bad line
    /// or the wrong number of lines is dropped.
    fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient> {
        run(text, context, mode, &self.limits)
    }

    /// The groove as the drumroll keeps it: [`QUANTISE`], and only the first bar's tempo.
    fn quantise(&self, groove: &Groove) -> Result<Groove> {
        quantise(groove)
    }
}

fn quantise(groove: &Groove) -> Result<Groove> {
    let mut q = groove.quantised(&QUANTISE)?;
    for bar in q.bars.iter_mut().skip(1) {
        bar.tempos.clear();
    }
    Ok(q)
}

fn encode(groove: &Groove) -> Result<String> {
    let q = quantise(groove)?;
    let first = q.bars.first().map(|b| b.meter);
    if let Some(other) = q.bars.iter().find(|b| Some(b.meter) != first) {
        return Err(Error::invalid(
            "drumroll",
            format!("the drumroll cannot mark a meter change (to {} here)", other.meter),
        ));
    }
    let mut out = String::with_capacity(q.bars.len() * 16 * 7 + 4);
    for (i, bar) in q.bars.iter().enumerate() {
        if i > 0 {
            out.push_str("SEP\n");
        }
        let steps = bar.meter.steps(Grid::SIXTEENTH)?;
        let mut hits = bar.hits.iter().peekable();
        for s in 0..steps {
            let mut row = *b"------";
            while let Some(h) = hits.next_if(|h| h.step == s) {
                row[h.voice.index()] = b'o';
            }
            out.extend(row.iter().map(|&c| char::from(c)));
            out.push('\n');
        }
    }
    out.push_str("END\n");
    Ok(out)
}

fn run(text: &str, context: &Context, mode: Mode, limits: &Limits) -> Result<Lenient> {
    let text = without_trailing_blank_lines(text);
    let tpq = context.ticks_per_quarter;
    let steps = context.meter.steps(Grid::SIXTEENTH)?;
    let velocity = QUANTISE.levels.velocity(1);
    let length = Groove::default_length(tpq, Grid::SIXTEENTH);
    let mut groove = Groove::new(tpq, Grid::SIXTEENTH, VoiceMap::Paper6);
    let mut dropped = Vec::new();
    let mut bar = Bar::new(context.meter);
    let mut rows = 0u32;
    let mut bad: Option<Error> = None;
    let mut ended = false;
    let mut last_line = 0;
    let mut total_hits = 0usize;
    let mut close = |bar: &mut Bar,
                     rows: &mut u32,
                     bad: &mut Option<Error>,
                     line: usize,
                     groove: &mut Groove|
     -> Result<()> {
        let problem = bad.take().or_else(|| {
            (*rows != steps).then(|| {
                Error::syntax(line, 1, format!("a bar needs {steps} lines, this one has {rows}"))
            })
        });
        let done = std::mem::replace(bar, Bar::new(context.meter));
        *rows = 0;
        match problem {
            Some(e) if mode == Mode::Strict => Err(e),
            Some(e) => {
                dropped.push(e);
                Ok(())
            }
            None => {
                check_bars(groove.bars.len(), limits)?;
                total_hits += done.hits.len();
                if total_hits > limits.max_hits {
                    return Err(Error::Limit { what: "hits", limit: limits.max_hits as u64 });
                }
                let mut done = done;
                if groove.bars.is_empty() {
                    done.tempos.push(TempoChange { tick: 0, tempo: context.tempo });
                }
                groove.bars.push(done);
                Ok(())
            }
        }
    };
    for (n, raw) in lines(text) {
        last_line = n;
        let line = if mode == Mode::Lenient { raw.trim() } else { raw };
        if ended {
            if mode == Mode::Strict {
                return Err(Error::syntax(n, 1, "text after END"));
            }
            break;
        }
        match line {
            // A drumroll with no bar at all (what an empty groove encodes to).
            "END" if groove.bars.is_empty() && rows == 0 && bad.is_none() => ended = true,
            "SEP" | "END" => {
                close(&mut bar, &mut rows, &mut bad, n, &mut groove)?;
                ended = line == "END";
            }
            "" if mode == Mode::Lenient => {}
            _ => {
                if line.len() != 6 || line.bytes().any(|c| c != b'o' && c != b'-') {
                    let e = Error::syntax(
                        n,
                        1,
                        format!("expected 6 characters of `o` and `-`, found {line:?}"),
                    );
                    if mode == Mode::Strict {
                        return Err(e);
                    }
                    bad.get_or_insert(e);
                } else if rows < steps {
                    for (v, c) in line.bytes().enumerate() {
                        if c == b'o' {
                            bar.hits.push(Hit {
                                step: rows,
                                offset: 0,
                                voice: Voice::new(v as u8),
                                velocity,
                                length,
                            });
                        }
                    }
                }
                rows += 1;
            }
        }
    }
    if !ended {
        match mode {
            Mode::Strict => {
                return Err(Error::syntax(last_line.max(1), 1, "expected END after the last bar"));
            }
            Mode::Lenient if rows > 0 || bad.is_some() => {
                close(&mut bar, &mut rows, &mut bad, last_line, &mut groove)?;
            }
            Mode::Lenient => {}
        }
    }
    Ok(Lenient { groove, dropped })
}
