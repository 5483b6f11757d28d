//! Codec speed over the whole Groove MIDI Dataset, read into memory first.
//!
//! `FINE_DRUMS_GMD` names the dataset folder (default `../shared/datasets/groove`).
//! Throughput is MIDI input bytes; the round trip is parse + encode + decode + write.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::{Format, Groove};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("FINE_DRUMS_GMD")
        .map_or_else(|| PathBuf::from("../shared/datasets/groove"), PathBuf::from);
    let files = fine_drums_dataset::fs::midi_files(&dir).unwrap_or_default();
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
        ("roundtrip/exact", ReadOptions::lossless(), Format::EXACT),
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
    // Each stage of the beat round trip on its own, inputs prepared outside the timing.
    let read = ReadOptions::default();
    let format = Format::Beat(BeatOptions::default());
    let grooves: Vec<Groove> =
        files.iter().map(|f| midi::read(f, &read).expect("GMD file reads")).collect();
    let texts: Vec<String> = grooves.iter().map(|g| format.encode(g).expect("encodes")).collect();
    let decoded: Vec<Groove> = texts
        .iter()
        .zip(&grooves)
        .map(|(t, g)| format.decode(t, &g.context()).expect("decodes"))
        .collect();
    group.bench_function("stage/encode", |b| {
        b.iter(|| {
            grooves
                .iter()
                .map(|g| format.encode(black_box(g)).expect("encodes").len())
                .sum::<usize>()
        })
    });
    group.bench_function("stage/decode", |b| {
        b.iter(|| {
            texts
                .iter()
                .zip(&grooves)
                .map(|(t, g)| {
                    format.decode(black_box(t), &g.context()).expect("decodes").bars.len()
                })
                .sum::<usize>()
        })
    });
    group.bench_function("stage/write", |b| {
        b.iter(|| {
            decoded
                .iter()
                .map(|g| midi::write(black_box(g), &WriteOptions::default()).expect("writes").len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
