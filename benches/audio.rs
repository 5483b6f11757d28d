//! Hearing a groove: 16 bars of the rock beat at 120 rendered to a WAV file with the built-in
//! kit, the kit's synthesis included (what `continue --wav` and `render` do).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fine_drums_audio::Kit;
use fine_drums_codec::pattern::rock_groove;

fn bench(c: &mut Criterion) {
    let groove = rock_groove(16, 120.0).expect("rock");
    c.bench_function("audio/16-bars-to-wav", |b| {
        b.iter(|| {
            let kit = Kit::built_in(44_100).expect("kit");
            kit.render(black_box(&groove)).expect("audio").wav()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
