//! The running figures against the same definitions computed directly over a
//! materialized equity path (`Output.equity`), as `Result.stats()` does.

use super::metrics::{pairwise_sum, EquityStream};
use super::*;

const DAY: i64 = 1_440; // minutes: bars below are one unit apart

/// Straightforward figures over a whole equity table (the definitions of STATS_DOC).
struct Direct {
    final_equity: f64,
    max_drawdown: f64,
    daily: Vec<f64>,
    exposed: i64,
}

fn direct(rows: &[EquityRow], init: f64, end: i64) -> Direct {
    let mut peak = init;
    let mut dd: f64 = 0.0;
    for r in rows {
        peak = peak.max(r.equity);
        dd = dd.min(r.equity / peak - 1.0);
    }
    // equity at the end of each calendar day, forward filled
    let first = rows[0].ts.div_euclid(DAY);
    let last = rows[rows.len() - 1].ts.div_euclid(DAY);
    let mut daily = Vec::new();
    for d in first..=last {
        let v = rows
            .iter()
            .filter(|r| r.ts.div_euclid(DAY) <= d)
            .last()
            .map(|r| r.equity)
            .unwrap();
        daily.push(v);
    }
    let mut exposed = 0;
    for (k, r) in rows.iter().enumerate() {
        let next = rows.get(k + 1).map(|n| n.ts).unwrap_or(end);
        if r.gross_exposure > 0.0 {
            exposed += next - r.ts;
        }
    }
    Direct {
        final_equity: rows[rows.len() - 1].equity,
        max_drawdown: dd,
        daily,
        exposed,
    }
}

fn walk(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    // a deterministic random walk (xorshift), one bar per minute
    let mut x = seed;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let (mut ts, mut o, mut h, mut l, mut c) = (vec![], vec![], vec![], vec![], vec![]);
    let mut p = 100.0;
    for k in 0..n {
        let open = p;
        p *= 1.0 + 0.004 * next();
        let wick = 1.0 + 0.002 * (next() + 0.5);
        ts.push(k as i64 - 300); // starts before 0: days of negative timestamps too
        o.push(open);
        c.push(p);
        h.push(open.max(p) * wick);
        l.push(open.min(p) / wick);
    }
    (ts, o, h, l, c)
}

fn one_symbol<'a>(
    ts: &'a [i64],
    open: &'a [f64],
    high: &'a [f64],
    low: &'a [f64],
    close: &'a [f64],
    offsets: &'a [usize],
) -> Bars<'a> {
    Bars {
        ts,
        open,
        high,
        low,
        close,
        offsets,
    }
}

