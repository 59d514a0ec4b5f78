"""datasets.sample() and the SYNTHETIC market generator: determinism, sessions, planted
truth recovered from the bars, calibration reproduced from real data."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math

import numpy as np
import polars as pl
import pytest

from aftershock.calendar import INDICATORS, q1_2025_calendar, surprises
from aftershock.datasets import CALIBRATION, SYMBOLS, sample, synthetic_market
from aftershock.errors import ConfigError
from aftershock.prices import BARS_SCHEMA, resample_bars, validate_bars

UTC = dt.timezone.utc
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_sample_shape_schema_and_determinism():
    s = sample()
    bars, calendar = s  # a named pair
    assert bars.schema == pl.Schema(BARS_SCHEMA)
    validate_bars(bars)
    assert calendar.equals(q1_2025_calendar())
    counts = dict(bars.group_by("symbol").len().iter_rows())
    assert counts["BTC"] == counts["ETH"] == 94 * 1440  # 2025-01-01 .. 2025-04-04, 24/7
    assert 80_000 < counts["NQ"] < 100_000
    assert bars.height < 400_000
    assert sample().bars.equals(bars)
    assert s.synthetic is True
    assert s.truth.height > 0


def test_nasdaq_futures_keep_cme_hours():
    ny = sample().bars.filter(symbol="NQ").with_columns(pl.col("ts").dt.convert_time_zone("America/New_York").alias("ny"))
    assert ny.filter(pl.col("ny").dt.weekday() == 6).height == 0  # Saturday
    assert ny.filter(pl.col("ny").dt.hour() == 17).height == 0  # daily halt 17:00-18:00 ET
    assert ny.filter((pl.col("ny").dt.weekday() == 7) & (pl.col("ny").dt.hour() < 18)).height == 0
    assert ny.filter((pl.col("ny").dt.weekday() == 5) & (pl.col("ny").dt.hour() >= 17)).height == 0
    # a full weekday session is 23 hours of minutes
    wed = ny.filter(pl.col("ny").dt.date() == dt.date(2025, 2, 12))
    assert wed.height == 23 * 60


def test_truth_is_sensitivity_times_hawkish_z():
    s = sample()
    z = surprises(s.calendar).select("event_id", "hawkish_z").drop_nulls()
    t = s.truth.join(z, on="event_id", suffix="_cal")
    assert t.height == s.truth.height == 3 * z.height
    np.testing.assert_allclose(t["hawkish_z"], t["hawkish_z_cal"])
    np.testing.assert_allclose(t["jump"], t["sensitivity"] * t["hawkish_z"])
    btc = t.filter(symbol="BTC")
    assert (btc["sensitivity"] == CALIBRATION["sensitivity"]).all()
    assert (t.filter(symbol="NQ")["sensitivity"] == CALIBRATION["sensitivity"] * SYMBOLS["NQ"]["sensitivity_scale"]).all()
    # the February CPI beat (3.0 vs 2.9) is hawkish: BTC was planted a fall
    cpi = btc.filter(event_id="CPI_YOY-2025-02-12").row(0, named=True)
    assert cpi["hawkish_z"] > 0 and cpi["jump"] < 0
    assert cpi["release_ts"] == dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC) == cpi["bar_ts"]


def quiet_calendar() -> pl.DataFrame:
    return surprises(q1_2025_calendar())


def test_planted_jumps_are_recovered_exactly_without_noise():
    m = synthetic_market(quiet_calendar(), symbols=("BTC", "NQ"), start="2025-01-01", end="2025-04-01",
                         seed=1, sensitivity=0.01, daily_vol=1e-12, post_vol_boost=0.0)
    bars = m.bars.with_columns((pl.col("close") / pl.col("open")).log().alias("r"))
    got = m.truth.group_by("symbol", "bar_ts").agg(pl.col("jump").sum()).join(
        bars, left_on=["symbol", "bar_ts"], right_on=["symbol", "ts"]
    )
    assert got.height == m.truth.select("symbol", "bar_ts").unique().height
    np.testing.assert_allclose(got["r"], got["jump"], atol=1e-9)
    # NFP and unemployment share 13:30 UTC: their jumps add up on one bar
    jan10 = m.truth.filter(symbol="BTC", release_ts=dt.datetime(2025, 1, 10, 13, 30, tzinfo=UTC))
    assert jan10.height == 2
    # away from releases nothing moves
    still = bars.join(m.truth.select("symbol", pl.col("bar_ts").alias("ts")), on=["symbol", "ts"], how="anti")
    assert still["r"].abs().max() < 1e-9


def test_sensitivity_dict_and_pre_release_drift():
    sens = {"BTC": {"CPI_YOY": 0.02}, "ETH": 0.005}
    m = synthetic_market(quiet_calendar(), symbols=("BTC", "ETH"), start="2025-02-01", end="2025-03-01",
                         sensitivity=sens, daily_vol=1e-12, post_vol_boost=0.0, pre_drift=0.25, pre_drift_minutes=60)
    btc = m.truth.filter(symbol="BTC")
    assert set(btc.filter(pl.col("sensitivity") != 0)["indicator"]) == {"CPI_YOY"}
    assert (m.truth.filter(symbol="ETH")["sensitivity"] == 0.005).all()
    row = btc.filter(event_id="CPI_YOY-2025-02-12").row(0, named=True)
    total = row["jump"] + row["pre_drift"]
    assert row["pre_drift"] == pytest.approx(0.25 * total)
    closes = m.bars.filter(symbol="BTC").with_columns(pl.col("close").log().alias("lc"))
    before = closes.filter(pl.col("ts") == row["release_ts"] - dt.timedelta(minutes=61))["lc"].item()
    just_before = closes.filter(pl.col("ts") == row["release_ts"] - dt.timedelta(minutes=1))["lc"].item()
    at = closes.filter(pl.col("ts") == row["release_ts"])["lc"].item()
    assert just_before - before == pytest.approx(row["pre_drift"], abs=1e-9)
    assert at - just_before == pytest.approx(row["jump"], abs=1e-9)


def test_seeds_and_errors():
    cal = quiet_calendar()
    a = synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-03", seed=7)
    b = synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-03", seed=7)
    c = synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-03", seed=8)
    assert a.bars.equals(b.bars) and not a.bars.equals(c.bars)
    assert "SYNTHETIC" in repr(a)
    with pytest.raises(ConfigError) as err:
        synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-02", volatility=0.1)
    assert err.value.column == "volatility"
    with pytest.raises(ConfigError):
        synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-02", t_df=2.0)
    five = synthetic_market(cal, symbols=("BTC",), start="2025-01-01", end="2025-01-02", freq="5m")
    assert five.bars.height == 288


def test_sample_statistics_follow_the_calibration():
    btc = sample().bars.filter(symbol="BTC")
    daily = resample_bars(btc, "1d").select(pl.col("close").log().diff()).drop_nulls().to_series()
    assert daily.std() == pytest.approx(CALIBRATION["daily_vol"], rel=0.25)
    r = btc.select(pl.col("ts").dt.hour().alias("h"), (pl.col("close") / pl.col("open")).log().alias("r"))
    by_hour = r.group_by("h").agg((pl.col("r") ** 2).mean().sqrt().alias("rms")).sort("h")["rms"].to_numpy()
    pattern = np.asarray(CALIBRATION["hourly_pattern"])
    assert by_hour[5] / by_hour[14] == pytest.approx(pattern[5] / pattern[14], rel=0.2)
    x = r["r"].to_numpy()
    assert (np.mean(x**4) / np.mean(x**2) ** 2 - 3) > 3  # fat tails (Gaussian: 0)


def _calibration_module():
    spec = importlib.util.spec_from_file_location("calibrate_synthetic", REPO / "scripts" / "calibrate_synthetic.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_calibration_script_reproduces_the_defaults(real_data):
    result = _calibration_module().calibrate(real_data)
    bars, rel = result["bars"], result["releases"]
    for key in ("daily_vol", "five_minute_vol", "t_df", "excess_kurtosis_5m"):
        assert bars[key] == CALIBRATION[key], key
    assert tuple(bars["hourly_pattern"]) == CALIBRATION["hourly_pattern"]
    for key in ("release_abs_move_15m", "baseline_abs_move_15m", "post_vol_boost", "post_vol_tau_minutes", "sensitivity"):
        assert rel[key] == CALIBRATION[key], key
    for code, (n, mean, std) in result["priors"].items():
        ind = INDICATORS[code]
        assert (ind.prior_n, ind.prior_mean, ind.prior_std) == (n, mean, std), code
    # and the measured release reaction is what the docs say: hawkish surprises sell BTC
    assert rel["sensitivity"] < 0 and rel["sensitivity_t"] < -2
    assert math.isclose(sum(p * p for p in bars["hourly_pattern"]) / 24, 1.0, rel_tol=1e-2)
