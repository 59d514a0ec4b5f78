//! A bounded, deterministic fuzz of the engine's public entry points from raw bytes.
//!
//! A small generator (SplitMix64) produces byte strings; `Decoder` turns any byte
//! string into bars, orders, a config and signal masks (reading past the end gives
//! zeros, so every string decodes), mostly plausible values with hostile ones mixed
//! in: subnormal, huge, zero, negative, NaN and infinite prices and settings, equal or
//! decreasing timestamps, times near the ends of i64, orders on missing symbols.
//! Every entry point must then return without panicking, in bounded time, and every
//! number of an accepted run must be finite (inputs the engine accepts are finite).
//!
//! `cargo test fuzz` runs `DEFAULT_CASES` cases in a few seconds;
//! `AFTERSHOCK_FUZZ_CASES=200000 cargo test --release fuzz -- --nocapture` runs more,
//! and `AFTERSHOCK_FUZZ_SEED` starts elsewhere. A failure names the case's seed.

use super::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const DEFAULT_CASES: u64 = 3_000;
/// Far more than any case needs (bars and orders are few): a case this slow hangs.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// SplitMix64: a tiny, well-mixed deterministic generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The raw bytes of one case: 16 to 2063 of them.
fn case_bytes(seed: u64) -> Vec<u8> {
    let mut gen = SplitMix(seed);
    let len = 16 + (gen.next() % 2048) as usize;
    gen.bytes(len)
}

/// Typed values read from raw bytes.
struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    /// How often (out of 256) a setting is hostile; 0 for a clean case.
    hostility: u8,
}

const SPECIAL: [f64; 16] = [
    0.0,
    -0.0,
    5e-324,
    f64::MIN_POSITIVE,
    1e-300,
    1e-9,
    0.5,
    1.0,
    -1.0,
    1e9,
    1e300,
    f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -f64::NAN,
];

impl<'a> Decoder<'a> {
    fn new(data: &'a [u8]) -> Self {
        Decoder {
            data,
            pos: 0,
            hostility: 0,
        }
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | self.u8() as u64)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (((self.u8() as usize) << 8) | self.u8() as usize) % n
        }
    }

    /// In a hostile case, true with probability about `k / 256`; never in a clean one.
    fn flaw(&mut self, k: u8) -> bool {
        let roll = self.u8();
        self.hostility > 0 && roll < k
    }

    /// Mostly `usual`, in a hostile case sometimes one of `odd` (values to refuse).
    fn pick_or<T: Copy>(&mut self, usual: &[T], odd: &[T]) -> T {
        if self.flaw(40) {
            self.pick(odd)
        } else {
            self.pick(usual)
        }
    }

    /// True with probability about `k / 256`.
    fn chance(&mut self, k: u8) -> bool {
        self.u8() < k
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }

    /// A hostile float: one of `SPECIAL`, or any bit pattern.
    fn hostile(&mut self) -> f64 {
        if self.chance(128) {
            self.pick(&SPECIAL)
        } else {
            f64::from_bits(self.u64())
        }
    }

    /// Mostly one of `usual`, sometimes hostile.
    fn float(&mut self, usual: &[f64]) -> f64 {
        if self.hostility > 0 && self.chance(self.hostility) {
            self.hostile()
        } else {
            self.pick(usual)
        }
    }

    /// A multiplicative step in about [0.9, 1.1].
    fn wiggle(&mut self) -> f64 {
        1.0 + (self.u8() as f64 - 127.5) / 1275.0
    }
}

struct Case {
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    offsets: Vec<usize>,
    orders: Vec<Order>,
    config: Config,
    signal_config: SignalConfig,
    masks: [Vec<u8>; 4],
    periods_per_year: f64,
}

impl Case {
    fn bars(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            offsets: &self.offsets,
        }
    }

    /// The first symbol's bars with the signal masks.
    fn signal_input(&self) -> SignalInput<'_> {
        let r = self.offsets[0]..self.offsets[1];
        let n = r.len();
        SignalInput {
            ts: &self.ts[r.clone()],
            open: &self.open[r.clone()],
            high: &self.high[r.clone()],
            low: &self.low[r.clone()],
            close: &self.close[r],
            long_entries: &self.masks[0][..n.min(self.masks[0].len())],
            long_exits: &self.masks[1][..n.min(self.masks[1].len())],
            short_entries: &self.masks[2][..n.min(self.masks[2].len())],
            short_exits: &self.masks[3][..n.min(self.masks[3].len())],
            per_bar: Default::default(),
        }
    }
}

