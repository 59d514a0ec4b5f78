"""Property testing for your own strategies, with hypothesis.

Hypothesis strategies that draw valid inputs, and ready properties to call on them::

    from hypothesis import given, settings
    import aftershock.testing as asht
    from cpi_fade import CpiFade

    @settings(max_examples=50, deadline=None)
    @given(case=asht.point_in_time_cases(symbols=("BTC",), indicators=("CPI_YOY", "PPI_YOY")))
    def test_cpi_fade_is_point_in_time(case):
        asht.assert_point_in_time(CpiFade(threshold=0.1), case)

Drawn inputs:

- :func:`bars` — 1-minute (or ``interval``) OHLC bars for several symbols, with
  optional gaps (missing bars) and daily session breaks;
- :func:`calendars` — scheduled macro releases (registry indicators, consensus,
  actuals, previous, free-text ``source`` quoting the figure) and unscheduled policy
  events, with every time precision;
- :func:`markets` — bars and a calendar over the same span; :func:`orders_frames` —
  valid orders frames for given bars;
- :func:`point_in_time_cases` — a market, a cut instant, and the same market with
  everything published after the cut changed.

Properties (each raises ``AssertionError`` naming what broke):

- :func:`assert_point_in_time` — changing anything published after the cut changes no
  order submitted at or before it;
- :func:`assert_accounting_identity` — cash plus marked positions equals equity, and
  equity moves by exactly the trades' P&L net of fees;
- :func:`assert_fills_within_bars` — every fill inside its bar's range (before slippage),
  never before the order could trade;
- :func:`assert_deterministic` — the same run twice, and on 1 and 2 threads, is bit-identical.

This module needs ``hypothesis`` (``pip install 'aftershock[testing]'``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without hypothesis
    raise ImportError("aftershock.testing needs hypothesis: pip install 'aftershock[testing]'") from exc

from aftershock.calendar._pit import with_publication
from aftershock.calendar._registry import INDICATORS
from aftershock.calendar._schema import validate_calendar

__all__ = [
    "Market",
    "PointInTimeCase",
    "bars",
    "calendars",
    "markets",
    "orders_frames",
    "point_in_time_cases",
    "assert_point_in_time",
    "assert_accounting_identity",
    "assert_fills_within_bars",
    "assert_deterministic",
]

UTC = dt.timezone.utc
_DEFAULT_START = dt.datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
_US = dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Market:
    """Bars and a calendar over the same span."""

    bars: pl.DataFrame
    calendar: pl.DataFrame


@dataclasses.dataclass(frozen=True)
class PointInTimeCase:
    """A market, a cut instant, and the market with everything published after the
    cut changed (outcomes, unscheduled events, bars that closed after it)."""

    market: Market
    cut: dt.datetime
    perturbed: Market


# ----------------------------------------------------------------------------- bars


def _walk(rng: np.random.Generator, n: int, start: float) -> tuple[np.ndarray, ...]:
    closes = start * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    opens = np.r_[start, closes[:-1]] * np.exp(rng.normal(0.0, 0.0005, n))
    wick = np.abs(rng.normal(0.0, 0.001, (2, n)))
    highs = np.maximum(opens, closes) * (1 + wick[0])
    lows = np.minimum(opens, closes) * (1 - wick[1])
    return opens, highs, lows, closes


@st.composite
def bars(
    draw: Any,
    symbols: Sequence[str] = ("BTC", "ETH"),
    *,
    start: dt.datetime = _DEFAULT_START,
    days: int = 3,
    interval: dt.timedelta = dt.timedelta(minutes=1),
    gaps: bool = True,
    sessions: bool = False,
) -> pl.DataFrame:
    """Valid bars for ``symbols`` (grouped by symbol, strictly increasing ``ts``) over
    ``days`` days: random walks with consistent OHLC, missing bars when ``gaps``, and a
    daily one-hour break (21:00-22:00 UTC, as CME equity futures) when ``sessions``."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = int(dt.timedelta(days=days) / interval)
    naive = start.astimezone(UTC).replace(tzinfo=None)
    grid = np.array([naive + k * interval for k in range(n)], dtype="datetime64[us]")
    frames = []
    for k, sym in enumerate(symbols):
        keep = np.ones(n, dtype=bool)
        if gaps and draw(st.booleans()):
            keep &= rng.random(n) > draw(st.sampled_from([0.01, 0.05, 0.2]))
        if sessions:
            hours = (grid.astype("datetime64[h]").astype(np.int64)) % 24
            keep &= hours != 21
        keep[0] = True
        ts = grid[keep]
        o, h, low, c = _walk(rng, ts.size, draw(st.sampled_from([100.0, 2_500.0, 95_000.0])))
        frames.append(
            pl.DataFrame({"ts": ts, "symbol": sym, "open": o, "high": h, "low": low, "close": c}).with_columns(
                pl.col("ts").dt.replace_time_zone("UTC")
            )
        )
    return pl.concat(frames)


