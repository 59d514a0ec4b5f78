//! Sweep rows: every figure of `Result.stats()` for one run, under a set of
//! conventions, computed in the sweep's parallel loop.
//!
//! [`super::metrics`] gives the figures a stream of equity rows can carry; the rest
//! (drawdown episodes, calmar, alpha and beta, and the figures the conventions of
//! `python/aftershock/trading/stats.py` compute differently) need the run's own
//! equity rows, which the row keeps for the one run it scores (event-sparse: rows at
//! the bars the engine touched) and drops after. What is the same for every variant
//! over the same bars — the benchmarks' log returns, the bar timeline, the trading
//! days — is computed once per sweep in a [`RowContext`].
//!
//! Each function mirrors its Python twin (named in its doc) operation for operation,
//! sums in NumPy's order ([`pairwise_sum`]), so a row equals `stats()` of that run.

use std::sync::atomic::AtomicUsize;

use super::error::EngineResult;
use super::metrics::{
    check_span, figures, mean, pairwise_sum, power_minus_one, release_spare_rows, EquityFigures,
    EquityStream, Stats,
};
use super::signals::{simulate_signals, SignalConfig, SignalInput};
use super::types::{Bars, Output, Trade};
use super::{counted, guarded, run_parallel};

/// `aftershock.trading.stats.Conventions`, parsed once at the boundary; the sampling
/// and annualization already resolved for the sweep's bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Conventions {
    /// Periodic returns on days with bars only (`returns="trading"`), else every day.
    pub trading_days: bool,
    pub periods_per_year: f64,
    /// `risk="compounded"`: backtesting.py's return, volatility, Sharpe, Sortino, Calmar.
    pub compounded: bool,
    /// `avg_trade="geometric"`.
    pub geometric_avg_trade: bool,
    /// `profit_factor="returns"`.
    pub profit_factor_returns: bool,
    /// `exposure="bars"`.
    pub exposure_bars: bool,
    /// `year="periods"`: CAGR's year is `periods_per_year` days.
    pub year_periods: bool,
    /// `durations="bar"`: durations rounded up to the bar resolution.
    pub bar_durations: bool,
    /// `fees="closed"`.
    pub fees_closed: bool,
    /// `alpha_risk_free="simple"`.
    pub alpha_simple: bool,
    /// Benchmark bars buy & hold skips.
    pub warmup: usize,
}

impl Conventions {
    /// aftershock's defaults, annualized by `periods_per_year` over calendar days.
    pub fn aftershock(periods_per_year: f64) -> Self {
        Conventions {
            trading_days: false,
            periods_per_year,
            compounded: false,
            geometric_avg_trade: false,
            profit_factor_returns: false,
            exposure_bars: false,
            year_periods: false,
            bar_durations: false,
            fees_closed: false,
            alpha_simple: false,
            warmup: 0,
        }
    }
}

/// What every run of a sweep over the same bars shares: computed once per sweep.
#[derive(Debug, Clone)]
pub struct RowContext {
    pub conv: Conventions,
    day: i64,
    /// Sample variance (ddof=1) and mean of each symbol's per-bar log returns of the
    /// close, when it has 3 bars or more.
    bench: Vec<Option<(f64, f64)>>,
    /// Per bar, the log return of its close from the symbol's previous bar (NaN at a
    /// symbol's first bar), laid out like the bars.
    log_returns: Vec<f64>,
    /// The sorted distinct bar times of all symbols (only for `exposure_bars`).
    timeline: Vec<i64>,
    /// backtesting.py's duration unit (only for `bar_durations`).
    bar_unit: i64,
    /// First calendar day of the bars, and whether each day from it has a bar.
    first_day: i64,
    trading: Vec<bool>,
}

