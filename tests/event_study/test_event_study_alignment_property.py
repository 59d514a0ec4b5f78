"""Property: on bars of any resolution, with holes, for any release time and window, the
study's reaction equals a plain-Python reading of the alignment rule."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftershock import event_study as es

UTC = timezone.utc
BASE = datetime(2025, 3, 1, tzinfo=UTC)


def naive_price(opens: list[datetime], closes: list[float], length: timedelta, t: datetime):
    done = [i for i, o in enumerate(opens) if o + length <= t]
    if not done:
        return None
    i = done[-1]
    if opens[i] + length <= t - length:
        return None  # stale
    return i


@pytest.mark.filterwarnings("ignore:.*no abnormal return")  # tiny samples leave no estimation data
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    minutes=st.sampled_from([1, 5, 15, 60, 1440]),
    n=st.integers(20, 60),
    holes=st.lists(st.integers(0, 59), max_size=6),
    release_steps=st.floats(0, 1, allow_nan=False),
    start=st.integers(-300, 120),
    length=st.integers(1, 600),
    seed=st.integers(0, 10_000),
)
def test_reaction_equals_naive_alignment(minutes, n, holes, release_steps, start, length, seed):
    step = timedelta(minutes=minutes)
    rng = np.random.default_rng(seed)
    keep = [i for i in range(n) if i not in set(holes) or i < 2]
    opens = [BASE + i * step for i in keep]
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(keep)))))
    bars = pl.DataFrame({"ts": pl.Series(opens, dtype=pl.Datetime("us", "UTC")), "symbol": "X",
                         "open": closes, "high": closes, "low": closes, "close": closes})
    release = BASE + timedelta(seconds=round(release_steps * n * minutes * 60))
    a = timedelta(minutes=start * minutes / 15)
    b = a + timedelta(minutes=length * minutes / 15)
    cal = pl.DataFrame({"event_id": ["e"], "kind": "macro", "indicator": "X",
                        "release_ts": pl.Series([release], dtype=pl.Datetime("us", "UTC")), "hawkish_z": [1.0]})
    out = es.study(bars, cal, windows=[(a, b)], model="zero_mean", bar_length=step, min_estimation=1)
    row = out.reactions.row(0, named=True)
    i0 = naive_price(opens, closes, step, release + a)
    i1 = naive_price(opens, closes, step, release + b)
    if i0 is None or i1 is None or i0 == i1:
        assert row["ret"] is None and row["reason"] is not None
    else:
        assert abs(row["ret"] - math.log(closes[i1] / closes[i0])) < 1e-13
        assert row["start_ts"] == opens[i0] + step and row["end_ts"] == opens[i1] + step
        assert row["bars"] == i1 - i0
