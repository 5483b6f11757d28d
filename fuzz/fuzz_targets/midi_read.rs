//! MIDI bytes into a groove, as every reader setting takes them (strict and lenient); what
//! reads is written and read again, strictly, and must come back the same:
//! `read(write(g)) == g` for every `g` that `read` accepts.
#![no_main]

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut lenient = ReadOptions::lossless();
    lenient.lenient = true;
    for options in [ReadOptions::default(), ReadOptions::lossless(), lenient] {
        let Ok(groove) = midi::read(data, &options) else { continue };
        let mut write = WriteOptions::default();
        write.channel = options.channel;
        let Ok(bytes) = midi::write(&groove, &write) else { continue };
        let mut strict = options;
        strict.lenient = false;
        match midi::read(&bytes, &strict) {
            Ok(back) => assert!(back == groove, "read(write(g)) != g with {options:?}"),
            Err(e) => panic!("a written groove does not read back: {e}"),
        }
    }
});