impl RowContext {
    pub fn new(bars: Bars<'_>, conv: Conventions, day: i64) -> Self {
        let day = day.max(1);
        let n = bars.n_symbols();
        let logs: Vec<f64> = bars.close.iter().map(|c| c.ln()).collect();
        let mut log_returns = vec![f64::NAN; logs.len()];
        for s in 0..n {
            let r = bars.range(s);
            for i in r.start + 1..r.end {
                log_returns[i] = logs[i] - logs[i - 1];
            }
        }
        let bench = (0..n)
            .map(|s| {
                let r = bars.range(s);
                (r.len() >= 3).then(|| {
                    let (m, var) = mean_var(&log_returns[r.start + 1..r.end]);
                    (var, m)
                })
            })
            .collect();
        let timeline = if conv.exposure_bars {
            let mut t = bars.ts.to_vec();
            t.sort_unstable();
            t.dedup();
            t
        } else {
            Vec::new()
        };
        let bar_unit = if conv.bar_durations {
            let mut tail: Vec<i64> = (0..n)
                .flat_map(|s| {
                    let r = bars.range(s);
                    bars.ts[r.start.max(r.end.saturating_sub(100))..r.end]
                        .iter()
                        .copied()
                })
                .collect();
            tail.sort_unstable();
            tail.dedup();
            bar_resolution(&tail[tail.len().saturating_sub(100)..])
        } else {
            1
        };
        let (mut first_day, mut trading) = (0, Vec::new());
        if conv.trading_days {
            if let Some((start, end)) = bars.time_span() {
                first_day = start.div_euclid(day);
                trading = vec![false; (end.div_euclid(day) - first_day + 1) as usize];
                for &t in bars.ts {
                    trading[(t.div_euclid(day) - first_day) as usize] = true;
                }
            }
        }
        RowContext {
            conv,
            day,
            bench,
            log_returns,
            timeline,
            bar_unit,
            first_day,
            trading,
        }
    }
}

impl RowContext {
    /// Symbol `s`'s per-bar log returns, and their sample variance and mean when it
    /// has 3 bars or more: beta's benchmark.
    pub(super) fn benchmark(&self, s: usize, bars: Bars<'_>) -> (&[f64], Option<(f64, f64)>) {
        (&self.log_returns[bars.range(s)], self.bench[s])
    }
}

/// NumPy's mean and `var(ddof=1)`.
fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = pairwise_sum(x) / n;
    let sq: Vec<f64> = x.iter().map(|v| (v - m) * (v - m)).collect();
    (m, pairwise_sum(&sq) / (n - 1.0))
}

/// NaN-propagating min and max, as NumPy's.
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// `_bar_resolution_us`: the largest of day, hour, minute, second, ms, µs dividing
/// the median spacing of `tail` (the last 100 distinct bar times).
fn bar_resolution(tail: &[i64]) -> i64 {
    if tail.len() < 2 {
        return 1;
    }
    let mut d: Vec<i64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_unstable();
    let k = d.len();
    let median = if k % 2 == 1 {
        d[k / 2] as f64
    } else {
        (d[k / 2 - 1] as f64 + d[k / 2] as f64) / 2.0
    };
    let period = median as i64;
    for unit in [
        86_400_000_000,
        3_600_000_000,
        60_000_000,
        1_000_000,
        1_000,
        1,
    ] {
        if period % unit == 0 {
            return unit;
        }
    }
    1
}

/// `_ceil_us`.
fn ceil_to(total: f64, unit: i64) -> i64 {
    (total / unit as f64).ceil() as i64 * unit
}

/// `_geometric_mean`: NaN counts as 0, a loss of 100% or more gives 0.
fn geometric_mean(r: &[f64]) -> f64 {
    if r.is_empty() {
        return f64::NAN;
    }
    let g: Vec<f64> = r
        .iter()
        .map(|&x| {
            let x = if x.is_nan() {
                0.0
            } else if x == f64::INFINITY {
                f64::MAX
            } else if x == f64::NEG_INFINITY {
                f64::MIN
            } else {
                x
            };
            x + 1.0
        })
        .collect();
    if g.iter().any(|&x| x <= 0.0) {
        return 0.0;
    }
    let logs: Vec<f64> = g.iter().map(|x| x.ln()).collect();
    (pairwise_sum(&logs) / g.len() as f64).exp() - 1.0
}

/// The latest bar time of any symbol strictly before `t` (`_previous_bar`).
fn previous_bar(bars: Bars<'_>, t: i64) -> i64 {
    (0..bars.n_symbols())
        .filter_map(|s| {
            let seg = &bars.ts[bars.range(s)];
            let i = seg.partition_point(|&x| x < t);
            (i > 0).then(|| seg[i - 1])
        })
        .max()
        .unwrap_or(i64::MIN)
}

/// `_drawdown_episodes`, folded point by point: depth and length of each drawdown
/// episode, and the deepest drawdown of the points against their own running peak.
/// A point at its peak (drawdown exactly 0) is a "mark"; an episode runs from the
/// last mark to the next one (or to the last point), and counts when at least one
/// point lies strictly between them. Its length runs from the bar before the first
/// point after the mark (`prev_bar` of that point's key: its time, or its bar) to the
/// point closing it.
#[derive(Debug, Clone)]
pub(super) struct Episodes {
    /// Whether a first point has been seen.
    started: bool,
    pub(super) peak: f64,
    pub(super) max_dd: f64,
    /// Whether a mark has been seen (a first point of NaN equity is none).
    marked: bool,
    /// Points since the mark.
    since: usize,
    /// The key (`point`'s) of the first point after the mark.
    after: i64,
    /// The deepest drawdown of the points after the mark.
    deepest: f64,
    t_last: i64,
    pub(super) depth: Vec<f64>,
    pub(super) length: Vec<i64>,
}

