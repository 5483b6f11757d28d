//! The model's size and the presets.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The config format this build writes and reads.
pub const CONFIG_VERSION: u32 = 1;

/// Steps a bar may hold, plus the slot 0 of bar and mark tokens: a 4/4 bar on a 64th grid.
pub const SLOTS: usize = 65;

/// The largest vocabulary a config may name.
pub const MAX_VOCAB: usize = 1 << 20;
/// The largest `d_model` or `d_ff` a config may name.
pub const MAX_WIDTH: usize = 1 << 16;
/// The most blocks (and heads) a config may name.
pub const MAX_LAYERS: usize = 1 << 10;
/// The longest context a config may name.
pub const MAX_CONTEXT: usize = 1 << 16;
/// The most parameters a config may name: 2^29 (2 GiB of `f32`), as many as the largest
/// weights file that is read ([`MAX_MODEL_FILE`](fine_drums_dataset::fs::MAX_MODEL_FILE)).
pub const MAX_PARAMETERS: usize = 1 << 29;

/// A model's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Config {
    /// [`CONFIG_VERSION`] when written.
    pub version: u32,
    /// The preset it came from (`tiny`, `small`, `base`), or `custom`.
    pub preset: String,
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// The width of the residual stream.
    pub d_model: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads per block (`d_model` must divide by it).
    pub heads: usize,
    /// The width of each block's feed-forward layer.
    pub d_ff: usize,
    /// The most tokens the model sees at once.
    pub context: usize,
}

impl Config {
    /// A preset for a vocabulary of `vocab` tokens:
    ///
    /// | preset | width | blocks | heads | context | for |
    /// |---|---:|---:|---:|---:|---|
    /// | `tiny` | 32 | 2 | 2 | 256 | tests: trains in seconds |
    /// | `small` | 128 | 4 | 4 | 256 | the default: the GMD in minutes on 2 CPU cores |
    /// | `base` | 384 | 6 | 6 | 512 | a GPU |
    pub fn preset(name: &str, vocab: usize) -> Result<Config> {
        let (d_model, layers, heads, context) = match name {
            "tiny" => (32, 2, 2, 256),
            "small" => (128, 4, 4, 256),
            "base" => (384, 6, 6, 512),
            _ => {
                return Err(Error::invalid(
                    "preset",
                    format!("{name:?} (expected tiny, small or base)"),
                ));
            }
        };
        let c = Config {
            version: CONFIG_VERSION,
            preset: name.to_string(),
            vocab,
            d_model,
            layers,
            heads,
            d_ff: 4 * d_model,
            context,
        };
        c.check()?;
        Ok(c)
    }

    /// Checks that the shape is usable.
    pub fn check(&self) -> Result<()> {
        if self.version != CONFIG_VERSION {
            return Err(Error::invalid(
                "config",
                format!(
                    "config version {}; this build reads version {CONFIG_VERSION} (train the model again)",
                    self.version
                ),
            ));
        }
        if self.heads == 0 || self.d_model == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(Error::invalid(
                "config",
                format!("a width of {} does not split into {} heads", self.d_model, self.heads),
            ));
        }
        if self.layers == 0 || self.context < 2 || self.vocab < 2 || self.d_ff == 0 {
            return Err(Error::invalid(
                "config",
                "layers, context, vocabulary and d_ff must be set",
            ));
        }
        // Bounded one by one before anything is multiplied or allocated, so that a crafted
        // config is an error rather than an overflow, an abort or a loop of a million blocks.
        let bounds = [
            ("vocab", self.vocab, MAX_VOCAB),
            ("d_model", self.d_model, MAX_WIDTH),
            ("d_ff", self.d_ff, MAX_WIDTH),
            ("layers", self.layers, MAX_LAYERS),
            ("heads", self.heads, MAX_LAYERS),
            ("context", self.context, MAX_CONTEXT),
        ];
        for (name, value, most) in bounds {
            if value > most {
                return Err(Error::invalid(
                    "config",
                    format!("{name} is {value}; this build reads at most {most}"),
                ));
            }
        }
        if self.parameters() > MAX_PARAMETERS {
            return Err(Error::invalid(
                "config",
                format!(
                    "{} parameters; this build reads at most {MAX_PARAMETERS}",
                    self.parameters()
                ),
            ));
        }
        Ok(())
    }

    /// Trainable numbers in the model.
    pub fn parameters(&self) -> usize {
        let d = self.d_model;
        let embeddings = (self.vocab + self.context + SLOTS + 4 + 8 + 16) * d;
        let block = 2 * 2 * d
            + d * 3 * d
            + 3 * d
            + d * d
            + d
            + d * self.d_ff
            + self.d_ff
            + self.d_ff * d
            + d;
        embeddings + self.layers * block + 2 * d
    }
}
