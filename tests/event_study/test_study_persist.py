"""Saved event studies (python/aftershock/event_study/persist.py): a loaded study equals
the saved one bit for bit and works; ``verify`` re-runs it with every recorded argument
and names what differs."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import aftershock as ash
from aftershock.event_study.persist import FRAMES

from test_event_study_api import bars_and_calendar


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    bars, cal = bars_and_calendar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = ash.study(bars, cal, windows=["-2h", "15m", ("-30m", "1h"), timedelta(hours=4)], model="market",
                       benchmark="NQ", estimation=("-10d", "0m"), min_estimation=20, rank_blocks=50, sign_p="bars")
    path = tmp_path_factory.mktemp("study") / "st"
    st.save(path)
    return bars, cal, st, path


def test_a_loaded_study_equals_the_saved_one_and_works(saved, tmp_path):
    bars, cal, st, path = saved
    loaded = ash.load(path)
    assert isinstance(loaded, ash.Study)
    for name in FRAMES:
        assert_frame_equal(getattr(loaded, name), getattr(st, name), check_exact=True)
    assert loaded.windows == st.windows and loaded.settings == st.settings
    assert (loaded.model, loaded.benchmark) == ("market", "NQ")
    assert repr(loaded) == repr(st)
    assert_frame_equal(loaded.table(), st.table(), check_exact=True)
    for kind in ("paths", "scatter", "heatmap"):
        assert len(loaded.plot(kind).data) == len(st.plot(kind).data)
    assert (tmp_path / "s.html").exists() is False
    loaded.report(str(tmp_path / "s.html"))
    assert (tmp_path / "s.html").stat().st_size > 10_000


def test_the_record_holds_every_argument_and_verify_reruns_with_them(saved):
    bars, cal, st, path = saved
    meta = json.loads((path / "meta.json").read_text())
    args = meta["study"]["args"]
    assert args["min_estimation"] == 20 and args["rank_blocks"] == 50 and args["sign_p"] == "bars"
    assert meta["inputs"]["bars"]["rows"] == bars.height and meta["inputs"]["calendar"]["rows"] == cal.height
    loaded = ash.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.verify(bars)           # the saved calendar
        loaded.verify(bars, cal)
        st.verify(bars)               # a fresh study verifies too


def test_verify_refuses_other_inputs_and_names_a_changed_table(saved):
    bars, cal, st, path = saved
    loaded = ash.load(path)
    with pytest.raises(ash.VerificationError, match="bars differ"):
        loaded.verify(bars.with_columns(pl.col("close") * 1.0001))
    with pytest.raises(ash.VerificationError, match="calendar differs"):
        loaded.verify(bars, cal.with_columns(pl.col("hawkish_z") * 2))
    with pytest.raises(ash.VerificationError, match="calendar differs"):  # a fresh study checks it too
        st.verify(bars, cal.with_columns(pl.col("hawkish_z") * 2))
    object.__setattr__(loaded, "sensitivity", loaded.sensitivity.with_columns(pl.col("slope") + 1e-12))
    with warnings.catch_warnings(), pytest.raises(ash.VerificationError, match=r"sensitivity: column 'slope' row 0"):
        warnings.simplefilter("ignore")
        loaded.verify(bars)


def test_a_damaged_study_table_is_named(saved, tmp_path):
    _, _, st, _ = saved
    st.save(tmp_path / "st")
    target = tmp_path / "st" / "reactions.parquet"
    target.write_bytes(target.read_bytes()[:-50])
    with pytest.raises(ash.PersistenceError, match=r"reactions\.parquet: truncated"):
        ash.load(tmp_path / "st")


def test_the_bars_hash_is_of_the_bars_studied_even_if_the_frame_changes_before_save(tmp_path):
    """The bars are hashed only when the study is saved (hashing is slower than the
    study on big inputs); a change made in place to the caller's frame in between must
    not reach the record."""
    from aftershock.event_study.persist import bars_record

    bars, cal = bars_and_calendar()
    original = bars.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = ash.study(bars, cal, windows=["15m"], estimation=("-10d", "0m"), min_estimation=20)
    i = bars.columns.index("close")
    bars.replace_column(i, bars["close"] * 2)  # in place, on the caller's object
    st.save(tmp_path / "st")
    meta = json.loads((tmp_path / "st" / "meta.json").read_text())
    assert meta["inputs"]["bars"] == bars_record(original)
    assert meta["inputs"]["bars"] != bars_record(bars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ash.load(tmp_path / "st").verify(original)
        with pytest.raises(ash.errors.VerificationError, match="bars differ"):
            st.verify(bars)
