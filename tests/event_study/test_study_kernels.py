"""The Rust passes behind the study (``rust/study``) against plain NumPy.

Each test recomputes what the Rust code returns the straightforward way: the
per-bar arrays with ``np.log``/``np.diff``/``np.cumsum`` and ``np.median`` (the code
they replaced), the rank and sign test's estimation blocks with the NumPy
implementation they replaced (prefix sums looked up with ``searchsorted``, kept here
as the reference) and with an explicit mask of usable returns.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftershock.errors import BarsError
from aftershock.event_study import study
from aftershock.event_study.models import ModelFit, block_abnormal, excluded_ranges, prepare, residual_matrix
from aftershock.event_study.returns import SymbolSeries


def _bars(seed: int, n: int, steps=(60, 60, 60, 600, 3600)):
    rng = np.random.default_rng(seed)
    opens = np.cumsum(rng.choice(steps, n)) * 1_000_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = rng.exponential(5.0, n)
    frame = pl.DataFrame({"ts": pl.Series(opens, dtype=pl.Datetime("us", "UTC")), "close": close, "volume": volume})
    return rng, frame


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), bar=st.sampled_from([None, 60_000_000, 600_000_000]))
def test_series_arrays_equal_the_numpy_passes(seed, n, bar):
    _, frame = _bars(seed, n)
    ser = SymbolSeries.from_frame("X", frame, bar)
    ts = frame["ts"].dt.epoch("us").to_numpy()
    spacing = np.diff(ts)
    want_bar = bar if bar is not None else (int(np.median(spacing)) if spacing.size else 60_000_000)
    assert ser.bar_us == want_bar
    log_close = np.log(frame["close"].to_numpy())
    sq = np.concatenate([[0.0], np.diff(log_close) ** 2])
    np.testing.assert_allclose(ser.log_close, log_close, rtol=1e-15, atol=0)
    np.testing.assert_allclose(ser.sq_cum, np.cumsum(sq), rtol=1e-13, atol=1e-18)
    np.testing.assert_allclose(ser.volume_cum, np.cumsum(frame["volume"].to_numpy()), rtol=1e-13)
    np.testing.assert_array_equal(ser.close_time, ts + want_bar)
    np.testing.assert_array_equal(ser.gap_idx, np.flatnonzero(spacing > want_bar) + 1)


def _prepared(seed: int, market: str):
    """500 bars with holes, a benchmark (none, on the same grid, on another grid) and 12
    excluded intervals: the prefix sums both Rust passes read."""
    rng, frame = _bars(seed, 500)
    ser = SymbolSeries.from_frame("X", frame, 60_000_000)
    bench = None
    if market == "same_grid":
        bench = SymbolSeries.from_frame("M", frame.with_columns(pl.col("close").reverse()), 60_000_000)
    elif market == "other_grid":
        _, other = _bars(seed + 1, 500, steps=(60,))
        bench = SymbolSeries.from_frame("M", other, 60_000_000)
    starts = rng.choice(ser.close_time, 12) + rng.integers(-120, 120, 12) * 1_000_000
    ends = starts + rng.integers(1, 5400, 12) * 1_000_000
    return rng, ser, prepare(ser, bench, *excluded_ranges(ser.close_time, starts, ends))


def _numpy_blocks(prep, fit: ModelFit, e: np.ndarray, h: np.ndarray, max_blocks: int) -> np.ndarray:
    """The NumPy block computation the Rust pass replaced (prefix sums of usable returns
    looked up at every block boundary at once)."""
    j = np.arange(max_blocks + 1)
    hh = np.maximum(h, 1)[:, None]
    bound = fit.hi[e][:, None] - j[None, :] * hh
    ok = (bound >= fit.lo[e][:, None]) & (h[:, None] > 0)
    cnt, sr, sm = prep.cums_at(("n", "r", "m"), np.where(ok, bound, 0))
    full = (cnt[:, :-1] - cnt[:, 1:]) == hh
    ar = (sr[:, :-1] - sr[:, 1:]) - fit.alpha[e][:, None] * hh - fit.beta[e][:, None] * (sm[:, :-1] - sm[:, 1:])
    return np.where(ok[:, 1:] & full, ar, np.nan)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), market=st.sampled_from(["none", "same_grid", "other_grid"]))
def test_blocks_equal_the_numpy_reference_and_a_brute_force_mask(seed, market):
    rng, ser, prep = _prepared(seed, market)
    n_ev = 30
    lo = rng.integers(0, 300, n_ev)
    hi = np.minimum(lo + rng.integers(0, 200, n_ev), ser.n - 1)
    fit = ModelFit(2, np.zeros(n_ev, dtype=np.int64), rng.normal(0, 1e-3, n_ev), rng.normal(1, 0.3, n_ev),
                   np.ones(n_ev), np.zeros(n_ev), np.zeros(n_ev), lo, hi)
    e = np.repeat(np.arange(n_ev), 4)
    h = rng.integers(0, 12, e.size)
    got = block_abnormal(prep, fit, e, h, 25)
    np.testing.assert_allclose(got, _numpy_blocks(prep, fit, e, h, 25), rtol=1e-12, atol=1e-15)
    # brute force: each block's returns summed over an explicit usable mask
    usable = prep.usable_at(np.arange(ser.n))
    r, m = prep.r_at(np.arange(ser.n)), prep.m_at(np.arange(ser.n))
    for row in range(e.size):
        for b in range(25):
            top = hi[e[row]] - b * h[row]
            sel = np.arange(top - h[row] + 1, top + 1)
            if h[row] == 0 or top - h[row] < lo[e[row]] or not usable[sel].all():
                assert np.isnan(got[row, b])
            else:
                want = r[sel].sum() - fit.alpha[e[row]] * h[row] - fit.beta[e[row]] * m[sel].sum()
                assert got[row, b] == pytest.approx(want, abs=1e-12)


def _numpy_residuals(prep, fit: ModelFit, bars: int) -> np.ndarray:
    """The NumPy gathers the Rust residual pass replaced: every (event, offset) index
    at once, the returns and the usable mask looked up there."""
    offs = np.arange(bars - 1, -1, -1)
    idx = fit.hi[:, None] - offs[None, :]
    ok = idx > fit.lo[:, None]
    idx_c = np.where(ok, idx, 0)
    res = prep.r_at(idx_c) - fit.alpha[:, None] - fit.beta[:, None] * prep.m_at(idx_c)
    return np.where(ok & prep.usable_at(idx_c), res, np.nan)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), market=st.sampled_from(["none", "same_grid", "other_grid"]),
       bars=st.sampled_from([1, 7, 60, 400]))
def test_residuals_equal_the_numpy_gathers_bit_for_bit(seed, market, bars):
    """The Kolari–Pynnönen residual matrix: the same bits as the NumPy computation, and
    NaN exactly where a brute-force usable mask says so."""
    rng, ser, prep = _prepared(seed, market)
    n_ev = 30
    lo = rng.integers(-1, 300, n_ev)
    hi = np.minimum(lo + rng.integers(0, 200, n_ev), ser.n - 1)
    fit = ModelFit(2, np.zeros(n_ev, dtype=np.int64), rng.normal(0, 1e-3, n_ev), rng.normal(1, 0.3, n_ev),
                   np.ones(n_ev), np.zeros(n_ev), np.zeros(n_ev), lo, hi)
    got = residual_matrix(prep, fit, bars)
    np.testing.assert_array_equal(got, _numpy_residuals(prep, fit, bars))
    usable = prep.usable_at(np.arange(ser.n))
    for row in range(n_ev):
        for c in range(bars):
            j = hi[row] - (bars - 1 - c)
            assert np.isnan(got[row, c]) == (j <= lo[row] or j < 1 or not usable[j])


def test_volume_and_ordering_errors_name_the_row_of_the_whole_frame():
    rng = np.random.default_rng(0)
    n = 3000
    ts = pl.datetime_range(pl.datetime(2025, 1, 1), pl.datetime(2025, 1, 1) + pl.duration(minutes=n - 1), "1m",
                           eager=True, time_zone="UTC")
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    one = pl.DataFrame({"ts": ts, "open": c, "high": c, "low": c, "close": c, "volume": rng.exponential(1.0, n)})
    bars = pl.concat([one.with_columns(pl.lit(s).alias("symbol")) for s in ("A", "B")]).select("ts", "symbol", "open", "high", "low", "close", "volume")
    cal = pl.DataFrame({"event_id": ["e"], "release_ts": [ts[1500]], "hawkish_z": [1.0]})
    bad = bars.with_columns(pl.when(pl.int_range(pl.len()) == n + 17).then(-1.0).otherwise(pl.col("volume")).alias("volume"))
    with pytest.raises(BarsError, match="volume") as err:
        study(bad, cal, windows=["15m"])
    assert (err.value.column, err.value.row) == ("volume", n + 17)
    nan = bars.with_columns(pl.when(pl.int_range(pl.len()) == n + 5).then(float("nan")).otherwise(pl.col("high")).alias("high"))
    with pytest.raises(BarsError) as err:
        study(nan, cal, windows=["15m"])
    assert (err.value.column, err.value.row) == ("high", n + 5)


def test_each_symbol_alone_gives_the_same_rows():
    """Symbols are streamed, the next one's arrays built while one is studied, into the
    arrays of finished symbols when the lengths match: studying every symbol at once
    gives each symbol's rows exactly as studying it alone."""
    rng = np.random.default_rng(5)
    frames = []
    # lengths chosen so that a symbol finds the arrays of a finished one of its length
    # behind those of another length
    sizes = (("A", 4000), ("B", 3500), ("C", 3000), ("D", 3500), ("E", 4000), ("F", 3000))
    for k, (sym, n) in enumerate(sizes):
        ts = pl.datetime_range(pl.datetime(2025, 1, 1), pl.datetime(2025, 1, 1) + pl.duration(minutes=n - 1), "1m",
                               eager=True, time_zone="UTC")
        c = (100 + k) * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
        frames.append(pl.DataFrame({"ts": ts, "symbol": sym, "open": c, "high": c * 1.001, "low": c * 0.999, "close": c,
                                    "volume": rng.exponential(1.0, n)}))
    bars = pl.concat(frames)
    rel = pl.datetime_range(pl.datetime(2025, 1, 2, 3), pl.datetime(2025, 1, 3, 9), "5h", eager=True, time_zone="UTC")
    cal = pl.DataFrame({"event_id": [f"e{i}" for i in range(rel.len())], "release_ts": rel,
                        "hawkish_z": rng.normal(size=rel.len()), "indicator": "X"})
    kw = dict(windows=["-1h", "15m", "1h"], estimation=("-1d", "0"), exclude=("-1h", "1h"), min_estimation=10)
    for model, bench in (("constant_mean", None), ("market", "C")):
        whole = study(bars, cal, model=model, benchmark=bench, **kw).reactions
        for sym, _ in sizes:
            alone = study(bars, cal, model=model, benchmark=bench, symbols=[sym], **kw).reactions
            assert whole.filter(pl.col("symbol") == sym).equals(alone), (model, sym)


def test_the_rust_passes_refuse_overlapping_outputs():
    from aftershock import _engine

    a = np.linspace(1.0, 2.0, 10)
    with pytest.raises(ValueError, match="overlap"):
        _engine.study_cross_cum(a, a.copy(), a)
    out = {"close_time": np.empty(10, dtype=np.int64), "log_close": np.empty(10), "sq_cum": np.empty(10)}
    out["sq_cum"] = out["log_close"]
    with pytest.raises(ValueError, match="overlap"):
        _engine.study_series(np.arange(10, dtype=np.int64), a, None, 1, out)