# ----------------------------------------------------------------------------- calendars

_POLICY_TEXT = ("tariff order", "reserve order", "regulatory notice", "stablecoin launch")


@st.composite
def calendars(
    draw: Any,
    *,
    start: dt.datetime = _DEFAULT_START,
    days: int = 3,
    indicators: Sequence[str] = ("CPI_YOY", "PPI_YOY", "NFP", "UNRATE"),
    max_events: int = 12,
    policy: bool = True,
) -> pl.DataFrame:
    """A valid calendar inside ``[start, start + days)``: scheduled releases of
    ``indicators`` (consensus, actual, previous, a ``source`` text quoting the actual)
    and, with ``policy``, unscheduled policy events; every ``time_precision``."""
    for code in indicators:
        if code not in INDICATORS:
            raise ValueError(f"unknown indicator {code!r}; known: {sorted(INDICATORS)}")
    span_min = days * 24 * 60
    n = draw(st.integers(1, max_events))
    rows = []
    for k in range(n):
        is_policy = policy and draw(st.integers(0, 3)) == 0
        minute = draw(st.integers(0, span_min - 1))
        precision = draw(st.sampled_from(["exact", "exact", "hour", "day"]))
        release = start + dt.timedelta(minutes=minute)
        if precision == "hour":
            release = release.replace(minute=0)
        elif precision == "day":
            release = release.replace(hour=0, minute=0)
        if is_policy:
            rows.append({
                "event_id": f"POL-{k}", "kind": "policy", "indicator": None, "release_ts": release,
                "actual": None, "consensus": None, "previous": None,
                "title": draw(st.sampled_from(_POLICY_TEXT)), "direction": draw(st.sampled_from([-1.0, -0.5, 0.5, 1.0])),
                "source": "headline", "time_precision": precision,
            })
            continue
        code = draw(st.sampled_from(list(indicators)))
        consensus = round(draw(st.floats(-5, 300, allow_nan=False)), 1)
        actual = round(consensus + draw(st.floats(-3, 3, allow_nan=False)), 1)
        rows.append({
            "event_id": f"{code}-{k}", "kind": "macro", "indicator": code, "release_ts": release,
            "actual": actual, "consensus": consensus, "previous": round(consensus + draw(st.floats(-1, 1)), 1),
            "title": None, "direction": None, "source": f"{code} printed {actual} vs {consensus} expected",
            "time_precision": precision,
        })
    return validate_calendar(pl.DataFrame(rows, schema_overrides={"release_ts": pl.Datetime("us", "UTC")}))


@st.composite
def markets(
    draw: Any,
    symbols: Sequence[str] = ("BTC", "ETH"),
    *,
    indicators: Sequence[str] = ("CPI_YOY", "PPI_YOY", "NFP", "UNRATE"),
    days: int = 3,
    sessions: bool = False,
    policy: bool = True,
) -> Market:
    """Bars and a calendar over the same ``days``."""
    return Market(
        bars=draw(bars(symbols, days=days, sessions=sessions)),
        calendar=draw(calendars(days=days, indicators=indicators, policy=policy)),
    )


