//! The one binding module: NumPy buffers in (zero-copy for the bar columns),
//! column buffers out (the engine's own vectors, no copy), the GIL released while
//! the engine runs, and every `EngineError` mapped to one Python exception class in
//! `aftershock.errors`.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::{
    self, BarCheck, Bars, Config, EngineError, Intrabar, Job, Order, Output, Stats, StatsSpec,
    Table,
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

/// Borrows a C-contiguous buffer as a slice for as long as `buf` lives.
fn view<'a, T: Element>(buf: &'a PyBuffer<T>, name: &str) -> PyResult<&'a [T]> {
    if !buf.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: buffer must be C-contiguous"
        )));
    }
    // SAFETY: the buffer is contiguous with items of type T (checked by PyBuffer::get),
    // and `buf` keeps the exporting object alive and its memory pinned while the
    // slice is borrowed. The engine only reads it.
    Ok(unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const T, buf.item_count()) })
}

fn get<'py, T: Element>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<PyBuffer<T>> {
    let obj = d
        .get_item(key)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.to_string()))?;
    PyBuffer::<T>::get(&obj)
}

struct BarBuffers {
    ts: PyBuffer<i64>,
    open: PyBuffer<f64>,
    high: PyBuffer<f64>,
    low: PyBuffer<f64>,
    close: PyBuffer<f64>,
    offsets: Vec<usize>,
}

impl BarBuffers {
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let offsets_buf: PyBuffer<i64> = get(d, "offsets")?;
        let offsets = view(&offsets_buf, "offsets")?
            .iter()
            .map(|&v| {
                usize::try_from(v)
                    .map_err(|_| pyo3::exceptions::PyValueError::new_err("negative offset"))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(BarBuffers {
            ts: get(d, "ts")?,
            open: get(d, "open")?,
            high: get(d, "high")?,
            low: get(d, "low")?,
            close: get(d, "close")?,
            offsets,
        })
    }

    fn bars(&self) -> PyResult<Bars<'_>> {
        Ok(Bars {
            ts: view(&self.ts, "ts")?,
            open: view(&self.open, "open")?,
            high: view(&self.high, "high")?,
            low: view(&self.low, "low")?,
            close: view(&self.close, "close")?,
            offsets: &self.offsets,
        })
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

/// Orders arrive as columns of codes: NaN marks a missing float, i64::MIN a missing integer.
fn orders_from_dict(d: &Bound<'_, PyDict>) -> PyResult<Vec<Order>> {
    let buffers = OrderBuffers::from_dict(d)?;
    buffers.columns()?.decode().map_err(|e| to_pyerr(d.py(), e))
}

/// The buffers of one encoded orders frame, held (with the GIL) while the engine
/// reads them.
struct OrderBuffers {
    ints: [PyBuffer<i64>; 9],
    floats: [PyBuffer<f64>; 6],
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

impl OrderBuffers {
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let mut ints = Vec::with_capacity(ORDER_INTS.len());
        for name in ORDER_INTS {
            ints.push(get::<i64>(d, name)?);
        }
        let mut floats = Vec::with_capacity(ORDER_FLOATS.len());
        for name in ORDER_FLOATS {
            floats.push(get::<f64>(d, name)?);
        }
        let buffers = OrderBuffers {
            ints: ints.try_into().map_err(|_| internal("order columns"))?,
            floats: floats.try_into().map_err(|_| internal("order columns"))?,
        };
        let n = view(&buffers.ints[0], "submit_ts")?.len();
        let lengths = ORDER_INTS
            .iter()
            .zip(&buffers.ints)
            .map(|(name, b)| (view(b, name).map(<[i64]>::len), *name))
            .chain(
                ORDER_FLOATS
                    .iter()
                    .zip(&buffers.floats)
                    .map(|(name, b)| (view(b, name).map(<[f64]>::len), *name)),
            );
        for (len, name) in lengths {
            if len? != n {
                let msg = format!("column has a different length than submit_ts ({n})");
                return Err(to_pyerr(d.py(), EngineError::orders(name, 0, msg)));
            }
        }
        Ok(buffers)
    }

    fn columns(&self) -> PyResult<OrderColumns<'_>> {
        let i = |k: usize| view(&self.ints[k], ORDER_INTS[k]);
        let f = |k: usize| view(&self.floats[k], ORDER_FLOATS[k]);
        Ok(OrderColumns {
            submit: i(0)?,
            symbol: i(1)?,
            side: i(2)?,
            size_type: i(3)?,
            order_type: i(4)?,
            tif: i(5)?,
            expire: i(6)?,
            reduce: i(7)?,
            exit_after: i(8)?,
            qty: f(0)?,
            limit: f(1)?,
            stop: f(2)?,
            sl: f(3)?,
            tp: f(4)?,
            tr: f(5)?,
        })
    }
}

fn internal(what: &str) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!("internal: {what}"))
}

