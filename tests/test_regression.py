"""Sensitivity regressions against statsmodels (OLS with HC1 and HC3) to 1e-10."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from aftershock import event_study as es
from aftershock.event_study.regression import coef_row, ols

UTC = timezone.utc


def sm_fit(x, y, cov):
    return sm.OLS(y, x).fit(cov_type=cov, use_t=True)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("seed", range(5))
def test_ols_matches_statsmodels(k, seed):
    rng = np.random.default_rng(seed)
    n = 15 + 10 * seed
    x = np.column_stack([np.ones(n), rng.standard_t(3, (n, k))])
    y = x @ rng.normal(size=k + 1) + rng.normal(size=n) * (1 + np.abs(x[:, 1]))
    res = ols(x, y)
    h1, h3 = sm_fit(x, y, "HC1"), sm_fit(x, y, "HC3")
    np.testing.assert_allclose(res.coef, h1.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.se_hc1, h1.bse, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.se_hc3, h3.bse, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.t_hc1, h1.tvalues, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(res.t_hc3, h3.tvalues, rtol=1e-10, atol=1e-10)
    assert res.r2 == pytest.approx(h1.rsquared, abs=1e-10)
    for j in range(1, k + 1):
        row = coef_row(res, j, "HC3")
        lo, hi = h3.conf_int()[j]
        assert row["ci_low"] == pytest.approx(lo, abs=1e-10) and row["ci_high"] == pytest.approx(hi, abs=1e-10)
        assert row["p"] == pytest.approx(h3.pvalues[j], rel=1e-8, abs=1e-14)
        row1 = coef_row(res, j, "HC1")
        assert row1["ci_low"] == pytest.approx(h1.conf_int()[j][0], abs=1e-10)


def test_ols_refuses_rank_deficient_or_saturated_designs():
    x = np.column_stack([np.ones(5), np.arange(5.0), 2 * np.arange(5.0)])
    assert ols(x, np.arange(5.0)) is None
    assert ols(np.ones((1, 1)), np.ones(1)) is None


def small_study(seed=3, n_events=48):
    """Three indicators; CPI_YOY and CORE_CPI_MOM share the release minute."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    n = 140 * 288
    ts = pl.datetime_range(start, start + (n - 1) * timedelta(minutes=5), "5m", eager=True, time_zone="UTC")
    rel, ind, z = [], [], []
    for k in range(n_events):
        t = start + timedelta(days=3 + 2 * k, hours=13, minutes=30)
        names = ["CPI_YOY", "CORE_CPI_MOM"] if k % 3 == 0 else (["PPI_YOY"] if k % 3 == 1 else ["CPI_YOY"])
        for nm in names:
            rel.append(t)
            ind.append(nm)
            z.append(float(rng.normal()))
    cal = pl.DataFrame({"event_id": [f"e{i}" for i in range(len(rel))], "kind": "macro", "indicator": ind,
                        "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")), "hawkish_z": z})
    r = rng.normal(0, 0.0003, n)
    # plant a response in the bar after each release
    idx = ((cal["release_ts"].dt.epoch("us").to_numpy() - ts[0].timestamp() * 1e6) // 300e6).astype(int)
    for i, zz in zip(idx, z):
        r[i] += -0.002 * zz + rng.normal(0, 0.0005) * abs(zz)
    c = 100 * np.exp(np.cumsum(r))
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": c, "high": c, "low": c, "close": c})
    return es.study(bars, cal, windows=["-1h", "15m", "1h"], model="constant_mean", estimation=("-3d", "0"))


@pytest.fixture(scope="module")
def st():
    return small_study()


def test_single_and_asymmetric_slopes_match_statsmodels(st):
    r = st.reactions
    checked = 0
    for (ind, win), part in r.group_by(["indicator", "window"]):
        part = part.filter(pl.col("car").is_not_null())
        y, z = part["car"].to_numpy(), part["hawkish_z"].to_numpy()
        sens = st.sensitivity.filter((pl.col("indicator") == ind) & (pl.col("window") == win))
        single = sens.filter(pl.col("spec") == "single").row(0, named=True)
        x = sm.add_constant(z)
        h1, h3 = sm_fit(x, y, "HC1"), sm_fit(x, y, "HC3")
        assert single["n"] == y.size
        assert single["slope"] == pytest.approx(h1.params[1], abs=1e-10)
        assert single["intercept"] == pytest.approx(h1.params[0], abs=1e-10)
        assert single["se_hc1"] == pytest.approx(h1.bse[1], abs=1e-10)
        assert single["se_hc3"] == pytest.approx(h3.bse[1], abs=1e-10)
        assert single["t_hc1"] == pytest.approx(h1.tvalues[1], abs=1e-10)
        assert single["t_hc3"] == pytest.approx(h3.tvalues[1], abs=1e-10)
        assert single["r2"] == pytest.approx(h1.rsquared, abs=1e-10)
        xa = np.column_stack([np.ones(y.size), np.maximum(z, 0), np.minimum(z, 0)])
        a3, a1 = sm_fit(xa, y, "HC3"), sm_fit(xa, y, "HC1")
        for spec, j in (("positive", 1), ("negative", 2)):
            row = sens.filter(pl.col("spec") == spec).row(0, named=True)
            assert row["slope"] == pytest.approx(a3.params[j], abs=1e-10)
            assert row["se_hc3"] == pytest.approx(a3.bse[j], abs=1e-10)
            assert row["se_hc1"] == pytest.approx(a1.bse[j], abs=1e-10)
            assert row["t_hc3"] == pytest.approx(a3.tvalues[j], abs=1e-10)
        checked += 1
    assert checked == 9


def test_joint_regression_matches_statsmodels_on_same_minute_releases(st):
    r = st.reactions.filter(pl.col("car").is_not_null() & (pl.col("window") == "15m")).to_pandas()
    wide = r.pivot_table(index="release_ts", columns="indicator", values="hawkish_z", aggfunc="sum").fillna(0.0)
    y = r.groupby("release_ts")["car"].first().loc[wide.index].to_numpy()
    names = sorted(wide.columns)
    x = sm.add_constant(wide[names].to_numpy())
    h3, h1 = sm_fit(x, y, "HC3"), sm_fit(x, y, "HC1")
    joint = st.sensitivity.filter((pl.col("spec") == "joint") & (pl.col("window") == "15m")).sort("indicator")
    assert joint["indicator"].to_list() == names
    np.testing.assert_allclose(joint["slope"].to_numpy(), h3.params[1:], atol=1e-10, rtol=0)
    np.testing.assert_allclose(joint["se_hc3"].to_numpy(), h3.bse[1:], atol=1e-10, rtol=0)
    np.testing.assert_allclose(joint["se_hc1"].to_numpy(), h1.bse[1:], atol=1e-10, rtol=0)
    np.testing.assert_allclose(joint["t_hc3"].to_numpy(), h3.tvalues[1:], atol=1e-10, rtol=0)
    assert (joint["n"] == y.size).all()
    assert joint["r2"][0] == pytest.approx(h3.rsquared, abs=1e-10)


def test_planted_negative_response_is_found(st):
    # The same-minute pair contaminates each other's single regression; the joint one
    # separates them (-0.002 per unit surprise was planted on every indicator).
    joint = st.sensitivity.filter((pl.col("spec") == "joint") & (pl.col("window") == "15m"))
    assert (joint["t_hc3"] < -3).all()
    assert ((joint["slope"] + 0.002).abs() < 3 * joint["se_hc3"]).all()
    ppi = st.sensitivity.filter((pl.col("spec") == "single") & (pl.col("window") == "15m") & (pl.col("indicator") == "PPI_YOY"))
    assert ppi["t_hc3"][0] < -3
    pre = st.sensitivity.filter((pl.col("spec") == "single") & (pl.col("window") == "-1h"))
    assert (pre["t_hc3"].abs() < 4).all()
