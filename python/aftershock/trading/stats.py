"""The labelled, formatted stats of a backtest and the figures added to the original keys.

:class:`Stats` is a read-only mapping: ``stats["total_return"]`` and ``dict(stats)``
work as they did when ``Result.stats()`` returned a plain dict; what it adds is a
label and a unit per key, a formatted ``repr`` (percentages as percentages, durations
as durations) and conversions to a dict or a Polars frame. Definitions: docs/stats.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np
import polars as pl

from aftershock.errors import ConfigError

__all__ = ["Stats", "FIELDS", "Conventions", "AFTERSHOCK", "BACKTESTING_PY", "resolve_conventions", "resolve_sampling", "extra_figures", "convention_figures"]

# key -> (label, kind). kind decides the formatting: pct, money, ratio, count,
# duration, time, text, number.
FIELDS: dict[str, tuple[str, str]] = {
    "start": ("Start", "time"),
    "end": ("End", "time"),
    "duration": ("Duration", "duration"),
    "exposure": ("Exposure time", "pct"),
    "init_cash": ("Initial cash", "money"),
    "final_equity": ("Final equity", "money"),
    "equity_peak": ("Equity peak", "money"),
    "total_fees": ("Fees paid", "money"),
    "total_return": ("Return", "pct"),
    "benchmark": ("Benchmark", "text"),
    "buy_hold_return": ("Buy & hold return", "pct"),
    "return_ann": ("Return (annualized)", "pct"),
    "volatility_ann": ("Volatility (annualized)", "pct"),
    "cagr": ("CAGR", "pct"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "calmar": ("Calmar ratio", "ratio"),
    "alpha": ("Alpha", "pct"),
    "beta": ("Beta", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "avg_drawdown": ("Average drawdown", "pct"),
    "max_drawdown_duration": ("Max drawdown duration", "duration"),
    "avg_drawdown_duration": ("Average drawdown duration", "duration"),
    "trades": ("Trades (closed)", "count"),
    "open_trades": ("Trades still open", "count"),
    "win_rate": ("Win rate", "pct"),
    "best_trade": ("Best trade", "pct"),
    "worst_trade": ("Worst trade", "pct"),
    "avg_trade_return": ("Average trade", "pct"),
    "expectancy": ("Expectancy", "pct"),
    "max_trade_duration": ("Max trade duration", "duration"),
    "avg_trade_duration": ("Average trade duration", "duration"),
    "profit_factor": ("Profit factor", "ratio"),
    "sqn": ("SQN", "ratio"),
    "kelly": ("Kelly criterion", "pct"),
    "periods_per_year": ("Periods per year", "number"),
    "return_sampling": ("Return sampling", "text"),
    "conventions": ("Conventions", "text"),
    "risk_free": ("Risk-free rate (annual)", "pct"),
    "bars_visited": ("Bars visited by the engine", "count"),
}

# Return sampling -> the annualization that goes with it.
_SAMPLING_PERIODS = {"calendar": 365.0, "trading": 252.0}


def resolve_sampling(periods_per_year: float | None, returns: str | None) -> tuple[str, float]:
    """The return sampling and the periods per year, never one without the other.

    ``periods_per_year=252`` alone means trading-day returns, ``365`` calendar-day
    returns; any other number needs ``returns=`` to say what it counts.
    """
    if returns is not None and returns not in _SAMPLING_PERIODS:
        raise ConfigError(f"returns must be 'calendar' or 'trading', got {returns!r}", column="returns")
    if periods_per_year is not None:
        if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(periods_per_year) and periods_per_year > 0):
            raise ConfigError(f"periods_per_year must be a finite number > 0, got {periods_per_year!r}",
                              column="periods_per_year")
    if returns is None and periods_per_year is None:
        return "calendar", 365.0
    if returns is None:
        for name, n in _SAMPLING_PERIODS.items():
            if float(periods_per_year) == n:  # type: ignore[arg-type]
                return name, n
        raise ConfigError(
            f"periods_per_year={periods_per_year!r} does not say which returns it annualizes: pass "
            "returns='calendar' (one return per calendar day) or returns='trading' (one per day with bars) too, "
            "or use 365 / 252",
            column="periods_per_year",
        )
    return returns, float(periods_per_year) if periods_per_year is not None else _SAMPLING_PERIODS[returns]


@dataclasses.dataclass(frozen=True)
class Conventions:
    """How :meth:`Result.stats` computes the figures on which peers disagree.

    Two named sets: :data:`AFTERSHOCK` (the default) and :data:`BACKTESTING_PY`
    (``stats(conventions="backtesting.py")``); mix them with
    ``dataclasses.replace(AFTERSHOCK, avg_trade="geometric")``. docs/stats.md defines
    each choice.
    """

    #: ``"calendar"``: equity at the end of every UTC day; ``"trading"``: only days with bars
    returns: str = "calendar"
    #: annualization; ``None``: 365 for calendar days, 252 for trading days; ``"weekends"``:
    #: 365 when bars trade on weekends, else 252 (backtesting.py's rule)
    periods_per_year: float | str | None = None
    #: ``"arithmetic"``: Sharpe, Sortino, volatility from the mean and standard deviation of
    #: periodic returns; ``"compounded"``: backtesting.py's, from their geometric mean
    risk: str = "arithmetic"
    #: average trade return: ``"arithmetic"`` or ``"geometric"``
    avg_trade: str = "arithmetic"
    #: gross profit over gross loss in ``"money"`` (pnl) or in ``"returns"`` (sums of returns)
    profit_factor: str = "money"
    #: ``"time"``: share of the span with a position; ``"bars"``: share of bars from a
    #: closed trade's entry bar to its exit bar, inclusive
    exposure: str = "time"
    #: CAGR's year: ``"365d"``, or ``"periods"``: ``periods_per_year`` days
    year: str = "365d"
    #: mean durations ``"exact"`` (to the microsecond) or rounded up to the ``"bar"`` resolution
    durations: str = "exact"
    #: total_fees of ``"all"`` fills or of ``"closed"`` trades only
    fees: str = "all"
    #: alpha's risk-free rate ``"compounded"`` over the span, or the annual rate as is (``"simple"``)
    alpha_risk_free: str = "compounded"
    #: the name reported in stats["conventions"]
    name: str = "custom"

    def __post_init__(self) -> None:
        choices = {
            "returns": ("calendar", "trading"),
            "risk": ("arithmetic", "compounded"),
            "avg_trade": ("arithmetic", "geometric"),
            "profit_factor": ("money", "returns"),
            "exposure": ("time", "bars"),
            "year": ("365d", "periods"),
            "durations": ("exact", "bar"),
            "fees": ("all", "closed"),
            "alpha_risk_free": ("compounded", "simple"),
        }
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ConfigError(f"conventions.{field} must be one of {allowed}, got {getattr(self, field)!r}", column=field)
        ppy = self.periods_per_year
        if not (ppy is None or ppy == "weekends" or (isinstance(ppy, (int, float)) and not isinstance(ppy, bool) and ppy > 0)):
            raise ConfigError(f"conventions.periods_per_year must be None, 'weekends' or a number > 0, got {ppy!r}", column="periods_per_year")


AFTERSHOCK = Conventions(name="aftershock")
BACKTESTING_PY = Conventions(
    name="backtesting.py", returns="trading", periods_per_year="weekends", risk="compounded", avg_trade="geometric",
    profit_factor="returns", exposure="bars", year="periods", durations="bar", fees="closed", alpha_risk_free="simple",
)
_NAMED = {"aftershock": AFTERSHOCK, "backtesting.py": BACKTESTING_PY, "backtesting_py": BACKTESTING_PY}


def resolve_conventions(conventions: Any) -> Conventions:
    if conventions is None:
        return AFTERSHOCK
    if isinstance(conventions, Conventions):
        return conventions
    if isinstance(conventions, str) and conventions in _NAMED:
        return _NAMED[conventions]
    raise ConfigError(
        f"conventions must be 'aftershock', 'backtesting.py' or a Conventions, got {conventions!r}", column="conventions"
    )


def computes_as_aftershock(conv: Conventions) -> bool:
    """Whether ``conv`` computes every figure as aftershock's own conventions do, its
    annualization aside (a ``dataclasses.replace`` of :data:`AFTERSHOCK` keeps the
    name "aftershock" whatever it changes: the fields decide)."""
    return dataclasses.replace(conv, name=AFTERSHOCK.name, periods_per_year=None) == AFTERSHOCK


def engine_conventions(conv: Conventions) -> dict[str, Any]:
    """A :class:`Conventions` as the engine reads it: field -> choice (the
    annualization is resolved before, ``periods_per_year`` of the sweep functions)."""
    fields = ("returns", "risk", "avg_trade", "profit_factor", "exposure", "year", "durations", "fees", "alpha_risk_free")
    return {f: getattr(conv, f) for f in fields}


def _weekend_share(ts_us: np.ndarray) -> float:
    weekday = (ts_us // 86_400_000_000 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return float(np.mean(weekday >= 5)) if len(ts_us) else 0.0


def conventions_sampling(conv: Conventions, ts_us: np.ndarray) -> tuple[str, float]:
    """The return sampling and annualization a set of conventions implies for these bars."""
    ppy = conv.periods_per_year
    if ppy == "weekends":
        # backtesting.py: 365 when more than 60% of a 7-day week's weekend share of bars
        # falls on Saturdays and Sundays, else 252
        return conv.returns, 365.0 if _weekend_share(ts_us) > 2 / 7 * 0.6 else 252.0
    if ppy is None:
        return conv.returns, _SAMPLING_PERIODS[conv.returns]
    return conv.returns, float(ppy)


def _bar_resolution_us(timeline: np.ndarray) -> int:
    """backtesting.py's rounding unit for durations: the resolution of the median spacing
    of the last 100 bars (the largest of day, hour, minute, second, ms, us dividing it)."""
    if len(timeline) < 2:
        return 1
    period = int(np.median(np.diff(timeline[-100:])))
    for unit in (86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000, 1_000, 1):
        if period % unit == 0:
            return unit
    return 1


def _ceil_us(total_us: float, unit: int) -> dt.timedelta:
    return dt.timedelta(microseconds=int(math.ceil(total_us / unit)) * unit)


def _geometric_mean(r: np.ndarray) -> float:
    """backtesting.py's geometric mean of returns: NaN counts as 0, a loss of 100% or more gives 0."""
    g = np.nan_to_num(r, nan=0.0) + 1.0
    if not len(g):
        return float("nan")
    if np.any(g <= 0):
        return 0.0
    return float(np.exp(np.log(g).sum() / len(g)) - 1.0)


