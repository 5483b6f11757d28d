//! The Markov backend: grammar-constrained, reproducible, trainable through FineTune.

use fine_drums_codec::beat::{Layout, split_bar};
use fine_drums_codec::pattern::{rock_beat, rock_groove};
use fine_drums_codec::{Context, Format, Grid, Meter};
use fine_drums_dataset::export::legacy_jsonl;
use fine_drums_dataset::{Entry, Prepared, Preparer, Split, Template, cl100k};
use fine_drums_llm::{
    CompletionRequest, FineTune, FinishReason, JobEvent, JobRequest, JobStatus, Upload,
};
use fine_drums_markov::{MODEL_VERSION, Markov, Model, PROMPT_MODEL, Sampling};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

/// Training JSONL from grooves made by code: rock beats at several tempi, with the ghost
/// notes moved around so that there is something to learn.
fn training_jsonl() -> String {
    let tokens = cl100k().expect("tokenizer");
    let preparer = Preparer::default();
    let mut p = Prepared::default();
    for i in 0..24 {
        let mut g = rock_groove(32, 80.0 + f64::from(i)).expect("rock");
        for (b, bar) in g.bars.iter_mut().enumerate() {
            if (b + i as usize).is_multiple_of(3) {
                bar.hits.retain(|h| h.step != 10);
            }
        }
        let midi = fine_drums_codec::midi::write(&g, &Default::default()).expect("write");
        preparer
            .add(&mut p, &Entry::new(format!("{i}.mid"), Split::Train), &midi, &tokens)
            .expect("a generated groove reads");
    }
    legacy_jsonl(p.split(Split::Train))
}

fn trained() -> Model {
    let mut m = Model::new(&Template::default()).expect("model");
    m.train_jsonl("train.jsonl", &training_jsonl()).expect("train");
    m
}

/// The meter whose beat-format layout is `layout`, to decode a continuation in.
fn meter_of(layout: Layout) -> Option<Meter> {
    (1..=32u8)
        .flat_map(|n| [1u8, 2, 4, 8, 16, 32, 64].map(|d| (n, d)))
        .filter_map(|(n, d)| Meter::new(n, d).ok())
        .find(|m| Layout::of(*m, Grid::SIXTEENTH).ok() == Some(layout))
}

/// Whether a prompt line is a bar (marks removed), and its text if so.
fn as_bar(line: &str) -> Option<String> {
    if line.trim().is_empty() {
        return None; // the model reads blank lines as no bar at all
    }
    let steps = split_bar(line.trim())?;
    let mut bar = String::new();
    steps.layout.write(&steps.steps, &mut bar);
    let meter = meter_of(steps.layout)?;
    Format::default().decode(&bar, &Context::new(480, meter, Default::default())).ok().map(|_| bar)
}

/// Decodes a completion strictly, in the meter of its own layout.
fn decodes_strictly(text: &str) -> Result<usize, String> {
    let format = Format::default();
    let Some(first) = text.lines().find(|l| !l.is_empty()) else { return Ok(0) };
    let layout = split_bar(first).ok_or_else(|| format!("{first:?} is not a bar"))?.layout;
    let meter = meter_of(layout).ok_or_else(|| format!("no meter has the layout of {first:?}"))?;
    let ctx = Context::new(480, meter, Default::default());
    format
        .decode(text.trim_start_matches('\n'), &ctx)
        .map(|g| g.bars.len())
        .map_err(|e| format!("{e}\n{text}"))
}

fn request(model: &str, prompt: &str, seed: u64) -> CompletionRequest {
    let mut r = CompletionRequest::new(model, prompt, 4000);
    r.seed = Some(seed);
    r.stop = vec!["<<<".into()];
    r
}

const PROMPT: &str = "KhC..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh..h. Kh..Kh.ss Sh..h.\n>>>";

#[test]
fn a_thousand_seeded_samples_all_decode_strictly() {
    let local = Markov::new(Template::default());
    local.insert_model("trained", trained());
    let mut bars = 0;
    for seed in 0..1000u64 {
        let model = if seed.is_multiple_of(2) { "trained" } else { PROMPT_MODEL };
        let mut r = request(model, PROMPT, seed);
        r.temperature = [0.0, 0.7, 1.0, 1.5][seed as usize % 4];
        r.top_p = [1.0, 0.9][seed as usize % 2];
        let out = local.complete_now(&r).expect("completion");
        assert_eq!(out.choices[0].finish_reason, FinishReason::Stop);
        bars += decodes_strictly(&out.choices[0].text).expect("strict decode");
    }
    assert_eq!(bars, 14_000, "every sample is 14 whole bars");
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let local = Markov::new(Template::default()).with_top_k(5);
    local.insert_model("trained", trained());
    for model in ["trained", PROMPT_MODEL] {
        let mut r = request(model, PROMPT, 77);
        r.n = 3;
        let a = local.complete_now(&r).expect("a");
        let b = local.complete_now(&r).expect("b");
        assert_eq!(a, b);
        assert_ne!(a.choices[0].text, a.choices[1].text, "samples of one request differ");
        r.seed = Some(78);
        assert_ne!(local.complete_now(&r).expect("c").choices, a.choices, "{model}");
    }
}

