//! Training adapters on a tiny checkpoint, saving, resuming, and generating bars that decode.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fine_drums_codec::beat::BeatOptions;
use fine_drums_codec::{Context, Format, pattern::rock_groove};
use fine_drums_dataset::Template;
use fine_drums_lora::train::{self, TrainOptions, Trainer};
use fine_drums_lora::{Adapted, LoraConfig, Model, Sampling, Tokenizer, lora};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fine-drums-lora-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Prompt/completion pairs (2 + 2 bars) cut from rock grooves made by code.
fn pairs() -> Vec<(String, String)> {
    let template = Template::default();
    let groove = rock_groove(16, 100.0).expect("a rock groove");
    (0..12)
        .map(|s| {
            let prompt = template.prompt_text(&groove.slice(s..s + 2)).expect("a prompt");
            let completion =
                template.completion_text(&groove.slice(s + 2..s + 4)).expect("a completion");
            (prompt, completion)
        })
        .collect()
}

fn options(epochs: u32) -> TrainOptions {
    let mut o = TrainOptions::default();
    let mut lora = LoraConfig::for_arch(fine_drums_lora::Arch::Llama);
    lora.r = 4;
    (o.epochs, o.batch, o.lr, o.warmup, o.seed, o.lora) = (epochs, 4, 2e-2, 2, 5, Some(lora));
    o
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .expect("same shapes")
        .abs()
        .expect("abs")
        .max_all()
        .expect("max")
        .to_scalar()
        .expect("a scalar")
}

