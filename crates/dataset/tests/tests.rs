//! Integration tests of fine-drums-dataset, built as one binary.

#[path = "../../../tests/common/gmd.rs"]
mod gmd_dir;

mod controls;
mod folders;
mod gmd;
mod pieces;
