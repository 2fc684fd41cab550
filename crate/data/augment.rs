//! Data augmentation of CIFAR-10 images: random horizontal flips and random translations.
//!
//! An image is a row of [`IMAGE_DIM`] features in the file's channel-major order (3 channels
//! of 32x32, each row-major; see [`RawImages`](super::RawImages)). A transform first flips the
//! image left-right (optionally), then shifts it by `dx` columns and `dy` rows: the value at
//! row `y`, column `x` moves to row `y + dy`, column `x + dx`. The uncovered border is filled
//! with zeros ([`Fill::Zero`]; after normalisation zero is the training-set mean of the feature)
//! or by repeating the nearest edge pixel ([`Fill::Edge`]).
//!
//! Rows are transformed in place; a batch uses one scratch buffer, never one per image.

use ndarray::{ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use super::cifar::{CHANNELS, CHANNEL_DIM, IMAGE_DIM, IMAGE_SIDE};
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
/// use klayer::data::{Augment, IMAGE_DIM};
/// let mut x = Array2::<f32>::from_shape_fn((8, IMAGE_DIM), |(i, j)| (i * 7 + j) as f32);
/// let before = x.clone();
/// let aug = Augment { p: 1.0, ..Augment::default() };
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let n = aug.apply(x.view_mut(), &mut rng);
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
    /// drawn uniformly from `-max_shift..=max_shift`; at most 31. Default 3; 0 turns
    /// translation off.
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
    /// Checks the settings: `p` in `[0, 1]`, `max_shift` below 32.
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
        if self.max_shift >= IMAGE_SIDE {
            return Err(Error::config(
                "max_shift",
                format!(
                    "{} pixels; it must be below the image side {IMAGE_SIDE}",
                    self.max_shift
                ),
            ));
        }
        Ok(())
    }

    /// Transforms each row (image) of `x` in place with probability `p`: a left-right flip with
    /// probability 1/2 (if `flip`), then a translation by `dx`, `dy` drawn uniformly from
    /// `-max_shift..=max_shift`. Returns the number of images transformed.
    ///
    /// The random draws are, per row in order: whether to transform; then, for a transformed
    /// row, the flip (if `flip`), `dx` and `dy` (if `max_shift > 0`). The same seed therefore
    /// gives the same result.
    ///
    /// **Panics** if [`check`](Self::check) fails (validate settings up front, e.g. in the
    /// training configuration's check) or if `x` does not have [`IMAGE_DIM`] columns; use
    /// [`try_apply`](Self::try_apply) to get these as errors instead.
    pub fn apply<T: Scalar, R: Rng + ?Sized>(&self, x: ArrayViewMut2<'_, T>, rng: &mut R) -> usize {
        self.try_apply(x, rng).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`apply`](Self::apply), returning [`Error::InvalidConfig`] if [`check`](Self::check)
    /// fails and [`Error::Shape`] if `x` does not have [`IMAGE_DIM`] columns, instead of
    /// panicking.
    pub fn try_apply<T: Scalar, R: Rng + ?Sized>(
        &self,
        mut x: ArrayViewMut2<'_, T>,
        rng: &mut R,
    ) -> Result<usize> {
        self.check()?;
        check_width(x.ncols())?;
        let mut scratch = vec![T::zero(); 2 * IMAGE_DIM];
        let mut count = 0;
        for row in x.rows_mut() {
            if rng.random_bool(self.p) {
                let d = self.draw(rng);
                transform_row(row, d, self.fill, &mut scratch);
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
    /// **Panics** if `fraction` is not in `[0, 1]`, [`check`](Self::check) fails, or `x` does
    /// not have [`IMAGE_DIM`] columns; [`try_apply_fraction`](Self::try_apply_fraction)
    /// returns these as errors instead.
    pub fn apply_fraction<T: Scalar, R: Rng + ?Sized>(
        &self,
        x: ArrayViewMut2<'_, T>,
        fraction: f64,
        rng: &mut R,
    ) -> usize {
        self.try_apply_fraction(x, fraction, rng)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`apply_fraction`](Self::apply_fraction), returning [`Error::InvalidConfig`] if
    /// `fraction` is not in `[0, 1]` or [`check`](Self::check) fails, and [`Error::Shape`] if
    /// `x` does not have [`IMAGE_DIM`] columns, instead of panicking.
    pub fn try_apply_fraction<T: Scalar, R: Rng + ?Sized>(
        &self,
        mut x: ArrayViewMut2<'_, T>,
        fraction: f64,
        rng: &mut R,
    ) -> Result<usize> {
        self.check()?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::config(
                "fraction",
                format!("{fraction}; the fraction of images to augment must be in [0, 1]"),
            ));
        }
        check_width(x.ncols())?;
        let n = x.nrows();
        let k = ((fraction * n as f64).round() as usize).min(n);
        let picked = rand::seq::index::sample(rng, n, k);
        let mut scratch = vec![T::zero(); 2 * IMAGE_DIM];
        for i in picked.iter() {
            let d = self.draw(rng);
            transform_row(x.row_mut(i), d, self.fill, &mut scratch);
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

fn check_width(cols: usize) -> Result<()> {
    if cols != IMAGE_DIM {
        return Err(Error::Shape(format!(
            "augmentation needs rows of {IMAGE_DIM} features (32x32x3 images), got {cols}"
        )));
    }
    Ok(())
}

/// Applies one transform to a row, which need not be contiguous; `scratch` holds at least
/// `2 * IMAGE_DIM` values.
fn transform_row<T: Scalar>(mut row: ArrayViewMut1<'_, T>, d: Draw, fill: Fill, scratch: &mut [T]) {
    let (src, tmp) = scratch.split_at_mut(IMAGE_DIM);
    if let Some(dst) = row.as_slice_mut() {
        src.copy_from_slice(dst);
        write_transformed(src, dst, d, fill);
    } else {
        for (s, &v) in src.iter_mut().zip(row.iter()) {
            *s = v;
        }
        let dst = &mut tmp[..IMAGE_DIM];
        write_transformed(src, dst, d, fill);
        for (r, &v) in row.iter_mut().zip(dst.iter()) {
            *r = v;
        }
    }
}

/// Flips (optionally) and shifts one image in place: the value at row `y`, column `x` (after
/// the flip) moves to row `y + dy`, column `x + dx`; the uncovered border is filled as `fill`
/// says. `scratch` must hold at least [`IMAGE_DIM`] values; its contents are overwritten.
///
/// **Panics** if `image` does not have [`IMAGE_DIM`] values or `scratch` is shorter.
///
/// # Example
/// ```
/// use klayer::data::{transform_image, Fill, IMAGE_DIM};
/// let mut img = vec![0.0f64; IMAGE_DIM];
/// img[5 * 32 + 7] = 1.0; // red channel, row 5, column 7
/// let mut scratch = vec![0.0; IMAGE_DIM];
/// transform_image(&mut img, false, 1, 2, Fill::Zero, &mut scratch);
/// assert_eq!(img[7 * 32 + 8], 1.0); // now at row 7, column 8
/// assert_eq!(img.iter().sum::<f64>(), 1.0);
/// ```
pub fn transform_image<T: Scalar>(
    image: &mut [T],
    flip: bool,
    dx: isize,
    dy: isize,
    fill: Fill,
    scratch: &mut [T],
) {
    assert_eq!(image.len(), IMAGE_DIM, "an image has {IMAGE_DIM} values");
    let src = &mut scratch[..IMAGE_DIM];
    src.copy_from_slice(image);
    write_transformed(src, image, Draw { flip, dx, dy }, fill);
}

/// Writes the transform of `src` into `dst` (both `IMAGE_DIM` long, distinct).
fn write_transformed<T: Scalar>(src: &[T], dst: &mut [T], d: Draw, fill: Fill) {
    let side = IMAGE_SIDE as isize;
    let last = side - 1;
    // Source column (in the unflipped image) of destination column x; None if uncovered.
    let src_col = |x: isize| -> Option<usize> {
        let fx = x - d.dx; // column in the flipped image
        let fx = match fill {
            Fill::Zero if !(0..side).contains(&fx) => return None,
            _ => fx.clamp(0, last),
        };
        Some(if d.flip { last - fx } else { fx } as usize)
    };
    let mut cols = [None; IMAGE_SIDE];
    for (x, c) in cols.iter_mut().enumerate() {
        *c = src_col(x as isize);
    }
    for c in 0..CHANNELS {
        let src_ch = &src[c * CHANNEL_DIM..(c + 1) * CHANNEL_DIM];
        let dst_ch = &mut dst[c * CHANNEL_DIM..(c + 1) * CHANNEL_DIM];
        for (y, dst_row) in dst_ch.chunks_exact_mut(IMAGE_SIDE).enumerate() {
            let sy = y as isize - d.dy;
            let sy = match fill {
                Fill::Zero if !(0..side).contains(&sy) => {
                    dst_row.fill(T::zero());
                    continue;
                }
                _ => sy.clamp(0, last) as usize,
            };
            let src_row = &src_ch[sy * IMAGE_SIDE..(sy + 1) * IMAGE_SIDE];
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
    use ndarray::{s, Array2};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

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
        transform_image(&mut img, true, 0, 0, Fill::Zero, &mut scratch);
        assert_ne!(img, orig);
        assert_eq!(at(&img, 1, 4, 0), v(1, 4, 31));
        assert_eq!(at(&img, 2, 9, 10), v(2, 9, 21));
        transform_image(&mut img, true, 0, 0, Fill::Zero, &mut scratch);
        assert_eq!(img, orig);
    }

    #[test]
    fn shift_by_one_moves_pixels_and_zero_fills() {
        let mut img = image();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, false, 1, 1, Fill::Zero, &mut scratch);
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
        transform_image(&mut img2, false, -1, 0, Fill::Zero, &mut scratch);
        assert_eq!(at(&img2, 0, 3, 0), v(0, 3, 1));
        assert_eq!(at(&img2, 0, 3, 31), 0.0);
    }

    #[test]
    fn edge_fill_repeats_the_border() {
        let mut img = image();
        let mut scratch = vec![0.0; IMAGE_DIM];
        transform_image(&mut img, false, 2, -3, Fill::Edge, &mut scratch);
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
        transform_image(&mut img, true, 1, 0, Fill::Edge, &mut scratch);
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
        aug.apply(a.view_mut(), &mut ChaCha8Rng::seed_from_u64(3));
        let view = wide.slice_mut(s![.., ..;2]);
        assert!(view.row(0).as_slice().is_none());
        aug.apply(view, &mut ChaCha8Rng::seed_from_u64(3));
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
            assert_eq!(aug.apply_fraction(x.view_mut(), fraction, &mut rng), want);
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
        let n = identity.apply_fraction(x.view_mut(), 0.25, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(n, 10);
        assert_eq!(x, orig);
        assert!(aug
            .try_apply_fraction(x.view_mut(), 1.5, &mut ChaCha8Rng::seed_from_u64(1))
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
        let k = aug.apply_fraction(x.view_mut(), 0.3, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(k, 60);
        let changed = (0..200).filter(|&i| x.row(i) != orig.row(i)).count();
        assert!((58..=60).contains(&changed), "{changed}");
    }

    #[test]
    fn same_seed_same_result() {
        let aug = Augment::default();
        let mut a = batch(50);
        let mut b = batch(50);
        let na = aug.apply(a.view_mut(), &mut ChaCha8Rng::seed_from_u64(42));
        let nb = aug.apply(b.view_mut(), &mut ChaCha8Rng::seed_from_u64(42));
        assert_eq!(na, nb);
        assert_eq!(a, b);
        assert!(na > 10 && na < 40, "{na} of 50 with p = 0.5");
        let mut c = batch(50);
        aug.apply(c.view_mut(), &mut ChaCha8Rng::seed_from_u64(43));
        assert_ne!(a, c);
        let mut f1 = batch(50);
        let mut f2 = batch(50);
        aug.apply_fraction(f1.view_mut(), 0.5, &mut ChaCha8Rng::seed_from_u64(7));
        aug.apply_fraction(f2.view_mut(), 0.5, &mut ChaCha8Rng::seed_from_u64(7));
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
            aug.apply(x.view_mut(), &mut ChaCha8Rng::seed_from_u64(0)),
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
        assert!(bad.check().is_err());
        let mut narrow = Array2::<f32>::zeros((2, 10));
        assert!(matches!(
            Augment::default().try_apply(narrow.view_mut(), &mut ChaCha8Rng::seed_from_u64(0)),
            Err(Error::Shape(_))
        ));
    }
}
