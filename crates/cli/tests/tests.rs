//! Integration tests of fine-drums-cli, built as one binary: the commands called directly,
//! and the workspace's example binaries run as a user runs them.

mod commands;
mod examples;
mod steering;
