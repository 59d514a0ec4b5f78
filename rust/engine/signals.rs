//! Signal backtests in one pass over one symbol's bars, with the rules of vectorbt
//! 1.2's `Portfolio.from_signals` (docs/vectorbt.md lists them and where we differ).
//!
//! The account follows vectorbt's cash model: cash, position, debt of the short
//! side and free cash; a buy never spends more than the cash, a finite short sale
//! is never capped, "all cash" (`size = inf`) is sized from free cash. Sums that
//! land within 1e-9 (relative) of zero snap to zero, as vectorbt's `add_nb` does,
//! so dust never keeps a position open.
//!
//! Two price conventions: `Close` fills a signal of bar `i` at bar `i`'s close
//! (vectorbt's default, which assumes the signal is known before the close it
//! trades at); `NextOpen` fills it at bar `i + 1`'s open, and stops armed by that
//! fill are checked against the rest of bar `i + 1`.
//!
//! Fills, trades and equity rows are the engine's own records (`Output`), so the
//! Python layer decodes them like any backtest. For sweeps, `simulate_signals_many`
//! runs many settings over the same bars in parallel and keeps only the figures of
//! `Result.stats()`, computed while the bars are walked.

use super::error::{EngineError, EngineResult};
use super::metrics::{figures, Parts, Stats};
use super::rows::{set_beta, Conventions, CrossSum, Episodes, RowContext};
use super::sim::{book_fill, open_trade, Position};
use super::types::{code_enum, Bars, EquityRow, Fill, FillReason, Output, Side, Trade};

mod group;
pub use group::simulate_signal_group;

code_enum!(
    /// Where a signal fills.
    SignalPrice, "price" { Close = 0 => "close", NextOpen = 1 => "next_open" }
);

code_enum!(
    /// How `size` is read (vectorbt's names; `PercentEquity` is ours: a fraction of
    /// equity at the order price, traded like a value).
    SignalSize, "size_type" {
        Amount = 0 => "amount",
        Value = 1 => "value",
        Percent = 2 => "percent",
        PercentEquity = 3 => "percent_equity",
    }
);

code_enum!(
    Accumulate, "accumulate" {
        Disabled = 0 => "disabled",
        Both = 1 => "both",
        AddOnly = 2 => "addonly",
        RemoveOnly = 3 => "removeonly",
    }
);

code_enum!(
    /// An entry and an exit of one direction on one bar.
    ConflictMode, "upon_conflict" {
        Ignore = 0 => "ignore",
        Entry = 1 => "entry",
        Exit = 2 => "exit",
        Adjacent = 3 => "adjacent",
        Opposite = 4 => "opposite",
    }
);

code_enum!(
    /// A long and a short entry on one bar.
    DirConflictMode, "upon_dir_conflict" {
        Ignore = 0 => "ignore",
        Long = 1 => "long",
        Short = 2 => "short",
        Adjacent = 3 => "adjacent",
        Opposite = 4 => "opposite",
    }
);

code_enum!(
    OppositeEntryMode, "upon_opposite_entry" {
        Ignore = 0 => "ignore",
        Close = 1 => "close",
        CloseReduce = 2 => "closereduce",
        Reverse = 3 => "reverse",
        ReverseReduce = 4 => "reversereduce",
    }
);

code_enum!(
    /// The price stop levels are measured from.
    StopEntryPrice, "stop_entry_price" {
        ValPrice = 0 => "valprice",
        Price = 1 => "price",
        FillPrice = 2 => "fillprice",
        Close = 3 => "close",
    }
);

code_enum!(
    /// The price a stop exit fills at.
    StopExitPrice, "stop_exit_price" {
        StopLimit = 0 => "stoplimit",
        StopMarket = 1 => "stopmarket",
        Price = 2 => "price",
        Close = 3 => "close",
    }
);

code_enum!(
    StopExitMode, "upon_stop_exit" {
        Close = 0 => "close",
        CloseReduce = 1 => "closereduce",
        Reverse = 2 => "reverse",
        ReverseReduce = 3 => "reversereduce",
    }
);

code_enum!(
    StopUpdateMode, "upon_stop_update" {
        Keep = 0 => "keep",
        Override = 1 => "override",
        OverrideNaN = 2 => "overridenan",
    }
);

/// Settings of one signal backtest. NaN stops are "no stop"; infinite stops never fire.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    pub init_cash: f64,
    pub size: f64,
    pub size_type: SignalSize,
    pub fees: f64,
    pub fixed_fees: f64,
    pub slippage: f64,
    pub min_size: f64,
    pub max_size: f64,
    /// NaN: any size.
    pub size_granularity: f64,
    pub sl_stop: f64,
    pub sl_trail: bool,
    pub tp_stop: f64,
    pub accumulate: Accumulate,
    pub upon_long_conflict: ConflictMode,
    pub upon_short_conflict: ConflictMode,
    pub upon_dir_conflict: DirConflictMode,
    pub upon_opposite_entry: OppositeEntryMode,
    pub stop_entry_price: StopEntryPrice,
    pub stop_exit_price: StopExitPrice,
    pub upon_stop_exit: StopExitMode,
    pub upon_stop_update: StopUpdateMode,
    pub price: SignalPrice,
    /// vectorbt's `val_price`, the valuation price of a bar (value sizing, the
    /// reversal of a value size, `stop_entry_price="valprice"`, `percent_equity`):
    /// `inf` the bar's order price (vectorbt's default), `-inf` the previous bar's
    /// close (NaN on the first bar), else this price.
    pub val_price: f64,
    /// A NaN valuation price keeps the last known one (vectorbt's default);
    /// `false`: it becomes NaN, and value orders are ignored until a price is known.
    pub ffill_val_price: bool,
    /// `false`: an order that cannot be filled in full (cut by `max_size`, by the
    /// cash, by the position, or rounded down to the granularity) is rejected
    /// instead (vectorbt's `allow_partial=False`; `size=inf` is never partial).
    pub allow_partial: bool,
    /// A rejected order raises (`EngineError::InvalidConfig` naming `raise_reject`
    /// and the row) instead of placing nothing (vectorbt's `raise_reject=True`).
    pub raise_reject: bool,
}

impl Default for SignalConfig {
    /// vectorbt 1.2's defaults (but our 100,000 of starting cash).
    fn default() -> Self {
        SignalConfig {
            init_cash: 100_000.0,
            size: f64::INFINITY,
            size_type: SignalSize::Amount,
            fees: 0.0,
            fixed_fees: 0.0,
            slippage: 0.0,
            min_size: 1e-8,
            max_size: f64::INFINITY,
            size_granularity: f64::NAN,
            sl_stop: f64::NAN,
            sl_trail: false,
            tp_stop: f64::NAN,
            accumulate: Accumulate::Disabled,
            upon_long_conflict: ConflictMode::Ignore,
            upon_short_conflict: ConflictMode::Ignore,
            upon_dir_conflict: DirConflictMode::Ignore,
            upon_opposite_entry: OppositeEntryMode::ReverseReduce,
            stop_entry_price: StopEntryPrice::Close,
            stop_exit_price: StopExitPrice::StopLimit,
            upon_stop_exit: StopExitMode::Close,
            upon_stop_update: StopUpdateMode::Override,
            price: SignalPrice::Close,
            val_price: f64::INFINITY,
            ffill_val_price: true,
            allow_partial: true,
            raise_reject: false,
        }
    }
}

impl SignalConfig {
    pub fn validate(&self) -> EngineResult<()> {
        self.validate_with(&PerBar::default())
    }

    /// `validate`, skipping the scalars of the settings `per_bar` gives bar by bar
    /// (they are never read; `SignalInput::validate_per_bar` checks the values).
    pub fn validate_with(&self, per_bar: &PerBar<'_>) -> EngineResult<()> {
        let bad = |field: &'static str, what: String| Err(EngineError::config(field, what));
        let given = |field: &str| {
            per_bar
                .fields()
                .iter()
                .any(|(name, values)| *name == field && !values.is_empty())
        };
        if !(self.init_cash.is_finite() && self.init_cash >= 0.0) {
            return bad(
                "init_cash",
                format!("must be finite and >= 0, got {}", self.init_cash),
            );
        }
        if given("size") {
        } else if self.size.is_nan() || self.size < 0.0 {
            return bad(
                "size",
                format!("must be >= 0 (inf: all cash), got {}", self.size),
            );
        }
        let all_cash_ok = matches!(self.size_type, SignalSize::Amount | SignalSize::Value);
        if self.size.is_infinite() && !all_cash_ok && !given("size") {
            return bad(
                "size",
                "size=inf (all cash) goes with size_type 'amount' or 'value'".into(),
            );
        }
        for (field, v) in [
            ("fees", self.fees),
            ("fixed_fees", self.fixed_fees),
            ("slippage", self.slippage),
            ("min_size", self.min_size),
            ("max_size", self.max_size),
            ("size_granularity", self.size_granularity),
            ("sl_stop", self.sl_stop),
            ("tp_stop", self.tp_stop),
            ("val_price", self.val_price),
        ] {
            if given(field) {
                continue;
            }
            if let Err(what) = check_setting(field, v) {
                return bad(field, what);
            }
        }
        if self.price == SignalPrice::NextOpen {
            if !self.val_price.is_infinite() || given("val_price") {
                return bad(
                    "val_price",
                    "with price='next_open' the valuation price is the fill's open (inf) or the signal bar's close (-inf); a price series goes with price='close'"
                        .into(),
                );
            }
            if self.stop_entry_price == StopEntryPrice::Close {
                return bad(
                    "stop_entry_price",
                    "'close' would measure a next-open entry's stops from a later price: use 'fillprice' or 'price'"
                        .into(),
                );
            }
            if self.stop_exit_price == StopExitPrice::Price {
                return bad(
                    "stop_exit_price",
                    "'price' with price='next_open' would fill a stop at the open it was found after".into(),
                );
            }
        }
        Ok(())
    }
}

