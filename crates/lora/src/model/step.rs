//! A training step of a Llama model with adapters on the CPU, written out: the forward pass
//! keeps what each block's backward pass needs, and the backward pass gives the adapters'
//! gradients without candle's autograd.
//!
//! Why: candle's autograd adds every node's gradient into a fresh tensor of zeros, and runs
//! that and every other element-wise operation on a thread pool of its own, whose workers
//! spin after each operation beside gemm's rayon workers; on 2 cores the matrix products
//! then ran at two thirds of their speed. Here every element-wise pass runs on rayon, the
//! pool the matrix products use, and nothing is added into zeros.

use candle_core::{D, Tensor};
use fine_drums_train::kernels::{self, RowKernel};
use rayon::prelude::*;

use super::{Attention, Block, Linear, Mlp, Model, Noise, Norm};
use crate::config::Arch;
use crate::error::{Error, Result};
use crate::ops::{self, Mask, data, in_place, with_data};

/// Elements per rayon task in the element-wise passes.
const CHUNK: usize = 4096;

/// `a + b`, element by element.
fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = a.to_vec();
    out.par_chunks_mut(CHUNK).zip(b.par_chunks(CHUNK)).for_each(|(o, b)| {
        for (o, b) in o.iter_mut().zip(b) {
            *o += b;
        }
    });
    out
}

/// The root mean square of a row, with `eps` added to the mean.
#[inline(always)]
fn root_mean_square(x: &[f32], eps: f32) -> f32 {
    (kernels::sum_of(x, x, |v, _| v * v) / x.len() as f32 + eps).sqrt()
}

/// The rows of an RMS norm of `x` with gains `w`: `x / sqrt(mean(x^2) + eps) * w`.
struct Rms<'a> {
    x: &'a [f32],
    w: &'a [f32],
    eps: f32,
}

impl RowKernel for Rms<'_> {
    #[inline(always)]
    fn row(&self, i: usize, out: &mut [f32]) {
        let x = &self.x[i * out.len()..(i + 1) * out.len()];
        let s = root_mean_square(x, self.eps);
        for ((o, x), w) in out.iter_mut().zip(x).zip(self.w) {
            *o = x / s * w;
        }
    }
}

/// RMS norm over rows of `w.len()`: `x / sqrt(mean(x^2) + eps) * w`.
fn rms(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    kernels::each_row(&mut out, w.len(), &Rms { x, w, eps });
    out
}

/// The rows of the gradient of [`rms`] with respect to `x`, given the output's `g`.
struct RmsBack<'a> {
    x: &'a [f32],
    w: &'a [f32],
    g: &'a [f32],
    eps: f32,
}

impl RowKernel for RmsBack<'_> {
    #[inline(always)]
    fn row(&self, i: usize, dx: &mut [f32]) {
        let d = dx.len();
        let (x, g) = (&self.x[i * d..(i + 1) * d], &self.g[i * d..(i + 1) * d]);
        let s = root_mean_square(x, self.eps);
        let dot = kernels::sum_of3(x, g, self.w, |x, g, w| g * w * x) / (s * d as f32);
        for (((dx, x), g), w) in dx.iter_mut().zip(x).zip(g).zip(self.w) {
            *dx = (g * w - x / s * dot) / s;
        }
    }
}

/// The gradient of [`rms`] with respect to `x`, given the output's `g`.
fn rms_back(x: &[f32], w: &[f32], eps: f32, g: &[f32]) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    kernels::each_row(&mut dx, w.len(), &RmsBack { x, w, g, eps });
    dx
}

/// The rows of the cross-entropy's gradient, written over the logits: `scale` times the
/// softmax, less `scale` at the row's target.
struct CrossEntropyGrad<'a> {
    targets: &'a [u32],
    lse: &'a [f32],
    scale: f32,
}

