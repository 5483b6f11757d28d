//! Runs the example binaries on files the project makes itself and checks what they print.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> Command {
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let mut path: PathBuf = std::env::current_exe().expect("the test binary has a path");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(name);
    Command::new(path)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
}

#[test]
fn every_example_has_help() {
    for name in ["encode", "decode", "codec_report", "make_groove"] {
        let out = example(name).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage:"), "{name}");
    }
}
