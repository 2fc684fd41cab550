//! Hand-written AVX-512 kernels for the two products that dominate a training step of a
//! CIFAR-10 net: the first layer's `x Wᵀ` (many long dot products between rows) and
//! `dW = dyᵀ x` (rank-`batch` update of a wide matrix). At these shapes (batch 100,
//! 3072 → 50) a general GEMM spends much of its time packing; these kernels read the
//! row-major operands in place.
//!
//! Register blocks have sizes fixed at compile time (const generics), so the accumulators
//! stay in registers; edge blocks get their own instances.
//!
//! Callers check `is_x86_feature_detected!("avx512f")` and the shapes; see [`super`].

// Index loops over the fixed-size register arrays read more plainly than iterator chains.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

/// Rows of `x` and of `w` per register block: 4 × 4 accumulators of 16 lanes.
const MR: usize = 4;
const NR: usize = 4;
/// Rows of `w` per cache block in [`dot_rows`] (a multiple of `NR`).
const NC: usize = 32;
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

/// One `IB × JB` block of `x wᵀ`: rows `x0..x0+IB` of x against rows `w0..w0+JB` of w.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dot_block<const IB: usize, const JB: usize>(
    x: *const f32,
    w: *const f32,
    k: usize,
    out: &mut [[f32; NR]; MR],
) {
    let k_full = k - k % 16;
    let mut acc = [[_mm512_setzero_ps(); JB]; IB];
    let mut kk = 0;
    while kk < k_full {
        let mut xv = [_mm512_setzero_ps(); IB];
        for (a, v) in xv.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(x.add(a * k + kk));
        }
        for b in 0..JB {
            let wv = _mm512_loadu_ps(w.add(b * k + kk));
            for a in 0..IB {
                acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
        kk += 16;
    }
    if k_full < k {
        let mask = lanes(k - k_full);
        let mut xv = [_mm512_setzero_ps(); IB];
        for (a, v) in xv.iter_mut().enumerate() {
            *v = _mm512_maskz_loadu_ps(mask, x.add(a * k + k_full));
        }
        for b in 0..JB {
            let wv = _mm512_maskz_loadu_ps(mask, w.add(b * k + k_full));
            for a in 0..IB {
                acc[a][b] = _mm512_fmadd_ps(xv[a], wv, acc[a][b]);
            }
        }
    }
    for a in 0..IB {
        for b in 0..JB {
            out[a][b] = _mm512_reduce_add_ps(acc[a][b]);
        }
    }
}

/// `y[i, j] (+)= Σ_k x[i, k] w[j, k]` for the first `rows` rows of `x` and `y`.
///
/// `x`: (rows, k) row-major, `w`: (n, k) row-major, `y`: (rows, n) row-major.
///
/// # Safety
/// The CPU must support AVX-512F; the slices must hold the stated shapes.
#[target_feature(enable = "avx512f")]
pub unsafe fn dot_rows(
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    rows: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    assert!(x.len() >= rows * k && w.len() >= n * k && y.len() >= rows * n);
    let mut out = [[0.0f32; NR]; MR];
    // Rows of `w` are taken NC at a time (NC · k floats stay in L2) and every block of `x` rows
    // is run against them, so a wide `w` is read from memory once, not once per block of `x`.
    let mut j0 = 0;
    while j0 < n {
        let j_end = (j0 + NC).min(n);
        let mut i = 0;
        while i < rows {
            let ib = (rows - i).min(MR);
            let mut j = j0;
            while j < j_end {
                let jb = (j_end - j).min(NR);
                let (xp, wp) = (x.as_ptr().add(i * k), w.as_ptr().add(j * k));
                macro_rules! block {
                    ($($ib:literal, $jb:literal);*) => {
                        match (ib, jb) {
                            $(($ib, $jb) => dot_block::<$ib, $jb>(xp, wp, k, &mut out),)*
                            _ => unreachable!("block sizes are 1..=4"),
                        }
                    };
                }
                block!(4, 4; 4, 3; 4, 2; 4, 1; 3, 4; 3, 3; 3, 2; 3, 1;
                       2, 4; 2, 3; 2, 2; 2, 1; 1, 4; 1, 3; 1, 2; 1, 1);
                for (a, row) in out.iter().enumerate().take(ib) {
                    for (b, &v) in row.iter().enumerate().take(jb) {
                        let o = &mut y[(i + a) * n + j + b];
                        *o = if accumulate { *o + v } else { v };
                    }
                }
                j += NR;
            }
            i += MR;
        }
        j0 = j_end;
    }
}

/// Rows `j0..j0+JB` of `dw` for the column block starting at `c0`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn outer_block<const JB: usize>(
    dy: *const f32,
    x: *const f32,
    dw: *mut f32,
    (m, n, k): (usize, usize, usize),
    j0: usize,
    c0: usize,
    masks: &[__mmask16; VECS],
) {
    let mut acc = [[_mm512_setzero_ps(); VECS]; JB];
    for i in 0..m {
        let xr = x.add(i * k + c0);
        let mut xv = [_mm512_setzero_ps(); VECS];
        for v in 0..VECS {
            xv[v] = _mm512_maskz_loadu_ps(masks[v], xr.add(16 * v));
        }
        for b in 0..JB {
            let d = _mm512_set1_ps(*dy.add(i * n + j0 + b));
            for v in 0..VECS {
                acc[b][v] = _mm512_fmadd_ps(d, xv[v], acc[b][v]);
            }
        }
    }
    for (b, row) in acc.iter().enumerate() {
        for v in 0..VECS {
            _mm512_mask_storeu_ps(dw.add((j0 + b) * k + c0 + 16 * v), masks[v], row[v]);
        }
    }
}

/// `dw[j, c] = Σ_i dy[i, j] x[i, c]` for the columns `cols` of `dw` and `x`.
///
/// `dy`: (m, n) row-major, `x`: (m, k) row-major, `dw`: (n, k) row-major.
///
/// # Safety
/// The CPU must support AVX-512F; `dy` and `x` must hold the stated shapes and `dw` must point
/// to `n * k` floats; `cols` must lie within `0..k`. Writes only `dw[.., cols]`.
#[target_feature(enable = "avx512f")]
pub unsafe fn outer_cols(
    dy: &[f32],
    x: &[f32],
    dw: *mut f32,
    (m, n, k): (usize, usize, usize),
    cols: std::ops::Range<usize>,
) {
    assert!(dy.len() >= m * n && x.len() >= m * k && cols.end <= k);
    let mut c0 = cols.start;
    while c0 < cols.end {
        let width = (cols.end - c0).min(KC);
        let mut masks = [0 as __mmask16; VECS];
        for (v, mask) in masks.iter_mut().enumerate() {
            *mask = lanes(width.saturating_sub(16 * v));
        }
        let mut j = 0;
        while j < n {
            let shape = (m, n, k);
            let (d, xp) = (dy.as_ptr(), x.as_ptr());
            match (n - j).min(NR) {
                4 => outer_block::<4>(d, xp, dw, shape, j, c0, &masks),
                3 => outer_block::<3>(d, xp, dw, shape, j, c0, &masks),
                2 => outer_block::<2>(d, xp, dw, shape, j, c0, &masks),
                _ => outer_block::<1>(d, xp, dw, shape, j, c0, &masks),
            }
            j += NR;
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
