"""Calibration: the 95% interval of the estimated sensitivity covers the planted one in
about 95% of seeded runs.

The generator here is the test's own (a random walk of 5-minute log returns with a jump
of ``sensitivity * hawkish_z`` plus heteroskedastic noise in the bar that opens at each
release), so the proof does not depend on another module. When
``aftershock.datasets.synthetic_market`` is available, the same check runs on it too.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from aftershock.datasets import synthetic_market

from aftershock import event_study as es

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)
PLANTED = {"CPI_YOY": -0.004, "NFP": 0.002}


def generate(seed: int, n_events: int = 60):
    rng = np.random.default_rng(seed)
    n_days = n_events + 8
    n = n_days * 288
    ts = pl.datetime_range(START, START + (n - 1) * timedelta(minutes=5), "5m", eager=True, time_zone="UTC")
    r = rng.standard_t(4, n) * 0.0007
    rel, ind, z = [], [], []
    for k in range(n_events):
        rel.append(START + timedelta(days=5 + k, hours=13, minutes=30))
        ind.append("CPI_YOY" if k % 2 == 0 else "NFP")
        z.append(float(rng.normal()))
    z = np.array(z)
    bar = ((np.array([t.timestamp() for t in rel]) - START.timestamp()) // 300).astype(int)
    slope = np.array([PLANTED[i] for i in ind])
    r[bar] += slope * z + rng.normal(0, 0.002, n_events) * (0.5 + np.abs(z))
    close = 100 * np.exp(np.cumsum(r))
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": close, "high": close, "low": close, "close": close})
    cal = pl.DataFrame({"event_id": [f"e{k}" for k in range(n_events)], "kind": "macro", "indicator": ind,
                        "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")), "hawkish_z": z})
    return bars, cal


def coverage(seeds, cov="HC3"):
    hits, slopes = 0, {k: [] for k in PLANTED}
    total = 0
    for seed in seeds:
        bars, cal = generate(seed)
        st = es.study(bars, cal, windows=["15m"], model="constant_mean", estimation=("-2d", "0"), cov=cov, exclude=("-1m", "30m"))
        s = st.sensitivity.filter(pl.col("spec") == "single")
        for row in s.iter_rows(named=True):
            truth = PLANTED[row["indicator"]]
            hits += row["ci_low"] <= truth <= row["ci_high"]
            slopes[row["indicator"]].append(row["slope"])
            total += 1
    return hits, total, {k: np.mean(v) for k, v in slopes.items()}


def binomial_bounds(n: int, p: float = 0.95, z: float = 3.0) -> tuple[float, float]:
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_calibration_40_runs():
    hits, total, means = coverage(range(20))  # 20 seeds × 2 indicators = 40 intervals
    lo, hi = binomial_bounds(total)
    assert total == 40
    assert lo <= hits <= min(hi, total), (hits, total)
    for ind, m in means.items():
        assert abs(m - PLANTED[ind]) < 0.0015, (ind, m)


@pytest.mark.slow
def test_calibration_200_runs():
    for cov in ("HC3", "HC1"):
        hits, total, means = coverage(range(100, 200), cov=cov)  # 200 intervals
        lo, hi = binomial_bounds(total)
        assert lo <= hits <= min(hi, total), (cov, hits, total)
        for ind, m in means.items():
            assert abs(m - PLANTED[ind]) < 0.0006, (ind, m)


def _calibration_calendar(seed: int, n_events: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(10_000 + seed)
    rel = [START + timedelta(days=3 + 3 * k, hours=13, minutes=30) for k in range(n_events)]
    return pl.DataFrame({"event_id": [f"c{k}" for k in range(n_events)], "kind": "macro", "indicator": "CPI_YOY",
                         "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")), "hawkish_z": rng.normal(size=n_events)})


@pytest.mark.parametrize("runs", [pytest.param(40, id="40-runs"), pytest.param(200, id="200-runs", marks=pytest.mark.slow)])
def test_calibration_on_synthetic_market(runs):
    planted = -0.004
    hits = 0
    slopes = []
    for seed in range(runs):
        cal = _calibration_calendar(seed)
        market = synthetic_market(cal, symbols=("BTC",), freq="5m", seed=seed, sensitivity={"BTC": {"CPI_YOY": planted}})
        truth = market.truth.filter(pl.col("symbol") == "BTC")
        assert truth["sensitivity"].unique().to_list() == [planted]
        st = es.study(market.bars, cal, windows=["15m"], model="constant_mean", exclude=("-1m", "30m"))
        row = st.sensitivity.filter((pl.col("spec") == "single") & (pl.col("symbol") == "BTC")).row(0, named=True)
        assert row["n"] == cal.height
        hits += row["ci_low"] <= planted <= row["ci_high"]
        slopes.append(row["slope"])
    lo, hi = binomial_bounds(runs)
    assert lo <= hits <= min(hi, runs), (hits, runs)
    assert abs(np.mean(slopes) - planted) < 4 * np.std(slopes) / math.sqrt(runs)