impl Episodes {
    pub(super) fn new() -> Self {
        Episodes {
            started: false,
            peak: f64::NAN,
            max_dd: f64::NAN,
            marked: false,
            since: 0,
            after: 0,
            deepest: f64::INFINITY,
            t_last: 0,
            depth: Vec::new(),
            length: Vec::new(),
        }
    }

    /// Whether [`Episodes::below`] may stand for the points it folds: a mark seen, a
    /// finite positive peak, no NaN drawdown so far.
    pub(super) fn fast(&self) -> bool {
        self.marked
            && self.peak.is_finite()
            && self.peak > 0.0
            && !self.max_dd.is_nan()
            && !self.deepest.is_nan()
    }

    fn close(&mut self, t: i64, prev_bar: impl Fn(i64) -> i64) {
        if self.marked && self.since >= 2 {
            self.depth.push(self.deepest);
            self.length.push(t.wrapping_sub(prev_bar(self.after)));
        }
    }

    /// One point, as `_drawdown_episodes` takes it, at time `t`.
    pub(super) fn point(&mut self, t: i64, key: i64, v: f64, prev_bar: impl Fn(i64) -> i64) {
        self.t_last = t;
        if !self.started {
            self.started = true;
            self.peak = v;
            self.max_dd = v / v - 1.0;
            self.marked = self.max_dd == 0.0;
            return;
        }
        self.since = self.since.wrapping_add(1);
        self.peak = nan_max(self.peak, v);
        let dd = v / self.peak - 1.0;
        self.max_dd = nan_min(self.max_dd, dd);
        if self.marked && self.since == 1 {
            self.after = key;
            self.deepest = dd;
        } else {
            self.deepest = nan_min(self.deepest, dd);
        }
        if dd == 0.0 {
            self.close(t, prev_bar);
            self.marked = true;
            self.since = 0;
        }
    }

    /// `count` points in a row, all strictly below the peak (when [`Episodes::fast`]):
    /// the first's key `first`, the last at time `last`, the lowest `low`. Dividing by a
    /// positive peak and subtracting 1 are monotone, so the deepest drawdown among
    /// them is the lowest point's, bit for bit.
    pub(super) fn below(&mut self, first: i64, last: i64, count: usize, low: f64) {
        if count == 0 {
            return;
        }
        if self.since == 0 {
            self.after = first;
            self.deepest = f64::INFINITY;
        }
        self.since += count;
        let d = low / self.peak - 1.0;
        self.deepest = self.deepest.min(d);
        self.max_dd = self.max_dd.min(d);
        self.t_last = last;
    }

    /// The episode still open at the last point closes there.
    pub(super) fn finish(&mut self, prev_bar: impl Fn(i64) -> i64) {
        let t = self.t_last;
        self.close(t, prev_bar);
        self.since = 0;
    }

    /// avg_drawdown, max_ and avg_drawdown_duration, and calmar from `return_ann`.
    pub(super) fn figures(&self, s: &mut Stats) {
        let (depth, length) = (&self.depth, &self.length);
        s.avg_drawdown = (!depth.is_empty()).then(|| mean(depth));
        s.max_drawdown_duration = length.iter().copied().max();
        let length_f: Vec<f64> = length.iter().map(|&l| l as f64).collect();
        s.avg_drawdown_duration =
            (!length.is_empty()).then(|| mean(&length_f).round_ties_even() as i64);
        s.calmar = match s.return_ann {
            Some(ann) if self.max_dd < 0.0 => Some(ann / -self.max_dd),
            _ => None,
        };
    }
}

/// `_drawdown_episodes` over a run's rows: after init_cash at the first bar when the
/// first row is later, and flat to the last bar when they stop before it.
fn drawdown_episodes(
    rows: &[(i64, f64)],
    init: f64,
    start: i64,
    end: i64,
    bars: Bars<'_>,
) -> Episodes {
    let head = rows
        .first()
        .map_or(true, |r| r.0 > start)
        .then_some((start, init));
    let last_row = head
        .iter()
        .chain(rows)
        .last()
        .copied()
        .unwrap_or((start, init));
    let tail = (last_row.0 < end).then_some((end, last_row.1));
    let prev = |t: i64| previous_bar(bars, t);
    let mut ep = Episodes::new();
    for (t, v) in head.into_iter().chain(rows.iter().copied()).chain(tail) {
        ep.point(t, t, v, prev);
    }
    ep.finish(prev);
    ep
}

