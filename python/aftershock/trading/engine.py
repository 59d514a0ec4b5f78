"""The Python face of the Rust engine: validate, encode, run, decode.

``backtest(bars, orders, **config)`` is the one contract between strategies and the
engine; docs/engine.md states its semantics in full.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from aftershock import _engine
from aftershock._checks import from_pandas, utc_timestamps
from aftershock.trading._codes import CODES
from aftershock.trading._frame_identity import buffer_fingerprint
from aftershock._time import duration_us
from aftershock.errors import BarsError, ConfigError, OrdersError
from aftershock.prices._validate import BARS_SCHEMA, PRICE_COLUMNS, _as_polars, _normalize_dtypes
from aftershock.trading.results import ENGINE_STATS, SWEEP_STATS, Result

__all__ = [
    "backtest", "backtest_many", "PreparedBars", "prepare_bars", "encode_orders", "stats_frame", "ORDER_COLUMNS",
    "ENGINE_ORDER_COLUMNS",
]

SIDES = CODES["side"]
SIZE_TYPES = CODES["size_type"]
ORDER_TYPES = CODES["order_type"]
TIFS = CODES["tif"]
INTRABAR = tuple(CODES["intrabar"])
NULL_I64 = np.iinfo(np.int64).min

#: Optional order columns and their defaults.
ORDER_COLUMNS: dict[str, Any] = {
    "size_type": "units",
    "order_type": "market",
    "limit_price": None,
    "stop_price": None,
    "tif": "gtc",
    "expire_ts": None,
    "reduce_only": False,
    "stop_loss": None,
    "take_profit": None,
    "trailing_stop": None,
    "exit_after": None,
    "tag": None,
}
_REQUIRED = ("submit_ts", "symbol", "side", "qty")

DEFAULT_CONFIG: dict[str, Any] = {
    "init_cash": 100_000.0,
    "fees": 0.0,
    "maker_fees": None,  # None: same as fees
    "fixed_fees": 0.0,
    "slippage": 0.0,
    "latency": 0,
    "lot_size": 0.0,
    "leverage": 1.0,
    "intrabar": "pessimistic",
    "maintenance_margin": 0.0,
    "close_at_end": False,
    "allow_partial": True,
}


@dataclass(frozen=True)
class PreparedBars:
    """Validated bars, grouped by symbol (in order of first appearance). Reuse one
    across many backtests.

    ``columns`` is the frame the engine reads in place through the Arrow C stream
    interface (ts, open, high, low, close, one chunk); ``offsets`` bounds each
    symbol's rows in it. ``arrays`` views the same memory as NumPy arrays."""

    frame: pl.DataFrame
    symbols: tuple[str, ...]
    columns: pl.DataFrame
    offsets: pl.Series

    @property
    def symbol_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    @functools.cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """ts (epoch microseconds), open, high, low, close and offsets as NumPy views."""
        out = {c: self.columns.get_column(c).to_physical().to_numpy() for c in self.columns.columns}
        out["offsets"] = self.offsets.to_numpy()
        return out


#: Frames ``prepare_bars`` validated lately: id -> (the frame, a clone holding its
#: buffers, their fingerprint, the result). Small: each entry keeps its bars alive.
_BARS_CACHE: dict[int, tuple[pl.DataFrame, pl.DataFrame, tuple, PreparedBars]] = {}
_BARS_CACHE_SIZE = 4
_BAR_COLUMNS = ("ts", "symbol", *PRICE_COLUMNS, "volume")


