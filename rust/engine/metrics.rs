//! Headline figures of one backtest, computed while it runs.
//!
//! The definitions are those of `Result.stats()` in `python/aftershock/results.py`
//! (its `STATS_DOC` names each one); a sweep row must equal `stats()` of the same
//! backtest run alone. Equity rows are consumed as the engine produces them, so a
//! sweep never holds an equity path: per variant it keeps one daily return per
//! calendar day and the closed trades' figures, nothing per bar.
//!
//! Sums go through [`pairwise_sum`], NumPy's summation order, so that the figures
//! agree with `stats()` to the last bit rather than to a tolerance.

use super::error::{EngineError, EngineResult};
use super::types::{EquityRow, Fill, Output, Trade};

/// The daily figures keep one return per calendar day, so bars may span at most this
/// many days (about 10,000 years); a longer span is refused, not filled day by day.
pub const MAX_DAYS: i64 = 3_652_500;

/// Refuses a run whose bars span more than [`MAX_DAYS`] days of `day` units; `last_row`
/// is the row of the latest bar, named in the error.
pub fn check_span(start: i64, end: i64, day: i64, last_row: usize) -> EngineResult<()> {
    let days = (end as i128 - start as i128) / day.max(1) as i128;
    if days > MAX_DAYS as i128 {
        return Err(EngineError::bars(
            "ts",
            last_row,
            format!("the bars span {days} days, more than {MAX_DAYS} (10,000 years): timestamps in the wrong unit?"),
        ));
    }
    Ok(())
}

type RowBuffers = (Vec<(i64, f64)>, Vec<f64>);

