//! Training the tiny preset on grooves made by code: the loss falls, checkpoints round-trip
//! and resume to the same weights, damaged files are named, and samples decode strictly.

use candle_core::Device;
use fine_drums_codec::{Context, Format, Meter};
use fine_drums_dataset::Template;
use fine_drums_gpt::checkpoint::{self, WEIGHTS};
use fine_drums_gpt::train::{Event, TrainOptions, Trainer};
use fine_drums_gpt::{Batch, Drummer, Sampling};

/// Windows of rock beats with ghost notes moved around: 2 prompt bars and 6 to continue.
fn examples(n: usize, shift: usize) -> Vec<String> {
    let format = Format::default();
    (0..n)
        .map(|i| {
            let mut g = fine_drums_codec::pattern::rock_groove(8, 90.0).expect("rock");
            for (b, bar) in g.bars.iter_mut().enumerate() {
                if (b + i + shift).is_multiple_of(3) {
                    bar.hits.retain(|h| h.step != 10);
                }
            }
            format.encode(&g).expect("text")
        })
        .collect()
}

fn options() -> TrainOptions {
    let mut o = TrainOptions::default();
    o.preset = "tiny".into();
    o.epochs = 4;
    o.batch = 4;
    o.warmup = 4;
    o.patience = 10;
    o.seed = 7;
    o
}

fn trainer() -> Trainer {
    trainer_with(&options())
}

fn trainer_with(options: &TrainOptions) -> Trainer {
    Trainer::new(&Template::default(), &examples(12, 0), &examples(4, 1), 6, options, &Device::Cpu)
        .expect("a trainer")
}

/// A fresh folder under the system's temporary folder, removed when the test ends.
struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("fine-drums-gpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Scratch(dir)
}

#[test]
fn the_tiny_model_learns_and_its_samples_decode() {
    let mut t = trainer();
    let before = t.validation_loss().expect("a loss");
    let mut epochs = Vec::new();
    t.run(None, &mut |e| {
        if let Event::Epoch { validation_loss, .. } = e {
            epochs.push(*validation_loss);
        }
    })
    .expect("training");
    let after = t.validation_loss().expect("a loss");
    assert_eq!(epochs.len(), 4);
    assert!(after < before * 0.7, "validation loss {before} -> {after}");
    // Seeded samples, all grammatical.
    let drummer = Drummer { gpt: t.gpt().clone(), vocab: t.vocab().clone() };
    let prompt = examples(1, 0)[0].lines().take(2).collect::<Vec<_>>().join("\n");
    let beat = Format::default();
    let mut samples = 0;
    for seed in 0..25u64 {
        let mut s = Sampling::default();
        s.temperature = [0.0, 0.8, 1.0, 1.5][seed as usize % 4];
        for text in
            drummer.continue_bars(&prompt, Meter::FOUR_FOUR, 6, 4, s, seed * 4).expect("samples")
        {
            let g = beat.decode(&text, &Context::default()).expect("a strict decode");
            assert_eq!(g.bars.len(), 6, "{text}");
            samples += 1;
        }
    }
    assert_eq!(samples, 100);
    // The same seed, the same bars.
    let a =
        drummer.continue_bars(&prompt, Meter::FOUR_FOUR, 4, 1, Sampling::default(), 3).expect("a");
    let b =
        drummer.continue_bars(&prompt, Meter::FOUR_FOUR, 4, 1, Sampling::default(), 3).expect("b");
    assert_eq!(a, b);
    // Likelihood: the true continuation is likelier than noise.
    let truth = examples(1, 0)[0].lines().skip(2).collect::<Vec<_>>().join("\n");
    let noise = "c.c.c.c r.r.r.r l.l.l.l t.t.t.t\n".repeat(6);
    let (p, q) = (
        drummer.nll_per_bar(&prompt, &truth, Meter::FOUR_FOUR).expect("nll"),
        drummer.nll_per_bar(&prompt, &noise, Meter::FOUR_FOUR).expect("nll"),
    );
    assert!(p < q, "{p} against {q}");
}

