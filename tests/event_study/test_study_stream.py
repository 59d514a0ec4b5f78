"""study over a Parquet folder loads only the bars inside the events' spans and equals
the in-memory study: the same rows, reasons, counts and nulls; the same numbers up to
the rounding of the in-memory prefix sums, which run from the series' first bar."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock.errors import BarsError, InputError
from aftershock.event_study import _stream
from builders import minute_walk, write_hive

FRAMES = ("reactions", "sensitivity", "tests", "paths", "drift", "volatility")
# columns read from prefix sums over the whole series (volume, squared returns, the
# estimation variance): the in-memory study rounds those sums over the series' first
# bars too, the streamed one only over the bars it loaded
PREFIX = {"rv", "rv_before", "volume", "volume_before", "expected", "sd", "scar", "patell_z", "bmp_t", "kp_t",
          "mean_log_rv_ratio", "t_log_rv_ratio", "mean_log_volume_ratio", "t_log_volume_ratio"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars")
    write_hive(minute_walk(["BTC", "ETH"], 500_000, seed=21), root)
    bars = ash.read_bars(root)
    rng = np.random.default_rng(8)
    t0, t1 = bars["ts"].min(), bars["ts"].max()
    n = 40
    minutes = rng.integers(0, int((t1 - t0).total_seconds() // 60), n)
    release = sorted(t0 + dt.timedelta(minutes=int(m)) for m in minutes)
    release[3] = t0 + dt.timedelta(hours=2)  # estimation window before the data starts
    release[-1] = t1 - dt.timedelta(minutes=30)  # windows after the data ends
    cal = pl.DataFrame({"event_id": [f"e{k}" for k in range(n)], "kind": "macro",
                        "indicator": ["CPI_YOY", "NFP"] * (n // 2),
                        "release_ts": pl.Series(release, dtype=pl.Datetime("us", "UTC")),
                        "hawkish_z": rng.normal(size=n)})
    return root, bars, cal


KW = dict(windows=["-1h", "15m", "1h", "4h"], model="market", benchmark="ETH", estimation=("-5d", "0m"))


def _compare(a, b, rtol_prefix=1e-8):
    for name in FRAMES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.schema == y.schema and x.height == y.height, name
        for c in x.columns:
            if not x[c].dtype.is_float():
                assert x[c].equals(y[c]), (name, c)
                continue
            u, v = x[c].to_numpy(), y[c].to_numpy()
            assert np.array_equal(np.isnan(u), np.isnan(v)), (name, c)
            rtol = rtol_prefix if c in PREFIX else 1e-12
            np.testing.assert_allclose(v, u, rtol=rtol, atol=1e-12, err_msg=f"{name}.{c}")
    assert a.settings == b.settings and a.windows == b.windows


def test_streamed_study_equals_the_in_memory_one(data):
    root, bars, cal = data
    want = ash.study(bars, cal, **KW)
    got = ash.study(ash.prices.scan_bars(root, batch_rows=20_000), cal, **KW)
    _compare(want, got)
    reasons = set(want.reactions["reason"].drop_nulls())
    assert {"before_data", "after_data"} & reasons  # the edge events reach past the data
    assert want.reactions["car"].is_not_null().sum() > 200


def test_only_the_bars_around_events_are_loaded(data, monkeypatch):
    root, bars, cal = data
    scan = ash.prices.scan_bars(root, batch_rows=50_000)
    loaded = {}
    real = _stream._kept_rows

    def spy(scan_, sym, starts, ends):
        loaded[sym] = real(scan_, sym, starts, ends)
        return loaded[sym]

    monkeypatch.setattr(_stream, "_kept_rows", spy)
    ash.study(scan, cal, **KW)
    assert set(loaded) == {"BTC", "ETH"}
    for sym, part in loaded.items():
        assert 0 < part.height < 0.5 * bars.filter(pl.col("symbol") == sym).height


def test_streamed_sums_are_at_least_as_close_to_exact_sums(data):
    """Where the two differ, the streamed figures are on the whole the closer ones to
    the exactly rounded sums (math.fsum over the window's bars)."""
    root, bars, cal = data
    want = ash.study(bars, cal, **KW)
    got = ash.study(ash.prices.scan_bars(root, batch_rows=20_000), cal, **KW)
    btc = bars.filter(pl.col("symbol") == "BTC")
    close_time = (btc["ts"].dt.epoch("us") + 60_000_000).to_numpy()
    volume = btc["volume"].to_numpy()
    log_c = np.log(btc["close"].to_numpy())
    rows = want.reactions.with_row_index().filter(pl.col("symbol") == "BTC", pl.col("volume").is_not_null())
    err_mem, err_stream = [], []
    for r in rows.iter_rows(named=True):
        i0 = int(np.searchsorted(close_time, r["start_ts"].timestamp() * 1e6 + 0.5)) - 1
        i1 = int(np.searchsorted(close_time, r["end_ts"].timestamp() * 1e6 + 0.5)) - 1
        exact_vol = math.fsum(volume[i0 + 1 : i1 + 1])
        exact_rv = math.sqrt(math.fsum(np.diff(log_c[i0 : i1 + 1]) ** 2))
        k = r["index"]
        err_mem.append(abs(want.reactions["volume"][k] - exact_vol) / exact_vol + abs(want.reactions["rv"][k] - exact_rv) / exact_rv)
        err_stream.append(abs(got.reactions["volume"][k] - exact_vol) / exact_vol + abs(got.reactions["rv"][k] - exact_rv) / exact_rv)
    assert np.mean(err_stream) <= np.mean(err_mem)
    assert max(err_stream) < 1e-10


def test_bar_length_is_the_median_spacing_of_the_whole_series(data):
    root, bars, _ = data
    scan = ash.prices.scan_bars(root, batch_rows=7_000)
    for sym in scan.symbols:
        ts = bars.filter(pl.col("symbol") == sym)["ts"].dt.epoch("us").to_numpy()
        assert _stream.median_spacing(scan, sym) == int(np.median(np.diff(ts)))
    gaps = pl.DataFrame({"ts": pl.Series([0, 60, 180, 240, 420, 480], dtype=pl.Int64) * 1_000_000})
    gaps = gaps.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), symbol=pl.lit("X"), open=1.0, high=1.0,
                             low=1.0, close=1.0)
    folder = root.parent / "gaps"
    folder.mkdir(exist_ok=True)
    gaps.write_parquet(folder / "x.parquet")
    even = ash.prices.scan_bars(folder, batch_rows=2)  # spacings 60, 120, 60, 180, 60: an even count
    assert _stream.median_spacing(even, "X") == int(np.median(np.diff(gaps["ts"].dt.epoch("us").to_numpy())))


