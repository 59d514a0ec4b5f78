"""Signal-based backtests: boolean entry/exit masks compiled to the orders frame.

``from_signals`` is vectorbt's ``Portfolio.from_signals`` on top of the aftershock
engine. Signals are resolved exactly as vectorbt 1.2 resolves them (conflicting
entry/exit on one bar are ignored, an opposite entry reverses, an entry while in a
position is ignored unless ``accumulate``), then each decision becomes one order row
and the whole frame runs through :func:`aftershock.engine.backtest`.

Two price conventions:

* ``price="next_open"`` (default, look-ahead free): a signal on bar ``i`` becomes a
  ``market`` order decided at bar ``i``'s close (one microsecond before bar ``i+1``
  opens), filled at bar ``i+1``'s open. A
  signal on the last bar has no next bar and is dropped.
* ``price="close"`` (vectorbt's default): a ``market_on_close`` order filled at the
  signal bar's own close.

Whether a signal acts depends on the position (an exit while flat does nothing, a
reversal needs the open quantity), and the position depends on fills the engine
decides (stop exits, rejected orders). The engine has no position-conditional
orders, so the frame is compiled against the positions observed in the previous
run and re-run until compiling again gives the same frame (a fixpoint: each round
settles at least one more order, in time order). See docs/vectorbt.md.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from aftershock.engine import backtest
from aftershock.errors import ConfigError, EngineError, InputError
from aftershock.results import Result

__all__ = ["from_signals"]

_DIRECTIONS = ("longonly", "shortonly", "both")
_PRICES = ("next_open", "close")
_SIZE_TYPES = {"units": "units", "amount": "units", "notional": "notional", "value": "notional",
               "percent_equity": "percent_equity"}
_TICK = dt.timedelta(microseconds=1)
_BRACKET_REASONS = ("stop_loss", "take_profit", "trailing_stop", "time_exit", "liquidation")


def _mask(values: Any, bars: pl.DataFrame, name: str) -> np.ndarray:
    n = bars.height
    if values is None:
        return np.zeros(n, dtype=bool)
    if isinstance(values, str):
        if values not in bars.columns:
            raise InputError(f"{name}: no column {values!r} in bars", column=name)
        values = bars.get_column(values)
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
    return arr.astype(bool)


def _resolve(pos: float, le: bool, lx: bool, se: bool, sx: bool) -> tuple[bool, bool, bool, bool]:
    """vectorbt's default resolution: an entry and an exit of one direction on one bar
    cancel out; a long and a short entry on one bar cancel out; an opposite entry
    reverses."""
    if le or se:
        if le and lx:
            le = lx = False
        if se and sx:
            se = sx = False
        if le and se:
            le = se = False
    return le, lx, se, sx


class _Compiler:
    def __init__(self, bars: pl.DataFrame, symbol: str, signals: tuple[np.ndarray, ...], *, size: float,
                 size_type: str, stops: dict[str, float | None], accumulate: bool, price: str):
        self.bars = bars
        self.symbol = symbol
        self.le, self.lx, self.se, self.sx = signals
        self.size = size
        self.size_type = size_type
        self.stops = stops
        self.accumulate = accumulate
        self.price = price
        self.ts = bars.get_column("ts").to_list()
        self.open = bars.get_column("open").to_numpy()
        self.close = bars.get_column("close").to_numpy()

    def _val_price(self, i: int) -> float:
        return self.close[i] if self.price == "close" else self.open[i + 1]

    def _units(self, i: int) -> float:
        """A finite size in units (notional sizes use the order's own reference price, like vectorbt's Value)."""
        if self.size_type == "notional":
            return self.size / self._val_price(i)
        return self.size

    def compile(self, observed: dict[str, Any] | None) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = []
        n = len(self.ts)
        pos = 0.0
        last = n if self.price == "close" else n - 1
        for i in range(last):
            if observed is not None:
                pos = observed["pos"][i]
                if self.price == "close" and observed["stop_exit"][i]:
                    continue  # vectorbt: a stop exit on a bar overrides that bar's signals
            le, lx, se, sx = _resolve(pos, bool(self.le[i]), bool(self.lx[i]), bool(self.se[i]), bool(self.sx[i]))
            for side, kind, qty in self._decide(i, pos, le, lx, se, sx):
                orders.append(self._order(i, side, kind, qty))
                pos = self._predict(pos, side, kind, qty, i)
        return orders

    def _decide(self, i: int, pos: float, le: bool, lx: bool, se: bool, sx: bool) -> list[tuple[str, str, float]]:
        """(side, kind, qty) rows, following vectorbt's ``signals_to_size_nb``; kind is 'open'
        (carries the brackets), 'all_in' (size=inf), 'close' (to flat) or 'reduce'."""
        inf = math.isinf(self.size)
        if pos == 0:
            if le or se:
                side = "buy" if le else "sell"
                return [(side, "all_in", 1.0)] if inf else [(side, "open", self._units(i))]
            return []
        # in a position: the opposite entry reverses, the exit closes, the same-side entry adds
        away, toward = ("sell", "buy") if pos > 0 else ("buy", "sell")
        opposite_entry, exit_, same_entry = (se, lx, le) if pos > 0 else (le, sx, se)
        if opposite_entry:
            if inf:
                return [(away, "all_in", 1.0)]
            if self.accumulate:
                return [(away, "open", self._units(i))]
            if self.size_type == "percent_equity":
                return [(away, "close", 0.0), (away, "open", self.size)]
            return [(away, "open", abs(pos) + self._units(i))]
        if exit_:
            if self.accumulate and not inf and not self._closes(pos, self._units(i)):
                return [(away, "reduce", self._units(i))]
            return [(away, "close", 0.0)]
        if same_entry and self.accumulate:
            return [(toward, "all_in", 1.0)] if inf else [(toward, "open", self._units(i))]
        return []

    @staticmethod
    def _closes(pos: float, qty: float) -> bool:
        """A reduction within 1e-9 of the position closes it exactly (vectorbt's ``add_nb``),
        instead of leaving float dust such as 4.9 + 4.95 - 4.9 - 4.95 = 8.9e-16 units."""
        return qty >= abs(pos) * (1 - 1e-9)

    def _predict(self, pos: float, side: str, kind: str, qty: float, i: int) -> float:
        """The position after the order, assuming it fills in full (a first guess only)."""
        sign = 1.0 if side == "buy" else -1.0
        if kind == "close":
            return 0.0
        if kind == "all_in":
            return sign  # some quantity on that side; the next round observes the real one
        if kind == "reduce":
            return pos + sign * min(qty, abs(pos))
        if self.size_type == "percent_equity":
            return pos + sign
        return pos + sign * qty

    def _order(self, i: int, side: str, kind: str, qty: float) -> dict[str, Any]:
        row: dict[str, Any] = {
            # next_open: decided at bar i's close, printed just before bar i+1 opens
            "submit_ts": self.ts[i] if self.price == "close" else self.ts[i + 1] - _TICK,
            "symbol": self.symbol,
            "side": side,
            "order_type": "market_on_close" if self.price == "close" else "market",
            "reduce_only": False,
            "stop_loss": None,
            "take_profit": None,
            "trailing_stop": None,
        }
        if kind == "all_in":
            row.update(qty=1.0, size_type="target_percent")
        elif kind == "close":
            row.update(qty=0.0, size_type="target_percent")
        elif kind == "reduce":
            row.update(qty=qty, size_type="units", reduce_only=True)
        else:
            row.update(qty=qty, size_type="percent_equity" if self.size_type == "percent_equity" else "units")
        if kind in ("all_in", "open"):
            row.update(self.stops)
        return row

    def frame(self, rows: list[dict[str, Any]]) -> pl.DataFrame:
        schema = {
            "submit_ts": self.bars.schema["ts"],
            "symbol": pl.String,
            "side": pl.String,
            "qty": pl.Float64,
            "size_type": pl.String,
            "order_type": pl.String,
            "reduce_only": pl.Boolean,
            "stop_loss": pl.Float64,
            "take_profit": pl.Float64,
            "trailing_stop": pl.Float64,
        }
        return pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)

    def observe(self, result: Result, orders: list[dict[str, Any]]) -> dict[str, Any]:
        """Per bar: the position just before that bar's signal order, and whether a stop closed it on that bar."""
        n = len(self.ts)
        index = {t: i for i, t in enumerate(self.ts)}
        fills = result.fills
        delta_before = np.zeros(n + 1)  # by bar, fills that precede the bar's own signal order
        delta_after = np.zeros(n + 1)
        stop_exit = np.zeros(n, dtype=bool)
        for ts, side, qty, reason in fills.select("ts", "side", "qty", "reason").iter_rows():
            i = index[ts]
            signed = qty if side == "buy" else -qty
            if reason in _BRACKET_REASONS:
                stop_exit[i] = True
                delta_before[i] += signed
            else:
                delta_after[i] += signed
        pos = np.zeros(n)
        running = 0.0
        for i in range(n):
            if self.price == "close":
                running += delta_before[i]
                pos[i] = running
                running += delta_after[i]
            else:
                running += delta_before[i] + delta_after[i]
                pos[i] = running  # the order of bar i fills at bar i+1's open
        return {"pos": pos.tolist(), "stop_exit": stop_exit.tolist()}


def from_signals(
    bars: pl.DataFrame,
    entries: Any = None,
    exits: Any = None,
    short_entries: Any = None,
    short_exits: Any = None,
    *,
    symbol: str | None = None,
    init_cash: float = 100_000.0,
    size: float = math.inf,
    size_type: str = "units",
    fees: float = 0.0,
    fixed_fees: float = 0.0,
    slippage: float = 0.0,
    sl_stop: float | None = None,
    tp_stop: float | None = None,
    tsl_stop: float | None = None,
    direction: str = "longonly",
    accumulate: bool = False,
    price: str = "next_open",
    **engine_config: Any,
) -> Result:
    """Backtest boolean entry/exit signals of one symbol with the aftershock engine.

    Parameters
    ----------
    bars:
        Bars frame (see docs/engine.md). With several symbols, ``symbol`` picks one.
    entries, exits, short_entries, short_exits:
        Boolean masks aligned with the symbol's bars: NumPy arrays, Polars Series,
        lists, or names of boolean columns of ``bars``. Without short masks,
        ``direction`` says what ``entries``/``exits`` mean (``"both"``: entries go
        long, exits go short); with short masks, ``entries``/``exits`` are the long
        ones and ``direction`` is ignored.
    size, size_type:
        ``size=inf`` (default) uses all available cash (all equity within
        ``leverage``), net of fees, like vectorbt. ``size_type`` is ``"units"``,
        ``"notional"`` (quote currency, converted at the order's price before
        slippage, like vectorbt's ``"value"``) or ``"percent_equity"``.
    fees, fixed_fees, slippage:
        Fee fraction (taker and maker), fixed fee per fill, slippage fraction.
    sl_stop, tp_stop, tsl_stop:
        Stop-loss, take-profit and trailing-stop fractions armed on every entry.
    direction:
        ``"longonly"``, ``"shortonly"`` or ``"both"``.
    accumulate:
        Entries while in a position add ``size``; exits remove ``size``.
    price:
        ``"next_open"`` (default) or ``"close"``.
    **engine_config:
        Any other :func:`aftershock.engine.backtest` setting (``leverage``,
        ``latency``, ``intrabar``, ``close_at_end``...).

    Examples
    --------
    >>> import datetime as dt, polars as pl, aftershock as ash
    >>> ts = [dt.datetime(2025, 3, 7, 13, m, tzinfo=dt.timezone.utc) for m in range(30, 35)]
    >>> bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": [100.0, 101, 102, 103, 104],
    ...                      "high": [101.0, 102, 103, 104, 105], "low": [99.0, 100, 101, 102, 103],
    ...                      "close": [101.0, 102, 103, 104, 105]})
    >>> from aftershock.signals import from_signals
    >>> r = from_signals(bars, [True, False, False, False, False], [False, False, True, False, False],
    ...                  size=1.0, price="close")
    >>> r.fills.select("side", "price").rows()
    [('buy', 101.0), ('sell', 103.0)]
    """
    if direction not in _DIRECTIONS:
        raise ConfigError(f"direction must be one of {_DIRECTIONS}, got {direction!r}", column="direction")
    if price not in _PRICES:
        raise ConfigError(f"price must be one of {_PRICES}, got {price!r}", column="price")
    if size_type not in _SIZE_TYPES:
        raise ConfigError(f"size_type must be one of {sorted(_SIZE_TYPES)}, got {size_type!r}", column="size_type")
    size_type = _SIZE_TYPES[size_type]
    if isinstance(size, bool) or not isinstance(size, (int, float)) or math.isnan(size) or size <= 0:
        raise ConfigError(f"size must be a number > 0 (inf: all cash), got {size!r}", column="size")
    if math.isinf(size) and size_type != "units":
        raise ConfigError("size=inf (all cash) only goes with size_type='units'", column="size")
    for name, stop in (("sl_stop", sl_stop), ("tp_stop", tp_stop), ("tsl_stop", tsl_stop)):
        if stop is not None and not (isinstance(stop, (int, float)) and stop > 0 and math.isfinite(stop)):
            raise ConfigError(f"{name} must be a finite fraction > 0, got {stop!r}", column=name)
    for name in ("maker_fees",):
        if name in engine_config:
            raise ConfigError(f"{name}: from_signals charges `fees` on every fill", column=name)

    symbols = bars.get_column("symbol").cast(pl.String).unique(maintain_order=True).to_list()
    if symbol is None:
        if len(symbols) != 1:
            raise ConfigError(f"bars hold {len(symbols)} symbols: pass symbol=", column="symbol")
        symbol = symbols[0]
    elif symbol not in symbols:
        raise ConfigError(f"symbol {symbol!r} not in bars", column="symbol")
    one = bars.filter(pl.col("symbol").cast(pl.String) == symbol) if len(symbols) > 1 else bars

    ls_mode = short_entries is not None or short_exits is not None
    a, b = _mask(entries, one, "entries"), _mask(exits, one, "exits")
    none = np.zeros(one.height, dtype=bool)
    if ls_mode:
        signals = (a, b, _mask(short_entries, one, "short_entries"), _mask(short_exits, one, "short_exits"))
    elif direction == "longonly":
        signals = (a, b, none, none)
    elif direction == "shortonly":
        signals = (none, none, a, b)
    else:
        signals = (a, none, b, none)

    stops = {"stop_loss": sl_stop, "take_profit": tp_stop, "trailing_stop": tsl_stop}
    compiler = _Compiler(one, symbol, signals, size=float(size), size_type=size_type, stops=stops,
                         accumulate=bool(accumulate), price=price)
    config = dict(init_cash=init_cash, fees=fees, maker_fees=fees, fixed_fees=fixed_fees, slippage=slippage)
    config.update(engine_config)

    rows = compiler.compile(None)
    for _ in range(one.height + 3):
        result = backtest(one, compiler.frame(rows), **config)
        again = compiler.compile(compiler.observe(result, rows))
        if again == rows:
            return result
        rows = again
    raise EngineError("from_signals: compiling signals against observed positions did not settle")