/// Settings given bar by bar, as vectorbt broadcasts a column of values along the
/// rows. An empty slice means "not given" (the config's scalar applies); otherwise
/// it has one value per bar. An order reads the values of the bar of its signal
/// (a stop exit: of the bar it fires on); stops read theirs when they are armed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerBar<'a> {
    /// The order price (vectorbt's `price` array, with `price="close"`): NaN means no
    /// order can fill on that bar; the valuation price is the last non-NaN one.
    pub price: &'a [f64],
    pub size: &'a [f64],
    pub fees: &'a [f64],
    pub fixed_fees: &'a [f64],
    pub slippage: &'a [f64],
    pub min_size: &'a [f64],
    pub max_size: &'a [f64],
    pub size_granularity: &'a [f64],
    pub sl_stop: &'a [f64],
    pub tp_stop: &'a [f64],
    /// vectorbt's `val_price` per bar (`inf`, `-inf`, a price or NaN: unknown).
    pub val_price: &'a [f64],
    /// vectorbt's `allow_partial` per bar: 0 rejects partial fills, 1 allows them.
    pub allow_partial: &'a [f64],
}

impl<'a> PerBar<'a> {
    /// Sets the per-bar setting `name`; false for a name that is not one.
    pub fn set(&mut self, name: &str, values: &'a [f64]) -> bool {
        let slot = match name {
            "price" => &mut self.price,
            "size" => &mut self.size,
            "fees" => &mut self.fees,
            "fixed_fees" => &mut self.fixed_fees,
            "slippage" => &mut self.slippage,
            "min_size" => &mut self.min_size,
            "max_size" => &mut self.max_size,
            "size_granularity" => &mut self.size_granularity,
            "sl_stop" => &mut self.sl_stop,
            "tp_stop" => &mut self.tp_stop,
            "val_price" => &mut self.val_price,
            "allow_partial" => &mut self.allow_partial,
            _ => return false,
        };
        *slot = values;
        true
    }

    /// (name, values) of every per-bar setting.
    pub fn fields(&self) -> [(&'static str, &'a [f64]); 12] {
        [
            ("price", self.price),
            ("size", self.size),
            ("fees", self.fees),
            ("fixed_fees", self.fixed_fees),
            ("slippage", self.slippage),
            ("min_size", self.min_size),
            ("max_size", self.max_size),
            ("size_granularity", self.size_granularity),
            ("sl_stop", self.sl_stop),
            ("tp_stop", self.tp_stop),
            ("val_price", self.val_price),
            ("allow_partial", self.allow_partial),
        ]
    }
}

/// The value of a per-bar setting at bar `i`, or the scalar when it is not per bar.
#[inline]
fn at(values: &[f64], i: usize, scalar: f64) -> f64 {
    if values.is_empty() {
        scalar
    } else {
        values[i]
    }
}

/// One symbol's bars and its four signal masks (non-zero = signal), all the same length.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalInput<'a> {
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub long_entries: &'a [u8],
    pub long_exits: &'a [u8],
    pub short_entries: &'a [u8],
    pub short_exits: &'a [u8],
    /// Settings given per bar (empty slices: none).
    pub per_bar: PerBar<'a>,
}

