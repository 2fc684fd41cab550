//! Matrix products on ndarray views, computed by the `gemm` crate (AVX-512 / AVX2 / FMA kernels
//! chosen at run time, multithreaded with rayon for large products).
//!
//! Every layer's heavy lifting goes through [`matmul_into`]; views may be transposed (`.t()`)
//! or strided, nothing is copied. The three products of a fully connected layer,
//! [`matmul_nt`] (`x Wᵀ`), [`matmul_tn`] (`dyᵀ x`) and [`matmul_nn`] (`dy W`), split their rows
//! or columns between the threads themselves, so each entry is summed in the same order
//! whatever the number of threads; for f32 they use hand-written kernels where the CPU has
//! them ([`kernels`]): AVX-512 for all three, AVX2 for `x Wᵀ` (on AVX2, `gemm`'s packing kernel
//! is the faster `dyᵀ x`, and the faster `x Wᵀ` of an evaluation chunk through a wide layer:
//! see `PACKED_MIN_ROWS`).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod blocked;

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::Scalar;

static CUSTOM_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns the hand-written f32 kernels on or off (on by default; off means every product goes
/// through the `gemm` crate). For benchmarks and for checking the kernels against `gemm`.
pub fn set_custom_kernels(on: bool) {
    CUSTOM_KERNELS.store(on, Ordering::Relaxed);
}

/// The instruction set of the hand-written f32 kernels in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// AVX-512F: 16 lanes, 32 registers.
    Avx512,
    /// AVX2 with FMA: 8 lanes, 16 registers.
    Avx2,
    /// None: every product goes through the `gemm` crate.
    Gemm,
}

/// The kernels [`matmul_nt`] and [`matmul_tn`] use for f32 on this machine (the widest the CPU
/// has, unless [`set_custom_kernels`] turned them off).
pub fn kernels() -> Kernels {
    if !CUSTOM_KERNELS.load(Ordering::Relaxed) {
        return Kernels::Gemm;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernels::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels::Avx2;
        }
    }
    Kernels::Gemm
}

/// True if [`matmul_nt`] and [`matmul_tn`] use hand-written kernels for f32 on this machine.
pub fn custom_kernels_active() -> bool {
    kernels() != Kernels::Gemm
}

/// On AVX2, `x Wᵀ` with at least this many rows of `x` (an evaluation chunk, not a
/// mini-batch) and [`PACKED_MIN_COLS`] rows of `W` goes through `gemm`'s packing kernel, in
/// blocks of [`PACKED_BLOCK_ROWS`] rows: packing `W` once per block pays off there.
const PACKED_MIN_ROWS: usize = 1000;
/// See [`PACKED_MIN_ROWS`].
const PACKED_MIN_COLS: usize = 128;
/// See [`PACKED_MIN_ROWS`].
const PACKED_BLOCK_ROWS: usize = 500;

/// A mini-batch's `x Wᵀ` with `W` of at least this many rows and more than
/// [`SPLIT_W_MIN_K`] columns (3072 → 512: 6 MB, read from L3 or memory every step) splits the
/// rows of `W` between the threads, not those of `x`; smaller layers split `x`.
const SPLIT_W_MIN_ROWS: usize = 128;
/// See [`SPLIT_W_MIN_ROWS`].
const SPLIT_W_MIN_K: usize = 512;

/// Up to this many output rows (a layer's width) and [`OUTER_KERNEL_MAX_M`] rows of `dy` (a
/// mini-batch), the AVX-512 in-place kernel for `dyᵀ x` is at least as fast as `gemm`'s
/// packed one (`cargo bench --bench linalg`, best of 300 on the 2-core AVX-512 EPYC of
/// docs/SPEED.md: at 100×512×3072, 618 against 624 µs on two threads and 1,211 against 1,209
/// on one). At 1,024 rows `gemm` is 5 % faster on one thread.
const OUTER_KERNEL_MAX_N: usize = 512;
/// See [`OUTER_KERNEL_MAX_N`]: above this many rows of `dy`, a 64-column strip of `x` no longer
/// stays in L1 while each block of rows of `dW` runs over it, and `gemm` is faster (at
/// 500×512×3072, 3,246 against 3,448 µs on two threads).
const OUTER_KERNEL_MAX_M: usize = 128;

