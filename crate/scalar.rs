//! The floating-point types a network can be built on: `f32` for fast training, `f64` for
//! gradient checks.

use std::fmt::{Debug, Display};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;

/// A float the whole crate is generic over; implemented for `f32` and `f64` only.
///
/// # Example
/// ```
/// use klayer::Scalar;
/// fn half<T: Scalar>(x: T) -> T { x * T::of(0.5) }
/// assert_eq!(half(3.0f32), 1.5);
/// ```
pub trait Scalar:
    Float
    + LinalgScalar
    + ScalarOperand
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// The type's name, `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Converts from `f64`, rounding to the nearest value of `Self`.
    fn of(x: f64) -> Self;
    /// Converts to `f64`, exactly.
    fn as_f64(self) -> f64;
    /// Converts a count or index.
    fn of_usize(n: usize) -> Self {
        Self::of(n as f64)
    }
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
}