thread_local! {
    /// The kept-row buffers of the last finished run on this thread: a sweep's
    /// variants reuse them instead of each growing, copying and paging in its own.
    static SPARE_ROWS: std::cell::RefCell<RowBuffers> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Frees this thread's spare row buffers (a sweep calls it when it is done, so a
/// thread that outlives the sweep does not hold one variant's rows).
pub fn release_spare_rows() {
    SPARE_ROWS.with(|s| drop(s.take()));
}

/// Streaming state over the equity rows of one run.
#[derive(Debug, Clone)]
pub struct EquityStream {
    init_cash: f64,
    /// Length of one day in timestamp units (the Python layer uses microseconds).
    day: i64,
    /// The newest row. It is folded in only when a row with a later timestamp
    /// arrives (or at the end), because the engine may overwrite a row at the same ts.
    pending: Option<EquityRow>,
    rows: u64,
    peak: f64,
    max_drawdown: f64,
    /// Current calendar day (its index) and the last equity seen in it.
    day_index: Option<i64>,
    day_equity: f64,
    /// Equity at the end of the previous day (init_cash before the first).
    prev_daily: f64,
    daily_returns: Vec<f64>,
    /// Previous folded row: its ts and whether any position was open.
    last_ts: i64,
    last_exposed: bool,
    exposed_time: i64,
    final_equity: f64,
    /// With [`EquityStream::keeping_rows`]: every folded row (ts, equity) and the
    /// close-of-day equity of every calendar day, for the sweep rows' drawdown
    /// episodes, beta and trading-day sampling (one run's rows, never a sweep's).
    kept: Option<RowBuffers>,
}

impl EquityStream {
    /// A stream that also keeps its folded rows and daily equity (see `kept`), in
    /// the buffers the previous run on this thread gave back ([`EquityFigures::recycle`]).
    pub fn keeping_rows(init_cash: f64, day: i64) -> Self {
        let (mut rows, mut days) = SPARE_ROWS.with(|s| s.take());
        rows.clear();
        days.clear();
        EquityStream {
            kept: Some((rows, days)),
            ..EquityStream::new(init_cash, day)
        }
    }

    pub fn new(init_cash: f64, day: i64) -> Self {
        EquityStream {
            init_cash,
            day: day.max(1),
            pending: None,
            rows: 0,
            peak: init_cash,
            max_drawdown: 0.0,
            day_index: None,
            day_equity: init_cash,
            prev_daily: init_cash,
            daily_returns: Vec::new(),
            last_ts: 0,
            last_exposed: false,
            exposed_time: 0,
            final_equity: init_cash,
            kept: None,
        }
    }

    /// Takes the engine's next equity row; a row at the timestamp of the previous
    /// one replaces it, as it does in the engine's own equity table.
    pub fn push(&mut self, row: EquityRow) {
        if let Some(prev) = self.pending {
            if prev.ts != row.ts {
                self.fold(prev);
            }
        }
        self.pending = Some(row);
    }

    /// Timestamp of the newest row, if any.
    pub fn last_ts(&self) -> Option<i64> {
        self.pending.map(|r| r.ts)
    }

    fn fold(&mut self, row: EquityRow) {
        let v = row.equity;
        // max drawdown over [init_cash, equity...], as numpy's running maximum
        self.peak = if v > self.peak { v } else { self.peak };
        let dd = v / self.peak - 1.0;
        if dd < self.max_drawdown {
            self.max_drawdown = dd;
        }
        // close-of-day equity, forward filled over days without rows
        let d = row.ts.div_euclid(self.day);
        match self.day_index {
            None => self.day_index = Some(d),
            Some(cur) if d > cur => {
                for _ in cur..d {
                    self.close_day();
                }
                self.day_index = Some(d);
            }
            _ => {}
        }
        self.day_equity = v;
        // time with a position open: each row holds until the next row
        if self.rows > 0 && self.last_exposed {
            self.exposed_time += row.ts - self.last_ts;
        }
        self.last_ts = row.ts;
        self.last_exposed = row.gross_exposure > 0.0;
        self.final_equity = v;
        self.rows += 1;
        if let Some((rows, _)) = self.kept.as_mut() {
            rows.push((row.ts, v));
        }
    }

    fn close_day(&mut self) {
        let d = self.day_equity;
        if let Some((_, days)) = self.kept.as_mut() {
            days.push(d);
        }
        self.daily_returns
            .push((d - self.prev_daily) / self.prev_daily);
        self.prev_daily = d;
    }

    /// Folds the last row and returns the equity figures, with the time exposed
    /// counted up to `end` (the last bar's timestamp).
    pub(super) fn finish(mut self, end: i64) -> EquityFigures {
        if let Some(row) = self.pending.take() {
            self.fold(row);
        }
        if self.rows > 0 {
            self.close_day();
            if self.last_exposed {
                self.exposed_time += end - self.last_ts;
            }
        }
        let (kept_rows, daily_equity) = self.kept.unwrap_or_default();
        EquityFigures {
            init_cash: self.init_cash,
            kept_rows,
            daily_equity,
            final_equity: self.final_equity,
            peak: self.peak,
            max_drawdown: self.max_drawdown,
            daily_returns: self.daily_returns,
            exposed_time: self.exposed_time,
            rows: self.rows,
        }
    }
}

pub(super) struct EquityFigures {
    pub init_cash: f64,
    /// The folded rows and daily equity of a stream made by `keeping_rows` (else empty).
    pub kept_rows: Vec<(i64, f64)>,
    pub daily_equity: Vec<f64>,
    pub final_equity: f64,
    pub peak: f64,
    pub max_drawdown: f64,
    pub daily_returns: Vec<f64>,
    pub exposed_time: i64,
    pub rows: u64,
}

impl EquityFigures {
    /// Gives the kept-row buffers back for the next run on this thread.
    pub(super) fn recycle(self) {
        SPARE_ROWS.with(|s| *s.borrow_mut() = (self.kept_rows, self.daily_equity));
    }

    /// What the figures of the run are made of, with the periodic returns sampled
    /// and annualized as the caller's conventions say.
    pub(super) fn parts<'a>(
        &'a self,
        out: &'a Output,
        start: i64,
        end: i64,
        daily_returns: &'a [f64],
        periods_per_year: f64,
        closes: &'a [(f64, f64)],
    ) -> Parts<'a> {
        Parts {
            start,
            end,
            init_cash: self.init_cash,
            final_equity: if self.rows > 0 {
                self.final_equity
            } else {
                self.init_cash
            },
            equity_peak: self.peak,
            max_drawdown: self.max_drawdown,
            daily_returns,
            periods_per_year,
            exposed_time: self.exposed_time,
            fills: &out.fills,
            trades: &out.trades,
            bars_visited: out.bars_visited,
            closes,
        }
    }
}

