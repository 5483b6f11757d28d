//! A training step's loss and gradients worked out by hand, on the CPU.
//!
//! candle's autograd gives every operation of the forward pass a node, and every node's
//! gradient a tensor of zeros that the gradient is then added to: for the attention scores
//! alone that is four passes over sixteen megabytes per block. Here the forward pass keeps
//! only what the backward pass reads, and the backward pass computes each gradient once, with
//! the same matrix products and the fused kernels of [`ops`](crate::ops). The composed model
//! ([`Gpt::loss`] with `backward`) stays the reference: a test checks that the two give the
//! same gradients, and other devices use it.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::config::SLOTS;
use crate::error::Result;
use crate::model::{Batch, Block, Dropout, Gpt, masked};
use crate::ops;

/// What the backward pass of a block reads from its forward pass.
struct Saved {
    x: Tensor,
    h1: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    p: Tensor,
    y: Tensor,
    x2: Tensor,
    h2: Tensor,
    f: Tensor,
    g: Tensor,
}

/// A parameter's value, outside any graph.
fn value(v: &Var) -> Tensor {
    v.as_tensor().detach()
}

/// `[b, t, i] x [i, o]` as one matrix product.
fn dense(x: &Tensor, w: &Var, b: &Var) -> Result<Tensor> {
    let (bs, t, i) = x.dims3()?;
    let y = x.reshape((bs * t, i))?.matmul(&value(w))?;
    ops::add_bias_in_place(&y, &value(b))?;
    Ok(y.reshape((bs, t, ()))?)
}

/// The gradients of a dense layer from the gradient `dy` of its output: the weight's and the
/// bias's (stored), and the input's (returned).
fn dense_back(x: &Tensor, dy: &Tensor, w: &Var, b: &Var, grads: &mut GradStore) -> Result<Tensor> {
    let (bs, t, i) = x.dims3()?;
    let o = dy.dim(2)?;
    let (x2, dy2) = (x.reshape((bs * t, i))?, dy.reshape((bs * t, o))?);
    grads.insert(w.as_tensor(), x2.t()?.matmul(&dy2)?);
    grads.insert(b.as_tensor(), ops::column_sum(&dy2)?);
    Ok(dy2.matmul(&value(w).t()?)?.reshape((bs, t, i))?)
}

impl Gpt {
    /// The mean cross-entropy of `batch` (as [`Gpt::loss`]), the tokens it counts, and the
    /// gradient of every parameter: by hand on the CPU, by candle's autograd elsewhere.
    pub fn loss_and_grads(&self, batch: &Batch) -> Result<(f32, usize, GradStore)> {
        self.loss_and_grads_dropped(batch, Dropout::NONE)
    }

    /// [`loss_and_grads`](Gpt::loss_and_grads) with `dropout`: the loss and gradients of
    /// [`Gpt::loss_dropped`].
    pub fn loss_and_grads_dropped(
        &self,
        batch: &Batch,
        dropout: Dropout,
    ) -> Result<(f32, usize, GradStore)> {
        if !self.device().is_cpu() {
            let (loss, count) = self.loss_dropped(batch, dropout)?;
            return Ok((loss.to_scalar()?, count, loss.backward()?));
        }
        // On a thread of rayon's pool, whose parallel loops (the kernels', the matrix
        // products') then start and end there, where from any other thread each would wait
        // for the pool to wake it: thousands of sleeps and wake-ups a step.
        rayon::scope(|_| self.cpu_step(batch, dropout))
    }