impl SignalInput<'_> {
    pub fn validate_shape(&self) -> EngineResult<()> {
        let n = self.ts.len();
        let bars = [
            ("open", self.open.len()),
            ("high", self.high.len()),
            ("low", self.low.len()),
            ("close", self.close.len()),
        ];
        for (column, len) in bars {
            if len != n {
                return Err(EngineError::bars(
                    column,
                    len.min(n),
                    format!("length {len} differs from ts length {n}"),
                ));
            }
        }
        let masks = [
            ("long_entries", self.long_entries.len()),
            ("long_exits", self.long_exits.len()),
            ("short_entries", self.short_entries.len()),
            ("short_exits", self.short_exits.len()),
        ];
        for (field, len) in masks {
            if len != n {
                return Err(EngineError::config(
                    field,
                    format!("has {len} values but the symbol has {n} bars"),
                ));
            }
        }
        for (field, values) in self.per_bar.fields() {
            if !values.is_empty() && values.len() != n {
                return Err(EngineError::config(
                    field,
                    format!("has {} values but the symbol has {n} bars", values.len()),
                ));
            }
        }
        Ok(())
    }

    /// Every per-bar value within the domain of its setting (the scalar's, except
    /// that a per-bar size or price may be NaN: no order on that bar).
    pub fn validate_per_bar(&self, cfg: &SignalConfig) -> EngineResult<()> {
        for (field, values) in self.per_bar.fields() {
            for (row, &v) in values.iter().enumerate() {
                let ok = match field {
                    "price" => v.is_nan() || (v.is_finite() && v > 0.0),
                    "size" => {
                        v.is_nan()
                            || (v >= 0.0
                                && (v.is_finite()
                                    || matches!(
                                        cfg.size_type,
                                        SignalSize::Amount | SignalSize::Value
                                    )))
                    }
                    _ => check_setting(field, v).is_ok(),
                };
                if !ok {
                    return Err(EngineError::config(
                        field,
                        format!("value {v} at row {row} is out of range"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The domain of one numeric setting (vectorbt's limits): `Err` says why not.
fn check_setting(field: &str, v: f64) -> Result<(), String> {
    let ok = match field {
        // a rebate of the whole notional or more makes buying free: all the cash then
        // buys an infinite quantity (vectorbt refuses -1: "position must be finite")
        "fees" => v.is_finite() && v > -1.0,
        "fixed_fees" => v.is_finite(),
        "slippage" | "min_size" => v.is_finite() && v >= 0.0,
        "max_size" => v > 0.0,
        "size_granularity" => v.is_nan() || (v.is_finite() && v > 0.0),
        "sl_stop" | "tp_stop" => !(v < 0.0),
        // vectorbt raises on a valuation price <= 0 when it sizes a value order
        "val_price" => v.is_nan() || v.is_infinite() || v > 0.0,
        "allow_partial" => v == 0.0 || v == 1.0,
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match field {
        "fees" => format!("must be finite and > -1, got {v}"),
        "fixed_fees" => format!("must be finite, got {v}"),
        "slippage" | "min_size" => format!("must be finite and >= 0, got {v}"),
        "max_size" => format!("must be > 0, got {v}"),
        "size_granularity" => format!("must be finite and > 0, got {v}"),
        "val_price" => {
            format!("must be > 0, inf (the order price), -inf (the previous close) or NaN, got {v}")
        }
        "allow_partial" => format!("must be a bool, got {v}"),
        _ => format!("must be >= 0 (inf: never fires), got {v}"),
    })
}

// ------------------------------------------------------------------ vectorbt's float rules

const REL_TOL: f64 = 1e-9;
const ABS_TOL: f64 = 1e-12;

fn is_close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return false;
    }
    a == b || (a - b).abs() <= (REL_TOL * a.abs().max(b.abs())).max(ABS_TOL)
}

fn is_close_or_less(a: f64, b: f64) -> bool {
    is_close(a, b) || a < b
}

fn is_less(a: f64, b: f64) -> bool {
    !is_close(a, b) && a < b
}

/// NumPy's sign: -1, 0 or 1 (NaN for NaN).
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// `a + b`, snapped to exactly zero when it is zero within tolerance.
fn add(a: f64, b: f64) -> f64 {
    let zero = if sign(a) != sign(b) {
        is_close(a.abs(), b.abs())
    } else {
        is_close(a + b, 0.0)
    };
    if zero {
        0.0
    } else {
        a + b
    }
}

// ------------------------------------------------------------------ order execution

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    LongOnly,
    ShortOnly,
    Both,
}

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    cash: f64,
    position: f64,
    debt: f64,
    free_cash: f64,
}

#[derive(Debug, Clone, Copy)]
struct Request {
    /// Signed: > 0 buys, < 0 sells.
    size: f64,
    kind: SignalSize,
    dir: Dir,
    price: f64,
    slippage: f64,
}

/// What an order costs and how it may be sized: the settings of its bar.
#[derive(Debug, Clone, Copy)]
struct Costs {
    fees: f64,
    fixed_fees: f64,
    min_size: f64,
    max_size: f64,
    size_granularity: f64,
    allow_partial: bool,
}

#[derive(Debug, Clone, Copy)]
struct Executed {
    side: Side,
    size: f64,
    price: f64,
    fees: f64,
}

fn snap(x: f64) -> f64 {
    if is_close(x, 0.0) {
        0.0
    } else {
        x
    }
}

/// A divisor vectorbt divides by: zero (a price of 0 after `slippage=1`, or
/// `fees=-1`) raises there (`ZeroDivisionError`), and is refused here.
fn nonzero(x: f64, field: &'static str) -> EngineResult<f64> {
    if x == 0.0 {
        return Err(EngineError::config(
            field,
            "sizing this order from cash divides by zero (a price of 0 after slippage, or fees of -100%)",
        ));
    }
    Ok(x)
}

fn floor_to(x: f64, g: f64) -> f64 {
    if g.is_nan() {
        x
    } else {
        floor_div(x, g) * g
    }
}

/// Python's float `x // g` (vectorbt's granularity rounding): the floor of the exact
/// quotient, from the remainder, so `0.97 // 0.01` is 96 where `floor(0.97 / 0.01)` is 97.
pub(super) fn floor_div(x: f64, g: f64) -> f64 {
    let rem = x % g;
    let mut div = (x - rem) / g;
    if rem != 0.0 && ((g < 0.0) != (rem < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let floor = div.floor();
        if div - floor > 0.5 {
            floor + 1.0
        } else {
            floor
        }
    } else {
        (0.0f64).copysign(x / g)
    }
}

/// Why an order placed nothing, in vectorbt's terms: ignored (nothing to do), or
/// rejected (with the reason, which `raise_reject` raises).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Skip {
    Ignored,
    Rejected(&'static str),
}

/// What executing an order gives: a fill, or why there is none.
type Executes = EngineResult<Result<Executed, Skip>>;

fn ignored() -> Executes {
    Ok(Err(Skip::Ignored))
}

fn rejected(why: &'static str) -> Executes {
    Ok(Err(Skip::Rejected(why)))
}

/// Executes `req` against the account.
fn execute(acct: &mut Account, req: &Request, cfg: &Costs, val_price: f64) -> Executes {
    *acct = Account {
        cash: snap(acct.cash),
        position: snap(acct.position),
        debt: snap(acct.debt),
        free_cash: snap(acct.free_cash),
    };
    let val_price = snap(val_price);
    if req.size.is_nan() || req.price.is_nan() {
        return ignored();
    }
    if acct.cash.is_nan() || acct.cash < 0.0 {
        return Err(EngineError::Internal(format!(
            "cash went negative ({})",
            acct.cash
        )));
    }
    if !(req.price.is_finite() && req.price > 0.0) {
        return Err(EngineError::Internal(format!(
            "order price {} is not finite and > 0",
            req.price
        )));
    }
    let mut size = req.size;
    let mut kind = req.kind;
    if kind == SignalSize::Value {
        if val_price.is_nan() {
            return ignored();
        }
        if val_price.is_infinite() || val_price <= 0.0 {
            // vectorbt raises here ("val_price_now must be finite and greater than 0")
            return Err(EngineError::config(
                "val_price",
                format!("a value order needs a valuation price > 0, got {val_price}"),
            ));
        }
        size /= val_price;
        kind = SignalSize::Amount;
    }
    if kind == SignalSize::Amount && req.dir != Dir::LongOnly && size < 0.0 && size.is_infinite() {
        // an infinite short is 100% of what can be sold
        size = -1.0;
        kind = SignalSize::Percent;
    }
    let mut percent = f64::NAN;
    if kind == SignalSize::Percent {
        percent = size.abs();
        size = sign(size) * f64::INFINITY;
    }
    if size > 0.0 {
        buy(acct, size, req, cfg, percent)
    } else {
        sell(acct, -size, req, cfg, percent)
    }
}

fn buy(acct: &mut Account, size: f64, req: &Request, cfg: &Costs, percent: f64) -> Executes {
    let a = *acct;
    let adj_price = req.price * (1.0 + req.slippage);
    let mut cash_limit = a.cash;
    if !percent.is_nan() {
        cash_limit = cash_limit.min(percent * cash_limit);
    }
    if req.dir == Dir::ShortOnly {
        if a.position == 0.0 {
            return rejected("no open position to reduce");
        }
    } else if cash_limit == 0.0 {
        return rejected("no cash to buy with");
    }
    let mut adj_size = if req.dir == Dir::ShortOnly {
        (-a.position).min(size)
    } else {
        size
    };
    if adj_size == 0.0 {
        return ignored();
    }
    if adj_size > cfg.max_size {
        if !cfg.allow_partial {
            return rejected("the size exceeds max_size");
        }
        adj_size = cfg.max_size;
    }
    adj_size = floor_to(adj_size, cfg.size_granularity);
    let req_cash = adj_size * adj_price;
    let req_fees = req_cash * cfg.fees + cfg.fixed_fees;
    let total_req_cash = req_cash + req_fees;
    let (final_size, fees_paid, final_req_cash) = if is_close_or_less(total_req_cash, cash_limit) {
        (adj_size, req_fees, total_req_cash)
    } else {
        // the cash buys less than asked: all of it, fees included
        let max_req_cash = add(cash_limit, -cfg.fixed_fees) / nonzero(1.0 + cfg.fees, "fees")?;
        if max_req_cash <= 0.0 {
            return rejected("the cash does not cover the fees");
        }
        let max_acq_size = max_req_cash / adj_price;
        if cfg.size_granularity.is_nan() {
            (max_acq_size, cash_limit - max_req_cash, cash_limit)
        } else {
            let s = floor_to(max_acq_size, cfg.size_granularity);
            let cost = s * adj_price;
            let fees = cost * cfg.fees + cfg.fixed_fees;
            (s, fees, cost + fees)
        }
    };
    if is_close(adj_size, 0.0) {
        return ignored();
    }
    if is_less(final_size, cfg.min_size) {
        return rejected("the size is below min_size");
    }
    if !cfg.allow_partial && size.is_finite() && is_less(final_size, size) {
        return rejected("it would fill only in part");
    }
    let new_position = add(a.position, final_size);
    let (debt, free_cash) = if a.position < 0.0 {
        let short_size = if new_position < 0.0 {
            final_size
        } else {
            a.position.abs()
        };
        let avg_entry = a.debt / a.position.abs();
        let debt_diff = short_size * avg_entry;
        (
            add(a.debt, -debt_diff),
            add(a.free_cash + 2.0 * debt_diff, -final_req_cash),
        )
    } else {
        (a.debt, add(a.free_cash, -final_req_cash))
    };
    *acct = Account {
        cash: add(a.cash, -final_req_cash),
        position: new_position,
        debt,
        free_cash,
    };
    Ok(Ok(Executed {
        side: Side::Buy,
        size: final_size,
        price: adj_price,
        fees: fees_paid,
    }))
}

fn sell(acct: &mut Account, size: f64, req: &Request, cfg: &Costs, percent: f64) -> Executes {
    let a = *acct;
    let adj_price = req.price * (1.0 - req.slippage);
    let mut size_limit = if req.dir == Dir::LongOnly {
        a.position.min(size)
    } else if size.is_infinite() && !percent.is_nan() {
        // the most that can be sold: the long position, then free cash's worth of short
        let long_size = a.position.max(0.0);
        let long_cash = long_size * adj_price * (1.0 - cfg.fees);
        let total_free_cash = add(a.free_cash, long_cash);
        if total_free_cash <= 0.0 {
            if a.position <= 0.0 {
                return rejected("no free cash to sell short");
            }
            long_size
        } else {
            let max_short_size = add(total_free_cash, -cfg.fixed_fees)
                / nonzero(adj_price * (1.0 + cfg.fees), "slippage")?;
            let limit = add(long_size, max_short_size);
            if limit <= 0.0 {
                return rejected("the cash does not cover the fees");
            }
            limit
        }
    } else {
        size
    };
    if !percent.is_nan() {
        size_limit *= percent;
    }
    if size_limit > cfg.max_size {
        if !cfg.allow_partial {
            return rejected("the size exceeds max_size");
        }
        size_limit = cfg.max_size;
    }
    if req.dir == Dir::LongOnly {
        if a.position == 0.0 {
            return rejected("no open position to reduce");
        }
    } else if size_limit.is_infinite() {
        return Err(EngineError::Internal(
            "attempt to go short infinitely".into(),
        ));
    }
    size_limit = floor_to(size_limit, cfg.size_granularity);
    if is_close(size_limit, 0.0) {
        return ignored();
    }
    if is_less(size_limit, cfg.min_size) {
        return rejected("the size is below min_size");
    }
    if !cfg.allow_partial && size.is_finite() && is_less(size_limit, size) {
        return rejected("it would fill only in part");
    }
    let acq_cash = size_limit * adj_price;
    let fees_paid = acq_cash * cfg.fees + cfg.fixed_fees;
    let final_acq_cash = add(acq_cash, -fees_paid);
    if final_acq_cash < 0.0 {
        // the proceeds do not cover the fees
        return rejected("the proceeds do not cover the fees");
    }
    let new_position = add(a.position, -size_limit);
    let (debt, free_cash) = if new_position < 0.0 {
        let short_size = if a.position < 0.0 {
            size_limit
        } else {
            new_position.abs()
        };
        let short_value = short_size * adj_price;
        (
            a.debt + short_value,
            add(a.free_cash, add(final_acq_cash, -2.0 * short_value)),
        )
    } else {
        (a.debt, a.free_cash + final_acq_cash)
    };
    *acct = Account {
        cash: a.cash + final_acq_cash,
        position: new_position,
        debt,
        free_cash,
    };
    Ok(Ok(Executed {
        side: Side::Sell,
        size: size_limit,
        price: adj_price,
        fees: fees_paid,
    }))
}

// ------------------------------------------------------------------ signal resolution

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Flags {
    long_entry: bool,
    long_exit: bool,
    short_entry: bool,
    short_exit: bool,
}

/// vectorbt resolves each direction's conflict with that direction fixed, so
/// "adjacent" keeps the entry and "opposite" keeps the exit whenever a position is open.
fn resolve_conflict(position: f64, entry: bool, exit: bool, mode: ConflictMode) -> (bool, bool) {
    if !(entry && exit) {
        return (entry, exit);
    }
    match mode {
        ConflictMode::Entry => (true, false),
        ConflictMode::Exit => (false, true),
        ConflictMode::Adjacent if position != 0.0 => (true, false),
        ConflictMode::Opposite if position != 0.0 => (false, true),
        _ => (false, false),
    }
}

fn resolve_dir_conflict(
    position: f64,
    long: bool,
    short: bool,
    mode: DirConflictMode,
) -> (bool, bool) {
    if !(long && short) {
        return (long, short);
    }
    match mode {
        DirConflictMode::Long => (true, false),
        DirConflictMode::Short => (false, true),
        DirConflictMode::Adjacent if position > 0.0 => (true, false),
        DirConflictMode::Adjacent if position < 0.0 => (false, true),
        DirConflictMode::Opposite if position > 0.0 => (false, true),
        DirConflictMode::Opposite if position < 0.0 => (true, false),
        _ => (false, false),
    }
}

fn resolve_opposite_entry(
    position: f64,
    f: &mut Flags,
    accumulate: &mut Accumulate,
    mode: OppositeEntryMode,
) {
    let (entry, exit) = if position > 0.0 && f.short_entry {
        (&mut f.short_entry, &mut f.long_exit)
    } else if position < 0.0 && f.long_entry {
        (&mut f.long_entry, &mut f.short_exit)
    } else {
        return;
    };
    match mode {
        OppositeEntryMode::Ignore => *entry = false,
        OppositeEntryMode::Close => {
            *entry = false;
            *exit = true;
            *accumulate = Accumulate::Disabled;
        }
        OppositeEntryMode::CloseReduce => {
            *entry = false;
            *exit = true;
        }
        OppositeEntryMode::Reverse => *accumulate = Accumulate::Disabled,
        OppositeEntryMode::ReverseReduce => {}
    }
}

/// The signals of bar `i` after vectorbt's conflict rules, against `position`.
fn read_signals(
    inp: &SignalInput<'_>,
    i: usize,
    position: f64,
    cfg: &SignalConfig,
) -> (Flags, Accumulate) {
    let mut f = Flags {
        long_entry: inp.long_entries[i] != 0,
        long_exit: inp.long_exits[i] != 0,
        short_entry: inp.short_entries[i] != 0,
        short_exit: inp.short_exits[i] != 0,
    };
    let mut accumulate = cfg.accumulate;
    if f.long_entry || f.short_entry {
        (f.long_entry, f.long_exit) =
            resolve_conflict(position, f.long_entry, f.long_exit, cfg.upon_long_conflict);
        (f.short_entry, f.short_exit) = resolve_conflict(
            position,
            f.short_entry,
            f.short_exit,
            cfg.upon_short_conflict,
        );
        (f.long_entry, f.short_entry) =
            resolve_dir_conflict(position, f.long_entry, f.short_entry, cfg.upon_dir_conflict);
        resolve_opposite_entry(position, &mut f, &mut accumulate, cfg.upon_opposite_entry);
    }
    (f, accumulate)
}

fn stop_signal(position: f64, mode: StopExitMode, accumulate: Accumulate) -> (Flags, Accumulate) {
    let mut f = Flags::default();
    let long = position > 0.0;
    if position == 0.0 || position.is_nan() {
        return (f, accumulate);
    }
    let reverse = matches!(mode, StopExitMode::Reverse | StopExitMode::ReverseReduce);
    match (long, reverse) {
        (true, false) => f.long_exit = true,
        (true, true) => f.short_entry = true,
        (false, false) => f.short_exit = true,
        (false, true) => f.long_entry = true,
    }
    let keep = matches!(
        mode,
        StopExitMode::CloseReduce | StopExitMode::ReverseReduce
    );
    (
        f,
        if keep {
            accumulate
        } else {
            Accumulate::Disabled
        },
    )
}

/// vectorbt's `signals_to_size_nb`: the signed order size, how to read it, and its direction.
fn signals_to_size(
    position: f64,
    f: Flags,
    size: f64,
    kind: SignalSize,
    accumulate: Accumulate,
    val_price: f64,
) -> EngineResult<(f64, SignalSize, Dir)> {
    let removes = matches!(accumulate, Accumulate::Both | Accumulate::RemoveOnly);
    let adds = matches!(accumulate, Accumulate::Both | Accumulate::AddOnly);
    let reverse = |abs_pos: f64| -> EngineResult<f64> {
        if size.is_nan() {
            // no size on this bar: the reversal only closes
            return Ok(abs_pos);
        }
        match kind {
            SignalSize::Percent => Err(EngineError::config(
                "size_type",
                "size_type 'percent' cannot reverse a position (vectorbt refuses it too)",
            )),
            SignalSize::Value => Ok(abs_pos + size / val_price),
            _ => Ok(abs_pos + size),
        }
    };
    let abs_pos = position.abs();
    let out = if position > 0.0 {
        if f.short_entry {
            if removes {
                (-size, kind, Dir::Both)
            } else {
                (-reverse(abs_pos)?, SignalSize::Amount, Dir::Both)
            }
        } else if f.long_exit {
            if removes {
                (-size, kind, Dir::LongOnly)
            } else {
                (-abs_pos, SignalSize::Amount, Dir::LongOnly)
            }
        } else if f.long_entry && adds {
            (size, kind, Dir::LongOnly)
        } else {
            (0.0, kind, Dir::LongOnly)
        }
    } else if position < 0.0 {
        if f.long_entry {
            if removes {
                (size, kind, Dir::Both)
            } else {
                (reverse(abs_pos)?, SignalSize::Amount, Dir::Both)
            }
        } else if f.short_exit {
            if removes {
                (size, kind, Dir::ShortOnly)
            } else {
                (abs_pos, SignalSize::Amount, Dir::ShortOnly)
            }
        } else if f.short_entry && adds {
            (-size, kind, Dir::ShortOnly)
        } else {
            (0.0, kind, Dir::ShortOnly)
        }
    } else if f.long_entry {
        (size, kind, Dir::Both)
    } else if f.short_entry {
        (-size, kind, Dir::Both)
    } else {
        (0.0, kind, Dir::Both)
    };
    Ok(out)
}

/// vectorbt's `get_stop_price_nb`: where a stop `stop` away from `from` fills in
/// this bar (the open when the bar gaps through it), or NaN.
fn stop_price(
    position: f64,
    from: f64,
    stop: f64,
    open: f64,
    low: f64,
    high: f64,
    below: bool,
) -> f64 {
    if (position > 0.0 && below) || (position < 0.0 && !below) {
        let level = from * (1.0 - stop);
        if open <= level {
            return open;
        }
        if low <= level && level <= high {
            return level;
        }
    } else if position != 0.0 {
        let level = from * (1.0 + stop);
        if level <= open {
            return open;
        }
        if low <= level && level <= high {
            return level;
        }
    }
    f64::NAN
}

// ------------------------------------------------------------------ the walk

/// Where equity rows go: kept (`Vec`) or folded into the stats (`StatsSink`).
trait EquitySink {
    fn push(&mut self, bar: usize, row: EquityRow);

    /// Whether trades need their excursions (the stats have no use for them).
    fn excursions(&self) -> bool {
        true
    }

    /// Bars `from..to` held with an unchanged account: one row each.
    fn hold(
        &mut self,
        inp: &SignalInput<'_>,
        _blocks: Option<&Blocks>,
        from: usize,
        to: usize,
        cash: f64,
        qty: f64,
    ) {
        for k in from..to {
            let c = inp.close[k];
            self.push(
                k,
                EquityRow {
                    ts: inp.ts[k],
                    cash,
                    equity: cash + qty * c,
                    gross_exposure: qty.abs() * c,
                },
            );
        }
    }
}

/// No rows at all: for runs whose equity is asked for later, if ever.
impl EquitySink for () {
    fn push(&mut self, _bar: usize, _row: EquityRow) {}
    fn hold(
        &mut self,
        _: &SignalInput<'_>,
        _: Option<&Blocks>,
        _: usize,
        _: usize,
        _: f64,
        _: f64,
    ) {
    }
}

impl EquitySink for Vec<EquityRow> {
    fn push(&mut self, _bar: usize, row: EquityRow) {
        Vec::push(self, row)
    }
}

/// The bars where any mask is set: the only bars (with the first and last, and
/// stop hits) that need the full per-bar logic.
pub(super) fn signal_bars(inp: &SignalInput<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    let (a, b, c, d) = (
        inp.long_entries,
        inp.long_exits,
        inp.short_entries,
        inp.short_exits,
    );
    let n = a.len();
    let word = |m: &[u8], k: usize| u64::from_ne_bytes(m[k..k + 8].try_into().unwrap_or([0; 8]));
    let mut k = 0;
    // eight bars at a time: most words hold no signal at all
    while k + 8 <= n {
        if (word(a, k) | word(b, k) | word(c, k) | word(d, k)) != 0 {
            for j in k..k + 8 {
                if (a[j] | b[j] | c[j] | d[j]) != 0 {
                    out.push(j);
                }
            }
        }
        k += 8;
    }
    for j in k..n {
        if (a[j] | b[j] | c[j] | d[j]) != 0 {
            out.push(j);
        }
    }
    out
}

/// Bars per summary block.
const BLOCK: usize = 64;

/// Per block of `BLOCK` bars (the last one may be short): the lowest low, highest
/// high, lowest and highest close. A sweep computes them once; each variant then
/// skips whole blocks where no stop can fire and equity makes no new high.
pub(super) struct Blocks {
    low: Vec<f64>,
    high: Vec<f64>,
    close_min: Vec<f64>,
    close_max: Vec<f64>,
}

impl Blocks {
    pub(super) fn new(inp: &SignalInput<'_>) -> Self {
        // prices are finite (validated bars): plain comparisons, which vectorize
        let min = |v: &[f64]| -> Vec<f64> {
            v.chunks(BLOCK)
                .map(|c| {
                    c.iter()
                        .fold(f64::INFINITY, |m, &x| if x < m { x } else { m })
                })
                .collect()
        };
        let max = |v: &[f64]| -> Vec<f64> {
            v.chunks(BLOCK)
                .map(|c| {
                    c.iter()
                        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m })
                })
                .collect()
        };
        Blocks {
            low: min(inp.low),
            high: max(inp.high),
            close_min: min(inp.close),
            close_max: max(inp.close),
        }
    }

    /// The block starting at bar `k`, when `k` starts one that ends by `to`.
    fn whole(k: usize, to: usize) -> Option<usize> {
        (k % BLOCK == 0 && k + BLOCK <= to).then_some(k / BLOCK)
    }
}

/// Terms of the power series of beta's cross term per block.
const SERIES_TERMS: usize = 12;

/// Beta's cross term (`CrossSum`) over one whole block of held bars, for any account,
/// from sums over the block that every variant shares. Held with cash `C` and
/// quantity `q`, a bar's equity is `v = C + q c`; around the close `P` of the bar
/// before the block, with `s = (c - P) / P` and `w = q P / (C + q P)`,
/// `ln v = ln(C + q P) + ln(1 + w s)`, so a bar's equity log return is
/// `sum_m (-1)^(m+1) w^m (s_k^m - s_(k-1)^m) / m`, and the block's cross term
/// `sum_m w^m S_m` with `S_m = (-1)^(m+1) / m * sum_k (s_k^m - s_(k-1)^m) r_k`
/// (`r_k` the close's log return). With `|w| max|s| <= SERIES_BOUND`, the terms left
/// out are below `SERIES_BOUND^12` (2e-17) of the bar's own.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockSeries {
    p: f64,
    /// The largest `|s|` in the block.
    d: f64,
    s: [f64; SERIES_TERMS],
}

const SERIES_BOUND: f64 = 0.04;

impl BlockSeries {
    /// Per block of `BLOCK` bars (the first and a last short one have none: never
    /// whole inside a run after its first bar).
    pub(super) fn blocks(close: &[f64], log_returns: &[f64]) -> Vec<BlockSeries> {
        let none = BlockSeries {
            p: f64::NAN,
            d: f64::NAN,
            s: [0.0; SERIES_TERMS],
        };
        let whole = close.len() / BLOCK;
        let mut out = vec![none; whole];
        for (b, out) in out.iter_mut().enumerate().skip(1) {
            let p = close[b * BLOCK - 1];
            let (mut t, mut d, mut prev) = ([0.0; SERIES_TERMS], 0.0f64, 0.0f64);
            for k in b * BLOCK..(b + 1) * BLOCK {
                let (r, s) = (log_returns[k], (close[k] - p) / p);
                // the first term from the close's own change: one rounding
                t[0] += (close[k] - close[k - 1]) / p * r;
                let (mut a, mut c) = (s, prev);
                for tm in t.iter_mut().skip(1) {
                    a *= s;
                    c *= prev;
                    *tm += (a - c) * r;
                }
                d = d.max(s.abs());
                prev = s;
            }
            for (m, tm) in t.iter_mut().enumerate() {
                let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
                *tm *= sign / (m + 1) as f64;
            }
            *out = BlockSeries { p, d, s: t };
        }
        out
    }

    /// The block's cross term held with `cash` and `qty`, when the series converges
    /// fast enough.
    #[inline]
    pub(super) fn cross(&self, cash: f64, qty: f64) -> Option<f64> {
        let w = qty * self.p / (cash + qty * self.p);
        if !(w.abs() * self.d <= SERIES_BOUND) {
            return None;
        }
        let mut acc = 0.0;
        for &sm in self.s.iter().rev() {
            acc = sm + w * acc;
        }
        Some(w * acc)
    }
}

#[derive(Debug, Clone, Copy)]
struct Stops {
    sl_from: f64,
    sl_stop: f64,
    sl_trail: bool,
    tp_from: f64,
    tp_stop: f64,
}

impl Stops {
    const NONE: Stops = Stops {
        sl_from: f64::NAN,
        sl_stop: f64::NAN,
        sl_trail: false,
        tp_from: f64::NAN,
        tp_stop: f64::NAN,
    };

    fn armed(&self) -> bool {
        !self.sl_stop.is_nan() || !self.tp_stop.is_nan()
    }

    /// After a fill took the position from `before` to `now`: vectorbt re-arms both
    /// stops on an open or a reversal, each non-NaN stop on an increase (`override`).
    /// `sl_stop` and `tp_stop` are the values of the order's bar.
    fn update(
        &mut self,
        before: f64,
        now: f64,
        from: f64,
        (sl_stop, tp_stop): (f64, f64),
        cfg: &SignalConfig,
    ) {
        if now == 0.0 {
            *self = Stops::NONE;
        } else if before == 0.0 || sign(now) != sign(before) {
            *self = Stops {
                sl_from: from,
                sl_stop: sl_stop,
                sl_trail: cfg.sl_trail,
                tp_from: from,
                tp_stop: tp_stop,
            };
        } else if now.abs() > before.abs() {
            let update = |stop: f64| match cfg.upon_stop_update {
                StopUpdateMode::Keep => false,
                StopUpdateMode::Override => !stop.is_nan(),
                StopUpdateMode::OverrideNaN => true,
            };
            if update(sl_stop) {
                self.sl_from = from;
                self.sl_stop = sl_stop;
                self.sl_trail = cfg.sl_trail;
            }
            if update(tp_stop) {
                self.tp_from = from;
                self.tp_stop = tp_stop;
            }
        }
    }
}

struct Walk<'a, S: EquitySink> {
    inp: SignalInput<'a>,
    cfg: &'a SignalConfig,
    acct: Account,
    stops: Stops,
    ledger: Position,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    sink: &'a mut S,
    signal_bars: &'a [usize],
    blocks: Option<&'a Blocks>,
    /// The valuation price of a per-bar price series (its last non-NaN value up to
    /// bar `val_seen - 1`).
    last_val: f64,
    val_seen: usize,
    /// The symbol code of the fills and trades.
    code: usize,
}

impl<'a, S: EquitySink> Walk<'a, S> {
    fn new(
        inp: SignalInput<'a>,
        cfg: &'a SignalConfig,
        signal_bars: &'a [usize],
        blocks: Option<&'a Blocks>,
        sink: &'a mut S,
        code: usize,
    ) -> Self {
        Walk {
            inp,
            cfg,
            acct: Account {
                cash: cfg.init_cash,
                position: 0.0,
                debt: 0.0,
                free_cash: cfg.init_cash,
            },
            stops: Stops::NONE,
            ledger: Position::default(),
            fills: Vec::new(),
            trades: Vec::new(),
            sink,
            signal_bars,
            blocks,
            last_val: f64::NAN,
            val_seen: 0,
            code,
        }
    }

    /// The next bar from `i` on with a signal (`cursor` remembers the search), or the
    /// last bar, which always gets the full treatment (it records a row).
    fn next_signal_bar(&self, i: usize, cursor: &mut usize) -> usize {
        let (sig, n) = (self.signal_bars, self.inp.ts.len());
        while *cursor < sig.len() && sig[*cursor] < i {
            *cursor += 1;
        }
        sig.get(*cursor).map_or(n - 1, |&b| b.min(n - 1))
    }

    /// The open position at the end, as an open trade record.
    fn open_trade(&self) -> Option<Trade> {
        let (ts, close) = (self.inp.ts, self.inp.close);
        match (self.ledger.qty != 0.0, ts.last(), close.last()) {
            (true, Some(&ts), Some(&mark)) => Some(open_trade(self.code, &self.ledger, ts, mark)),
            _ => None,
        }
    }

    /// The settings of an order whose signal is on bar `row`.
    fn costs(&self, row: usize) -> Costs {
        let (cfg, pb) = (self.cfg, &self.inp.per_bar);
        Costs {
            fees: at(pb.fees, row, cfg.fees),
            fixed_fees: at(pb.fixed_fees, row, cfg.fixed_fees),
            min_size: at(pb.min_size, row, cfg.min_size),
            max_size: at(pb.max_size, row, cfg.max_size),
            size_granularity: at(pb.size_granularity, row, cfg.size_granularity),
            allow_partial: at(
                pb.allow_partial,
                row,
                f64::from(u8::from(cfg.allow_partial)),
            ) != 0.0,
        }
    }

    fn slippage(&self, row: usize) -> f64 {
        at(self.inp.per_bar.slippage, row, self.cfg.slippage)
    }

    /// The order price of bar `i` with `price="close"`: the close or the price series.
    fn order_price(&self, i: usize) -> f64 {
        at(self.inp.per_bar.price, i, self.inp.close[i])
    }

    /// vectorbt's valuation price of bar `i` before forward filling: `val_price`
    /// resolved (`inf`: the order price `p`, `-inf`: the previous close).
    fn own_val_price(&self, i: usize, p: f64) -> f64 {
        let v = at(self.inp.per_bar.val_price, i, self.cfg.val_price);
        if v == f64::INFINITY {
            p
        } else if v == f64::NEG_INFINITY {
            if i > 0 {
                self.inp.close[i - 1]
            } else {
                f64::NAN
            }
        } else {
            v
        }
    }

    /// The order price and valuation price of bar `i` with `price="close"`. vectorbt
    /// resolves the valuation price of every bar and, with `ffill_val_price`, keeps
    /// the last non-NaN one; the bars skipped since the last call are looked at
    /// backwards, up to the first known price.
    fn close_prices(&mut self, i: usize) -> (f64, f64) {
        let (pb, cfg) = (&self.inp.per_bar, self.cfg);
        if pb.price.is_empty() && pb.val_price.is_empty() && cfg.val_price == f64::INFINITY {
            let c = self.inp.close[i];
            return (c, c);
        }
        let p = self.order_price(i);
        if !cfg.ffill_val_price {
            self.last_val = self.own_val_price(i, p);
        } else {
            let mut j = i + 1;
            while j > self.val_seen {
                j -= 1;
                let v = if j == i {
                    self.own_val_price(j, p)
                } else {
                    self.own_val_price(j, self.order_price(j))
                };
                if !v.is_nan() {
                    self.last_val = v;
                    break;
                }
            }
        }
        self.val_seen = i + 1;
        (p, self.last_val)
    }

    /// The valuation price of a fill at bar `i`'s open with `price="next_open"`:
    /// the open (`val_price=inf`) or the signal bar's close (`-inf`).
    fn open_val_price(&self, i: usize) -> f64 {
        if self.cfg.val_price == f64::NEG_INFINITY {
            if i > 0 {
                self.inp.close[i - 1]
            } else {
                f64::NAN
            }
        } else {
            self.inp.open[i]
        }
    }

    fn touch(&mut self, x: f64) {
        if self.ledger.qty != 0.0 {
            self.ledger.min_price = self.ledger.min_price.min(x);
            self.ledger.max_price = self.ledger.max_price.max(x);
        }
    }

    /// Turns `flags` into an order at `price` and executes it; records the fill and re-arms stops.
    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        i: usize,
        row: usize,
        f: Flags,
        accumulate: Accumulate,
        price: f64,
        slippage: f64,
        val_price: f64,
        stop_reason: Option<FillReason>,
    ) -> EngineResult<bool> {
        let cfg = self.cfg;
        let before = self.acct.position;
        let (mut size, mut kind) = (at(self.inp.per_bar.size, row, cfg.size), cfg.size_type);
        if kind == SignalSize::PercentEquity {
            let value = self.acct.cash + before * val_price;
            size *= value;
            kind = SignalSize::Value;
        }
        let (size, kind, dir) = signals_to_size(before, f, size, kind, accumulate, val_price)?;
        if size == 0.0 {
            return Ok(false);
        }
        let req = Request {
            size,
            kind,
            dir,
            price,
            slippage,
        };
        let costs = self.costs(row);
        let done = match execute(&mut self.acct, &req, &costs, val_price)? {
            Ok(done) => done,
            Err(Skip::Rejected(why)) if cfg.raise_reject => {
                return Err(EngineError::config(
                    "raise_reject",
                    format!("the order of row {row} was rejected: {why}"),
                ));
            }
            Err(_) => return Ok(false),
        };
        let now = self.acct.position;
        let ts = self.inp.ts[i];
        let id = self.fills.len() as i64;
        let held = self.ledger.qty;
        let reason =
            stop_reason.unwrap_or(if held == 0.0 || (held > 0.0) == (done.side == Side::Buy) {
                FillReason::Entry
            } else {
                FillReason::Exit
            });
        self.fills.push(Fill {
            order_id: id,
            ts,
            symbol: self.code,
            side: done.side,
            qty: done.size,
            price: done.price,
            fee: done.fees,
            reason,
        });
        // the ledger follows the account exactly to flat (the account snaps dust)
        let delta = if now == 0.0 {
            -held
        } else {
            done.side.sign() * done.size
        };
        if delta != 0.0 {
            book_fill(
                &mut self.ledger,
                &mut self.trades,
                self.code,
                delta,
                done.price,
                ts,
                done.fees,
                reason,
                id,
            );
        }
        self.touch(price);
        let from = match cfg.stop_entry_price {
            StopEntryPrice::ValPrice => val_price,
            StopEntryPrice::Price => price,
            StopEntryPrice::FillPrice => done.price,
            StopEntryPrice::Close => self.inp.close[i],
        };
        let pb = &self.inp.per_bar;
        let levels = (
            at(pb.sl_stop, row, cfg.sl_stop),
            at(pb.tp_stop, row, cfg.tp_stop),
        );
        self.stops.update(before, now, from, levels, cfg);
        Ok(true)
    }

    /// Checks the armed stops against bar `i` and exits if one is hit; then raises
    /// a trailing stop's reference to the bar's extreme. Returns whether a stop fired.
    fn stops(&mut self, i: usize, price: f64, val_price: f64) -> EngineResult<bool> {
        if !self.stops.armed() {
            return Ok(false);
        }
        let inp = self.inp;
        let (o, h, l, c) = (inp.open[i], inp.high[i], inp.low[i], inp.close[i]);
        let position = self.acct.position;
        let st = self.stops;
        let mut hit = f64::NAN;
        let mut reason = FillReason::StopLoss;
        if !st.sl_stop.is_nan() {
            hit = stop_price(position, st.sl_from, st.sl_stop, o, l, h, true);
            if st.sl_trail {
                reason = FillReason::TrailingStop;
            }
        }
        if hit.is_nan() && !st.tp_stop.is_nan() {
            hit = stop_price(position, st.tp_from, st.tp_stop, o, l, h, false);
            reason = FillReason::TakeProfit;
        }
        if !st.sl_stop.is_nan() && st.sl_trail {
            if position > 0.0 && h > st.sl_from {
                self.stops.sl_from = h;
            } else if position < 0.0 && l < st.sl_from {
                self.stops.sl_from = l;
            }
        }
        if hit.is_nan() {
            return Ok(false);
        }
        self.touch(hit);
        let (f, accumulate) = stop_signal(position, self.cfg.upon_stop_exit, self.cfg.accumulate);
        let slip = self.slippage(i);
        let (price, slippage) = match self.cfg.stop_exit_price {
            StopExitPrice::StopMarket => (hit, slip),
            StopExitPrice::StopLimit => (hit, 0.0),
            StopExitPrice::Close => (c, slip),
            StopExitPrice::Price => (price, slip),
        };
        self.order(
            i,
            i,
            f,
            accumulate,
            price,
            slippage,
            val_price,
            Some(reason),
        )?;
        Ok(true)
    }

    /// The first bar in `from..to` where an armed stop fires (`to` if none); a
    /// trailing reference rises over the bars before it, as bar-by-bar processing
    /// would raise it. With valid bars (low <= open <= high), `get_stop_price`'s
    /// "open beyond the level, or the level within the range" is "the range reaches it".
    fn first_stop_bar(&mut self, from: usize, to: usize) -> usize {
        let st = self.stops;
        if !st.armed() {
            return to;
        }
        let (low, high) = (self.inp.low, self.inp.high);
        let long = self.acct.position > 0.0;
        let tp = if st.tp_stop.is_nan() {
            f64::NAN
        } else if long {
            st.tp_from * (1.0 + st.tp_stop)
        } else {
            st.tp_from * (1.0 - st.tp_stop)
        };
        let sl_level = |from: f64| {
            if long {
                from * (1.0 - st.sl_stop)
            } else {
                from * (1.0 + st.sl_stop)
            }
        };
        // NaN levels compare false: "no stop"
        let (mut below, mut above) = if long { (f64::NAN, tp) } else { (tp, f64::NAN) };
        if st.sl_stop.is_nan() || !st.sl_trail {
            if !st.sl_stop.is_nan() {
                if long {
                    below = sl_level(st.sl_from);
                } else {
                    above = sl_level(st.sl_from);
                }
            }
            if self.blocks.is_none() {
                return (from..to)
                    .find(|&k| low[k] <= below || high[k] >= above)
                    .unwrap_or(to);
            }
            let mut k = from;
            while k < to {
                if let (Some(b), Some(bl)) = (Blocks::whole(k, to), self.blocks) {
                    if !(bl.low[b] <= below || bl.high[b] >= above) {
                        k += BLOCK;
                        continue;
                    }
                }
                if low[k] <= below || high[k] >= above {
                    return k;
                }
                k += 1;
            }
            return to;
        }
        let mut peak = st.sl_from;
        let mut k = from;
        while k < to {
            if let (Some(b), Some(bl)) = (Blocks::whole(k, to), self.blocks) {
                // the reference only moves one way within the block, and the level
                // with it: the level nearest the price is at one of the two ends
                let end_peak = if long {
                    peak.max(bl.high[b])
                } else {
                    peak.min(bl.low[b])
                };
                let (l0, l1) = (sl_level(peak), sl_level(end_peak));
                let quiet = if long {
                    !(bl.low[b] <= l0.max(l1) || bl.high[b] >= above)
                } else {
                    !(bl.high[b] >= l0.min(l1) || bl.low[b] <= below)
                };
                if quiet && !end_peak.is_nan() {
                    peak = end_peak;
                    k += BLOCK;
                    continue;
                }
            }
            let level = sl_level(peak);
            let hit = if long {
                low[k] <= level || high[k] >= above
            } else {
                high[k] >= level || low[k] <= below
            };
            if hit {
                self.stops.sl_from = peak;
                return k;
            }
            if long && high[k] > peak {
                peak = high[k];
            } else if !long && low[k] < peak {
                peak = low[k];
            }
            k += 1;
        }
        self.stops.sl_from = peak;
        to
    }

    /// Bars `from..to` with no signal and nothing pending: flat bars need nothing; a
    /// held position gets its rows and excursions up to the first bar a stop fires
    /// on, which is returned for the full treatment.
    fn quiet(&mut self, from: usize, to: usize) -> usize {
        let position = self.acct.position;
        if position == 0.0 {
            return to;
        }
        let end = self.first_stop_bar(from, to);
        if end > from && self.sink.excursions() {
            // finite prices: plain comparisons, which vectorize
            let lo = self.inp.low[from..end]
                .iter()
                .fold(f64::INFINITY, |m, &x| if x < m { x } else { m });
            let hi = self.inp.high[from..end]
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
            self.touch(lo);
            self.touch(hi);
        }
        if end > from {
            let inp = self.inp;
            self.sink
                .hold(&inp, self.blocks, from, end, self.acct.cash, position);
        }
        end
    }

    fn run(mut self) -> EngineResult<(Vec<Fill>, Vec<Trade>)> {
        let n = self.inp.ts.len();
        let mut pending: Option<(Flags, Accumulate)> = None;
        let mut next_signal = 0usize;
        let mut i = 0;
        while i < n {
            if pending.is_none() && i > 0 {
                let until = self.next_signal_bar(i, &mut next_signal);
                if until > i {
                    i = self.quiet(i, until);
                }
            }
            self.bar(i, &mut pending)?;
            i += 1;
        }
        let last = self.open_trade();
        self.trades.extend(last);
        Ok((self.fills, self.trades))
    }

    fn bar(&mut self, i: usize, pending: &mut Option<(Flags, Accumulate)>) -> EngineResult<()> {
        let inp = self.inp;
        let n = inp.ts.len();
        let (o, h, l, c) = (inp.open[i], inp.high[i], inp.low[i], inp.close[i]);
        let fills_before = self.fills.len();
        if self.acct.position != 0.0 {
            self.touch(o);
        }
        if self.cfg.price == SignalPrice::NextOpen {
            if let Some((f, accumulate)) = pending.take() {
                // the settings of the signal's bar
                let row = i - 1;
                let val = self.open_val_price(i);
                self.order(i, row, f, accumulate, o, self.slippage(row), val, None)?;
            }
            let stopped = self.stops(i, o, self.open_val_price(i))?;
            if !stopped && self.acct.position != 0.0 {
                self.touch(l);
                self.touch(h);
            }
            if i + 1 < n {
                let (f, accumulate) = read_signals(&inp, i, self.acct.position, self.cfg);
                if f != Flags::default() {
                    *pending = Some((f, accumulate));
                }
            }
        } else {
            let (p, val_price) = self.close_prices(i);
            let stopped = self.stops(i, p, val_price)?;
            if !stopped {
                if self.acct.position != 0.0 {
                    self.touch(l);
                    self.touch(h);
                }
                let (f, accumulate) = read_signals(&inp, i, self.acct.position, self.cfg);
                if f != Flags::default() {
                    self.order(i, i, f, accumulate, p, self.slippage(i), val_price, None)?;
                }
            }
        }
        let position = self.acct.position;
        if position != 0.0 || self.fills.len() > fills_before || i == 0 || i + 1 == n {
            self.sink.push(
                i,
                EquityRow {
                    ts: inp.ts[i],
                    cash: self.acct.cash,
                    equity: self.acct.cash + position * c,
                    gross_exposure: position.abs() * c,
                },
            );
        }
        Ok(())
    }
}

