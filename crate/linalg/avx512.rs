//! Hand-written AVX-512 kernels for the two products that dominate a training step of a
//! CIFAR-10 net: the first layer's `x Wᵀ` (many long dot products between rows) and
//! `dW = dyᵀ x` (rank-`batch` update of a wide matrix). At these shapes (batch 100,
//! 3072 → 50) a general GEMM spends much of its time packing; these kernels read the
//! row-major operands in place.
//!
//! Register blocks have sizes fixed at compile time (const generics), so the accumulators
//! stay in registers; edge blocks get their own instances.
//!
//! `x Wᵀ` runs over panels of 1,024 values of `k` ([`super::blocked`]) and reads `x` in place,
//! and a block's dot products are summed across their lanes sixteen at a time by one shuffle
//! tree ([`sum16`]) rather than by separate reductions. On the 2-core AMD EPYC with AVX-512 of
//! docs/SPEED.md (FMA peak 504–576 GFLOP/s on two threads), the shuffle tree and the panels
//! took 100×50×3072 on two threads from 120–121 to 79–104 µs at best (four runs), and
//! 100×512×3072 from 1,241–1,281 to 729–802 µs (`cargo bench --bench linalg`); the block of
//! 4 × 5 ([`MR`], [`NR`]) then took them to 77 and 683 µs. The panels were 512, 768, 1,024,
//! 1,536 or 3,072 values wide to within the noise. Each panel of `x` used to be copied into
//! rows 1,040 floats apart (rows 12 KB apart share sets of L1); within a training step the
//! copy cost more than it saved (see [`BLOCKING`]).
//!
//! `dyᵀ x` can also apply each block of `dW` to the weights as an SGD step instead of storing
//! it ([`Sink`]): the first layer's update then costs no pass over the weights of its own.
//!
//! Callers check `is_x86_feature_detected!("avx512f")` and the shapes; see [`super`].

// Index loops over the fixed-size register arrays read more plainly than iterator chains.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::blocked::{self, BlockArgs, Blocking};

/// Rows of `x` and of `w` per register block of [`block`]: 4 × 5 accumulators of 16 lanes
/// (with the 4 rows of `x` and one of `w`, 25 of the 32 registers), whose twenty sums two
/// shuffle trees take ([`sum16`]). Against 4 × 4, a fifth fewer loads of `x` per FMA:
/// 100×50×3072 on two threads took 77–78 µs instead of 84–89 (best and median of 300),
/// 100×512×3072 683–693 instead of 748–775 (`cargo bench --bench linalg`, in turn). 4 × 6 and
/// 5 × 4 were faster than 4 × 4 on one thread but not than 4 × 5, and 5 × 5 runs out of
/// registers.
const MR: usize = 4;
const NR: usize = 5;
/// How [`super::blocked::dot_rows`] lays this kernel's register blocks over the operands.
pub(super) const BLOCKING: Blocking = Blocking {
    mr: MR,
    nr: NR,
    // A block's 5 rows of `w` (20 KB) stay in L1 (48 KB) while the panel of `x` streams
    // from L2; a sum over 64 steps of 16 lanes per reduction.
    kc: 1024,
    mc: 100,
    // Never: at 12 rows a block (4 of `x`, 5 of `w`) a set of the 12-way L1 holds them all,
    // and in a training step the copy cost more than it saved (the first layer's forward
    // product took 0.073 ms per step without it, 0.083 with it; the wide net's 0.71–0.73
    // against 0.77; `klayer bench`, in turn).
    copy_min_n: usize::MAX,
    // Unused while nothing is copied; with a copy, rows 1,024 floats (4 KB) apart would all
    // share the same sets of L1.
    copy_pad: 16,
};
/// Rows of `dW` per register block of [`outer_block`]: 6 × 4 accumulators of 16 lanes, and
/// 4 loads of `x` and 6 broadcasts of `dy` per 24 FMAs (4 × 4 needed 8 per 16). 100×50×3072
/// on two threads took 61 µs instead of 74 (best of 300, `cargo bench --bench linalg`), 92 %
/// of the FMA peak; 5 rows took 61–62, 7 would not fit in the registers.
const OUTER_NR: usize = 6;
/// Vectors of 16 lanes per column block of `dW`.
const VECS: usize = 4;
/// Columns of `dW` per column block.
const KC: usize = 16 * VECS;

