"""backtest over a Parquet folder, streamed in stretches of time, equals the in-memory
run bit for bit: fills, trades, orders, equity and the engine's figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock.errors import BarsError, ConfigError
from aftershock.trading.results import ENGINE_STATS
from builders import Macro, minute_walk, random_orders, write_hive

CONFIG = dict(fees=0.0005, slippage=0.0001, leverage=2.0, latency="2s", close_at_end=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two symbols, a million one-minute bars each, as symbol/year/month Parquet parts."""
    root = tmp_path_factory.mktemp("bars")
    write_hive(minute_walk(["BTC", "ETH"], 1_000_000, seed=11), root)
    return root


@pytest.fixture(scope="module")
def in_memory(folder):
    bars = ash.read_bars(folder)
    orders = random_orders(bars, 400, seed=3)
    return bars, orders, ash.backtest(bars, orders, **CONFIG)


def _assert_same(a, b):
    for name in ("fills", "trades", "orders", "equity"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.schema == y.schema, name
        assert x.equals(y), name
    want, got = a.stats(), b.stats()
    assert set(got) == set(ENGINE_STATS)
    for k in ENGINE_STATS:
        assert got[k] == want[k] or (got[k] != got[k] and want[k] != want[k]), k


def test_two_million_rows_streamed_in_small_stretches_equal_the_in_memory_run(folder, in_memory):
    bars, orders, want = in_memory
    scan = ash.prices.scan_bars(folder, batch_rows=40_000)
    assert scan.rows == bars.height == 2_000_000
    assert scan.symbols == tuple(bars["symbol"].unique(maintain_order=True))
    got = ash.backtest(scan, orders, **CONFIG)
    assert isinstance(got, ash.trading.stream.StreamedResult)
    # the run is not trivial: positions span stretches and every exit kind occurs
    assert want.trades.height > 200 and want.equity.height > 100_000
    assert {"stop_loss", "take_profit", "time_exit", "end_of_data"} <= set(want.fills["reason"])
    _assert_same(want, got)
    assert got.final_equity == want.final_equity


def test_equity_written_to_parquet_as_the_run_goes(folder, in_memory, tmp_path):
    _, orders, want = in_memory
    out = tmp_path / "equity"
    got = ash.backtest(ash.prices.scan_bars(str(folder), batch_rows=100_000), orders, equity_path=out, **CONFIG)
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) > 5  # one per stretch with rows, not one file at the end
    assert got.scan_equity().collect().equals(want.equity)
    _assert_same(want, got)
    with pytest.raises(ConfigError, match="equity_path"):  # never mixes two runs' rows
        ash.backtest(folder, orders, equity_path=out, **CONFIG)


def test_stretches_are_bounded_and_aligned_in_time(folder):
    scan = ash.prices.scan_bars(folder, batch_rows=25_000)
    seen = {s: 0 for s in scan.symbols}
    last_end = None
    n = 0
    for stretch in scan.stretches():
        n += 1
        starts = [f["ts"][0] for f in stretch.frames.values() if f.height]
        ends = [f["ts"][-1] for f in stretch.frames.values() if f.height]
        assert max(f.height for f in stretch.frames.values()) <= 2 * scan.batch_rows
        if last_end is not None:
            assert min(starts) > last_end
        last_end = max(ends)
        for s, f in stretch.frames.items():
            assert stretch.first_row[s] == seen[s]
            seen[s] += f.height
    assert n >= scan.rows / len(scan.symbols) / (2 * scan.batch_rows) > 15
    assert sum(seen.values()) == scan.rows


def test_files_holding_several_symbols_and_single_files(tmp_path):
    bars = minute_walk(["A", "B", "C"], 30_000, seed=5)
    by_month = bars.with_columns(m=pl.col("ts").dt.month())
    for (m,), part in by_month.partition_by("m", as_dict=True, maintain_order=True).items():
        part.drop("m").sort("symbol", maintain_order=True).write_parquet(tmp_path / f"2020-{m:02d}.parquet")
    mem = ash.read_bars(tmp_path)
    orders = random_orders(mem, 120, seed=9)
    want = ash.backtest(mem, orders, **CONFIG)
    got = ash.backtest(ash.prices.scan_bars(tmp_path, batch_rows=3_000), orders, **CONFIG)
    _assert_same(want, got)
    one = tmp_path / "2020-01.parquet"
    first = ash.read_bars(one)
    orders = random_orders(first, 30, seed=1)
    _assert_same(ash.backtest(first, orders), ash.backtest(one, orders))


def _corrupt(root, symbol, month, change):
    path = root / f"symbol={symbol}" / "year=2020" / f"month={month:02d}" / "part.parquet"
    change(pl.read_parquet(path)).write_parquet(path)


def test_bad_rows_anywhere_raise_naming_the_symbol_and_its_row(tmp_path):
    write_hive(minute_walk(["BTC"], 100_000, seed=2), tmp_path)
    orders = pl.DataFrame({"submit_ts": [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)], "symbol": ["BTC"],
                           "side": ["buy"], "qty": [1.0]})
    mem = ash.read_bars(tmp_path)
    row = int(mem["ts"].search_sorted(dt.datetime(2020, 2, 1, tzinfo=dt.timezone.utc))) + 7
    _corrupt(tmp_path, "BTC", 2, lambda df: df.with_columns(
        low=pl.when(pl.int_range(pl.len()) == 7).then(pl.col("high") * 2).otherwise(pl.col("low"))))
    with pytest.raises(BarsError, match="BTC") as err:
        ash.backtest(ash.prices.scan_bars(tmp_path, batch_rows=5_000), orders)
    assert err.value.row == row and err.value.column == "high"


def test_files_out_of_time_order_raise(tmp_path):
    write_hive(minute_walk(["BTC"], 100_000, seed=2), tmp_path)
    _corrupt(tmp_path, "BTC", 2, lambda df: df.with_columns(pl.col("ts") - dt.timedelta(days=20)))
    orders = pl.DataFrame({"submit_ts": [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)], "symbol": ["BTC"],
                           "side": ["buy"], "qty": [1.0]})
    with pytest.raises(BarsError, match="not strictly increasing") as err:
        ash.backtest(tmp_path, orders)
    assert err.value.column == "ts"


def test_what_needs_bars_in_memory_says_so(folder, in_memory, tmp_path):
    _, orders, _ = in_memory
    with pytest.raises(ConfigError, match="Strategy"):
        ash.backtest(folder, Macro(), calendar=pl.DataFrame())
    with pytest.raises(ConfigError, match="equity_path"):
        ash.backtest(in_memory[0], orders, equity_path="x")
    got = ash.backtest(ash.prices.scan_bars(folder, batch_rows=500_000), orders.head(20))
    with pytest.raises(ConfigError, match="periods_per_year"):
        got.stats(periods_per_year=252)
    with pytest.raises(ConfigError, match="in memory"):
        got.report("x.html")
    with pytest.raises(BarsError, match="batch_rows"):
        ash.prices.scan_bars(folder, batch_rows=1)
    with pytest.raises(FileNotFoundError):
        ash.prices.scan_bars(folder / "nowhere")
    pl.DataFrame({"time": [1], "close": [1.0]}).write_parquet(tmp_path / "no_ts.parquet")
    with pytest.raises(BarsError, match="no 'ts' column"):
        ash.prices.scan_bars(tmp_path / "no_ts.parquet", symbol="X")
    assert np.isfinite(got.final_equity)