#[test]
fn max_tokens_cuts_whole_bars() {
    let local = Markov::new(Template::default());
    let mut r = request(PROMPT_MODEL, PROMPT, 1);
    r.max_tokens = 50;
    let out = local.complete_now(&r).expect("completion");
    let c = &out.choices[0];
    assert_eq!(c.finish_reason, FinishReason::Length);
    assert!(out.usage.completion_tokens <= 50, "{:?}", out.usage);
    let bars = decodes_strictly(&c.text).expect("whole bars");
    assert!((1..14).contains(&bars), "{bars}");
}

fn bar_line() -> impl Strategy<Value = String> {
    let step = prop::sample::select(vec![
        "", "k", "K", "kk", "h", "Kh", "Sh", "ss", "hh", "o", "C", "r", "kss",
    ]);
    prop::collection::vec(step, 16)
        .prop_map(|s| s.chunks(4).map(|g| g.join(".")).collect::<Vec<_>>().join(" "))
}

fn junk_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[kshKSH. ]{1,30}",
        Just("K.h K.h".to_string()),
        Just("3/4 K... .... ....".to_string()),
        Just(">>>".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_prompt_gives_grammatical_bars(
        lines in prop::collection::vec(prop_oneof![bar_line(), junk_line()], 0..6),
        seed in any::<u64>(),
        temperature in 0.0f32..2.0,
    ) {
        static LOCAL: std::sync::OnceLock<Markov> = std::sync::OnceLock::new();
        let local = LOCAL.get_or_init(|| Markov::new(Template::default()));
        let prompt = lines.join("\n") + "\n>>>";
        let mut r = request(PROMPT_MODEL, &prompt, seed);
        r.temperature = temperature;
        let out = local.complete_now(&r).expect("never fails on a prompt");
        let text = &out.choices[0].text;
        prop_assert!(decodes_strictly(text).is_ok(), "{}", decodes_strictly(text).unwrap_err());
        // It continues in the layout of the prompt's last well-formed bar.
        if let (Some(first), Some(last)) =
            (text.lines().find(|l| !l.is_empty()), lines.iter().rev().find_map(|l| as_bar(l)))
        {
            prop_assert_eq!(split_bar(first).map(|b| b.layout), split_bar(&last).map(|b| b.layout));
        }
    }
}