fn walk<S: EquitySink>(
    inp: SignalInput<'_>,
    cfg: &SignalConfig,
    signal_bars: &[usize],
    blocks: Option<&Blocks>,
    sink: &mut S,
) -> EngineResult<(Vec<Fill>, Vec<Trade>)> {
    check_input(&inp, cfg)?;
    Walk::new(inp, cfg, signal_bars, blocks, sink, 0).run()
}

/// The settings and per-bar values of one run, checked.
fn check_input(inp: &SignalInput<'_>, cfg: &SignalConfig) -> EngineResult<()> {
    cfg.validate_with(&inp.per_bar)?;
    inp.validate_per_bar(cfg)?;
    if cfg.price == SignalPrice::NextOpen && !inp.per_bar.price.is_empty() {
        return Err(EngineError::config(
            "price",
            "a price series goes with price='close' (it is the price of the signal's bar)",
        ));
    }
    Ok(())
}

/// One signal backtest: fills, trades and, with `keep_equity`, equity rows (a row at
/// the first and last bar, and at every bar with a position or a fill; equity is
/// flat in between). Without them the walk skips every bar with nothing to decide.
/// The bars must be valid (`Bars::validate`); symbol codes in the records are 0.
pub fn simulate_signals(
    inp: SignalInput<'_>,
    cfg: &SignalConfig,
    keep_equity: bool,
) -> EngineResult<Output> {
    inp.validate_shape()?;
    let bars = signal_bars(&inp);
    let mut equity = Vec::new();
    let (fills, trades) = if keep_equity {
        walk(inp, cfg, &bars, None, &mut equity)?
    } else {
        walk(inp, cfg, &bars, None, &mut ())?
    };
    Ok(Output {
        fills,
        trades,
        equity,
        orders: Vec::new(),
        bars_visited: inp.ts.len() as u64,
    })
}

