//! Steering: the controls a generation asks for ([`Steer`]), and how pieces become
//! training sequences that carry controls, with controls dropped at random and some
//! sequences rearranged for fill-in-the-middle.

use fine_drums_dataset::controls::{self as defs, INTENSITIES, Piece};
use rand_core::Rng;
use rand_xoshiro::SplitMix64;

use crate::error::{Error, Result};
use crate::tokens::{BAR, Control, END, Encoded, Vocabulary};

pub use fine_drums_llm::Steer;

/// Checks the controls against what `vocab` knows: an unknown style is an error that lists
/// the known ones, an intensity out of range one that gives the range.
pub(crate) fn check(steer: &Steer, vocab: &Vocabulary) -> Result<()> {
    if steer.without_controls() {
        return Ok(());
    }
    let Some(controls) = vocab.controls() else {
        return Err(Error::invalid(
            "controls",
            "this model was trained without controls (style, tempo, intensity, fills)",
        ));
    };
    if let Some(style) = &steer.style
        && !controls.styles.contains(style)
    {
        return Err(Error::invalid(
            "style",
            format!("{style:?} is not a style the model knows: {}", controls.styles.join(", ")),
        ));
    }
    if let Some(t) = steer.tempo
        && !(t.is_finite() && t > 0.0)
    {
        return Err(Error::invalid("tempo", format!("{t} is not a tempo in BPM")));
    }
    if let Some(i) = steer.intensity.iter().flatten().find(|&&i| !(1..=INTENSITIES).contains(&i)) {
        return Err(Error::invalid(
            "intensity",
            format!("{i} is not an intensity the model knows: 1 to {INTENSITIES}"),
        ));
    }
    Ok(())
}

/// The piece's control tokens: its style, then its tempo bucket.
pub(crate) fn header(steer: &Steer, vocab: &Vocabulary) -> Vec<u32> {
    let style = steer.style.as_ref().and_then(|s| {
        let i = vocab.controls()?.styles.iter().position(|k| k == s)?;
        vocab.control(&Control::Style(i))
    });
    let tempo = steer.tempo.and_then(|t| vocab.control(&Control::Tempo(defs::tempo_bucket(t))));
    style.into_iter().chain(tempo).collect()
}

/// What a token of a training sequence is, for dropping controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Style,
    Tempo,
    Intensity,
    Fill,
}

/// A training sequence with what each token is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tagged {
    pub enc: Encoded,
    pub kind: Vec<Kind>,
}

impl Tagged {
    fn push(&mut self, id: u32, slot: usize, bar: usize, kind: Kind) {
        self.enc.push(id, slot, bar);
        self.kind.push(kind);
    }

    /// A sequence of plain tokens (a legacy example).
    pub fn plain(enc: Encoded) -> Tagged {
        let kind = vec![Kind::Plain; enc.len()];
        Tagged { enc, kind }
    }

    pub fn len(&self) -> usize {
        self.enc.len()
    }
}

/// The bar controls of each line of `bars` (beat-format bars): fill marker, then intensity.
/// The fill comes first: whether a bar is a fill is the larger decision, and a model asked
/// for one chooses its intensity knowing it.
pub(crate) fn bar_controls(
    vocab: &Vocabulary,
    bars: &[&str],
    fill_recording: bool,
) -> Vec<[u32; 2]> {
    let beat = vocab.beat();
    let fills = defs::fills(bars, beat, fill_recording);
    bars.iter()
        .zip(fills)
        .filter_map(|(line, fill)| {
            let i = defs::intensity(line, beat)?;
            Some([vocab.control(&Control::Fill(fill))?, vocab.control(&Control::Intensity(i))?])
        })
        .collect()
}

/// A whole piece as a tagged sequence: its style and tempo, then its bars, each with its
/// fill marker and intensity, then `END`. Bars are numbered from the piece's first.
pub(crate) fn encode_piece(vocab: &Vocabulary, piece: &Piece) -> Result<Tagged> {
    let bars = piece.bars();
    let controls = bar_controls(vocab, &bars, piece.fill);
    let mut out = Tagged::default();
    let mut steer = Steer::default();
    (steer.style, steer.tempo) = (piece.style.clone(), piece.bpm);
    for id in header(&steer, vocab) {
        let kind = if matches!(vocab.as_control(id), Some(Control::Style(_))) {
            Kind::Style
        } else {
            Kind::Tempo
        };
        out.push(id, 0, 0, kind);
    }
    for (n, line) in bars.iter().enumerate() {
        let mut one = Encoded::default();
        let c = controls.get(n).map_or(&[][..], |c| &c[..]);
        vocab
            .encode_bar_with(line, n, c, &mut one)
            .map_err(|e| Error::Text { line: n + 1, message: format!("{}: {e}", piece.path) })?;
        for i in 0..one.len() {
            let kind = match (i, c.len()) {
                (1, 2) => Kind::Fill,
                (2, 2) => Kind::Intensity,
                _ => Kind::Plain,
            };
            out.push(one.ids[i], usize::from(one.slot[i]), n, kind);
        }
    }
    let bar = out.enc.bar.last().copied().map_or(0, usize::from);
    out.push(END, 0, bar, Kind::Plain);
    Ok(out)
}

