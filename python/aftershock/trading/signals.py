"""Signal-based backtests: boolean entry/exit masks simulated by the Rust engine in one pass.

``from_signals`` is vectorbt 1.2's ``Portfolio.from_signals`` on the aftershock
engine: the same signal resolution (conflicts, opposite entries, accumulation), the
same cash model (longs capped by cash, ``size=inf`` meaning all cash), the same
stop rules and the same defaults. docs/vectorbt.md lists the rules and every
deliberate difference.

Two price conventions:

* ``price="next_open"`` (default, look-ahead free): a signal on bar ``i`` fills at
  bar ``i+1``'s open; the stops it arms are checked against the rest of bar ``i+1``.
  A signal on the last bar has no next bar and is dropped.
* ``price="close"`` (vectorbt's convention): a signal fills at its own bar's close.
  With vectorbt's arguments, this reproduces vectorbt fill for fill.

Any numeric setting may be a list: the product of the lists is a sweep, run in
parallel in Rust, and the call returns one row of ``Result.stats()`` figures per
variant (``variant=k`` re-runs variant ``k`` and returns its full ``Result``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import polars as pl

from aftershock import _engine
from aftershock.trading.engine import PreparedBars, prepare_bars, stats_frame
from aftershock.errors import ConfigError, InputError
from aftershock.trading._progress import with_progress
from aftershock.trading.results import Result

__all__ = ["from_signals", "SWEEPABLE"]

_DIRECTIONS = ("longonly", "shortonly", "both")
_PRICES = ("next_open", "close")
_SIZE_TYPES = {"amount": "amount", "units": "amount", "value": "value", "notional": "value",
               "percent": "percent", "percent_equity": "percent_equity"}
_ACCUMULATE = {False: "disabled", True: "both", "disabled": "disabled", "both": "both",
               "addonly": "addonly", "removeonly": "removeonly"}
_CHOICES: dict[str, tuple[str, ...]] = {
    "upon_long_conflict": ("ignore", "entry", "exit", "adjacent", "opposite"),
    "upon_short_conflict": ("ignore", "entry", "exit", "adjacent", "opposite"),
    "upon_dir_conflict": ("ignore", "long", "short", "adjacent", "opposite"),
    "upon_opposite_entry": ("ignore", "close", "closereduce", "reverse", "reversereduce"),
    "stop_entry_price": ("valprice", "price", "fillprice", "close"),
    "stop_exit_price": ("stoplimit", "stopmarket", "price", "close"),
    "upon_stop_exit": ("close", "closereduce", "reverse", "reversereduce"),
    "upon_stop_update": ("keep", "override", "overridenan"),
}
#: Settings that may be given as a list (a sweep over their product).
SWEEPABLE = ("init_cash", "size", "fees", "fixed_fees", "slippage", "min_size", "max_size",
             "size_granularity", "sl_stop", "tsl_stop", "tp_stop")
#: Settings that may be given bar by bar (a NumPy array, a Series or a column name of
#: the bars, one value per bar), as vectorbt broadcasts a column along the rows.
PER_BAR = SWEEPABLE[1:]
# per-bar values that may be NaN: no order on that bar (size), no stop (stops), any size,
# an unknown valuation price
_NAN_OK = ("size", "size_granularity", "sl_stop", "tsl_stop", "tp_stop", "val_price")
# the domain of each per-bar setting, as its error message states it (the scalar's, but NaN where _NAN_OK)
_DOMAINS = {
    "price": "finite and > 0, or NaN (no order on that bar)", "size": ">= 0, or NaN (no order on that bar)",
    "fees": "finite and > -1", "fixed_fees": "finite", "slippage": "finite and >= 0", "min_size": "finite and >= 0",
    "max_size": "> 0", "size_granularity": "finite and > 0, or NaN (any size)",
    "val_price": "> 0, inf (the order price), -inf (the previous close) or NaN (unknown)",
    "allow_partial": "a bool",
}
# signal backtests have no orders frame: Result.orders is this empty one
_NO_ORDERS = pl.DataFrame(schema={"submit_ts": pl.Datetime("us", "UTC"), "symbol": pl.String, "side": pl.String,
                                  "qty": pl.Float64, "tag": pl.String})


def _mask(values: Any, frame: pl.DataFrame, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=np.uint8)
    if isinstance(values, str):
        if values not in frame.columns:
            raise InputError(f"{name}: no column {values!r} in bars", column=name)
        values = frame.get_column(values)
    if isinstance(values, pl.Series):
        if values.null_count():
            row = int(np.flatnonzero(values.is_null().to_numpy())[0])
            raise InputError(f"{name} holds a null", column=name, row=row)
        if values.dtype != pl.Boolean:
            raise InputError(f"{name} must be boolean, got {values.dtype}", column=name)
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
        if arr.dtype != np.bool_:
            raise InputError(f"{name} must be boolean, got {arr.dtype}", column=name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0] if arr.ndim else 0} values but the symbol has {n} bars", column=name)
    # a copy: the equity rows are simulated again later, from these very masks
    return np.array(arr, dtype=np.bool_, order="C").view(np.uint8)


def _number(name: str, value: Any, *, allow_none: bool = False) -> float:
    if value is None and allow_none:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}", column=name)
    v = float(value)
    if math.isnan(v) and not allow_none:
        raise ConfigError(f"{name} must not be NaN", column=name)
    return v


def _check(name: str, v: float) -> None:
    """Domain checks, with vectorbt's limits (NaN stops are "none", infinite ones never fire)."""
    if name == "init_cash" and not (math.isfinite(v) and v >= 0):
        raise ConfigError(f"init_cash must be finite and >= 0, got {v}", column=name)
    if name == "size" and not v >= 0:
        raise ConfigError(f"size must be >= 0 (inf: all cash), got {v}", column=name)
    if name in ("fees", "fixed_fees") and not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {v}", column=name)
    if name == "fees" and v <= -1:  # a 100 % rebate or more makes buying free: an infinite position
        raise ConfigError(f"fees must be > -1, got {v}", column=name)
    if name in ("slippage", "min_size") and not (math.isfinite(v) and v >= 0):
        raise ConfigError(f"{name} must be finite and >= 0, got {v}", column=name)
    if name == "max_size" and not v > 0:
        raise ConfigError(f"max_size must be > 0, got {v}", column=name)
    if name == "size_granularity" and not (math.isnan(v) or (math.isfinite(v) and v > 0)):
        raise ConfigError(f"size_granularity must be finite and > 0, got {v}", column=name)
    if name in ("sl_stop", "tsl_stop", "tp_stop") and v < 0:
        raise ConfigError(f"{name} must be >= 0 (inf: never fires), got {v}", column=name)


