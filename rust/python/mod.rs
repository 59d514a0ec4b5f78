//! The one binding module: NumPy buffers in (zero-copy for the bar columns),
//! column buffers out, the GIL released while the engine runs, and every
//! `EngineError` mapped to one Python exception class in `aftershock.errors`.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::engine::{
    self, BarCheck, Bars, Config, EngineError, Intrabar, Job, Order, Output, Table,
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
    let submit: PyBuffer<i64> = get(d, "submit_ts")?;
    let symbol: PyBuffer<i64> = get(d, "symbol")?;
    let side: PyBuffer<i64> = get(d, "side")?;
    let qty: PyBuffer<f64> = get(d, "qty")?;
    let size_type: PyBuffer<i64> = get(d, "size_type")?;
    let order_type: PyBuffer<i64> = get(d, "order_type")?;
    let limit: PyBuffer<f64> = get(d, "limit_price")?;
    let stop: PyBuffer<f64> = get(d, "stop_price")?;
    let tif: PyBuffer<i64> = get(d, "tif")?;
    let expire: PyBuffer<i64> = get(d, "expire_ts")?;
    let reduce: PyBuffer<i64> = get(d, "reduce_only")?;
    let sl: PyBuffer<f64> = get(d, "stop_loss")?;
    let tp: PyBuffer<f64> = get(d, "take_profit")?;
    let tr: PyBuffer<f64> = get(d, "trailing_stop")?;
    let exit_after: PyBuffer<i64> = get(d, "exit_after")?;
    let n = view(&submit, "submit_ts")?.len();
    let cols_f = [
        (&qty, "qty"),
        (&limit, "limit_price"),
        (&stop, "stop_price"),
        (&sl, "stop_loss"),
        (&tp, "take_profit"),
        (&tr, "trailing_stop"),
    ];
    let cols_i = [
        (&symbol, "symbol"),
        (&side, "side"),
        (&size_type, "size_type"),
        (&order_type, "order_type"),
        (&tif, "tif"),
        (&expire, "expire_ts"),
        (&reduce, "reduce_only"),
        (&exit_after, "exit_after"),
    ];
    let lengths = cols_f
        .iter()
        .map(|(b, name)| (view(b, name).map(<[f64]>::len), *name));
    let lengths = lengths.chain(
        cols_i
            .iter()
            .map(|(b, name)| (view(b, name).map(<[i64]>::len), *name)),
    );
    for (len, name) in lengths {
        if len? != n {
            let msg = format!("column has a different length than submit_ts ({n})");
            return Err(to_pyerr(d.py(), EngineError::orders(name, 0, msg)));
        }
    }
    let (submit, symbol, side, qty) = (
        view(&submit, "")?,
        view(&symbol, "")?,
        view(&side, "")?,
        view(&qty, "")?,
    );
    let (size_type, order_type, limit, stop) = (
        view(&size_type, "")?,
        view(&order_type, "")?,
        view(&limit, "")?,
        view(&stop, "")?,
    );
    let (tif, expire, reduce) = (view(&tif, "")?, view(&expire, "")?, view(&reduce, "")?);
    let (sl, tp, tr, exit_after) = (
        view(&sl, "")?,
        view(&tp, "")?,
        view(&tr, "")?,
        view(&exit_after, "")?,
    );
    let py = d.py();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let order = (|| -> Result<Order, EngineError> {
            Ok(Order {
                submit_ts: submit[i],
                symbol: usize::try_from(symbol[i])
                    .map_err(|_| EngineError::orders("symbol", i, "negative symbol code"))?,
                side: engine::Side::from_code(side[i], i)?,
                qty: qty[i],
                size_type: engine::SizeType::from_code(size_type[i], i)?,
                order_type: engine::OrderType::from_code(order_type[i], i)?,
                limit_price: opt_f64(limit[i]),
                stop_price: opt_f64(stop[i]),
                tif: engine::TimeInForce::from_code(tif[i], i)?,
                expire_ts: opt_i64(expire[i]),
                reduce_only: reduce[i] != 0,
                stop_loss: opt_f64(sl[i]),
                take_profit: opt_f64(tp[i]),
                trailing_stop: opt_f64(tr[i]),
                exit_after: opt_i64(exit_after[i]),
            })
        })()
        .map_err(|e| to_pyerr(py, e))?;
        out.push(order);
    }
    Ok(out)
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

fn bytes_of<'py, T: Copy>(py: Python<'py>, v: &[T]) -> Bound<'py, PyBytes> {
    // SAFETY: T is a plain numeric type (i64 / f64): any byte view of it is valid.
    let raw =
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) };
    PyBytes::new(py, raw)
}

