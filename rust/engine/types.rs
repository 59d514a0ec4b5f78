//! Domain enums and the plain-data input/output records of the engine.
//!
//! Strings are parsed once at the Python boundary into these enums; the explicit
//! discriminants are the codes the boundary uses.

use super::error::{EngineError, EngineResult};

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $column:literal { $($variant:ident = $code:literal => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($variant = $code),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The column (or setting) whose values this enum encodes.
            pub const COLUMN: &'static str = $column;

            pub fn from_code(code: i64, row: usize) -> EngineResult<Self> {
                match code {
                    $($code => Ok($name::$variant),)+
                    other => Err(EngineError::orders($column, row, format!("unknown code {other}"))),
                }
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

pub(super) use code_enum;

code_enum!(
    /// Direction of an order.
    Side, "side" { Buy = 1 => "buy", Sell = 2 => "sell" }
);

impl Side {
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }
}

code_enum!(
    /// How `qty` is read.
    SizeType, "size_type" {
        Units = 0 => "units",
        Notional = 1 => "notional",
        PercentEquity = 2 => "percent_equity",
        TargetPercent = 3 => "target_percent",
        PercentAvailable = 4 => "percent_available",
    }
);

code_enum!(
    OrderType, "order_type" {
        Market = 0 => "market",
        Limit = 1 => "limit",
        Stop = 2 => "stop",
        StopLimit = 3 => "stop_limit",
        MarketOnClose = 4 => "market_on_close",
    }
);

code_enum!(
    TimeInForce, "tif" { Gtc = 0 => "gtc", Ioc = 1 => "ioc", Gtd = 2 => "gtd" }
);

code_enum!(
    /// Which extreme of a bar the price path visits first.
    Intrabar, "intrabar" {
        Ohlc = 0 => "ohlc",
        Olhc = 1 => "olhc",
        NearestFirst = 2 => "nearest_first",
        Pessimistic = 3 => "pessimistic",
    }
);

code_enum!(
    FillReason, "reason" {
        Entry = 0 => "entry",
        Exit = 1 => "exit",
        StopLoss = 2 => "stop_loss",
        TakeProfit = 3 => "take_profit",
        TrailingStop = 4 => "trailing_stop",
        TimeExit = 5 => "time_exit",
        Liquidation = 6 => "liquidation",
        EndOfData = 7 => "end_of_data",
    }
);

code_enum!(
    OrderStatus, "status" {
        Open = 0 => "open",
        Filled = 1 => "filled",
        Cancelled = 2 => "cancelled",
        Expired = 3 => "expired",
        Rejected = 4 => "rejected",
    }
);

code_enum!(
    /// Why an order did not fill (`None` when it did, or is still open).
    StatusReason, "reject_reason" {
        None = 0 => "",
        ZeroSize = 1 => "zero_size",
        Margin = 2 => "margin",
        NothingToReduce = 3 => "nothing_to_reduce",
        IocUnfilled = 4 => "ioc_unfilled",
        Expired = 5 => "expired",
    }
);

/// Every code table of the boundary: (column, [(text, code)...]). The Python layer
/// reads these instead of keeping its own copies.
pub fn code_tables() -> Vec<(&'static str, Vec<(&'static str, i64)>)> {
    macro_rules! table {
        ($t:ty) => {
            (
                <$t>::COLUMN,
                <$t>::ALL
                    .iter()
                    .map(|v| (v.as_str(), *v as u8 as i64))
                    .collect(),
            )
        };
    }
    vec![
        table!(Side),
        table!(SizeType),
        table!(OrderType),
        table!(TimeInForce),
        table!(Intrabar),
        table!(FillReason),
        table!(OrderStatus),
        table!(StatusReason),
    ]
}

/// One order, as the engine sees it. `None` fields are absent in the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub submit_ts: i64,
    pub symbol: usize,
    pub side: Side,
    pub qty: f64,
    pub size_type: SizeType,
    pub order_type: OrderType,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub tif: TimeInForce,
    pub expire_ts: Option<i64>,
    pub reduce_only: bool,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub trailing_stop: Option<f64>,
    pub exit_after: Option<i64>,
}

impl Order {
    /// A market buy of `qty` units: the starting point for tests and builders.
    pub fn market(submit_ts: i64, symbol: usize, side: Side, qty: f64) -> Self {
        Order {
            submit_ts,
            symbol,
            side,
            qty,
            size_type: SizeType::Units,
            order_type: OrderType::Market,
            limit_price: None,
            stop_price: None,
            tif: TimeInForce::Gtc,
            expire_ts: None,
            reduce_only: false,
            stop_loss: None,
            take_profit: None,
            trailing_stop: None,
            exit_after: None,
        }
    }

