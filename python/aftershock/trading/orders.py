"""Builders that turn a frame of events into an orders frame, vectorized.

Every builder takes the events a strategy was shown, one row per event, and returns
one order per event with ``submit_ts = decision_ts + delay`` (the instant the hook
was decided, see :mod:`aftershock.trading.strategy`; ``release_ts + delay`` for a frame without
``decision_ts``) and ``tag = event_id``, so that fills and trades can be attributed to
the event that caused them.

>>> import datetime as dt, polars as pl
>>> ev = pl.DataFrame({"event_id": ["CPI-1"], "surprise_z": [1.4],
...     "release_ts": [dt.datetime(2025, 2, 12, 13, 30, tzinfo=dt.timezone.utc)]})
>>> o = market(ev, symbol="BTC", side=-pl.col("surprise_z").sign(), size=0.5,
...            size_type="percent_equity", exit_after="1h", stop_loss=0.02)
>>> o.select("submit_ts", "side", "qty", "exit_after", "tag").row(0)[1:]
('sell', 0.5, '1h', 'CPI-1')
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import polars as pl

from aftershock._time import duration_us
from aftershock.errors import OrdersError

__all__ = ["market", "limit", "stop", "market_on_close"]


_NULL_F64 = pl.lit(None, pl.Float64)
_NULL_TS = pl.lit(None, pl.Datetime("us", "UTC"))
_SIDE_SET = pl.col("side").is_not_null()
#: Column order and dtypes of every builder's output (an empty frame for no events).
_SCHEMA = {
    "submit_ts": pl.Datetime("us", "UTC"), "symbol": pl.String, "side": pl.String, "qty": pl.Float64,
    "size_type": pl.String, "order_type": pl.String, "limit_price": pl.Float64, "stop_price": pl.Float64,
    "tif": pl.String, "expire_ts": pl.Datetime("us", "UTC"), "reduce_only": pl.Boolean, "stop_loss": pl.Float64,
    "take_profit": pl.Float64, "trailing_stop": pl.Float64, "exit_after": pl.String, "tag": pl.String,
}


@functools.lru_cache(maxsize=1024, typed=True)  # typed: False, 0 and 0.0 are different literals
def _const(value: Any, dtype: Any = None) -> pl.Expr:
    """A literal, built once: strategies call the builders once per release with the
    same settings, and building expressions costs more than evaluating them."""
    return pl.lit(value, dtype) if dtype is not None else pl.lit(value)


@functools.lru_cache(maxsize=64)
def _const_col(name: str) -> pl.Expr:
    return pl.col(name)


@functools.lru_cache(maxsize=256)
def _const_duration(us: int) -> pl.Expr:
    return pl.duration(microseconds=us)


_EMPTY = pl.DataFrame(schema=_SCHEMA)


def _expr(value: Any, name: str) -> pl.Expr:
    if isinstance(value, pl.Expr):
        return value
    if isinstance(value, pl.Series):
        return pl.lit(value)
    try:
        return _const(value)
    except TypeError:  # unhashable
        return pl.lit(value)


def _side(value: Any) -> pl.Expr:
    if isinstance(value, str):
        if value not in ("buy", "sell"):
            raise OrdersError(f"side must be 'buy', 'sell' or a signed number/expression, got {value!r}", column="side")
        return _const(value)
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        raise OrdersError(f"side must be 'buy', 'sell' or a signed number, got {value!r}", argument="side")
    e = _expr(value, "side")
    # numeric sides: > 0 buys, < 0 sells, 0 (no signal) drops the row below; a NaN
    # signal becomes side "NaN", which the engine front refuses naming the row
    return pl.when(e.cast(pl.Float64, strict=False).is_nan()).then(_const("NaN")).when(e > 0).then(_const("buy")).when(e < 0).then(_const("sell")).otherwise(_const(None, pl.String))


def _build(
    events: pl.DataFrame,
    *,
    order_type: str,
    symbol: Any,
    side: Any,
    size: Any,
    size_type: str,
    delay: Any,
    limit_price: Any = None,
    stop_price: Any = None,
    tif: str = "gtc",
    expire_after: Any = None,
    stop_loss: Any = None,
    take_profit: Any = None,
    trailing_stop: Any = None,
    exit_after: Any = None,
    reduce_only: bool = False,
    tag: Any = None,
) -> pl.DataFrame:
    if not isinstance(events, pl.DataFrame):
        raise OrdersError(f"events must be a Polars DataFrame, got {type(events).__name__}")
    if events.height == 0:  # the common case per release: no signal, no query
        if isinstance(side, str):
            _side(side)  # still refuse a bad side
        return _EMPTY.clone()
    side_expr = _side(side)
    anchor = "decision_ts" if "decision_ts" in events.columns else "release_ts"
    for col in (anchor, "event_id"):
        if col not in events.columns and not (col == "event_id" and tag is not None):
            raise OrdersError(f"events lack {col!r}", column=col)
    delay_us = duration_us(delay or 0, name="delay")
    submit = _const_col(anchor) + _const_duration(delay_us)
    expire = (
        submit + _const_duration(duration_us(expire_after, name="expire_after"))
        if expire_after is not None
        else _NULL_TS
    )
    if isinstance(exit_after, (str, type(None))):
        exit_expr = _const(exit_after, pl.String)
    else:
        exit_expr = pl.lit(duration_us(exit_after, name="exit_after"), pl.Int64).cast(pl.Duration("us"))
    f64 = lambda v: _expr(v, "").cast(pl.Float64) if v is not None else _NULL_F64  # noqa: E731
    out = events.lazy().select(
        submit_ts=submit,
        symbol=_expr(symbol, "symbol").cast(pl.String),
        side=side_expr,
        qty=f64(size),
        size_type=_const(size_type),
        order_type=_const(order_type),
        limit_price=f64(limit_price),
        stop_price=f64(stop_price),
        tif=_const("gtd" if expire_after is not None else tif),
        expire_ts=expire,
        reduce_only=_const(reduce_only),
        stop_loss=f64(stop_loss),
        take_profit=f64(take_profit),
        trailing_stop=f64(trailing_stop),
        exit_after=exit_expr,
        tag=(_expr(tag, "tag") if tag is not None else pl.col("event_id")).cast(pl.String),
    )
    if not isinstance(side, str):
        out = out.filter(_SIDE_SET)  # a zero or null signal places no order
    return out.collect()


def market(events: pl.DataFrame, *, symbol: Any, side: Any, size: Any, size_type: str = "units", delay: Any = None, **exits: Any) -> pl.DataFrame:
    """A market order per event at ``decision_ts + delay``; fills at the open of the
    first bar that opens strictly after that plus the backtest's latency. ``side`` is ``"buy"``,
    ``"sell"`` or a signed number/expression (0 or null places no order). ``exits``:
    ``stop_loss``, ``take_profit``, ``trailing_stop``, ``exit_after``, ``reduce_only``, ``tag``."""
    return _build(events, order_type="market", symbol=symbol, side=side, size=size, size_type=size_type, delay=delay, **exits)


def market_on_close(events: pl.DataFrame, *, symbol: Any, side: Any, size: Any, size_type: str = "units", delay: Any = None, **exits: Any) -> pl.DataFrame:
    """A market-on-close order per event: fills at the close of its first live bar."""
    return _build(events, order_type="market_on_close", symbol=symbol, side=side, size=size, size_type=size_type, delay=delay, **exits)


def limit(events: pl.DataFrame, *, symbol: Any, side: Any, size: Any, price: Any, size_type: str = "units", delay: Any = None, tif: str = "gtc", expire_after: Any = None, **exits: Any) -> pl.DataFrame:
    """A limit order per event at ``price`` (a number or an expression over the events)."""
    return _build(events, order_type="limit", symbol=symbol, side=side, size=size, size_type=size_type, delay=delay, limit_price=price, tif=tif, expire_after=expire_after, **exits)


def stop(events: pl.DataFrame, *, symbol: Any, side: Any, size: Any, price: Any, size_type: str = "units", delay: Any = None, tif: str = "gtc", expire_after: Any = None, **exits: Any) -> pl.DataFrame:
    """A stop order per event, triggered at ``price``."""
    return _build(events, order_type="stop", symbol=symbol, side=side, size=size, size_type=size_type, delay=delay, stop_price=price, tif=tif, expire_after=expire_after, **exits)
