//! The one binding module: Polars frames in and engine tables out through the
//! Arrow C data interface (`arrow.rs`: the caller's columns are read in place, the
//! engine's vectors are handed over without a copy), the GIL released while the
//! engine runs, and every `EngineError` mapped to one Python exception class in
//! `aftershock.errors`.

mod daily;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

mod arrow;
mod buffers;

use arrow::{ArrowTable, Imported, OutTable, TableBuilder};
use buffers::{get, view, Column, ColumnData};
use pyo3::buffer::{Element, PyBuffer};

use crate::engine::{
    self, BarCheck, Bars, Config, Conventions, EngineError, Intrabar, Job, Order, Output,
    RowContext, Stats, StatsSpec, Table,
};

/// The single conversion point from engine errors to Python exceptions.
fn to_pyerr(py: Python<'_>, err: EngineError) -> PyErr {
    let result = (|| -> PyResult<PyErr> {
        let errors = py.import("aftershock.errors")?;
        let (class, args, column, row) = match &err {
            EngineError::InvalidInput {
                table,
                column,
                row,
                message,
            } => {
                let class = match table {
                    Table::Bars => "BarsError",
                    Table::Orders => "OrdersError",
                };
                (
                    class,
                    format!("{}: {message}", table.name()),
                    Some(*column),
                    Some(*row),
                )
            }
            EngineError::InvalidConfig { field, message } => {
                ("ConfigError", message.clone(), Some(*field), None)
            }
            EngineError::Internal(message) => ("EngineError", message.clone(), None, None),
        };
        let cls = errors.getattr(class)?;
        let kwargs = PyDict::new(py);
        if class != "EngineError" {
            kwargs.set_item("column", column)?;
            kwargs.set_item("row", row)?;
        }
        let exc = cls.call((args,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    })();
    result.unwrap_or_else(|e| e)
}

fn engine_err(py: Python<'_>) -> impl Fn(EngineError) -> PyErr + '_ {
    move |e| to_pyerr(py, e)
}

/// The bar columns the engine reads, viewed in the caller's Arrow memory:
/// `frame` holds ts (timestamp[us]), open, high, low, close; `offsets` the
/// boundaries of each symbol's block of rows.
struct BarFrame {
    frame: Imported,
    offsets: Vec<usize>,
}

struct BarViews<'a> {
    ts: Cow<'a, [i64]>,
    open: Cow<'a, [f64]>,
    high: Cow<'a, [f64]>,
    low: Cow<'a, [f64]>,
    close: Cow<'a, [f64]>,
    offsets: &'a [usize],
}

impl BarFrame {
    fn from_py(frame: &Bound<'_, PyAny>, offsets: &Bound<'_, PyAny>) -> PyResult<Self> {
        let raw = arrow::import(offsets, "offsets")?;
        let name = raw.first_name();
        let offsets = raw
            .column::<i64>(&name)?
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| PyValueError::new_err("negative offset")))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(BarFrame {
            frame: arrow::import(frame, "bars")?,
            offsets,
        })
    }

    fn views(&self) -> PyResult<BarViews<'_>> {
        let f = &self.frame;
        Ok(BarViews {
            ts: f.column("ts")?,
            open: f.column("open")?,
            high: f.column("high")?,
            low: f.column("low")?,
            close: f.column("close")?,
            offsets: &self.offsets,
        })
    }
}

impl BarViews<'_> {
    fn bars(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            offsets: self.offsets,
        }
    }
}

fn opt_f64(v: f64) -> Option<f64> {
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

fn opt_i64(v: i64) -> Option<i64> {
    if v == i64::MIN {
        None
    } else {
        Some(v)
    }
}

const ORDER_INTS: [&str; 9] = [
    "submit_ts",
    "symbol",
    "side",
    "size_type",
    "order_type",
    "tif",
    "expire_ts",
    "reduce_only",
    "exit_after",
];
const ORDER_FLOATS: [&str; 6] = [
    "qty",
    "limit_price",
    "stop_price",
    "stop_loss",
    "take_profit",
    "trailing_stop",
];

/// The encoded orders columns of one frame, viewed in the caller's Arrow memory:
/// codes as int64 (i64::MIN: missing), floats as float64 (NaN: missing).
struct OrderViews<'a> {
    ints: Vec<Cow<'a, [i64]>>,
    floats: Vec<Cow<'a, [f64]>>,
}

fn order_views(frame: &Imported) -> PyResult<OrderViews<'_>> {
    Ok(OrderViews {
        ints: ORDER_INTS
            .iter()
            .map(|n| frame.column::<i64>(n))
            .collect::<PyResult<_>>()?,
        floats: ORDER_FLOATS
            .iter()
            .map(|n| frame.column::<f64>(n))
            .collect::<PyResult<_>>()?,
    })
}

impl OrderViews<'_> {
    fn columns(&self) -> OrderColumns<'_> {
        let i = |k: usize| &self.ints[k][..];
        let f = |k: usize| &self.floats[k][..];
        OrderColumns {
            submit: i(0),
            symbol: i(1),
            side: i(2),
            size_type: i(3),
            order_type: i(4),
            tif: i(5),
            expire: i(6),
            reduce: i(7),
            exit_after: i(8),
            qty: f(0),
            limit: f(1),
            stop: f(2),
            sl: f(3),
            tp: f(4),
            tr: f(5),
        }
    }
}

/// Borrowed order columns of equal length (a struct batch guarantees it); plain
/// slices, so a worker thread can decode them without the GIL.
#[derive(Clone, Copy)]
struct OrderColumns<'a> {
    submit: &'a [i64],
    symbol: &'a [i64],
    side: &'a [i64],
    size_type: &'a [i64],
    order_type: &'a [i64],
    tif: &'a [i64],
    expire: &'a [i64],
    reduce: &'a [i64],
    exit_after: &'a [i64],
    qty: &'a [f64],
    limit: &'a [f64],
    stop: &'a [f64],
    sl: &'a [f64],
    tp: &'a [f64],
    tr: &'a [f64],
}

impl OrderColumns<'_> {
    fn decode(&self) -> Result<Vec<Order>, EngineError> {
        let c = self;
        (0..c.submit.len())
            .map(|i| {
                Ok(Order {
                    submit_ts: c.submit[i],
                    symbol: usize::try_from(c.symbol[i])
                        .map_err(|_| EngineError::orders("symbol", i, "negative symbol code"))?,
                    side: engine::Side::from_code(c.side[i], i)?,
                    qty: c.qty[i],
                    size_type: engine::SizeType::from_code(c.size_type[i], i)?,
                    order_type: engine::OrderType::from_code(c.order_type[i], i)?,
                    limit_price: opt_f64(c.limit[i]),
                    stop_price: opt_f64(c.stop[i]),
                    tif: engine::TimeInForce::from_code(c.tif[i], i)?,
                    expire_ts: opt_i64(c.expire[i]),
                    reduce_only: c.reduce[i] != 0,
                    stop_loss: opt_f64(c.sl[i]),
                    take_profit: opt_f64(c.tp[i]),
                    trailing_stop: opt_f64(c.tr[i]),
                    exit_after: opt_i64(c.exit_after[i]),
                })
            })
            .collect()
    }
}

