//! The crate's pieces on inputs made by the project's own code.

use std::collections::BTreeMap;

use fine_drums_codec::pattern::rock_beat;
use fine_drums_dataset::export::{
    ChatLine, LegacyLine, Prices, chat_jsonl, check_legacy, legacy_jsonl, plain_text, read_examples,
};
use fine_drums_dataset::{
    Added, CountTokens, Entry, Error, GroupBy, HashSplit, Index, Manifest, Prepared, Preparer,
    Skip, Split, SplitRule, Windows, cl100k,
};
use proptest::prelude::*;

fn tokens() -> tiktoken_rs::CoreBPE {
    cl100k().expect("cl100k_base is built in")
}

fn prepared(preparer: &Preparer, files: &[(&str, Split, Vec<u8>)]) -> Prepared {
    let tokens = tokens();
    let mut p = Prepared::default();
    for (path, split, bytes) in files {
        preparer.add(&mut p, &Entry::new(*path, *split), bytes, &tokens).expect("the file reads");
    }
    p
}

fn manifest(preparer: &Preparer, p: &Prepared) -> Manifest {
    Manifest::new(
        preparer.template.clone(),
        preparer.windows,
        preparer.filter.clone(),
        SplitRule::Hash(HashSplit::default()),
        Prices::default(),
        p,
    )
}

#[test]
fn windows_follow_the_stride_and_never_cross_a_file() {
    let mut preparer = Preparer::default();
    preparer.windows.stride = 4;
    let p = prepared(
        &preparer,
        &[
            ("a.mid", Split::Train, rock_beat(20, 100.0).expect("rock")),
            ("b.mid", Split::Test, rock_beat(3, 90.0).expect("rock")),
        ],
    );
    let starts: Vec<(usize, usize, usize)> =
        p.examples.iter().map(|e| (e.source, e.pair.start_bar, e.pair.completion_bars)).collect();
    // a.mid: windows at 0, 4, 8, 12 and 16 (the last ones shortened to the end of the file),
    // b.mid: one window of 2 + 1 bars.
    assert_eq!(starts, [(0, 0, 14), (0, 4, 14), (0, 8, 10), (0, 12, 6), (0, 16, 2), (1, 0, 1)]);
    assert_eq!(p.sources[0].bars, 20);
    for e in &p.examples {
        assert_eq!(e.pair.prompt.lines().count(), 3, "2 bars, then the separator");
        assert_eq!(e.pair.completion.lines().count(), e.pair.completion_bars + 2);
        assert!(e.pair.prompt.ends_with(">>>") && e.pair.completion.starts_with('\n'));
        assert!(e.pair.completion.ends_with("\n<<<"));
    }
}

#[test]
fn a_window_over_budget_loses_whole_bars() {
    let mut preparer = Preparer::default();
    let tokens = tokens();
    let midi = rock_beat(16, 100.0).expect("rock");
    let full = prepared(&preparer, &[("a.mid", Split::Train, midi.clone())]);
    let whole = &full.examples[0].pair;
    assert_eq!(whole.completion_bars, 14);
    // A budget a little under the whole window keeps fewer bars, each one whole.
    preparer.windows.max_tokens = whole.tokens - 1;
    let cut = prepared(&preparer, &[("a.mid", Split::Train, midi.clone())]);
    let pair = &cut.examples[0].pair;
    assert!(pair.completion_bars < 14 && pair.tokens < whole.tokens);
    assert_eq!(
        tokens.count_tokens(&pair.prompt) + tokens.count_tokens(&pair.completion),
        pair.tokens
    );
    let body: Vec<&str> = whole.completion.lines().collect();
    let short: Vec<&str> = pair.completion.lines().collect();
    assert_eq!(short[..short.len() - 1], body[..pair.completion_bars + 1]);
    // A budget no window fits skips the file with its reason.
    preparer.windows.max_tokens = 5;
    let mut p = Prepared::default();
    let added = preparer.add(&mut p, &Entry::new("a.mid", Split::Train), &midi, &tokens);
    assert_eq!(added.expect("a skip, not an error"), Added::Skipped(Skip::OverBudget));
    assert!(p.examples.is_empty());
    assert_eq!(p.skipped[0].reason, Skip::OverBudget);
}

