//! What can go wrong in building a backend.

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of `fine-drums-backends`: a backend that this build left out, a setting it cannot
/// use, or the backend's own error, kept as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No backend has this name.
    #[error("no backend is named {name:?} (expected gpt, markov, lora or openai)")]
    UnknownKind {
        /// The name asked for.
        name: String,
    },
    /// The backend exists, but this build left it out.
    #[error(
        "this build has no {kind} backend: build with the `{feature}` feature (cargo run --features {feature} ...)"
    )]
    NotBuilt {
        /// The backend's name (`Kind::as_str`).
        kind: &'static str,
        /// The feature that builds it.
        feature: &'static str,
    },
    /// A setting the backend cannot use.
    #[error("{kind} backend: {message}")]
    Setting {
        /// The backend's name (`Kind::as_str`).
        kind: &'static str,
        /// What is wrong, and what would do.
        message: String,
    },
    /// The contract's error: a model file, a setting, the service.
    #[error(transparent)]
    Llm(#[from] fine_drums_llm::Error),
    /// The drum GPT's error, with the model folder or device it concerns.
    #[cfg(feature = "gpt")]
    #[error("{at}: {source}")]
    Gpt {
        /// The model folder, or the device.
        at: String,
        /// What the drum GPT said.
        #[source]
        source: Box<fine_drums_gpt::Error>,
    },
    /// LoRA's error, with the folder or device it concerns.
    #[cfg(feature = "lora")]
    #[error("{at}: {source}")]
    Lora {
        /// The adapter or base model folder, or the device.
        at: String,
        /// What the LoRA crate said.
        #[source]
        source: Box<fine_drums_lora::Error>,
    },
}
