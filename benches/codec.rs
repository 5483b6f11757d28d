//! Codec speed over the whole Groove MIDI Dataset, read into memory first.
//!
//! `FINE_DRUMS_GMD` names the dataset folder (default `../shared/datasets/groove`).
//! Throughput is MIDI input bytes; the round trip is parse + encode + decode + write.

#[path = "../examples/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Format, Groove};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("FINE_DRUMS_GMD")
        .map_or_else(|| PathBuf::from("../shared/datasets/groove"), PathBuf::from);
    let files = common::midi_files(&dir).unwrap_or_default();
    assert!(!files.is_empty(), "no MIDI files under {} (set FINE_DRUMS_GMD)", dir.display());
    files.iter().map(|p| std::fs::read(p).expect("readable MIDI file")).collect()
}

fn roundtrip(bytes: &[u8], read: &ReadOptions, format: &Format) -> (usize, usize) {
    let groove = midi::read(bytes, read).expect("GMD file reads");
    let text = format.encode(&groove).expect("encodes");
    let back: Groove = format.decode(&text, &groove.context()).expect("decodes");
    let out = midi::write(&back, &WriteOptions::default()).expect("writes");
    (back.bars.len(), out.len())
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let total: usize = files.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(20);
    let cases = [
        ("roundtrip/beat", ReadOptions::default(), Format::Beat(BeatOptions::default())),
        ("roundtrip/exact", ReadOptions::lossless(), Format::Exact),
    ];
    for (name, read, format) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut bars = 0;
                for f in &files {
                    let (n, written) = roundtrip(black_box(f), &read, &format);
                    assert!(written > 0);
                    bars += n;
                }
                assert!(bars > 20_000, "GMD has about 22,000 bars, got {bars}");
                bars
            })
        });
    }
    group.bench_function("parse/read", |b| {
        b.iter(|| {
            let hits: usize = files
                .iter()
                .map(|f| {
                    midi::read(black_box(f), &ReadOptions::default()).expect("reads").hit_count()
                })
                .sum();
            assert!(hits > 400_000);
            hits
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
