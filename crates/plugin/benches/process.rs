//! What the plugin costs the host: `process` for a 512-sample block while the transport
//! plays and no phrase is being made (the release build, driven through CLAP by the test
//! host), and the time from a press to a 4-bar phrase ready with the built-in model (the
//! work the background thread does; run under `taskset -c 0` for one core).
//!
//! `cargo bench -p fine-drums-plugin --bench process`
// Loading a plugin library runs its code: clack-host marks that unsafe.
#![allow(unsafe_code)]

#[path = "../tests/clap_host.rs"]
mod clap_host;

use clack_host::events::Match;
use clack_host::events::event_types::NoteOnEvent;
use clack_host::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use fine_drums_plugin::bundle;
use fine_drums_plugin::{Ask, Capture, Generator, Heard, Signature};

use crate::clap_host::{BLOCK, Blocks, SAMPLE_RATE};

/// Two bars of a rock beat, as a host would deliver them.
fn rock_capture(bars: i64) -> Capture {
    let mut capture = Capture::default();
    for bar in 0..bars {
        capture.take(Heard::Bar { bar, signature: Signature::DEFAULT });
        for eighth in 0..8 {
            let at = f64::from(eighth) / 2.0;
            capture.take(Heard::Hit { bar, at, pitch: 42, velocity: 80 });
            let drum = match eighth {
                0 | 4 => Some(36),
                2 | 6 => Some(38),
                _ => None,
            };
            if let Some(pitch) = drum {
                capture.take(Heard::Hit { bar, at, pitch, velocity: 100 });
            }
        }
    }
    capture
}

fn process(c: &mut Criterion) {
    // The library cargo built with this bench, beside it in target/release/deps.
    let exe = std::env::current_exe().expect("the bench's path");
    let lib = exe.parent().expect("its folder").join(bundle::library_name());
    let dir = std::env::temp_dir().join(format!("fine-drums-bench-{}", std::process::id()));
    let bundles = bundle::write_bundles(&lib, &dir).expect("the bundles are written");
    let entry = unsafe { PluginEntry::load(&bundles.clap) }.expect("the .clap bundle loads");
    let mut instance = clap_host::instantiate(&entry);
    let mut processor = clap_host::start(&mut instance);
    let mut blocks = Blocks::new();
    let mut input = EventBuffer::new();
    let spq = SAMPLE_RATE * 60.0 / 120.0;
    let mut block = 0u64;
    c.bench_function("process: a 512-sample block at 120 BPM, eighth-note hi-hats in", |b| {
        b.iter(|| {
            let start = block * u64::from(BLOCK);
            let q0 = start as f64 / spq;
            let bar = (q0 / 4.0).floor();
            let transport = clap_host::transport(
                start,
                SAMPLE_RATE,
                q0,
                (bar as u32, bar * 4.0),
                120.0,
                (4, 4),
            );
            // A hi-hat on every eighth note that falls in the block.
            input.clear();
            let first = (q0 * 2.0).ceil() as u64;
            let mut eighth = first;
            while (eighth as f64 / 2.0) < q0 + f64::from(BLOCK) / spq {
                let time = ((eighth as f64 / 2.0 - q0) * spq).round() as u32;
                let pckn = Pckn::new(0u16, 9u16, 42u16, Match::All);
                input.push(&NoteOnEvent::new(time.min(BLOCK - 1), pckn, 0.6));
                eighth += 1;
            }
            blocks.process(&mut processor, &input, start, Some(&transport));
            block += 1;
        })
    });
    let processor = processor.stop_processing();
    instance.deactivate(processor);
}

fn generate(c: &mut Criterion) {
    let capture = rock_capture(4);
    let generator = Generator::load(None).expect("the built-in model");
    let mut ask = Ask::default();
    (ask.bars, ask.seed) = (4, 3);
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.bench_function("a 4-bar phrase after 4 captured bars, built-in model", |b| {
        b.iter(|| generator.generate(&capture, 4, &ask).expect("a phrase"))
    });
    group.finish();
}

criterion_group!(benches, process, generate);
criterion_main!(benches);