    pub fn has_bracket(&self) -> bool {
        self.stop_loss.is_some()
            || self.take_profit.is_some()
            || self.trailing_stop.is_some()
            || self.exit_after.is_some()
    }
}

/// Simulation settings. Timestamps and durations are integers in one unit chosen by
/// the caller (the Python layer uses microseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub init_cash: f64,
    pub fees: f64,
    pub maker_fees: f64,
    pub fixed_fees: f64,
    pub slippage: f64,
    pub latency: i64,
    pub lot_size: f64,
    pub leverage: f64,
    pub intrabar: Intrabar,
    pub maintenance_margin: f64,
    pub close_at_end: bool,
    /// false: an order the leverage cap would shrink is rejected whole (reason margin)
    pub allow_partial: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            init_cash: 100_000.0,
            fees: 0.0,
            maker_fees: 0.0,
            fixed_fees: 0.0,
            slippage: 0.0,
            latency: 0,
            lot_size: 0.0,
            leverage: 1.0,
            intrabar: Intrabar::Pessimistic,
            maintenance_margin: 0.0,
            close_at_end: false,
            allow_partial: true,
        }
    }
}

impl Config {
    pub fn validate(&self) -> EngineResult<()> {
        fn finite_nonneg(field: &'static str, v: f64) -> EngineResult<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(EngineError::config(
                    field,
                    format!("must be finite and >= 0, got {v}"),
                ))
            }
        }
        if !(self.init_cash.is_finite() && self.init_cash > 0.0) {
            return Err(EngineError::config(
                "init_cash",
                format!("must be finite and > 0, got {}", self.init_cash),
            ));
        }
        finite_nonneg("fees", self.fees)?;
        finite_nonneg("maker_fees", self.maker_fees)?;
        finite_nonneg("fixed_fees", self.fixed_fees)?;
        finite_nonneg("lot_size", self.lot_size)?;
        if !(self.fees < 1.0 && self.maker_fees < 1.0) {
            return Err(EngineError::config("fees", "fee fractions must be < 1"));
        }
        if !(self.slippage.is_finite() && (0.0..1.0).contains(&self.slippage)) {
            return Err(EngineError::config(
                "slippage",
                format!("must be in [0, 1), got {}", self.slippage),
            ));
        }
        if self.latency < 0 {
            return Err(EngineError::config("latency", "must be >= 0"));
        }
        if !(self.leverage.is_finite() && self.leverage > 0.0) {
            return Err(EngineError::config(
                "leverage",
                format!("must be finite and > 0, got {}", self.leverage),
            ));
        }
        if !(self.maintenance_margin.is_finite() && (0.0..1.0).contains(&self.maintenance_margin)) {
            return Err(EngineError::config(
                "maintenance_margin",
                format!("must be in [0, 1), got {}", self.maintenance_margin),
            ));
        }
        Ok(())
    }
}

/// Price bars for all symbols: the rows of symbol `s` are `offsets[s]..offsets[s + 1]`,
/// sorted by open time.
#[derive(Debug, Clone, Copy)]
pub struct Bars<'a> {
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub offsets: &'a [usize],
}

impl<'a> Bars<'a> {
    pub fn n_symbols(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn range(&self, symbol: usize) -> std::ops::Range<usize> {
        self.offsets[symbol]..self.offsets[symbol + 1]
    }

    /// First and last timestamp over all symbols (each symbol's rows are sorted),
    /// `None` without bars.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let nonempty = (0..self.n_symbols()).filter(|&s| !self.range(s).is_empty());
        let first = nonempty.clone().map(|s| self.ts[self.offsets[s]]).min()?;
        let last = nonempty.map(|s| self.ts[self.offsets[s + 1] - 1]).max()?;
        Some((first, last))
    }

