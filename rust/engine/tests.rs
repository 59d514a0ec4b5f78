//! Hand-computed scenarios for every order type, intrabar setting and account rule.

use super::*;

const MIN: i64 = 60;

pub(super) struct Data {
    pub(super) ts: Vec<i64>,
    pub(super) o: Vec<f64>,
    pub(super) h: Vec<f64>,
    pub(super) l: Vec<f64>,
    pub(super) c: Vec<f64>,
    pub(super) offsets: Vec<usize>,
}

impl Data {
    /// One symbol, bars one minute apart starting at t=0.
    fn one(rows: &[(f64, f64, f64, f64)]) -> Self {
        Self::many(&[rows])
    }

    pub(super) fn many(symbols: &[&[(f64, f64, f64, f64)]]) -> Self {
        let mut d = Data {
            ts: vec![],
            o: vec![],
            h: vec![],
            l: vec![],
            c: vec![],
            offsets: vec![0],
        };
        for rows in symbols {
            for (k, &(o, h, l, c)) in rows.iter().enumerate() {
                d.ts.push(k as i64 * MIN);
                d.o.push(o);
                d.h.push(h);
                d.l.push(l);
                d.c.push(c);
            }
            d.offsets.push(d.ts.len());
        }
        d
    }

    pub(super) fn bars(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.o,
            high: &self.h,
            low: &self.l,
            close: &self.c,
            offsets: &self.offsets,
        }
    }

    fn run(&self, orders: &[Order], cfg: &Config) -> Output {
        simulate(self.bars(), orders, cfg).expect("simulation failed")
    }
}

fn flat(n: usize, p: f64) -> Vec<(f64, f64, f64, f64)> {
    vec![(p, p, p, p); n]
}

fn cfg() -> Config {
    Config {
        init_cash: 10_000.0,
        ..Config::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {{
        let (a, b) = ($a as f64, $b as f64);
        assert!(close(a, b), "{} = {a} but expected {b}", stringify!($a));
    }};
}

/// A market order decided just before `ts`, so that a bar opening at `ts` is its first
/// live bar (orders go live on the first bar that opens strictly after the decision).
fn buy(ts: i64, qty: f64) -> Order {
    Order::market(ts - 1, 0, Side::Buy, qty)
}

fn sell(ts: i64, qty: f64) -> Order {
    Order::market(ts - 1, 0, Side::Sell, qty)
}

#[test]
fn market_order_fills_at_the_open_of_the_first_bar_strictly_after_submit_plus_latency() {
    let d = Data::one(&[
        (100., 101., 99., 100.),
        (102., 103., 101., 102.),
        (104., 105., 103., 104.),
    ]);
    // submitted 30 s into bar 0: bar 0 opened before the decision, so bar 1 fills
    let out = d.run(&[buy(30, 1.0)], &cfg());
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.fills[0].ts, MIN);
    assert_close!(out.fills[0].price, 102.0);
    // decided just before a bar opens, it fills at that open
    let out = d.run(&[buy(MIN, 1.0)], &cfg());
    assert_close!(out.fills[0].price, 102.0);
    // decided at exactly a bar's open time, that open may predate the decision: next bar
    let out = d.run(&[Order::market(MIN, 0, Side::Buy, 1.0)], &cfg());
    assert_eq!(out.fills[0].ts, 2 * MIN);
    assert_close!(out.fills[0].price, 104.0);
    // a market-on-close order decided at a bar's open fills at that bar's close
    let mut moc = Order::market(MIN, 0, Side::Buy, 1.0);
    moc.order_type = OrderType::MarketOnClose;
    let out = d.run(&[moc], &cfg());
    assert_eq!(out.fills[0].ts, MIN);
    assert_close!(out.fills[0].price, 102.0);
    let out = d.run(
        &[buy(MIN, 1.0)],
        &Config {
            latency: 1,
            ..cfg()
        },
    );
    assert_eq!(out.fills[0].ts, 2 * MIN);
    assert_close!(out.fills[0].price, 104.0);
}

#[test]
fn order_after_the_last_bar_stays_open() {
    let d = Data::one(&flat(2, 100.));
    let out = d.run(&[buy(10 * MIN, 1.0)], &cfg());
    assert!(out.fills.is_empty());
    assert_eq!(out.orders[0].status, OrderStatus::Open);
    assert_eq!(out.equity.last().unwrap().equity, 10_000.0);
}