/// Every figure of `Result.stats()`. `None` where `stats()` gives null.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub start: i64,
    pub end: i64,
    pub init_cash: f64,
    pub final_equity: f64,
    pub total_return: f64,
    pub max_drawdown: f64,
    pub sharpe: Option<f64>,
    pub trades: u64,
    pub open_trades: u64,
    pub win_rate: Option<f64>,
    pub avg_trade_return: Option<f64>,
    pub profit_factor: Option<f64>,
    pub total_fees: f64,
    pub exposure: f64,
    pub bars_visited: u64,
    // The figures added for backtesting.py users (STATS_DOC in results.py).
    /// `end - start`, in timestamp units.
    pub duration: i64,
    pub equity_peak: f64,
    /// Index of the benchmark symbol: the one with the most fills (the first of
    /// those tied), else the first symbol.
    pub benchmark: Option<u64>,
    pub buy_hold_return: Option<f64>,
    pub return_ann: Option<f64>,
    pub volatility_ann: Option<f64>,
    pub cagr: Option<f64>,
    pub sortino: Option<f64>,
    pub best_trade: Option<f64>,
    pub worst_trade: Option<f64>,
    pub max_trade_duration: Option<i64>,
    pub avg_trade_duration: Option<i64>,
    pub sqn: Option<f64>,
    pub kelly: Option<f64>,
    /// Arithmetic mean trade return whatever the conventions (`avg_trade_return`
    /// before they apply).
    pub expectancy: Option<f64>,
    // Filled by `rows::finish_row` (the sweep rows); `None` from `figures` alone.
    pub calmar: Option<f64>,
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
    pub avg_drawdown: Option<f64>,
    pub max_drawdown_duration: Option<i64>,
    pub avg_drawdown_duration: Option<i64>,
}

/// What the figures depend on besides the run itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSpec {
    /// Timestamp units per day (86_400_000_000 for microseconds).
    pub day: i64,
    /// Annualization of the daily Sharpe ratio (365 for markets that never close).
    pub periods_per_year: f64,
}

impl StatsSpec {
    pub const MICROSECONDS: StatsSpec = StatsSpec {
        day: 86_400_000_000,
        periods_per_year: 365.0,
    };
}

/// The figures of a finished run. `out.equity` is not read: the equity rows came
/// through `stream`. `start`/`end` are the first and last bar timestamps;
/// `closes` the first and last close of each symbol (for buy and hold).
pub fn stats(
    stream: EquityStream,
    out: &Output,
    start: i64,
    end: i64,
    spec: StatsSpec,
    closes: &[(f64, f64)],
) -> Stats {
    stats_and_daily_returns(stream, out, start, end, spec, closes).0
}

/// [`stats`], and the daily returns its Sharpe ratio is computed from: one per
/// calendar day from the first bar's day to the last bar's, whatever the orders
/// (the engine records equity at the first and the last bar).
pub fn stats_and_daily_returns(
    stream: EquityStream,
    out: &Output,
    start: i64,
    end: i64,
    spec: StatsSpec,
    closes: &[(f64, f64)],
) -> (Stats, Vec<f64>) {
    let eq = stream.finish(end);
    let stats = figures(eq.parts(
        out,
        start,
        end,
        &eq.daily_returns,
        spec.periods_per_year,
        closes,
    ));
    (stats, eq.daily_returns)
}