impl RowKernel for CrossEntropyGrad<'_> {
    #[inline(always)]
    fn row(&self, i: usize, row: &mut [f32]) {
        let (lse, scale) = (self.lse[i], self.scale);
        row.iter_mut().for_each(|v| *v = kernels::exp(*v - lse) * scale);
        row[self.targets[i] as usize] -= scale;
    }
}

/// The rows of `out += scale * y` (`y` of `out`'s own shape).
struct AddScaled<'a> {
    y: &'a [f32],
    scale: f32,
}

impl RowKernel for AddScaled<'_> {
    #[inline(always)]
    fn row(&self, i: usize, out: &mut [f32]) {
        let y = &self.y[i * out.len()..(i + 1) * out.len()];
        out.iter_mut().zip(y).for_each(|(o, y)| *o += y * self.scale);
    }
}

/// What a linear layer's backward pass needs: its input and its dropout mask.
struct Kept {
    x: Tensor,
    mask: Option<Mask>,
}

/// A linear layer forward, `x W^T (+ bias) + s B A dropout(x)`, drawing its mask from `noise`
/// as [`Linear::forward`] does (the same masks in the same order).
fn linear(lin: &Linear, x: &Tensor, noise: &mut Noise) -> Result<(Tensor, Kept)> {
    let (m, k) = x.dims2()?;
    let mut y = x.matmul(&lin.w.t()?)?;
    let mut mask = None;
    if let Some(l) = &lin.lora {
        mask = noise.mask(m * k, l.dropout);
        let dropped = dropped(x, mask.as_ref())?;
        let up = dropped.matmul(&l.a.as_tensor().t()?)?.matmul(&l.b.as_tensor().t()?)?;
        let scale = l.scale as f32;
        with_data(&up, |up| in_place(&y, y.dim(1)?, AddScaled { y: up, scale }))??;
    }
    if let Some(b) = &lin.bias {
        y = y.broadcast_add(b)?;
    }
    Ok((y, Kept { x: x.clone(), mask }))
}

/// The adapter's input: `x` with the dropout mask, if any, applied.
fn dropped(x: &Tensor, mask: Option<&Mask>) -> Result<Tensor> {
    Ok(match mask {
        Some(mask) => Tensor::from_vec(with_data(x, |x| mask.apply(x))?, x.shape(), x.device())?,
        None => x.clone(),
    })
}

/// A linear layer backward: the input's gradient; with an adapter, `A`'s and `B`'s gradients
/// are pushed onto `grads` beside their variables.
fn linear_back(
    lin: &Linear,
    kept: &Kept,
    g: &Tensor,
    grads: &mut Vec<(Tensor, Tensor)>,
) -> Result<Vec<f32>> {
    let dx = g.matmul(&lin.w)?;
    let Some(l) = &lin.lora else { return Ok(data(&dx)?) };
    let (a, b, s) = (l.a.as_tensor(), l.b.as_tensor(), l.scale);
    // Made again from the input, not kept: q, k and v share one input but not their masks.
    let dropped = dropped(&kept.x, kept.mask.as_ref())?;
    let low = dropped.matmul(&a.t()?)?;
    let db = (g.t()?.matmul(&low)? * s)?;
    let dlow = (g.matmul(b)? * s)?;
    let da = dlow.t()?.matmul(&dropped)?;
    let through = dlow.matmul(a)?;
    let width = dx.dim(1)?;
    with_data(&through, |through| match &kept.mask {
        Some(mask) => in_place(&dx, width, AddScaled { y: &mask.apply(through), scale: 1.0 }),
        None => in_place(&dx, width, AddScaled { y: through, scale: 1.0 }),
    })??;
    grads.push((a.clone(), da));
    grads.push((b.clone(), db));
    Ok(data(&dx)?)
}

/// What one block's backward pass needs.
struct Saved {
    x: Vec<f32>,
    q: Kept,
    k: Kept,
    v: Kept,
    /// The attention's query, key and value heads, and its probabilities.
    heads: (Tensor, Tensor, Tensor, Tensor),
    o: Kept,
    mid: Vec<f32>,
    gate: Kept,
    up: Kept,
    gu: (Vec<f32>, Vec<f32>),
    down: Kept,
}

