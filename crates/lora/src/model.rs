//! The forward pass of a pretrained causal language model, with LoRA adapters on its linear
//! layers: Llama (SmolLM2, Llama 2 and 3, Qwen2) and GPT-2, as transformers computes them.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, IndexOp, Tensor, Var};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::config::{Arch, Config};
use crate::error::{Error, Result};
use crate::ops::{Mask, causal_attention, frozen_linear, lora_linear};

mod step;

/// A low-rank update of a linear layer: `W x + (alpha / r) B A x`, as PEFT computes it.
#[derive(Clone, Debug)]
pub struct Lora {
    /// `A`, `r` by the layer's input width.
    pub a: Var,
    /// `B`, the layer's output width by `r`.
    pub b: Var,
    /// `alpha / r`.
    pub scale: f64,
    /// The dropout on the adapter's input while training.
    pub dropout: f32,
}

/// A linear layer (a `Linear`, or GPT-2's `Conv1D` stored transposed), with its module path
/// and an optional adapter.
#[derive(Clone, Debug)]
pub struct Linear {
    /// The module's path in the transformers model (`model.layers.0.self_attn.q_proj`).
    pub path: String,
    /// The weight, output width by input width.
    w: Tensor,
    bias: Option<Tensor>,
    /// The adapter, if the layer has one.
    pub lora: Option<Lora>,
}

/// Dropout masks drawn from a seeded generator, so that training is reproducible.
#[derive(Debug)]
pub struct Noise {
    rng: Xoshiro256PlusPlus,
}

