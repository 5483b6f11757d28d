//! Integration tests of fine-drums-codec, built as one binary.

mod gmd;
mod hostile;
mod props;
mod roundtrip;
mod text;
mod voices;
mod util;
