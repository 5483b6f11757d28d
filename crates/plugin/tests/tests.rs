//! The plugin's tests: one binary.

mod clap_host;
mod grid;
mod host;
