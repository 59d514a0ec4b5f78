"""Validation and normalization of price bars (the schema in ``docs/engine.md``)."""

from __future__ import annotations

from typing import Any

import polars as pl

from aftershock._checks import as_polars, utc_timestamps
from aftershock.errors import BarsError

PRICE_COLUMNS = ("open", "high", "low", "close")
_SMALLEST_PRICE = 2.2250738585072014e-308  # the smallest normal float64
REQUIRED_COLUMNS = ("ts", "symbol", *PRICE_COLUMNS)
BARS_SCHEMA = {
    "ts": pl.Datetime("us", "UTC"),
    "symbol": pl.String,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}


def _as_polars(frame: Any) -> pl.DataFrame:
    return as_polars(frame, BarsError, "bars")


def _normalize_dtypes(df: pl.DataFrame) -> pl.DataFrame:
    for name in REQUIRED_COLUMNS:
        if name not in df.columns:
            raise BarsError(f"bars have no {name!r} column; found {df.columns}", column=name)
    casts: list[pl.Expr] = []

    casts.append(utc_timestamps(df, "ts", BarsError))
    _refuse_sub_microsecond(df)

    sym_type = df.schema["symbol"]
    if not (sym_type == pl.String or isinstance(sym_type, (pl.Categorical, pl.Enum))):
        raise BarsError(f"'symbol' must be a string column, got {sym_type}", column="symbol")
    casts.append(pl.col("symbol").cast(pl.String))

    numeric = [*PRICE_COLUMNS] + (["volume"] if "volume" in df.columns else [])
    for name in numeric:
        dtype = df.schema[name]
        if not dtype.is_numeric():
            raise BarsError(f"{name!r} must be numeric, got {dtype}", column=name)
        casts.append(pl.col(name).cast(pl.Float64))
    return df.with_columns(casts)


def _refuse_sub_microsecond(df: pl.DataFrame) -> None:
    """The library keeps time in microseconds: nanosecond ``ts`` are truncated, which is
    exact enough unless two bars of a symbol are less than a microsecond apart (they
    would collapse onto one instant). Those are refused by name rather than reported
    as "not increasing"."""
    dtype = df.schema["ts"]
    if not (isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns") or df.height < 2:
        return
    ns, us = pl.col("ts").dt.epoch("ns"), pl.col("ts").dt.epoch("us")
    collapsed = (ns > ns.shift(1)) & (us == us.shift(1))
    row = df.select(_first_true(collapsed.over("symbol"))).item()
    if row is not None:
        raise BarsError(
            f"bar at {df['ts'][row]} is less than a microsecond after the previous bar of symbol "
            f"{df['symbol'][row]!r}; aftershock keeps time in microseconds: resample the bars",
            column="ts", row=int(row),
        )


def _first_true(mask: pl.Expr) -> pl.Expr:
    return mask.fill_null(False).arg_true().first()


def _not_increasing(df: pl.DataFrame) -> pl.Expr:
    """Rows whose ``ts`` is not after the previous row of the same symbol. When each
    symbol's rows are one contiguous block (the usual layout) that previous row is
    simply the row above, which is several times cheaper than a window over symbols."""
    sym = df.get_column("symbol")
    contiguous = df.height < 2 or int((sym != sym.shift(1)).sum()) + 1 == sym.n_unique()
    if contiguous and sym.null_count() == 0:
        return (pl.col("ts") <= pl.col("ts").shift(1)) & (pl.col("symbol") == pl.col("symbol").shift(1))
    return pl.col("ts") <= pl.col("ts").shift(1).over("symbol")


def validate_bars(frame: Any) -> pl.DataFrame:
    """Check price bars and return them normalized.

    Returns a frame with ``ts`` as ``Datetime("us", "UTC")`` (aware timestamps in
    another zone are converted), ``symbol`` as String and ``open/high/low/close``
    (and ``volume`` when present) as Float64, in the input's row order. Extra columns
    are kept unchanged after these. Nothing is re-sorted, filled or dropped.

    Raises :class:`aftershock.errors.BarsError` naming the column and the 0-based
    row of the first problem: missing column, wrong dtype, naive ``ts``, null ``ts``
    or ``symbol``, null/NaN/infinite/non-positive price, ``high < low``, ``open`` or
    ``close`` outside ``[low, high]``, null/NaN/infinite/negative volume, and
    timestamps that are not strictly increasing within a symbol.
    """
    df = _normalize_dtypes(_as_polars(frame))
    ordered = [c for c in BARS_SCHEMA if c in df.columns]
    df = df.select(ordered + [c for c in df.columns if c not in BARS_SCHEMA])
    if df.height == 0:
        return df

    checks: list[tuple[str, str, pl.Expr]] = [
        ("ts", "null timestamp", pl.col("ts").is_null()),
        ("symbol", "null symbol", pl.col("symbol").is_null()),
    ]
    for name in PRICE_COLUMNS:
        c = pl.col(name)
        # a subnormal price (< 2.2e-308) is float debris: any cash divided by it is infinite
        checks.append((name, "price is null, NaN, infinite, not > 0 or subnormal", c.is_null() | ~c.is_finite()
                       | (c < _SMALLEST_PRICE)))
    checks += [
        ("high", "high < low", pl.col("high") < pl.col("low")),
        ("open", "open outside [low, high]", (pl.col("open") < pl.col("low")) | (pl.col("open") > pl.col("high"))),
        ("close", "close outside [low, high]", (pl.col("close") < pl.col("low")) | (pl.col("close") > pl.col("high"))),
    ]
    if "volume" in df.columns:
        v = pl.col("volume")
        checks.append(("volume", "volume is null, NaN, infinite or negative", v.is_null() | ~v.is_finite() | (v < 0)))
    checks.append(("ts", "timestamps not strictly increasing within symbol", _not_increasing(df)))

    firsts = df.select(
        [_first_true(expr).alias(f"c{i}") for i, (_, _, expr) in enumerate(checks)]
    ).row(0)
    found = [(row, i) for i, row in enumerate(firsts) if row is not None]
    if not found:
        return df
    row, i = min(found)
    column, message, _ = checks[i]
    values = df.row(row, named=True)
    if message.startswith("timestamps"):
        sym = values["symbol"]
        prev = (
            df.head(row)
            .filter(pl.col("symbol") == sym)
            .select(pl.col("ts").last())
            .item()
        )
        kind = "duplicate" if prev == values["ts"] else "out of order"
        message = f"{kind} timestamp for symbol {sym!r}: {values['ts']} after {prev}"
    else:
        shown = {k: values[k] for k in ("ts", "symbol", *PRICE_COLUMNS, "volume") if k in values}
        message = f"{message}: {shown}"
    raise BarsError(message, column=column, row=row)
