//! MIDI bytes into a groove, as every reader setting takes them; what reads is written and
//! read again.
#![no_main]

use fine_drums_codec::midi::{self, ReadOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for options in [ReadOptions::default(), ReadOptions::lossless()] {
        if let Ok(groove) = midi::read(data, &options)
            && let Ok(bytes) = midi::write(&groove, &Default::default())
        {
            let _ = midi::read(&bytes, &options);
        }
    }
});