    /// Checks shape, ordering and price sanity. The Python layer checks the same
    /// things first with the user's row numbers; this is the engine's own guard.
    pub fn validate(&self) -> EngineResult<()> {
        self.validate_shape()?;
        if self.all_valid() {
            return Ok(());
        }
        for s in 0..self.n_symbols() {
            let r = self.range(s);
            for i in r.clone() {
                if i > r.start && self.ts[i] <= self.ts[i - 1] {
                    return Err(EngineError::bars(
                        "ts",
                        i,
                        "timestamps must be strictly increasing within a symbol",
                    ));
                }
                let (o, h, l, c) = (self.open[i], self.high[i], self.low[i], self.close[i]);
                for (column, v) in [("open", o), ("high", h), ("low", l), ("close", c)] {
                    // subnormal prices (below f64::MIN_POSITIVE) are float debris, and
                    // any cash divided by one is infinite
                    if !(v.is_finite() && v >= f64::MIN_POSITIVE) {
                        return Err(EngineError::bars(
                            column,
                            i,
                            format!("price must be finite and > 0 (and not subnormal), got {v:?}"),
                        ));
                    }
                }
                if l > h {
                    return Err(EngineError::bars("high", i, "high < low"));
                }
                if o < l || o > h {
                    return Err(EngineError::bars("open", i, "open outside [low, high]"));
                }
                if c < l || c > h {
                    return Err(EngineError::bars("close", i, "close outside [low, high]"));
                }
            }
        }
        Ok(())
    }

    /// One branch-free pass (the compiler vectorizes it); `validate` only walks the
    /// rows again to name the first bad one when this says there is one.
    fn all_valid(&self) -> bool {
        let mut ok = true;
        for s in 0..self.n_symbols() {
            let r = self.range(s);
            let ts = &self.ts[r.clone()];
            for w in ts.windows(2) {
                ok &= w[1] > w[0];
            }
            let (o, h, l, c) = (
                &self.open[r.clone()],
                &self.high[r.clone()],
                &self.low[r.clone()],
                &self.close[r],
            );
            for i in 0..o.len() {
                // NaN fails every comparison; low >= MIN_POSITIVE and high < inf with
                // low <= open, close <= high make all four finite, positive and normal
                ok &= (l[i] >= f64::MIN_POSITIVE)
                    & (h[i] < f64::INFINITY)
                    & (o[i] >= l[i])
                    & (o[i] <= h[i])
                    & (c[i] >= l[i])
                    & (c[i] <= h[i]);
            }
        }
        ok
    }

    /// Column lengths and symbol offsets: O(symbols), needed for memory safety of
    /// every index the engine takes.
    pub fn validate_shape(&self) -> EngineResult<()> {
        let n = self.ts.len();
        for (column, len) in [
            ("open", self.open.len()),
            ("high", self.high.len()),
            ("low", self.low.len()),
            ("close", self.close.len()),
        ] {
            if len != n {
                return Err(EngineError::bars(
                    column,
                    len.min(n),
                    format!("length {len} differs from ts length {n}"),
                ));
            }
        }
        if self.offsets.first() != Some(&0) || self.offsets.last() != Some(&n) {
            return Err(EngineError::bars(
                "symbol",
                0,
                "symbol offsets must start at 0 and end at the row count",
            ));
        }
        for w in self.offsets.windows(2) {
            if w[0] > w[1] {
                return Err(EngineError::bars(
                    "symbol",
                    w[1],
                    "symbol offsets must not decrease",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// Id of the order that caused the fill; bracket exits carry their entry's id;
    /// liquidations and end-of-data closes are -1.
    pub order_id: i64,
    pub ts: i64,
    pub symbol: usize,
    pub side: Side,
    pub qty: f64,
    pub price: f64,
    pub fee: f64,
    pub reason: FillReason,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub symbol: usize,
    /// +1 long, -1 short.
    pub direction: i8,
    pub entry_order_id: i64,
    pub entry_ts: i64,
    pub entry_price: f64,
    pub exit_ts: i64,
    pub exit_price: f64,
    pub qty: f64,
    pub pnl: f64,
    pub ret: f64,
    pub fees: f64,
    /// `None` for a trade still open at the end.
    pub exit_reason: Option<FillReason>,
    pub mae: f64,
    pub mfe: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquityRow {
    pub ts: i64,
    pub cash: f64,
    pub equity: f64,
    pub gross_exposure: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderState {
    pub status: OrderStatus,
    pub status_ts: Option<i64>,
    pub filled_qty: f64,
    pub reason: StatusReason,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub fills: Vec<Fill>,
    pub trades: Vec<Trade>,
    pub equity: Vec<EquityRow>,
    pub orders: Vec<OrderState>,
    /// How many bars the engine processed: the event-sparse work measure.
    pub bars_visited: u64,
}
