//! The pretrained model's own tokenizer, and the grammar of beat-format bars at the level of
//! characters, which constrains generation whatever the tokens are.

use std::path::Path;

use fine_drums_codec::Voice;
use fine_drums_codec::beat::{BeatOptions, Layout};

use crate::error::{Error, Result};

/// A model's tokenizer (`tokenizer.json`), with each token's text where it is plain ASCII.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Per token id: its bytes, when they are ASCII and it is not a special token.
    texts: Vec<Option<Box<[u8]>>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("tokens", &self.texts.len()).finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Reads `tokenizer.json` from a model folder; `rows` is the model's vocabulary size
    /// (the embedding may have more rows than the tokenizer has tokens).
    pub fn load(dir: &Path, rows: usize) -> Result<Tokenizer> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| Error::file_because(&path, "not a readable tokenizer", e))?;
        let special: std::collections::HashSet<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        // A token's text is what it adds after another: decoders such as SentencePiece's drop
        // the space a token starts with when it comes first.
        let anchor = inner.token_to_id("a").or_else(|| inner.token_to_id("Ġa"));
        let alone = anchor.and_then(|a| inner.decode(&[a], false).ok()).unwrap_or_default();
        let mut texts = Vec::with_capacity(rows);
        for id in 0..rows as u32 {
            let text = if special.contains(&id) || inner.id_to_token(id).is_none() {
                None
            } else {
                let decoded = match anchor {
                    Some(a) => inner
                        .decode(&[a, id], false)
                        .ok()
                        .and_then(|t| t.strip_prefix(alone.as_str()).map(str::to_string)),
                    None => inner.decode(&[id], false).ok(),
                };
                decoded
                    .filter(|t| !t.is_empty() && t.is_ascii())
                    .map(|t| t.into_bytes().into_boxed_slice())
            };
            texts.push(text);
        }
        Ok(Tokenizer { inner, texts })
    }

    /// The ids of `text`; `special` adds what the tokenizer puts around a sequence (a BOS).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let e =
            self.inner.encode(text, special).map_err(|e| Error::invalid("text", e.to_string()))?;
        Ok(e.get_ids().to_vec())
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::invalid("tokens", e.to_string()))
    }

    /// The text of token `id`, if it is plain ASCII.
    pub fn text(&self, id: u32) -> Option<&[u8]> {
        self.texts.get(id as usize).and_then(|t| t.as_deref())
    }

    /// Token ids and texts, for those made only of `allowed` bytes.
    pub(crate) fn made_of(&self, allowed: &[bool; 256]) -> Vec<(u32, Box<[u8]>)> {
        self.texts
            .iter()
            .enumerate()
            .filter_map(|(id, t)| {
                let t = t.as_ref()?;
                t.iter().all(|&b| allowed[usize::from(b)]).then(|| (id as u32, t.clone()))
            })
            .collect()
    }
}

/// Where a completion is in the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the newline a completion starts with.
    Start,
    /// Inside a bar line.
    Bar,
    /// Inside the stop sequence, after this many of its bytes.
    Stop(u8),
    /// Finished: the bars asked for, or the stop sequence.
    Done,
}

/// The state of a completion in [`Grammar`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    phase: Phase,
    group: u16,
    slot: u16,
    /// Voices in the current slot.
    seen: u16,
    /// The lowercase letter just read, which a second one makes a ghost note.
    pending: u8,
    /// Nothing of the current line yet.
    fresh: bool,
    /// Bars finished.
    bars: usize,
}

impl State {
    /// Bars finished.
    pub fn bars(&self) -> usize {
        self.bars
    }

    /// Whether the completion is finished.
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether it stands between bars (nothing of a bar line begun).
    pub fn between_bars(&self) -> bool {
        self.phase == Phase::Bar && self.fresh
    }
}

/// The grammar of a completion: a newline, then beat-format bar lines of one layout (no
/// marks), until `bars` bars or the stop sequence.
#[derive(Clone, Debug)]
pub struct Grammar {
    layout: Layout,
    /// Per byte: the voice of a letter, lower or upper case.
    voice: [u8; 256],
    levels: u8,
    stop: Vec<u8>,
    bars: usize,
    /// The bytes that can occur at all.
    pub(crate) alphabet: [bool; 256],
}

