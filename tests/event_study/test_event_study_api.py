"""The study's public surface: inputs, errors, result frames and their consistency."""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from aftershock import event_study as es
from aftershock.errors import BarsError, CalendarError, InputError

UTC = timezone.utc
START = datetime(2025, 1, 1, tzinfo=UTC)


def bars_and_calendar(n_days=40, n_events=12, seed=0):
    rng = np.random.default_rng(seed)
    n = n_days * 288
    ts = pl.datetime_range(START, START + (n - 1) * timedelta(minutes=5), "5m", eager=True, time_zone="UTC")
    frames = []
    for sym in ("BTC", "NQ"):
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        frames.append(pl.DataFrame({"ts": ts, "symbol": sym, "open": c, "high": c * 1.0005, "low": c * 0.9995,
                                    "close": c, "volume": rng.uniform(1, 5, n)}))
    rel = [START + timedelta(days=5 + 2 * k, hours=13, minutes=30) for k in range(n_events)]
    cal = pl.DataFrame({"event_id": [f"e{k}" for k in range(n_events)], "kind": "macro",
                        "indicator": ["CPI_YOY", "NFP"] * (n_events // 2),
                        "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")),
                        "hawkish_z": rng.normal(size=n_events)})
    return pl.concat(frames), cal


@pytest.fixture(scope="module")
def data():
    return bars_and_calendar()


@pytest.fixture(scope="module")
def st(data):
    bars, cal = data
    return es.study(bars, cal, windows=["-2h", "15m", "1h"], model="zero_mean")


def test_result_frames_have_their_shapes(st, data):
    _, cal = data
    assert st.reactions.height == cal.height * 2 * 3
    assert {"event_id", "symbol", "window", "ret", "car", "scar", "reason", "start_ts", "end_ts"} <= set(st.reactions.columns)
    assert not [c for c in st.reactions.columns if c.startswith("_")]
    assert set(st.sensitivity["spec"]) == {"single", "positive", "negative", "joint"}
    assert set(st.tests["signed"]) == {True, False}
    assert set(st.drift["window"]) == {"-2h"}
    table = st.table("BTC")
    assert table.columns == ["indicator", "symbol", "window", "gap", "n", "mean_car", "t_cs", "slope", "t_slope", "r2", "n_slope"]
    assert not table["gap"].any()  # 24/7 bars, no declared sessions: every reaction is intraday
    assert table["window"].to_list()[:3] == ["-2h", "15m", "1h"]
    assert st.model == "zero_mean" and [w.label for w in st.windows] == ["-2h", "15m", "1h"]
    assert repr(st).startswith("Study(model='zero_mean', benchmark=None, windows=['-2h', '15m', '1h'], events=12")


def test_deterministic(data):
    bars, cal = data
    a = es.study(bars, cal, windows=["15m"], model="market", benchmark="NQ")
    b = es.study(bars, cal, windows=["15m"], model="market", benchmark="NQ")
    for name in ("reactions", "sensitivity", "tests", "paths", "drift", "volatility"):
        assert getattr(a, name).equals(getattr(b, name)), name


def test_paths_agree_with_window_reactions(st):
    p = st.paths.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "CPI_YOY"))
    at = {row["offset"]: row for row in p.iter_rows(named=True)}
    assert at[timedelta(0)]["mean_car"] == 0.0
    r = st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "CPI_YOY"))
    assert at[timedelta(minutes=15)]["mean_car"] == pytest.approx(r.filter(pl.col("window") == "15m")["car"].mean(), abs=1e-15)
    # before the release the path is the log price relative to the anchor: minus the drift
    assert at[timedelta(hours=-2)]["mean_car"] == pytest.approx(-r.filter(pl.col("window") == "-2h")["car"].mean(), abs=1e-15)
    row = at[timedelta(minutes=15)]
    half = row["ci_high"] - row["mean_car"]
    from scipy import stats

    assert half == pytest.approx(stats.t.ppf(0.975, row["n"] - 1) * row["se"], rel=1e-9)


