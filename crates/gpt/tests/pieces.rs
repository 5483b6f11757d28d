//! Training on whole pieces with controls, on grooves made by code: a resumed run ends
//! where an unbroken one does, the vocabulary keeps its controls, and generation takes them,
//! writes bars that decode strictly, and refuses what the model does not know.

use std::sync::atomic::AtomicBool;

use candle_core::Device;
use fine_drums_codec::{Context, Format};
use fine_drums_dataset::Template;
use fine_drums_dataset::controls::Piece;
use fine_drums_gpt::train::{Event, TrainOptions, Trainer, pieces_from_jsonl};
use fine_drums_gpt::{Drummer, Generation, Steer};

/// Whole pieces: rock beats of 6 to 11 bars, every third with a snare fill in its 4th bar.
fn pieces(n: usize) -> Vec<Piece> {
    let format = Format::default();
    (0..n)
        .map(|i| {
            let mut g = fine_drums_codec::pattern::rock_groove(6 + i % 6, 90.0).expect("rock");
            if i % 3 == 0 {
                let fill = fine_drums_codec::pattern::rock_groove(1, 90.0).expect("rock");
                let mut bar = fill.bars[0].clone();
                for h in &mut bar.hits {
                    h.voice = fine_drums_codec::Voice::new(1);
                }
                g.bars[3] = bar;
            }
            let style = ["rock", "funk"][i % 2].to_string();
            Piece::new(format!("p{i}.mid"), format.encode(&g).expect("text")).with(
                Some(style),
                Some(80.0 + 10.0 * i as f64),
                false,
            )
        })
        .collect()
}

fn options() -> TrainOptions {
    let mut o = TrainOptions::default();
    (o.preset, o.epochs, o.batch, o.warmup, o.patience, o.seed) = ("tiny".into(), 3, 4, 4, 10, 11);
    o
}

fn trainer() -> Trainer {
    Trainer::on_pieces(&Template::default(), &pieces(12), &pieces(3), &options(), &Device::Cpu)
        .expect("a trainer")
}

#[test]
fn pieces_read_from_their_jsonl_and_prompt_files_are_not_pieces() {
    let jsonl: String = pieces(2).iter().map(Piece::to_line).collect();
    let read = pieces_from_jsonl("train.pieces.jsonl", &jsonl).expect("reads").expect("pieces");
    assert_eq!(read, pieces(2));
    let legacy = r#"{"prompt":"Kh..\n>>>","completion":"\nKh..\n<<<"}"#;
    assert_eq!(pieces_from_jsonl("train.jsonl", legacy).expect("reads"), None);
    let bad = format!("{jsonl}{{\"text\": 3}}\n");
    let err = pieces_from_jsonl("train.pieces.jsonl", &bad).expect_err("a bad line");
    assert!(err.to_string().contains("train.pieces.jsonl, line 3"), "{err}");
}

#[test]
fn a_resumed_run_on_pieces_ends_with_the_weights_of_an_unbroken_one() {
    let mut whole = trainer();
    whole.run(None, &mut |_| {}).expect("training");
    let dir = std::env::temp_dir().join(format!("fine-drums-gpt-pieces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut killed = trainer();
    let interrupted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        killed.run(Some(&dir), &mut |e| {
            if matches!(e, Event::Epoch { epoch: 1, .. }) {
                panic!("killed");
            }
        })
    }));
    assert!(interrupted.is_err());
    drop(killed);
    let mut rest =
        Trainer::resume_on_pieces(&dir, &pieces(12), &pieces(3), &options(), &Device::Cpu)
            .expect("resumes");
    rest.run(Some(&dir), &mut |_| {}).expect("the other epochs");
    for ((n, a), (_, b)) in whole.gpt().vars().iter().zip(rest.gpt().vars()) {
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
            b.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b, "{n}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generation_takes_controls_and_infills_and_refuses_unknown_values() {
    let mut t = trainer();
    t.run(None, &mut |_| {}).expect("training");
    let styles = &t.vocab().controls().expect("controls").styles;
    assert_eq!(styles, &["funk", "rock"]);
    let drummer = Drummer { gpt: t.gpt().clone(), vocab: t.vocab().clone() };
    let format = Format::default();
    let prompt = format.encode(&fine_drums_codec::pattern::rock_groove(2, 90.0).unwrap()).unwrap();
    let mut steer = Steer::default();
    (steer.style, steer.tempo) = (Some("funk".into()), Some(120.0));
    (steer.intensity, steer.fills) = (vec![Some(1), None, Some(5)], vec![None, Some(true)]);
    let mut g = Generation::new(&prompt, 3);
    (g.steer, g.n, g.seed) = (&steer, 2, 4);
    let cancel = AtomicBool::new(false);
    let a = drummer.generate(&g, &cancel).expect("steered bars");
    assert_eq!(a, drummer.generate(&g, &cancel).expect("again"), "the same seed");
    for text in &a {
        assert_eq!(text.lines().count(), 3);
        format.decode(text, &Context::default()).expect("decodes strictly");
    }
    g.suffix = Some(&prompt);
    for text in drummer.generate(&g, &cancel).expect("an infill") {
        assert_eq!(text.lines().count(), 3);
        format.decode(&text, &Context::default()).expect("decodes strictly");
    }
    steer.style = Some("zydeco".into());
    let mut g = Generation::new(&prompt, 3);
    g.steer = &steer;
    let err = drummer.generate(&g, &cancel).expect_err("an unknown style");
    assert!(err.to_string().contains("funk, rock"), "{err}");
    steer.style = None;
    steer.intensity = vec![Some(9)];
    let mut g = Generation::new(&prompt, 3);
    g.steer = &steer;
    let err = drummer.generate(&g, &cancel).expect_err("out of range");
    assert!(err.to_string().contains("1 to 5"), "{err}");
}
