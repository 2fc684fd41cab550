//! Parameters as a person types them in a notebook cell: seeds as `vec![0]`, `0..5`, `[1, 2]`
//! or `7`; hidden sizes as `vec![100, 50]`, `[50, 50]` or a slice. Integer literals of any
//! type are accepted and checked here, so a wrong value (a negative seed, a layer of 0 units)
//! is one error that names the parameter, never a panic or a type error.

use std::fmt;
use std::ops::{Deref, Range, RangeInclusive};

use crate::{Error, Result};

/// A checked list of seeds: at least one, every one a whole number ≥ 0.
///
/// It dereferences to `[u64]` (so `seeds[0]`, `seeds.len()` and `&seeds` as `&[u64]` work) and
/// prints like a list.
///
/// # Example
/// ```
/// use klayer::experiments::Seeds;
/// assert_eq!(&*Seeds::new(vec![0])?, &[0]);
/// assert_eq!(&*Seeds::new(0..3)?, &[0, 1, 2]);
/// assert_eq!(&*Seeds::new(7)?, &[7]);
/// assert_eq!(format!("{:?}", Seeds::new([4, 2])?), "[4, 2]");
/// let err = Seeds::new(vec![0, -1]).unwrap_err().to_string();
/// assert!(err.contains("seed -1 is negative"), "{err}");
/// # Ok::<(), klayer::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Seeds(Vec<u64>);

impl Seeds {
    /// Checks `seeds` (anything [`SeedList`] accepts: an integer, a vector, array or slice of
    /// integers, a range) and makes the list.
    pub fn new(seeds: impl SeedList) -> Result<Seeds> {
        seeds.to_seeds()
    }

    /// The seeds as a vector.
    pub fn to_vec(&self) -> Vec<u64> {
        self.0.clone()
    }
}

/// `0..n` (at least seed 0), for [`super::Scale::seed_list`].
pub(super) fn first_seeds(n: usize) -> Seeds {
    Seeds((0..n.max(1) as u64).collect())
}

impl Deref for Seeds {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.0
    }
}

impl fmt::Debug for Seeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> IntoIterator for &'a Seeds {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Anything that names some seeds: an integer (one seed), a `Vec`, array or slice of integers,
/// a range of integers, [`Seeds`], or a reference to any of these.
pub trait SeedList {
    /// The checked seeds; an error if there are none or one is negative or too large.
    fn to_seeds(&self) -> Result<Seeds>;
}

/// Anything that names hidden-layer sizes: a `Vec`, array or slice of integers of any type,
/// or a reference to one.
///
/// # Example
/// ```
/// use klayer::experiments::Sizes;
/// assert_eq!(vec![100, 50].to_sizes()?, vec![100usize, 50]);
/// assert_eq!([50u32, 50].to_sizes()?, vec![50, 50]);
/// assert!(vec![50, 0].to_sizes().unwrap_err().to_string().contains("hidden layer 2 has 0 units"));
/// assert!(vec![-50].to_sizes().unwrap_err().to_string().contains("-50"));
/// # Ok::<(), klayer::Error>(())
/// ```
pub trait Sizes {
    /// The checked sizes: each at least 1 (an empty list is a net without hidden layers).
    fn to_sizes(&self) -> Result<Vec<usize>>;
}

impl<T: SeedList + ?Sized> SeedList for &T {
    fn to_seeds(&self) -> Result<Seeds> {
        (**self).to_seeds()
    }
}

impl<T: Sizes + ?Sized> Sizes for &T {
    fn to_sizes(&self) -> Result<Vec<usize>> {
        (**self).to_sizes()
    }
}

impl SeedList for Seeds {
    fn to_seeds(&self) -> Result<Seeds> {
        Ok(self.clone())
    }
}

/// Largest seed accepted: seeds are mixed into 64-bit random streams, but a person never
/// needs more than this, and a huge number is more likely a typo.
const MAX_SEED: u64 = u32::MAX as u64;

/// Most units a typed hidden layer may have: far beyond what trains here, and small enough
/// that a typo (an extra zero or three) is refused before memory is allocated.
const MAX_UNITS: usize = 1 << 16;

/// An integer of any primitive type, widened for checking.
pub trait Integer: Copy + fmt::Display {
    /// The value as an `i128` (every primitive integer fits).
    fn wide(self) -> i128;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            fn wide(self) -> i128 {
                self as i128
            }
        }
        impl SeedList for $t {
            fn to_seeds(&self) -> Result<Seeds> {
                seeds_from([*self])
            }
        }
    )*};
}
integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, usize);

fn seed(v: impl Integer) -> Result<u64> {
    let w = v.wide();
    if w < 0 {
        return Err(Error::config(
            "seeds",
            format!(
                "seed {v} is negative; seeds are whole numbers from 0, e.g. vec![0, 1, 2] or 0..5"
            ),
        ));
    }
    if w > MAX_SEED as i128 {
        return Err(Error::config(
            "seeds",
            format!("seed {v} is larger than {MAX_SEED}; use small whole numbers such as 0..5"),
        ));
    }
    Ok(w as u64)
}

fn seeds_from<T: Integer>(values: impl IntoIterator<Item = T>) -> Result<Seeds> {
    let seeds = values.into_iter().map(seed).collect::<Result<Vec<u64>>>()?;
    if seeds.is_empty() {
        return Err(Error::config(
            "seeds",
            "the list is empty; give at least one seed, e.g. vec![0] or 0..3",
        ));
    }
    Ok(Seeds(seeds))
}

