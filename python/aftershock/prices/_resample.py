"""Resampling bars to a coarser interval, and reporting gaps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from aftershock._time import duration_us, parse_duration, polars_every
from aftershock.errors import BarsError, InputError
from aftershock.prices._validate import validate_bars


def _duration(every: str | dt.timedelta) -> dt.timedelta:
    try:
        polars_every(every)  # positive, no calendar units
    except InputError as exc:
        raise BarsError(exc.message, argument="every") from None
    return parse_duration(every, column="every")


def resample_bars(
    bars: Any,
    every: str | dt.timedelta,
    *,
    offset: str | dt.timedelta | None = None,
    count: bool = False,
) -> pl.DataFrame:
    """Aggregate bars to ``every`` (e.g. ``"5m"``, ``"15m"``, ``"1h"``, ``"1d"``), per symbol.

    Buckets are left-closed and labelled by their start, aligned to the UTC epoch
    (daily bars run 00:00-24:00 UTC; ``offset`` shifts the grid, e.g. ``"-4h"``). open
    is the first bar's open, high the max, low the min, close the last bar's close,
    volume the sum. A bucket with no input bars produces no row (nothing is filled),
    and a bucket missing some of its input bars is still emitted: use
    :func:`bar_gaps` on the input, or ``count=True`` to get an ``n_bars`` column. The
    input bars must be finer than ``every`` and their ``ts`` its bucket start times'
    subdivisions. Output rows are sorted by symbol (first appearance), then ``ts``.
    """
    df = validate_bars(bars)
    _duration(every)
    span = df.select((pl.col("ts").max() - pl.col("ts").min()).dt.total_microseconds()).item() or 0
    try:
        every = polars_every(every, span_us=span)
    except InputError as exc:
        raise BarsError(exc.message, argument="every") from None
    if offset is not None:
        try:
            offset = f"{duration_us(offset, name='offset')}us"
        except InputError as exc:
            raise BarsError(exc.message, argument="offset") from None
    order = df.select(pl.col("symbol").unique(maintain_order=True)).to_series().to_list()
    aggs = [
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
    ]
    if "volume" in df.columns:
        aggs.append(pl.col("volume").sum())
    if count:
        aggs.append(pl.len().cast(pl.Int64).alias("n_bars"))
    out = (
        df.lazy()
        .select([c for c in ("ts", "symbol", "open", "high", "low", "close", "volume") if c in df.columns])
        .with_columns(pl.col("symbol").cast(pl.Enum(order)).alias("_sym"))
        .sort("_sym", "ts")
        .group_by_dynamic("ts", every=every, offset=offset, group_by="_sym", closed="left", label="left", start_by="window")
        .agg(aggs)
        .sort("_sym", "ts")
        .with_columns(pl.col("_sym").cast(pl.String).alias("symbol"))
        .drop("_sym")
        .collect()
    )
    cols = ["ts", "symbol", "open", "high", "low", "close"] + [c for c in ("volume", "n_bars") if c in out.columns]
    return out.select(cols)


def bar_gaps(bars: Any, every: str | dt.timedelta | None = None) -> pl.DataFrame:
    """Where bars are missing: one row per gap per symbol.

    ``every`` is the expected spacing (default: each symbol's most common spacing).
    Columns: ``symbol``, ``gap_start`` (the first missing bar's time), ``gap_end`` (the
    next bar present), ``missing`` (bars missing). Sessions that close by design (e.g.
    futures at weekends) show up as gaps too; filter them by duration if needed.
    """
    df = validate_bars(bars).select("ts", "symbol")
    diffs = df.with_columns((pl.col("ts") - pl.col("ts").shift(1).over("symbol")).alias("_d"), pl.col("ts").shift(1).over("symbol").alias("_prev"))
    if every is None:
        steps = (
            diffs.drop_nulls("_d")
            .group_by("symbol")
            .agg(pl.col("_d").mode().min().alias("_step"))
        )
    else:
        step = _duration(every)
        steps = df.select(pl.col("symbol").unique()).with_columns(pl.lit(step).alias("_step"))
    return (
        diffs.join(steps, on="symbol", how="left")
        .filter(pl.col("_d") > pl.col("_step"))
        .select(
            "symbol",
            (pl.col("_prev") + pl.col("_step")).alias("gap_start"),
            pl.col("ts").alias("gap_end"),
            ((pl.col("_d").dt.total_microseconds() // pl.col("_step").dt.total_microseconds()) - 1).alias("missing"),
        )
    )