impl Noise {
    /// Masks from `seed`.
    pub fn new(seed: u64) -> Noise {
        Noise { rng: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// Which of `n` inputs dropout at rate `p` keeps (`None` when it keeps all).
    fn mask(&mut self, n: usize, p: f32) -> Option<Mask> {
        if p <= 0.0 {
            return None;
        }
        let keep = (0..n)
            .map(|_| {
                let u = (self.rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
                u >= p
            })
            .collect();
        Some(Mask { keep, scale: 1.0 / (1.0 - p) })
    }
}

impl Linear {
    /// The input and output widths.
    pub fn dims(&self) -> (usize, usize) {
        let (out, inp) = self.w.dims2().unwrap_or((0, 0));
        (inp, out)
    }

    fn forward(&self, x: &Tensor, noise: Option<&mut Noise>) -> Result<Tensor> {
        let y = match &self.lora {
            None => frozen_linear(x, &self.w)?,
            Some(lora) => {
                // Without noise, nothing is trained (generation, scoring).
                let training = noise.is_some();
                let mask = noise.and_then(|n| n.mask(x.elem_count(), lora.dropout));
                let adapter = (lora.a.as_tensor(), lora.b.as_tensor(), lora.scale);
                lora_linear(x, &self.w, adapter, mask, training)?
            }
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

#[derive(Clone, Debug)]
struct Norm {
    w: Tensor,
    b: Option<Tensor>,
    eps: f64,
}

impl Norm {
    /// RMS norm (Llama) without a bias, layer norm (GPT-2) with one.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.b {
            None => {
                let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
                x.broadcast_div(&(ms + self.eps)?.sqrt()?)?
            }
            Some(_) => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let centred = x.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                centred.broadcast_div(&(var + self.eps)?.sqrt()?)?
            }
        };
        let x = x.broadcast_mul(&self.w)?;
        Ok(match &self.b {
            Some(b) => x.broadcast_add(b)?,
            None => x,
        })
    }
}

#[derive(Clone, Debug)]
enum Attention {
    /// Separate projections (Llama).
    Split { q: Linear, k: Linear, v: Linear },
    /// One fused projection (GPT-2's `c_attn`).
    Fused(Linear),
}

#[derive(Clone, Debug)]
enum Mlp {
    /// `down(silu(gate(x)) * up(x))`.
    Gated { gate: Linear, up: Linear, down: Linear },
    /// `proj(gelu(fc(x)))`.
    Gelu { fc: Linear, proj: Linear },
}

#[derive(Clone, Debug)]
struct Block {
    norm1: Norm,
    attention: Attention,
    out: Linear,
    norm2: Norm,
    mlp: Mlp,
}

/// The keys and values of every block for the positions seen so far.
#[derive(Clone, Debug, Default)]
pub struct Cache {
    kv: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl Cache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A pretrained causal language model, with or without adapters.
#[derive(Clone, Debug)]
pub struct Model {
    config: Config,
    embed: Tensor,
    /// GPT-2's learned positions.
    positions: Option<Tensor>,
    blocks: Vec<Block>,
    norm: Norm,
    head: Tensor,
    /// Rotary tables (Llama): cosines and sines, positions by head width.
    rope: Option<(Tensor, Tensor)>,
    device: Device,
}

/// A model folder's weights, taken one by one by name.
struct Weights {
    dir: std::path::PathBuf,
    tensors: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    fn load(dir: &Path, device: &Device) -> Result<Weights> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::file_because(dir, "cannot read the model folder", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::file(dir, "no *.safetensors weights in the model folder"));
        }
        let mut tensors = HashMap::new();
        for f in &files {
            let loaded = candle_core::safetensors::load(f, &Device::Cpu)
                .map_err(|e| Error::file_because(f, "not a readable safetensors file", e))?;
            tensors.extend(loaded);
        }
        Ok(Weights { dir: dir.to_path_buf(), tensors, device: device.clone() })
    }

    fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name` as f32 on the device, of shape `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.remove(name).ok_or_else(|| {
            Error::file(&self.dir, format!("the weights have no tensor {name:?}"))
        })?;
        if t.dims() != shape {
            return Err(Error::file(
                &self.dir,
                format!("tensor {name:?} is {:?}, the config says {shape:?}", t.dims()),
            ));
        }
        Ok(t.to_dtype(DType::F32)?.to_device(&self.device)?)
    }

    fn linear(
        &mut self,
        name: &str,
        path: &str,
        inp: usize,
        out: usize,
        bias: bool,
    ) -> Result<Linear> {
        let w = self.take(&format!("{name}.weight"), &[out, inp])?;
        let bias = if bias { Some(self.take(&format!("{name}.bias"), &[out])?) } else { None };
        Ok(Linear { path: path.to_string(), w, bias, lora: None })
    }

    /// GPT-2's `Conv1D`: its weight is stored input by output.
    fn conv1d(&mut self, name: &str, path: &str, inp: usize, out: usize) -> Result<Linear> {
        let w = self.take(&format!("{name}.weight"), &[inp, out])?.t()?.contiguous()?;
        let bias = Some(self.take(&format!("{name}.bias"), &[out])?);
        Ok(Linear { path: path.to_string(), w, bias, lora: None })
    }

    fn norm(&mut self, name: &str, width: usize, eps: f64, bias: bool) -> Result<Norm> {
        let w = self.take(&format!("{name}.weight"), &[width])?;
        let b = if bias { Some(self.take(&format!("{name}.bias"), &[width])?) } else { None };
        Ok(Norm { w, b, eps })
    }
}

/// Rotary tables as transformers computes them (in f32), with Llama 3's scaling.
fn rope_tables(c: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = c.head_dim / 2;
    let mut inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / (c.rope_theta as f32).powf((2 * i) as f32 / c.head_dim as f32))
        .collect();
    if let Some(s) = c.rope_scaling {
        let old = s.original_max_position_embeddings as f32;
        let (low, high) = (old / s.low_freq_factor as f32, old / s.high_freq_factor as f32);
        let factor = s.factor as f32;
        for f in &mut inv {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            if wavelen > low {
                *f /= factor;
            } else if wavelen >= high {
                let smooth = (old / wavelen - s.low_freq_factor as f32)
                    / (s.high_freq_factor - s.low_freq_factor) as f32;
                *f = (1.0 - smooth) * *f / factor + smooth * *f;
            }
        }
    }
    let n = c.max_positions;
    let mut cos = Vec::with_capacity(n * c.head_dim);
    let mut sin = Vec::with_capacity(n * c.head_dim);
    for p in 0..n {
        for _ in 0..2 {
            for f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, c.head_dim), device)?,
        Tensor::from_vec(sin, (n, c.head_dim), device)?,
    ))
}

