//! Runs the workspace's example binaries (built with `--features full`) on files the project
//! makes itself and checks what they print.

use std::path::PathBuf;
use std::process::Command;

#[path = "../../../tests/common/soundfont.rs"]
mod soundfont;
#[path = "../../../tests/common/gmd.rs"]
mod gmd_dir;
#[path = "../../../tests/common/chromium.rs"]
mod chromium;

fn example(name: &str) -> Command {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let mut path: PathBuf = std::env::current_exe().expect("the test binary has a path");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(name);
    assert!(
        path.is_file(),
        "{} is not built: `cargo test --workspace --features full` builds every example (or `cargo build --examples --features full`)",
        path.display()
    );
    Command::new(path)
}

/// The workspace's root (this crate is `crates/cli` in it).
fn root() -> PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).expect("crates/cli is two levels down").to_path_buf()
}

#[test]
fn encode_prints_the_beat_format() {
    let out = example("encode").arg(root().join("examples/grooves/rock.mid")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert_eq!(text.lines().next(), Some("KhC..h. Sh..h. Kh..Kh. Sh..h."));
}

#[test]
fn encode_then_decode_gives_the_same_text() {
    let dir = std::env::temp_dir().join(format!("fine-drums-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let txt = dir.join("rock.txt");
    let mid = dir.join("rock.mid");
    let status = example("encode")
        .args([
            root().join("examples/grooves/rock.mid").as_os_str(),
            "--header".as_ref(),
            "--out".as_ref(),
            txt.as_os_str(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let status = example("decode").arg(&txt).arg("--out").arg(&mid).status().unwrap();
    assert!(status.success());
    let again = example("encode").arg(&mid).arg("--header").output().unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), std::fs::read_to_string(&txt).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    let out = example("encode").arg(root().join("Cargo.toml")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Cargo.toml") && err.contains("not a valid MIDI file"), "{err}");
    // A file whose every note is outside the voice map is an error, not bars of silence.
    let dir = scratch("unmapped");
    let mut g = fine_drums_codec::Groove::new(
        480,
        fine_drums_codec::Grid::SIXTEENTH,
        fine_drums_codec::VoiceMap::Full,
    );
    let mut bar = fine_drums_codec::Bar::new(fine_drums_codec::Meter::FOUR_FOUR);
    bar.hits.push(fine_drums_codec::Hit {
        step: 0,
        offset: 0,
        voice: fine_drums_codec::Voice::new(20),
        velocity: fine_drums_codec::Velocity::try_from(90).unwrap(),
        length: 60,
    });
    g.bars.push(bar);
    let midi = fine_drums_codec::midi::write(&g, &Default::default()).unwrap();
    std::fs::write(dir.join("organ.mid"), midi).unwrap();
    let out = example("encode").arg(dir.join("organ.mid")).output().unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("every note is at a pitch the gmd9 map does not list"), "{err}");
}

/// `decode` never overwrites without --force, never replaces its own input, and refuses a
/// lenient decode that keeps no bar, summarising repeated drops after 20 (issue 29, item 12).
#[test]
fn decode_keeps_what_is_there_and_says_when_nothing_was_read() {
    let dir = scratch("decode-unlucky");
    let song = dir.join("song.mid");
    let rock = std::fs::read(root().join("examples/grooves/rock.mid")).unwrap();
    std::fs::write(&song, &rock).unwrap();
    // Decoding the MIDI file itself as text: refused, and the file is unchanged.
    let out = example("decode").arg(&song).arg("--lenient").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("replace the input itself"), "{err}");
    // Random bytes and a million blank lines: no bar, an error, 21 lines of report at most.
    let noise: Vec<u8> =
        (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (name, bytes) in [("noise.txt", noise), ("blank.txt", vec![b'\n'; 1_000_000])] {
        let input = dir.join(name);
        std::fs::write(&input, bytes).unwrap();
        let out = example("decode").arg(&input).arg("--lenient").output().unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no bar could be read") && err.contains("nothing was written"),
            "{err}"
        );
        assert!(err.lines().count() <= 23, "{name}: {} lines", err.lines().count());
        assert!(!input.with_extension("mid").exists());
    }
    // An output that exists is kept unless --force.
    let text = dir.join("rock.txt");
    std::fs::write(&text, "KhC..h. Sh..h. Kh..Kh. Sh..h.\r\n").unwrap();
    let out = example("decode").arg(&text).arg("--out").arg(&song).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&song).unwrap(), rock, "the existing file is untouched");
    let out = example("decode").arg(&text).arg("--out").arg(&song).arg("--force").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `continue --lenient` reads a file with junk after its last track, as players do; and
/// `encode` on a folder takes `.kar` files (issue 29, items 14 and 15).
#[test]
fn continue_reads_leniently_and_encode_takes_kar_files() {
    let dir = scratch("lenient");
    let mut midi = std::fs::read(root().join("examples/grooves/rock.mid")).unwrap();
    midi.extend_from_slice(b"junk");
    let junk = dir.join("junk.mid");
    std::fs::write(&junk, &midi).unwrap();
    let out = example("continue").arg(&junk).args(["--seed", "1", "--bars", "2"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 bytes after the last track") && err.contains("--lenient"), "{err}");
    let out = example("continue")
        .arg(&junk)
        .args(["--seed", "1", "--bars", "2", "--lenient"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("4 bars kept + 2 new bars"), "{said}");
    std::fs::copy(root().join("examples/grooves/rock.mid"), dir.join("song.KAR")).unwrap();
    let out = example("encode").arg(&dir).arg("--out").arg(dir.join("txt")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let song = std::fs::read_to_string(dir.join("txt/song.txt")).unwrap();
    assert_eq!(song.lines().next(), Some("KhC..h. Sh..h. Kh..Kh. Sh..h."));
}

#[test]
fn every_example_has_help() {
    for name in [
        "encode",
        "decode",
        "codec_report",
        "make_groove",
        "prepare",
        "fine_tune",
        "continue",
        "serve",
        "evaluate",
        "render",
        "feel",
        "humanize",
    ] {
        let out = example(name).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage:"), "{name}");
    }
}

/// A fresh folder under the target directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("the test binary has a path");
    dir.pop();
    dir.push(format!("scratch-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

#[test]
fn prepare_splits_a_folder_without_an_index() {
    let dir = scratch("prepare");
    let (data, out) = (dir.join("data"), dir.join("out"));
    for song in 0..12 {
        let folder = data.join(format!("song{song}"));
        std::fs::create_dir_all(&folder).unwrap();
        for take in 0..2 {
            let midi = fine_drums_codec::pattern::rock_beat(20, 90.0 + f64::from(song)).unwrap();
            std::fs::write(folder.join(format!("take{take}.mid")), midi).unwrap();
        }
    }
    std::fs::write(data.join("song0/broken.mid"), b"MThd").unwrap();
    let run = example("prepare").arg(&data).arg("--out").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("song0/broken.mid: not a valid MIDI file"), "{stderr}");
    assert!(stdout.contains("| all | 24 | 1 | 48 |"), "{stdout}");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest = fine_drums_dataset::Manifest::from_json(&manifest).unwrap();
    // Both takes of a song share a split.
    for s in manifest.sources.chunks(2) {
        assert_eq!(s[0].split, s[1].split, "{} / {}", s[0].path, s[1].path);
    }
    let lines: usize = ["train", "validation", "test"]
        .iter()
        .map(|s| std::fs::read_to_string(out.join(format!("{s}.jsonl"))).unwrap().lines().count())
        .sum();
    assert_eq!(lines, 48);
    // --strict stops at the broken file and names it.
    let run =
        example("prepare").arg(&data).arg("--out").arg(&out).arg("--strict").output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("song0/broken.mid"));
}

#[test]
fn continue_keeps_every_bar_then_adds_new_ones_and_never_overwrites() {
    use fine_drums_codec::midi::{ReadOptions, read};
    let dir = scratch("continue");
    let input = dir.join("rock.mid");
    std::fs::copy(root().join("examples/grooves/rock.mid"), &input).unwrap();
    let source = read(&std::fs::read(&input).unwrap(), &ReadOptions::lossless()).unwrap();
    let n = source.bars.len();
    assert_eq!(n, 4);
    for (bars, seed) in [(14, "1"), (30, "2")] {
        let run = example("continue")
            .arg(&input)
            .args(["--bars", &bars.to_string(), "--seed", seed, "--force"])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        // The default backend: the built-in drum GPT, nothing to download or train; the
        // prompt is the last two bars.
        let said = format!(
            "4 bars kept + {bars} new bars after a prompt of bars 3-4, from drums-small-gmd"
        );
        assert!(stdout.contains(&said), "{stdout}");
        assert!(stdout.contains(&format!("seed {seed})")), "{stdout}");
        let out =
            read(&std::fs::read(dir.join("rock.continued.mid")).unwrap(), &ReadOptions::lossless())
                .expect("midly reads the output back");
        assert_eq!(out.bars.len(), n + bars);
        assert_eq!(out.bars[..n], source.bars[..], "every input bar, unchanged");
        assert_eq!(out.context().tempo, source.context().tempo);
        // The new bars are played, not on the grid: offsets and more than three loudnesses.
        let new: Vec<_> = out.bars[n..].iter().flat_map(|b| &b.hits).collect();
        assert!(new.iter().any(|h| h.offset != 0));
        let loud: std::collections::BTreeSet<u8> =
            new.iter().map(|h| h.velocity.as_int()).collect();
        assert!(loud.len() > 3, "{loud:?}");
    }
    // An existing output is not overwritten without --force.
    let before = std::fs::read(dir.join("rock.continued.mid")).unwrap();
    let run = example("continue").arg(&input).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("exists; --force overwrites it"));
    assert_eq!(std::fs::read(dir.join("rock.continued.mid")).unwrap(), before);
    // The same seed gives the same file.
    let again = dir.join("again.mid");
    let run = example("continue")
        .arg(&input)
        .args(["--bars", "30", "--seed", "2", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(std::fs::read(&again).unwrap(), before);
    // Without a seed, one is drawn and printed; with it, the output comes again.
    let drawn = dir.join("drawn.mid");
    let run = example("continue").arg(&input).arg("--out").arg(&drawn).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let seed = stdout.split("seed ").nth(1).and_then(|s| s.split(')').next()).expect("a seed");
    let redo = dir.join("redo.mid");
    let run = example("continue").arg(&input).args(["--seed", seed, "--out"]).arg(&redo).output();
    assert!(run.unwrap().status.success());
    assert_eq!(std::fs::read(&drawn).unwrap(), std::fs::read(&redo).unwrap());
    // Heard and seen: a WAV as long as the 18 bars at 96 beats a minute (2.5 s each), not
    // silent, and a piano roll with every bar numbered.
    let (wav, svg) = (dir.join("heard.wav"), dir.join("seen.svg"));
    let run = example("continue")
        .arg(&input)
        .args(["--seed", "4", "--out"])
        .arg(dir.join("heard.mid"))
        .arg("--wav")
        .arg(&wav)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(bytes.len(), 44 + 2 * (18.0 * 2.5 * 44_100.0) as usize);
    let loud = bytes[44..].chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs()).max();
    assert!(loud.unwrap() > 3000, "{loud:?}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains(">18</text>"), "{picture}");
    let run = example("render").arg(&input).arg("--out").arg(dir.join("in.wav")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read(dir.join("in.wav")).unwrap().len(), 44 + 2 * 10 * 44_100);
    // --from-bar continues inside the file: bars 1-2 kept, then 3 new ones.
    let inside = dir.join("inside.mid");
    let run = example("continue")
        .arg(&input)
        .args(["--from-bar", "3", "--bars", "3", "--out"])
        .arg(&inside)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = read(&std::fs::read(&inside).unwrap(), &ReadOptions::lossless()).unwrap();
    assert_eq!(out.bars.len(), 5);
    assert_eq!(out.bars[..2], source.bars[..2]);
}

#[test]
fn continue_finds_drums_on_any_channel_it_is_told() {
    use fine_drums_codec::midi::{self, WriteOptions};
    let dir = scratch("channel");
    let input = dir.join("channel1.mid");
    let mut write = WriteOptions::default();
    write.channel = fine_drums_codec::Channel::try_from(1).unwrap();
    let groove = fine_drums_codec::pattern::rock_groove(4, 100.0).unwrap();
    std::fs::write(&input, midi::write(&groove, &write).unwrap()).unwrap();
    // On channel 10, the default, the file has no drums: the error says so.
    let run = example("continue").arg(&input).args(["--seed", "1"]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no drum notes on MIDI channel 10"));
    let run = example("continue")
        .arg(&input)
        .args(["--seed", "1", "--channel", "1", "--bars", "4"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = std::fs::read(dir.join("channel1.continued.mid")).unwrap();
    let mut read = midi::ReadOptions::lossless();
    read.channel = write.channel;
    assert_eq!(midi::read(&out, &read).unwrap().bars.len(), 8);
}

#[test]
fn openai_examples_fail_clearly_without_a_key() {
    let dir = scratch("nokey");
    let run = example("continue")
        .arg(root().join("examples/grooves/rock.mid"))
        .args(["--backend", "openai", "--model", "ft:babbage-002:org:drums:x", "--out"])
        .arg(dir.join("x.mid"))
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no OpenAI API key: set OPENAI_API_KEY"));
    let run = example("fine_tune").arg(&dir).output().unwrap();
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("manifest.json"),
        "names the missing file"
    );
}

#[test]
fn fine_tune_dry_run_and_local_training() {
    let dir = scratch("fine_tune");
    let (data, out) = (dir.join("data"), dir.join("out"));
    for song in 0..12 {
        let folder = data.join(format!("song{song}"));
        std::fs::create_dir_all(&folder).unwrap();
        let midi = fine_drums_codec::pattern::rock_beat(32, 90.0 + f64::from(song)).unwrap();
        std::fs::write(folder.join("take.mid"), midi).unwrap();
    }
    assert!(example("prepare").arg(&data).arg("--out").arg(&out).status().unwrap().success());
    let run = example("fine_tune")
        .arg(&out)
        .args(["--backend", "openai", "--dry-run", "--epochs", "2"])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.contains("\"n_epochs\": 2") && stdout.contains("cost estimate on babbage-002"),
        "{stdout}"
    );
    let run = example("fine_tune").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let model = stdout.lines().next().unwrap().strip_prefix("fine-tuned model: ").unwrap();
    let model = model.split(" (").next().unwrap();
    let run = example("continue")
        .arg(root().join("examples/grooves/rock.mid"))
        .args(["--backend", "local", "--model", model, "--seed", "4", "--out"])
        .arg(dir.join("c.mid"))
        .arg("--manifest")
        .arg(out.join("manifest.json"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// LoRA adapters on a pretrained model (the tiny Llama-architecture checkpoint of the lora
/// crate's parity fixtures), trained by `fine_tune --backend lora` and continued with.
#[test]
fn fine_tune_and_continue_with_lora_adapters() {
    use fine_drums_codec::midi::{ReadOptions, read};
    let dir = scratch("lora");
    let (data, out) = (dir.join("data"), dir.join("out"));
    for song in 0..12 {
        let folder = data.join(format!("song{song}"));
        std::fs::create_dir_all(&folder).unwrap();
        let midi = fine_drums_codec::pattern::rock_beat(20, 90.0 + f64::from(song)).unwrap();
        std::fs::write(folder.join("take.mid"), midi).unwrap();
    }
    assert!(example("prepare").arg(&data).arg("--out").arg(&out).status().unwrap().success());
    let base = root().join("crates/lora/tests/fixtures/llama");
    let run = example("fine_tune").arg(&out).args(["--backend", "lora"]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--base"));
    let run = example("fine_tune")
        .arg(&out)
        .args(["--backend", "lora", "--epochs", "1", "--lora-rank", "4", "--seed", "3", "--base"])
        .arg(&base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let adapter = stdout.lines().next().unwrap().strip_prefix("fine-tuned model: ").unwrap();
    let adapter = PathBuf::from(adapter.split(" (").next().unwrap());
    for file in ["adapter_config.json", "adapter_model.safetensors", "fine_drums.json"] {
        assert!(adapter.join(file).is_file(), "{file} in {}", adapter.display());
    }
    let continued = dir.join("c.mid");
    let run = example("continue")
        .arg(root().join("examples/grooves/rock.mid"))
        .args(["--backend", "lora", "--seed", "4", "--model"])
        .arg(&adapter)
        .arg("--out")
        .arg(&continued)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Every new bar came from the model, and decoded strictly.
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(said.contains("14 new bars") && said.contains("all asked for via lora"), "{said}");
    let groove = read(&std::fs::read(&continued).unwrap(), &ReadOptions::default()).unwrap();
    assert!(groove.bars.len() > 4, "{}", groove.bars.len());
    // --backend lora without an adapter says what it needs.
    let run = example("continue")
        .arg(root().join("examples/grooves/rock.mid"))
        .args(["--backend", "lora", "--out"])
        .arg(dir.join("d.mid"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--model <adapter folder>"));
}

/// `render` through a General MIDI SoundFont.
#[test]
#[ignore = "needs a General MIDI SoundFont (FINE_DRUMS_SOUNDFONT, default Debian's timgm6mb-soundfont): cargo test -- --ignored"]
fn render_plays_through_a_soundfont() {
    let (font, _) = soundfont::soundfont();
    let dir = scratch("render-soundfont");
    let run = example("render")
        .arg(root().join("examples/grooves/rock.mid"))
        .arg("--soundfont")
        .arg(&font)
        .arg("--out")
        .arg(dir.join("sf.wav"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Four bars of 4/4 at 96 BPM: 10 s.
    let wav = std::fs::read(dir.join("sf.wav")).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(wav.len(), 44 + 2 * 10 * 44_100);
}

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD) and opens the report in headless Chromium (apt-get install chromium): cargo test -- --ignored"]
fn evaluate_writes_results_as_they_arrive_and_resumes() {
    let gmd = gmd_dir::gmd();
    let dir = scratch("evaluate");
    let pieces = dir.join("pieces.txt");
    std::fs::write(
        &pieces,
        "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid\ndrummer1/eval_session/10_soul-groove10_102_beat_4-4.mid\n",
    )
    .unwrap();
    let out = dir.join("eval");
    let run = || {
        let r = example("evaluate")
            .arg(&gmd)
            .arg("--out")
            .arg(&out)
            .arg("--pieces")
            .arg(&pieces)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8(r.stdout).unwrap()
    };
    let first = run();
    assert!(first.contains("| local | 2 | 100.0% |"), "{first}");
    assert!(first.contains("| gpt | 2 | 100.0% |"), "{first}");
    let outputs = out.join("outputs/local");
    let saved: Vec<_> = std::fs::read_dir(&outputs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 2, "one saved output per piece");
    // An interrupted run leaves some outputs: the rerun makes only the missing ones and
    // scores the same.
    std::fs::remove_file(&saved[0]).unwrap();
    let second = run();
    let table = |s: &str| {
        s.lines().filter(|l| !l.starts_with("wrote")).map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(table(&first), table(&second));
    assert!(saved[0].is_file());
    for f in ["results.md", "results.json", "stability.svg", "report.html"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert_eq!(std::fs::read_dir(out.join("pictures")).unwrap().count(), 2);
    // A recording per piece and system (--audio 8 covers both pieces): human, repeat,
    // random, local, gpt.
    let recordings = std::fs::read_dir(out.join("audio")).unwrap();
    assert_eq!(
        recordings.map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count()).sum::<usize>(),
        10
    );
    report_renders_in_chromium(&out.join("report.html"));
}

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD): cargo test -- --ignored"]
fn evaluate_measures_the_controls_and_the_infills() {
    let gmd = gmd_dir::gmd();
    let dir = scratch("evaluate-steering");
    let pieces = dir.join("pieces.txt");
    std::fs::write(
        &pieces,
        "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid\ndrummer1/eval_session/10_soul-groove10_102_beat_4-4.mid\n",
    )
    .unwrap();
    let run = |protocol: &str| {
        let out = dir.join(protocol);
        let r = example("evaluate")
            .arg(&gmd)
            .args(["--protocol", protocol, "--audio", "0", "--pieces"])
            .arg(&pieces)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::read_to_string(out.join(format!("{protocol}.md"))).unwrap()
    };
    let controls = run("controls");
    for row in [
        "Samples that did not decode strictly into the bars asked: 0.",
        "| fills asked |",
        "the bar right after a fill (5, 9, 13) is below it in",
        "Does the groove come back after a fill?",
        "| funk |",
        "| soul |",
    ] {
        assert!(controls.contains(row), "{row:?} missing from:\n{controls}");
    }
    let infill = run("infill");
    for row in [
        "| bars 1-4 before and 9-12 after |",
        "| bars 1-4 before and another window's 9-12 after |",
        "not decoding strictly into 4 bars: 0.",
    ] {
        assert!(infill.contains(row), "{row:?} missing from:\n{infill}");
    }
    // The model reads the bars after: another window's make the drummer's bars less likely.
    let nll = |row: &str| -> f64 {
        let line = infill.lines().find(|l| l.starts_with(row)).unwrap();
        line.trim_end_matches(" |").rsplit("| ").next().unwrap().parse().unwrap()
    };
    assert!(
        nll("| bars 1-4 before and 9-12 after |")
            < nll("| bars 1-4 before and another window's 9-12 after |"),
        "{infill}"
    );
}

/// The report in headless Chromium: its own check finds every table and every picture
/// loaded; the screenshot shows the tables' header shading and the curves' colours; and a
/// picture taken away is named on the page.
fn report_renders_in_chromium(page: &std::path::Path) {
    let browser = chromium::chromium();
    let dom = chromium::headless(&browser, page, &["--virtual-time-budget=10000", "--dump-dom"]);
    let check = dom.split("data-check=\"").nth(1).and_then(|s| s.split('"').next());
    // Five tables of scores (structure, distributions, phrases, validity, likelihood) and
    // a table of players for each of the two pieces; the stability curves and a piano roll
    // per piece.
    assert_eq!(check, Some("tables=7 pictures=3 loaded=3 broken=0"), "{dom}");
    assert!(dom.contains("<audio controls"), "{dom}");
    let shot = page.with_file_name("report.png");
    chromium::headless(
        &browser,
        page,
        &["--window-size=1280,2000", &format!("--screenshot={}", shot.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("pixels");
    assert_eq!((info.width, info.height), (1280, 2000));
    let channels = info.line_size / info.width as usize;
    let count = |rgb: [u8; 3]| pixels.chunks(channels).filter(|p| p[..3] == rgb).count();
    // The tables' header shading (#dfe8f5), over the header cells of the tables.
    assert!(count([0xdf, 0xe8, 0xf5]) > 5_000, "no table headers in {}", shot.display());
    // The stability curves: repeat's blue and random's red (drawn at full opacity).
    assert!(count([0x1f, 0x77, 0xb4]) > 100, "no repeat curve in {}", shot.display());
    assert!(count([0xd6, 0x27, 0x28]) > 100, "no random curve in {}", shot.display());
    std::fs::remove_file(page.with_file_name("stability.svg")).expect("the curves");
    let dom = chromium::headless(&browser, page, &["--virtual-time-budget=10000", "--dump-dom"]);
    assert!(dom.contains("tables=7 pictures=3 loaded=2 broken=1"), "{dom}");
    assert!(dom.contains("1 of 3 pictures did not load (first: stability.svg)"), "{dom}");
}

/// A `serve` process, killed when dropped (a failing test leaves no server behind).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `serve` process on a free port of 127.0.0.1 over `data`, and its base URL.
fn serve(data: &std::path::Path) -> (Served, String) {
    serve_with(data, &[])
}

/// `serve` over `data` with more arguments, started as [`serve`] starts it.
fn serve_with(data: &std::path::Path, more: &[&std::ffi::OsStr]) -> (Served, String) {
    use std::io::BufRead as _;
    let mut child = example("serve")
        .args(["--port", "0", "--data"])
        .arg(data)
        .args(more)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("its output");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("the address");
    let url = line.split_whitespace().nth(1).expect("serving <url>").to_string();
    (Served(child), url)
}

/// `serve` killed in the middle of a drum GPT job, then started again on the same folder:
/// the file, both jobs, their events and the finished model are all there, the job goes on
/// from its checkpoint, and cancelling it stops its training.
#[test]
fn serve_killed_mid_job_loses_nothing() {
    use fine_drums_llm::{Complete, CompletionRequest, FineTune, JobRequest, JobStatus, Upload};
    use fine_drums_openai::{ApiKey, Config, OpenAi};
    let dir = scratch("serve-kill");
    let data = dir.join("data");
    let run = example("prepare")
        .arg(root().join("examples/grooves"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let jsonl = std::fs::read(dir.join("train.jsonl")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = |url: &str| {
        let mut config = Config::new(ApiKey::new("unused"));
        config.base_url = url.to_string();
        config.poll_interval = std::time::Duration::from_millis(100);
        OpenAi::new(config).unwrap()
    };
    let (server, url) = serve(&data);
    let api = client(&url);
    let (file, (small, markov), job) = rt.block_on(async {
        let file = api.upload(&Upload::new("train.jsonl", jsonl)).await.unwrap();
        let small = api.create_job(&JobRequest::new("babbage-002", file.clone())).await.unwrap();
        let markov = api.wait(&small.id, &mut |_| {}).await.unwrap();
        let mut long = JobRequest::new("davinci-002", file.clone());
        long.epochs = Some(1000);
        let job = api.create_job(&long).await.unwrap();
        // Until the first epoch's checkpoint is written.
        loop {
            let events = api.events(&job.id, None).await.unwrap();
            if events.iter().any(|e| e.message.starts_with("epoch 2:")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        (file, (small.id, markov), job)
    });
    let before = rt.block_on(api.events(&job.id, None)).unwrap().len();
    drop(server); // SIGKILL, mid-job
    let (server, url) = serve(&data);
    let api = client(&url);
    rt.block_on(async {
        let files = api.upload(&Upload::new("other.jsonl", b"{}\n".to_vec())).await.unwrap();
        assert_ne!(files, file);
        let again = api.job(&job.id).await.unwrap();
        assert!(!again.status.is_terminal(), "{again:?}");
        let mut resumed = false;
        for _ in 0..600 {
            let events = api.events(&job.id, None).await.unwrap();
            assert!(events.len() >= before, "no event lost: {} then {}", before, events.len());
            resumed = events.iter().any(|e| e.message.starts_with("resuming from the checkpoint"));
            if resumed {
                assert!(events.iter().any(|e| e.message.contains("server restarted")));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(resumed, "the job resumed from its checkpoint");
        let cancelled = api.cancel(&job.id).await.unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        // The training itself stops, at its next step.
        let mut stopped = false;
        for _ in 0..600 {
            let events = api.events(&job.id, None).await.unwrap();
            stopped = events.iter().any(|e| e.message.starts_with("cancelled at step"));
            if stopped {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(stopped, "the drum GPT stopped training");
        let done = api.job(&small).await.unwrap();
        assert_eq!(done.fine_tuned_model.as_deref(), Some(markov.as_str()));
        let mut r = CompletionRequest::new(&markov, "KhC..h. Sh..h. Kh..Kh. Sh..h.>>>", 80);
        r.seed = Some(1);
        let c = api.complete(&r).await.unwrap();
        assert!(c.choices[0].text.contains("Kh"), "{c:?}");
    });
    drop(server);
}

/// `serve --key-file` reads the key from a file, so that it never shows in `ps`; `--key`
/// still works, with a warning that it does (issue 29, item 8).
#[test]
fn serve_takes_its_key_from_a_file_and_warns_of_key() {
    use std::io::{Read as _, Write as _};
    let dir = scratch("serve-key");
    let key = dir.join("key");
    std::fs::write(&key, "sesame\n").unwrap();
    let get = |url: &str, key: Option<&str>| -> String {
        let addr = url.trim_start_matches("http://").trim_end_matches("/v1");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
        write!(s, "GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let (served, url) = serve_with(&dir.join("data"), &["--key-file".as_ref(), key.as_os_str()]);
    assert!(get(&url, None).starts_with("HTTP/1.1 401"), "no key");
    assert!(get(&url, Some("sesame")).starts_with("HTTP/1.1 200"), "the file's key");
    drop(served);
    let mut child = example("serve")
        .args(["--port", "0", "--key", "sesame", "--data"])
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    drop(Served(child));
    assert!(line.contains("--key shows the key") && line.contains("--key-file"), "{line}");
}