fn config_from_dict(d: &Bound<'_, PyDict>) -> PyResult<Config> {
    let mut cfg = Config::default();
    let py = d.py();
    for (key, value) in d.iter() {
        let key: String = key.extract()?;
        let bad = |what: &str| {
            to_pyerr(
                py,
                EngineError::InvalidConfig {
                    field: "config",
                    message: format!("{key}: {what}"),
                },
            )
        };
        let f = || value.extract::<f64>().map_err(|_| bad("expected a number"));
        match key.as_str() {
            "init_cash" => cfg.init_cash = f()?,
            "fees" => cfg.fees = f()?,
            "maker_fees" => cfg.maker_fees = f()?,
            "fixed_fees" => cfg.fixed_fees = f()?,
            "slippage" => cfg.slippage = f()?,
            "lot_size" => cfg.lot_size = f()?,
            "leverage" => cfg.leverage = f()?,
            "maintenance_margin" => cfg.maintenance_margin = f()?,
            "latency" => {
                cfg.latency = value
                    .extract::<i64>()
                    .map_err(|_| bad("expected an integer duration"))?
            }
            "close_at_end" => {
                cfg.close_at_end = value
                    .extract::<bool>()
                    .map_err(|_| bad("expected a bool"))?
            }
            "allow_partial" => {
                cfg.allow_partial = value
                    .extract::<bool>()
                    .map_err(|_| bad("expected a bool"))?
            }
            "intrabar" => {
                let text: String = value.extract().map_err(|_| bad("expected a string"))?;
                cfg.intrabar =
                    Intrabar::parse(&text).ok_or_else(|| bad("unknown intrabar setting"))?;
            }
            _ => return Err(bad("unknown setting")),
        }
    }
    Ok(cfg)
}

/// One run's output as Arrow tables (fills, trades, equity, orders), built on the
/// worker thread that ran the simulation; with the GIL held only the finished
/// tables are wrapped. Codes stay codes (int8); `aftershock.trading.results`
/// names them with the tables of `codes()`.
struct OutputTables {
    fills: OutTable,
    trades: OutTable,
    equity: OutTable,
    orders: OutTable,
    bars_visited: u64,
}

fn output_tables(out: &Output) -> OutputTables {
    macro_rules! col {
        ($rows:expr, |$r:ident| $e:expr) => {
            $rows.iter().map(|$r| $e).collect()
        };
    }
    let f = &out.fills;
    let mut fills = TableBuilder::new(f.len());
    fills
        .i64("order_id", col!(f, |r| r.order_id))
        .ts("ts", col!(f, |r| r.ts))
        .i64("symbol", col!(f, |r| r.symbol as i64))
        .i8("side", col!(f, |r| r.side as u8 as i8))
        .f64("qty", col!(f, |r| r.qty))
        .f64("price", col!(f, |r| r.price))
        .f64("fee", col!(f, |r| r.fee))
        .i8("reason", col!(f, |r| r.reason as u8 as i8));
    let t = &out.trades;
    let mut trades = TableBuilder::new(t.len());
    trades
        .i64("symbol", col!(t, |r| r.symbol as i64))
        .i8("direction", col!(t, |r| r.direction))
        .i64("entry_order_id", col!(t, |r| r.entry_order_id))
        .ts("entry_ts", col!(t, |r| r.entry_ts))
        .f64("entry_price", col!(t, |r| r.entry_price))
        .ts("exit_ts", col!(t, |r| r.exit_ts))
        .f64("exit_price", col!(t, |r| r.exit_price))
        .f64("qty", col!(t, |r| r.qty))
        .f64("pnl", col!(t, |r| r.pnl))
        .f64("return", col!(t, |r| r.ret))
        .f64("fees", col!(t, |r| r.fees))
        .opt_i8(
            "exit_reason",
            col!(t, |r| r.exit_reason.map(|x| x as u8 as i8)),
        )
        .f64("mae", col!(t, |r| r.mae))
        .f64("mfe", col!(t, |r| r.mfe));
    let e = &out.equity;
    let mut equity = TableBuilder::new(e.len());
    equity
        .ts("ts", col!(e, |r| r.ts))
        .f64("cash", col!(e, |r| r.cash))
        .f64("equity", col!(e, |r| r.equity))
        .f64("gross_exposure", col!(e, |r| r.gross_exposure));
    let o = &out.orders;
    let mut orders = TableBuilder::new(o.len());
    orders
        .i8("status", col!(o, |r| r.status as u8 as i8))
        .opt_ts("status_ts", col!(o, |r| r.status_ts))
        .f64("filled_qty", col!(o, |r| r.filled_qty))
        .i8("reject_reason", col!(o, |r| r.reason as u8 as i8));
    OutputTables {
        fills: fills.finish(),
        trades: trades.finish(),
        equity: equity.finish(),
        orders: orders.finish(),
        bars_visited: out.bars_visited,
    }
}

/// ``{"fills", "trades", "equity", "orders"}`` as `ArrowTable`s (each imported by
/// ``pl.DataFrame(table)`` without a copy) and ``"bars_visited"``.
fn tables_to_dict(py: Python<'_>, out: OutputTables) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("fills", ArrowTable::new(out.fills))?;
    d.set_item("trades", ArrowTable::new(out.trades))?;
    d.set_item("equity", ArrowTable::new(out.equity))?;
    d.set_item("orders", ArrowTable::new(out.orders))?;
    d.set_item("bars_visited", out.bars_visited)?;
    Ok(d)
}

fn bar_check(trusted: bool) -> BarCheck {
    if trusted {
        BarCheck::Trusted
    } else {
        BarCheck::Full
    }
}

/// Runs one backtest. `bars` is a frame of ts/open/high/low/close grouped by
/// symbol (`offsets` bounds each symbol's rows), `orders` the encoded orders frame
/// (`aftershock.trading.engine.encode_orders`); both are read in place through the
/// Arrow C stream interface. The GIL is released for the whole simulation.
/// `trusted` skips the engine's own O(bars) scan for bars `prepare_bars` validated.
#[pyfunction]
fn simulate<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    orders: &Bound<'py, PyAny>,
    config: &Bound<'py, PyDict>,
    trusted: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let frame = BarFrame::from_py(bars, offsets)?;
    let order_frame = arrow::import(orders, "orders")?;
    let orders = order_views(&order_frame)?
        .columns()
        .decode()
        .map_err(engine_err(py))?;
    let config = config_from_dict(config)?;
    let views = frame.views()?;
    let bars = views.bars();
    let check = bar_check(trusted);
    let result = py.detach(|| {
        engine::run_guarded(
            bars,
            &Job {
                orders: &orders,
                config: &config,
            },
            check,
        )
        .map(|out| output_tables(&out))
    });
    tables_to_dict(py, result.map_err(engine_err(py))?)
}

