//! Fine-tuning JSONL: OpenAI's checks on a legacy file, each line as an example, and the
//! Markov model's training on the whole file.
#![no_main]

use fine_drums_dataset::export::{check_legacy, parse_example};
use fine_drums_dataset::{CountTokens, Template};

/// A byte a token: never under the true count, and no tokenizer to load.
struct Bytes;

impl CountTokens for Bytes {
    fn count_tokens(&self, text: &str) -> usize {
        text.len()
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let template = Template::default();
    let _ = check_legacy("fuzz.jsonl", text, &template, 4096, &Bytes);
    for line in text.lines() {
        let _ = parse_example(line);
    }
    if let Ok(mut model) = fine_drums_markov::Model::new(&template) {
        let _ = model.train_jsonl("fuzz.jsonl", text);
    }
});
