//! Voice maps: which MIDI pitches count as which drum.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::primitive::Pitch;

/// One drum of a [`VoiceMap`]: an index into the map's voices (for [`VoiceMap::Full`], the pitch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Voice(u8);

impl Voice {
    /// The voice with index `i` (for [`VoiceMap::Full`], pitch `i`).
    pub const fn new(i: u8) -> Voice {
        Voice(i)
    }

    /// The voice's index in its map.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How source pitches are grouped into voices.
///
/// | map | voices (letter: pitches) |
/// |---|---|
/// | `gmd9` (default) | kick `k` 36 35; snare `s` 38 37 40 39 27 28 31–34 56 65 66 75 85; closed hi-hat `h` 42 22 44 54 68–71 73 78 80; open hi-hat `o` 46 26 67 72 74 79 81; low tom `l` 43 58 29 41 61 64 84; mid tom `m` 47 45 60 63 77 86 87; high tom `t` 50 48 30 62 76 83; crash `c` 49 52 55 57; ride `r` 51 53 59 82 |
/// | `paper6` | crash `c`; ride `r`; snare `s`; kick `k`; hi-hat `h` (open and closed); tom `t` (all three): `gmd9` with hats and toms merged, in the column order of Zhang & Callison-Burch 2023 |
/// | `full` | every pitch is its own voice (lossless) |
///
/// `gmd9` is the 9-voice map of GrooVAE (Gillick et al. 2019). It keeps the Roland TD-11
/// pitches 22, 26 and 58 that General MIDI does not name (10% of GMD's hits) with their
/// Roland meaning, and puts every other General MIDI percussion pitch, 27 to 87, where
/// Magenta's drum-type table does (Acoustic Bass Drum 35 is a kick, Hand Clap 39 a snare, Low
/// Floor Tom 41 a low tom). Pitches a map does not list are dropped and counted when MIDI is
/// read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VoiceMap {
    /// GrooVAE's nine voices.
    #[default]
    Gmd9,
    /// The six columns of the paper's drumroll.
    Paper6,
    /// Every pitch kept as itself.
    Full,
}

struct Table {
    names: &'static [&'static str],
    letters: &'static [u8],
    pitches: &'static [&'static [u8]],
}

const GMD9: Table = Table {
    names: &[
        "kick",
        "snare",
        "closed hi-hat",
        "open hi-hat",
        "low tom",
        "mid tom",
        "high tom",
        "crash",
        "ride",
    ],
    letters: b"ksholmtcr",
    // The Roland TD-11 assignments first (right for the GMD's kit, where 45 is the mid tom and
    // 43 the floor tom), then every other General MIDI percussion pitch (27-87) where
    // Magenta's drum-type table puts it.
    pitches: &[
        &[36, 35],
        &[38, 37, 40, 39, 27, 28, 31, 32, 33, 34, 56, 65, 66, 75, 85],
        &[42, 22, 44, 54, 68, 69, 70, 71, 73, 78, 80],
        &[46, 26, 67, 72, 74, 79, 81],
        &[43, 58, 29, 41, 61, 64, 84],
        &[47, 45, 60, 63, 77, 86, 87],
        &[50, 48, 30, 62, 76, 83],
        &[49, 52, 55, 57],
        &[51, 53, 59, 82],
    ],
};

const PAPER6: Table = Table {
    names: &["crash", "ride", "snare", "kick", "hi-hat", "tom"],
    letters: b"crskht",
    pitches: &[
        &[49, 52, 55, 57],
        &[51, 53, 59],
        &[38, 37, 40],
        &[36],
        &[42, 22, 44, 46, 26],
        &[43, 58, 47, 45, 50, 48],
    ],
};

const fn lookup(t: &Table) -> [u8; 128] {
    let mut out = [u8::MAX; 128];
    let mut v = 0;
    while v < t.pitches.len() {
        let mut j = 0;
        while j < t.pitches[v].len() {
            out[t.pitches[v][j] as usize] = v as u8;
            j += 1;
        }
        v += 1;
    }
    out
}