#[test]
fn save_then_load_gives_identical_logits() {
    let t = trainer();
    let dir = scratch("save");
    t.save_model(&dir, false).expect("saved");
    let loaded = checkpoint::load(&dir, &Device::Cpu).expect("loaded");
    let e = t.vocab().encode(&examples(1, 0)[0]).expect("tokens");
    let batch = Batch::windows(&e, &[0], 40, &Device::Cpu).expect("a batch");
    let a: Vec<f32> = t.gpt().forward(&batch).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = loaded.gpt.forward(&batch).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a, b);
    assert_eq!(&loaded.vocab, t.vocab());
}

#[test]
fn a_resumed_run_ends_with_the_weights_of_an_unbroken_one() {
    // With dropout: a resumed run draws the same masks.
    let mut o = options();
    o.dropout = 0.1;
    let mut whole = trainer_with(&o);
    whole.run(None, &mut |_| {}).expect("training");
    // The same run, killed after its second epoch's checkpoint, then resumed from it.
    let dir = scratch("resume");
    let mut killed = trainer_with(&o);
    let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        killed.run(Some(&dir), &mut |e| {
            if matches!(e, Event::Epoch { epoch: 2, .. }) {
                panic!("killed");
            }
        })
    }));
    assert!(interrupted.is_err());
    drop(killed);
    let mut rest = Trainer::resume(&dir, &examples(12, 0), &examples(4, 1), &o, &Device::Cpu)
        .expect("resumes");
    assert_eq!(rest.meta().training.epoch, 2);
    rest.run(Some(&dir), &mut |_| {}).expect("the other two epochs");
    for ((n, a), (_, b)) in whole.gpt().vars().iter().zip(rest.gpt().vars()) {
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
            b.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b, "{n}");
    }
}

#[test]
fn damaged_checkpoints_are_errors_that_name_the_file() {
    let t = trainer();
    let dir = scratch("damaged");
    t.save_model(&dir, false).expect("saved");
    let weights = dir.join(WEIGHTS);
    let bytes = std::fs::read(&weights).expect("weights");
    // Cut short.
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("write");
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("truncated");
    assert!(
        e.to_string().contains("model.safetensors") && e.to_string().contains("cut short"),
        "{e}"
    );
    // One byte changed.
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 1] ^= 1;
    std::fs::write(&weights, &flipped).expect("write");
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("corrupted");
    assert!(
        e.to_string().contains("model.safetensors") && e.to_string().contains("checksum"),
        "{e}"
    );
    // A config from another version.
    t.save_model(&dir, false).expect("saved again");
    let config = std::fs::read_to_string(dir.join("config.json")).expect("config");
    std::fs::write(dir.join("config.json"), config.replace("\"version\": 1", "\"version\": 9"))
        .expect("write");
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("another version");
    assert!(e.to_string().contains("config.json"), "{e}");
    // A vocabulary of another model (its file whole, and listed as such).
    t.save_model(&dir, false).expect("saved again");
    let more =
        vec!["Kh.l.m.t Sh.r.r.c Kh..Kh. Sh..h.\nKh.l.m.t Sh.r.r.c Kh..Kh. Sh..h.\n".to_string(); 2];
    let other =
        Trainer::new(&Template::default(), &more, &[], 6, &options(), &Device::Cpu).expect("other");
    assert_ne!(other.vocab().len(), t.vocab().len());
    let other_dir = scratch("other");
    other.save_model(&other_dir, false).expect("saved");
    std::fs::copy(other_dir.join("vocab.json"), dir.join("vocab.json")).expect("copy");
    let sums = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("checksums.json")).expect("sums"))
            .expect("json")
    };
    let mut mine = sums(&dir);
    mine["files"]["vocab.json"] = sums(&other_dir)["files"]["vocab.json"].clone();
    std::fs::write(dir.join("checksums.json"), serde_json::to_vec(&mine).expect("json"))
        .expect("write");
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("a vocabulary mismatch");
    assert!(e.to_string().contains("tokens, but the model"), "{e}");
    assert!(e.to_string().contains("vocab.json"), "{e}");
}

