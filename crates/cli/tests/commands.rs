//! The commands called as functions, with arguments parsed as the command line gives them.

use std::path::PathBuf;

use clap::Parser;
use fine_drums_backends::Kind;
use fine_drums_cli::{
    BackendArgs, FormatArgs, Outcome, continuation, fine_tune, make_groove, prepare,
};
use fine_drums_codec::midi::{ReadOptions, read};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// The options a command flattens in, parsed on their own.
#[derive(Parser)]
struct Shared {
    #[command(flatten)]
    format: FormatArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

#[test]
fn shared_options_parse_into_a_format_and_backend_settings() {
    let shared = Shared::try_parse_from(["x", "--backend", "local", "--format", "drumroll"])
        .expect("valid options");
    assert_eq!(shared.format.format().expect("a format"), fine_drums_codec::Format::DRUMROLL);
    assert_eq!(shared.backend.settings().expect("settings").kind, Kind::Markov);
    let gpt = Shared::try_parse_from(["x"]).expect("defaults");
    assert_eq!(gpt.backend.settings().expect("settings").kind, Kind::Gpt, "the default");
    let bad = Shared::try_parse_from(["x", "--micro", "often"]).expect("parsed later");
    let err = bad.format.format().expect_err("not a number");
    assert!(err.to_string().contains("--micro"), "{err}");
    assert!(Shared::try_parse_from(["x", "--backend", "davinci"]).is_err());
}

#[test]
fn outcomes_say_whether_a_run_succeeded() {
    assert!(().succeeded());
    assert!(true.succeeded());
    assert!(!false.succeeded());
}

#[test]
fn make_groove_then_continue_with_the_markov_model_keeps_every_bar() {
    let dir = scratch("continue");
    let groove = dir.join("rock.mid");
    let args = make_groove::Args::try_parse_from(["make_groove".as_ref(), groove.as_os_str()])
        .expect("arguments");
    make_groove::run(args).expect("a groove");
    let out = dir.join("rock.continued.mid");
    let args = continuation::Args::try_parse_from([
        "continue".as_ref(),
        groove.as_os_str(),
        "--backend".as_ref(),
        "markov".as_ref(),
        "--seed".as_ref(),
        "3".as_ref(),
        "--bars".as_ref(),
        "4".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .expect("arguments");
    continuation::run(args).expect("a continuation");
    let bars = |p: &PathBuf| {
        read(&std::fs::read(p).expect("a file"), &ReadOptions::default()).expect("MIDI").bars.len()
    };
    assert_eq!(bars(&out), bars(&groove) + 4);
    // The output exists now: a second run refuses to overwrite it.
    let again = continuation::Args::try_parse_from([
        "continue".as_ref(),
        groove.as_os_str(),
        "--backend".as_ref(),
        "markov".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .expect("arguments");
    let err = continuation::run(again).expect_err("exists");
    assert!(err.to_string().contains("--force"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prepare_then_fine_tune_the_markov_model() {
    let dir = scratch("fine-tune");
    let songs = dir.join("songs");
    for song in 0..6 {
        let folder = songs.join(format!("song{song}"));
        std::fs::create_dir_all(&folder).expect("a folder");
        let midi = fine_drums_codec::pattern::rock_beat(20, 90.0 + f64::from(song)).expect("MIDI");
        std::fs::write(folder.join("take.mid"), midi).expect("a file");
    }
    let data = dir.join("data");
    let args = prepare::Args::try_parse_from([
        "prepare".as_ref(),
        songs.as_os_str(),
        "--out".as_ref(),
        data.as_os_str(),
    ])
    .expect("arguments");
    prepare::run(args).expect("prepared");
    assert!(data.join("manifest.json").is_file() && data.join("train.jsonl").is_file());
    let args = fine_tune::Args::try_parse_from(["fine_tune".as_ref(), data.as_os_str()])
        .expect("arguments");
    fine_tune::run(args).expect("a Markov model");
    let models = std::fs::read_dir(data.join("models")).expect("the models folder").count();
    assert_eq!(models, 1);
    // LoRA names what it needs before anything is read.
    let args = fine_tune::Args::try_parse_from([
        "fine_tune".as_ref(),
        data.as_os_str(),
        "--backend".as_ref(),
        "lora".as_ref(),
    ])
    .expect("arguments");
    let err = fine_tune::run(args).expect_err("no base");
    assert!(err.to_string().contains("--base"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