// ------------------------------------------------------------------ stats in the loop

const DAY_US: i64 = 86_400_000_000;

/// Beta's benchmark for a run over one symbol's bars: their per-bar log returns, and
/// the returns' sample variance and mean (with 3 bars or more).
#[derive(Clone, Copy)]
struct Benchmark<'a> {
    log_returns: &'a [f64],
    var_mean: Option<(f64, f64)>,
    /// Per block, the cross term's series (a sweep's, shared by its variants).
    series: &'a [BlockSeries],
}

/// The first index of sorted `ts` at or after `t`, searched from the front: a held run
/// mostly ends within the day, and a day is a small part of a long run.
pub(super) fn gallop(ts: &[i64], t: i64) -> usize {
    match ts.last() {
        None => return 0,
        Some(&last) if last < t => return ts.len(),
        _ => {}
    }
    let mut step = 1;
    while step < ts.len() && ts[step] < t {
        step *= 2;
    }
    let lo = step / 2;
    lo + ts[lo..step.min(ts.len())].partition_point(|&x| x < t)
}

/// Held bars below the episodes' peak since the last bar at it, folded into
/// [`Episodes::below`] at once: the first's and the last's bars, how many, the lowest
/// equity.
#[derive(Clone, Copy)]
struct BelowPeak {
    first: usize,
    last: usize,
    count: usize,
    low: f64,
}

