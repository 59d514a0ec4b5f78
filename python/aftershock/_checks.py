"""Checks shared by every frame the library reads."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import polars as pl

from aftershock.errors import InputError

__all__ = ["as_polars", "from_pandas", "utc_timestamps", "read_csv", "source_name"]


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
        return from_pandas(frame.reset_index(drop=True) if frame.index.name is None else frame.reset_index(), error)
    raise error(f"{what} must be a Polars or pandas DataFrame, got {type(frame).__name__}")


def from_pandas(frame: Any, error: type[InputError]) -> pl.DataFrame:
    """A pandas frame as Polars, with NumPy only: ``pl.from_pandas`` needs pyarrow for
    any column that is not plain NumPy (strings, time-zone aware times), and pyarrow
    is not a dependency of aftershock. NumPy columns cross as arrays (NaN becomes null,
    as in ``pl.from_pandas``); aware times cross as UTC; string, categorical and
    nullable string columns as codes into their distinct values; other columns (pandas'
    nullable numbers, Python objects) as Python values. The index is dropped."""
    import numpy as np
    import pandas as pd

    columns: dict[str, pl.Series] = {}
    for position, label in enumerate(frame.columns):
        name = str(label)
        if name in columns:
            raise error(f"duplicate column name {name!r}", column=name)
        s = frame.iloc[:, position]
        dtype = s.dtype
        try:
            if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
                columns[name] = pl.Series(name, s.to_numpy(), nan_to_null=True)
            elif isinstance(dtype, np.dtype) and dtype.kind in "mM":
                columns[name] = pl.Series(name, s.to_numpy())
            elif isinstance(dtype, pd.DatetimeTZDtype):
                naive = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
                columns[name] = pl.Series(name, naive).dt.replace_time_zone("UTC")
            else:
                codes, uniques = pd.factorize(s, use_na_sentinel=True)
                labels = list(uniques)
                if all(isinstance(u, str) for u in labels):  # strings: one Python value per distinct one
                    pool = pl.Series(name, [*labels, None], dtype=pl.String)
                    columns[name] = pool.gather(np.where(codes < 0, len(labels), codes))
                else:
                    values = s.astype(object).where(s.notna(), None).tolist()
                    columns[name] = pl.Series(name, values, strict=False)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
            raise error(f"cannot convert pandas column {name!r} of dtype {dtype}: {exc}", column=name) from None
    return pl.DataFrame(columns, height=len(frame)) if columns else pl.DataFrame(height=len(frame))


def source_name(source: Any) -> str:
    """How messages name a file: its name, or ``"data"`` for bytes and file objects."""
    return Path(source).name if isinstance(source, (str, Path)) else getattr(source, "name", None) or "data"


def read_csv(source: Any, error: type[InputError], *, name: str | None = None, **options: Any) -> pl.DataFrame:
    """``pl.read_csv(source, **options)`` whose failures are ``error``s naming the file
    and, for a line with the wrong number of fields, the line (1-based, as an editor
    numbers it). ``source`` is a path, bytes or a binary file object."""
    name = name or source_name(source)
    try:
        return pl.read_csv(source, **options)
    except pl.exceptions.NoDataError:
        raise error(f"{name} is empty: no header and no rows") from None
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0]
        line = _ragged_line(source)
        if line is not None:
            raise error(f"{name}, line {line}: the line has a different number of fields than the first one "
                        f"({reason})") from None
        raise error(f"cannot read {name} as CSV: {reason}") from None


def _ragged_line(source: Any) -> int | None:
    """The first line whose field count differs from the first line's; only called
    once reading has failed, so the Python loop costs nothing on good files."""
    if isinstance(source, (str, Path)):
        data = Path(source).read_bytes()
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif hasattr(source, "getvalue"):
        data = source.getvalue()
    else:
        return None
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    width = None
    for fields in reader:
        if not fields:
            continue
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            return reader.line_num
    return None
