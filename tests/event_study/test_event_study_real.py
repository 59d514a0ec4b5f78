"""The study on real 2025 BTC bars and the real ForexFactory calendar.

Reactions are checked against the raw Binance kline files, read here line by line with
the csv module (independently of the library's loaders).
"""

from __future__ import annotations

import csv
import math
import warnings
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from aftershock import event_study as es

UTC = timezone.utc
CPI = datetime(2025, 2, 12, 13, 30, tzinfo=UTC)  # January CPI: 3.0% y/y vs 2.9% expected
PCE = datetime(2025, 3, 28, 12, 30, tzinfo=UTC)  # February core PCE: 2.8% vs 2.7%
WINDOWS = ["-10h", "5m", "15m", "1h", "4h", "1d"]


def raw_closes(path: Path) -> dict[datetime, float]:
    """open time → close, from a Binance kline CSV (header or not; ms or µs epochs)."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if not row or not row[0].strip().isdigit():
                continue
            stamp = int(row[0])
            seconds = stamp / 1e6 if stamp > 10**14 else stamp / 1e3
            out[datetime.fromtimestamp(seconds, tz=UTC)] = float(row[4])
    return out


_CACHE: dict = {}


@pytest.fixture
def real(real_data):
    if real_data not in _CACHE:
        _CACHE[real_data] = _load(real_data)
    return _CACHE[real_data]


def _load(root: Path):
    from aftershock.calendar import INDICATORS, read_calendar, surprises
    from aftershock.prices import read_bars

    futures = read_bars(root / "btc_5m_futures", symbol="BTC")
    spot = read_bars(root / "btc_5m_spot", symbol="BTC_SPOT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown ForexFactory event names are reported as warnings
        cal = surprises(read_calendar(root / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv"))
    cal = cal.filter((pl.col("release_ts").dt.year() == 2025) & pl.col("indicator").is_in(pl.Series(list(INDICATORS)).implode()))
    study = es.study(pl.concat([futures, spot]), cal, windows=WINDOWS)
    return root, cal, study


def reaction(study, when, window, symbol="BTC", indicator="CPI_YOY"):
    return study.reactions.filter(
        (pl.col("release_ts") == when) & (pl.col("window") == window) & (pl.col("symbol") == symbol) & (pl.col("indicator") == indicator)
    ).row(0, named=True)


def test_cpi_release_reaction_matches_the_raw_bars(real):
    root, _, study = real
    closes = raw_closes(root / "btc_5m_futures" / "BTCUSDT-5m-2025-02.csv")
    anchor = closes[datetime(2025, 2, 12, 13, 25, tzinfo=UTC)]  # the bar 13:25-13:30, strictly before 13:30
    for window, end_open in (("5m", (13, 30)), ("15m", (13, 40)), ("1h", (14, 25)), ("4h", (17, 25))):
        r = reaction(study, CPI, window)
        end = closes[datetime(2025, 2, 12, *end_open, tzinfo=UTC)]
        assert r["price_start"] == anchor and r["price_end"] == end
        assert r["ret"] == pytest.approx(math.log(end / anchor), abs=1e-15)
    r = reaction(study, CPI, "15m")
    # BTC fell about 2% in the 15 minutes after the hot print (the report: -2.66% at the low)
    assert -0.03 < r["pct"] < -0.015
    assert r["low_ret"] < -0.025
    # the same move on the three CPI rows released in that minute
    same = study.reactions.filter((pl.col("release_ts") == CPI) & (pl.col("window") == "15m") & (pl.col("symbol") == "BTC"))
    assert sorted(same["indicator"].to_list()) == ["CORE_CPI_MOM", "CPI_MOM", "CPI_YOY"]
    assert same["ret"].n_unique() == 1


def test_pre_release_decline_before_the_march_pce(real):
    root, _, study = real
    closes = raw_closes(root / "btc_5m_futures" / "BTCUSDT-5m-2025-03.csv")
    d = reaction(study, PCE, "-10h", indicator="CORE_PCE_MOM")
    start = closes[datetime(2025, 3, 28, 2, 25, tzinfo=UTC)]
    end = closes[datetime(2025, 3, 28, 12, 25, tzinfo=UTC)]
    assert d["ret"] == pytest.approx(math.log(end / start), abs=1e-15)
    assert d["ret"] < -0.015  # "in the 10 hours leading up to the data release, the market declined"


def test_spot_reactions_match_the_raw_microsecond_files_and_the_perpetual(real):
    root, _, study = real
    closes = raw_closes(root / "btc_5m_spot" / "BTCUSDT-5m-2025-02.csv")
    r = reaction(study, CPI, "15m", symbol="BTC_SPOT")
    a, b = closes[datetime(2025, 2, 12, 13, 25, tzinfo=UTC)], closes[datetime(2025, 2, 12, 13, 40, tzinfo=UTC)]
    assert r["ret"] == pytest.approx(math.log(b / a), abs=1e-15)
    assert abs(r["ret"] - reaction(study, CPI, "15m")["ret"]) < 0.003  # basis moves are small
    # March spot bars are missing: those reactions are null with a reason, never numbers
    march = study.reactions.filter((pl.col("symbol") == "BTC_SPOT") & (pl.col("release_ts").dt.month() == 3))
    assert march.height > 0 and march["ret"].null_count() == march.height
    assert set(march["reason"].to_list()) <= {"gap_at_start", "gap_at_end", "after_data"}


def test_one_minute_bars_give_the_same_reaction_as_five_minute_bars(real):
    root, cal, study = real
    from aftershock.prices import read_bars

    one = read_bars(root / "btc_1m_futures_windows", symbol="BTC")
    cpi = cal.filter(pl.col("release_ts") == CPI)
    st = es.study(one, cpi, windows=["5m", "15m"], model="zero_mean", min_estimation=1)
    for window in ("5m", "15m"):
        r1 = st.reactions.filter((pl.col("window") == window) & (pl.col("indicator") == "CPI_YOY")).row(0, named=True)
        assert r1["ret"] == pytest.approx(reaction(study, CPI, window)["ret"], abs=1e-12)


def test_the_whole_2025_study_is_consistent(real):
    _, cal, study = real
    btc = study.reactions.filter(pl.col("symbol") == "BTC")
    assert btc.height == cal.height * len(WINDOWS)
    # futures cover all of 2025: only a window running past 31 December may be uncovered
    bad = btc.filter(pl.col("reason").is_not_null())
    assert set(bad["reason"].to_list()) <= {"after_data"}
    assert (bad["release_ts"] >= datetime(2025, 12, 30, tzinfo=UTC)).all()
    assert btc.filter(pl.col("reason").is_null())["car"].null_count() == 0
    sens = study.sensitivity.filter((pl.col("symbol") == "BTC") & (pl.col("spec") == "single"))
    assert set(sens["indicator"]) >= {"CPI_YOY", "CPI_MOM", "CORE_CPI_MOM", "PPI_MOM", "NFP", "UNRATE", "CORE_PCE_MOM"}
    assert (sens["n"] >= 8).all()
    joint = study.sensitivity.filter((pl.col("symbol") == "BTC") & (pl.col("spec") == "joint") & (pl.col("window") == "15m"))
    assert "CPI_YOY" in joint["indicator"].to_list()
    assert study.tests.filter(pl.col("symbol") == "BTC").height > 0
    assert study.paths.filter((pl.col("symbol") == "BTC") & (pl.col("indicator") == "CPI_YOY")).height > 10