/// What the figures of a finished run are made of, however its equity was followed
/// (the orders engine's stream, or the signal simulator's block summaries).
pub struct Parts<'a> {
    pub start: i64,
    pub end: i64,
    pub init_cash: f64,
    pub final_equity: f64,
    /// Highest equity, init_cash included.
    pub equity_peak: f64,
    pub max_drawdown: f64,
    pub daily_returns: &'a [f64],
    pub periods_per_year: f64,
    pub exposed_time: i64,
    pub fills: &'a [Fill],
    pub trades: &'a [Trade],
    pub bars_visited: u64,
    /// First and last close of each symbol, in symbol order.
    pub closes: &'a [(f64, f64)],
}

/// Every `Result.stats()` figure from its parts, summed in NumPy's order.
pub fn figures(p: Parts<'_>) -> Stats {
    let rets = p.daily_returns;
    let mut sharpe = None;
    if rets.len() >= 2 {
        let n = rets.len() as f64;
        let mean = pairwise_sum(rets) / n;
        let squares: Vec<f64> = rets
            .iter()
            .map(|r| {
                let d = r - mean;
                d * d
            })
            .collect();
        let sd = (pairwise_sum(&squares) / (n - 1.0)).sqrt();
        if sd > 0.0 {
            sharpe = Some(mean / sd * p.periods_per_year.sqrt());
        }
    }

    let closed: Vec<_> = p
        .trades
        .iter()
        .filter(|t| t.exit_reason.is_some())
        .collect();
    let n_closed = closed.len();
    let gains: Vec<f64> = closed.iter().map(|t| t.pnl).filter(|&x| x > 0.0).collect();
    let losses: Vec<f64> = closed.iter().map(|t| t.pnl).filter(|&x| x < 0.0).collect();
    let returns: Vec<f64> = closed.iter().map(|t| t.ret).collect();
    let loss = -pairwise_sum(&losses);
    let fees: Vec<f64> = p.fills.iter().map(|f| f.fee).collect();

    let span = p.end - p.start;
    let exposure = if span > 0 {
        p.exposed_time as f64 / span as f64
    } else {
        0.0
    };
    Stats {
        start: p.start,
        end: p.end,
        init_cash: p.init_cash,
        final_equity: p.final_equity,
        // init_cash = 0 (vectorbt allows it): no return to speak of, as in stats()
        total_return: if p.init_cash == 0.0 {
            f64::NAN
        } else {
            p.final_equity / p.init_cash - 1.0
        },
        max_drawdown: p.max_drawdown,
        sharpe,
        trades: n_closed as u64,
        open_trades: (p.trades.len() - n_closed) as u64,
        win_rate: (n_closed > 0).then(|| gains.len() as f64 / n_closed as f64),
        avg_trade_return: (n_closed > 0).then(|| pairwise_sum(&returns) / n_closed as f64),
        expectancy: (n_closed > 0).then(|| pairwise_sum(&returns) / n_closed as f64),
        profit_factor: (loss > 0.0).then(|| pairwise_sum(&gains) / loss),
        total_fees: pairwise_sum(&fees),
        exposure,
        bars_visited: p.bars_visited,
        duration: span,
        equity_peak: p.equity_peak,
        ..extra_figures(&p, &closed)
    }
}

/// `base ** exponent - 1`, `None` when it is not finite (a short span annualized).
pub(super) fn power_minus_one(base: f64, exponent: f64) -> Option<f64> {
    let v = base.powf(exponent) - 1.0;
    v.is_finite().then_some(v)
}

/// Mean and sample standard deviation (ddof=1) as NumPy computes them.
fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = pairwise_sum(x) / n;
    let squares: Vec<f64> = x.iter().map(|v| (v - mean) * (v - mean)).collect();
    (mean, (pairwise_sum(&squares) / (n - 1.0)).sqrt())
}

pub(super) fn mean(x: &[f64]) -> f64 {
    pairwise_sum(x) / x.len() as f64
}

