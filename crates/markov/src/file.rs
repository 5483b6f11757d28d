//! The model file: magic, version, a JSON header (settings, vocabulary), the counts in
//! little-endian binary, then (from version 3) the FNV-1a hash of everything before it, so
//! that a file corrupted anywhere is refused rather than read as a different model.

use fine_drums_dataset::Template;
use serde::{Deserialize, Serialize};

use crate::model::{Model, Node, TrainStats};
use fine_drums_llm::{Error, Result};

/// The model file format this build writes (it reads version 2 too, which has no checksum).
pub const MODEL_VERSION: u32 = 3;

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
const MAGIC: &[u8; 4] = b"FDLM";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    template: Template,
    completion_bars: usize,
    vocab: Vec<String>,
    stats: TrainStats,
    lengths: Vec<(usize, usize)>,
}

impl Model {
    /// The model as bytes: magic, version, a JSON header (settings, vocabulary), the counts
    /// in little-endian binary, and the checksum of all that.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut lengths: Vec<(usize, usize)> = self.lengths.iter().map(|(a, b)| (*a, *b)).collect();
        lengths.sort_unstable();
        let header = Header {
            template: self.template.clone(),
            completion_bars: self.completion_bars,
            vocab: self.vocab.clone(),
            stats: self.stats,
            lengths,
        };
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(16 + json.len() + self.nodes.len() * 24);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&MODEL_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for c in &self.unigram {
            out.extend_from_slice(&c.to_le_bytes());
        }
        let mut keys: Vec<&u64> = self.nodes.keys().collect();
        keys.sort_unstable();
        out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for k in keys {
            let node = &self.nodes[k];
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&(node.next.len() as u32).to_le_bytes());
            for (s, c) in &node.next {
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads a model from [`Model::to_bytes`]; `name` names the file in errors. A file of
    /// another version, one cut short, or one whose checksum does not match is an error.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Model> {
        let bad = |message: String| Error::model(name, message);
        let mut r = Reader { bytes, at: 0 };
        if r.take(4).ok() != Some(MAGIC.as_slice()) {
            return Err(bad("not a fine_drums local model (no FDLM magic)".into()));
        }
        let version = r.u32().map_err(&bad)?;
        let bytes = match version {
            2 => bytes,
            MODEL_VERSION => {
                let Some(body) = bytes.len().checked_sub(8).map(|n| &bytes[..n]) else {
                    return Err(bad("the file is cut short before its checksum".into()));
                };
                let mut sum = [0u8; 8];
                sum.copy_from_slice(&bytes[body.len()..]);
                if fnv1a(body) != u64::from_le_bytes(sum) {
                    return Err(bad(
                        "its checksum does not match: the file is corrupted or cut short".into(),
                    ));
                }
                body
            }
            _ => {
                return Err(bad(format!(
                    "model format version {version}; this build reads versions 2 and {MODEL_VERSION} (train the model again)"
                )));
            }
        };
        let mut r = Reader { bytes, at: r.at };
        let len = usize::try_from(r.u64().map_err(&bad)?).map_err(|e| {
            Error::model_from(name, "the header's length does not fit in memory", e)
        })?;
        let header: Header = serde_json::from_slice(r.take(len).map_err(&bad)?).map_err(|e| {
            Error::model_from(name, format!("the header is not valid JSON: {e}"), e)
        })?;
        if !(1..=fine_drums_llm::MAX_COMPLETION_BARS).contains(&header.completion_bars) {
            return Err(bad(format!(
                "completion_bars is {}; a model writes 1 to {} bars",
                header.completion_bars,
                fine_drums_llm::MAX_COMPLETION_BARS
            )));
        }
        let mut model = Model::new(&header.template)?;
        model.completion_bars = header.completion_bars;
        model.stats = header.stats;
        model.lengths = header.lengths.into_iter().collect();
        for s in &header.vocab {
            model.intern(s);
        }
        for c in model.unigram.iter_mut() {
            *c = r.u32().map_err(&bad)?;
        }
        let count = r.u64().map_err(&bad)?;
        let vocab = model.vocab.len() as u32;
        for _ in 0..count {
            let k = r.u64().map_err(&bad)?;
            let n = r.u32().map_err(&bad)? as usize;
            if n > r.bytes.len() / 8 {
                return Err(bad("a context holds more entries than the file has bytes".into()));
            }
            let mut node = Node { total: 0, next: Vec::with_capacity(n) };
            for _ in 0..n {
                let (s, c) = (r.u32().map_err(&bad)?, r.u32().map_err(&bad)?);
                if s >= vocab {
                    return Err(bad(format!("symbol {s} is outside the vocabulary of {vocab}")));
                }
                node.total = node.total.saturating_add(c);
                node.next.push((s, c));
            }
            model.nodes.insert(k, node);
        }
        if r.at != bytes.len() {
            return Err(bad(format!("{} bytes after the end of the model", bytes.len() - r.at)));
        }
        Ok(model)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            format!("the file is cut short at byte {} (needs {n} more)", self.bytes.len())
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}