/// The sum of the products of equity's per-bar log returns and the benchmark's,
/// folded bar by bar (`_sparse_cov`'s cross term): the equity of the last row of each
/// benchmark bar, its log return from the previous such row (init_cash before the
/// first), where it changed and the bar is not the benchmark's first.
#[derive(Debug, Clone, Copy)]
pub(super) struct CrossSum {
    pub(super) cross: f64,
    /// The equity of the previous bar's row.
    pub(super) before: f64,
    /// The equity at the benchmark's first bar (init_cash without a row there).
    pub(super) first: f64,
}

impl CrossSum {
    pub(super) fn new(init: f64) -> Self {
        CrossSum {
            cross: 0.0,
            before: init,
            first: init,
        }
    }

    /// The last row of benchmark bar `bar`, whose log return is `log_return`.
    #[inline]
    pub(super) fn bar(&mut self, bar: usize, val: f64, log_return: f64) {
        if bar == 0 {
            self.first = val;
        } else if val != self.before {
            self.cross += ln_ratio(val, self.before) * log_return;
        }
        self.before = val;
    }

    /// Bars `from..to` of one symbol held with `cash` and `qty` (equity
    /// `cash + qty * close`), `from` at least 1: [`CrossSum::bar`] on each, but for the
    /// order of summation (four running sums, which the compiler vectorizes).
    pub(super) fn run(
        &mut self,
        close: &[f64],
        log_returns: &[f64],
        (from, to): (usize, usize),
        (cash, qty): (f64, f64),
    ) {
        if from >= to {
            return;
        }
        // the first bar from the row before it, which another account may have made
        self.bar(from, cash + qty * close[from], log_returns[from]);
        let term = |k: usize| {
            let (b, a) = (cash + qty * close[k - 1], cash + qty * close[k]);
            let s = (a - b) / (a + b);
            (atanh2(s) * log_returns[k], s.abs() < NEAR_ONE)
        };
        let mut acc = [0.0f64; 4];
        let mut near = true;
        let mut k = from + 1;
        while k + 4 <= to {
            for (lane, acc) in acc.iter_mut().enumerate() {
                let (x, ok) = term(k + lane);
                *acc += x;
                near &= ok;
            }
            k += 4;
        }
        for k in k..to {
            let (x, ok) = term(k);
            acc[0] += x;
            near &= ok;
        }
        if !near {
            // a return of 1% or more in a bar: bar by bar
            for k in from + 1..to {
                self.bar(k, cash + qty * close[k], log_returns[k]);
            }
        } else {
            self.cross += (acc[0] + acc[1]) + (acc[2] + acc[3]);
            self.before = cash + qty * close[to - 1];
        }
    }

    /// The sample covariance, over `n_bars` benchmark bars whose log returns average
    /// `mean_b`.
    pub(super) fn cov(&self, n_bars: usize, mean_b: f64) -> f64 {
        let n = (n_bars - 1) as f64;
        let mean_e = (self.before / self.first).ln() / n;
        (self.cross - n * mean_e * mean_b) / (n - 1.0)
    }
}

/// The first index of sorted `ts` at or after each of the sorted `times`
/// (`np.searchsorted(ts, times, "left")`). Each search starts from the previous
/// answer at the index the bars' average spacing predicts (exact for regular bars)
/// and gallops from there, so a jump over a long idle stretch touches a few cache
/// lines, not a binary search's worth.
fn search_sorted_forward(ts: &[i64], times: impl Iterator<Item = i64>) -> Vec<usize> {
    let n = ts.len();
    let spacing = match (ts.first(), ts.last()) {
        (Some(&a), Some(&b)) if n > 1 && b > a => (b - a) as f64 / (n - 1) as f64,
        _ => 1.0,
    };
    let mut lo = 0usize;
    times
        .map(|t| {
            if lo >= n || ts[lo] >= t {
                return lo;
            }
            if lo + 1 == n || ts[lo + 1] >= t {
                lo += 1; // the next bar: a position held bar after bar
                return lo;
            }
            // ts[lo + 1] < t: the answer is in (lo + 1, n]
            lo += 1;
            let ahead = ((t - ts[lo]) as f64 / spacing) as usize;
            let guess = lo.saturating_add(ahead.max(1)).min(n);
            let (mut below, mut above);
            if guess == n || ts[guess] >= t {
                // gallop back from the guess
                (below, above) = (lo, guess);
                let mut step = 1usize;
                while above - below > step {
                    let probe = above - step;
                    if ts[probe] < t {
                        below = probe;
                        break;
                    }
                    above = probe;
                    step *= 2;
                }
            } else {
                // gallop forward from the guess
                below = guess;
                let mut step = 1usize;
                above = loop {
                    let probe = below + step;
                    if probe >= n || ts[probe] >= t {
                        break probe.min(n);
                    }
                    below = probe;
                    step *= 2;
                };
            }
            lo = below + 1 + ts[below + 1..above].partition_point(|&x| x < t);
            lo
        })
        .collect()
}

