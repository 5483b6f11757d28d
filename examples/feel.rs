//! Learns a feel (how drummers play each voice, step and loudness level: velocity and
//! microtiming) from the performances of a dataset's train split, as JSON.
//!
//! `cargo run --release --example feel -- ../shared/datasets/groove --out crates/feel/table/gmd-train.json`
//! rebuilds the feel that `continue` gives new bars by default (`fine_drums_feel::Feel::gmd`).

fn main() -> std::process::ExitCode {
    fine_drums_cli::main(fine_drums_cli::feel::run)
}