/// Mask selecting the first `n` (≤ 16) lanes.
#[inline]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        !0
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The horizontal sums of sixteen vectors, lane `l` of the result being the sum of `v[l]`'s
/// lanes: a tree of 30 shuffles and 15 additions instead of sixteen separate reductions.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sum16(v: &[__m512; 16]) -> __m512 {
    // Pairs: lanes of v[2p] and v[2p+1] interleaved, two partial sums of each per 128 bits.
    let mut s = [_mm512_setzero_ps(); 8];
    for p in 0..8 {
        let (a, b) = (v[2 * p], v[2 * p + 1]);
        s[p] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    }
    // Quads: one partial sum of each of four vectors per 32 bits of every 128.
    let mut q = [_mm512_setzero_ps(); 4];
    for p in 0..4 {
        let (a, b) = (_mm512_castps_pd(s[2 * p]), _mm512_castps_pd(s[2 * p + 1]));
        q[p] = _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)),
        );
    }
    // Across the 128-bit lanes.
    let h0 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0b10_00_10_00>(q[0], q[1]),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(q[0], q[1]),
    );
    let h1 = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0b10_00_10_00>(q[2], q[3]),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(q[2], q[3]),
    );
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<0b10_00_10_00>(h0, h1),
        _mm512_shuffle_f32x4::<0b11_01_11_01>(h0, h1),
    )
}

