"""Price bars: validation, readers, resampling and the Binance archive downloader."""

from aftershock.prices._read import BINANCE_COLUMNS, epoch_to_utc, read_bars, read_binance_csv, scan_parquet_bars
from aftershock.prices._resample import bar_gaps, resample_bars
from aftershock.prices._scan import BarsScan, scan_bars
from aftershock.prices._validate import BARS_SCHEMA, validate_bars

__all__ = [
    "BARS_SCHEMA",
    "BarsScan",
    "BINANCE_COLUMNS",
    "bar_gaps",
    "epoch_to_utc",
    "read_bars",
    "read_binance_csv",
    "resample_bars",
    "scan_bars",
    "scan_parquet_bars",
    "validate_bars",
]
