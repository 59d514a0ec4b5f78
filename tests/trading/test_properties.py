"""Properties of the Rust engine that must hold for every generated case.

The cases are the differential suite's (``test_reference_engine.scenarios``): several
symbols with gaps and missing bars, every order type, tif, size type and bracket, and
random fees, slippage, latency, lot size, leverage, intrabar path and liquidation.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

import numpy as np
import polars as pl
from hypothesis import assume, given
from hypothesis import strategies as st

from hypothesis_profiles import examples
from builders import MINUTE, T0, make_bars, make_orders, scenarios

from aftershock.trading.engine import backtest, backtest_many

NO_SLIP_REASONS = {"take_profit"}
LIMIT_TYPES = {"limit", "stop_limit"}


def _bar_lookup(bars: pl.DataFrame) -> dict[str, list[tuple[dt.datetime, float, float, float, float]]]:
    out: dict[str, list] = {}
    for ts, sym, o, h, lo, c in bars.select("ts", "symbol", "open", "high", "low", "close").iter_rows():
        out.setdefault(sym, []).append((ts, o, h, lo, c))
    return out


def _bar_at(lookup, symbol: str, ts: dt.datetime):
    """The symbol's bar at ``ts``, or its last bar before (liquidations close other symbols at their last close)."""
    rows = [r for r in lookup[symbol] if r[0] <= ts]
    return rows[-1]


def _latency(config: dict[str, Any]) -> dt.timedelta:
    return config.get("latency") or dt.timedelta(0)


def _unslipped(fill: dict[str, Any], orders: pl.DataFrame, slippage: float) -> float:
    """The fill price before slippage: limits, the limit leg of stop-limits and take-profits carry none."""
    if fill["reason"] in NO_SLIP_REASONS:
        return fill["price"]
    if fill["reason"] in ("entry", "exit") and orders["order_type"][fill["order_id"]] in LIMIT_TYPES:
        return fill["price"]
    return fill["price"] / (1 + slippage) if fill["side"] == "buy" else fill["price"] / (1 - slippage)


def _leq(a: float, b: float) -> bool:
    return a <= b or math.isclose(a, b, rel_tol=1e-12)


# ----------------------------------------------------------------------------- accounting


@examples(ci=150, long=3_000)
@given(scenarios())
def test_equity_is_cash_plus_positions_at_marks(case):
    bars, orders, config = case
    r = backtest(bars, orders, **config)
    lookup = _bar_lookup(bars)
    fills = r.fills.rows(named=True)
    init = config["init_cash"]
    for row in r.equity.iter_rows(named=True):
        cash = init
        position: dict[str, float] = {}
        for f in fills:
            if f["ts"] <= row["ts"]:
                sign = 1.0 if f["side"] == "buy" else -1.0
                cash -= sign * f["qty"] * f["price"] + f["fee"]
                position[f["symbol"]] = position.get(f["symbol"], 0.0) + sign * f["qty"]
        marks = {s: _bar_at(lookup, s, row["ts"])[4] for s in position}
        value = sum(q * marks[s] for s, q in position.items())
        gross = sum(abs(q) * marks[s] for s, q in position.items())
        scale = init + abs(cash) + gross
        assert math.isclose(row["cash"], cash, rel_tol=1e-9, abs_tol=1e-9 * scale), (row, cash)
        assert math.isclose(row["equity"], row["cash"] + value, rel_tol=1e-9, abs_tol=1e-9 * scale), (row, value)
        assert math.isclose(row["gross_exposure"], gross, rel_tol=1e-9, abs_tol=1e-9 * scale), (row, gross)


# ----------------------------------------------------------------------------- fills