def test_volatility_summary_matches_reactions(st):
    v = st.volatility.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "NFP") & (pl.col("window") == "1h")).row(0, named=True)
    r = st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "NFP") & (pl.col("window") == "1h"))
    lr = np.log(r["rv"].to_numpy() / r["rv_before"].to_numpy())
    assert v["n"] == r.height
    assert v["mean_log_rv_ratio"] == pytest.approx(lr.mean(), rel=1e-12)
    assert v["t_log_rv_ratio"] == pytest.approx(lr.mean() / (lr.std(ddof=1) / math.sqrt(lr.size)), rel=1e-10)
    lv = np.log(r["volume"].to_numpy() / r["volume_before"].to_numpy())
    assert v["mean_log_volume_ratio"] == pytest.approx(lv.mean(), rel=1e-12)


def test_calendar_without_hawkish_z_gets_surprises():
    from aftershock.datasets import sample

    bars, cal = sample()
    assert "hawkish_z" not in cal.columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = es.study(bars, cal, windows=["-10h", "15m", "1h"], model="market", benchmark="NQ")
    assert st.reactions.height == cal.height * 3 * 3
    cpi = st.reactions.filter((pl.col("indicator") == "CPI_YOY") & (pl.col("window") == "15m") & (pl.col("symbol") == "BTC"))
    assert cpi["hawkish_z"].null_count() < cpi.height
    # policy events are grouped by category and load on their analyst direction
    policy = st.reactions.filter(pl.col("kind") == "policy")
    assert policy["indicator"].str.starts_with("POLICY:").all()
    assert {"surprise", "surprise_z", "time_precision"} <= set(st.reactions.columns)
    reasons = set(st.reactions.filter(pl.col("symbol") == "BTC")["reason"].drop_nulls())
    assert reasons <= {"benchmark_gap", "after_data", "short_estimation", "imprecise_time"}
    # day- and hour-precision policy events have no 15m/1h reaction; their -10h drift is measured
    imprecise = st.reactions.filter(pl.col("reason") == "imprecise_time")
    assert set(imprecise["time_precision"]) == {"day", "hour"} and set(imprecise["window"]) <= {"15m", "1h"}
    hour = st.reactions.filter((pl.col("time_precision") == "hour") & (pl.col("symbol") == "BTC"))
    h1 = hour.filter(pl.col("window") == "1h").row(0, named=True)  # a 1h window is long enough: measured
    assert h1["ret"] is not None and h1["reason"] in (None, "benchmark_gap")
    assert st.reactions.filter(pl.col("reason") == "benchmark_gap")["car"].null_count() == st.reactions.filter(pl.col("reason") == "benchmark_gap").height


def test_pandas_bars_and_symbol_subset(data):
    bars, cal = data
    st = es.study(bars.to_pandas(), cal, windows=["15m"], symbols=["BTC"])
    assert st.reactions["symbol"].unique().to_list() == ["BTC"]


def test_unsorted_symbol_blocks_are_handled(data):
    bars, cal = data
    interleaved = bars.sort("ts", "symbol")
    a = es.study(bars, cal, windows=["15m"]).reactions
    b = es.study(interleaved, cal, windows=["15m"]).reactions
    assert a.equals(b)


@pytest.mark.parametrize(
    "kwargs, error, column",
    [
        ({"model": "capm"}, InputError, "model"),
        ({"model": "market"}, InputError, "benchmark"),
        ({"benchmark": "SPX"}, InputError, "benchmark"),
        ({"windows": ["15 minutes"]}, InputError, "windows"),
        ({"windows": []}, InputError, "windows"),
        ({"symbols": ["DOGE"]}, InputError, "symbols"),
        ({"cov": "HC0"}, InputError, "cov"),
        ({"estimation": ("1d", "2d")}, InputError, "estimation"),
        ({"bar_length": "fortnight"}, InputError, "bar_length"),
        ({"bar_length": {"DOGE": "5m"}}, InputError, "bar_length"),
        ({"rank_variance": "estimated"}, InputError, "rank_variance"),
        ({"sign_p": "days"}, InputError, "sign_p"),
        ({"sessions": "cme"}, InputError, "sessions"),
    ],
)
def test_bad_arguments(data, kwargs, error, column):
    bars, cal = data
    with pytest.raises(error) as err:
        es.study(bars, cal, **{"windows": ["15m"], **kwargs})
    assert err.value.column == column


