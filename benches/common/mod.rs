//! What the benchmarks share.

use std::time::Instant;

/// Best and median time of `reps` calls of `f` after `warm_up` calls, in µs.
pub fn best_and_median(warm_up: usize, reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..warm_up {
        f();
    }
    let mut t: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}