fn as_f32<T: Scalar>(s: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice's memory is a valid [f32] of the same length.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// `s` as f32 values, if `T` is f32.
pub(crate) fn as_f32_mut<T: Scalar>(s: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice's memory is a valid [f32] of the same length.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// Number of parallel tasks for a product of `work` multiply-adds.
fn tasks_for(work: usize) -> usize {
    if work >= PARALLEL_THRESHOLD {
        rayon::current_num_threads().max(1)
    } else {
        1
    }
}

/// The length of each of `tasks` parts of `len` (the last may be shorter): a multiple of `unit`.
fn part_len(len: usize, tasks: usize, unit: usize) -> usize {
    len.div_ceil(tasks.max(1)).div_ceil(unit).max(1) * unit
}

/// `len` split into `tasks` ranges whose lengths (but the last) are multiples of `unit`.
fn split(len: usize, tasks: usize, unit: usize) -> Vec<std::ops::Range<usize>> {
    let per = part_len(len, tasks, unit);
    (0..len)
        .step_by(per)
        .map(|s| s..(s + per).min(len))
        .collect()
}

/// Runs `f` on every range, in parallel when there is more than one.
fn for_each_range(
    ranges: Vec<std::ops::Range<usize>>,
    f: impl Fn(std::ops::Range<usize>) + Sync + Send,
) {
    if ranges.len() <= 1 {
        ranges.into_iter().for_each(f);
    } else {
        use rayon::prelude::*;
        ranges.into_par_iter().for_each(f);
    }
}

/// `y = x · wᵀ` (or `y += x · wᵀ` with `accumulate`): a fully connected layer's forward pass.
///
/// With the hand-written kernels, the rows of `x` (of a large `w`; on AVX-512, of a mini-batch,
/// units of a panel of `k` by half of the rows: `by_panels`) are split between the threads
/// and each entry of `y` is summed in the same order whatever the number of threads.
///
/// # Shapes
/// `x`: (m, k), `w`: (n, k), `y`: (m, n).
///
/// **Panics** if the shapes do not fit.
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// let x = array![[1.0f32, 2.0, 3.0]];
/// let w = array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 1.0]];
/// let mut y = Array2::zeros((1, 2));
/// klayer::linalg::matmul_nt(x.view(), w.view(), y.view_mut(), false);
/// assert_eq!(y, array![[1.0, 5.0]]);
/// ```
pub fn matmul_nt<T: Scalar>(
    x: ArrayView2<T>,
    w: ArrayView2<T>,
    mut y: ArrayViewMut2<T>,
    accumulate: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if x.ncols() == w.ncols() && y.dim() == (x.nrows(), w.nrows()) {
        let kernel = kernels();
        if let (Some(xs), Some(ws), Some(ys), true) = (
            x.as_slice().and_then(as_f32),
            w.as_slice().and_then(as_f32),
            y.as_slice_mut().and_then(as_f32_mut),
            kernel != Kernels::Gemm,
        ) {
            let (m, n, k) = (x.nrows(), w.nrows(), x.ncols());
            if n == 0 || m == 0 {
                return;
            }
            if kernel == Kernels::Avx2 && m >= PACKED_MIN_ROWS && n >= PACKED_MIN_COLS {
                // Blocks of a fixed number of rows: the same products whatever the number of
                // threads.
                return gemm_in_parts(x, w.t(), y, Axis(0), PACKED_BLOCK_ROWS, accumulate);
            }
            if kernel == Kernels::Avx512 && broadcasts_win(n, k) {
                // A small layer: `x` times a transposed copy of `w`, by broadcasts (see
                // `broadcasts_win`). The copy is written row by row, its reads strided (written
                // down its columns, it took twice as long).
                let mut wt = vec![0.0f32; k * n];
                for (c, out) in wt.chunks_exact_mut(n).enumerate() {
                    for (o, row) in out.iter_mut().zip(ws.chunks_exact(k)) {
                        *o = row[c];
                    }
                }
                let sink = if accumulate {
                    avx512::Sink::Add
                } else {
                    avx512::Sink::Store
                };
                // SAFETY: AVX-512F was detected; the slices hold the shapes.
                unsafe { rows_times(xs, &wt, ys, (m, k, n), sink) };
                return;
            }
            let tasks = tasks_for(m * n * k);
            if tasks > 1 && n >= SPLIT_W_MIN_ROWS && k > SPLIT_W_MIN_K {
                // A large `w` (the first layer of a wide net) is split instead of `x`: each
                // thread then reads half of it rather than all of it.
                let y_addr = ys.as_mut_ptr() as usize;
                for_each_range(split(n, tasks, 16), |js| {
                    // SAFETY: the kernel's instruction set was detected; tasks write disjoint
                    // columns of y, which outlives the call.
                    unsafe {
                        let (wc, yc) = (
                            &ws[js.start * k..js.end * k],
                            (y_addr as *mut f32).add(js.start),
                        );
                        dot_rows(kernel, xs, wc, (yc, n), m, js.len(), k, accumulate)
                    }
                });
                return;
            }
            let kc = avx512::BLOCKING.kc;
            if tasks > 1 && kernel == Kernels::Avx512 && m <= PANEL_SPLIT_MAX_ROWS && k > kc {
                // SAFETY: AVX-512F was detected; the slices hold the shapes.
                unsafe { by_panels(xs, ws, ys, (m, n, k), accumulate, tasks) };
                return;
            }
            // Tasks take whole register blocks of rows (4 for AVX-512, 3 for AVX2).
            let unit = if kernel == Kernels::Avx512 { 4 } else { 3 };
            let rows = split(m, tasks, unit);
            // Raw pointer as an address: tasks write disjoint rows of `y`.
            let y_addr = ys.as_mut_ptr() as usize;
            for_each_range(rows, |r| {
                let xc = &xs[r.start * k..r.end * k];
                // SAFETY: the tasks' row ranges are disjoint and lie within y, which outlives
                // the call.
                let yc = unsafe {
                    std::slice::from_raw_parts_mut(
                        (y_addr as *mut f32).add(r.start * n),
                        r.len() * n,
                    )
                };
                // SAFETY: the kernel's instruction set was detected; the chunks hold `r.len()`
                // rows of x and y.
                unsafe {
                    dot_rows(
                        kernel,
                        xc,
                        ws,
                        (yc.as_mut_ptr(), n),
                        r.len(),
                        n,
                        k,
                        accumulate,
                    )
                }
            });
            return;
        }
    }
    matmul_into(x, w.t(), y, accumulate)
}

/// Up to this many inputs and outputs, AVX-512's `x Wᵀ` is `x` times a transposed copy of `W`
/// by the broadcasting kernel of `dyᵀ x` ([`rows_times`]): at so few values per dot product,
/// the dot kernel spends much of its time summing across lanes. On one thread (`cargo bench
/// --bench linalg`, best of 300, µs, dot kernel → broadcasts): 100×50×50 4.3 → 3.3,
/// 100×32×64 2.8 → 2.3, 100×16×32 1.2 → 0.8, 100×10×10 0.7 → 0.3, 5000×50×50 219 → 134. At
/// 256 outputs the copy of `W` costs what the kernel saves (100×256×64: 20.5 → 19.8).
const BROADCAST_MAX_K: usize = 64;

/// Whether AVX-512's `x Wᵀ` with `n` outputs and `k` inputs goes by broadcasts: up to
/// [`BROADCAST_MAX_K`] of each, but not 10 outputs or fewer from more than 32 inputs, where
/// most of the one vector per row of `x` is idle lanes and the dot kernel is as fast or faster
/// (dot kernel against broadcasts, µs as above: the default net's last layer, 100×10×50, 1.0
/// against 1.1; 100×10×64 0.9 against 1.4; but 100×10×30 0.8 against 0.7, 100×12×50 1.3
/// against 1.1).
fn broadcasts_win(n: usize, k: usize) -> bool {
    k <= BROADCAST_MAX_K && n <= BROADCAST_MAX_K && (n > 10 || k <= 32)
}

/// `c = a · b` (`sink` [`avx512::Sink::Store`]) or `c += a · b` ([`avx512::Sink::Add`]) by the
/// broadcasting kernel of [`matmul_tn`], the rows of `a` and `c` split between the threads in
/// blocks of 6: entry `c[i, j]` is `Σ_l a[i, l] b[l, j]` summed in the order of `l`, by one
/// chain of FMAs, whatever the number of threads.
///
/// # Safety
/// The CPU must support AVX-512F; `a`, `b` and `c` must hold (m, k), (k, n) and (m, n)
/// row-major values.
#[cfg(target_arch = "x86_64")]
unsafe fn rows_times(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    sink: avx512::Sink,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if let avx512::Sink::Store = sink {
            c.fill(0.0);
        }
        return;
    }
    let c_addr = c.as_mut_ptr() as usize;
    for_each_range(split(m, tasks_for(m * n * k), 6), |r| {
        // SAFETY: tasks write the disjoint rows `r` of `c`, which outlives the call; the
        // rows of `a` are `r`'s.
        unsafe {
            let rows = &a[r.start * k..r.end * k];
            let out = (c_addr as *mut f32).add(r.start * n);
            avx512::outer_cols_strided((rows, (1, k)), b, out, (k, r.len(), n), 0..n, sink)
        }
    });
}

/// `c = a · b` for row-major `a` (m, k) and `b` (k, n): a layer's input gradient `dy W`. On
/// AVX-512 in f32 by the broadcasting kernel of [`matmul_tn`], each entry summed in the order
/// of `k` whatever the number of threads; otherwise [`matmul_into`] (`gemm`). As fast as `gemm`
/// or faster at every shape of the nets here: 100×50×50 (batch, outputs, inputs of the layer)
/// 2.7 µs against 3.2 on one thread, 100×512×3072 1,198 against 1,303, 500×256×512 on two
/// threads 255 against 259 (`cargo bench --bench linalg`, best of 300).
///
/// **Panics** if the shapes do not fit.
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// let dy = array![[1.0f32, 2.0]];
/// let w = array![[1.0f32, 0.0, 1.0], [0.0, 1.0, 1.0]];
/// let mut dx = Array2::zeros((1, 3));
/// klayer::linalg::matmul_nn(dy.view(), w.view(), dx.view_mut());
/// assert_eq!(dx, array![[1.0, 2.0, 3.0]]);
/// ```
pub fn matmul_nn<T: Scalar>(a: ArrayView2<T>, b: ArrayView2<T>, mut c: ArrayViewMut2<T>) {
    #[cfg(target_arch = "x86_64")]
    if a.ncols() == b.nrows() && c.dim() == (a.nrows(), b.ncols()) && kernels() == Kernels::Avx512 {
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        if let (Some(av), Some(bv), Some(cv)) = (
            a.as_slice().and_then(as_f32),
            b.as_slice().and_then(as_f32),
            c.as_slice_mut().and_then(as_f32_mut),
        ) {
            // SAFETY: AVX-512F was detected; the slices hold the shapes.
            unsafe { rows_times(av, bv, cv, (m, k, n), avx512::Sink::Store) };
            return;
        }
    }
    matmul_into(a, b, c, false)
}

/// Up to this many rows of `x` (a mini-batch), AVX-512's `x Wᵀ` is split between the threads
/// by panels of `k` ([`by_panels`]); an evaluation chunk is split by rows.
const PANEL_SPLIT_MAX_ROWS: usize = 512;

/// AVX-512's `y (+)= x wᵀ` on `tasks` threads, in units of one panel of `k` by one half of the
/// rows of `x`, each thread taking a run of consecutive units (with 3 panels and 2 threads:
/// the first panel and the first half of the second on one thread, the rest on the other). So
/// each thread reads only its panels' columns of `x` and `w`, mostly the half of `w` that the
/// same thread's part of the fused weight update wrote (the columns of [`matmul_tn`] are split
/// in the middle too), instead of all of `w` and half of `x`'s rows. While the host is in its
/// fast phase that is as fast as splitting the rows (`klayer bench` 0.99, 0.98–1.02, 8 runs in
/// turn); in its slow phase, where whatever misses L2 waits longer, 0.90 (0.83–0.96): the
/// forward product 0.097 ms per step against 0.109, the weight gradient with the update 0.103
/// against 0.121 (docs/SPEED.md).
///
/// Each entry is summed as by [`dot_rows`] on one thread: the first panel's sums go to `y`,
/// the other panels' to buffers of their own, which are added to `y` after, panel by panel in
/// order.
///
/// # Safety
/// The CPU must support AVX-512F; `x`: (m, k), `w`: (n, k) and `y`: (m, n) row-major.
unsafe fn by_panels(
    xs: &[f32],
    ws: &[f32],
    ys: &mut [f32],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    tasks: usize,
) {
    let kc = avx512::BLOCKING.kc;
    let panels = k.div_ceil(kc);
    let halves = split(m, 2, 2);
    let units: Vec<(usize, std::ops::Range<usize>)> = (0..panels)
        .flat_map(|p| halves.iter().map(move |r| (p, r.clone())))
        .collect();
    let mut later = vec![0.0f32; (panels - 1) * m * n];
    // Raw pointers as addresses: units write disjoint rows of `y` or of a panel's buffer.
    let (y_addr, later_addr) = (ys.as_mut_ptr() as usize, later.as_mut_ptr() as usize);
    for_each_range(split(units.len(), tasks, 1), |run| {
        for (p, rows) in &units[run] {
            let (out, acc) = if *p == 0 {
                ((y_addr as *mut f32).add(rows.start * n), accumulate)
            } else {
                let buffer = (later_addr as *mut f32).add((p - 1) * m * n);
                (buffer.add(rows.start * n), false)
            };
            let x = &xs[rows.start * k..rows.end * k];
            let cols = p * kc..((p + 1) * kc).min(k);
            // SAFETY: as the caller's; each unit writes its own rows of its own panel's sums.
            unsafe {
                dot_cols(
                    Kernels::Avx512,
                    x,
                    ws,
                    (out, n),
                    (rows.len(), n, k, acc),
                    cols,
                )
            };
        }
    });
    widest_vectors(
        #[inline(always)]
        || {
            for part in later.chunks_exact(m * n) {
                ys.iter_mut().zip(part).for_each(|(y, &s)| *y += s);
            }
        },
    );
}

/// `y[i, j] (+)= Σ_k x[i, k] w[j, k]` for the first `rows` rows of `x` and `y` and the first
/// `n` rows of `w`, by the hand-written kernel `kernel` ([`blocked::dot_rows`] with its
/// register blocks). Each entry of `y` is summed in the same order whatever `rows` and `n`
/// are, so splitting the rows of `x` or of `w` between threads does not change the result.
///
/// # Safety
/// The CPU must support the kernel's instruction set, which must not be [`Kernels::Gemm`];
/// `x`: (rows, k) and `w`: (n, k) row-major, and `y` must point to `rows` rows of `n` writable
/// floats, `ldy` apart, that nothing else accesses during the call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_rows(
    kernel: Kernels,
    x: &[f32],
    w: &[f32],
    y: (*mut f32, usize),
    rows: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    dot_cols(kernel, x, w, y, (rows, n, k, accumulate), 0..k)
}

