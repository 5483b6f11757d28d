//! Every text format, strict and lenient: the first byte picks the format, the rest is the
//! text (bytes, so that invalid UTF-8 reaches the lenient decoder). What decodes, either way,
//! is encoded and decoded again strictly, and must come back the same:
//! `decode(encode(g)) == g` for every `g` that a decode gives, in the format's settings: a
//! beat-format text whose first line is a `#beat` header may decode in others (levels,
//! microtiming), which the groove does not carry, so its round trip is not checked.
#![no_main]

use fine_drums_codec::{Context, Format, Groove};

fn round_trip(format: &Format, groove: &Groove) {
    // A groove past a format's own limits (an encoder's refusal) is not a round trip.
    let Ok(text) = format.encode(groove) else { return };
    match format.decode(&text, &groove.context()) {
        Ok(back) => assert!(back == *groove, "decode(encode(g)) != g in {}: {text:?}", format.name()),
        Err(e) => panic!("encoded text does not decode in {}: {e}: {text:?}", format.name()),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else { return };
    let format = match which % 3 {
        0 => Format::default(),
        1 => Format::DRUMROLL,
        _ => Format::EXACT,
    };
    let ctx = Context::default();
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_prefix("\u{feff}".as_bytes()).unwrap_or(first);
    let header = matches!(format, Format::Beat(_)) && first.trim_ascii_start().starts_with(b"#");
    if let Ok(lenient) = format.decode_lenient_bytes(text, &ctx)
        && !header
    {
        round_trip(&format, &lenient.groove);
    }
    if let Ok(text) = std::str::from_utf8(text)
        && let Ok(groove) = format.decode(text, &ctx)
        && !header
    {
        round_trip(&format, &groove);
    }
});
