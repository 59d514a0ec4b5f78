"""The calendar schema and its validation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from aftershock.calendar._registry import INDICATORS
from aftershock._checks import as_polars, utc_timestamps
from aftershock.errors import CalendarError

CALENDAR_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "kind": pl.String(),
    "indicator": pl.String(),
    "period": pl.Date(),
    "release_ts": pl.Datetime("us", "UTC"),
    "actual": pl.Float64(),
    "consensus": pl.Float64(),
    "previous": pl.Float64(),
    "unit": pl.String(),
    "title": pl.String(),
    "category": pl.String(),
    "jurisdiction": pl.String(),
    "direction": pl.Float64(),
    "source": pl.String(),
    "time_precision": pl.String(),
}
REQUIRED = ("event_id", "kind", "release_ts")
KINDS = ("macro", "policy")
TIME_PRECISIONS = ("exact", "hour", "day")
_STRING_COLUMNS = [c for c, t in CALENDAR_SCHEMA.items() if t == pl.String()]
_FLOAT_COLUMNS = ["actual", "consensus", "previous", "direction"]


def _as_polars(frame: Any) -> pl.DataFrame:
    return as_polars(frame, CalendarError, "a calendar")


def _first_row(df: pl.DataFrame, mask: pl.Expr) -> int | None:
    return df.select(mask.fill_null(False).arg_true().first()).item()


def _cast(df: pl.DataFrame) -> pl.DataFrame:
    exprs: list[pl.Expr] = []
    exprs.append(utc_timestamps(df, "release_ts", CalendarError, round_up=True))
    for name in _STRING_COLUMNS:
        dtype = df.schema[name]
        if dtype == pl.Null or dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            exprs.append(pl.col(name).cast(pl.String))
        else:
            raise CalendarError(f"{name!r} must be a string column, got {dtype}", column=name)
    for name in _FLOAT_COLUMNS:
        dtype = df.schema[name]
        if dtype == pl.Null or dtype.is_numeric():
            exprs.append(pl.col(name).cast(pl.Float64))
        else:
            raise CalendarError(f"{name!r} must be numeric, got {dtype}", column=name)
    ptype = df.schema["period"]
    if ptype == pl.Null or ptype == pl.Date:
        exprs.append(pl.col("period").cast(pl.Date))
    elif isinstance(ptype, pl.Datetime):
        exprs.append(pl.col("period").dt.date())
    elif ptype == pl.String:
        p = pl.col("period").str.strip_chars()
        exprs.append(
            pl.when(p.str.len_chars() == 7).then(p + "-01").otherwise(p).str.to_date("%Y-%m-%d", strict=False)
        )
    else:
        raise CalendarError(f"'period' must be a Date, got {ptype}", column="period")
    out = df.with_columns(exprs)
    if ptype == pl.String:
        bad = _first_row(out, pl.col("period").is_null() & df["period"].is_not_null())
        if bad is not None:
            raise CalendarError(f"unparseable period {df['period'][bad]!r} (use YYYY-MM or YYYY-MM-DD)", column="period", row=bad)
    return out


def validate_calendar(frame: Any) -> pl.DataFrame:
    """Check an event calendar and return it in the canonical schema.

    Missing optional columns are added: ``unit``, ``category`` and ``jurisdiction``
    default from the indicator registry for known indicators, ``time_precision``
    defaults to ``"exact"``, others to null. Columns come out in
    :data:`CALENDAR_SCHEMA` order, extra columns after them, rows in input order.
    ``period`` may be given as ``YYYY-MM`` strings; it is stored as the month's first day.

    Raises :class:`aftershock.errors.CalendarError` (column and 0-based row) for a
    missing required column, wrong dtype, naive ``release_ts``, null or duplicate
    ``event_id``, a ``kind`` other than macro/policy, a macro event without an
    indicator or a policy event with one, null ``release_ts``, non-finite values,
    ``direction`` outside [-1, 1] and an unknown ``time_precision``.
    """
    df = _as_polars(frame)
    for name in REQUIRED:
        if name not in df.columns:
            raise CalendarError(f"calendar has no {name!r} column; found {df.columns}", column=name)
    missing = [c for c in CALENDAR_SCHEMA if c not in df.columns]
    df = df.with_columns(pl.lit(None).alias(c) for c in missing)
    df = _cast(df)

    registry = pl.DataFrame(
        {
            "indicator": list(INDICATORS),
            "_unit": [i.unit for i in INDICATORS.values()],
            "_category": [i.category for i in INDICATORS.values()],
            "_jurisdiction": [i.jurisdiction for i in INDICATORS.values()],
        }
    )
    df = (
        df.join(registry, on="indicator", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("unit", "_unit").alias("unit"),
            pl.coalesce("category", "_category").alias("category"),
            pl.coalesce("jurisdiction", "_jurisdiction").alias("jurisdiction"),
            pl.col("time_precision").fill_null("exact") if "time_precision" in missing else pl.col("time_precision"),
        )
        .drop("_unit", "_category", "_jurisdiction")
    )
    df = df.select(list(CALENDAR_SCHEMA) + [c for c in df.columns if c not in CALENDAR_SCHEMA])

    kind = pl.col("kind")
    checks: list[tuple[str, str, pl.Expr]] = [
        ("event_id", "null event_id", pl.col("event_id").is_null()),
        ("event_id", "duplicate event_id", ~pl.col("event_id").is_first_distinct() & pl.col("event_id").is_not_null()),
        ("kind", f"kind must be one of {KINDS}", ~kind.is_in(KINDS).fill_null(False)),
        ("indicator", "macro event without an indicator", (kind == "macro") & pl.col("indicator").is_null()),
        ("indicator", "policy event with an indicator (leave it null)", (kind == "policy") & pl.col("indicator").is_not_null()),
        ("release_ts", "null release_ts", pl.col("release_ts").is_null()),
        ("time_precision", f"time_precision must be one of {TIME_PRECISIONS}", ~pl.col("time_precision").is_in(TIME_PRECISIONS).fill_null(False)),
        ("direction", "direction must be within [-1, 1]", pl.col("direction").is_nan() | (pl.col("direction").abs() > 1)),
    ]
    for name in ("actual", "consensus", "previous"):
        checks.append((name, "value is NaN or infinite", ~pl.col(name).is_finite()))
    if df.height:
        firsts = df.select(
            [e.fill_null(False).arg_true().first().alias(f"c{i}") for i, (_, _, e) in enumerate(checks)]
        ).row(0)
        found = [(r, i) for i, r in enumerate(firsts) if r is not None]
        if found:
            row, i = min(found)
            column, message, _ = checks[i]
            raise CalendarError(f"{message}: {df[column][row]!r} (event {df['event_id'][row]!r})", column=column, row=row)
    return df


def empty_calendar() -> pl.DataFrame:
    return pl.DataFrame(schema=CALENDAR_SCHEMA)


def macro_row(
    indicator: str,
    release_day: dt.date,
    period: str,
    actual: float | None,
    consensus: float | None,
    previous: float | None = None,
    *,
    source: str,
    release_time: dt.time | None = None,
) -> dict:
    """One macro event as a dict, its UTC release time from the registry convention."""
    ind = INDICATORS[indicator]
    if release_time is None:
        ts = ind.release_utc(release_day)
    else:
        ts = dt.datetime.combine(release_day, release_time, tzinfo=ind.release_tz).astimezone(dt.timezone.utc)
    year, month = (int(x) for x in period.split("-")[:2])
    return {
        "event_id": f"{indicator}-{release_day.isoformat()}",
        "kind": "macro",
        "indicator": indicator,
        "period": dt.date(year, month, 1),
        "release_ts": ts,
        "actual": actual,
        "consensus": consensus,
        "previous": previous,
        "unit": ind.unit,
        "title": ind.name,
        "category": ind.category,
        "jurisdiction": ind.jurisdiction,
        "direction": None,
        "source": source,
        "time_precision": "exact",
    }


def from_rows(rows: list[dict]) -> pl.DataFrame:
    return validate_calendar(pl.DataFrame(rows, schema=CALENDAR_SCHEMA))