/// Adds one `IB × JB` block of `x wᵀ` over `kc` values of k to `y`: rows of x from `x`
/// (stride `ldx`) against rows of w from `w` (stride `ldw`), into `y` (row stride `ldy`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dot_block<const IB: usize, const JB: usize>(
    ((x, ldx), (w, ldw), kc, (y, ldy)): BlockArgs,
) {
    let full = kc - kc % 16;
    let mut acc = [[_mm512_setzero_ps(); JB]; IB];
    let mut kk = 0;
    while kk < full {
        let mut xv = [_mm512_setzero_ps(); IB];
        for a in 0..IB {
            xv[a] = _mm512_loadu_ps(x.add(a * ldx + kk));
        }
        for b in 0..JB {
            let wv = _mm512_loadu_ps(w.add(b * ldw + kk));
            for a in 0..IB {
                acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
        kk += 16;
    }
    if full < kc {
        let mask = lanes(kc - full);
        let mut xv = [_mm512_setzero_ps(); IB];
        for a in 0..IB {
            xv[a] = _mm512_maskz_loadu_ps(mask, x.add(a * ldx + full));
        }
        for b in 0..JB {
            let wv = _mm512_maskz_loadu_ps(mask, w.add(b * ldw + full));
            for a in 0..IB {
                acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
    }
    // The block's sums, sixteen per shuffle tree, in row-major order.
    let mut sums = [0.0f32; 32];
    for (g, out) in sums
        .chunks_exact_mut(16)
        .enumerate()
        .take((IB * JB).div_ceil(16))
    {
        let mut v = [_mm512_setzero_ps(); 16];
        for (f, v) in v.iter_mut().enumerate() {
            let at = 16 * g + f;
            if at < IB * JB {
                *v = acc[at / JB][at % JB];
            }
        }
        _mm512_storeu_ps(out.as_mut_ptr(), sum16(&v));
    }
    for a in 0..IB {
        let yr = y.add(a * ldy);
        for b in 0..JB {
            *yr.add(b) += sums[a * JB + b];
        }
    }
}

/// Adds the `ib × jb` register block of `x wᵀ` over one panel to `y` ([`dot_block`] of that
/// size): the block function that [`super::blocked::dot_rows`] calls with [`BLOCKING`].
///
/// # Safety
/// The CPU must support AVX-512F; `ib` and `jb` must lie in `1..=MR` and `1..=NR`, and `args` must
/// point to operands of that many rows and of the panel's width, and to a block of `y` that
/// nothing else accesses during the call.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn block(ib: usize, jb: usize, args: BlockArgs) {
    blocked::dispatch!(dot_block, ib, jb, args;
        4, 5; 4, 4; 4, 3; 4, 2; 4, 1; 3, 5; 3, 4; 3, 3; 3, 2; 3, 1;
        2, 5; 2, 4; 2, 3; 2, 2; 2, 1; 1, 5; 1, 4; 1, 3; 1, 2; 1, 1);
}

/// Rows `j0..j0+JB` of `dw` for the column block starting at `c0`, passed to `sink`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn outer_block<const JB: usize, const V: usize>(
    (dy, (at_i, at_j)): (*const f32, (usize, usize)),
    x: *const f32,
    dw: *mut f32,
    (m, k): (usize, usize),
    (j0, c0): (usize, usize),
    masks: &[__mmask16; VECS],
    sink: Sink,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; JB];
    if let Sink::Sgd { .. } = sink {
        // The weights are read only after the sums: they arrive meanwhile.
        for b in 0..JB {
            for v in 0..V {
                _mm_prefetch::<_MM_HINT_T0>(dw.add((j0 + b) * k + c0 + 16 * v) as *const i8);
            }
        }
    }
    for i in 0..m {
        let xr = x.add(i * k + c0);
        let mut xv = [_mm512_setzero_ps(); V];
        for v in 0..V {
            xv[v] = _mm512_maskz_loadu_ps(masks[v], xr.add(16 * v));
        }
        for b in 0..JB {
            let d = _mm512_set1_ps(*dy.add(i * at_i + (j0 + b) * at_j));
            for v in 0..V {
                acc[b][v] = _mm512_fmadd_ps(d, xv[v], acc[b][v]);
            }
        }
    }
    // One loop per kind of sink, each unrolled: a match per vector inside one loop made the
    // compiler spill the 24 sums to the stack and branch per row (the fused SGD step's weight
    // gradient took 0.073 ms per step instead of 0.070, `klayer bench`, in turn).
    let at = |b: usize, v: usize| dw.add((j0 + b) * k + c0 + 16 * v);
    match sink {
        Sink::Store => {
            for (b, row) in acc.iter().enumerate() {
                for v in 0..V {
                    _mm512_mask_storeu_ps(at(b, v), masks[v], row[v]);
                }
            }
        }
        Sink::Add => {
            for (b, row) in acc.iter().enumerate() {
                for v in 0..V {
                    let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], at(b, v)), row[v]);
                    _mm512_mask_storeu_ps(at(b, v), masks[v], sum);
                }
            }
        }
        Sink::Sgd { eta, decay } => {
            // `w -= eta * (g + decay * w)`, rounded step by step as in the optimizer.
            let eta = _mm512_set1_ps(eta);
            for (b, row) in acc.iter().enumerate() {
                for v in 0..V {
                    let w = _mm512_maskz_loadu_ps(masks[v], at(b, v));
                    let g = match decay {
                        Some(d) => _mm512_add_ps(row[v], _mm512_mul_ps(_mm512_set1_ps(d), w)),
                        None => row[v],
                    };
                    let step = _mm512_mul_ps(eta, g);
                    _mm512_mask_storeu_ps(at(b, v), masks[v], _mm512_sub_ps(w, step));
                }
            }
        }
    }
}

/// What [`outer_cols`] does with a block of `dW`.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    /// Stores it in `dw`.
    Store,
    /// Adds it to what `dw` holds (a bias put there before).
    Add,
    /// Applies it to the weights `dw` points to: `w -= eta * (g + decay * w)` (or
    /// `w -= eta * g`), each operation rounded as `SgdRule::apply` (`crate::train`) rounds it,
    /// so the weights come out as from the stored gradient and the optimizer's pass.
    Sgd {
        /// The learning rate.
        eta: f32,
        /// `2λ`, if the L2 term's gradient is added.
        decay: Option<f32>,
    },
}

