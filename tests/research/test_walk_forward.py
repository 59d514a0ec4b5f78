"""Walk-forward: fold boundaries and purging by property, the stitched out-of-sample
equity against backtests run independently on each test window, the in-sample choice
against single backtests, and end-to-end runs on the bundled sample."""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aftershock as ash
from aftershock.research import fold_bounds, training_mask, walk_forward
from aftershock.trading.strategy import compile_orders

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
if str(STRATEGIES) not in sys.path:
    sys.path.insert(0, str(STRATEGIES))

UTC = dt.timezone.utc
HOUR = 3_600_000_000
FEES, LATENCY = 0.0004, "2s"

# ----------------------------------------------------------------- boundaries by property

spans = st.integers(1, 500).map(lambda h: h * HOUR)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 10**6), length=st.integers(1, 5000).map(lambda h: h * HOUR), train=spans, test=spans,
       step=spans, anchored=st.booleans())
def test_time_folds_tile_the_data(start, length, train, test, step, anchored):
    end = start + length
    folds = fold_bounds(start, end, train=train, test=test, step=step, anchored=anchored)
    for k, (t0, split, t1) in enumerate(folds):
        assert split == start + train + k * step  # splits advance by step
        assert t1 - split == test and t1 <= end  # whole test windows inside the data
        assert t0 == (start if anchored else split - train)  # training precedes its test window
        assert start <= t0 < split
    # no further whole fold fits
    assert start + train + len(folds) * step + test > end
    if step == test:  # default step: test windows tile without gap or overlap
        assert all(a[2] == b[1] for a, b in zip(folds, folds[1:]))


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.integers(1, 10**4), min_size=0, max_size=60, unique=True), train=st.integers(1, 8),
       test=st.integers(1, 5), step=st.integers(1, 5), anchored=st.booleans(), lead=st.integers(0, 3))
def test_event_folds_count_releases(events, train, test, step, anchored, lead):
    e = np.array(sorted(events), dtype=np.int64) * 10
    start, end = 0, 10**5 + 10
    folds = fold_bounds(start, end, train=train, test=test, step=step, anchored=anchored, events=e, lead=lead)
    assert len(folds) == (max(0, (len(e) - train - test) // step + 1) if len(e) >= train + test else 0)
    for k, (t0, split, t1) in enumerate(folds):
        in_test = (e - lead >= split) & (e - lead < t1)
        in_train = (e - lead >= t0) & (e - lead < split)
        assert in_test.sum() == test  # the next M releases to trade
        if anchored:
            assert t0 == start and in_train.sum() == train + k * step
        else:
            assert in_train.sum() == train  # N releases to fit
        assert t0 <= split <= t1


@settings(max_examples=300, deadline=None)
@given(submit=st.lists(st.integers(0, 1000), max_size=40), t0=st.integers(0, 400), width=st.integers(1, 600),
       horizon=st.integers(0, 200), embargo=st.integers(0, 100))
def test_purging_keeps_no_event_whose_holding_period_crosses_the_split(submit, t0, width, horizon, embargo):
    s = np.array(submit, dtype=np.int64)
    split = t0 + width
    keep = training_mask(s, t0, split, horizon, embargo)
    # kept: inside the training window, holding period and embargo end by the split
    assert np.all(s[keep] >= t0) and np.all(s[keep] + horizon + embargo <= split)
    # dropped from the window: exactly those whose holding period (or embargo) crosses
    dropped = (s >= t0) & (s < split) & ~keep
    assert np.all(s[dropped] + horizon + embargo > split)
    # nothing from the test side (>= split) is ever used to fit
    assert not np.any(keep & (s >= split))


def test_bad_fold_settings_are_config_errors():
    with pytest.raises(ash.ConfigError) as e:
        fold_bounds(0, 10, train=0, test=1, step=1, anchored=False)
    assert e.value.column == "train"


# ----------------------------------------------------------------- purging in a run


def _minute_bars(days: int) -> pl.DataFrame:
    n = days * 24 * 60
    ts = pl.datetime_range(dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC)
                           + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.standard_normal(n) * 5e-4))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame({"ts": ts, "symbol": "X", "open": open_, "high": np.maximum(open_, close) * 1.0002,
                         "low": np.minimum(open_, close) * 0.9998, "close": close})