def prepare_bars(bars: Any) -> PreparedBars:
    """Validate ``bars`` and lay them out for the engine.

    Rows of one symbol are handed to Rust as one contiguous block. When the frame is
    already grouped by symbol the numeric columns cross without a copy; an
    interleaved frame is gathered once (the caller's frame is untouched).

    A Polars frame is validated once: the result is cached for the last few frames,
    keyed on the frame object and the memory addresses of its columns' buffers, so
    a frame changed in place (``df["close"] = ...``, ``replace_column``...) is
    validated again, while repeated runs over the same frame skip the scan. The
    cache keeps a reference to those frames; pass a :class:`PreparedBars` to manage
    reuse yourself.
    """
    if isinstance(bars, PreparedBars):
        return bars
    if not isinstance(bars, pl.DataFrame):
        return _prepare(bars)
    hit = _BARS_CACHE.get(id(bars))
    if hit is not None and hit[0] is bars and buffer_fingerprint(bars, _BAR_COLUMNS) == hit[2]:
        return hit[3]
    prepared = _prepare(bars)
    fingerprint = buffer_fingerprint(bars, _BAR_COLUMNS)
    if fingerprint is not None:
        _BARS_CACHE.pop(id(bars), None)
        while len(_BARS_CACHE) >= _BARS_CACHE_SIZE:
            _BARS_CACHE.pop(next(iter(_BARS_CACHE)))
        # the clone shares the buffers: while it lives they cannot be freed, reused
        # or written in place, so equal addresses mean equal data
        _BARS_CACHE[id(bars)] = (bars, bars.clone(), fingerprint, prepared)
    return prepared


def _prepare(bars: Any) -> PreparedBars:
    df = _normalize_dtypes(_as_polars(bars))
    df = df.select([c for c in BARS_SCHEMA if c in df.columns] + [c for c in df.columns if c not in BARS_SCHEMA])
    if df.height == 0:
        raise BarsError("bars frame is empty", column="ts")
    # Nulls are cheap to find (counts are metadata); values, ordering and OHLC
    # consistency are checked by the engine's own scan below, which is ~20x faster
    # than the same checks as frame expressions.
    for name in ("ts", "symbol", *PRICE_COLUMNS, *(["volume"] if "volume" in df.columns else [])):
        col = df.get_column(name)
        if col.null_count():
            raise BarsError(f"null {name}", column=name, row=_first_row(col.is_null().to_numpy()))
    if "volume" in df.columns:
        vol = df.get_column("volume").to_numpy()
        bad_vol = ~np.isfinite(vol) | (vol < 0)
        if bad_vol.any():
            raise BarsError("volume is NaN, infinite or negative", column="volume", row=_first_row(bad_vol))
    sym = df.get_column("symbol")
    runs = sym.rle_id().to_numpy()
    starts = np.flatnonzero(np.diff(runs, prepend=-1))
    run_symbols = sym.gather(starts).to_list()
    order = None
    if len(set(run_symbols)) == len(run_symbols):
        # already grouped by symbol (the common case): no copy, no hashing
        symbols = tuple(run_symbols)
        offsets = np.append(starts, df.height).astype(np.int64)
    else:
        symbols = tuple(sym.unique(maintain_order=True).to_list())
        codes = sym.replace_strict({s: i for i, s in enumerate(symbols)}, return_dtype=pl.Int64).to_numpy()
        order = np.argsort(codes, kind="stable")
        df = df[pl.Series(order)]
        counts = np.bincount(codes, minlength=len(symbols))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # one chunk, so the engine borrows every column in place
    columns = df.select(pl.col("ts").dt.convert_time_zone("UTC"), *PRICE_COLUMNS).rechunk()
    offsets_series = pl.Series("offsets", offsets, dtype=pl.Int64)
    try:
        _engine.check_bars(columns, offsets_series)
    except BarsError as exc:
        row = exc.row if exc.row is not None else 0
        user_row = int(order[row]) if order is not None else row
        symbol = df.get_column("symbol")[row]
        raise BarsError(f"{exc.message} (symbol {symbol!r})", column=exc.column, row=user_row) from None
    prepared = PreparedBars(frame=df, symbols=symbols, columns=columns, offsets=offsets_series)
    _check_span(prepared.arrays, order)
    return prepared


#: Stats sample equity once per calendar day: bars may span at most this many days
#: (about 10,000 years; the engine's own limit, rust/engine/metrics.rs). A longer span
#: is nearly always timestamps in the wrong unit.
MAX_DAYS: int = _engine.MAX_DAYS