/// Runs many backtests over the same bars on `threads` threads with the GIL
/// released; results come back in input order and do not depend on `threads`.
#[pyfunction]
fn simulate_many<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    orders: &Bound<'py, PyList>,
    configs: &Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
) -> PyResult<Bound<'py, PyList>> {
    let batch = Batch::new(bars, offsets, orders, configs)?;
    let outputs = batch.run(py, threads, trusted, None, |bars, o, c| {
        engine::simulate_validated(bars, o, c).map(|out| output_tables(&out))
    })?;
    let list = PyList::empty(py);
    for out in outputs {
        list.append(tables_to_dict(py, out)?)?;
    }
    Ok(list)
}

/// The engine's O(bars) check of ordering and prices (GIL released); raises
/// `BarsError` naming the column and the row of the laid-out frame.
#[pyfunction]
fn check_bars(py: Python<'_>, bars: &Bound<'_, PyAny>, offsets: &Bound<'_, PyAny>) -> PyResult<()> {
    let frame = BarFrame::from_py(bars, offsets)?;
    let views = frame.views()?;
    let bars = views.bars();
    py.detach(|| bars.validate()).map_err(engine_err(py))
}

/// Where the engine reads each column of an Arrow frame: ``{name: address}``, or
/// ``None`` for a column it had to gather from several chunks (a copy). Lets a
/// test check that frames cross without a copy.
#[pyfunction]
fn column_addresses<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let imported = arrow::import(frame, "frame")?;
    let d = PyDict::new(py);
    for name in imported.names() {
        d.set_item(&name, imported.address(&name)?)?;
    }
    Ok(d)
}

/// Variants finished so far in a sweep: the engine's workers count them while the
/// GIL is released, and a Python thread reads ``done`` to draw a progress bar.
#[pyclass(frozen, module = "aftershock._engine")]
struct Progress {
    done: AtomicUsize,
}

#[pymethods]
impl Progress {
    #[new]
    fn new() -> Self {
        Progress {
            done: AtomicUsize::new(0),
        }
    }

    #[getter]
    fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// Sweeps scored in the engine: one row of `Result.stats()` figures per job.
// ---------------------------------------------------------------------------

/// The arguments of a batch of backtests, held while the engine reads them.
/// Jobs that pass the same orders frame object share one import.
struct Batch {
    bars: BarFrame,
    frames: Vec<Imported>,
    index: Vec<usize>,
    configs: Vec<Config>,
}

impl Batch {
    fn new(
        bars: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        orders: &Bound<'_, PyList>,
        configs: &Bound<'_, PyList>,
    ) -> PyResult<Self> {
        if orders.len() != configs.len() {
            return Err(PyValueError::new_err(
                "orders and configs must have the same length",
            ));
        }
        let mut seen: HashMap<usize, usize> = HashMap::new();
        let mut frames = Vec::new();
        let mut index = Vec::with_capacity(orders.len());
        for item in orders.iter() {
            let key = item.as_ptr() as usize;
            let k = match seen.get(&key) {
                Some(&k) => k,
                None => {
                    frames.push(arrow::import(&item, "orders")?);
                    seen.insert(key, frames.len() - 1);
                    frames.len() - 1
                }
            };
            index.push(k);
        }
        Ok(Batch {
            bars: BarFrame::from_py(bars, offsets)?,
            frames,
            index,
            configs: configs
                .iter()
                .map(|c| config_from_dict(c.cast::<PyDict>()?))
                .collect::<PyResult<_>>()?,
        })
    }

