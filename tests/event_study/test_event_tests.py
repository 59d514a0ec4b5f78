"""Normal-return models and test statistics, recomputed by hand with plain NumPy.

The reference below re-derives everything from the bars with explicit loops: which
returns fall in each event's estimation window (after removing every event's window),
the model parameters, CARs and their prediction variances, and each test statistic from
its textbook formula. Nothing here calls the implementation's helpers.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from aftershock import event_study as es

UTC = timezone.utc
START = datetime(2025, 1, 1, tzinfo=UTC)
EVERY = timedelta(minutes=5)
WINDOWS = ["-2h", "15m", "1h"]
EST = (-2 * 86400, -2 * 3600)  # estimation (-2d, 0) is cut back to the earliest window start, -2h
EXCL = (-2 * 3600, 3600)  # every event's [-2h, +1h] is removed from estimation data


def fixture(seed: int = 7, n_days: int = 24, n_events: int = 10):
    rng = np.random.default_rng(seed)
    n = n_days * 288
    ts = [START + i * EVERY for i in range(n)]
    m = rng.standard_t(5, n) * 0.001
    r = 0.0001 + 1.3 * m + rng.normal(0, 0.0015, n) * (1 + rng.uniform(0, 1, n))
    frames = []
    for sym, ret in (("BTC", r), ("NQ", m)):
        c = 100 * np.exp(np.cumsum(ret))
        frames.append(pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")), "symbol": sym,
                                    "open": c, "high": c, "low": c, "close": c}))
    bars = pl.concat(frames)
    rel = [START + timedelta(days=1 + 2 * k, hours=13, minutes=30) for k in range(n_events)]
    cal = pl.DataFrame({
        "event_id": [f"e{k}" for k in range(n_events)],
        "kind": "macro",
        "indicator": "CPI_YOY",
        "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")),
        "hawkish_z": rng.normal(size=n_events),
    })
    return bars, cal


def reference(bars: pl.DataFrame, cal: pl.DataFrame, sym: str, model: str, window_s: int, n_blocks: int = 100, kp_bars: int = 500):
    """Per-event CAR, SD, SCAR, n_est, the event-window and block ARs, and residual rows."""
    b = bars.filter(pl.col("symbol") == sym)
    ct = b["ts"].dt.epoch("s").to_numpy() + 300
    lc = np.log(b["close"].to_numpy())
    mc = np.log(bars.filter(pl.col("symbol") == "NQ")["close"].to_numpy())
    rel = cal["release_ts"].dt.epoch("s").to_numpy()
    out = []
    for T in rel:
        usable = []
        for j in range(1, ct.size):
            hit = any(ct[j] > Tk + EXCL[0] and ct[j - 1] < Tk + EXCL[1] for Tk in rel)
            usable.append((j, not hit))
        est = [j for j, ok in usable if ok and T + EST[0] < ct[j] <= T + EST[1]]
        r = np.array([lc[j] - lc[j - 1] for j in est])
        mm = np.array([mc[j] - mc[j - 1] for j in est])
        n = r.size
        if model == "constant_mean":
            alpha, beta, k = r.mean(), 0.0, 1
            s2 = np.sum((r - alpha) ** 2) / (n - 1)
        else:
            beta, alpha = np.polyfit(mm, r, 1)
            k = 2
            s2 = np.sum((r - alpha - beta * mm) ** 2) / (n - 2)
        i0 = int(np.nonzero(ct == T)[0][0])
        i1 = int(np.nonzero(ct == T + window_s)[0][0])
        h = i1 - i0
        big_m = mc[i1] - mc[i0]
        car = (lc[i1] - lc[i0]) - alpha * h - beta * big_m
        if model == "constant_mean":
            var = s2 * (h + h * h / n)
        else:
            x = np.column_stack([np.ones(n), mm])
            xs = np.column_stack([np.ones(h), np.diff(mc[i0 : i1 + 1])])
            g = np.ones(h) @ xs
            var = s2 * (h + g @ np.linalg.inv(x.T @ x) @ g)
        ok_set = {j for j, ok in usable if ok}
        lo = max(j for j in range(ct.size) if ct[j] <= T + EST[0]) if ct[0] <= T + EST[0] else 0
        hi = max(j for j in range(ct.size) if ct[j] <= T + EST[1])
        blocks = []
        for bb in range(1, n_blocks + 1):
            a, z = hi - bb * h, hi - (bb - 1) * h
            if a < lo:
                break
            js = range(a + 1, z + 1)
            if all(j in ok_set for j in js):
                blocks.append(sum(lc[j] - lc[j - 1] for j in js) - alpha * h - beta * sum(mc[j] - mc[j - 1] for j in js))
        resid = [
            (lc[j] - lc[j - 1] - alpha - beta * (mc[j] - mc[j - 1])) if (j > lo and j in ok_set) else np.nan
            for j in range(hi - kp_bars + 1, hi + 1)
        ]
        out.append({"car": car, "sd": math.sqrt(var), "n": n, "k": k, "blocks": np.array(blocks), "resid": np.array(resid)})
    return out


@pytest.fixture(scope="module")
def data():
    return fixture()


@pytest.mark.parametrize("model", ["constant_mean", "market"])
@pytest.mark.parametrize("window, seconds", [("15m", 900), ("1h", 3600)])
def test_cars_and_statistics_match_a_hand_computation(data, model, window, seconds):
    bars, cal = data
    st = es.study(bars, cal, windows=WINDOWS, model=model, benchmark="NQ", estimation=("-2d", "0"), kp_bars=200)
    ref = reference(bars, cal, "BTC", model, seconds, kp_bars=200)
    got = st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("window") == window)).sort("release_ts")
    car = np.array([e["car"] for e in ref])
    sd = np.array([e["sd"] for e in ref])
    n_est = np.array([e["n"] for e in ref])
    np.testing.assert_allclose(got["car"].to_numpy(), car, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["sd"].to_numpy(), sd, rtol=1e-12)
    np.testing.assert_array_equal(got["n_est"].to_numpy(), n_est)
    scar = car / sd
    n = car.size
    k = ref[0]["k"]

    t_cs = car.mean() / (car.std(ddof=1) / math.sqrt(n))
    patell = scar.sum() / math.sqrt(np.sum((n_est - k) / (n_est - k - 2.0)))
    bmp = scar.mean() / (scar.std(ddof=1) / math.sqrt(n))
    resid = np.array([e["resid"] for e in ref])
    assert np.isfinite(resid).all()
    c = np.corrcoef(resid)
    rbar = (c.sum() - n) / (n * (n - 1))
    kp = bmp * math.sqrt((1 - rbar) / (1 + (n - 1) * rbar))
    num, var = 0.0, 0.0
    pos, wins = [], 0
    for e, a0 in zip(ref, car):
        bl = e["blocks"]
        rank = 1 + np.sum(bl < a0) + 0.5 * np.sum(bl == a0)
        m = bl.size
        num += rank / (m + 2) - 0.5
        var += m / (12 * (m + 2))
        pos.append(np.mean(bl > 0))
        wins += a0 > 0
    rank_z = num / math.sqrt(var)
    p = np.mean(pos)
    sign_z = (wins - n * p) / math.sqrt(n * p * (1 - p))

    row = st.tests.filter((pl.col("symbol") == "BTC") & (pl.col("window") == window) & ~pl.col("signed")).row(0, named=True)
    assert row["n"] == n
    assert row["mean_car"] == pytest.approx(car.mean(), rel=1e-9)
    assert row["t_cs"] == pytest.approx(t_cs, rel=1e-8)
    assert row["p_cs"] == pytest.approx(2 * stats.t.sf(abs(t_cs), n - 1), rel=1e-6)
    assert row["patell_z"] == pytest.approx(patell, rel=1e-8)
    assert row["p_patell"] == pytest.approx(2 * stats.norm.sf(abs(patell)), rel=1e-6)
    assert row["bmp_t"] == pytest.approx(bmp, rel=1e-8)
    assert row["kp_rbar"] == pytest.approx(rbar, rel=1e-8, abs=1e-12)
    assert row["kp_t"] == pytest.approx(kp, rel=1e-8)
    assert row["rank_z"] == pytest.approx(rank_z, rel=1e-9)
    assert row["sign_z"] == pytest.approx(sign_z, rel=1e-9)


def test_signed_tests_flip_each_event_by_its_surprise_sign(data):
    bars, cal = data
    st = es.study(bars, cal, windows=WINDOWS, model="constant_mean", estimation=("-2d", "0"))
    r = st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("window") == "15m"))
    signed = (r["car"] * r["hawkish_z"].sign()).to_numpy()
    row = st.tests.filter((pl.col("symbol") == "BTC") & (pl.col("window") == "15m") & pl.col("signed")).row(0, named=True)
    assert row["mean_car"] == pytest.approx(signed.mean(), rel=1e-12)
    assert row["t_cs"] == pytest.approx(signed.mean() / (signed.std(ddof=1) / math.sqrt(signed.size)), rel=1e-10)


def test_zero_mean_model_uses_raw_returns_and_mean_square(data):
    bars, cal = data
    st = es.study(bars, cal, windows=WINDOWS, model="zero_mean", estimation=("-2d", "0"))
    r = st.reactions.filter(pl.col("window") == "1h")
    assert (r["car"] == r["ret"]).all()
    assert (r["expected"] == 0).all()


def test_market_model_of_the_benchmark_itself_falls_back_to_constant_mean(data):
    bars, cal = data
    st = es.study(bars, cal, windows=WINDOWS, model="market", benchmark="NQ", estimation=("-2d", "0"))
    nq = st.reactions.filter(pl.col("symbol") == "NQ")
    assert nq["car"].null_count() == 0 and nq["sd"].null_count() == 0


def test_estimation_excludes_every_event_window(data):
    bars, cal = data
    narrow = es.study(bars, cal, windows=WINDOWS, estimation=("-2d", "0"), exclude=("-1m", "1m"))
    wide = es.study(bars, cal, windows=WINDOWS, estimation=("-2d", "0"))
    def n_est(st):
        return st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("window") == "15m"))["n_est"].to_numpy()

    # (T-2d, T-2h] holds 46 h = 552 five-minute returns; the previous event, 2 days
    # earlier, removes its [-2h, +1h] (12 returns inside this window) or its [-1m, +1m] (1).
    assert (n_est(wide)[1:] == 552 - 12).all()
    assert (n_est(narrow)[1:] == 552 - 1).all()


def test_cross_sectional_statistics_on_a_tiny_fixture():
    from aftershock.event_study import tests_stats as t

    car = np.array([0.01, -0.02, 0.03, 0.015])
    assert t.cross_sectional_t(car) == pytest.approx(0.00875 / (np.std(car, ddof=1) / 2))
    scar = np.array([1.0, -0.5, 2.0, 0.5])
    n_est = np.array([100, 50, 80, 10])
    expect = 3.0 / math.sqrt(99 / 97 + 49 / 47 + 79 / 77 + 9 / 7)
    assert t.patell_z(scar, n_est, 1) == pytest.approx(expect, rel=1e-12)
    assert t.kp_adjust(2.0, 0.1, 5) == pytest.approx(2.0 * math.sqrt(0.9 / 1.4))
    # event ranks: 0.5 is 3rd of {0.1, 0.2, 0.5, 0.9} → U = 3/5; -1 is 1st of 3 → U = 1/4
    blocks = np.array([[0.1, 0.2, 0.9], [0.3, 0.4, np.nan]])
    z = t.corrado_rank_z(np.array([0.5, -1.0]), blocks)
    assert z == pytest.approx((3 / 5 - 0.5 + 1 / 4 - 0.5) / math.sqrt(3 / 60 + 2 / 48))
    p = (1.0 + 1.0) / 2
    assert math.isnan(t.generalized_sign_z(np.array([0.5, -1.0]), blocks)) or p == 1.0
    blocks2 = np.array([[0.1, -0.2, 0.9, -0.1], [0.3, -0.4, np.nan, np.nan]])
    p = (2 / 4 + 1 / 2) / 2
    assert t.generalized_sign_z(np.array([0.5, 1.0]), blocks2) == pytest.approx((2 - 2 * p) / math.sqrt(2 * p * (1 - p)))


def test_benchmark_on_another_grid_takes_the_general_path_and_agrees(data):
    bars, cal = data
    nq = bars.filter(pl.col("symbol") == "NQ")
    last = nq.tail(1).with_columns(pl.col("ts") + pl.duration(minutes=5))
    longer = pl.concat([bars, last])  # one extra NQ bar: the grids differ, the as-of prices do not
    kw = dict(windows=WINDOWS, model="market", benchmark="NQ", estimation=("-2d", "0"), symbols=["BTC"])
    same, general = es.study(bars, cal, **kw), es.study(longer, cal, **kw)
    for col in ("car", "sd", "expected"):
        np.testing.assert_allclose(general.reactions[col].to_numpy(), same.reactions[col].to_numpy(), rtol=1e-9, atol=1e-15)
    assert general.reactions["n_est"].equals(same.reactions["n_est"])
    np.testing.assert_allclose(general.tests["kp_rbar"].to_numpy(), same.tests["kp_rbar"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(general.tests["rank_z"].to_numpy(), same.tests["rank_z"].to_numpy(), rtol=1e-12)


def test_a_benchmark_hole_makes_its_returns_unusable(data):
    bars, cal = data
    drop = cal["release_ts"][3] - timedelta(hours=5)
    holed = bars.filter(~((pl.col("symbol") == "NQ") & (pl.col("ts") == drop)))
    kw = dict(windows=WINDOWS, model="market", benchmark="NQ", estimation=("-2d", "0"), symbols=["BTC"])
    base = es.study(bars, cal, **kw).reactions.filter(pl.col("window") == "15m")["n_est"].to_numpy()
    got = es.study(holed, cal, **kw).reactions.filter(pl.col("window") == "15m")["n_est"].to_numpy()
    # the missing NQ bar (5 h before event 3, inside its estimation window only) makes two
    # BTC returns unusable: the benchmark price as of their ends is stale
    assert (base - got).tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("seed", range(6))
def test_usable_sums_equal_a_brute_force_mask(seed):
    """Sums over usable returns, from prefix sums minus excluded index ranges, equal sums
    over an explicit mask — with bar gaps that put one return in two intervals. A usable
    return is outside every interval and its two prices are one bar (60 s) apart."""
    from aftershock.event_study.models import excluded_ranges, prepare
    from aftershock.event_study.returns import SymbolSeries

    rng = np.random.default_rng(seed)
    n = 400
    opens = np.cumsum(rng.choice([60, 60, 60, 600, 3600], n)) * 1_000_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pl.DataFrame({"ts": pl.Series(opens, dtype=pl.Datetime("us", "UTC")), "close": close})
    ser = SymbolSeries.from_frame("X", frame, 60_000_000)
    starts = rng.choice(ser.close_time, 15) + rng.integers(-120, 120, 15) * 1_000_000
    ends = starts + rng.integers(1, 7200, 15) * 1_000_000
    a, b = excluded_ranges(ser.close_time, starts, ends)
    prep = prepare(ser, None, a, b)
    ct = ser.close_time
    r = np.diff(np.log(close), prepend=np.log(close[0]))
    usable = np.array([
        j >= 1 and ct[j] - ct[j - 1] == 60_000_000 and not any(ct[j] > s and ct[j - 1] < e for s, e in zip(starts, ends))
        for j in range(n)
    ])
    lo = rng.integers(0, n - 1, 200)
    hi = np.minimum(lo + rng.integers(0, 150, 200), n - 1)
    cnt, sr, srr = prep.totals(("n", "r", "rr"), lo, hi)
    for i in range(lo.size):
        sel = np.arange(lo[i] + 1, hi[i] + 1)
        sel = sel[usable[sel]]
        assert cnt[i] == sel.size
        assert sr[i] == pytest.approx(r[sel].sum(), abs=1e-12)
        assert srr[i] == pytest.approx((r[sel] ** 2).sum(), abs=1e-12)
    np.testing.assert_array_equal(prep.usable_at(np.arange(n)), usable)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 8),
    m=st.integers(3, 40),
    missing=st.floats(0.0, 0.6),
    scale=st.sampled_from([1e-6, 1e-3, 1.0, 1e3]),
    seed=st.integers(0, 10_000),
)
def test_kp_correlation_is_pairwise_complete_and_bounded(n, m, missing, scale, seed):
    """Every entry is the sample correlation of the two rows over the positions both
    have (pandas' pairwise-complete ``corr``), hence within [-1, 1]."""
    import pandas as pd

    from aftershock.event_study.tests_stats import mean_pairwise_correlation, pairwise_correlation

    rng = np.random.default_rng(seed)
    common = rng.normal(size=m)
    x = (common[None, :] * rng.uniform(-1, 1, (n, 1)) + rng.normal(size=(n, m))) * scale + rng.normal(size=(n, 1)) * scale
    x[rng.uniform(size=(n, m)) < missing] = np.nan
    corr = pairwise_correlation(x)
    assert np.all(np.abs(corr[np.isfinite(corr)]) <= 1.0)
    ref = pd.DataFrame(x.T).corr(min_periods=3).to_numpy()
    np.testing.assert_allclose(corr, ref, rtol=1e-9, atol=1e-9)
    rbar = mean_pairwise_correlation(x)
    assert math.isnan(rbar) or -1.0 <= rbar <= 1.0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 30), m=st.integers(1, 60), missing=st.sampled_from([0.0, 0.0, 0.05]),
       constant=st.booleans(), seed=st.integers(0, 10_000))
