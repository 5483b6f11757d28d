//! Integration tests of fine-drums-llm, built as one binary.

mod local;
#[cfg(feature = "openai")]
mod openai;