@np.errstate(divide="ignore", invalid="ignore")
def convention_figures(
    conv: Conventions,
    base: Mapping[str, Any],
    *,
    daily: np.ndarray,
    periods_per_year: float,
    risk_free: float,
    closed: pl.DataFrame,
    bar_ts: np.ndarray,
    bar_offsets: np.ndarray,
    eq_ts: np.ndarray,
    eq_values: np.ndarray,
    start_us: int,
    end_us: int,
    init: float,
    bench_close: np.ndarray | None,
    warmup: int,
) -> dict[str, Any]:
    """The figures that ``conv`` computes differently from :data:`AFTERSHOCK`, given the
    figures ``base`` computed the default way."""
    out: dict[str, Any] = {}
    final = float(base["final_equity"])
    ret = closed.get_column("return").to_numpy()
    n_trades = len(ret)
    if conv.risk == "compounded":
        # backtesting.py: r = day-to-day changes of the sampled equity; the geometric mean
        # counts the first day as a zero return; dispersion skips it
        r = daily[1:] / daily[:-1] - 1.0 if len(daily) else np.empty(0)
        g = _geometric_mean(np.concatenate([[np.nan], r])) if len(daily) else float("nan")
        n = periods_per_year
        ann = (1.0 + g) ** n - 1.0 if math.isfinite(g) else float("nan")
        var = float(np.var(r, ddof=1)) if len(r) >= 2 else float("nan")
        # a flat curve can round the difference below 0: no volatility (NaN, as np.sqrt gives backtesting.py)
        vol_sq = (var + (1.0 + g) ** 2) ** n - (1.0 + g) ** (2 * n) if math.isfinite(var) else float("nan")
        vol = math.sqrt(vol_sq) if vol_sq >= 0 else float("nan")
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(n) if len(r) else float("nan")
        out["return_ann"] = ann if math.isfinite(ann) else None
        out["volatility_ann"] = vol if math.isfinite(vol) else None
        out["sharpe"] = (ann - risk_free) / vol if math.isfinite(vol) and vol > 0 and math.isfinite(ann) else None
        out["sortino"] = (ann - risk_free) / downside if math.isfinite(downside) and downside > 0 and math.isfinite(ann) else None
        max_dd = base["max_drawdown"]
        out["calmar"] = ann / -max_dd if max_dd < 0 and math.isfinite(ann) else None
    if conv.year == "periods":
        years = (end_us - start_us) / 86_400e6 / periods_per_year
        out["cagr"] = _power_minus_one(final / init, 1.0 / years) if years > 0 and final > 0 and init > 0 else None
    if conv.avg_trade == "geometric":
        out["avg_trade_return"] = _geometric_mean(ret) if n_trades else None
    if conv.profit_factor == "returns":
        loss = -ret[ret < 0].sum()
        out["profit_factor"] = float(ret[ret > 0].sum() / loss) if loss > 0 else None
    timeline = np.unique(bar_ts)
    if conv.exposure == "bars":
        held = np.zeros(len(timeline) + 1, dtype=np.int64)
        entry = np.searchsorted(timeline, closed.get_column("entry_ts").dt.epoch("us").to_numpy())
        exit_ = np.searchsorted(timeline, closed.get_column("exit_ts").dt.epoch("us").to_numpy())
        np.add.at(held, entry, 1)
        np.add.at(held, exit_ + 1, -1)
        out["exposure"] = float(np.mean(np.cumsum(held)[:-1] > 0))
    if conv.fees == "closed":
        out["total_fees"] = float(closed.get_column("fees").sum())
    if bench_close is not None and len(bench_close) and warmup:
        first = min(int(warmup), len(bench_close) - 1)
        out["buy_hold_return"] = float(bench_close[-1] / bench_close[first] - 1.0)
    bh = out.get("buy_hold_return", base.get("buy_hold_return"))
    if (conv.alpha_risk_free == "simple" or "buy_hold_return" in out) and base.get("beta") is not None and bh is not None:
        years = (end_us - start_us) / (365 * 86_400e6)
        rf = risk_free if conv.alpha_risk_free == "simple" else (1.0 + risk_free) ** years - 1.0
        out["alpha"] = (final / init - 1.0 - rf) - base["beta"] * (bh - rf)
    if conv.durations == "bar":
        unit = _bar_resolution_us(timeline)
        _, length, _ = _drawdown_episodes(eq_ts, eq_values, start_us, end_us, init, bar_ts, bar_offsets)
        held_us = (closed.get_column("exit_ts") - closed.get_column("entry_ts")).dt.total_microseconds().to_numpy()
        for key, values in (("drawdown_duration", length), ("trade_duration", held_us)):
            out[f"max_{key}"] = _ceil_us(float(values.max()), unit) if len(values) else None
            out[f"avg_{key}"] = _ceil_us(float(np.sum(values)) / len(values), unit) if len(values) else None
    return out