#[test]
fn leading_silence_is_stripped_and_short_files_are_skipped() {
    use fine_drums_codec::midi::{WriteOptions, write};
    use fine_drums_codec::pattern::rock_groove;
    let mut g = rock_groove(6, 120.0).expect("rock");
    g.bars[0].hits.clear();
    g.bars[1].hits.clear();
    let midi = write(&g, &WriteOptions::default()).expect("write");
    let preparer = Preparer::default();
    let tokens = tokens();
    let mut p = Prepared::default();
    let added = preparer.add(&mut p, &Entry::new("s.mid", Split::Train), &midi, &tokens);
    assert!(matches!(added, Ok(Added::Used { examples: 1.. })), "{added:?}");
    assert_eq!(p.sources[0].bars, 4);
    let m = manifest(&preparer, &p);
    let prompt = m.prompt(&midi).expect("prompt");
    assert_eq!(prompt.first_bar, 2);
    assert_eq!(prompt.text, p.examples[0].pair.prompt);
    // Two bars are not enough for a window.
    let short = rock_beat(2, 120.0).expect("rock");
    let added = preparer.add(&mut p, &Entry::new("t.mid", Split::Train), &short, &tokens);
    assert_eq!(added.expect("a skip, not an error"), Added::Skipped(Skip::TooShort));
    assert_eq!(p.skipped[0].reason, Skip::TooShort);
}

#[test]
fn bad_files_are_recorded_and_returned_with_their_path() {
    let preparer = Preparer::default();
    let tokens = tokens();
    let mut p = Prepared::default();
    let added =
        preparer.add(&mut p, &Entry::new("x/garbage.mid", Split::Train), b"MThd\0\0", &tokens);
    let err = added.expect_err("an error to return");
    assert!(err.to_string().starts_with("x/garbage.mid: "), "{err}");
    let missing = Error::Io {
        path: "x/gone.mid".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert!(preparer.add_missing(&mut p, &Entry::new("x/gone.mid", Split::Test), missing).is_err());
    let reasons: Vec<Skip> = p.skipped.iter().map(|s| s.reason).collect();
    assert_eq!(reasons, [Skip::Unreadable, Skip::Missing]);
    assert!(p.skipped[1].detail.as_deref().is_some_and(|d| d.contains("x/gone.mid")));
    let stats = p.stats();
    assert_eq!(stats[0].skipped.get(&Skip::Unreadable), Some(&1));
    assert_eq!(stats[3].skipped.values().sum::<usize>(), 2);
}

#[test]
fn index_rows_are_parsed_and_bad_rows_named() {
    let csv = "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,duration,split\n\
        d1,d1/s1,d1/s1/1,funk/groove1,138,beat,4-4,d1/s1/1.mid,,27.8,test\n\
        d1,d1/s1,d1/s1/2,rock,fast,beat,4-4,d1/s1/2.mid,,3,train\n\
        d1,d1/s1,d1/s1/3,rock,100,fill,4-4,d1/s1/3.mid,,3,training\n\
        d1,d1/s1,d1/s1/4,rock,100,beat,4-4,../escape.mid,,3,train\n\
        d1,d1/s1,d1/s1/5,jazz,100,fill,3-4,d1/s1/5.mid,,2.5,validation\n";
    let index = Index::parse("info.csv", csv.as_bytes()).expect("columns are there");
    assert_eq!(index.entries.len(), 2);
    let e = &index.entries[0];
    assert_eq!(
        (e.path.as_str(), e.split, e.bpm, e.genre()),
        ("d1/s1/1.mid", Split::Test, Some(138.0), Some("funk"))
    );
    let errors: Vec<String> = index.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3);
    assert!(errors[0].starts_with("info.csv, row 3: bpm \"fast\""), "{}", errors[0]);
    assert!(errors[1].starts_with("info.csv, row 4: invalid split"), "{}", errors[1]);
    assert!(errors[2].starts_with("info.csv, row 5: midi_filename"), "{}", errors[2]);
    let missing =
        Index::parse("info.csv", b"name,split\na.mid,train\n").expect_err("no midi_filename");
    assert_eq!(missing.to_string(), "info.csv, row 1: no column \"midi_filename\"");
}