    /// Applies `run` to every job on the engine's worker threads with the GIL
    /// released; the first error (in job order) is raised. Each worker decodes its
    /// job's orders itself, so memory holds one decoded frame per thread, not one
    /// per variant. `progress` counts finished jobs.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        threads: usize,
        trusted: bool,
        progress: Option<&Progress>,
        run: impl Fn(Bars<'_>, &[Order], &Config) -> Result<T, EngineError> + Sync,
    ) -> PyResult<Vec<T>> {
        let views = self.bars.views()?;
        let bars = views.bars();
        let order_views: Vec<OrderViews<'_>> = self
            .frames
            .iter()
            .map(order_views)
            .collect::<PyResult<_>>()?;
        let columns: Vec<OrderColumns<'_>> = order_views.iter().map(OrderViews::columns).collect();
        let jobs: Vec<(OrderColumns<'_>, &Config)> = self
            .index
            .iter()
            .map(|&k| columns[k])
            .zip(&self.configs)
            .collect();
        let check = bar_check(trusted);
        let done = progress.map(|p| &p.done);
        let results = py.detach(|| {
            engine::run_checked_counted(bars, &jobs, threads, check, done, |(columns, config)| {
                run(bars, &columns.decode()?, config)
            })
        });
        results
            .into_iter()
            .map(|r| r.map_err(engine_err(py)))
            .collect()
    }
}

/// Runs many backtests like `simulate_many` but returns only their figures, as a
/// dict of columns (lists, `None` for a null figure) in job order. The figures are
/// computed inside the parallel loop; no equity path is built. `conventions`: see
/// [`sweep_rows`].
#[pyfunction]
#[pyo3(signature = (bars, offsets, orders, configs, threads, trusted, day, periods_per_year, progress=None, conventions=None))]
#[allow(clippy::too_many_arguments)]
fn simulate_many_stats<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    orders: &Bound<'py, PyList>,
    configs: &Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
    day: i64,
    periods_per_year: f64,
    progress: Option<&Bound<'py, Progress>>,
    conventions: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, ArrowTable>> {
    let args = SweepArgs {
        bars,
        offsets,
        orders,
        configs,
        threads,
        trusted,
        day,
        periods_per_year,
        progress,
        conventions,
    };
    let rows = sweep_rows(py, args)?;
    let stats: Vec<Stats> = rows.into_iter().map(|(s, _)| s).collect();
    stats_columns(py, &stats)
}

/// The arguments of the sweep functions (`simulate_many_stats`, and
/// `simulate_many_stats_daily` in daily.rs), handled in one place.
struct SweepArgs<'a, 'py> {
    bars: &'a Bound<'py, PyAny>,
    offsets: &'a Bound<'py, PyAny>,
    orders: &'a Bound<'py, PyList>,
    configs: &'a Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
    day: i64,
    periods_per_year: f64,
    progress: Option<&'a Bound<'py, Progress>>,
    conventions: Option<&'a Bound<'py, PyDict>>,
}

/// Every job's sweep row and calendar-day returns, in job order. `conventions`
/// (``{field: choice}`` of `aftershock.trading.stats.Conventions`, plus ``warmup``;
/// absent fields keep aftershock's) is parsed once, and what the rows share over
/// these bars is computed once, before the parallel loop.
fn sweep_rows(py: Python<'_>, a: SweepArgs<'_, '_>) -> PyResult<Vec<(Stats, Vec<f64>)>> {
    if a.day <= 0 {
        return Err(PyValueError::new_err("day must be > 0"));
    }
    let conv = conventions_from_dict(a.conventions, a.periods_per_year)?;
    let batch = Batch::new(a.bars, a.offsets, a.orders, a.configs)?;
    let views = batch.bars.views()?;
    let bars = views.bars();
    let day = a.day;
    let ctx = py.detach(|| RowContext::new(bars, conv, day));
    let progress = a.progress.map(|p| p.get());
    let rows = batch.run(py, a.threads, a.trusted, progress, |bars, o, c| {
        engine::simulate_row(bars, o, c, day, &ctx)
    });
    engine::release_spare_rows();
    rows
}

/// The conventions of a sweep's rows, strings parsed once into the engine's flags.
fn conventions_from_dict(
    d: Option<&Bound<'_, PyDict>>,
    periods_per_year: f64,
) -> PyResult<Conventions> {
    let mut conv = Conventions::aftershock(periods_per_year);
    let Some(d) = d else { return Ok(conv) };
    let py = d.py();
    for (key, value) in d.iter() {
        let key: String = key.extract()?;
        let bad = || {
            to_pyerr(
                py,
                EngineError::config("conventions", format!("{key}: unknown field or choice")),
            )
        };
        if key == "warmup" {
            conv.warmup = value.extract::<usize>().map_err(|_| bad())?;
            continue;
        }
        let choice: String = value.extract().map_err(|_| bad())?;
        let (flag, ours, theirs) = match key.as_str() {
            "returns" => (&mut conv.trading_days, "calendar", "trading"),
            "risk" => (&mut conv.compounded, "arithmetic", "compounded"),
            "avg_trade" => (&mut conv.geometric_avg_trade, "arithmetic", "geometric"),
            "profit_factor" => (&mut conv.profit_factor_returns, "money", "returns"),
            "exposure" => (&mut conv.exposure_bars, "time", "bars"),
            "year" => (&mut conv.year_periods, "365d", "periods"),
            "durations" => (&mut conv.bar_durations, "exact", "bar"),
            "fees" => (&mut conv.fees_closed, "all", "closed"),
            "alpha_risk_free" => (&mut conv.alpha_simple, "compounded", "simple"),
            _ => return Err(bad()),
        };
        *flag = match choice.as_str() {
            c if c == ours => false,
            c if c == theirs => true,
            _ => return Err(bad()),
        };
    }
    Ok(conv)
}

/// Sweep figures as one Arrow table, a row per job, in `Result.stats()` order
/// (``benchmark`` is the symbol's index; nulls as validity bits).
fn stats_columns<'py>(py: Python<'py>, stats: &[Stats]) -> PyResult<Bound<'py, ArrowTable>> {
    macro_rules! col {
        (|$s:ident| $e:expr) => {
            stats.iter().map(|$s| $e).collect()
        };
    }
    let mut t = TableBuilder::new(stats.len());
    t.ts("start", col!(|s| s.start))
        .ts("end", col!(|s| s.end))
        .f64("init_cash", col!(|s| s.init_cash))
        .f64("final_equity", col!(|s| s.final_equity))
        .f64("total_return", col!(|s| s.total_return))
        .f64("max_drawdown", col!(|s| s.max_drawdown))
        .opt_f64("sharpe", col!(|s| s.sharpe))
        .i64("trades", col!(|s| s.trades as i64))
        .i64("open_trades", col!(|s| s.open_trades as i64))
        .opt_f64("win_rate", col!(|s| s.win_rate))
        .opt_f64("avg_trade_return", col!(|s| s.avg_trade_return))
        .opt_f64("profit_factor", col!(|s| s.profit_factor))
        .f64("total_fees", col!(|s| s.total_fees))
        .f64("exposure", col!(|s| s.exposure))
        .i64("bars_visited", col!(|s| s.bars_visited as i64))
        .duration("duration", col!(|s| Some(s.duration)))
        .f64("equity_peak", col!(|s| s.equity_peak))
        .opt_i64("benchmark", col!(|s| s.benchmark.map(|b| b as i64)))
        .opt_f64("buy_hold_return", col!(|s| s.buy_hold_return))
        .opt_f64("return_ann", col!(|s| s.return_ann))
        .opt_f64("volatility_ann", col!(|s| s.volatility_ann))
        .opt_f64("cagr", col!(|s| s.cagr))
        .opt_f64("sortino", col!(|s| s.sortino))
        .opt_f64("best_trade", col!(|s| s.best_trade))
        .opt_f64("worst_trade", col!(|s| s.worst_trade))
        .duration("max_trade_duration", col!(|s| s.max_trade_duration))
        .duration("avg_trade_duration", col!(|s| s.avg_trade_duration))
        .opt_f64("sqn", col!(|s| s.sqn))
        .opt_f64("kelly", col!(|s| s.kelly))
        .opt_f64("expectancy", col!(|s| s.expectancy))
        .opt_f64("calmar", col!(|s| s.calmar))
        .opt_f64("alpha", col!(|s| s.alpha))
        .opt_f64("beta", col!(|s| s.beta))
        .opt_f64("avg_drawdown", col!(|s| s.avg_drawdown))
        .duration("max_drawdown_duration", col!(|s| s.max_drawdown_duration))
        .duration("avg_drawdown_duration", col!(|s| s.avg_drawdown_duration));
    Bound::new(py, ArrowTable::new(t.finish()))
}

/// The engine's code tables: ``{column: {text: code}}`` (``reject_reason`` maps ""
/// to the code of "no reason").
#[pyfunction]
fn codes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for (column, rows) in engine::code_tables() {
        let table = PyDict::new(py);
        for (text, code) in rows {
            table.set_item(text, code)?;
        }
        out.set_item(column, table)?;
    }
    Ok(out)
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // the longest span of bars the daily statistics take (the Python front checks it first)
    m.add("MAX_DAYS", crate::engine::MAX_DAYS)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_many, m)?)?;
    m.add_function(wrap_pyfunction!(check_bars, m)?)?;
    // sweeps scored in the engine
    m.add_function(wrap_pyfunction!(simulate_many_stats, m)?)?;
    m.add_function(wrap_pyfunction!(daily::simulate_many_stats_daily, m)?)?;
    m.add_function(wrap_pyfunction!(codes, m)?)?;
    m.add_function(wrap_pyfunction!(column_addresses, m)?)?;
    m.add_class::<ArrowTable>()?;
    m.add_class::<Progress>()?;
    add_signal_functions(m)?;
    add_study_functions(m)?;
    // bars larger than memory: one backtest fed in stretches of time
    m.add_class::<BacktestStream>()?;
    Ok(())
}

// ------------------------------------------------------------------ signals
// `aftershock.signals.from_signals`: one symbol's bars and four masks in, the
// engine's records (one run) or one row of stats per variant (a sweep) out.

