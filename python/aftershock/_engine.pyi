"""Type stubs for the compiled Rust engine (checked by mypy.stubtest in the tests).

Frames cross through the Arrow C stream interface: arguments typed ``_ArrowStream``
are Polars DataFrames or Series (anything with ``__arrow_c_stream__``, or
``__arrow_c_array__``), read in place; engine output tables are :class:`ArrowTable`, which ``pl.DataFrame(table)``
imports without a copy.
"""

from typing import Any, Mapping, Protocol, Sequence, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__", "MAX_DAYS", "simulate", "simulate_many", "check_bars", "simulate_many_stats", "codes",
    "simulate_signals", "simulate_signals_many", "column_addresses", "ArrowTable", "Progress", "BacktestStream",
    "study_check", "study_spacing", "study_series", "study_cross_cum", "study_blocks", "study_residuals",
    "simulate_many_stats_daily", "simulate_signal_group",
]

__version__: str
MAX_DAYS: int

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: Any = ..., /) -> Any: ...

@final
class ArrowTable:
    """An engine output table owning its Rust vectors; exported as one Arrow batch."""

    def __arrow_c_stream__(self, requested_schema: Any | None = None) -> Any: ...
    def __arrow_c_array__(self, requested_schema: Any | None = None) -> tuple[Any, Any]: ...
    def __len__(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...
    def buffer_address(self, name: str) -> int: ...

@final
class Progress:
    """Variants finished so far, counted by the engine's workers."""

    def __init__(self) -> None: ...
    @property
    def done(self) -> int: ...

def simulate(
    bars: _ArrowStream,
    offsets: _ArrowStream,
    orders: _ArrowStream,
    config: Mapping[str, Any],
    trusted: bool,
) -> dict[str, Any]:
    """Run one backtest; returns ``{"fills", "trades", "equity", "orders": ArrowTable, "bars_visited": int}``."""

def simulate_many(
    bars: _ArrowStream,
    offsets: _ArrowStream,
    orders: Sequence[_ArrowStream],
    configs: Sequence[Mapping[str, Any]],
    threads: int,
    trusted: bool,
) -> list[dict[str, Any]]:
    """Run many backtests over the same bars on ``threads`` threads."""

def check_bars(bars: _ArrowStream, offsets: _ArrowStream) -> None:
    """Validate ordering and prices of engine-ready bars; raises BarsError."""

def column_addresses(frame: _ArrowStream) -> dict[str, int | None]:
    """Where the engine reads each column in memory (``None``: gathered, a copy)."""

# --- sweeps scored in the engine ---------------------------------------------

def simulate_many_stats(
    bars: _ArrowStream,
    offsets: _ArrowStream,
    orders: Sequence[_ArrowStream],
    configs: Sequence[Mapping[str, Any]],
    threads: int,
    trusted: bool,
    day: int,
    periods_per_year: float,
    progress: Progress | None = None,
    conventions: Mapping[str, Any] | None = None,
) -> ArrowTable:
    """Run many backtests; return the engine's ``Result.stats()`` figures, one row per job."""

def simulate_many_stats_daily(
    bars: _ArrowStream,
    offsets: _ArrowStream,
    orders: Sequence[_ArrowStream],
    configs: Sequence[Mapping[str, Any]],
    threads: int,
    trusted: bool,
    day: int,
    periods_per_year: float,
    progress: Progress | None = None,
    conventions: Mapping[str, Any] | None = None,
) -> tuple[ArrowTable, Any, int]:
    """``simulate_many_stats`` plus the daily returns (a jobs x days float buffer,
    job-major, for ``np.frombuffer``) and the number of days per job."""

def codes() -> dict[str, dict[str, int]]:
    """The engine's code tables, ``{column: {text: code}}``."""

# --- signals simulated in the engine ----------------------------------------

def simulate_signal_group(
    bars: Sequence[_ArrowStream],
    signals: Sequence[_ArrowStream],
    codes: Sequence[int],
    config: Mapping[str, Any],
    cash_sharing: bool,
    keep_equity: bool,
) -> dict[str, Any]:
    """Several symbols' signal backtests as one (columns in list order, shared cash with
    ``cash_sharing``); the engine's tables as ``simulate_signals``."""

def simulate_signals(
    bars: _ArrowStream,
    signals: _ArrowStream,
    config: Mapping[str, Any],
    keep_equity: bool,
) -> dict[str, Any]:
    """One signal backtest over one symbol's validated bars; returns the engine's tables
    (the equity one empty unless ``keep_equity``)."""

def simulate_signals_many(
    bars: _ArrowStream,
    signals: _ArrowStream,
    config: Mapping[str, Any],
    variants: _ArrowStream,
    threads: int,
    progress: Progress | None = None,
    conventions: Mapping[str, Any] | None = None,
    periods_per_year: float = 365.0,
    daily: bool = False,
) -> Any:
    """A sweep of signal backtests; one row of stats figures per variant, in order
    (with ``conventions``: every figure, under them). With ``daily`` (aftershock's
    conventions), ``(table, buffer, days)``: every variant's calendar-day returns as
    one job-major float buffer, as ``simulate_many_stats_daily`` gives them."""


@final
class BacktestStream:
    """One backtest fed its bars one stretch of time at a time (bars larger than memory)."""

    def __new__(
        cls,
        orders: _ArrowStream,
        config: Mapping[str, Any],
        n_symbols: int,
        day: int,
        periods_per_year: float,
        keep_equity: bool,
    ) -> "BacktestStream": ...
    def feed(self, bars: _ArrowStream, offsets: _ArrowStream, ends: Sequence[bool]) -> None: ...
    def take_equity(self) -> ArrowTable: ...
    def finish(self) -> tuple[dict[str, Any], ArrowTable | None]: ...

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

def study_residuals(
    usable: Mapping[str, npt.NDArray[Any]],
    log_close: npt.NDArray[np.float64],
    market_log: npt.NDArray[np.float64] | None,
    market_returns: npt.NDArray[np.float64] | None,
    hi: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    alpha: npt.NDArray[np.float64],
    beta: npt.NDArray[np.float64],
    bars: int,
    out: npt.NDArray[np.float64],
) -> None:
    """Write each row's last ``bars`` estimation residuals into ``out`` (rows × bars)."""
