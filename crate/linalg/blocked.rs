//! The loops around the register blocks of the hand-written `x Wᵀ` kernels ([`super::avx2`],
//! [`super::avx512`]): panels of `k`, blocks of rows of `x`, and a copy of each panel of `x`
//! into rows a short way apart when `W` is large. The kernels give the register block; this
//! module decides which parts of the operands meet in which cache.
//!
//! Each entry of `y` is summed the same way whatever the caller's split of `x` or `W`: the
//! panels start at multiples of the panel width and each panel's sum is added to `y` in turn.

/// How a kernel's register blocks are laid over the operands.
pub(super) struct Blocking {
    /// Rows of `x` per register block.
    pub mr: usize,
    /// Rows of `w` per register block.
    pub nr: usize,
    /// Values of `k` per panel: the `nr` rows of `w` of a block stay in L1 while the panel of
    /// `x` streams past them from L2.
    pub kc: usize,
    /// Rows of `x` per row block: a mini-batch (100 rows) is one block and stays in L2 while
    /// every row of `w` runs against it; an evaluation chunk (5,000 rows) is taken in blocks of
    /// this many, or its panel would stream from L3 once for every `nr` rows of `w`.
    pub mc: usize,
    /// Rows of `w` from which the panels of `x` are copied (below, the copy costs more than it
    /// saves).
    pub copy_min_n: usize,
    /// Floats between the copied rows beyond `kc`: rows a power of two apart share L1 sets.
    pub copy_pad: usize,
}

thread_local! {
    /// The copy of a panel of `x`; taken while in use, so a call on a thread that is inside
    /// another call (rayon work-stealing) starts its own.
    static PANEL: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A register block's operands: rows of `x` (pointer, stride), rows of `w` (pointer, stride),
/// the panel's width, and where its sums are added in `y` (pointer, row stride).
pub(super) type BlockArgs = (
    (*const f32, usize),
    (*const f32, usize),
    usize,
    (*mut f32, usize),
);

/// `match (ib, jb)` over the listed register block sizes, each arm calling the kernel's
/// instance of that size: `dispatch!(dot_block, ib, jb, args; 4, 4; 4, 3; ...)`.
macro_rules! dispatch {
    ($f:ident, $ib:expr, $jb:expr, $args:expr; $($i:literal, $j:literal);*) => {
        match ($ib, $jb) {
            $(($i, $j) => $f::<$i, $j>($args),)*
            _ => unreachable!("block sizes are 1..=MR by 1..=NR"),
        }
    };
}
pub(super) use dispatch;

/// `y[i, j] (+)= Σ_c x[i, c] w[j, c]` over the columns `cols` (all of a panel, or several
/// whole panels: they start at `cols.start`) for the first `rows` rows of `x` and `y` and the
/// first `n` rows of `w`, through `block(ib, jb, args)`, which adds the `ib × jb` block of
/// products over one panel to `y`.
///
/// `x`: (rows, k) row-major, `w`: (n, k) row-major, `y`: (rows, n) with rows `ldy` apart.
///
/// # Safety
/// `block` must add exactly the products of its operands to `y`, reading and writing only
/// those; the slices must hold the stated shapes, and `y` must point to `rows` rows of `n`
/// writable floats, `ldy` apart, that nothing else accesses during the call.
pub(super) unsafe fn dot_rows(
    p: &Blocking,
    x: &[f32],
    w: &[f32],
    (y, ldy): (*mut f32, usize),
    (rows, n, k, accumulate): (usize, usize, usize, bool),
    cols: std::ops::Range<usize>,
    mut block: impl FnMut(usize, usize, BlockArgs),
) {
    assert!(x.len() >= rows * k && w.len() >= n * k && ldy >= n && cols.end <= k);
    if !accumulate {
        for i in 0..rows {
            std::slice::from_raw_parts_mut(y.add(i * ldy), n).fill(0.0);
        }
    }
    // Rows of x are k floats apart: at k = 3072 (12 KB) the rows of a block, and those of `w`,
    // would all fall in the same few sets of L1. For a large `w`, each panel of a row block of
    // x is copied into rows a panel apart first (one pass over x, a fifth of `w` at 3072 → 512).
    let copy = cols.len() > p.kc && n >= p.copy_min_n;
    let ldp = p.kc + p.copy_pad;
    let mut panel = if copy { PANEL.take() } else { Vec::new() };
    if copy {
        panel.resize(p.mc.min(rows) * ldp, 0.0);
    }
    // A row block of x (up to `mc` rows) stays in L2 while every row of w runs against it,
    // one panel at a time; within a panel, a register block's rows of w stay in L1 while the
    // block's rows of x stream past them.
    for i0 in (0..rows).step_by(p.mc) {
        let i_end = (i0 + p.mc).min(rows);
        for k0 in cols.clone().step_by(p.kc) {
            let kc = (cols.end - k0).min(p.kc);
            let (xb, ldx) = if copy {
                for (i, row) in panel.chunks_exact_mut(ldp).take(i_end - i0).enumerate() {
                    let from = (i0 + i) * k + k0;
                    row[..kc].copy_from_slice(&x[from..from + kc]);
                }
                (panel.as_ptr(), ldp)
            } else {
                (x.as_ptr().add(i0 * k + k0), k)
            };
            for j in (0..n).step_by(p.nr) {
                let jb = (n - j).min(p.nr);
                for i in (i0..i_end).step_by(p.mr) {
                    let ib = (i_end - i).min(p.mr);
                    let xs = (xb.add((i - i0) * ldx), ldx);
                    let ws = (w.as_ptr().add(j * k + k0), k);
                    let ys = (y.add(i * ldy + j), ldy);
                    block(ib, jb, (xs, ws, kc, ys));
                }
            }
        }
    }
    if copy {
        PANEL.set(panel);
    }
}
