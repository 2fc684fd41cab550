//! Data augmentation of images: random horizontal flips and random translations.
//!
//! An image is a row of features laid out as its [`ImageShape`] says: channel-major, each
//! channel row-major (CIFAR-10: 3 channels of 32×32; Fashion-MNIST: 1 channel of 28×28). A
//! transform first flips the
//! image left-right (optionally), then shifts it by `dx` columns and `dy` rows: the value at
//! row `y`, column `x` moves to row `y + dy`, column `x + dx`. The uncovered border is filled
//! with zeros ([`Fill::Zero`]; after normalisation zero is the training-set mean of the feature)
//! or by repeating the nearest edge pixel ([`Fill::Edge`]).
//!
//! Rows are transformed in place; a batch uses one scratch buffer, never one per image.

use ndarray::{ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use super::{Dataset, ImageShape};
use crate::{Error, Result, Scalar};

/// How the border uncovered by a translation is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Fill {
    /// With zeros (the default).
    #[default]
    Zero,
    /// With the nearest pixel of the image edge (each border pixel repeats the edge pixel of its
    /// row or column).
    Edge,
}

/// Random flip-and-translate augmentation, applied to each image with probability `p`.
///
/// Defaults: `p = 0.5`, `flip = true`, `max_shift = 3`, `fill = Fill::Zero`.
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use klayer::data::{Augment, ImageShape};
/// let shape = ImageShape::FASHION_MNIST;
/// let mut x = Array2::<f32>::from_shape_fn((8, shape.dim()), |(i, j)| (i * 7 + j) as f32);
/// let before = x.clone();
/// let aug = Augment { p: 1.0, ..Augment::default() };
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let n = aug.apply(x.view_mut(), shape, &mut rng);
/// assert_eq!(n, 8); // with p = 1 every image is transformed
/// assert_ne!(x, before);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Probability that an image is transformed at all, in `[0, 1]`. Default 0.5.
    pub p: f64,
    /// Whether a transformed image is flipped left-right, with probability 1/2. Default `true`.
    pub flip: bool,
    /// Largest translation in pixels: a transformed image is shifted by `dx` and `dy`, each
    /// drawn uniformly from `-max_shift..=max_shift`; below the image's height and width (31
    /// for CIFAR-10, 27 for Fashion-MNIST). Default 3; 0 turns translation off.
    pub max_shift: usize,
    /// How the uncovered border is filled. Default [`Fill::Zero`].
    pub fill: Fill,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            p: 0.5,
            flip: true,
            max_shift: 3,
            fill: Fill::Zero,
        }
    }
}

/// One drawn transform: an optional flip, then a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Draw {
    flip: bool,
    dx: isize,
    dy: isize,
}