fn decode(bytes: &[u8]) -> Case {
    let mut d = Decoder::new(bytes);
    d.hostility = if d.chance(128) { 0 } else { 24 };
    let mut case = Case {
        ts: vec![],
        open: vec![],
        high: vec![],
        low: vec![],
        close: vec![],
        offsets: vec![0],
        orders: vec![],
        config: Config::default(),
        signal_config: SignalConfig::default(),
        masks: [vec![], vec![], vec![], vec![]],
        periods_per_year: 365.0,
    };
    let n_symbols = 1 + d.below(3);
    for _ in 0..n_symbols {
        let n = d.below(40);
        let mut t: i64 = d.pick(&[
            0,
            1_736_899_200_000_000,
            -86_400_000_000,
            i64::MAX - 1_000,
            i64::MIN + 1,
        ]);
        let step: i64 = d.pick(&[60_000_000, 60_000_000, 300_000_000, 1, 86_400_000_000]);
        let mut p = if d.hostility > 0 {
            d.pick(&[100.0, 0.01, 1e-250, 1e250, 30_000.0])
        } else {
            d.pick(&[100.0, 100.0, 0.01, 1e-6, 1e6, 30_000.0])
        };
        for _ in 0..n {
            case.ts.push(t);
            let gap = if d.flaw(8) {
                d.pick(&[0, -step, i64::MAX / 2])
            } else {
                step * (1 + d.below(3) as i64)
            };
            t = t.saturating_add(gap);
            let o = p * d.wiggle();
            let c = o * d.wiggle();
            let (mut h, mut l) = (
                o.max(c) * (1.0 + d.u8() as f64 / 5000.0),
                o.min(c) * (1.0 - d.u8() as f64 / 5000.0),
            );
            let (mut o, mut c) = (o, c);
            if d.flaw(6) {
                match d.below(5) {
                    0 => o = d.hostile(),
                    1 => h = d.hostile(),
                    2 => l = d.hostile(),
                    3 => c = d.hostile(),
                    _ => std::mem::swap(&mut h, &mut l),
                }
            }
            case.open.push(o);
            case.high.push(h);
            case.low.push(l);
            case.close.push(c);
            p = c;
        }
        case.offsets.push(case.ts.len());
    }
    if d.flaw(10) {
        // a shape error: one column too short or offsets out of order
        match d.below(3) {
            0 => {
                case.close.pop();
            }
            1 => case.offsets.reverse(),
            _ => {
                let last = case.offsets.len() - 1;
                case.offsets[last] += 1;
            }
        }
    }

    let times: Vec<i64> = case.ts.clone();
    let n_orders = d.below(12);
    for _ in 0..n_orders {
        let symbol = if d.flaw(4) {
            n_symbols + d.below(3)
        } else {
            d.below(n_symbols)
        };
        let anchor = if times.is_empty() {
            0
        } else {
            times[d.below(times.len())]
        };
        let submit_ts = if d.chance(10) {
            d.u64() as i64
        } else {
            anchor.saturating_add(d.pick(&[-1, 0, 0, 1, 30_000_000, -30_000_000]))
        };
        let size_type = d.pick(SizeType::ALL);
        let qty = match size_type {
            SizeType::Units => d.float(&[0.5, 1.0, 10.0, 1_000.0]),
            SizeType::Notional => d.float(&[100.0, 5_000.0, 1e6]),
            SizeType::PercentEquity | SizeType::PercentAvailable => d.float(&[0.1, 0.5, 1.0, 3.0]),
            SizeType::TargetPercent => d.float(&[0.0, 0.3, 1.0]),
        };
        let order_type = d.pick(OrderType::ALL);
        let reference = times
            .iter()
            .position(|&t| t == anchor)
            .and_then(|i| case.close.get(i).copied())
            .unwrap_or(100.0);
        let price = |d: &mut Decoder, needed: bool| {
            if needed != d.flaw(6) {
                Some(d.float(&[
                    reference * 0.98,
                    reference,
                    reference * 1.02,
                    reference * 1.2,
                ]))
            } else {
                None
            }
        };
        let limit_price = price(
            &mut d,
            matches!(order_type, OrderType::Limit | OrderType::StopLimit),
        );
        let stop_price = price(
            &mut d,
            matches!(order_type, OrderType::Stop | OrderType::StopLimit),
        );
        let tif = d.pick(TimeInForce::ALL);
        let expire_ts = if (tif == TimeInForce::Gtd) != d.flaw(6) {
            Some(
                submit_ts.saturating_add(d.pick_or(&[60_000_000, 600_000_000, i64::MAX], &[0, -1])),
            )
        } else {
            None
        };
        let reduce_only = d.chance(40);
        // a reduce-only order with a bracket is refused: only hostile cases try it
        let brackets = !reduce_only || d.flaw(128);
        let bracket = |d: &mut Decoder, usual: &[f64]| {
            if brackets && d.chance(70) {
                Some(d.float(usual))
            } else {
                None
            }
        };
        let stop_loss = bracket(&mut d, &[0.01, 0.05, 0.5]);
        let take_profit = bracket(&mut d, &[0.01, 0.1, 3.0]);
        let trailing_stop = bracket(&mut d, &[0.01, 0.03, 0.9]);
        let exit_after = if brackets && d.chance(60) {
            Some(d.pick_or(&[60_000_000, 600_000_000, 1, i64::MAX], &[0, -5]))
        } else {
            None
        };
        case.orders.push(Order {
            submit_ts,
            symbol,
            side: d.pick(Side::ALL),
            qty,
            size_type,
            order_type,
            limit_price,
            stop_price,
            tif,
            expire_ts,
            reduce_only,
            stop_loss,
            take_profit,
            trailing_stop,
            exit_after,
        });
    }

    case.config = Config {
        init_cash: d.float(&[1.0, 1_000.0, 100_000.0, 1e12]),
        fees: d.float(&[0.0, 0.0, 1e-4, 0.01, 0.5]),
        maker_fees: d.float(&[0.0, 1e-4, 0.9]),
        fixed_fees: d.float(&[0.0, 0.0, 1.0, 1e6]),
        slippage: d.float(&[0.0, 0.0, 0.001, 0.5, 0.999]),
        latency: d.pick_or(&[0, 0, 1, 30_000_000, i64::MAX / 2], &[-1, i64::MIN]),
        lot_size: d.float(&[0.0, 0.0, 0.01, 1.0, 1e-9]),
        leverage: d.float(&[1.0, 1.0, 2.0, 10.0, 1e-6]),
        intrabar: d.pick(Intrabar::ALL),
        maintenance_margin: d.float(&[0.0, 0.0, 0.1, 0.5, 0.99]),
        close_at_end: d.chance(128),
        allow_partial: !d.chance(64),
    };
    case.periods_per_year = d.float(&[365.0, 252.0, 1.0]);

    let n0 = case.offsets.get(1).copied().unwrap_or(0).min(case.ts.len());
    for mask in case.masks.iter_mut() {
        let density = d.u8();
        *mask = (0..n0).map(|_| (d.u8() < density / 4) as u8).collect();
        if d.flaw(3) {
            mask.push(1); // a mask longer than the bars
        }
    }
    let price = d.pick(SignalPrice::ALL);
    case.signal_config = SignalConfig {
        init_cash: d.float(&[0.0, 100.0, 100_000.0, 1e12]),
        size: d.float(&[f64::INFINITY, 1.0, 0.5, 1_000.0]),
        size_type: d.pick(SignalSize::ALL),
        fees: d.float(&[0.0, 0.001, -0.001, 0.5]),
        fixed_fees: d.float(&[0.0, 1.0, -1.0]),
        slippage: d.float(&[0.0, 0.001, 0.5]),
        min_size: d.float(&[1e-8, 0.0, 1.0]),
        max_size: d.float(&[f64::INFINITY, 10.0, 0.5]),
        size_granularity: d.float(&[f64::NAN, 1.0, 0.001]),
        sl_stop: d.float(&[f64::NAN, 0.01, 0.1, 5.0, f64::INFINITY]),
        sl_trail: d.chance(64),
        tp_stop: d.float(&[f64::NAN, 0.01, 0.2, f64::INFINITY]),
        accumulate: d.pick(Accumulate::ALL),
        upon_long_conflict: d.pick(ConflictMode::ALL),
        upon_short_conflict: d.pick(ConflictMode::ALL),
        upon_dir_conflict: d.pick(DirConflictMode::ALL),
        upon_opposite_entry: d.pick(OppositeEntryMode::ALL),
        stop_entry_price: if price == SignalPrice::Close {
            d.pick(StopEntryPrice::ALL)
        } else {
            d.pick(&[
                StopEntryPrice::ValPrice,
                StopEntryPrice::Price,
                StopEntryPrice::FillPrice,
                StopEntryPrice::Close,
            ])
        },
        stop_exit_price: d.pick(StopExitPrice::ALL),
        upon_stop_exit: d.pick(StopExitMode::ALL),
        upon_stop_update: d.pick(StopUpdateMode::ALL),
        price,
        val_price: d.float(&[f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, 100.0]),
        ffill_val_price: !d.chance(64),
        allow_partial: !d.chance(64),
        raise_reject: d.chance(32),
    };
    case
}

