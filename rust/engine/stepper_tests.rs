//! A run fed in stretches of time equals one pass over all the bars.

use super::tests::Data;
use super::*;

/// xorshift: deterministic data without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random-walk bars; symbol `s` starts at bar `s * 3`, ends `s * 5` bars early and
/// skips every 7th bar (so stretches hold different symbols in different amounts).
fn data(rng: &mut Rng, n_symbols: usize, n: usize) -> Data {
    let mut d = Data::many(&[]);
    for s in 0..n_symbols {
        let mut p = 100.0 + 10.0 * s as f64;
        for k in (s * 3)..(n - s * 5) {
            if s > 0 && k % 7 == 0 {
                continue;
            }
            let o = p;
            let c = p * (1.0 + 0.01 * (rng.next() - 0.5));
            let h = o.max(c) * (1.0 + 0.005 * rng.next());
            let l = o.min(c) * (1.0 - 0.005 * rng.next());
            d.ts.push(k as i64 * 60);
            d.o.push(o);
            d.h.push(h);
            d.l.push(l);
            d.c.push(c);
            p = c;
        }
        d.offsets.push(d.ts.len());
    }
    d
}

fn orders(rng: &mut Rng, n_symbols: usize, n: usize, count: usize) -> Vec<Order> {
    (0..count)
        .map(|_| {
            let s = (rng.next() * n_symbols as f64) as usize;
            let ts = (rng.next() * n as f64) as i64 * 60 + 30;
            let side = if rng.next() < 0.5 {
                Side::Buy
            } else {
                Side::Sell
            };
            let mut o = Order::market(ts, s, side, 0.1 + rng.next());
            match (rng.next() * 5.0) as u32 {
                0 => {
                    o.order_type = OrderType::Limit;
                    o.limit_price = Some(100.0 + 10.0 * s as f64 * (0.98 + 0.04 * rng.next()));
                }
                1 => {
                    o.order_type = OrderType::Stop;
                    o.stop_price = Some(100.0 + 10.0 * s as f64 * (0.98 + 0.04 * rng.next()));
                    o.tif = TimeInForce::Gtd;
                    o.expire_ts = Some(ts + 600);
                }
                2 => o.order_type = OrderType::MarketOnClose,
                3 => {
                    o.size_type = SizeType::PercentEquity;
                    o.qty = 0.2 * rng.next() + 0.01;
                }
                _ => {}
            }
            if rng.next() < 0.6 {
                o.stop_loss = Some(0.002 + 0.01 * rng.next());
                o.take_profit = Some(0.002 + 0.01 * rng.next());
                o.trailing_stop = if rng.next() < 0.5 { Some(0.004) } else { None };
                o.exit_after = Some(60 * (1 + (rng.next() * 40.0) as i64));
            }
            o
        })
        .collect()
}

/// The rows of `d` with `lo <= ts < hi`, every symbol kept (possibly empty).
fn stretch(d: &Data, lo: i64, hi: i64) -> (Data, Vec<bool>) {
    let mut out = Data::many(&[]);
    let mut ends = vec![];
    for s in 0..d.offsets.len() - 1 {
        let r = d.offsets[s]..d.offsets[s + 1];
        for i in r.clone() {
            if d.ts[i] >= lo && d.ts[i] < hi {
                out.ts.push(d.ts[i]);
                out.o.push(d.o[i]);
                out.h.push(d.h[i]);
                out.l.push(d.l[i]);
                out.c.push(d.c[i]);
            }
        }
        ends.push(!r.is_empty() && d.ts[r.end - 1] >= lo && d.ts[r.end - 1] < hi);
        out.offsets.push(out.ts.len());
    }
    (out, ends)
}

fn stepped(
    d: &Data,
    orders: &[Order],
    cfg: &Config,
    cuts: &[i64],
    spec: Option<StatsSpec>,
) -> (Output, Option<Stats>) {
    let n_symbols = d.offsets.len() - 1;
    let mut st = Stepper::new(orders.to_vec(), cfg.clone(), n_symbols, spec, true).unwrap();
    let mut equity = vec![];
    let mut bounds = vec![i64::MIN];
    bounds.extend_from_slice(cuts);
    bounds.push(i64::MAX);
    for w in bounds.windows(2) {
        let (part, ends) = stretch(d, w[0], w[1]);
        st.feed(part.bars(), &ends).unwrap();
        equity.extend(st.take_equity());
    }
    let (mut out, stats) = st.finish().unwrap();
    equity.append(&mut out.equity);
    out.equity = equity;
    (out, stats)
}

#[test]
fn stretches_of_any_length_equal_one_pass() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..40 {
        let (n_symbols, n) = (1 + case % 3, 300);
        let d = data(&mut rng, n_symbols, n);
        let os = orders(&mut rng, n_symbols, n, 40);
        let cfg = Config {
            fees: 0.0005,
            slippage: 0.0002,
            leverage: 2.0,
            maintenance_margin: if case % 4 == 0 { 0.3 } else { 0.0 },
            close_at_end: case % 2 == 0,
            latency: 5,
            ..Config::default()
        };
        let whole = simulate(d.bars(), &os, &cfg).unwrap();
        let spec = StatsSpec {
            day: 3600,
            periods_per_year: 365.0,
        };
        // a stream keeps no rows: the figures of the sweep rows' second pass stay None
        let want_stats = Stats {
            calmar: None,
            alpha: None,
            beta: None,
            avg_drawdown: None,
            max_drawdown_duration: None,
            avg_drawdown_duration: None,
            ..simulate_stats(d.bars(), &os, &cfg, spec).unwrap()
        };
        let step = 1 + (rng.next() * 50.0) as i64;
        let cuts: Vec<i64> = (1..n as i64 / step).map(|k| k * step * 60).collect();
        let (got, stats) = stepped(&d, &os, &cfg, &cuts, Some(spec));
        assert_eq!(got, whole, "case {case}, stretches of {step} bars");
        assert_eq!(stats, Some(want_stats), "case {case}");
        assert!(!whole.fills.is_empty());
    }
}

#[test]
fn a_stretch_that_does_not_start_after_the_last_is_an_error() {
    let mut rng = Rng(7);
    let d = data(&mut rng, 1, 50);
    let mut st = Stepper::new(vec![], Config::default(), 1, None, false).unwrap();
    let (a, ends) = stretch(&d, 0, 20 * 60);
    st.feed(a.bars(), &ends).unwrap();
    let (b, ends) = stretch(&d, 19 * 60, 40 * 60);
    assert!(matches!(
        st.feed(b.bars(), &ends),
        Err(EngineError::InvalidInput { column: "ts", .. })
    ));
}