#[test]
fn running_figures_equal_the_definitions_over_the_full_equity_table() {
    let (ts, o, h, l, c) = walk(12 * DAY as usize, 7);
    let offsets = vec![0, ts.len()];
    let bars = one_symbol(&ts, &o, &h, &l, &c, &offsets);
    // round trips with brackets, a few days apart, some days without any order
    let mut orders = Vec::new();
    for k in 0..40i64 {
        let side = if k % 3 == 0 { Side::Sell } else { Side::Buy };
        let mut ord = Order::market(k * 400 + 17, 0, side, 5.0 + k as f64);
        ord.stop_loss = Some(0.002 + 0.0005 * (k % 4) as f64);
        ord.take_profit = Some(0.003);
        ord.exit_after = Some(90);
        orders.push(ord);
    }
    let cfg = Config {
        init_cash: 10_000.0,
        fees: 0.0004,
        slippage: 0.0001,
        ..Config::default()
    };
    let spec = StatsSpec {
        day: DAY,
        periods_per_year: 365.0,
    };
    let out = simulate(bars, &orders, &cfg).unwrap();
    let s = simulate_stats(bars, &orders, &cfg, spec).unwrap();
    let end = *ts.last().unwrap();
    let d = direct(&out.equity, cfg.init_cash, end);

    assert_eq!((s.start, s.end), (ts[0], end));
    assert_eq!(s.final_equity, d.final_equity);
    assert_eq!(s.total_return, d.final_equity / cfg.init_cash - 1.0);
    assert_eq!(s.max_drawdown, d.max_drawdown);
    assert!(s.max_drawdown < 0.0);
    assert_eq!(s.exposure, d.exposed as f64 / (end - ts[0]) as f64);
    assert!(s.exposure > 0.0 && s.exposure < 1.0);

    let mut prev = cfg.init_cash;
    let rets: Vec<f64> = d
        .daily
        .iter()
        .map(|&v| {
            let r = (v - prev) / prev;
            prev = v;
            r
        })
        .collect();
    assert_eq!(rets.len(), 13); // 12 days of minutes shifted by 300: 13 calendar days
    let n = rets.len() as f64;
    let mean = rets.iter().sum::<f64>() / n;
    let sd = (rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let sharpe = mean / sd * 365f64.sqrt();
    let got = s.sharpe.unwrap();
    assert!(
        (got - sharpe).abs() <= 1e-12 * sharpe.abs(),
        "{got} vs {sharpe}"
    );

    let closed: Vec<&Trade> = out
        .trades
        .iter()
        .filter(|t| t.exit_reason.is_some())
        .collect();
    assert_eq!(s.trades as usize, closed.len());
    assert_eq!(s.open_trades as usize, out.trades.len() - closed.len());
    assert!(s.trades >= 30);
    let wins = closed.iter().filter(|t| t.pnl > 0.0).count();
    assert_eq!(s.win_rate, Some(wins as f64 / closed.len() as f64));
    let avg = closed.iter().map(|t| t.ret).sum::<f64>() / closed.len() as f64;
    assert!((s.avg_trade_return.unwrap() - avg).abs() <= 1e-12 * avg.abs());
    let gain: f64 = closed.iter().map(|t| t.pnl).filter(|&p| p > 0.0).sum();
    let loss: f64 = -closed
        .iter()
        .map(|t| t.pnl)
        .filter(|&p| p < 0.0)
        .sum::<f64>();
    let pf = s.profit_factor.unwrap();
    assert!((pf - gain / loss).abs() <= 1e-12 * pf);
    let fees: f64 = out.fills.iter().map(|f| f.fee).sum();
    assert!((s.total_fees - fees).abs() <= 1e-12 * fees);
    assert_eq!(s.bars_visited, out.bars_visited);
}

#[test]
fn no_orders_gives_flat_figures_and_null_ratios() {
    let (ts, o, h, l, c) = walk(3 * DAY as usize, 3);
    let offsets = vec![0, ts.len()];
    let bars = one_symbol(&ts, &o, &h, &l, &c, &offsets);
    let spec = StatsSpec {
        day: DAY,
        periods_per_year: 252.0,
    };
    let s = simulate_stats(bars, &[], &Config::default(), spec).unwrap();
    assert_eq!(s.final_equity, Config::default().init_cash);
    assert_eq!(
        (s.total_return, s.max_drawdown, s.exposure),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(s.sharpe, None); // zero variance
    assert_eq!(
        (s.win_rate, s.avg_trade_return, s.profit_factor),
        (None, None, None)
    );
    assert_eq!((s.trades, s.open_trades, s.bars_visited), (0, 0, 0));
}

#[test]
fn a_row_at_the_same_timestamp_replaces_the_previous_one() {
    let row = |ts, equity, gross| EquityRow {
        ts,
        cash: 0.0,
        equity,
        gross_exposure: gross,
    };
    let mut replaced = EquityStream::new(100.0, 10);
    for r in [
        row(0, 100.0, 0.0),
        row(5, 50.0, 1.0),
        row(5, 120.0, 0.0),
        row(25, 110.0, 0.0),
    ] {
        replaced.push(r);
    }
    let mut clean = EquityStream::new(100.0, 10);
    for r in [row(0, 100.0, 0.0), row(5, 120.0, 0.0), row(25, 110.0, 0.0)] {
        clean.push(r);
    }
    let out = Output::default();
    let spec = StatsSpec {
        day: 10,
        periods_per_year: 1.0,
    };
    let a = metrics::stats(replaced, &out, 0, 30, spec, &[]);
    let b = metrics::stats(clean, &out, 0, 30, spec, &[]);
    assert_eq!(a, b);
    assert_eq!(a.max_drawdown, 110.0 / 120.0 - 1.0); // the overwritten 50 left no trace
    assert_eq!(a.exposure, 0.0);
    // days 0, 1 (forward filled), 2: returns 0.2, 0, -1/12
    let rets: [f64; 3] = [0.2, 0.0, (110.0 - 120.0) / 120.0];
    let mean = rets.iter().sum::<f64>() / 3.0;
    let sd = (rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((a.sharpe.unwrap() - mean / sd).abs() < 1e-15);
}

#[test]
fn pairwise_sum_is_exact_on_integers_and_left_to_right_below_eight() {
    for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000, 4097] {
        let v: Vec<f64> = (0..n).map(|k| ((k * 7919) % 1000) as f64 - 500.0).collect();
        let exact: i64 = (0..n).map(|k| ((k * 7919) % 1000) as i64 - 500).sum();
        assert_eq!(pairwise_sum(&v), exact as f64, "n = {n}");
    }
    let v = [1e16, 1.0, -1e16, 1.0];
    assert_eq!(pairwise_sum(&v), ((1e16 + 1.0) - 1e16) + 1.0);
    // from 8 on, eight lanes: the large terms cancel in their own lanes first
    let mut w = vec![0.0; 16];
    w[0] = 1e16;
    w[8] = -1e16;
    w[1] = 1.0;
    w[9] = 1.0;
    assert_eq!(pairwise_sum(&w), 2.0);
    assert_ne!(w.iter().fold(0.0, |a, b| a + b), 2.0);
}

#[test]
fn figures_of_many_jobs_do_not_depend_on_the_thread_count() {
    let (ts, o, h, l, c) = walk(4 * DAY as usize, 5);
    let offsets = vec![0, ts.len()];
    let bars = one_symbol(&ts, &o, &h, &l, &c, &offsets);
    let frames: Vec<Vec<Order>> = (0..7)
        .map(|j| {
            (0..30i64)
                .map(|k| {
                    let mut ord = Order::market(k * 170 + j, 0, Side::Buy, 2.0);
                    ord.stop_loss = Some(0.001 * (j + 1) as f64);
                    ord.exit_after = Some(30 + 20 * j);
                    ord
                })
                .collect()
        })
        .collect();
    let configs: Vec<Config> = (0..3)
        .map(|k| Config {
            fees: 0.0005 * k as f64,
            ..Config::default()
        })
        .collect();
    let jobs: Vec<Job> = frames
        .iter()
        .flat_map(|f| {
            configs.iter().map(move |c| Job {
                orders: f,
                config: c,
            })
        })
        .collect();
    let spec = StatsSpec {
        day: DAY,
        periods_per_year: 365.0,
    };
    let one = simulate_many_stats(bars, &jobs, 1, BarCheck::Full, spec);
    for threads in [2, 3, 8] {
        assert_eq!(
            simulate_many_stats(bars, &jobs, threads, BarCheck::Full, spec),
            one
        );
    }
    for (job, stats) in jobs.iter().zip(&one) {
        let alone = simulate_stats(bars, job.orders, job.config, spec).unwrap();
        assert_eq!(stats.as_ref().unwrap(), &alone);
    }
}
