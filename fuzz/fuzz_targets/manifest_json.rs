//! The manifest `prepare` writes, read back: parsed, and written again when it parses.
#![no_main]

use fine_drums_dataset::Manifest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(manifest) = Manifest::from_json(text) {
        let _ = Manifest::from_json(&manifest.to_json());
    }
});
