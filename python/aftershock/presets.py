"""Peers' conventions as presets (``ash.presets.backtesting_py``): see
:mod:`aftershock.trading.presets` and docs/backtesting_py.md."""

from aftershock.trading.presets import FULL_EQUITY, backtesting_py

__all__ = ["backtesting_py", "FULL_EQUITY"]
