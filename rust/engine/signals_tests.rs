//! Unit tests of the signal simulator (`signals.rs`); parity with vectorbt itself is
//! tested from Python (tests/trading/test_parity_vectorbt.py), with vectorbt as the oracle.

use super::signals::{floor_div, signal_bars};
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

/// A reproducible walk with signals, for the sweep tests.
fn random_data(n: usize, seed: u64) -> Data {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows = Vec::with_capacity(n);
    let mut price = 100.0;
    for _ in 0..n {
        let o: f64 = price * (1.0 + 0.004 * (next() - 0.5));
        let c: f64 = o * (1.0 + 0.02 * (next() - 0.5));
        let h = o.max(c) * (1.0 + 0.01 * next());
        let l = o.min(c) * (1.0 - 0.01 * next());
        rows.push((o, h, l, c));
        price = c;
    }
    let mut d = Data::new(&rows);
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