/// [`dot_rows`] over the columns `cols` of `x` and `w` only: the panels of those columns
/// ([`blocked::dot_rows`]).
///
/// # Safety
/// As [`dot_rows`]; `cols` must lie within `0..k`.
#[cfg(target_arch = "x86_64")]
unsafe fn dot_cols(
    kernel: Kernels,
    x: &[f32],
    w: &[f32],
    y: (*mut f32, usize),
    shape: (usize, usize, usize, bool),
    cols: std::ops::Range<usize>,
) {
    match kernel {
        // SAFETY (both): the caller checked the instruction set; `blocked::dot_rows` gives each
        // block operands within the stated shapes.
        Kernels::Avx512 => blocked::dot_rows(
            &avx512::BLOCKING,
            x,
            w,
            y,
            shape,
            cols,
            |ib, jb, a| unsafe { avx512::block(ib, jb, a) },
        ),
        Kernels::Avx2 => {
            blocked::dot_rows(&avx2::BLOCKING, x, w, y, shape, cols, |ib, jb, a| unsafe {
                avx2::block(ib, jb, a)
            })
        }
        Kernels::Gemm => unreachable!("dot_rows is only called with a hand-written kernel"),
    }
}

/// `dw = dyᵀ · x`: a fully connected layer's weight gradient.
///
/// With the hand-written kernels, the columns of `dw` are split between the threads and each
/// entry is summed in the same order whatever the number of threads.
///
/// # Shapes
/// `dy`: (m, n), `x`: (m, k), `dw`: (n, k).
///
/// **Panics** if the shapes do not fit.
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// let dy = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let x = array![[1.0f32, 0.0, 1.0], [0.0, 1.0, 1.0]];
/// let mut dw = Array2::zeros((2, 3));
/// klayer::linalg::matmul_tn(dy.view(), x.view(), dw.view_mut());
/// assert_eq!(dw, array![[1.0, 3.0, 4.0], [2.0, 4.0, 6.0]]);
/// ```
pub fn matmul_tn<T: Scalar>(dy: ArrayView2<T>, x: ArrayView2<T>, mut dw: ArrayViewMut2<T>) {
    let (m, n, k) = (dy.nrows(), dy.ncols(), x.ncols());
    if m != x.nrows() || dw.dim() != (n, k) {
        // Let matmul_into report the mismatch.
        return matmul_into(dy.t(), x, dw, false);
    }
    #[cfg(target_arch = "x86_64")]
    if outer_kernel(dy, x, dw.view_mut(), avx512::Sink::Store) {
        return;
    }
    // Otherwise gemm, the columns of dw split between the threads and each task's product on
    // one thread: every entry is summed in the same order whatever the number of threads.
    let tasks = tasks_for(m * n * k);
    if tasks <= 1 {
        return gemm_into(dy.t(), x, dw, false, false);
    }
    gemm_in_parts(dy.t(), x, dw, Axis(1), part_len(k, tasks, 16), false);
}