impl Augment {
    /// Checks the settings that do not depend on the images: `p` in `[0, 1]`
    /// ([`check_shape`](Self::check_shape) checks `max_shift` against the images).
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::config(
                "p",
                format!(
                    "the augmentation probability is {}, it must be in [0, 1]",
                    self.p
                ),
            ));
        }
        Ok(())
    }

    /// [`check`](Self::check), and that images of `shape` can be shifted by up to
    /// `max_shift` pixels: it must be below their height and width.
    pub fn check_shape(&self, shape: ImageShape) -> Result<()> {
        self.check()?;
        let side = shape.height.min(shape.width);
        if self.max_shift >= side {
            return Err(Error::config(
                "max_shift",
                format!(
                    "{} pixels; it must be below the image side {side} ({shape} images)",
                    self.max_shift
                ),
            ));
        }
        Ok(())
    }

    /// The image shape of `data` if this augmentation can be applied to it: an
    /// [`Error::Shape`] if its rows are not images of a known shape (a [`Dataset`] built
    /// without [`Dataset::with_shape`]), an [`Error::InvalidConfig`] if
    /// [`check_shape`](Self::check_shape) fails.
    pub fn shape_of<T: Scalar>(&self, data: &Dataset<T>) -> Result<ImageShape> {
        let shape = data.shape.ok_or_else(|| {
            Error::Shape(format!(
                "augmentation needs images of a known shape, but these rows of {} features have                  none: give them one with `Dataset::with_shape` or train without augmentation",
                data.dim()
            ))
        })?;
        self.check_shape(shape)?;
        Ok(shape)
    }

    /// Transforms each row (an image of `shape`) of `x` in place with probability `p`: a left-right flip with
    /// probability 1/2 (if `flip`), then a translation by `dx`, `dy` drawn uniformly from
    /// `-max_shift..=max_shift`. Returns the number of images transformed.
    ///
    /// The random draws are, per row in order: whether to transform; then, for a transformed
    /// row, the flip (if `flip`), `dx` and `dy` (if `max_shift > 0`). The same seed therefore
    /// gives the same result.
    ///
    /// **Panics** if [`check_shape`](Self::check_shape) fails (validate settings up front,
    /// e.g. with [`shape_of`](Self::shape_of) before training) or if `x` does not have
    /// `shape.dim()` columns; use [`try_apply`](Self::try_apply) to get these as errors
    /// instead.
    pub fn apply<T: Scalar, R: Rng + ?Sized>(
        &self,
        x: ArrayViewMut2<'_, T>,
        shape: ImageShape,
        rng: &mut R,
    ) -> usize {
        self.try_apply(x, shape, rng)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`apply`](Self::apply), returning [`Error::InvalidConfig`] if
    /// [`check_shape`](Self::check_shape) fails and [`Error::Shape`] if `x` does not have
    /// `shape.dim()` columns, instead of panicking.
    pub fn try_apply<T: Scalar, R: Rng + ?Sized>(
        &self,
        mut x: ArrayViewMut2<'_, T>,
        shape: ImageShape,
        rng: &mut R,
    ) -> Result<usize> {
        self.check_shape(shape)?;
        check_width(x.ncols(), shape)?;
        let mut scratch = vec![T::zero(); 2 * shape.dim()];
        let mut count = 0;
        for row in x.rows_mut() {
            if rng.random_bool(self.p) {
                let d = self.draw(rng);
                transform_row(row, shape, d, self.fill, &mut scratch);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Picks exactly `round(fraction * n)` distinct rows of `x` (`n` rows) at random and
    /// transforms every one of them (a flip with probability 1/2 if `flip`, and a random
    /// translation, as in [`apply`](Self::apply); `p` is not used). Returns the number of rows
    /// picked.
    ///
    /// This is the test-time augmentation used with Adaptive BN. Note that a picked image can
    /// come out unchanged when it draws no flip and a zero shift.
    ///
    /// The random draws are: the set of picked rows, then per picked row (in the order drawn)
    /// the flip (if `flip`), `dx` and `dy` (if `max_shift > 0`).
    ///
    /// **Panics** if `fraction` is not in `[0, 1]`, [`check_shape`](Self::check_shape) fails,
    /// or `x` does not have `shape.dim()` columns;
    /// [`try_apply_fraction`](Self::try_apply_fraction) returns these as errors instead.
    pub fn apply_fraction<T: Scalar, R: Rng + ?Sized>(
        &self,
        x: ArrayViewMut2<'_, T>,
        shape: ImageShape,
        fraction: f64,
        rng: &mut R,
    ) -> usize {
        self.try_apply_fraction(x, shape, fraction, rng)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`apply_fraction`](Self::apply_fraction), returning [`Error::InvalidConfig`] if
    /// `fraction` is not in `[0, 1]` or [`check_shape`](Self::check_shape) fails, and
    /// [`Error::Shape`] if `x` does not have `shape.dim()` columns, instead of panicking.
    pub fn try_apply_fraction<T: Scalar, R: Rng + ?Sized>(
        &self,
        mut x: ArrayViewMut2<'_, T>,
        shape: ImageShape,
        fraction: f64,
        rng: &mut R,
    ) -> Result<usize> {
        self.check_shape(shape)?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::config(
                "fraction",
                format!("{fraction}; the fraction of images to augment must be in [0, 1]"),
            ));
        }
        check_width(x.ncols(), shape)?;
        let n = x.nrows();
        let k = ((fraction * n as f64).round() as usize).min(n);
        let picked = rand::seq::index::sample(rng, n, k);
        let mut scratch = vec![T::zero(); 2 * shape.dim()];
        for i in picked.iter() {
            let d = self.draw(rng);
            transform_row(x.row_mut(i), shape, d, self.fill, &mut scratch);
        }
        Ok(k)
    }

    fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Draw {
        let flip = self.flip && rng.random_bool(0.5);
        // i32, not isize: the random stream must not depend on the platform's word size.
        let m = self.max_shift as i32;
        let (dx, dy) = if m > 0 {
            let dx = rng.random_range(-m..=m);
            let dy = rng.random_range(-m..=m);
            (dx as isize, dy as isize)
        } else {
            (0, 0)
        };
        Draw { flip, dx, dy }
    }
}

