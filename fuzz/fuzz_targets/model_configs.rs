//! Drum GPT checkpoints whose `config.json` is made from the input, every number of it a
//! value the input picks (the largest ones included), with `checksums.json` recomputed so
//! that only the values themselves can refuse the model: loading must give an error or a
//! model, never a panic, an abort, an allocation of the value's size or a hang.
#![no_main]

use fine_drums_codec::beat::BeatOptions;
use fine_drums_dataset::Template;
use fine_drums_gpt::Device;
use fine_drums_gpt::checkpoint::{self, CHECKSUMS, CONFIG, Progress, VOCAB, WEIGHTS};
use fine_drums_gpt::tokens::Vocabulary;
use serde_json::json;

/// 64-bit FNV-1a, the checksum `checksums.json` holds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A value from 8 bytes of input: small ones, the bounds and the largest, often.
fn value(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    let raw = u64::from_le_bytes(b);
    match raw % 8 {
        0 => raw >> 3 & 0xFF,
        1 => 1 << (raw >> 3 & 63),
        2 => u64::MAX >> (raw >> 3 & 63),
        _ => raw >> 3,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(vocab) = Vocabulary::new(BeatOptions::default(), ["".to_string(), "Kh".to_string(), "S".to_string()])
    else {
        return;
    };
    let mut fields = data.chunks(8).map(value);
    let mut next = |default: u64| match fields.next() {
        Some(v) if v % 3 != 0 => v,
        _ => default,
    };
    let config = json!({
        "version": 1,
        "preset": "custom",
        "vocab": next(vocab.len() as u64),
        "d_model": next(8),
        "layers": next(1),
        "heads": next(2),
        "d_ff": next(16),
        "context": next(16),
    });
    let mut training = serde_json::to_value(Progress::default()).unwrap_or_default();
    training["completion_bars"] = json!(next(14));
    let meta = json!({
        "config": config,
        "template": serde_json::to_value(Template::default()).unwrap_or_default(),
        "training": training,
    });
    // A safetensors file of one f32 tensor of the input's size (at most 4 KiB).
    let count = (next(4) % 1024) as usize;
    let header = json!({ "w": { "dtype": "F32", "shape": [count], "data_offsets": [0, count * 4] } })
        .to_string();
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header.as_bytes());
    weights.resize(weights.len() + count * 4, 0);
    let files: Vec<(&str, Vec<u8>)> = vec![
        (CONFIG, serde_json::to_vec(&meta).unwrap_or_default()),
        (VOCAB, serde_json::to_vec(&vocab).unwrap_or_default()),
        (WEIGHTS, weights),
    ];
    let sums: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(n, b)| (n.to_string(), json!([b.len(), format!("{:016x}", fnv1a(b))])))
        .collect();
    let sums = serde_json::to_vec(&json!({ "files": sums })).unwrap_or_default();
    let _ = checkpoint::load_with(std::path::Path::new("fuzz"), &Device::Cpu, &mut |name| {
        if name == CHECKSUMS {
            return Ok(sums.clone());
        }
        files.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone()).ok_or_else(|| {
            fine_drums_gpt::Error::Invalid { what: "file", message: name.into() }
        })
    });
});
