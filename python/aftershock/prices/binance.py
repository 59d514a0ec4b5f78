"""Binance public kline archives (https://data.binance.vision) with a local Parquet cache.

One archive is one zip holding one CSV of 12-column klines for a month or a day::

    {base}/data/spot/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2025-01.zip
    {base}/data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-02-12.zip

:func:`download_klines` fetches the archives covering a time range, verifies each
against its published ``.CHECKSUM`` (SHA-256), converts it to our bars schema and keeps
it as ``{cache_dir}/{market}/{symbol}/{interval}/{period}.parquet``; later calls read
the cache and touch no network. ``fetch`` (a function ``url -> bytes``) replaces the
HTTP client, which is how the tests run on recorded archives offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Literal

import polars as pl

from aftershock.errors import BarsError
from aftershock.prices._read import read_binance_csv, to_utc
from aftershock.prices._validate import validate_bars

BASE_URL = "https://data.binance.vision"
MARKETS = {"spot": "spot", "um": "futures/um", "cm": "futures/cm"}
Fetch = Callable[[str], bytes]


class ArchiveNotFound(LookupError):
    """Binance has no archive at this URL (not published yet, or a wrong symbol/interval)."""


def default_cache_dir() -> Path:
    """``$AFTERSHOCK_CACHE`` or ``~/.cache/aftershock``, plus ``binance``."""
    root = os.environ.get("AFTERSHOCK_CACHE") or Path.home() / ".cache" / "aftershock"
    return Path(root) / "binance"


def archive_url(
    symbol: str, interval: str, period: str, market: str = "spot", base_url: str = BASE_URL
) -> str:
    """URL of one archive. ``period`` is ``"YYYY-MM"`` (monthly) or ``"YYYY-MM-DD"`` (daily)."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {sorted(MARKETS)}, got {market!r}")
    granularity = "daily" if len(period) == 10 else "monthly"
    return f"{base_url}/data/{MARKETS[market]}/{granularity}/klines/{symbol}/{interval}/{symbol}-{interval}-{period}.zip"


def _http_get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise ArchiveNotFound(url) from None
        raise


def archive_periods(start: dt.date, end: dt.date, granularity: Literal["monthly", "daily"] = "monthly") -> list[str]:
    """The archive periods covering the dates ``[start, end)``."""
    if end <= start:
        return []
    periods: list[str] = []
    if granularity == "daily":
        day = start
        while day < end:
            periods.append(day.isoformat())
            day += dt.timedelta(days=1)
        return periods
    year, month = start.year, start.month
    while dt.date(year, month, 1) < end:
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return periods


def parse_archive(data: bytes, symbol: str) -> pl.DataFrame:
    """The bars inside one archive zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise BarsError(f"expected one CSV in the archive, found {members}")
            csv = zf.read(members[0])
    except zipfile.BadZipFile as err:
        raise BarsError(f"not a zip archive: {err}") from None
    return read_binance_csv(io.BytesIO(csv), symbol)


def _verify(data: bytes, url: str, fetch: Fetch) -> None:
    text = fetch(url + ".CHECKSUM").decode().strip()
    expected = text.split()[0].lower()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BarsError(f"checksum mismatch for {url}: expected {expected}, got {actual}")


def fetch_archive(
    symbol: str,
    interval: str,
    period: str,
    *,
    market: str = "spot",
    cache_dir: str | Path | None = None,
    fetch: Fetch | None = None,
    verify: bool = True,
    as_symbol: str | None = None,
) -> pl.DataFrame:
    """One archive's bars, from the cache when present, else downloaded and cached."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / market / symbol / interval / f"{period}.parquet"
    name = as_symbol or symbol
    if target.exists():
        try:
            return pl.read_parquet(target).with_columns(pl.lit(name).alias("symbol"))
        except pl.exceptions.PolarsError as exc:
            # a cache damaged outside our atomic write (disk full, a copy cut short):
            # fetch the archive again rather than fail on every later call
            warnings.warn(f"cached archive {target} is unreadable ({str(exc).strip().splitlines()[0]}); "
                          "downloading it again", UserWarning, stacklevel=2)
            target.unlink()
    get = fetch or _http_get
    url = archive_url(symbol, interval, period, market)
    data = get(url)
    if verify:
        _verify(data, url, get)
    bars = validate_bars(parse_archive(data, symbol))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    bars.write_parquet(tmp)
    tmp.replace(target)  # atomic: a half-written file is never mistaken for a cached archive
    return bars.with_columns(pl.lit(name).alias("symbol"))



def download_klines(
    symbol: str,
    interval: str,
    start: dt.date | dt.datetime | str,
    end: dt.date | dt.datetime | str,
    *,
    market: str = "spot",
    granularity: Literal["monthly", "daily"] = "monthly",
    cache_dir: str | Path | None = None,
    fetch: Fetch | None = None,
    verify: bool = True,
    as_symbol: str | None = None,
) -> pl.DataFrame:
    """Bars for ``symbol`` at ``interval`` with ``start <= ts < end`` (naive times are UTC).

    Monthly archives by default (``granularity="daily"`` for the current month, which
    Binance publishes daily first). A missing archive raises :class:`ArchiveNotFound`
    naming its URL. ``as_symbol`` renames the instrument in the output (e.g. ``"BTC"``).
    """
    lo, hi = to_utc(start), to_utc(end)
    last_day = (hi - dt.timedelta(microseconds=1)).date()
    periods = archive_periods(lo.date(), last_day + dt.timedelta(days=1), granularity)
    frames = [
        fetch_archive(symbol, interval, p, market=market, cache_dir=cache_dir, fetch=fetch, verify=verify, as_symbol=as_symbol)
        for p in periods
    ]
    if not frames:
        return validate_bars(pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "symbol": pl.String, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64}))
    bars = pl.concat(frames).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
    return validate_bars(bars)
