//! The [`Format`] switch over the three text formats, and its name as text.

use std::fmt;
use std::str::FromStr;

use crate::beat::BeatOptions;
use crate::drumroll::DrumrollOptions;
use crate::error::{Error, Result};
use crate::exact::ExactOptions;
use crate::groove::{Context, Groove, Limits};
use crate::text::{Lenient, Mode, TextFormat, sealed};
use crate::units::Levels;
use crate::voice::VoiceMap;

/// A text format and its settings.
///
/// It implements [`TextFormat`] by passing each call to its format, and has the same methods
/// inherently, so that callers need not import the trait.
///
/// As text (its [`Display`](fmt::Display) and [`FromStr`]) a format is its name, then for the
/// beat format the settings that differ from the defaults: `beat`, `drumroll`, `exact`,
/// `beat:grid=8t,levels=4,micro=8,map=paper6,header=on`. Parsing accepts the settings in any
/// order and takes the defaults for the others; [`Limits`] are not part of the text and parse
/// as their defaults. With the `serde` feature a format is stored as this text.
///
/// ```
/// use fine_drums_codec::Format;
///
/// let f: Format = "beat:levels=4,micro=8".parse()?;
/// assert_eq!(f.to_string(), "beat:levels=4,micro=8");
/// assert_eq!("beat".parse::<Format>()?, Format::default());
/// assert_eq!(Format::EXACT.to_string(), "exact");
/// # Ok::<(), fine_drums_codec::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The beat format, made for language models (see [`beat`](crate::beat)).
    Beat(BeatOptions),
    /// The drumroll of Zhang & Callison-Burch 2023 (see [`drumroll`](crate::drumroll)).
    Drumroll(DrumrollOptions),
    /// The lossless format (see [`exact`](crate::exact)).
    Exact(ExactOptions),
}

impl Default for Format {
    fn default() -> Format {
        Format::Beat(BeatOptions::default())
    }
}

impl Format {
    /// The drumroll with the default limits.
    pub const DRUMROLL: Format = Format::Drumroll(DrumrollOptions::DEFAULT);
    /// The exact format with the default limits.
    pub const EXACT: Format = Format::Exact(ExactOptions::DEFAULT);

    fn get(&self) -> &dyn TextFormat {
        match self {
            Format::Beat(o) => o,
            Format::Drumroll(o) => o,
            Format::Exact(o) => o,
        }
    }

    /// A short name: `beat`, `drumroll` or `exact`.
    pub fn name(&self) -> &'static str {
        self.get().name()
    }

    /// The voice map the format writes: the beat format's own, `paper6` for the drumroll,
    /// `full` for the exact format.
    pub fn voices(&self) -> VoiceMap {
        match self {
            Format::Beat(o) => o.voices,
            Format::Drumroll(_) => VoiceMap::Paper6,
            Format::Exact(_) => VoiceMap::Full,
        }
    }

    /// The bounds the decoder enforces.
    pub fn limits(&self) -> &Limits {
        self.get().limits()
    }

    /// The same format with other decoding bounds.
    pub fn with_limits(mut self, limits: Limits) -> Format {
        match &mut self {
            Format::Beat(o) => o.limits = limits,
            Format::Drumroll(o) => o.limits = limits,
            Format::Exact(o) => o.limits = limits,
        }
        self
    }

    /// Encodes a groove, quantising it first as the format requires.
    pub fn encode(&self, groove: &Groove) -> Result<String> {
        self.get().encode(groove)
    }

    /// Decodes text strictly: the first deviation from the grammar is an error.
    pub fn decode(&self, text: &str, context: &Context) -> Result<Groove> {
        self.get().decode(text, context)
    }

    /// Decodes text leniently: keeps every bar that parses and reports every line it drops,
    /// blank ones included. Fails only when the options themselves are unusable; at a limit
    /// it keeps what came before and reports the rest as not read.
    pub fn decode_lenient(&self, text: &str, context: &Context) -> Result<Lenient> {
        self.get().decode_lenient(text, context)
    }

    /// Decodes bytes leniently, dropping (and reporting) the lines that are not UTF-8 (see
    /// [`TextFormat::decode_lenient_bytes`]).
    pub fn decode_lenient_bytes(&self, bytes: &[u8], context: &Context) -> Result<Lenient> {
        self.get().decode_lenient_bytes(bytes, context)
    }

    /// Decodes text in `mode` (see [`TextFormat::decode_with`]).
    pub fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient> {
        self.get().decode_with(text, context, mode)
    }

    /// What `decode(encode(groove))` gives: the groove as this format keeps it.
    pub fn quantise(&self, groove: &Groove) -> Result<Groove> {
        self.get().quantise(groove)
    }
}

