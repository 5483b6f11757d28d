//! Fused CPU kernels, each with its own gradient, for the training step's element-wise work:
//! layer normalisation, a bias, GELU, the scaled causal softmax of attention and the cross-entropy of
//! the head. Composed from candle's primitives, each of these is five to fifteen tensor
//! operations forward and as many backward, each allocating a tensor the size of its input;
//! fused, each is one pass over the rows forward and one backward.
//!
//! Each op has a composed twin for devices other than the CPU (candle's CUDA backend runs the
//! composed form), and a test that the two agree in value and gradient.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, InplaceOp1, InplaceOp2, InplaceOp3,
    Layout, Shape, Tensor,
};
use rayon::prelude::*;

use fine_drums_train::kernels::{self, RowKernel, exp, log_sum_exp, max, sum, sum_of, sum_of3};

use crate::error::Result;

/// Below this many elements a kernel runs on the calling thread: sampling's one-token steps
/// are too small to share.
const PARALLEL: usize = 1 << 15;

/// The `f32` elements of a contiguous tensor's storage.
fn data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("{op} needs a contiguous input"),
    }
}

/// The `f32` elements of a contiguous tensor's storage, to rewrite in place.
fn data_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&mut v[start..end]),
        _ => candle_core::bail!("{op} needs a contiguous f32 tensor"),
    }
}

/// Runs `f(row, out_row)` over the rows of width `width` of `out`, in parallel when large.
fn each_row(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() < PARALLEL || width == 0 {
        out.chunks_exact_mut(width.max(1)).enumerate().for_each(|(i, r)| f(i, r));
    } else {
        out.par_chunks_exact_mut(width).enumerate().for_each(|(i, r)| f(i, r));
    }
}

/// The last dimension of `l`, and an error for a scalar.
fn width(l: &Layout, op: &str) -> candle_core::Result<usize> {
    match l.dims().last() {
        Some(&w) if w > 0 => Ok(w),
        _ => candle_core::bail!("{op} needs a last dimension, got {:?}", l.dims()),
    }
}

const EPS: f32 = 1e-5;

/// The mean and the reciprocal standard deviation of a row.
#[inline(always)]
fn moments(x: &[f32]) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    let var = sum_of(x, x, |v, _| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + EPS).sqrt())
}

/// Layer normalisation over the last dimension, `(x - mean) / sqrt(var + 1e-5) * gain + bias`.
pub(crate) fn layer_norm(x: &Tensor, gain: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Ok(x.contiguous()?.apply_op3(gain, bias, LayerNorm)?);
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let x = x.broadcast_sub(&mean)?;
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    let x = x.broadcast_div(&(var + f64::from(EPS))?.sqrt()?)?;
    Ok(x.broadcast_mul(gain)?.broadcast_add(bias)?)
}

/// The gradients of [`layer_norm`]'s input, gain and bias from the gradient `g` of its
/// output, on the CPU.
pub(crate) fn layer_norm_grads(
    x: &Tensor,
    g: &Tensor,
    gain: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    Ok(norm_grads(x, g, gain)?)
}

fn norm_grads(
    x: &Tensor,
    g: &Tensor,
    gain: &Tensor,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (x, g) = (x.contiguous()?, g.contiguous()?);
    let dx = x.apply_op3_no_bwd(&g, gain, &LayerNormGrad)?;
    let params = x.apply_op2_no_bwd(&g, &LayerNormParamGrad)?;
    Ok((dx, params.get(0)?, params.get(1)?))
}

struct LayerNorm;

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s1, l1, self.name())?, width(l1, self.name())?);
        let (gain, bias) = (data(s2, l2, self.name())?, data(s3, l3, self.name())?);
        if gain.len() != w || bias.len() != w {
            candle_core::bail!(
                "a layer norm of width {w} with {} gains, {} biases",
                gain.len(),
                bias.len()
            );
        }
        let mut out = vec![0f32; x.len()];
        kernels::each_row(&mut out, w, &Norm { x, gain, bias });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _: &Tensor,
        _: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dgain, dbias) = norm_grads(x, g, gain)?;
        Ok((Some(dx), Some(dgain), Some(dbias)))
    }
}

/// The rows of [`LayerNorm`]: `y = (x - mean) * rstd * gain + bias`.
struct Norm<'a> {
    x: &'a [f32],
    gain: &'a [f32],
    bias: &'a [f32],
}

