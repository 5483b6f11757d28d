//! Integration tests of fine-drums-codec, built as one binary.

mod gmd;
mod hostile;
mod props;
mod text;
mod voices;
mod util;