/// A model folder crafted to make the loader allocate, overflow or loop, with its checksums
/// recomputed so that only the values themselves can refuse it: every case is an error that
/// names `config.json` or the weights, never a panic, an abort or a hang (issue 29, item 9).
#[test]
fn crafted_model_folders_are_refused_before_anything_is_allocated() {
    let t = trainer();
    let good = scratch("crafted-good");
    t.save_model(&good, false).expect("saved");
    let read = |name: &str| std::fs::read(good.join(name)).expect("a model file");
    let config: serde_json::Value = serde_json::from_slice(&read("config.json")).expect("json");
    let cases: [(&str, &str, serde_json::Value); 8] = [
        ("d_model 2^62", "/config/d_model", serde_json::json!(1u64 << 62)),
        ("heads 2^62", "/config/heads", serde_json::json!(1u64 << 62)),
        ("layers 10^6", "/config/layers", serde_json::json!(1_000_000)),
        ("context 2^40", "/config/context", serde_json::json!(1u64 << 40)),
        ("vocab 2^40", "/config/vocab", serde_json::json!(1u64 << 40)),
        ("d_ff 2^33", "/config/d_ff", serde_json::json!(1u64 << 33)),
        ("width at its bound", "/config/d_model", serde_json::json!(1 << 16)),
        ("completion_bars 10^9", "/training/completion_bars", serde_json::json!(1_000_000_000)),
    ];
    for (what, field, value) in cases {
        let mut c = config.clone();
        *c.pointer_mut(field).expect(field) = value;
        let dir = scratch(&format!("crafted-{}", what.replace([' ', '^'], "-")));
        let config = serde_json::to_vec_pretty(&c).expect("json");
        checkpoint::save_files(
            &dir,
            &[
                ("config.json", config),
                ("vocab.json", read("vocab.json")),
                (WEIGHTS, read(WEIGHTS)),
            ],
        )
        .expect("a crafted folder, checksums and all");
        let e = checkpoint::load(&dir, &Device::Cpu).expect_err(what);
        let text = e.to_string();
        assert!(text.contains("config.json") || text.contains(WEIGHTS), "{what}: {text}");
    }
}