impl RowKernel for Norm<'_> {
    #[inline(always)]
    fn row(&self, i: usize, y: &mut [f32]) {
        let x = &self.x[i * y.len()..(i + 1) * y.len()];
        let (mean, rstd) = moments(x);
        for (((y, v), g), b) in y.iter_mut().zip(x).zip(self.gain).zip(self.bias) {
            *y = (v - mean) * rstd * g + b;
        }
    }
}

/// `dx = rstd * (h - mean(h) - xhat * mean(h * xhat))` with `h = g * gain`, from `x`, `g`
/// and `gain`.
struct LayerNormGrad;

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s1, l1, self.name())?, width(l1, self.name())?);
        let (g, gain) = (data(s2, l2, self.name())?, data(s3, l3, self.name())?);
        let mut out = vec![0f32; x.len()];
        kernels::each_row(&mut out, w, &NormGrad { x, g, gain });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// The rows of [`LayerNormGrad`].
struct NormGrad<'a> {
    x: &'a [f32],
    g: &'a [f32],
    gain: &'a [f32],
}

impl RowKernel for NormGrad<'_> {
    #[inline(always)]
    fn row(&self, i: usize, dx: &mut [f32]) {
        let w = dx.len();
        let (x, g) = (&self.x[i * w..(i + 1) * w], &self.g[i * w..(i + 1) * w]);
        let (mean, rstd) = moments(x);
        let h_mean = sum_of(g, self.gain, |gv, k| gv * k) / w as f32;
        let hx_mean = sum_of3(x, g, self.gain, |v, gv, k| gv * k * (v - mean) * rstd) / w as f32;
        for (((d, &v), &gv), &k) in dx.iter_mut().zip(x).zip(g).zip(self.gain) {
            *d = rstd * (gv * k - h_mean - (v - mean) * rstd * hx_mean);
        }
    }
}

/// The gradients of the gain and the bias, `[2, width]`: the sums over rows of `g * xhat`
/// and of `g`.
struct LayerNormParamGrad;

impl CustomOp2 for LayerNormParamGrad {
    fn name(&self) -> &'static str {
        "layer-norm-param-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s1, l1, self.name())?, width(l1, self.name())?);
        let g = data(s2, l2, self.name())?;
        let sums = column_sums(x.len() / w, 2 * w, |i, acc| {
            let (x, g) = (&x[i * w..(i + 1) * w], &g[i * w..(i + 1) * w]);
            let (mean, rstd) = moments(x);
            let (dgain, dbias) = acc.split_at_mut(w);
            for (((a, b), &v), &gv) in dgain.iter_mut().zip(dbias).zip(x).zip(g) {
                *a += gv * (v - mean) * rstd;
                *b += gv;
            }
        });
        Ok((CpuStorage::F32(sums), Shape::from((2, w))))
    }
}

/// Sums over `rows` of what `add(row, acc)` adds into an accumulator of `width`: in blocks
/// of a fixed number of rows, in parallel when large, the blocks' sums added in order, so
/// that the result is the same bits whatever the number of threads.
fn column_sums(rows: usize, width: usize, add: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    const BLOCK: usize = 256;
    let block = |b: usize| {
        let mut acc = vec![0f32; width];
        (b * BLOCK..((b + 1) * BLOCK).min(rows)).for_each(|i| add(i, &mut acc));
        acc
    };
    let blocks: Vec<Vec<f32>> = if rows * width < PARALLEL {
        (0..rows.div_ceil(BLOCK)).map(block).collect()
    } else {
        (0..rows.div_ceil(BLOCK)).into_par_iter().map(block).collect()
    };
    let mut sum = vec![0f32; width];
    for b in blocks {
        sum.iter_mut().zip(b).for_each(|(s, v)| *s += v);
    }
    sum
}

/// `x + bias` over the last dimension, whose bias gradient is a sum over rows that candle
/// would compute element by element.
pub(crate) fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Ok(x.contiguous()?.apply_op2(bias, AddBias)?);
    }
    Ok(x.broadcast_add(bias)?)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = data(s1, l1, "add-bias")?.to_vec();
        add_bias_rows(&mut out, width(l1, "add-bias")?, data(s2, l2, "add-bias")?)?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        Ok((Some(g.clone()), Some(g.apply_op1_no_bwd(&ColumnSum)?)))
    }
}

