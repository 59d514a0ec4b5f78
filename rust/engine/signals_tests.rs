//! Unit tests of the signal simulator (`signals.rs`); parity with vectorbt itself is
//! tested from Python (tests/trading/test_parity_vectorbt.py), with vectorbt as the oracle.

use super::signals::{floor_div, gallop, signal_bars, BlockSeries};
use super::*;

struct Data {
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    masks: [Vec<u8>; 4],
}

impl Data {
    /// Bars one minute apart (microseconds) from (open, high, low, close) rows.
    fn new(rows: &[(f64, f64, f64, f64)]) -> Self {
        let n = rows.len();
        Data {
            ts: (0..n as i64).map(|i| i * 60_000_000).collect(),
            open: rows.iter().map(|r| r.0).collect(),
            high: rows.iter().map(|r| r.1).collect(),
            low: rows.iter().map(|r| r.2).collect(),
            close: rows.iter().map(|r| r.3).collect(),
            masks: [vec![0; n], vec![0; n], vec![0; n], vec![0; n]],
        }
    }

    /// Sets mask `k` (0 long entries, 1 long exits, 2 short entries, 3 short exits) on `bars`.
    fn on(mut self, k: usize, bars: &[usize]) -> Self {
        for &i in bars {
            self.masks[k][i] = 1;
        }
        self
    }

    fn input(&self) -> SignalInput<'_> {
        SignalInput {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            long_entries: &self.masks[0],
            long_exits: &self.masks[1],
            short_entries: &self.masks[2],
            short_exits: &self.masks[3],
            per_bar: PerBar::default(),
        }
    }
}

fn flat(n: usize) -> Vec<(f64, f64, f64, f64)> {
    vec![(100.0, 101.0, 99.0, 100.0); n]
}

fn prices(out: &Output) -> Vec<f64> {
    out.fills.iter().map(|f| f.price).collect()
}

#[test]
fn pairwise_sum_adds_like_numpy_on_small_and_exact_inputs() {
    assert_eq!(pairwise_sum(&[0.1, 0.2]), 0.1 + 0.2);
    let many: Vec<f64> = (0..1000).map(|i| i as f64).collect();
    assert_eq!(pairwise_sum(&many), 499_500.0);
}

#[test]
fn all_cash_buy_is_sized_net_of_fees_and_slippage() {
    let d = Data::new(&flat(3)).on(0, &[0]);
    let cfg = SignalConfig {
        init_cash: 1_000.0,
        fees: 0.01,
        fixed_fees: 2.0,
        slippage: 0.005,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, true).unwrap();
    let f = &out.fills[0];
    let price = 100.0 * 1.005;
    assert_eq!(f.price, price);
    assert!((f.qty - (1_000.0 - 2.0) / 1.01 / price).abs() < 1e-12);
    // all the cash is spent, fees included
    assert_eq!(out.equity[0].cash, 0.0);
}

#[test]
fn stop_loss_fills_at_its_level_or_at_a_gapping_open() {
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 100.5, 96.0, 97.0), // reaches 98
        (99.0, 100.0, 98.5, 99.0),
        (95.0, 99.0, 90.0, 91.0), // opens below 99 * 0.98
    ];
    let d = Data::new(&rows).on(0, &[0, 2]);
    let cfg = SignalConfig {
        sl_stop: 0.02,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, true).unwrap();
    assert_eq!(prices(&out), vec![100.0, 98.0, 99.0, 95.0]);
    assert_eq!(out.fills[1].reason, FillReason::StopLoss);
    assert_eq!(out.trades.len(), 2);
}

#[test]
fn infinite_and_large_stops_never_fire_where_they_cannot() {
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 400.0, 1.0, 50.0),
        (50.0, 51.0, 49.0, 50.0),
    ];
    // a long's stop-loss of 150% sits below zero; infinite stops never fire
    for (sl, tp) in [(1.5, f64::INFINITY), (f64::INFINITY, f64::INFINITY)] {
        let d = Data::new(&rows).on(0, &[0]);
        let cfg = SignalConfig {
            sl_stop: sl,
            tp_stop: tp,
            ..SignalConfig::default()
        };
        assert_eq!(
            simulate_signals(d.input(), &cfg, true).unwrap().fills.len(),
            1
        );
    }
    // a short's 300% stop-loss is at 4x the entry: bar 1's high of 400 reaches it
    let d = Data::new(&rows).on(2, &[0]);
    let cfg = SignalConfig {
        sl_stop: 3.0,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, true).unwrap();
    assert_eq!(prices(&out), vec![100.0, 400.0]);
}

