"""surprises(): raw, expanding-window standardized (strictly earlier releases only) and
hawkish-signed surprises."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftershock.calendar import INDICATORS, PRIOR_END, q1_2025_calendar, read_calendar, surprises

UTC = dt.timezone.utc
CPI = [(3.0, 2.9), (2.8, 2.9), (3.1, 3.1), (2.5, 2.7), (3.2, 3.0), (3.0, 3.1), (3.3, 3.0), (2.9, 2.8)]


def monthly(indicator: str, pairs, year: int = 2023) -> pl.DataFrame:
    rows = []
    for m, (a, c) in enumerate(pairs, 1):
        day = dt.date(year + (m - 1) // 12, (m - 1) % 12 + 1, 12)
        rows.append({
            "event_id": f"{indicator}-{m}", "kind": "macro", "indicator": indicator,
            "release_ts": INDICATORS[indicator].release_utc(day) if indicator in INDICATORS else dt.datetime.combine(day, dt.time(13, 30), UTC),
            "actual": a, "consensus": c,
        })
    return pl.DataFrame(rows)


def test_hand_computed_expanding_std():
    out = surprises(monthly("CPI_YOY", CPI), min_history=3, prior=False)
    assert out["surprise"].to_list() == pytest.approx([0.1, -0.1, 0.0, -0.2, 0.2, -0.1, 0.3, 0.1])
    assert out["surprise_n"].to_list() == list(range(8))
    assert out["surprise_std"][:3].to_list() == [None, None, None]
    # row 3 uses 0.1, -0.1, 0.0: mean 0, std sqrt(0.02 / 2) = 0.1 -> z = -0.2 / 0.1
    assert out["surprise_std"][3] == pytest.approx(0.1)
    assert out["surprise_z"][3] == pytest.approx(-2.0)
    # row 4 uses 0.1, -0.1, 0, -0.2: mean -0.05, sum of squares 0.05, std sqrt(0.05/3)
    assert out["surprise_std"][4] == pytest.approx(math.sqrt(0.05 / 3))
    assert out["hawkish_z"].to_list()[3:] == pytest.approx(out["surprise_z"].to_list()[3:])
    assert out.schema["hawkish_sign"] == pl.Int8


def test_matches_pandas_expanding_std_shifted():
    rng = np.random.default_rng(1)
    pairs = [(float(a), 0.0) for a in rng.normal(0, 0.2, 30).round(3)]
    out = surprises(monthly("CORE_CPI_MOM", pairs), min_history=6, prior=False)
    s = pd.Series([a for a, _ in pairs])
    expected = s.expanding(min_periods=6).std().shift(1)
    got = out["surprise_std"].to_numpy()
    np.testing.assert_allclose(got[6:], expected.to_numpy()[6:], rtol=1e-9)
    assert np.isnan(expected.to_numpy()[:6]).all() and out["surprise_std"][:6].null_count() == 6


def test_unemployment_is_hawkish_when_lower():
    pairs = [(4.0, 4.0), (4.1, 4.0), (3.9, 4.0), (4.0, 4.1), (3.9, 4.0)]
    out = surprises(monthly("UNRATE", pairs), min_history=3, prior=False)
    last = out.row(4, named=True)
    assert last["hawkish_sign"] == -1
    assert last["surprise_z"] < 0 and last["hawkish_z"] == pytest.approx(-last["surprise_z"])


def test_indicators_do_not_mix_and_row_order_is_kept():
    cal = pl.concat([monthly("CPI_YOY", CPI), monthly("PPI_YOY", [(a + 1, c + 1) for a, c in CPI[:4]])])
    cal = cal.with_columns(pl.Series("event_id", [f"e{i}" for i in range(cal.height)]))
    shuffled = cal.sample(fraction=1.0, shuffle=True, seed=3)
    out = surprises(shuffled, min_history=3, prior=False)
    assert out["event_id"].to_list() == shuffled["event_id"].to_list()
    ref = surprises(cal, min_history=3, prior=False)
    a = out.sort("event_id").select("surprise_n", "surprise_std", "surprise_z")
    b = ref.sort("event_id").select("surprise_n", "surprise_std", "surprise_z")
    assert a.equals(b)
    assert ref.filter(indicator="PPI_YOY")["surprise_n"].to_list() == [0, 1, 2, 3]


def test_policy_events_have_no_sign_or_z():
    out = surprises(q1_2025_calendar())
    pol = out.filter(kind="policy")
    assert pol["hawkish_sign"].null_count() == pol.height
    assert pol["surprise_z"].null_count() == pol.height
    assert pol["surprise_n"].null_count() == pol.height


def test_changing_a_later_actual_changes_no_earlier_row():
    cal = monthly("CPI_YOY", CPI)
    base = surprises(cal, min_history=2, prior=False)
    changed = surprises(cal.with_columns(pl.when(pl.col("event_id") == "CPI_YOY-6").then(9.9).otherwise(pl.col("actual")).alias("actual")), min_history=2, prior=False)
    # CPI_YOY-6 is row 5: rows 0-4 are untouched, row 5 and every later z move
    assert changed.head(5).equals(base.head(5))
    assert changed["surprise_z"][6] != base["surprise_z"][6]
    assert changed["surprise_z"][7] != base["surprise_z"][7]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1, 1, allow_nan=False).map(lambda x: round(x, 2)), min_size=4, max_size=20),
    cut=st.integers(0, 19),
    new=st.floats(-5, 5, allow_nan=False),
    min_history=st.integers(2, 5),
)
def test_no_look_ahead_property(values, cut, new, min_history):
    cut = cut % len(values)
    cal = monthly("PPI_MOM", [(v, 0.0) for v in values])
    later = cal.with_columns(pl.when(pl.int_range(pl.len()) == cut).then(new).otherwise(pl.col("actual")).alias("actual"))
    a = surprises(cal, min_history=min_history, prior=False).head(cut + 0)
    b = surprises(later, min_history=min_history, prior=False).head(cut + 0)
    assert a.equals(b)
    # and a simultaneous release does not see itself either
    assert surprises(cal, min_history=min_history, prior=False)["surprise_n"].to_list() == list(range(len(values)))


def test_history_seeds_the_std_and_counts_overlaps_once():
    hist = monthly("CPI_YOY", CPI[:6])
    cal = monthly("CPI_YOY", CPI).slice(4)  # overlaps history rows 4 and 5
    cal = cal.with_columns(pl.when(pl.col("event_id") == "CPI_YOY-5").then(3.5).otherwise(pl.col("actual")).alias("actual"))
    out = surprises(cal, history=hist, min_history=3, prior=False)
    assert out["surprise_n"].to_list() == [4, 5, 6, 7]
    # row CPI_YOY-6 sees 0.1, -0.1, 0.0, -0.2 from history and 0.5 (calendar wins over 0.2)
    expected = np.std([0.1, -0.1, 0.0, -0.2, 0.5], ddof=1)
    assert out.filter(event_id="CPI_YOY-6")["surprise_std"].item() == pytest.approx(expected)


def test_registry_prior_applies_only_from_prior_end():
    ind = INDICATORS["NFP"]
    assert ind.prior_n > 0
    out = surprises(q1_2025_calendar())
    jan = out.filter(event_id="NFP-2025-01-10").row(0, named=True)
    assert jan["surprise_n"] == ind.prior_n
    assert jan["surprise_std"] == pytest.approx(ind.prior_std)
    assert jan["surprise_z"] == pytest.approx(96.0 / ind.prior_std)
    # the second 2025 release pools the prior with January's +96K surprise
    feb = out.filter(event_id="NFP-2025-02-07").row(0, named=True)
    n0, m0, s0 = ind.prior_n, ind.prior_mean, ind.prior_std
    xs_ss = (n0 - 1) * s0**2 + n0 * m0**2 + 96.0**2
    xs_s = n0 * m0 + 96.0
    assert feb["surprise_n"] == n0 + 1
    assert feb["surprise_std"] == pytest.approx(math.sqrt((xs_ss - xs_s**2 / (n0 + 1)) / n0))
    # no prior for indicators the registry has no history for, and none with prior=False
    assert out.filter(indicator="PPI_YOY")["surprise_z"].null_count() == 3
    assert surprises(q1_2025_calendar(), prior=False)["surprise_z"].null_count() == 22
    # before PRIOR_END the prior would be look-ahead: not used
    old = surprises(monthly("NFP", [(200.0, 180.0)] * 3, year=2024))
    assert old["surprise_n"].to_list() == [0, 1, 2]
    assert PRIOR_END.year == 2025


def test_prior_is_not_used_when_the_pool_has_its_own_early_history():
    early = monthly("CPI_YOY", CPI[:6], year=2024)
    late = monthly("CPI_YOY", CPI[6:], year=2025).with_columns(pl.Series("event_id", ["x", "y"]))
    out = surprises(pl.concat([early, late]))
    assert out["surprise_n"].to_list() == list(range(8))


def test_real_forexfactory_matches_pandas(real_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ff = read_calendar(real_data / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv")
    out = surprises(ff, prior=False)
    for code in ("CPI_YOY", "NFP", "UNRATE"):
        sub = out.filter(indicator=code).sort("release_ts")
        s = sub["surprise"].to_pandas()
        expected = s.expanding(min_periods=6).std().shift(1)
        mask = s.shift(1).notna().cumsum() >= 6  # only rows with >= 6 known earlier surprises
        got = sub["surprise_std"].to_pandas()
        np.testing.assert_allclose(got[mask].to_numpy(dtype=float), expected[mask].to_numpy(dtype=float), rtol=1e-9)
    row = out.filter(event_id="CPI_YOY-2025-02-12").row(0, named=True)
    assert row["surprise"] == pytest.approx(0.1) and row["hawkish_z"] > 0