use crate::engine::{
    Accumulate, ConflictMode, DirConflictMode, OppositeEntryMode, SignalConfig, SignalInput,
    SignalPrice, SignalSize, StopEntryPrice, StopExitMode, StopExitPrice, StopUpdateMode,
};

/// The numeric settings a sweep may vary, and where each lives in `SignalConfig`.
fn signal_number<'a>(cfg: &'a mut SignalConfig, key: &str) -> Option<&'a mut f64> {
    Some(match key {
        "init_cash" => &mut cfg.init_cash,
        "size" => &mut cfg.size,
        "fees" => &mut cfg.fees,
        "fixed_fees" => &mut cfg.fixed_fees,
        "slippage" => &mut cfg.slippage,
        "min_size" => &mut cfg.min_size,
        "max_size" => &mut cfg.max_size,
        "size_granularity" => &mut cfg.size_granularity,
        "sl_stop" => &mut cfg.sl_stop,
        "tp_stop" => &mut cfg.tp_stop,
        _ => return None,
    })
}

fn signal_config_from_dict(d: &Bound<'_, PyDict>) -> PyResult<SignalConfig> {
    let mut cfg = SignalConfig::default();
    let py = d.py();
    for (key, value) in d.iter() {
        let key: String = key.extract()?;
        let bad = |what: &str| {
            to_pyerr(
                py,
                EngineError::InvalidConfig {
                    field: "config",
                    message: format!("{key}: {what}"),
                },
            )
        };
        if let Some(slot) = signal_number(&mut cfg, &key) {
            *slot = value
                .extract::<f64>()
                .map_err(|_| bad("expected a number"))?;
            continue;
        }
        if key == "val_price" {
            cfg.val_price = value
                .extract::<f64>()
                .map_err(|_| bad("expected a number"))?;
            continue;
        }
        if let Some(slot) = match key.as_str() {
            "sl_trail" => Some(&mut cfg.sl_trail),
            "ffill_val_price" => Some(&mut cfg.ffill_val_price),
            "allow_partial" => Some(&mut cfg.allow_partial),
            "raise_reject" => Some(&mut cfg.raise_reject),
            _ => None,
        } {
            *slot = value
                .extract::<bool>()
                .map_err(|_| bad("expected a bool"))?;
            continue;
        }
        let text: String = value.extract().map_err(|_| bad("expected a string"))?;
        let unknown = || bad(&format!("unknown value {text:?}"));
        macro_rules! parse {
            ($ty:ty) => {
                <$ty>::parse(&text).ok_or_else(unknown)?
            };
        }
        match key.as_str() {
            "size_type" => cfg.size_type = parse!(SignalSize),
            "accumulate" => cfg.accumulate = parse!(Accumulate),
            "upon_long_conflict" => cfg.upon_long_conflict = parse!(ConflictMode),
            "upon_short_conflict" => cfg.upon_short_conflict = parse!(ConflictMode),
            "upon_dir_conflict" => cfg.upon_dir_conflict = parse!(DirConflictMode),
            "upon_opposite_entry" => cfg.upon_opposite_entry = parse!(OppositeEntryMode),
            "stop_entry_price" => cfg.stop_entry_price = parse!(StopEntryPrice),
            "stop_exit_price" => cfg.stop_exit_price = parse!(StopExitPrice),
            "upon_stop_exit" => cfg.upon_stop_exit = parse!(StopExitMode),
            "upon_stop_update" => cfg.upon_stop_update = parse!(StopUpdateMode),
            "price" => cfg.price = parse!(SignalPrice),
            _ => return Err(bad("unknown setting")),
        }
    }
    Ok(cfg)
}

/// One symbol's bars (ts/open/high/low/close) and its four 0/1 signal columns
/// (uint8 or boolean), read in place.
struct SignalFrames {
    bars: Imported,
    signals: Imported,
}

struct SignalViews<'a> {
    ts: Cow<'a, [i64]>,
    prices: [Cow<'a, [f64]>; 4],
    masks: [Cow<'a, [u8]>; 4],
    /// Optional per-bar settings: float columns of the signals frame named after
    /// `engine::PerBar`'s fields (price, size, fees, stops...).
    per_bar: Vec<(&'static str, Cow<'a, [f64]>)>,
}

impl SignalFrames {
    fn from_py(bars: &Bound<'_, PyAny>, signals: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(SignalFrames {
            bars: arrow::import(bars, "bars")?,
            signals: arrow::import(signals, "signals")?,
        })
    }

    fn views(&self) -> PyResult<SignalViews<'_>> {
        let (b, s) = (&self.bars, &self.signals);
        Ok(SignalViews {
            ts: b.column("ts")?,
            prices: [
                b.column("open")?,
                b.column("high")?,
                b.column("low")?,
                b.column("close")?,
            ],
            masks: [
                s.mask("long_entries")?,
                s.mask("long_exits")?,
                s.mask("short_entries")?,
                s.mask("short_exits")?,
            ],
            per_bar: {
                let names = s.names();
                let mut out = Vec::new();
                for (key, _) in engine::PerBar::default().fields() {
                    if names.iter().any(|n| n == key) {
                        out.push((key, s.column::<f64>(key)?));
                    }
                }
                out
            },
        })
    }
}

impl SignalViews<'_> {
    fn input(&self) -> SignalInput<'_> {
        let [o, h, l, c] = &self.prices;
        let [le, lx, se, sx] = &self.masks;
        let mut per_bar = engine::PerBar::default();
        for (key, values) in &self.per_bar {
            per_bar.set(key, values);
        }
        SignalInput {
            ts: &self.ts,
            open: o,
            high: h,
            low: l,
            close: c,
            long_entries: le,
            long_exits: lx,
            short_entries: se,
            short_exits: sx,
            per_bar,
        }
    }
}

/// One signal backtest over one symbol's validated bars (GIL released); returns
/// the same tables as `simulate` (the equity one empty unless `keep_equity`).
#[pyfunction]
fn simulate_signals<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    signals: &Bound<'py, PyAny>,
    config: &Bound<'py, PyDict>,
    keep_equity: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let frames = SignalFrames::from_py(bars, signals)?;
    let config = signal_config_from_dict(config)?;
    let views = frames.views()?;
    let input = views.input();
    let result = py.detach(|| {
        engine::guarded(|| engine::simulate_signals(input, &config, keep_equity))
            .map(|out| output_tables(&out))
    });
    tables_to_dict(py, result.map_err(engine_err(py))?)
}

