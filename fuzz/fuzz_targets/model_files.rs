//! Model files: the Markov model's `.fdlm` bytes, and a drum GPT checkpoint whose files are
//! cut from the input (each after a two-byte length).
#![no_main]

use fine_drums_gpt::Device;
use fine_drums_gpt::checkpoint::{self, CHECKSUMS, CONFIG, OPTIMIZER, VOCAB, WEIGHTS};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fine_drums_markov::Model::from_bytes("fuzz.fdlm", data);
    let mut files = Vec::new();
    let mut rest = data;
    for name in [CHECKSUMS, CONFIG, VOCAB, WEIGHTS, OPTIMIZER] {
        let (len, body) = match rest {
            [a, b, body @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), body),
            _ => (0, &[][..]),
        };
        let (file, after) = body.split_at(len.min(body.len()));
        files.push((name, file.to_vec()));
        rest = after;
    }
    let _ =
        checkpoint::load_with(std::path::Path::new("fuzz"), &Device::Cpu, &mut |name| {
            files.iter().find(|(n, _)| *n == name).map(|(_, bytes)| bytes.clone()).ok_or_else(
                || fine_drums_gpt::Error::Invalid { what: "file", message: name.into() },
            )
        });
});