def test_kp_mean_correlation_of_any_subset_equals_the_pairwise_matrix_average(n, m, missing, constant, seed):
    """The study's r̄ of a group of events (a subset of an indicator's events, signs
    applied for the signed tests) equals the mean off-diagonal entry of the
    sign-adjusted pairwise-complete correlation matrix, whether the O(n·m) path for
    complete rows or the matrix path runs, and stays within [-1, 1]."""
    from aftershock.event_study.tests_stats import EventCorrelations, mean_offdiagonal, pairwise_correlation

    rng = np.random.default_rng(seed)
    common = rng.normal(size=m)
    x = (common[None, :] * rng.uniform(-1, 1, (n, 1)) + rng.normal(size=(n, m))) * 1e-4 + rng.normal(size=(n, 1)) * 1e-3
    x[rng.uniform(size=(n, m)) < missing] = np.nan
    if constant:
        x[rng.integers(n)] = 0.5
    corr = EventCorrelations(x)
    full = pairwise_correlation(x)
    for _ in range(5):
        rows = np.sort(rng.choice(n, size=rng.integers(1, n + 1), replace=False))
        signs = rng.choice([-1.0, 1.0], rows.size)
        want = mean_offdiagonal(full[np.ix_(rows, rows)] * np.outer(signs, signs))
        got = corr.mean(rows, signs)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert math.isnan(got) or -1.0 <= got <= 1.0

