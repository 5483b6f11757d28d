//! Operations with their own backward pass, where candle's would compute or keep what LoRA
//! training never needs.
//!
//! - [`frozen_linear`]: candle's matmul backward computes the gradient of both sides, so a
//!   frozen weight got a full weight-sized gradient at every step (a third of the step's
//!   arithmetic, and every layer's weight gradient held until the step's end). This one
//!   passes the gradient to its input only.
//! - [`lora_linear`]: a frozen linear layer with its adapter, `x W^T + s B A dropout(x)`, as
//!   one operation. Composed, it kept seven tensors per layer for the backward pass (the
//!   dropout mask, the dropped input, the base product, the update, the scaled update, the
//!   sum); this keeps the result and the mask as bits, and computes the rest again.
//! - [`causal_attention`]: composed from candle's operations, attention kept five tensors of
//!   scores per block (the product, masked, shifted, exponentiated, normalised) alive for the
//!   backward pass. This one keeps none: the backward pass computes the probabilities again
//!   from the queries and keys, which costs a few percent of a block's arithmetic. Its scale,
//!   mask and softmax are one pass a row on rayon (seven of candle's element-wise passes
//!   before), and it gives the heads back merged, without a copy of its own.
//! - For the training step written out (`model::step`): the same attention without autograd
//!   ([`attention`], [`attention_back`]), the split into heads with the rotary embedding and
//!   its gradient ([`split_heads`], [`merge_heads`]), and Llama's gated activation
//!   ([`swiglu`], [`swiglu_back`]), each one pass on rayon.

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp3, D, Device, InplaceOp1, Layout, Shape, Storage, Tensor,
};

use rayon::prelude::*;

use fine_drums_train::kernels::{self, RowKernel};

use crate::error::Result;

/// A contiguous CPU storage's f32 elements.
fn slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("a contiguous input, got strides {:?}", layout.stride());
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// A CPU storage as a tensor of its own (a copy), for an operation's composed steps.
fn on_cpu(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Tensor> {
    Tensor::from_slice(slice(storage, layout)?, layout.shape(), &Device::Cpu)
}

/// A tensor's elements, in order (a copy).
pub(crate) fn data(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// `f` of a contiguous CPU tensor's elements, borrowed where [`data`] copies them out.
pub(crate) fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(slice(cpu, layout)?)),
        _ => candle_core::bail!("borrowing a tensor's elements needs it on the CPU"),
    }
}

/// A [`RowKernel`] run over a tensor's own elements, in place, in rows of `width`.
struct InPlace<K> {
    kernel: K,
    width: usize,
}

impl<K: RowKernel + Send> InplaceOp1 for InPlace<K> {
    fn name(&self) -> &'static str {
        "row-kernel-in-place"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        match (s, l.contiguous_offsets()) {
            (CpuStorage::F32(v), Some((start, end))) => {
                kernels::each_row(&mut v[start..end], self.width, &self.kernel);
                Ok(())
            }
            _ => candle_core::bail!("{} needs a contiguous f32 tensor", self.name()),
        }
    }
}

/// Runs `kernel` over `t`'s elements in rows of `width`, in place (no copy out and back).
pub(crate) fn in_place(
    t: &Tensor,
    width: usize,
    kernel: impl RowKernel + Send,
) -> candle_core::Result<()> {
    t.inplace_op1(&InPlace { kernel, width })
}

/// Whether the fused CPU operations apply to `x`.
fn fused(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32
}

/// `x W^T` for a weight `W` (output width by input width, contiguous) that is not trained:
/// the backward pass gives the gradient of `x` alone.
struct Frozen {
    w: Tensor,
}

impl Frozen {
    /// The shape of the product, and the two layouts for `(b = 1, m, n, k)`.
    fn plan(&self, layout: &Layout) -> candle_core::Result<(Shape, Layout, Layout, usize)> {
        let (n, k) = self.w.dims2()?;
        let dims = layout.dims();
        if !layout.is_contiguous() || dims.last() != Some(&k) {
            candle_core::bail!("frozen linear: a contiguous input of width {k}, got {dims:?}");
        }
        let m = layout.shape().elem_count() / k;
        let mut out = dims.to_vec();
        if let Some(last) = out.last_mut() {
            *last = n;
        }
        let lhs = Layout::contiguous_with_offset((m, k), layout.start_offset());
        let w = self.w.layout();
        let rhs = Layout::new((k, n).into(), vec![w.stride()[1], w.stride()[0]], w.start_offset());
        Ok((out.into(), lhs, rhs, m))
    }
}

