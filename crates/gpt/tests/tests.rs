//! Integration tests of fine-drums-gpt, built as one binary.

mod model;
mod pieces;
mod tokens;