/// `g[j, c] = Σ_i dy[i, j] x[i, c]` for the columns `cols` of `dw` and `x`, stored in `dw` or
/// applied to the weights there as `sink` says.
///
/// `dy`: (m, n) row-major, `x`: (m, k) row-major, `dw`: (n, k) row-major.
///
/// # Safety
/// The CPU must support AVX-512F; `dy` and `x` must hold the stated shapes and `dw` must point
/// to `n * k` floats; `cols` must lie within `0..k`. Reads and writes only `dw[.., cols]`.
#[target_feature(enable = "avx512f")]
pub unsafe fn outer_cols(
    dy: &[f32],
    x: &[f32],
    dw: *mut f32,
    (m, n, k): (usize, usize, usize),
    cols: std::ops::Range<usize>,
    sink: Sink,
) {
    outer_cols_strided((dy, (n, 1)), x, dw, (m, n, k), cols, sink);
}

/// [`outer_cols`] with `dy[i, j]` read at `dy[i * at.0 + j * at.1]`: `(n, 1)` reads `dy` (m, n)
/// row-major; `(1, m)` reads an (n, m) row-major `a` as `dy = aᵀ`, which makes the product
/// `a · x`, the layout of `dy W` and, with `x` a transposed `W`, of `x Wᵀ`. A block of columns
/// takes as many vectors as it has columns for (a layer of 10 outputs does not run four).
///
/// # Safety
/// As [`outer_cols`], `dy` holding every index the strides reach.
#[target_feature(enable = "avx512f")]
pub unsafe fn outer_cols_strided(
    (dy, at): (&[f32], (usize, usize)),
    x: &[f32],
    dw: *mut f32,
    (m, n, k): (usize, usize, usize),
    cols: std::ops::Range<usize>,
    sink: Sink,
) {
    let last = (m.max(1) - 1) * at.0 + (n.max(1) - 1) * at.1;
    assert!(
        (m == 0 || n == 0 || dy.len() > last) && x.len() >= m * k && cols.end <= k,
        "outer_cols: operands shorter than their shapes"
    );
    let (d, xp) = ((dy.as_ptr(), at), x.as_ptr());
    let mut c0 = cols.start;
    while c0 < cols.end {
        let width = (cols.end - c0).min(KC);
        let mut masks = [0 as __mmask16; VECS];
        for (v, mask) in masks.iter_mut().enumerate() {
            *mask = lanes(width.saturating_sub(16 * v));
        }
        let masks = &masks;
        // As many vectors as the block's columns need.
        let vectors = width.div_ceil(16);
        for j in (0..n).step_by(OUTER_NR) {
            macro_rules! rows {
                ($($jb:literal),*) => {
                    match ((n - j).min(OUTER_NR), vectors) {
                        $(
                            ($jb, 1) => outer_block::<$jb, 1>(d, xp, dw, (m, k), (j, c0), masks, sink),
                            ($jb, 2) => outer_block::<$jb, 2>(d, xp, dw, (m, k), (j, c0), masks, sink),
                            ($jb, 3) => outer_block::<$jb, 3>(d, xp, dw, (m, k), (j, c0), masks, sink),
                            ($jb, _) => outer_block::<$jb, 4>(d, xp, dw, (m, k), (j, c0), masks, sink),
                        )*
                        _ => unreachable!("blocks of 1 to OUTER_NR rows"),
                    }
                };
            }
            rows!(6, 5, 4, 3, 2, 1);
        }
        c0 += width;
    }
}

/// Runs `iters` rounds of 12 independent 16-lane FMAs (enough chains to keep the FMA pipes busy
/// through their latency) and returns a value that depends on all of them.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn fma_chains(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(1.0); 12];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for v in acc {
        sum = _mm512_add_ps(sum, v);
    }
    _mm512_reduce_add_ps(sum)
}
