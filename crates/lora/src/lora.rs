//! LoRA settings and adapters in PEFT's format: `adapter_config.json` and
//! `adapter_model.safetensors`, which PEFT, vLLM and SGLang load.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::config::Arch;
use crate::error::{Error, Result};
use crate::model::{Lora, Model};

/// The adapter's settings file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The adapter's weights.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// LoRA's settings, as PEFT's `LoraConfig` names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoraConfig {
    /// The rank of the update. Default: 8.
    pub r: usize,
    /// The update is scaled by `lora_alpha / r`. Default: 16.
    pub lora_alpha: f64,
    /// Dropout on the adapter's input while training. Default: 0.05.
    pub lora_dropout: f32,
    /// The modules that get adapters, by the last parts of their paths (`q_proj`,
    /// `attn.c_attn`). Default: every attention and feed-forward projection of the
    /// architecture (see [`LoraConfig::for_arch`]).
    pub target_modules: Vec<String>,
}

impl LoraConfig {
    /// The defaults, with adapters on every projection of `arch`.
    pub fn for_arch(arch: Arch) -> LoraConfig {
        let targets: &[&str] = match arch {
            Arch::Llama => {
                &["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            }
            Arch::Gpt2 => &["c_attn", "c_proj", "c_fc"],
        };
        LoraConfig {
            r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            target_modules: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if self.r == 0 || self.r > 4096 {
            return Err(Error::invalid("LoRA rank", format!("{} (1 to 4096)", self.r)));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(Error::invalid("LoRA alpha", format!("{} (above 0)", self.lora_alpha)));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(Error::invalid(
                "LoRA dropout",
                format!("{} (0 to below 1)", self.lora_dropout),
            ));
        }
        if self.target_modules.is_empty() {
            return Err(Error::invalid("LoRA target modules", "none named"));
        }
        Ok(())
    }

    /// Whether the module at `path` is a target, as PEFT matches a list: the whole path, or
    /// its last parts after a dot.
    pub fn targets(&self, path: &str) -> bool {
        self.target_modules.iter().any(|t| path == t || path.ends_with(&format!(".{t}")))
    }
}

/// PEFT's `adapter_config.json`, the fields this crate writes and reads.
#[derive(Serialize, Deserialize)]
struct PeftConfig {
    peft_type: String,
    task_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    lora_dropout: f32,
    target_modules: TargetModules,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default = "none")]
    bias: String,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    inference_mode: bool,
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    init_lora_weights: serde_json::Value,
    #[serde(default)]
    rank_pattern: HashMap<String, serde_json::Value>,
    #[serde(default)]
    alpha_pattern: HashMap<String, serde_json::Value>,
    modules_to_save: Option<serde_json::Value>,
}

fn none() -> String {
    "none".into()
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TargetModules {
    List(Vec<String>),
    Regex(String),
}

/// The key of a weight of an adapter in PEFT's file.
fn key(path: &str, which: &str) -> String {
    format!("base_model.model.{path}.{which}.weight")
}

/// Puts fresh adapters on the target modules of `model`: `A` drawn as PEFT draws it
/// (uniform within `1/sqrt(fan_in)`) from `seed`, `B` zero, so the model starts unchanged.
pub fn attach(model: &mut Model, config: &LoraConfig, seed: u64) -> Result<usize> {
    config.check()?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let device = model.device().clone();
    let mut n = 0;
    for lin in model.linears_mut() {
        if !config.targets(&lin.path) {
            continue;
        }
        let (inp, out) = lin.dims();
        let bound = 1.0 / (inp as f32).sqrt();
        let a: Vec<f32> = (0..config.r * inp)
            .map(|_| {
                let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
                (2.0 * u - 1.0) * bound
            })
            .collect();
        lin.lora = Some(Lora {
            a: Var::from_tensor(&Tensor::from_vec(a, (config.r, inp), &device)?)?,
            b: Var::zeros((out, config.r), DType::F32, &device)?,
            scale: config.lora_alpha / config.r as f64,
            dropout: config.lora_dropout,
        });
        n += 1;
    }
    if n == 0 {
        return Err(Error::invalid(
            "LoRA target modules",
            format!("{:?} match no module of the model", config.target_modules),
        ));
    }
    Ok(n)
}

/// The adapters' weights by PEFT's names, and the variables themselves (for training).
pub fn tensors(model: &Model) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    for lin in model.linears() {
        if let Some(l) = &lin.lora {
            out.push((key(&lin.path, "lora_A"), l.a.clone()));
            out.push((key(&lin.path, "lora_B"), l.b.clone()));
        }
    }
    out
}

/// The adapter's files: `adapter_config.json` and `adapter_model.safetensors` bytes.
pub fn to_files(
    model: &Model,
    config: &LoraConfig,
    base: Option<&str>,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let peft = PeftConfig {
        peft_type: "LORA".into(),
        task_type: Some("CAUSAL_LM".into()),
        r: config.r,
        lora_alpha: config.lora_alpha,
        lora_dropout: config.lora_dropout,
        target_modules: TargetModules::List(config.target_modules.clone()),
        fan_in_fan_out: model.config().arch == Arch::Gpt2,
        bias: "none".into(),
        use_rslora: false,
        use_dora: false,
        inference_mode: true,
        base_model_name_or_path: base.map(str::to_string),
        init_lora_weights: serde_json::Value::Bool(true),
        rank_pattern: HashMap::new(),
        alpha_pattern: HashMap::new(),
        modules_to_save: None,
    };
    let json =
        serde_json::to_vec_pretty(&peft).map_err(|e| Error::invalid("adapter", e.to_string()))?;
    let map: HashMap<String, Tensor> =
        tensors(model).into_iter().map(|(k, v)| (k, v.as_tensor().clone())).collect();
    let weights = fine_drums_train::checkpoint::safetensors_bytes(&map)?;
    Ok(vec![(ADAPTER_CONFIG, json), (ADAPTER_WEIGHTS, weights)])
}

/// Reads an adapter folder PEFT (or this crate) wrote, and puts its adapters on `model`.
/// Returns its settings. A folder this crate wrote has checksums, and they are checked.
pub fn load(model: &mut Model, dir: &Path) -> Result<LoraConfig> {
    let (config, weights) = match fine_drums_train::checkpoint::Files::open(dir) {
        Ok(Some(files)) => (files.read(ADAPTER_CONFIG)?, files.read(ADAPTER_WEIGHTS)?),
        Ok(None) => {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read(&path)
                    .map_err(|e| Error::file_because(&path, "cannot read the adapter", e))
            };
            (read(ADAPTER_CONFIG)?, read(ADAPTER_WEIGHTS)?)
        }
        Err(e) => return Err(e.into()),
    };
    load_files(model, dir, &config, &weights)
}

