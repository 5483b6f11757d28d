//! The backends by name.

use std::str::FromStr;

use crate::error::{Error, Result};

/// Which backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The drum GPT (`fine-drums-gpt`, feature `gpt`): offline, the project's default model.
    #[default]
    Gpt,
    /// The Markov model (`fine-drums-markov`): offline, no tensors.
    Markov,
    /// LoRA adapters on a pretrained model from a local folder (`fine-drums-lora`, feature
    /// `lora`): offline.
    Lora,
    /// OpenAI, or any OpenAI-compatible server by base URL (`fine-drums-openai`, feature
    /// `openai`).
    OpenAi,
}

impl Kind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [Kind; 4] = [Kind::Gpt, Kind::Markov, Kind::Lora, Kind::OpenAi];

    /// `gpt`, `markov`, `lora` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gpt => "gpt",
            Kind::Markov => "markov",
            Kind::Lora => "lora",
            Kind::OpenAi => "openai",
        }
    }

    /// The cargo feature of this crate that builds the backend (`None`: always built).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Kind::Gpt => Some("gpt"),
            Kind::Markov => None,
            Kind::Lora => Some("lora"),
            Kind::OpenAi => Some("openai"),
        }
    }

    /// Whether this build has the backend.
    pub fn is_built(self) -> bool {
        match self {
            Kind::Gpt => cfg!(feature = "gpt"),
            Kind::Markov => true,
            Kind::Lora => cfg!(feature = "lora"),
            Kind::OpenAi => cfg!(feature = "openai"),
        }
    }

    /// The kinds this build has.
    pub fn built() -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(|k| k.is_built())
    }

    /// An error unless this build has the backend.
    pub(crate) fn check_built(self) -> Result<()> {
        match self.feature() {
            Some(feature) if !self.is_built() => {
                Err(Error::NotBuilt { kind: self.as_str(), feature })
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    /// A kind by name; `local`, the Markov model's name before it had a crate of its own,
    /// still names it.
    fn from_str(s: &str) -> Result<Kind> {
        match s {
            "local" => Ok(Kind::Markov),
            _ => Kind::ALL
                .into_iter()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| Error::UnknownKind { name: s.to_string() }),
        }
    }
}