@examples(ci=150, long=3_000)
@given(scenarios())
def test_fills_respect_time_range_and_order_prices(case):
    bars, orders, config = case
    r = backtest(bars, orders, **config)
    lookup = _bar_lookup(bars)
    latency = _latency(config)
    slip = config.get("slippage", 0.0)
    for f in r.fills.iter_rows(named=True):
        assert f["fee"] >= 0.0, f
        assert f["qty"] > 0.0, f
        if f["order_id"] >= 0:
            o = orders.row(f["order_id"], named=True)
            # the open of a bar starting at the decision instant may predate it
            if o["order_type"] == "market_on_close":
                assert f["ts"] >= o["submit_ts"] + latency, (f, o)
            else:
                assert f["ts"] > o["submit_ts"] + latency, (f, o)
        ts, _, high, low, _ = _bar_at(lookup, f["symbol"], f["ts"])
        raw = _unslipped(f, orders, slip)
        assert _leq(low, raw) and _leq(raw, high), (f, raw, low, high)
        if f["reason"] in ("entry", "exit") and f["order_id"] >= 0:
            o = orders.row(f["order_id"], named=True)
            # the trigger follows the order's side; a target_percent order may trade the other way,
            # so the price is checked before slippage, and after it too when the sides agree
            buy = o["side"] == "buy"
            prices = [raw, f["price"]] if f["side"] == o["side"] else [raw]
            for p in prices:
                if o["order_type"] in LIMIT_TYPES:
                    assert _leq(p, o["limit_price"]) if buy else _leq(o["limit_price"], p), (f, o)
                if o["order_type"] == "stop":
                    assert _leq(o["stop_price"], p) if buy else _leq(p, o["stop_price"]), (f, o)


@st.composite
def plain_market_cases(draw):
    """Units-sized market and market-on-close orders under a loose leverage, so that fees
    cannot change which orders fill or how much."""
    bars, _, _ = draw(scenarios())
    symbols = bars["symbol"].unique(maintain_order=True).to_list()
    ts_all = bars["ts"].unique().sort().to_list()
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        rows.append(dict(
            submit_ts=draw(st.sampled_from(ts_all)),
            symbol=draw(st.sampled_from(symbols)),
            side=draw(st.sampled_from(["buy", "sell"])),
            qty=draw(st.sampled_from([0.5, 1.0, 4.0])),
            order_type=draw(st.sampled_from(["market", "market_on_close"])),
        ))
    slippage = draw(st.sampled_from([0.0, 0.001]))
    fees = dict(fees=draw(st.sampled_from([0.0005, 0.01])), fixed_fees=draw(st.sampled_from([0.0, 1.0])))
    return bars, make_orders(rows), slippage, fees


@examples(ci=100, long=2_000)
@given(plain_market_cases())
def test_fees_never_raise_equity(case):
    bars, orders, slippage, fees = case
    base = dict(init_cash=100_000.0, leverage=100.0, slippage=slippage, close_at_end=True)
    free = backtest(bars, orders, **base)
    paid = backtest(bars, orders, **base, **fees)
    assert paid.fills.select("ts", "qty", "price").equals(free.fills.select("ts", "qty", "price"))
    total_fees = paid.fills["fee"].sum()
    assert total_fees >= 0.0
    assert math.isclose(free.equity["equity"][-1] - paid.equity["equity"][-1], total_fees, rel_tol=1e-9, abs_tol=1e-6)
    assert (paid.equity["equity"] <= free.equity["equity"] + 1e-9).all()