impl Grammar {
    /// The grammar of bars of `layout` in the format `beat`, ending after `bars` bars or
    /// at `stop`. Microtiming and more than three velocity levels are not generated.
    pub fn new(beat: &BeatOptions, layout: Layout, bars: usize, stop: &str) -> Result<Grammar> {
        if beat.microtiming.is_some() || beat.levels.count() > 3 {
            return Err(Error::invalid(
                "format",
                "constrained generation writes the beat format without microtiming, in 1 to 3 velocity levels",
            ));
        }
        let mut voice = [u8::MAX; 256];
        let mut alphabet = [false; 256];
        for v in 0..beat.voices.len().min(16) {
            if let Some(letter) = beat.voices.letter(Voice::new(v as u8)) {
                voice[usize::from(letter)] = v as u8;
                alphabet[usize::from(letter)] = true;
                if beat.levels.count() >= 2 {
                    voice[usize::from(letter.to_ascii_uppercase())] = v as u8;
                    alphabet[usize::from(letter.to_ascii_uppercase())] = true;
                }
            }
        }
        for b in [b'.', b' ', b'\n'].into_iter().chain(stop.bytes()) {
            alphabet[usize::from(b)] = true;
        }
        Ok(Grammar {
            layout,
            voice,
            levels: beat.levels.count(),
            stop: stop.as_bytes().to_vec(),
            bars,
            alphabet,
        })
    }

    /// The state before a completion's first byte.
    pub fn start(&self) -> State {
        State { phase: Phase::Start, group: 0, slot: 0, seen: 0, pending: 0, fresh: true, bars: 0 }
    }

    /// Feeds one byte; `false` (and `st` unchanged in meaning) if the grammar refuses it.
    pub fn feed(&self, st: &mut State, c: u8) -> bool {
        match st.phase {
            Phase::Done => false,
            Phase::Start => {
                if c == b'\n' {
                    st.phase = Phase::Bar;
                    true
                } else {
                    false
                }
            }
            Phase::Stop(n) => {
                if self.stop.get(usize::from(n)) != Some(&c) {
                    return false;
                }
                st.phase = if usize::from(n) + 1 == self.stop.len() {
                    Phase::Done
                } else {
                    Phase::Stop(n + 1)
                };
                true
            }
            Phase::Bar => {
                let (groups, per) = (self.layout.groups, self.layout.per);
                if st.fresh && self.stop.first() == Some(&c) && st.bars > 0 {
                    st.phase = if self.stop.len() == 1 { Phase::Done } else { Phase::Stop(1) };
                    return true;
                }
                let v = self.voice[usize::from(c)];
                if v != u8::MAX {
                    let lower = c.is_ascii_lowercase();
                    if lower && self.levels == 3 && st.pending == c {
                        st.pending = 0;
                    } else {
                        let bit = 1u16 << v;
                        if st.seen & bit != 0 {
                            return false;
                        }
                        st.seen |= bit;
                        st.pending = if lower { c } else { 0 };
                    }
                    st.fresh = false;
                    return true;
                }
                let end_slot = |st: &mut State| {
                    st.seen = 0;
                    st.pending = 0;
                    st.fresh = false;
                };
                match c {
                    b'.' if st.slot + 1 < per => {
                        end_slot(st);
                        st.slot += 1;
                        true
                    }
                    b' ' if st.slot + 1 == per && st.group + 1 < groups => {
                        end_slot(st);
                        st.slot = 0;
                        st.group += 1;
                        true
                    }
                    b'\n' if st.slot + 1 == per && st.group + 1 == groups => {
                        end_slot(st);
                        (st.slot, st.group, st.fresh) = (0, 0, true);
                        st.bars += 1;
                        if st.bars >= self.bars {
                            st.phase = Phase::Done;
                        }
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// Feeds bytes; the state after them, or `None` if the grammar refuses one.
    pub fn accepts(&self, st: &State, bytes: &[u8]) -> Option<State> {
        let mut s = *st;
        for &b in bytes {
            if !self.feed(&mut s, b) {
                return None;
            }
        }
        Some(s)
    }
}
