"""Calendar loaders: our own CSV/Parquet schema, ForexFactory-style exports, frames."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import polars as pl

from aftershock._checks import from_pandas, read_csv
from aftershock.calendar._registry import FOREXFACTORY_EVENTS, INDICATORS
from aftershock.calendar._schema import CALENDAR_SCHEMA, validate_calendar
from aftershock.errors import CalendarError

FOREXFACTORY_COLUMNS = ("DateTime", "Currency", "Impact", "Event", "Actual", "Forecast", "Previous")
CURRENCY_JURISDICTION = {
    "USD": "US", "EUR": "EA", "GBP": "UK", "JPY": "JP", "CNY": "CN", "CAD": "CA",
    "AUD": "AU", "NZD": "NZ", "CHF": "CH",
}
# Indicators whose figure is not about one calendar month.
_NO_PERIOD = {"FED_FUNDS", "JOBLESS_CLAIMS"}
_AWARE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M%z",
)


class UnknownEventsWarning(UserWarning):
    """A ForexFactory export held event names the indicator registry does not know."""


def parse_aware_datetime(expr: pl.Expr) -> pl.Expr:
    """Parse ISO-8601 strings that carry a UTC offset (or ``Z``) into UTC datetimes."""
    s = expr.str.strip_chars().str.replace(r"Z$", "+00:00")
    return pl.coalesce(
        [s.str.to_datetime(f, time_zone="UTC", time_unit="us", strict=False) for f in _AWARE_FORMATS]
    )


def parse_unit_value(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``"3.0%"`` -> (3.0, "pct"), ``"143K"`` -> (143.0, "thousands"), ``"1.2M"`` -> (1200.0,
    "thousands"), ``"<0.25%"`` -> (0.25, "pct"). Blank -> null. Returns (value, unit)."""
    s = expr.str.strip_chars().str.split("|").list.first().str.strip_chars_start("<>")
    m = s.str.extract_groups(r"^\s*([-+]?\d*\.?\d+)\s*([%KkMmBbTt]?)\s*$")
    number = m.struct.field("1").cast(pl.Float64, strict=False)
    suffix = m.struct.field("2").str.to_uppercase()
    scale = pl.when(suffix == "M").then(1e3).when(suffix == "B").then(1e6).when(suffix == "T").then(1e9).otherwise(1.0)
    unit = pl.when(suffix == "%").then(pl.lit("pct")).when(suffix.is_in(["K", "M", "B", "T"])).then(pl.lit("thousands")).otherwise(
        pl.when(number.is_not_null()).then(pl.lit("number"))
    )
    return number * scale, unit


def _is_forexfactory(columns: list[str]) -> bool:
    return {"DateTime", "Event", "Currency", "Actual", "Forecast"} <= set(columns)


