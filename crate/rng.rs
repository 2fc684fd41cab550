//! Seeded random streams: every random choice of a run (initialisation, shuffling, augmentation,
//! PreciseBN batches, test-time augmentation) comes from one seed, each through its own
//! independent ChaCha stream, so changing one use never shifts another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The independent uses of randomness in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Weight initialisation.
    Init = 0,
    /// Shuffling the training set each epoch.
    Shuffle = 1,
    /// Training-time augmentation.
    Augment = 2,
    /// Choosing the mini-batches for PreciseBN.
    Precise = 3,
    /// Test-time augmentation for Adaptive BN.
    TestAugment = 4,
    /// Synthetic data (benchmarks, tests).
    Data = 5,
}

/// The generator for `stream` of `seed`.
///
/// # Example
/// ```
/// use klayer::rng::{rng, Stream};
/// use rand::Rng;
/// let a: u64 = rng(7, Stream::Init).random();
/// let b: u64 = rng(7, Stream::Init).random();
/// let c: u64 = rng(7, Stream::Shuffle).random();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream as u64);
    r
}
