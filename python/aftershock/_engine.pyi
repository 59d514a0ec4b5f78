"""Type stubs for the compiled Rust engine (checked by mypy.stubtest in the tests)."""

from typing import Any, Mapping, Sequence, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__", "simulate", "simulate_many", "check_bars", "simulate_many_stats", "codes",
    "simulate_signals", "simulate_signals_many", "BacktestStream",
    "study_check", "study_spacing", "study_series", "study_cross_cum", "study_blocks",
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

def simulate_signals(
    bars: Mapping[str, npt.NDArray[Any]],
    signals: Mapping[str, npt.NDArray[np.uint8]],
    config: Mapping[str, Any],
    keep_equity: bool,
) -> dict[str, Any]:
    """One signal backtest over one symbol's validated bars; returns raw output columns
    (the equity ones empty unless ``keep_equity``)."""

def simulate_signals_many(
    bars: Mapping[str, npt.NDArray[Any]],
    signals: Mapping[str, npt.NDArray[np.uint8]],
    config: Mapping[str, Any],
    variants: Mapping[str, npt.NDArray[np.float64]],
    threads: int,
) -> dict[str, list[Any]]:
    """A sweep of signal backtests; one list per stats figure, in variant order."""

@final
class BacktestStream:
    """One backtest fed its bars one stretch of time at a time (bars larger than memory)."""

    def __new__(
        cls,
        orders: Mapping[str, npt.NDArray[Any]],
        config: Mapping[str, Any],
        n_symbols: int,
        day: int,
        periods_per_year: float,
        keep_equity: bool,
    ) -> "BacktestStream": ...
    def feed(self, bars: Mapping[str, npt.NDArray[Any]], ends: npt.NDArray[np.int64]) -> None: ...
    def take_equity(self) -> dict[str, Any]: ...
    def finish(self) -> tuple[dict[str, Any], dict[str, Any]]: ...
# --- event study: one symbol's per-bar pass -----------------------------------

def study_check(bars: Mapping[str, npt.NDArray[Any]]) -> None:
    """Check one symbol's bars (``ts`` µs, prices, optional ``volume``); raises BarsError."""

def study_spacing(ts: npt.NDArray[np.int64]) -> int | None:
    """The median spacing of sorted open times, None for fewer than two bars."""

def study_series(
    ts: npt.NDArray[np.int64],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64] | None,
    bar_us: int,
    out: Mapping[str, npt.NDArray[Any]],
) -> Any:
    """Fill ``out``'s ``close_time``, ``log_close``, ``sq_cum`` (and ``volume_cum``);
    return the rows of the gap returns as an int64 buffer."""

def study_cross_cum(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], out: npt.NDArray[np.float64]) -> None:
    """Write the prefix sums of products of the two series' one-bar differences into ``out``."""

def study_blocks(
    usable: Mapping[str, npt.NDArray[Any]],
    hi: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    alpha: npt.NDArray[np.float64],
    beta: npt.NDArray[np.float64],
    h: npt.NDArray[np.int64],
    max_blocks: int,
    out: npt.NDArray[np.float64],
) -> None:
    """Write each row's estimation-block abnormal returns into ``out`` (rows × max_blocks)."""
