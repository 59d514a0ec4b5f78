"""resample_bars and bar_gaps, checked by hand and against the real 1-hour files."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from aftershock.prices import BARS_SCHEMA, bar_gaps, read_bars, resample_bars

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 3, tzinfo=UTC)


def minute_bars(symbol: str, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.random(n) * 0.001)
    low = np.minimum(open_, close) * (1 - rng.random(n) * 0.001)
    return pl.DataFrame(
        {"ts": [T0 + dt.timedelta(minutes=i) for i in range(n)], "symbol": symbol, "open": open_, "high": high,
         "low": low, "close": close, "volume": rng.random(n) * 10},
        schema=BARS_SCHEMA,
    )


def test_ohlcv_aggregation_by_hand():
    bars = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=m) for m in (0, 1, 2, 3, 4, 5, 6)],
            "symbol": "A",
            "open": [10.0, 11, 12, 11, 10, 20, 21],
            "high": [11.0, 13, 12.5, 11, 10.5, 21, 22],
            "low": [9.5, 10.5, 10.8, 9.0, 9.8, 19, 20],
            "close": [11.0, 12, 11, 10, 10.2, 21, 21.5],
            "volume": [1.0, 2, 3, 4, 5, 6, 7],
        },
        schema=BARS_SCHEMA,
    )
    out = resample_bars(bars, "5m", count=True)
    assert out.rows() == [
        (T0, "A", 10.0, 13.0, 9.0, 10.2, 15.0, 5),
        (T0 + dt.timedelta(minutes=5), "A", 20.0, 22.0, 19.0, 21.5, 13.0, 2),
    ]


@pytest.mark.parametrize("every,minutes", [("5m", 5), ("15m", 15), ("1h", 60), ("1d", 1440)])
def test_multi_symbol_interleaved_matches_numpy(every, minutes):
    n = 3 * 1440
    a, b = minute_bars("BTC", n, 1), minute_bars("ETH", n, 2)
    mixed = pl.concat([a, b]).sort("ts", "symbol")  # interleaved rows
    out = resample_bars(mixed, every)
    assert out["symbol"].unique(maintain_order=True).to_list() == ["BTC", "ETH"]
    for sym, src in (("BTC", a), ("ETH", b)):
        got = out.filter(symbol=sym)
        k = n // minutes
        assert got.height == k
        o = src["open"].to_numpy().reshape(k, minutes)
        h = src["high"].to_numpy().reshape(k, minutes)
        lo = src["low"].to_numpy().reshape(k, minutes)
        c = src["close"].to_numpy().reshape(k, minutes)
        v = src["volume"].to_numpy().reshape(k, minutes)
        np.testing.assert_array_equal(got["open"].to_numpy(), o[:, 0])
        np.testing.assert_array_equal(got["high"].to_numpy(), h.max(axis=1))
        np.testing.assert_array_equal(got["low"].to_numpy(), lo.min(axis=1))
        np.testing.assert_array_equal(got["close"].to_numpy(), c[:, -1])
        np.testing.assert_allclose(got["volume"].to_numpy(), v.sum(axis=1), rtol=1e-12)
        assert got["ts"][1] - got["ts"][0] == dt.timedelta(minutes=minutes)


def test_missing_bars_are_not_filled_and_are_reported():
    bars = minute_bars("BTC", 180, 3)
    holey = bars.filter(~pl.col("ts").dt.minute().is_between(20, 29) | (pl.col("ts").dt.hour() != 0))
    holey = holey.filter(pl.col("ts").dt.hour() != 1)  # a whole hour missing
    out = resample_bars(holey, "1h", count=True)
    assert out["ts"].to_list() == [T0, T0 + dt.timedelta(hours=2)]
    assert out["n_bars"].to_list() == [50, 60]
    gaps = bar_gaps(holey)
    assert gaps.rows() == [
        ("BTC", T0 + dt.timedelta(minutes=20), T0 + dt.timedelta(minutes=30), 10),
        ("BTC", T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2), 60),
    ]
    assert bar_gaps(bars).height == 0
    assert bar_gaps(holey, every="30m").height == 1  # only the hour is a gap at 30m spacing


def test_resample_of_real_5m_spot_equals_real_1h_on_every_shared_hour(real_data):
    five = read_bars(real_data / "btc_5m_spot", symbol="BTC")
    hourly = read_bars(real_data / "btc_1h_spot", symbol="BTC")
    ours = resample_bars(five, "1h", count=True)
    joined = ours.join(hourly, on=["ts", "symbol"], suffix="_real")
    assert joined.height == 2880  # Dec 2024, Jan, Feb and Apr 2025 (March 5m missing)
    assert (joined["n_bars"] == 12).all()
    for col in ("open", "high", "low", "close"):
        assert (joined[col] == joined[f"{col}_real"]).all(), col
    np.testing.assert_allclose(joined["volume"], joined["volume_real"], rtol=1e-9)


def test_real_1m_window_resamples_to_the_futures_5m_bars(real_data):
    window = read_bars(real_data / "btc_1m_futures_windows", symbol="BTC")
    five = read_bars(real_data / "btc_5m_futures" / "BTCUSDT-5m-2025-02.csv", symbol="BTC")
    joined = resample_bars(window, "5m", count=True).filter(pl.col("n_bars") == 5).join(five, on=["ts", "symbol"], suffix="_f")
    assert joined.height >= 6
    for col in ("open", "high", "low", "close"):
        assert (joined[col] == joined[f"{col}_f"]).all(), col
