"""Event strategies: Python decides once per release, Rust simulates.

A strategy is a class whose annotated class attributes are its parameters::

    class CpiFade(ash.Strategy):
        threshold: float = 1.0
        hold: str = "1h"

        def on_release(self, events):
            hot = events.filter(pl.col("indicator") == "CPI_YOY",
                                pl.col("surprise_z").abs() > self.threshold)
            return ash.orders.market(hot, symbol="BTC", side=-pl.col("surprise_z").sign(),
                                     size=0.5, size_type="percent_equity", exit_after=self.hold)

The point-in-time contract every hook obeys is stated on :class:`Strategy`.

Both hooks return an orders frame (see :mod:`aftershock.trading.orders`) or ``None``.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, ClassVar, Iterable

import numpy as np
import polars as pl

from aftershock._checks import utc_timestamps
from aftershock._time import duration_us
from aftershock.calendar._pit import column_classes, with_publication
from aftershock.errors import ConfigError, LookAheadError, OrdersError
from aftershock.trading.engine import prepare_bars

__all__ = ["Strategy", "AsOf", "compile_orders"]

_RESERVED = ("params", "asof")
_UTC = dt.timezone.utc
_TS = pl.Datetime("us", "UTC")


class Strategy:
    """Base class of event strategies; parameters are annotated class attributes.

    The point-in-time contract
    --------------------------
    Every decision is taken at an instant ``d`` and sees exactly what was public at ``d``:
    the schedule and consensus of every scheduled event, the outcome (``actual``,
    ``previous``, surprises, ``source`` text, any column not known to be schedule) of events
    published at or before ``d``, and bars that closed at or before ``d``. Nothing else is
    handed to the strategy, so this holds for any code written against those frames. An
    event is *published* at ``known_ts``: its ``release_ts`` for an exact time, the end of
    its hour or day for coarser ``time_precision``. Unscheduled events (policy headlines)
    do not exist for the strategy before they are published.

    The hooks are called in time order, once per publication instant ``t`` (all events
    published at ``t`` together), on a fresh copy of the strategy for every run:

    - ``before_release(events)`` is decided at ``d = t - decide_before``. ``events`` are the
      *scheduled* events due at ``t``, without their outcome columns. Use it to position
      ahead of a release.
    - ``on_release(events)`` is decided at ``d = t + decide_after``. ``events`` are the
      events published at ``t``, outcomes and surprises included.

    ``decide_before`` and ``decide_after`` are durations (``"0s"`` by default); annotate
    them in a subclass to make them sweepable parameters. During a call,
    ``self.asof`` is an :class:`AsOf` view of what is public at ``d``: ``asof.ts``,
    ``asof.calendar`` (the whole calendar as of ``d``), ``asof.bars(symbol)`` and
    ``asof.last_close(symbol)``. ``events`` carry ``decision_ts`` (= ``d``); the order
    builders submit at ``decision_ts`` (plus their ``delay``) and an orders frame without
    ``submit_ts`` is submitted at ``d``. An order submitted before ``d`` raises
    :class:`~aftershock.errors.LookAheadError`. Orders then fill only at prices printed after
    ``submit_ts + latency`` (docs/engine.md). State kept on ``self`` carries forward in
    time only: calls come in order of ``d``, and every backtest or sweep variant starts
    from a fresh copy of the instance it was given.

    Both hooks return an orders frame (see :mod:`aftershock.trading.orders`) or ``None``.
    """

    params: ClassVar[dict[str, Any]] = {}
    #: ``before_release`` is decided this long before each scheduled publication.
    decide_before: Any = "0s"
    #: ``on_release`` is decided this long after each publication.
    decide_after: Any = "0s"
    #: Extra calendar columns that are known in advance (all unknown columns are
    #: treated as outcome columns and hidden until publication).
    schedule_columns: ClassVar[tuple[str, ...]] = ()

    _asof: AsOf | None = None

    @property
    def asof(self) -> AsOf:
        """What is public at the current decision instant; only inside a hook call."""
        if self._asof is None:
            raise ConfigError("self.asof exists only while aftershock calls a hook (before_release/on_release)",
                              column="asof")
        return self._asof

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name in getattr(klass, "__annotations__", {}):
                if name.startswith("_") or name in _RESERVED or klass is Strategy:
                    continue
                if name in klass.__dict__:
                    params[name] = klass.__dict__[name]
        for name in _RESERVED:
            if name in cls.__dict__ and name in getattr(cls, "__annotations__", {}):
                raise ConfigError(f"{cls.__name__}: {name!r} is reserved by aftershock.Strategy", column=name)
        cls.params = params

    def __init__(self, **params: Any) -> None:
        unknown = [k for k in params if k not in self.params]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} has no parameter {unknown[0]!r}; parameters: {sorted(self.params)}",
                column=unknown[0],
            )
        for name, default in self.params.items():
            setattr(self, name, copy.deepcopy(params.get(name, default)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.params)
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.params}

    def before_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Orders decided ``decide_before`` ahead of the scheduled events in
        ``events`` (outcome columns removed)."""
        return None

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Orders decided ``decide_after`` after the events in ``events`` were
        published (outcomes and surprises visible)."""
        return None

    def __aftershock_orders__(self, calendar: Any, bars: Any) -> pl.DataFrame:
        """The orders frame ``backtest(bars, strategy, calendar=...)`` runs: the
        strategy compiled over ``calendar`` (the engine front calls this, so it need
        not know about strategies)."""
        if calendar is None:
            raise ConfigError("a Strategy needs calendar=...", column="calendar")
        return compile_orders(self, calendar, bars)


class _BarIndex:
    """Per-symbol bar close times, to slice the bars that closed by an instant.

    A bar closes one bar interval after it opens; a symbol's interval is the
    smallest gap between its consecutive bars (one day for a symbol with one bar).
    """

    def __init__(self, prepared: Any) -> None:
        self.frame: pl.DataFrame = prepared.frame
        self.symbols: tuple[str, ...] = prepared.symbols
        ts = prepared.arrays["ts"]
        offsets = prepared.arrays["offsets"]
        self.spans: dict[str, tuple[int, np.ndarray]] = {}
        for k, sym in enumerate(self.symbols):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            t = ts[lo:hi]
            gaps = np.diff(t)
            step = int(gaps.min()) if gaps.size else 86_400_000_000
            self.spans[sym] = (lo, t + step)

    def closed(self, symbol: str | None, at_us: int) -> pl.DataFrame:
        if symbol is None:
            return pl.concat([self.closed(s, at_us) for s in self.symbols])
        if symbol not in self.spans:
            raise ConfigError(f"no bars for symbol {symbol!r}; bars have {list(self.symbols)}", column="symbol")
        lo, close = self.spans[symbol]
        n = int(np.searchsorted(close, at_us, side="right"))
        return self.frame.slice(lo, n)


class _CalendarIndex:
    """The calendar twice, in publication order: as published, and with every outcome
    cell hidden (scheduled rows only). The view at an instant is a prefix of the first
    and a suffix of the second, two zero-copy slices instead of a query per call."""

    def __init__(self, calendar: pl.DataFrame, schedule_columns: Iterable[str]) -> None:
        # `calendar` is sorted by known_ts (stable)
        self.shown = calendar
        self.known = calendar.get_column("known_ts").dt.epoch("us").to_numpy()
        classes = column_classes(calendar.columns, schedule_columns)
        hidden = calendar.filter(pl.col("scheduled")).with_columns(
            pl.lit(None, calendar.schema[c]).alias(c) for c, k in classes.items() if k == "outcome"
        )
        self.hidden = hidden
        flags = calendar.get_column("scheduled").to_numpy().astype(np.int64)
        self.scheduled_before = np.concatenate([[0], np.cumsum(flags)])

    def view(self, at_us: int, before_us: int | None) -> pl.DataFrame:
        # published: known_ts <= at (and < before, when before_release anticipates it)
        if before_us is not None and before_us <= at_us:
            k = int(np.searchsorted(self.known, before_us, side="left"))
        else:
            k = int(np.searchsorted(self.known, at_us, side="right"))
        j = int(self.scheduled_before[k])  # scheduled rows inside the published prefix
        return pl.concat([self.shown.slice(0, k), self.hidden.slice(j)], rechunk=False)


class AsOf:
    """What is public at one decision instant ``ts`` (see :mod:`aftershock.trading.strategy`)."""

    __slots__ = ("ts", "_calendar", "_view", "_before", "_bars")

    def __init__(self, ts: dt.datetime, calendar: _CalendarIndex, before: dt.datetime | None,
                 bars: _BarIndex | None) -> None:
        self.ts = ts
        self._calendar = calendar
        self._view: pl.DataFrame | None = None
        self._before = before
        self._bars = bars

    def __repr__(self) -> str:
        return f"AsOf({self.ts.isoformat()})"

    @property
    def calendar(self) -> pl.DataFrame:
        """Every scheduled event, and every unscheduled one already published, in
        order of publication; outcome cells of events not yet published are null."""
        if self._view is None:
            before = _us(self._before) if self._before is not None else None
            self._view = self._calendar.view(_us(self.ts), before)
        return self._view

    def bars(self, symbol: str | None = None) -> pl.DataFrame:
        """Bars (of ``symbol``, or all) that closed at or before ``ts``."""
        if self._bars is None:
            raise ConfigError("this run was given no bars (compile_orders(..., bars=...))", column="bars")
        return self._bars.closed(symbol, _us(self.ts))

    def last_close(self, symbol: str) -> float | None:
        """The close of ``symbol``'s last bar closed at or before ``ts``, or None."""
        b = self.bars(symbol)
        return float(b.get_column("close")[-1]) if b.height else None


