//! MIDI bytes into a groove, as every reader setting takes them (strict and lenient); what
//! reads is written and read again, strictly.
#![no_main]

use fine_drums_codec::midi::{self, ReadOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut lenient = ReadOptions::lossless();
    lenient.lenient = true;
    for options in [ReadOptions::default(), ReadOptions::lossless(), lenient] {
        if let Ok(groove) = midi::read(data, &options)
            && let Ok(bytes) = midi::write(&groove, &Default::default())
        {
            let mut strict = options;
            strict.lenient = false;
            let _ = midi::read(&bytes, &strict);
        }
    }
});
