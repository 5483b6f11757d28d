//! Parity with the reference implementation: tiny checkpoints written by Hugging Face
//! transformers (random weights), with the logits transformers and PEFT gave for them
//! (`scripts/fixtures.py` made them; transformers 5.24.0, PEFT 0.21.2, torch 2.15.0).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fine_drums_lora::{Cache, Model, Tokenizer, lora};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The text and ids of a fixture's input, and transformers' logits without and with the
/// PEFT adapter.
fn reference(dir: &Path) -> (String, Vec<u32>, Tensor, Tensor) {
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("input.json")).expect("input.json"))
            .expect("input.json is JSON");
    let text = input["text"].as_str().expect("a text").to_string();
    let ids = input["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().expect("an id") as u32)
        .collect();
    let mut r = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)
        .expect("reference.safetensors");
    (text, ids, r.remove("logits").expect("logits"), r.remove("adapted").expect("adapted"))
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .expect("same shapes")
        .abs()
        .expect("abs")
        .max_all()
        .expect("max")
        .to_scalar()
        .expect("a scalar")
}

fn logits(model: &Model, ids: &[u32]) -> Tensor {
    let input = Tensor::from_vec(ids.to_vec(), (1, ids.len()), &Device::Cpu).expect("ids");
    model.forward(&input).expect("forward").squeeze(0).expect("one sequence")
}

fn check(name: &str) {
    let dir = fixture(name);
    let (text, ids, expected, expected_adapted) = reference(&dir);
    let mut model = Model::load(&dir, &Device::Cpu).expect("the fixture loads");
    // The tokenizer gives transformers' ids.
    let tokenizer = Tokenizer::load(&dir, model.config().vocab).expect("tokenizer.json loads");
    assert_eq!(tokenizer.encode(&text, true).expect("encodes"), ids, "{name}: token ids");
    let ours = logits(&model, &ids);
    let diff = max_diff(&ours, &expected);
    assert!(diff <= 1e-4, "{name}: logits differ from transformers' by {diff}");
    eprintln!("{name}: logits within {diff:.2e} of transformers'");
    // The adapter PEFT saved gives PEFT's logits.
    lora::load(&mut model, &dir.join("adapter")).expect("PEFT's adapter loads");
    let adapted = logits(&model, &ids);
    let diff = max_diff(&adapted, &expected_adapted);
    assert!(diff <= 1e-4, "{name}: logits with the adapter differ from PEFT's by {diff}");
    eprintln!("{name}: with PEFT's adapter, within {diff:.2e} of PEFT's");
    assert!(max_diff(&adapted, &expected) > 1e-2, "{name}: the adapter changes nothing");
    // Step by step through the KV cache, the same logits.
    let mut cache = Cache::default();
    let mut last = model.step(&ids[..5], &mut cache).expect("the prompt's first tokens");
    for (i, &id) in ids.iter().enumerate().skip(5) {
        let row = adapted.get(i - 1).expect("a row");
        assert!(max_diff(&last, &row) <= 1e-4, "{name}: cached step {i}");
        last = model.step(&[id], &mut cache).expect("a step");
    }
    assert_eq!(cache.len(), ids.len());
}

#[test]
fn parity_llama_logits_and_peft_adapter() {
    check("llama");
}

#[test]
fn parity_qwen2_logits_and_peft_adapter() {
    check("qwen2");
}

#[test]
fn parity_gpt2_logits_and_peft_adapter() {
    check("gpt2");
}

/// PEFT loads an adapter this crate trained and saved, and gives the crate's logits.
#[test]
#[ignore = "needs Python with torch, transformers and peft (FINE_DRUMS_PYTHON, default python3): cargo test parity -- --ignored"]
fn parity_peft_reads_the_adapters_this_crate_trains() {
    use fine_drums_lora::train::{self, TrainOptions, Trainer};
    let python = std::env::var("FINE_DRUMS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures.py");
    for name in ["llama", "qwen2", "gpt2"] {
        let base = fixture(name);
        let model = Model::load(&base, &Device::Cpu).expect("the fixture loads");
        let tokenizer = Tokenizer::load(&base, model.config().vocab).expect("its tokenizer");
        let (text, ids, untrained, _) = reference(&base);
        let pairs = vec![(text.clone(), "\nkh..h. sh..h. kh..h. sh..h.\n<<<".to_string()); 4];
        let examples = train::examples(&tokenizer, &pairs, 512).expect("tokenized");
        let mut options = TrainOptions::default();
        (options.epochs, options.lr, options.warmup) = (2, 5e-2, 1);
        let mut trainer =
            Trainer::new(model, &base, examples, Vec::new(), &options).expect("a trainer");
        trainer.run(None, &mut |_| {}).expect("trains");
        let dir = std::env::temp_dir()
            .join(format!("fine-drums-lora-peft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        trainer.save_adapter(&dir.join("adapter")).expect("saved");
        let ours = logits(trainer.model(), &ids);
        assert!(max_diff(&ours, &untrained) > 1e-2, "{name}: training changed nothing");
        candle_core::safetensors::save(
            &std::collections::HashMap::from([("logits".to_string(), ours)]),
            dir.join("logits.safetensors"),
        )
        .expect("logits saved");
        std::fs::write(dir.join("ids.json"), serde_json::to_string(&ids).expect("JSON"))
            .expect("ids saved");
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg("--check")
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("{python} does not run: {e}"));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {said}{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("{name}: {}", said.trim());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
