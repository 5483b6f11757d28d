//! The transformer: a decoder-only, pre-norm GPT over the drum tokens, with learned positions
//! in the sequence, in the bar and in the phrase.

use candle_core::{D, DType, Device, Tensor, Var};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

use crate::config::{Config, SLOTS};
use crate::error::{Error, Result};
use crate::tokens::Encoded;

/// A batch of token windows and where each token sits, on the model's device.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Token ids, `[batch, time]`.
    pub ids: Tensor,
    /// Step in the bar, `[batch, time]`.
    pub slot: Tensor,
    /// Bar in the 4-, 8- and 16-bar phrase, each `[batch, time]`.
    pub phrase: [Tensor; 3],
}

impl Batch {
    /// Windows of `len` tokens starting at `starts` in `seq` (padded with token 0 past its
    /// end). Bars keep the numbers `seq` gives them, so phrases count from each piece's start.
    pub fn windows(seq: &Encoded, starts: &[usize], len: usize, device: &Device) -> Result<Batch> {
        let mut ids = Vec::with_capacity(starts.len() * len);
        let mut slot = Vec::with_capacity(starts.len() * len);
        let mut bar = Vec::with_capacity(starts.len() * len);
        for &s in starts {
            for i in s..s + len {
                ids.push(seq.ids.get(i).copied().unwrap_or(0));
                slot.push(u32::from(seq.slot.get(i).copied().unwrap_or(0)).min(SLOTS as u32 - 1));
                bar.push(u32::from(seq.bar.get(i).copied().unwrap_or(0)));
            }
        }
        let shape = (starts.len(), len);
        let phrase = |n: u32| -> Result<Tensor> {
            Ok(Tensor::from_vec(bar.iter().map(|b| b % n).collect::<Vec<u32>>(), shape, device)?)
        };
        Ok(Batch {
            phrase: [phrase(4)?, phrase(8)?, phrase(16)?],
            ids: Tensor::from_vec(ids, shape, device)?,
            slot: Tensor::from_vec(slot, shape, device)?,
        })
    }
}

/// Layer normalisation with a gain and a bias, written with differentiable primitives.
#[derive(Clone, Debug)]
struct Norm {
    gain: Var,
    bias: Var,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_sub(&mean)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let x = x.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        Ok(x.broadcast_mul(self.gain.as_tensor())?.broadcast_add(self.bias.as_tensor())?)
    }
}

/// A linear layer `x W + b`, `W` stored as `[in, out]`.
#[derive(Clone, Debug)]
struct Dense {
    w: Var,
    b: Var,
}

impl Dense {
    /// `x` is `[batch, time, in]`: one matrix product over every token at once.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(matmul2(x, self.w.as_tensor())?.broadcast_add(self.b.as_tensor())?)
    }
}

/// `[batch, time, in] x [in, out]` as one `[batch * time, in] x [in, out]` product.
fn matmul2(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, i) = x.dims3()?;
    let o = w.dim(1)?;
    Ok(x.reshape((b * t, i))?.matmul(w)?.reshape((b, t, o))?)
}

#[derive(Clone, Debug)]
struct Block {
    ln1: Norm,
    qkv: Dense,
    proj: Dense,
    ln2: Norm,
    fc: Dense,
    out: Dense,
}

/// The keys and values of every block for the tokens seen so far: what sampling reuses
/// instead of running the whole prefix again for each new token.
#[derive(Clone, Debug, Default)]
pub struct Cache {
    kv: Vec<Option<(Tensor, Tensor)>>,
    /// Tokens cached.
    pub len: usize,
}

/// The drum GPT.
#[derive(Clone, Debug)]
pub struct Gpt {
    config: Config,
    device: Device,
    /// Every parameter, by name, in a fixed order.
    vars: Vec<(String, Var)>,
    tok: Var,
    pos: Var,
    slot: Var,
    phrase: [Var; 3],
    blocks: Vec<Block>,
    ln_f: Norm,
}

/// Normal numbers from a seeded generator (Box-Muller), so that initialisation is the same on
/// every machine.
fn normal(rng: &mut SplitMix64, n: usize, std: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32 * std);
        out.push((r * t.sin()) as f32 * std);
    }
    out.truncate(n);
    out
}

