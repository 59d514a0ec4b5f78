"""The Binance archive downloader, run offline against archives built in the test."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import polars as pl
import pytest

from aftershock.errors import BarsError
from aftershock.prices import binance

UTC = dt.timezone.utc


def kline_zip(symbol: str, interval: str, period: str, start: dt.datetime, n: int, step_s: int, micro: bool, header: bool = False) -> bytes:
    scale = 1_000_000 if micro else 1_000
    lines = []
    if header:
        lines.append("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore")
    t0 = int(start.timestamp())
    for i in range(n):
        t = (t0 + i * step_s) * scale
        p = 100.0 + i
        lines.append(f"{t},{p},{p + 1},{p - 1},{p + 0.5},{i + 1}.0,{t + step_s * scale - 1},0,1,0,0,0")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{symbol}-{interval}-{period}.csv", "\n".join(lines) + "\n")
    return buf.getvalue()


class RecordedArchive:
    """A stand-in for data.binance.vision: a dict of URL -> bytes, counting requests."""

    def __init__(self, files: dict[str, bytes], checksums: bool = True):
        self.files = dict(files)
        if checksums:
            for url, data in files.items():
                name = url.rsplit("/", 1)[1]
                self.files[url + ".CHECKSUM"] = f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()
        self.requests: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.requests.append(url)
        if url not in self.files:
            raise binance.ArchiveNotFound(url)
        return self.files[url]


def test_archive_urls():
    assert binance.archive_url("BTCUSDT", "5m", "2025-01") == (
        "https://data.binance.vision/data/spot/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01.zip"
    )
    assert binance.archive_url("BTCUSDT", "1m", "2025-02-12", market="um") == (
        "https://data.binance.vision/data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-02-12.zip"
    )
    assert binance.archive_periods(dt.date(2024, 12, 20), dt.date(2025, 2, 1)) == ["2024-12", "2025-01"]
    assert binance.archive_periods(dt.date(2025, 2, 27), dt.date(2025, 3, 2), "daily") == ["2025-02-27", "2025-02-28", "2025-03-01"]


def test_download_monthly_across_the_ms_to_us_switch_then_cache(tmp_path):
    dec = kline_zip("BTCUSDT", "1h", "2024-12", dt.datetime(2024, 12, 1, tzinfo=UTC), 31 * 24, 3600, micro=False)
    jan = kline_zip("BTCUSDT", "1h", "2025-01", dt.datetime(2025, 1, 1, tzinfo=UTC), 31 * 24, 3600, micro=True, header=True)
    server = RecordedArchive({
        binance.archive_url("BTCUSDT", "1h", "2024-12"): dec,
        binance.archive_url("BTCUSDT", "1h", "2025-01"): jan,
    })
    bars = binance.download_klines("BTCUSDT", "1h", "2024-12-31T12:00", dt.date(2025, 1, 2), cache_dir=tmp_path, fetch=server, as_symbol="BTC")
    assert bars.height == 12 + 24
    assert bars["ts"][0] == dt.datetime(2024, 12, 31, 12, tzinfo=UTC)
    assert bars["ts"][-1] == dt.datetime(2025, 1, 1, 23, tzinfo=UTC)
    assert bars["ts"].diff().drop_nulls().unique().to_list() == [dt.timedelta(hours=1)]
    assert bars["symbol"].unique().to_list() == ["BTC"]
    assert len(server.requests) == 4  # two archives, two checksums
    assert (tmp_path / "spot" / "BTCUSDT" / "1h" / "2025-01.parquet").exists()
    again = binance.download_klines("BTCUSDT", "1h", "2024-12-31T12:00", dt.date(2025, 1, 2), cache_dir=tmp_path, fetch=server, as_symbol="BTC")
    assert again.equals(bars)
    assert len(server.requests) == 4  # served from the Parquet cache


def test_checksum_mismatch_and_missing_archive(tmp_path):
    data = kline_zip("ETHUSDT", "5m", "2025-03-01", dt.datetime(2025, 3, 1, tzinfo=UTC), 288, 300, micro=True)
    url = binance.archive_url("ETHUSDT", "5m", "2025-03-01")
    server = RecordedArchive({url: data})
    server.files[url + ".CHECKSUM"] = b"0" * 64 + b"  ETHUSDT-5m-2025-03-01.zip\n"
    with pytest.raises(BarsError, match="checksum"):
        binance.download_klines("ETHUSDT", "5m", "2025-03-01", "2025-03-02", granularity="daily", cache_dir=tmp_path, fetch=server)
    assert not list(tmp_path.rglob("*.parquet"))  # nothing cached from a bad download
    ok = binance.download_klines("ETHUSDT", "5m", "2025-03-01", "2025-03-02", granularity="daily", cache_dir=tmp_path, fetch=server, verify=False)
    assert ok.height == 288
    with pytest.raises(binance.ArchiveNotFound, match="2025-03-02"):
        binance.download_klines("ETHUSDT", "5m", "2025-03-01", "2025-03-03", granularity="daily", cache_dir=tmp_path / "b", fetch=RecordedArchive({url: data}))


def test_bad_archive_content_is_a_bars_error(tmp_path):
    url = binance.archive_url("BTCUSDT", "1m", "2025-01")
    with pytest.raises(BarsError, match="zip"):
        binance.download_klines("BTCUSDT", "1m", "2025-01-01", "2025-01-02", cache_dir=tmp_path, fetch=RecordedArchive({url: b"not a zip"}), verify=False)


def test_read_bars_reads_archive_zips(tmp_path):
    from aftershock.prices import read_bars

    (tmp_path / "BTCUSDT-5m-2025-01.zip").write_bytes(kline_zip("BTCUSDT", "5m", "2025-01", dt.datetime(2025, 1, 1, tzinfo=UTC), 12, 300, micro=True))
    bars = read_bars(tmp_path / "BTCUSDT-5m-2025-01.zip")
    assert bars.height == 12 and bars["symbol"][0] == "BTCUSDT"
    assert bars.schema["ts"] == pl.Datetime("us", "UTC")