def test_an_order_held_across_the_split_is_purged_from_training():
    bars = _minute_bars(10)
    t = dt.datetime(2025, 1, 1, tzinfo=UTC)
    orders = pl.DataFrame({
        "submit_ts": [t + dt.timedelta(days=1), t + dt.timedelta(days=3, hours=20),  # 4h hold ends after the split
                      t + dt.timedelta(days=5), t + dt.timedelta(days=6)],
        "symbol": "X", "side": ["buy", "sell", "buy", "sell"], "qty": 1.0, "exit_after": "4h",
    })
    wf = walk_forward(bars, orders, {"take_profit": [0.001, 0.01]}, train="4d", test="2d", anchored=True)
    first = wf.folds.row(0, named=True)
    assert first["train_end"] == t + dt.timedelta(days=4)
    assert (first["train_orders"], first["purged_orders"]) == (1, 1)
    assert first["test_orders"] == 1
    # an embargo of 2d20h reaches back past the first order (submitted 3 days before the split)
    wf2 = walk_forward(bars, orders, {"take_profit": [0.001, 0.01]}, train="4d", test="2d", anchored=True,
                       embargo="2d20h")
    assert (wf2.folds["train_orders"][0], wf2.folds["purged_orders"][0]) == (0, 2)


def test_orders_without_a_holding_period_need_purge():
    bars = _minute_bars(4)
    orders = pl.DataFrame({"submit_ts": [dt.datetime(2025, 1, 2, tzinfo=UTC)], "symbol": "X", "side": "buy", "qty": 1.0})
    with pytest.raises(ash.ConfigError, match="purge") as e:
        walk_forward(bars, orders, {"take_profit": [0.01]}, train="1d", test="1d")
    assert e.value.column == "purge"
    wf = walk_forward(bars, orders, {"take_profit": [0.01]}, train="1d", test="1d", purge="6h")
    assert wf.folds.height == 3


# ----------------------------------------------------------------- against independent backtests


@pytest.fixture(scope="module")
def sample():
    return ash.datasets.sample()


