//! The evaluation protocol on grooves made by code: windows, systems, the cache, failures.

use std::cell::Cell;

use fine_drums_codec::pattern::rock_beat;
use fine_drums_dataset::{CountTokens, Entry, Split};
use fine_drums_eval::{
    BoxError, Cache, Data, Error, Generated, MemoryCache, Piece, Protocol, System, system,
};

/// A byte per token: never under the true count, and no tokenizer to load.
struct Bytes;

impl CountTokens for Bytes {
    fn count_tokens(&self, text: &str) -> usize {
        text.len()
    }
}

/// Two training files and two test files (of 40 and 20 bars).
fn data(protocol: &Protocol) -> Data {
    let mut data = Data::new(protocol);
    for (path, split, bars, bpm) in [
        ("a/train1.mid", Split::Train, 32, 100.0),
        ("a/train2.mid", Split::Train, 16, 90.0),
        ("b/test1.mid", Split::Test, 40, 110.0),
        ("b/test2.mid", Split::Test, 20, 95.0),
        ("c/valid.mid", Split::Validation, 16, 95.0),
    ] {
        let midi = rock_beat(bars, bpm).expect("a rock beat");
        data.add(&Entry::new(path, split), &midi, &Bytes).expect("the file reads");
    }
    data
}

/// The prompt's bars again and again: a real, if simple, way to continue.
fn repeating(calls: &Cell<usize>) -> impl System + '_ {
    repeating_as("again", calls)
}

fn repeating_as<'a>(name: &str, calls: &'a Cell<usize>) -> impl System + 'a {
    system(name, move |piece: &Piece, bars: usize, _seed: u64| -> Result<Generated, BoxError> {
        calls.set(calls.get() + 1);
        let mut continuation = piece.prompt.clone();
        let n = continuation.bars.len();
        continuation.bars = (0..bars).map(|i| piece.prompt.bars[i % n].clone()).collect();
        Ok(Generated::new(vec!["Kh..h. Sh..h. Kh..Kh. Sh..h.\n<<<".into()], continuation))
    })
}

#[test]
fn test_files_are_cut_into_whole_windows_and_training_files_into_pairs() {
    let protocol = Protocol::default(); // 2 + 14 bars
    let data = data(&protocol);
    let ids: Vec<&str> = data.pieces().iter().map(|p| p.id.as_str()).collect();
    // 40 bars give windows at bars 0 and 16; 20 bars give one; validation files none.
    assert_eq!(ids, ["b_test1@0", "b_test1@16", "b_test2@0"]);
    let piece = &data.pieces()[1];
    assert_eq!((piece.prompt.bars.len(), piece.truth.bars.len()), (2, 14));
    assert_eq!(data.train_pairs().count(), 3); // 32 bars: 2 windows; 16 bars: 1
}

#[test]
fn a_run_scores_every_system_and_a_rerun_reads_the_cache() {
    let protocol = Protocol::default();
    let data = data(&protocol);
    let calls = Cell::new(0);
    let mut cache = MemoryCache::default();
    let mut progress = |_: fine_drums_eval::Progress<'_>| {};
    let names = |e: &fine_drums_eval::Evaluation| {
        e.scores.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
    };
    let first = {
        let mut systems: Vec<Box<dyn System + '_>> = vec![Box::new(repeating(&calls))];
        protocol.run(&data, &mut systems, &[], &mut cache, &mut progress).expect("a run")
    };
    assert_eq!(names(&first), ["human", "repeat", "random", "again"]);
    assert_eq!(calls.get(), 3);
    let again = &first.scores[3];
    let repeat = &first.scores[1];
    // Repeating the two prompt bars is what the repeat baseline does: the same scores.
    assert_eq!(again.onset_f1, repeat.onset_f1);
    assert_eq!(again.validity.map(|v| v.strict), Some(3));
    assert_eq!(first.pictures.len(), 3);
    assert!(first.markdown().contains("| again | 3 | 100.0% |"), "{}", first.markdown());
    let second = {
        let mut systems: Vec<Box<dyn System + '_>> = vec![Box::new(repeating(&calls))];
        protocol.run(&data, &mut systems, &[], &mut cache, &mut progress).expect("a rerun")
    };
    assert_eq!(calls.get(), 3, "every output came from the cache");
    assert_eq!(second, first);
}

