//! Benchmarks only: see `benches/` and BENCHMARKS.md. Helpers shared by the benches.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Runs `op` on `threads` threads, `iters` times in all; the time per `iters` operations
/// as criterion's `iter_custom` wants it, so a rate reads as the aggregate rate.
pub fn threaded(iters: u64, threads: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let per = iters.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    op();
                }
            });
        }
    });
    // Scaled back to `iters` operations (the threads may have done a few more).
    let done = u32::try_from(per * threads).unwrap_or(u32::MAX);
    start.elapsed() / done.max(1) * u32::try_from(iters).unwrap_or(u32::MAX)
}