/// Borrowed order columns of equal length (checked by `OrderBuffers::from_dict`);
/// plain slices, so a worker thread can decode them without the GIL.
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

/// An output column handed to Python without a copy: it owns the engine's vector
/// and exports it read-only through the buffer protocol (`np.frombuffer` views it;
/// the views keep it alive). Immutable (`frozen`), so the exported memory never moves.
#[pyclass(frozen, module = "aftershock._engine")]
struct Column {
    data: ColumnData,
}

enum ColumnData {
    Int(Vec<i64>),
    Float(Vec<f64>),
}

#[pymethods]
impl Column {
    /// # Safety
    /// Called by Python's buffer protocol with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        if flags & pyo3::ffi::PyBUF_WRITABLE == pyo3::ffi::PyBUF_WRITABLE {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "engine output columns are read-only",
            ));
        }
        let (ptr, bytes) = match &slf.get().data {
            ColumnData::Int(v) => (v.as_ptr().cast::<std::ffi::c_void>(), size_of_val(&v[..])),
            ColumnData::Float(v) => (v.as_ptr().cast::<std::ffi::c_void>(), size_of_val(&v[..])),
        };
        // SAFETY: `ptr` points at `bytes` initialized bytes owned by this frozen
        // object, which the view keeps alive (FillInfo takes a reference to it);
        // the buffer is exported read-only.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                ptr.cast_mut(),
                bytes as pyo3::ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }
}

/// One run's output as the columns `aftershock.results` reads. Built on the worker
/// thread that ran the simulation, so with the GIL held only the finished buffers
/// are handed over.
struct OutputColumns {
    ints: Vec<(&'static str, Vec<i64>)>,
    floats: Vec<(&'static str, Vec<f64>)>,
    bars_visited: u64,
}

fn output_columns(out: &Output) -> OutputColumns {
    let mut ints: Vec<(&'static str, Vec<i64>)> = Vec::with_capacity(18);
    let mut floats: Vec<(&'static str, Vec<f64>)> = Vec::with_capacity(16);
    macro_rules! int {
        ($name:literal, $rows:expr, |$r:ident| $e:expr) => {
            ints.push(($name, $rows.iter().map(|$r| $e).collect()))
        };
    }
    macro_rules! float {
        ($name:literal, $rows:expr, |$r:ident| $e:expr) => {
            floats.push(($name, $rows.iter().map(|$r| $e).collect()))
        };
    }
    let f = &out.fills;
    int!("fills.order_id", f, |r| r.order_id);
    int!("fills.ts", f, |r| r.ts);
    int!("fills.symbol", f, |r| r.symbol as i64);
    int!("fills.side", f, |r| r.side as u8 as i64);
    float!("fills.qty", f, |r| r.qty);
    float!("fills.price", f, |r| r.price);
    float!("fills.fee", f, |r| r.fee);
    int!("fills.reason", f, |r| r.reason as u8 as i64);
    let t = &out.trades;
    int!("trades.symbol", t, |r| r.symbol as i64);
    int!("trades.direction", t, |r| r.direction as i64);
    int!("trades.entry_order_id", t, |r| r.entry_order_id);
    int!("trades.entry_ts", t, |r| r.entry_ts);
    float!("trades.entry_price", t, |r| r.entry_price);
    int!("trades.exit_ts", t, |r| r.exit_ts);
    float!("trades.exit_price", t, |r| r.exit_price);
    float!("trades.qty", t, |r| r.qty);
    float!("trades.pnl", t, |r| r.pnl);
    float!("trades.return", t, |r| r.ret);
    float!("trades.fees", t, |r| r.fees);
    int!("trades.exit_reason", t, |r| r
        .exit_reason
        .map(|x| x as u8 as i64)
        .unwrap_or(-1));
    float!("trades.mae", t, |r| r.mae);
    float!("trades.mfe", t, |r| r.mfe);
    let e = &out.equity;
    int!("equity.ts", e, |r| r.ts);
    float!("equity.cash", e, |r| r.cash);
    float!("equity.equity", e, |r| r.equity);
    float!("equity.gross_exposure", e, |r| r.gross_exposure);
    let o = &out.orders;
    int!("orders.status", o, |r| r.status as u8 as i64);
    int!("orders.status_ts", o, |r| r.status_ts.unwrap_or(i64::MIN));
    float!("orders.filled_qty", o, |r| r.filled_qty);
    int!("orders.reason", o, |r| r.reason as u8 as i64);
    OutputColumns {
        ints,
        floats,
        bars_visited: out.bars_visited,
    }
}

/// Output columns as buffers (native-endian i64 / f64) that `aftershock.results`
/// views with NumPy; the vectors move into Python objects, no bytes are copied.
fn columns_to_dict(py: Python<'_>, cols: OutputColumns) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (name, v) in cols.ints {
        let column = Column {
            data: ColumnData::Int(v),
        };
        d.set_item(name, Bound::new(py, column)?)?;
    }
    for (name, v) in cols.floats {
        let column = Column {
            data: ColumnData::Float(v),
        };
        d.set_item(name, Bound::new(py, column)?)?;
    }
    d.set_item("bars_visited", cols.bars_visited)?;
    Ok(d)
}

fn bar_check(trusted: bool) -> BarCheck {
    if trusted {
        BarCheck::Trusted
    } else {
        BarCheck::Full
    }
}

/// Runs one backtest. `bars` and `orders` are dicts of NumPy arrays prepared by
/// `aftershock.engine`; the GIL is released for the whole simulation. `trusted`
/// skips the engine's own O(bars) scan for bars `prepare_bars` already validated.
#[pyfunction]
fn simulate<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyDict>,
    orders: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
    trusted: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let buffers = BarBuffers::from_dict(bars)?;
    let orders = orders_from_dict(orders)?;
    let config = config_from_dict(config)?;
    let bars = buffers.bars()?;
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
        .map(|out| output_columns(&out))
    });
    columns_to_dict(py, result.map_err(|e| to_pyerr(py, e))?)
}

