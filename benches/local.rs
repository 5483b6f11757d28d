//! The offline local backend: training on the GMD train split and generating bars.
//!
//! `FINE_DRUMS_GMD` names the dataset folder (default `../shared/datasets/groove`). The
//! train split is prepared in memory first (default settings: grooves, 2 -> 14 bars).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fine_drums_dataset::export::legacy_jsonl;
use fine_drums_dataset::{Prepared, Preparer, Split, cl100k, fs};
use fine_drums_markov::{Model, Sampling};
use rand_core::SeedableRng;
use rand_xoshiro::SplitMix64;

fn train_jsonl() -> (Preparer, String) {
    let dir = std::env::var_os("FINE_DRUMS_GMD")
        .map_or_else(|| PathBuf::from("../shared/datasets/groove"), PathBuf::from);
    let index = fs::read_index(&dir).expect("info.csv (set FINE_DRUMS_GMD)");
    let tokens = cl100k().expect("tokenizer");
    let preparer = Preparer::default();
    let mut prepared = Prepared::default();
    for e in index.entries.iter().filter(|e| e.split == Split::Train) {
        let bytes = fs::read_entry(&dir, e).expect("GMD file");
        preparer.add(&mut prepared, e, &bytes, &tokens).expect("GMD file prepares");
    }
    (preparer, legacy_jsonl(prepared.split(Split::Train)))
}

fn bench(c: &mut Criterion) {
    let (preparer, jsonl) = train_jsonl();
    let mut group = c.benchmark_group("local");
    group.sample_size(10);
    group.throughput(Throughput::Elements(jsonl.lines().count() as u64));
    group.bench_function("train/gmd-train-split", |b| {
        b.iter(|| {
            let mut m = Model::new(&preparer.template).expect("model");
            m.train_jsonl("train.jsonl", black_box(&jsonl)).expect("trains");
            m
        });
    });
    let mut model = Model::new(&preparer.template).expect("model");
    model.train_jsonl("train.jsonl", &jsonl).expect("trains");
    // The prompt of the first training example: a real GMD groove.
    let first: serde_json::Value =
        serde_json::from_str(jsonl.lines().next().expect("a line")).expect("json");
    let prompt = first["prompt"].as_str().expect("prompt").to_string();
    const BARS: usize = 14;
    group.sample_size(20);
    group.throughput(Throughput::Elements(BARS as u64));
    let mut seed = 0;
    group.bench_function("generate/14-bars", |b| {
        b.iter(|| {
            seed += 1;
            model.generate(
                black_box(&prompt),
                BARS,
                Sampling::default(),
                &mut SplitMix64::seed_from_u64(seed),
                |_, _| true,
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