/// `config` with each key of `variants` (equal-length float columns, one value per
/// variant) overridden: one configuration per variant.
fn signal_variants(
    py: Python<'_>,
    config: &Bound<'_, PyDict>,
    variants: &Bound<'_, PyAny>,
) -> PyResult<Vec<SignalConfig>> {
    let base = signal_config_from_dict(config)?;
    let variant_frame = arrow::import(variants, "variants")?;
    let names = variant_frame.names();
    let n = if names.is_empty() {
        1
    } else {
        variant_frame.len()
    };
    let mut configs = vec![base; n];
    for name in &names {
        let values = variant_frame.column::<f64>(name)?;
        for (cfg, &v) in configs.iter_mut().zip(values.iter()) {
            let slot = signal_number(cfg, name).ok_or_else(|| {
                to_pyerr(
                    py,
                    EngineError::config("variants", format!("{name} cannot be swept")),
                )
            })?;
            *slot = v;
        }
    }
    Ok(configs)
}

/// A sweep: `config` with each key of `variants` (equal-length float columns, one
/// value per variant) overridden; runs on `threads` threads with the GIL released
/// and returns one list per stats figure, in variant order. With `conventions`
/// (as for `simulate_many_stats`), every figure of the sweep rows under them, from
/// each variant's equity rows (`engine::signal_rows`). With `daily` (aftershock's
/// conventions only), also each variant's calendar-day returns, laid out as
/// `simulate_many_stats_daily`'s: `(table, buffer, days)`.
#[pyfunction]
#[pyo3(signature = (bars, signals, config, variants, threads, progress=None, conventions=None, periods_per_year=365.0, daily=false))]
#[allow(clippy::too_many_arguments)]
fn simulate_signals_many<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    signals: &Bound<'py, PyAny>,
    config: &Bound<'py, PyDict>,
    variants: &Bound<'py, PyAny>,
    threads: usize,
    progress: Option<&Bound<'py, Progress>>,
    conventions: Option<&Bound<'py, PyDict>>,
    periods_per_year: f64,
    daily: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let frames = SignalFrames::from_py(bars, signals)?;
    let configs = signal_variants(py, config, variants)?;
    let views = frames.views()?;
    let input = views.input();
    let done = progress.map(|p| &p.get().done);
    let rows = match conventions {
        Some(d) => Some(conventions_from_dict(Some(d), periods_per_year)?),
        None => None,
    };
    if daily {
        if rows.is_some() {
            let msg = "daily returns go with aftershock's conventions";
            return Err(to_pyerr(py, EngineError::config("conventions", msg)));
        }
        let runs =
            py.detach(|| engine::simulate_signals_many_daily(input, &configs, threads, done));
        let runs = runs
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(engine_err(py))?;
        return Ok(daily::daily_columns(py, runs)?
            .into_pyobject(py)?
            .into_any());
    }
    let results = py.detach(|| match rows {
        Some(conv) => engine::signal_rows(input, &configs, threads, conv, done),
        None => engine::simulate_signals_many_counted(input, &configs, threads, done),
    });
    let stats: Vec<Stats> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(engine_err(py))?;
    Ok(stats_columns(py, &stats)?.into_any())
}

/// Several symbols in one backtest (vectorbt's `group_by=True`, with or without
/// `cash_sharing`): `bars[k]` and `signals[k]` are column `k`'s dicts, as for
/// `simulate_signals`, and `codes[k]` its symbol code; columns run in list order.
#[pyfunction]
fn simulate_signal_group<'py>(
    py: Python<'py>,
    bars: Vec<Bound<'py, PyAny>>,
    signals: Vec<Bound<'py, PyAny>>,
    codes: Vec<usize>,
    config: &Bound<'py, PyDict>,
    cash_sharing: bool,
    keep_equity: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let frames = bars
        .iter()
        .zip(&signals)
        .map(|(b, s)| SignalFrames::from_py(b, s))
        .collect::<PyResult<Vec<_>>>()?;
    let config = signal_config_from_dict(config)?;
    let views = frames
        .iter()
        .map(SignalFrames::views)
        .collect::<PyResult<Vec<_>>>()?;
    let inputs: Vec<SignalInput<'_>> = views.iter().map(SignalViews::input).collect();
    let result = py.detach(|| {
        engine::guarded(|| {
            engine::simulate_signal_group(&inputs, &codes, &config, cash_sharing, keep_equity)
        })
    });
    let out = result.map_err(|e| to_pyerr(py, e))?;
    tables_to_dict(py, output_tables(&out))
}

fn add_signal_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate_signal_group, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_signals, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_signals_many, m)?)?;
    Ok(())
}

// ------------------------------------------------------------------ streams
// `aftershock.trading.engine.backtest` over bars larger than memory: the bars come
// in stretches of time; the run's state stays here between them.

/// One backtest fed its bars one stretch of time at a time (`engine::Stepper`).
#[pyclass(module = "aftershock._engine")]
struct BacktestStream {
    inner: Option<engine::Stepper>,
}

impl BacktestStream {
    fn stepper(&mut self) -> PyResult<&mut engine::Stepper> {
        self.inner
            .as_mut()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the stream is finished"))
    }
}

#[pymethods]
impl BacktestStream {
    /// `day`/`periods_per_year` > 0: the figures of `Result.stats()` are computed
    /// as the run goes; `keep_equity`: the equity rows are kept for `take_equity`.
    #[new]
    fn new(
        orders: &Bound<'_, PyAny>,
        config: &Bound<'_, PyDict>,
        n_symbols: usize,
        day: i64,
        periods_per_year: f64,
        keep_equity: bool,
    ) -> PyResult<Self> {
        let py = orders.py();
        let order_frame = arrow::import(orders, "orders")?;
        let orders = order_views(&order_frame)?
            .columns()
            .decode()
            .map_err(engine_err(py))?;
        let config = config_from_dict(config)?;
        let spec = (day > 0).then_some(StatsSpec {
            day,
            periods_per_year,
        });
        let inner = engine::Stepper::new(orders, config, n_symbols, spec, keep_equity)
            .map_err(|e| to_pyerr(py, e))?;
        Ok(BacktestStream { inner: Some(inner) })
    }

    /// Simulates the next stretch of bars (checked by the caller; a frame with
    /// offsets, as for `simulate`); `ends[s]` is true when it holds symbol `s`'s
    /// last bar.
    fn feed(
        &mut self,
        py: Python<'_>,
        bars: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        ends: Vec<bool>,
    ) -> PyResult<()> {
        let frame = BarFrame::from_py(bars, offsets)?;
        let views = frame.views()?;
        let bars = views.bars();
        let stepper = self.stepper()?;
        py.detach(|| engine::guarded(|| stepper.feed(bars, &ends)))
            .map_err(|e| to_pyerr(py, e))
    }

    /// The equity rows recorded since the last call, as an engine table.
    fn take_equity<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, ArrowTable>> {
        let rows = self.stepper()?.take_equity();
        let out = Output {
            equity: rows,
            ..Output::default()
        };
        Bound::new(py, ArrowTable::new(output_tables(&out).equity))
    }