// ------------------------------------------------------------------------ the checks

fn finite(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} is {v}"))
    }
}

fn check_output(out: &Output) -> Result<(), String> {
    for (i, f) in out.fills.iter().enumerate() {
        finite(&format!("fill {i} qty"), f.qty)?;
        finite(&format!("fill {i} price"), f.price)?;
        finite(&format!("fill {i} fee"), f.fee)?;
    }
    for (i, t) in out.trades.iter().enumerate() {
        for (name, v) in [
            ("entry_price", t.entry_price),
            ("exit_price", t.exit_price),
            ("qty", t.qty),
            ("pnl", t.pnl),
            ("return", t.ret),
            ("fees", t.fees),
            ("mae", t.mae),
            ("mfe", t.mfe),
        ] {
            finite(&format!("trade {i} {name}"), v)?;
        }
    }
    for (i, e) in out.equity.iter().enumerate() {
        finite(&format!("equity row {i} cash"), e.cash)?;
        finite(&format!("equity row {i} equity"), e.equity)?;
        finite(&format!("equity row {i} gross_exposure"), e.gross_exposure)?;
    }
    for (i, o) in out.orders.iter().enumerate() {
        finite(&format!("order {i} filled_qty"), o.filled_qty)?;
    }
    Ok(())
}

fn check_stats(s: &Stats) -> Result<(), String> {
    // documented: with init_cash 0 (vectorbt allows it) the ratios to it are NaN
    let no_cash = s.init_cash == 0.0;
    for (name, v) in [
        ("init_cash", Some(s.init_cash)),
        ("final_equity", Some(s.final_equity)),
        ("total_return", Some(s.total_return)),
        ("max_drawdown", Some(s.max_drawdown)),
        ("sharpe", s.sharpe),
        ("win_rate", s.win_rate),
        ("avg_trade_return", s.avg_trade_return),
        ("profit_factor", s.profit_factor),
        ("total_fees", Some(s.total_fees)),
        ("exposure", Some(s.exposure)),
    ] {
        if let Some(v) = v {
            if no_cash && v.is_nan() && matches!(name, "total_return" | "max_drawdown") {
                continue;
            }
            finite(&format!("stats {name}"), v)?;
        }
    }
    Ok(())
}