impl Block {
    /// A Llama block's projections: query, key, value, gate, up and down.
    fn llama(&self) -> Result<[&Linear; 6]> {
        match (&self.attention, &self.mlp) {
            (Attention::Split { q, k, v }, Mlp::Gated { gate, up, down }) => {
                Ok([q, k, v, gate, up, down])
            }
            _ => Err(Error::invalid("model", "the written-out step runs Llama blocks only")),
        }
    }
}

impl Model {
    /// Whether [`Model::loss_and_grads`] runs this model: a Llama in f32 on the CPU.
    pub(crate) fn writes_out_its_step(&self) -> bool {
        self.config.arch == Arch::Llama
            && self.device.is_cpu()
            && self.embed.dtype() == candle_core::DType::F32
            && self.blocks.iter().all(|b| b.llama().is_ok())
    }

    /// The mean loss of the tokens `targets` at the positions `rows` (of the batch by
    /// positions of `ids`), and the gradients of `share` times it, each beside its adapter's
    /// `A` or `B`. Dropout masks come from `noise` in the order the forward pass with autograd
    /// draws them.
    pub(crate) fn loss_and_grads(
        &self,
        ids: &Tensor,
        rows: &[u32],
        targets: &[u32],
        share: f64,
        noise: &mut Noise,
    ) -> Result<(f64, Vec<(Tensor, Tensor)>)> {
        // On a thread of rayon's pool, whose parallel loops (the kernels', the matrix
        // products') then start and end there, where from any other thread each would wait
        // for the pool to wake it.
        rayon::scope(|_| self.cpu_step(ids, rows, targets, share, noise))
    }