impl BelowPeak {
    const NONE: Self = BelowPeak {
        first: 0,
        last: 0,
        count: 0,
        low: f64::INFINITY,
    };

    /// Bars `from..=to`, whose lowest equity is `low`.
    fn add(&mut self, from: usize, to: usize, low: f64) {
        if self.count == 0 {
            self.first = from;
        }
        self.last = to;
        self.count += to + 1 - from;
        self.low = self.low.min(low);
    }

    fn fold_into(&mut self, ep: &mut Episodes, ts: &[i64]) {
        ep.below(self.first as i64, ts[self.last], self.count, self.low);
        *self = BelowPeak::NONE;
    }
}

/// Folds equity rows into every figure `Result.stats()` derives from the equity.
struct StatsSink<'a> {
    /// The first timestamp of the day after the current row's day.
    next_day_ts: i64,
    init: f64,
    peak: f64,
    drawdown: f64,
    last: Option<EquityRow>,
    exposed: i64,
    day: i64,
    day_equity: f64,
    daily: Vec<f64>,
    /// The bar times: the bar before an episode's first point.
    ts: &'a [i64],
    episodes: Episodes,
    bench: Benchmark<'a>,
    cross: CrossSum,
}

impl<'a> StatsSink<'a> {
    fn new(init: f64, ts: &'a [i64], bench: Benchmark<'a>) -> Self {
        StatsSink {
            next_day_ts: i64::MIN,
            init,
            peak: init,
            drawdown: init / init - 1.0,
            last: None,
            exposed: 0,
            day: 0,
            day_equity: f64::NAN,
            daily: Vec::new(),
            ts,
            episodes: Episodes::new(),
            bench,
            cross: CrossSum::new(init),
        }
    }

