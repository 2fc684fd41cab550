//! A hand-written AVX2 + FMA kernel for the first layer's forward product `y = x Wᵀ` (see
//! [`super::avx512`] for the AVX-512 ones): dot products of rows, reading the row-major
//! operands in place. (For `dW = dyᵀ x` on AVX2, `gemm`'s packing kernel is faster than an
//! in-place one: the rows of `x` are 12 KB apart.)
//!
//! An AVX2 core has 16 vector registers of 8 lanes; a register block uses 12 of them as
//! accumulators and the other 4 for loads, so two FMAs can issue every cycle. The rows of a
//! mini-batch are 12 KB apart at 3072 inputs, as are those of `W`: all of a block's rows would
//! share a few sets of L1, so for a large `W` each panel of `x` is first copied into rows one
//! panel apart.
//! (On a 3072 → 512 layer this took the product from 66 to 82–88 GFLOP/s on one core of the
//! 2-core AMD EPYC of docs/SPEED.md, 104 GFLOP/s peak.)
//!
//! Callers check `is_x86_feature_detected!("avx2")` and `("fma")` and the shapes; see [`super`].

// Index loops over the fixed-size register arrays read more plainly than iterator chains.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::blocked::{self, BlockArgs, Blocking};

/// Rows of `x` and of `w` per register block of [`block`]: 3 × 4 accumulators.
const MR: usize = 3;
const NR: usize = 4;
/// How [`super::blocked::dot_rows`] lays this kernel's register blocks over the operands.
pub(super) const BLOCKING: Blocking = Blocking {
    mr: MR,
    nr: NR,
    // The `NR` rows of `w` of a block (8 KB) stay in L1 while the panel of `x` (a mini-batch's
    // 100 rows, 200 KB, or a thread's 50) streams from L2.
    kc: 512,
    mc: 102,
    // Below, the copy costs more than it saves: with it, the default net's `x Wᵀ` took a
    // median of 0.209 ms per step against 0.206 without (`klayer bench`, 8 runs each).
    copy_min_n: 128,
    copy_pad: 0,
};

/// Eight `-1` then eight `0`: a mask of the first `n` lanes is the eight words from `8 - n`.
static MASK_WORDS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// Mask selecting the first `n` (≤ 8) lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn lanes(n: usize) -> __m256i {
    _mm256_loadu_si256(MASK_WORDS.as_ptr().add(8 - n.min(8)).cast())
}

/// The horizontal sums of four vectors, as the four lanes of one.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    let ab = _mm256_hadd_ps(a, b);
    let cd = _mm256_hadd_ps(c, d);
    let abcd = _mm256_hadd_ps(ab, cd);
    _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1))
}

/// Adds one `IB × JB` block of `x wᵀ` over `kc` values of k to `y`: rows of x from `x`
/// (stride `ldx`) against rows of w from `w` (stride `ldw`), into `y` (row stride `ldy`).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_block<const IB: usize, const JB: usize>(
    ((x, ldx), (w, ldw), kc, (y, ldy)): BlockArgs,
) {
    let full = kc - kc % 8;
    let mut acc = [[_mm256_setzero_ps(); JB]; IB];
    let mut kk = 0;
    while kk < full {
        let mut xv = [_mm256_setzero_ps(); IB];
        for a in 0..IB {
            xv[a] = _mm256_loadu_ps(x.add(a * ldx + kk));
        }
        for b in 0..JB {
            let wv = _mm256_loadu_ps(w.add(b * ldw + kk));
            for a in 0..IB {
                acc[a][b] = _mm256_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
        kk += 8;
    }
    if full < kc {
        let mask = lanes(kc - full);
        let mut xv = [_mm256_setzero_ps(); IB];
        for a in 0..IB {
            xv[a] = _mm256_maskload_ps(x.add(a * ldx + full), mask);
        }
        for b in 0..JB {
            let wv = _mm256_maskload_ps(w.add(b * ldw + full), mask);
            for a in 0..IB {
                acc[a][b] = _mm256_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
    }
    let zero = _mm256_setzero_ps();
    for a in 0..IB {
        let at = |b: usize| if b < JB { acc[a][b] } else { zero };
        let mut sums = [0.0f32; 4];
        _mm_storeu_ps(sums.as_mut_ptr(), sum4(at(0), at(1), at(2), at(3)));
        for b in 0..JB {
            *y.add(a * ldy + b) += sums[b];
        }
    }
}

/// Adds the `ib × jb` register block of `x wᵀ` over one panel to `y` ([`dot_block`] of that
/// size): the block function that [`super::blocked::dot_rows`] calls with [`BLOCKING`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `ib` and `jb` must lie in `1..=MR` and `1..=NR`, and `args` must
/// point to operands of that many rows and of the panel's width, and to a block of `y` that
/// nothing else accesses during the call.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn block(ib: usize, jb: usize, args: BlockArgs) {
    blocked::dispatch!(dot_block, ib, jb, args; 3, 4; 3, 3; 3, 2; 3, 1; 2, 4; 2, 3; 2, 2; 2, 1; 1, 4; 1, 3; 1, 2; 1, 1);
}

/// Runs `iters` rounds of 12 independent 8-lane FMAs (enough chains to keep both FMA pipes busy
/// through their latency) and returns a value that depends on all of them.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn fma_chains(iters: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for v in acc {
        sum = _mm256_add_ps(sum, v);
    }
    let mut out = [0.0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), sum);
    out.iter().sum()
}