/// `dyᵀ x` by the AVX-512 kernel, its blocks passed to `sink` (stored in `out`, or applied to
/// the weights in `out`); false, having done nothing, where that kernel does not apply (another
/// CPU or float type, a strided operand, a shape outside [`OUTER_KERNEL_MAX_N`] and
/// [`OUTER_KERNEL_MAX_M`]). The shapes must have been checked.
#[cfg(target_arch = "x86_64")]
fn outer_kernel<T: Scalar>(
    dy: ArrayView2<T>,
    x: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
    sink: avx512::Sink,
) -> bool {
    let (m, n, k) = (dy.nrows(), dy.ncols(), x.ncols());
    if kernels() != Kernels::Avx512 || n > OUTER_KERNEL_MAX_N || m > OUTER_KERNEL_MAX_M {
        return false;
    }
    let (Some(dys), Some(xs), Some(outs)) = (
        dy.as_slice().and_then(as_f32),
        x.as_slice().and_then(as_f32),
        out.as_slice_mut().and_then(as_f32_mut),
    ) else {
        return false;
    };
    if n == 0 || k == 0 {
        return true;
    }
    if m == 0 {
        match sink {
            avx512::Sink::Store => outs.fill(0.0),
            avx512::Sink::Add => {}
            // A zero gradient: only the decay moves the weights.
            avx512::Sink::Sgd { .. } => return false,
        }
        return true;
    }
    // Tasks take whole column blocks of 64.
    let cols = split(k, tasks_for(m * n * k), 64);
    // Raw pointer as an address: tasks write disjoint column ranges of `out`.
    let out_addr = outs.as_mut_ptr() as usize;
    for_each_range(cols, |cols| {
        // SAFETY: AVX-512F was detected; shapes were checked; each task writes only its own
        // columns of out, which outlives the call.
        unsafe { avx512::outer_cols(dys, xs, out_addr as *mut f32, (m, n, k), cols, sink) };
    });
    true
}

/// Up to this many weights (2 MB of f32, half of it per core, one L2 each), [`sgd_step_tn`]
/// updates them inside the weight gradient's kernel. A larger `W` comes from L3 a few blocks
/// of 6 rows by 64 columns at a time there, where the optimizer's own pass streams it: the wide
/// net's first layer (512 × 3072) took 0.81 ms per step for its gradient and update together
/// against 0.66 + 0.16 apart, and its forward product, which splits the rows of `W` between
/// the threads, 0.78 against 0.74 (`klayer bench --hidden 512,256,128,64,32,16`: 1.06,
/// 1.04–1.10, 4 runs each in turn).
pub const FUSED_STEP_MAX_WEIGHTS: usize = 1 << 19;

/// One SGD step of weights `w` (n, k) whose gradient is `dyᵀ x` (+ `decay · w`, the L2
/// term's, if given): `w ← w − eta (dyᵀ x + decay · w)`, computed block by block by the
/// kernel of [`matmul_tn`] without storing the gradient, each weight rounded exactly as by
/// [`matmul_tn`] followed by the optimizer's loop
/// ([`crate::train::OptimizerState::step_with_l2`]). Returns false, having done nothing,
/// where that kernel does not apply (f64, a CPU without AVX-512, strided operands, large
/// shapes, more than [`FUSED_STEP_MAX_WEIGHTS`] weights); the caller then takes those two
/// steps.
///
/// # Shapes
/// `dy`: (m, n), `x`: (m, k), `w`: (n, k).
///
/// # Example
/// ```
/// use ndarray::array;
/// let dy = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let x = array![[1.0f32, 0.0, 1.0], [0.0, 1.0, 1.0]];
/// let mut w = array![[1.0f32, 1.0, 1.0], [0.0, 0.0, 0.0]];
/// if klayer::linalg::sgd_step_tn(dy.view(), x.view(), w.view_mut(), 0.5, Some(0.5)) {
///     // dyᵀ x = [[1, 3, 4], [2, 4, 6]]; 1 − 0.5 (1 + 0.5) = 0.25, …
///     assert_eq!(w, array![[0.25, -0.75, -1.25], [-1.0, -2.0, -3.0]]);
/// }
/// ```
pub fn sgd_step_tn<T: Scalar>(
    dy: ArrayView2<T>,
    x: ArrayView2<T>,
    w: ArrayViewMut2<T>,
    eta: T,
    decay: Option<T>,
) -> bool {
    let (m, n, k) = (dy.nrows(), dy.ncols(), x.ncols());
    if m != x.nrows() || w.dim() != (n, k) || n * k > FUSED_STEP_MAX_WEIGHTS {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let f = |v: T| v.as_f64() as f32;
        // Only f32 reaches the kernel, so the rates convert exactly.
        let sink = avx512::Sink::Sgd {
            eta: f(eta),
            decay: decay.map(f),
        };
        outer_kernel(dy, x, w, sink)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (eta, decay, w);
        false
    }
}

