"""Checks shared by every frame the library reads."""

from __future__ import annotations

import polars as pl

from aftershock.errors import InputError

__all__ = ["utc_timestamps"]


def utc_timestamps(df: pl.DataFrame, column: str, error: type[InputError]) -> pl.Expr:
    """The expression converting ``column`` to ``Datetime("us", "UTC")``; raises
    ``error`` naming the column when it is not a time-zone aware Datetime (a naive
    timestamp is ambiguous, so it is refused rather than assumed to be UTC)."""
    dtype = df.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise error(f"{column!r} must be a time-zone aware Datetime, got {dtype}", column=column)
    if dtype.time_zone is None:
        raise error(
            f"{column!r} is naive (no time zone); attach one, e.g. .dt.replace_time_zone('UTC')", column=column
        )
    return pl.col(column).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
