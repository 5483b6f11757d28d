//! Integration tests of fine-drums-llm, built as one binary.

#[cfg(feature = "openai")]
mod openai;
mod pipeline;