/// Runs many backtests over the same bars on `threads` threads with the GIL
/// released; results come back in input order and do not depend on `threads`.
#[pyfunction]
fn simulate_many<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyDict>,
    orders: &Bound<'py, PyList>,
    configs: &Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
) -> PyResult<Bound<'py, PyList>> {
    let outputs = Batch::new(bars, orders, configs)?.run(py, threads, trusted, |bars, o, c| {
        engine::simulate_validated(bars, o, c).map(|out| output_columns(&out))
    })?;
    let list = PyList::empty(py);
    for cols in outputs {
        list.append(columns_to_dict(py, cols)?)?;
    }
    Ok(list)
}

/// The engine's O(bars) check of ordering and prices (GIL released); raises
/// `BarsError` naming the column and the row of the laid-out arrays.
#[pyfunction]
fn check_bars(py: Python<'_>, bars: &Bound<'_, PyDict>) -> PyResult<()> {
    let buffers = BarBuffers::from_dict(bars)?;
    let bars = buffers.bars()?;
    py.detach(|| bars.validate()).map_err(|e| to_pyerr(py, e))
}

// ---------------------------------------------------------------------------
// Sweeps scored in the engine: one row of `Result.stats()` figures per job.
// ---------------------------------------------------------------------------

/// The distinct orders dicts of a list (jobs that pass the same dict object share
/// its buffers) and, per job, the index of its dict.
struct SharedOrders {
    frames: Vec<OrderBuffers>,
    index: Vec<usize>,
}

fn shared_orders(list: &Bound<'_, PyList>) -> PyResult<SharedOrders> {
    let mut seen: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut frames = Vec::new();
    let mut index = Vec::with_capacity(list.len());
    for item in list.iter() {
        let key = item.as_ptr() as usize;
        let k = match seen.get(&key) {
            Some(&k) => k,
            None => {
                frames.push(OrderBuffers::from_dict(item.cast::<PyDict>()?)?);
                seen.insert(key, frames.len() - 1);
                frames.len() - 1
            }
        };
        index.push(k);
    }
    Ok(SharedOrders { frames, index })
}

impl SharedOrders {
    fn jobs<'a>(&'a self, configs: &'a [Config]) -> PyResult<Vec<(OrderColumns<'a>, &'a Config)>> {
        let columns: Vec<OrderColumns<'a>> = self
            .frames
            .iter()
            .map(|f| f.columns())
            .collect::<PyResult<_>>()?;
        Ok(self
            .index
            .iter()
            .map(|&k| columns[k])
            .zip(configs)
            .collect())
    }
}