@st.composite
def orders_frames(draw: Any, bars: pl.DataFrame, *, max_orders: int = 8) -> pl.DataFrame:
    """A valid orders frame for ``bars``: market, limit, stop and market-on-close
    orders with optional brackets, submitted inside the bars' span."""
    symbols = bars.get_column("symbol").unique(maintain_order=True).to_list()
    ts = bars.get_column("ts")
    lo, hi = ts.min(), ts.max()
    span = int((hi - lo) / _US)
    ref = bars.group_by("symbol").agg(pl.col("close").median()).rows()
    price = dict(ref)
    rows = []
    for _ in range(draw(st.integers(1, max_orders))):
        sym = draw(st.sampled_from(symbols))
        kind = draw(st.sampled_from(["market", "market", "limit", "stop", "market_on_close"]))
        side = draw(st.sampled_from(["buy", "sell"]))
        level = price[sym] * draw(st.floats(0.97, 1.03))
        rows.append({
            "submit_ts": lo + dt.timedelta(microseconds=draw(st.integers(0, span))),
            "symbol": sym, "side": side, "qty": draw(st.sampled_from([0.1, 1.0, 3.0])),
            "order_type": kind,
            "limit_price": level if kind == "limit" else None,
            "stop_price": level if kind == "stop" else None,
            "stop_loss": draw(st.sampled_from([None, 0.01, 0.05])),
            "take_profit": draw(st.sampled_from([None, 0.01, 0.05])),
            "exit_after": draw(st.sampled_from([None, "5m", "1h"])),
        })
    return pl.DataFrame(rows, schema_overrides={"submit_ts": pl.Datetime("us", "UTC")})


# ----------------------------------------------------------------------------- perturbation


def _perturb_calendar(cal: pl.DataFrame, cut: dt.datetime, rng: np.random.Generator, extra_policy: int) -> pl.DataFrame:
    pub = with_publication(cal)
    later = (pl.col("known_ts") > cut).alias("_later")
    n = cal.height
    noise = pl.Series("_noise", rng.normal(0.0, 2.0, n).round(1))
    changed = pub.with_columns(later, noise).with_columns(
        pl.when("_later").then(pl.col("actual") + pl.col("_noise")).otherwise(pl.col("actual")).alias("actual"),
        pl.when("_later").then(pl.col("previous") - pl.col("_noise")).otherwise(pl.col("previous")).alias("previous"),
        pl.when("_later").then(pl.lit("rewritten after the cut: ") + pl.col("_noise").cast(pl.String))
        .otherwise(pl.col("source")).alias("source"),
        pl.when(pl.col("_later") & pl.col("direction").is_not_null()).then(-pl.col("direction"))
        .otherwise(pl.col("direction")).alias("direction"),
    )
    # unscheduled events after the cut may vanish, and new ones appear
    changed = changed.filter(~(pl.col("_later") & ~pl.col("scheduled") & pl.Series(rng.random(n) < 0.5)))
    changed = changed.drop("_later", "_noise", "known_ts", "scheduled")
    new = [
        {"event_id": f"NEW-{k}", "kind": "policy", "release_ts": cut + dt.timedelta(minutes=int(rng.integers(1, 600))),
         "title": "a headline nobody saw coming", "direction": 1.0, "source": "headline", "time_precision": "exact"}
        for k in range(extra_policy)
    ]
    if new:
        changed = pl.concat([changed, validate_calendar(pl.DataFrame(new, schema_overrides={"release_ts": pl.Datetime("us", "UTC")}))],
                            how="diagonal_relaxed")
    return validate_calendar(changed)