#[test]
fn fees_slippage_and_fixed_fees_are_charged_per_fill() {
    let d = Data::one(&[(100., 100., 100., 100.), (110., 110., 110., 110.)]);
    let c = Config {
        fees: 0.001,
        fixed_fees: 2.0,
        slippage: 0.01,
        ..cfg()
    };
    let out = d.run(&[buy(0, 10.0), sell(MIN, 10.0)], &c);
    // buy at 101, fee 10*101*0.001 + 2 = 3.01; sell at 108.9, fee 1.089 + 2 = 3.089
    assert_close!(out.fills[0].price, 101.0);
    assert_close!(out.fills[0].fee, 3.01);
    assert_close!(out.fills[1].price, 108.9);
    assert_close!(out.fills[1].fee, 3.089);
    let t = &out.trades[0];
    assert_close!(t.pnl, 10.0 * (108.9 - 101.0) - 3.01 - 3.089);
    assert_close!(t.fees, 6.099);
    assert_eq!(t.exit_reason, Some(FillReason::Exit));
    assert_close!(out.equity.last().unwrap().equity, 10_000.0 + t.pnl);
}

#[test]
fn limit_buy_fills_at_its_price_or_at_a_better_open() {
    // bar 1 trades down through 95: fill at 95
    let d = Data::one(&[(100., 101., 99., 100.), (100., 100., 94., 96.)]);
    let mut o = buy(0, 1.0);
    o.order_type = OrderType::Limit;
    o.limit_price = Some(95.0);
    let out = d.run(
        &[o.clone()],
        &Config {
            fees: 0.01,
            maker_fees: 0.002,
            ..cfg()
        },
    );
    assert_eq!(out.fills[0].ts, MIN);
    assert_close!(out.fills[0].price, 95.0);
    assert_close!(out.fills[0].fee, 95.0 * 0.002); // maker fee on limit fills
                                                   // gap: bar 1 opens at 90, below the limit: fill at the open
    let d = Data::one(&[(100., 101., 99., 100.), (90., 92., 89., 91.)]);
    let out = d.run(&[o], &cfg());
    assert_close!(out.fills[0].price, 90.0);
}

#[test]
fn stop_orders_fill_at_the_stop_or_the_gapped_open_with_slippage() {
    let d = Data::one(&[
        (100., 101., 99., 100.),
        (100., 106., 99., 105.),
        (110., 111., 109., 110.),
    ]);
    let mut o = buy(0, 1.0);
    o.order_type = OrderType::Stop;
    o.stop_price = Some(105.0);
    let out = d.run(
        &[o.clone()],
        &Config {
            slippage: 0.001,
            ..cfg()
        },
    );
    assert_eq!(out.fills[0].ts, MIN);
    assert_close!(out.fills[0].price, 105.0 * 1.001);
    o.stop_price = Some(108.0);
    let out = d.run(&[o], &cfg());
    assert_eq!(out.fills[0].ts, 2 * MIN);
    assert_close!(out.fills[0].price, 110.0); // gap above the stop: the open
}

#[test]
fn stop_limit_becomes_a_limit_at_its_trigger() {
    // buy stop 105 limit 103: bar opens 106 (triggered by the gap; 106 > 103 so no
    // fill), then trades down to 102: fills at 103
    let d = Data::one(&[(100., 101., 99., 100.), (106., 107., 102., 104.)]);
    let mut o = buy(0, 1.0);
    o.order_type = OrderType::StopLimit;
    o.stop_price = Some(105.0);
    o.limit_price = Some(103.0);
    let out = d.run(&[o.clone()], &cfg());
    assert_close!(out.fills[0].price, 103.0);
    // never comes back to the limit: open at the end
    let d = Data::one(&[(100., 101., 99., 100.), (106., 107., 105.5, 106.)]);
    let out = d.run(&[o], &cfg());
    assert!(out.fills.is_empty());
    assert_eq!(out.orders[0].status, OrderStatus::Open);
}

fn bracket_buy(sl: Option<f64>, tp: Option<f64>) -> Order {
    let mut o = buy(0, 1.0);
    o.stop_loss = sl;
    o.take_profit = tp;
    o
}