#[test]
fn the_html_report_holds_the_tables_every_piece_and_the_players_it_is_given() {
    let protocol = Protocol::default();
    let data = data(&protocol);
    let calls = Cell::new(0);
    let mut systems: Vec<Box<dyn System + '_>> =
        vec![Box::new(repeating_as("<again & again>", &calls))];
    let run = protocol.run(&data, &mut systems, &[], &mut MemoryCache::default(), &mut |_| {});
    let evaluation = run.expect("a run");
    // Every piece as every system played it: the prompt, then the continuation.
    assert_eq!(evaluation.played.len(), 3);
    let first = &evaluation.played[0];
    assert_eq!((first.id.as_str(), first.picture.as_str()), ("b_test1@0", "b_test1@0.svg"));
    let systems: Vec<&str> = first.systems.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(systems, ["human", "repeat", "random", "<again & again>"]);
    assert!(first.systems.iter().all(|(_, g)| g.bars.len() == 16));
    // Recordings of the human drummer only, and of the first piece none.
    let html = evaluation.html(&|piece, system| {
        (system == "human" && piece != "b_test1@0").then(|| format!("audio/{piece} #1.wav"))
    });
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<table>").count(), 4, "scores, distributions, phrases, validity");
    assert_eq!(html.matches("<table class=\"players\">").count(), 2);
    assert_eq!(html.matches("<audio controls").count(), 2);
    assert!(html.contains("src=\"audio/b_test1@16%20%231.wav\""), "{html}");
    assert!(html.contains("No recordings of this piece."));
    assert!(html.contains("<img src=\"pictures/b_test2@0.svg\""));
    assert!(html.contains("<th scope=\"row\">&lt;again &amp; again&gt;</th>"));
    assert!(!html.contains("<again"), "names are escaped");
    assert!(html.contains("<td>100.0%</td>"), "validity of the system's outputs");
}

#[test]
fn a_failing_system_names_its_piece_and_keeps_what_came_before() {
    let protocol = Protocol::default();
    let data = data(&protocol);
    let mut cache = MemoryCache::default();
    let mut calls = 0;
    let flaky = system("flaky", |piece: &Piece, _bars: usize, _seed: u64| {
        calls += 1;
        if calls == 2 {
            return Err::<Generated, BoxError>("the server went away".into());
        }
        Ok(Generated::new(Vec::new(), piece.truth.clone()))
    });
    let mut systems: Vec<Box<dyn System + '_>> = vec![Box::new(flaky)];
    let err = protocol.run(&data, &mut systems, &[], &mut cache, &mut |_| {}).expect_err("fails");
    assert!(matches!(&err, Error::System { piece, .. } if piece == "b_test1@16"), "{err}");
    assert_eq!(err.to_string(), "flaky on b_test1@16: the server went away");
    assert!(cache.load("flaky", "b_test1@0").is_some());
    assert!(cache.load("flaky", "b_test1@16").is_none());
}

#[test]
fn no_piece_is_an_error_not_an_empty_table() {
    let mut protocol = Protocol::default();
    protocol.bars = 60; // no test file has 62 bars
    let data = data(&protocol);
    let err = protocol.run(&data, &mut [], &[], &mut MemoryCache::default(), &mut |_| {});
    assert!(matches!(err, Err(Error::Invalid { what: "pieces", .. })), "{err:?}");
}

/// Drumroll text of `bars` of `g`.
fn drumroll(g: &fine_drums_codec::Groove) -> String {
    fine_drums_codec::Format::DRUMROLL.encode(g).expect("drumroll")
}