def _is_per_bar(value: Any) -> bool:
    """Arrays, Series and column names are per-bar values (a dict or a wide frame: per
    symbol); lists and tuples are sweeps."""
    if isinstance(value, (np.ndarray, pl.Series, str, dict, pl.DataFrame)):
        return True
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy")


def _per_bar(name: str, value: Any, frame: pl.DataFrame, n: int) -> np.ndarray:
    """A per-bar setting as a float array of one value per bar, checked like the scalar."""
    if isinstance(value, str):
        if value not in frame.columns:
            raise ConfigError(f"{name}: no column {value!r} in bars", column=name)
        value = frame.get_column(value)
    if isinstance(value, pl.Series):
        if not (value.dtype.is_numeric() or (name == "allow_partial" and value.dtype == pl.Boolean)):
            raise ConfigError(f"{name} must be numeric, got {value.dtype}", column=name)
        value = value.cast(pl.Float64).fill_null(math.nan).to_numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must hold numbers", column=name) from None
    if arr.ndim != 1 or arr.shape[0] != n:
        got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
        raise ConfigError(f"{name}: a per-bar array has {got} values but the symbol has {n} bars "
                          "(give a list for a sweep)", column=name)
    arr = np.ascontiguousarray(arr)
    with np.errstate(invalid="ignore"):
        nan = np.isnan(arr)
        if name == "price":
            bad = ~nan & ~(np.isfinite(arr) & (arr > 0))
        elif name == "size":
            bad = ~nan & ~(arr >= 0)
        else:
            bad = nan if name not in _NAN_OK else np.zeros(n, dtype=bool)
            ok = {
                "fees": np.isfinite(arr) & (arr > -1), "fixed_fees": np.isfinite(arr),
                "val_price": nan | np.isinf(arr) | (arr > 0), "allow_partial": (arr == 0) | (arr == 1),
                "slippage": np.isfinite(arr) & (arr >= 0), "min_size": np.isfinite(arr) & (arr >= 0),
                "max_size": arr > 0, "size_granularity": nan | (np.isfinite(arr) & (arr > 0)),
            }.get(name, nan | (arr >= 0))
            bad = bad | ~ok
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        domain = _DOMAINS.get(name, ">= 0 (inf: never fires), or NaN (none)")
        raise ConfigError(f"{name}: {arr[row]} at row {row} is out of range (must be {domain})", column=name, row=row)
    return arr


def _choice(name: str, value: Any, options: Sequence[str]) -> str:
    if value not in options:
        raise ConfigError(f"{name} must be one of {tuple(options)}, got {value!r}", column=name)
    return str(value)


