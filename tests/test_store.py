"""The storage layer (python/aftershock/_store.py): content hashes that see values, not
chunks; JSON records that give back equal values; bit-for-bit frame comparison."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftershock import PersistenceError
from aftershock._store import first_difference, frame_digest, from_json, to_json

UTC = dt.timezone.utc

@st.composite
def frames(draw):
    n = draw(st.integers(1, 30))
    def col(elem):
        return draw(st.lists(st.one_of(st.none(), elem), min_size=n, max_size=n))
    return pl.DataFrame({
        "f": pl.Series(col(st.floats(allow_nan=True, allow_infinity=True)), dtype=pl.Float64),
        "i": pl.Series(col(st.integers(-2**62, 2**62)), dtype=pl.Int64),
        "s": pl.Series(col(st.text(max_size=5)), dtype=pl.String),
        "b": pl.Series(col(st.booleans()), dtype=pl.Boolean),
        "t": pl.Series(col(st.integers(0, 2**50)), dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "l": pl.Series(col(st.lists(st.integers(-5, 5), max_size=3)), dtype=pl.List(pl.Int64)),
    })


@settings(max_examples=60, deadline=None)
@given(frames(), st.data())
def test_the_digest_ignores_chunking_and_sees_every_value(frame, data):
    cut = data.draw(st.integers(0, frame.height))
    chunked = pl.concat([frame.head(cut), frame.tail(frame.height - cut)], rechunk=False)
    assert frame_digest(chunked) == frame_digest(frame)
    assert first_difference(chunked, frame) is None
    row = data.draw(st.integers(0, frame.height - 1))
    name = data.draw(st.sampled_from(frame.columns))
    value = frame.get_column(name)[row]
    if isinstance(value, pl.Series):
        value = value.to_list()
    replacement = {"f": 0.5, "i": 7, "s": "zz9", "b": True, "t": dt.datetime(2030, 1, 1, tzinfo=UTC), "l": [9, 9]}[name]
    new = replacement if value is None or value != replacement else None  # NaN != 0.5: replaced
    changed = frame.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(new, dtype=frame.schema[name]))
                                 .otherwise(pl.col(name)).alias(name))
    assert frame_digest(changed) != frame_digest(frame)
    assert first_difference(changed, frame) is not None and f"row {row}" in first_difference(changed, frame)


def test_the_digest_sees_nulls_empty_strings_names_and_dtypes():
    base = pl.DataFrame({"s": ["a", "", None], "x": [1.0, 2.0, 3.0]})
    assert frame_digest(base) != frame_digest(base.with_columns(pl.col("s").fill_null("")))
    assert frame_digest(base) != frame_digest(base.rename({"x": "y"}))
    assert frame_digest(base) != frame_digest(base.with_columns(pl.col("x").cast(pl.Float32)))
    # string runs: the same text split differently is different content
    assert frame_digest(pl.DataFrame({"s": ["ab", "c"]})) != frame_digest(pl.DataFrame({"s": ["a", "bc"]}))
    assert frame_digest(pl.DataFrame({"s": ["a", "a", "b"]})) != frame_digest(pl.DataFrame({"s": ["a", "b", "b"]}))


def test_first_difference_is_bitwise():
    a = pl.DataFrame({"x": [1.0, float("nan"), 0.0]})
    assert first_difference(a, a.clone()) is None  # NaN equals NaN
    assert "row 2" in first_difference(a, pl.DataFrame({"x": [1.0, float("nan"), -0.0]}))
    assert "dtype" in first_difference(a, a.with_columns(pl.col("x").cast(pl.Float32)))
    assert "rows" in first_difference(a, a.head(2))


values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=5),
              st.timedeltas(), st.datetimes(timezones=st.just(UTC)), st.sampled_from([math.inf, -math.inf])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_json_records_give_back_equal_values(value):
    back = from_json(json.loads(json.dumps(to_json(value), allow_nan=False)))
    assert back == value and type(back) is type(value)


def test_json_records_keep_nan_and_refuse_what_they_cannot_restore():
    assert math.isnan(from_json(json.loads(json.dumps(to_json(float("nan"))))))
    assert from_json(to_json(np.float64(0.1))) == 0.1 and from_json(to_json(np.int64(3))) == 3
    with pytest.raises(PersistenceError, match="grid: values of type object"):
        to_json({"a": object()}, where="grid")
    with pytest.raises(PersistenceError, match="key 1 is not a string"):
        to_json({1: 2})
