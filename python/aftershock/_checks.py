"""Checks shared by every frame the library reads."""

from __future__ import annotations

from typing import Any

import polars as pl

from aftershock.errors import InputError

__all__ = ["as_polars", "utc_timestamps"]


def utc_timestamps(df: pl.DataFrame, column: str, error: type[InputError], *, round_up: bool = False) -> pl.Expr:
    """The expression converting ``column`` to ``Datetime("us", "UTC")``; raises
    ``error`` naming the column when it is not a time-zone aware Datetime (a naive
    timestamp is ambiguous, so it is refused rather than assumed to be UTC).

    Nanoseconds are truncated, or rounded up to the next microsecond with
    ``round_up`` (for the instants a figure becomes public: never earlier)."""
    dtype = df.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise error(f"{column!r} must be a time-zone aware Datetime, got {dtype}", column=column)
    if dtype.time_zone is None:
        raise error(
            f"{column!r} is naive (no time zone); attach one, e.g. .dt.replace_time_zone('UTC')", column=column
        )
    utc = pl.col(column).dt.convert_time_zone("UTC")
    if round_up and dtype.time_unit == "ns":
        micros = -((-utc.dt.epoch("ns")) // 1000)  # ceiling division
        return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC").alias(column)
    return utc.dt.cast_time_unit("us")


def as_polars(frame: Any, error: type[InputError], what: str) -> pl.DataFrame:
    """A Polars frame from a Polars (eager or lazy) or pandas frame; a named pandas
    index becomes a column. Anything else raises ``error``."""
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(frame, pd.DataFrame):
        return pl.from_pandas(frame.reset_index(drop=True) if frame.index.name is None else frame.reset_index())
    raise error(f"{what} must be a Polars or pandas DataFrame, got {type(frame).__name__}")