/// Adds `bias` to every row of `out`.
fn add_bias_rows(out: &mut [f32], w: usize, bias: &[f32]) -> candle_core::Result<()> {
    if bias.len() != w {
        candle_core::bail!("a bias of {} for rows of {w}", bias.len());
    }
    add_repeated(out, w, bias)
}

/// `out += y`, `y` repeated over `out`'s leading rows (of width `w`): a bias is one row, a
/// tensor of `out`'s own shape all of them.
fn add_repeated(out: &mut [f32], w: usize, y: &[f32]) -> candle_core::Result<()> {
    if y.is_empty() || !y.len().is_multiple_of(w) || !out.len().is_multiple_of(y.len()) {
        candle_core::bail!("add: {} values onto {} in rows of {w}", y.len(), out.len());
    }
    let rows = y.len() / w;
    each_row(out, w, |i, row| {
        let r = i % rows;
        row.iter_mut().zip(&y[r * w..(r + 1) * w]).for_each(|(a, b)| *a += b)
    });
    Ok(())
}

/// `x += bias` over the last dimension, in place, on the CPU.
pub(crate) fn add_bias_in_place(x: &Tensor, bias: &Tensor) -> Result<()> {
    let w = x.dims().last().copied().unwrap_or(0);
    if bias.dims() != [w] {
        return Err(candle_core::Error::Msg(format!(
            "a bias of {:?} for rows of {w}",
            bias.dims()
        ))
        .into());
    }
    Ok(x.inplace_op2(&bias.contiguous()?, &AddInPlace)?)
}

/// `x += y`, in place, on the CPU, `y`'s shape that of `x`'s last dimensions: `x`'s own
/// (a sum), or `[t, d]` added to every `[t, d]` of a batch. (candle's own addition runs on
/// its thread pool, which spins beside the one the kernels and matrix products share.)
pub(crate) fn add_in_place(x: &Tensor, y: &Tensor) -> Result<()> {
    if !x.dims().ends_with(y.dims()) {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: x.shape().clone(),
            rhs: y.shape().clone(),
            op: "add-in-place",
        }
        .into());
    }
    Ok(x.inplace_op2(&y.contiguous()?, &AddInPlace)?)
}

struct AddInPlace;

impl InplaceOp2 for AddInPlace {
    fn name(&self) -> &'static str {
        "add-in-place"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        l: &Layout,
        src: &CpuStorage,
        ls: &Layout,
    ) -> candle_core::Result<()> {
        let w = width(l, self.name())?;
        add_repeated(data_mut(dst, l, self.name())?, w, data(src, ls, self.name())?)
    }
}

/// Part `part` of the `parts` side by side in `x` (`[b, t, parts * d]`, as the attention's
/// one projection writes queries, keys and values), split into `h` heads: `[b, h, t, d / h]`,
/// on the CPU. One parallel copy, where a narrow, a transpose and candle's copy took its pool.
pub(crate) fn split_heads(x: &Tensor, h: usize, part: usize, parts: usize) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1_no_bwd(&SplitHeads { h, part, parts })?)
}

struct SplitHeads {
    h: usize,
    part: usize,
    parts: usize,
}

impl CustomOp1 for SplitHeads {
    fn name(&self) -> &'static str {
        "split-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, t, w) = l.shape().dims3()?;
        let (h, part) = (self.h, self.part);
        if h == 0 || self.parts == 0 || part >= self.parts || !w.is_multiple_of(self.parts * h) {
            candle_core::bail!("split-heads: part {part} of {} in {w}, {h} heads", self.parts);
        }
        let (x, d) = (data(s, l, self.name())?, w / self.parts);
        let hd = d / h;
        let mut out = vec![0f32; b * t * d];
        each_row(&mut out, hd, |r, y| {
            let (ti, hi, bi) = (r % t, (r / t) % h, r / (t * h));
            let at = (bi * t + ti) * w + part * d + hi * hd;
            y.copy_from_slice(&x[at..at + hd]);
        });
        Ok((CpuStorage::F32(out), Shape::from((b, h, t, hd))))
    }
}

