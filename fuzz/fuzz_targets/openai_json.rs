//! OpenAI API response bodies as the OpenAI backend reads them: a completion, a job, an
//! error of any status, and a job status alone.
#![no_main]

use fine_drums_openai::{read_completion, read_error, read_job};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = read_completion(data);
    let _ = read_job(data);
    let status = data.first().map_or(500, |&b| 400 + u16::from(b));
    let _ = read_error(status, data).to_string();
    let _ = serde_json::from_slice::<fine_drums_llm::JobStatus>(data);
});
