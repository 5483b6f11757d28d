//! Tests over the Groove MIDI Dataset (see `gmd_dir`).

use std::collections::BTreeMap;

use fine_drums_dataset::export::{Prices, check_legacy, legacy_jsonl};
use fine_drums_dataset::{Manifest, Prepared, Preparer, Split, SplitRule, cl100k, fs};

use crate::gmd_dir::gmd;

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD, default ../shared/datasets/groove): cargo test -- --ignored"]
fn official_splits_match_info_csv() {
    let dir = gmd();
    let index = fs::read_index(&dir).expect("info.csv reads");
    assert!(index.errors.is_empty(), "{:?}", index.errors);
    let mut counts = BTreeMap::new();
    for e in &index.entries {
        *counts.entry(e.split).or_insert(0) += 1;
    }
    assert_eq!(counts[&Split::Train], 897);
    assert_eq!(counts[&Split::Validation], 124);
    assert_eq!(counts[&Split::Test], 129);
    // The same counts straight from the CSV text, without this crate's parser.
    let text = std::fs::read_to_string(dir.join("info.csv")).expect("info.csv");
    for (split, n) in [("train", 897), ("validation", 124), ("test", 129)] {
        assert_eq!(text.lines().filter(|l| l.ends_with(&format!(",{split}"))).count(), n);
    }
}

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD, default ../shared/datasets/groove): cargo test -- --ignored"]
fn the_whole_gmd_prepares_within_budget_and_prompts_rebuild() {
    let dir = gmd();
    let index = fs::read_index(&dir).expect("info.csv reads");
    let tokens = cl100k().expect("tokenizer");
    let preparer = Preparer::default();
    let mut prepared = Prepared::default();
    let mut bytes = Vec::new();
    for e in &index.entries {
        let b = fs::read_entry(&dir, e).expect("every GMD file reads");
        if let Err(err) = preparer.add(&mut prepared, e, &b, &tokens) {
            panic!("{err}");
        }
        bytes.push(b);
    }
    let stats = prepared.stats();
    let all = &stats[3];
    assert!(all.examples > 1000, "{all:?}");
    assert!(all.max_example_tokens <= 4096);
    assert_eq!(all.files + all.skipped.values().sum::<usize>(), 1150);
    // Every split's file passes OpenAI's checks.
    let manifest = Manifest::new(
        preparer.template.clone(),
        preparer.windows,
        preparer.filter.clone(),
        SplitRule::Index { file: "info.csv".into() },
        Prices::default(),
        &prepared,
    );
    let manifest = Manifest::from_json(&manifest.to_json()).expect("manifest reads back");
    for split in Split::ALL {
        let text = legacy_jsonl(prepared.split(split));
        check_legacy(split.as_str(), &text, &manifest.template, 4096, &tokens).expect("valid file");
    }
    // The manifest rebuilds the first prompt of every used file, byte for byte.
    let by_path: BTreeMap<&str, usize> =
        index.entries.iter().enumerate().map(|(i, e)| (e.path.as_str(), i)).collect();
    let mut checked = 0;
    for ex in prepared.examples.iter().filter(|e| e.pair.start_bar == 0) {
        let path = &prepared.sources[ex.source].path;
        let prompt = manifest.prompt(&bytes[by_path[path.as_str()]]).expect("prompt");
        assert_eq!(prompt.text, ex.pair.prompt, "{path}");
        checked += 1;
    }
    assert_eq!(checked, prepared.sources.len());
}