/// `c = a · b` (or `c += a · b`) with the rows (`Axis(0)`: of `a` and `c`) or the columns
/// (`Axis(1)`: of `b` and `c`) in parts of `width`, each part one `gemm` call on one thread,
/// the parts in parallel: an entry's sum depends on `width`, never on the number of threads.
fn gemm_in_parts<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ArrayViewMut2<T>,
    axis: Axis,
    width: usize,
    accumulate: bool,
) {
    let parts: Vec<_> = if axis == Axis(0) {
        a.axis_chunks_iter(axis, width)
            .zip(c.axis_chunks_iter_mut(axis, width))
            .map(|(ap, cp)| (ap, b, cp))
            .collect()
    } else {
        b.axis_chunks_iter(axis, width)
            .zip(c.axis_chunks_iter_mut(axis, width))
            .map(|(bp, cp)| (a, bp, cp))
            .collect()
    };
    use rayon::prelude::*;
    parts
        .into_par_iter()
        .for_each(|(ap, bp, cp)| gemm_into(ap, bp, cp, accumulate, false));
}

/// The f32 multiply-add rate this machine's cores reach together with the widest vectors
/// [`kernels`] uses: the "100 %" that achieved GFLOP/s are compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmaPeak {
    /// Floating-point operations per second (an FMA counts as 2), in units of 10⁹.
    pub gflops: f64,
    /// Threads that ran at once (rayon's, one per core by default).
    pub threads: usize,
    /// Lanes per vector (16 for AVX-512, 8 for AVX2).
    pub lanes: usize,
}