/// Output columns as raw little-endian buffers; `aftershock.engine` gives them dtypes.
fn output_to_dict<'py>(py: Python<'py>, out: &Output) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    macro_rules! col {
        ($name:literal, $rows:expr, |$r:ident| $e:expr) => {{
            let v: Vec<_> = $rows.iter().map(|$r| $e).collect();
            d.set_item($name, bytes_of(py, &v))?;
        }};
    }
    let f = &out.fills;
    col!("fills.order_id", f, |r| r.order_id);
    col!("fills.ts", f, |r| r.ts);
    col!("fills.symbol", f, |r| r.symbol as i64);
    col!("fills.side", f, |r| r.side as u8 as i64);
    col!("fills.qty", f, |r| r.qty);
    col!("fills.price", f, |r| r.price);
    col!("fills.fee", f, |r| r.fee);
    col!("fills.reason", f, |r| r.reason as u8 as i64);
    let t = &out.trades;
    col!("trades.symbol", t, |r| r.symbol as i64);
    col!("trades.direction", t, |r| r.direction as i64);
    col!("trades.entry_order_id", t, |r| r.entry_order_id);
    col!("trades.entry_ts", t, |r| r.entry_ts);
    col!("trades.entry_price", t, |r| r.entry_price);
    col!("trades.exit_ts", t, |r| r.exit_ts);
    col!("trades.exit_price", t, |r| r.exit_price);
    col!("trades.qty", t, |r| r.qty);
    col!("trades.pnl", t, |r| r.pnl);
    col!("trades.return", t, |r| r.ret);
    col!("trades.fees", t, |r| r.fees);
    col!("trades.exit_reason", t, |r| r
        .exit_reason
        .map(|x| x as u8 as i64)
        .unwrap_or(-1));
    col!("trades.mae", t, |r| r.mae);
    col!("trades.mfe", t, |r| r.mfe);
    let e = &out.equity;
    col!("equity.ts", e, |r| r.ts);
    col!("equity.cash", e, |r| r.cash);
    col!("equity.equity", e, |r| r.equity);
    col!("equity.gross_exposure", e, |r| r.gross_exposure);
    let o = &out.orders;
    col!("orders.status", o, |r| r.status as u8 as i64);
    col!("orders.status_ts", o, |r| r.status_ts.unwrap_or(i64::MIN));
    col!("orders.filled_qty", o, |r| r.filled_qty);
    col!("orders.reason", o, |r| r.reason as u8 as i64);
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
    });
    let out = result.map_err(|e| to_pyerr(py, e))?;
    output_to_dict(py, &out)
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
    if orders.len() != configs.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "orders and configs must have the same length",
        ));
    }
    let buffers = BarBuffers::from_dict(bars)?;
    let orders: Vec<Vec<Order>> = orders
        .iter()
        .map(|o| orders_from_dict(o.cast::<PyDict>()?))
        .collect::<PyResult<_>>()?;
    let configs: Vec<Config> = configs
        .iter()
        .map(|c| config_from_dict(c.cast::<PyDict>()?))
        .collect::<PyResult<_>>()?;
    let bars = buffers.bars()?;
    let jobs: Vec<Job> = orders
        .iter()
        .zip(&configs)
        .map(|(o, c)| Job {
            orders: o,
            config: c,
        })
        .collect();
    let check = bar_check(trusted);
    let results = py.detach(|| engine::simulate_many(bars, &jobs, threads, check));
    let list = PyList::empty(py);
    for r in results {
        let out = r.map_err(|e| to_pyerr(py, e))?;
        list.append(output_to_dict(py, &out)?)?;
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

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_many, m)?)?;
    m.add_function(wrap_pyfunction!(check_bars, m)?)?;
    add_signal_functions(m)?;
    Ok(())
}

// ------------------------------------------------------------------ signals
// `aftershock.signals.from_signals`: one symbol's bars and four masks in, the
// engine's records (one run) or one row of stats per variant (a sweep) out.

use crate::engine::{
    Accumulate, ConflictMode, DirConflictMode, OppositeEntryMode, SignalConfig, SignalInput,
    SignalPrice, SignalSize, SignalStats, StopEntryPrice, StopExitMode, StopExitPrice,
    StopUpdateMode,
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
        })
    }

    fn input(&self) -> PyResult<SignalInput<'_>> {
        let [o, h, l, c] = &self.prices;
        let [le, lx, se, sx] = &self.masks;
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
    let result = py
        .detach(|| engine::catch_panics(|| engine::simulate_signals(input, &config, keep_equity)));
    let out = result.map_err(|e| to_pyerr(py, e))?;
    output_to_dict(py, &out)
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
    let stats: Vec<SignalStats> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(py, e))?;
    let d = PyDict::new(py);
    macro_rules! col {
        ($name:literal, |$s:ident| $e:expr) => {
            d.set_item($name, stats.iter().map(|$s| $e).collect::<Vec<_>>())?;
        };
    }
    col!("final_equity", |s| s.final_equity);
    col!("total_return", |s| s.total_return);
    col!("max_drawdown", |s| s.max_drawdown);
    col!("sharpe", |s| s.sharpe);
    col!("trades", |s| s.trades);
    col!("open_trades", |s| s.open_trades);
    col!("win_rate", |s| s.win_rate);
    col!("avg_trade_return", |s| s.avg_trade_return);
    col!("profit_factor", |s| s.profit_factor);
    col!("total_fees", |s| s.total_fees);
    col!("exposure", |s| s.exposure);
    col!("bars_visited", |s| s.bars_visited);
    Ok(d)
}

fn add_signal_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate_signals, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_signals_many, m)?)?;
    Ok(())
}
