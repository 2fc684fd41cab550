//! Mini-batches in shuffled order, the next one gathered while the current one is in use.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use ndarray::{Array2, ArrayViewMut2};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::Dataset;
use crate::Scalar;

/// An endless stream of mini-batches of a [`Dataset`]: the images are shuffled, cut into
/// batches of `batch` images, and reshuffled once an epoch has no whole batch left (the
/// incomplete batch is dropped, as in the report).
///
/// Gathering 100 random rows of 3,072 values out of a data set that does not fit in cache is
/// bound by memory traffic. A set normalised from bytes ([`crate::data::normalise`], which
/// the loaders use) is gathered from its bytes, a quarter of the traffic of f32 features;
/// [`BatchStream::with_next`] gathers the *following* batch on another rayon thread while the
/// caller works on the current one, and [`BatchStream::with_next_job`] lets the caller choose
/// when, and with how many threads (the trainer gathers it while the small layers work on one
/// thread, and that thread helps when they are done: see [`Gather::run`] and
/// [`crate::net::Network::grads_alongside`]).
/// The sequence of batches depends only on the data, the batch size and the random generator,
/// never on the number of threads.
///
/// # Example
/// ```
/// use klayer::data::Dataset;
/// use klayer::rng::{rng, Stream};
/// use klayer::train::BatchStream;
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((10, 2), |(i, j)| (10 * i + j) as f32);
/// let data = Dataset::new(x, (0..10).map(|i| i % 2).collect(), 2).unwrap();
/// let mut batches = BatchStream::new(&data, 4, rng(0, Stream::Shuffle)).unwrap();
/// for _ in 0..5 {
///     batches.with_next(|x, y| {
///         assert_eq!(x.dim(), (4, 2));
///         // Every row is an image of the data set, with its label.
///         for (row, &label) in x.rows().into_iter().zip(y) {
///             assert_eq!((row[0] as usize / 10) % 2, label);
///         }
///     });
/// }
/// ```
#[derive(Debug)]
pub struct BatchStream<'a, T: Scalar> {
    data: &'a Dataset<T>,
    batch: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    pos: usize,
    current: (Array2<T>, Vec<usize>),
    next: (Array2<T>, Vec<usize>),
    /// Rows found to decode exactly from the data set's bytes (see `Dataset::gather`).
    decoded: Option<Vec<AtomicBool>>,
}

impl<'a, T: Scalar> BatchStream<'a, T> {
    /// A stream of batches of `batch` images of `data`, shuffled with `rng`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if `batch` is 0 or larger than the data set.
    pub fn new(data: &'a Dataset<T>, batch: usize, rng: ChaCha8Rng) -> crate::Result<Self> {
        if batch == 0 || batch > data.len() {
            return Err(crate::Error::config(
                "batch",
                format!(
                    "must be in 1..={} (the number of training images)",
                    data.len()
                ),
            ));
        }
        let empty = || {
            (
                crate::linalg::zeros_aligned((batch, data.dim())),
                Vec::with_capacity(batch),
            )
        };
        let mut stream = BatchStream {
            data,
            batch,
            rng,
            order: (0..data.len()).collect(),
            pos: data.len(),
            current: empty(),
            next: empty(),
            decoded: data.decode_flags(),
        };
        let idx = stream.advance();
        let (x, y) = &mut stream.current;
        data.gather(&stream.order[idx], x, y, stream.decoded.as_deref());
        Ok(stream)
    }