def test_bad_calendars(data):
    bars, cal = data
    with pytest.raises(CalendarError, match="empty"):
        es.study(bars, cal.clear(), windows=["15m"])
    with pytest.raises(CalendarError) as err:
        es.study(bars, cal.drop("release_ts"), windows=["15m"])
    assert err.value.column == "release_ts"
    with pytest.raises(CalendarError) as err:
        es.study(bars, cal.with_columns(pl.col("release_ts").dt.replace_time_zone(None)), windows=["15m"])
    assert err.value.column == "release_ts"
    nulls = cal.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("release_ts")).alias("release_ts"))
    with pytest.raises(CalendarError) as err:
        es.study(bars, nulls, windows=["15m"])
    assert (err.value.column, err.value.row) == ("release_ts", 3)
    with pytest.raises(CalendarError):
        es.study(bars, cal.to_dicts(), windows=["15m"])


def test_bad_bars(data):
    bars, cal = data
    with pytest.raises(BarsError):
        es.study(bars.clear(), cal, windows=["15m"])
    with pytest.raises(BarsError) as err:
        es.study(bars.with_columns(pl.col("ts").dt.replace_time_zone(None)), cal, windows=["15m"])
    assert err.value.column == "ts"
    dup = pl.concat([bars.head(3), bars.head(3)])
    with pytest.raises(BarsError):
        es.study(dup, cal, windows=["15m"])


def test_release_times_in_another_zone_are_converted(data):
    bars, cal = data
    ny = cal.with_columns(pl.col("release_ts").dt.convert_time_zone("America/New_York"))
    assert es.study(bars, ny, windows=["15m"]).reactions.equals(es.study(bars, cal, windows=["15m"]).reactions)


def test_exclusion_that_leaves_no_estimation_data_warns(data):
    bars, cal = data
    with pytest.warns(UserWarning, match="exclude="):
        st = es.study(bars, cal, windows=["15m", "2w"], estimation=("-2d", "0"))
    assert set(st.reactions.filter(pl.col("car").is_null())["reason"]) <= {"short_estimation", "after_data"}


def test_market_model_paths_agree_with_window_cars(data):
    bars, cal = data
    st = es.study(bars, cal, windows=["-1h", "15m", "1h"], model="market", benchmark="NQ", path=("-1h", "1h", "5m"))
    p = st.paths.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "NFP"))
    at = {row["offset"]: row for row in p.iter_rows(named=True)}
    assert len(at) == 25
    r = st.reactions.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "NFP"))
    for off, window in ((timedelta(minutes=15), "15m"), (timedelta(hours=1), "1h")):
        assert at[off]["mean_car"] == pytest.approx(r.filter(pl.col("window") == window)["car"].mean(), rel=1e-9)
    assert at[timedelta(hours=-1)]["mean_car"] == pytest.approx(-r.filter(pl.col("window") == "-1h")["car"].mean(), rel=1e-9)
    signed = (r.filter(pl.col("window") == "15m")["car"] * r.filter(pl.col("window") == "15m")["hawkish_z"].sign()).mean()
    assert at[timedelta(minutes=15)]["mean_signed_car"] == pytest.approx(signed, rel=1e-9)


@pytest.mark.parametrize("layout", ["contiguous", "interleaved"])
def test_bad_bars_name_the_row_of_the_whole_frame(data, layout):
    """Bars are validated one symbol at a time; an error still names the row in the
    frame the user passed, and the first bad row when there are several."""
    bars, cal = data
    if layout == "interleaved":
        bars = bars.sort("ts", "symbol")
    bad = bars.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([15_000, 20_000])).then(-1.0).otherwise(pl.col("close")).alias("close")
    )
    with pytest.raises(BarsError) as err:
        es.study(bad, cal, windows=["15m"])
    assert (err.value.column, err.value.row) == ("close", 15_000)
    assert "row 15000" in str(err.value)
    late = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 12_000).then(pl.col("ts") - pl.duration(days=400)).otherwise(pl.col("ts")).alias("ts")
    )
    with pytest.raises(BarsError, match="out of order") as err:
        es.study(late, cal, windows=["15m"])
    assert (err.value.column, err.value.row) == ("ts", 12_000)