/// Heads `[b, h, t, hd]` back side by side: `[b, t, h * hd]` for each of `xs`, the tensors
/// one after another in the last dimension (the inverse of [`split_heads`]), on the CPU.
pub(crate) fn merge_heads(xs: &[&Tensor]) -> Result<Tensor> {
    match xs {
        [x] => Ok(x.contiguous()?.apply_op1_no_bwd(&MergeHeads)?),
        [a, b, c] => {
            Ok(a.contiguous()?.apply_op3_no_bwd(&b.contiguous()?, &c.contiguous()?, &MergeHeads)?)
        }
        _ => Err(candle_core::Error::Msg(format!("merge-heads of {} tensors", xs.len())).into()),
    }
}

struct MergeHeads;

/// `srcs` (each `[b, h, t, hd]`) into `out` (`[b, t, srcs.len() * h * hd]`).
fn merge_into(out: &mut [f32], srcs: &[&[f32]], (b, h, t, hd): (usize, usize, usize, usize)) {
    let d = h * hd;
    let w = srcs.len() * d;
    debug_assert_eq!(out.len(), b * t * w);
    each_row(out, w, |r, y| {
        let (bi, ti) = (r / t, r % t);
        for (p, src) in srcs.iter().enumerate() {
            for hi in 0..h {
                let from = ((bi * h + hi) * t + ti) * hd;
                y[p * d + hi * hd..p * d + (hi + 1) * hd].copy_from_slice(&src[from..from + hd]);
            }
        }
    });
}

impl MergeHeads {
    fn merge(&self, inputs: &[(&CpuStorage, &Layout)]) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = inputs[0].1.shape().dims4()?;
        let mut srcs = Vec::with_capacity(inputs.len());
        for (s, l) in inputs {
            if l.shape().dims4()? != dims {
                candle_core::bail!("merge-heads: {:?} and {:?}", l.dims(), dims);
            }
            srcs.push(data(s, l, "merge-heads")?);
        }
        let (b, h, t, hd) = dims;
        let mut out = vec![0f32; b * t * srcs.len() * h * hd];
        merge_into(&mut out, &srcs, dims);
        Ok((CpuStorage::F32(out), Shape::from((b, t, srcs.len() * h * hd))))
    }
}

impl CustomOp1 for MergeHeads {
    fn name(&self) -> &'static str {
        "merge-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.merge(&[(s, l)])
    }
}

impl CustomOp3 for MergeHeads {
    fn name(&self) -> &'static str {
        "merge-heads"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.merge(&[(s1, l1), (s2, l2), (s3, l3)])
    }
}

/// The sum over rows of `g`, `[.., w]` to `[w]`, on the CPU: the gradient of a bias.
pub(crate) fn column_sum(g: &Tensor) -> Result<Tensor> {
    Ok(g.contiguous()?.apply_op1_no_bwd(&ColumnSum)?)
}

/// The sum over rows, `[.., w]` to `[w]`.
struct ColumnSum;

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, w) = (data(s, l, self.name())?, width(l, self.name())?);
        let sums = column_sums(g.len() / w, w, |i, acc| {
            acc.iter_mut().zip(&g[i * w..(i + 1) * w]).for_each(|(a, v)| *a += v);
        });
        Ok((CpuStorage::F32(sums), Shape::from(w)))
    }
}

const GELU_K: f32 = 0.797_884_6; // sqrt(2 / pi)
const GELU_C: f32 = 0.044_715;

/// GELU with the tanh approximation (candle's `gelu`, GPT-2's).
pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Ok(x.contiguous()?.apply_op1(Gelu)?);
    }
    Ok(x.gelu()?)
}

struct Gelu;

/// The rows of [`Gelu`].
struct GeluRows<'a> {
    x: &'a [f32],
}

impl RowKernel for GeluRows<'_> {
    #[inline(always)]
    fn row(&self, i: usize, y: &mut [f32]) {
        let x = &self.x[i * y.len()..(i + 1) * y.len()];
        for (y, &v) in y.iter_mut().zip(x) {
            // 0.5 (1 + tanh u) is the logistic function of 2u, which needs one exp.
            *y = v / (1.0 + exp(-2.0 * GELU_K * v * (1.0 + GELU_C * v * v)));
        }
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s, l, self.name())?, width(l, self.name())?);
        let mut out = vec![0f32; x.len()];
        kernels::each_row(&mut out, w, &GeluRows { x });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let d = g.copy()?;
        d.inplace_op2(x, &GeluGrad)?;
        Ok(Some(d))
    }
}

