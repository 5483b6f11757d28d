//! Integration tests of fine-drums-audio, built as one binary.

mod render;