/// Below this `|s|`, `ln_ratio` sums its series (the ratio within 1% of 1).
const NEAR_ONE: f64 = 0.005;

/// `2 atanh(s)` to `s^7`, which leaves out less than 1e-19 of it for `|s| < NEAR_ONE`.
#[inline]
fn atanh2(s: f64) -> f64 {
    let s2 = s * s;
    2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0))))
}

/// `ln(a / b)` of two equities of one sign, the equity log return of a bar. Near 1 it
/// is `2 atanh(s)`, `s = (a - b) / (a + b)`: `a - b` is exact (within a factor 2 of
/// each other), so `s` carries one rounding of its own and the logarithm a few ulps,
/// where `ln` of the rounded ratio, as NumPy takes it, is off by up to half an ulp of
/// 1 (1e-13 of a 0.05% return); beta's sum of products differs from NumPy's dot
/// product in its order of summation too. Elsewhere, `ln` of the ratio.
#[inline]
pub(super) fn ln_ratio(a: f64, b: f64) -> f64 {
    let s = (a - b) / (a + b);
    if s.abs() < NEAR_ONE {
        atanh2(s)
    } else {
        (a / b).ln()
    }
}

/// `_sparse_cov`: sample covariance of the per-bar log returns of equity and of
/// the benchmark, on its bars; `log_returns` its bars' log returns, `mean_b` their mean.
fn sparse_cov(
    rows: &[(i64, f64)],
    init: f64,
    bench_ts: &[i64],
    log_returns: &[f64],
    mean_b: f64,
) -> f64 {
    let nb = bench_ts.len();
    let at = search_sorted_forward(bench_ts, rows.iter().map(|r| r.0));
    let mut sum = CrossSum::new(init);
    for i in 0..rows.len() {
        let last_of_bar = i + 1 == rows.len() || at[i + 1] != at[i];
        if last_of_bar && at[i] < nb {
            sum.bar(at[i], rows[i].1, log_returns[at[i]]);
        }
    }
    sum.cov(nb, mean_b)
}

/// beta (the covariance `cov` of equity's and the benchmark's per-bar log returns
/// over the benchmark's variance `var_b`) and alpha against buy & hold, with no
/// risk-free rate over `years`.
pub(super) fn set_beta(s: &mut Stats, cov: f64, var_b: f64, years: f64) {
    let beta = cov / var_b;
    let rf_total = 1.0f64.powf(years) - 1.0;
    let bh = s.buy_hold_return.unwrap_or(f64::NAN);
    s.beta = Some(beta);
    s.alpha = Some((s.final_equity / s.init_cash - 1.0 - rf_total) - beta * (bh - rf_total));
}