/// A file listed twice is used once, in its first row's split, never in two; the other rows
/// are named. An index with no rows is an error, not zero examples.
#[test]
fn repeated_rows_are_used_once_and_never_in_two_splits() {
    let csv = "midi_filename,split\na.mid,train\nb.mid,test\na.mid,train\nb.mid,train\na.mid,validation\n";
    let index = Index::parse("info.csv", csv.as_bytes()).expect("index");
    let got: Vec<(&str, Split)> =
        index.entries.iter().map(|e| (e.path.as_str(), e.split)).collect();
    assert_eq!(got, [("a.mid", Split::Train), ("b.mid", Split::Test)]);
    let errors: Vec<String> = index.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "info.csv, row 4: a.mid is listed again (first on row 2): used once",
            "info.csv, row 5: b.mid is listed in train here but in test on row 3: it stays in test, never in two splits",
            "info.csv, row 6: a.mid is listed in validation here but in train on row 2: it stays in train, never in two splits",
        ]
    );
    let empty = Index::parse("info.csv", b"midi_filename,split\n").expect_err("no rows");
    assert_eq!(empty.to_string(), "info.csv, row 2: no rows: the file lists no MIDI files");
}

#[test]
fn filters_name_their_reason() {
    let csv = "midi_filename,split,beat_type,time_signature,style\n\
        a.mid,train,fill,4-4,rock\nb.mid,train,beat,3-4,rock\nc.mid,train,beat,4-4,jazz/swing\nd.mid,train,beat,4-4,rock/groove2\n";
    let index = Index::parse("info.csv", csv.as_bytes()).expect("index");
    let mut preparer = Preparer::default();
    preparer.filter.meters = vec!["4-4".into()];
    preparer.filter.styles = vec!["rock".into()];
    let got: Vec<Option<Skip>> = index.entries.iter().map(|e| preparer.filter.reject(e)).collect();
    assert_eq!(got, [Some(Skip::BeatType), Some(Skip::Meter), Some(Skip::Style), None]);
}