GRID = {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"]}


def _check_against_single_backtests(wf, sample, grid):
    """Each fold's chosen variant is the argmax of single in-sample backtests on purged
    training orders, and each test window's equity is a backtest of that variant run
    alone on that window's bars, from the previous window's final equity."""
    from cpi_fade import CpiFade

    bars = sample.bars
    horizon = wf.params["purge_us"]
    embargo = wf.params["embargo_us"]
    cash = 100_000.0
    stitched = []
    keys = list(grid)
    variants = [dict(zip(keys, v)) for v in __import__("itertools").product(*grid.values())]
    compiled = {}
    for row in wf.folds.iter_rows(named=True):
        t0, split, t1 = row["train_start"], row["train_end"], row["test_end"]
        scores = []
        for v in variants:
            key = tuple(v.items())
            if key not in compiled:
                o = compile_orders(CpiFade(**v), sample.calendar, bars)
                if "submit_ts" not in o.columns:  # no signal at all: no orders
                    o = pl.DataFrame(schema={"submit_ts": pl.Datetime("us", "UTC"), "symbol": pl.String,
                                             "side": pl.String, "qty": pl.Float64})
                compiled[key] = o
            o = compiled[key]
            s_us = o["submit_ts"].dt.epoch("us")
            split_us = int(split.timestamp() * 1e6)
            o_train = o.filter((pl.col("submit_ts") >= t0) & (s_us + horizon + embargo <= split_us))
            r = ash.backtest(bars.filter((pl.col("ts") >= t0) & (pl.col("ts") < split)), o_train, fees=FEES,
                             latency=LATENCY, close_at_end=True)
            sharpe = r.stats()["sharpe"]
            scores.append(-math.inf if sharpe is None or math.isnan(sharpe) else sharpe)
        assert row["variant"] == int(np.argmax(scores))
        chosen = variants[row["variant"]]
        assert {k: row[k] for k in keys} == chosen
        o = compiled[tuple(chosen.items())]
        o_test = o.filter((pl.col("submit_ts") >= split) & (pl.col("submit_ts") < t1))
        r = ash.backtest(bars.filter((pl.col("ts") >= split) & (pl.col("ts") < t1)), o_test, fees=FEES,
                         latency=LATENCY, close_at_end=True, init_cash=cash)
        assert row["test_orders"] == o_test.height
        assert row["oos_total_return"] == r.stats()["total_return"]
        stitched.append(r.equity.with_columns(pl.lit(row["fold"], pl.Int64).alias("fold")))
        cash = r.final_equity
    expected = pl.concat(stitched)
    assert wf.equity.equals(expected)
    assert wf.oos_return() == pytest.approx(cash / 100_000.0 - 1.0, rel=1e-15)


def test_time_folds_equal_independent_backtests(sample):
    from cpi_fade import CpiFade

    wf = walk_forward(sample.bars, CpiFade, GRID, calendar=sample.calendar, train="30d", test="15d",
                      fees=FEES, latency=LATENCY)
    assert wf.folds.height == 4
    _check_against_single_backtests(wf, sample, GRID)


def test_event_folds_equal_independent_backtests(sample, tmp_path):
    from cpi_fade import INFLATION, CpiFade

    releases = sample.calendar.filter(pl.col("indicator").is_in(INFLATION))
    wf = walk_forward(sample.bars, CpiFade, GRID, calendar=sample.calendar, train=3, test=2, events=releases,
                      fees=FEES, latency=LATENCY, embargo="1h")
    instants = releases["release_ts"].unique().sort()
    assert wf.folds.height == (instants.len() - 3 - 2) // 2 + 1
    for row in wf.folds.iter_rows(named=True):  # three releases to fit, the next two to trade
        assert instants.filter((instants >= row["train_start"]) & (instants < row["train_end"])).len() == 3
        assert instants.filter((instants >= row["test_start"]) & (instants < row["test_end"])).len() == 2
    _check_against_single_backtests(wf, sample, GRID)
    # the report shows in- and out-of-sample side by side, offline
    text = Path(wf.report(str(tmp_path / "wf.html"))).read_text()
    assert "in-sample" in text and "out-of-sample" in text and 'id="walk-forward"' in text
    assert not re.search(r"<script[^>]+src=", text) and "cdn.plot.ly/plotly" not in text
    fig = wf.plot()
    names = {t.name for t in fig.data}
    assert {"in-sample", "out-of-sample", "out-of-sample equity"} <= names


def test_end_to_end_on_the_sample(sample):
    """An anchored run with an order-column grid: the figures table holds the objective
    in and out of sample for every fold; other objectives are honoured."""
    from cpi_fade import CpiFade

    wf = walk_forward(sample.bars, CpiFade, {"threshold": [0.25, 1.0], "stop_loss": [0.005, 0.02]},
                      calendar=sample.calendar, train="20d", test="10d", anchored=True, objective="total_return",
                      fees=FEES, latency=LATENCY)
    assert wf.folds["train_start"].n_unique() == 1
    for c in ("is_total_return", "oos_total_return", "is_sharpe", "oos_sharpe"):
        assert c in wf.folds.columns
    for row, table in zip(wf.folds.iter_rows(named=True), wf.training):
        assert row["is_total_return"] == table["total_return"].max()
    s = wf.summary()
    assert s["folds"] == wf.folds.height and s["oos_total_return"] == wf.oos_return()
    with pytest.raises(ash.ConfigError) as e:
        walk_forward(sample.bars, CpiFade, GRID, calendar=sample.calendar, train="20d", test="10d", objective="nope")
    assert e.value.column == "objective"
    with pytest.raises(ash.ConfigError):
        walk_forward(sample.bars, CpiFade, GRID, calendar=sample.calendar, train="200d", test="10d")
    with pytest.raises(ash.ConfigError) as e:  # overlapping test windows cannot be stitched
        walk_forward(sample.bars, CpiFade, GRID, calendar=sample.calendar, train="20d", test="10d", step="5d")
    assert e.value.column == "step"


# ----------------------------------------------------------------- signals


def test_signal_walk_forward_equals_independent_from_signals_runs():
    from aftershock.research import Signals

    bars = _minute_bars(9)
    rng = np.random.default_rng(8)
    entries = rng.random(bars.height) < 0.01
    exits = rng.random(bars.height) < 0.01
    grid = {"sl_stop": [0.001, 0.004], "tp_stop": [0.002, 0.01]}
    sig = Signals(entries, exits, settings={"fees": 0.0005, "size": 10.0})
    wf = walk_forward(bars, sig, grid, train="3d", test="2d", purge="2h", embargo="1h")
    assert wf.folds.height == 3
    ts = bars["ts"].dt.epoch("us").to_numpy()
    cash, stitched = 100_000.0, []
    for row in wf.folds.iter_rows(named=True):
        lo, mid, hi = (int(np.searchsorted(ts, int(row[c].timestamp() * 1e6))) for c in ("train_start", "train_end", "test_end"))
        split = int(row["train_end"].timestamp() * 1e6)
        fit_entries = entries[lo:mid] & (ts[lo:mid] + 3 * HOUR <= split)  # purge 2h + embargo 1h
        scores = []
        for sl in grid["sl_stop"]:
            for tp in grid["tp_stop"]:
                r = ash.from_signals(bars.slice(lo, mid - lo), fit_entries, exits[lo:mid], fees=0.0005, size=10.0,
                                     sl_stop=sl, tp_stop=tp)
                s = r.stats()["sharpe"]
                scores.append(-math.inf if s is None or math.isnan(s) else s)
        assert row["variant"] == int(np.argmax(scores))
        r = ash.from_signals(bars.slice(mid, hi - mid), entries[mid:hi], exits[mid:hi], fees=0.0005, size=10.0,
                             sl_stop=row["sl_stop"], tp_stop=row["tp_stop"], init_cash=cash)
        assert row["oos_total_return"] == r.stats()["total_return"]
        stitched.append(r.equity.with_columns(pl.lit(row["fold"], pl.Int64).alias("fold")))
        cash = r.final_equity
    assert wf.equity.equals(pl.concat(stitched))
