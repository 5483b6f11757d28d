//! The continuation pipeline with scripted backends.

use std::sync::Mutex;

use fine_drums_codec::midi::{self, ReadOptions};
use fine_drums_codec::pattern::rock_beat;
use fine_drums_dataset::{Manifest, Preparer};
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, ContinueOptions, Error,
    FinishReason, Result, Usage, continue_midi,
};

/// Answers each request with the next scripted text, and records the requests.
struct Script {
    answers: Mutex<Vec<&'static str>>,
    seen: Mutex<Vec<CompletionRequest>>,
}

impl Script {
    fn new(answers: &[&'static str]) -> Script {
        let mut a = answers.to_vec();
        a.reverse();
        Script { answers: Mutex::new(a), seen: Mutex::new(Vec::new()) }
    }
}

impl Complete for Script {
    fn complete<'a>(&'a self, request: &'a CompletionRequest) -> BoxFuture<'a, Result<Completion>> {
        Box::pin(async move {
            self.seen.lock().expect("lock").push(request.clone());
            let text = self.answers.lock().expect("lock").pop().unwrap_or("");
            let choice = Choice::new(text, FinishReason::Stop);
            Ok(Completion::new(vec![choice], Usage::new(10, 20)))
        })
    }
}

fn manifest() -> Manifest {
    Manifest::of_settings(&Preparer::default())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

const BAR: &str = "K.h.h.h Sh..h. Kh..Kh. Sh..h.";

#[test]
fn a_garbage_sample_is_resampled_and_the_prompt_kept_unchanged() {
    let midi = rock_beat(4, 96.0).expect("rock");
    let good: &'static str =
        Box::leak(format!("\n{BAR}\n{BAR}\nzz junk\n{BAR}\n<<<").into_boxed_str());
    let backend = Script::new(&["\n!!! nothing useful", good]);
    let mut options = ContinueOptions::new("any");
    options.bars = 3;
    options.seed = Some(9);
    let out = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect("continued");
    let r = &out.report;
    assert_eq!((r.requests, r.bars_asked, r.bars_kept, r.bars_trimmed), (3, 3, 3, 0));
    assert_eq!(r.usage.total(), 90);
    assert_eq!(r.dropped.len(), 1);
    assert_eq!((r.dropped[0].request, r.dropped[0].line), (2, 3), "{:?}", r.dropped);
    assert!(r.dropped[0].to_string().starts_with("request 2: line 3, column "), "{:?}", r.dropped);
    // A sample with a dropped bar is resampled once more (seeds 9, 10, 11); the stop sequence and prompt are the manifest's.
    let seen = backend.seen.lock().expect("lock");
    assert_eq!(seen.iter().map(|r| r.seed).collect::<Vec<_>>(), [Some(9), Some(10), Some(11)]);
    assert_eq!(seen[0].stop, ["<<<"]);
    assert_eq!(
        seen[0].prompt,
        "KhC..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh..h. Kh..Kh.ss Sh..h.\n>>>"
    );
    // The MIDI holds the two source bars exactly, then the two new ones.
    let back = midi::read(&out.midi, &ReadOptions::lossless()).expect("valid MIDI");
    let source = midi::read(&midi, &ReadOptions::lossless()).expect("source");
    assert_eq!(back.bars.len(), 5);
    assert_eq!(back.bars[..2], source.bars[..2]);
    assert_eq!(back.context().tempo, source.context().tempo);
    assert_eq!(back.bars[2].hits.len(), 14);
}

#[test]
fn only_unusable_samples_are_an_error_with_reasons() {
    let midi = rock_beat(4, 96.0).expect("rock");
    let backend = Script::new(&["nope", "\n<<<", "12345"]);
    let err = block_on(continue_midi(&midi, &manifest(), &backend, &ContinueOptions::new("m")))
        .expect_err("no bar");
    assert!(matches!(err, Error::Unusable { attempts: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("request 1: line 1"), "{err}");
}

#[test]
fn a_file_too_short_for_the_prompt_names_the_problem() {
    let midi = rock_beat(1, 96.0).expect("rock");
    let backend = Script::new(&[]);
    let err = block_on(continue_midi(&midi, &manifest(), &backend, &ContinueOptions::new("m")))
        .expect_err("short");
    assert!(err.to_string().contains("the prompt needs 2"), "{err}");
    let err =
        block_on(continue_midi(b"not midi", &manifest(), &backend, &ContinueOptions::new("m")))
            .expect_err("garbage");
    assert!(err.to_string().contains("not a valid MIDI file"), "{err}");
}

#[test]
fn traits_work_as_objects() {
    let boxed: Box<dyn Complete> = Box::new(Script::new(&["\nKh..h. Sh..h. Kh..Kh. Sh..h.\n"]));
    let arc: std::sync::Arc<dyn Complete> = std::sync::Arc::new(Script::new(&[]));
    let r = CompletionRequest::new("m", "p", 8);
    assert_eq!(block_on(boxed.complete(&r)).expect("boxed").choices.len(), 1);
    assert_eq!(block_on(arc.complete(&r)).expect("arc").usage.total(), 30);
    let midi = rock_beat(2, 96.0).expect("rock");
    let boxed: Box<dyn Complete> = Box::new(Script::new(&["\nKh..h. Sh..h. Kh..Kh. Sh..h.\n"]));
    let mut o = ContinueOptions::new("m");
    o.bars = 1;
    let out = block_on(continue_midi(&midi, &manifest(), &boxed, &o)).expect("through a Box<dyn>");
    assert_eq!(out.report.bars_kept, 1);
}