def _previous_bar(ts_all: np.ndarray, offsets: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The latest bar open time (any symbol) strictly before each of ``t``; each
    symbol's block of ``ts_all`` is sorted, so this is one binary search per symbol."""
    best = np.full(len(t), np.iinfo(np.int64).min, dtype=np.int64)
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        seg = ts_all[lo:hi]
        i = np.searchsorted(seg, t, side="left") - 1
        best = np.maximum(best, np.where(i >= 0, seg[np.maximum(i, 0)], best))
    return best


def _drawdown_episodes(
    eq_ts: np.ndarray, eq_values: np.ndarray, start_us: int, end_us: int, init: float, ts_all: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Depth and length of each drawdown episode, and the deepest bar-by-bar drawdown,
    from the engine's equity rows (equity is flat between them, so this is the bar-by-bar
    answer without visiting every bar).

    An episode runs from the last bar at a peak — the bar just before the first row below
    it — to the first row back at the peak, or to the last bar when it never recovers."""
    if len(eq_ts) == 0 or eq_ts[0] > start_us:
        eq_ts, eq_values = np.concatenate([[start_us], eq_ts]), np.concatenate([[init], eq_values])
    last = np.append(eq_ts[1:] != eq_ts[:-1], True)  # the last row of each timestamp is the bar's equity
    ts, values = eq_ts[last], eq_values[last]
    if ts[-1] < end_us:  # flat to the last bar: a drawdown still open there lasts until it
        ts, values = np.append(ts, end_us), np.append(values, values[-1])
    dd = values / np.maximum.accumulate(values) - 1.0
    marks = np.unique(np.append(np.flatnonzero(dd == 0), len(dd) - 1))
    prev, nxt = marks[:-1], marks[1:]
    keep = nxt > prev + 1
    prev, nxt = prev[keep], nxt[keep]
    if not len(prev):
        return np.empty(0), np.empty(0, dtype=np.int64), float(dd.min())
    # rows between one episode's end and the next one's start are at the peak (dd == 0);
    # a fall at the last row alone is no episode (backtesting.py's rule), nor part of the
    # episode before it
    depth = np.minimum.reduceat(dd[: nxt[-1] + 1], prev + 1)
    starts = _previous_bar(ts_all, offsets, ts[prev + 1])
    return depth, ts[nxt] - starts, float(dd.min())


def _sparse_cov(eq_ts: np.ndarray, eq_values: np.ndarray, init: float, bench_ts: np.ndarray, r_b: np.ndarray) -> float:
    """Sample covariance of the per-bar log returns of equity and of the benchmark, on
    the benchmark's bars. Equity moves only at the engine's rows, so its log return is
    zero on all but a few bars: the sum of products runs over those bars only."""
    # equity on benchmark bar i: the last row at or before bench_ts[i] (init before any)
    at = np.searchsorted(bench_ts, eq_ts, side="left")  # first bench bar each row applies to
    change = np.append(at[1:] != at[:-1], True) & (at < len(bench_ts))
    bars, vals = at[change], eq_values[change]
    before = np.concatenate([[init], vals[:-1]])
    moved = (bars >= 1) & (vals != before)
    r_e_at = np.log(vals[moved] / before[moved])  # the return from bar i-1 to bar i
    n = len(r_b)
    first = init if not len(bars) or bars[0] > 0 else float(vals[0])
    last = float(vals[-1]) if len(vals) else init
    mean_e = math.log(last / first) / n
    cross = float(np.dot(r_e_at, r_b[bars[moved] - 1]))
    return (cross - n * mean_e * float(r_b.mean())) / (n - 1)


def _power_minus_one(base: float, exponent: float) -> float | None:
    """``base ** exponent - 1``; null when it overflows (a short span annualized)."""
    try:
        value = base**exponent - 1.0
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


@np.errstate(divide="ignore", invalid="ignore")  # init_cash=0 (vectorbt allows it): NaN, not a warning
def extra_figures(
    *,
    init: float,
    final: float,
    start_us: int,
    end_us: int,
    bar_ts: np.ndarray,
    bar_offsets: np.ndarray,
    eq_ts: np.ndarray,
    eq_values: np.ndarray,
    rets: np.ndarray,
    periods_per_year: float,
    risk_free: float,
    closed: pl.DataFrame,
    bench_ts: np.ndarray | None,
    bench_close: np.ndarray | None,
) -> dict[str, Any]:
    """The figures a backtesting.py user expects beyond the original keys."""
    us = dt.timedelta(microseconds=1)
    out: dict[str, Any] = {"duration": (end_us - start_us) * us}
    out["equity_peak"] = float(np.max(np.concatenate([[init], eq_values])))

    depth, length, max_dd = _drawdown_episodes(eq_ts, eq_values, start_us, end_us, init, bar_ts, bar_offsets)
    out["avg_drawdown"] = float(depth.mean()) if len(depth) else None
    out["max_drawdown_duration"] = int(length.max()) * us if len(length) else None
    out["avg_drawdown_duration"] = int(round(float(length.mean()))) * us if len(length) else None

    # Periodic returns, as sampled for the Sharpe ratio.
    n = len(rets)
    rf_period = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    growth = float(np.prod(1.0 + rets)) if n else float("nan")
    out["return_ann"] = _power_minus_one(growth, periods_per_year / n) if n and growth > 0 else None
    vol = float(np.std(rets, ddof=1)) if n >= 2 else float("nan")
    out["volatility_ann"] = vol * math.sqrt(periods_per_year) if n >= 2 else None
    years = (end_us - start_us) / (365 * 86_400e6)
    out["cagr"] = _power_minus_one(final / init, 1.0 / years) if years > 0 and final > 0 and init > 0 else None
    downside = float(np.sqrt(np.mean(np.minimum(rets - rf_period, 0.0) ** 2))) if n >= 2 else 0.0
    out["sortino"] = float(np.mean(rets - rf_period) / downside * math.sqrt(periods_per_year)) if downside > 0 else None
    out["calmar"] = out["return_ann"] / -max_dd if out["return_ann"] is not None and max_dd < 0 else None

    # Benchmark: buy and hold of one symbol, and the strategy's beta to it.
    out["buy_hold_return"] = None
    out["alpha"] = None
    out["beta"] = None
    if bench_close is not None and bench_ts is not None and len(bench_close) >= 1:
        bh = float(bench_close[-1] / bench_close[0] - 1.0)
        out["buy_hold_return"] = bh
        if len(bench_close) >= 3 and init > 0:
            r_b = np.diff(np.log(bench_close))
            var_b = float(np.var(r_b, ddof=1))
            if var_b > 0:
                beta = _sparse_cov(eq_ts, eq_values, init, bench_ts, r_b) / var_b
                rf_total = (1.0 + risk_free) ** years - 1.0
                out["beta"] = beta
                out["alpha"] = (final / init - 1.0 - rf_total) - beta * (bh - rf_total)

    # Closed trades.
    ret = closed.get_column("return").to_numpy()
    pnl = closed.get_column("pnl").to_numpy()
    held = (closed.get_column("exit_ts") - closed.get_column("entry_ts")).dt.total_microseconds().to_numpy()
    k = len(pnl)
    out["best_trade"] = float(ret.max()) if k else None
    out["worst_trade"] = float(ret.min()) if k else None
    out["max_trade_duration"] = int(held.max()) * us if k else None
    out["avg_trade_duration"] = int(round(float(held.mean()))) * us if k else None
    sd = float(np.std(pnl, ddof=1)) if k >= 2 else 0.0
    out["sqn"] = float(math.sqrt(k) * pnl.mean() / sd) if sd > 0 else None
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    if len(wins) and len(losses):
        w = len(wins) / k
        out["kelly"] = float(w - (1.0 - w) / (wins.mean() / -losses.mean()))
    else:
        out["kelly"] = None
    return out


def _duration(v: dt.timedelta) -> str:
    total = v.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{int(days)}d")
    if hours:
        parts.append(f"{int(hours)}h")
    if minutes:
        parts.append(f"{int(minutes)}m")
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return sign + " ".join(parts)


def format_value(value: Any, kind: str) -> str:
    """One figure as text: percentages with a % sign, durations as ``1d 2h 3m``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "ratio":
        return f"{value:,.3f}"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "duration" or isinstance(value, dt.timedelta):
        return _duration(value)
    if kind == "time" or isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


class Stats(Mapping):
    """Headline figures of a backtest: a read-only mapping key -> value, labelled.

    ``stats["sharpe"]``, ``dict(stats)`` and ``{**stats}`` behave like the plain dict
    ``Result.stats()`` used to return; ``stats.label("sharpe")``, ``stats.formatted()``,
    ``stats.to_frame()`` and the Jupyter/terminal display add the labels and units.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._values) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def label(key: str) -> str:
        return FIELDS.get(key, (key, "number"))[0]

    @staticmethod
    def kind(key: str) -> str:
        return FIELDS.get(key, (key, "number"))[1]

    def _ordered(self) -> list[str]:
        known = [k for k in FIELDS if k in self._values]
        return known + [k for k in self._values if k not in FIELDS]

    def formatted(self) -> dict[str, str]:
        """Key -> the value as displayed (``"12.34%"``, ``"2d 3h"``)."""
        return {k: format_value(self._values[k], self.kind(k)) for k in self._ordered()}

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, in the original key order."""
        return dict(self._values)

    def to_frame(self) -> pl.DataFrame:
        """One row, one typed column per key (like a row of :func:`aftershock.trading.sweep`)."""
        return pl.DataFrame([self._values])

    def table(self) -> pl.DataFrame:
        """Long form: key, label, formatted value — what ``repr`` shows."""
        keys = self._ordered()
        fmt = self.formatted()
        return pl.DataFrame({"key": keys, "figure": [self.label(k) for k in keys], "value": [fmt[k] for k in keys]})

    def __repr__(self) -> str:
        fmt = self.formatted()
        width = max(len(self.label(k)) for k in fmt) if fmt else 0
        return "\n".join(f"{self.label(k):<{width}}  {v}" for k, v in fmt.items())

    def _repr_html_(self) -> str:
        rows = "".join(
            f'<tr><th style="text-align:left">{html.escape(self.label(k))}</th>'
            f'<td style="text-align:right;font-variant-numeric:tabular-nums">{html.escape(v)}</td>'
            f'<td style="color:#6a737d"><code>{html.escape(k)}</code></td></tr>'
            for k, v in self.formatted().items()
        )
        return f'<table class="aftershock-stats">{rows}</table>'