impl Gpt {
    /// A model of shape `config` with weights drawn from `seed` (GPT-2's initialisation:
    /// normal with a standard deviation of 0.02, output projections scaled down by depth).
    pub fn new(config: &Config, seed: u64, device: &Device) -> Result<Gpt> {
        config.check()?;
        let mut rng = SplitMix64::seed_from_u64(seed);
        let d = config.d_model;
        let mut vars = Vec::new();
        let mut var = |name: String, shape: &[usize], std: Option<f32>, fill: f32| -> Result<Var> {
            let n = shape.iter().product();
            let data = match std {
                Some(s) => normal(&mut rng, n, s),
                None => vec![fill; n],
            };
            let v = Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?;
            vars.push((name, v.clone()));
            Ok(v)
        };
        let tok = var("tok".into(), &[config.vocab, d], Some(0.02), 0.0)?;
        let pos = var("pos".into(), &[config.context, d], Some(0.01), 0.0)?;
        let slot = var("slot".into(), &[SLOTS, d], Some(0.01), 0.0)?;
        let phrase = [
            var("phrase4".into(), &[4, d], Some(0.01), 0.0)?,
            var("phrase8".into(), &[8, d], Some(0.01), 0.0)?,
            var("phrase16".into(), &[16, d], Some(0.01), 0.0)?,
        ];
        let deep = 0.02 / (2.0 * config.layers as f32).sqrt();
        let mut blocks = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let mut norm = |name: &str| -> Result<Norm> {
                Ok(Norm {
                    gain: var(format!("b{l}.{name}.gain"), &[d], None, 1.0)?,
                    bias: var(format!("b{l}.{name}.bias"), &[d], None, 0.0)?,
                })
            };
            let (ln1, ln2) = (norm("ln1")?, norm("ln2")?);
            let mut dense = |name: &str, i: usize, o: usize, std: f32| -> Result<Dense> {
                Ok(Dense {
                    w: var(format!("b{l}.{name}.w"), &[i, o], Some(std), 0.0)?,
                    b: var(format!("b{l}.{name}.b"), &[o], None, 0.0)?,
                })
            };
            blocks.push(Block {
                ln1,
                qkv: dense("qkv", d, 3 * d, 0.02)?,
                proj: dense("proj", d, d, deep)?,
                ln2,
                fc: dense("fc", d, config.d_ff, 0.02)?,
                out: dense("out", config.d_ff, d, deep)?,
            });
        }
        let ln_f = Norm {
            gain: var("ln_f.gain".into(), &[d], None, 1.0)?,
            bias: var("ln_f.bias".into(), &[d], None, 0.0)?,
        };
        Ok(Gpt {
            config: config.clone(),
            device: device.clone(),
            vars,
            tok,
            pos,
            slot,
            phrase,
            blocks,
            ln_f,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter by name, in a fixed order.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Sets every parameter from `tensors` by name; a missing or misshapen one is an error.
    pub fn load(&self, tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.vars {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::invalid("weights", format!("no tensor {name:?}")))?;
            if t.dims() != var.dims() {
                return Err(Error::invalid(
                    "weights",
                    format!("{name:?} is {:?}, the config wants {:?}", t.dims(), var.dims()),
                ));
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }

    /// The input of the first block: token, sequence position, bar position and phrase
    /// position embeddings, summed. `offset` is the sequence position of the first token.
    fn embed(&self, batch: &Batch, offset: usize) -> Result<Tensor> {
        let (b, t) = batch.ids.dims2()?;
        if offset + t > self.config.context {
            return Err(Error::invalid(
                "window",
                format!(
                    "{} tokens are more than the context of {}",
                    offset + t,
                    self.config.context
                ),
            ));
        }
        let look = |table: &Var, ids: &Tensor| -> Result<Tensor> {
            Ok(table.as_tensor().embedding(&ids.flatten_all()?)?.reshape((
                b,
                t,
                self.config.d_model,
            ))?)
        };
        let mut x = look(&self.tok, &batch.ids)?;
        let pos = self.pos.as_tensor().narrow(0, offset, t)?;
        x = x.broadcast_add(&pos)?;
        x = (x + look(&self.slot, &batch.slot)?)?;
        for (table, place) in self.phrase.iter().zip(&batch.phrase) {
            x = (x + look(table, place)?)?;
        }
        Ok(x)
    }

    /// Logits of the next token after each token of the batch, `[batch, time, vocab]`.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        let mut x = self.embed(batch, 0)?;
        let t = x.dim(1)?;
        let mask = self.mask(t)?;
        for block in &self.blocks {
            x = self.block(block, &x, mask.as_ref(), None)?;
        }
        self.head(&x)
    }

    /// Logits after the tokens of `batch`, which follow the `cache.len` tokens already in
    /// `cache`; the cache takes them in.
    pub fn forward_cached(&self, batch: &Batch, cache: &mut Cache) -> Result<Tensor> {
        let mut x = self.embed(batch, cache.len)?;
        let t = x.dim(1)?;
        let mask = if t > 1 { self.mask(t)? } else { None };
        if cache.kv.len() < self.blocks.len() {
            cache.kv.resize(self.blocks.len(), None);
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = self.block(block, &x, mask.as_ref(), Some(&mut cache.kv[i]))?;
        }
        cache.len += t;
        self.head(&x)
    }

    /// The causal mask of `t` new tokens, where the attention needs one: the CPU's fused
    /// causal softmax applies the rule itself.
    fn mask(&self, t: usize) -> Result<Option<Tensor>> {
        if self.device.is_cpu() { Ok(None) } else { Ok(Some(causal_mask(t, &self.device)?)) }
    }

    fn head(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.ln_f.forward(x)?;
        // The output layer shares the token embedding.
        matmul2(&x, &self.tok.as_tensor().t()?)
    }

    fn block(
        &self,
        block: &Block,
        x: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let h = self.config.heads;
        let hd = d / h;
        let qkv = block.qkv.forward(&block.ln1.forward(x)?)?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv.narrow(2, i * d, d)?.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some(cache) = cache {
            if let Some((pk, pv)) = cache.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *cache = Some((k.clone(), v.clone()));
        }
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let attn = if self.device.is_cpu() {
            // One new token alone sees every cached key, which the fused op's rule also gives.
            scores.contiguous()?.apply_op1(CausalSoftmax)?
        } else {
            let scores = match mask {
                // With a cache, the new tokens see every cached one and each other causally.
                Some(m) => {
                    let past = k.dim(2)? - t;
                    let m = if past > 0 {
                        Tensor::cat(&[&Tensor::zeros((t, past), DType::F32, &self.device)?, m], 1)?
                    } else {
                        m.clone()
                    };
                    scores.broadcast_add(&m)?
                }
                None => scores,
            };
            candle_nn::ops::softmax(&scores, D::Minus1)?
        };
        let y = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let x = (x + block.proj.forward(&y)?)?;
        let hidden = block.fc.forward(&block.ln2.forward(&x)?)?.gelu()?;
        Ok((x + block.out.forward(&hidden)?)?)
    }

    /// The mean cross-entropy of predicting each token of `batch` from those before it,
    /// padding (token 0) not counted; and the number of tokens counted.
    pub fn loss(&self, batch: &Batch) -> Result<(Tensor, usize)> {
        let t = batch.ids.dim(1)?;
        let logits = self.forward(batch)?.narrow(1, 0, t - 1)?;
        let targets = batch.ids.narrow(1, 1, t - 1)?.contiguous()?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = logp.gather(&targets.unsqueeze(2)?, 2)?.squeeze(2)?;
        let weight = targets.ne(0u32)?.to_dtype(DType::F32)?;
        let count = weight.sum_all()?.to_scalar::<f32>()? as usize;
        let total = (picked * &weight)?.sum_all()?;
        let loss = (total.neg()? / (count.max(1) as f64))?;
        Ok((loss, count))
    }
}

/// Softmax over the last dimension of attention scores `[.., t, s]` under the causal mask in
/// one pass (query `i` sees keys `0..=past + i`, `past = s - t`), with its gradient: on the
/// CPU it replaces the six tensor operations (mask, max, subtract, exp, sum, divide) of the
/// composed softmax and their backward passes, which took most of a training step.
struct CausalSoftmax;

impl candle_core::CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let dims = layout.dims();
        let (t, s) = match dims {
            [.., t, s] => (*t, *s),
            _ => candle_core::bail!("causal softmax needs at least two dimensions, got {dims:?}"),
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("causal softmax needs contiguous scores");
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let past = s.saturating_sub(t);
        let mut out = vec![0f32; x.len()];
        for (row, (xr, yr)) in x.chunks_exact(s).zip(out.chunks_exact_mut(s)).enumerate() {
            let seen = (past + row % t + 1).min(s);
            let max = xr[..seen].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (y, &v) in yr[..seen].iter_mut().zip(&xr[..seen]) {
                *y = (v - max).exp();
                sum += *y;
            }
            let inv = 1.0 / sum;
            for y in &mut yr[..seen] {
                *y *= inv;
            }
        }
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // d softmax: y * (g - sum(g * y)); masked entries have y = 0 and get no gradient.
        let dot = (grad_res * res)?.sum_keepdim(D::Minus1)?;
        Ok(Some(grad_res.broadcast_sub(&dot)?.mul(res)?))
    }
}

/// `[t, t]`: 0 where a token may look (itself and before), minus infinity after.
fn causal_mask(t: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> =
        (0..t * t).map(|i| if i % t <= i / t { 0.0 } else { f32::NEG_INFINITY }).collect();
    Ok(Tensor::from_vec(data, (t, t), device)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{D, DType, Device, Tensor, Var};

    use super::{CausalSoftmax, causal_mask};

    /// The fused op gives what mask + softmax give, and the same gradient.
    #[test]
    fn the_fused_causal_softmax_is_the_composed_one() {
        let dev = Device::Cpu;
        let (t, s) = (4, 6);
        let data: Vec<f32> =
            (0..2 * 3 * t * s).map(|i| ((i * 37 % 23) as f32 - 11.0) / 5.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(data, (2, 3, t, s), &dev).unwrap()).unwrap();
        let w = Tensor::from_vec(
            (0..2 * 3 * t * s).map(|i| (i % 7) as f32).collect(),
            (2, 3, t, s),
            &dev,
        )
        .unwrap();
        let mask = Tensor::cat(
            &[
                &Tensor::zeros((t, s - t), DType::F32, &dev).unwrap(),
                &causal_mask(t, &dev).unwrap(),
            ],
            1,
        )
        .unwrap();
        let composed =
            candle_nn::ops::softmax(&x.as_tensor().broadcast_add(&mask).unwrap(), D::Minus1)
                .unwrap();
        let fused = x.as_tensor().apply_op1(CausalSoftmax).unwrap();
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        for (a, b) in flat(&composed).iter().zip(flat(&fused)) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        let ga = (composed * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (ga.get(x.as_tensor()).unwrap(), gb.get(x.as_tensor()).unwrap());
        for (a, b) in flat(ga).iter().zip(flat(gb)) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
    }
}