/// Measures [`FmaPeak`]: every rayon thread at once runs 12 independent chains of vector FMAs
/// (no memory traffic) in blocks of 240,000 FMAs for about `millis` milliseconds; the best
/// block's rate of each thread is taken and the threads' rates are added.
/// `None` when [`kernels`] is [`Kernels::Gemm`] (no vector instruction set is assumed).
pub fn fma_peak(millis: u64) -> Option<FmaPeak> {
    let kernel = kernels();
    let lanes = match kernel {
        Kernels::Avx512 => 16,
        Kernels::Avx2 => 8,
        Kernels::Gemm => return None,
    };
    #[cfg(target_arch = "x86_64")]
    {
        let chains = |iters: usize| -> f32 {
            // SAFETY: the instruction set of `kernel` was detected.
            unsafe {
                match kernel {
                    Kernels::Avx512 => avx512::fma_chains(iters),
                    _ => avx2::fma_chains(iters),
                }
            }
        };
        let rates = rayon::broadcast(|_| {
            // Short blocks, the best one counted: a block that another process interrupted
            // would understate the peak.
            let iters = 20_000;
            let (started, mut best, mut sink) = (std::time::Instant::now(), 0.0f64, 0.0f32);
            while started.elapsed().as_millis() < u128::from(millis.max(1)) {
                let t = std::time::Instant::now();
                sink += chains(iters);
                best = best.max((iters * 12 * lanes * 2) as f64 / t.elapsed().as_secs_f64());
            }
            std::hint::black_box(sink);
            best
        });
        Some(FmaPeak {
            gflops: rates.iter().sum::<f64>() / 1e9,
            threads: rates.len(),
            lanes,
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (millis, lanes);
        None
    }
}

/// Runs `f` compiled for the widest vectors the CPU has (AVX-512F, else AVX2): `f` is inlined
/// into a function built with those instructions, so the element-wise loops in it are
/// vectorised for them instead of for the baseline's 4-lane SSE. Each element comes out as
/// from the plain loop (the compiler never fuses a multiply and an add on its own): only the
/// number of lanes changes.
///
/// Mark the closure `#[inline(always)]` (as every caller does): otherwise the compiler may keep
/// it a function of its own, compiled for the baseline. The BN layers' loops were, and ran in
/// SSE.
#[inline(always)]
pub(crate) fn widest_vectors<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Runs `f` on a rayon worker thread (directly if already on one), with another worker kept
/// at hand while it runs, and returns its result.
///
/// A training loop runs thousands of short parallel products with serial work between them.
/// Started from a thread outside the pool, each product queues its tasks for the workers and
/// puts the caller to sleep until they finish; from a worker, the other half of a split
/// product is taken by another worker straight from this one's queue, and this one carries on
/// with its own half. And a worker that finds nothing to do for a few microseconds falls
/// asleep, so each product after a serial stretch would first have to wake it: the product
/// then mostly runs on one core. So while `f` runs, one other worker does not sleep: it takes
/// up the tasks `f`'s products queue as soon as they appear (see `help_until`).
///
/// Nested calls, and calls on a thread that is already inside a run of its own (two runs
/// sharing the pool, like the seeds of `klayer train --seeds`), keep no extra worker: each
/// worker is then busy with a run anyway.
pub fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_none() {
        return rayon::scope(|_| on_worker(f));
    }
    if RUNS_HERE.get() > 0 || rayon::current_num_threads() < 2 {
        let _run = RunHere::enter();
        return f();
    }
    let done = AtomicBool::new(false);
    let (result, ()) = rayon::join(
        || {
            // Set when `f` returns or panics: the helper must never wait for nothing.
            let _done = SetOnDrop(&done);
            let _run = RunHere::enter();
            f()
        },
        || help_until(&done),
    );
    result
}

/// Between the parts of a job that runs beside a training run (the gathering of the next
/// mini-batch, [`crate::train::Gather::run`]): on [`on_worker`]'s helper, runs one task the
/// run has queued, if there is one, so that half of a product the run split does not wait for
/// the job. On a thread inside a run of its own (the seeds of `klayer train --seeds`) it does
/// nothing: a task queued there may be a step of another run, and taking it up between two
/// blocks of a gathering made three seeds 1.04 times as long.
pub(crate) fn let_queued_products_first() {
    if RUNS_HERE.get() == 0 {
        rayon::yield_now();
    }
}

thread_local! {
    /// How many [`on_worker`] runs this thread is inside: more than one when, waiting for a
    /// task of its run, it took up another run.
    static RUNS_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts this thread in [`RUNS_HERE`] until dropped.
struct RunHere;

impl RunHere {
    fn enter() -> Self {
        RUNS_HERE.set(RUNS_HERE.get() + 1);
        RunHere
    }
}

impl Drop for RunHere {
    fn drop(&mut self) {
        RUNS_HERE.set(RUNS_HERE.get() - 1);
    }
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// [`on_worker`]'s helper: until `done`, runs whatever tasks the pool has, spinning between
/// them instead of sleeping. On a thread inside a run of its own it returns at once: it
/// would hold that run up (its frames lie below this one), and two such helpers could each
/// wait for the other's run.
fn help_until(done: &AtomicBool) {
    if RUNS_HERE.get() > 0 {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            // Between looks at the queues: fewer touches of the cache lines the working
            // thread pushes its tasks to.
            for _ in 0..16 {
                std::hint::spin_loop();
            }
        }
    }
}

/// Products with at least this many multiply-adds use all rayon threads; smaller ones stay on
/// the calling thread, where the fork/join cost would dominate.
pub const PARALLEL_THRESHOLD: usize = 1 << 20;

/// `c = a · b` (or `c += a · b` with `accumulate`), for any strides of `a`, `b` and `c`.
///
/// # Shapes
/// `a`: (m, k), `b`: (k, n), `c`: (m, n).
///
/// **Panics** if the shapes do not fit; callers inside the crate check shapes at construction.
///
/// # Example
/// ```
/// use ndarray::{array, Array2};
/// let a = array![[1.0f64, 2.0], [3.0, 4.0]];
/// let mut c = Array2::zeros((2, 2));
/// klayer::linalg::matmul_into(a.view(), a.t(), c.view_mut(), false);
/// assert_eq!(c, array![[5.0, 11.0], [11.0, 25.0]]);
/// ```
pub fn matmul_into<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    c: ArrayViewMut2<T>,
    accumulate: bool,
) {
    gemm_into(a, b, c, accumulate, true)
}

fn gemm_into<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut c: ArrayViewMut2<T>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
    assert_eq!(c.dim(), (m, n), "matmul: output has the wrong shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return;
    }
    let parallelism = if parallel && m * n * k >= PARALLEL_THRESHOLD {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides come from live ndarray views whose shapes were checked
    // above, so every element gemm touches is in bounds; `c` is borrowed mutably and cannot
    // alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Bytes to which [`zeros_aligned`] aligns the start of an array: a cache line, so that no
/// vector load of a row whose length is a multiple of 16 floats straddles two lines.
pub const ALIGN: usize = 64;

/// A zero matrix whose first element lies at an address that is a multiple of [`ALIGN`] bytes.
///
/// The products read rows with 32- or 64-byte vector loads; when a row starts in the middle of
/// a cache line, every other load touches two lines. An allocator aligns large blocks to only
/// 16 bytes, which made the default net's products about 15 % slower (`cargo bench --bench
/// linalg` with `ALIGNED=0`). Contents and results do not depend on the alignment; only the
/// speed does. A `clone` of the result is aligned by chance only (use [`aligned`]).
///
/// # Example
/// ```
/// let a = klayer::linalg::zeros_aligned::<f32>((3, 5));
/// assert_eq!(a.dim(), (3, 5));
/// assert_eq!(a.as_ptr() as usize % klayer::linalg::ALIGN, 0);
/// assert!(a.iter().all(|&v| v == 0.0) && a.is_standard_layout());
/// ```
pub fn zeros_aligned<T: Scalar>((rows, cols): (usize, usize)) -> Array2<T> {
    let len = rows * cols;
    let pad = ALIGN / std::mem::size_of::<T>();
    let data = vec![T::zero(); len + pad];
    // In elements; at most pad - 1 since T's size divides ALIGN.
    let offset = data.as_ptr().align_offset(ALIGN).min(pad);
    ndarray::Array1::from_vec(data)
        .slice_move(ndarray::s![offset..offset + len])
        .into_shape_with_order((rows, cols))
        .expect("a contiguous 1-D array takes any shape of its length")
}

/// True if `a` is in standard layout and its first element lies at a multiple of [`ALIGN`]
/// bytes: the layout [`zeros_aligned`] makes and [`aligned`] keeps.
///
/// # Example
/// ```
/// use klayer::linalg::{is_aligned, zeros_aligned};
/// let a = zeros_aligned::<f32>((4, 16));
/// assert!(is_aligned(a.view()));
/// assert!(!is_aligned(a.t()));
/// ```
pub fn is_aligned<T>(a: ArrayView2<T>) -> bool {
    a.is_standard_layout() && (a.as_ptr() as usize).is_multiple_of(ALIGN)
}

/// `a` itself if it is in standard layout and starts at a multiple of [`ALIGN`] bytes, else
/// a copy that does (see [`zeros_aligned`]). The values are the same either way.
///
/// # Example
/// ```
/// use ndarray::array;
/// let a = klayer::linalg::aligned(array![[1.0f32, 2.0], [3.0, 4.0]].reversed_axes());
/// assert_eq!(a, array![[1.0, 3.0], [2.0, 4.0]]);
/// assert_eq!(a.as_ptr() as usize % klayer::linalg::ALIGN, 0);
/// assert!(a.is_standard_layout());
/// ```
pub fn aligned<T: Scalar>(a: Array2<T>) -> Array2<T> {
    if is_aligned(a.view()) {
        return a;
    }
    let mut out = zeros_aligned(a.dim());
    out.assign(&a);
    out
}

/// `a · b` as a new array.
///
/// # Shapes
/// `a`: (m, k), `b`: (k, n), result: (m, n).
pub fn matmul<T: Scalar>(a: ArrayView2<T>, b: ArrayView2<T>) -> Array2<T> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    matmul_into(a, b, c.view_mut(), false);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn max_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        (a - b).mapv(f32::abs).fold(0.0f32, |m, &x| m.max(x))
    }

    /// Products (m, n, k) with odd sizes and tails, for every kernel.
    const ODD_SHAPES: [(usize, usize, usize); 10] = [
        (1, 1, 1),
        (3, 5, 17),
        (100, 50, 3072),
        (7, 13, 100),
        (101, 10, 3071),
        (5000, 50, 64),
        (1201, 130, 77),
        (100, 130, 1100),
        // Every edge size of the register blocks: widths 9 and 17 leave 3 rows of `dW`
        // after blocks of 6, and 4 and 2 rows of `W` after blocks of 5.
        (9, 9, 33),
        (100, 17, 70),
    ];

    /// A layer's `x` (m, k), `W` (n, k) and `dy` (m, n), of values in [-0.5, 0.5).
    fn operands(m: usize, n: usize, k: usize) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
        (
            Array::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 23) as f32 / 23.0 - 0.5),
            Array::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 19) as f32 / 19.0 - 0.5),
            Array::from_shape_fn((m, n), |(i, j)| ((i + 3 * j) % 11) as f32 / 11.0 - 0.5),
        )
    }

    #[test]
    fn custom_kernels_agree_with_gemm_for_odd_shapes_and_tails() {
        for (m, n, k) in ODD_SHAPES {
            let (x, w, dy) = operands(m, n, k);
            let want_y = x.dot(&w.t());
            let want_dw = dy.t().dot(&x);
            let mut y = Array2::ones((m, n));
            matmul_nt(x.view(), w.view(), y.view_mut(), false);
            assert!(max_diff(&y, &want_y) < 1e-3, "x Wᵀ at {m}×{n}×{k}");
            matmul_nt(x.view(), w.view(), y.view_mut(), true);
            assert!(
                max_diff(&y, &(&want_y * 2.0)) < 2e-3,
                "accumulated x Wᵀ at {m}×{n}×{k}"
            );
            let mut dw = Array2::ones((n, k));
            matmul_tn(dy.view(), x.view(), dw.view_mut());
            assert!(max_diff(&dw, &want_dw) < 1e-3, "dyᵀ x at {m}×{n}×{k}");
            let mut dx = Array2::ones((m, k));
            matmul_nn(dy.view(), w.view(), dx.view_mut());
            assert!(max_diff(&dx, &dy.dot(&w)) < 1e-3, "dy W at {m}×{n}×{k}");
        }
    }

    #[test]
    fn the_broadcasting_products_sum_each_entry_in_order_of_k_by_fmas() {
        // Every row block (6 and its remainders) and vector count (1 to 4 of 16 lanes, and a
        // second strip of 64 columns for `dy W`); `x Wᵀ` where it goes by broadcasts.
        if kernels() != Kernels::Avx512 {
            return;
        }
        for (m, n, k) in [
            (13, 1, 3),
            (7, 17, 33),
            (100, 50, 50),
            (100, 10, 50),
            (11, 130, 64),
        ] {
            let (x, w, dy) = operands(m, n, k);
            let chain =
                |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0.0f32, |s, (&p, &q)| p.mul_add(q, s));
            let mut dx = Array2::zeros((m, k));
            matmul_nn(dy.view(), w.view(), dx.view_mut());
            for ((i, j), &v) in dx.indexed_iter() {
                let want = chain(&dy.row(i).to_vec(), &w.column(j).to_vec());
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "dy W at {m}×{n}×{k}, ({i}, {j})"
                );
            }
            if !broadcasts_win(n, k) {
                continue;
            }
            let bias = Array::from_shape_fn((m, n), |(_, j)| j as f32 * 0.125);
            let mut y = bias.clone();
            matmul_nt(x.view(), w.view(), y.view_mut(), true);
            for ((i, j), &v) in y.indexed_iter() {
                let want = bias[(i, j)] + chain(&x.row(i).to_vec(), &w.row(j).to_vec());
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "x Wᵀ + b at {m}×{n}×{k}, ({i}, {j})"
                );
            }
        }
    }

    /// The SGD step done inside the weight gradient's kernel, on one thread and on two.
    #[test]
    fn the_fused_sgd_step_leaves_the_weights_as_the_stored_gradient_and_the_optimizer_would() {
        use crate::train::SgdRule;
        // Odd sizes, among them every edge of the 6-row blocks and 64-column strips and
        // shapes beyond the kernel's; a zero-row batch, which the kernel leaves to the caller;
        // just over the weights it updates itself.
        for (m, n, k) in ODD_SHAPES.into_iter().chain([(0, 4, 64), (3, 512, 1025)]) {
            let dy = Array::from_shape_fn((m, n), |(i, j)| ((i * 3 + j * 5) % 11) as f32 / 7.0);
            let x = Array::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 23) as f32 - 11.0);
            let w0 = Array::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 19) as f32 / 9.0);
            for decay in [None, Some(0.01f32)] {
                let rule = SgdRule { eta: 0.03, decay };
                let mut g = Array2::from_elem((n, k), f32::NAN);
                matmul_tn(dy.view(), x.view(), g.view_mut());
                let mut want = w0.clone();
                rule.apply(want.as_slice_mut().unwrap(), g.as_slice().unwrap());
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut w = w0.clone();
                    let fused = pool.install(|| {
                        sgd_step_tn(dy.view(), x.view(), w.view_mut(), rule.eta, rule.decay)
                    });
                    let bits = |a: &Array2<f32>| a.mapv(f32::to_bits);
                    let takes = kernels() == Kernels::Avx512
                        && (1..=OUTER_KERNEL_MAX_M).contains(&m)
                        && n <= OUTER_KERNEL_MAX_N
                        && n * k <= FUSED_STEP_MAX_WEIGHTS;
                    assert_eq!(fused, takes, "{m}×{n}×{k}");
                    if fused {
                        assert_eq!(bits(&w), bits(&want), "{m}×{n}×{k}, {decay:?}, {threads}");
                    } else {
                        assert_eq!(w, w0, "declined, yet changed the weights");
                    }
                }
            }
        }
        // f64 never takes the kernel.
        let (dy, x) = (Array2::<f64>::ones((2, 3)), Array2::<f64>::ones((2, 4)));
        let mut w = Array2::<f64>::ones((3, 4));
        assert!(!sgd_step_tn(dy.view(), x.view(), w.view_mut(), 0.1, None));
        assert_eq!(w, Array2::<f64>::ones((3, 4)));
    }

    /// Every `x Wᵀ` kernel the CPU has, called directly (the product picks only the widest):
    /// its result next to gemm's, whole and as two parts of the rows of `x` or of `W` added
    /// into one `y`, which must be bitwise the whole.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_dot_kernel_this_cpu_has_agrees_with_gemm_whole_and_in_parts() {
        let mut found = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            found.push(("AVX2", Kernels::Avx2));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push(("AVX-512", Kernels::Avx512));
        }
        for (name, kernel) in found {
            for &(m, n, k) in &[
                (3, 5, 17),
                (100, 50, 3072),
                (101, 130, 1100),
                (230, 9, 2100),
            ] {
                let x = Array::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 23) as f32 - 11.0);
                let w = Array::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 19) as f32 - 9.0);
                let want = x.dot(&w.t());
                let (xs, ws) = (x.as_slice().unwrap(), w.as_slice().unwrap());
                let mut whole = Array2::from_elem((m, n), f32::NAN);
                // SAFETY: the CPU has the kernel's instruction set (checked above); the
                // operands hold the stated shapes.
                unsafe { dot_rows(kernel, xs, ws, (whole.as_mut_ptr(), n), m, n, k, false) };
                assert!(
                    max_diff(&whole, &want) < 1e-3 * k as f32,
                    "{name} at {m}×{n}×{k}"
                );
                let (mi, nj) = (m / 2, n / 2);
                let mut by_rows = Array2::from_elem((m, n), f32::NAN);
                let mut by_w = Array2::from_elem((m, n), f32::NAN);
                // SAFETY: as above; each call writes its own rows or columns of y.
                unsafe {
                    let y = by_rows.as_mut_ptr();
                    dot_rows(kernel, &xs[..mi * k], ws, (y, n), mi, n, k, false);
                    dot_rows(
                        kernel,
                        &xs[mi * k..],
                        ws,
                        (y.add(mi * n), n),
                        m - mi,
                        n,
                        k,
                        false,
                    );
                    let y = by_w.as_mut_ptr();
                    dot_rows(kernel, xs, &ws[..nj * k], (y, n), m, nj, k, false);
                    dot_rows(
                        kernel,
                        xs,
                        &ws[nj * k..],
                        (y.add(nj), n),
                        m,
                        n - nj,
                        k,
                        false,
                    );
                }
                let bits = |a: &Array2<f32>| a.mapv(f32::to_bits);
                assert_eq!(
                    bits(&by_rows),
                    bits(&whole),
                    "{name}, rows of x in two, {m}×{n}×{k}"
                );
                assert_eq!(
                    bits(&by_w),
                    bits(&whole),
                    "{name}, rows of W in two, {m}×{n}×{k}"
                );
            }
        }
    }

    #[test]
    fn products_are_bitwise_the_same_on_one_thread_and_on_two() {
        // A mini-batch of the default net (on AVX-512, two or three threads split it by
        // panels of `k`); odd sizes with a last panel that is not whole; one through a large
        // `W` (one thread copies the panels of `x`; two split the rows of `W`, and on AVX2 only
        // the first part is large enough to copy); an evaluation chunk of a wide net.
        for (m, n, k) in [
            (100, 50, 3072),
            (37, 9, 2500),
            (6, 5, 1025),
            (100, 260, 1100),
            (1500, 130, 700),
            // Few inputs: `x Wᵀ` by broadcasts, the rows split between the threads.
            (5000, 50, 50),
        ] {
            same_on_any_thread_count(m, n, k);
        }
    }

    /// `f` on a new thread; `None` if it has not finished within a minute (a hang).
    fn within_a_minute<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60)).ok()
    }

    /// Many small products split between the threads, with serial stretches between them, as
    /// in a training loop: their sum.
    fn a_training_like_loop(steps: usize) -> f32 {
        let x = Array::from_shape_fn((100, 300), |(i, j)| ((i * 7 + j) % 13) as f32 - 6.0);
        let w = Array::from_shape_fn((64, 300), |(i, j)| ((i + 3 * j) % 11) as f32 - 5.0);
        let mut y = Array2::zeros((100, 64));
        let mut total = 0.0;
        for _ in 0..steps {
            matmul_nt(x.view(), w.view(), y.view_mut(), false);
            total += y.sum();
            let (a, b) = rayon::join(|| y.row(0).sum(), || y.row(1).sum());
            total += a - b;
        }
        total
    }

    #[test]
    fn on_worker_returns_what_its_function_returns_on_one_thread_and_on_two() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let inside = pool.install(|| on_worker(|| a_training_like_loop(50)));
            assert_eq!(inside, a_training_like_loop(50), "{threads} threads");
            // From outside the pool too: on_worker moves the call onto a worker.
            assert!(
                on_worker(|| rayon::current_thread_index().is_some()),
                "outside the pool"
            );
        }
    }

    #[test]
    fn a_panic_inside_on_worker_reaches_the_caller_instead_of_leaving_the_helper_waiting() {
        let outcome = within_a_minute(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.install(|| {
                std::panic::catch_unwind(|| on_worker(|| -> usize { panic!("a failed run") }))
                    .is_err()
            })
        });
        assert_eq!(outcome, Some(true), "no hang, and the panic came through");
    }

    #[test]
    fn runs_sharing_the_pool_all_finish_and_give_what_each_gives_alone() {
        // Two, three and four runs on two threads, each with its on_worker: a thread inside a run of
        // its own must never sit helping another run (each could end up waiting for the other).
        let alone = a_training_like_loop(300);
        for runs in [2, 3, 4] {
            let outcome = within_a_minute(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(2)
                    .build()
                    .unwrap();
                pool.install(|| {
                    use rayon::prelude::*;
                    (0..runs)
                        .into_par_iter()
                        .map(|_| on_worker(|| a_training_like_loop(300)))
                        .collect::<Vec<_>>()
                })
            });
            assert_eq!(outcome, Some(vec![alone; runs]), "{runs} runs");
        }
    }

    fn same_on_any_thread_count(m: usize, n: usize, k: usize) {
        let (x, w, dy) = operands(m, n, k);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut y, mut dw) = (Array2::zeros((m, n)), Array2::zeros((n, k)));
                matmul_nt(x.view(), w.view(), y.view_mut(), false);
                matmul_tn(dy.view(), x.view(), dw.view_mut());
                // Added to what `y` holds (a layer's bias).
                let mut biased = dy.clone();
                matmul_nt(x.view(), w.view(), biased.view_mut(), true);
                let mut dx = Array2::zeros((m, k));
                matmul_nn(dy.view(), w.view(), dx.view_mut());
                (y, dw, biased, dx)
            })
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(2), run(3));
    }

    #[test]
    fn fma_peak_is_a_positive_rate_on_every_thread_when_kernels_exist() {
        match fma_peak(20) {
            Some(p) => {
                assert!(p.gflops.is_finite() && p.gflops > 0.1, "{p:?}");
                assert_eq!(p.threads, rayon::current_num_threads());
                assert!(p.lanes == 8 || p.lanes == 16);
            }
            None => assert_eq!(kernels(), Kernels::Gemm),
        }
    }

    #[test]
    fn matmul_matches_ndarray_dot_for_transposed_and_strided_views() {
        let a = Array::from_shape_fn((37, 53), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b = Array::from_shape_fn((29, 53), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.5);
        let expected = a.dot(&b.t());
        assert_eq!(matmul(a.view(), b.t()), expected);
        let mut c = Array2::ones((37, 29));
        matmul_into(a.view(), b.t(), c.view_mut(), true);
        assert_eq!(c, expected + 1.0);
        let big_a = Array::from_shape_fn((200, 3072), |(i, j)| ((i + j) % 17) as f32 / 17.0);
        let big_b = Array::from_shape_fn((50, 3072), |(i, j)| ((i * 3 + j) % 19) as f32 / 19.0);
        let got = matmul(big_a.view(), big_b.t());
        let want = big_a.dot(&big_b.t());
        let err = (&got - &want).mapv(f32::abs).fold(0.0f32, |m, &x| m.max(x));
        assert!(err < 1e-2, "parallel f32 product off by {err}");
    }
}
