//! The crate's integration tests: one binary.

mod parity;
mod train;