/// Every figure of `Result.stats(conventions=...)` for a finished run whose stream
/// kept its rows (`EquityStream::keeping_rows`). `start`/`end`: the first and last
/// bar times.
pub(super) fn finish_row(
    eq: &EquityFigures,
    out: &Output,
    bars: Bars<'_>,
    start: i64,
    end: i64,
    ctx: &RowContext,
) -> Stats {
    let conv = &ctx.conv;
    let init = eq.init_cash;
    // the sampled close-of-day equity: every calendar day, or the days with bars
    let daily: Vec<f64> = if conv.trading_days {
        let first = eq
            .kept_rows
            .first()
            .map_or(ctx.first_day, |r| r.0.div_euclid(ctx.day));
        eq.daily_equity
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                let d = first + i as i64 - ctx.first_day;
                d >= 0 && ctx.trading.get(d as usize).copied().unwrap_or(false)
            })
            .map(|(_, &e)| e)
            .collect()
    } else {
        eq.daily_equity.clone()
    };
    let rets: Vec<f64> = std::iter::once(init)
        .chain(daily.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]) / w[0])
        .collect();
    let nonempty: Vec<usize> = (0..bars.n_symbols())
        .filter(|&s| !bars.range(s).is_empty())
        .collect();
    let closes: Vec<(f64, f64)> = nonempty
        .iter()
        .map(|&s| {
            let r = bars.range(s);
            (bars.close[r.start], bars.close[r.end - 1])
        })
        .collect();
    let mut s = figures(eq.parts(out, start, end, &rets, conv.periods_per_year, &closes));

    drawdown_episodes(&eq.kept_rows, init, start, end, bars).figures(&mut s);

    // benchmark: beta from per-bar log returns, alpha against buy & hold
    let years = (end - start) as f64 / (365.0 * 86_400e6);
    let bench = s.benchmark.map(|b| nonempty[b as usize]);
    if let Some(b) = bench {
        let r = bars.range(b);
        if let (Some((var_b, mean_b)), true) = (ctx.bench[b], init > 0.0) {
            if var_b > 0.0 {
                let cov = sparse_cov(
                    &eq.kept_rows,
                    init,
                    &bars.ts[r.clone()],
                    &ctx.log_returns[r.clone()],
                    mean_b,
                );
                set_beta(&mut s, cov, var_b, years);
            }
        }
    }

    apply_conventions(
        &mut s,
        conv,
        ctx,
        &daily,
        &out.trades,
        bars,
        bench,
        years,
        &eq.kept_rows,
        start,
        end,
    );
    s
}

/// `convention_figures`: the figures `conv` computes differently from aftershock's.
#[allow(clippy::too_many_arguments)]
fn apply_conventions(
    s: &mut Stats,
    conv: &Conventions,
    ctx: &RowContext,
    daily: &[f64],
    trades: &[Trade],
    bars: Bars<'_>,
    bench: Option<usize>,
    years: f64,
    rows: &[(i64, f64)],
    start: i64,
    end: i64,
) {
    let closed: Vec<&Trade> = trades.iter().filter(|t| t.exit_reason.is_some()).collect();
    let ret: Vec<f64> = closed.iter().map(|t| t.ret).collect();
    let (init, final_equity) = (s.init_cash, s.final_equity);
    let n = conv.periods_per_year;
    if conv.compounded {
        let r: Vec<f64> = daily.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let g = if daily.is_empty() {
            f64::NAN
        } else {
            let mut with_first = Vec::with_capacity(r.len() + 1);
            with_first.push(f64::NAN);
            with_first.extend_from_slice(&r);
            geometric_mean(&with_first)
        };
        let ann = if g.is_finite() {
            (1.0 + g).powf(n) - 1.0
        } else {
            f64::NAN
        };
        let var = if r.len() >= 2 {
            mean_var(&r).1
        } else {
            f64::NAN
        };
        let vol = if var.is_finite() {
            ((var + (1.0 + g).powf(2.0)).powf(n) - (1.0 + g).powf(2.0 * n)).sqrt()
        } else {
            f64::NAN
        };
        let downside = if r.is_empty() {
            f64::NAN
        } else {
            let sq: Vec<f64> = r.iter().map(|x| x.min(0.0) * x.min(0.0)).collect();
            mean(&sq).sqrt() * n.sqrt()
        };
        let finite = |x: f64| x.is_finite().then_some(x);
        s.return_ann = finite(ann);
        s.volatility_ann = finite(vol);
        s.sharpe = (vol.is_finite() && vol > 0.0 && ann.is_finite()).then(|| ann / vol);
        s.sortino =
            (downside.is_finite() && downside > 0.0 && ann.is_finite()).then(|| ann / downside);
        s.calmar = (s.max_drawdown < 0.0 && ann.is_finite()).then(|| ann / -s.max_drawdown);
    }
    if conv.year_periods {
        let y = (end - start) as f64 / 86_400e6 / n;
        s.cagr = if y > 0.0 && final_equity > 0.0 && init > 0.0 {
            power_minus_one(final_equity / init, 1.0 / y)
        } else {
            None
        };
    }
    if conv.geometric_avg_trade {
        s.avg_trade_return = (!ret.is_empty()).then(|| geometric_mean(&ret));
    }
    if conv.profit_factor_returns {
        let losses: Vec<f64> = ret.iter().copied().filter(|&x| x < 0.0).collect();
        let gains: Vec<f64> = ret.iter().copied().filter(|&x| x > 0.0).collect();
        let loss = -pairwise_sum(&losses);
        s.profit_factor = (loss > 0.0).then(|| pairwise_sum(&gains) / loss);
    }
    if conv.exposure_bars {
        let tl = &ctx.timeline;
        let mut spans: Vec<(usize, usize)> = closed
            .iter()
            .map(|t| {
                (
                    tl.partition_point(|&x| x < t.entry_ts),
                    tl.partition_point(|&x| x < t.exit_ts),
                )
            })
            .collect();
        spans.sort_unstable();
        // bars covered by the union of [entry, exit], within the timeline
        let (mut covered, mut next) = (0usize, 0usize);
        for (a, b) in spans {
            let (a, b) = (a.max(next), (b + 1).min(tl.len()));
            if b > a {
                covered += b - a;
                next = b;
            }
        }
        s.exposure = covered as f64 / tl.len() as f64;
    }
    if conv.fees_closed {
        let fees: Vec<f64> = closed.iter().map(|t| t.fees).collect();
        s.total_fees = pairwise_sum(&fees);
    }
    let mut bh_changed = false;
    if let (Some(b), true) = (bench, conv.warmup > 0) {
        let c = &bars.close[bars.range(b)];
        if !c.is_empty() {
            let first = conv.warmup.min(c.len() - 1);
            s.buy_hold_return = Some(c[c.len() - 1] / c[first] - 1.0);
            bh_changed = true;
        }
    }
    if let (true, Some(beta), Some(bh)) =
        (conv.alpha_simple || bh_changed, s.beta, s.buy_hold_return)
    {
        let rf = if conv.alpha_simple {
            0.0
        } else {
            1.0f64.powf(years) - 1.0
        };
        s.alpha = Some((final_equity / init - 1.0 - rf) - beta * (bh - rf));
    }
    if conv.bar_durations {
        let unit = ctx.bar_unit;
        let length = drawdown_episodes(rows, init, start, end, bars).length;
        let held: Vec<i64> = closed.iter().map(|t| t.exit_ts - t.entry_ts).collect();
        let round = |v: &[i64]| -> (Option<i64>, Option<i64>) {
            if v.is_empty() {
                return (None, None);
            }
            let max = *v.iter().max().unwrap();
            let sum: i64 = v.iter().sum();
            (
                Some(ceil_to(max as f64, unit)),
                Some(ceil_to(sum as f64 / v.len() as f64, unit)),
            )
        };
        (s.max_drawdown_duration, s.avg_drawdown_duration) = round(&length);
        (s.max_trade_duration, s.avg_trade_duration) = round(&held);
    }
}

