"""Reading price bars: our schema, Binance klines, CSV, Parquet (lazy), frames."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal, Sequence

import polars as pl

from aftershock._checks import read_csv, source_name
from aftershock.calendar._readers import parse_aware_datetime
from aftershock.errors import BarsError
from aftershock.prices._validate import _as_polars, validate_bars

BINANCE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
_BINANCE_NAME = re.compile(r"^([A-Z0-9]+)-(\d+[smhdwM])-")

Format = Literal["aftershock", "binance"]


def epoch_to_utc(expr: pl.Expr) -> pl.Expr:
    """Epoch integers to ``Datetime("us", "UTC")``, the unit detected per value: below
    1e11 seconds, below 1e14 milliseconds, otherwise microseconds (Binance's spot
    archives switched from milliseconds to microseconds on 2025-01-01)."""
    v = expr.cast(pl.Int64)
    us = pl.when(v < 10**11).then(v * 1_000_000).when(v < 10**14).then(v * 1_000).otherwise(v)
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _binance_symbol(path: Path | None, symbol: str | None) -> str:
    if symbol is not None:
        return symbol
    if path is not None:
        m = _BINANCE_NAME.match(path.name)
        if m:
            return m.group(1)
    raise BarsError("Binance klines carry no symbol; pass symbol=...", column="symbol")


def _from_binance(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    # Binance archives have 12 columns; trimmed exports keep the first six.
    if frame.width not in (6, 12):
        raise BarsError(f"Binance klines have 12 columns (or their first 6), this has {frame.width}")
    df = frame.rename(dict(zip(frame.columns, BINANCE_COLUMNS)))
    return df.select(
        epoch_to_utc(pl.col("open_time")).alias("ts"),
        pl.lit(symbol).alias("symbol"),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
    )


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def read_binance_csv(source: Any, symbol: str | None = None, *, name: str | None = None) -> pl.DataFrame:
    """One Binance kline CSV (a path, bytes or file object), with or without a header.
    A line that does not parse raises :class:`BarsError` naming the file (``name``) and line."""
    path = Path(source) if isinstance(source, (str, Path)) else None
    data = path if path is not None else source
    name = name or source_name(source)
    first = read_csv(data, BarsError, name=name, has_header=False, n_rows=1, infer_schema_length=0)
    has_header = not _looks_numeric(str(first.row(0)[0]))
    width = first.width
    options: dict[str, Any] = dict(has_header=has_header, new_columns=list(BINANCE_COLUMNS[:width]))
    try:
        if hasattr(data, "seek"):
            data.seek(0)
        frame = pl.read_csv(data, schema_overrides={"open_time": pl.Int64}, **options)
    except pl.exceptions.PolarsError:
        # read again as text to say where: a ragged line raises here, a bad number below
        if hasattr(data, "seek"):
            data.seek(0)
        frame = read_csv(data, BarsError, name=name, infer_schema_length=0, **options)
    _check_numbers(frame, name, first_line=1 + int(has_header))
    return _from_binance(frame, _binance_symbol(path, symbol))


def _check_numbers(frame: pl.DataFrame, name: str, first_line: int) -> None:
    """Raise naming the file, line and column of the first kline cell that is not a number."""
    for column in frame.columns[:6]:
        raw = frame.get_column(column)
        if raw.dtype.is_numeric() or raw.dtype == pl.Null:
            continue
        cast = raw.cast(pl.Int64 if column == "open_time" else pl.Float64, strict=False)
        bad = (cast.is_null() & raw.is_not_null()).arg_true()
        if len(bad):
            row = int(bad[0])
            raise BarsError(f"{name}, line {row + first_line}: {column} {raw[row]!r} is not a number",
                            column=column, row=row)


def _is_binance_header(columns: Sequence[str]) -> bool:
    return (len(columns) == 12 and "close_time" in columns) or "open_time" in columns


def _csv_kind(path: Path) -> Format:
    first = read_csv(path, BarsError, has_header=False, n_rows=1, infer_schema_length=0)
    cells = [str(x) for x in first.row(0)]
    if len(cells) in (6, 12) and _looks_numeric(cells[0]):
        return "binance"
    if _is_binance_header(cells):
        return "binance"
    return "aftershock"


def _read_own_csv(path: Path, symbol: str | None) -> pl.DataFrame:
    raw = read_csv(path, BarsError, infer_schema_length=0)
    if "ts" not in raw.columns:
        raise BarsError(f"{path.name} has no 'ts' column; found {raw.columns}", column="ts")
    ts = pl.col("ts").str.strip_chars()
    parsed = parse_aware_datetime(ts)
    numeric = ts.str.contains(r"^\d+$")
    df = raw.with_columns(
        pl.when(numeric).then(epoch_to_utc(ts.cast(pl.Int64, strict=False))).otherwise(parsed).alias("ts")
    )
    bad = (df["ts"].is_null() & raw["ts"].is_not_null()).arg_true()
    if len(bad):
        row = int(bad[0])
        raise BarsError(
            f"ts {raw['ts'][row]!r} has no UTC offset (write e.g. 2025-02-12T13:30:00+00:00) or is not a time",
            column="ts", row=row,
        )
    for name in ("open", "high", "low", "close", "volume"):
        if name in df.columns:
            cast = df[name].cast(pl.Float64, strict=False)
            bad = (cast.is_null() & df[name].is_not_null()).arg_true()
            if len(bad):
                row = int(bad[0])
                raise BarsError(f"{name} {df[name][row]!r} is not a number", column=name, row=row)
            df = df.with_columns(cast)
    return _with_symbol(df, symbol)


def _with_symbol(df: pl.DataFrame, symbol: str | None) -> pl.DataFrame:
    if "symbol" not in df.columns:
        if symbol is None:
            raise BarsError("the bars have no 'symbol' column; pass symbol=...", column="symbol")
        df = df.with_columns(pl.lit(symbol).alias("symbol"))
    return df


def _filter(lf: pl.LazyFrame, symbols: list[str] | None, start: Any, end: Any) -> pl.LazyFrame:
    if symbols is not None:
        lf = lf.filter(pl.col("symbol").cast(pl.String).is_in(symbols))
    if start is not None:
        lf = lf.filter(pl.col("ts") >= to_utc(start))
    if end is not None:
        lf = lf.filter(pl.col("ts") < to_utc(end))
    return lf


def to_utc(value: Any) -> dt.datetime:
    """A date, datetime or ISO string as an aware UTC datetime (naive values are UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def scan_parquet_bars(source: str | Path) -> pl.LazyFrame:
    """A lazy view of Parquet bars: one file, a glob, or a (hive-partitioned) folder."""
    path = Path(source)
    target = str(path / "**" / "*.parquet") if path.is_dir() else str(source)
    return pl.scan_parquet(target, hive_partitioning=True)


def read_bars(
    source: Any,
    symbol: str | Sequence[str] | None = None,
    format: Format | None = None,
    *,
    start: Any = None,
    end: Any = None,
) -> pl.DataFrame:
    """Read price bars into the validated bars schema (see ``docs/data.md``).

    ``source``: a Polars/pandas frame or LazyFrame; a Parquet file, glob or folder (read
    lazily, hive partitions such as ``symbol=BTC/`` included, filtered by ``symbol``,
    ``start`` and ``end`` before anything is loaded); a CSV file; a Binance kline
    CSV or zip (12 columns, with or without header, ``open_time`` in ms or µs); or a
    folder or glob (``"data/BTCUSDT-5m-2025-*.csv"``) of CSV/zip files, read in
    file-name order.

    ``symbol``: when the data has a ``symbol`` column, keep only this symbol (or list);
    otherwise, the name to give the instrument (Binance files default to the symbol in
    the file name, e.g. ``BTCUSDT``). ``start`` (inclusive) and ``end`` (exclusive)
    bound ``ts``; naive values are taken as UTC. ``format``: ``"aftershock"`` or
    ``"binance"``, detected when None.
    """
    symbols = [symbol] if isinstance(symbol, str) else (list(symbol) if symbol is not None else None)
    name = symbol if isinstance(symbol, str) else None

    if isinstance(source, (pl.DataFrame, pl.LazyFrame)) or type(source).__name__ == "DataFrame":
        df = source if isinstance(source, (pl.DataFrame, pl.LazyFrame)) else _as_polars(source)
        lf = df.lazy()
        cols = lf.collect_schema().names()
        if format == "binance" or (format is None and "open_time" in cols):
            lf = _from_binance(lf.collect(), _binance_symbol(None, name)).lazy()
        elif "symbol" not in cols:
            lf = _with_symbol(lf.collect(), name).lazy()
            symbols = None
        return validate_bars(_filter(lf, symbols, start, end).collect())

    path = Path(source)
    is_glob = any(ch in str(source) for ch in "*?[")
    parquet = (
        is_glob and str(source).endswith((".parquet", ".pq"))
        or path.suffix.lower() in (".parquet", ".pq")
        or (path.is_dir() and any(path.rglob("*.parquet")))
    )
    if parquet:
        try:
            lf = scan_parquet_bars(source)
            if "symbol" not in lf.collect_schema().names():
                lf = lf.with_columns(pl.lit(_require(name)).alias("symbol"))
                symbols = None
            frame = _filter(lf, symbols, start, end).collect()
        except pl.exceptions.PolarsError as exc:
            # a truncated or corrupt file: Polars' message names it when there are several
            reason = str(exc).strip().splitlines()[0]
            raise BarsError(f"cannot read Parquet {path.name if not is_glob else source}: {reason}") from None
        return validate_bars(frame)

    if is_glob:
        import glob

        files = sorted(Path(f) for f in glob.glob(str(source), recursive=True))
    elif not path.exists():
        raise FileNotFoundError(path)
    else:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".zip")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no .csv, .zip or .parquet files in {path}")
    frames = []
    for f in files:
        if f.suffix.lower() == ".zip":
            frames.append(_read_zip(f, name))
            continue
        kind = format or _csv_kind(f)
        frames.append(read_binance_csv(f, name) if kind == "binance" else _read_own_csv(f, name))
    lf = pl.concat(frames, how="diagonal_relaxed").lazy()
    has_symbol_column = not (name is not None and all("symbol" not in fr.columns for fr in frames))
    return validate_bars(_filter(lf, symbols if has_symbol_column else None, start, end).collect())


def _require(symbol: str | None) -> str:
    if symbol is None:
        raise BarsError("the bars have no 'symbol' column; pass symbol=...", column="symbol")
    return symbol


def _read_zip(path: Path, symbol: str | None) -> pl.DataFrame:
    import io
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise BarsError(f"{path.name}: expected one CSV inside, found {members}")
        data = zf.read(members[0])
    return read_binance_csv(io.BytesIO(data), symbol or _binance_symbol(Path(members[0]), None),
                            name=f"{path.name}:{members[0]}")