#[test]
fn jsonl_round_trips_through_serde_and_passes_openai_checks() {
    let preparer = Preparer::default();
    let files: Vec<(String, Split, Vec<u8>)> = (0..12)
        .map(|i| (format!("{i}.mid"), Split::Train, rock_beat(16, 80.0 + i as f64).expect("rock")))
        .collect();
    let files: Vec<(&str, Split, Vec<u8>)> =
        files.iter().map(|(p, s, b)| (p.as_str(), *s, b.clone())).collect();
    let p = prepared(&preparer, &files);
    let text = legacy_jsonl(p.split(Split::Train));
    let lines: Vec<LegacyLine> =
        text.lines().map(|l| serde_json::from_str(l).expect("valid JSON")).collect();
    assert_eq!(lines.len(), 12);
    for (line, pair) in lines.iter().zip(p.split(Split::Train)) {
        assert_eq!((&line.prompt, &line.completion), (&pair.prompt, &pair.completion));
        let value: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(line).expect("json")).expect("json");
        let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["completion", "prompt"]);
    }
    let tokens = tokens();
    let checked =
        check_legacy("train.jsonl", &text, &preparer.template, 4096, &tokens).expect("valid");
    assert_eq!(checked.examples, 12);
    assert_eq!(checked.tokens, p.stats()[0].tokens);

    let chat = chat_jsonl(&preparer.template, p.split(Split::Train));
    let first: ChatLine =
        serde_json::from_str(chat.lines().next().expect("a line")).expect("chat JSON");
    let roles: Vec<&str> = first.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant"]);
    assert_eq!(first.messages[2].content.lines().count(), 14);
    assert!(!first.messages[1].content.contains(">>>"));
    assert_eq!(plain_text(p.split(Split::Train)).matches("<<<\n\n").count(), 12);

    // The checks catch each fault, naming the line.
    let short: String = text.lines().take(9).map(|l| format!("{l}\n")).collect();
    assert!(
        check_legacy("t", &short, &preparer.template, 4096, &tokens)
            .expect_err("9")
            .to_string()
            .contains("at least 10")
    );
    let extra = text.replacen("{\"prompt\"", "{\"x\":1,\"prompt\"", 1);
    assert!(
        check_legacy("t", &extra, &preparer.template, 4096, &tokens)
            .expect_err("key")
            .to_string()
            .starts_with("t, line 1: unknown field")
    );
    let broken = text.replacen("<<<\"}", "\"}", 2);
    let e = check_legacy("t", &broken, &preparer.template, 4096, &tokens).expect_err("stop");
    assert!(e.to_string().starts_with("t, line 1: the completion does not end"), "{e}");
    let e = check_legacy("t", &text, &preparer.template, 100, &tokens).expect_err("budget");
    assert!(e.to_string().contains("over the budget of 100"), "{e}");
    let e = check_legacy("t", "{\"prompt\": 3}\n", &preparer.template, 4096, &tokens)
        .expect_err("json");
    assert!(e.to_string().starts_with("t, line 1: invalid type"), "{e}");
}

/// The one reader of fine-tuning files reads back, from legacy and chat lines alike, the bars
/// that `prepare` cut; its error names the file and line and keeps the parser's error.
#[test]
fn fine_tuning_files_read_back_the_pairs_they_were_written_from() {
    let preparer = Preparer::default();
    let files: Vec<(String, Split, Vec<u8>)> = (0..3)
        .map(|i| (format!("{i}.mid"), Split::Train, rock_beat(16, 90.0 + i as f64).expect("rock")))
        .collect();
    let files: Vec<(&str, Split, Vec<u8>)> =
        files.iter().map(|(p, s, b)| (p.as_str(), *s, b.clone())).collect();
    let p = prepared(&preparer, &files);
    let pairs: Vec<_> = p.split(Split::Train).collect();
    let template = &preparer.template;
    let legacy = read_examples(template, "train.jsonl", &legacy_jsonl(p.split(Split::Train)))
        .expect("legacy");
    let chat = read_examples(template, "chat.jsonl", &chat_jsonl(template, p.split(Split::Train)))
        .expect("chat");
    assert_eq!(legacy.examples.len(), pairs.len());
    assert_eq!(legacy.completion_bars, 14);
    for ((l, c), pair) in legacy.examples.iter().zip(&chat.examples).zip(&pairs) {
        assert_eq!(format!("{}{}", l.prompt, template.separator), pair.prompt);
        assert_eq!(l.completion, template.completion_body(&pair.completion));
        assert_eq!(l.completion_bars(), pair.completion_bars);
        assert_eq!(
            (l.prompt.trim_end(), l.completion.trim_end()),
            (c.prompt.trim_end(), c.completion.trim_end())
        );
    }
    // No example: the default length; a bad line: named, with the parser's error kept.
    assert_eq!(read_examples(template, "empty.jsonl", "\n\n").expect("empty").completion_bars, 14);
    let e = read_examples(template, "bad.jsonl", "\n{\"prompt\": 3}\n").expect_err("bad");
    assert!(e.to_string().starts_with("bad.jsonl, line 2: invalid type"), "{e}");
    assert!(std::error::Error::source(&e).is_some_and(|s| s.is::<serde_json::Error>()));
}