/// `g *= gelu'(x)`, in place, on the CPU.
pub(crate) fn gelu_grad_in_place(g: &Tensor, x: &Tensor) -> Result<()> {
    Ok(g.inplace_op2(&x.contiguous()?, &GeluGrad)?)
}

/// `g *= gelu'(x)`.
struct GeluGrad;

impl InplaceOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-grad"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        l: &Layout,
        x: &CpuStorage,
        lx: &Layout,
    ) -> candle_core::Result<()> {
        let (w, x) = (width(l, self.name())?, data(x, lx, self.name())?);
        let g = data_mut(dst, l, self.name())?;
        if g.len() != x.len() {
            candle_core::bail!("gelu-grad: {} gradients for {} inputs", g.len(), x.len());
        }
        kernels::each_row(g, w, &GeluGradRows { x });
        Ok(())
    }
}

/// The rows of [`GeluGrad`].
struct GeluGradRows<'a> {
    x: &'a [f32],
}

impl RowKernel for GeluGradRows<'_> {
    #[inline(always)]
    fn row(&self, i: usize, d: &mut [f32]) {
        let x = &self.x[i * d.len()..(i + 1) * d.len()];
        for (d, &v) in d.iter_mut().zip(x) {
            let s = 1.0 / (1.0 + exp(-2.0 * GELU_K * v * (1.0 + GELU_C * v * v)));
            let du = GELU_K * (1.0 + 3.0 * GELU_C * v * v);
            *d *= s + 2.0 * v * s * (1.0 - s) * du;
        }
    }
}

/// Softmax of `scale * scores` over the last dimension under the causal mask, for scores
/// `[.., t, s]` of `t` new queries over `s` keys: query `i` sees keys `0..=s - t + i`.
pub(crate) fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let (t, s) = (scores.dim(D::Minus2)?, scores.dim(D::Minus1)?);
    if scores.device().is_cpu() {
        return Ok(scores.contiguous()?.apply_op1(CausalSoftmax { scale: scale as f32 })?);
    }
    let scores = (scores * scale)?;
    let scores = if t > 1 {
        let mask: Vec<f32> = (0..t * s)
            .map(|i| if i % s <= s - t + i / s { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        scores.broadcast_add(&Tensor::from_vec(mask, (t, s), scores.device())?)?
    } else {
        scores
    };
    Ok(candle_nn::ops::softmax(&scores, D::Minus1)?)
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = data(s, l, "causal-softmax")?.to_vec();
        softmax_rows(&mut out, l, self.scale)?;
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let d = g.copy()?;
        d.inplace_op2(y, &SoftmaxGrad { scale: self.scale })?;
        Ok(Some(d))
    }
}

impl InplaceOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        softmax_rows(data_mut(s, l, "causal-softmax")?, l, self.scale)
    }
}

/// The causal softmax of the scores `x` (laid out as `l`), row by row, in place.
fn softmax_rows(x: &mut [f32], l: &Layout, scale: f32) -> candle_core::Result<()> {
    let (t, w) = match l.dims() {
        [.., t, w] if *t > 0 && *w > 0 => (*t, *w),
        dims => candle_core::bail!("causal softmax needs two dimensions, got {dims:?}"),
    };
    let past = w.saturating_sub(t);
    kernels::each_row(x, w, &SoftmaxRows { t, past, scale });
    Ok(())
}

/// The rows of the causal softmax of `t` queries, after `past` keys that every query sees.
struct SoftmaxRows {
    t: usize,
    past: usize,
    scale: f32,
}

impl RowKernel for SoftmaxRows {
    #[inline(always)]
    fn row(&self, i: usize, y: &mut [f32]) {
        let (seen, masked) = y.split_at_mut((self.past + i % self.t + 1).min(y.len()));
        let top = max(seen);
        seen.iter_mut().for_each(|y| *y = exp((*y - top) * self.scale));
        let inv = 1.0 / sum(seen);
        seen.iter_mut().for_each(|y| *y *= inv);
        masked.fill(0.0);
    }
}

/// The causal softmax of `scale * scores`, in place, on the CPU.
pub(crate) fn causal_softmax_in_place(scores: &Tensor, scale: f64) -> Result<()> {
    Ok(scores.inplace_op1(&CausalSoftmax { scale: scale as f32 })?)
}

