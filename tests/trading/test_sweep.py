"""Sweeps scored in the engine (python/aftershock/sweep.py, rust/engine/metrics.rs).

Every row the engine scores is checked against ``backtest(...)`` of the same variant
run alone, then ``Result.stats()`` (NumPy/Polars over the full equity path).
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import aftershock as ash
import aftershock.trading.engine as engine_module
from aftershock.trading.engine import prepare_bars
from aftershock.trading.results import STATS_DOC  # every key of Result.stats(), documented
from aftershock.trading.results import SWEEP_STATS  # the same keys in stats() order: a sweep row's columns

sweep_module = importlib.import_module("aftershock.trading.sweep")  # the package's `sweep` is the function

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
EVENTS = [T0 + dt.timedelta(days=d, hours=h, minutes=7) for d in range(6) for h in (3, 9, 15, 21)]


def walk_bars(days: int = 7, step_min: int = 5, seed: int = 11, symbol: str = "BTC") -> pl.DataFrame:
    n = days * 24 * 60 // step_min
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, n))
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=step_min * (n - 1)), f"{step_min}m", eager=True, time_zone="UTC")
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": symbol,
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick),
            "low": np.minimum(open_, close) * (1 - wick),
            "close": close,
        }
    )


def event_orders(seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(EVENTS)
    return pl.DataFrame(
        {
            "submit_ts": EVENTS,
            "symbol": "BTC",
            "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
            "qty": 0.2,
            "size_type": "percent_equity",
            "tag": [f"E{k}" for k in range(n)],
        }
    )


def assert_row_matches(row: dict, stats: dict) -> None:
    for key in STATS_DOC:
        got, want = row[key], stats[key]
        if want is None or got is None:
            assert got is None and want is None, (key, got, want)
        elif isinstance(want, float):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15), (key, got, want)
        else:
            assert got == want, (key, got, want)


GRID = {
    "stop_loss": [0.004, 0.01, None],
    "take_profit": [0.006, 0.02],
    "exit_after": ["30m", "4h"],
    "fees": [0.0, 0.0005],
}


def test_orders_frame_sweep_rows_equal_stats_of_each_backtest_run_alone():
    bars = walk_bars()
    base = event_orders()
    sw = ash.Sweep(bars, base, GRID, init_cash=10_000, slippage=0.0001)
    table = sw.run(threads=2)
    assert table.height == len(sw) == 24
    assert table.columns == [*GRID, *SWEEP_STATS]
    # the grid's last key varies fastest
    assert table.row(1, named=True)["fees"] == 0.0005 and table.row(2, named=True)["exit_after"] == "4h"
    assert table["trades"].min() > 10 and table["sharpe"].null_count() == 0
    assert table["profit_factor"].null_count() == 0 and table["max_drawdown"].max() < 0
    for i, row in enumerate(table.iter_rows(named=True)):
        alone = base.with_columns(
            pl.lit(row["stop_loss"], pl.Float64).alias("stop_loss"),
            pl.lit(row["take_profit"], pl.Float64).alias("take_profit"),
            pl.lit(row["exit_after"]).alias("exit_after"),
        )
        result = ash.backtest(bars, alone, init_cash=10_000, slippage=0.0001, fees=row["fees"])
        assert_row_matches(row, result.stats())
        assert sw.result(i).fills.equals(result.fills)


def test_sweep_rows_hold_every_stats_figure_in_stats_order():
    bars = walk_bars(days=2)
    stats = ash.backtest(bars, event_orders()).stats()
    assert set(SWEEP_STATS) == set(stats) == set(STATS_DOC)
    assert list(stats) == list(SWEEP_STATS)


def test_sweep_rows_do_not_depend_on_the_thread_count():
    bars = walk_bars()
    sw = ash.Sweep(bars, event_orders(), GRID, init_cash=10_000)
    one = sw.run(threads=1)
    assert one.equals(sw.run(threads=2))
    assert one.equals(sw.run(threads=5))


def test_stats_only_backtest_many_equals_stats_of_full_results():
    bars = walk_bars(seed=3)
    frames = [event_orders(seed=s).with_columns(stop_loss=0.003 * (s + 1), exit_after=pl.lit("2h")) for s in range(4)]
    configs = [{"fees": 0.0004 * (k % 2), "init_cash": 5_000.0 + k} for k in range(4)]
    full = ash.backtest_many(bars, frames, configs, threads=2)
    for ppy in (365.0, 252.0):
        table = ash.backtest_many(bars, frames, configs, threads=2, stats_only=True, periods_per_year=ppy)
        assert table.columns == list(SWEEP_STATS)
        assert table.schema["start"] == pl.Datetime("us", "UTC")
        for row, result in zip(table.iter_rows(named=True), full):
            # the engine samples calendar-day returns, annualized by periods_per_year
            assert_row_matches(row, result.stats(periods_per_year=ppy, returns="calendar"))


def test_stats_only_backtest_many_takes_the_conventions_of_stats():
    import dataclasses

    from aftershock.trading.stats import AFTERSHOCK

    bars = walk_bars(seed=5)
    frames = [event_orders(seed=s).with_columns(exit_after=pl.lit("3h")) for s in range(3)]
    configs = [{"fees": 0.0004 * k} for k in range(3)]
    full = ash.backtest_many(bars, frames, configs, threads=2)
    renamed = dataclasses.replace(AFTERSHOCK, avg_trade="geometric", exposure="bars")
    for conventions in ("backtesting.py", renamed):
        table = ash.backtest_many(bars, frames, configs, threads=2, stats_only=True, conventions=conventions)
        assert table.columns == list(SWEEP_STATS)
        for row, result in zip(table.iter_rows(named=True), full):
            assert_row_matches(row, result.stats(conventions=conventions))
    # an explicit annualization replaces the conventions' and keeps their sampling
    table = ash.backtest_many(bars, frames, configs, stats_only=True, conventions="backtesting.py",
                              periods_per_year=300)
    assert_row_matches(table.row(1, named=True),
                       full[1].stats(conventions="backtesting.py", periods_per_year=300, returns="trading"))
    with pytest.raises(ash.ConfigError, match="stats_only"):
        ash.backtest_many(bars, frames, configs, conventions="backtesting.py")


def test_stats_of_a_run_without_orders_and_of_several_symbols():
    bars = pl.concat([walk_bars(days=3, symbol="BTC"), walk_bars(days=2, seed=4, symbol="ETH")])
    btc_eth = pl.concat(
        [event_orders().head(4), event_orders().head(3).with_columns(symbol=pl.lit("ETH"))]
    ).with_columns(exit_after=pl.lit("1h"))
    empty = btc_eth.head(0)
    table = ash.backtest_many(bars, [btc_eth, empty], stats_only=True)
    for row, frame in zip(table.iter_rows(named=True), [btc_eth, empty]):
        assert_row_matches(row, ash.backtest(bars, frame).stats())
    assert table.row(1, named=True)["sharpe"] is None and table.row(1, named=True)["trades"] == 0


class Fade(ash.Strategy):
    threshold: float = 0.0
    hold: str = "1h"

    def on_release(self, events):
        hot = events.filter(pl.col("surprise_z").abs() > self.threshold)
        return ash.orders.market(hot, symbol="BTC", side=-pl.col("surprise_z").sign(), size=0.1, exit_after=self.hold)


def calendar() -> pl.DataFrame:
    z = np.random.default_rng(9).normal(0, 1, len(EVENTS))
    return pl.DataFrame(
        {
            "event_id": [f"E{k}" for k in range(len(EVENTS))],
            "kind": "macro",
            "indicator": "CPI_YOY",
            "release_ts": EVENTS,
            "actual": z,
            "consensus": 0.0,
            "surprise_z": z,
            "hawkish_z": z,
        }
    )


def test_strategy_sweep_compiles_each_parameter_set_once_with_a_fresh_instance(monkeypatch):
    compiled, encoded = [], []
    real_compile, real_encode = sweep_module.compile_orders, sweep_module.encode_orders
    monkeypatch.setattr(sweep_module, "compile_orders", lambda s, *a, **k: compiled.append(s) or real_compile(s, *a, **k))
    monkeypatch.setattr(sweep_module, "encode_orders", lambda *a: encoded.append(1) or real_encode(*a))
    bars = walk_bars()
    grid = {"threshold": [0.0, 0.8], "hold": ["30m", "2h"], "fees": [0.0, 0.001, 0.002], "stop_loss": [None, 0.01]}
    sw = ash.Sweep(bars, Fade, grid, calendar=calendar(), init_cash=2_000)
    table = sw.run(threads=2)
    assert table.height == 24
    # one compile and one encoding per (threshold, hold), each by its own new instance
    assert len(compiled) == 4 and len(encoded) == 4
    assert len({id(s) for s in compiled}) == 4
    assert {(s.threshold, s.hold) for s in compiled} == {(t, h) for t in (0.0, 0.8) for h in ("30m", "2h")}
    for i, row in enumerate(table.iter_rows(named=True)):
        strat = Fade(threshold=row["threshold"], hold=row["hold"])
        frame = real_compile(strat, calendar()).with_columns(pl.lit(row["stop_loss"], pl.Float64).alias("stop_loss"))
        alone = ash.backtest(bars, frame, init_cash=2_000, fees=row["fees"])
        assert_row_matches(row, alone.stats())
        if i % 7 == 0:
            assert sw.result(i).trades.equals(alone.trades)
    assert table.filter(pl.col("threshold") == 0.8)["trades"].max() < table.filter(pl.col("threshold") == 0.0)["trades"].min()


def weekday_bars() -> pl.DataFrame:
    """Two symbols, hourly bars on weekdays only (so trading days are not calendar days,
    and backtesting.py's weekend rule annualizes by 252): UP rises at every bar, WALK
    is a random walk."""
    hours = pl.datetime_range(T0, T0 + dt.timedelta(days=18), "1h", eager=True, time_zone="UTC")
    hours = hours.filter(hours.dt.weekday() <= 5)
    n = hours.len()
    up = 100 * np.cumprod(1 + np.random.default_rng(20).uniform(0.0005, 0.002, n))
    walk = 50 * np.exp(np.cumsum(np.random.default_rng(21).normal(0, 0.004, n)))
    frames = []
    for symbol, close in (("UP", up), ("WALK", walk)):
        open_ = np.concatenate([[close[0] * 0.999], close[:-1]])
        frames.append(pl.DataFrame({"ts": hours, "symbol": symbol, "open": open_, "high": np.maximum(open_, close),
                                    "low": np.minimum(open_, close), "close": close}))
    return pl.concat(frames)


class Edge(ash.Strategy):
    """No orders at all, long UP only (never below its peak without fees), or WALK both ways."""

    mode: str = "none"

    def on_release(self, events):
        if self.mode == "none":
            return ash.orders.market(events.head(0), symbol="UP", side=1.0, size=1.0)
        if self.mode == "up":
            return ash.orders.market(events, symbol="UP", side=1.0, size=1.0, exit_after="2h")
        return ash.orders.market(events, symbol="WALK", side=-pl.col("surprise_z").sign(), size=20.0, exit_after="1d")


def test_sweep_rows_equal_stats_under_each_conventions_with_edge_variants():
    import dataclasses

    from aftershock.trading.stats import AFTERSHOCK

    bars = weekday_bars()
    sw = ash.Sweep(bars, Edge, {"mode": ["none", "up", "walk"], "fees": [0.0, 0.001]}, calendar=calendar(),
                   init_cash=10_000)
    alone = [sw.result(i) for i in range(len(sw))]
    custom = dataclasses.replace(AFTERSHOCK, exposure="bars", durations="bar", alpha_risk_free="simple",
                                 returns="trading", name="custom")
    # a replace of AFTERSHOCK keeps its name: the fields, not the name, choose the path
    renamed = dataclasses.replace(AFTERSHOCK, avg_trade="geometric", profit_factor="returns")
    for conventions in (None, "backtesting.py", custom, renamed):
        table = sw.run(threads=2, conventions=conventions)
        assert table.columns == ["mode", "fees", *SWEEP_STATS]
        for row, result in zip(table.iter_rows(named=True), alone):
            assert_row_matches(row, result.stats(conventions=conventions))
    rows = {(r["mode"], r["fees"]): r for r in table.iter_rows(named=True)}
    # the edges: no trade at all, a run that never draws down, and one that does
    assert rows["none", 0.0]["trades"] == 0 and rows["none", 0.0]["expectancy"] is None
    assert rows["up", 0.0]["trades"] > 5 and rows["up", 0.0]["max_drawdown"] == 0.0
    assert rows["up", 0.0]["avg_drawdown"] is None and rows["up", 0.0]["calmar"] is None
    assert rows["walk", 0.001]["avg_drawdown"] < 0 and rows["walk", 0.001]["beta"] is not None
    peer = sw.run(conventions="backtesting.py").row(0, named=True)
    assert (peer["conventions"], peer["return_sampling"], peer["periods_per_year"]) == ("backtesting.py", "trading", 252)
    # an explicit annualization keeps the conventions' sampling
    fixed = ash.Sweep(bars, Edge, {"mode": ["walk"]}, calendar=calendar(), periods_per_year=260, init_cash=10_000)
    assert_row_matches(fixed.run(conventions="backtesting.py").row(0, named=True),
                       fixed.result(0).stats(conventions="backtesting.py", periods_per_year=260, returns="trading"))
    with pytest.raises(ash.ConfigError, match="conventions"):
        sw.run(conventions="zipline")


def test_a_saved_sweep_under_backtesting_py_conventions_verifies_after_loading(tmp_path):
    # regression: a loaded sweep took the 365 it was saved with for an explicit
    # annualization, and re-ran weekday bars with 365 instead of the weekend rule's 252
    sw = ash.Sweep(weekday_bars(), Edge, {"mode": ["walk"]}, calendar=calendar(), init_cash=10_000)
    table = sw.run(conventions="backtesting.py")
    sw.save(tmp_path / "sweep")
    loaded = ash.load(tmp_path / "sweep")
    loaded.verify()
    assert loaded.run(conventions="backtesting.py").equals(table)


def test_backtest_many_encodes_a_repeated_frame_once(monkeypatch):
    calls = []
    real_encode = engine_module.encode_orders
    monkeypatch.setattr(engine_module, "encode_orders", lambda *a: calls.append(1) or real_encode(*a))
    bars = walk_bars(days=2)
    frame = event_orders().head(6)
    other = frame.with_columns(qty=pl.lit(0.1))
    table = ash.backtest_many(bars, [frame, frame, other, frame], [{"fees": f} for f in (0, 1e-4, 0, 2e-4)], stats_only=True)
    assert len(calls) == 2 and table.height == 4
    assert table["total_fees"][0] == 0 and 0 < table["total_fees"][1] < table["total_fees"][3]


def test_grid_errors_name_the_key():
    bars = walk_bars(days=1)
    with pytest.raises(ash.ConfigError, match="nope") as info:
        ash.Sweep(bars, event_orders(), {"nope": [1]})
    assert info.value.column == "nope"
    with pytest.raises(ash.ConfigError, match="non-empty"):
        ash.Sweep(bars, event_orders(), {"fees": []})
    with pytest.raises(ash.ConfigError, match="both"):
        ash.Sweep(bars, event_orders(), {"fees": [0.0]}, fees=0.1)
    with pytest.raises(ash.ConfigError, match="calendar"):
        ash.Sweep(bars, Fade, {"hold": ["1h"]})
    with pytest.raises(ash.ConfigError, match="not an instance"):
        ash.Sweep(bars, Fade(), {"hold": ["1h"]}, calendar=calendar())
    with pytest.raises(ash.ConfigError, match="finite"):
        ash.Sweep(bars, event_orders(), {"stop_loss": [float("nan")]}).run()
    # ranges are the engine's: it names the column
    with pytest.raises(ash.OrdersError) as info:
        ash.Sweep(bars, event_orders(), {"stop_loss": [0.01, 1.5]}).run()
    assert info.value.column == "stop_loss"
    sw = ash.Sweep(bars, event_orders(), {"fees": [0.0, 0.001]})
    with pytest.raises(ash.ConfigError, match="variant index"):
        sw.result(2)
    with pytest.raises(ash.ConfigError, match="threads"):
        sw.run(threads=0)
    with pytest.raises(ash.ConfigError, match="periods_per_year"):
        ash.backtest_many(bars, [event_orders()], stats_only=True, periods_per_year=0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sl=st.one_of(st.none(), st.floats(0.001, 0.05)),
    tp=st.one_of(st.none(), st.floats(0.001, 0.05)),
    hold=st.sampled_from([None, "5m", "1h", "1d"]),
    fees=st.floats(0, 0.002),
    leverage=st.sampled_from([1.0, 3.0]),
    close_at_end=st.booleans(),
    conventions=st.sampled_from([None, "backtesting.py"]),
)
# a fall at the last bar alone once deepened stats()'s episode before it
@example(seed=98, sl=None, tp=None, hold=None, fees=0.0, leverage=1.0, close_at_end=False, conventions=None)
def test_engine_figures_equal_stats_on_random_variants(seed, sl, tp, hold, fees, leverage, close_at_end, conventions):
    bars = walk_bars(days=4, step_min=15, seed=seed)
    frame = event_orders(seed=seed).filter(pl.col("submit_ts") < T0 + dt.timedelta(days=4)).with_columns(
        stop_loss=pl.lit(sl, pl.Float64), take_profit=pl.lit(tp, pl.Float64), exit_after=pl.lit(hold, pl.String),
        qty=pl.lit(0.5 * leverage),
    )
    cfg = {"fees": fees, "leverage": leverage, "close_at_end": close_at_end, "init_cash": 1_000.0}
    fees = cfg.pop("fees")
    row = ash.Sweep(bars, frame, {"fees": [fees]}, **cfg).run(threads=1, conventions=conventions).row(0, named=True)
    assert_row_matches(row, ash.backtest(bars, frame, fees=fees, **cfg).stats(conventions=conventions))


def test_prepared_bars_are_reused_without_a_rescan(monkeypatch):
    bars = walk_bars(days=1)
    prepared = prepare_bars(bars)
    scans = []
    real = engine_module._engine.check_bars
    monkeypatch.setattr(engine_module._engine, "check_bars", lambda *a: scans.append(1) or real(*a))
    ash.Sweep(prepared, event_orders(), {"fees": [0.0, 0.001]}).run()
    assert scans == []


def test_docs_sweeps_example_runs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    ns: dict = {}
    exec(compile(block, "docs/sweeps.md", "exec"), ns)
    table, sw, full, best = ns["table"], ns["sw"], ns["full"], ns["best"]
    assert table.height == len(sw) == 24
    assert full.final_equity == table["final_equity"][best] == table["final_equity"].max()
    assert full.stats()["trades"] == table["trades"][best] > 0
    assert ns["rows"].height == 2