/// `x * cos + rotate_half(x) * sin` over the last dimension, for positions `start..`.
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let (a, b) = (x.narrow(D::Minus1, 0, d / 2)?, x.narrow(D::Minus1, d / 2, d / 2)?);
    let rotated = Tensor::cat(&[&b.neg()?, &a], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// Softmax over the last dimension from basic operations (so that it differentiates).
fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

impl Model {
    /// Loads a model from a Hugging Face folder (`config.json` and `*.safetensors`), its
    /// weights as f32 on `device`. Nothing is downloaded.
    pub fn load(dir: &Path, device: &Device) -> Result<Model> {
        let config = Config::load(dir)?;
        let mut w = Weights::load(dir, device)?;
        Model::build(config, &mut w)
    }

    fn build(c: Config, w: &mut Weights) -> Result<Model> {
        let (h, v, i) = (c.hidden, c.vocab, c.intermediate);
        let (q_out, kv_out) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let mut blocks = Vec::with_capacity(c.layers);
        let model = match c.arch {
            Arch::Llama => {
                let embed = w.take("model.embed_tokens.weight", &[v, h])?;
                for l in 0..c.layers {
                    let p = format!("model.layers.{l}");
                    let lin = |w: &mut Weights, name: &str, inp, out, bias| {
                        let path = format!("{p}.{name}");
                        w.linear(&path, &path, inp, out, bias)
                    };
                    blocks.push(Block {
                        norm1: w.norm(&format!("{p}.input_layernorm"), h, c.eps, false)?,
                        attention: Attention::Split {
                            q: lin(w, "self_attn.q_proj", h, q_out, c.qkv_bias)?,
                            k: lin(w, "self_attn.k_proj", h, kv_out, c.qkv_bias)?,
                            v: lin(w, "self_attn.v_proj", h, kv_out, c.qkv_bias)?,
                        },
                        out: lin(w, "self_attn.o_proj", q_out, h, c.o_bias)?,
                        norm2: w.norm(&format!("{p}.post_attention_layernorm"), h, c.eps, false)?,
                        mlp: Mlp::Gated {
                            gate: lin(w, "mlp.gate_proj", h, i, c.mlp_bias)?,
                            up: lin(w, "mlp.up_proj", h, i, c.mlp_bias)?,
                            down: lin(w, "mlp.down_proj", i, h, c.mlp_bias)?,
                        },
                    });
                }
                let norm = w.norm("model.norm", h, c.eps, false)?;
                let head = if c.tie_embeddings {
                    embed.clone()
                } else {
                    w.take("lm_head.weight", &[v, h])?
                };
                let rope = Some(rope_tables(&c, &w.device)?);
                Model {
                    embed,
                    positions: None,
                    blocks,
                    norm,
                    head,
                    rope,
                    device: w.device.clone(),
                    config: c,
                }
            }
            Arch::Gpt2 => {
                // transformers writes `transformer.`; the original GPT-2 weights have no prefix.
                let pre = if w.has("transformer.wte.weight") { "transformer." } else { "" };
                let embed = w.take(&format!("{pre}wte.weight"), &[v, h])?;
                let positions = w.take(&format!("{pre}wpe.weight"), &[c.max_positions, h])?;
                for l in 0..c.layers {
                    let (p, path) = (format!("{pre}h.{l}"), format!("transformer.h.{l}"));
                    let conv = |w: &mut Weights, name: &str, inp, out| {
                        w.conv1d(&format!("{p}.{name}"), &format!("{path}.{name}"), inp, out)
                    };
                    blocks.push(Block {
                        norm1: w.norm(&format!("{p}.ln_1"), h, c.eps, true)?,
                        attention: Attention::Fused(conv(w, "attn.c_attn", h, 3 * h)?),
                        out: conv(w, "attn.c_proj", h, h)?,
                        norm2: w.norm(&format!("{p}.ln_2"), h, c.eps, true)?,
                        mlp: Mlp::Gelu {
                            fc: conv(w, "mlp.c_fc", h, i)?,
                            proj: conv(w, "mlp.c_proj", i, h)?,
                        },
                    });
                }
                let norm = w.norm(&format!("{pre}ln_f"), h, c.eps, true)?;
                let head = embed.clone();
                Model {
                    embed,
                    positions: Some(positions),
                    blocks,
                    norm,
                    head,
                    rope: None,
                    device: w.device.clone(),
                    config: c,
                }
            }
        };
        Ok(model)
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every linear layer, in order.
    pub fn linears(&self) -> Vec<&Linear> {
        let mut out = Vec::new();
        for b in &self.blocks {
            match &b.attention {
                Attention::Split { q, k, v } => out.extend([q, k, v]),
                Attention::Fused(qkv) => out.push(qkv),
            }
            out.push(&b.out);
            match &b.mlp {
                Mlp::Gated { gate, up, down } => out.extend([gate, up, down]),
                Mlp::Gelu { fc, proj } => out.extend([fc, proj]),
            }
        }
        out
    }

    /// Every linear layer, in order, to change.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = Vec::new();
        for b in &mut self.blocks {
            match &mut b.attention {
                Attention::Split { q, k, v } => out.extend([q, k, v]),
                Attention::Fused(qkv) => out.push(qkv),
            }
            out.push(&mut b.out);
            match &mut b.mlp {
                Mlp::Gated { gate, up, down } => out.extend([gate, up, down]),
                Mlp::Gelu { fc, proj } => out.extend([fc, proj]),
            }
        }
        out
    }

    /// The hidden states after the final norm for `ids` (batch by positions), continuing
    /// `cache` if given (and extending it). With `noise`, for training: the adapters' dropout
    /// masks come from it, and each adapted layer keeps only what its backward pass needs.
    pub fn hidden(
        &self,
        ids: &Tensor,
        cache: Option<&mut Cache>,
        mut noise: Option<&mut Noise>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        let start = cache.as_ref().map_or(0, |c| c.len);
        if start + t > c.max_positions {
            return Err(Error::invalid(
                "input",
                format!("{} positions, beyond the model's {}", start + t, c.max_positions),
            ));
        }
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, c.hidden))?;
        if let Some(p) = &self.positions {
            x = x.broadcast_add(&p.narrow(0, start, t)?)?;
        }
        let rope = match &self.rope {
            Some((cos, sin)) => Some((cos.narrow(0, start, t)?, sin.narrow(0, start, t)?)),
            None => None,
        };
        let s = start + t;
        // Position i may see j <= start + i (a whole sequence masks inside its attention).
        let mask = if t > 1 && cache.is_some() {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..s).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (t, s), &self.device)?)
        } else {
            None
        };
        let mut cache = cache;
        let (hd, nh, nkv) = (c.head_dim, c.heads, c.kv_heads);
        for (l, block) in self.blocks.iter().enumerate() {
            let h = block.norm1.forward(&x)?;
            let (q, k, v) = match &block.attention {
                Attention::Split { q, k, v } => (
                    q.forward(&h, noise.as_deref_mut())?,
                    k.forward(&h, noise.as_deref_mut())?,
                    v.forward(&h, noise.as_deref_mut())?,
                ),
                Attention::Fused(qkv) => {
                    let all = qkv.forward(&h, noise.as_deref_mut())?;
                    let w = c.hidden;
                    (all.narrow(2, 0, w)?, all.narrow(2, w, w)?, all.narrow(2, 2 * w, w)?)
                }
            };
            let heads = |x: Tensor, n: usize| -> Result<Tensor> {
                Ok(x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
            };
            let (mut q, mut k, mut v) = (heads(q, nh)?, heads(k, nkv)?, heads(v, nkv)?);
            if let Some((cos, sin)) = &rope {
                q = rotate(&q, cos, sin)?;
                k = rotate(&k, cos, sin)?;
            }
            let y = match cache.as_deref_mut() {
                // A whole sequence (training, scoring): the scores are not kept.
                None => causal_attention(&q, &k, &v)?,
                Some(cache) => {
                    if let Some((pk, pv)) = cache.kv.get(l) {
                        k = Tensor::cat(&[pk, &k], 2)?;
                        v = Tensor::cat(&[pv, &v], 2)?;
                    }
                    if cache.kv.len() > l {
                        cache.kv[l] = (k.clone(), v.clone());
                    } else {
                        cache.kv.push((k.clone(), v.clone()));
                    }
                    let (k, v) = if nkv == nh {
                        (k, v)
                    } else {
                        let rep = nh / nkv;
                        let expand = |x: &Tensor| -> Result<Tensor> {
                            Ok(x.unsqueeze(2)?
                                .expand((b, nkv, rep, s, hd))?
                                .reshape((b, nh, s, hd))?)
                        };
                        (expand(&k)?, expand(&v)?)
                    };
                    let q = (q * (1.0 / (hd as f64).sqrt()))?;
                    let mut att = q.matmul(&k.t()?.contiguous()?)?;
                    if let Some(m) = &mask {
                        att = att.broadcast_add(m)?;
                    }
                    softmax(&att)?.matmul(&v)?.transpose(1, 2)?.reshape((b, t, nh * hd))?
                }
            };
            x = (x + block.out.forward(&y, noise.as_deref_mut())?)?;
            let h = block.norm2.forward(&x)?;
            let m = match &block.mlp {
                Mlp::Gated { gate, up, down } => {
                    let silu = gate.forward(&h, noise.as_deref_mut())?.silu()?;
                    let u = up.forward(&h, noise.as_deref_mut())?;
                    down.forward(&(silu * u)?, noise.as_deref_mut())?
                }
                Mlp::Gelu { fc, proj } => proj.forward(
                    &fc.forward(&h, noise.as_deref_mut())?.gelu()?,
                    noise.as_deref_mut(),
                )?,
            };
            x = (x + m)?;
        }
        if let Some(cache) = cache {
            cache.len = s;
        }
        self.norm.forward(&x)
    }

    /// Logits of hidden states (any leading dimensions) over the vocabulary.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        frozen_linear(hidden, &self.head)
    }

    /// Logits for every position of `ids` (batch by positions), without a cache.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.logits(&self.hidden(ids, None, None)?)
    }

    /// The logits of the last position after feeding `ids` (one sequence) into `cache`.
    pub fn step(&self, ids: &[u32], cache: &mut Cache) -> Result<Tensor> {
        let t = ids.len();
        let input = Tensor::from_vec(ids.to_vec(), (1, t), &self.device)?;
        let h = self.hidden(&input, Some(cache), None)?;
        self.logits(&h.i((0, t - 1))?)
    }
}
