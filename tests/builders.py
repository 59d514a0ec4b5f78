"""Builders shared by the engine suites: bars and orders frames from rows, the random
scenarios hypothesis draws for the differential tests, and a small macro strategy."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl
from hypothesis import strategies as st

import aftershock as ash

T0 = dt.datetime(2025, 1, 15, 13, 30, tzinfo=dt.timezone.utc)
# decided one microsecond before the first bar opens: that bar is the first live one
D0 = T0 - dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)
REL = 1e-12

# ----------------------------------------------------------------------------- data


def make_bars(rows: list[tuple[str, dt.datetime, float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [r[1] for r in rows],
            "symbol": [r[0] for r in rows],
            "open": [float(r[2]) for r in rows],
            "high": [float(r[3]) for r in rows],
            "low": [float(r[4]) for r in rows],
            "close": [float(r[5]) for r in rows],
        },
        schema={"ts": pl.Datetime("us", "UTC"), "symbol": pl.String, "open": pl.Float64,
                "high": pl.Float64, "low": pl.Float64, "close": pl.Float64},
    )


ORDER_SCHEMA = {
    "submit_ts": pl.Datetime("us", "UTC"),
    "symbol": pl.String,
    "side": pl.String,
    "qty": pl.Float64,
    "size_type": pl.String,
    "order_type": pl.String,
    "limit_price": pl.Float64,
    "stop_price": pl.Float64,
    "tif": pl.String,
    "expire_ts": pl.Datetime("us", "UTC"),
    "reduce_only": pl.Boolean,
    "stop_loss": pl.Float64,
    "take_profit": pl.Float64,
    "trailing_stop": pl.Float64,
    "exit_after": pl.Duration("us"),
    "tag": pl.String,
}


def make_orders(rows: list[dict[str, Any]]) -> pl.DataFrame:
    full = [{k: r.get(k) for k in ORDER_SCHEMA} for r in rows]
    for r in full:
        r["size_type"] = r["size_type"] or "units"
        r["order_type"] = r["order_type"] or "market"
        r["tif"] = r["tif"] or "gtc"
        r["reduce_only"] = bool(r["reduce_only"])
    return pl.DataFrame(full, schema=ORDER_SCHEMA)


def random_walk_bars(rng: np.random.Generator, symbols: list[str], n: int, round_prices: bool) -> pl.DataFrame:
    """Random walks with gaps; each symbol misses some bars of the shared minute grid."""
    rows = []
    grid = [T0 + MINUTE * int(k) for k in np.cumsum(rng.integers(1, 4, size=n))]
    for s in symbols:
        keep = rng.random(n) < (0.8 if len(symbols) > 1 else 1.0)
        keep[0] = True
        price = float(rng.uniform(20, 200))
        for ts, k in zip(grid, keep):
            gap = rng.normal(0, 0.01) if rng.random() < 0.3 else 0.0
            o = price * math.exp(gap)
            c = o * math.exp(rng.normal(0, 0.015))
            h = max(o, c) * math.exp(abs(rng.normal(0, 0.008)))
            lo = min(o, c) * math.exp(-abs(rng.normal(0, 0.008)))
            if round_prices:
                o, c = round(o, 2), round(c, 2)
                h, lo = max(round(h, 2), o, c), min(round(lo, 2), o, c)
            price = c
            if k:
                rows.append((s, ts, o, h, lo, c))
    rows.sort(key=lambda r: (r[1], symbols.index(r[0])))
    return make_bars(rows)


@st.composite
def scenarios(draw):
    n_sym = draw(st.integers(1, 3))
    symbols = ["BTC", "ETH", "SOL"][:n_sym]
    n = draw(st.integers(3, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    bars = random_walk_bars(rng, symbols, n, draw(st.booleans()))
    ts_all = bars["ts"].unique().sort().to_list()
    first_close = {s: bars.filter(pl.col("symbol") == s)["close"][0] for s in symbols}

    orders = []
    for i in range(draw(st.integers(0, 7))):
        sym = draw(st.sampled_from(symbols))
        base = first_close[sym]
        submit = draw(st.sampled_from(ts_all)) + dt.timedelta(seconds=draw(st.sampled_from([-30, 0, 0, 0, 20])))
        side = draw(st.sampled_from(["buy", "sell"]))
        size_type = draw(st.sampled_from(["units", "units", "notional", "percent_equity", "target_percent", "percent_available"]))
        qty = {
            "units": draw(st.sampled_from([0.5, 1.0, 3.0, 10.0, 1000.0])),
            "notional": draw(st.sampled_from([500.0, 5_000.0, 50_000.0])),
            "percent_equity": draw(st.sampled_from([0.1, 0.5, 1.0])),
            "target_percent": draw(st.sampled_from([0.0, 0.3, 1.0])),
            "percent_available": draw(st.sampled_from([0.1, 0.5, 1.0 - 2.0**-52])),
        }[size_type]
        otype = draw(st.sampled_from(["market", "market", "limit", "stop", "stop_limit", "market_on_close"]))
        o: dict[str, Any] = dict(submit_ts=submit, symbol=sym, side=side, qty=qty, size_type=size_type, order_type=otype)
        if otype in ("limit", "stop_limit"):
            o["limit_price"] = base * draw(st.sampled_from([0.96, 0.98, 0.99, 1.0, 1.01, 1.02, 1.04]))
        if otype in ("stop", "stop_limit"):
            o["stop_price"] = base * draw(st.sampled_from([0.96, 0.98, 0.99, 1.0, 1.01, 1.02, 1.04]))
        tif = draw(st.sampled_from(["gtc", "gtc", "ioc", "gtd"]))
        o["tif"] = tif
        if tif == "gtd":
            o["expire_ts"] = submit + MINUTE * draw(st.integers(1, 10))
        # the Rust engine rejects a reduce-only order that carries a bracket (OrdersError)
        o["reduce_only"] = draw(st.booleans()) if draw(st.booleans()) else False
        if not o["reduce_only"] and draw(st.booleans()):
            o["stop_loss"] = draw(st.none() | st.sampled_from([0.01, 0.02, 0.05]))
            o["take_profit"] = draw(st.none() | st.sampled_from([0.01, 0.03, 0.1]))
            o["trailing_stop"] = draw(st.none() | st.sampled_from([0.01, 0.02, 0.04]))
            o["exit_after"] = draw(st.none() | st.sampled_from([MINUTE * 2, MINUTE * 5]))
        o["tag"] = draw(st.none() | st.sampled_from(["a", "b"]))
        orders.append(o)
    config = dict(
        init_cash=draw(st.sampled_from([10_000.0, 100_000.0])),
        fees=draw(st.sampled_from([0.0, 0.0005, 0.002])),
        fixed_fees=draw(st.sampled_from([0.0, 0.0, 1.0])),
        slippage=draw(st.sampled_from([0.0, 0.0, 0.001])),
        latency=draw(st.sampled_from([dt.timedelta(0), dt.timedelta(seconds=30), dt.timedelta(seconds=90)])),
        lot_size=draw(st.sampled_from([0.0, 0.0, 0.01, 2.0**-6, 0.5])),
        leverage=draw(st.sampled_from([1.0, 1.0, 2.0, 5.0])),
        intrabar=draw(st.sampled_from(["pessimistic", "ohlc", "olhc", "nearest_first"])),
        maintenance_margin=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        close_at_end=draw(st.booleans()),
        allow_partial=draw(st.sampled_from([True, True, False])),
    )
    maker = draw(st.sampled_from([None, 0.0, 0.0001]))
    if maker is not None:
        config["maker_fees"] = maker
    return bars, make_orders(orders), config


class Macro(ash.Strategy):
    """Trades BTC on every macro surprise: enough trades for the trade figures."""

    threshold: float = 0.0
    hold: str = "4h"

    def on_release(self, events):
        hot = events.filter(pl.col("hawkish_z").abs() > self.threshold)
        return ash.orders.market(hot, symbol="BTC", side=-pl.col("hawkish_z").sign(), size=0.5,
                                 size_type="percent_equity", exit_after=self.hold)


# ------------------------------------------------------------- bars on disk, at scale


def minute_walk(symbols: list[str], n: int, seed: int, start: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
                missing: float = 0.02) -> pl.DataFrame:
    """``n`` one-minute random-walk bars per symbol (grouped by symbol), vectorized;
    each symbol misses about ``missing`` of the minutes (and starts a few bars late)."""
    rng = np.random.default_rng(seed)
    t0 = int(start.timestamp()) * 1_000_000
    parts = []
    for k, s in enumerate(symbols):
        minutes = np.arange(n + n // 10, dtype=np.int64)
        keep = rng.random(minutes.size) >= missing
        keep[: 3 * k] = False
        minutes = minutes[keep][:n]
        r = rng.normal(0.0, 0.001, minutes.size)
        close = 100.0 * (k + 1) * np.exp(np.cumsum(r))
        open_ = np.concatenate([[close[0] / np.exp(r[0])], close[:-1]]) * np.exp(rng.normal(0, 0.0002, minutes.size))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.0007, minutes.size)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.0007, minutes.size)))
        parts.append(pl.DataFrame({
            "ts": pl.Series(t0 + minutes * 60_000_000).cast(pl.Datetime("us", "UTC")),
            "symbol": s, "open": open_, "high": high, "low": low, "close": close,
            "volume": rng.uniform(0, 10, minutes.size),
        }))
    return pl.concat(parts)


def write_hive(bars: pl.DataFrame, root) -> None:
    """``bars`` as ``root/symbol=S/year=YYYY/month=MM/part.parquet`` files (no symbol column)."""
    keyed = bars.with_columns(year=pl.col("ts").dt.year(), month=pl.col("ts").dt.month())
    for (sym, year, month), part in keyed.partition_by("symbol", "year", "month", as_dict=True, maintain_order=True).items():
        folder = root / f"symbol={sym}" / f"year={year}" / f"month={month:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("symbol", "year", "month").write_parquet(folder / "part.parquet")


def random_orders(bars: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """``n`` orders of every type, with and without brackets, over the span of ``bars``."""
    rng = np.random.default_rng(seed)
    symbols = bars["symbol"].unique(maintain_order=True).to_list()
    lo, hi = bars["ts"].min(), bars["ts"].max()
    span = int((hi - lo).total_seconds())
    submit = sorted(lo + dt.timedelta(seconds=int(x)) for x in rng.integers(0, span, n))
    last = bars.group_by("symbol").agg(pl.col("close").last())
    price = dict(zip(last["symbol"], last["close"]))
    rows = []
    for i, ts in enumerate(submit):
        sym = symbols[int(rng.integers(len(symbols)))]
        kind = ["market", "market", "limit", "stop", "market_on_close"][int(rng.integers(5))]
        row: dict[str, Any] = {"submit_ts": ts, "symbol": sym, "side": "buy" if rng.random() < 0.55 else "sell",
                               "qty": float(rng.uniform(0.05, 0.3)), "size_type": "percent_equity", "order_type": kind}
        p = price[sym] * float(rng.uniform(0.7, 1.3))
        if kind == "limit":
            row["limit_price"] = p
            row["tif"], row["expire_ts"] = "gtd", ts + dt.timedelta(days=3)
        elif kind == "stop":
            row["stop_price"] = p
        if rng.random() < 0.7 and kind != "market_on_close" or i % 5 == 0:
            row["stop_loss"] = float(rng.uniform(0.002, 0.02))
            row["take_profit"] = float(rng.uniform(0.002, 0.03))
            row["trailing_stop"] = float(rng.uniform(0.005, 0.02)) if rng.random() < 0.4 else None
            row["exit_after"] = dt.timedelta(minutes=int(rng.integers(5, 3000)))
        rows.append(row)
    return make_orders(rows)
