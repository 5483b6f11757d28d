//! The plugin's tests: one binary.

mod grid;
mod host;
