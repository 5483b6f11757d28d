//! Integration tests of fine-drums-eval, built as one binary.

mod metrics;
mod protocol;
