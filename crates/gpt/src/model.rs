//! The transformer: a decoder-only, pre-norm GPT over the drum tokens, with learned positions
//! in the sequence, in the bar and in the phrase.

use candle_core::{DType, Device, Tensor, Var};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::SplitMix64;

use crate::config::{Config, SLOTS};
use crate::error::{Error, Result};
use crate::ops;
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

/// Layer normalisation with a gain and a bias.
#[derive(Clone, Debug)]
pub(crate) struct Norm {
    pub(crate) gain: Var,
    pub(crate) bias: Var,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, self.gain.as_tensor(), self.bias.as_tensor())
    }
}

/// A linear layer `x W + b`, `W` stored as `[in, out]`.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    pub(crate) w: Var,
    pub(crate) b: Var,
}

impl Dense {
    /// `x` is `[batch, time, in]`: one matrix product over every token at once.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::add_bias(&matmul2(x, self.w.as_tensor())?, self.b.as_tensor())
    }
}

/// `[batch, time, in] x [in, out]` as one `[batch * time, in] x [in, out]` product.
fn matmul2(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, i) = x.dims3()?;
    let o = w.dim(1)?;
    Ok(x.reshape((b * t, i))?.matmul(w)?.reshape((b, t, o))?)
}

#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub(crate) ln1: Norm,
    pub(crate) qkv: Dense,
    pub(crate) proj: Dense,
    pub(crate) ln2: Norm,
    pub(crate) fc: Dense,
    pub(crate) out: Dense,
}

/// The keys and values of every block for the tokens seen so far: what sampling reuses
/// instead of running the whole prefix again for each new token.
#[derive(Clone, Debug, Default)]
pub struct Cache {
    kv: Vec<Option<(Tensor, Tensor)>>,
    /// Tokens cached.
    pub len: usize,
}

/// Dropout for one training step: which of the embeddings' and the blocks' outputs are
/// zeroed, drawn from a seed so that a step can be made again (and a resumed run is the same).
///
/// A mask covers the sum of the embeddings, and each block's attention and feed-forward
/// outputs before they join the residual stream. What is kept is scaled by `1 / (1 - rate)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// The share of activations zeroed, in `[0, 1)`.
    pub rate: f32,
    /// The seed of the masks.
    pub seed: u64,
}

impl Dropout {
    /// No dropout.
    pub const NONE: Dropout = Dropout { rate: 0.0, seed: 0 };