#[test]
fn the_manifest_round_trips_and_rebuilds_prompts() {
    let preparer = Preparer::default();
    let a = rock_beat(16, 97.0).expect("rock");
    let p = prepared(&preparer, &[("a.mid", Split::Train, a.clone())]);
    let m = manifest(&preparer, &p);
    let back = Manifest::from_json(&m.to_json()).expect("reads back");
    assert_eq!(back, m);
    assert_eq!(back.prompt(&a).expect("prompt").text, p.examples[0].pair.prompt);
    let other = m.to_json().replacen("\"version\": 2", "\"version\": 99", 1);
    let e = Manifest::from_json(&other).expect_err("version 99");
    assert!(e.to_string().contains("manifest version 99 is not supported"), "{e}");
    let e = Manifest::from_json("{\"version\": 2,").expect_err("truncated");
    assert!(e.to_string().starts_with("manifest, line 1"), "{e}");
    // The drumroll and exact formats rebuild their prompts too.
    for format in ["drumroll", "exact"] {
        let mut preparer = Preparer::default();
        preparer.template.codec.format = format.parse().expect("a format");
        let p = prepared(&preparer, &[("a.mid", Split::Train, a.clone())]);
        let m = Manifest::from_json(&manifest(&preparer, &p).to_json()).expect("manifest");
        assert_eq!(m.prompt(&a).expect("prompt").text, p.examples[0].pair.prompt, "{format}");
    }
}

#[test]
fn windows_settings_are_checked() {
    let mut w = Windows::default();
    w.min_completion_bars = 20;
    assert!(w.check().is_err());
    w = Windows::default();
    w.stride = 0;
    assert!(w.check().unwrap_err().to_string().contains("stride"));
    assert!(HashSplit::new(0.0, 0.0, 0.0).is_err());
    assert!(HashSplit::new(f64::NAN, 1.0, 1.0).is_err());
}

fn tree() -> impl Strategy<Value = Vec<String>> {
    let name = "[a-z]{1,4}";
    prop::collection::vec((prop::collection::vec(name, 0..4), name), 1..60).prop_map(|files| {
        files
            .into_iter()
            .map(|(dirs, file)| {
                let mut p = dirs.join("/");
                if !p.is_empty() {
                    p.push('/');
                }
                p + &file + ".mid"
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn hash_split_is_deterministic_and_leak_free(
        files in tree(),
        ratios in (0.0f64..5.0, 0.0f64..5.0, 0.01f64..5.0),
        depth in prop::option::of(1usize..3),
    ) {
        let mut split = HashSplit::new(ratios.0, ratios.1, ratios.2).expect("valid ratios");
        split.group_by = GroupBy::Folder { depth };
        let mut groups: BTreeMap<String, Split> = BTreeMap::new();
        for f in &files {
            let s = split.split_of(f);
            prop_assert_eq!(s, split.split_of(f), "deterministic");
            prop_assert_eq!(s, split.split_of(&f.replace('/', "\\")), "separator-independent");
            let weight = [ratios.0, ratios.1, ratios.2][s as usize];
            prop_assert!(weight > 0.0, "a split with no weight got {}", f);
            let g = split.group(f).into_owned();
            // No group lands in two splits.
            prop_assert_eq!(*groups.entry(g).or_insert(s), s);
            // Files in one folder share a split whatever the depth.
            if let Some((dir, _)) = f.rsplit_once('/') {
                prop_assert_eq!(s, split.split_of(&format!("{dir}/other.mid")));
            }
        }
    }
}

#[test]
fn hash_split_follows_its_ratios() {
    let split = HashSplit::default();
    let mut counts = [0usize; 3];
    for i in 0..10_000 {
        counts[split.split_of(&format!("session{i}/take.mid")) as usize] += 1;
    }
    // 80/10/10 within a few percent over 10,000 groups.
    assert!((7_700..8_300).contains(&counts[0]), "{counts:?}");
    assert!((800..1_200).contains(&counts[1]) && (800..1_200).contains(&counts[2]), "{counts:?}");
}