static GMD9_OF: [u8; 128] = lookup(&GMD9);
static PAPER6_OF: [u8; 128] = lookup(&PAPER6);

impl VoiceMap {
    /// All maps, for reports and tests.
    pub const ALL: [VoiceMap; 3] = [VoiceMap::Gmd9, VoiceMap::Paper6, VoiceMap::Full];

    fn table(self) -> Option<&'static Table> {
        match self {
            VoiceMap::Gmd9 => Some(&GMD9),
            VoiceMap::Paper6 => Some(&PAPER6),
            VoiceMap::Full => None,
        }
    }

    /// How many voices the map has (128 for `full`).
    pub fn len(self) -> usize {
        self.table().map_or(128, |t| t.names.len())
    }

    /// Always false: every map has voices. (Here for clippy's `len_without_is_empty`.)
    pub fn is_empty(self) -> bool {
        false
    }

    /// The voice a pitch belongs to, or `None` when the map drops it.
    #[inline]
    pub fn voice_of(self, pitch: Pitch) -> Option<Voice> {
        let p = pitch.as_int() as usize;
        let v = match self {
            VoiceMap::Gmd9 => GMD9_OF[p],
            VoiceMap::Paper6 => PAPER6_OF[p],
            VoiceMap::Full => return Some(Voice(p as u8)),
        };
        (v != u8::MAX).then_some(Voice(v))
    }

    /// The pitch written to MIDI for a voice: the first pitch the map lists for it.
    pub fn pitch_of(self, voice: Voice) -> Pitch {
        match self.table() {
            Some(t) => Pitch::new(t.pitches.get(voice.index()).map_or(0, |p| p[0])),
            None => Pitch::new(voice.0),
        }
    }

    /// [`VoiceMap::pitch_of`] for every voice index, as a table.
    pub(crate) fn pitch_table(self) -> [u8; 256] {
        let mut out = [0; 256];
        for (v, p) in out.iter_mut().enumerate() {
            *p = self.pitch_of(Voice(v as u8)).as_int();
        }
        out
    }

    /// The pitches a voice gathers.
    pub fn pitches(self, voice: Voice) -> Vec<Pitch> {
        match self.table() {
            Some(t) => t
                .pitches
                .get(voice.index())
                .map_or(Vec::new(), |ps| ps.iter().map(|&p| Pitch::new(p)).collect()),
            None => vec![Pitch::new(voice.0)],
        }
    }

    /// A name for the voice, such as `"kick"` (for `full`, the pitch number).
    pub fn name(self, voice: Voice) -> String {
        match self.table() {
            Some(t) => t.names.get(voice.index()).copied().unwrap_or("?").to_string(),
            None => format!("pitch {}", voice.0),
        }
    }

    /// The lowercase letter of a voice in the beat format, if the map has letters.
    pub fn letter(self, voice: Voice) -> Option<u8> {
        self.table().and_then(|t| t.letters.get(voice.index()).copied())
    }

    /// The voice written with a lowercase `letter`, if any.
    pub fn voice_of_letter(self, letter: u8) -> Option<Voice> {
        let t = self.table()?;
        t.letters.iter().position(|&l| l == letter).map(|i| Voice(i as u8))
    }

    /// The map's name as written in options and headers: `gmd9`, `paper6` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceMap::Gmd9 => "gmd9",
            VoiceMap::Paper6 => "paper6",
            VoiceMap::Full => "full",
        }
    }
}

impl fmt::Display for VoiceMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VoiceMap {
    type Err = Error;

    fn from_str(s: &str) -> Result<VoiceMap> {
        VoiceMap::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            Error::invalid("voice map", format!("{s:?} (expected gmd9, paper6 or full)"))
        })
    }
}
