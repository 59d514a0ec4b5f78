"""Price bars: validation, readers, resampling and the Binance archive downloader."""

from aftershock.prices._validate import BARS_SCHEMA, validate_bars

__all__ = ["BARS_SCHEMA", "validate_bars"]