def _us(ts: dt.datetime) -> int:
    return (ts - dt.datetime(1970, 1, 1, tzinfo=_UTC)) // dt.timedelta(microseconds=1)


def _calendar_for(calendar: Any) -> pl.DataFrame:
    from aftershock.calendar import surprises, validate_calendar

    if isinstance(calendar, (pl.DataFrame, pl.LazyFrame)) and "hawkish_z" in calendar.columns:
        # surprises computed by the caller (e.g. with a long history) are kept as given
        return validate_calendar(calendar)
    return surprises(calendar)


def _overrides(strategy: Strategy, hook: str) -> bool:
    return getattr(type(strategy), hook) is not getattr(Strategy, hook)


def _delay(strategy: Strategy, name: str) -> int:
    value = getattr(strategy, name)
    try:
        us = duration_us(value, name=name)
    except (TypeError, ValueError) as exc:
        raise ConfigError(getattr(exc, "message", str(exc)), column=name) from None
    if us < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}", column=name)
    return us


def compile_orders(
    strategy: Strategy,
    calendar: Any,
    bars: Any = None,
) -> pl.DataFrame:
    """Run ``strategy`` over ``calendar`` point in time and return one orders frame.

    The hooks run on a deep copy of ``strategy`` (the instance you pass is never
    changed), once per publication instant, in time order; each sees only what was
    public at its decision instant (module documentation). ``bars`` (a frame or
    :class:`~aftershock.trading.engine.PreparedBars`) feeds ``self.asof.bars``.
    """
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"expected a Strategy instance, got {type(strategy).__name__}", column="strategy")
    run = copy.deepcopy(strategy)
    wants_before, wants_on = _overrides(run, "before_release"), _overrides(run, "on_release")
    if not (wants_before or wants_on):
        return pl.DataFrame()
    before_us, after_us = _delay(run, "decide_before"), _delay(run, "decide_after")
    cal = with_publication(_calendar_for(calendar)).sort("known_ts", maintain_order=True)
    schedule_columns = tuple(run.schedule_columns)
    published = _CalendarIndex(cal, schedule_columns)
    index = None
    if bars is not None:
        index = _BarIndex(prepare_bars(bars))

    # (decision instant, hook order, publication instant, hook, events)
    calls: list[tuple[dt.datetime, int, dt.datetime, str, pl.DataFrame]] = []
    if wants_on:
        shown = cal.with_columns(decision_ts=pl.col("known_ts") + pl.duration(microseconds=after_us))
        for batch in shown.partition_by("known_ts", maintain_order=True):
            calls.append((batch["decision_ts"][0], 1, batch["known_ts"][0], "on_release", batch))
    if wants_before:
        classes = column_classes(cal.columns, schedule_columns)
        blind = cal.filter(pl.col("scheduled")).select(c for c, k in classes.items() if k != "outcome")
        blind = blind.with_columns(decision_ts=pl.col("known_ts") - pl.duration(microseconds=before_us))
        for batch in blind.partition_by("known_ts", maintain_order=True):
            calls.append((batch["decision_ts"][0], 0, batch["known_ts"][0], "before_release", batch))
    calls.sort(key=lambda c: (c[0], c[1], c[2]))

    parts: list[pl.DataFrame] = []
    try:
        for decided, kind, at, hook, events in calls:
            # before_release never sees the events it anticipates, even with decide_before=0
            run._asof = AsOf(decided, published, at if kind == 0 else None, index)
            out = getattr(run, hook)(events)
            orders = _accept(out, decided, hook, events)
            if orders is not None:
                parts.append(orders)
    finally:
        run._asof = None
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal_relaxed")


