"""read_bars: our schema, Binance klines (header or not, ms or µs), CSV, Parquet
(lazy, hive-partitioned), frames; and the real shared files."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from aftershock.errors import BarsError
from aftershock.prices import BARS_SCHEMA, epoch_to_utc, read_bars

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)


def make_bars(symbols=("BTC", "ETH"), n=10, step=dt.timedelta(minutes=1), start=T0) -> pl.DataFrame:
    rows = []
    for k, sym in enumerate(symbols):
        for i in range(n):
            p = 100.0 * (k + 1) + i
            rows.append({"ts": start + i * step, "symbol": sym, "open": p, "high": p + 2, "low": p - 1, "close": p + 1, "volume": float(i)})
    return pl.DataFrame(rows, schema=BARS_SCHEMA)


KLINE = "{t},93576.00,93702.15,93537.50,93661.20,45.94160000,{c},4301907.48,7448,16.87,1580504.06,0\n"


def kline_text(times, header=False) -> str:
    head = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n"
    return (head if header else "") + "".join(KLINE.format(t=t, c=t + 299_999) for t in times)


def test_epoch_unit_detection():
    s = pl.Series([1735689600, 1735689600000, 1735689600000000])
    out = pl.select(epoch_to_utc(pl.lit(s))).to_series().to_list()
    assert out == [T0, T0, T0]


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("scale", [1_000, 1_000_000])  # ms (before 2025) and µs (spot 2025+)
def test_binance_csv(tmp_path, header, scale):
    times = [(1735689600 + 300 * i) * scale for i in range(3)]
    path = tmp_path / "BTCUSDT-5m-2025-01.csv"
    path.write_text(kline_text(times, header))
    bars = read_bars(path)
    assert bars.schema == pl.Schema(BARS_SCHEMA)
    assert bars["ts"].to_list() == [T0 + dt.timedelta(minutes=5 * i) for i in range(3)]
    assert bars["symbol"].unique().to_list() == ["BTCUSDT"]
    assert bars["close"][0] == 93661.20
    assert read_bars(path, symbol="BTC")["symbol"].unique().to_list() == ["BTC"]


def test_binance_without_symbol_in_name_needs_symbol(tmp_path):
    path = tmp_path / "klines.csv"
    path.write_text(kline_text([1735689600000]))
    with pytest.raises(BarsError) as err:
        read_bars(path)
    assert err.value.column == "symbol"
    assert read_bars(path, symbol="X").height == 1


def test_our_csv_round_trip_and_symbol_filter(tmp_path):
    bars = make_bars()
    bars.write_csv(tmp_path / "bars.csv")
    assert read_bars(tmp_path / "bars.csv").equals(bars)
    eth = read_bars(tmp_path / "bars.csv", symbol="ETH")
    assert eth.equals(bars.filter(symbol="ETH"))


def test_our_csv_naive_time_is_rejected(tmp_path):
    (tmp_path / "b.csv").write_text("ts,symbol,open,high,low,close\n2025-01-01T00:00:00+00:00,A,1,2,1,2\n2025-01-01 00:01:00,A,1,2,1,2\n")
    with pytest.raises(BarsError, match="offset") as err:
        read_bars(tmp_path / "b.csv")
    assert (err.value.column, err.value.row) == ("ts", 1)


def test_csv_validation_errors_come_through(tmp_path):
    bars = make_bars(n=5).with_columns(pl.when(pl.int_range(pl.len()) == 3).then(50.0).otherwise(pl.col("high")).alias("high"))
    bars.write_csv(tmp_path / "b.csv")
    with pytest.raises(BarsError) as err:
        read_bars(tmp_path / "b.csv")
    assert (err.value.column, err.value.row) == ("high", 3)


def test_frames_pandas_and_missing_symbol():
    bars = make_bars()
    assert read_bars(bars).equals(bars)
    assert read_bars(bars.to_pandas()).equals(bars)
    assert read_bars(bars.to_pandas().set_index("ts")).equals(bars)  # a named DatetimeIndex
    single = bars.filter(symbol="BTC").drop("symbol")
    assert read_bars(single, symbol="BTC").equals(bars.filter(symbol="BTC"))
    with pytest.raises(BarsError) as err:
        read_bars(single)
    assert err.value.column == "symbol"
    assert read_bars(bars, start=T0 + dt.timedelta(minutes=3), end=T0 + dt.timedelta(minutes=5)).height == 4


def test_hive_partitioned_parquet_is_filtered_before_loading(tmp_path):
    bars = make_bars(symbols=("BTC", "ETH", "NQ"), n=60)
    for sym in ("BTC", "ETH", "NQ"):
        part = tmp_path / "lake" / f"symbol={sym}"
        part.mkdir(parents=True)
        bars.filter(symbol=sym).drop("symbol").write_parquet(part / "data.parquet")
    out = read_bars(tmp_path / "lake", symbol="ETH", start="2025-01-01T00:10:00+00:00", end=dt.datetime(2025, 1, 1, 0, 20))
    assert out["symbol"].unique().to_list() == ["ETH"]
    assert out.height == 10 and out["ts"].min() == T0 + dt.timedelta(minutes=10)
    # the filters reach the scan: the optimized plan opens only the ETH partition and
    # carries the time predicate into the Parquet reader
    from aftershock.prices import scan_parquet_bars
    from aftershock.prices._read import _filter

    plan = _filter(scan_parquet_bars(tmp_path / "lake"), ["ETH"], "2025-01-01T00:10:00+00:00", None).explain()
    assert "symbol=ETH" in plan and "symbol=BTC" not in plan and "symbol=NQ" not in plan
    assert plan.index("SCAN") < plan.index("SELECTION") and "ts" in plan.split("SELECTION", 1)[1]
    both = read_bars(tmp_path / "lake", symbol=["BTC", "NQ"])
    assert set(both["symbol"]) == {"BTC", "NQ"} and both.height == 120


def test_single_parquet_file_without_symbol(tmp_path):
    bars = make_bars(symbols=("BTC",))
    bars.drop("symbol").write_parquet(tmp_path / "btc.parquet")
    assert read_bars(tmp_path / "btc.parquet", symbol="BTC").equals(bars)


def test_real_5m_spot_with_microsecond_open_time(real_data):
    bars = read_bars(real_data / "btc_5m_spot" / "BTCUSDT-5m-2025-01.csv")
    assert bars.height == 31 * 288
    assert bars["ts"][0] == T0 and bars["ts"][-1] == dt.datetime(2025, 1, 31, 23, 55, tzinfo=UTC)
    first = bars.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (93576.0, 93702.15, 93537.5, 93661.2)


def test_real_1h_spot_with_millisecond_open_time(real_data):
    bars = read_bars(real_data / "btc_1h_spot" / "BTCUSDT-1h-2024-12.csv")
    assert bars.height == 31 * 24
    assert bars["ts"][0] == dt.datetime(2024, 12, 1, tzinfo=UTC)
    assert bars["open"][0] == 96407.99


def test_real_headered_file_and_folder(real_data):
    april = read_bars(real_data / "btc_5m_spot" / "BTCUSDT-5m-2025-04.csv")  # has a header row
    assert april.height == 30 * 288 and april["ts"][0] == dt.datetime(2025, 4, 1, tzinfo=UTC)
    window = read_bars(real_data / "btc_1m_futures_windows", symbol="BTC")  # 6-column export
    assert window.height == 36 and window["ts"][0] == dt.datetime(2025, 2, 12, 13, 15, tzinfo=UTC)
    folder = read_bars(real_data / "btc_5m_spot", symbol="BTC", start="2025-01-15", end="2025-02-15")
    assert folder.height == 31 * 288
    globbed = read_bars(str(real_data / "btc_5m_spot" / "BTCUSDT-5m-2025-0[12].csv"))
    assert globbed.height == (31 + 28) * 288 and globbed["ts"].is_sorted()