    /// [`loss_and_grads`](Model::loss_and_grads), on the calling thread.
    fn cpu_step(
        &self,
        ids: &Tensor,
        rows: &[u32],
        targets: &[u32],
        share: f64,
        noise: &mut Noise,
    ) -> Result<(f64, Vec<(Tensor, Tensor)>)> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        if t > c.max_positions {
            return Err(Error::invalid(
                "input",
                format!("{t} positions, beyond the model's {}", c.max_positions),
            ));
        }
        if rows.len() != targets.len()
            || rows.iter().any(|&r| r as usize >= b * t)
            || targets.iter().any(|&id| id as usize >= c.vocab)
        {
            return Err(Error::invalid(
                "training targets",
                format!(
                    "{} rows and {} targets for {b} by {t} positions and {} tokens",
                    rows.len(),
                    targets.len(),
                    c.vocab
                ),
            ));
        }
        let (h, hd, nh, nkv) = (c.hidden, c.head_dim, c.heads, c.kv_heads);
        let m = b * t;
        let eps = c.eps as f32;
        let norm_w = |n: &Norm| data(&n.w);
        let mut x = data(&self.embed.index_select(&ids.flatten_all()?, 0)?)?;
        let rope = match &self.rope {
            Some((cos, sin)) => Some((data(&cos.narrow(0, 0, t)?)?, data(&sin.narrow(0, 0, t)?)?)),
            None => None,
        };
        let dev = self.device.clone();
        let rows2 = |v: Vec<f32>, w: usize| Tensor::from_vec(v, (m, w), &dev);
        let mut saved = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let [q, k, v, gate, up, down] = block.llama()?;
            let h1 = rows2(rms(&x, &norm_w(&block.norm1)?, eps), h)?;
            let (ql, qk) = linear(q, &h1, noise)?;
            let (kl, kk) = linear(k, &h1, noise)?;
            let (vl, vk) = linear(v, &h1, noise)?;
            let turn = rope.as_ref().map(|(c, s)| (c.as_slice(), s.as_slice()));
            let qh = ops::split_heads(&ql, b, nh, turn)?;
            let kh = ops::split_heads(&kl, b, nkv, turn)?;
            let vh = ops::split_heads(&vl, b, nkv, None)?;
            let (y, p) = ops::attention(&qh, &kh, &vh)?;
            let y = y.reshape((m, nh * hd))?;
            let (ol, ok) = linear(&block.out, &y, noise)?;
            let mid = with_data(&ol, |ol| add(&x, ol))?;
            let h2 = rows2(rms(&mid, &norm_w(&block.norm2)?, eps), h)?;
            let (gl, gk) = linear(gate, &h2, noise)?;
            let (ul, uk) = linear(up, &h2, noise)?;
            let (g, u) = (data(&gl)?, data(&ul)?);
            let act = rows2(ops::swiglu(&g, &u), c.intermediate)?;
            let (dl, dk) = linear(down, &act, noise)?;
            let out = with_data(&dl, |dl| add(&mid, dl))?;
            saved.push(Saved {
                x: std::mem::replace(&mut x, out),
                q: qk,
                k: kk,
                v: vk,
                heads: (qh, kh, vh, p),
                o: ok,
                mid,
                gate: gk,
                up: uk,
                gu: (g, u),
                down: dk,
            });
        }
        // The head, on the rows that are scored.
        let final_w = norm_w(&self.norm)?;
        let hn = rows2(rms(&x, &final_w, eps), h)?;
        let n = rows.len();
        let picked = hn.index_select(&Tensor::from_vec(rows.to_vec(), n, &dev)?, 0)?;
        let logits = picked.matmul(&self.head.t()?)?;
        let vocab = logits.dim(D::Minus1)?;
        let mut dlogits = data(&logits)?;
        let lse = kernels::log_sum_exps(&dlogits, vocab);
        let losses: Vec<f32> = (targets.iter().zip(&lse).enumerate())
            .map(|(i, (&target, lse))| lse - dlogits[i * vocab + target as usize])
            .collect();
        let loss = f64::from(losses.iter().sum::<f32>()) / n as f64;
        let scale = (share / n as f64) as f32;
        kernels::each_row(&mut dlogits, vocab, &CrossEntropyGrad { targets, lse: &lse, scale });
        let dpicked = data(&Tensor::from_vec(dlogits, (n, vocab), &dev)?.matmul(&self.head)?)?;
        let mut dhn = vec![0f32; m * h];
        for (i, &r) in rows.iter().enumerate() {
            dhn[r as usize * h..][..h].copy_from_slice(&dpicked[i * h..][..h]);
        }
        let mut dx = rms_back(&x, &final_w, eps, &dhn);
        // The blocks, last first.
        let mut grads = Vec::new();
        for (block, s) in self.blocks.iter().zip(&saved).rev() {
            let [q, k, v, gate, up, down] = block.llama()?;
            let dact = linear_back(down, &s.down, &rows2(dx.clone(), h)?, &mut grads)?;
            let (dg, du) = ops::swiglu_back(&s.gu.0, &s.gu.1, &dact);
            let dh2 = add(
                &linear_back(gate, &s.gate, &rows2(dg, c.intermediate)?, &mut grads)?,
                &linear_back(up, &s.up, &rows2(du, c.intermediate)?, &mut grads)?,
            );
            let dmid = add(&dx, &rms_back(&s.mid, &norm_w(&block.norm2)?, eps, &dh2));
            let dy = linear_back(&block.out, &s.o, &rows2(dmid.clone(), h)?, &mut grads)?;
            let (qh, kh, vh, p) = &s.heads;
            let dy = Tensor::from_vec(dy, (b, t, nh * hd), &dev)?;
            let (dqh, dkh, dvh) = ops::attention_back(qh, kh, vh, p, &dy)?;
            let turn = rope.as_ref().map(|(c, s)| (c.as_slice(), s.as_slice()));
            let dq = rows2(ops::merge_heads(&dqh, turn)?, nh * hd)?;
            let dk = rows2(ops::merge_heads(&dkh, turn)?, nkv * hd)?;
            let dv = rows2(ops::merge_heads(&dvh, None)?, nkv * hd)?;
            let dh1 = add(
                &add(
                    &linear_back(q, &s.q, &dq, &mut grads)?,
                    &linear_back(k, &s.k, &dk, &mut grads)?,
                ),
                &linear_back(v, &s.v, &dv, &mut grads)?,
            );
            dx = add(&dmid, &rms_back(&s.x, &norm_w(&block.norm1)?, eps, &dh1));
        }
        Ok((loss, grads))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_core::{D, Device, Tensor};

    use super::super::{Model, Noise};
    use crate::lora::{self, LoraConfig};

    /// The tiny Llama the parity tests use (grouped-query heads, rotary), with adapters whose
    /// `B` is not zero, so that every gradient flows.
    fn adapted() -> Model {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama");
        let mut model = Model::load(&dir, &Device::Cpu).expect("the tiny Llama");
        let mut config = LoraConfig::for_arch(model.config().arch);
        config.lora_dropout = 0.2;
        lora::attach(&mut model, &config, 3).expect("adapters");
        for (i, (_, var)) in lora::tensors(&model).into_iter().enumerate() {
            let shape = var.as_tensor().shape().clone();
            let n = shape.elem_count();
            let v: Vec<f32> =
                (0..n).map(|j| (((i * 31 + j * 17) % 23) as f32 - 11.0) / 60.0).collect();
            var.set(&Tensor::from_vec(v, shape, &Device::Cpu).expect("values")).expect("set");
        }
        model
    }

    #[test]
    fn the_written_out_step_gives_autograds_loss_and_gradients() {
        let model = adapted();
        assert!(model.writes_out_its_step());
        let vocab = model.config().vocab as u32;
        let (b, t) = (2, 9);
        let ids: Vec<u32> = (0..b * t).map(|i| (i as u32 * 7 + 3) % vocab).collect();
        let ids = Tensor::from_vec(ids, (b, t), &Device::Cpu).expect("ids");
        let rows: Vec<u32> = vec![2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16];
        let targets: Vec<u32> = rows.iter().map(|r| (r * 5 + 1) % vocab).collect();
        let share = 0.75;

        let (loss, grads) = model
            .loss_and_grads(&ids, &rows, &targets, share, &mut Noise::new(9))
            .expect("the written-out step");

        let h = model.hidden(&ids, None, Some(&mut Noise::new(9))).expect("hidden");
        let h = h.reshape((b * t, h.dim(D::Minus1).expect("width"))).expect("rows");
        let n = rows.len();
        let h = h.index_select(&Tensor::new(rows.as_slice(), &Device::Cpu).expect("rows"), 0);
        let logits = model.logits(&h.expect("picked")).expect("logits");
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).expect("log-softmax");
        let picked = logp
            .gather(&Tensor::from_vec(targets.clone(), (n, 1), &Device::Cpu).expect("t"), 1)
            .expect("gather");
        let reference = (picked.sum_all().expect("sum") / -(n as f64)).expect("mean");
        let expected = f64::from(reference.to_scalar::<f32>().expect("loss"));
        assert!((loss - expected).abs() < 1e-5 * expected.abs(), "{loss} against {expected}");
        let store = (reference * share).and_then(|l| l.backward()).expect("autograd");

        let vars = lora::tensors(&model);
        assert_eq!(grads.len(), vars.len());
        for (var, g) in &grads {
            let expected = store.get(var).expect("autograd's gradient");
            let scale = expected.abs().and_then(|a| a.max_all()?.to_scalar::<f32>()).expect("max");
            let gap = (g - expected)
                .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
                .expect("difference");
            assert!(scale > 0.0 && gap <= 1e-4 * scale, "gap {gap} against {scale}");
        }
    }
}
