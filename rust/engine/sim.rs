//! The event-sparse simulation loop. The contract is docs/engine.md; comments here
//! explain the choices the contract leaves to the implementation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::error::{EngineError, EngineResult};
use super::metrics::{self, EquityStream, Stats, StatsSpec};
use super::types::*;

/// Upper bound on trigger events inside one bar: each event consumes an order or a
/// position, so more than this means the engine is looping on a bug.
const MAX_EVENTS_PER_BAR: usize = 1_000_000;

/// Room under the leverage cap smaller than this fraction of equity is treated as
/// none (floating-point dust left when an account is exactly at its cap).
pub const CAP_DUST: f64 = 1e-9;

/// Which way the price must move to fire a trigger.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cross {
    /// fires when price <= level
    Below,
    /// fires when price >= level
    Above,
}

impl Cross {
    fn holds(self, x: f64, level: f64) -> bool {
        match self {
            Cross::Below => x <= level,
            Cross::Above => x >= level,
        }
    }
}

/// What fires. Ties at one point break by `rank`, then by order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Liquidation,
    StopLoss,
    TrailingStop,
    TakeProfit,
    /// Working order at this index of the symbol's working list.
    Order(usize),
}

impl Event {
    fn rank(self) -> u8 {
        match self {
            Event::Liquidation => 0,
            Event::StopLoss => 1,
            Event::TrailingStop => 2,
            Event::TakeProfit => 3,
            Event::Order(_) => 4,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Trigger {
    /// Distance the price travels from the current point before it fires.
    distance: f64,
    event: Event,
    /// Price at which the event happens (before slippage).
    price: f64,
    /// Order id, used as the last tie-break among working orders.
    id: usize,
}

#[derive(Debug, Clone)]
struct Bracket {
    source: usize,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    trailing: Option<f64>,
    /// Most favourable price visited since the bracket was armed.
    peak: f64,
    deadline: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Position {
    pub(super) qty: f64,
    pub(super) avg_price: f64,
    open_ts: i64,
    open_order: i64,
    /// Entry fees not yet attributed to a closed trade.
    entry_fees: f64,
    pub(super) min_price: f64,
    pub(super) max_price: f64,
    bracket: Option<Bracket>,
}

#[derive(Debug, Clone, Copy)]
struct Working {
    id: usize,
    first_bar: usize,
    /// A stop-limit whose stop has fired is a limit order from then on.
    triggered: bool,
}

#[derive(Debug, Clone, Default)]
struct SymbolState {
    pos: Position,
    working: Vec<Working>,
    cursor: usize,
    mark: f64,
    in_heap: bool,
    /// Active when its bars ran out at the end of a stretch: resumes at its first
    /// bar of the next stretch.
    waiting: bool,
}

impl SymbolState {
    fn active(&self) -> bool {
        self.pos.qty != 0.0 || !self.working.is_empty()
    }
}

struct Sim<'a> {
    bars: Bars<'a>,
    orders: &'a [Order],
    cfg: &'a Config,
    cash: f64,
    syms: Vec<SymbolState>,
    out: Output,
    /// When set, equity rows feed these running figures instead of `out.equity`
    /// (a sweep keeps no equity path).
    stream: Option<EquityStream>,
    carry: Carry,
}

/// What a run carries from one stretch of bars to the next besides cash,
/// positions and outputs (see [`Stepper`]).
#[derive(Debug, Clone, Default)]
struct Carry {
    /// Orders that have not gone live yet, in id order.
    unresolved: Vec<usize>,
    /// First bar timestamp of the whole run.
    first_ts: Option<i64>,
    /// Each symbol's last bar timestamp, once the stretch that holds it has come.
    sym_last: Vec<Option<i64>>,
    /// Each symbol's latest bar timestamp so far.
    sym_seen: Vec<Option<i64>>,
    /// Latest bar timestamp seen so far, over all symbols.
    seen_last: Option<i64>,
    recorded_any: bool,
    last_recorded: Option<i64>,
    /// With a stats stream, also keep the equity rows (for the caller to take).
    keep_equity: bool,
}

/// Runs one simulation. Pure: same inputs, same output, bit for bit.
pub fn simulate(bars: Bars<'_>, orders: &[Order], cfg: &Config) -> EngineResult<Output> {
    bars.validate()?;
    simulate_validated(bars, orders, cfg)
}

/// `simulate` for bars the caller has already checked with `Bars::validate` (or an
/// equivalent): skips the O(bars) scan so the work stays event-sparse. Bars that
/// break the contract give wrong numbers or an error here, never a panic.
pub fn simulate_validated(bars: Bars<'_>, orders: &[Order], cfg: &Config) -> EngineResult<Output> {
    run_sim(bars, orders, cfg, None).map(|(out, _)| out)
}

/// The figures of `Result.stats()` for one run over validated bars, computed as the
/// run goes: no equity path is kept, only fills, trades and order states.
pub fn simulate_stats(
    bars: Bars<'_>,
    orders: &[Order],
    cfg: &Config,
    spec: StatsSpec,
) -> EngineResult<Stats> {
    super::daily::simulate_stats_daily(bars, orders, cfg, spec).map(|(stats, _)| stats)
}

pub(super) fn run_sim(
    bars: Bars<'_>,
    orders: &[Order],
    cfg: &Config,
    stream: Option<EquityStream>,
) -> EngineResult<(Output, Option<EquityStream>)> {
    bars.validate_shape()?;
    let mut state = State::new(orders, cfg, bars.n_symbols(), stream, false)?;
    let ends = vec![true; bars.n_symbols()];
    state.sim(bars, orders, cfg, |sim| sim.run_chunk(&ends))?;
    state.sim(bars, orders, cfg, |sim| {
        sim.finish();
        Ok(())
    })?;
    Ok((state.out, state.stream))
}

/// The owned state of a run between stretches of bars.
struct State {
    cash: f64,
    syms: Vec<SymbolState>,
    out: Output,
    stream: Option<EquityStream>,
    carry: Carry,
}

impl State {
    fn new(
        orders: &[Order],
        cfg: &Config,
        n_symbols: usize,
        stream: Option<EquityStream>,
        keep_equity: bool,
    ) -> EngineResult<Self> {
        cfg.validate()?;
        validate_orders(orders, n_symbols)?;
        let out = Output {
            orders: vec![
                OrderState {
                    status: OrderStatus::Open,
                    status_ts: None,
                    filled_qty: 0.0,
                    reason: StatusReason::None
                };
                orders.len()
            ],
            ..Output::default()
        };
        Ok(State {
            cash: cfg.init_cash,
            syms: vec![SymbolState::default(); n_symbols],
            out,
            stream,
            carry: Carry {
                unresolved: (0..orders.len()).collect(),
                sym_last: vec![None; n_symbols],
                sym_seen: vec![None; n_symbols],
                keep_equity,
                ..Carry::default()
            },
        })
    }

    /// Runs `step` on a simulator over `bars` that holds this state, then takes
    /// the state back.
    fn sim<T>(
        &mut self,
        bars: Bars<'_>,
        orders: &[Order],
        cfg: &Config,
        step: impl FnOnce(&mut Sim<'_>) -> EngineResult<T>,
    ) -> EngineResult<T> {
        let mut sim = Sim {
            bars,
            orders,
            cfg,
            cash: self.cash,
            syms: std::mem::take(&mut self.syms),
            out: std::mem::take(&mut self.out),
            stream: self.stream.take(),
            carry: std::mem::take(&mut self.carry),
        };
        let result = step(&mut sim);
        self.cash = sim.cash;
        self.syms = sim.syms;
        self.out = sim.out;
        self.stream = sim.stream;
        self.carry = sim.carry;
        result
    }
}

/// One backtest fed its bars one stretch of time at a time (bars larger than
/// memory): the result equals one pass of [`simulate_validated`] over all of them.
///
/// Each stretch holds every symbol (possibly no rows of some), sorted within each
/// symbol, and starts strictly after the previous one ends: all bars sharing a
/// timestamp come in the same stretch. `ends[s]` says the stretch holds symbol
/// `s`'s last bar (for `close_at_end`). Bars must be checked by the caller
/// (`Bars::validate`), as for `simulate_validated`.
pub struct Stepper {
    orders: Vec<Order>,
    cfg: Config,
    state: State,
    spec: Option<StatsSpec>,
    /// Each symbol's first and last close seen so far (buy and hold in the figures).
    closes: Vec<Option<(f64, f64)>>,
}

impl Stepper {
    /// `spec`: compute the figures of `Result.stats()` as the run goes (see
    /// [`Stepper::finish`]); `keep_equity`: also keep the equity rows for
    /// [`Stepper::take_equity`] (always kept without `spec`).
    pub fn new(
        orders: Vec<Order>,
        cfg: Config,
        n_symbols: usize,
        spec: Option<StatsSpec>,
        keep_equity: bool,
    ) -> EngineResult<Self> {
        let stream = spec.map(|sp| EquityStream::new(cfg.init_cash, sp.day));
        let state = State::new(&orders, &cfg, n_symbols, stream, keep_equity)?;
        Ok(Stepper {
            orders,
            cfg,
            state,
            spec,
            closes: vec![None; n_symbols],
        })
    }

    /// Simulates every event of the next stretch of bars.
    pub fn feed(&mut self, bars: Bars<'_>, ends: &[bool]) -> EngineResult<()> {
        bars.validate_shape()?;
        let n = self.state.syms.len();
        if bars.n_symbols() != n || ends.len() != n {
            return Err(EngineError::bars(
                "symbol",
                0,
                format!("every stretch must hold the run's {n} symbols"),
            ));
        }
        if let (Some(prev), Some((first, _))) = (self.state.carry.seen_last, bars.time_span()) {
            if first <= prev {
                let s = (0..n)
                    .find(|&s| !bars.range(s).is_empty() && bars.ts[bars.offsets[s]] == first)
                    .unwrap_or(0);
                return Err(EngineError::bars(
                    "ts",
                    bars.offsets[s],
                    "a stretch of bars must start after the previous one ends",
                ));
            }
        }
        for (s, seen) in self.closes.iter_mut().enumerate() {
            let r = bars.range(s);
            if !r.is_empty() {
                let first = seen.map_or(bars.close[r.start], |(f, _)| f);
                *seen = Some((first, bars.close[r.end - 1]));
            }
        }
        let (orders, cfg) = (&self.orders, &self.cfg);
        self.state.sim(bars, orders, cfg, |sim| sim.run_chunk(ends))
    }

    /// Takes the equity rows recorded so far (kept only without a stats `spec`
    /// or with `keep_equity`).
    pub fn take_equity(&mut self) -> Vec<EquityRow> {
        std::mem::take(&mut self.state.out.equity)
    }

    /// Ends the run: the last equity row and the open trades. Returns the output
    /// (its `equity` holds the rows not taken yet) and, with a `spec`, the figures.
    pub fn finish(mut self) -> EngineResult<(Output, Option<Stats>)> {
        let empty = Bars {
            ts: &[],
            open: &[],
            high: &[],
            low: &[],
            close: &[],
            offsets: &[],
        };
        let (orders, cfg) = (&self.orders, &self.cfg);
        self.state.sim(empty, orders, cfg, |sim| {
            sim.finish();
            Ok(())
        })?;
        let start = self.state.carry.first_ts.unwrap_or(0);
        let end = self.state.carry.seen_last.unwrap_or(0);
        let closes: Vec<(f64, f64)> = self.closes.iter().flatten().copied().collect();
        let stats = match (self.state.stream.take(), self.spec) {
            (Some(stream), Some(spec)) => Some(metrics::stats(
                stream,
                &self.state.out,
                start,
                end,
                spec,
                &closes,
            )),
            _ => None,
        };
        Ok((self.state.out, stats))
    }
}

fn validate_orders(orders: &[Order], n_symbols: usize) -> EngineResult<()> {
    for (row, o) in orders.iter().enumerate() {
        if o.symbol >= n_symbols {
            return Err(EngineError::orders(
                "symbol",
                row,
                format!("symbol code {} has no bars", o.symbol),
            ));
        }
        let qty_ok = match o.size_type {
            SizeType::TargetPercent => o.qty.is_finite() && o.qty >= 0.0,
            SizeType::PercentAvailable => o.qty > 0.0 && o.qty <= 1.0,
            _ => o.qty.is_finite() && o.qty > 0.0,
        };
        if !qty_ok {
            return Err(EngineError::orders(
                "qty",
                row,
                format!("invalid quantity {}", o.qty),
            ));
        }
        let needs_limit = matches!(o.order_type, OrderType::Limit | OrderType::StopLimit);
        let needs_stop = matches!(o.order_type, OrderType::Stop | OrderType::StopLimit);
        match (needs_limit, o.limit_price) {
            (true, Some(p)) if p.is_finite() && p > 0.0 => {}
            (true, _) => {
                return Err(EngineError::orders(
                    "limit_price",
                    row,
                    "required, finite and > 0",
                ))
            }
            (false, Some(_)) => {
                return Err(EngineError::orders(
                    "limit_price",
                    row,
                    "only limit and stop_limit orders take a limit price",
                ))
            }
            (false, None) => {}
        }
        match (needs_stop, o.stop_price) {
            (true, Some(p)) if p.is_finite() && p > 0.0 => {}
            (true, _) => {
                return Err(EngineError::orders(
                    "stop_price",
                    row,
                    "required, finite and > 0",
                ))
            }
            (false, Some(_)) => {
                return Err(EngineError::orders(
                    "stop_price",
                    row,
                    "only stop and stop_limit orders take a stop price",
                ))
            }
            (false, None) => {}
        }
        match (o.tif, o.expire_ts) {
            (TimeInForce::Gtd, Some(e)) if e > o.submit_ts => {}
            (TimeInForce::Gtd, _) => {
                return Err(EngineError::orders(
                    "expire_ts",
                    row,
                    "gtd orders need expire_ts after submit_ts",
                ))
            }
            (_, Some(_)) => {
                return Err(EngineError::orders(
                    "expire_ts",
                    row,
                    "only gtd orders take expire_ts",
                ))
            }
            _ => {}
        }
        if let Some(v) = o.stop_loss {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(EngineError::orders(
                    "stop_loss",
                    row,
                    format!("must be in (0, 1), got {v}"),
                ));
            }
        }
        if let Some(v) = o.trailing_stop {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(EngineError::orders(
                    "trailing_stop",
                    row,
                    format!("must be in (0, 1), got {v}"),
                ));
            }
        }
        if let Some(v) = o.take_profit {
            if !(v.is_finite() && v > 0.0) {
                return Err(EngineError::orders(
                    "take_profit",
                    row,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if let Some(v) = o.exit_after {
            if v <= 0 {
                return Err(EngineError::orders(
                    "exit_after",
                    row,
                    "must be a positive duration",
                ));
            }
        }
        if o.reduce_only && o.has_bracket() {
            return Err(EngineError::orders(
                "reduce_only",
                row,
                "a reduce-only order cannot carry a bracket",
            ));
        }
    }
    Ok(())
}

fn apply_slippage(price: f64, buy: bool, slippage: f64) -> f64 {
    if buy {
        price * (1.0 + slippage)
    } else {
        price * (1.0 - slippage)
    }
}

impl<'a> Sim<'a> {
    /// Processes every event of `self.bars`, one stretch of the run's bars (all of
    /// them in a one-pass run); `ends[s]` says it holds symbol `s`'s last bar.
    fn run_chunk(&mut self, ends: &[bool]) -> EngineResult<()> {
        let bars = self.bars;
        for s in 0..bars.n_symbols() {
            let r = bars.range(s);
            if r.is_empty() {
                continue;
            }
            let last = bars.ts[r.end - 1];
            if ends[s] {
                self.carry.sym_last[s] = Some(last);
            }
            self.carry.sym_seen[s] = Some(last);
            let seen = &mut self.carry.seen_last;
            *seen = Some(seen.map_or(last, |v| v.max(last)));
        }
        if self.carry.first_ts.is_none() {
            // stretches come in time order: the first one with bars holds the first bar
            self.carry.first_ts = bars.time_span().map(|(first, _)| first);
        }
        // (live bar ts, order id, live bar index): orders that go live in this
        // stretch, in the order they do; the others wait for a later one.
        let mut pending: Vec<(i64, usize, usize)> = Vec::new();
        let mut later = Vec::new();
        for &id in &self.carry.unresolved {
            let o = &self.orders[id];
            // A decision taken at `submit_ts` may only trade at prices printed after
            // `submit_ts + latency`. A bar's open may be printed at its own open
            // time, so orders that can fill at the open go live on the first bar that
            // opens strictly later; a market-on-close order fills at the close,
            // which is printed after any instant inside its bar.
            let decided = o.submit_ts.saturating_add(self.cfg.latency);
            let r = bars.range(o.symbol);
            let ts = &bars.ts[r.clone()];
            let k = if o.order_type == OrderType::MarketOnClose {
                ts.partition_point(|&t| t < decided)
            } else {
                ts.partition_point(|&t| t <= decided)
            };
            if k < ts.len() {
                pending.push((ts[k], id, r.start + k));
            } else {
                later.push(id);
            }
        }
        self.carry.unresolved = later;
        pending.sort_unstable_by_key(|&(ts, id, _)| (ts, id));

        let mut heap: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
        // symbols whose bars ran out while active resume at their first bar here
        for s in 0..bars.n_symbols() {
            let r = bars.range(s);
            let st = &mut self.syms[s];
            if st.waiting && (!st.active() || !r.is_empty()) {
                st.waiting = false;
                if st.active() {
                    st.cursor = r.start;
                    st.in_heap = true;
                    heap.push(Reverse((bars.ts[r.start], s)));
                }
            }
        }
        let mut next_pending = 0usize;

        loop {
            let t_pending = pending.get(next_pending).map(|p| p.0);
            let t_heap = heap.peek().map(|r| r.0 .0);
            let t = match (t_pending, t_heap) {
                (None, None) => break,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (Some(a), Some(b)) => a.min(b),
            };
            if !self.carry.recorded_any {
                if let Some(f) = self.carry.first_ts {
                    if f < t {
                        self.record_equity(f);
                    }
                }
                self.carry.recorded_any = true;
            }
            while next_pending < pending.len() && pending[next_pending].0 == t {
                let (ts, id, bar) = pending[next_pending];
                next_pending += 1;
                let order = &self.orders[id];
                if let Some(exp) = order.expire_ts {
                    if exp <= ts {
                        self.set_status(id, OrderStatus::Expired, ts, StatusReason::Expired);
                        continue;
                    }
                }
                let s = order.symbol;
                let st = &mut self.syms[s];
                if st.in_heap {
                    if st.cursor != bar {
                        return Err(EngineError::Internal(format!(
                            "order {id} goes live at bar {bar} but symbol {s} is at bar {}",
                            st.cursor
                        )));
                    }
                } else {
                    st.cursor = bar;
                    st.in_heap = true;
                    heap.push(Reverse((ts, s)));
                }
                st.working.push(Working {
                    id,
                    first_bar: bar,
                    triggered: false,
                });
            }
            let mut touched = false;
            while let Some(&Reverse((ts, s))) = heap.peek() {
                if ts != t {
                    break;
                }
                heap.pop();
                self.syms[s].in_heap = false;
                if !self.syms[s].active() {
                    // went idle while queued (a liquidation closed it): not visited
                    continue;
                }
                let bar = self.syms[s].cursor;
                self.process_bar(s, bar)?;
                touched = true;
                let st = &mut self.syms[s];
                st.cursor = bar + 1;
                if st.active() {
                    if st.cursor < bars.offsets[s + 1] {
                        st.in_heap = true;
                        heap.push(Reverse((bars.ts[st.cursor], s)));
                    } else {
                        st.waiting = true;
                    }
                }
            }
            if touched {
                self.record_equity(t);
            }
        }
        Ok(())
    }

    /// After the last stretch: the last equity row and the trades still open.
    fn finish(&mut self) {
        let first_ts = self.carry.first_ts;
        let last_ts = self.carry.seen_last;
        if let (Some(f), None) = (first_ts, self.carry.last_recorded) {
            self.record_equity(f);
        }
        if let (Some(l), Some(row_ts)) = (last_ts, self.carry.last_recorded) {
            if row_ts < l {
                self.record_equity(l);
            }
        }
        self.open_trades();
    }

    fn record_equity(&mut self, ts: i64) {
        let mut equity = self.cash;
        let mut gross = 0.0;
        for st in &self.syms {
            if st.pos.qty != 0.0 {
                equity += st.pos.qty * st.mark;
                gross += st.pos.qty.abs() * st.mark;
            }
        }
        self.carry.last_recorded = Some(ts);
        if let Some(stream) = &mut self.stream {
            stream.push(EquityRow {
                ts,
                cash: self.cash,
                equity,
                gross_exposure: gross,
            });
            if !self.carry.keep_equity {
                return;
            }
        }
        if let Some(last) = self.out.equity.last_mut() {
            if last.ts == ts {
                *last = EquityRow {
                    ts,
                    cash: self.cash,
                    equity,
                    gross_exposure: gross,
                };
                return;
            }
        }
        self.out.equity.push(EquityRow {
            ts,
            cash: self.cash,
            equity,
            gross_exposure: gross,
        });
    }

    fn set_status(&mut self, id: usize, status: OrderStatus, ts: i64, reason: StatusReason) {
        let o = &mut self.out.orders[id];
        o.status = status;
        o.status_ts = Some(ts);
        o.reason = reason;
    }

    /// Equity with symbol `s` marked at `price`, and gross exposure of the other symbols.
    fn equity_at(&self, s: usize, price: f64) -> f64 {
        let mut e = self.cash;
        for (k, st) in self.syms.iter().enumerate() {
            if st.pos.qty != 0.0 {
                e += st.pos.qty * if k == s { price } else { st.mark };
            }
        }
        e
    }

    /// Cash plus the value of every position but `s`'s, and the gross exposure of those positions.
    fn others(&self, s: usize) -> (f64, f64) {
        let mut value = self.cash;
        let mut gross = 0.0;
        for (k, st) in self.syms.iter().enumerate() {
            if k != s && st.pos.qty != 0.0 {
                value += st.pos.qty * st.mark;
                gross += st.pos.qty.abs() * st.mark;
            }
        }
        (value, gross)
    }

    fn process_bar(&mut self, s: usize, i: usize) -> EngineResult<()> {
        let b = self.bars;
        let (ts, o, h, l, c) = (b.ts[i], b.open[i], b.high[i], b.low[i], b.close[i]);
        self.out.bars_visited += 1;

        // 1. expiry
        let mut k = 0;
        while k < self.syms[s].working.len() {
            let w = self.syms[s].working[k];
            if matches!(self.orders[w.id].expire_ts, Some(e) if e <= ts) {
                self.syms[s].working.remove(k);
                self.set_status(w.id, OrderStatus::Expired, ts, StatusReason::Expired);
            } else {
                k += 1;
            }
        }

        // 2. time exit at the open (the open is part of the held path: touch first)
        self.touch(s, o);
        if self.syms[s].pos.qty != 0.0 {
            if let Some(br) = &self.syms[s].pos.bracket {
                if matches!(br.deadline, Some(d) if d <= ts) {
                    let source = br.source as i64;
                    let qty = self.syms[s].pos.qty;
                    let price = apply_slippage(o, qty < 0.0, self.cfg.slippage);
                    self.fill(
                        s,
                        -qty,
                        price,
                        ts,
                        self.cfg.fees,
                        FillReason::TimeExit,
                        source,
                    )?;
                }
            }
        }

        // 3. market orders at the open, in id order (the working list is in id order
        // within one activation, and market orders never outlive their first bar)
        self.fill_all_of_type(s, OrderType::Market, o, ts)?;
        // ... then everything that already holds at the open
        let mut x = o;
        self.walk(s, &mut x, o, ts)?;

        // 4. the path
        let long = self.syms[s].pos.qty > 0.0;
        let short = self.syms[s].pos.qty < 0.0;
        let high_first = match self.cfg.intrabar {
            Intrabar::Ohlc => true,
            Intrabar::Olhc => false,
            Intrabar::NearestFirst => (h - o) <= (o - l),
            Intrabar::Pessimistic => !long || short,
        };
        let (x1, x2) = if high_first { (h, l) } else { (l, h) };
        self.walk(s, &mut x, x1, ts)?;
        self.walk(s, &mut x, x2, ts)?;
        self.walk(s, &mut x, c, ts)?;

        // 5. market-on-close
        self.fill_all_of_type(s, OrderType::MarketOnClose, c, ts)?;

        // 6. IOC orders that did not fill on their first live bar
        let mut k = 0;
        while k < self.syms[s].working.len() {
            let w = self.syms[s].working[k];
            if self.orders[w.id].tif == TimeInForce::Ioc && w.first_bar <= i {
                self.syms[s].working.remove(k);
                self.set_status(w.id, OrderStatus::Cancelled, ts, StatusReason::IocUnfilled);
            } else {
                k += 1;
            }
        }

        // 7. mark
        self.syms[s].mark = c;

        // 8. the symbol's data ends here: close what is still open, if asked to
        if self.cfg.close_at_end
            && self.carry.sym_last[s] == Some(ts)
            && self.syms[s].pos.qty != 0.0
        {
            let qty = self.syms[s].pos.qty;
            let price = apply_slippage(c, qty < 0.0, self.cfg.slippage);
            self.fill(s, -qty, price, ts, self.cfg.fees, FillReason::EndOfData, -1)?;
        }
        Ok(())
    }

    /// Fills every working order of `kind` (market or market-on-close: they live
    /// for one bar) at `price`, in id order.
    fn fill_all_of_type(
        &mut self,
        s: usize,
        kind: OrderType,
        price: f64,
        ts: i64,
    ) -> EngineResult<()> {
        let mut k = 0;
        while k < self.syms[s].working.len() {
            let w = self.syms[s].working[k];
            if self.orders[w.id].order_type == kind {
                self.syms[s].working.remove(k);
                self.execute_order(s, w.id, price, ts, true)?;
                self.touch(s, price);
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    /// Records that the price visited `x`: excursions and the trailing peak.
    fn touch(&mut self, s: usize, x: f64) {
        let pos = &mut self.syms[s].pos;
        if pos.qty == 0.0 {
            return;
        }
        pos.min_price = pos.min_price.min(x);
        pos.max_price = pos.max_price.max(x);
        let long = pos.qty > 0.0;
        if let Some(br) = &mut pos.bracket {
            br.peak = if long { br.peak.max(x) } else { br.peak.min(x) };
        }
    }

    /// Moves the price monotonically from `*x` to `target`, firing triggers in the
    /// order the path reaches them.
    fn walk(&mut self, s: usize, x: &mut f64, target: f64, ts: i64) -> EngineResult<()> {
        for _ in 0..MAX_EVENTS_PER_BAR {
            match self.next_trigger(s, *x, target) {
                None => {
                    *x = target;
                    self.touch(s, target);
                    return Ok(());
                }
                Some(tr) => {
                    if tr.distance > 0.0 {
                        *x = tr.price;
                    }
                    self.touch(s, *x);
                    self.fire(s, tr, *x, ts)?;
                    // a position opened by this event starts its excursions here
                    self.touch(s, *x);
                }
            }
        }
        Err(EngineError::Internal(format!(
            "more than {MAX_EVENTS_PER_BAR} events in one bar"
        )))
    }

    /// The first trigger reached when the price moves from `x` to `target`.
    fn next_trigger(&self, s: usize, x: f64, target: f64) -> Option<Trigger> {
        let mut best: Option<Trigger> = None;
        let mut consider = |level: f64, cross: Cross, event: Event, id: usize| {
            let cand = if cross.holds(x, level) {
                Trigger {
                    distance: 0.0,
                    event,
                    price: x,
                    id,
                }
            } else if cross.holds(target, level) {
                Trigger {
                    distance: (x - level).abs(),
                    event,
                    price: level,
                    id,
                }
            } else {
                return;
            };
            let better = match &best {
                None => true,
                Some(b) => {
                    (cand.distance, cand.event.rank(), cand.id) < (b.distance, b.event.rank(), b.id)
                }
            };
            if better {
                best = Some(cand);
            }
        };

        let st = &self.syms[s];
        let pos = &st.pos;
        if pos.qty != 0.0 {
            let long = pos.qty > 0.0;
            if self.cfg.maintenance_margin > 0.0 {
                let m = self.cfg.maintenance_margin;
                let (value, gross) = self.others(s);
                // equity(p) - m * gross(p) = (value - m*gross) + q*p - m*|q|*p
                let q = pos.qty;
                let slope = q - m * q.abs();
                let intercept = value - m * gross;
                // zero crossing at p* = -intercept / slope; below it (long) or above it (short) is a breach
                let level = -intercept / slope;
                let cross = if long { Cross::Below } else { Cross::Above };
                consider(level, cross, Event::Liquidation, 0);
            }
            if let Some(br) = &pos.bracket {
                let down = if long { Cross::Below } else { Cross::Above };
                let up = if long { Cross::Above } else { Cross::Below };
                if let Some(level) = br.stop_loss {
                    consider(level, down, Event::StopLoss, 0);
                }
                if let Some(tr) = br.trailing {
                    let level = if long {
                        br.peak * (1.0 - tr)
                    } else {
                        br.peak * (1.0 + tr)
                    };
                    consider(level, down, Event::TrailingStop, 0);
                }
                if let Some(level) = br.take_profit {
                    consider(level, up, Event::TakeProfit, 0);
                }
            }
        }
        for (k, w) in st.working.iter().enumerate() {
            let o = &self.orders[w.id];
            let buy = o.side == Side::Buy;
            let limit_cross = if buy { Cross::Below } else { Cross::Above };
            let stop_cross = if buy { Cross::Above } else { Cross::Below };
            match o.order_type {
                OrderType::Limit => consider(
                    o.limit_price.unwrap_or(f64::NAN),
                    limit_cross,
                    Event::Order(k),
                    w.id,
                ),
                OrderType::Stop => consider(
                    o.stop_price.unwrap_or(f64::NAN),
                    stop_cross,
                    Event::Order(k),
                    w.id,
                ),
                OrderType::StopLimit => {
                    if w.triggered {
                        consider(
                            o.limit_price.unwrap_or(f64::NAN),
                            limit_cross,
                            Event::Order(k),
                            w.id,
                        )
                    } else {
                        consider(
                            o.stop_price.unwrap_or(f64::NAN),
                            stop_cross,
                            Event::Order(k),
                            w.id,
                        )
                    }
                }
                OrderType::Market | OrderType::MarketOnClose => {}
            }
        }
        best
    }

    fn fire(&mut self, s: usize, tr: Trigger, x: f64, ts: i64) -> EngineResult<()> {
        let slip = self.cfg.slippage;
        match tr.event {
            Event::Liquidation => self.liquidate(s, x, ts),
            Event::StopLoss | Event::TrailingStop | Event::TakeProfit => {
                let pos = &self.syms[s].pos;
                let qty = pos.qty;
                let source = pos.bracket.as_ref().map(|b| b.source as i64).unwrap_or(-1);
                let (reason, price, rate) = match tr.event {
                    Event::StopLoss => (
                        FillReason::StopLoss,
                        apply_slippage(x, qty < 0.0, slip),
                        self.cfg.fees,
                    ),
                    Event::TrailingStop => (
                        FillReason::TrailingStop,
                        apply_slippage(x, qty < 0.0, slip),
                        self.cfg.fees,
                    ),
                    _ => (FillReason::TakeProfit, x, self.cfg.maker_fees),
                };
                self.fill(s, -qty, price, ts, rate, reason, source)
            }
            Event::Order(k) => {
                let w = self.syms[s].working[k];
                let o = &self.orders[w.id];
                if o.order_type == OrderType::StopLimit && !w.triggered {
                    self.syms[s].working[k].triggered = true;
                    return Ok(());
                }
                self.syms[s].working.remove(k);
                let taker = o.order_type == OrderType::Stop;
                self.execute_order(s, w.id, x, ts, taker)
            }
        }
    }

    fn liquidate(&mut self, s: usize, x: f64, ts: i64) -> EngineResult<()> {
        let slip = self.cfg.slippage;
        let qty = self.syms[s].pos.qty;
        self.fill(
            s,
            -qty,
            apply_slippage(x, qty < 0.0, slip),
            ts,
            self.cfg.fees,
            FillReason::Liquidation,
            -1,
        )?;
        for k in 0..self.syms.len() {
            let q = self.syms[k].pos.qty;
            if k != s && q != 0.0 {
                let price = apply_slippage(self.syms[k].mark, q < 0.0, slip);
                self.fill(k, -q, price, ts, self.cfg.fees, FillReason::Liquidation, -1)?;
            }
        }
        Ok(())
    }

    /// Sizes and fills working order `id` at raw price `raw` (slippage added here for
    /// taker orders), or records why it could not fill.
    fn execute_order(
        &mut self,
        s: usize,
        id: usize,
        raw: f64,
        ts: i64,
        taker: bool,
    ) -> EngineResult<()> {
        let o = &self.orders[id];
        let cfg = self.cfg;
        let pos = self.syms[s].pos.qty;
        // slippage goes against the side actually traded: for a target the trade's
        // direction comes from the gap to the target at the unslipped price
        let buy = match o.size_type {
            SizeType::TargetPercent => o.side.sign() * o.qty * self.equity_at(s, raw) / raw > pos,
            _ => o.side == Side::Buy,
        };
        let price = if taker {
            apply_slippage(raw, buy, cfg.slippage)
        } else {
            raw
        };
        let rate = if taker { cfg.fees } else { cfg.maker_fees };
        let equity = self.equity_at(s, price);

        let mut delta = match o.size_type {
            SizeType::Units => o.side.sign() * o.qty,
            SizeType::Notional => o.side.sign() * o.qty / price,
            SizeType::PercentEquity => o.side.sign() * (o.qty * equity / price).max(0.0),
            SizeType::TargetPercent => o.side.sign() * o.qty * equity / price - pos,
            SizeType::PercentAvailable => {
                // backtesting.py's relative size: whole units out of `qty` of the margin
                // not held by open positions, each unit costing its price plus its share
                // of the fee of a `qty`-unit fill (the operations in its order, so the
                // floor lands on the same unit)
                let (_, gross_other) = self.others(s);
                let gross = gross_other + pos.abs() * price;
                let available = (equity - gross / cfg.leverage).max(0.0);
                let unit_cost = price + (cfg.fixed_fees + o.qty * price * rate) / o.qty;
                o.side.sign() * floor_div(available * cfg.leverage * o.qty, unit_cost).max(0.0)
            }
        };
        if o.reduce_only {
            // a zero size keeps the order's side (it is then rejected for its size)
            let direction = if delta != 0.0 { delta } else { o.side.sign() };
            if pos == 0.0 || direction * pos >= 0.0 {
                self.set_status(
                    id,
                    OrderStatus::Cancelled,
                    ts,
                    StatusReason::NothingToReduce,
                );
                return Ok(());
            }
            if delta.abs() > pos.abs() {
                delta = -pos;
            }
        }

        // Split into the part that closes and the part that opens exposure.
        let reducing = pos != 0.0 && delta * pos < 0.0;
        let close_part = if reducing {
            delta.abs().min(pos.abs())
        } else {
            0.0
        };
        let mut open_part = delta.abs() - close_part;
        let mut capped = false;
        // percent_available is sized within the margin by its own rule (backtesting.py's
        // margin check counts the fee once, not times the leverage): no second cap
        if open_part > 0.0 && o.size_type != SizeType::PercentAvailable {
            let (_, gross_other) = self.others(s);
            let base = if reducing { 0.0 } else { pos.abs() * price };
            let fixed = cfg.fixed_fees;
            let lev = cfg.leverage;
            let room = lev * (equity - close_part * price * rate - fixed) - gross_other - base;
            let mut max_open = (room / (price * (1.0 + lev * rate))).max(0.0);
            // rounding dust from an account already at its cap is no room at all
            if max_open * price <= CAP_DUST * equity.abs().max(1.0) {
                max_open = 0.0;
            }
            if open_part > max_open && !cfg.allow_partial {
                self.set_status(id, OrderStatus::Rejected, ts, StatusReason::Margin);
                return Ok(());
            }
            if open_part > max_open {
                open_part = max_open;
                capped = true;
            }
        }
        let qty = if cfg.lot_size <= 0.0 {
            close_part + open_part
        } else if reducing && close_part >= pos.abs() {
            // closing the whole position is exact (it may hold float dust from a sum
            // of lots); only the part that opens new exposure is rounded
            pos.abs() + round_to_lot(open_part, cfg.lot_size)
        } else {
            round_to_lot(close_part + open_part, cfg.lot_size).min(if reducing {
                pos.abs()
            } else {
                f64::INFINITY
            })
        };
        if qty.is_nan() || qty <= 0.0 {
            // margin only when the cap itself leaves nothing; a positive capped
            // size that rounds to zero lots is a size problem
            let reason = if capped && close_part + open_part <= 0.0 {
                StatusReason::Margin
            } else {
                StatusReason::ZeroSize
            };
            self.set_status(id, OrderStatus::Rejected, ts, reason);
            return Ok(());
        }
        let signed = qty * delta.signum();
        // a fill that reduces or reverses the position is an exit (a reversal also opens
        // the remainder, whose trade starts at this fill)
        let reason = if reducing {
            FillReason::Exit
        } else {
            FillReason::Entry
        };
        self.fill(s, signed, price, ts, rate, reason, id as i64)?;
        self.out.orders[id].filled_qty = qty;
        self.set_status(id, OrderStatus::Filled, ts, StatusReason::None);

        let o = &self.orders[id];
        let new_pos = self.syms[s].pos.qty;
        if o.has_bracket() && new_pos != 0.0 && new_pos * signed > 0.0 {
            let long = new_pos > 0.0;
            let dir = if long { 1.0 } else { -1.0 };
            self.syms[s].pos.bracket = Some(Bracket {
                source: id,
                stop_loss: o.stop_loss.map(|f| price * (1.0 - dir * f)),
                take_profit: o.take_profit.map(|f| price * (1.0 + dir * f)),
                trailing: o.trailing_stop,
                peak: price,
                deadline: o.exit_after.map(|d| ts.saturating_add(d)),
            });
        }
        Ok(())
    }

    /// Books a fill of `delta` units (signed) at `price`: cash, position, trades.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        s: usize,
        delta: f64,
        price: f64,
        ts: i64,
        rate: f64,
        reason: FillReason,
        order_id: i64,
    ) -> EngineResult<()> {
        if delta == 0.0 {
            return Ok(());
        }
        let qty = delta.abs();
        let fee = qty * price * rate + self.cfg.fixed_fees;
        self.cash -= delta * price + fee;
        self.out.fills.push(Fill {
            order_id,
            ts,
            symbol: s,
            side: if delta > 0.0 { Side::Buy } else { Side::Sell },
            qty,
            price,
            fee,
            reason,
        });

        book_fill(
            &mut self.syms[s].pos,
            &mut self.out.trades,
            s,
            delta,
            price,
            ts,
            fee,
            reason,
            order_id,
        );
        Ok(())
    }

    /// Positions still open at the end become trades with status `open`, valued at the last close.
    fn open_trades(&mut self) {
        for s in 0..self.syms.len() {
            let pos = &self.syms[s].pos;
            if pos.qty == 0.0 {
                continue;
            }
            let Some(last_ts) = self.carry.sym_seen[s] else {
                continue;
            };
            let record = open_trade(s, pos, last_ts, self.syms[s].mark);
            self.out.trades.push(record);
        }
    }
}

/// The record of a position still open at the end, valued at `mark` (status `open`).
pub(super) fn open_trade(s: usize, pos: &Position, last_ts: i64, mark: f64) -> Trade {
    let mut p = pos.clone();
    p.min_price = p.min_price.min(mark);
    p.max_price = p.max_price.max(mark);
    let qty = pos.qty.abs();
    let pnl = pos.qty.signum() * qty * (mark - pos.avg_price) - pos.entry_fees;
    trade(s, &p, last_ts, mark, qty, pnl, pos.entry_fees, None)
}

/// Books a fill of `delta` units (signed) at `price` with `fee` into `pos`: the
/// average price, the entry fees, and one trade record per reduction.
#[allow(clippy::too_many_arguments)]
pub(super) fn book_fill(
    pos: &mut Position,
    trades: &mut Vec<Trade>,
    s: usize,
    delta: f64,
    price: f64,
    ts: i64,
    fee: f64,
    reason: FillReason,
    order_id: i64,
) {
    let qty = delta.abs();
    if pos.qty == 0.0 {
        open_position(pos, delta, price, ts, fee, order_id);
        return;
    }
    if pos.qty * delta > 0.0 {
        let held = pos.qty.abs();
        pos.avg_price = (pos.avg_price * held + price * qty) / (held + qty);
        pos.qty += delta;
        pos.entry_fees += fee;
        return;
    }
    let held = pos.qty.abs();
    let closed = qty.min(held);
    let exit_fee = fee * closed / qty;
    let entry_fee = pos.entry_fees * closed / held;
    let dir = pos.qty.signum();
    let gross_pnl = dir * closed * (price - pos.avg_price);
    let pnl = gross_pnl - entry_fee - exit_fee;
    trades.push(trade(
        s,
        pos,
        ts,
        price,
        closed,
        pnl,
        entry_fee + exit_fee,
        Some(reason),
    ));
    pos.entry_fees -= entry_fee;
    if closed >= held {
        *pos = Position::default();
        let rest = qty - closed;
        if rest > 0.0 {
            open_position(
                pos,
                delta.signum() * rest,
                price,
                ts,
                fee - exit_fee,
                order_id,
            );
        }
    } else {
        pos.qty += delta;
    }
}

/// The trade record for `qty` units of `pos` leaving at `exit_price`.
#[allow(clippy::too_many_arguments)]
fn trade(
    s: usize,
    pos: &Position,
    exit_ts: i64,
    exit_price: f64,
    qty: f64,
    pnl: f64,
    fees: f64,
    reason: Option<FillReason>,
) -> Trade {
    let (mae, mfe) = excursions(pos);
    Trade {
        symbol: s,
        direction: pos.qty.signum() as i8,
        entry_order_id: pos.open_order,
        entry_ts: pos.open_ts,
        entry_price: pos.avg_price,
        exit_ts,
        exit_price,
        qty,
        pnl,
        ret: pnl / (pos.avg_price * qty),
        fees,
        exit_reason: reason,
        mae,
        mfe,
    }
}

fn open_position(pos: &mut Position, delta: f64, price: f64, ts: i64, fee: f64, order_id: i64) {
    *pos = Position {
        qty: delta,
        avg_price: price,
        open_ts: ts,
        open_order: order_id,
        entry_fees: fee,
        // the path touches the fill point right after: excursions start there
        min_price: f64::INFINITY,
        max_price: f64::NEG_INFINITY,
        bracket: None,
    };
}

fn excursions(pos: &Position) -> (f64, f64) {
    if pos.min_price > pos.max_price {
        return (0.0, 0.0);
    }
    let lo = pos.min_price / pos.avg_price - 1.0;
    let hi = pos.max_price / pos.avg_price - 1.0;
    let (mae, mfe) = if pos.qty > 0.0 { (lo, hi) } else { (-hi, -lo) };
    (mae.min(0.0), mfe.max(0.0))
}

/// Rounds toward zero to a multiple of `lot`, tolerating representation error
/// (0.3 / 0.1 is 2.9999999999999996 and must give 3 lots).
/// `x // y` as Python computes it for floats (CPython's `float_floor_div`): the floor
/// of the exact quotient, which `(x / y).floor()` misses when the division rounds up
/// to an integer.
pub fn floor_div(x: f64, y: f64) -> f64 {
    let m = x % y;
    let mut div = (x - m) / y;
    if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0;
    }
    let f = div.floor();
    if div - f > 0.5 {
        f + 1.0
    } else {
        f
    }
}

pub fn round_to_lot(qty: f64, lot: f64) -> f64 {
    let lots = qty / lot;
    let n = (lots + 1e-9 * lots.abs().max(1.0)).floor();
    n.max(0.0) * lot
}