    /// Ends the run: the output tables (as `simulate` returns them; `equity` holds
    /// the rows not taken yet) and the figures (None without them).
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, ArrowTable>>)> {
        let stepper = self
            .inner
            .take()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the stream is finished"))?;
        let result = py.detach(|| {
            engine::guarded(|| stepper.finish()).map(|(out, stats)| (output_tables(&out), stats))
        });
        let (tables, stats) = result.map_err(|e| to_pyerr(py, e))?;
        let figures = match stats {
            Some(s) => Some(stats_columns(py, &[s])?),
            None => None,
        };
        Ok((tables_to_dict(py, tables)?, figures))
    }
}

// ------------------------------------------------------------------ study
// `aftershock.event_study`: one symbol's bars checked and turned into the per-bar
// arrays of its window sums (`crate::study`), the GIL released meanwhile.

fn int_column(py: Python<'_>, v: Vec<i64>) -> PyResult<Bound<'_, Column>> {
    Bound::new(
        py,
        Column {
            data: ColumnData::Int(v),
        },
    )
}

/// Checks one symbol's bars (`ts` as µs, `open/high/low/close`, optional `volume`);
/// raises BarsError naming the first bad row of the arrays.
#[pyfunction]
fn study_check(py: Python<'_>, bars: &Bound<'_, PyDict>) -> PyResult<()> {
    let ts: PyBuffer<i64> = get(bars, "ts")?;
    let (open, high, low, close): (PyBuffer<f64>, PyBuffer<f64>, PyBuffer<f64>, PyBuffer<f64>) = (
        get(bars, "open")?,
        get(bars, "high")?,
        get(bars, "low")?,
        get(bars, "close")?,
    );
    let volume: Option<PyBuffer<f64>> = get_opt(bars, "volume")?;
    let cols = crate::study::SymbolColumns {
        ts: view(&ts, "ts")?,
        open: view(&open, "open")?,
        high: view(&high, "high")?,
        low: view(&low, "low")?,
        close: view(&close, "close")?,
        volume: volume.as_ref().map(|v| view(v, "volume")).transpose()?,
    };
    py.detach(|| crate::study::check_symbol(cols))
        .map_err(|e| to_pyerr(py, e))
}

/// The median spacing of sorted open times (µs), or None for fewer than two bars.
#[pyfunction]
fn study_spacing(py: Python<'_>, ts: PyBuffer<i64>) -> PyResult<Option<i64>> {
    let ts = view(&ts, "ts")?;
    Ok(py.detach(|| crate::study::median_spacing(ts)))
}

/// The buffers behind `crate::study::Usable`, read from the dict
/// `PreparedSeries.usable_sums()` returns: `r`, `ex_a`, `ex_b`, `ex_n`, `ex_r`, `ex_m`,
/// and `n`, `m` when explicit.
struct UsableBuffers {
    n: Option<PyBuffer<i64>>,
    m: Option<PyBuffer<f64>>,
    r: PyBuffer<f64>,
    ex_a: PyBuffer<i64>,
    ex_b: PyBuffer<i64>,
    ex_n: PyBuffer<i64>,
    ex_r: PyBuffer<f64>,
    ex_m: PyBuffer<f64>,
}

impl UsableBuffers {
    fn read(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Self {
            n: get_opt(d, "n")?,
            m: get_opt(d, "m")?,
            r: get(d, "r")?,
            ex_a: get(d, "ex_a")?,
            ex_b: get(d, "ex_b")?,
            ex_n: get(d, "ex_n")?,
            ex_r: get(d, "ex_r")?,
            ex_m: get(d, "ex_m")?,
        })
    }

    fn view(&self) -> PyResult<crate::study::Usable<'_>> {
        Ok(crate::study::Usable {
            n: self.n.as_ref().map(|b| view(b, "n")).transpose()?,
            r: view(&self.r, "r")?,
            m: self.m.as_ref().map(|b| view(b, "m")).transpose()?,
            ex_a: view(&self.ex_a, "ex_a")?,
            ex_b: view(&self.ex_b, "ex_b")?,
            ex_n: view(&self.ex_n, "ex_n")?,
            ex_r: view(&self.ex_r, "ex_r")?,
            ex_m: view(&self.ex_m, "ex_m")?,
        })
    }

    /// The excluded ranges and their running totals agree in length.
    fn consistent(&self, u: &crate::study::Usable<'_>) -> bool {
        let k = Some(u.ex_a.len());
        u.ex_b.len() == u.ex_a.len()
            && u.ex_n.len().checked_sub(1) == k
            && u.ex_r.len().checked_sub(1) == k
            && u.ex_m.len().checked_sub(1) == k
    }

    fn spans(&self) -> Vec<(usize, usize)> {
        let mut out = vec![
            span(&self.r),
            span(&self.ex_a),
            span(&self.ex_b),
            span(&self.ex_n),
            span(&self.ex_r),
            span(&self.ex_m),
        ];
        out.extend(self.n.as_ref().map(span));
        out.extend(self.m.as_ref().map(span));
        out
    }
}

fn get_opt<T: Element>(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<PyBuffer<T>>> {
    d.get_item(key)?.map(|o| PyBuffer::get(&o)).transpose()
}

/// The byte range a buffer covers.
fn span<T: Element>(buf: &PyBuffer<T>) -> (usize, usize) {
    let start = buf.buf_ptr() as usize;
    (start, start + buf.len_bytes())
}

/// Refuses a call whose output buffers overlap each other or an input: the mutable
/// slices handed to the pass must not alias anything.
fn disjoint(outputs: &[(usize, usize)], inputs: &[(usize, usize)]) -> PyResult<()> {
    for (k, &(a0, a1)) in outputs.iter().enumerate() {
        let others = outputs[k + 1..].iter().chain(inputs);
        if others.into_iter().any(|&(b0, b1)| a0 < b1 && b0 < a1) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "output buffers must not overlap each other or an input",
            ));
        }
    }
    Ok(())
}

/// Borrows a C-contiguous, writable buffer as a mutable slice for as long as `buf`
/// lives. Callers check with `disjoint` that no other slice of the call aliases it.
fn view_mut<'a, T: Element>(buf: &'a PyBuffer<T>, name: &str) -> PyResult<&'a mut [T]> {
    if !buf.is_c_contiguous() || buf.readonly() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: buffer must be C-contiguous and writable"
        )));
    }
    // SAFETY: as in `view`; the exporter granted write access, and the caller checked
    // that the buffer overlaps no other buffer of the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.buf_ptr() as *mut T, buf.item_count()) })
}

