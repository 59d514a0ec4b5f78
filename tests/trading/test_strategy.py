"""Strategy API, order builders, sweeps, reports and the CLI."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock.calendar import OUTCOME_COLUMNS
from aftershock.trading.strategy import compile_orders

UTC = dt.timezone.utc
RELEASES = [dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC), dt.datetime(2025, 3, 12, 12, 30, tzinfo=UTC)]


def calendar() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ["CPI-A", "CPI-B"],
            "kind": ["macro", "macro"],
            "indicator": ["CPI_YOY", "CPI_YOY"],
            "release_ts": RELEASES,
            "actual": [3.0, 2.8],
            "consensus": [2.9, 2.9],
            "surprise_z": [1.5, -0.4],
            "hawkish_z": [1.5, -0.4],
        }
    )


def bars() -> pl.DataFrame:
    frames = []
    for k, release in enumerate(RELEASES):
        ts = [release - dt.timedelta(minutes=30) + dt.timedelta(minutes=m) for m in range(180)]
        price = 100.0 + np.arange(180) * (0.1 if k == 0 else -0.1)
        frames.append(
            pl.DataFrame({"ts": ts, "symbol": "BTC", "open": price, "high": price + 0.05, "low": price - 0.05, "close": price})
        )
    return pl.concat(frames)


class Fade(ash.Strategy):
    threshold: float = 1.0
    hold: str = "1h"

    def on_release(self, events):
        hot = events.filter(pl.col("surprise_z").abs() > self.threshold)
        return ash.orders.market(hot, symbol="BTC", side=-pl.col("surprise_z").sign(), size=1.0, exit_after=self.hold)


def test_parameters_defaults_and_unknown():
    assert Fade.params == {"threshold": 1.0, "hold": "1h"}
    s = Fade(threshold=0.3)
    assert (s.threshold, s.hold) == (0.3, "1h")
    assert repr(s) == "Fade(threshold=0.3, hold='1h')"
    with pytest.raises(ash.ConfigError) as info:
        Fade(treshold=2)
    assert info.value.column == "treshold"


def test_on_release_orders_fill_after_release_plus_latency():
    r = ash.backtest(bars(), Fade(), calendar=calendar(), latency="2s", init_cash=1_000)
    # only CPI-A (|z| 1.5 > 1) trades: short at the 13:31 open, out 1h later
    assert r.fills["tag"].to_list() == ["CPI-A", "CPI-A"]
    assert r.fills["ts"].to_list() == [RELEASES[0] + dt.timedelta(minutes=1), RELEASES[0] + dt.timedelta(minutes=61)]
    assert r.fills["side"].to_list() == ["sell", "buy"]
    # price rises 0.1 per minute from 100 at release-30m: entry 103.1, exit 109.1
    assert r.trades["pnl"].item() == pytest.approx(-6.0)


def test_before_release_cannot_see_actuals():
    seen = {}

    class Peek(ash.Strategy):
        def before_release(self, events):
            seen["columns"] = events.columns
            return None

    compile_orders(Peek(), calendar())
    assert not set(OUTCOME_COLUMNS) & set(seen["columns"])
    assert "consensus" in seen["columns"] and "release_ts" in seen["columns"]


def test_look_ahead_is_refused():
    class Early(ash.Strategy):
        def on_release(self, events):
            return ash.orders.market(events, symbol="BTC", side="buy", size=1.0, delay="-1m")

    with pytest.raises(ash.LookAheadError) as info:
        ash.backtest(bars(), Early(), calendar=calendar())
    assert info.value.column == "submit_ts" and info.value.row == 0


def test_strategy_class_instead_of_instance_is_a_clear_error():
    with pytest.raises(ash.ConfigError, match="instance"):
        ash.backtest(bars(), Fade, calendar=calendar())
    with pytest.raises(ash.ConfigError, match="calendar"):
        ash.backtest(bars(), Fade())


def test_builders_limit_stop_and_zero_side():
    ev = calendar().with_columns(sig=pl.Series([1.0, 0.0]))
    o = ash.orders.limit(ev, symbol="BTC", side=pl.col("sig"), size=2.0, price=99.0, expire_after="30m")
    assert o.height == 1  # zero signal: no order
    row = o.row(0, named=True)
    assert (row["order_type"], row["tif"], row["limit_price"], row["tag"]) == ("limit", "gtd", 99.0, "CPI-A")
    assert row["expire_ts"] == RELEASES[0] + dt.timedelta(minutes=30)
    s = ash.orders.stop(ev, symbol="BTC", side="sell", size=1.0, price=95.0)
    assert s["stop_price"].to_list() == [95.0, 95.0]
    with pytest.raises(ash.OrdersError):
        ash.orders.market(ev, symbol="BTC", side="short", size=1.0)


def test_sweep_matches_individual_backtests_and_thread_count():
    grid = {"threshold": [0.3, 1.0], "hold": ["15m", "1h"], "fees": [0.0, 0.001]}
    a = ash.sweep(bars(), Fade, grid, calendar=calendar(), threads=1, init_cash=1_000)
    b = ash.sweep(bars(), Fade, grid, calendar=calendar(), threads=3, init_cash=1_000)
    assert a.equals(b)
    assert a.height == 8
    for row in a.iter_rows(named=True):
        single = ash.backtest(
            bars(), Fade(threshold=row["threshold"], hold=row["hold"]), calendar=calendar(), fees=row["fees"], init_cash=1_000
        )
        assert row["final_equity"] == single.final_equity
        assert row["trades"] == single.stats()["trades"]
    with pytest.raises(ash.ConfigError):
        ash.sweep(bars(), Fade, {"nope": [1]}, calendar=calendar())


def test_report_is_written_with_every_section(tmp_path):
    r = ash.backtest(bars(), Fade(threshold=0.3), calendar=calendar(), init_cash=1_000)
    path = r.report(tmp_path / "r.html")
    text = open(path, encoding="utf-8").read()
    for section in ("Headline figures", "Equity", "Attribution by event", "Trades", "Plotly.newPlot", "CPI-A", "CPI-B"):
        assert section in text
    att = ash.report.attribution(r)
    assert att["tag"].to_list() == ["CPI-A", "CPI-B"]
    assert att["pnl"].sum() == pytest.approx(r.final_equity - 1_000)


def test_cli_backtest(tmp_path):
    b = bars()
    bars_path = tmp_path / "bars.parquet"
    b.write_parquet(bars_path)
    orders = pl.DataFrame({"submit_ts": [RELEASES[0]], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]})
    orders_path = tmp_path / "orders.parquet"
    orders.write_parquet(orders_path)
    out = subprocess.run(
        [sys.executable, "-m", "aftershock.cli", "backtest", str(bars_path), str(orders_path), "--init-cash", "1000"],
        capture_output=True, text=True, check=True,
    )
    assert "final_equity" in out.stdout
    # decided at 13:30: bought at the open of the first bar after it (13:31), still
    # held at the end: marked at the last close
    entry = b.filter(pl.col("ts") > RELEASES[0])["open"][0]
    final = float([line for line in out.stdout.splitlines() if "final_equity" in line][0].split(":")[1])
    assert final == pytest.approx(1_000 + (b["close"][-1] - entry))


def test_regression_builder_literals_keep_their_type():
    # cached literals once returned 0.0 for False (equal keys): reduce_only became Float64
    ev = calendar()
    ash.orders.market(ev, symbol="BTC", side="buy", size=0.0, size_type="target_percent")  # caches 0.0
    a = ash.orders.market(ev, symbol="BTC", side="buy", size=1.0)  # reduce_only=False
    b = ash.orders.market(ev, symbol="BTC", side="buy", size=True and 1, reduce_only=True)
    assert a.schema["reduce_only"] == pl.Boolean and a["reduce_only"].to_list() == [False, False]
    assert b["reduce_only"].to_list() == [True, True] and b.schema["qty"] == pl.Float64
