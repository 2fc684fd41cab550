//! Matrix products on ndarray views, computed by the `gemm` crate (AVX-512 / AVX2 / FMA kernels
//! chosen at run time, multithreaded with rayon for large products).
//!
//! Every layer's heavy lifting goes through [`matmul_into`]; views may be transposed (`.t()`)
//! or strided, nothing is copied.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::Scalar;

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