/// The gradient of [`causal_softmax`]'s scores from its output `y`, written over the
/// gradient `g` of that, on the CPU.
pub(crate) fn causal_softmax_grad_in_place(g: &Tensor, y: &Tensor, scale: f64) -> Result<()> {
    Ok(g.inplace_op2(&y.contiguous()?, &SoftmaxGrad { scale: scale as f32 })?)
}

/// `g = scale * y * (g - sum(g * y))` over the last dimension; masked entries have `y = 0`.
struct SoftmaxGrad {
    scale: f32,
}

impl InplaceOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        l: &Layout,
        y: &CpuStorage,
        ly: &Layout,
    ) -> candle_core::Result<()> {
        let (w, y) = (width(l, self.name())?, data(y, ly, self.name())?);
        let g = data_mut(dst, l, self.name())?;
        if g.len() != y.len() {
            candle_core::bail!("softmax-grad: {} gradients for {} outputs", g.len(), y.len());
        }
        kernels::each_row(g, w, &SoftmaxGradRows { y, scale: self.scale });
        Ok(())
    }
}

/// The rows of [`SoftmaxGrad`].
struct SoftmaxGradRows<'a> {
    y: &'a [f32],
    scale: f32,
}

impl RowKernel for SoftmaxGradRows<'_> {
    #[inline(always)]
    fn row(&self, i: usize, d: &mut [f32]) {
        let y = &self.y[i * d.len()..(i + 1) * d.len()];
        let dot = sum_of(y, d, |a, b| a * b);
        for (d, &yv) in d.iter_mut().zip(y) {
            *d = self.scale * yv * (*d - dot);
        }
    }
}

/// The cross-entropy of each row of `logits` `[n, vocab]` against `targets` `[n]` (`u32`),
/// `[n]`; a row whose target is 0 (padding) costs 0 and gets no gradient.
pub(crate) fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() {
        return Ok(logits.contiguous()?.apply_op2(&targets.contiguous()?, CrossEntropy)?);
    }
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    let weight = targets.ne(0u32)?.to_dtype(DType::F32)?;
    Ok((picked * weight)?.neg()?)
}

struct CrossEntropy;

/// The `u32` targets of a contiguous tensor.
fn targets<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [u32]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<u32>()?[start..end]),
        None => candle_core::bail!("cross-entropy needs contiguous targets"),
    }
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (data(s1, l1, self.name())?, width(l1, self.name())?);
        let t = targets(s2, l2)?;
        if t.len() * w != x.len() {
            candle_core::bail!("{} targets for logits {:?}", t.len(), l1.dims());
        }
        let lse = kernels::log_sum_exps(x, w);
        let out = (t.iter().zip(lse).enumerate())
            .map(|(i, (&target, lse))| match target as usize {
                0 => 0.0,
                target if target >= w => 0.0,
                target => lse - x[i * w + target],
            })
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(t.len())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let d = logits.copy()?;
        d.inplace_op3(&targets.contiguous()?, &g.contiguous()?, &CrossEntropyGrad)?;
        Ok((Some(d), None))
    }
}

/// The gradient of [`cross_entropy`]'s logits from the gradient `g` `[n]` of its rows,
/// written over the logits, on the CPU.
pub(crate) fn cross_entropy_grad_in_place(
    logits: &Tensor,
    targets: &Tensor,
    g: &Tensor,
) -> Result<()> {
    Ok(logits.inplace_op3(&targets.contiguous()?, &g.contiguous()?, &CrossEntropyGrad)?)
}

/// `x = g * (softmax(x) - onehot(target))` per row, 0 for padding rows.
struct CrossEntropyGrad;

impl InplaceOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        l: &Layout,
        t: &CpuStorage,
        lt: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let w = width(l, self.name())?;
        let (t, g) = (targets(t, lt)?, data(g, lg, self.name())?);
        let x = data_mut(dst, l, self.name())?;
        if t.len() * w != x.len() || g.len() != t.len() {
            candle_core::bail!(
                "{} targets, {} gradients for logits {:?}",
                t.len(),
                g.len(),
                l.dims()
            );
        }
        kernels::each_row(x, w, &CrossEntropyGradRows { t, g });
        Ok(())
    }
}

/// The rows of [`CrossEntropyGrad`]: each row's target, and the gradient of its loss.
struct CrossEntropyGradRows<'a> {
    t: &'a [u32],
    g: &'a [f32],
}