#[test]
fn bracket_stop_wins_when_the_path_visits_the_low_first() {
    // entry at 100 (bar 0 open); SL 98, TP 103; bar 1 spans both
    let d = Data::one(&[(100., 100.5, 99.5, 100.), (100., 104., 97., 101.)]);
    for (mode, reason, price) in [
        (Intrabar::Pessimistic, FillReason::StopLoss, 98.0),
        (Intrabar::Olhc, FillReason::StopLoss, 98.0),
        (Intrabar::Ohlc, FillReason::TakeProfit, 103.0),
        // open 100: high 104 is 4 away, low 97 is 3 away: low first
        (Intrabar::NearestFirst, FillReason::StopLoss, 98.0),
    ] {
        let out = d.run(
            &[bracket_buy(Some(0.02), Some(0.03))],
            &Config {
                intrabar: mode,
                ..cfg()
            },
        );
        assert_eq!(out.fills.len(), 2, "{mode:?}");
        assert_eq!(out.fills[1].reason, reason, "{mode:?}");
        assert_close!(out.fills[1].price, price);
        assert_eq!(out.fills[1].order_id, 0);
        assert_eq!(out.trades[0].exit_reason, Some(reason));
    }
}

#[test]
fn bracket_target_wins_and_gaps_fill_at_the_open() {
    let d = Data::one(&[(100., 100.5, 99.5, 100.), (100., 103.5, 99., 103.)]);
    let out = d.run(&[bracket_buy(Some(0.02), Some(0.03))], &cfg());
    assert_eq!(out.fills[1].reason, FillReason::TakeProfit);
    assert_close!(out.fills[1].price, 103.0);
    // gap down through the stop: filled at the open 95, not at 98
    let d = Data::one(&[(100., 100.5, 99.5, 100.), (95., 96., 94., 95.)]);
    let out = d.run(&[bracket_buy(Some(0.02), Some(0.03))], &cfg());
    assert_eq!(out.fills[1].reason, FillReason::StopLoss);
    assert_close!(out.fills[1].price, 95.0);
    assert_close!(out.trades[0].pnl, -5.0);
    assert_close!(out.trades[0].mae, -0.05); // the path ends at the exit: the later low of 94 is not held
}

#[test]
fn bracket_time_exit_closes_at_the_open_of_the_deadline_bar() {
    let rows: Vec<_> = (0..10)
        .map(|k| {
            let p = 100.0 + k as f64;
            (p, p + 0.5, p - 0.5, p)
        })
        .collect();
    let d = Data::one(&rows);
    let mut o = buy(0, 2.0);
    o.exit_after = Some(3 * MIN);
    let out = d.run(&[o], &cfg());
    assert_eq!(out.fills[1].reason, FillReason::TimeExit);
    assert_eq!(out.fills[1].ts, 3 * MIN);
    assert_close!(out.fills[1].price, 103.0);
    assert_close!(out.trades[0].pnl, 6.0);
    // event-sparse: bars after the exit are not visited
    assert_eq!(out.bars_visited, 4);
}

#[test]
fn trailing_stop_follows_the_peak() {
    // long from 100, trail 5%: bar 1 rises to 110 (stop 104.5) then falls to 104
    let d = Data::one(&[(100., 100., 100., 100.), (105., 110., 104., 105.)]);
    let mut o = buy(0, 1.0);
    o.trailing_stop = Some(0.05);
    // ohlc: high first, then the low breaches 104.5
    let out = d.run(
        &[o.clone()],
        &Config {
            intrabar: Intrabar::Ohlc,
            ..cfg()
        },
    );
    assert_eq!(out.fills[1].reason, FillReason::TrailingStop);
    assert_close!(out.fills[1].price, 110.0 * 0.95);
    // olhc: the low 104 comes while the peak is 105 (stop 99.75); after the high
    // the close 105 stays above 104.5: no exit
    let out = d.run(
        &[o],
        &Config {
            intrabar: Intrabar::Olhc,
            ..cfg()
        },
    );
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.trades[0].exit_reason, None);
}

