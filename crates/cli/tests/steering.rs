//! Steering and infilling through the commands, with the built-in drum GPT: every other bar
//! kept exactly, the same seed giving the same file, and bad input refused before anything
//! is written.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;
use fine_drums_cli::{continuation, humanize, make_groove};
use fine_drums_codec::midi::{ReadOptions, read};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-steer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// A 12-bar groove made by code.
fn groove(dir: &Path) -> PathBuf {
    let path = dir.join("rock.mid");
    let args = make_groove::Args::try_parse_from([
        "make_groove".as_ref(),
        path.as_os_str(),
        "--bars".as_ref(),
        "12".as_ref(),
    ])
    .expect("arguments");
    make_groove::run(args).expect("a groove");
    path
}

fn cont(input: &Path, out: &Path, extra: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let mut argv: Vec<OsString> = vec!["continue".into(), input.into(), "--out".into(), out.into()];
    argv.extend(extra.iter().map(OsString::from));
    continuation::run(continuation::Args::try_parse_from(argv)?)
}

fn lossless(path: &Path) -> fine_drums_codec::Groove {
    read(&std::fs::read(path).expect("a file"), &ReadOptions::lossless()).expect("MIDI")
}

#[test]
fn an_infill_keeps_every_other_bar_exactly_and_a_seed_its_file() {
    let dir = scratch("infill");
    let input = groove(&dir);
    let (a, b) = (dir.join("a.mid"), dir.join("b.mid"));
    let args = ["--bars", "5-8", "--seed", "7", "--fills", "8", "--intensity", "3"];
    cont(&input, &a, &args).expect("an infill");
    cont(&input, &b, &args).expect("an infill");
    assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok(), "the same seed, the same file");
    let (source, out) = (lossless(&input), lossless(&a));
    assert_eq!(out.bars.len(), source.bars.len());
    assert_eq!(out.bars[..4], source.bars[..4], "bars 1-4 kept");
    assert_eq!(out.bars[8..], source.bars[8..], "bars 9-12 kept");
    assert_ne!(out.bars[4..8], source.bars[4..8], "bars 5-8 written again");
    assert!(out.bars[4..8].iter().all(|b| !b.hits.is_empty()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn steered_continuations_are_repeatable_and_decode() {
    let dir = scratch("steer");
    let input = groove(&dir);
    let (a, b) = (dir.join("a.mid"), dir.join("b.mid"));
    let args = [
        "--bars",
        "8",
        "--seed",
        "3",
        "--style",
        "funk",
        "--tempo",
        "100",
        "--intensity",
        "2,-,4,5",
        "--fill-every",
        "4",
        "--feel-amount",
        "0.5",
    ];
    cont(&input, &a, &args).expect("a continuation");
    cont(&input, &b, &args).expect("a continuation");
    assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok());
    assert_eq!(lossless(&a).bars.len(), 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_controls_are_refused_and_nothing_is_written() {
    let dir = scratch("bad");
    let input = groove(&dir);
    let out = dir.join("out.mid");
    let cases: [(&[&str], &str); 7] = [
        (&["--bars", "11-14"], "bars 1-12"),
        (&["--bars", "1-4"], "one bar before"),
        (&["--bars", "9-12"], "one after"),
        (&["--style", "zydeco"], "rock"),
        (&["--intensity", "99"], "1 to 5"),
        (&["--bars", "4", "--fills", "17"], "13-16"),
        (&["--bars", "4", "--fills", "3"], "13-16"),
    ];
    for (args, says) in cases {
        let err = cont(&input, &out, args).expect_err("refused");
        assert!(err.to_string().contains(says), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote a file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn humanize_is_repeatable_and_moves_hits_by_the_amount() {
    let dir = scratch("humanize");
    let input = groove(&dir);
    let run = |out: &Path, amount: &str, seed: &str| {
        let argv: Vec<OsString> = vec![
            "humanize".into(),
            input.clone().into(),
            "--out".into(),
            out.into(),
            "--amount".into(),
            amount.into(),
            "--seed".into(),
            seed.into(),
        ];
        humanize::run(humanize::Args::try_parse_from(argv).expect("arguments"))
    };
    let (a, b, zero, full) =
        (dir.join("a.mid"), dir.join("b.mid"), dir.join("0.mid"), dir.join("1.mid"));
    run(&a, "0.5", "9").expect("humanized");
    run(&b, "0.5", "9").expect("humanized");
    run(&zero, "0", "9").expect("humanized");
    run(&full, "1", "9").expect("humanized");
    assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok());
    let spread = |p: &Path| -> i64 {
        lossless(p).bars.iter().flat_map(|b| &b.hits).map(|h| i64::from(h.offset).abs()).sum()
    };
    assert_eq!(spread(&zero), 0, "no feel: every hit on the grid");
    assert!(spread(&full) > spread(&a) && spread(&a) > 0, "{} {}", spread(&full), spread(&a));
    assert!(run(&dir.join("c.mid"), "1.5", "9").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