    /// The masks of a `[b, t, d]` stream through `layers` blocks: the embeddings' first, then
    /// each block's attention and feed-forward output; none when the rate is 0.
    pub(crate) fn masks(
        &self,
        (b, t, d): (usize, usize, usize),
        layers: usize,
        device: &Device,
    ) -> Result<Option<Vec<Tensor>>> {
        if self.rate == 0.0 {
            return Ok(None);
        }
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                "dropout",
                format!("{} (expected 0 to below 1)", self.rate),
            ));
        }
        let mut rng = SplitMix64::seed_from_u64(self.seed);
        // Kept when a uniform 32-bit number is at or above the rate's share of 2^32.
        let cut = (f64::from(self.rate) * 4_294_967_296.0) as u64;
        let keep = 1.0 / (1.0 - self.rate);
        (0..1 + 2 * layers)
            .map(|_| {
                let mut values = Vec::with_capacity(b * t * d);
                while values.len() < b * t * d {
                    let r = rng.next_u64();
                    for half in [r & 0xffff_ffff, r >> 32] {
                        values.push(if half >= cut { keep } else { 0.0 });
                    }
                }
                values.truncate(b * t * d);
                Ok(Tensor::from_vec(values, (b, t, d), device)?)
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

/// `y` through a dropout mask (see [`Dropout::masks`]), or as it is without one.
pub(crate) fn masked(y: Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    Ok(match mask {
        Some(m) => y.mul(m)?,
        None => y,
    })
}

/// The drum GPT.
#[derive(Clone, Debug)]
pub struct Gpt {
    config: Config,
    device: Device,
    /// Every parameter, by name, in a fixed order.
    vars: Vec<(String, Var)>,
    pub(crate) tok: Var,
    pub(crate) pos: Var,
    pub(crate) slot: Var,
    pub(crate) phrase: [Var; 3],
    pub(crate) blocks: Vec<Block>,
    pub(crate) ln_f: Norm,
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
        self.forward_dropped(batch, None)
    }

    /// [`forward`](Gpt::forward) with dropout `masks` (see [`Dropout::masks`]).
    fn forward_dropped(&self, batch: &Batch, masks: Option<&[Tensor]>) -> Result<Tensor> {
        let mut x = self.embed(batch, 0)?;
        x = masked(x, masks.map(|m| &m[0]))?;
        for (i, block) in self.blocks.iter().enumerate() {
            let pair = masks.map(|m| (&m[1 + 2 * i], &m[2 + 2 * i]));
            x = self.block(block, &x, None, pair)?;
        }
        self.head(&x)
    }

    /// Logits after the tokens of `batch`, which follow the `cache.len` tokens already in
    /// `cache`; the cache takes them in.
    pub fn forward_cached(&self, batch: &Batch, cache: &mut Cache) -> Result<Tensor> {
        let mut x = self.embed(batch, cache.len)?;
        let t = x.dim(1)?;
        if cache.kv.len() < self.blocks.len() {
            cache.kv.resize(self.blocks.len(), None);
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = self.block(block, &x, Some((&mut cache.kv[i], cache.len)), None)?;
        }
        cache.len += t;
        self.head(&x)
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
        cache: Option<(&mut Option<(Tensor, Tensor)>, usize)>,
        masks: Option<(&Tensor, &Tensor)>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let h = self.config.heads;
        let hd = d / h;
        let qkv = block.qkv.forward(&block.ln1.forward(x)?)?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv.narrow(2, i * d, d)?.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
        if let Some((cache, at)) = cache {
            // Keys and values go into buffers made once for the whole context: growing them
            // by concatenation each step allocated the sum of every length (170 MB a sample
            // over 14 bars of the small preset), where these hold 1 MB.
            let fits = |kv: &(Tensor, Tensor)| {
                kv.0.dims4().is_ok_and(|(cb, _, cap, _)| cb == b && cap >= at + t)
            };
            let (kb, vb) = match cache.as_ref() {
                Some(kv) if fits(kv) => kv.clone(),
                old => {
                    let cap = self.config.context.max(at + t);
                    let kb = Tensor::zeros((b, h, cap, hd), k.dtype(), k.device())?;
                    let vb = Tensor::zeros((b, h, cap, hd), v.dtype(), v.device())?;
                    if let Some((pk, pv)) = old.filter(|_| at > 0) {
                        kb.slice_set(&pk.narrow(2, 0, at)?.contiguous()?, 2, 0)?;
                        vb.slice_set(&pv.narrow(2, 0, at)?.contiguous()?, 2, 0)?;
                    }
                    *cache = Some((kb.clone(), vb.clone()));
                    (kb, vb)
                }
            };
            kb.slice_set(&k, 2, at)?;
            vb.slice_set(&v, 2, at)?;
            k = kb.narrow(2, 0, at + t)?;
            v = vb.narrow(2, 0, at + t)?;
        }
        // With a cache, the new tokens see every cached one and each other causally.
        let attn = ops::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (hd as f64).sqrt())?;
        let y = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let x = (x + masked(block.proj.forward(&y)?, masks.map(|m| m.0))?)?;
        let hidden = block.fc.forward(&block.ln2.forward(&x)?)?;
        let hidden = ops::gelu(&hidden)?;
        Ok((x + masked(block.out.forward(&hidden)?, masks.map(|m| m.1))?)?)
    }

    /// The mean cross-entropy of predicting each token of `batch` from those before it,
    /// padding (token 0) not counted; and the number of tokens counted.
    pub fn loss(&self, batch: &Batch) -> Result<(Tensor, usize)> {
        self.loss_dropped(batch, Dropout::NONE)
    }

    /// [`loss`](Gpt::loss) with `dropout`, as training computes it.
    pub fn loss_dropped(&self, batch: &Batch, dropout: Dropout) -> Result<(Tensor, usize)> {
        let (b, t) = batch.ids.dims2()?;
        let shape = (b, t, self.config.d_model);
        let masks = dropout.masks(shape, self.blocks.len(), &self.device)?;
        let logits = self.forward_dropped(batch, masks.as_deref())?.narrow(1, 0, t - 1)?;
        let targets = batch.ids.narrow(1, 1, t - 1)?.flatten_all()?;
        let count = targets.ne(0u32)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize;
        let nll = ops::cross_entropy(&logits.flatten_to(1)?, &targets)?;
        Ok(((nll.sum_all()? / (count.max(1) as f64))?, count))
    }
}