/// Puts the adapters of an adapter's two files (`dir` names them in errors) on `model`.
pub fn load_files(
    model: &mut Model,
    dir: &Path,
    config: &[u8],
    weights: &[u8],
) -> Result<LoraConfig> {
    let path = dir.join(ADAPTER_CONFIG);
    let peft: PeftConfig = serde_json::from_slice(config)
        .map_err(|e| Error::file_because(&path, "not a PEFT adapter config", e))?;
    if peft.peft_type != "LORA" {
        return Err(Error::file(&path, format!("a {} adapter: only LORA", peft.peft_type)));
    }
    if peft.use_dora
        || peft.use_rslora
        || peft.bias != "none"
        || !peft.rank_pattern.is_empty()
        || !peft.alpha_pattern.is_empty()
        || peft.modules_to_save.as_ref().is_some_and(|m| !m.is_null())
    {
        return Err(Error::file(
            &path,
            "DoRA, rsLoRA, trained biases, per-module ranks or modules to save: this crate reads plain LoRA",
        ));
    }
    let TargetModules::List(target_modules) = peft.target_modules else {
        return Err(Error::file(&path, "target_modules as a regular expression: give a list"));
    };
    let config = LoraConfig {
        r: peft.r,
        lora_alpha: peft.lora_alpha,
        lora_dropout: peft.lora_dropout,
        target_modules,
    };
    config.check().map_err(|e| Error::file(&path, e.to_string()))?;
    let wpath = dir.join(ADAPTER_WEIGHTS);
    let mut tensors = candle_core::safetensors::load_buffer(weights, &candle_core::Device::Cpu)
        .map_err(|e| Error::file_because(&wpath, "not a readable safetensors file", e))?;
    let device = model.device().clone();
    let scale = config.lora_alpha / config.r as f64;
    let mut n = 0;
    for lin in model.linears_mut() {
        if !config.targets(&lin.path) {
            continue;
        }
        let (inp, out) = lin.dims();
        let mut take = |which: &str, shape: [usize; 2]| -> Result<Var> {
            let k = key(&lin.path, which);
            let t = tensors
                .remove(&k)
                .ok_or_else(|| Error::file(&wpath, format!("no tensor {k:?}")))?;
            if t.dims() != shape {
                return Err(Error::file(&wpath, format!("{k:?} is {:?}, not {shape:?}", t.dims())));
            }
            Ok(Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(&device)?)?)
        };
        let a = take("lora_A", [config.r, inp])?;
        let b = take("lora_B", [out, config.r])?;
        lin.lora = Some(Lora { a, b, scale, dropout: config.lora_dropout });
        n += 1;
    }
    if n == 0 {
        return Err(Error::file(&path, "its target modules match no module of the model"));
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(Error::file(
            &wpath,
            format!("tensor {extra:?} belongs to no target module of the model"),
        ));
    }
    Ok(config)
}