def _one_symbol(bars: Any, symbol: str | None) -> tuple[PreparedBars, str]:
    prepared = prepare_bars(bars)
    symbols = prepared.symbols
    if symbol is None:
        if len(symbols) != 1:
            raise ConfigError(f"bars hold {len(symbols)} symbols: pass symbol=", column="symbol")
        return prepared, symbols[0]
    if symbol not in symbols:
        raise ConfigError(f"symbol {symbol!r} not in bars", column="symbol")
    if len(symbols) == 1:
        return prepared, symbol
    k = prepared.symbols.index(symbol)
    lo, hi = (int(x) for x in prepared.offsets[k:k + 2])
    one = PreparedBars(frame=prepared.frame.slice(lo, hi - lo), symbols=(symbol,),
                       columns=prepared.columns.slice(lo, hi - lo),
                       offsets=pl.Series("offsets", [0, hi - lo], dtype=pl.Int64))
    return one, symbol


def from_signals(
    bars: Any,
    entries: Any = None,
    exits: Any = None,
    short_entries: Any = None,
    short_exits: Any = None,
    *,
    symbol: str | None = None,
    init_cash: Any = 100_000.0,
    size: Any = math.inf,
    size_type: str = "amount",
    fees: Any = 0.0,
    fixed_fees: Any = 0.0,
    slippage: Any = 0.0,
    min_size: Any = 1e-8,
    max_size: Any = math.inf,
    size_granularity: Any = None,
    sl_stop: Any = None,
    sl_trail: bool = False,
    tsl_stop: Any = None,
    tp_stop: Any = None,
    direction: str = "longonly",
    accumulate: bool | str = False,
    price: str = "next_open",
    stop_entry_price: str | None = None,
    stop_exit_price: str | None = None,
    upon_long_conflict: str = "ignore",
    upon_short_conflict: str = "ignore",
    upon_dir_conflict: str = "ignore",
    upon_opposite_entry: str = "reversereduce",
    upon_stop_exit: str = "close",
    upon_stop_update: str = "override",
    val_price: Any = None,
    ffill_val_price: bool = True,
    allow_partial: Any = True,
    raise_reject: bool = False,
    cash_sharing: bool = False,
    threads: int | None = None,
    variant: int | None = None,
    checkpoint: Any = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    conventions: Any = None,
    daily_returns: bool = False,
) -> Any:
    """Backtest boolean entry/exit signals of one symbol, simulated in Rust in one pass.

    Parameters
    ----------
    bars:
        Bars frame (see docs/engine.md) or a :func:`aftershock.trading.engine.prepare_bars`
        result (validated once, reusable). With several symbols, ``symbol`` picks one.
    entries, exits, short_entries, short_exits:
        Boolean masks aligned with the symbol's bars: NumPy arrays, Polars Series,
        lists, or names of boolean columns of ``bars``. Several symbols in one
        backtest (vectorbt's ``group_by=True``): a dict symbol -> mask or a wide
        frame (a column per symbol); the symbols must share their timestamps and
        run, bar by bar, in that order. Without short masks,
        ``direction`` says what ``entries``/``exits`` mean (``"both"``: entries go
        long, exits go short); with short masks, ``entries``/``exits`` are the long
        ones and ``direction`` is ignored.
    size, size_type:
        ``size=inf`` (default) is all available cash, net of fees. ``size_type`` is
        vectorbt's ``"amount"`` (alias ``"units"``), ``"value"`` (alias
        ``"notional"``: converted at the order price before slippage),
        ``"percent"`` (of cash for buys, of what can be sold for sales; no
        reversals), or ``"percent_equity"`` (a fraction of equity, traded as a value).
    fees, fixed_fees, slippage:
        Fee fraction and fixed fee per fill (negative: a rebate), slippage fraction.
        Any numeric setting but ``init_cash`` may be given per bar: a NumPy array,
        a Series or a column name of ``bars`` (with several symbols, also a dict
        symbol -> array); a list is a sweep.
    min_size, max_size, size_granularity:
        vectorbt's order limits: smaller fills are rejected, larger ones cut, sizes
        rounded down to the granularity.
    sl_stop, sl_trail, tsl_stop, tp_stop:
        Stop-loss and take-profit fractions (``None``: none; ``inf``: never fires).
        ``sl_trail=True`` trails the stop-loss; ``tsl_stop=x`` is ``sl_stop=x,
        sl_trail=True``.
    direction:
        ``"longonly"``, ``"shortonly"`` or ``"both"``.
    accumulate:
        ``True``/``"both"``: entries while in a position add ``size``, exits remove
        it; ``"addonly"``, ``"removeonly"``; ``False``: off.
    price:
        ``"next_open"`` (default), ``"close"`` (vectorbt's ``np.inf``), ``"open"``
        (vectorbt's ``-np.inf``: a signal fills at its own bar's open), or a price
        per bar (an array, a Series or a column name; NaN: no order on that bar),
        which follows the ``"close"`` rules.
    val_price, ffill_val_price:
        vectorbt's valuation price, which converts ``size_type="value"`` sizes (and
        the value added by a reversal) into units, sizes ``"percent_equity"`` and
        is ``stop_entry_price="valprice"``: ``None``/``np.inf`` (default) the bar's
        order price, ``-np.inf`` the previous bar's close, a price, or one per bar
        (an array, a Series or a column name, which may hold ``inf``, ``-inf`` and
        NaN: unknown). With ``ffill_val_price`` (default) an unknown price keeps the
        last known one; without it, value orders are ignored until one is known.
        With ``price="next_open"``: ``np.inf`` (the open of the fill) or ``-np.inf``
        (the signal bar's close).
    allow_partial:
        ``False``: an order that cannot be filled in full (cut by ``max_size``, the
        cash or the position, or rounded down to ``size_granularity``) is rejected
        and nothing happens, as vectorbt's ``allow_partial=False``; ``size=inf``
        (all cash) is never partial. A bool, or one per bar (a boolean array).
    raise_reject:
        ``True``: an order vectorbt would reject (no cash to buy with, no free cash to
        sell short, fees the cash or proceeds do not cover, a size beyond
        ``min_size``/``max_size``, a partial fill with ``allow_partial=False``)
        raises a ``ConfigError`` naming ``raise_reject`` and the row, as vectorbt's
        ``raise_reject=True`` raises; by default it places nothing.
    stop_entry_price, stop_exit_price:
        vectorbt's names. Defaults: ``"close"`` and ``"stoplimit"`` with
        ``price="close"`` (vectorbt's), ``"fillprice"`` and ``"stopmarket"``
        (stop levels from the fill, slippage on every stop exit) with ``"next_open"``.
    upon_long_conflict, upon_short_conflict, upon_dir_conflict, upon_opposite_entry, upon_stop_exit, upon_stop_update:
        vectorbt's signal-resolution modes, with vectorbt's defaults.
    cash_sharing:
        With several symbols: one cash for all (vectorbt's ``cash_sharing=True``);
        otherwise each symbol has ``init_cash`` of its own and the result's equity
        is their sum.
    threads:
        Threads for a sweep (default: all cores).
    variant:
        With list settings, run only variant ``variant`` (a row of the sweep
        frame) and return its full ``Result``.
    checkpoint, chunk_size:
        With list settings: a directory where each chunk of ``chunk_size`` variants
        (default 256) is written when done; a rerun with the same directory resumes
        without recomputing them (see :meth:`aftershock.Sweep.run`).
    progress:
        With list settings, a bar on stderr that advances as variants finish
        (``None``, the default: only when stderr is a terminal).
    conventions:
        With list settings, the conventions of each row's figures (``"aftershock"``,
        the default, ``"backtesting.py"`` or a
        :class:`~aftershock.trading.stats.Conventions`): every key of
        :data:`~aftershock.trading.results.SWEEP_STATS`, row ``i`` equal to
        ``from_signals(..., variant=i).stats(conventions=conventions)``. aftershock's come
        from the simulator's streaming pass, which skips the bars inside a position by
        blocks; any other walks each variant's equity bar by bar inside a position, which
        is slower (docs/sweeps.md).
    daily_returns:
        With list settings, also every variant's close-of-day returns from the same
        engine pass, as :meth:`aftershock.Sweep.run_daily` gives them: the call returns
        ``(frame, returns)``, ``returns`` a days x variants NumPy matrix, one row per
        UTC calendar day from the first bar's day to the last bar's (the returns each
        row's Sharpe ratio is computed from), for
        :func:`aftershock.research.overfitting`. aftershock's conventions only; no
        ``checkpoint``.

    Returns
    -------
    A :class:`aftershock.trading.results.Result`; with list settings, a Polars frame with one
    row per variant: ``variant``, the swept settings, then every figure of
    :meth:`Result.stats` (with ``daily_returns``, the frame and the returns matrix).

    Examples
    --------
    >>> import datetime as dt, polars as pl, aftershock as ash
    >>> ts = [dt.datetime(2025, 3, 7, 13, m, tzinfo=dt.timezone.utc) for m in range(30, 35)]
    >>> bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": [100.0, 101, 102, 103, 104],
    ...                      "high": [101.0, 102, 103, 104, 105], "low": [99.0, 100, 101, 102, 103],
    ...                      "close": [101.0, 102, 103, 104, 105]})
    >>> from aftershock.trading.signals import from_signals
    >>> r = from_signals(bars, [True, False, False, False, False], [False, False, True, False, False],
    ...                  size=1.0, price="close")
    >>> r.fills.select("side", "price").rows()
    [('buy', 101.0), ('sell', 103.0)]
    >>> grid = from_signals(bars, [True, False, False, False, False], None, size=1.0, price="close",
    ...                     tp_stop=[0.01, 0.5])
    >>> grid.select("variant", "tp_stop", "trades").rows()
    [(0, 0.01, 1), (1, 0.5, 0)]
    """
    direction = _choice("direction", direction, _DIRECTIONS)
    price_series: Any = None
    if isinstance(price, (float, int, np.floating)) and not isinstance(price, bool) and math.isinf(price):
        price = "close" if price > 0 else "open"  # vectorbt's np.inf and -np.inf
    if isinstance(price, str) and price == "open":
        price_series, price = "open", "close"
    elif _is_per_bar(price) and not (isinstance(price, str) and price in _PRICES):
        price_series, price = price, "close"
    price = _choice("price", price, _PRICES)
    if size_type not in _SIZE_TYPES:
        raise ConfigError(f"size_type must be one of {sorted(_SIZE_TYPES)}, got {size_type!r}", column="size_type")
    if accumulate not in _ACCUMULATE:
        raise ConfigError(f"accumulate must be a bool or one of addonly/removeonly/both, got {accumulate!r}",
                          column="accumulate")
    close_mode = price == "close"
    modes = {
        "upon_long_conflict": upon_long_conflict,
        "upon_short_conflict": upon_short_conflict,
        "upon_dir_conflict": upon_dir_conflict,
        "upon_opposite_entry": upon_opposite_entry,
        "stop_entry_price": stop_entry_price or ("close" if close_mode else "fillprice"),
        "stop_exit_price": stop_exit_price or ("stoplimit" if close_mode else "stopmarket"),
        "upon_stop_exit": upon_stop_exit,
        "upon_stop_update": upon_stop_update,
    }
    # vectorbt reads its mode names ignoring case and underscores ("val_price", "ReverseReduce")
    config: dict[str, Any] = {k: _choice(k, v.lower().replace("_", "") if isinstance(v, str) else v, _CHOICES[k])
                              for k, v in modes.items()}
    if not close_mode and config["stop_entry_price"] == "close":
        raise ConfigError("stop_entry_price='close' needs price='close' (a next-open entry's stops cannot "
                          "start from a later close)", column="stop_entry_price")
    if not close_mode and config["stop_exit_price"] == "price":
        raise ConfigError("stop_exit_price='price' needs price='close'", column="stop_exit_price")
    if not isinstance(sl_trail, (bool, np.bool_)):
        raise ConfigError(f"sl_trail must be a bool, got {sl_trail!r}", column="sl_trail")
    if tsl_stop is not None and sl_stop is not None:
        raise ConfigError("give sl_stop (with sl_trail) or tsl_stop, not both", column="tsl_stop")
    config.update(size_type=_SIZE_TYPES[size_type], accumulate=_ACCUMULATE[accumulate], price=price,
                  sl_trail=bool(sl_trail) or tsl_stop is not None)

    if not isinstance(ffill_val_price, (bool, np.bool_)):
        raise ConfigError(f"ffill_val_price must be a bool, got {ffill_val_price!r}", column="ffill_val_price")
    config["ffill_val_price"] = bool(ffill_val_price)
    if not isinstance(raise_reject, (bool, np.bool_)):
        raise ConfigError(f"raise_reject must be a bool, got {raise_reject!r}", column="raise_reject")
    config["raise_reject"] = bool(raise_reject)
    per_bar_given: dict[str, Any] = {}
    for name, value, default in (("val_price", val_price, math.inf), ("allow_partial", allow_partial, True)):
        if _is_per_bar(value):
            per_bar_given[name] = value
        elif name == "allow_partial":
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"allow_partial must be a bool or a boolean array, got {value!r}",
                                  column="allow_partial")
            config[name] = bool(value)
        elif value is None:
            config[name] = default
        else:
            if isinstance(value, (list, tuple)):
                raise ConfigError("val_price: give one price or an array (one per bar), not a list",
                                  column="val_price")
            v = _number("val_price", value, allow_none=True)
            if not (math.isnan(v) or math.isinf(v) or v > 0):
                raise ConfigError(f"val_price must be {_DOMAINS['val_price']}, got {v}", column="val_price")
            config[name] = v
    if price == "next_open" and (config.get("val_price", math.inf) not in (math.inf, -math.inf)
                                 or "val_price" in per_bar_given):
        raise ConfigError("with price='next_open', val_price is np.inf (the fill's open) or -np.inf (the signal "
                          "bar's close); a price or a series of them goes with price='close'", column="val_price")

    given = dict(init_cash=init_cash, size=size, fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                 min_size=min_size, max_size=max_size, size_granularity=size_granularity, sl_stop=sl_stop,
                 tsl_stop=tsl_stop, tp_stop=tp_stop)
    optional = ("size_granularity", "sl_stop", "tsl_stop", "tp_stop")
    swept: dict[str, np.ndarray] = {}
    for name, value in given.items():
        if name in PER_BAR and _is_per_bar(value):
            per_bar_given[name] = value
            continue
        if isinstance(value, (list, tuple)):
            values = [_number(name, v, allow_none=name in optional) for v in list(value)]
            if not values:
                raise ConfigError(f"{name}: an empty list of values", column=name)
            for v in values:
                _check(name, v)
            swept[name] = np.array(values, dtype=np.float64)
        else:
            v = _number(name, value, allow_none=name in optional)
            _check(name, v)
            config[name] = v
    if "tsl_stop" in per_bar_given and ("sl_stop" in per_bar_given or "sl_stop" in swept):
        raise ConfigError("give sl_stop (with sl_trail) or tsl_stop, not both", column="tsl_stop")
    if "tsl_stop" in per_bar_given:
        config.pop("sl_stop", None)
    _fold_trailing(config)
    for name in ("size", "init_cash"):
        if name in per_bar_given:
            continue
        values = swept.get(name, np.array([config.get(name, 0.0)]))
        if name == "size" and np.isinf(values).any() and config["size_type"] not in ("amount", "value"):
            raise ConfigError("size=inf (all cash) only goes with size_type='amount' or 'value'", column="size")

    if _is_wide(entries):
        if swept or variant is not None:
            raise ConfigError("a sweep takes one symbol: give scalars or per-bar arrays with several symbols",
                              column=next(iter(swept), "variant"))
        if symbol is not None:
            raise ConfigError("symbol= picks one symbol: with several, the masks' keys name them", column="symbol")
        return _run_group(bars, (entries, exits, short_entries, short_exits), direction, per_bar_given,
                          price_series, config, bool(cash_sharing))
    if cash_sharing:
        raise ConfigError("cash_sharing needs several symbols: give the masks as a dict or a wide frame",
                          column="cash_sharing")
    prepared, symbol = _one_symbol(bars, symbol)
    arrays = prepared.columns
    views = {c: prepared.arrays[c] for c in ("ts", "open", "high", "low", "close")}
    signals = pl.DataFrame(_column_signals(prepared.frame, views, (entries, exits, short_entries, short_exits),
                                           direction, per_bar_given, price_series, config))

    if conventions is not None and (not swept or variant is not None):
        raise ConfigError("conventions= sets the figures of a sweep's rows; for one backtest use "
                          "result.stats(conventions=...)", column="conventions")
    if daily_returns and (not swept or variant is not None):
        raise ConfigError("daily_returns gives a sweep's daily returns: give at least one setting as a list, "
                          "and no variant=", column="daily_returns")
    if not swept:
        if variant is not None:
            raise ConfigError("variant= picks a row of a sweep: give at least one setting as a list", column="variant")
        return _run(prepared, arrays, signals, config, symbol)

    names = list(swept)
    grids = np.meshgrid(*(swept[k] for k in names), indexing="ij")
    columns = {k: np.ascontiguousarray(g.ravel()) for k, g in zip(names, grids)}
    count = len(columns[names[0]])
    if variant is not None:
        if isinstance(variant, bool) or not isinstance(variant, (int, np.integer)) or not 0 <= variant < count:
            raise ConfigError(f"variant must be a row number in [0, {count}), got {variant!r}", column="variant")
        one_config = dict(config, **{k: float(columns[k][variant]) for k in names})
        _fold_trailing(one_config)
        return _run(prepared, arrays, signals, one_config, symbol)
    engine_columns = pl.DataFrame({("sl_stop" if k == "tsl_stop" else k): v for k, v in columns.items()})
    n_threads = threads or os.cpu_count() or 1
    from aftershock.trading.stats import (
        computes_as_aftershock, conventions_sampling, engine_conventions, resolve_conventions,
    )

    conv = resolve_conventions(conventions)
    sampling, ppy = conventions_sampling(conv, prepared.arrays["ts"])
    rows: dict[str, Any] = {}
    # aftershock's conventions (annualized by 365) come from the simulator's streaming
    # pass; any other walks each variant's equity rows
    if (sampling, ppy) != ("calendar", 365.0) or not computes_as_aftershock(conv):
        rows = {"conventions": engine_conventions(conv), "periods_per_year": ppy}

    if daily_returns and (rows or checkpoint is not None):
        raise ConfigError("daily_returns goes with aftershock's conventions and no checkpoint",
                          column="conventions" if rows else "checkpoint")
    returns: list[np.ndarray] = []

    def figures(part: pl.DataFrame, counter: Any) -> pl.DataFrame:
        if daily_returns:
            table, flat, days = _engine.simulate_signals_many(arrays, signals, config, part, n_threads, counter,
                                                              daily=True)
            returns.append(np.array(np.frombuffer(flat, dtype=np.float64)).reshape(part.height, days).T)
        else:
            table = _engine.simulate_signals_many(arrays, signals, config, part, n_threads, counter, **rows)
        return stats_frame(table, (symbol,), ppy, sampling=sampling, conventions=conv.name)

    def run(counter: Any) -> pl.DataFrame:
        if checkpoint is None:
            return figures(engine_columns, counter)
        from aftershock.trading.persist import run_chunks, signals_identity

        identity = signals_identity(prepared, {k: signals.get_column(k).to_numpy() for k in signals.columns}, config,
                                    {k: engine_columns.get_column(k).to_numpy() for k in engine_columns.columns})
        identity = {**identity, "conventions": repr(conv)}
        return run_chunks(checkpoint, identity, count, chunk_size,
                          lambda lo, hi: figures(engine_columns.slice(lo, hi - lo), counter))

    stats = with_progress(run, count, progress)
    frame = pl.DataFrame({"variant": pl.int_range(count, eager=True)})
    # a NaN optional setting is "none": shown as null
    frame = frame.with_columns(**{k: pl.Series(v).fill_nan(None) if k in optional else pl.Series(v)
                                  for k, v in columns.items() if k != "init_cash"})
    frame = pl.concat([frame, stats], how="horizontal")
    return (frame, returns[0]) if daily_returns else frame