def _perturb_bars(bars: pl.DataFrame, cut: dt.datetime, rng: np.random.Generator) -> pl.DataFrame:
    step = bars.group_by("symbol", maintain_order=True).agg(pl.col("ts").diff().min().alias("_step"))
    joined = bars.join(step, on="symbol", how="left", maintain_order="left")
    later = (pl.col("ts") + pl.col("_step").fill_null(dt.timedelta(days=1))) > cut
    factor = pl.Series("_f", np.exp(rng.normal(0.0, 0.05, bars.height)))
    return joined.with_columns(factor).with_columns(
        pl.when(later).then(pl.col(c) * pl.col("_f")).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")
    ).drop("_step", "_f")


@st.composite
def point_in_time_cases(
    draw: Any,
    symbols: Sequence[str] = ("BTC", "ETH"),
    *,
    indicators: Sequence[str] = ("CPI_YOY", "PPI_YOY", "NFP", "UNRATE"),
    days: int = 3,
) -> PointInTimeCase:
    """A market, a cut instant inside it, and the same market with everything
    published after the cut changed: actuals, previous values, ``source`` texts and
    directions of events published later, unscheduled events removed or added after
    it, and the prices of every bar that closed after it. The schedule and consensus
    of scheduled events (public all along) are unchanged."""
    market = draw(markets(symbols, indicators=indicators, days=days))
    start = market.bars.get_column("ts").min()
    cut = start + dt.timedelta(minutes=draw(st.integers(0, days * 24 * 60)), microseconds=draw(st.sampled_from([0, 1, 999_999])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    perturbed = Market(
        bars=_perturb_bars(market.bars, cut, rng),
        calendar=_perturb_calendar(market.calendar, cut, rng, draw(st.integers(0, 2))),
    )
    return PointInTimeCase(market=market, cut=cut, perturbed=perturbed)


# ----------------------------------------------------------------------------- properties


def assert_point_in_time(strategy: Any, case: PointInTimeCase) -> None:
    """Orders ``strategy`` submits at or before ``case.cut`` are identical whether or
    not anything published after the cut changed."""
    from aftershock.trading.strategy import compile_orders

    def early(m: Market) -> pl.DataFrame:
        orders = compile_orders(strategy, m.calendar, m.bars)
        if orders.width == 0:
            return orders
        return orders.filter(pl.col("submit_ts") <= case.cut)

    a, b = early(case.market), early(case.perturbed)
    if a.height == 0 and b.height == 0:
        return
    assert a.height == b.height and a.equals(b), (
        f"orders submitted at or before {case.cut.isoformat()} depend on what was published after it:\n"
        f"original:\n{a}\nperturbed:\n{b}"
    )


def assert_accounting_identity(result: Any, bars: pl.DataFrame) -> None:
    """Replayed from the fills alone: on every equity row, cash is the initial cash
    less every fill's signed notional and fee so far, and equity is that cash plus each
    position marked at its symbol's last close at or before the row."""
    init = float(result.config["init_cash"])
    eq = result.equity.select("ts", "cash", "equity")
    if eq.height == 0:
        return
    fills = result.fills.with_columns(
        sign=pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    ).with_columns(flow=-(pl.col("sign") * pl.col("qty") * pl.col("price")) - pl.col("fee"), dq=pl.col("sign") * pl.col("qty"))
    cash = fills.group_by("ts").agg(pl.col("flow").sum()).sort("ts").with_columns(cum=pl.col("flow").cum_sum())
    replay = eq.sort("ts").join_asof(cash.select("ts", "cum"), on="ts").with_columns(
        replayed_cash=init + pl.col("cum").fill_null(0.0)
    )
    held = (
        fills.group_by("symbol", "ts").agg(pl.col("dq").sum()).sort("symbol", "ts")
        .with_columns(qty=pl.col("dq").cum_sum().over("symbol"))
    )
    marks = bars.select(pl.col("symbol").cast(pl.String), "ts", "close").sort("symbol", "ts")
    grid = eq.select("ts").join(held.select("symbol").unique(), how="cross").sort("ts")
    valued = (
        grid.join_asof(held.select("symbol", "ts", "qty").sort("ts"), on="ts", by="symbol", check_sortedness=False)
        .join_asof(marks.sort("ts"), on="ts", by="symbol", check_sortedness=False)
        .group_by("ts").agg((pl.col("qty").fill_null(0.0) * pl.col("close")).sum().alias("value"),
                            (pl.col("qty").fill_null(0.0).abs() * pl.col("close")).sum().alias("gross"))
    )
    check = replay.join(valued, on="ts", how="left").with_columns(pl.col("value", "gross").fill_null(0.0))
    scale = init + pl.col("replayed_cash").abs() + pl.col("gross")
    bad_cash = check.filter((pl.col("cash") - pl.col("replayed_cash")).abs() > 1e-9 * scale)
    assert bad_cash.height == 0, f"cash differs from the replay of the fills on {bad_cash.height} rows:\n{bad_cash.head(3)}"
    bad_eq = check.filter((pl.col("equity") - pl.col("cash") - pl.col("value")).abs() > 1e-9 * scale)
    assert bad_eq.height == 0, f"equity != cash + marked positions on {bad_eq.height} rows:\n{bad_eq.head(3)}"


def assert_fills_within_bars(result: Any, bars: pl.DataFrame) -> None:
    """Every fill's price before slippage lies inside the [low, high] of its symbol's
    bar at (or, for a liquidation marking another symbol, last before) the fill, and no
    order fills before the first bar it could trade on (docs/engine.md, Time)."""
    slip = float(result.config.get("slippage", 0.0))
    orders = result.orders.select("order_id", "submit_ts", "order_type")
    fills = (
        result.fills.join(orders, on="order_id", how="left")
        .sort("ts")
        .join_asof(
            bars.select(pl.col("symbol").cast(pl.String), "ts", "low", "high").sort("ts"),
            on="ts", by="symbol", check_sortedness=False,
        )
    )
    missing = fills.filter(pl.col("low").is_null())
    assert missing.height == 0, f"fills before the symbol's first bar:\n{missing.head(3)}"
    # limit fills (limit orders, the limit leg of stop-limits, take-profits) carry no slippage
    unslipped = (pl.col("reason") == "take_profit") | (
        pl.col("reason").is_in(["entry", "exit"]) & pl.col("order_type").is_in(["limit", "stop_limit"])
    )
    raw = (
        pl.when(unslipped).then(pl.col("price"))
        .when(pl.col("side") == "buy").then(pl.col("price") / (1 + slip))
        .otherwise(pl.col("price") / (1 - slip))
    )
    tol = 1e-9 * pl.col("high")
    out = fills.filter((raw < pl.col("low") - tol) | (raw > pl.col("high") + tol))
    assert out.height == 0, f"fills outside their bar's range:\n{out.head(3)}"
    latency = dt.timedelta(microseconds=int(result.config.get("latency", 0)))
    early = fills.filter(
        pl.col("order_id") >= 0,
        pl.when(pl.col("order_type") == "market_on_close")
        .then(pl.col("ts") < pl.col("submit_ts") + latency)
        .otherwise(pl.col("ts") <= pl.col("submit_ts") + latency),
    )
    assert early.height == 0, f"fills before their order could trade:\n{early.head(3)}"


def assert_deterministic(run: Callable[..., Any], *, compare: Callable[[Any, Any], bool] | None = None) -> None:
    """``run()`` twice gives equal fills, trades and equity (bit for bit); when ``run``
    accepts ``threads``, 1 and 2 threads agree too."""
    def frames(r: Any) -> tuple:
        if isinstance(r, pl.DataFrame):
            return (r,)
        if isinstance(r, list):
            return tuple(f for x in r for f in frames(x))
        return (r.fills, r.trades, r.equity)

    first, second = run(), run()
    same = compare or (lambda a, b: all(x.equals(y) for x, y in zip(frames(a), frames(b))))
    assert same(first, second), "two identical runs differ"
    try:
        one, two = run(threads=1), run(threads=2)
    except TypeError:
        return
    assert same(one, two), "1 and 2 threads differ"