def test_kp_correlation_old_estimator_could_exceed_one():
    """The regression behind the pairwise-complete estimator: two rows perfectly
    correlated where they overlap, but with different means elsewhere; centring each row
    on all of its own values (the old way) gave |r| > 1."""
    from aftershock.event_study.tests_stats import pairwise_correlation

    a = np.array([0.0, 1.0, 2.0, 3.0, 100.0, -100.0])
    b = np.array([0.0, 1.0, 2.0, 3.0, np.nan, np.nan])
    assert pairwise_correlation(np.vstack([a, b]))[0, 1] == pytest.approx(1.0, abs=1e-12)


def test_lo_fresh_return_straddling_the_estimation_start_is_excluded():
    """A hole in the bars just before the estimation window's start: the return from the
    last bar before the hole to the first after it begins before the window, so it is
    not an estimation return (the freshness rule), whatever its size."""
    every = timedelta(minutes=5)
    n = 4 * 288
    opens = [START + i * every for i in range(n)]
    release = START + timedelta(days=3, hours=13, minutes=30)
    est_start = release - timedelta(days=2)
    hole = {o for o in opens if est_start - timedelta(minutes=30) <= o < est_start}  # 6 bars missing
    opens = [o for o in opens if o not in hole]
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.001, len(opens))
    after = next(i for i, o in enumerate(opens) if o >= est_start)
    r[after] = 0.5  # the straddling return: huge
    c = 100 * np.exp(np.cumsum(r))
    bars = pl.DataFrame({"ts": pl.Series(opens, dtype=pl.Datetime("us", "UTC")), "symbol": "BTC",
                         "open": c, "high": c, "low": c, "close": c})
    cal = pl.DataFrame({"event_id": ["e"], "kind": "macro", "indicator": "CPI_YOY",
                        "release_ts": pl.Series([release], dtype=pl.Datetime("us", "UTC")), "hawkish_z": [1.0]})
    st = es.study(bars, cal, windows=["15m"], model="constant_mean", estimation=("-2d", "0"))
    row = st.reactions.row(0, named=True)
    ct = np.array([int((o + every).timestamp()) for o in opens])
    lc = np.log(c)
    t0, t1 = int(est_start.timestamp()), int(release.timestamp())
    # both prices inside (T - 2d, T]: the first one closes after the start minus one bar
    used = [j for j in range(1, ct.size) if ct[j - 1] > t0 - 300 and ct[j] <= t1]
    rr = np.diff(lc)[np.array(used) - 1]
    assert row["n_est"] == len(used) == 2 * 288 - 1
    assert row["n_est_gap"] == 0
    h = row["bars"]
    assert row["sd"] == pytest.approx(math.sqrt(rr.var(ddof=1) * (h + h * h / rr.size)), rel=1e-12)
    assert row["expected"] == pytest.approx(rr.mean() * h, rel=1e-12)