impl CustomOp1 for Frozen {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, x: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (shape, lhs, rhs, m) = self.plan(layout)?;
        let (n, k) = self.w.dims2()?;
        let (w, _) = self.w.storage_and_layout();
        let candle_core::Storage::Cpu(w) = &*w else {
            candle_core::bail!("frozen linear: the weight is not on the CPU");
        };
        Ok((x.matmul(w, (1, m, n, k), &lhs, &rhs)?, shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.broadcast_matmul(&self.w)?))
    }
}

/// `x W^T`, `W` frozen (output width by input width): on the CPU the gradient flows to `x`
/// only; elsewhere this is candle's matmul.
pub(crate) fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(x.broadcast_matmul(&w.t()?)?);
    }
    let w = w.contiguous()?;
    Ok(x.contiguous()?.apply_op1(Frozen { w })?)
}

/// Causal self-attention of one sequence's queries against its own keys and values, with
/// grouped-query heads: `softmax(q k^T / sqrt(d) + causal) v`, the heads merged back.
struct Causal {
    /// Query heads per key/value head.
    rep: usize,
}

impl Causal {
    /// The keys or values of each query head: `(b, kv, t, d)` to `(b, kv * rep, t, d)`.
    fn spread(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.rep == 1 {
            return Ok(x.clone());
        }
        let (b, kv, t, d) = x.dims4()?;
        x.unsqueeze(2)?.expand((b, kv, self.rep, t, d))?.reshape((b, kv * self.rep, t, d))
    }

    /// The attention probabilities, `(b, heads, t, t)`, from candle's operations (off the
    /// CPU).
    fn probabilities(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let t = q.dim(2)?;
        let scale = 1.0 / (q.dim(3)? as f64).sqrt();
        let scores = (q * scale)?.matmul(&k.t()?.contiguous()?)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let scores = scores.broadcast_add(&Tensor::from_vec(mask, (t, t), q.device())?)?;
        let max = scores.max_keepdim(D::Minus1)?;
        let e = scores.broadcast_sub(&max)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    }

    /// Query heads `(b, n, t, d)` as `(b, kv, rep * t, d)`: the heads that share a key/value
    /// head, one under the other (heads are grouped so), the same memory. One matrix product
    /// then serves a whole group against its keys or values, which are not copied out per
    /// query head.
    fn grouped(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, t, d) = x.dims4()?;
        x.reshape((b, n / self.rep, self.rep * t, d))
    }

    /// The same probabilities on the CPU, from the grouped queries and the unspread keys
    /// `(b, kv, t, d)`, as `(b, kv, rep * t, t)` (the memory of `(b, heads, t, t)`): one pass a
    /// row for the scale, the causal mask and the softmax.
    fn probabilities_cpu(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let scale = 1.0 / (q.dim(3)? as f32).sqrt();
        let scores = self.grouped(q)?.matmul(&k.t()?)?;
        in_place(&scores, k.dim(2)?, CausalSoftmax { scale })?;
        Ok(scores)
    }
}

impl Causal {
    /// The attention of heads `q` `(b, n, t, d)` over `k`, `v` `(b, kv, t, d)`, merged into
    /// rows `(b, t, n * d)`.
    fn forward_cpu(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.forward_cpu_kept(q, k, v)?.0)
    }

    /// [`forward_cpu`](Causal::forward_cpu), and the probabilities it used.
    fn forward_cpu_kept(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let p = self.probabilities_cpu(q, k)?;
        let y = p.matmul(v)?;
        let (b, n, t, d) = q.dims4()?;
        let merged = with_data(&y, |y| merge(y, (b, n, t, d)))?;
        Ok((Tensor::from_vec(merged, (b, t, n * d), q.device())?, p))
    }

    /// The gradients of the queries, keys and values (their heads' shapes) from the merged
    /// output's `grad`, with the forward pass's probabilities `p` if kept (else computed
    /// again).
    fn backward_cpu(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        p: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        // Grouped as in `probabilities_cpu`: a product over a group's rows of `p` or `ds`
        // sums the group's heads into the gradient of their shared keys or values.
        let (b, n, t, d) = q.dims4()?;
        let scale = 1.0 / (d as f32).sqrt();
        let p = match p {
            Some(p) => p.clone(),
            None => self.probabilities_cpu(q, k)?,
        };
        let grad = grad.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?;
        let grad = self.grouped(&grad)?;
        let dv = p.t()?.matmul(&grad)?;
        let ds = grad.matmul(&v.t()?)?;
        with_data(&p, |p| in_place(&ds, t, SoftmaxBack { p, scale }))??;
        let dq = ds.matmul(k)?.reshape((b, n, t, d))?;
        let dk = ds.t()?.matmul(&self.grouped(q)?)?;
        Ok((dq, dk, dv))
    }
}

