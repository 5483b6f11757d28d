//! How a groove becomes a prompt and a completion, the same way at training and at
//! generation time.

use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::{Channel, Format, Groove};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The codec settings: the text format and the drums' channel, stored typed in a manifest
/// (the format as its text, `beat` or `beat:levels=4,micro=8`; the channel as 1 to 16).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodecSettings {
    /// The text format and its settings. Default: the beat format's defaults.
    pub format: Format,
    /// The MIDI channel of the drums. Default: 10.
    pub channel: Channel,
}

impl Default for CodecSettings {
    fn default() -> CodecSettings {
        CodecSettings::from_format(&Format::default(), Channel::DRUMS)
    }
}

impl CodecSettings {
    /// The settings of a codec format, read from `channel`.
    pub fn from_format(format: &Format, channel: Channel) -> CodecSettings {
        CodecSettings { format: *format, channel }
    }

    /// How MIDI is read for these settings: on the beat format's grid and map, losslessly
    /// for the exact format.
    pub fn read_options(&self) -> ReadOptions {
        let mut o = match self.format {
            Format::Beat(b) => {
                let mut o = ReadOptions::default();
                o.grid = b.grid;
                o.voices = b.voices;
                o
            }
            Format::Exact(_) => ReadOptions::lossless(),
            _ => ReadOptions::default(),
        };
        o.channel = self.channel;
        o
    }
}

/// The text around encoded bars: what ends a prompt and what ends a completion.
///
/// A prompt is the encoded prompt bars followed by [`separator`](Template::separator); a
/// completion is a newline, the encoded bars, and [`stop`](Template::stop). The OpenAI
/// fine-tuning guide for `babbage-002` and `davinci-002` asks for exactly this shape: one
/// fixed separator, completions that start with whitespace, one fixed stop sequence.
/// Neither `>` nor `<` occurs in any codec format, so the defaults `>>>` and `<<<` cannot
/// appear inside encoded text (and [`Template::check`] verifies it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Template {
    /// The codec settings.
    pub codec: CodecSettings,
    /// Ends every prompt. Default: `>>>`.
    pub separator: String,
    /// Ends every completion, and is the stop sequence at generation time. Default: `<<<`.
    pub stop: String,
    /// Whether bars without a hit are dropped from the start and the end of a file before
    /// windows are cut (Zhang & Callison-Burch 2023 dropped the leading ones; the codec keeps
    /// a file's silent bars up to its end of track, and no window should end in them).
    /// Default: `true`.
    pub strip_silence: bool,
}

impl Default for Template {
    fn default() -> Template {
        Template {
            codec: CodecSettings::default(),
            separator: ">>>".to_string(),
            stop: "<<<".to_string(),
            strip_silence: true,
        }
    }
}

impl Template {
    /// Checks that the separator and stop sequence are usable.
    pub fn check(&self) -> Result<()> {
        for (what, s) in [("separator", &self.separator), ("stop sequence", &self.stop)] {
            if s.trim().is_empty() {
                return Err(Error::invalid(what, "must hold a visible character"));
            }
        }
        Ok(())
    }

    /// Reads MIDI into the groove that windows are cut from: quantised as the format
    /// keeps it, with leading and trailing silent bars dropped when
    /// [`strip_silence`](Template::strip_silence) is set.
    pub fn read(&self, midi: &[u8]) -> Result<Groove> {
        self.read_counting(midi).map(|(g, _)| g)
    }

    /// Like [`read`](Template::read), and counts the notes the voice map drops, by pitch.
    pub fn read_counting(&self, midi: &[u8]) -> Result<(Groove, [u32; 128])> {
        let (groove, report) = midi::read_with_report(midi, &self.codec.read_options())?;
        let groove = self.codec.format.quantise(&groove)?;
        let played = self.played(&groove);
        let groove = if played == (0..groove.bars.len()) { groove } else { groove.slice(played) };
        Ok((groove, report.dropped))
    }

    /// Reads MIDI quantised as the format keeps it, with every bar.
    pub fn read_all(&self, midi: &[u8]) -> Result<Groove> {
        let groove = midi::read(midi, &self.codec.read_options())?;
        Ok(self.codec.format.quantise(&groove)?)
    }

    /// The bars that windows are cut from: from the first bar with a hit to the last when
    /// [`strip_silence`](Template::strip_silence) is set, else every bar.
    pub fn played(&self, groove: &Groove) -> std::ops::Range<usize> {
        let first = self.first_bar(groove);
        let end = if self.strip_silence {
            groove.bars.iter().rposition(|b| !b.hits.is_empty()).map_or(first, |last| last + 1)
        } else {
            groove.bars.len()
        };
        first..end
    }

    /// The bar that windows start from: the first with a hit when
    /// [`strip_silence`](Template::strip_silence) is set, else 0.
    pub fn first_bar(&self, groove: &Groove) -> usize {
        if self.strip_silence {
            groove.bars.iter().position(|b| !b.hits.is_empty()).unwrap_or(groove.bars.len())
        } else {
            0
        }
    }

    /// The prompt for `bars`: their encoding followed by the separator.
    pub fn prompt_text(&self, bars: &Groove) -> Result<String> {
        let mut text = self.codec.format.encode(bars)?;
        self.check_body("prompt", &text)?;
        text.push_str(&self.separator);
        Ok(text)
    }

    /// The completion for `bars`: a newline, their encoding and the stop sequence.
    pub fn completion_text(&self, bars: &Groove) -> Result<String> {
        let body = self.codec.format.encode(bars)?;
        self.check_body("completion", &body)?;
        let mut text = String::with_capacity(body.len() + 1 + self.stop.len());
        text.push('\n');
        text.push_str(&body);
        text.push_str(&self.stop);
        Ok(text)
    }

    /// The encoded bars inside a model's completion: leading whitespace removed and
    /// everything from the first stop sequence on cut off.
    pub fn completion_body<'a>(&self, completion: &'a str) -> &'a str {
        let text = completion.trim_start_matches([' ', '\n', '\r', '\t']);
        text.find(self.stop.as_str()).map_or(text, |i| &text[..i])
    }

    fn check_body(&self, what: &str, body: &str) -> Result<()> {
        for (name, s) in [("separator", &self.separator), ("stop sequence", &self.stop)] {
            if body.contains(s.as_str()) {
                return Err(Error::invalid(
                    "template",
                    format!("the {name} {s:?} occurs inside an encoded {what}; choose another"),
                ));
            }
        }
        Ok(())
    }
}
