//! Event-sparse order simulation: see docs/engine.md for the contract.
//!
//! Pure Rust: nothing here knows about Python. `simulate` runs one backtest;
//! `simulate_many` runs independent backtests on several threads, each result
//! identical to a single-threaded run.

mod daily;
mod error;
mod metrics;
mod rows;
mod signals;
mod sim;
mod types;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod signals_tests;
#[cfg(test)]
mod stepper_tests;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};

pub use daily::{simulate_many_stats_daily, simulate_row, simulate_stats_daily};
pub use error::{EngineError, EngineResult, Table};
pub use metrics::{pairwise_sum, release_spare_rows, EquityStream, Stats, StatsSpec, MAX_DAYS};
pub use rows::{signal_rows, Conventions, RowContext};
pub use signals::{
    signal_stats, simulate_signal_group, simulate_signals, simulate_signals_many,
    simulate_signals_many_counted, simulate_signals_many_daily, Accumulate, ConflictMode,
    DirConflictMode, OppositeEntryMode, PerBar, SignalConfig, SignalInput, SignalPrice, SignalSize,
    StopEntryPrice, StopExitMode, StopExitPrice, StopUpdateMode,
};
pub use sim::{floor_div, round_to_lot, simulate, simulate_stats, simulate_validated, Stepper};
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

/// Runs every job over the same bars on up to `threads` threads. Each result
/// lands in its job's slot, so the output does not depend on the thread count or
/// on scheduling.
pub fn simulate_many(
    bars: Bars<'_>,
    jobs: &[Job<'_>],
    threads: usize,
    check: BarCheck,
) -> Vec<EngineResult<Output>> {
    run_checked(bars, jobs, threads, check, |job| {
        simulate_validated(bars, job.orders, job.config)
    })
}

/// `simulate_many` returning only the figures of `Result.stats()` for each job:
/// computed inside the parallel loop, with no equity path kept.
pub fn simulate_many_stats(
    bars: Bars<'_>,
    jobs: &[Job<'_>],
    threads: usize,
    check: BarCheck,
    spec: StatsSpec,
) -> Vec<EngineResult<Stats>> {
    let ctx = RowContext::new(
        bars,
        Conventions::aftershock(spec.periods_per_year),
        spec.day,
    );
    let rows = run_checked(bars, jobs, threads, check, |job| {
        simulate_row(bars, job.orders, job.config, spec.day, &ctx).map(|(s, _)| s)
    });
    metrics::release_spare_rows();
    rows
}

/// Checks the bars once (unless `Trusted`), then applies `run` to every job in
/// parallel with panics turned into errors. A bars error is the one result.
pub fn run_checked<J: Sync, T: Send>(
    bars: Bars<'_>,
    jobs: &[J],
    threads: usize,
    check: BarCheck,
    run: impl Fn(&J) -> EngineResult<T> + Sync,
) -> Vec<EngineResult<T>> {
    run_checked_counted(bars, jobs, threads, check, None, run)
}

/// `run_checked`, adding one to `done` as each job finishes (a progress counter
/// another thread may read while this runs).
pub fn run_checked_counted<J: Sync, T: Send>(
    bars: Bars<'_>,
    jobs: &[J],
    threads: usize,
    check: BarCheck,
    done: Option<&AtomicUsize>,
    run: impl Fn(&J) -> EngineResult<T> + Sync,
) -> Vec<EngineResult<T>> {
    if check == BarCheck::Full {
        if let Err(e) = bars.validate() {
            return vec![Err(e)];
        }
    }
    run_parallel(jobs, threads, counted(done, |job| guarded(|| run(job))))
}

/// `run`, adding one to `done` (when given) after each call.
pub fn counted<'d, J, T>(
    done: Option<&'d AtomicUsize>,
    run: impl Fn(&J) -> T + Sync + 'd,
) -> impl Fn(&J) -> T + Sync + 'd {
    move |job| {
        let out = run(job);
        if let Some(d) = done {
            d.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}

/// Applies `run` to every job on up to `threads` scoped threads. Workers take the
/// next job from a shared counter (variants differ in cost, so fixed chunks would
/// leave a thread idle) and the results are put back in job order.
pub fn run_parallel<J: Sync, T: Send>(
    jobs: &[J],
    threads: usize,
    run: impl Fn(&J) -> EngineResult<T> + Sync,
) -> Vec<EngineResult<T>> {
    let threads = threads.max(1).min(jobs.len().max(1));
    if threads == 1 {
        return jobs.iter().map(&run).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, EngineResult<T>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        mine.push((i, run(job)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut out: Vec<EngineResult<T>> = Vec::with_capacity(jobs.len());
    let mut it = done.into_iter().peekable();
    for i in 0..jobs.len() {
        match it.peek() {
            Some((k, _)) if *k == i => out.push(it.next().map(|(_, r)| r).unwrap_or_else(|| {
                Err(EngineError::Internal("a sweep worker lost a result".into()))
            })),
            _ => out.push(Err(EngineError::Internal(
                "a sweep worker did not report".into(),
            ))),
        }
    }
    out
}

/// Runs `f`, turning any panic into an `Internal` error so that nothing unwinds
/// into the caller (and across the Python boundary).
pub fn guarded<T>(f: impl FnOnce() -> EngineResult<T>) -> EngineResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::Internal(format!("panic: {msg}")))
    })
}

/// `simulate`, with any panic turned into an `Internal` error so that nothing
/// unwinds into the caller (and across the Python boundary).
pub fn run_guarded(bars: Bars<'_>, job: &Job<'_>, check: BarCheck) -> EngineResult<Output> {
    guarded(|| match check {
        BarCheck::Full => simulate(bars, job.orders, job.config),
        BarCheck::Trusted => simulate_validated(bars, job.orders, job.config),
    })
}