/// The rows of the causal softmax of `scale` times square scores (row `i` of each `t` by `t`
/// block sees the first `i % t + 1`), in place.
struct CausalSoftmax {
    scale: f32,
}

impl RowKernel for CausalSoftmax {
    #[inline(always)]
    fn row(&self, i: usize, r: &mut [f32]) {
        let (seen, unseen) = r.split_at_mut(i % r.len() + 1);
        let max = kernels::max(seen) * self.scale;
        seen.iter_mut().for_each(|s| *s = kernels::exp(*s * self.scale - max));
        let inv = 1.0 / kernels::sum(seen);
        seen.iter_mut().for_each(|s| *s *= inv);
        unseen.fill(0.0);
    }
}

/// The rows of the gradient of the scores from the probabilities' `g` (written over it):
/// `p (g - sum(g p)) scale`.
struct SoftmaxBack<'a> {
    p: &'a [f32],
    scale: f32,
}

impl RowKernel for SoftmaxBack<'_> {
    #[inline(always)]
    fn row(&self, i: usize, g: &mut [f32]) {
        let p = &self.p[i * g.len()..(i + 1) * g.len()];
        let dot = kernels::sum_of(g, p, |g, p| g * p);
        for (g, p) in g.iter_mut().zip(p) {
            *g = p * (*g - dot) * self.scale;
        }
    }
}

/// Heads `(b, n, t, d)` merged into rows `(b, t, n * d)`.
fn merge(y: &[f32], (b, n, t, d): (usize, usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; b * n * t * d];
    out.par_chunks_mut(d).enumerate().for_each(|(row, dst)| {
        let (bi, ti, h) = (row / (t * n), row / n % t, row % n);
        dst.copy_from_slice(&y[((bi * n + h) * t + ti) * d..][..d]);
    });
    out
}

impl CustomOp3 for Causal {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        lq: &Layout,
        k: &CpuStorage,
        lk: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = self.forward_cpu(&on_cpu(q, lq)?, &on_cpu(k, lk)?, &on_cpu(v, lv)?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(data(&y)?), shape))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dq, dk, dv) = self.backward_cpu(&q.detach(), &k.detach(), &v.detach(), None, grad)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Causal self-attention of a whole sequence (no cache): `q` is `(batch, heads, t, width)`,
/// `k` and `v` `(batch, kv heads, t, width)`; the result is the heads merged,
/// `(batch, t, heads * width)`. On the CPU the scores are not kept for the backward pass (it
/// computes them again); elsewhere it is composed from candle's operations.
pub(crate) fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let rep = q.dim(1)? / k.dim(1)?;
    let op = Causal { rep };
    if fused(q) {
        return Ok(q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)?);
    }
    let (b, n, t, d) = q.dims4()?;
    let y = op.probabilities(q, &op.spread(k)?)?.matmul(&op.spread(v)?)?;
    Ok(y.transpose(1, 2)?.reshape((b, t, n * d))?)
}

/// Dropout as a mask: which inputs are kept, and by how much the kept ones are scaled.
#[derive(Clone, Debug)]
pub(crate) struct Mask {
    /// One per input element, in order.
    pub keep: Vec<bool>,
    /// `1 / (1 - p)`.
    pub scale: f32,
}

impl Mask {
    /// `x` with the mask applied, element by element (one pass on rayon).
    pub(crate) fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(4096).zip(x.par_chunks(4096).zip(self.keep.par_chunks(4096))).for_each(
            |(o, (x, keep))| {
                for ((o, x), &kept) in o.iter_mut().zip(x).zip(keep) {
                    *o = if kept { x * self.scale } else { 0.0 };
                }
            },
        );
        out
    }

    /// The mask as a tensor of factors, for the composed operations (any device).
    fn tensor(&self, shape: &Shape, device: &Device) -> candle_core::Result<Tensor> {
        let v: Vec<f32> = self.keep.iter().map(|&k| if k { self.scale } else { 0.0 }).collect();
        Tensor::from_vec(v, shape, device)
    }
}

