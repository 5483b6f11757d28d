//! Integration tests of fine-drums-llm, built as one binary.

mod local;