    /// The time of the bar before bar `k` (`_previous_bar` of one symbol).
    fn previous_bar(ts: &[i64], k: i64) -> i64 {
        match k {
            1.. => ts[k as usize - 1],
            _ => i64::MIN,
        }
    }

    /// Every figure but beta's cross term, from bar `bar`'s row.
    fn fold(&mut self, bar: usize, row: EquityRow) {
        let v = row.equity;
        // np.maximum.accumulate and np.min both propagate NaN
        self.peak = if v.is_nan() || self.peak.is_nan() {
            f64::NAN
        } else {
            self.peak.max(v)
        };
        let dd = v / self.peak - 1.0;
        if dd.is_nan() || self.drawdown.is_nan() {
            self.drawdown = f64::NAN;
        } else {
            self.drawdown = self.drawdown.min(dd);
        }
        let ts = self.ts;
        self.episodes
            .point(row.ts, bar as i64, v, |k| Self::previous_bar(ts, k));
        // rows come in time order: the day number changes only past `next_day_ts`
        let day = if row.ts >= self.next_day_ts || self.last.is_none() {
            let day = row.ts.div_euclid(DAY_US);
            self.next_day_ts = (day + 1).saturating_mul(DAY_US);
            day
        } else {
            self.day
        };
        match self.last {
            None => self.day = day,
            Some(prev) => {
                if prev.gross_exposure > 0.0 {
                    self.exposed += row.ts - prev.ts;
                }
                // the close-of-day equity of every calendar day, forward-filled
                while self.day < day {
                    self.daily.push(self.day_equity);
                    self.day += 1;
                }
            }
        }
        self.day_equity = v;
        self.last = Some(row);
    }
}