fn check_width(cols: usize, shape: ImageShape) -> Result<()> {
    if cols != shape.dim() {
        return Err(Error::Shape(format!(
            "augmentation of {shape} images needs rows of {} features, got {cols}",
            shape.dim()
        )));
    }
    Ok(())
}

/// Applies one transform to a row (an image of `shape`), which need not be contiguous;
/// `scratch` holds at least `2 * shape.dim()` values.
fn transform_row<T: Scalar>(
    mut row: ArrayViewMut1<'_, T>,
    shape: ImageShape,
    d: Draw,
    fill: Fill,
    scratch: &mut [T],
) {
    let (src, tmp) = scratch.split_at_mut(shape.dim());
    if let Some(dst) = row.as_slice_mut() {
        src.copy_from_slice(dst);
        write_transformed(src, dst, shape, d, fill);
    } else {
        for (s, &v) in src.iter_mut().zip(row.iter()) {
            *s = v;
        }
        let dst = &mut tmp[..shape.dim()];
        write_transformed(src, dst, shape, d, fill);
        for (r, &v) in row.iter_mut().zip(dst.iter()) {
            *r = v;
        }
    }
}

/// Flips (optionally) and shifts one image of `shape` in place: the value at row `y`, column
/// `x` (after the flip) moves to row `y + dy`, column `x + dx`; the uncovered border is filled
/// as `fill` says. `scratch` must hold at least `shape.dim()` values; its contents are
/// overwritten.
///
/// **Panics** if `image` does not have `shape.dim()` values or `scratch` is shorter.
///
/// # Example
/// ```
/// use klayer::data::{transform_image, Fill, ImageShape};
/// let shape = ImageShape::CIFAR10;
/// let mut img = vec![0.0f64; shape.dim()];
/// img[5 * 32 + 7] = 1.0; // red channel, row 5, column 7
/// let mut scratch = vec![0.0; shape.dim()];
/// transform_image(&mut img, shape, false, 1, 2, Fill::Zero, &mut scratch);
/// assert_eq!(img[7 * 32 + 8], 1.0); // now at row 7, column 8
/// assert_eq!(img.iter().sum::<f64>(), 1.0);
/// ```
pub fn transform_image<T: Scalar>(
    image: &mut [T],
    shape: ImageShape,
    flip: bool,
    dx: isize,
    dy: isize,
    fill: Fill,
    scratch: &mut [T],
) {
    let dim = shape.dim();
    assert_eq!(image.len(), dim, "a {shape} image has {dim} values");
    let src = &mut scratch[..dim];
    src.copy_from_slice(image);
    write_transformed(src, image, shape, Draw { flip, dx, dy }, fill);
}

