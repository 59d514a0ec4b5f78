"""Walk-forward validation: fit a sweep on each training window, trade the winner on the
window that follows, and stitch the out-of-sample results.

``walk_forward(bars, strategy, grid, train=..., test=...)`` cuts the bars into folds,
either by time (``train="60d", test="30d"``) or by event count (``train=6, test=3``:
six releases to fit, the next three to trade). On each fold it

1. runs every variant of ``grid`` on the training window (one engine sweep, Rust in
   parallel, or Ray with ``backend="ray"``), on the training orders left after
   purging and embargo (below);
2. picks the variant with the highest ``objective`` (a :meth:`Result.stats` figure;
   NaN and null count as the worst, ties go to the first variant);
3. backtests that variant alone on the test window, starting from the equity the
   previous test window ended with.

Rule for the boundaries (docs/research.md states it with an example):

- an order belongs to the window its ``submit_ts`` falls in; every window is
  ``[start, end)``, and each backtest sees only its window's bars, with
  ``close_at_end=True`` (a position still open at the window's last bar is closed
  at its close, so windows never share a position);
- **purging**: a training order is not used to fit when its holding period could
  reach the split, i.e. when ``submit_ts + horizon > split``; the horizon is the
  longest ``latency + exit_after`` over every variant of the grid plus two bar
  intervals (one to fill, one to exit), or ``purge=`` when given. Orders without
  ``exit_after`` have no known horizon: pass ``purge=``.
- **embargo**: training orders submitted within ``embargo`` of the split are not
  used either (``submit_ts + horizon + embargo > split``): a buffer against effects
  that outlast the holding period.

The same purge applies to every variant (it uses the longest holding period of the
grid), so all variants of a fold are fitted on the same events.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from aftershock._time import duration_us
from aftershock.errors import ConfigError, InputError
from aftershock.trading.engine import PreparedBars, encode_orders, prepare_bars
from aftershock.trading.results import Result
from aftershock.trading.strategy import Strategy
from aftershock.trading.sweep import Sweep

__all__ = ["walk_forward", "WalkForward", "Signals", "fold_bounds", "training_mask"]

_TS = pl.Datetime("us", "UTC")
#: Figures shown in- and out-of-sample for each fold (the objective is added first).
FIGURES = ("sharpe", "total_return", "max_drawdown", "trades", "win_rate")


def fold_bounds(
    start: int,
    end: int,
    *,
    train: int,
    test: int,
    step: int,
    anchored: bool,
    events: np.ndarray | None = None,
    lead: int = 0,
) -> list[tuple[int, int, int]]:
    """``(train_start, split, test_end)`` of every fold, in microseconds.

    By time (``events is None``): ``train``, ``test`` and ``step`` are durations;
    fold ``k`` tests ``[split, split + test)`` with ``split = start + train + k *
    step``, and trains on ``[split - train, split)`` (``[start, split)`` anchored).
    Only whole test windows inside ``[start, end)`` are kept.

    By events: ``train``, ``test`` and ``step`` count the sorted distinct instants
    of ``events`` inside ``[start, end)``; fold ``k`` trades events ``s .. s+test-1``
    with ``s = train + k * step`` and fits on the ``train`` events before them (all
    earlier ones, anchored). Boundaries sit ``lead`` before an event (a strategy that
    decides ahead of a release); the last test window ends at ``end``.
    """
    for name, v in (("train", train), ("test", test), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ConfigError(f"{name} must be positive, got {v!r}", column=name)
    out: list[tuple[int, int, int]] = []
    if events is None:
        k = 0
        while True:
            split = start + train + k * step
            if split + test > end:
                return out
            out.append((start if anchored else split - train, split, split + test))
            k += 1
    e = np.unique(np.asarray(events, dtype=np.int64))
    e = e[(e >= start) & (e < end)]
    k = 0
    while True:
        s = train + k * step
        if s + test > len(e):
            return out
        first = start if anchored else max(start, int(e[s - train]) - lead)
        split = max(start, int(e[s]) - lead)
        stop = int(e[s + test]) - lead if s + test < len(e) else end
        out.append((first, split, max(split, stop)))
        k += 1


def training_mask(submit: np.ndarray, train_start: int, split: int, horizon: int, embargo: int) -> np.ndarray:
    """Which orders (by ``submit_ts``, microseconds) fit a fold: submitted in
    ``[train_start, split)`` and, purged and embargoed, with ``submit + horizon +
    embargo <= split``."""
    submit = np.asarray(submit, dtype=np.int64)
    return (submit >= train_start) & (submit < split) & (submit + horizon + embargo <= split)


class _Window(Sweep):
    """The parent sweep's variants over one window of bars: each parameter set's
    compiled orders (compiled once, over all the bars, by the parent) cut to the
    orders ``keep`` selects."""

    def __init__(self, parent: Sweep, bars: PreparedBars, keep: Any, config: Mapping[str, Any]) -> None:
        self.__dict__.update(parent.__dict__)
        self.bars = bars
        self.config = dict(config)
        self._parent = parent
        self._keep = keep
        self._frames = {}
        self._encoded = {}
        self._overridden = {}
        self._configs = {}
        self.kept: dict[tuple, int] = {}

    def _base(self, variant: Mapping[str, Any]) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
        key = self._key(variant, self._param_keys)
        if key not in self._encoded:
            frame, arrays = self._parent._base(variant)
            mask = self._keep(arrays["submit_ts"])
            self.kept[key] = int(mask.sum())
            self._encoded[key] = encode_orders(frame.filter(pl.Series(mask)), self.bars.symbols)
        return self._encoded[key]


@dataclass
class WalkForward:
    """The outcome of :func:`walk_forward`.

    ``folds``: one row per fold (windows, orders used, the chosen variant and its grid
    values, then ``is_<figure>`` and ``oos_<figure>`` side by side); ``equity``: the
    stitched out-of-sample equity (each test window's equity rows, chained);
    ``results``: each fold's out-of-sample :class:`Result`; ``training``: each fold's
    in-sample sweep frame (every variant).
    """

    folds: pl.DataFrame
    equity: pl.DataFrame
    results: list[Result]
    training: list[pl.DataFrame]
    objective: str
    init_cash: float
    params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"<WalkForward {self.folds.height} folds, objective {self.objective}: out-of-sample return "
                f"{self.oos_return():.2%}>")

    def oos_return(self) -> float:
        """Total return of the stitched out-of-sample equity."""
        if not self.results:
            return math.nan
        return self.results[-1].final_equity / self.init_cash - 1.0

    def summary(self) -> dict[str, Any]:
        """Headline figures: folds, stitched out-of-sample return, mean in- and
        out-of-sample objective, and their ratio (walk-forward efficiency)."""
        obj = self.objective
        ins = self.folds.get_column(f"is_{obj}").cast(pl.Float64).fill_nan(None).mean()
        oos = self.folds.get_column(f"oos_{obj}").cast(pl.Float64).fill_nan(None).mean()
        eff = oos / ins if isinstance(ins, float) and isinstance(oos, float) and ins != 0 else None
        return {"folds": self.folds.height, "oos_total_return": self.oos_return(), f"mean_is_{obj}": ins,
                f"mean_oos_{obj}": oos, "efficiency": eff}

    def plot(self) -> Any:
        """The stitched out-of-sample equity and, per fold, the objective in- and
        out-of-sample side by side (plotly)."""
        from aftershock.report import walk_forward_figure

        return walk_forward_figure(self)

    def report(self, path: str, *, title: str = "aftershock walk-forward") -> str:
        """A self-contained HTML page (offline): headline figures, the chart, the folds table."""
        from aftershock.report import write_walk_forward_report

        return write_walk_forward_report(self, path, title=title)

    def _repr_html_(self) -> str:
        from aftershock.report._page import table

        return table(self.folds)


class _Folds:
    """Collects each fold's row (windows, the chosen variant, in- and out-of-sample
    figures), its out-of-sample result and its training frame."""

    def __init__(self, objective: str, init_cash: float, periods_per_year: float) -> None:
        self.objective, self.init_cash, self.periods_per_year = objective, init_cash, periods_per_year
        self.figures = list(dict.fromkeys([objective, *FIGURES]))
        self.rows: list[dict[str, Any]] = []
        self.results: list[Result] = []
        self.training: list[pl.DataFrame] = []
        self.cash = init_cash

    @staticmethod
    def best(table: pl.DataFrame, objective: str) -> int:
        """The variant with the highest objective (NaN and null: worst; ties: first)."""
        score = table.get_column(objective).cast(pl.Float64).fill_nan(None).fill_null(-math.inf).to_numpy()
        return int(np.argmax(score))

    def add(self, bounds: tuple[int, int, int], info: Mapping[str, Any], table: pl.DataFrame, best: int,
            result: Result) -> None:
        t0, split, t1 = bounds
        oos = result.stats(periods_per_year=self.periods_per_year, returns="calendar")
        row: dict[str, Any] = {"fold": len(self.rows), "train_start": t0, "train_end": split, "test_start": split,
                               "test_end": t1, **info}
        for f in self.figures:
            row[f"is_{f}"] = table.get_column(f)[best]
            row[f"oos_{f}"] = oos[f]
        self.rows.append(row)
        self.results.append(result)
        self.training.append(table)
        self.cash = result.final_equity

    def finish(self, params: dict[str, Any]) -> WalkForward:
        folds = pl.DataFrame(self.rows, strict=False).with_columns(
            pl.col("train_start", "train_end", "test_start", "test_end").cast(_TS))
        equity = pl.concat([r.equity.with_columns(pl.lit(k, pl.Int64).alias("fold"))
                            for k, r in enumerate(self.results)])
        return WalkForward(folds=folds, equity=equity, results=self.results, training=self.training,
                           objective=self.objective, init_cash=self.init_cash, params=params)


def _bounds(start: int, end: int, train: Any, test: Any, step: Any, anchored: bool, instants: Any,
            lead: int = 0) -> tuple[list[tuple[int, int, int]], bool]:
    """Fold bounds by event count (integers; ``instants()`` gives the events) or by
    time (durations); raises when no fold fits. Also says whether by events."""
    by_events = _is_count(train) or _is_count(test)
    if by_events:
        if not (_is_count(train) and _is_count(test) and (step is None or _is_count(step))):
            raise ConfigError("train, test and step must all be event counts (integers) or all durations",
                              column="train")
        bounds = fold_bounds(start, end, train=int(train), test=int(test), step=int(step or test),
                             anchored=anchored, events=instants(), lead=lead)
    else:
        test_us = _us(test, "test")
        bounds = fold_bounds(start, end, train=_us(train, "train"), test=test_us,
                             step=_us(step, "step") if step is not None else test_us, anchored=anchored)
    if not bounds:
        raise ConfigError("no fold fits: the data are shorter than train + test", column="train")
    if any(b[1] < a[2] for a, b in zip(bounds, bounds[1:])):
        raise ConfigError("step is shorter than test: test windows would overlap and the out-of-sample equity "
                          "could not be stitched", column="step")
    return bounds, by_events


def _us(value: Any, name: str) -> int:
    try:
        return duration_us(value, name=name)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), column=name) from None


def _is_count(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _event_instants(events: Any, calendar: Any, parent: Sweep | None = None) -> np.ndarray:
    if events is None:
        if calendar is not None:
            events = calendar
        elif parent is not None:  # an orders frame: its distinct submission instants
            return np.unique(parent._base(parent.variants[0])[1]["submit_ts"])
    if isinstance(events, pl.DataFrame):
        if "release_ts" not in events.columns:
            raise InputError("events frame needs a release_ts column", column="events")
        events = events.get_column("release_ts")
    series = pl.Series("events", events) if not isinstance(events, pl.Series) else events
    if not isinstance(series.dtype, pl.Datetime) or series.dtype.time_zone is None:
        raise InputError(f"events must be time-zone aware datetimes, got {series.dtype}", column="events")
    if series.null_count():
        raise InputError("events hold a null", column="events", row=int(np.flatnonzero(series.is_null().to_numpy())[0]))
    return np.unique(series.dt.convert_time_zone("UTC").dt.epoch("us").to_numpy())


def _horizon(parent: Sweep, grid: Mapping[str, Sequence[Any]], config: Mapping[str, Any], bar_us: int) -> int:
    """Longest holding period of any order of any variant: latency + exit_after + two bars."""
    latencies = list(grid.get("latency", [config.get("latency", 0)]))
    latency = max(_us(v, "latency") for v in latencies)
    hold = -1
    if "exit_after" in grid:
        values = list(grid["exit_after"])
        if any(v is None for v in values):
            raise ConfigError("a variant has exit_after=None (no known holding period): pass purge=", column="purge")
        hold = max(_us(v, "exit_after") for v in values)
    else:
        seen: set[tuple] = set()
        for v in parent.variants:
            key = parent._key(v, parent._param_keys)
            if key in seen:
                continue
            seen.add(key)
            exits = parent._base(v)[1]["exit_after"]
            if len(exits) == 0:
                continue
            if (exits == np.iinfo(np.int64).min).any():
                raise ConfigError("some orders have no exit_after (no known holding period): pass purge=",
                                  column="purge")
            hold = max(hold, int(exits.max()))
        hold = max(hold, 0)
    return latency + hold + 2 * bar_us


@dataclass(frozen=True)
class Signals:
    """Entry/exit masks over one symbol's bars, for :func:`walk_forward` over
    :func:`aftershock.from_signals` settings: masks are arrays, lists or Series
    aligned with the symbol's bars (or names of boolean columns of the bars);
    ``settings`` are fixed ``from_signals`` arguments. The grid varies the
    settings ``from_signals`` accepts as lists (``sl_stop``, ``tp_stop``, ``fees``...)."""

    entries: Any = None
    exits: Any = None
    short_entries: Any = None
    short_exits: Any = None
    symbol: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


_MASKS = ("entries", "exits", "short_entries", "short_exits")


def _walk_signals(bars: Any, sig: Signals, grid: Mapping[str, Sequence[Any]], *, train: Any, test: Any, step: Any,
                  anchored: bool, objective: str, purge: Any, embargo: Any, events: Any, threads: int | None,
                  backend: str, periods_per_year: float) -> WalkForward:
    """Walk-forward over signal masks. A training window's entry signals (long and
    short) less than ``purge + embargo`` before the split are cleared; a position
    still open at a window's end is marked at its last close (``from_signals`` has
    no forced close) and the next window starts flat from that equity."""
    from aftershock.trading.signals import SWEEPABLE, _one_symbol, from_signals

    if backend != "local":
        raise ConfigError("backend='ray' runs orders sweeps; signal walk-forward runs locally", column="backend")
    bad = [k for k in grid if k not in SWEEPABLE or k == "init_cash"]
    if bad:
        raise ConfigError(f"grid key {bad[0]!r} is not a from_signals setting that can be swept "
                          f"({', '.join(k for k in SWEEPABLE if k != 'init_cash')})", column=bad[0])
    prepared, symbol = _one_symbol(bars, sig.symbol)
    frame = prepared.frame
    ts = prepared.arrays["ts"]
    n = len(ts)
    masks: dict[str, np.ndarray | None] = {}
    for name in _MASKS:
        value = getattr(sig, name)
        if isinstance(value, str):
            value = frame.get_column(value)
        if value is not None:
            arr = np.asarray(value.to_numpy() if isinstance(value, pl.Series) else value)
            if arr.dtype != np.bool_ or arr.shape != (n,):
                raise InputError(f"{name} must be a boolean mask of the symbol's {n} bars", column=name)
            value = arr
        masks[name] = value
    gaps = np.diff(ts)
    bar_us = int(gaps.min()) if gaps.size else 60_000_000
    start, end = int(ts[0]), int(ts[-1]) + bar_us
    def instants() -> np.ndarray:
        if events is None:
            raise ConfigError("signal walk-forward by event count needs events=", column="events")
        return _event_instants(events, None)

    bounds, by_events = _bounds(start, end, train, test, step, anchored, instants)
    horizon = _us(purge, "purge") if purge is not None else 0
    embargo_us = _us(embargo, "embargo")
    settings = dict(sig.settings)
    init_cash = float(settings.pop("init_cash", 100_000.0))
    out = _Folds(objective, init_cash, periods_per_year)
    lists: dict[str, Any] = {g: list(v) for g, v in grid.items()}
    for t0, split, t1 in bounds:
        lo, mid, hi = (int(np.searchsorted(ts, x, side="left")) for x in (t0, split, t1))
        fit_masks: dict[str, Any] = {}
        for name, m in masks.items():
            if m is None:
                fit_masks[name] = None
                continue
            part = m[lo:mid].copy()
            if name in ("entries", "short_entries") or (name == "exits" and sig.short_entries is None
                                                         and settings.get("direction") == "both"):
                part &= ts[lo:mid] + horizon + embargo_us <= split
            fit_masks[name] = part
        table = from_signals(frame.slice(lo, mid - lo), **fit_masks, **settings, init_cash=init_cash, **lists,
                             threads=threads)
        best = out.best(table, objective)
        test_masks: dict[str, Any] = {m: (v[mid:hi] if v is not None else None) for m, v in masks.items()}
        result = from_signals(frame.slice(mid, hi - mid), **test_masks, **settings, init_cash=out.cash, **lists,
                              variant=best)
        info = {"train_bars": mid - lo, "test_bars": hi - mid, "variant": best,
                **{g: table.get_column(g)[best] for g in grid}}
        out.add((t0, split, t1), info, table, best, result)
    return out.finish({"train": train, "test": test, "step": step, "anchored": anchored, "purge_us": horizon,
                       "embargo_us": embargo_us, "by": "events" if by_events else "time"})

def walk_forward(
    bars: Any,
    strategy: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    calendar: Any = None,
    train: Any,
    test: Any,
    step: Any = None,
    anchored: bool = False,
    objective: str = "sharpe",
    purge: Any = None,
    embargo: Any = "0s",
    events: Any = None,
    threads: int | None = None,
    backend: str = "local",
    periods_per_year: float = 365.0,
    **config: Any,
) -> WalkForward:
    """Walk-forward validation of a sweep (see the module doc for the boundary rule).

    Parameters
    ----------
    bars, strategy, grid, calendar, periods_per_year, config:
        As :class:`aftershock.Sweep`: a Strategy class (with ``calendar=``) or an
        orders frame, a grid of parameters, order columns and settings, fixed settings.
        Or :class:`Signals` (entry/exit masks) with a grid of ``from_signals``
        settings; then purging clears training entries within ``purge + embargo``
        of the split (``purge`` defaults to 0: signals have no known holding period).
    train, test, step:
        Durations (``"60d"``) to split by time, or integers to split by event count
        (``train`` events to fit, the next ``test`` to trade). ``step`` defaults to
        ``test`` (test windows tile the data without overlap).
    anchored:
        Training windows all start at the first bar (expanding) instead of rolling.
    objective:
        The :meth:`Result.stats` figure maximized on each training window.
    purge:
        The holding period used to purge (a duration); default: the longest
        ``latency + exit_after`` of the grid plus two bars.
    embargo:
        Extra buffer before each split (a duration, default ``"0s"``).
    events:
        For event counts: the release instants to count (a calendar frame, a Series or
        a list of datetimes). Default: the calendar's ``release_ts`` (a strategy) or
        the orders' ``submit_ts`` (an orders frame). Pass only the releases the
        strategy trades, e.g. ``calendar.filter(pl.col("indicator") == "CPI_YOY")``.
    threads, backend:
        As :meth:`Sweep.run` (``backend="ray"``: training sweeps on Ray workers).

    Returns
    -------
    WalkForward
    """
    from aftershock.trading.results import STATS_DOC

    if objective not in STATS_DOC or objective in ("start", "end"):
        raise ConfigError(f"objective must be a figure of Result.stats(), got {objective!r}", column="objective")
    if "init_cash" in grid:
        raise ConfigError("walk_forward chains init_cash from fold to fold: it cannot be a grid key", column="init_cash")
    if "close_at_end" in grid or "close_at_end" in config:
        raise ConfigError("walk_forward closes every window at its end: close_at_end is not a setting here",
                          column="close_at_end")
    if isinstance(strategy, Signals):
        if config or calendar is not None:
            raise ConfigError("with Signals, fixed settings go in Signals(settings=...)", column="config")
        return _walk_signals(bars, strategy, grid, train=train, test=test, step=step, anchored=anchored,
                             objective=objective, purge=purge, embargo=embargo, events=events, threads=threads,
                             backend=backend, periods_per_year=periods_per_year)
    parent = Sweep(bars, strategy, grid, calendar=calendar, periods_per_year=periods_per_year, **config)
    prepared = parent.bars
    ts = prepared.arrays["ts"]
    gaps = np.diff(np.sort(np.unique(ts)))
    bar_us = int(gaps.min()) if gaps.size else 60_000_000
    # the data run from the first bar's open to the last bar's close
    start, end = int(ts.min()), int(ts.max()) + bar_us

    lead = 0
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        leads = grid.get("decide_before", [getattr(strategy, "decide_before", "0s")])
        lead = max(_us(v, "decide_before") for v in leads)
    bounds, by_events = _bounds(start, end, train, test, step, anchored,
                                lambda: _event_instants(events, calendar, parent), lead)
    horizon = _us(purge, "purge") if purge is not None else _horizon(parent, grid, config, bar_us)
    embargo_us = _us(embargo, "embargo")
    if embargo_us < 0 or horizon < 0:
        raise ConfigError("purge and embargo must not be negative", column="embargo" if embargo_us < 0 else "purge")

    frame = prepared.frame
    ts_col = pl.col("ts").dt.epoch("us")
    out = _Folds(objective, float(config.get("init_cash", 100_000.0)), periods_per_year)
    for t0, split, t1 in bounds:
        train_bars = prepare_bars(frame.filter((ts_col >= t0) & (ts_col < split)))
        test_bars = prepare_bars(frame.filter((ts_col >= split) & (ts_col < t1)))
        fit = _Window(
            parent, train_bars,
            lambda s, t0=t0, split=split: training_mask(s, t0, split, horizon, embargo_us),
            {**config, "close_at_end": True},
        )
        table = fit.run(threads=threads, backend=backend)
        best = out.best(table, objective)
        trade = _Window(
            parent, test_bars,
            lambda s, split=split, t1=t1: (np.asarray(s) >= split) & (np.asarray(s) < t1),
            {**config, "init_cash": out.cash, "close_at_end": True},
        )
        result = trade.result(best)
        variant = parent.variants[best]
        key = parent._key(variant, parent._param_keys)
        submitted = parent._base(variant)[1]["submit_ts"]
        used = fit.kept.get(key, 0)
        candidates = int(((submitted >= t0) & (submitted < split)).sum())
        info = {"train_orders": used, "purged_orders": candidates - used, "test_orders": trade.kept.get(key, 0),
                "variant": best, **{g: variant[g] for g in parent._keys}}
        out.add((t0, split, t1), info, table, best, result)
    return out.finish({"train": train, "test": test, "step": step, "anchored": anchored, "purge_us": horizon,
                       "embargo_us": embargo_us, "by": "events" if by_events else "time"})