def test_paper_original_rank_variance_and_sign_p(data):
    """``rank_variance="sample"``: Corrado & Zivney's (1992) variance estimated from the
    ranks at every block position; ``sign_p="bars"``: Cowan's p-hat from single-bar
    estimation abnormal returns — each recomputed here from the reference's blocks."""
    bars, cal = data
    ref = reference(bars, cal, "BTC", "constant_mean", 900)
    ref1 = reference(bars, cal, "BTC", "constant_mean", 300)  # 1-bar blocks: single-bar residuals
    st = es.study(bars, cal, windows=WINDOWS, model="constant_mean", estimation=("-2d", "0"),
                  rank_variance="sample", sign_p="bars")
    car = np.array([e["car"] for e in ref])
    n = car.size
    # Corrado-Zivney: U_it = K_it / (M_i + 1) with M_i = values ranked (blocks + event)
    width = max(e["blocks"].size for e in ref) + 1
    u = np.full((n, width), np.nan)
    for i, (e, a0) in enumerate(zip(ref, car)):
        vals = np.concatenate([[a0], e["blocks"]])
        ranks = stats.rankdata(vals)
        u[i, : vals.size] = ranks / (vals.size + 1) - 0.5
    n_t = np.sum(np.isfinite(u), axis=0)
    s_u = math.sqrt(np.mean([(np.nansum(u[:, t]) / math.sqrt(n_t[t])) ** 2 for t in range(width) if n_t[t] > 0]))
    rank_z = np.sum(u[:, 0]) / (math.sqrt(n) * s_u)
    p = np.mean([np.mean(e["blocks"][:100] > 0) for e in ref1])
    w = np.sum(car > 0)
    sign_z = (w - n * p) / math.sqrt(n * p * (1 - p))
    row = st.tests.filter((pl.col("symbol") == "BTC") & (pl.col("window") == "15m") & ~pl.col("signed")).row(0, named=True)
    assert row["rank_z"] == pytest.approx(rank_z, rel=1e-9)
    assert row["sign_z"] == pytest.approx(sign_z, rel=1e-9)
    assert st.settings["rank_variance"] == "sample" and st.settings["sign_p"] == "bars"