/// Windows of a piece that fit `budget` tokens each (the piece's controls repeated at the
/// start of each), starting on bar lines, each starting half a window after the one before;
/// a bar longer than the budget is cut.
pub(crate) fn windows(piece: &Tagged, budget: usize) -> Vec<Tagged> {
    let header = piece.kind.iter().take_while(|k| matches!(k, Kind::Style | Kind::Tempo)).count();
    let bars: Vec<usize> = (header..piece.len()).filter(|&i| piece.enc.ids[i] == BAR).collect();
    let room = budget.saturating_sub(header).max(2);
    let mut out = Vec::new();
    let mut b = 0;
    while b < bars.len() {
        let start = bars[b];
        let mut end = (start + room).min(piece.len());
        if end < piece.len() {
            // End at the last bar line inside the room, if the window holds a whole bar.
            if let Some(&cut) = bars.iter().rev().find(|&&s| s > start && s <= end) {
                end = cut;
            }
        }
        let mut w = Tagged::default();
        for i in (0..header).chain(start..end) {
            w.push(
                piece.enc.ids[i],
                usize::from(piece.enc.slot[i]),
                usize::from(piece.enc.bar[i]),
                piece.kind[i],
            );
        }
        out.push(w);
        if end >= piece.len() {
            break;
        }
        let held = bars[b..].iter().take_while(|&&s| s < end).count();
        b += (held / 2).max(1);
    }
    out
}

/// The share of training windows that drop their style: less than tempo's 30%, so that the
/// model leans on it more (the model trained at 30% told the styles apart more weakly: see
/// the crate README).
const STYLE_DROP: f64 = 0.1;

/// The share of training windows rearranged for fill-in-the-middle.
const FIM_SHARE: f64 = 0.5;

/// True with probability `p`.
fn coin(rng: &mut SplitMix64, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
}

/// A training sequence as the model sees it this time: controls dropped at random, and, for
/// [`FIM_SHARE`] of them, rearranged for fill-in-the-middle (prefix, suffix, then middle).
pub(crate) fn realise(t: &Tagged, vocab: &Vocabulary, rng: &mut SplitMix64) -> Encoded {
    let (drop_style, drop_tempo, drop_bars) =
        (coin(rng, STYLE_DROP), coin(rng, 0.3), coin(rng, 0.25));
    let keep: Vec<bool> = t
        .kind
        .iter()
        .map(|k| match k {
            Kind::Plain => true,
            Kind::Style => !drop_style,
            Kind::Tempo => !drop_tempo,
            Kind::Intensity | Kind::Fill => !drop_bars && !coin(rng, 0.1),
        })
        .collect();
    let mut seq = Encoded::default();
    for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
        seq.push(t.enc.ids[i], usize::from(t.enc.slot[i]), usize::from(t.enc.bar[i]));
    }
    let (Some(pre), Some(suf), Some(mid)) = (
        vocab.control(&Control::Prefix),
        vocab.control(&Control::Suffix),
        vocab.control(&Control::Middle),
    ) else {
        return seq;
    };
    let starts: Vec<usize> = (0..seq.len()).filter(|&i| seq.ids[i] == BAR).collect();
    if starts.len() < 3 || !coin(rng, FIM_SHARE) {
        return seq;
    }
    // The middle: 1 to 4 bars with at least one bar before and after it; the suffix: up to
    // 4 bars after it.
    let n = starts.len();
    let len = 1 + (rng.next_u64() % 4).min(n as u64 - 3) as usize;
    let a = 1 + (rng.next_u64() % (n - len - 1) as u64) as usize;
    let b = a + len;
    let c = (b + 4).min(n);
    let end_of = |k: usize| if k < n { starts[k] } else { seq.len() };
    let range = |out: &mut Encoded, from: usize, to: usize| {
        for i in from..to {
            if seq.ids[i] != END {
                out.push(seq.ids[i], usize::from(seq.slot[i]), usize::from(seq.bar[i]));
            }
        }
    };
    let mut out = Encoded::default();
    range(&mut out, 0, starts[0]);
    out.push(pre, 0, usize::from(seq.bar[starts[0]]));
    range(&mut out, starts[0], starts[a]);
    out.push(suf, 0, usize::from(seq.bar[starts[b]]));
    range(&mut out, starts[b], end_of(c));
    out.push(mid, 0, usize::from(seq.bar[starts[a]]));
    range(&mut out, starts[a], starts[b]);
    out.end();
    out
}