/// `x W^T + scale (mask(x) A^T) B^T` with `W` frozen and `A`, `B` trained (as PEFT computes a
/// LoRA layer, without the base layer's bias).
struct LoraLinear {
    w: Tensor,
    scale: f64,
    mask: Option<Mask>,
}

impl LoraLinear {
    /// `x` flattened to rows, and the mask (if any) applied.
    fn rows(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let k = self.w.dim(1)?;
        let x = x.reshape((x.elem_count() / k, k))?;
        let dropped = match &self.mask {
            Some(m) => (&x * m.tensor(x.shape(), x.device())?)?,
            None => x.clone(),
        };
        Ok((x, dropped))
    }

    fn forward(&self, x: &Tensor, a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let (rows, dropped) = self.rows(x)?;
        let base = rows.matmul(&self.w.t()?)?;
        let update = dropped.matmul(&a.t()?)?.matmul(&b.t()?)?;
        let y = (base + (update * self.scale)?)?;
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.w.dim(0)?;
        }
        y.reshape(dims)
    }
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = self.forward(&on_cpu(x, lx)?, &on_cpu(a, la)?, &on_cpu(b, lb)?)?;
        Ok((owned(&y)?, y.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (a, b) = (a.detach(), b.detach());
        let (_, dropped) = self.rows(&x.detach())?;
        let n = self.w.dim(0)?;
        let grad = grad.reshape((grad.elem_count() / n, n))?;
        let scaled = (&grad * self.scale)?;
        let low = dropped.matmul(&a.t()?)?;
        let db = scaled.t()?.matmul(&low)?;
        let dlow = scaled.matmul(&b)?;
        let da = dlow.t()?.matmul(&dropped)?;
        let mut dx = dlow.matmul(&a)?;
        if let Some(m) = &self.mask {
            dx = (&dx * m.tensor(dx.shape(), dx.device())?)?;
        }
        let dx = (grad.matmul(&self.w)? + dx)?.reshape(x.shape())?;
        Ok((Some(dx), Some(da), Some(db)))
    }
}

/// A tensor's elements as a storage of their own (a copy).
fn owned(y: &Tensor) -> candle_core::Result<CpuStorage> {
    let (storage, layout) = y.storage_and_layout();
    let candle_core::Storage::Cpu(storage) = &*storage else {
        candle_core::bail!("the result left the CPU");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("a non-contiguous result");
    };
    Ok(CpuStorage::F32(storage.as_slice::<f32>()?[start..end].to_vec()))
}

/// A frozen linear layer `w` (output width by input width) with a LoRA update:
/// `x W^T + scale (mask(x) A^T) B^T`. While training on the CPU in f32 it is one operation
/// that keeps only its result for the backward pass; otherwise (inference, another device) it
/// is composed from candle's, without the operation's copies.
pub(crate) fn lora_linear(
    x: &Tensor,
    w: &Tensor,
    (a, b, scale): (&Tensor, &Tensor, f64),
    mask: Option<Mask>,
    training: bool,
) -> Result<Tensor> {
    let op = LoraLinear { w: w.contiguous()?, scale, mask };
    if training && fused(x) {
        return Ok(x.contiguous()?.apply_op3(a, b, op)?);
    }
    Ok(op.forward(x, a, b)?)
}

/// Causal attention of heads `q` `(b, n, t, d)` over `k`, `v` `(b, kv, t, d)` on the CPU,
/// merged into rows `(b, t, n * d)` (for a step written out, without autograd), and the
/// probabilities, for [`attention_back`].
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
    Ok(Causal { rep: q.dim(1)? / k.dim(1)? }.forward_cpu_kept(q, k, v)?)
}

/// The gradients of [`attention`]'s queries, keys and values from its output's `grad` and
/// its probabilities `p`.
pub(crate) fn attention_back(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    p: &Tensor,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    Ok(Causal { rep: q.dim(1)? / k.dim(1)? }.backward_cpu(q, k, v, Some(p), grad)?)
}

/// One head's row turned by the rotary embedding, `x cos + rotate_half(x) sin`, or copied.
fn turn(dst: &mut [f32], src: &[f32], at: Option<(&[f32], &[f32])>) {
    let Some((cos, sin)) = at else {
        dst.copy_from_slice(src);
        return;
    };
    let half = src.len() / 2;
    for i in 0..src.len() {
        let rotated = if i < half { -src[i + half] } else { src[i - half] };
        dst[i] = src[i] * cos[i] + rotated * sin[i];
    }
}

