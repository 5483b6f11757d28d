//! The drum GPT's speed: continuing 14 bars with the built-in model, and one training step of
//! the `small` preset on a batch of 16 windows of 256 tokens (the shape of
//! `benches/gpt_reference.py`, which trains the same architecture with PyTorch).
//!
//! `CANDLE_NUM_THREADS=1 cargo bench --features bench --bench gpt` measures one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fine_drums_codec::{Format, Meter, pattern::rock_groove};
use fine_drums_gpt::optim::{AdamW, AdamWConfig};
use fine_drums_gpt::tokens::Encoded;
use fine_drums_gpt::{Batch, Config, Device, Model, Network, Sampling};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let model = Model::embedded(&Device::Cpu).expect("the built-in model");
    let text = Format::default().encode(&rock_groove(2, 100.0).expect("rock")).expect("text");
    let mut group = c.benchmark_group("gpt");
    group.sample_size(10);
    group.throughput(Throughput::Elements(14));
    group.bench_function("continue/14-bars", |b| {
        b.iter(|| {
            let bars = model
                .drummer
                .continue_bars(black_box(&text), Meter::FOUR_FOUR, 14, 1, Sampling::default(), 7)
                .expect("bars");
            assert_eq!(bars[0].lines().count(), 14);
            bars
        })
    });
    let config = Config::preset("small", 1400).expect("small");
    let net = Network::new(&config, 1, &Device::Cpu).expect("a network");
    let mut opt = AdamW::new(net.vars(), AdamWConfig::default()).expect("an optimiser");
    let mut seq = Encoded::default();
    let n = 16 * 256;
    seq.ids = (0..n).map(|i| (i * 7919 % 1399 + 1) as u32).collect();
    seq.slot = (0..n).map(|i| (i % 17) as u16).collect();
    seq.bar = (0..n).map(|i| ((i % 256) / 17) as u16).collect();
    let starts: Vec<usize> = (0..16).map(|i| i * 256).collect();
    let batch = Batch::windows(&seq, &starts, 256, &Device::Cpu).expect("a batch");
    group.throughput(Throughput::Elements(16 * 256));
    group.bench_function("train/small-16x256", |b| {
        b.iter(|| {
            let (_, _, grads) = net.loss_and_grads(black_box(&batch)).expect("gradients");
            opt.step(&grads).expect("a step");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