impl sealed::Sealed for Format {}

impl TextFormat for Format {
    fn name(&self) -> &'static str {
        Format::name(self)
    }
    fn limits(&self) -> &Limits {
        Format::limits(self)
    }
    fn encode(&self, groove: &Groove) -> Result<String> {
        Format::encode(self, groove)
    }
    fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient> {
        Format::decode_with(self, text, context, mode)
    }
    fn quantise(&self, groove: &Groove) -> Result<Groove> {
        Format::quantise(self, groove)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        let Format::Beat(o) = self else { return Ok(()) };
        let d = BeatOptions::default();
        let mut sep = ':';
        let mut field = |f: &mut fmt::Formatter<'_>, key: &str, value: &dyn fmt::Display| {
            let r = write!(f, "{sep}{key}={value}");
            sep = ',';
            r
        };
        if o.grid != d.grid {
            field(f, "grid", &o.grid)?;
        }
        if o.levels != d.levels {
            field(f, "levels", &o.levels.count())?;
        }
        if let Some(r) = o.microtiming {
            field(f, "micro", &r)?;
        }
        if o.voices != d.voices {
            field(f, "map", &o.voices)?;
        }
        if o.header {
            field(f, "header", &"on")?;
        }
        Ok(())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        let (name, settings) = s.split_once(':').unwrap_or((s, ""));
        let mut o = BeatOptions::default();
        match name {
            "beat" => {}
            "drumroll" | "exact" if !settings.is_empty() => {
                return Err(Error::invalid(
                    "format",
                    format!("{s:?}: only the beat format takes settings"),
                ));
            }
            "drumroll" => return Ok(Format::DRUMROLL),
            "exact" => return Ok(Format::EXACT),
            _ => {
                return Err(Error::invalid(
                    "format",
                    format!("{name:?} (expected beat, drumroll or exact)"),
                ));
            }
        }
        for field in settings.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=').ok_or_else(|| {
                Error::invalid("format", format!("{field:?} in {s:?} (expected key=value)"))
            })?;
            let number = |what: &'static str| {
                value.parse::<u8>().map_err(|_| {
                    Error::invalid(what, format!("{value:?} in {s:?} (expected a number)"))
                })
            };
            match key {
                "grid" => o.grid = value.parse()?,
                "levels" => o.levels = Levels::new(number("velocity levels")?)?,
                "micro" if value == "off" => o.microtiming = None,
                "micro" => o.microtiming = Some(number("microtiming")?),
                "map" => o.voices = value.parse()?,
                "header" => {
                    o.header = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(Error::invalid("format", "header= takes on or off")),
                    }
                }
                _ => {
                    return Err(Error::invalid(
                        "format",
                        format!(
                            "unknown setting {key:?} in {s:?} (expected grid, levels, micro, map or header)"
                        ),
                    ));
                }
            }
        }
        o.check()?;
        Ok(Format::Beat(o))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Format, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Format;
    use crate::beat::BeatOptions;
    use crate::units::{Grid, Levels};
    use crate::voice::VoiceMap;

    macro_rules! text {
        ($($name:ident: $text:expr => $canonical:expr;)*) => {$(
            #[test]
            fn $name() {
                let f: Format = $text.parse().unwrap();
                assert_eq!(f.to_string(), $canonical);
                assert_eq!($canonical.parse::<Format>().unwrap(), f);
            }
        )*};
    }

    text! {
        plain_beat: "beat" => "beat";
        defaults_written_out: "beat:grid=16,levels=3,micro=off,map=gmd9,header=off" => "beat";
        every_setting: "beat:header=on,map=paper6,micro=8,levels=4,grid=8t" =>
            "beat:grid=8t,levels=4,micro=8,map=paper6,header=on";
        drumroll: "drumroll" => "drumroll";
        exact: "exact" => "exact";
    }

    #[test]
    fn settings_parse_into_options() {
        let Format::Beat(o) = "beat:grid=32,levels=5,micro=4".parse().unwrap() else {
            panic!("not the beat format")
        };
        let want = BeatOptions {
            grid: Grid::THIRTY_SECOND,
            levels: Levels::new(5).unwrap(),
            microtiming: Some(4),
            ..BeatOptions::default()
        };
        assert_eq!(o, want);
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in [
            "",
            "midi",
            "beat:grid",
            "beat:grid=7",
            "beat:levels=0",
            "beat:micro=x",
            "beat:colour=red",
            "beat:map=full",
            "exact:grid=16",
            "beat:header=yes",
        ] {
            assert!(bad.parse::<Format>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(VoiceMap::Gmd9, BeatOptions::default().voices);
    }
}