#[test]
fn next_open_fills_at_the_following_open_and_drops_the_last_bar() {
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (101.0, 102.0, 100.0, 101.0),
        (102.0, 103.0, 101.0, 102.0),
    ];
    let d = Data::new(&rows).on(0, &[0, 2]).on(1, &[1]);
    let cfg = SignalConfig {
        size: 1.0,
        price: SignalPrice::NextOpen,
        stop_entry_price: StopEntryPrice::FillPrice,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, true).unwrap();
    assert_eq!(prices(&out), vec![101.0, 102.0]);
    assert_eq!(out.fills[0].ts, d.ts[1]);
}

#[test]
fn next_open_checks_the_entry_bar_after_the_open() {
    // filled at bar 1's open (100), bar 1 then trades down to 95: a 2% stop fires there
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 100.5, 95.0, 96.0),
        (96.0, 97.0, 95.0, 96.0),
    ];
    let d = Data::new(&rows).on(0, &[0]);
    let cfg = SignalConfig {
        sl_stop: 0.02,
        price: SignalPrice::NextOpen,
        stop_entry_price: StopEntryPrice::FillPrice,
        stop_exit_price: StopExitPrice::StopMarket,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, true).unwrap();
    assert_eq!(prices(&out), vec![100.0, 98.0]);
    assert_eq!(out.fills[1].ts, d.ts[1]);
}

#[test]
fn next_open_refuses_stop_levels_from_a_later_close() {
    let d = Data::new(&flat(2));
    let cfg = SignalConfig {
        price: SignalPrice::NextOpen,
        ..SignalConfig::default()
    };
    let err = simulate_signals(d.input(), &cfg, true).unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidConfig {
            field: "stop_entry_price",
            ..
        }
    ));
}

#[test]
fn masks_of_the_wrong_length_are_an_error_not_a_panic() {
    let mut d = Data::new(&flat(3));
    d.masks[2] = vec![0; 2];
    let err = simulate_signals(d.input(), &SignalConfig::default(), true).unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidConfig {
            field: "short_entries",
            ..
        }
    ));
}

