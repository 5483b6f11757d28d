//! Integration tests of fine-drums-train, built as one binary.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use fine_drums_train::checkpoint::{self, CHECKSUMS, Files, OPTIMIZER};
use fine_drums_train::schedule::lr_at;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_checkpoint_reads_back_and_names_a_damaged_file() {
    let dir = scratch("damaged");
    checkpoint::save_files(&dir, &[("a.json", b"[1,2,3]".to_vec()), (OPTIMIZER, vec![7; 64])])
        .expect("saved");
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert!(files.contains(OPTIMIZER) && !files.contains("b.json"));
    assert_eq!(files.read("a.json").expect("a.json"), b"[1,2,3]");
    // Cut short, then corrupted: each named.
    std::fs::write(dir.join("a.json"), b"[1,2").expect("cut");
    let e = files.read("a.json").expect_err("cut short").to_string();
    assert!(e.contains("a.json") && e.contains("cut short"), "{e}");
    std::fs::write(dir.join("a.json"), b"[1,2,4]").expect("corrupt");
    let e = files.read("a.json").expect_err("corrupted").to_string();
    assert!(e.contains("checksum does not match"), "{e}");
    // A save without the optimiser's state removes the old one.
    checkpoint::save_files(&dir, &[("a.json", b"[]".to_vec())]).expect("saved again");
    assert!(!dir.join(OPTIMIZER).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_save_cut_short_leaves_the_old_checkpoint_or_the_new_one() {
    let dir = scratch("killed");
    checkpoint::save_files(&dir, &[("a.json", b"old".to_vec())]).expect("saved");
    let staging = dir
        .with_file_name(format!(".{}.partial", dir.file_name().expect("a name").to_string_lossy()));
    // Killed while writing the staging folder (no checksums yet): the old checkpoint stays.
    std::fs::create_dir_all(&staging).expect("staging");
    std::fs::write(staging.join("a.json"), b"new").expect("half a save");
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert_eq!(files.read("a.json").expect("old"), b"old");
    assert!(!staging.exists());
    // Killed while moving (the staging folder complete): the next open finishes the move.
    checkpoint::save_files(&staging.with_file_name("whole"), &[("a.json", b"new".to_vec())])
        .expect("a complete save elsewhere");
    std::fs::rename(staging.with_file_name("whole"), &staging).expect("as a staging folder");
    assert!(staging.join(CHECKSUMS).is_file());
    let files = Files::open(&dir).expect("opens").expect("a checkpoint");
    assert_eq!(files.read("a.json").expect("new"), b"new");
    assert!(!staging.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn safetensors_bytes_read_back_as_the_same_tensors() {
    let t = Tensor::arange(0f32, 6.0, &Device::Cpu).and_then(|t| t.reshape((2, 3))).expect("t");
    let bytes = checkpoint::safetensors_bytes(&HashMap::from([("w".to_string(), t.clone())]))
        .expect("bytes");
    let back = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).expect("reads");
    let w = back["w"].to_vec2::<f32>().expect("2-D");
    assert_eq!(w, t.to_vec2::<f32>().expect("2-D"));
}

#[test]
fn the_learning_rate_warms_up_then_decays_to_a_tenth() {
    let (peak, warmup, total) = (3e-3, 10, 110);
    let lrs: Vec<f64> = (0..=total + 5).map(|s| lr_at(peak, warmup, s, total)).collect();
    assert!(lrs[..10].windows(2).all(|w| w[0] < w[1]), "rises during the warm-up");
    assert!((lrs[9] - peak).abs() < 1e-12 && (lrs[10] - peak).abs() < 1e-12);
    assert!(lrs[10..=110].windows(2).all(|w| w[0] >= w[1]), "falls after it");
    assert!(lrs[110..].iter().all(|lr| (lr - peak / 10.0).abs() < 1e-12), "then stays");
    // No warm-up and a run of one step are no division by zero.
    assert!((lr_at(peak, 0, 0, 0) - peak).abs() < 1e-12);
}
