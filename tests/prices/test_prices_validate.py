"""validate_bars: normalization and every bad-input error naming column and row."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aftershock.errors import BarsError
from aftershock.prices import validate_bars

T0 = dt.datetime(2025, 2, 12, 13, 30, tzinfo=dt.timezone.utc)


def bars(n: int = 4, **overrides) -> pl.DataFrame:
    base = {
        "ts": [T0 + dt.timedelta(minutes=i) for i in range(n)],
        "symbol": ["BTC"] * n,
        "open": [100.0 + i for i in range(n)],
        "high": [102.0 + i for i in range(n)],
        "low": [99.0 + i for i in range(n)],
        "close": [101.0 + i for i in range(n)],
        "volume": [1.0] * n,
    }
    base.update(overrides)
    return pl.DataFrame(base)


def test_normalizes_types_and_keeps_order():
    ny = bars().with_columns(
        pl.col("ts").dt.convert_time_zone("America/New_York").dt.cast_time_unit("ms"),
        pl.col("symbol").cast(pl.Categorical),
        pl.col("open").cast(pl.Int64),
        pl.lit("x").alias("note"),
    )
    out = validate_bars(ny)
    assert out.schema["ts"] == pl.Datetime("us", "UTC")
    assert out.schema["symbol"] == pl.String
    assert out.schema["open"] == pl.Float64
    assert out["ts"][0] == T0  # 08:30 New York is 13:30 UTC, same instant
    assert out.columns[-1] == "note"
    # interleaved symbols are fine, and order is untouched
    two = pl.concat([bars(2), bars(2, symbol=["ETH"] * 2)]).sort("open", maintain_order=True)
    out2 = validate_bars(two)
    assert out2["symbol"].to_list() == two["symbol"].to_list()


def test_volume_is_optional():
    assert "volume" not in validate_bars(bars().drop("volume")).columns


def test_accepts_pandas():
    pdf = bars().to_pandas()
    out = validate_bars(pdf)
    assert out.height == 4 and out.schema["ts"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize("column", ["ts", "symbol", "open", "high", "low", "close"])
def test_missing_column(column):
    with pytest.raises(BarsError) as err:
        validate_bars(bars().drop(column))
    assert err.value.column == column


def test_naive_ts_raises():
    with pytest.raises(BarsError, match="naive") as err:
        validate_bars(bars().with_columns(pl.col("ts").dt.replace_time_zone(None)))
    assert err.value.column == "ts"


def test_wrong_dtypes():
    with pytest.raises(BarsError) as err:
        validate_bars(bars().with_columns(pl.col("close").cast(pl.String)))
    assert err.value.column == "close"
    with pytest.raises(BarsError) as err:
        validate_bars(bars().with_columns(pl.col("ts").cast(pl.Int64)))
    assert err.value.column == "ts"
    with pytest.raises(BarsError) as err:
        validate_bars(bars(symbol=[1, 2, 3, 4]))
    assert err.value.column == "symbol"


@pytest.mark.parametrize(
    "column,value",
    [
        ("open", float("nan")),
        ("close", float("inf")),
        ("low", 0.0),
        ("high", -5.0),
        ("close", None),
    ],
)
def test_bad_price_names_column_and_row(column, value):
    frame = bars()
    values = frame[column].to_list()
    values[2] = value
    frame = frame.with_columns(pl.Series(column, values, dtype=pl.Float64))
    with pytest.raises(BarsError) as err:
        validate_bars(frame)
    assert (err.value.column, err.value.row) == (column, 2)


def test_high_below_low():
    with pytest.raises(BarsError, match="high < low") as err:
        validate_bars(bars(high=[102.0, 103.0, 104.0, 98.0], open=[100.0, 101, 102, 98], close=[101.0, 102, 103, 98]))
    # row 3: low 102 > high 98; open/close 98 are below low too but high<low is reported
    assert (err.value.column, err.value.row) == ("high", 3)


def test_open_and_close_outside_range():
    with pytest.raises(BarsError, match="open outside") as err:
        validate_bars(bars(open=[100.0, 101.0, 110.0, 103.0]))
    assert (err.value.column, err.value.row) == ("open", 2)
    with pytest.raises(BarsError, match="close outside") as err:
        validate_bars(bars(close=[101.0, 90.0, 103.0, 104.0]))
    assert (err.value.column, err.value.row) == ("close", 1)


@pytest.mark.parametrize("value", [-1.0, float("nan"), None])
def test_bad_volume(value):
    with pytest.raises(BarsError) as err:
        validate_bars(bars(volume=[1.0, 1.0, 1.0, value]))
    assert (err.value.column, err.value.row) == ("volume", 3)


def test_duplicate_and_unsorted_timestamps_name_symbol():
    eth = bars(3, symbol=["ETH"] * 3)
    ts = eth["ts"].to_list()
    dup = eth.with_columns(pl.Series("ts", [ts[0], ts[1], ts[1]]))
    frame = pl.concat([bars(2), dup])  # rows: BTC, BTC, ETH, ETH, ETH(dup)
    with pytest.raises(BarsError, match="duplicate timestamp for symbol 'ETH'") as err:
        validate_bars(frame)
    assert (err.value.column, err.value.row) == ("ts", 4)
    unsorted = bars().with_columns(pl.Series("ts", [ts[0], ts[2], ts[1], T0 + dt.timedelta(hours=1)]))
    with pytest.raises(BarsError, match="out of order.*'BTC'") as err:
        validate_bars(unsorted)
    assert (err.value.column, err.value.row) == ("ts", 2)


def test_same_timestamp_in_two_symbols_is_fine():
    frame = pl.concat([bars(3), bars(3, symbol=["ETH"] * 3)])
    assert validate_bars(frame).height == 6


def test_first_problem_wins():
    frame = bars(close=[101.0, 102.0, 103.0, float("nan")], volume=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(BarsError) as err:
        validate_bars(frame)
    assert (err.value.column, err.value.row) == ("volume", 1)


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        validate_bars(bars().drop("close"))


def test_empty_frame():
    assert validate_bars(bars().head(0)).height == 0


# --- property: the reported row is the first bad row a plain loop finds ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_price = st.sampled_from([1.0, 2.0, 3.0, 0.0, -1.0, float("nan"), float("inf")])


@st.composite
def small_frames(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        rows.append(
            {
                "minute": draw(st.integers(0, 6)),
                "symbol": draw(st.sampled_from(["A", "B"])),
                "open": draw(_price), "high": draw(_price), "low": draw(_price), "close": draw(_price),
                "volume": draw(st.sampled_from([0.0, 1.0, -1.0])),
            }
        )
    return rows


def first_bad_row_by_loop(rows):
    last: dict[str, int] = {}
    for i, r in enumerate(rows):
        prices = [r[c] for c in ("open", "high", "low", "close")]
        if any(not (p == p) or p in (float("inf"),) or p <= 0 for p in prices):
            return i
        if r["high"] < r["low"] or not (r["low"] <= r["open"] <= r["high"]) or not (r["low"] <= r["close"] <= r["high"]):
            return i
        if r["volume"] < 0:
            return i
        if r["symbol"] in last and r["minute"] <= last[r["symbol"]]:
            return i
        last[r["symbol"]] = r["minute"]
    return None


@settings(max_examples=150, deadline=None)
@given(small_frames())
def test_reported_row_matches_a_plain_loop(rows):
    frame = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=r["minute"]) for r in rows],
            "symbol": [r["symbol"] for r in rows],
            **{c: [r[c] for r in rows] for c in ("open", "high", "low", "close", "volume")},
        }
    )
    expected = first_bad_row_by_loop(rows)
    if expected is None:
        assert validate_bars(frame).height == len(rows)
    else:
        with pytest.raises(BarsError) as err:
            validate_bars(frame)
        assert err.value.row == expected


@pytest.mark.parametrize("seed", range(12))
def test_order_check_fast_path_names_the_same_row_as_the_window(seed):
    # grouped frames take a shift-based check; interleaved ones the per-symbol window:
    # both must report the same first bad row as a brute-force scan
    import datetime as _dt

    import numpy as _np

    from aftershock.errors import BarsError
    from aftershock.prices import validate_bars

    rng = _np.random.default_rng(seed)
    t0 = _dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc)
    frames = []
    for sym in ("A", "B", "C"):
        n = int(rng.integers(3, 30))
        ts = [t0 + _dt.timedelta(minutes=int(k)) for k in _np.sort(rng.choice(200, n, replace=False))]
        frames.append(pl.DataFrame({"ts": ts, "symbol": sym, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}))
    df = pl.concat(frames)
    if seed % 2:
        df = df.sort("ts", maintain_order=True)  # interleaved
    if seed % 3:  # break the order of one row
        i = int(rng.integers(1, df.height))
        ts = df["ts"].to_list()
        ts[i] = ts[i] - _dt.timedelta(minutes=int(rng.integers(0, 300)))
        df = df.with_columns(ts=pl.Series(ts, dtype=df.schema["ts"]))
    last: dict = {}
    expected = None
    for r, (t, s) in enumerate(zip(df["ts"].to_list(), df["symbol"].to_list())):
        if s in last and t <= last[s]:
            expected = r
            break
        last[s] = t
    if expected is None:
        validate_bars(df)
    else:
        with pytest.raises(BarsError) as info:
            validate_bars(df)
        assert (info.value.column, info.value.row) == ("ts", expected)