_MASKS = ("entries", "exits", "short_entries", "short_exits")


def _column_signals(frame: pl.DataFrame, arrays: dict[str, np.ndarray], given: tuple[Any, ...], direction: str,
                    per_bar: dict[str, Any], price_series: Any, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """One symbol's four masks and per-bar settings, as the engine reads them."""
    n = len(arrays["ts"])
    entries, exits, short_entries, short_exits = given
    a, b = _mask(entries, frame, n, "entries"), _mask(exits, frame, n, "exits")
    none = np.zeros(n, dtype=np.uint8)
    if short_entries is not None or short_exits is not None:
        masks = (a, b, _mask(short_entries, frame, n, "short_entries"), _mask(short_exits, frame, n, "short_exits"))
    elif direction == "longonly":
        masks = (a, b, none, none)
    elif direction == "shortonly":
        masks = (none, none, a, b)
    else:
        masks = (a, none, b, none)
    signals = dict(zip(("long_entries", "long_exits", "short_entries", "short_exits"), masks))
    for name, value in per_bar.items():
        values = _per_bar(name, value, frame, n)
        if config["size_type"] not in ("amount", "value") and name == "size" and np.isinf(values).any():
            raise ConfigError("size=inf (all cash) only goes with size_type='amount' or 'value'", column="size",
                              row=int(np.flatnonzero(np.isinf(values))[0]))
        signals["sl_stop" if name == "tsl_stop" else name] = values
    if price_series is not None:
        signals["price"] = (arrays["open"] if isinstance(price_series, str) and price_series == "open"
                            else _per_bar("price", price_series, frame, n))
    return signals


def _is_wide(value: Any) -> bool:
    """Masks of several symbols: a dict symbol -> mask, or a wide frame (a column per symbol)."""
    return isinstance(value, (dict, pl.DataFrame)) or (
        type(value).__module__.startswith("pandas") and hasattr(value, "columns"))


def _of(value: Any, sym: str, name: str, keys: list[str]) -> Any:
    """Symbol ``sym``'s part of a setting given per symbol (a dict or a wide frame), else the setting."""
    if isinstance(value, dict):
        if set(value) != set(keys):
            raise ConfigError(f"{name}: keys {sorted(map(str, value))} differ from the entries' {sorted(keys)}",
                              column=name)
        return value[sym]
    if _is_wide(value):
        columns = [str(c) for c in value.columns]
        if set(columns) != set(keys):
            raise ConfigError(f"{name}: columns {sorted(columns)} differ from the entries' {sorted(keys)}",
                              column=name)
        part = value[sym] if isinstance(value, pl.DataFrame) else value[value.columns[columns.index(sym)]]
        return part.to_numpy() if hasattr(part, "to_numpy") else part
    return value


def _run_group(bars: Any, given: tuple[Any, ...], direction: str, per_bar: dict[str, Any], price_series: Any,
               config: dict[str, Any], cash_sharing: bool) -> Result:
    """Several symbols in one backtest (vectorbt's ``group_by=True``), columns in the masks' order."""
    prepared = prepare_bars(bars)
    entries = given[0]
    keys = [str(k) for k in (entries if isinstance(entries, dict) else entries.columns)]
    if not keys:
        raise ConfigError("entries name no symbol", column="entries")
    index = prepared.symbol_index
    missing = [k for k in keys if k not in index]
    if missing:
        raise ConfigError(f"symbols {missing} not in bars", column="entries")
    offsets = prepared.arrays["offsets"]
    bar_dicts, signal_dicts = [], []
    first_ts = None
    for sym in keys:
        lo, hi = (int(x) for x in offsets[index[sym]:index[sym] + 2])
        arrays = {c: prepared.arrays[c][lo:hi] for c in ("ts", "open", "high", "low", "close")}
        if first_ts is None:
            first_ts = arrays["ts"]
        elif len(arrays["ts"]) != len(first_ts) or not np.array_equal(arrays["ts"], first_ts):
            bad = next((r for r in range(min(len(first_ts), len(arrays["ts"])))
                        if arrays["ts"][r] != first_ts[r]), min(len(first_ts), len(arrays["ts"])))
            raise InputError(f"symbol {sym!r} does not share {keys[0]!r}'s timestamps", column="ts", row=bad)
        parts = tuple(_of(v, sym, name, keys) for v, name in zip(given, _MASKS))
        mine = {k: _of(v, sym, k, keys) for k, v in per_bar.items()}
        price = _of(price_series, sym, "price", keys) if price_series is not None else None
        frame = prepared.frame.slice(lo, hi - lo)
        bar_dicts.append(prepared.columns.slice(lo, hi - lo).rechunk())
        try:
            columns = _column_signals(frame, arrays, parts, direction, mine, price, config)
        except (ConfigError, InputError) as exc:  # say whose values they are
            raise type(exc)(f"symbol {sym!r}: {exc.message}", column=exc.column if exc.argument is None else None,
                            row=exc.row, argument=exc.argument) from None
        signal_dicts.append(pl.DataFrame(columns))
    codes = [index[k] for k in keys]
    raw = _engine.simulate_signal_group(bar_dicts, signal_dicts, codes, config, cash_sharing, False)
    lazy = _Raw(raw, lambda: _engine.simulate_signal_group(bar_dicts, signal_dicts, codes, config, cash_sharing,
                                                           True))
    init = config["init_cash"] if cash_sharing else config["init_cash"] * len(keys)
    return Result(lazy, prepared, _NO_ORDERS, dict(config, init_cash=init, symbol=keys, cash_sharing=cash_sharing))


def _fold_trailing(config: dict[str, Any]) -> None:
    """``tsl_stop=x`` is ``sl_stop=x`` with ``sl_trail=True`` (vectorbt's one stop-loss)."""
    tsl = config.pop("tsl_stop", math.nan)
    if not math.isnan(tsl):
        config["sl_stop"] = tsl


class _Raw(dict):  # type: ignore[type-arg]
    """The engine's tables, with the equity rows (one per bar held: the bulk of the
    output) simulated again on first access. The simulation is deterministic, so
    the second pass gives the first pass's rows, bit for bit."""

    def __init__(self, raw: dict[str, Any], rerun: Any):
        super().__init__((k, v) for k, v in raw.items() if k != "equity")
        self._rerun = rerun

    def __missing__(self, key: str) -> Any:
        if key == "equity" and self._rerun is not None:
            self["equity"] = self._rerun()["equity"]
            self._rerun = None
            return self["equity"]
        raise KeyError(key)


def _run(prepared: PreparedBars, arrays: pl.DataFrame, signals: pl.DataFrame,
         config: dict[str, Any], symbol: str) -> Result:
    raw = _engine.simulate_signals(arrays, signals, config, False)
    lazy = _Raw(raw, lambda: _engine.simulate_signals(arrays, signals, config, True))
    result = Result(lazy, prepared, _NO_ORDERS, dict(config, symbol=symbol))
    # what Result.save records to run it again: the masks as NumPy arrays
    result._inputs = {"signals": {k: signals.get_column(k).to_numpy() for k in signals.columns}}
    return result