    /// [`loss_and_grads_dropped`](Gpt::loss_and_grads_dropped) on the CPU.
    fn cpu_step(&self, batch: &Batch, dropout: Dropout) -> Result<(f32, usize, GradStore)> {
        let (b, t) = batch.ids.dims2()?;
        let d = self.config().d_model;
        let masks = dropout.masks((b, t, d), self.blocks.len(), self.device())?;
        let mask = |i: usize| masks.as_ref().map(|m| &m[i]);
        let h = self.config().heads;
        let scale = 1.0 / ((d / h) as f64).sqrt();
        let look = |table: &Var, ids: &Tensor| -> Result<Tensor> {
            Ok(value(table).embedding(&ids.flatten_all()?)?.reshape((b, t, d))?)
        };

        // Forward, keeping what the backward pass reads.
        // Each sum in place, with the crate's kernels (see `ops::add_in_place`).
        let mut x = look(&self.tok, &batch.ids)?;
        ops::add_in_place(&x, &value(&self.pos).narrow(0, 0, t)?)?;
        ops::add_in_place(&x, &look(&self.slot, &batch.slot)?)?;
        for (table, place) in self.phrase.iter().zip(&batch.phrase) {
            ops::add_in_place(&x, &look(table, place)?)?;
        }
        x = masked(x, mask(0))?;
        let mut saved = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.iter().enumerate() {
            let drop = |y: Tensor, at: usize| masked(y, mask(at));
            let h1 = ops::layer_norm(&x, &value(&block.ln1.gain), &value(&block.ln1.bias))?;
            let qkv = dense(&h1, &block.qkv.w, &block.qkv.b)?;
            let part = |i: usize| ops::split_heads(&qkv, h, i, 3);
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let p = q.matmul(&k.t()?)?;
            ops::causal_softmax_in_place(&p, scale)?;
            let y = ops::merge_heads(&[&p.matmul(&v)?])?;
            let x2 = drop(dense(&y, &block.proj.w, &block.proj.b)?, 1 + 2 * i)?;
            ops::add_in_place(&x2, &x)?;
            let h2 = ops::layer_norm(&x2, &value(&block.ln2.gain), &value(&block.ln2.bias))?;
            let f = dense(&h2, &block.fc.w, &block.fc.b)?;
            let g = ops::gelu(&f)?;
            let next = drop(dense(&g, &block.out.w, &block.out.b)?, 2 + 2 * i)?;
            ops::add_in_place(&next, &x2)?;
            saved.push(Saved { x, h1, q, k, v, p, y, x2, h2, f, g });
            x = next;
        }
        let hf = ops::layer_norm(&x, &value(&self.ln_f.gain), &value(&self.ln_f.bias))?
            .reshape((b * t, d))?;
        let logits = hf.matmul(&value(&self.tok).t()?)?;
        // Each token predicts the next; the last of each window predicts nothing (padding).
        let targets = Tensor::cat(
            &[&batch.ids.narrow(1, 1, t - 1)?, &Tensor::zeros((b, 1), DType::U32, x.device())?],
            1,
        )?
        .flatten_all()?;
        let nll = ops::cross_entropy(&logits, &targets)?;
        let count = targets.ne(0u32)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
        let count = (count as usize).max(1);
        let loss = nll.sum_all()?.to_scalar::<f32>()? / count as f32;

        // Backward.
        let mut grads = GradStore::default();
        let per_row = Tensor::full(1.0 / count as f32, b * t, x.device())?;
        // The logits become their own gradient.
        ops::cross_entropy_grad_in_place(&logits, &targets, &per_row)?;
        let dlogits = logits;
        let dtok_head = dlogits.t()?.matmul(&hf)?;
        let dhf = dlogits.matmul(&value(&self.tok))?.reshape((b, t, d))?;
        let (mut dx, dgain, dbias) = ops::layer_norm_grads(&x, &dhf, &value(&self.ln_f.gain))?;
        grads.insert(self.ln_f.gain.as_tensor(), dgain);
        grads.insert(self.ln_f.bias.as_tensor(), dbias);
        for (i, (block, s)) in self.blocks.iter().zip(saved).enumerate().rev() {
            let pair = masks.as_ref().map(|m| (&m[1 + 2 * i], &m[2 + 2 * i]));
            dx = block_back(block, s, dx, pair, h, scale, &mut grads)?;
        }
        dx = masked(dx, mask(0))?;

        // The embeddings: each table gathers the gradients of the tokens that looked it up.
        let flat = dx.reshape((b * t, d))?;
        let scatter = |rows: usize, ids: &Tensor| -> Result<Tensor> {
            let zeros = Tensor::zeros((rows, d), DType::F32, x.device())?;
            Ok(zeros.index_add(&ids.flatten_all()?, &flat, 0)?)
        };
        let vocab = self.config().vocab;
        grads.insert(self.tok.as_tensor(), (scatter(vocab, &batch.ids)? + dtok_head)?);
        grads.insert(self.slot.as_tensor(), scatter(SLOTS, &batch.slot)?);
        for (table, place) in self.phrase.iter().zip(&batch.phrase) {
            grads.insert(table.as_tensor(), scatter(table.dim(0)?, place)?);
        }
        let dpos = ops::column_sum(&dx.reshape((b, t * d))?)?.reshape((t, d))?;
        let context = self.config().context;
        let dpos = if t < context {
            Tensor::cat(&[&dpos, &Tensor::zeros((context - t, d), DType::F32, x.device())?], 0)?
        } else {
            dpos
        };
        grads.insert(self.pos.as_tensor(), dpos);
        Ok((loss, count, grads))
    }
}