def test_streamed_study_checks_every_bar_and_argument(data, tmp_path):
    root, bars, cal = data
    with pytest.raises(InputError, match="benchmark"):
        ash.study(root, cal, windows=["15m"], model="market", benchmark="SOL")
    write_hive(minute_walk(["BTC"], 60_000, seed=3), tmp_path)
    first_feb = int(ash.read_bars(tmp_path)["ts"].search_sorted(dt.datetime(2020, 2, 1, tzinfo=dt.timezone.utc)))
    path = tmp_path / "symbol=BTC" / "year=2020" / "month=02" / "part.parquet"
    pl.read_parquet(path).with_columns(
        close=pl.when(pl.int_range(pl.len()) == 5).then(-1.0).otherwise(pl.col("close"))
    ).write_parquet(path)
    with pytest.raises(BarsError, match="BTC") as err:
        ash.study(ash.prices.scan_bars(tmp_path, batch_rows=10_000), cal.head(2), windows=["15m"])
    assert err.value.column == "close" and err.value.row == first_feb + 5


def test_events_before_1970_keep_their_estimation_window(data):
    """Regression (found by the 100M-bar benchmark, which starts in 1830): merging the
    exclusion intervals started every merged end at 0, so an interval ending before
    the epoch excluded everything up to 1970 and every later event's estimation
    window was empty."""
    _, bars, cal = data
    shift = dt.timedelta(days=365 * 60)
    kw = dict(windows=["-1h", "15m", "1h"], estimation=("-2d", "0m"), model="constant_mean")
    now = ash.study(bars, cal, **kw).reactions
    before = ash.study(bars.with_columns(pl.col("ts") - shift), cal.with_columns(pl.col("release_ts") - shift), **kw).reactions
    assert now["n_est"].median() > 2000
    assert before["n_est"].equals(now["n_est"]) and before["reason"].equals(now["reason"])
    np.testing.assert_allclose(before["car"].to_numpy(), now["car"].to_numpy(), rtol=1e-9, atol=1e-15)
