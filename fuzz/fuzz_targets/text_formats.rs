//! Every text format, strict and lenient: the first byte picks the format, the rest is the
//! text (bytes, so that invalid UTF-8 reaches the lenient decoder). What decodes is encoded
//! and decoded again.
#![no_main]

use fine_drums_codec::{Context, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else { return };
    let format = match which % 3 {
        0 => Format::default(),
        1 => Format::DRUMROLL,
        _ => Format::EXACT,
    };
    let ctx = Context::default();
    if let Ok(lenient) = format.decode_lenient_bytes(text, &ctx) {
        let _ = format.encode(&lenient.groove);
    }
    if let Ok(text) = std::str::from_utf8(text)
        && let Ok(groove) = format.decode(text, &ctx)
        && let Ok(again) = format.encode(&groove)
    {
        let _ = format.decode(&again, &groove.context());
    }
});