/// The arguments of a batch of backtests, held while the engine reads them.
struct Batch {
    bars: BarBuffers,
    orders: SharedOrders,
    configs: Vec<Config>,
}

impl Batch {
    fn new(
        bars: &Bound<'_, PyDict>,
        orders: &Bound<'_, PyList>,
        configs: &Bound<'_, PyList>,
    ) -> PyResult<Self> {
        if orders.len() != configs.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "orders and configs must have the same length",
            ));
        }
        Ok(Batch {
            bars: BarBuffers::from_dict(bars)?,
            orders: shared_orders(orders)?,
            configs: configs
                .iter()
                .map(|c| config_from_dict(c.cast::<PyDict>()?))
                .collect::<PyResult<_>>()?,
        })
    }

    /// Applies `run` to every job on the engine's worker threads with the GIL
    /// released; the first error (in job order) is raised. Each worker decodes its
    /// job's orders itself, so memory holds one decoded frame per thread, not one
    /// per variant.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        threads: usize,
        trusted: bool,
        run: impl Fn(Bars<'_>, &[Order], &Config) -> Result<T, EngineError> + Sync,
    ) -> PyResult<Vec<T>> {
        let bars = self.bars.bars()?;
        let jobs = self.orders.jobs(&self.configs)?;
        let check = bar_check(trusted);
        let results = py.detach(|| {
            engine::run_checked(bars, &jobs, threads, check, |(columns, config)| {
                run(bars, &columns.decode()?, config)
            })
        });
        results
            .into_iter()
            .map(|r| r.map_err(|e| to_pyerr(py, e)))
            .collect()
    }
}

/// Runs many backtests like `simulate_many` but returns only their figures, as a
/// dict of columns (lists, `None` for a null figure) in job order. The figures are
/// computed inside the parallel loop; no equity path is built.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn simulate_many_stats<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyDict>,
    orders: &Bound<'py, PyList>,
    configs: &Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
    day: i64,
    periods_per_year: f64,
) -> PyResult<Bound<'py, PyDict>> {
    if day <= 0 {
        return Err(pyo3::exceptions::PyValueError::new_err("day must be > 0"));
    }
    let spec = StatsSpec {
        day,
        periods_per_year,
    };
    let stats = Batch::new(bars, orders, configs)?.run(py, threads, trusted, |bars, o, c| {
        engine::simulate_stats(bars, o, c, spec)
    })?;
    stats_columns(py, &stats)
}

/// Sweep figures as ``{name: [value per job]}``, in `Result.stats()` order.
fn stats_columns<'py>(py: Python<'py>, stats: &[Stats]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    macro_rules! column {
        ($name:ident) => {
            d.set_item(
                stringify!($name),
                PyList::new(py, stats.iter().map(|s| s.$name))?,
            )?
        };
    }
    column!(start);
    column!(end);
    column!(init_cash);
    column!(final_equity);
    column!(total_return);
    column!(max_drawdown);
    column!(sharpe);
    column!(trades);
    column!(open_trades);
    column!(win_rate);
    column!(avg_trade_return);
    column!(profit_factor);
    column!(total_fees);
    column!(exposure);
    column!(bars_visited);
    Ok(d)
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
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_many, m)?)?;
    m.add_function(wrap_pyfunction!(check_bars, m)?)?;
    // sweeps scored in the engine
    m.add_function(wrap_pyfunction!(simulate_many_stats, m)?)?;
    m.add_function(wrap_pyfunction!(codes, m)?)?;
    add_signal_functions(m)?;
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
        if key == "sl_trail" {
            cfg.sl_trail = value
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

struct SignalBuffers {
    ts: PyBuffer<i64>,
    prices: [PyBuffer<f64>; 4],
    masks: [PyBuffer<u8>; 4],
    /// Optional per-bar settings: `signals[name]`, a float array per bar.
    per_bar: Vec<(&'static str, PyBuffer<f64>)>,
}

impl SignalBuffers {
    fn from_dicts(bars: &Bound<'_, PyDict>, signals: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(SignalBuffers {
            ts: get(bars, "ts")?,
            prices: [
                get(bars, "open")?,
                get(bars, "high")?,
                get(bars, "low")?,
                get(bars, "close")?,
            ],
            masks: [
                get(signals, "long_entries")?,
                get(signals, "long_exits")?,
                get(signals, "short_entries")?,
                get(signals, "short_exits")?,
            ],
            per_bar: {
                let mut out = Vec::new();
                for (key, _) in engine::PerBar::default().fields() {
                    if signals.contains(key)? {
                        out.push((key, get(signals, key)?));
                    }
                }
                out
            },
        })
    }

    fn input(&self) -> PyResult<SignalInput<'_>> {
        let [o, h, l, c] = &self.prices;
        let [le, lx, se, sx] = &self.masks;
        let mut per_bar = engine::PerBar::default();
        for (key, buf) in &self.per_bar {
            per_bar.set(key, view(buf, key)?);
        }
        Ok(SignalInput {
            ts: view(&self.ts, "ts")?,
            open: view(o, "open")?,
            high: view(h, "high")?,
            low: view(l, "low")?,
            close: view(c, "close")?,
            long_entries: view(le, "long_entries")?,
            long_exits: view(lx, "long_exits")?,
            short_entries: view(se, "short_entries")?,
            short_exits: view(sx, "short_exits")?,
            per_bar,
        })
    }
}