#[test]
fn missing_short_and_unusable_imports_are_counted_never_scored_as_steady() {
    use fine_drums_eval::Import;
    let protocol = Protocol::default();
    let data = data(&protocol);
    let pieces = data.pieces();
    // Garbage for every piece: nothing decodes.
    let mut garbage = Import::new("garbage");
    for p in pieces {
        garbage.texts.insert(p.id.clone(), "hello\nworld\n".repeat(16));
    }
    // Whole windows for two pieces (prompt first, 16 bars), and no file for the third.
    let mut gappy = Import::new("gappy");
    for p in &pieces[..2] {
        let mut whole = p.prompt.clone();
        whole.bars.extend(p.truth.bars.iter().cloned());
        gappy.texts.insert(p.id.clone(), drumroll(&whole));
    }
    // The prompt and 13 bars (15 in all): the prompt is recognised, and the continuation is
    // one bar short, so it is not scored for structure.
    let mut short = Import::new("short");
    for p in pieces {
        let mut text = p.prompt.clone();
        text.bars.extend(p.truth.bars[..13].iter().cloned());
        short.texts.insert(p.id.clone(), drumroll(&text));
    }
    let imports = [garbage, gappy, short];
    let e = protocol
        .run(&data, &mut [], &imports, &mut MemoryCache::default(), &mut |_| {})
        .expect("a run");
    let by = |name: &str| e.scores.iter().find(|s| s.name == name).expect(name);
    let md = e.markdown();
    // All unusable: no structure at all, flagged, and every output counted unusable.
    assert_eq!(by("garbage").structure.pieces, 0);
    assert!(md.contains("| garbage † | n/a | n/a | n/a | n/a | n/a |"), "{md}");
    assert_eq!(by("garbage").validity.map(|v| v.shares()[2]), Some(1.0));
    // A missing file is counted, and structure is over the two whole pieces only, which
    // equal the human drummers'.
    assert_eq!((by("gappy").missing, by("gappy").structure.pieces), (1, 2));
    assert!(md.contains("gappy: structure over 2 of 3 pieces; 0 had a short or unusable continuation, 1 none at all"), "{md}");
    // The 15-bar files: the prompt left out, 13 bars each, none scored for structure.
    assert_eq!(by("short").bars_produced, 3 * 13);
    assert_eq!(by("short").structure.pieces, 0);
    // The human row stays whole and unmarked.
    assert!(md.contains("| human | "), "{md}");
}

#[test]
fn the_papers_table_comes_from_the_gmd_and_their_files_as_published() {
    use fine_drums_eval::{fs, paper};
    let dir = std::env::temp_dir().join(format!("fine-drums-eval-paper-{}", std::process::id()));
    let (gmd, import) = (dir.join("gmd"), dir.join("theirs"));
    for (folder, name, bpm) in [
        ("drummer1/session1", "1_rock_100_beat_4-4", 100.0),
        ("drummer3/s", "2_rock_90_beat_4-4", 90.0),
    ] {
        std::fs::create_dir_all(gmd.join(folder)).unwrap();
        std::fs::write(gmd.join(folder).join(format!("{name}.mid")), rock_beat(16, bpm).unwrap())
            .unwrap();
    }
    std::fs::create_dir_all(&import).unwrap();
    // Their name of a piece: the drummer's number, then the file's. One file, published as
    // the human text itself; the other piece's file is missing.
    let human = paper::text_of(
        &fine_drums_codec::midi::read(&rock_beat(16, 100.0).unwrap(), &Default::default()).unwrap(),
    )
    .unwrap();
    std::fs::write(import.join("1_1_rock_100_beat_4-4.txt"), &human).unwrap();
    std::fs::write(import.join("3_2_rock_90_beat_4-4.txt"), &human).unwrap();
    let rows = fs::read_paper(&gmd, &[("mine".into(), import.clone())]).expect("a table");
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["human", "mine", "random", "repeat"]);
    assert_eq!(rows[1].structure, rows[0].structure, "the same texts, the same figures");
    assert_eq!((rows[3].structure.stability, rows[3].structure.identical), (0.0, 1.0));
    // A second import without one of the pieces: counted and said, not scored.
    let partial = dir.join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("1_1_rock_100_beat_4-4.txt"), &human).unwrap();
    let rows =
        fs::read_paper(&gmd, &[("mine".into(), import.clone()), ("partial".into(), partial)])
            .expect("a table");
    assert_eq!((rows[2].missing, rows[2].structure.pieces), (1, 1));
    assert!(paper::markdown(&rows).contains("partial: no text for 1 of 2 pieces"));
    let html = paper::html(&rows);
    assert_eq!(html.matches("<tr>").count(), 1 + 5, "a header and five systems");
    assert!(html.contains("<p class=\"note\">partial: no text for 1 of 2 pieces"), "{html}");
    // A piece the GMD does not have is named.
    std::fs::write(import.join("9_nothing.txt"), &human).unwrap();
    let err = fs::read_paper(&gmd, &[("mine".into(), import)]).expect_err("no such piece");
    assert!(err.to_string().contains("9_nothing: no such GMD file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
