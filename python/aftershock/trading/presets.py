"""Peers' conventions as presets: run what a peer's backtest runs, in our engine.

:func:`backtesting_py` takes what a backtesting.py ``Strategy.next()`` decides on each
bar — ``self.buy()``, ``self.sell()``, ``self.position.close()`` — as three boolean
series, and the settings of ``backtesting.Backtest`` under their own names, and
reproduces backtesting.py 0.6's fills, trades and equity: whole-unit sizing by its rule,
exclusive orders, commission on both legs, market orders filled at the next bar's open,
the last open trade left open (or closed as ``finalize_trades=True`` closes it). The
result's :meth:`~aftershock.Result.stats` then reports backtesting.py's conventions.

The signals become one orders frame (vectorized, no Python per bar) that the ordinary
engine runs: docs/backtesting_py.md states the translation and where it stops.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import polars as pl

from aftershock.errors import ConfigError
from aftershock.trading.engine import backtest, prepare_bars
from aftershock.trading.results import Result

__all__ = ["backtesting_py", "FULL_EQUITY"]

#: backtesting.py's default ``size`` for ``buy()``/``sell()``: all the available margin
#: (its ``_FULL_EQUITY``, one machine epsilon below 1).
FULL_EQUITY = 1.0 - sys.float_info.epsilon

_UTC = pl.Datetime("us", "UTC")


def backtesting_py(
    data: Any,
    *,
    buy: Any = None,
    sell: Any = None,
    close: Any = None,
    size: float = FULL_EQUITY,
    cash: float = 10_000.0,
    commission: float | tuple[float, float] = 0.0,
    margin: float = 1.0,
    spread: float = 0.0,
    trade_on_close: bool = False,
    hedging: bool = False,
    exclusive_orders: bool = True,
    finalize_trades: bool = False,
    warmup: int = 0,
) -> Result:
    """Backtest with backtesting.py's conventions (``Backtest(data, Strategy, ...).run()``).

    Parameters
    ----------
    data:
        One instrument's bars: backtesting.py's pandas frame (``Open``, ``High``, ``Low``,
        ``Close``, a DatetimeIndex; naive times are read as UTC) or an aftershock bars frame
        (``ts``, ``open``... and at most one ``symbol``).
    buy, sell, close:
        Where ``next()`` calls ``self.buy()``, ``self.sell()``, ``self.position.close()``:
        boolean sequences as long as ``data`` (null/NaN = False) or the name of a column of
        ``data``. Decided on a bar's close, they fill at the next bar's open. ``buy`` and
        ``sell`` on one bar is ambiguous and refused; ``close`` with either is redundant.
    size:
        backtesting.py's ``size``: a fraction in (0, 1) of the available margin, sized in
        whole units by its rule (size type ``percent_available``), or a whole number of
        units >= 1. Default: :data:`FULL_EQUITY`, its default.
    cash, commission, margin:
        As in ``Backtest``: ``commission`` is a rate or ``(fixed, rate)`` charged on entry
        and on exit; ``margin`` sets the leverage ``1 / margin``.
    spread, trade_on_close, hedging, exclusive_orders:
        Only backtesting.py's defaults (and ``exclusive_orders=True``) are reproduced;
        anything else raises :class:`ConfigError` saying why (docs/backtesting_py.md).
    finalize_trades:
        False (backtesting.py's default): a trade still open at the end stays open — in
        the equity, not in the trade statistics. True: it is closed at the last bar's
        open, as backtesting.py's final broker pass does.
    warmup:
        Bars backtesting.py spends warming up indicators (the index of the first valid
        value of the slowest one, e.g. 19 for a 20-bar SMA): ``next()`` is first called on
        bar ``warmup + 1``, so signals before it are ignored, and its buy & hold return
        starts at bar ``warmup``.

    Returns
    -------
    Result
        The engine's result; ``stats()`` defaults to ``conventions="backtesting.py"``.

    Examples
    --------
    >>> import aftershock as ash, polars as pl, datetime as dt
    >>> ts = [dt.datetime(2025, 1, d, tzinfo=dt.timezone.utc) for d in range(1, 6)]
    >>> bars = pl.DataFrame({"ts": ts, "open": [10.0, 11, 12, 13, 14], "high": [10.0, 11, 12, 13, 14],
    ...                      "low": [10.0, 11, 12, 13, 14], "close": [10.0, 11, 12, 13, 14]})
    >>> r = ash.presets.backtesting_py(bars, buy=[False, True, False, False, False],
    ...                                close=[False, False, False, True, False], cash=100)
    >>> r.trades.select("qty", "entry_price", "exit_price", "pnl").rows()
    [(8.0, 12.0, 14.0, 16.0)]
    """
    _refuse_unsupported(spread, trade_on_close, hedging, exclusive_orders)
    bars, index_name = _bars(data)
    n = bars.height
    prepared = prepare_bars(bars)
    symbol = prepared.symbols[0]
    fixed, rate = _commission(commission)
    qty, size_type = _size(size)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ConfigError(f"warmup must be a whole number of bars >= 0, got {warmup!r}", column="warmup")
    if not (isinstance(margin, (int, float)) and 0 < margin <= 1):
        raise ConfigError(f"margin must be in (0, 1], got {margin!r}", column="margin")

    called = np.arange(n) >= int(warmup) + 1  # bars on which backtesting.py calls next()
    b = _signal(buy, "buy", data, n) & called
    s = _signal(sell, "sell", data, n) & called
    c = _signal(close, "close", data, n) & called
    both = b & s
    if both.any():
        row = int(np.flatnonzero(both)[0])
        raise ConfigError(f"buy and sell on the same bar ({index_name} row {row}): which call comes last decides", column="buy", row=row)

    # the position after each bar's decisions: +1 after a buy, -1 after a sell, 0 after a
    # close; exclusive orders close it before every new entry
    event = np.where(b, 1.0, np.where(s, -1.0, np.where(c, 0.0, np.nan)))
    after = pl.Series(event).fill_nan(None).forward_fill().fill_null(0.0).to_numpy()
    before = np.concatenate([[0.0], after[:-1]])
    entry = b | s
    closes = (entry | c) & (before != 0)

    # decisions on bar i fill at the open of bar i + 1: the first bar opening after ts[i]
    ts = prepared.arrays["ts"]
    decided = np.arange(n)
    if finalize_trades and n >= 2:
        # backtesting.py's last broker pass reruns the last bar: whatever is still open is
        # closed at its open, then the last bar's own orders fill there too
        closes[n - 1] = before[n - 1] != 0
        decided[n - 1] = n - 2
    seq = np.concatenate([np.flatnonzero(closes) * 2, np.flatnonzero(entry) * 2 + 1])
    bar_of = np.concatenate([decided[closes], decided[entry]])
    kind = np.concatenate([np.zeros(int(closes.sum()), dtype=np.int8), np.where(b[entry], 1, -1).astype(np.int8)])
    order = np.argsort(seq, kind="stable")
    bar_of, kind = bar_of[order], kind[order]
    orders = pl.DataFrame(
        {
            "submit_ts": pl.Series(ts[bar_of], dtype=pl.Int64).cast(_UTC),
            "symbol": [symbol] * len(kind),
            "side": np.where(kind > 0, "buy", "sell"),
            "qty": np.where(kind == 0, 0.0, qty),
            "size_type": np.where(kind == 0, "target_percent", size_type),
        }
    )
    result = backtest(
        prepared, orders, init_cash=float(cash), fees=rate, maker_fees=rate, fixed_fees=fixed,
        leverage=1.0 / float(margin),
        # whole units the cash cannot cover: backtesting.py cancels the order
        allow_partial=size_type != "units",
    )
    result.stats_defaults = {"conventions": "backtesting.py", "warmup": int(warmup)}
    return result


def _refuse_unsupported(spread: float, trade_on_close: bool, hedging: bool, exclusive_orders: bool) -> None:
    if spread:
        raise ConfigError(
            "spread is not reproduced: backtesting.py adds it to the entry price only, while aftershock's "
            "slippage applies to both legs (use commission, or ash.backtest(..., slippage=...))",
            column="spread",
        )
    if trade_on_close:
        raise ConfigError(
            "trade_on_close=True is not reproduced: backtesting.py then fills entries at the signal bar's close "
            "but exits (position.close(), exclusive orders) at the next open, so trades overlap",
            column="trade_on_close",
        )
    if hedging:
        raise ConfigError("hedging=True is not reproduced: aftershock holds one net position per symbol", column="hedging")
    if not exclusive_orders:
        raise ConfigError(
            "exclusive_orders=False is not reproduced: backtesting.py then sizes an order placed while a position "
            "is open against the margin left at the fill bar's close, a price printed after the fill; pass close= "
            "where next() closes the position (the result is the same as with exclusive orders)",
            column="exclusive_orders",
        )


def _bars(data: Any) -> tuple[pl.DataFrame, str]:
    """One instrument's bars as an aftershock frame, and how to name its rows in errors."""
    if type(data).__module__.startswith("pandas"):
        import pandas as pd

        missing = [c for c in ("Open", "High", "Low", "Close") if c not in data.columns]
        if missing:
            raise ConfigError(f"data lacks column {missing[0]!r} (backtesting.py's Open, High, Low, Close)", column=missing[0])
        if not isinstance(data.index, pd.DatetimeIndex):
            raise ConfigError("data needs a DatetimeIndex (bar open times)", column="index")
        index = data.index if data.index.tz is not None else data.index.tz_localize("UTC")
        ts = pl.Series("ts", index.tz_convert("UTC").as_unit("us").asi8, dtype=pl.Int64).cast(_UTC)
        frame = pl.DataFrame(
            {"ts": ts, "symbol": str(getattr(data, "name", None) or "ASSET"),
             **{c.lower(): data[c].to_numpy(dtype=np.float64) for c in ("Open", "High", "Low", "Close")}}
        )
        return frame, "data"
    if not isinstance(data, pl.DataFrame):
        raise ConfigError("data must be backtesting.py's pandas OHLC frame or an aftershock bars frame", column="data")
    if "symbol" not in data.columns:
        data = data.with_columns(symbol=pl.lit("ASSET"))
    elif data.get_column("symbol").n_unique() > 1:
        raise ConfigError("backtesting.py trades one instrument: data holds several symbols", column="symbol")
    return data, "data"


def _signal(values: Any, name: str, data: Any, n: int) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    if isinstance(values, str):
        if values not in data.columns:
            raise ConfigError(f"{name}={values!r} is not a column of data", column=name)
        values = data[values]
    if isinstance(values, pl.Series):
        arr = values.cast(pl.Boolean).fill_null(False).to_numpy()
    else:
        raw = np.asarray(values)
        if raw.dtype == object:
            raw = np.array([bool(v) if v is not None and v == v else False for v in raw])
        elif raw.dtype.kind == "f":
            raw = np.nan_to_num(raw, nan=0.0)
        arr = raw.astype(bool)
    if arr.ndim != 1 or len(arr) != n:
        raise ConfigError(f"{name} must hold one value per bar ({n}), got shape {arr.shape}", column=name)
    return arr


def _commission(commission: Any) -> tuple[float, float]:
    if callable(commission):
        raise ConfigError("a commission function is not reproduced: pass a rate or (fixed, rate)", column="commission")
    if isinstance(commission, tuple):
        if len(commission) != 2:
            raise ConfigError(f"commission must be a rate or (fixed, rate), got {commission!r}", column="commission")
        fixed, rate = commission
    else:
        fixed, rate = 0.0, commission
    for value in (fixed, rate):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"commission must be a rate or (fixed, rate) of numbers, got {commission!r}", column="commission")
    if fixed < 0 or not -0.1 <= rate < 0.1:
        raise ConfigError(f"commission needs fixed >= 0 and -0.1 <= rate < 0.1 (backtesting.py's bounds), got {commission!r}", column="commission")
    return float(fixed), float(rate)


def _size(size: Any) -> tuple[float, str]:
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not np.isfinite(size) or size <= 0:
        raise ConfigError(f"size must be a fraction in (0, 1) or whole units >= 1, got {size!r}", column="size")
    if size < 1:
        return float(size), "percent_available"
    if size != round(size):
        raise ConfigError(f"size >= 1 counts whole units, got {size!r}", column="size")
    return float(size), "units"