/// One signal backtest over one symbol's validated bars (GIL released); returns
/// the same raw columns as `simulate` (equity columns empty unless `keep_equity`).
#[pyfunction]
fn simulate_signals<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyDict>,
    signals: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
    keep_equity: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let buffers = SignalBuffers::from_dicts(bars, signals)?;
    let config = signal_config_from_dict(config)?;
    let input = buffers.input()?;
    let result =
        py.detach(|| engine::guarded(|| engine::simulate_signals(input, &config, keep_equity)));
    let out = result.map_err(|e| to_pyerr(py, e))?;
    columns_to_dict(py, output_columns(&out))
}

/// A sweep: `config` with each key of `variants` (equal-length float arrays, one
/// value per variant) overridden; runs on `threads` threads with the GIL released
/// and returns one list per stats figure, in variant order.
#[pyfunction]
fn simulate_signals_many<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyDict>,
    signals: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
    variants: &Bound<'py, PyDict>,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let buffers = SignalBuffers::from_dicts(bars, signals)?;
    let base = signal_config_from_dict(config)?;
    let mut columns: Vec<(String, PyBuffer<f64>)> = Vec::new();
    for (key, value) in variants.iter() {
        columns.push((key.extract()?, PyBuffer::get(&value)?));
    }
    let n = match columns.first() {
        Some((name, buf)) => view(buf, name)?.len(),
        None => 1,
    };
    let mut configs = vec![base; n];
    for (name, buf) in &columns {
        let values = view(buf, name)?;
        if values.len() != n {
            let msg = format!("has {} values, the first variant column {n}", values.len());
            return Err(to_pyerr(py, EngineError::config("variants", msg)));
        }
        for (cfg, &v) in configs.iter_mut().zip(values) {
            let slot = signal_number(cfg, name).ok_or_else(|| {
                to_pyerr(
                    py,
                    EngineError::config("variants", format!("{name} cannot be swept")),
                )
            })?;
            *slot = v;
        }
    }
    let input = buffers.input()?;
    let results = py.detach(|| engine::simulate_signals_many(input, &configs, threads));
    let stats: Vec<Stats> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(py, e))?;
    stats_columns(py, &stats)
}

/// Several symbols in one backtest (vectorbt's `group_by=True`, with or without
/// `cash_sharing`): `bars[k]` and `signals[k]` are column `k`'s dicts, as for
/// `simulate_signals`, and `codes[k]` its symbol code; columns run in list order.
#[pyfunction]
fn simulate_signal_group<'py>(
    py: Python<'py>,
    bars: Vec<Bound<'py, PyDict>>,
    signals: Vec<Bound<'py, PyDict>>,
    codes: Vec<usize>,
    config: &Bound<'py, PyDict>,
    cash_sharing: bool,
    keep_equity: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let buffers = bars
        .iter()
        .zip(&signals)
        .map(|(b, s)| SignalBuffers::from_dicts(b, s))
        .collect::<PyResult<Vec<_>>>()?;
    let config = signal_config_from_dict(config)?;
    let inputs = buffers
        .iter()
        .map(SignalBuffers::input)
        .collect::<PyResult<Vec<_>>>()?;
    let result = py.detach(|| {
        engine::guarded(|| {
            engine::simulate_signal_group(&inputs, &codes, &config, cash_sharing, keep_equity)
        })
    });
    let out = result.map_err(|e| to_pyerr(py, e))?;
    columns_to_dict(py, output_columns(&out))
}

fn add_signal_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate_signal_group, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_signals, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_signals_many, m)?)?;
    Ok(())
}