#[test]
fn short_position_pnl_and_bracket_mirror_long() {
    let d = Data::one(&[(100., 100., 100., 100.), (100., 101., 94., 95.)]);
    let mut o = sell(0, 3.0);
    o.take_profit = Some(0.05);
    o.stop_loss = Some(0.02);
    // pessimistic for a short: high first (101 < stop 102), then low 94 hits TP 95
    let out = d.run(&[o], &cfg());
    assert_eq!(out.fills[1].reason, FillReason::TakeProfit);
    assert_eq!(out.fills[1].side, Side::Buy);
    assert_close!(out.fills[1].price, 95.0);
    let t = &out.trades[0];
    assert_eq!(t.direction, -1);
    assert_close!(t.pnl, 15.0);
    assert_close!(t.mae, -0.01);
    assert_close!(t.mfe, 0.05);
    // cash: 10000 + 300 (short) - 285 (cover)
    assert_close!(out.equity.last().unwrap().cash, 10_015.0);
}

#[test]
fn lot_size_rounds_toward_zero_and_rejects_zero() {
    let d = Data::one(&flat(3, 100.));
    let mut o = buy(0, 0.37);
    let out = d.run(
        &[o.clone()],
        &Config {
            lot_size: 0.1,
            ..cfg()
        },
    );
    assert_close!(out.fills[0].qty, 0.3);
    o.qty = 0.05;
    let out = d.run(
        &[o],
        &Config {
            lot_size: 0.1,
            ..cfg()
        },
    );
    assert!(out.fills.is_empty());
    assert_eq!(out.orders[0].status, OrderStatus::Rejected);
    assert_eq!(out.orders[0].reason, StatusReason::ZeroSize);
    assert_eq!(round_to_lot(0.3, 0.1), 0.30000000000000004);
}

#[test]
fn leverage_caps_the_exposure_raising_part() {
    let d = Data::one(&flat(3, 100.));
    // 10k cash, leverage 1, fee 1%: max buy = 10000 / (100 * 1.01)
    let c = Config {
        fees: 0.01,
        ..cfg()
    };
    let out = d.run(&[buy(0, 1000.0)], &c);
    assert_close!(out.fills[0].qty, 10_000.0 / 101.0);
    assert!(out.equity.last().unwrap().cash.abs() < 1e-9);
    // leverage 3: 3 * (10000 - fee) >= q*100 -> q = 30000 / (100 * 1.03)
    let out = d.run(
        &[buy(0, 1000.0)],
        &Config {
            leverage: 3.0,
            ..c.clone()
        },
    );
    assert_close!(out.fills[0].qty, 30_000.0 / 103.0);
    // reducing is never capped; a short counts against the same cap
    let out = d.run(
        &[sell(0, 1000.0)],
        &Config {
            leverage: 2.0,
            ..cfg()
        },
    );
    assert_close!(out.fills[0].qty, 200.0);
    // already at the cap: the next buy is rejected for margin
    let out = d.run(&[buy(0, 100.0), buy(MIN, 1.0)], &cfg());
    assert_eq!(out.orders[1].status, OrderStatus::Rejected);
    assert_eq!(out.orders[1].reason, StatusReason::Margin);
}

#[test]
fn maintenance_margin_liquidates_at_the_solved_price() {
    // 3x long 300 units at 100 with 10k: cash -20000. Equity(p) = 300p - 20000,
    // gross 300p; m = 0.25: 300p - 20000 < 75p  <=>  p < 88.888...
    let d = Data::one(&[
        (100., 100., 100., 100.),
        (99., 99.5, 85., 90.),
        (90., 91., 89., 90.),
    ]);
    let c = Config {
        leverage: 3.0,
        maintenance_margin: 0.25,
        ..cfg()
    };
    let out = d.run(&[buy(0, 300.0)], &c);
    assert_eq!(out.fills.len(), 2);
    assert_eq!(out.fills[1].reason, FillReason::Liquidation);
    assert_eq!(out.fills[1].order_id, -1);
    assert_close!(out.fills[1].price, 20_000.0 / 225.0);
    let eq = out.equity.last().unwrap().equity;
    assert_close!(eq, 300.0 * 20_000.0 / 225.0 - 20_000.0);
    // gap below the level: liquidated at the open
    let d = Data::one(&[(100., 100., 100., 100.), (80., 81., 79., 80.)]);
    let out = d.run(&[buy(0, 300.0)], &c);
    assert_close!(out.fills[1].price, 80.0);
}