def read_forexfactory(
    frame: pl.DataFrame,
    *,
    currencies: tuple[str, ...] | None = ("USD",),
    unknown: Literal["warn", "raise", "keep"] = "warn",
    source: str = "ForexFactory export",
) -> pl.DataFrame:
    """Map a ForexFactory-style export onto the calendar schema.

    Rows of other currencies than ``currencies`` (None: all) are left out on purpose.
    Event names the registry does not know are reported: ``unknown="warn"`` warns
    (:class:`UnknownEventsWarning`, every name with its count) and leaves them out,
    ``"raise"`` raises :class:`CalendarError` at the first one (column ``Event``, its
    row in the export), ``"keep"`` keeps them with the event name as ``indicator``
    (prefixed with the currency outside USD, e.g. ``"CAD Unemployment Rate"``; no
    registry unit or hawkish sign). Registry names map only for USD rows. ``period`` is taken as the month before the
    release month (U.S. monthly statistics), null for FOMC decisions and weekly claims.
    """
    missing = [c for c in ("DateTime", "Currency", "Event", "Actual", "Forecast", "Previous") if c not in frame.columns]
    if missing:
        raise CalendarError(f"not a ForexFactory export: no {missing[0]!r} column", column=missing[0])
    df = frame.with_row_index("_src_row").with_columns(
        pl.col(c).cast(pl.String) for c in ("DateTime", "Currency", "Event", "Actual", "Forecast", "Previous")
    )
    df = df.with_columns(parse_aware_datetime(pl.col("DateTime")).alias("release_ts"))
    bad = df.filter(pl.col("release_ts").is_null())
    if bad.height:
        raise CalendarError(
            f"DateTime {bad['DateTime'][0]!r} is not an ISO time with a UTC offset",
            column="DateTime", row=int(bad["_src_row"][0]),
        )
    if currencies is not None:
        df = df.filter(pl.col("Currency").is_in(list(currencies)))
    # The registry's indicators are U.S. statistics: a CAD "Unemployment Rate" is not UNRATE.
    df = df.with_columns(
        pl.when(pl.col("Currency") == "USD")
        .then(pl.col("Event").str.strip_chars().replace_strict(FOREXFACTORY_EVENTS, default=None))
        .alias("indicator")
    )

    unknown_rows = df.filter(pl.col("indicator").is_null())
    if unknown_rows.height:
        if unknown == "raise":
            raise CalendarError(
                f"unknown event {unknown_rows['Event'][0]!r} ({unknown_rows['Currency'][0]}); "
                "map it in the registry or pass unknown='keep'",
                column="Event", row=int(unknown_rows["_src_row"][0]),
            )
        if unknown == "warn":
            counts = unknown_rows.group_by("Currency", "Event").len().sort("len", "Event", descending=[True, False])
            listing = "; ".join(f"{c} {e!r} x{n}" for c, e, n in counts.iter_rows())
            warnings.warn(
                f"{unknown_rows.height} rows with {counts.height} event names not in the indicator registry "
                f"were left out (pass unknown='keep' to keep them): {listing}",
                UnknownEventsWarning, stacklevel=3,
            )
            df = df.filter(pl.col("indicator").is_not_null())
        elif unknown == "keep":
            own_name = pl.when(pl.col("Currency") == "USD").then(pl.col("Event").str.strip_chars()).otherwise(
                pl.col("Currency") + " " + pl.col("Event").str.strip_chars()
            )
            df = df.with_columns(pl.coalesce("indicator", own_name).alias("indicator"))
        else:
            raise CalendarError(f"unknown must be 'warn', 'raise' or 'keep', got {unknown!r}")

    actual, unit_a = parse_unit_value(pl.col("Actual"))
    consensus, unit_c = parse_unit_value(pl.col("Forecast"))
    previous, unit_p = parse_unit_value(pl.col("Previous"))
    registry_units = {code: ind.unit for code, ind in INDICATORS.items()}
    _check_values(df, registry_units, (("Actual", actual, unit_a), ("Forecast", consensus, unit_c), ("Previous", previous, unit_p)))
    release_month = pl.col("release_ts").dt.date().dt.truncate("1mo")
    out = df.with_columns(
        actual.alias("actual"), consensus.alias("consensus"), previous.alias("previous"),
        pl.coalesce(pl.col("indicator").replace_strict(registry_units, default=None), unit_a, unit_c, unit_p).alias("unit"),
        pl.when(pl.col("indicator").is_in(list(_NO_PERIOD))).then(None).otherwise(release_month.dt.offset_by("-1mo")).alias("period"),
        pl.lit("macro").alias("kind"),
        pl.col("Event").alias("title"),
        pl.col("Currency").replace_strict(CURRENCY_JURISDICTION, default=pl.col("Currency")).alias("jurisdiction"),
        pl.lit(source).alias("source"),
        pl.lit("exact").alias("time_precision"),
        pl.lit(None, dtype=pl.Float64).alias("direction"),
        pl.lit(None, dtype=pl.String).alias("category"),
    )
    # ids are indicator + release date; the time is added only where that is not unique
    day_id = pl.col("indicator") + "-" + pl.col("release_ts").dt.strftime("%Y-%m-%d")
    out = out.with_columns(
        pl.when(day_id.is_duplicated()).then(day_id + "T" + pl.col("release_ts").dt.strftime("%H%M")).otherwise(day_id).alias("event_id")
    )
    out = out.with_columns(
        pl.when(pl.col("event_id").is_duplicated())
        .then(pl.col("event_id") + "-row" + pl.col("_src_row").cast(pl.String))
        .otherwise(pl.col("event_id")).alias("event_id")
    )
    return validate_calendar(out.select(list(CALENDAR_SCHEMA)))


