//! Matrix products on ndarray views, computed by the `gemm` crate (AVX-512 / AVX2 / FMA kernels
//! chosen at run time, multithreaded with rayon for large products).
//!
//! Every layer's heavy lifting goes through [`matmul_into`]; views may be transposed (`.t()`)
//! or strided, nothing is copied. The two products of a fully connected layer with a wide
//! input, [`matmul_nt`] (`x Wᵀ`) and [`matmul_tn`] (`dyᵀ x`), use hand-written AVX-512
//! kernels for f32 where the CPU has them, which at batch 100 and 3072 inputs are several times
//! faster than a packing GEMM.

#[cfg(target_arch = "x86_64")]
mod avx512;

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::Scalar;

static CUSTOM_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns the hand-written f32 kernels on or off (on by default; off means every product goes
/// through the `gemm` crate). For benchmarks and for checking the kernels against `gemm`.
pub fn set_custom_kernels(on: bool) {
    CUSTOM_KERNELS.store(on, Ordering::Relaxed);
}

/// True if [`matmul_nt`] and [`matmul_tn`] use the hand-written AVX-512 kernels for f32 on this
/// machine.
pub fn custom_kernels_active() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        CUSTOM_KERNELS.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Above this many output rows (a layer's width), `gemm`'s packed kernel beats the in-place one
/// for `dyᵀ x` (measured at 512: 3.8 against 4.9 ms on one core).
#[cfg(target_arch = "x86_64")]
const OUTER_KERNEL_MAX_N: usize = 128;

fn as_f32<T: Scalar>(s: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice's memory is a valid [f32] of the same length.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

fn as_f32_mut<T: Scalar>(s: &mut [T]) -> Option<&mut [f32]> {
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

/// `y = x · wᵀ` (or `y += x · wᵀ` with `accumulate`): a fully connected layer's forward pass.
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
    if custom_kernels_active() && x.ncols() == w.ncols() && y.dim() == (x.nrows(), w.nrows()) {
        if let (Some(xs), Some(ws), Some(ys)) = (
            x.as_slice().and_then(as_f32),
            w.as_slice().and_then(as_f32),
            y.as_slice_mut().and_then(as_f32_mut),
        ) {
            let (m, n, k) = (x.nrows(), w.nrows(), x.ncols());
            let tasks = tasks_for(m * n * k);
            let rows_per_task = m.div_ceil(tasks).div_ceil(4).max(1) * 4;
            let run = |(xc, yc): (&[f32], &mut [f32])| {
                let rows = yc.len() / n.max(1);
                // SAFETY: AVX-512F was detected; the chunks hold `rows` rows of x and y.
                unsafe { avx512::dot_rows(xc, ws, yc, rows, n, k, accumulate) };
            };
            if n == 0 || m == 0 {
                return;
            }
            if tasks == 1 {
                run((xs, ys));
            } else {
                use rayon::prelude::*;
                xs.par_chunks(rows_per_task * k)
                    .zip(ys.par_chunks_mut(rows_per_task * n))
                    .for_each(run);
            }
            return;
        }
    }
    matmul_into(x, w.t(), y, accumulate)
}

/// `dw = dyᵀ · x`: a fully connected layer's weight gradient.
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
    #[cfg(target_arch = "x86_64")]
    if custom_kernels_active()
        && dy.nrows() == x.nrows()
        && dw.dim() == (dy.ncols(), x.ncols())
        && dy.ncols() <= OUTER_KERNEL_MAX_N
    {
        if let (Some(dys), Some(xs), Some(dws)) = (
            dy.as_slice().and_then(as_f32),
            x.as_slice().and_then(as_f32),
            dw.as_slice_mut().and_then(as_f32_mut),
        ) {
            let (m, n, k) = (dy.nrows(), dy.ncols(), x.ncols());
            if n == 0 || k == 0 {
                return;
            }
            if m == 0 {
                dws.fill(0.0);
                return;
            }
            let tasks = tasks_for(m * n * k);
            let cols_per_task = k.div_ceil(tasks).div_ceil(64) * 64;
            // Raw pointer as an address: tasks write disjoint column ranges of `dw`.
            let dw_addr = dws.as_mut_ptr() as usize;
            let run = |start: usize| {
                let cols = start..(start + cols_per_task).min(k);
                // SAFETY: AVX-512F was detected; shapes were checked; each task writes only
                // its own columns of dw, which outlives the scope.
                unsafe { avx512::outer_cols(dys, xs, dw_addr as *mut f32, (m, n, k), cols) };
            };
            if tasks == 1 {
                run(0);
            } else {
                use rayon::prelude::*;
                (0..k)
                    .step_by(cols_per_task)
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .for_each(run);
            }
            return;
        }
    }
    matmul_into(dy.t(), x, dw, false)
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
    mut c: ArrayViewMut2<T>,
    accumulate: bool,
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
    let parallelism = if m * n * k >= PARALLEL_THRESHOLD {
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

    #[test]
    fn custom_kernels_agree_with_gemm_for_odd_shapes_and_tails() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 17),
            (100, 50, 3072),
            (7, 13, 100),
            (101, 10, 3071),
            (5000, 50, 64),
        ] {
            let x =
                Array::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 23) as f32 / 23.0 - 0.5);
            let w = Array::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 19) as f32 / 19.0 - 0.5);
            let dy = Array::from_shape_fn((m, n), |(i, j)| ((i + 3 * j) % 11) as f32 / 11.0 - 0.5);
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