fn sizes_from<T: Integer>(values: &[T]) -> Result<Vec<usize>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let w = v.wide();
            if w < 1 {
                Err(Error::config(
                    "hidden",
                    format!(
                        "hidden layer {} has {v} units; every layer needs at least 1, e.g. vec![50, 50]",
                        i + 1
                    ),
                ))
            } else if w > MAX_UNITS as i128 {
                Err(Error::config(
                    "hidden",
                    format!(
                        "hidden layer {} has {v} units, more than the {} a layer may have",
                        i + 1,
                        MAX_UNITS
                    ),
                ))
            } else {
                Ok(w as usize)
            }
        })
        .collect()
}

impl<T: Integer> SeedList for [T] {
    fn to_seeds(&self) -> Result<Seeds> {
        seeds_from(self.iter().copied())
    }
}
impl<T: Integer> SeedList for Vec<T> {
    fn to_seeds(&self) -> Result<Seeds> {
        seeds_from(self.iter().copied())
    }
}
impl<T: Integer, const N: usize> SeedList for [T; N] {
    fn to_seeds(&self) -> Result<Seeds> {
        seeds_from(self.iter().copied())
    }
}

/// Ranges are checked by their ends, so `0..u64::MAX` is refused before anything is listed.
fn range_seeds<T: Integer>(lo: T, hi_inclusive: i128) -> Result<Seeds> {
    let first = lo.wide();
    if hi_inclusive < first {
        return seeds_from(std::iter::empty::<u64>());
    }
    seed(lo)?;
    if hi_inclusive > MAX_SEED as i128 {
        return Err(Error::config(
            "seeds",
            format!(
                "the range ends at {hi_inclusive}, above the largest seed {MAX_SEED}; use small whole numbers such as 0..5"
            ),
        ));
    }
    if hi_inclusive - first >= 10_000 {
        return Err(Error::config(
            "seeds",
            format!(
                "{} seeds is more than anyone can train here; use a few, such as 0..5",
                hi_inclusive - first + 1
            ),
        ));
    }
    seeds_from((first..=hi_inclusive).map(|s| s as u64))
}

impl<T: Integer> SeedList for Range<T> {
    fn to_seeds(&self) -> Result<Seeds> {
        range_seeds(self.start, self.end.wide() - 1)
    }
}
impl<T: Integer> SeedList for RangeInclusive<T> {
    fn to_seeds(&self) -> Result<Seeds> {
        range_seeds(*self.start(), self.end().wide())
    }
}

impl<T: Integer> Sizes for [T] {
    fn to_sizes(&self) -> Result<Vec<usize>> {
        sizes_from(self)
    }
}
impl<T: Integer> Sizes for Vec<T> {
    fn to_sizes(&self) -> Result<Vec<usize>> {
        sizes_from(self)
    }
}
impl<T: Integer, const N: usize> Sizes for [T; N] {
    fn to_sizes(&self) -> Result<Vec<usize>> {
        sizes_from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_accept_what_a_person_types() {
        let want = |s: &Seeds| s.to_vec();
        assert_eq!(want(&Seeds::new(vec![0]).unwrap()), [0]);
        assert_eq!(want(&Seeds::new(vec![0u64, 1, 2]).unwrap()), [0, 1, 2]);
        assert_eq!(want(&Seeds::new(0..5).unwrap()), [0, 1, 2, 3, 4]);
        assert_eq!(want(&Seeds::new(1..=3).unwrap()), [1, 2, 3]);
        assert_eq!(want(&Seeds::new([3, 1]).unwrap()), [3, 1]);
        assert_eq!(want(&Seeds::new(&[3usize, 1][..]).unwrap()), [3, 1]);
        assert_eq!(want(&Seeds::new(7).unwrap()), [7]);
        assert_eq!(want(&Seeds::new(7u8).unwrap()), [7]);
        let s = Seeds::new(0..2).unwrap();
        assert_eq!(want(&Seeds::new(&s).unwrap()), [0, 1]);
    }

    #[test]
    fn bad_seeds_are_one_error_that_names_the_seeds() {
        for (bad, says) in [
            (Seeds::new(vec![1, -2]), "seed -2 is negative"),
            (Seeds::new(-1), "seed -1 is negative"),
            (Seeds::new(Vec::<i32>::new()), "the list is empty"),
            (Seeds::new(3..3), "the list is empty"),
            (Seeds::new(u64::MAX), "is larger than"),
            (Seeds::new(0..u64::MAX), "above the largest seed"),
            (Seeds::new(0..1_000_000), "more than anyone can train"),
            (Seeds::new(-3..2), "seed -3 is negative"),
        ] {
            let msg = bad.unwrap_err().to_string();
            assert!(msg.starts_with("invalid setting `seeds`"), "{msg}");
            assert!(msg.contains(says), "{msg} should say {says}");
        }
    }

    #[test]
    fn sizes_accept_integer_lists_and_refuse_empty_layers() {
        assert_eq!(vec![100, 50].to_sizes().unwrap(), [100, 50]);
        assert_eq!([50i64; 3].to_sizes().unwrap(), [50, 50, 50]);
        assert_eq!([20usize][..].to_sizes().unwrap(), [20]);
        assert!(Vec::<i32>::new().to_sizes().unwrap().is_empty());
        let msg = vec![50, -1].to_sizes().unwrap_err().to_string();
        assert!(msg.contains("hidden layer 2 has -1 units"), "{msg}");
        let msg = [u64::MAX].to_sizes().unwrap_err().to_string();
        assert!(msg.contains("more than the"), "{msg}");
    }
}
