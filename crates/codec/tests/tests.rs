//! Integration tests of fine-drums-codec, built as one binary.
