//! Integration tests of fine-drums-continue: the pipeline with scripted backends.

use std::sync::Mutex;

use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::pattern::{rock_beat, rock_groove};
use fine_drums_codec::{Voice, VoiceMap};
use fine_drums_continue::{ContinueOptions, Error, continue_midi};
use fine_drums_dataset::{Manifest, Preparer};
use fine_drums_llm::{
    BoxFuture, Choice, Complete, Completion, CompletionRequest, FinishReason, Result, Usage,
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
    // The prompt is the last two bars.
    assert_eq!(seen[0].prompt, "Kh..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh..h. Kh..Kh.ss Sh..h.\n>>>");
    // The MIDI holds the four source bars exactly, then the three new ones.
    let back = midi::read(&out.midi, &ReadOptions::lossless()).expect("valid MIDI");
    let source = midi::read(&midi, &ReadOptions::lossless()).expect("source");
    assert_eq!(back.bars.len(), 7);
    assert_eq!(back.bars[..4], source.bars[..4]);
    assert_eq!(back.context().tempo, source.context().tempo);
    assert_eq!(back.bars[4].hits.len(), 14);
    assert_eq!((r.prompt_start, r.prompt_bars), (2, 2));
    // The model is told where the prompt starts in the file (bar 3), for its phrases.
    assert!(seen.iter().all(|r| r.steer.prompt_start == Some(2)), "{seen:?}");
}

#[test]
fn a_second_request_is_told_where_its_prompt_starts() {
    let midi = rock_beat(4, 96.0).expect("rock");
    let one: &'static str = Box::leak(format!("\n{BAR}\n<<<").into_boxed_str());
    let two: &'static str = Box::leak(format!("\n{BAR}\n{BAR}\n<<<").into_boxed_str());
    let backend = Script::new(&[one, two]);
    let mut options = ContinueOptions::new("any");
    options.bars = 3;
    let out = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect("continued");
    assert_eq!(out.report.requests, 2);
    // The first prompt is bars 3-4 of the file; the second, one new bar later, bars 4-5.
    let seen = backend.seen.lock().expect("lock");
    let starts: Vec<_> = seen.iter().map(|r| r.steer.prompt_start).collect();
    assert_eq!(starts, [Some(2), Some(3)]);
}

#[test]
fn from_bar_continues_inside_the_file_after_a_prompt_of_any_length() {
    let midi = rock_beat(4, 96.0).expect("rock");
    let answer: &'static str = Box::leak(format!("\n{BAR}\n{BAR}\n<<<").into_boxed_str());
    let backend = Script::new(&[answer]);
    let mut options = ContinueOptions::new("any");
    (options.bars, options.from_bar, options.prompt_bars) = (2, Some(3), Some(3));
    let out = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect("continued");
    // Bars 1-3 are the prompt and are kept; bar 4 is replaced by the two new bars.
    assert_eq!((out.report.prompt_start, out.report.prompt_bars), (0, 3));
    assert_eq!(backend.seen.lock().expect("lock")[0].prompt.lines().count(), 4);
    assert_eq!(backend.seen.lock().expect("lock")[0].steer.prompt_start, Some(0));
    let back = midi::read(&out.midi, &ReadOptions::lossless()).expect("valid MIDI");
    let source = midi::read(&midi, &ReadOptions::lossless()).expect("source");
    assert_eq!(back.bars.len(), 5);
    assert_eq!(back.bars[..3], source.bars[..3]);
    // Past the end, or with too few bars before it, the error says which bar.
    options.from_bar = Some(5);
    let err = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect_err("past");
    assert!(err.to_string().contains("there is no bar 6"), "{err}");
    options.from_bar = Some(1);
    let err = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect_err("early");
    assert!(err.to_string().contains("a prompt of 3 bars cannot end before bar 2"), "{err}");
}

/// A General MIDI groove that plays its kick on Acoustic Bass Drum (35), its backbeat on Hand
/// Clap (39), its hats on the pedal (44) and a Low Floor Tom (41).
fn general_midi_groove() -> Vec<u8> {
    let mut g = rock_groove(2, 100.0).expect("rock").with_voices(VoiceMap::Full).expect("full");
    for hit in g.bars.iter_mut().flat_map(|b| b.hits.iter_mut()) {
        let to = match hit.voice.index() {
            36 => 35,
            38 => 39,
            42 => 44,
            p => p as u8,
        };
        hit.voice = Voice::new(to);
    }
    let mut tom = g.bars[1].hits[0];
    (tom.step, tom.voice) = (14, Voice::new(41));
    g.bars[1].hits.push(tom);
    midi::write(&g, &WriteOptions::default()).expect("write")
}

#[test]
fn general_midi_drums_keep_their_voices_and_their_pitches() {
    let midi = general_midi_groove();
    let answer: &'static str =
        Box::leak(format!("\n{BAR}\nl... ... ... ...\n<<<").into_boxed_str());
    let backend = Script::new(&[answer]);
    let mut options = ContinueOptions::new("any");
    options.bars = 2;
    let out = block_on(continue_midi(&midi, &manifest(), &backend, &options)).expect("continued");
    // The prompt has every kick (35), clap (39), pedal hat (44) and the tom (41): the rock
    // beat's own prompt, and the tom.
    assert_eq!(
        backend.seen.lock().expect("lock")[0].prompt,
        "KhC..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh..h. Kh..Kh.ss Sh..hL.\n>>>"
    );
    assert!(out.report.unmapped.is_empty(), "{:?}", out.report.unmapped);
    // The new bars play each voice on the pitch the prompt used for it; the tom, which the
    // prompt played on 41, too.
    let back = midi::read(&out.midi, &ReadOptions::lossless()).expect("valid MIDI");
    let pitches: std::collections::BTreeSet<usize> =
        back.bars[2..].iter().flat_map(|b| &b.hits).map(|h| h.voice.index()).collect();
    assert_eq!(pitches.into_iter().collect::<Vec<_>>(), [35, 39, 41, 44]);
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
    assert!(
        err.to_string().contains("a prompt of 2 bars cannot end before bar 2: only 1 bar comes"),
        "{err}"
    );
    let err =
        block_on(continue_midi(b"not midi", &manifest(), &backend, &ContinueOptions::new("m")))
            .expect_err("garbage");
    assert!(err.to_string().contains("not a valid MIDI file"), "{err}");
}

/// More bars than a groove may hold are refused before any request: the limit of the
/// format, with the bars before the prompt's end counted.
#[test]
fn too_many_bars_are_refused_before_any_request() {
    let midi = rock_beat(8, 96.0).expect("rock");
    let backend = Script::new(&[]);
    for bars in [1_000_000, 99_995] {
        let mut options = ContinueOptions::new("m");
        options.bars = bars;
        let err = block_on(continue_midi(&midi, &manifest(), &backend, &options))
            .expect_err("too many bars");
        assert!(matches!(err, Error::Invalid { what: "bars", .. }), "{err}");
        assert!(err.to_string().contains("100000 a groove may hold"), "{err}");
    }
    assert!(backend.seen.lock().expect("lock").is_empty(), "no request was sent");
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