/// A xorshift stream of uniforms in [0, 1).
fn uniforms(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A walk of `n` bars from `price`: opens off the previous close by up to `gap`/2,
/// closes off the open by up to `body`/2, wicks up to `wick`.
fn walk_rows(
    n: usize,
    next: &mut impl FnMut() -> f64,
    price: f64,
    (gap, body, wick): (f64, f64, f64),
) -> Data {
    let mut rows = Vec::with_capacity(n);
    let mut price = price;
    for _ in 0..n {
        let o: f64 = price * (1.0 + gap * (next() - 0.5));
        let c: f64 = o * (1.0 + body * (next() - 0.5));
        let h = o.max(c) * (1.0 + wick * next());
        let l = o.min(c) * (1.0 - wick * next());
        rows.push((o, h, l, c));
        price = c;
    }
    Data::new(&rows)
}

/// A calm walk with no signals, as benchmarks/case_signals.py's: 0.08% per bar, small
/// wicks, one-minute bars.
fn calm_data(n: usize, seed: u64) -> Data {
    walk_rows(n, &mut uniforms(seed), 20_000.0, (0.0, 0.0028, 0.0008))
}

/// A reproducible walk with signals, for the sweep tests.
fn random_data(n: usize, seed: u64) -> Data {
    let mut next = uniforms(seed);
    let mut d = walk_rows(n, &mut next, 100.0, (0.004, 0.02, 0.01));
    // five-minute bars over several days, so the daily figures have data
    d.ts = (0..n as i64).map(|i| i * 300_000_000).collect();
    for k in 0..4 {
        for i in 0..n {
            d.masks[k][i] = (next() < 0.03) as u8;
        }
    }
    d
}

fn grid() -> Vec<SignalConfig> {
    let mut out = Vec::new();
    for sl in [f64::NAN, 0.005, 0.01, 0.02] {
        for tp in [f64::NAN, 0.01, 0.03] {
            for fees in [0.0, 0.001] {
                out.push(SignalConfig {
                    sl_stop: sl,
                    tp_stop: tp,
                    fees,
                    ..SignalConfig::default()
                });
            }
        }
    }
    out
}

#[test]
fn sweeps_do_not_depend_on_the_thread_count() {
    let d = random_data(3_000, 7);
    let configs = grid();
    let one: Vec<_> = simulate_signals_many(d.input(), &configs, 1);
    for threads in [2, 3, 8] {
        assert_eq!(simulate_signals_many(d.input(), &configs, threads), one);
    }
}

#[test]
fn sweep_figures_agree_with_the_full_records() {
    let d = random_data(3_000, 11);
    for cfg in grid() {
        let stats = signal_stats(d.input(), &cfg).unwrap();
        let out = simulate_signals(d.input(), &cfg, true).unwrap();
        let last = out.equity.last().unwrap();
        assert_eq!(stats.final_equity, last.equity);
        let closed = out
            .trades
            .iter()
            .filter(|t| t.exit_reason.is_some())
            .count();
        assert_eq!(stats.trades as usize, closed);
        assert_eq!(stats.open_trades as usize, out.trades.len() - closed);
        let fees: f64 = out.fills.iter().map(|f| f.fee).sum();
        assert!((stats.total_fees - fees).abs() <= 1e-9 * fees.abs().max(1.0));
        let mut peak = cfg.init_cash;
        let mut dd: f64 = 0.0;
        for row in &out.equity {
            peak = peak.max(row.equity);
            dd = dd.min(row.equity / peak - 1.0);
        }
        assert_eq!(stats.max_drawdown, dd);
    }
}

#[test]
#[ignore]
fn timing_probe() {
    let n = 525_600;
    let mut d = random_data(n, 3);
    for k in 0..4 {
        d.masks[k].iter_mut().for_each(|m| *m = 0);
    }
    for t in 0..300 {
        d.masks[0][t * 1700 + 5] = 1;
        d.masks[1][t * 1700 + 1005] = 1;
    }
    let cfg = SignalConfig {
        sl_stop: 0.02,
        ..SignalConfig::default()
    };
    let mut best = [f64::INFINITY; 4];
    let mut rows = 0;
    for _ in 0..30 {
        let t = std::time::Instant::now();
        rows = simulate_signals(d.input(), &cfg, true)
            .unwrap()
            .equity
            .len();
        best[0] = best[0].min(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        signal_stats(d.input(), &cfg).unwrap();
        best[1] = best[1].min(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        signal_bars(&d.input());
        best[2] = best[2].min(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        simulate_signals(d.input(), &cfg, false).unwrap();
        best[3] = best[3].min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "best ms: full {:.3} stats {:.3} signal_bars {:.3} records only {:.3} ({rows} rows)",
        best[0], best[1], best[2], best[3]
    );
}

#[test]
fn granularity_rounds_like_python_floor_division() {
    // Python: 0.97 // 0.01 == 96.0, 1.0 // 0.01 == 99.0 (the exact quotients are just
    // below 97 and 100), 0.3 // 0.1 == 2.0, -7.0 // 2.0 == -4.0
    assert_eq!(floor_div(0.97, 0.01), 96.0);
    assert_eq!(floor_div(1.0, 0.01), 99.0);
    assert_eq!(floor_div(0.3, 0.1), 2.0);
    assert_eq!(floor_div(7.0, 2.0), 3.0);
    assert_eq!(floor_div(-7.0, 2.0), -4.0);
}

#[test]
fn per_bar_settings_are_read_at_the_order_bar() {
    // fees of 1% on bar 0 and 2% on bar 2: each fill pays its own bar's rate
    let d = Data::new(&flat(4)).on(0, &[0]).on(1, &[2]);
    let fees = [0.01, 0.5, 0.02, 0.5];
    let size = [2.0, 9.0, 9.0, 9.0];
    let mut inp = d.input();
    inp.per_bar.fees = &fees;
    inp.per_bar.size = &size;
    let cfg = SignalConfig::default();
    let out = simulate_signals(inp, &cfg, false).unwrap();
    let got: Vec<(f64, f64)> = out.fills.iter().map(|f| (f.qty, f.fee)).collect();
    assert_eq!(
        got,
        vec![(2.0, 2.0 * 100.0 * 0.01), (2.0, 2.0 * 100.0 * 0.02)]
    );
}

#[test]
fn a_nan_price_bar_takes_no_order_and_the_next_one_does() {
    let d = Data::new(&flat(4)).on(0, &[0, 1]);
    let price = [f64::NAN, 100.5, 100.0, 100.0];
    let mut inp = d.input();
    inp.per_bar.price = &price;
    let cfg = SignalConfig {
        size: 1.0,
        ..SignalConfig::default()
    };
    let out = simulate_signals(inp, &cfg, false).unwrap();
    assert_eq!(prices(&out), vec![100.5]);
    assert_eq!(out.fills[0].ts, d.ts[1]);
}

#[test]
fn a_group_with_shared_cash_spends_it_in_column_order() {
    // two columns buy all cash on bar 0: the first takes it all, the second gets nothing
    let a = Data::new(&flat(3)).on(0, &[0]);
    let b = Data::new(&flat(3)).on(0, &[0]);
    let cfg = SignalConfig {
        init_cash: 1_000.0,
        ..SignalConfig::default()
    };
    let shared = simulate_signal_group(&[a.input(), b.input()], &[0, 1], &cfg, true, true).unwrap();
    assert_eq!(shared.fills.len(), 1);
    assert_eq!((shared.fills[0].symbol, shared.fills[0].qty), (0, 10.0));
    let apart = simulate_signal_group(&[a.input(), b.input()], &[0, 1], &cfg, false, true).unwrap();
    let syms: Vec<usize> = apart.fills.iter().map(|f| f.symbol).collect();
    assert_eq!(syms, vec![0, 1]);
    // one equity for the group: both columns' cash and positions
    assert_eq!(apart.equity.last().map(|r| r.equity), Some(2_000.0));
}

#[test]
fn a_group_refuses_columns_with_different_timestamps() {
    let a = Data::new(&flat(3)).on(0, &[0]);
    let mut b = Data::new(&flat(3)).on(0, &[0]);
    b.ts[2] += 1;
    let err = simulate_signal_group(
        &[a.input(), b.input()],
        &[0, 1],
        &SignalConfig::default(),
        true,
        false,
    )
    .unwrap_err();
    assert!(format!("{err}").contains("timestamps"), "{err}");
}

#[test]
fn allow_partial_false_rejects_an_order_the_cash_cuts() {
    // 100 of cash at 100 buys one unit: two are cut to one, or rejected
    let d = Data::new(&flat(4)).on(0, &[0]).on(1, &[3]);
    let mut cfg = SignalConfig {
        init_cash: 100.0,
        size: 2.0,
        ..SignalConfig::default()
    };
    let out = simulate_signals(d.input(), &cfg, false).unwrap();
    assert_eq!(out.fills.len(), 2);
    assert_eq!(out.fills[0].qty, 1.0);
    cfg.allow_partial = false;
    // rejected: nothing happens, and the exit has nothing to close
    assert!(simulate_signals(d.input(), &cfg, false)
        .unwrap()
        .fills
        .is_empty());
    // per bar: bar 0 allows the cut
    let allow = [1.0, 0.0, 0.0, 0.0];
    let mut inp = d.input();
    inp.per_bar.allow_partial = &allow;
    assert_eq!(simulate_signals(inp, &cfg, false).unwrap().fills.len(), 2);
    // all the cash is never partial
    cfg.size = f64::INFINITY;
    assert_eq!(
        simulate_signals(d.input(), &cfg, false).unwrap().fills[0].qty,
        1.0
    );
}

#[test]
fn value_sizes_convert_at_the_valuation_price() {
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (100.0, 121.0, 99.0, 120.0),
        (120.0, 121.0, 119.0, 120.0),
    ];
    let d = Data::new(&rows).on(0, &[1]);
    let qty = |val_price: f64, ffill: bool, per_bar: &[f64]| {
        let cfg = SignalConfig {
            size: 60.0,
            size_type: SignalSize::Value,
            val_price,
            ffill_val_price: ffill,
            ..SignalConfig::default()
        };
        let mut inp = d.input();
        inp.per_bar.val_price = per_bar;
        let out = simulate_signals(inp, &cfg, false).unwrap();
        out.fills.first().map(|f| f.qty)
    };
    assert_eq!(qty(f64::INFINITY, true, &[]), Some(0.5)); // the order price, 120
    assert_eq!(qty(f64::NEG_INFINITY, true, &[]), Some(0.6)); // the previous close, 100
    assert_eq!(qty(150.0, true, &[]), Some(0.4));
    // unknown on bar 1: the last known price, or no valuation (the order is ignored)
    let series = [100.0, f64::NAN, 120.0];
    assert_eq!(qty(f64::INFINITY, true, &series), Some(0.6));
    assert_eq!(qty(f64::INFINITY, false, &series), None);
}

#[test]
fn next_open_takes_the_open_or_the_signal_close_as_valuation_price() {
    let rows = [
        (100.0, 101.0, 99.0, 100.0),
        (120.0, 121.0, 99.0, 110.0),
        (110.0, 111.0, 109.0, 110.0),
    ];
    let d = Data::new(&rows).on(0, &[0]);
    let mut cfg = SignalConfig {
        size: 60.0,
        size_type: SignalSize::Value,
        price: SignalPrice::NextOpen,
        stop_entry_price: StopEntryPrice::FillPrice,
        stop_exit_price: StopExitPrice::StopMarket,
        ..SignalConfig::default()
    };
    assert_eq!(
        simulate_signals(d.input(), &cfg, false).unwrap().fills[0].qty,
        0.5
    );
    cfg.val_price = f64::NEG_INFINITY;
    assert_eq!(
        simulate_signals(d.input(), &cfg, false).unwrap().fills[0].qty,
        0.6
    );
    cfg.val_price = 100.0;
    assert!(simulate_signals(d.input(), &cfg, false).is_err());
}

#[test]
fn raise_reject_turns_a_rejection_into_an_error_naming_the_row() {
    let d = Data::new(&flat(4)).on(0, &[0, 1]);
    let mut cfg = SignalConfig {
        init_cash: 100.0,
        size: 1.0,
        accumulate: Accumulate::Both,
        raise_reject: true,
        ..SignalConfig::default()
    };
    // bar 1's buy finds no cash left: rejected, hence an error
    let err = simulate_signals(d.input(), &cfg, false).unwrap_err();
    assert!(err.to_string().contains("row 1"), "{err}");
    // without accumulation the second entry is ignored, not rejected
    cfg.accumulate = Accumulate::Disabled;
    assert_eq!(
        simulate_signals(d.input(), &cfg, false)
            .unwrap()
            .fills
            .len(),
        1
    );
}

/// Equality of two stats rows, NaN equal to NaN: bit for bit, but for beta and alpha
/// within `tol` (a sweep sums beta's cross term by blocks of bars; both are sums of
/// many small terms, near 0 as often as not: an absolute tolerance).
fn same_stats(a: &Stats, b: &Stats, tol: f64) -> bool {
    let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= tol,
        (x, y) => x.is_none() && y.is_none(),
    };
    let strip = |s: &Stats| {
        let mut s = s.clone();
        (s.beta, s.alpha) = (None, None);
        format!("{s:?}")
    };
    strip(a) == strip(b) && close(a.beta, b.beta) && close(a.alpha, b.alpha)
}

#[test]
fn streamed_figures_are_the_rows_of_the_equity_walk() {
    // the sweep's streaming pass (blocks of held bars skipped) and signal_stats (no
    // blocks) give every figure of the walk over each variant's equity rows, the
    // drawdown episodes and calmar included, bit for bit; beta and alpha to 1e-13
    // (absolute)
    let mut checked = 0;
    for (seed, rate) in [(3u64, 30u32), (5, 3), (9, 1), (11, 3), (13, 1)] {
        // volatile bars, then calm ones (beta's cross term by blocks)
        let mut d = if seed < 10 {
            random_data(6_000, seed)
        } else {
            let mut d = calm_data(20_000, seed);
            d.masks = random_data(20_000, seed).masks;
            d
        };
        // sparse signals: long holds, so whole blocks are skipped
        for k in 0..4 {
            for (i, m) in d.masks[k].iter_mut().enumerate() {
                *m &= ((i as u32).wrapping_mul(2_654_435_761) % 1_000 < rate * 10) as u8;
            }
        }
        if seed % 4 == 1 {
            // an entry at the first bar: with fees the first row is below init_cash, so
            // the episodes' own peak starts under the drawdown's
            d.masks[0][0] = 1;
            d.masks[2][0] = 0;
        }
        let mut configs = grid();
        for cfg in grid() {
            configs.push(SignalConfig {
                sl_trail: true,
                price: SignalPrice::NextOpen,
                stop_entry_price: StopEntryPrice::FillPrice,
                slippage: 0.001,
                ..cfg
            });
        }
        configs.push(SignalConfig {
            init_cash: 0.0,
            ..SignalConfig::default()
        });
        let streamed = simulate_signals_many(d.input(), &configs, 2);
        let walked = signal_rows(d.input(), &configs, 2, Conventions::aftershock(365.0), None);
        for (i, cfg) in configs.iter().enumerate() {
            let (s, w) = (streamed[i].as_ref().unwrap(), walked[i].as_ref().unwrap());
            // (with no starting cash the walk's drawdown differs: see the Python tests)
            if cfg.init_cash > 0.0 {
                assert!(
                    same_stats(s, w, 1e-13),
                    "seed {seed} config {i}:\n{s:?}\n{w:?}"
                );
            }
            let alone = signal_stats(d.input(), cfg).unwrap();
            assert!(same_stats(&alone, s, 1e-13), "seed {seed} config {i} alone");
            if cfg.init_cash > 0.0 && s.trades > 2 {
                assert!(s.beta.is_some() && s.alpha.is_some() && s.calmar.is_some());
                assert!(s.avg_drawdown.is_some() && s.max_drawdown_duration.is_some());
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn beta_cross_term_of_a_block_is_the_sum_over_its_bars() {
    let d = calm_data(4_000, 21);
    let lr: Vec<f64> = (0..d.close.len())
        .map(|k| {
            if k == 0 {
                f64::NAN
            } else {
                d.close[k].ln() - d.close[k - 1].ln()
            }
        })
        .collect();
    let series = BlockSeries::blocks(&d.close, &lr);
    assert_eq!(series.len(), 4_000 / 64);
    let p0 = d.close[0];
    // all in, part cash, 5x leverage, a short, a short levered 3x (equity p0 * 5)
    let accounts = [
        (0.0, 5.0),
        (60_000.0, 2.0),
        (-4.0 * p0, 5.0),
        (2.0 * 5.0 * p0, -5.0),
        (4.0 * 5.0 * p0, -15.0),
    ];
    let (mut summed, mut refused) = (0, 0);
    for (cash, qty) in accounts {
        for (b, block) in series.iter().enumerate().skip(1) {
            let k0 = b * 64;
            // each bar's equity log return from the close's exact change: ln_1p of
            // qty * (c_k - c_k-1) / v_k-1, to a few ulps (ln of the ratio of two
            // rounded equities, as CrossSum takes it, is off by up to 1e-12 of it)
            let want: f64 = (k0..k0 + 64)
                .map(|k| {
                    let before = cash + qty * d.close[k - 1];
                    (qty * (d.close[k] - d.close[k - 1]) / before).ln_1p() * lr[k]
                })
                .sum();
            match block.cross(cash, qty) {
                Some(x) => {
                    let err = (x - want).abs() / want.abs();
                    assert!(err < 1e-14, "block {b} account {cash} {qty}: {x} vs {want}");
                    summed += 1;
                }
                None => refused += 1,
            }
        }
    }
    assert!(summed > 250, "{summed} {refused}");
    // the first block has no bar before it; an account near ruin is refused
    assert!(series[0].cross(0.0, 1.0).is_none());
    let near_ruin = -0.99 * p0 * 100.0;
    assert!(series[5].cross(near_ruin, 100.0).is_none());
}

#[test]
#[ignore]
fn sweep_probe() {
    // the benchmark's shape: 525,600 bars, 300 entries each exited 1,000 bars later,
    // a stop-loss x take-profit grid on one thread (cargo test --release -- --ignored)
    let n = 525_600;
    let mut d = calm_data(n, 99);
    for k in 0..4 {
        d.masks[k].iter_mut().for_each(|m| *m = 0);
    }
    for t in 0..300 {
        let s = t * (n / 300) + (t * 7919) % 600;
        d.masks[0][s] = 1;
        d.masks[1][s + 1_000] = 1;
    }
    let mut configs = Vec::new();
    for i in 0..20 {
        for j in 0..10 {
            configs.push(SignalConfig {
                sl_stop: 0.005 + 0.045 * i as f64 / 19.0,
                tp_stop: 0.005 + 0.095 * j as f64 / 9.0,
                ..SignalConfig::default()
            });
        }
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        simulate_signals_many(d.input(), &configs, 1);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    // what every sweep computes once: one variant costs about that much more
    let mut one = f64::INFINITY;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        simulate_signals_many(d.input(), &configs[..1], 1);
        one = one.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "sweep: {:.3} ms per variant (best of 5); a one-variant sweep {one:.2} ms",
        best / configs.len() as f64
    );
}

#[test]
fn gallop_is_partition_point() {
    let ts: Vec<i64> = (0..300).map(|i| i * 3 + (i % 4)).collect();
    for len in [0usize, 1, 2, 7, 64, 300] {
        let seg = &ts[..len];
        for t in -2..905 {
            assert_eq!(gallop(seg, t), seg.partition_point(|&x| x < t), "{len} {t}");
        }
    }
}