/// The figures `extra_figures` in python/aftershock/trading/stats.py adds, for the
/// default `stats()` (calendar-day returns, no risk-free rate). The drawdown
/// episodes, calmar, alpha and beta are not computed here.
fn extra_figures(p: &Parts<'_>, closed: &[&Trade]) -> Stats {
    let rets = p.daily_returns;
    let n = rets.len();
    let ppy = p.periods_per_year;
    let growth = rets.iter().fold(1.0, |acc, r| acc * (1.0 + r));
    let return_ann = if n > 0 && growth > 0.0 {
        power_minus_one(growth, ppy / n as f64)
    } else {
        None
    };
    let volatility_ann = (n >= 2).then(|| mean_std(rets).1 * ppy.sqrt());
    let years = (p.end - p.start) as f64 / (365.0 * 86_400e6);
    let cagr = if years > 0.0 && p.final_equity > 0.0 && p.init_cash > 0.0 {
        power_minus_one(p.final_equity / p.init_cash, 1.0 / years)
    } else {
        None
    };
    let sortino = if n >= 2 {
        let down: Vec<f64> = rets.iter().map(|r| r.min(0.0) * r.min(0.0)).collect();
        let downside = mean(&down).sqrt();
        (downside > 0.0).then(|| mean(rets) / downside * ppy.sqrt())
    } else {
        None
    };

    let mut fills_per_symbol = vec![0u64; p.closes.len()];
    for f in p.fills {
        if let Some(c) = fills_per_symbol.get_mut(f.symbol) {
            *c += 1;
        }
    }
    let busiest = fills_per_symbol.iter().copied().max().unwrap_or(0);
    let benchmark = if p.closes.is_empty() {
        None
    } else if busiest > 0 {
        fills_per_symbol.iter().position(|&c| c == busiest)
    } else {
        Some(0)
    };
    let buy_hold_return = benchmark.map(|b| p.closes[b].1 / p.closes[b].0 - 1.0);

    let k = closed.len();
    let rets_t: Vec<f64> = closed.iter().map(|t| t.ret).collect();
    let pnl: Vec<f64> = closed.iter().map(|t| t.pnl).collect();
    let held: Vec<i64> = closed.iter().map(|t| t.exit_ts - t.entry_ts).collect();
    let held_f: Vec<f64> = held.iter().map(|&h| h as f64).collect();
    let fmax = |x: &[f64]| x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let fmin = |x: &[f64]| x.iter().copied().fold(f64::INFINITY, f64::min);
    let sqn = if k >= 2 {
        let (m, sd) = mean_std(&pnl);
        (sd > 0.0).then(|| (k as f64).sqrt() * m / sd)
    } else {
        None
    };
    let wins: Vec<f64> = pnl.iter().copied().filter(|&x| x > 0.0).collect();
    let losses: Vec<f64> = pnl.iter().copied().filter(|&x| x < 0.0).collect();
    let kelly = (!wins.is_empty() && !losses.is_empty()).then(|| {
        let w = wins.len() as f64 / k as f64;
        w - (1.0 - w) / (mean(&wins) / -mean(&losses))
    });
    Stats {
        benchmark: benchmark.map(|b| b as u64),
        buy_hold_return,
        return_ann,
        volatility_ann,
        cagr,
        sortino,
        best_trade: (k > 0).then(|| fmax(&rets_t)),
        worst_trade: (k > 0).then(|| fmin(&rets_t)),
        max_trade_duration: held.iter().copied().max(),
        avg_trade_duration: (k > 0).then(|| mean(&held_f).round_ties_even() as i64),
        sqn,
        kelly,
        ..Stats::default()
    }
}

/// NumPy's float summation (`np.add.reduce` on a contiguous array): runs of fewer
/// than 8 add left to right, up to 128 add in 8 interleaved lanes, longer runs split
/// in two at a multiple of 8. Same order, same bits.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, lane) in r.iter_mut().enumerate() {
                *lane += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}
