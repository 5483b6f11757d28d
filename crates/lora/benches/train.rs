//! LoRA's speed and memory on SmolLM2-135M's shape, against `benches/lora_reference.py`
//! (PyTorch + transformers + PEFT, the same shape and settings): one training step on one
//! example of 341 tokens (the mean length of the GMD's train split), and generation with the
//! KV cache. At the end it prints the process's peak RSS (`VmHWM`), to set beside the
//! reference's.
//!
//! The weights are random (nothing is downloaded): a child process (this bench, run again)
//! writes a model folder of SmolLM2-135M's shape, as transformers would, into cargo's
//! temporary folder, so that the peak RSS is that of loading the folder and training.
//!
//! `cargo bench -p fine-drums-lora --bench train`

use std::hint::black_box;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group};
use fine_drums_lora::train::{Example, TrainOptions, Trainer};
use fine_drums_lora::{Cache, Model, Noise};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The example's length and where its completion starts (the GMD's prompts are about a
/// seventh of an example).
const TOKENS: usize = 341;
const PROMPT: usize = 48;
const GENERATED: usize = 32;

/// SmolLM2-135M's `config.json`, as transformers writes it.
const CONFIG: &str = r#"{
  "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 49152,
  "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
  "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "hidden_act": "silu",
  "max_position_embeddings": 8192, "rms_norm_eps": 1e-05, "rope_theta": 100000.0,
  "tie_word_embeddings": true, "torch_dtype": "float32"
}"#;

/// Writes a folder of SmolLM2-135M's shape with random weights (standard deviation 0.02, as
/// transformers starts them; norms at 1).
fn random_smollm2(dir: &Path) {
    std::fs::create_dir_all(dir).expect("a model folder");
    std::fs::write(dir.join("config.json"), CONFIG).expect("config.json");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let bound = 0.02 * 3f32.sqrt();
    let mut random = |shape: &[usize]| {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * bound)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("a tensor")
    };
    let ones = |n: usize| Tensor::ones(n, DType::F32, &Device::Cpu).expect("ones");
    let (h, i, kv) = (576, 1536, 192);
    let mut tensors = vec![("model.embed_tokens.weight".to_string(), random(&[49152, h]))];
    for l in 0..30 {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("self_attn.q_proj", [h, h]),
            ("self_attn.k_proj", [kv, h]),
            ("self_attn.v_proj", [kv, h]),
            ("self_attn.o_proj", [h, h]),
            ("mlp.gate_proj", [i, h]),
            ("mlp.up_proj", [i, h]),
            ("mlp.down_proj", [h, i]),
        ] {
            tensors.push((format!("{p}.{name}.weight"), random(&shape)));
        }
        tensors.push((format!("{p}.input_layernorm.weight"), ones(h)));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), ones(h)));
    }
    tensors.push(("model.norm.weight".to_string(), ones(h)));
    let tensors: std::collections::HashMap<_, _> = tensors.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("weights");
}

/// The peak resident memory of this process, from `/proc/self/status` (Linux).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.0} MiB", kib / 1024.0))
}

/// Set in the child process that writes the model folder.
const WRITE: &str = "FINE_DRUMS_LORA_BENCH_WRITE";

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smollm2-135m-random");
    let exe = std::env::current_exe().expect("this bench's path");
    let written = std::process::Command::new(exe).env(WRITE, &dir).status().expect("a child");
    assert!(written.success(), "writing the model folder failed: {written}");
    let model = Model::load(&dir, &Device::Cpu).expect("the model");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let ids: Vec<u32> = (0..TOKENS).map(|_| rng.next_u32() % 49152).collect();
    let example = Example { ids: ids.clone(), completion: PROMPT };
    let mut options = TrainOptions::default();
    (options.batch, options.warmup) = (1, 0);
    let mut trainer =
        Trainer::new(model, &dir, vec![example.clone()], Vec::new(), &options).expect("a trainer");
    let mut noise = Noise::new(0);
    let batch = [example];

    let mut group = c.benchmark_group("lora");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TOKENS as u64));
    group.bench_function("train/smollm2-135m-341-tokens", |b| {
        b.iter(|| trainer.step(black_box(&batch), &mut noise).expect("a step"))
    });
    let model = trainer.model();
    group.throughput(Throughput::Elements(GENERATED as u64));
    group.bench_function("generate/smollm2-135m-32-tokens", |b| {
        b.iter(|| {
            let mut cache = Cache::default();
            let mut next = model.step(black_box(&ids[..PROMPT]), &mut cache).expect("logits");
            for _ in 0..GENERATED {
                let id = next.argmax(0).and_then(|t| t.to_scalar::<u32>()).expect("a token");
                next = model.step(&[id], &mut cache).expect("logits");
            }
            next
        })
    });
    group.finish();
    if let Some(peak) = peak_rss() {
        println!("peak RSS (VmHWM) {peak}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);

fn main() {
    if let Some(dir) = std::env::var_os(WRITE) {
        return random_smollm2(Path::new(&dir));
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