@st.composite
def round_trips(draw):
    """Bars whose open equals the previous close (no gaps), and round trips bought at a
    close and sold at the next open: the same price."""
    n = draw(st.integers(3, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    opens = np.r_[100.0, closes[:-1]]
    rows = [("BTC", T0 + MINUTE * i, opens[i], max(opens[i], closes[i]) * 1.01, min(opens[i], closes[i]) * 0.99, closes[i])
            for i in range(n)]
    orders = []
    for i in sorted(set(draw(st.lists(st.integers(0, n - 2), min_size=1, max_size=5)))):
        qty = draw(st.sampled_from([0.5, 1.0, 7.0]))
        side, back = draw(st.sampled_from([("buy", "sell"), ("sell", "buy")]))
        orders.append(dict(submit_ts=T0 + MINUTE * i, symbol="BTC", side=side, qty=qty, order_type="market_on_close"))
        # decided at bar i's close, an instant before bar i+1 opens at that same price
        orders.append(dict(submit_ts=T0 + MINUTE * (i + 1) - dt.timedelta(microseconds=1), symbol="BTC", side=back,
                           qty=qty, reduce_only=True))
    return make_bars(rows), make_orders(orders), draw(st.sampled_from(["pessimistic", "ohlc", "olhc", "nearest_first"]))


@examples(ci=100, long=2_000)
@given(round_trips())
def test_zero_cost_round_trip_at_one_price_changes_nothing(case):
    bars, orders, intrabar = case
    r = backtest(bars, orders, init_cash=50_000.0, intrabar=intrabar)
    assert r.fills.height == orders.height
    assert (r.trades["pnl"] == 0.0).all()
    assert r.equity["cash"][-1] == 50_000.0
    assert r.equity["equity"][-1] == 50_000.0


# ----------------------------------------------------------------------------- idle bars


def _idle_insertions(bars: pl.DataFrame, orders: pl.DataFrame, config: dict[str, Any], result) -> list[list[tuple]]:
    """Bars that can be added without changing anything: for each symbol, a flat bar one
    minute into a gap of its series when nothing is working on it and nothing is held;
    bars for every symbol before anything can be live; and after the end when all is done."""
    latency = _latency(config)
    live = result.orders.select("symbol", (pl.col("submit_ts") + latency).alias("live"), "status_ts", "status")
    position_after: dict[str, list[tuple[dt.datetime, float]]] = {}
    running: dict[str, float] = {}
    for f in result.fills.iter_rows(named=True):
        running[f["symbol"]] = running.get(f["symbol"], 0.0) + (f["qty"] if f["side"] == "buy" else -f["qty"])
        position_after.setdefault(f["symbol"], []).append((f["ts"], running[f["symbol"]]))

    def held(symbol, ts):
        rows = [q for t, q in position_after.get(symbol, []) if t <= ts]
        return bool(rows) and rows[-1] != 0.0

    def working(symbol, ts):
        for s, lv, status_ts, status in live.iter_rows():
            if s == symbol and lv <= ts and (status_ts is None or status_ts > ts or status == "open"):
                return True
        return False

    out = []
    lookup = _bar_lookup(bars)
    for symbol, rows in lookup.items():
        for (ta, *_rest, ca), (tb, *_r) in zip(rows, rows[1:]):
            new = ta + MINUTE
            if new < tb and not held(symbol, ta) and not working(symbol, new):
                out.append([(symbol, new, ca, ca * 1.01, ca * 0.99, ca)])
    # before and after: one bar per symbol, all at once, so the symbols keep their order of appearance
    first = bars["ts"].min()
    before = min([first] + live["live"].to_list()) - 2 * MINUTE
    out.append([(symbol, before, rows[0][1], rows[0][1] * 1.02, rows[0][1] * 0.98, rows[0][1])
                for symbol, rows in lookup.items()])
    done = (result.trades.filter(pl.col("status") == "open").height == 0
            and (result.orders["status"] != "open").all()
            and not (result.fills["reason"] == "end_of_data").any())
    if done:
        last = bars["ts"].max() + 5 * MINUTE
        out.append([(symbol, last, rows[-1][4], rows[-1][4] * 1.03, rows[-1][4] * 0.97, rows[-1][4])
                    for symbol, rows in lookup.items()])
    return out


@examples(ci=150, long=3_000)
@given(scenarios(), st.randoms(use_true_random=False))
def test_idle_bars_change_no_fill_and_no_trade(case, random):
    bars, orders, config = case
    r = backtest(bars, orders, **config)
    candidates = _idle_insertions(bars, orders, config, r)
    assume(candidates)
    chosen = [row for group in random.sample(candidates, k=min(len(candidates), random.randint(1, 4))) for row in group]
    symbols = bars["symbol"].unique(maintain_order=True).to_list()
    rows = list(bars.select("symbol", "ts", "open", "high", "low", "close").iter_rows()) + chosen
    rows.sort(key=lambda row: (row[1], symbols.index(row[0])))
    padded = make_bars(rows)
    assert padded["symbol"].unique(maintain_order=True).to_list() == symbols
    again = backtest(padded, orders, **config)
    assert again.fills.equals(r.fills)
    assert again.trades.equals(r.trades)
    assert again.orders.equals(r.orders)


# ----------------------------------------------------------------------------- threads


@examples(ci=30, long=500)
@given(st.lists(scenarios(), min_size=2, max_size=6))
def test_same_outputs_bit_for_bit_on_one_thread_and_all(cases):
    bars = cases[0][0]
    symbols = set(bars["symbol"].to_list())
    runs = [(o.filter(pl.col("symbol").is_in(symbols)), c) for _, o, c in cases]
    orders = [o for o, _ in runs]
    configs = [c for _, c in runs]
    one = backtest_many(bars, orders, configs, threads=1)
    many = backtest_many(bars, orders, configs, threads=max(2, os.cpu_count() or 2))
    for a, b, (o, c) in zip(one, many, runs):
        single = backtest(bars, o, **c)
        for name in ("fills", "trades", "equity", "orders"):
            assert getattr(a, name).equals(getattr(b, name)), name
            assert getattr(a, name).equals(getattr(single, name)), name