/// Writes the transform of `src` into `dst` (both `shape.dim()` long, distinct).
fn write_transformed<T: Scalar>(src: &[T], dst: &mut [T], shape: ImageShape, d: Draw, fill: Fill) {
    let (width, plane) = (shape.width, shape.plane());
    let (w, h) = (width as isize, shape.height as isize);
    // Source column (in the unflipped image) of destination column x; None if uncovered.
    let src_col = |x: isize| -> Option<usize> {
        let fx = x - d.dx; // column in the flipped image
        let fx = match fill {
            Fill::Zero if !(0..w).contains(&fx) => return None,
            _ => fx.clamp(0, w - 1),
        };
        Some(if d.flip { w - 1 - fx } else { fx } as usize)
    };
    let cols: Vec<Option<usize>> = (0..w).map(src_col).collect();
    for c in 0..shape.channels {
        let src_ch = &src[c * plane..(c + 1) * plane];
        let dst_ch = &mut dst[c * plane..(c + 1) * plane];
        for (y, dst_row) in dst_ch.chunks_exact_mut(width).enumerate() {
            let sy = y as isize - d.dy;
            let sy = match fill {
                Fill::Zero if !(0..h).contains(&sy) => {
                    dst_row.fill(T::zero());
                    continue;
                }
                _ => sy.clamp(0, h - 1) as usize,
            };
            let src_row = &src_ch[sy * width..(sy + 1) * width];
            for (out, col) in dst_row.iter_mut().zip(cols.iter()) {
                *out = match col {
                    Some(sx) => src_row[*sx],
                    None => T::zero(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CHANNELS, CHANNEL_DIM, IMAGE_DIM, IMAGE_SIDE};
    use ndarray::{s, Array2};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const S: ImageShape = ImageShape::CIFAR10;

    /// Value at channel c, row y, column x of the test image: all distinct, never zero.
    fn v(c: usize, y: usize, x: usize) -> f64 {
        1.0 + (c * CHANNEL_DIM + y * IMAGE_SIDE + x) as f64
    }

    fn image() -> Vec<f64> {
        (0..IMAGE_DIM)
            .map(|i| {
                v(
                    i / CHANNEL_DIM,
                    (i / IMAGE_SIDE) % IMAGE_SIDE,
                    i % IMAGE_SIDE,
                )
            })
            .collect()
    }

    fn at(img: &[f64], c: usize, y: usize, x: usize) -> f64 {
        img[c * CHANNEL_DIM + y * IMAGE_SIDE + x]
    }

    fn batch(n: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, IMAGE_DIM), |(i, j)| (i * IMAGE_DIM + j) as f64 + 1.0)
    }

    #[test]
    fn flip_twice_is_identity() {
        let orig = image();
        let mut img = orig.clone();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, S, true, 0, 0, Fill::Zero, &mut scratch);
        assert_ne!(img, orig);
        assert_eq!(at(&img, 1, 4, 0), v(1, 4, 31));
        assert_eq!(at(&img, 2, 9, 10), v(2, 9, 21));
        transform_image(&mut img, S, true, 0, 0, Fill::Zero, &mut scratch);
        assert_eq!(img, orig);
    }

    #[test]
    fn shift_by_one_moves_pixels_and_zero_fills() {
        let mut img = image();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, S, false, 1, 1, Fill::Zero, &mut scratch);
        for c in 0..CHANNELS {
            for y in 0..IMAGE_SIDE {
                for x in 0..IMAGE_SIDE {
                    let want = if x == 0 || y == 0 {
                        0.0
                    } else {
                        v(c, y - 1, x - 1)
                    };
                    assert_eq!(at(&img, c, y, x), want, "c {c} y {y} x {x}");
                }
            }
        }
        // And back by -1 restores all but the lost last row and column.
        let mut img2 = image();
        transform_image(&mut img2, S, false, -1, 0, Fill::Zero, &mut scratch);
        assert_eq!(at(&img2, 0, 3, 0), v(0, 3, 1));
        assert_eq!(at(&img2, 0, 3, 31), 0.0);
    }

    #[test]
    fn edge_fill_repeats_the_border() {
        let mut img = image();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, S, false, 2, -3, Fill::Edge, &mut scratch);
        // Uncovered left columns repeat original column 0; bottom rows repeat row 31.
        assert_eq!(at(&img, 0, 0, 0), v(0, 3, 0));
        assert_eq!(at(&img, 0, 0, 1), v(0, 3, 0));
        assert_eq!(at(&img, 0, 0, 2), v(0, 3, 0));
        assert_eq!(at(&img, 0, 0, 3), v(0, 3, 1));
        assert_eq!(at(&img, 2, 31, 31), v(2, 31, 29));
        assert_eq!(at(&img, 1, 29, 5), v(1, 31, 3));
        assert_eq!(at(&img, 1, 28, 5), v(1, 31, 3));
        assert_eq!(at(&img, 1, 27, 5), v(1, 30, 3));
        assert!(img.iter().all(|&p| p != 0.0));
    }

    #[test]
    fn flip_then_shift_with_edge_fill() {
        let mut img = image();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, S, true, 1, 0, Fill::Edge, &mut scratch);
        // Flipped column 0 is original column 31; shifted right by one.
        assert_eq!(at(&img, 0, 0, 1), v(0, 0, 31));
        assert_eq!(at(&img, 0, 0, 0), v(0, 0, 31));
        assert_eq!(at(&img, 0, 0, 31), v(0, 0, 1));
    }

    #[test]
    fn non_contiguous_rows_match_contiguous_ones() {
        let aug = Augment {
            p: 1.0,
            fill: Fill::Edge,
            ..Augment::default()
        };
        let mut a = batch(6);
        // Every other column of a twice-as-wide array: rows with stride 2, not slices.
        let mut wide = Array2::<f64>::zeros((6, 2 * IMAGE_DIM));
        wide.slice_mut(s![.., ..;2]).assign(&a);
        aug.apply(a.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(3));
        let view = wide.slice_mut(s![.., ..;2]);
        assert!(view.row(0).as_slice().is_none());
        aug.apply(view, S, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(wide.slice(s![.., ..;2]), a);
        assert!(wide.slice(s![.., 1..;2]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn fraction_picks_the_exact_count() {
        // Flip only: a picked row is flipped with probability 1/2, so at most `want` rows
        // change; with the identity transform none do.
        let aug = Augment {
            p: 0.0, // ignored by apply_fraction
            flip: true,
            max_shift: 0,
            fill: Fill::Zero,
        };
        let orig = batch(40);
        for (fraction, want) in [(0.0, 0), (0.1, 4), (0.5, 20), (0.33, 13), (1.0, 40)] {
            let mut x = orig.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            assert_eq!(
                aug.apply_fraction(x.view_mut(), S, fraction, &mut rng),
                want
            );
            let changed = (0..40).filter(|&i| x.row(i) != orig.row(i)).count();
            assert!(changed <= want, "{changed} rows changed, {want} picked");
        }
        let identity = Augment {
            p: 0.0,
            flip: false,
            max_shift: 0,
            fill: Fill::Zero,
        };
        let mut x = orig.clone();
        let n = identity.apply_fraction(x.view_mut(), S, 0.25, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(n, 10);
        assert_eq!(x, orig);
        assert!(aug
            .try_apply_fraction(x.view_mut(), S, 1.5, &mut ChaCha8Rng::seed_from_u64(1))
            .is_err());
    }

    #[test]
    fn fraction_transforms_every_picked_row() {
        // With max_shift 31 and zero fill a picked row stays unchanged only if it draws no
        // flip and dx = dy = 0 (probability 1/2 * 1/63^2), so nearly all 60 picks must change.
        let aug = Augment {
            p: 0.0,
            flip: true,
            max_shift: 31,
            fill: Fill::Zero,
        };
        let orig = batch(200);
        let mut x = orig.clone();
        let k = aug.apply_fraction(x.view_mut(), S, 0.3, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(k, 60);
        let changed = (0..200).filter(|&i| x.row(i) != orig.row(i)).count();
        assert!((58..=60).contains(&changed), "{changed}");
    }

    #[test]
    fn same_seed_same_result() {
        let aug = Augment::default();
        let mut a = batch(50);
        let mut b = batch(50);
        let na = aug.apply(a.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(42));
        let nb = aug.apply(b.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(42));
        assert_eq!(na, nb);
        assert_eq!(a, b);
        assert!(na > 10 && na < 40, "{na} of 50 with p = 0.5");
        let mut c = batch(50);
        aug.apply(c.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(43));
        assert_ne!(a, c);
        let mut f1 = batch(50);
        let mut f2 = batch(50);
        aug.apply_fraction(f1.view_mut(), S, 0.5, &mut ChaCha8Rng::seed_from_u64(7));
        aug.apply_fraction(f2.view_mut(), S, 0.5, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(f1, f2);
    }

    #[test]
    fn p_zero_is_identity_and_settings_are_checked() {
        let aug = Augment {
            p: 0.0,
            ..Augment::default()
        };
        let mut x = batch(5);
        assert_eq!(
            aug.apply(x.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(0)),
            0
        );
        assert_eq!(x, batch(5));
        let bad = Augment {
            p: 1.5,
            ..Augment::default()
        };
        assert!(matches!(
            bad.check(),
            Err(Error::InvalidConfig { name: "p", .. })
        ));
        let bad = Augment {
            max_shift: 32,
            ..Augment::default()
        };
        assert!(bad.check().is_ok(), "max_shift depends on the images");
        assert!(bad.check_shape(S).is_err());
        let fits = Augment {
            max_shift: 31,
            ..Augment::default()
        };
        assert!(fits.check_shape(S).is_ok());
        assert!(fits.check_shape(ImageShape::FASHION_MNIST).is_err());
        let mut narrow = Array2::<f32>::zeros((2, 10));
        assert!(matches!(
            Augment::default().try_apply(narrow.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(0)),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn grey_28_by_28_images_flip_and_shift_by_their_own_shape() {
        let shape = ImageShape::FASHION_MNIST;
        let orig: Vec<f64> = (0..shape.dim()).map(|i| 1.0 + i as f64).collect();
        let at = |img: &[f64], y: usize, x: usize| img[y * 28 + x];
        let mut scratch = vec![0.0; shape.dim()];
        let mut img = orig.clone();
        transform_image(&mut img, shape, true, 0, 0, Fill::Zero, &mut scratch);
        assert_eq!(at(&img, 4, 0), at(&orig, 4, 27));
        assert_eq!(at(&img, 27, 10), at(&orig, 27, 17));
        let mut img = orig.clone();
        transform_image(&mut img, shape, false, 2, -1, Fill::Zero, &mut scratch);
        assert_eq!(at(&img, 0, 2), at(&orig, 1, 0));
        assert_eq!(at(&img, 26, 27), at(&orig, 27, 25));
        assert_eq!((at(&img, 5, 1), at(&img, 27, 5)), (0.0, 0.0));
        // A batch of them through `apply`, rows of 784 features.
        let mut x = Array2::from_shape_fn((4, shape.dim()), |(i, j)| (i + j) as f64);
        let all = Augment {
            p: 1.0,
            ..Augment::default()
        };
        assert_eq!(
            all.apply(x.view_mut(), shape, &mut ChaCha8Rng::seed_from_u64(2)),
            4
        );
        assert!(all
            .try_apply(x.view_mut(), S, &mut ChaCha8Rng::seed_from_u64(2))
            .is_err());
    }

    #[test]
    fn data_without_an_image_shape_is_refused() {
        let plain = Dataset::new(Array2::<f32>::zeros((2, IMAGE_DIM)), vec![0, 1], 10).unwrap();
        let err = Augment::default().shape_of(&plain).unwrap_err();
        assert!(err.to_string().contains("with_shape"), "{err}");
        let images = plain.with_shape(S).unwrap();
        assert_eq!(Augment::default().shape_of(&images).unwrap(), S);
    }
}