/// Magnitudes the engine promises finite figures for: 0, or within 1e±100. Beyond,
/// products and ratios of finite inputs may overflow (IEEE gives ±inf): the fuzz then
/// checks only that nothing panics or hangs.
fn sane(v: f64) -> bool {
    v == 0.0 || (1e-100..=1e100).contains(&v.abs())
}

fn order_inputs(case: &Case) -> Vec<f64> {
    let mut v: Vec<f64> = [&case.open, &case.high, &case.low, &case.close]
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect();
    for o in &case.orders {
        v.push(o.qty);
        v.extend(
            [
                o.limit_price,
                o.stop_price,
                o.stop_loss,
                o.take_profit,
                o.trailing_stop,
            ]
            .into_iter()
            .flatten(),
        );
    }
    let c = &case.config;
    v.extend([
        c.init_cash,
        c.fees,
        c.maker_fees,
        c.fixed_fees,
        c.slippage,
        c.lot_size,
        c.leverage,
        c.maintenance_margin,
    ]);
    v
}

/// The signal settings' numbers, less the non-finite values that mean something
/// (size and max_size inf: no limit; NaN stops and granularity: none; inf stops: never).
fn signal_inputs(case: &Case, inp: &SignalInput<'_>) -> Vec<f64> {
    let mut v: Vec<f64> = [inp.open, inp.high, inp.low, inp.close]
        .iter()
        .flat_map(|c| c.iter().copied())
        .collect();
    let c = &case.signal_config;
    v.extend([c.init_cash, c.fees, c.fixed_fees, c.slippage, c.min_size]);
    for (x, inf_ok, nan_ok) in [
        (c.size, true, false),
        (c.max_size, true, false),
        (c.size_granularity, false, true),
        (c.sl_stop, true, true),
        (c.tp_stop, true, true),
    ] {
        if !((inf_ok && x == f64::INFINITY) || (nan_ok && x.is_nan())) {
            v.push(x);
        }
    }
    v
}