def _check_span(arrays: dict[str, np.ndarray], order: np.ndarray | None) -> None:
    ts = arrays["ts"]
    lo, hi = int(np.argmin(ts)), int(np.argmax(ts))
    days = (int(ts[hi]) - int(ts[lo])) // 86_400_000_000
    if days > MAX_DAYS:
        row = int(order[hi]) if order is not None else hi
        raise BarsError(f"the bars span {days:,} days, more than {MAX_DAYS:,} (10,000 years): timestamps in the "
                        "wrong unit?", column="ts", row=row)


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


_FLOAT_COLUMNS = ("qty", "limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop")
#: The encoded orders columns the engine reads (rust/python/mod.rs: ORDER_INTS, ORDER_FLOATS).
ENGINE_ORDER_COLUMNS = ("submit_ts", "symbol", "side", "qty", "size_type", "order_type", "limit_price", "stop_price",
                        "tif", "expire_ts", "reduce_only", "stop_loss", "take_profit", "trailing_stop", "exit_after")
_ENUMS: dict[str, Mapping[str, int]] = {"size_type": SIZE_TYPES, "order_type": ORDER_TYPES, "tif": TIFS}


def _check_schema(orders: pl.DataFrame) -> None:
    """Dtype checks: metadata only, no pass over the data."""
    schema = orders.schema
    for name in ("submit_ts", "expire_ts"):
        if not (name == "expire_ts" and schema[name] == pl.Null):
            utc_timestamps(orders, name, OrdersError)
    for name in _FLOAT_COLUMNS:
        if not (schema[name].is_numeric() or schema[name] == pl.Null):
            raise OrdersError(f"{name!r} must be numeric, got {schema[name]}", column=name)
    for name, mapping in _ENUMS.items():
        if schema[name] not in (pl.String, pl.Categorical, pl.Null) and not isinstance(schema[name], pl.Enum):
            raise OrdersError(f"{name!r} must hold strings ({', '.join(mapping)}), got {schema[name]}", column=name)
    side = schema["side"]
    if not (side.is_numeric() or side in (pl.String, pl.Categorical) or isinstance(side, pl.Enum)):
        raise OrdersError(f"'side' must be 'buy'/'sell' strings or signed numbers, got {side}", column="side")
    if schema["symbol"] not in (pl.String, pl.Categorical) and not isinstance(schema["symbol"], pl.Enum):
        raise OrdersError(f"'symbol' must be a string column, got {schema['symbol']}", column="symbol")
    if schema["reduce_only"] not in (pl.Boolean, pl.Null):
        raise OrdersError(f"'reduce_only' must be Boolean, got {schema['reduce_only']}", column="reduce_only")
    exit_after = schema["exit_after"]
    if not (isinstance(exit_after, pl.Duration) or exit_after in (pl.String, pl.Null)):
        raise OrdersError(f"'exit_after' must be a Duration or strings like '1h', got {exit_after}", column="exit_after")


def _exit_after_expr(orders: pl.DataFrame) -> pl.Expr:
    dtype = orders.schema["exit_after"]
    if isinstance(dtype, pl.Duration):
        return pl.col("exit_after").dt.total_microseconds()
    if dtype == pl.Null:
        return pl.lit(None, pl.Int64)
    mapping: dict[str, int] = {}
    col = orders.get_column("exit_after")
    for v in col.drop_nulls().unique().to_list():
        try:
            mapping[v] = duration_us(v, name="exit_after")
        except ValueError as exc:
            raise OrdersError(getattr(exc, "message", str(exc)), column="exit_after", row=_first_row((col == v).fill_null(False).to_numpy())) from None
    return pl.col("exit_after").replace_strict(mapping, default=None, return_dtype=pl.Int64)


def _raise_first(bad: np.ndarray, column: str, message: str, values: pl.Series | None = None) -> None:
    if bad.any():
        row = _first_row(bad)
        shown = f", got {values[row]!r}" if values is not None else ""
        raise OrdersError(f"{message}{shown}", column=column, row=row)