#[test]
fn training_reduces_the_loss_and_the_adapter_continues_in_bars_that_decode() {
    let base = fixture("llama");
    let model = Model::load(&base, &Device::Cpu).expect("the fixture loads");
    let tokenizer = Tokenizer::load(&base, model.config().vocab).expect("its tokenizer");
    let examples = train::examples(&tokenizer, &pairs(), 512).expect("tokenized");
    let mut trainer =
        Trainer::new(model, &base, examples, Vec::new(), &options(3)).expect("a trainer");
    let before = trainer.training_loss().expect("a loss");
    let mut steps = 0;
    trainer.run(None, &mut |_| steps += 1).expect("training runs");
    let after = trainer.training_loss().expect("a loss");
    assert!(after < 0.5 * before, "the loss went from {before} to {after}");

    // Saved in PEFT's format and loaded again: the same logits.
    let dir = scratch("saved");
    trainer.save_adapter(&dir.join("adapter")).expect("saved");
    for file in [lora::ADAPTER_CONFIG, lora::ADAPTER_WEIGHTS] {
        assert!(dir.join("adapter").join(file).is_file(), "{file}");
    }
    let mut again = Model::load(&base, &Device::Cpu).expect("the base again");
    let config = lora::load(&mut again, &dir.join("adapter")).expect("the adapter loads");
    assert_eq!(config.r, 4);
    let ids = tokenizer.encode(&pairs()[0].0, true).expect("ids");
    let input = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).expect("input");
    let diff = max_diff(
        &trainer.model().forward(&input).expect("logits"),
        &again.forward(&input).expect("logits"),
    );
    assert!(diff <= 1e-6, "{diff}");

    // Generation keeps to the grammar: every bar decodes strictly.
    let adapted = Adapted { model: again, tokenizer };
    let layout = fine_drums_codec::beat::Layout { groups: 4, per: 4 };
    let (prompt, _) = &pairs()[3];
    let mut sampling = Sampling::default();
    sampling.temperature = 1.0;
    let out = adapted
        .generate(prompt, &BeatOptions::default(), layout, 4, "<<<", 3, sampling, 11, 400)
        .expect("generated");
    assert_eq!(out.len(), 3);
    for g in &out {
        let bars = g.text.strip_suffix("<<<").unwrap_or(&g.text);
        let groove = Format::default()
            .decode(bars.trim_start_matches('\n'), &Context::default())
            .expect("strict decode");
        assert!(!g.cut && (1..=4).contains(&groove.bars.len()), "{:?}", g.text);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_run_ends_where_an_unbroken_one_does() {
    let base = fixture("gpt2");
    let load = || {
        let model = Model::load(&base, &Device::Cpu).expect("the fixture loads");
        let tokenizer = Tokenizer::load(&base, model.config().vocab).expect("its tokenizer");
        let examples = train::examples(&tokenizer, &pairs(), 512).expect("tokenized");
        (model, examples)
    };
    let mut o = options(2);
    o.lora = None;
    let (model, examples) = load();
    let mut whole = Trainer::new(model, &base, examples, Vec::new(), &o).expect("a trainer");
    whole.run(None, &mut |_| {}).expect("runs");

    let dir = scratch("resume");
    let ckpt = dir.join("checkpoint");
    let (model, examples) = load();
    let mut first = o.clone();
    first.epochs = 1;
    let mut part = Trainer::new(model, &base, examples, Vec::new(), &first).expect("a trainer");
    part.run(Some(&ckpt), &mut |_| {}).expect("one epoch");
    let (model, examples) = load();
    let mut rest = Trainer::resume(model, &ckpt, examples, Vec::new(), &o).expect("resumes");
    assert_eq!(rest.progress().epoch, 1);
    rest.run(Some(&ckpt), &mut |_| {}).expect("the second epoch");
    let a = lora::tensors(whole.model());
    let b = lora::tensors(rest.model());
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(max_diff(va.as_tensor(), vb.as_tensor()) <= 1e-6, "{na}");
    }
    // A damaged checkpoint file is named.
    let weights = ckpt.join(lora::ADAPTER_WEIGHTS);
    let mut bytes = std::fs::read(&weights).expect("the adapter");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&weights, bytes).expect("damaged");
    let (model, examples) = load();
    let err =
        Trainer::resume(model, &ckpt, examples, Vec::new(), &o).expect_err("damaged").to_string();
    assert!(err.contains(lora::ADAPTER_WEIGHTS) && err.contains("checksum"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn micro_batches_add_up_to_the_batch() {
    let base = fixture("qwen2");
    let run = |micro: usize| {
        let model = Model::load(&base, &Device::Cpu).expect("the fixture loads");
        let tokenizer = Tokenizer::load(&base, model.config().vocab).expect("its tokenizer");
        // Examples of different lengths, so that the batch pads.
        let mut pairs = pairs();
        pairs[1].0 = pairs[1].0.replace(">>>", "kh..h. sh..h. kh..h. sh..h.\n>>>");
        let examples = train::examples(&tokenizer, &pairs, 512).expect("tokenized");
        let mut o = options(1);
        let mut lora = LoraConfig::for_arch(fine_drums_lora::Arch::Llama);
        lora.lora_dropout = 0.0;
        (o.lora, o.micro_batch) = (Some(lora), micro);
        let mut t = Trainer::new(model, &base, examples, Vec::new(), &o).expect("a trainer");
        t.run(None, &mut |_| {}).expect("runs");
        lora::tensors(t.model())
    };
    let (one, four) = (run(1), run(4));
    for ((name, a), (_, b)) in one.iter().zip(&four) {
        let d = max_diff(a.as_tensor(), b.as_tensor());
        assert!(d <= 1e-5, "{name}: {d}");
    }
}

#[test]
fn a_step_refuses_examples_it_cannot_learn_from_and_takes_one_it_can() {
    let base = fixture("llama");
    let model = Model::load(&base, &Device::Cpu).expect("the fixture loads");
    let tokenizer = Tokenizer::load(&base, model.config().vocab).expect("its tokenizer");
    let vocab = model.config().vocab as u32;
    let examples = train::examples(&tokenizer, &pairs(), 512).expect("tokenized");
    let mut t =
        Trainer::new(model, &base, examples.clone(), Vec::new(), &options(1)).expect("a trainer");
    let mut noise = fine_drums_lora::Noise::new(1);
    let mut beyond = examples[0].clone();
    beyond.ids.push(vocab + 3);
    let mut empty = examples[0].clone();
    empty.completion = empty.ids.len();
    for (batch, expected) in [
        (vec![], "no examples"),
        (vec![examples[1].clone(), empty], "example 1 has no completion token"),
        (vec![beyond], &format!("example 0 has token {}", vocab + 3) as &str),
    ] {
        let err = t.step(&batch, &mut noise).expect_err(expected).to_string();
        assert!(err.contains(expected), "{err}");
    }
    assert_eq!(t.progress().step, 0, "a refused batch takes no step");
    let loss = t.step(&examples[..2], &mut noise).expect("a step");
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
    assert_eq!(t.progress().step, 1);
}

#[test]
fn broken_model_folders_and_adapters_are_errors_that_name_the_file() {
    let dir = scratch("broken");
    let copy = |name: &str| {
        std::fs::copy(fixture("llama").join(name), dir.join(name)).expect("a fixture file");
    };
    // No weights.
    copy("config.json");
    let err = Model::load(&dir, &Device::Cpu).expect_err("no weights").to_string();
    assert!(err.contains("no *.safetensors"), "{err}");
    // Weights cut short.
    let weights = std::fs::read(fixture("llama").join("model.safetensors")).expect("weights");
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 2]).expect("written");
    let err = Model::load(&dir, &Device::Cpu).expect_err("cut short").to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // Weights of another shape than the config says.
    copy("model.safetensors");
    let config = std::fs::read_to_string(dir.join("config.json")).expect("config");
    std::fs::write(
        dir.join("config.json"),
        config.replace("\"intermediate_size\": 48", "\"intermediate_size\": 64"),
    )
    .expect("written");
    let err = Model::load(&dir, &Device::Cpu).expect_err("another shape").to_string();
    assert!(err.contains("mlp.gate_proj.weight") && err.contains("[48, 32]"), "{err}");
    copy("config.json");
    // A tokenizer that is not one.
    std::fs::write(dir.join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").expect("written");
    let err = Tokenizer::load(&dir, 320).expect_err("not a tokenizer").to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    // An adapter for other modules, and one that is not JSON.
    let mut model = Model::load(&dir, &Device::Cpu).expect("the base loads");
    let adapter = dir.join("adapter");
    std::fs::create_dir_all(&adapter).expect("a folder");
    std::fs::copy(
        fixture("gpt2").join("adapter/adapter_config.json"),
        adapter.join(lora::ADAPTER_CONFIG),
    )
    .expect("copied");
    std::fs::copy(
        fixture("gpt2").join("adapter/adapter_model.safetensors"),
        adapter.join(lora::ADAPTER_WEIGHTS),
    )
    .expect("copied");
    let err = lora::load(&mut model, &adapter).expect_err("GPT-2's modules").to_string();
    assert!(err.contains("match no module"), "{err}");
    std::fs::write(adapter.join(lora::ADAPTER_CONFIG), "{").expect("written");
    let err = lora::load(&mut model, &adapter).expect_err("not JSON").to_string();
    assert!(err.contains(lora::ADAPTER_CONFIG), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
