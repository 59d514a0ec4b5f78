"""Type stubs for the compiled Rust engine (checked by mypy.stubtest in the tests)."""

from typing import Any, Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__", "simulate", "simulate_many", "check_bars", "simulate_many_stats", "codes",
    "simulate_signals", "simulate_signals_many", "simulate_signal_group",
]

__version__: str

def simulate(
    bars: Mapping[str, npt.NDArray[Any]],
    orders: Mapping[str, npt.NDArray[Any]],
    config: Mapping[str, Any],
    trusted: bool,
) -> dict[str, Any]:
    """Run one backtest over engine-ready column arrays; returns raw output columns."""

def simulate_many(
    bars: Mapping[str, npt.NDArray[Any]],
    orders: Sequence[Mapping[str, npt.NDArray[Any]]],
    configs: Sequence[Mapping[str, Any]],
    threads: int,
    trusted: bool,
) -> list[dict[str, Any]]:
    """Run many backtests over the same bars on ``threads`` threads."""

def check_bars(bars: Mapping[str, npt.NDArray[np.generic]]) -> None:
    """Validate ordering and prices of engine-ready bar arrays; raises BarsError."""

# --- sweeps scored in the engine ---------------------------------------------

def simulate_many_stats(
    bars: Mapping[str, npt.NDArray[Any]],
    orders: Sequence[Mapping[str, npt.NDArray[Any]]],
    configs: Sequence[Mapping[str, Any]],
    threads: int,
    trusted: bool,
    day: int,
    periods_per_year: float,
) -> dict[str, list[Any]]:
    """Run many backtests; return every ``Result.stats()`` figure per job, as columns."""

def codes() -> dict[str, dict[str, int]]:
    """The engine's code tables, ``{column: {text: code}}``."""

# --- signals simulated in the engine ----------------------------------------

def simulate_signal_group(
    bars: Sequence[Mapping[str, npt.NDArray[Any]]],
    signals: Sequence[Mapping[str, npt.NDArray[Any]]],
    codes: Sequence[int],
    config: Mapping[str, Any],
    cash_sharing: bool,
    keep_equity: bool,
) -> dict[str, Any]:
    """Several symbols' signal backtests as one (columns in list order, shared cash with
    ``cash_sharing``); raw output columns as ``simulate_signals``."""

def simulate_signals(
    bars: Mapping[str, npt.NDArray[Any]],
    signals: Mapping[str, npt.NDArray[Any]],
    config: Mapping[str, Any],
    keep_equity: bool,
) -> dict[str, Any]:
    """One signal backtest over one symbol's validated bars; returns raw output columns
    (the equity ones empty unless ``keep_equity``)."""

def simulate_signals_many(
    bars: Mapping[str, npt.NDArray[Any]],
    signals: Mapping[str, npt.NDArray[Any]],
    config: Mapping[str, Any],
    variants: Mapping[str, npt.NDArray[np.float64]],
    threads: int,
) -> dict[str, list[Any]]:
    """A sweep of signal backtests; one list per stats figure, in variant order."""