impl RowKernel for CrossEntropyGradRows<'_> {
    #[inline(always)]
    fn row(&self, i: usize, row: &mut [f32]) {
        let (target, g) = (self.t[i] as usize, self.g[i]);
        if target == 0 || target >= row.len() {
            row.fill(0.0);
            return;
        }
        let lse = log_sum_exp(row);
        row.iter_mut().for_each(|v| *v = g * exp(*v - lse));
        row[target] -= g;
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, DType, Device, Tensor, Var};

    /// Deterministic, varied test data of `shape`.
    fn var(shape: &[usize], salt: usize) -> Var {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| (((i * 37 + salt) % 23) as f32 - 11.0) / 5.0).collect();
        Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        assert_eq!(a.dims(), b.dims());
        for (x, y) in flat(a).iter().zip(flat(b)) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} against {y}");
        }
    }

    /// The fused op `fused` and the composed `composed` agree in value and in the gradients
    /// of `vars` of a weighted sum of their outputs.
    fn agree(vars: &[&Var], fused: &Tensor, composed: &Tensor) {
        close(fused, composed, 1e-5);
        let w = var(fused.dims(), 5).as_tensor().clone();
        let ga = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (composed * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for v in vars {
            close(ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap(), 1e-4);
        }
    }

    /// Value and gradients of `x`, the gain and the bias agree with candle's composed ops.
    #[test]
    fn the_layer_norm_is_the_composed_one() {
        let (x, gain, bias) = (var(&[3, 5, 16], 1), var(&[16], 6), var(&[16], 7));
        let t = x.as_tensor();
        let mean = t.mean_keepdim(D::Minus1).unwrap();
        let c = t.broadcast_sub(&mean).unwrap();
        let v = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let composed = c.broadcast_div(&(v + 1e-5).unwrap().sqrt().unwrap()).unwrap();
        let composed = composed
            .broadcast_mul(gain.as_tensor())
            .unwrap()
            .broadcast_add(bias.as_tensor())
            .unwrap();
        let fused = super::layer_norm(t, gain.as_tensor(), bias.as_tensor()).unwrap();
        agree(&[&x, &gain, &bias], &fused, &composed);
    }

    #[test]
    fn the_bias_is_a_broadcast_add() {
        // Large enough for the parallel column sums.
        let (x, b) = (var(&[8, 512, 24], 8), var(&[24], 9));
        let fused = super::add_bias(x.as_tensor(), b.as_tensor()).unwrap();
        agree(&[&x, &b], &fused, &x.as_tensor().broadcast_add(b.as_tensor()).unwrap());
    }

    #[test]
    fn gelu_is_candles() {
        let x = var(&[4, 64, 9], 2);
        agree(&[&x], &super::gelu(x.as_tensor()).unwrap(), &x.as_tensor().gelu().unwrap());
    }

    #[test]
    fn the_causal_softmax_is_mask_and_softmax() {
        // Six keys for four new queries: two cached keys that every query sees.
        let x = var(&[2, 3, 4, 6], 3);
        let (t, s) = (4, 6);
        let mask: Vec<f32> = (0..t * s)
            .map(|i| if i % s <= s - t + i / s { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        let mask = Tensor::from_vec(mask, (t, s), &Device::Cpu).unwrap();
        let scaled = (x.as_tensor() * 0.25).unwrap().broadcast_add(&mask).unwrap();
        let composed = candle_nn::ops::softmax(&scaled, D::Minus1).unwrap();
        agree(&[&x], &super::causal_softmax(x.as_tensor(), 0.25).unwrap(), &composed);
    }

    #[test]
    fn the_cross_entropy_is_log_softmax_and_gather_without_padding() {
        let x = var(&[6, 11], 4);
        let targets = Tensor::from_vec(vec![3u32, 0, 10, 1, 0, 7], 6, &Device::Cpu).unwrap();
        let logp = candle_nn::ops::log_softmax(x.as_tensor(), D::Minus1).unwrap();
        let picked = logp.gather(&targets.unsqueeze(1).unwrap(), 1).unwrap().squeeze(1).unwrap();
        let weight = targets.ne(0u32).unwrap().to_dtype(DType::F32).unwrap();
        let composed = (picked * weight).unwrap().neg().unwrap();
        let fused = super::cross_entropy(x.as_tensor(), &targets).unwrap();
        assert_eq!(flat(&fused)[1], 0.0);
        agree(&[&x], &fused, &composed);
    }
}