#[test]
fn percent_equity_and_target_percent_sizing() {
    let d = Data::one(&[
        (100., 100., 100., 100.),
        (200., 200., 200., 200.),
        (200., 200., 200., 200.),
    ]);
    let mut o = buy(0, 0.5);
    o.size_type = SizeType::PercentEquity;
    let out = d.run(&[o], &cfg());
    assert_close!(out.fills[0].qty, 50.0);
    // target 50% at 100 -> 50 units; at 200 equity is 15000, target 25% -> 18.75 units: sell 31.25
    let mut a = buy(0, 0.5);
    a.size_type = SizeType::TargetPercent;
    let mut b = buy(MIN, 0.25);
    b.size_type = SizeType::TargetPercent;
    let out = d.run(&[a, b], &cfg());
    assert_close!(out.fills[1].qty, 31.25);
    assert_eq!(out.fills[1].side, Side::Sell);
    assert_eq!(out.fills[1].reason, FillReason::Exit);
    let mut notional = buy(0, 2500.0);
    notional.size_type = SizeType::Notional;
    let out = d.run(&[notional], &cfg());
    assert_close!(out.fills[0].qty, 25.0);
}

#[test]
fn ioc_gtd_and_reduce_only() {
    let d = Data::one(&[
        (100., 101., 99., 100.),
        (100., 101., 99., 100.),
        (100., 101., 90., 95.),
    ]);
    let mut lim = buy(0, 1.0);
    lim.order_type = OrderType::Limit;
    lim.limit_price = Some(95.0);
    lim.tif = TimeInForce::Ioc;
    let out = d.run(&[lim.clone()], &cfg());
    assert_eq!(out.orders[0].status, OrderStatus::Cancelled);
    assert_eq!(out.orders[0].status_ts, Some(0));
    lim.tif = TimeInForce::Gtd;
    lim.expire_ts = Some(2 * MIN);
    let out = d.run(&[lim.clone()], &cfg());
    assert_eq!(out.orders[0].status, OrderStatus::Expired);
    assert_eq!(out.orders[0].status_ts, Some(2 * MIN));
    lim.expire_ts = Some(2 * MIN + 1);
    let out = d.run(&[lim], &cfg());
    assert_eq!(out.orders[0].status, OrderStatus::Filled);
    let mut ro = sell(0, 5.0);
    ro.reduce_only = true;
    let out = d.run(&[ro.clone()], &cfg());
    assert_eq!(out.orders[0].status, OrderStatus::Cancelled);
    ro.submit_ts = MIN - 1;
    let out = d.run(&[buy(0, 2.0), ro], &cfg());
    assert_close!(out.fills[1].qty, 2.0); // clipped to the position
    assert_eq!(out.trades.len(), 1);
}

#[test]
fn reversal_closes_then_opens_and_splits_the_fee() {
    let d = Data::one(&[
        (100., 100., 100., 100.),
        (110., 110., 110., 110.),
        (100., 100., 100., 100.),
    ]);
    let c = Config {
        fees: 0.001,
        ..cfg()
    };
    let out = d.run(&[buy(0, 1.0), sell(MIN, 3.0)], &c);
    assert_eq!(out.fills[1].reason, FillReason::Exit);
    let t = &out.trades[0];
    assert_eq!(t.exit_reason, Some(FillReason::Exit));
    assert_close!(t.qty, 1.0);
    assert_close!(t.pnl, 10.0 - 0.1 - 0.33 / 3.0);
    // the remaining short of 2 opened at 110 is open at the end, marked at 100
    let open = &out.trades[1];
    assert_eq!(open.exit_reason, None);
    assert_eq!(open.direction, -1);
    assert_close!(open.pnl, 20.0 - 0.22);
}

#[test]
fn multi_symbol_portfolio_shares_one_cash_balance() {
    let a = vec![
        (100., 100., 100., 100.),
        (110., 110., 110., 110.),
        (110., 110., 110., 110.),
    ];
    let b = vec![
        (50., 50., 50., 50.),
        (50., 50., 50., 50.),
        (40., 40., 40., 40.),
    ];
    let d = Data::many(&[&a, &b]);
    let mut ob = Order::market(0, 1, Side::Buy, 100.0);
    ob.submit_ts = -1;
    let out = d.run(&[buy(0, 50.0), ob], &cfg());
    // 50*100 + 100*50 = 10000 spent; at t=2: 50*110 + 100*40 = 9500
    assert_eq!(out.equity.last().unwrap().ts, 2 * MIN);
    assert_close!(out.equity.last().unwrap().equity, 9_500.0);
    assert_close!(out.equity.last().unwrap().gross_exposure, 9_500.0);
}