/// One symbol's per-bar pass: fills `out`'s `close_time`, `log_close`, `sq_cum` (and
/// `volume_cum` when `volume` is given) and returns the rows of the gap returns.
#[pyfunction]
#[pyo3(signature = (ts, close, volume, bar_us, out))]
fn study_series<'py>(
    py: Python<'py>,
    ts: PyBuffer<i64>,
    close: PyBuffer<f64>,
    volume: Option<PyBuffer<f64>>,
    bar_us: i64,
    out: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, Column>> {
    let (t, c) = (view(&ts, "ts")?, view(&close, "close")?);
    let v = volume.as_ref().map(|v| view(v, "volume")).transpose()?;
    let (ct, lc, sq): (PyBuffer<i64>, PyBuffer<f64>, PyBuffer<f64>) = (
        get(out, "close_time")?,
        get(out, "log_close")?,
        get(out, "sq_cum")?,
    );
    let vc: Option<PyBuffer<f64>> = get_opt(out, "volume_cum")?;
    let n = t.len();
    let lens = [ct.item_count(), lc.item_count(), sq.item_count(), c.len()];
    if lens.iter().any(|&l| l != n)
        || v.is_some_and(|v| v.len() != n)
        || vc.as_ref().is_some_and(|b| b.item_count() != n)
    {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "study_series: every array must have the length of ts",
        ));
    }
    let mut outputs = vec![span(&ct), span(&lc), span(&sq)];
    outputs.extend(vc.as_ref().map(span));
    let mut inputs = vec![span(&ts), span(&close)];
    inputs.extend(volume.as_ref().map(span));
    disjoint(&outputs, &inputs)?;
    let out = crate::study::SeriesOut {
        close_time: view_mut(&ct, "close_time")?,
        log_close: view_mut(&lc, "log_close")?,
        sq_cum: view_mut(&sq, "sq_cum")?,
        volume_cum: vc.as_ref().map(|b| view_mut(b, "volume_cum")).transpose()?,
    };
    let gaps = py.detach(|| crate::study::series_sums(t, c, v, bar_us, out));
    int_column(py, gaps)
}

/// Prefix sums of the products of two series' one-bar differences (same bar grid),
/// written into `out`.
#[pyfunction]
fn study_cross_cum(
    py: Python<'_>,
    a: PyBuffer<f64>,
    b: PyBuffer<f64>,
    out: PyBuffer<f64>,
) -> PyResult<()> {
    disjoint(&[span(&out)], &[span(&a), span(&b)])?;
    let (x, y, o) = (view(&a, "a")?, view(&b, "b")?, view_mut(&out, "out")?);
    py.detach(|| crate::study::cross_cum(x, y, o));
    Ok(())
}

/// Abnormal returns of each row's estimation blocks (`crate::study::block_abnormal`)
/// into `out` (rows × `max_blocks`). `usable` holds the prefix sums of
/// `PreparedSeries`: `r`, `ex_a`, `ex_b`, `ex_n`, `ex_r`, `ex_m`, and `n`, `m` when
/// they are explicit.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn study_blocks(
    py: Python<'_>,
    usable: &Bound<'_, PyDict>,
    hi: PyBuffer<i64>,
    lo: PyBuffer<i64>,
    alpha: PyBuffer<f64>,
    beta: PyBuffer<f64>,
    h: PyBuffer<i64>,
    max_blocks: usize,
    out: PyBuffer<f64>,
) -> PyResult<()> {
    let bufs = UsableBuffers::read(usable)?;
    let u = bufs.view()?;
    let rows = crate::study::BlockRows {
        hi: view(&hi, "hi")?,
        lo: view(&lo, "lo")?,
        alpha: view(&alpha, "alpha")?,
        beta: view(&beta, "beta")?,
        h: view(&h, "h")?,
    };
    let n_rows = rows.h.len();
    let lens = [
        rows.hi.len(),
        rows.lo.len(),
        rows.alpha.len(),
        rows.beta.len(),
    ];
    let consistent = lens.iter().all(|&l| l == n_rows)
        && n_rows.checked_mul(max_blocks) == Some(out.item_count())
        && bufs.consistent(&u);
    if !consistent {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "study_blocks: inconsistent array lengths",
        ));
    }
    let mut inputs = bufs.spans();
    inputs.extend([span(&hi), span(&lo), span(&alpha), span(&beta), span(&h)]);
    disjoint(&[span(&out)], &inputs)?;
    let dst = view_mut(&out, "out")?;
    py.detach(|| {
        crate::engine::guarded(|| {
            crate::study::block_abnormal(&u, rows, max_blocks, dst);
            Ok(())
        })
    })
    .map_err(|e| to_pyerr(py, e))
}

/// The last `bars` estimation residuals of each row (`crate::study::residuals`) into
/// `out` (rows × `bars`). `usable` as for `study_blocks`; the market's returns are
/// `market_returns` when given, else the differences of `market_log`, else 0.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (usable, log_close, market_log, market_returns, hi, lo, alpha, beta, bars, out))]
fn study_residuals(
    py: Python<'_>,
    usable: &Bound<'_, PyDict>,
    log_close: PyBuffer<f64>,
    market_log: Option<PyBuffer<f64>>,
    market_returns: Option<PyBuffer<f64>>,
    hi: PyBuffer<i64>,
    lo: PyBuffer<i64>,
    alpha: PyBuffer<f64>,
    beta: PyBuffer<f64>,
    bars: usize,
    out: PyBuffer<f64>,
) -> PyResult<()> {
    let bufs = UsableBuffers::read(usable)?;
    let u = bufs.view()?;
    let market = match (&market_returns, &market_log) {
        (Some(b), _) => crate::study::MarketReturns::Returns(view(b, "market_returns")?),
        (None, Some(b)) => crate::study::MarketReturns::LogCloses(view(b, "market_log")?),
        (None, None) => crate::study::MarketReturns::None,
    };
    let rows = crate::study::BlockRows {
        hi: view(&hi, "hi")?,
        lo: view(&lo, "lo")?,
        alpha: view(&alpha, "alpha")?,
        beta: view(&beta, "beta")?,
        h: &[],
    };
    let n_rows = rows.hi.len();
    let consistent = [rows.lo.len(), rows.alpha.len(), rows.beta.len()]
        .iter()
        .all(|&l| l == n_rows)
        && n_rows.checked_mul(bars) == Some(out.item_count())
        && bufs.consistent(&u);
    if !consistent {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "study_residuals: inconsistent array lengths",
        ));
    }
    let mut inputs = bufs.spans();
    inputs.push(span(&log_close));
    inputs.extend(market_log.as_ref().map(span));
    inputs.extend(market_returns.as_ref().map(span));
    inputs.extend([span(&hi), span(&lo), span(&alpha), span(&beta)]);
    disjoint(&[span(&out)], &inputs)?;
    let lc = view(&log_close, "log_close")?;
    let dst = view_mut(&out, "out")?;
    py.detach(|| {
        crate::engine::guarded(|| {
            crate::study::residuals(&u, lc, market, rows, bars, dst);
            Ok(())
        })
    })
    .map_err(|e| to_pyerr(py, e))
}

fn add_study_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(study_residuals, m)?)?;
    m.add_function(wrap_pyfunction!(study_check, m)?)?;
    m.add_function(wrap_pyfunction!(study_spacing, m)?)?;
    m.add_function(wrap_pyfunction!(study_series, m)?)?;
    m.add_function(wrap_pyfunction!(study_cross_cum, m)?)?;
    m.add_function(wrap_pyfunction!(study_blocks, m)?)?;
    Ok(())
}