/// Equal to the last bit, NaN included (Debug prints floats round-trip exactly).
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Runs every entry point on one case. Err: what broke.
fn run_case(case: &Case, counts: &Counts) -> Result<(), String> {
    let bars = case.bars();
    let checked = simulate(bars, &case.orders, &case.config);
    // never a panic, even on bars that break the contract `simulate_validated` trusts
    let trusted = simulate_validated(bars, &case.orders, &case.config);
    if let Ok(out) = &checked {
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        let inputs = order_inputs(case);
        if let Some(x) = inputs.iter().find(|x| !x.is_finite()) {
            return Err(format!("simulate accepted a non-finite input {x}"));
        }
        let in_range = inputs.iter().all(|&x| sane(x));
        if in_range {
            counts.checked.fetch_add(1, Ordering::Relaxed);
            check_output(out)?;
        }
        if !same(&trusted.as_ref(), &Ok(out)) {
            return Err("simulate_validated differs from simulate on valid bars".into());
        }
        let job = Job {
            orders: &case.orders,
            config: &case.config,
        };
        let many = simulate_many(
            bars,
            &[
                job,
                Job {
                    orders: &case.orders,
                    config: &case.config,
                },
            ],
            2,
            BarCheck::Full,
        );
        if many.iter().any(|r| !same(&r.as_ref(), &Ok(out))) {
            return Err("simulate_many on 2 threads differs from simulate".into());
        }
        let spec = StatsSpec {
            day: 86_400_000_000,
            periods_per_year: case.periods_per_year,
        };
        let (start, end) = bars.time_span().unwrap_or((0, 0));
        let spans_too_long =
            (end as i128 - start as i128) / spec.day as i128 > super::metrics::MAX_DAYS as i128;
        if spans_too_long {
            if simulate_stats(bars, &case.orders, &case.config, spec).is_ok() {
                return Err("simulate_stats accepted bars spanning too many days".into());
            }
        } else if case.periods_per_year.is_finite() && case.periods_per_year > 0.0 {
            let stats = simulate_stats(bars, &case.orders, &case.config, spec)
                .map_err(|e| format!("stats: {e:?}"))?;
            if in_range {
                check_stats(&stats)?;
            }
            let swept = simulate_many_stats(
                bars,
                &[Job {
                    orders: &case.orders,
                    config: &case.config,
                }],
                2,
                BarCheck::Full,
                spec,
            );
            if !same(&swept.first().map(|r| r.as_ref()), &Some(Ok(&stats))) {
                return Err("simulate_many_stats differs from simulate_stats".into());
            }
        }
    }

    if case.offsets.len() >= 2
        && case.offsets[0] <= case.offsets[1]
        && case.offsets[1] <= case.ts.len()
        && case.offsets[1] <= case.close.len()
    {
        let inp = case.signal_input();
        let one_symbol = Bars {
            ts: inp.ts,
            open: inp.open,
            high: inp.high,
            low: inp.low,
            close: inp.close,
            offsets: &[0, inp.ts.len()],
        };
        // the signal simulator trusts its bars (the binding validates them first)
        let valid_bars = one_symbol.validate().is_ok();
        let full = simulate_signals(inp, &case.signal_config, true);
        let lean = simulate_signals(inp, &case.signal_config, false);
        let stats = signal_stats(inp, &case.signal_config);
        let many = simulate_signals_many(
            inp,
            &[case.signal_config.clone(), case.signal_config.clone()],
            2,
        );
        let inputs = signal_inputs(case, &inp);
        // slippage >= 1 (vectorbt accepts it) sells at a price <= 0: a short entered at 0
        // has an infinite return, as vectorbt's own trade records refuse to compute
        let in_range = inputs.iter().all(|&x| sane(x)) && case.signal_config.slippage < 1.0;
        if valid_bars && case.signal_config.validate().is_ok() {
            if let Some(x) = inputs.iter().find(|x| !x.is_finite()) {
                return Err(format!(
                    "signals: the config accepted a non-finite setting {x}"
                ));
            }
            if let Ok(out) = &full {
                counts.signals_accepted.fetch_add(1, Ordering::Relaxed);
                if in_range {
                    counts.signals_checked.fetch_add(1, Ordering::Relaxed);
                    check_output(out).map_err(|e| format!("signals: {e}"))?;
                }
                if !same(
                    &lean.as_ref().map(|o| (&o.fills, &o.trades)),
                    &Ok((&out.fills, &out.trades)),
                ) {
                    return Err("signal fills differ with and without equity rows".into());
                }
            }
            if let Ok(s) = &stats {
                if in_range {
                    check_stats(s).map_err(|e| format!("signals: {e}"))?;
                }
                if many.iter().any(|r| !same(r, &stats)) {
                    return Err("simulate_signals_many differs from signal_stats".into());
                }
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    cases: AtomicU64,
    accepted: AtomicU64,
    checked: AtomicU64,
    signals_accepted: AtomicU64,
    signals_checked: AtomicU64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_engine_entry_points_from_raw_bytes() {
    let cases = env_u64("AFTERSHOCK_FUZZ_CASES", DEFAULT_CASES);
    let seed = env_u64("AFTERSHOCK_FUZZ_SEED", 0x00af_7e55_0c4b);
    let counts = Arc::new(Counts::default());
    let current = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let (c, cur) = (counts.clone(), current.clone());
    // a watchdog: the cases run on a worker thread, this one waits with a timeout
    std::thread::spawn(move || {
        let mut rng = SplitMix(seed);
        for k in 0..cases {
            let case_seed = rng.next();
            cur.store(case_seed, Ordering::Relaxed);
            let bytes = case_bytes(case_seed);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let case = decode(&bytes);
                run_case(&case, &c)
            }))
            .unwrap_or_else(|_| Err("panicked".into()));
            if let Err(what) = outcome {
                let _ = done_tx.send(Err(format!("case {k} (byte seed {case_seed:#x}): {what}")));
                return;
            }
            c.cases.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(Ok(()));
        }
    });
    for _ in 0..cases {
        match done_rx.recv_timeout(CASE_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(what)) => panic!("fuzz: {what}"),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "fuzz: a case took more than {CASE_TIMEOUT:?} (byte seed {:#x})",
                current.load(Ordering::Relaxed)
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "fuzz: the worker died (byte seed {:#x})",
                current.load(Ordering::Relaxed)
            ),
        }
    }
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (accepted, checked) = (load(&counts.accepted), load(&counts.checked));
    let (signals, signals_checked) = (
        load(&counts.signals_accepted),
        load(&counts.signals_checked),
    );
    println!(
        "fuzz: {cases} cases; order engine: {accepted} runs accepted, {checked} within 1e±100 checked finite; \
         signal engine: {signals} accepted, {signals_checked} checked finite"
    );
    // the decoder must reach the simulation, not only the validation
    assert!(
        checked * 10 >= cases,
        "only {checked} of {cases} order runs were simulated and checked"
    );
    assert!(
        signals_checked * 10 >= cases,
        "only {signals_checked} of {cases} signal runs were simulated and checked"
    );
}

/// Replays one case by its byte seed (`AFTERSHOCK_FUZZ_REPLAY=0x...`, as a failure
/// names it) and prints the decoded input: `cargo test fuzz_replay -- --nocapture`.
#[test]
fn fuzz_replay() {
    let Some(seed) = std::env::var("AFTERSHOCK_FUZZ_REPLAY")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
    else {
        return;
    };
    let case = decode(&case_bytes(seed));
    println!(
        "ts {:?}\nopen {:?}\nhigh {:?}\nlow {:?}\nclose {:?}\noffsets {:?}",
        case.ts, case.open, case.high, case.low, case.close, case.offsets
    );
    println!(
        "orders {:#?}\nconfig {:?}\nsignal config {:?}\nmasks {:?}",
        case.orders, case.config, case.signal_config, case.masks
    );
    println!("outcome {:?}", run_case(&case, &Counts::default()));
}