#[test]
fn market_on_close_fills_at_the_close_and_arms_the_bracket_from_the_next_bar() {
    let d = Data::one(&[(100., 105., 90., 100.), (100., 101., 97., 99.)]);
    let mut o = buy(0, 1.0);
    o.order_type = OrderType::MarketOnClose;
    o.stop_loss = Some(0.02);
    let out = d.run(&[o], &cfg());
    assert_close!(out.fills[0].price, 100.0);
    assert_eq!(out.fills[1].ts, MIN); // the 90 low of bar 0 does not stop it out
    assert_close!(out.fills[1].price, 98.0);
}

#[test]
fn idle_bars_are_not_visited() {
    let n = 100_000;
    let d = Data::one(&flat(n, 100.));
    let mut o = buy(50_000 * MIN, 1.0);
    o.exit_after = Some(60 * MIN);
    let out = d.run(&[o], &cfg());
    assert_eq!(out.bars_visited, 61);
    assert_eq!(out.equity.first().unwrap().ts, 0);
    assert_eq!(out.equity.last().unwrap().ts, (n as i64 - 1) * MIN);
}

#[test]
fn simulate_many_is_identical_on_any_thread_count() {
    let rows: Vec<_> = (0..500)
        .map(|k| {
            let p = 100.0 + ((k * 37) % 11) as f64 - 5.0;
            (p, p + 2.0, p - 2.0, p + 0.5)
        })
        .collect();
    let d = Data::one(&rows);
    let orders: Vec<Vec<Order>> = (0..16)
        .map(|j| {
            (0..20)
                .map(|k| {
                    let mut o = buy((k * 20 + j) as i64 * MIN, 1.0 + j as f64);
                    o.stop_loss = Some(0.01 + 0.001 * j as f64);
                    o.take_profit = Some(0.015);
                    o.exit_after = Some(10 * MIN);
                    o
                })
                .collect()
        })
        .collect();
    let c = Config {
        fees: 0.0005,
        ..cfg()
    };
    let jobs: Vec<Job> = orders
        .iter()
        .map(|o| Job {
            orders: o,
            config: &c,
        })
        .collect();
    let one = simulate_many(d.bars(), &jobs, 1, BarCheck::Full);
    let four = simulate_many(d.bars(), &jobs, 4, BarCheck::Trusted);
    assert_eq!(one, four);
    assert!(one
        .iter()
        .all(|r| r.as_ref().map(|o| !o.fills.is_empty()).unwrap_or(false)));
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let d = Data::one(&[(100., 99., 101., 100.)]);
    let err = simulate(d.bars(), &[], &cfg()).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::InvalidInput {
                column: "high",
                row: 0,
                ..
            }
        ),
        "{err}"
    );
    let d = Data::one(&flat(2, 100.));
    let mut o = buy(0, 1.0);
    o.order_type = OrderType::Limit;
    let err = simulate(d.bars(), &[o], &cfg()).unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidInput {
            column: "limit_price",
            row: 0,
            ..
        }
    ));
    let err = simulate(d.bars(), &[Order::market(0, 3, Side::Buy, 1.0)], &cfg()).unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidInput {
            column: "symbol",
            ..
        }
    ));
    let err = simulate(
        d.bars(),
        &[],
        &Config {
            leverage: 0.0,
            ..cfg()
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidConfig {
            field: "leverage",
            ..
        }
    ));
    let mut unsorted = Data::one(&flat(3, 100.));
    unsorted.ts[2] = 0;
    let err = simulate(unsorted.bars(), &[], &cfg()).unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidInput {
            column: "ts",
            row: 2,
            ..
        }
    ));
}