/// Only regular files of a plausible size are read as a model's: a device, a FIFO and an
/// 8 GiB sparse file are refused at once, without reading them (issue 29, item 10).
#[cfg(unix)]
#[test]
fn only_regular_files_of_a_plausible_size_are_read_as_models() {
    let t = trainer();
    let dir = scratch("special");
    t.save_model(&dir, false).expect("saved");
    let weights = dir.join(WEIGHTS);
    // A sparse file: 8 GiB long, no disk used.
    std::fs::remove_file(&weights).expect("remove");
    let f = std::fs::File::create(&weights).expect("create");
    f.set_len(8 << 30).expect("a sparse file");
    drop(f);
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("8 GiB");
    assert!(e.to_string().contains("larger than"), "{e}");
    // A device that never ends.
    std::fs::remove_file(&weights).expect("remove");
    std::os::unix::fs::symlink("/dev/zero", &weights).expect("a link to /dev/zero");
    let e = checkpoint::load(&dir, &Device::Cpu).expect_err("/dev/zero");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    // A FIFO, which would block a reader forever (made by mkfifo, where it is installed).
    std::fs::remove_file(&weights).expect("remove");
    if std::process::Command::new("mkfifo").arg(&weights).status().is_ok_and(|s| s.success()) {
        let e = checkpoint::load(&dir, &Device::Cpu).expect_err("a FIFO");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

/// The built-in model: a thousand seeded samples of the bar after a rock prompt, at several
/// temperatures, all decode strictly; and it continues 14 bars.
#[test]
fn the_built_in_model_writes_only_bars_that_decode() {
    let model = fine_drums_gpt::Model::embedded(&Device::Cpu).expect("the built-in model");
    let prompt = examples(1, 0)[0].lines().take(2).collect::<Vec<_>>().join("\n");
    let beat = Format::default();
    let mut bars = 0;
    for (i, t) in [0.0, 0.5, 0.8, 1.0, 1.2, 1.5, 0.8, 0.9, 1.0, 2.0].into_iter().enumerate() {
        let mut s = Sampling::default();
        s.temperature = t;
        let samples = model
            .drummer
            .continue_bars(&prompt, Meter::FOUR_FOUR, 1, 100, s, 100 * i as u64)
            .expect("samples");
        for text in samples {
            bars += beat.decode(&text, &Context::default()).expect("a strict decode").bars.len();
        }
    }
    assert_eq!(bars, 1000);
    let long = model
        .drummer
        .continue_bars(&prompt, Meter::FOUR_FOUR, 14, 1, Sampling::default(), 1)
        .expect("14 bars");
    assert_eq!(beat.decode(&long[0], &Context::default()).expect("strict").bars.len(), 14);
}

/// The built-in model keeps a rock groove's downbeat: the first step of the bars it writes
/// after a rock prompt holds a kick, greedily and in nearly every sample at temperature 1.
/// (A bar's controls once reached the model marked as its first step, and it then wrote
/// the second step's hits there: a rest or a hi-hat in most bars.)
#[test]
fn the_built_in_model_keeps_the_downbeat() {
    let model = fine_drums_gpt::Model::embedded(&Device::Cpu).expect("the built-in model");
    let prompt = examples(1, 0)[0].lines().take(4).collect::<Vec<_>>().join("\n");
    let kick_first =
        |bar: &str| bar.split(['.', ' ']).next().is_some_and(|s| s.contains(['k', 'K']));
    let mut greedy = Sampling::default();
    greedy.temperature = 0.0;
    let bars = model.drummer.continue_bars(&prompt, Meter::FOUR_FOUR, 4, 1, greedy, 0);
    let bars = bars.expect("greedy bars");
    assert!(bars[0].lines().all(kick_first), "{prompt}\n->\n{}", bars[0]);
    let samples = model
        .drummer
        .continue_bars(&prompt, Meter::FOUR_FOUR, 1, 100, Sampling::default(), 0)
        .expect("samples");
    let kicks = samples.iter().filter(|s| kick_first(s)).count();
    assert!(kicks >= 90, "{kicks} of 100 bars start with a kick: {samples:?}");
}

/// The built-in model counts its phrases from the piece's first bar, wherever the prompt
/// starts: after a rock prompt that is bars 3 and 4 of its piece, its bars change most at the
/// ends of the piece's 4-bar phrases (bars 8, 12 and 16), not two bars earlier (6, 10 and 14)
/// as they did when every prompt was taken to open a phrase.
#[test]
fn the_built_in_model_ends_phrases_where_the_piece_does() {
    let model = fine_drums_gpt::Model::embedded(&Device::Cpu).expect("the built-in model");
    let rock = fine_drums_codec::pattern::rock_groove(4, 100.0).expect("rock");
    let text = Format::default().encode(&rock).expect("text");
    let prompt = text.lines().skip(2).collect::<Vec<_>>().join("\n");
    let mut steer = fine_drums_gpt::Steer::default();
    steer.prompt_start = Some(2);
    let mut g = fine_drums_gpt::Generation::new(&prompt, 12);
    (g.n, g.steer) = (30, &steer);
    let samples = model.drummer.generate(&g, &Default::default()).expect("samples");
    // How many steps of each bar differ from the bar before, summed over the samples; bar
    // numbers from 1 in the piece (the prompt is 3 and 4, the new bars 5 to 16).
    let mut change = [0usize; 17];
    for sample in &samples {
        let bars: Vec<Vec<String>> = text
            .lines()
            .skip(2)
            .chain(sample.lines())
            .map(|l| {
                let bar = fine_drums_codec::beat::split_bar(l).expect("a bar");
                bar.steps.iter().map(|s| s.to_string()).collect()
            })
            .collect();
        for (k, pair) in bars.windows(2).enumerate() {
            change[k + 4] += pair[0].iter().zip(&pair[1]).filter(|(a, b)| a != b).count();
        }
    }
    let ends = change[8] + change[12] + change[16];
    let early = change[6] + change[10] + change[14];
    assert!(ends > early, "changes by bar (from bar 4): {:?}", &change[4..]);
}

/// The backend's fine-tuning flow: upload, a job that trains in the background with live
/// events carrying metrics, then a model that completes prompts with whole bars.
#[test]
fn fine_tuning_through_the_backend_reports_metrics_and_gives_a_model() {
    use fine_drums_llm::{Complete, CompletionRequest, FineTune, JobRequest, Upload};
    let jsonl: String = examples(8, 0)
        .iter()
        .map(|t| {
            let (p, c) = t.split_at(t.match_indices('\n').nth(1).map_or(0, |(i, _)| i + 1));
            serde_json::json!({"prompt": format!("{p}>>>"), "completion": format!("\n{c}<<<")})
                .to_string()
                + "\n"
        })
        .collect();
    let gpt = fine_drums_gpt::Gpt::new(Template::default(), options());
    let mut job = JobRequest::new(fine_drums_gpt::BASE_MODEL, "");
    job.epochs = Some(2);
    let mut steps = 0;
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let training = Upload::new("train.jsonl", jsonl.into_bytes());
    let model = runtime
        .block_on(gpt.fine_tune(&training, None, &job, &mut |e| {
            if e.metrics.is_some_and(|m| m.train_loss.is_some() && m.total_steps == Some(4)) {
                steps += 1;
            }
        }))
        .expect("a fine-tuned model");
    assert_eq!(steps, 4, "two epochs of two steps, each with its loss");
    let mut request = CompletionRequest::new(&model, "Kh..h. Sh..h. Kh..Kh. Sh..h.\n>>>", 4000);
    request.seed = Some(3);
    let out = runtime.block_on(gpt.complete(&request)).expect("a completion");
    let g = Format::default().decode(out.choices[0].text.trim_start(), &Context::default());
    assert_eq!(g.expect("strict").bars.len(), 6);
}

/// A save cut short by a kill: before its staging folder is complete, the previous model
/// loads; once it is complete, even halfway through the move, the next load finishes the
/// move and the new model loads.
#[test]
fn a_save_killed_midway_leaves_the_old_model_or_the_new_one() {
    let t = trainer();
    let (dir, other_dir) = (scratch("killed"), scratch("killed-new"));
    t.save_model(&dir, false).expect("saved");
    let more = vec!["Kh.l.m.t Sh.r.r.c Kh..Kh. Sh..h.\n".repeat(2); 2];
    let other =
        Trainer::new(&Template::default(), &more, &[], 6, &options(), &Device::Cpu).expect("other");
    other.save_model(&other_dir, false).expect("saved");
    let staging =
        dir.with_file_name(format!(".{}.partial", dir.file_name().unwrap().to_string_lossy()));
    let stage = |with_sums: bool| {
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        for name in ["config.json", "vocab.json", WEIGHTS] {
            std::fs::copy(other_dir.join(name), staging.join(name)).unwrap();
        }
        if with_sums {
            std::fs::copy(other_dir.join("checksums.json"), staging.join("checksums.json"))
                .unwrap();
        }
    };
    // Killed while staging: the old model, and the half-written stage is gone.
    stage(false);
    let loaded = checkpoint::load(&dir, &Device::Cpu).expect("the old model");
    assert_eq!(loaded.vocab.len(), t.vocab().len());
    assert!(!staging.exists());
    // Killed while moving, after the vocabulary moved: the new model.
    stage(true);
    std::fs::rename(staging.join("vocab.json"), dir.join("vocab.json")).unwrap();
    let loaded = checkpoint::load(&dir, &Device::Cpu).expect("the new model");
    assert_eq!(loaded.vocab.len(), other.vocab().len());
    assert!(!staging.exists());
}

/// Without validation examples the training loss chooses the weights: training is not cut
/// short by a validation loss that never improves (it is NaN), and the events say so.
#[test]
fn without_validation_examples_the_training_loss_chooses() {
    let mut o = options();
    (o.epochs, o.patience) = (5, 2);
    let mut t = Trainer::new(&Template::default(), &examples(12, 0), &[], 6, &o, &Device::Cpu)
        .expect("a trainer");
    let mut epochs = Vec::new();
    let mut finished = None;
    t.run(None, &mut |e| match e {
        Event::Epoch { train_loss, validation_loss, best, .. } => {
            epochs.push((*train_loss, *best));
            assert!(validation_loss.is_nan());
        }
        Event::Finished { reason, validation_loss } => {
            finished = Some((reason.clone(), *validation_loss))
        }
        _ => {}
    })
    .expect("trained");
    // The training loss falls epoch after epoch here, so every epoch is the best so far.
    assert_eq!(epochs.len(), 5, "{epochs:?}");
    assert!(epochs.iter().all(|(_, best)| *best), "{epochs:?}");
    let (reason, loss) = finished.expect("finished");
    assert_eq!(reason, "5 epochs done");
    assert_eq!(loss, epochs[4].0, "the best training loss");
}