    /// The index range in `order` of the batch after the last one handed out, reshuffling
    /// first if the epoch has no whole batch left.
    fn advance(&mut self) -> std::ops::Range<usize> {
        if self.pos + self.batch > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
        }
        self.pos += self.batch;
        self.pos - self.batch..self.pos
    }

    /// Runs `f` on the next mini-batch (its images, which `f` may change in place, e.g. to
    /// augment them, and its labels) while the batch after it is gathered in parallel.
    pub fn with_next<R: Send>(
        &mut self,
        f: impl FnOnce(ArrayViewMut2<'_, T>, &[usize]) -> R + Send,
    ) -> R {
        self.with_next_job(|x, y, gather| rayon::join(|| f(x, y), || gather.run()).0)
    }

    /// Runs `f` on the next mini-batch like [`BatchStream::with_next`], and hands it the
    /// gathering of the batch after it as a [`Gather`] job to run where it costs least (on
    /// another thread, alongside work that leaves a core idle). Whatever part of the job `f`
    /// has not run (all of it, if `f` never calls [`Gather::run`]) runs after `f` returns, so
    /// the stream of batches is the same either way.
    ///
    /// # Example
    /// ```
    /// use klayer::data::Dataset;
    /// use klayer::rng::{rng, Stream};
    /// use klayer::train::BatchStream;
    /// use ndarray::Array2;
    ///
    /// let x = Array2::from_shape_fn((10, 2), |(i, j)| (10 * i + j) as f32);
    /// let data = Dataset::new(x, (0..10).collect(), 10).unwrap();
    /// let mut a = BatchStream::new(&data, 3, rng(0, Stream::Shuffle)).unwrap();
    /// let mut b = BatchStream::new(&data, 3, rng(0, Stream::Shuffle)).unwrap();
    /// for step in 0..7 {
    ///     let labels = a.with_next_job(|_, y, gather| {
    ///         let labels = y.to_vec();
    ///         if step % 2 == 0 {
    ///             // Two threads may share the job.
    ///             rayon::join(|| gather.run(), || gather.run());
    ///         }
    ///         labels
    ///     });
    ///     assert_eq!(labels, b.with_next(|_, y| y.to_vec()));
    /// }
    /// ```
    pub fn with_next_job<R>(
        &mut self,
        f: impl FnOnce(ArrayViewMut2<'_, T>, &[usize], &Gather<'_, T>) -> R,
    ) -> R {
        let idx = self.advance();
        let out = {
            let (cx, cy) = &mut self.current;
            let (nx, ny) = &mut self.next;
            let order = &self.order[idx];
            let blocks = self.data.batch_blocks(order, nx, ny);
            let job = Gather {
                data: self.data,
                blocks: blocks.into_iter().map(|b| Mutex::new(Some(b))).collect(),
                next: AtomicUsize::new(0),
                decoded: self.decoded.as_deref(),
            };
            let out = f(cx.view_mut(), cy.as_slice(), &job);
            job.run();
            out
        };
        std::mem::swap(&mut self.current, &mut self.next);
        out
    }
}

/// The gathering of a [`BatchStream`]'s next mini-batch, handed out by
/// [`BatchStream::with_next_job`]: [`Gather::run`] copies its images, a block of rows at a
/// time.
#[derive(Debug)]
pub struct Gather<'s, T: Scalar> {
    data: &'s Dataset<T>,
    /// The batch's blocks of rows: where each goes and which rows of the data set it holds;
    /// taken (left `None`) by the call that gathers it.
    #[allow(clippy::type_complexity)]
    blocks: Vec<Mutex<Option<(&'s mut [T], &'s [usize])>>>,
    /// The first block no call has taken yet.
    next: AtomicUsize,
    decoded: Option<&'s [AtomicBool]>,
}

impl<T: Scalar> Gather<'_, T> {
    /// Gathers the blocks of the batch that no call has taken yet, one block at a time, and
    /// returns when none is left. Threads that call it at once share the blocks, so a thread
    /// that finishes its own work early can call it to help (the trainer's does, once the
    /// layers after the first are done: see [`crate::net::Network::grads_alongside`]).
    /// Between blocks, on the helper thread of a training run, it runs one task that the run
    /// has queued, if there is one (`linalg::let_queued_products_first`): half of a
    /// product of the layers, which should not wait for the gathering.
    pub fn run(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(block) = self.blocks.get(i) else {
                return;
            };
            // The lock is held only to take the block, never while gathering it.
            let taken = block.lock().ok().and_then(|mut b| b.take());
            if let Some((out, rows)) = taken {
                self.data.gather_rows(rows, out, self.decoded);
            }
            if i + 1 < self.blocks.len() {
                crate::linalg::let_queued_products_first();
            }
        }
    }
}
