//! The arithmetic of the CPU training steps, in a form the compiler vectorises, compiled for
//! the widest vectors the CPU has.
//!
//! The crates build for baseline x86-64, whose vectors hold four `f32`. [`each_row`] runs a
//! [`RowKernel`] over the rows of a buffer through `pulp`, which compiles the kernel again for
//! AVX-512 and for AVX2 and picks one at run time (safely: no `unsafe` here or in the
//! caller). The helpers below are plain arithmetic that vectorises once compiled so: a
//! polynomial [`exp`] (the C library's `expf` is a call per element), and sums kept in
//! [`LANES`] running totals (one running total is a chain of additions the compiler may not
//! reorder). The order of every sum is fixed, so results are the same bits on every machine
//! and for any number of threads.
//!
//! ```
//! use fine_drums_train::kernels::{self, RowKernel};
//!
//! /// Each row's softmax, in place.
//! struct Softmax;
//!
//! impl RowKernel for Softmax {
//!     #[inline(always)]
//!     fn row(&self, _i: usize, row: &mut [f32]) {
//!         let top = kernels::max(row);
//!         row.iter_mut().for_each(|v| *v = kernels::exp(*v - top));
//!         let inv = 1.0 / kernels::sum(row);
//!         row.iter_mut().for_each(|v| *v *= inv);
//!     }
//! }
//!
//! let mut x = vec![0.0, 0.0, 1.0, 1.0];
//! kernels::each_row(&mut x, 2, &Softmax);
//! assert_eq!(x, [0.5; 4]);
//! ```

use rayon::prelude::*;

/// Below this many elements [`each_row`] runs on the calling thread: a sampling step's rows
/// are too small to share.
const PARALLEL: usize = 1 << 15;

/// A kernel that writes a buffer row by row, for [`each_row`].
///
/// Implementations mark [`row`](RowKernel::row) `#[inline(always)]`, so that its body is
/// compiled into each instruction set's copy of the loop. (A closure's body would be compiled
/// once, for the baseline, and called from there.)
pub trait RowKernel: Sync {
    /// Writes row `i` of the buffer, `out`.
    fn row(&self, i: usize, out: &mut [f32]);
}

/// One row of a [`RowKernel`], as `pulp` dispatches it.
struct OneRow<'a, K>(&'a K, usize, &'a mut [f32]);

impl<K: RowKernel> pulp::WithSimd for OneRow<'_, K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.0.row(self.1, self.2)
    }
}

/// All the rows (of the given width) of a [`RowKernel`], as `pulp` dispatches them.
struct AllRows<'a, K>(&'a K, usize, &'a mut [f32]);

impl<K: RowKernel> pulp::WithSimd for AllRows<'_, K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.2.chunks_exact_mut(self.1).enumerate().for_each(|(i, r)| self.0.row(i, r))
    }
}

/// Runs `kernel` over the rows of width `width` of `out` (a last, shorter row is left alone),
/// compiled for the widest vectors the CPU has, on rayon's threads when `out` is large.
pub fn each_row(out: &mut [f32], width: usize, kernel: &impl RowKernel) {
    let arch = pulp::Arch::new();
    if out.len() < PARALLEL || width == 0 {
        arch.dispatch(AllRows(kernel, width.max(1), out));
    } else {
        out.par_chunks_exact_mut(width)
            .enumerate()
            .for_each(|(i, r)| arch.dispatch(OneRow(kernel, i, r)));
    }
}

/// The log-sum-exp of each row of width `width` of `x` (as [`log_sum_exp`]), compiled and
/// shared out as [`each_row`] does.
pub fn log_sum_exps(x: &[f32], width: usize) -> Vec<f32> {
    let arch = pulp::Arch::new();
    let width = width.max(1);
    if x.len() < PARALLEL {
        arch.dispatch(LogSumExps(x, width))
    } else {
        x.par_chunks(width * 64).flat_map_iter(|x| arch.dispatch(LogSumExps(x, width))).collect()
    }
}

/// The rows' log-sum-exps, as `pulp` dispatches them.
struct LogSumExps<'a>(&'a [f32], usize);

impl pulp::WithSimd for LogSumExps<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
        self.0.chunks_exact(self.1).map(log_sum_exp).collect()
    }
}

/// `ln(sum(e^x))` of a row, from its maximum (negative infinity for an empty row).
#[inline(always)]
pub fn log_sum_exp(x: &[f32]) -> f32 {
    let top = max(x);
    top + sum_of(x, x, |v, _| exp(v - top)).ln()
}

/// `e^x` to within 3e-7 (relative) of the C library's `expf`, in plain arithmetic that the
/// compiler vectorises: `2^k e^r`, `k` the nearest integer to `x / ln 2` and a degree-6
/// polynomial for `e^r`, `|r| <= ln 2 / 2`. Inputs are clamped to -87..88, where `f32` keeps
/// its full precision; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r / 720.0)))));
    // `2^k` from the bits of `shifted`, whose mantissa ends in `k` (-126..=127 here): integer
    // arithmetic that vectorises, where `k as i32` is a saturating conversion, one at a time.
    let biased = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    p * f32::from_bits(biased << 23)
}

/// The running totals of the sums below: one per lane of a 512-bit vector, added up in order
/// at the end.
pub const LANES: usize = 16;

/// `sum(f(a[i], b[i]))` over two rows of equal length, in [`LANES`] running totals.
#[inline(always)]
pub fn sum_of(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y)).sum();
    for (x, y) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += f(x, y);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `sum(f(a[i], b[i], c[i]))` over three rows of equal length, as [`sum_of`].
#[inline(always)]
pub fn sum_of3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb, cc) = (a.chunks_exact(LANES), b.chunks_exact(LANES), c.chunks_exact(LANES));
    let tail: f32 = (ca.remainder().iter().zip(cb.remainder()).zip(cc.remainder()))
        .map(|((&x, &y), &z)| f(x, y, z))
        .sum();
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        for (((s, &x), &y), &z) in acc.iter_mut().zip(x).zip(y).zip(z) {
            *s += f(x, y, z);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The sum of a row, as [`sum_of`].
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    sum_of(x, x, |v, _| v)
}

/// The largest value of a row, in [`LANES`] running maxima (NaN is passed over, as
/// [`f32::max`] does; an empty row gives negative infinity).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (m, &v) in acc.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    acc.iter().copied().fold(tail, f32::max)
}