/// One block's backward pass: its parameters' gradients (stored) and its input's (returned)
/// from its output's, `dx`, through the dropout `masks` of its attention and feed-forward
/// outputs.
fn block_back(
    block: &Block,
    s: Saved,
    dx: Tensor,
    masks: Option<(&Tensor, &Tensor)>,
    h: usize,
    scale: f64,
    grads: &mut GradStore,
) -> Result<Tensor> {
    // The feed-forward half.
    let dg = dense_back(
        &s.g,
        &masked(dx.clone(), masks.map(|m| m.1))?,
        &block.out.w,
        &block.out.b,
        grads,
    )?;
    ops::gelu_grad_in_place(&dg, &s.f)?;
    let df = dg;
    let dh2 = dense_back(&s.h2, &df, &block.fc.w, &block.fc.b, grads)?;
    let (dx2, dgain, dbias) = ops::layer_norm_grads(&s.x2, &dh2, &value(&block.ln2.gain))?;
    grads.insert(block.ln2.gain.as_tensor(), dgain);
    grads.insert(block.ln2.bias.as_tensor(), dbias);
    ops::add_in_place(&dx2, &dx)?;

    // The attention half.
    let dproj = masked(dx2.clone(), masks.map(|m| m.0))?;
    let dy =
        ops::split_heads(&dense_back(&s.y, &dproj, &block.proj.w, &block.proj.b, grads)?, h, 0, 1)?;
    let ds = dy.matmul(&s.v.t()?)?;
    let dv = s.p.t()?.matmul(&dy)?;
    ops::causal_softmax_grad_in_place(&ds, &s.p, scale)?;
    let dq = ds.matmul(&s.k)?;
    let dk = ds.t()?.matmul(&s.q)?;
    let dqkv = ops::merge_heads(&[&dq, &dk, &dv])?;
    let dh1 = dense_back(&s.h1, &dqkv, &block.qkv.w, &block.qkv.b, grads)?;
    let (dx1, dgain, dbias) = ops::layer_norm_grads(&s.x, &dh1, &value(&block.ln1.gain))?;
    grads.insert(block.ln1.gain.as_tensor(), dgain);
    grads.insert(block.ln1.bias.as_tensor(), dbias);
    ops::add_in_place(&dx1, &dx2)?;
    Ok(dx1)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use crate::config::Config;
    use crate::model::{Batch, Dropout, Gpt};
    use crate::tokens::Encoded;

    /// The hand-written gradients are autograd's, parameter by parameter, with and without
    /// dropout.
    #[test]
    fn the_gradients_are_autograds() {
        for dropout in [Dropout::NONE, Dropout { rate: 0.2, seed: 7 }] {
            gradients_match(dropout);
        }
    }

    fn gradients_match(dropout: Dropout) {
        let mut config = Config::preset("tiny", 40).unwrap();
        config.context = 24;
        let gpt = Gpt::new(&config, 3, &Device::Cpu).unwrap();
        let mut seq = Encoded::default();
        let n = 3 * 20;
        seq.ids = (0..n).map(|i| if i % 20 > 16 { 0 } else { (i * 7 % 39 + 1) as u32 }).collect();
        seq.slot = (0..n).map(|i| (i % 17) as u16).collect();
        seq.bar = (0..n).map(|i| (i / 17) as u16).collect();
        let batch = Batch::windows(&seq, &[0, 20, 40], 20, &Device::Cpu).unwrap();
        let (loss, count) = gpt.loss_dropped(&batch, dropout).unwrap();
        let reference = loss.backward().unwrap();
        let (mine, mine_count, grads) = gpt.loss_and_grads_dropped(&batch, dropout).unwrap();
        assert_eq!(count, mine_count);
        let loss = loss.to_scalar::<f32>().unwrap();
        assert!((loss - mine).abs() < 1e-5, "loss {mine} against {loss}");
        if dropout.rate > 0.0 {
            let plain = gpt.loss(&batch).unwrap().0.to_scalar::<f32>().unwrap();
            assert!((plain - loss).abs() > 1e-4, "dropout left the loss at {plain}");
        }
        for (name, var) in gpt.vars() {
            let a: Vec<f32> =
                reference.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> =
                grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(a.len(), b.len(), "{name}");
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-4 * scale, "{name}: {y} against {x}");
            }
        }
    }
}