/// The gradient of [`turn`]: from a head row's gradient `g` into `dx`.
fn unturn(dx: &mut [f32], g: &[f32], at: Option<(&[f32], &[f32])>) {
    let Some((cos, sin)) = at else {
        dx.copy_from_slice(g);
        return;
    };
    let half = g.len() / 2;
    for i in 0..g.len() {
        let back =
            if i < half { g[i + half] * sin[i + half] } else { -g[i - half] * sin[i - half] };
        dx[i] = g[i] * cos[i] + back;
    }
}

/// The row of position `t` of rotary tables (rows of `d`).
fn at<'a>(
    rope: Option<(&'a [f32], &'a [f32])>,
    t: usize,
    d: usize,
) -> Option<(&'a [f32], &'a [f32])> {
    rope.map(|(c, s)| (&c[t * d..(t + 1) * d], &s[t * d..(t + 1) * d]))
}

/// Rows `(b * t, n * d)` split into heads `(b, n, t, d)`, each turned by the rotary tables
/// `rope` (positions `0..t`, rows of `d`) if given.
pub(crate) fn split_heads(
    x: &Tensor,
    b: usize,
    n: usize,
    rope: Option<(&[f32], &[f32])>,
) -> Result<Tensor> {
    let (rows, w) = x.dims2()?;
    let (t, d) = (rows / b, w / n);
    let mut out = vec![0f32; rows * w];
    with_data(x, |xs| {
        out.par_chunks_mut(d).enumerate().for_each(|(row, dst)| {
            let (bi, h, ti) = (row / (n * t), row / t % n, row % t);
            turn(dst, &xs[(bi * t + ti) * w + h * d..][..d], at(rope, ti, d));
        })
    })?;
    Ok(Tensor::from_vec(out, (b, n, t, d), x.device())?)
}

/// The gradient of [`split_heads`]: heads' gradients `(b, n, t, d)` into rows
/// `(b * t, n * d)`.
pub(crate) fn merge_heads(g: &Tensor, rope: Option<(&[f32], &[f32])>) -> Result<Vec<f32>> {
    let (_, n, t, d) = g.dims4()?;
    let mut dx = vec![0f32; g.elem_count()];
    with_data(g, |gs| {
        dx.par_chunks_mut(d).enumerate().for_each(|(row, dst)| {
            let (bi, ti, h) = (row / (t * n), row / n % t, row % n);
            unturn(dst, &gs[((bi * n + h) * t + ti) * d..][..d], at(rope, ti, d));
        })
    })?;
    Ok(dx)
}

/// Elements per row of the element-wise kernels below (rows of [`kernels::each_row`]; the
/// inputs' own rows may be of any width).
const ROW: usize = 4096;

/// The logistic function, `1 / (1 + e^-x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (kernels::exp(-x) + 1.0)
}

/// [`swiglu`]'s rows, `g sigmoid(g) u`.
struct Swiglu<'a> {
    g: &'a [f32],
    u: &'a [f32],
}

impl RowKernel for Swiglu<'_> {
    #[inline(always)]
    fn row(&self, i: usize, out: &mut [f32]) {
        let at = i * ROW..i * ROW + out.len();
        for ((o, g), u) in out.iter_mut().zip(&self.g[at.clone()]).zip(&self.u[at]) {
            *o = g * sigmoid(*g) * u;
        }
    }
}

/// The rows of [`swiglu`]'s gradient with respect to `g`: `dy u sigmoid(g) (1 + g (1 -
/// sigmoid(g)))`.
struct SwigluBack<'a> {
    g: &'a [f32],
    u: &'a [f32],
    dy: &'a [f32],
}

impl RowKernel for SwigluBack<'_> {
    #[inline(always)]
    fn row(&self, i: usize, dg: &mut [f32]) {
        let at = i * ROW..i * ROW + dg.len();
        let (g, u, dy) = (&self.g[at.clone()], &self.u[at.clone()], &self.dy[at]);
        for (((dg, g), u), dy) in dg.iter_mut().zip(g).zip(u).zip(dy) {
            let s = sigmoid(*g);
            *dg = dy * u * s * (1.0 + g * (1.0 - s));
        }
    }
}

/// Runs `kernel` over `out` in rows of [`ROW`] elements, the last one shorter.
fn each_chunk(out: &mut [f32], kernel: &impl RowKernel) {
    let whole = out.len() / ROW * ROW;
    let (rows, last) = out.split_at_mut(whole);
    kernels::each_row(rows, ROW, kernel);
    if !last.is_empty() {
        kernel.row(whole / ROW, last);
    }
}