/// A model file crafted to ask for a billion bars a completion (the header rewritten, in the
/// version without a checksum) is refused, not sampled until the end of time; and a model
/// path that is a device is refused without reading it (issue 29, items 9 and 10).
#[test]
fn crafted_model_files_and_devices_are_refused() {
    let bytes = trained().to_bytes();
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value =
        serde_json::from_slice(&bytes[16..16 + len]).expect("a JSON header");
    for bars in [1_000_000_000u64, 0] {
        header["completion_bars"] = bars.into();
        let json = serde_json::to_vec(&header).expect("json");
        let mut crafted = bytes[..4].to_vec();
        crafted.extend_from_slice(&2u32.to_le_bytes());
        crafted.extend_from_slice(&(json.len() as u64).to_le_bytes());
        crafted.extend_from_slice(&json);
        crafted.extend_from_slice(&bytes[16 + len..bytes.len() - 8]);
        let e = Model::from_bytes("m.fdlm", &crafted).expect_err("a billion bars");
        assert!(e.to_string().contains("completion_bars"), "{e}");
    }
    if std::path::Path::new("/dev/zero").exists() {
        let local = Markov::new(Template::default());
        let mut request = fine_drums_llm::CompletionRequest::new("/dev/zero", PROMPT, 60);
        request.seed = Some(1);
        let e = local.complete_now(&request).expect_err("a device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

#[test]
fn the_model_file_round_trips_and_refuses_other_versions() {
    let m = trained();
    let bytes = m.to_bytes();
    let back = Model::from_bytes("m.fdlm", &bytes).expect("reads back");
    assert_eq!(back.to_bytes(), bytes);
    let sample = |m: &Model| {
        m.generate(PROMPT, 8, Sampling::default(), &mut SplitMix64::seed_from_u64(5), |_, _| true).0
    };
    assert_eq!(sample(&back), sample(&m));

    let mut other = bytes.clone();
    other[4..8].copy_from_slice(&(MODEL_VERSION + 1).to_le_bytes());
    let e = Model::from_bytes("m.fdlm", &other).expect_err("version");
    assert!(
        e.to_string().starts_with(&format!("m.fdlm: model format version {}", MODEL_VERSION + 1)),
        "{e}"
    );
    // A training file that is not JSON names its line and keeps the parser's error.
    let e = Model::new(&Template::default())
        .expect("model")
        .train_jsonl("train.jsonl", "{\"prompt\": \"k\", \"completion\": \"k\"}\n{oops")
        .expect_err("line 2 is not JSON");
    assert!(e.to_string().starts_with("train.jsonl, line 2: "), "{e}");
    let source = std::error::Error::source(&e).expect("the parser's error as the source");
    assert!(source.is::<serde_json::Error>(), "{source:?}");
    let e = Model::from_bytes("m.fdlm", &bytes[..bytes.len() - 3]).expect_err("cut");
    assert!(e.to_string().contains("cut short"), "{e}");
    // One count changed in the middle of the file: still a well-formed model, but not this
    // one, and the checksum says so.
    let mut flipped = bytes.clone();
    let middle = bytes.len() - 100;
    flipped[middle] ^= 1;
    let e = Model::from_bytes("m.fdlm", &flipped).expect_err("corrupted");
    assert!(e.to_string().contains("checksum does not match"), "{e}");
    // A file of the previous version (no checksum) still reads.
    let mut v2 = bytes[..bytes.len() - 8].to_vec();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(Model::from_bytes("old.fdlm", &v2).expect("version 2").to_bytes(), bytes);
    let e =
        Model::from_bytes("x.mid", &rock_beat(1, 90.0).expect("midi")).expect_err("not a model");
    assert!(e.to_string().contains("no FDLM magic"), "{e}");
}

#[test]
fn fine_tuning_mirrors_the_openai_flow() {
    let dir = std::env::temp_dir().join(format!("fine-drums-local-{}", std::process::id()));
    let local = Markov::new(Template::default()).with_models_dir(&dir);
    let file = Upload::new("train.jsonl", training_jsonl().into_bytes());
    let mut events = Vec::new();
    let mut job = JobRequest::new(PROMPT_MODEL, "");
    job.epochs = Some(3);
    let name = block_on(
        local.fine_tune(&file, None, &job, &mut |e: &JobEvent| events.push(e.message.clone())),
    )
    .expect("trained");
    assert!(name.ends_with(".fdlm") && std::path::Path::new(&name).is_file(), "{name}");
    assert!(events[0].starts_with("trained on train.jsonl: 48 examples, 768 bars"), "{events:?}");
    assert!(events.iter().any(|e| e.contains("do not apply to a counting model")));
    // A fresh backend loads the saved file by its name.
    let fresh = Markov::new(Template::default());
    let out = fresh.complete_now(&request(&name, PROMPT, 3)).expect("from the file");
    assert_eq!(decodes_strictly(&out.choices[0].text), Ok(14));
    let id = "ftjob-local-1";
    assert_eq!(block_on(local.job(id)).expect("job").status, JobStatus::Succeeded);
    assert!(block_on(local.cancel(id)).is_err());
    let e = block_on(local.create_job(&JobRequest::new("babbage-002", "file-local-1")))
        .expect_err("base");
    assert!(e.to_string().contains("trains from scratch"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn grooves_train_the_model_directly() {
    let mut m = Model::new(&Template::default()).expect("model");
    m.train_groove(&rock_groove(8, 100.0).expect("rock")).expect("encodes");
    assert_eq!((m.stats().examples, m.stats().bars), (1, 8));
    let (text, cut) =
        m.generate(PROMPT, 4, Sampling::default(), &mut SplitMix64::seed_from_u64(1), |_, _| true);
    assert!(!cut);
    assert_eq!(decodes_strictly(&text), Ok(4));
}

#[test]
fn other_formats_are_refused_clearly() {
    let mut t = Template::default();
    t.codec.format = fine_drums_codec::Format::DRUMROLL;
    let e = Model::new(&t).expect_err("drumroll");
    assert!(e.to_string().contains("models the beat format, not drumroll"), "{e}");
}

/// The default pause leaves the executor's thread free: on a single-threaded runtime, a task
/// beside it runs while it waits (a sleeping pause would finish before the task ever ran).
#[test]
fn the_default_pause_does_not_block_the_executor() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let local = Markov::new(Template::default());
    let ran = AtomicBool::new(false);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let seen_after_pause = runtime.block_on(async {
        let pause = async {
            local.pause(std::time::Duration::from_millis(30)).await;
            ran.load(Ordering::SeqCst)
        };
        let beside = async { ran.store(true, Ordering::SeqCst) };
        tokio::join!(pause, beside).0
    });
    assert!(seen_after_pause, "the task beside the pause ran only after it");
}