/// Every `Result.stats()` figure of a signal backtest for each configuration, under
/// `conv`, in configuration order: the signal simulator's run with its equity rows
/// (one variant's rows at a time per thread, dropped after it), folded as the orders
/// engine's are. Slower than the simulator's own streaming figures
/// (`simulate_signals_many`), which skip the bars inside a position.
pub fn signal_rows(
    inp: SignalInput<'_>,
    configs: &[SignalConfig],
    threads: usize,
    conv: Conventions,
    done: Option<&AtomicUsize>,
) -> Vec<EngineResult<Stats>> {
    const DAY_US: i64 = 86_400_000_000;
    if let Err(e) = inp.validate_shape() {
        return configs.iter().map(|_| Err(e.clone())).collect();
    }
    let n = inp.ts.len();
    let (start, end) = match (inp.ts.first(), inp.ts.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (0, 0),
    };
    if let Err(e) = check_span(start, end, DAY_US, n.saturating_sub(1)) {
        return configs.iter().map(|_| Err(e.clone())).collect();
    }
    let offsets = [0, n];
    let bars = Bars {
        ts: inp.ts,
        open: inp.open,
        high: inp.high,
        low: inp.low,
        close: inp.close,
        offsets: &offsets,
    };
    let ctx = RowContext::new(bars, conv, DAY_US);
    let run = |cfg: &SignalConfig| {
        guarded(|| {
            let out = simulate_signals(inp, cfg, true)?;
            let mut stream = EquityStream::keeping_rows(cfg.init_cash, DAY_US);
            for row in &out.equity {
                stream.push(*row);
            }
            let eq = stream.finish(end);
            let row = finish_row(&eq, &out, bars, start, end, &ctx);
            eq.recycle();
            Ok(row)
        })
    };
    let rows = run_parallel(configs, threads, counted(done, run));
    release_spare_rows();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_symbol<'a>(ts: &'a [i64], close: &'a [f64], offsets: &'a [usize]) -> Bars<'a> {
        Bars {
            ts,
            open: close,
            high: close,
            low: close,
            close,
            offsets,
        }
    }

    #[test]
    fn forward_search_is_numpy_searchsorted_left() {
        // regular, irregular, and with long gaps (the guess lands past or short of the answer)
        let regular: Vec<i64> = (0..300).map(|i| i * 3).collect();
        let irregular: Vec<i64> = (0..300).map(|i| i * 3 + (i % 3)).collect();
        let gaps: Vec<i64> = (0..300)
            .map(|i| i + if i > 150 { 5_000 } else { 0 } + i * i / 50)
            .collect();
        for ts in [regular, irregular, gaps] {
            let last = *ts.last().unwrap();
            for stride in [1usize, 2, 5, 40, 301, 997] {
                let times: Vec<i64> = (-5..last + 20).step_by(stride).collect();
                let want: Vec<usize> = times
                    .iter()
                    .map(|&t| ts.partition_point(|&x| x < t))
                    .collect();
                let got = search_sorted_forward(&ts, times.iter().copied());
                assert_eq!(got, want, "{stride}");
            }
        }
    }

    #[test]
    fn drawdown_episodes_run_from_the_bar_before_the_fall_to_the_recovery() {
        let ts = [0i64, 10, 20, 30, 40, 50];
        let close = [1.0; 6];
        let offsets = [0usize, 6];
        let bars = one_symbol(&ts, &close, &offsets);
        // 100 at 0, falls at 10 and 20 (deepest 80), back to 100 at 30, falls at 50 (the last bar)
        let rows = [(0, 100.0), (10, 90.0), (20, 80.0), (30, 100.0), (50, 95.0)];
        let ep = drawdown_episodes(&rows, 100.0, 0, 50, bars);
        let (depth, length, max_dd) = (ep.depth, ep.length, ep.max_dd);
        assert_eq!(depth, vec![80.0 / 100.0 - 1.0]);
        assert_eq!(length, vec![30]); // from the bar at 0 (the last at the peak) to 30
        assert_eq!(max_dd, 80.0 / 100.0 - 1.0);
        // a run that ends below its peak: the episode lasts to the last bar
        let rows = [(0, 100.0), (20, 99.0)];
        let ep = drawdown_episodes(&rows, 100.0, 0, 50, bars);
        let (depth, length) = (ep.depth, ep.length);
        assert_eq!((depth, length), (vec![99.0 / 100.0 - 1.0], vec![50 - 10]));
        // a fall at the last bar alone is no episode, nor part of the one before
        let rows = [(0, 100.0), (10, 90.0), (20, 100.0), (50, 95.0)];
        let ep = drawdown_episodes(&rows, 100.0, 0, 50, bars);
        assert_eq!((ep.depth, ep.length), (vec![90.0 / 100.0 - 1.0], vec![20]));
        assert_eq!(ep.max_dd, 90.0 / 100.0 - 1.0);
    }

    #[test]
    fn bar_resolution_is_the_largest_unit_dividing_the_median_spacing() {
        let minutes: Vec<i64> = (0..10).map(|i| i * 60_000_000).collect();
        assert_eq!(bar_resolution(&minutes), 60_000_000);
        let days: Vec<i64> = (0..10).map(|i| i * 86_400_000_000).collect();
        assert_eq!(bar_resolution(&days), 86_400_000_000);
        assert_eq!(bar_resolution(&[5]), 1);
        assert_eq!(bar_resolution(&[0, 1_500_000]), 1_000);
    }

    #[test]
    fn the_log_ratio_is_ln_1p_of_the_exact_change_within_a_few_ulps() {
        // a - b is exact, so ln_1p((a - b) / b) is the reference to a couple of ulps
        let b = 123_456.789f64;
        let mut a = b * 0.9901;
        while a < b * 1.0099 {
            let (got, want) = (ln_ratio(a, b), ((a - b) / b).ln_1p());
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "{a}: {got} vs {want}"
            );
            a += b * 1.37e-6;
        }
        // beyond the series: ln of the ratio
        assert_eq!(ln_ratio(b * 1.02, b), (b * 1.02 / b).ln());
        assert_eq!(ln_ratio(5.0, 5.0), 0.0);
        assert_eq!(ln_ratio(2.5, 1.0), 2.5f64.ln());
        assert_eq!(ln_ratio(-3.0, -2.0), 1.5f64.ln());
    }

    #[test]
    fn geometric_mean_follows_backtesting_py() {
        assert!(geometric_mean(&[]).is_nan());
        assert_eq!(geometric_mean(&[0.1, -1.0]), 0.0);
        let g = geometric_mean(&[f64::NAN, 0.21]);
        assert!((g - (1.21f64.sqrt() - 1.0)).abs() < 1e-15);
    }
}
