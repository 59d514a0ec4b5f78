//! Event-sparse order simulation: see docs/engine.md for the contract.
//!
//! Pure Rust: nothing here knows about Python. `simulate` runs one backtest;
//! `simulate_many` runs independent backtests on several threads, each result
//! identical to a single-threaded run.

mod error;
mod signals;
mod sim;
mod types;

#[cfg(test)]
mod signals_tests;
#[cfg(test)]
mod tests;

pub use error::{EngineError, EngineResult, Table};
pub use signals::{
    pairwise_sum, signal_stats, simulate_signals, simulate_signals_many, Accumulate, ConflictMode,
    DirConflictMode, OppositeEntryMode, SignalConfig, SignalInput, SignalPrice, SignalSize,
    SignalStats, StopEntryPrice, StopExitMode, StopExitPrice, StopUpdateMode,
};
pub use sim::{round_to_lot, simulate, simulate_validated};
pub use types::*;

/// One backtest of a sweep: its orders and settings over shared bars.
pub struct Job<'a> {
    pub orders: &'a [Order],
    pub config: &'a Config,
}

/// Whether the engine scans every bar before simulating (`Full`) or trusts a
/// caller that already did (`Trusted`: the Python layer's `prepare_bars`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarCheck {
    Full,
    Trusted,
}

/// Runs every job over the same bars on up to `threads` threads. Jobs are split
/// into contiguous chunks and each result lands in its job's slot, so the output
/// does not depend on the thread count or on scheduling.
pub fn simulate_many(
    bars: Bars<'_>,
    jobs: &[Job<'_>],
    threads: usize,
    check: BarCheck,
) -> Vec<EngineResult<Output>> {
    parallel_map(jobs, threads, |job| run_guarded(bars, job, check))
}

/// `f` over `items` on up to `threads` scoped threads. Items are split into
/// contiguous chunks and each result lands in its item's slot, so the output does
/// not depend on the thread count or on scheduling.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> EngineResult<R> + Sync,
) -> Vec<EngineResult<R>> {
    let threads = threads.max(1).min(items.len().max(1));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut results: Vec<Option<EngineResult<R>>> = (0..items.len()).map(|_| None).collect();
    let f = &f;
    std::thread::scope(|scope| {
        for (item_chunk, slot_chunk) in items.chunks(chunk).zip(results.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (item, slot) in item_chunk.iter().zip(slot_chunk.iter_mut()) {
                    *slot = Some(f(item));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(EngineError::Internal(
                    "a sweep worker did not report".into(),
                ))
            })
        })
        .collect()
}

/// `simulate`, with any panic turned into an `Internal` error so that nothing
/// unwinds into the caller (and across the Python boundary).
pub fn run_guarded(bars: Bars<'_>, job: &Job<'_>, check: BarCheck) -> EngineResult<Output> {
    catch_panics(|| match check {
        BarCheck::Full => simulate(bars, job.orders, job.config),
        BarCheck::Trusted => simulate_validated(bars, job.orders, job.config),
    })
}

/// Runs `f`, turning a panic into an `Internal` error.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> EngineResult<T>) -> EngineResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::Internal(format!("panic: {msg}")))
    })
}