def _check_values(df: pl.DataFrame, registry_units: dict[str, str], parsed: tuple) -> None:
    """Nothing is dropped silently: a value that does not parse, overflows, or carries a
    unit the indicator cannot have (``2.8K`` for a percentage) names its column and row."""
    expected = pl.col("indicator").replace_strict(registry_units, default=None)
    scaled = ("pct", "thousands")
    for column, value, unit in parsed:
        raw = pl.col(column).str.strip_chars()
        given = raw.is_not_null() & (raw != "")
        checks = df.select(
            "_src_row", column,
            bad=given & (value.is_null() | ~value.is_finite()),
            wrong_unit=given & expected.is_in(scaled) & unit.is_in(scaled) & (unit != expected),
            expected=expected,
        )
        for flag, message in (("bad", "is not a number"), ("wrong_unit", "has the wrong unit for its indicator")):
            hit = checks.filter(pl.col(flag))
            if hit.height:
                row = hit.row(0, named=True)
                extra = f" (expected {row['expected']})" if flag == "wrong_unit" else ""
                raise CalendarError(f"{column} {row[column]!r} {message}{extra}", column=column, row=int(row["_src_row"]))


def _read_own_csv(path: Path) -> pl.DataFrame:
    raw = read_csv(path, CalendarError, infer_schema_length=0)
    if "release_ts" not in raw.columns:
        raise CalendarError(f"{path} has no 'release_ts' column; found {raw.columns}", column="release_ts")
    df = raw.with_columns(parse_aware_datetime(pl.col("release_ts")).alias("release_ts"))
    bad = df.select(pl.col("release_ts").is_null() & raw["release_ts"].is_not_null()).to_series().arg_true()
    if len(bad):
        row = int(bad[0])
        raise CalendarError(
            f"release_ts {raw['release_ts'][row]!r} has no UTC offset; write it as e.g. 2025-02-12T13:30:00+00:00",
            column="release_ts", row=row,
        )
    casts = []
    for name in ("actual", "consensus", "previous", "direction"):
        if name in df.columns:
            casts.append(pl.col(name).cast(pl.Float64, strict=False))
    df = df.with_columns(casts)
    for name in ("actual", "consensus", "previous", "direction"):
        if name in df.columns:
            bad = (df[name].is_null() & raw[name].is_not_null() & (raw[name].str.strip_chars() != "")).arg_true()
            if len(bad):
                row = int(bad[0])
                raise CalendarError(f"{name} {raw[name][row]!r} is not a number", column=name, row=row)
    return df


def read_calendar(
    source: Any,
    format: Literal["aftershock", "forexfactory"] | None = None,
    *,
    currencies: tuple[str, ...] | None = ("USD",),
    unknown: Literal["warn", "raise", "keep"] = "warn",
) -> pl.DataFrame:
    """Load an event calendar into the validated schema.

    ``source`` is a path to a CSV or Parquet file (``.parquet``/``.pq``; anything else is
    read as CSV), or a Polars/pandas frame. ``format`` is ``"aftershock"`` (our
    schema), ``"forexfactory"`` (``DateTime, Currency, Impact, Event, Actual, Forecast,
    Previous``, values such as ``"3.0%"``, ``"143K"``) or None to tell them apart by
    their columns. ``currencies`` and ``unknown`` apply to ForexFactory exports, see
    :func:`read_forexfactory`. In our CSV, ``release_ts`` must carry a UTC offset.
    """
    label = "frame"
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = path.name
        if not path.exists():
            raise FileNotFoundError(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                frame = pl.read_parquet(path)
            except pl.exceptions.PolarsError as exc:
                raise CalendarError(f"cannot read {path.name} as Parquet: {str(exc).strip().splitlines()[0]}") from None
        else:
            header = read_csv(path, CalendarError, n_rows=0).columns
            fmt = format or ("forexfactory" if _is_forexfactory(header) else "aftershock")
            frame = read_csv(path, CalendarError, infer_schema_length=0) if fmt == "forexfactory" else _read_own_csv(path)
    elif isinstance(source, (pl.DataFrame, pl.LazyFrame)):
        frame = source.collect() if isinstance(source, pl.LazyFrame) else source
    else:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover
            pd = None
        if pd is not None and isinstance(source, pd.DataFrame):
            frame = from_pandas(source, CalendarError)
        else:
            raise CalendarError(f"cannot read a calendar from {type(source).__name__}")
    fmt = format or ("forexfactory" if _is_forexfactory(frame.columns) else "aftershock")
    if fmt == "forexfactory":
        return read_forexfactory(frame, currencies=currencies, unknown=unknown, source=f"ForexFactory export ({label})")
    if fmt != "aftershock":
        raise CalendarError(f"format must be 'aftershock', 'forexfactory' or None, got {format!r}")
    return validate_calendar(frame)