/// `silu(g) * u`, element by element.
pub(crate) fn swiglu(g: &[f32], u: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; g.len()];
    each_chunk(&mut out, &Swiglu { g, u });
    out
}

/// The gradients of [`swiglu`] with respect to `g` and `u`, given the output's `dy`.
pub(crate) fn swiglu_back(g: &[f32], u: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dg = vec![0f32; g.len()];
    each_chunk(&mut dg, &SwigluBack { g, u, dy });
    // `dy g sigmoid(g)` is swiglu's own arithmetic with `dy` for `u`.
    let mut du = vec![0f32; g.len()];
    each_chunk(&mut du, &Swiglu { g, u: dy });
    (dg, du)
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;

    fn random(shape: &[usize], seed: u64) -> Var {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n as u64)
            .map(|i| {
                let z =
                    (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed.wrapping_mul(0xbf58_476d);
                ((z >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).expect("a tensor"))
            .expect("a var")
    }

    /// The largest difference between two tensors' elements.
    fn gap(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>()).expect("a difference")
    }

    /// Gradients of `sum(y * r)` (a random `r`) with respect to `vars`.
    fn grads(y: &Tensor, vars: &[&Var]) -> Vec<Tensor> {
        let r = random(y.dims(), 99);
        let store = (y * r.as_tensor()).and_then(|p| p.sum_all()?.backward()).expect("grads");
        vars.iter().map(|v| store.get(v.as_tensor()).expect("a gradient").clone()).collect()
    }

    #[test]
    fn the_fused_layers_give_the_composed_results_and_gradients() {
        let (x, w) = (random(&[2, 5, 12], 1), random(&[7, 12], 2));
        let (a, b) = (random(&[3, 12], 3), random(&[7, 3], 4));
        let keep: Vec<bool> = (0..2 * 5 * 12).map(|i| i % 5 != 0).collect();
        let mask = Mask { keep, scale: 1.25 };
        let adapter = (a.as_tensor(), b.as_tensor(), 2.0);
        let fused = lora_linear(&x, &w, adapter, Some(mask.clone()), true).expect("fused");
        let composed = lora_linear(&x, &w, adapter, Some(mask), false).expect("composed");
        assert!(gap(&fused, &composed) < 1e-5);
        let vars = [&x, &a, &b];
        for (f, c) in grads(&fused, &vars).iter().zip(grads(&composed, &vars)) {
            assert!(gap(f, &c) < 1e-5, "{}", gap(f, &c));
        }

        let frozen = frozen_linear(&x, &w).expect("frozen");
        let plain = x.broadcast_matmul(&w.t().expect("w^T")).expect("plain");
        assert!(gap(&frozen, &plain) < 1e-5);
        let (gf, gp) = (grads(&frozen, &[&x]), grads(&plain, &[&x]));
        assert!(gap(&gf[0], &gp[0]) < 1e-5);
    }

    #[test]
    fn causal_attention_gives_the_composed_result_and_gradients_with_grouped_heads() {
        let (q, k, v) =
            (random(&[1, 4, 6, 8], 5), random(&[1, 2, 6, 8], 6), random(&[1, 2, 6, 8], 7));
        let fused = causal_attention(&q, &k, &v).expect("fused");
        let op = Causal { rep: 2 };
        let spread = |x: &Var| op.spread(x.as_tensor()).expect("spread");
        // Heads (1, 4, 6, 8) merged into rows (1, 6, 32).
        let merged =
            |x: Tensor| x.transpose(1, 2).and_then(|x| x.reshape((1, 6, 32))).expect("rows");
        let composed = merged(
            op.probabilities(&q, &spread(&k))
                .and_then(|p| p.matmul(&spread(&v)))
                .expect("composed"),
        );
        assert!(gap(&fused, &composed) < 1e-5);
        // The first position sees only itself: its output is its own value.
        let first = fused.narrow(1, 0, 1).expect("first");
        let own = merged(spread(&v)).narrow(1, 0, 1).expect("own");
        assert!(gap(&first, &own) < 1e-6);
        let vars = [&q, &k, &v];
        for (f, c) in grads(&fused, &vars).iter().zip(grads(&composed, &vars)) {
            assert!(gap(f, &c) < 1e-5, "{}", gap(f, &c));
        }
    }
}
