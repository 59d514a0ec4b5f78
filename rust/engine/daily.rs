//! Per-day returns of every run of a sweep, for the overfitting statistics.
//!
//! The probability of backtest overfitting (CSCV) needs each variant's returns
//! period by period. A period here is a calendar day: the returns are the very
//! close-of-day returns the Sharpe ratio of `Result.stats()` is computed from, one
//! per day from the first bar's day to the last bar's, so every variant over the
//! same bars has the same number of them. A sweep keeps `days` floats per variant,
//! never a row per bar.

use super::metrics::{self, EquityStream, Stats, StatsSpec};
use super::rows::{self, Conventions, RowContext};
use super::sim::run_sim;
use super::types::{Bars, Config, Order};
use super::{run_checked, BarCheck, EngineResult, Job};

/// [`super::simulate_stats`] and the run's daily returns, in one pass.
pub fn simulate_stats_daily(
    bars: Bars<'_>,
    orders: &[Order],
    cfg: &Config,
    spec: StatsSpec,
) -> EngineResult<(Stats, Vec<f64>)> {
    let ctx = RowContext::new(
        bars,
        Conventions::aftershock(spec.periods_per_year),
        spec.day,
    );
    simulate_row(bars, orders, cfg, spec.day, &ctx)
}

/// One sweep row: every `Result.stats()` figure under `ctx`'s conventions, and the
/// run's calendar-day returns. The run's equity rows are kept while it runs and
/// dropped with it.
pub fn simulate_row(
    bars: Bars<'_>,
    orders: &[Order],
    cfg: &Config,
    day: i64,
    ctx: &RowContext,
) -> EngineResult<(Stats, Vec<f64>)> {
    bars.validate_shape()?;
    let (start, end) = bars.time_span().unwrap_or((0, 0));
    let last_row = (0..bars.n_symbols())
        .filter(|&s| !bars.range(s).is_empty())
        .map(|s| bars.offsets[s + 1] - 1)
        .max_by_key(|&i| bars.ts[i])
        .unwrap_or(0);
    metrics::check_span(start, end, day, last_row)?;
    let stream = EquityStream::keeping_rows(cfg.init_cash, day);
    let (out, stream) = run_sim(bars, orders, cfg, Some(stream))?;
    let mut eq = stream
        .unwrap_or_else(|| EquityStream::keeping_rows(cfg.init_cash, day))
        .finish(end);
    let stats = rows::finish_row(&eq, &out, bars, start, end, ctx);
    let daily = std::mem::take(&mut eq.daily_returns);
    eq.recycle();
    Ok((stats, daily))
}

/// [`simulate_row`] for every job, in parallel, results in job order; `ctx` is
/// built once for the sweep.
pub fn simulate_many_stats_daily(
    bars: Bars<'_>,
    jobs: &[Job<'_>],
    threads: usize,
    check: BarCheck,
    spec: StatsSpec,
) -> Vec<EngineResult<(Stats, Vec<f64>)>> {
    let ctx = RowContext::new(
        bars,
        Conventions::aftershock(spec.periods_per_year),
        spec.day,
    );
    let rows = run_checked(bars, jobs, threads, check, |job| {
        simulate_row(bars, job.orders, job.config, spec.day, &ctx)
    });
    metrics::release_spare_rows();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{simulate_stats, Side};

    const DAY: i64 = 1_000;

    fn order(submit_ts: i64, side: Side, exit_after: Option<i64>) -> Order {
        Order {
            exit_after,
            ..Order::market(submit_ts, 0, side, 1.0)
        }
    }

    #[test]
    fn one_return_per_calendar_day_and_the_same_stats() {
        // 5 days of 4 bars each; trades on day 1 and day 3 only
        let ts: Vec<i64> = (0..20).map(|i| i * 250).collect();
        let close: Vec<f64> = (0..20)
            .map(|i| 100.0 + (i as f64 * 0.7).sin() * 5.0)
            .collect();
        let open = close.clone();
        let high: Vec<f64> = close.iter().map(|c| c + 1.0).collect();
        let low: Vec<f64> = close.iter().map(|c| c - 1.0).collect();
        let offsets = [0usize, 20];
        let bars = Bars {
            ts: &ts,
            open: &open,
            high: &high,
            low: &low,
            close: &close,
            offsets: &offsets,
        };
        let spec = StatsSpec {
            day: DAY,
            periods_per_year: 365.0,
        };
        let cfg = Config::default();
        for orders in [
            vec![],
            vec![
                order(1_100, Side::Buy, Some(500)),
                order(3_000, Side::Sell, Some(250)),
            ],
        ] {
            let (stats, daily) = simulate_stats_daily(bars, &orders, &cfg, spec).unwrap();
            assert_eq!(daily.len(), 5);
            assert_eq!(stats, simulate_stats(bars, &orders, &cfg, spec).unwrap());
            // compounding the daily returns gives the final equity
            let grown = daily.iter().fold(cfg.init_cash, |e, r| e * (1.0 + r));
            assert!((grown - stats.final_equity).abs() < 1e-6 * cfg.init_cash);
            if orders.is_empty() {
                assert!(daily.iter().all(|&r| r == 0.0));
            } else {
                assert_eq!(daily[0], 0.0);
                assert_ne!(daily[1], 0.0);
            }
        }
    }
}
