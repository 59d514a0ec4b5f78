"""The price-alignment rule, on bars of several resolutions.

Bars are stamped at their open time; a bar of length L closes at ts + L. The price as of
t is the close of the last bar with ts + L <= t, and it must be fresh: ts + L > t - L.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from aftershock import event_study as es

UTC = timezone.utc
T = datetime(2025, 2, 12, 13, 30, tzinfo=UTC)  # the January CPI release


def make_bars(start: datetime, n: int, every: timedelta, symbol: str = "BTC", seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    ts = [start + i * every for i in range(n)]
    return pl.DataFrame(
        {
            "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
            "symbol": symbol,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.arange(1.0, n + 1.0),
        }
    )


def calendar(*times: datetime) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(times))],
            "kind": "macro",
            "indicator": "CPI_YOY",
            "release_ts": pl.Series(list(times), dtype=pl.Datetime("us", "UTC")),
            "hawkish_z": [1.0] * len(times),
        }
    )


def close_at(bars: pl.DataFrame, open_ts: datetime) -> float:
    return bars.filter(pl.col("ts") == open_ts)["close"].item()


def row(st: es.Study, window: str, event: str = "e0", symbol: str = "BTC") -> dict:
    return st.reactions.filter(
        (pl.col("event_id") == event) & (pl.col("window") == window) & (pl.col("symbol") == symbol)
    ).row(0, named=True)


@pytest.mark.parametrize("minutes", [1, 5])
def test_intraday_bars_anchor_on_the_bar_that_ends_at_the_release(minutes):
    every = timedelta(minutes=minutes)
    bars = make_bars(T - timedelta(days=2), 4 * 24 * 60 // minutes, every)
    st = es.study(bars, calendar(T), windows=["-10h", "15m", "1h"], model="zero_mean")
    r = row(st, "15m")
    anchor = close_at(bars, T - every)  # the bar [T - L, T): strictly before the release
    end = close_at(bars, T + timedelta(minutes=15) - every)
    assert r["price_start"] == anchor and r["price_end"] == end
    assert r["start_ts"] == T and r["end_ts"] == T + timedelta(minutes=15)
    assert r["bars"] == 15 // minutes
    assert r["ret"] == pytest.approx(math.log(end / anchor), abs=1e-15)
    assert r["pct"] == pytest.approx(end / anchor - 1, abs=1e-12)
    assert r["car"] == r["ret"] and r["reason"] is None
    d = row(st, "-10h")
    assert d["price_start"] == close_at(bars, T - timedelta(hours=10) - every)
    assert d["price_end"] == anchor and d["window_kind"] == "drift"


def test_the_bar_containing_the_release_is_never_the_anchor():
    every = timedelta(minutes=5)
    bars = make_bars(T - timedelta(days=1), 2 * 24 * 12, every)
    # The bar that opens at the release jumps; the anchor must not see it.
    bars = bars.with_columns(
        pl.when(pl.col("ts") >= T).then(pl.col("close") * 0.9).otherwise(pl.col("close")).alias("close"),
        pl.when(pl.col("ts") >= T).then(pl.col("low") * 0.9).otherwise(pl.col("low")).alias("low"),
        pl.when(pl.col("ts") >= T).then(pl.col("open") * 0.9).otherwise(pl.col("open")).alias("open"),
        pl.when(pl.col("ts") >= T).then(pl.col("high") * 0.9).otherwise(pl.col("high")).alias("high"),
    )
    st = es.study(bars, calendar(T), windows=["5m"], model="zero_mean")
    r = row(st, "5m")
    assert r["price_start"] == close_at(bars, T - every)
    assert r["price_end"] == close_at(bars, T)
    assert r["ret"] < math.log(0.95)


def test_release_between_bar_boundaries():
    every = timedelta(minutes=5)
    bars = make_bars(T - timedelta(days=1), 2 * 24 * 12, every)
    t = T + timedelta(minutes=2)  # 13:32
    st = es.study(bars, calendar(t), windows=["15m"], model="zero_mean")
    r = row(st, "15m")
    # as of 13:32 the last finished bar is 13:25-13:30; as of 13:47 it is 13:40-13:45
    assert r["start_ts"] == T and r["end_ts"] == T + timedelta(minutes=15)
    assert r["price_start"] == close_at(bars, T - every)
    assert r["price_end"] == close_at(bars, T + timedelta(minutes=10))


def test_hourly_bars_window_below_resolution_is_null_with_reason():
    every = timedelta(hours=1)
    bars = make_bars(T.replace(minute=0) - timedelta(days=5), 10 * 24, every)
    st = es.study(bars, calendar(T), windows=["15m", "1h", "4h"], model="zero_mean")
    r15 = row(st, "15m")
    assert r15["ret"] is None and r15["car"] is None and r15["reason"] == "below_resolution"
    r1 = row(st, "1h")
    # as of 13:30 → bar 12:00 (closes 13:00); as of 14:30 → bar 13:00 (closes 14:00)
    assert r1["start_ts"] == T - timedelta(minutes=30) and r1["end_ts"] == T + timedelta(minutes=30)
    assert r1["price_start"] == close_at(bars, T - timedelta(minutes=90))
    assert r1["price_end"] == close_at(bars, T - timedelta(minutes=30))
    assert row(st, "4h")["bars"] == 4


def test_daily_bars():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    bars = make_bars(start, 80, timedelta(days=1))
    with pytest.warns(UserWarning, match="exclude="):  # one event, 80 days: no estimation data left
        st = es.study(bars, calendar(T), windows=["1d", "2w", "-1w"], model="zero_mean")
    r = row(st, "1d")
    assert r["price_start"] == close_at(bars, datetime(2025, 2, 11, tzinfo=UTC))
    assert r["price_end"] == close_at(bars, datetime(2025, 2, 12, tzinfo=UTC))
    assert r["end_ts"] == datetime(2025, 2, 13, tzinfo=UTC)
    assert row(st, "2w")["bars"] == 14 and row(st, "-1w")["bars"] == 7


def test_uncovered_windows_are_null_with_reasons():
    every = timedelta(minutes=5)
    start = T - timedelta(hours=12)
    bars = make_bars(start, 12 * 12 + 12, every)  # ends at 14:30
    # drop bars so that 13:20-13:30 and 13:40-13:45 are missing
    holes = [T - timedelta(minutes=10), T - timedelta(minutes=5), T + timedelta(minutes=10)]
    bars = bars.filter(~pl.col("ts").is_in(pl.Series(holes, dtype=pl.Datetime("us", "UTC")).implode()))
    early = start - timedelta(hours=1)
    cal = calendar(T, early, T + timedelta(minutes=20))
    st = es.study(bars, cal, windows=["-10h", "5m", "1h", "4h"], model="zero_mean", min_estimation=1)
    assert row(st, "5m", "e0")["reason"] == "gap_at_start"
    assert row(st, "-10h", "e0")["reason"] == "gap_at_end"
    assert row(st, "-10h", "e1")["reason"] == "before_data"
    assert row(st, "4h", "e2")["reason"] == "after_data"
    e2 = row(st, "5m", "e2")  # 13:50 → 13:55: the 13:45 and 13:50 bars exist
    assert e2["ret"] is not None and e2["price_start"] == close_at(bars, T + timedelta(minutes=15))
    # every return of this short history lies in some event's window: nothing to fit on
    assert e2["reason"] == "short_estimation" and e2["car"] is None
    gap_end = es.study(bars, calendar(T + timedelta(minutes=25)), windows=["-10m"], model="zero_mean", min_estimation=1)
    # as of 13:45 the last closed bar is 13:35-13:40 (13:40-13:45 is missing) → stale
    assert row(gap_end, "-10m")["reason"] == "gap_at_start"
    for r in st.reactions.filter(pl.col("reason").is_not_null()).iter_rows(named=True):
        if r["reason"] != "short_estimation":
            assert r["ret"] is None and r["price_start"] is None


def test_bar_length_override_and_inference_with_gaps():
    every = timedelta(minutes=5)
    bars = make_bars(T - timedelta(days=1), 2 * 24 * 12, every)
    sparse = bars.filter(pl.int_range(pl.len()) % 7 != 3)  # holes do not change the inferred length
    st = es.study(sparse, calendar(T), windows=["15m"], model="zero_mean")
    assert st.settings["bar_length_us"]["BTC"] == 300_000_000
    forced = es.study(bars, calendar(T), windows=["15m"], model="zero_mean", bar_length="15m")
    r = row(forced, "15m")
    # pretending the bars last 15 minutes, the anchor is the bar that opened at 13:15
    assert r["price_start"] == close_at(bars, T - timedelta(minutes=15))


def test_volatility_and_volume_windows_by_hand():
    every = timedelta(minutes=5)
    bars = make_bars(T - timedelta(days=1), 2 * 24 * 12, every)
    st = es.study(bars, calendar(T), windows=["15m"], model="zero_mean")
    r = row(st, "15m")
    lc = np.log(bars["close"].to_numpy())
    ts = bars["ts"].to_list()
    i0 = ts.index(T - every)
    after = np.diff(lc[i0 : i0 + 4])
    before = np.diff(lc[i0 - 3 : i0 + 1])
    vol = bars["volume"].to_numpy()
    assert r["rv"] == pytest.approx(math.sqrt(np.sum(after**2)), rel=1e-9)
    assert r["rv_before"] == pytest.approx(math.sqrt(np.sum(before**2)), rel=1e-9)
    assert r["volume"] == pytest.approx(vol[i0 + 1 : i0 + 4].sum())
    assert r["volume_before"] == pytest.approx(vol[i0 - 2 : i0 + 1].sum())


def test_several_symbols_interleaved_and_different_resolutions():
    a = make_bars(T - timedelta(days=2), 4 * 24 * 12, timedelta(minutes=5), "BTC", seed=1)
    b = make_bars(T.replace(minute=0) - timedelta(days=2), 4 * 24, timedelta(hours=1), "ETH", seed=2)
    bars = pl.concat([a, b]).sort("ts", "symbol")
    st = es.study(bars, calendar(T), windows=["15m", "1h"], model="zero_mean")
    assert row(st, "15m", symbol="BTC")["price_start"] == close_at(a, T - timedelta(minutes=5))
    assert row(st, "15m", symbol="ETH")["reason"] == "below_resolution"
    assert row(st, "1h", symbol="ETH")["price_end"] == close_at(b, T - timedelta(minutes=30))
    assert st.settings["bar_length_us"] == {"BTC": 300_000_000, "ETH": 3_600_000_000}


def test_window_extremes_use_the_bars_closing_inside_the_window():
    every = timedelta(minutes=5)
    bars = make_bars(T - timedelta(days=1), 2 * 24 * 12, every)
    st = es.study(bars, calendar(T), windows=["15m", "-1h"], model="zero_mean")
    r = row(st, "15m")
    inside = bars.filter((pl.col("ts") >= T) & (pl.col("ts") < T + timedelta(minutes=15)))
    assert inside.height == 3
    assert r["low_ret"] == pytest.approx(math.log(inside["low"].min() / r["price_start"]), abs=1e-15)
    assert r["high_ret"] == pytest.approx(math.log(inside["high"].max() / r["price_start"]), abs=1e-15)
    d = row(st, "-1h")
    before = bars.filter((pl.col("ts") >= T - timedelta(hours=1)) & (pl.col("ts") < T))
    assert d["low_ret"] == pytest.approx(math.log(before["low"].min() / d["price_start"]), abs=1e-15)
