use fine_drums_codec::midi::{self, ReadOptions, WriteOptions};
use fine_drums_codec::Format;
fn main() {
    let bytes = std::fs::read("../shared/datasets/groove/drummer2/session1/2_rock_102_beat_4-4.mid").unwrap();
    let g = midi::read(&bytes, &ReadOptions::lossless()).unwrap();
    let text = Format::Exact.encode(&g).unwrap();
    let back = Format::Exact.decode(&text, &g.context()).unwrap();
    println!("back==g {}", back == g);
    let written = midi::write(&back, &WriteOptions::default()).unwrap();
    let again = midi::read(&written, &ReadOptions::lossless()).unwrap();
    println!("again==g {}", again == g);
    for (i, (a, b)) in g.bars.iter().zip(&again.bars).enumerate() {
        if a != b { println!("bar {i}\n{:?}\n{:?}", a, b); break; }
    }
    println!("{} {}", g.bars.len(), again.bars.len());
}