def _accept(out: Any, decided: dt.datetime, hook: str, events: pl.DataFrame) -> pl.DataFrame | None:
    """Check the orders one hook call returned against its decision instant."""
    if out is None:
        return None
    if isinstance(out, pl.LazyFrame):
        out = out.collect()
    if not isinstance(out, pl.DataFrame):
        raise OrdersError(f"{hook} must return a Polars DataFrame of orders or None, got {type(out).__name__}")
    if out.height == 0:
        return None
    ids = events.get_column("event_id")
    if "submit_ts" not in out.columns:
        out = out.with_columns(submit_ts=pl.lit(decided, pl.Datetime("us", "UTC")))
    elif out.schema["submit_ts"] != _TS or out.get_column("submit_ts").null_count():
        if out.schema["submit_ts"] == pl.Null:
            out = out.with_columns(pl.col("submit_ts").cast(_TS))
        out = out.with_columns(utc_timestamps(out, "submit_ts", OrdersError).fill_null(decided))
    if "tag" not in out.columns and ids.len() == 1:
        out = out.with_columns(tag=pl.lit(ids[0], pl.String))
    submit = out.get_column("submit_ts")
    if submit.min() < decided:
        row = int((submit < decided).arg_true()[0])
        raise LookAheadError(
            f"{hook} for {', '.join(ids.to_list())} was decided at {decided.isoformat()} (what was public then) "
            f"but returned an order submitted at {out['submit_ts'][row].isoformat()}, before its decision",
            column="submit_ts",
            row=row,
        )
    return out