impl EquitySink for StatsSink<'_> {
    fn push(&mut self, bar: usize, row: EquityRow) {
        if self.bench.var_mean.is_some() {
            self.cross.bar(bar, row.equity, self.bench.log_returns[bar]);
        }
        self.fold(bar, row);
    }

    fn excursions(&self) -> bool {
        false
    }

    /// The held bars, in day-long runs: within one day and one account, equity is
    /// `cash + qty * close`; the drawdowns only need the lowest equity since each new
    /// peak (division by a positive peak and subtracting 1 are monotone, so the
    /// smallest ratio comes from the smallest equity, bit for bit), the episodes the
    /// same between their marks, and the exposed time telescopes to the run's first
    /// and last timestamps. Beta's cross term takes every bar.
    fn hold(
        &mut self,
        inp: &SignalInput<'_>,
        blocks: Option<&Blocks>,
        from: usize,
        to: usize,
        cash: f64,
        qty: f64,
    ) {
        let (ts, close) = (inp.ts, inp.close);
        let row = |k: usize| EquityRow {
            ts: ts[k],
            cash,
            equity: cash + qty * close[k],
            gross_exposure: qty.abs() * close[k],
        };
        let general = self.peak.is_nan()
            || self.drawdown.is_nan()
            || !(self.peak > 0.0)
            || qty == 0.0
            || !self.episodes.fast();
        if general {
            for k in from..to {
                self.push(k, row(k));
            }
            return;
        }
        if self.bench.var_mean.is_some() {
            let (lr, series) = (self.bench.log_returns, self.bench.series);
            let mut cross = self.cross;
            // bar by bar up to each whole block after the first bar (its bar before is
            // held too), whose series stands for its bars; the equity before a stretch
            // of bars that follows blocks is read then, not at every block
            let (mut k, mut bars_from, mut after_block) = (from, from, false);
            let bars = |cross: &mut CrossSum, a: usize, b: usize, after: bool| {
                if after {
                    cross.before = cash + qty * close[a - 1];
                }
                cross.run(close, lr, (a, b), (cash, qty));
            };
            while k < to {
                let block = Blocks::whole(k, to).filter(|_| k > from);
                match block.and_then(|b| series.get(b)?.cross(cash, qty)) {
                    Some(x) => {
                        if bars_from < k {
                            bars(&mut cross, bars_from, k, after_block);
                        }
                        cross.cross += x;
                        k += BLOCK;
                        (bars_from, after_block) = (k, true);
                    }
                    None => k = (k + 1).next_multiple_of(BLOCK).min(to),
                }
            }
            if bars_from < to {
                bars(&mut cross, bars_from, to, after_block);
            } else if after_block {
                cross.before = cash + qty * close[to - 1];
            }
            self.cross = cross;
        }
        let previous = |k: i64| Self::previous_bar(ts, k);
        let mut k = from;
        while k < to {
            let Some(prev) = self.last.filter(|_| ts[k] < self.next_day_ts) else {
                // a new day: one row
                self.fold(k, row(k));
                k += 1;
                continue;
            };
            let end = k + gallop(&ts[k..to], self.next_day_ts);
            let (mut peak, mut dd) = (self.peak, self.drawdown);
            let mut lowest = f64::INFINITY;
            let ep = &mut self.episodes;
            let mut below = BelowPeak::NONE;
            let mut j = k;
            while j < end {
                if let (Some(b), Some(bl)) = (Blocks::whole(j, end), blocks) {
                    // equity is monotone in the close: its extremes are at the close's
                    let (lo, hi) = if qty > 0.0 {
                        (bl.close_min[b], bl.close_max[b])
                    } else {
                        (bl.close_max[b], bl.close_min[b])
                    };
                    let (lo, hi) = (cash + qty * lo, cash + qty * hi);
                    // the episodes' peak is at most the drawdown's (init_cash in it)
                    if hi < ep.peak {
                        lowest = lowest.min(lo);
                        below.add(j, j + BLOCK - 1, lo);
                        j += BLOCK;
                        continue;
                    }
                }
                let v = cash + qty * close[j];
                if v > peak {
                    dd = dd.min(lowest / peak - 1.0);
                    peak = v;
                    lowest = v;
                } else if v < lowest {
                    lowest = v;
                }
                if v < ep.peak {
                    below.add(j, j, v);
                } else {
                    below.fold_into(ep, ts);
                    ep.point(ts[j], j as i64, v, previous);
                }
                j += 1;
            }
            below.fold_into(ep, ts);
            self.drawdown = dd.min(lowest / peak - 1.0);
            self.peak = peak;
            if prev.gross_exposure > 0.0 {
                self.exposed += ts[k] - prev.ts;
            }
            self.exposed += ts[end - 1] - ts[k];
            let last = row(end - 1);
            self.day_equity = last.equity;
            self.last = Some(last);
            k = end;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_stats(
    mut sink: StatsSink<'_>,
    fills: &[Fill],
    trades: &[Trade],
    start: i64,
    end: i64,
    bars: u64,
    closes: &[(f64, f64)],
) -> (Stats, Vec<f64>) {
    let init = sink.init;
    let mut daily = std::mem::take(&mut sink.daily);
    if sink.last.is_some() {
        daily.push(sink.day_equity);
    }
    let mut series = Vec::with_capacity(daily.len() + 1);
    series.push(init);
    series.extend_from_slice(&daily);
    let rets: Vec<f64> = series.windows(2).map(|w| (w[1] - w[0]) / w[0]).collect();
    let mut exposed = sink.exposed;
    if let Some(last) = sink.last {
        if last.gross_exposure > 0.0 {
            exposed += end - last.ts;
        }
    }
    let mut s = figures(Parts {
        start,
        end,
        init_cash: init,
        final_equity: sink.last.map(|r| r.equity).unwrap_or(init),
        equity_peak: sink.peak,
        max_drawdown: sink.drawdown,
        daily_returns: &rets,
        periods_per_year: 365.0,
        exposed_time: exposed,
        fills,
        trades,
        bars_visited: bars,
        closes,
    });
    let ts = sink.ts;
    sink.episodes.finish(|k| StatsSink::previous_bar(ts, k));
    sink.episodes.figures(&mut s);
    if let (Some((var_b, mean_b)), Some(_), true) = (sink.bench.var_mean, s.benchmark, init > 0.0) {
        if var_b > 0.0 {
            let years = (end - start) as f64 / (365.0 * 86_400e6);
            set_beta(&mut s, sink.cross.cov(ts.len(), mean_b), var_b, years);
        }
    }
    (s, rets)
}

/// Beta's benchmark of one symbol's bars, computed as `stats()` does.
fn benchmark_context(inp: &SignalInput<'_>) -> RowContext {
    let offsets = [0, inp.ts.len()];
    RowContext::new(
        one_symbol(inp, &offsets),
        Conventions::aftershock(365.0),
        DAY_US,
    )
}

/// The signal input's bars as one symbol's (`offsets`: `[0, bars]`).
fn one_symbol<'a>(inp: &SignalInput<'a>, offsets: &'a [usize]) -> Bars<'a> {
    Bars {
        ts: inp.ts,
        open: inp.open,
        high: inp.high,
        low: inp.low,
        close: inp.close,
        offsets,
    }
}

fn stats_with(
    inp: SignalInput<'_>,
    cfg: &SignalConfig,
    signal_bars: &[usize],
    blocks: Option<&Blocks>,
    (bench, series): (&RowContext, &[BlockSeries]),
) -> EngineResult<(Stats, Vec<f64>)> {
    let n = inp.ts.len();
    let (start, end) = match (inp.ts.first(), inp.ts.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (0, 0),
    };
    super::metrics::check_span(start, end, DAY_US, n.saturating_sub(1))?;
    let offsets = [0, n];
    let (log_returns, var_mean) = bench.benchmark(0, one_symbol(&inp, &offsets));
    let bench = Benchmark {
        log_returns,
        var_mean,
        series,
    };
    let mut sink = StatsSink::new(cfg.init_cash, inp.ts, bench);
    let (fills, trades) = walk(inp, cfg, signal_bars, blocks, &mut sink)?;
    let closes: Vec<(f64, f64)> = inp
        .close
        .first()
        .zip(inp.close.last())
        .map(|(&a, &b)| (a, b))
        .into_iter()
        .collect();
    Ok(finish_stats(
        sink, &fills, &trades, start, end, n as u64, &closes,
    ))
}

/// One signal backtest reduced to its stats, without keeping the equity rows.
pub fn signal_stats(inp: SignalInput<'_>, cfg: &SignalConfig) -> EngineResult<Stats> {
    inp.validate_shape()?;
    let bench = benchmark_context(&inp);
    stats_with(inp, cfg, &signal_bars(&inp), None, (&bench, &[])).map(|r| r.0)
}

/// Runs every configuration over the same bars and signals on up to `threads`
/// threads. Configurations are split into contiguous chunks and each result lands
/// in its own slot, so the output does not depend on the thread count.
pub fn simulate_signals_many(
    inp: SignalInput<'_>,
    configs: &[SignalConfig],
    threads: usize,
) -> Vec<EngineResult<Stats>> {
    simulate_signals_many_counted(inp, configs, threads, None)
}

/// `simulate_signals_many`, adding one to `done` as each variant finishes.
pub fn simulate_signals_many_counted(
    inp: SignalInput<'_>,
    configs: &[SignalConfig],
    threads: usize,
    done: Option<&std::sync::atomic::AtomicUsize>,
) -> Vec<EngineResult<Stats>> {
    simulate_signals_many_daily(inp, configs, threads, done)
        .into_iter()
        .map(|r| r.map(|(s, _)| s))
        .collect()
}

/// `simulate_signals_many_counted`, with each variant's calendar-day returns (the
/// ones its Sharpe ratio is computed from): one per UTC day from the first bar's day
/// to the last bar's, the same number for every variant.
pub fn simulate_signals_many_daily(
    inp: SignalInput<'_>,
    configs: &[SignalConfig],
    threads: usize,
    done: Option<&std::sync::atomic::AtomicUsize>,
) -> Vec<EngineResult<(Stats, Vec<f64>)>> {
    if let Err(e) = inp.validate_shape() {
        return configs.iter().map(|_| Err(e.clone())).collect();
    }
    let (bars, blocks, bench) = (
        signal_bars(&inp),
        Blocks::new(&inp),
        benchmark_context(&inp),
    );
    let offsets = [0, inp.ts.len()];
    let series = BlockSeries::blocks(inp.close, bench.benchmark(0, one_symbol(&inp, &offsets)).0);
    let (bars, blocks, bench) = (&bars[..], &blocks, (&bench, &series[..]));
    let run =
        |cfg: &SignalConfig| super::guarded(|| stats_with(inp, cfg, bars, Some(blocks), bench));
    super::run_parallel(configs, threads, super::counted(done, run))
}