def encode_orders(orders: Any, symbols: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate an orders frame and encode it as engine columns.

    Returns the frame with every optional column filled in with its default, and
    the encoded frame the engine reads in place (:data:`ENGINE_ORDER_COLUMNS`:
    codes as Int64 with ``NULL_I64`` for "not set", floats as Float64 with NaN). Row positions are order ids. Field combinations (a limit without a
    price, a gtd without expiry...) are checked by the engine, which names the row.
    """
    if orders is None:  # pl.DataFrame(None) would be "no orders"
        raise ConfigError("orders is None: pass an orders frame or a Strategy instance", column="orders")
    if not isinstance(orders, pl.DataFrame):
        try:
            orders = from_pandas(orders, OrdersError) if type(orders).__module__.startswith("pandas") else pl.DataFrame(orders)
        except Exception as exc:
            raise OrdersError(f"orders must be a Polars DataFrame: {exc}") from None
    if orders.width == 0:  # "no orders" (e.g. a strategy that found no signal)
        orders = pl.DataFrame(schema={"submit_ts": pl.Datetime("us", "UTC"), "symbol": pl.String, "side": pl.String, "qty": pl.Float64})
    missing = [c for c in _REQUIRED if c not in orders.columns]
    if missing:
        raise OrdersError(f"orders frame lacks required column {missing[0]!r}", column=missing[0])
    unknown = [c for c in orders.columns if c not in _REQUIRED and c not in ORDER_COLUMNS]
    if unknown:
        raise OrdersError(
            f"unknown orders column {unknown[0]!r}; known: {', '.join((*_REQUIRED, *ORDER_COLUMNS))}", column=unknown[0]
        )
    absent = [pl.lit(default).alias(name) for name, default in ORDER_COLUMNS.items() if name not in orders.columns]
    if absent:
        orders = orders.with_columns(absent)
    orders = orders.with_columns(
        *(pl.col(c).cast(pl.String).fill_null(ORDER_COLUMNS[c]) for c in _ENUMS),
        pl.col("tag").cast(pl.String),
    )
    _check_schema(orders)

    side_numeric = orders.schema["side"].is_numeric()
    side = pl.col("side").cast(pl.Float64)
    encoded = orders.select(
        symbol=pl.col("symbol").cast(pl.String).replace_strict(
            {s: i for i, s in enumerate(symbols)}, default=-1, return_dtype=pl.Int64
        ).fill_null(-1),
        side=(
            pl.when(side.is_nan()).then(-1).when(side > 0).then(1).when(side < 0).then(2).otherwise(-1)
            if side_numeric
            else pl.col("side").cast(pl.String).str.to_lowercase().replace_strict(SIDES, default=-1, return_dtype=pl.Int64)
        ).fill_null(-1).cast(pl.Int64),
        **{
            c: pl.col(c).str.to_lowercase().replace_strict(m, default=-1, return_dtype=pl.Int64)
            for c, m in _ENUMS.items()
        },
        submit_ts=pl.col("submit_ts").dt.convert_time_zone("UTC").dt.epoch("us").fill_null(NULL_I64),
        expire_ts=(
            pl.col("expire_ts").dt.convert_time_zone("UTC").dt.epoch("us")
            if isinstance(orders.schema["expire_ts"], pl.Datetime)
            else pl.lit(None, pl.Int64)
        ).fill_null(NULL_I64),
        reduce_only=pl.col("reduce_only").cast(pl.Boolean).fill_null(False).cast(pl.Int64),
        exit_after=_exit_after_expr(orders).fill_null(NULL_I64),
        **{c: pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in _FLOAT_COLUMNS},
        **{f"{c}__nan": pl.col(c).cast(pl.Float64).is_nan().fill_null(False) for c in _FLOAT_COLUMNS},
        qty__null=pl.col("qty").is_null(),
    )
    arrays = {c: encoded.get_column(c).to_numpy() for c in encoded.columns}
    _raise_first(arrays["submit_ts"] == NULL_I64, "submit_ts", "'submit_ts' is required")
    _raise_first(arrays["symbol"] < 0, "symbol", f"unknown symbol (bars have {list(symbols)})", orders.get_column("symbol"))
    _raise_first(
        arrays["side"] < 0, "side", "'side' must be 'buy', 'sell' or a non-zero signed number (not NaN)", orders.get_column("side")
    )
    for c, mapping in _ENUMS.items():
        _raise_first(arrays[c] < 0, c, f"{c!r} must be one of {sorted(mapping)}", orders.get_column(c))
    _raise_first(arrays["qty__null"], "qty", "'qty' is required")
    for c in _FLOAT_COLUMNS:
        _raise_first(arrays[f"{c}__nan"], c, f"{c!r} is NaN (use null for 'not set')")
    qty = arrays["qty"]
    target = arrays["size_type"] == SIZE_TYPES["target_percent"]
    _raise_first(
        ~np.isfinite(qty) | np.where(target, qty < 0, qty <= 0),
        "qty",
        "'qty' must be finite and > 0 (>= 0 for target_percent)",
        orders.get_column("qty"),
    )
    engine_frame = encoded.select(
        *(pl.col(c).cast(pl.Float64 if c in _FLOAT_COLUMNS else pl.Int64) for c in ENGINE_ORDER_COLUMNS)
    )
    return orders, engine_frame


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in config if k not in DEFAULT_CONFIG]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(DEFAULT_CONFIG)}", column=unknown[0])
    merged = {**DEFAULT_CONFIG, **config}
    if merged["maker_fees"] is None:
        merged["maker_fees"] = merged["fees"]
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key == "latency":
            try:
                out[key] = duration_us(value, name="latency")
            except (TypeError, ValueError) as exc:
                raise ConfigError(getattr(exc, "message", str(exc)), column="latency") from None
        elif key == "intrabar":
            if value not in INTRABAR:
                raise ConfigError(f"intrabar must be one of {INTRABAR}, got {value!r}", column="intrabar")
            out[key] = value
        elif key in ("close_at_end", "allow_partial"):
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{key} must be True or False, got {value!r}", column=key)
            out[key] = bool(value)
        else:
            # NumPy scalars are numbers too (np.float32(2)); bools are not
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value!r}", column=key)
            out[key] = float(value)
    return out


def backtest(bars: Any, orders: Any, *, calendar: Any = None, equity_path: str | os.PathLike | None = None,
             **config: Any) -> Result:
    """Simulate ``orders`` against ``bars`` in the Rust engine.

    Parameters
    ----------
    bars:
        Polars frame ``ts`` (tz-aware Datetime, bar open time), ``symbol``,
        ``open``, ``high``, ``low``, ``close`` (``volume`` optional); several symbols
        may share it. Or a :class:`PreparedBars` to skip re-validation. Or bars
        larger than memory: a Parquet folder's path (hive partitions such as
        ``symbol=BTC/year=2024/month=01/`` welcome) or :func:`aftershock.prices.scan_bars`
        of it, streamed one stretch of time at a time into the same engine; the
        result (a ``StreamedResult``) equals the in-memory run (docs/scale_data.md).
    orders:
        One row per order: ``submit_ts``, ``symbol``, ``side``, ``qty`` and the
        optional columns of :data:`ORDER_COLUMNS` (see docs/engine.md). Or an
        :class:`aftershock.Strategy` instance, compiled to orders over ``calendar``.
    calendar:
        The event calendar a strategy reads (surprises are added when missing).
    **config:
        ``init_cash`` (100000), ``fees`` (0, taker fraction), ``maker_fees``
        (= fees, limit fills), ``fixed_fees`` (0 per fill), ``slippage`` (0,
        fraction, market and stop fills), ``latency`` (0; ``"2s"`` or a timedelta),
        ``lot_size`` (0 = none), ``leverage`` (1), ``intrabar`` (``"pessimistic"``,
        ``"ohlc"``, ``"olhc"``, ``"nearest_first"``), ``maintenance_margin`` (0 =
        off), ``close_at_end`` (False), ``allow_partial`` (True; False rejects an
        order the leverage cap would shrink).
    equity_path:
        Streamed bars only: a folder to write the equity rows to as Parquet parts as
        the run goes, instead of keeping them in memory.

    Semantics, in short: an order is live from the first bar with ``ts >
    submit_ts + latency`` (``>=`` for market_on_close, which fills at the close);
    market orders fill at that bar's open plus slippage;
    limits and stops fill at their price when the bar path crosses it, at the open
    on a gap; brackets (``stop_loss``, ``take_profit``, ``trailing_stop``,
    ``exit_after``) are armed by the entry fill and cancel each other; fees are
    ``qty * price * rate + fixed_fees``; leverage caps gross exposure / equity.

    Returns
    -------
    Result
        ``fills``, ``trades``, ``equity``, ``orders`` frames and ``stats()``.

    Raises
    ------
    BarsError, OrdersError, ConfigError
        Invalid input, naming the column and the first bad row.

    Examples
    --------
    >>> import datetime as dt, polars as pl, aftershock as ash
    >>> ts = [dt.datetime(2025, 2, 12, 13, m, tzinfo=dt.timezone.utc) for m in range(30, 34)]
    >>> bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": [100.0, 101, 99, 98],
    ...                      "high": [101.0, 102, 100, 99], "low": [99.0, 98, 97, 96],
    ...                      "close": [101.0, 99, 98, 97]})
    >>> orders = pl.DataFrame({"submit_ts": [ts[0]], "symbol": ["BTC"], "side": ["sell"],
    ...                        "qty": [1.0], "exit_after": ["2m"]})
    >>> r = ash.backtest(bars, orders, latency="2s", init_cash=1_000)
    >>> r.fills.select("ts", "side", "price", "reason").rows()  # doctest: +NORMALIZE_WHITESPACE
    [(datetime.datetime(2025, 2, 12, 13, 31, tzinfo=zoneinfo.ZoneInfo(key='UTC')), 'sell', 101.0, 'entry'),
     (datetime.datetime(2025, 2, 12, 13, 33, tzinfo=zoneinfo.ZoneInfo(key='UTC')), 'buy', 98.0, 'time_exit')]
    >>> r.trades["pnl"].item()
    3.0
    """
    from aftershock.prices._scan import as_scan, is_bars_source

    if is_bars_source(bars):
        from aftershock.trading.stream import backtest_stream

        return backtest_stream(as_scan(bars), orders, equity_path=equity_path, **config)
    if equity_path is not None:
        raise ConfigError("equity_path is for streamed bars (a Parquet folder or scan_bars)", column="equity_path")
    prepared = prepare_bars(bars)
    source = orders
    orders = _resolve_orders(orders, calendar, prepared)
    frame, encoded = encode_orders(orders, prepared.symbols)
    cfg = _config(config)
    raw = _engine.simulate(prepared.columns, prepared.offsets, encoded, cfg, True)
    result = Result(raw, prepared, frame, cfg)
    result._inputs = _provenance(source, calendar)
    return result


def _provenance(source: Any, calendar: Any) -> dict[str, Any]:
    """What ``Result.save`` records to run a backtest again: the strategy class and a
    copy of its parameters (the instance may change later), the calendar. A strategy
    is known by the hook it compiles itself with (no import of the strategy module)."""
    if hasattr(source, "__aftershock_orders__") and hasattr(type(source), "params"):
        params = {k: copy.deepcopy(getattr(source, k)) for k in type(source).params}
        return {"strategy": type(source), "params": params, "calendar": calendar}
    return {"calendar": calendar}


def _resolve_orders(orders: Any, calendar: Any, bars: PreparedBars) -> Any:
    """The orders frame to run. Anything that compiles to orders (a Strategy) says so
    with ``__aftershock_orders__(calendar, bars)``: the engine front runs frames and
    knows nothing about strategies (it imports nothing above it)."""
    if isinstance(orders, type) and hasattr(orders, "__aftershock_orders__"):
        raise ConfigError(f"pass an instance, e.g. {orders.__name__}(), not the class", column="orders")
    compile_to_orders = getattr(orders, "__aftershock_orders__", None)
    if compile_to_orders is not None:
        return compile_to_orders(calendar, bars)
    return orders


def backtest_many(
    bars: Any,
    orders: Sequence[Any],
    configs: Sequence[Mapping[str, Any]] | None = None,
    *,
    threads: int | None = None,
    stats_only: bool = False,
    periods_per_year: float | None = None,
    conventions: Any = None,
) -> Any:
    """Run many backtests over the same bars in parallel in Rust, GIL released.

    ``orders[i]`` runs with ``configs[i]`` (default: all defaults). Results come back
    in input order and are bit-identical whatever ``threads`` is (default: all cores).
    An orders frame passed several times (the same object) is validated and encoded
    once.

    With ``stats_only=False`` (default) returns a list of :class:`Result`. With
    ``stats_only=True`` returns a Polars frame with one row per backtest: every
    :meth:`Result.stats` figure, computed by the engine inside the parallel loop
    without keeping any equity path; row ``i`` equals
    ``backtest(bars, orders[i], **configs[i]).stats(conventions=conventions)``
    (``"aftershock"``, the default, ``"backtesting.py"`` or a
    :class:`~aftershock.trading.stats.Conventions`), with ``periods_per_year``, when
    given, in place of the conventions' annualization (their return sampling kept).
    Use it for large sweeps: memory stays flat in the number of variants.
    """
    prepared = prepare_bars(bars)
    if configs is None:
        configs = [{}] * len(orders)
    if len(configs) != len(orders):
        raise ConfigError("configs and orders must have the same length", column="configs")
    n_threads = threads if threads is not None else (os.cpu_count() or 1)
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}", column="threads")
    encoded = _encode_distinct(orders, prepared.symbols)
    cfgs = [_config(c) for c in configs]
    if stats_only:
        from aftershock.trading.stats import (
            computes_as_aftershock, conventions_sampling, engine_conventions, resolve_conventions,
        )

        conv = resolve_conventions(conventions)
        if periods_per_year is None:
            sampling, ppy = conventions_sampling(conv, prepared.arrays["ts"])
        else:
            sampling, ppy = conv.returns, _periods_per_year(periods_per_year)
        rows = None if computes_as_aftershock(conv) else engine_conventions(conv)
        columns = _engine.simulate_many_stats(
            prepared.columns, prepared.offsets, [a for _, a in encoded], cfgs, n_threads, True, _DAY_US, ppy,
            None, rows,
        )
        return stats_frame(columns, prepared.symbols, ppy, sampling=sampling, conventions=conv.name)
    if conventions is not None or periods_per_year is not None:
        raise ConfigError("conventions= and periods_per_year= set the figures of stats_only=True rows; for full "
                          "results use result.stats(conventions=..., periods_per_year=...)",
                          column="conventions" if conventions is not None else "periods_per_year")
    raws = _engine.simulate_many(prepared.columns, prepared.offsets, [a for _, a in encoded], cfgs, n_threads, True)
    return [Result(raw, prepared, frame, cfg) for raw, (frame, _), cfg in zip(raws, encoded, cfgs)]


_DAY_US = 86_400_000_000


def _periods_per_year(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"periods_per_year must be a finite number > 0, got {value!r}", column="periods_per_year")
    return float(value)


def _encode_distinct(orders: Sequence[Any], symbols: Sequence[str]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """``encode_orders`` once per distinct orders object; repeats share the encoding
    (the same frame object, which the engine then imports once too)."""
    cache: dict[int, tuple[pl.DataFrame, pl.DataFrame]] = {}
    out = []
    for o in orders:
        key = id(o)
        if key not in cache:
            cache[key] = encode_orders(o, symbols)
        out.append(cache[key])
    return out


def stats_frame(table: Any, symbols: Sequence[str], periods_per_year: float, *, sampling: str = "calendar",
                conventions: str | None = None) -> pl.DataFrame:
    """The engine's figures (an Arrow table, one row per run) as a frame with the keys
    and dtypes of :meth:`Result.stats`: the benchmark's index named, the annualization
    settings the engine used added. With ``conventions`` (their name), every key of
    :data:`~aftershock.trading.results.SWEEP_STATS`; without, those of the streaming
    pass (:data:`~aftershock.trading.results.ENGINE_STATS`)."""
    frame = pl.DataFrame(table)
    frame = frame.with_columns(
        benchmark=frame.get_column("benchmark").replace_strict(
            dict(enumerate(symbols)), default=None, return_dtype=pl.String
        ),
        periods_per_year=pl.lit(float(periods_per_year)),
        return_sampling=pl.lit(sampling),
        risk_free=pl.lit(0.0),
    )
    if conventions is None:
        return frame.select(ENGINE_STATS)
    return frame.with_columns(conventions=pl.lit(conventions)).select(SWEEP_STATS)