#[test]
fn close_at_end_books_the_open_position() {
    let d = Data::one(&[(100., 100., 100., 100.), (120., 120., 120., 120.)]);
    let out = d.run(
        &[buy(0, 1.0)],
        &Config {
            close_at_end: true,
            fees: 0.001,
            ..cfg()
        },
    );
    assert_eq!(out.fills[1].reason, FillReason::EndOfData);
    assert_eq!(out.trades.len(), 1);
    assert_eq!(out.trades[0].exit_reason, Some(FillReason::EndOfData));
    assert_close!(
        out.equity.last().unwrap().equity,
        10_000.0 + 20.0 - 0.1 - 0.12
    );
    assert_close!(out.equity.last().unwrap().gross_exposure, 0.0);
}

#[test]
fn regression_no_orders_with_close_at_end_still_records_first_and_last_rows() {
    let d = Data::one(&flat(3, 100.));
    let out = d.run(
        &[],
        &Config {
            close_at_end: true,
            ..cfg()
        },
    );
    let ts: Vec<i64> = out.equity.iter().map(|r| r.ts).collect();
    assert_eq!(ts, vec![0, 2 * MIN]);
}

#[test]
fn regression_target_percent_slips_by_the_traded_side() {
    // short 10 at 100; a 'sell' target of 0% covers it: a buy, so it pays the slippage
    let d = Data::one(&[(100., 100., 100., 100.), (100., 101., 99., 100.)]);
    let mut cover = sell(MIN, 0.0);
    cover.size_type = SizeType::TargetPercent;
    let out = d.run(
        &[sell(0, 10.0), cover],
        &Config {
            slippage: 0.01,
            ..cfg()
        },
    );
    assert_eq!(out.fills[1].side, Side::Buy);
    assert_close!(out.fills[1].price, 101.0);
    assert_close!(out.fills[1].qty, 10.0);
}

#[test]
fn floor_div_is_pythons_float_floor_division() {
    // 0.1 is a little more than 1/10: Python's 1.0 // 0.1 is 9.0 while 1.0 / 0.1 rounds to 10
    assert_eq!(floor_div(1.0, 0.1), 9.0);
    assert_eq!((1.0f64 / 0.1).floor(), 10.0);
    assert_eq!(floor_div(10_000.0, 100.0), 100.0);
    assert_eq!(floor_div(99.0, 100.0), 0.0);
}

#[test]
fn percent_available_buys_whole_units_with_the_fee_reserved() {
    let d = Data::one(&[(100., 100., 100., 100.), (100., 100., 100., 100.)]);
    let mut c = cfg();
    c.init_cash = 10_000.0;
    c.fees = 0.002;
    let mut o = buy(0, 0.5);
    o.size_type = SizeType::PercentAvailable;
    // 5,000 buys floor(5000 / (100 + 0.2)) = 49 units, not 50
    let out = d.run(&[o.clone()], &c);
    assert_eq!(out.fills[0].qty, 49.0);
    // a fixed fee counts per unit as fee / qty, as backtesting.py's size rule does
    c.fixed_fees = 5.0;
    let out = d.run(&[o.clone()], &c);
    assert_eq!(
        out.fills[0].qty,
        floor_div(5_000.0, 100.0 + (5.0 + 0.5 * 100.0 * 0.002) / 0.5)
    );
    // margin held by an open position is not available
    c.fixed_fees = 0.0;
    c.fees = 0.0;
    let mut half = buy(0, 40.0);
    half.size_type = SizeType::Units;
    let out = d.run(&[half, o.clone()], &c);
    assert_eq!(out.fills[1].qty, 30.0); // (10,000 - 4,000) * 0.5 / 100
                                        // nothing available: rejected for size
    o.qty = 0.001;
    let out = d.run(&[o], &c);
    assert_eq!(out.orders[0].status, OrderStatus::Rejected);
}

#[test]
fn allow_partial_false_rejects_what_the_cap_would_shrink() {
    let d = Data::one(&[(100., 100., 100., 100.), (100., 100., 100., 100.)]);
    let mut c = cfg(); // 10,000 cash: 100 units at most
    let too_many = buy(0, 150.0);
    let out = d.run(&[too_many.clone()], &c);
    assert_eq!(out.fills[0].qty, 100.0);
    c.allow_partial = false;
    let out = d.run(&[too_many, buy(0, 60.0)], &c);
    assert_eq!(out.orders[0].status, OrderStatus::Rejected);
    assert_eq!(out.orders[0].reason, StatusReason::Margin);
    assert_eq!(out.fills.len(), 1);
    assert_eq!(out.fills[0].qty, 60.0);
}
