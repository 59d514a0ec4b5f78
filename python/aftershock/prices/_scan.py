"""Bars larger than memory: a Parquet folder read one symbol and one piece at a time.

:func:`scan_bars` describes the data without reading it; ``backtest`` and ``study``
accept the result (or the folder's path) wherever they accept bars and stream it.
Memory is bounded by ``batch_rows`` rows per symbol, never by the series length.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import polars as pl

from aftershock._checks import utc_timestamps
from aftershock.errors import BarsError
from aftershock.prices._read import scan_parquet_bars
from aftershock.prices._validate import BARS_SCHEMA, PRICE_COLUMNS, _normalize_dtypes

__all__ = ["BarsScan", "Stretch", "scan_bars", "is_bars_source"]

_COLUMNS = ("ts", "symbol", *PRICE_COLUMNS, "volume")
_EMPTY = pl.DataFrame(schema={k: v for k, v in BARS_SCHEMA.items()})


@dataclass(frozen=True)
class _File:
    path: Path
    #: the symbol of every row, from a ``symbol=`` folder (or the ``symbol`` argument);
    #: None when the file has its own ``symbol`` column
    symbol: str | None
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Stretch:
    """Every symbol's bars in one stretch of time: ``frames[s]`` (possibly empty),
    ``first_row[s]`` the position of its first row among the symbol's bars, and
    ``ends[s]`` whether it holds the symbol's last bar. A later stretch starts after
    this one ends, so all bars that share a timestamp are in the same stretch."""

    frames: dict[str, pl.DataFrame]
    first_row: dict[str, int]
    ends: dict[str, bool]


@dataclass(frozen=True)
class BarsScan:
    """Price bars in Parquet files, read lazily in batches of ``batch_rows`` rows.

    Build it with :func:`scan_bars`. ``symbols`` are in order of first appearance in
    file order (paths sorted), as :func:`aftershock.read_bars` would load them.
    """

    root: Path
    files: tuple[_File, ...]
    symbols: tuple[str, ...]
    batch_rows: int
    _by_symbol: dict[str, tuple[_File, ...]] = field(repr=False, compare=False, default_factory=dict)

    def __repr__(self) -> str:
        rows = sum(f.rows for f in self.files)
        return f"BarsScan({str(self.root)!r}, files={len(self.files)}, rows={rows}, symbols={list(self.symbols)})"

    @property
    def rows(self) -> int:
        """Rows in all files (from the Parquet metadata; no data is read)."""
        return sum(f.rows for f in self.files)

    def lazy(self) -> pl.LazyFrame:
        """All bars as one Polars LazyFrame (for your own queries)."""
        lf = scan_parquet_bars(self.root) if self.root.is_dir() else pl.scan_parquet([str(f.path) for f in self.files])
        if "symbol" not in lf.collect_schema().names():
            lf = lf.with_columns(pl.lit(self.symbols[0]).alias("symbol"))
        return lf

    def batches(self, symbol: str, columns: tuple[str, ...] | None = None) -> Iterator[pl.DataFrame]:
        """One symbol's bars in file order, ``batch_rows`` rows at most per batch, in
        the bars schema (columns ``ts, symbol, open, high, low, close[, volume]``, or
        only ``columns`` of them).

        Raises :class:`BarsError` when a batch does not start after the previous one
        ended (timestamps must increase within a symbol across files too); checks of
        the rows themselves are left to the reader of the batches."""
        if symbol not in self._by_symbol:
            raise BarsError(f"symbol {symbol!r} is not in the bars {list(self.symbols)}", column="symbol")
        last: int | None = None
        row = 0
        for f in self._by_symbol[symbol]:
            for off in range(0, f.rows, self.batch_rows):
                lf = pl.scan_parquet(f.path, hive_partitioning=False).slice(off, self.batch_rows)
                wanted = _COLUMNS if columns is None else ("ts", "symbol", *columns)
                lf = lf.select([c for c in _COLUMNS if c in f.columns and c in wanted])
                if f.symbol is None:
                    lf = lf.filter(pl.col("symbol").cast(pl.String) == symbol)
                else:
                    lf = lf.with_columns(pl.lit(symbol).alias("symbol"))
                df = lf.collect()
                try:
                    if columns is None:
                        df = _normalize_dtypes(df)
                    else:
                        df = df.with_columns(utc_timestamps(df, "ts", BarsError), pl.col("symbol").cast(pl.String))
                except BarsError as exc:
                    raise BarsError(f"{exc.message} (file {f.path})", column=exc.column) from None
                df = df.select([c for c in _COLUMNS if c in df.columns])
                if df.height == 0:
                    continue
                ts = df.get_column("ts")
                if ts.null_count():
                    bad = int(ts.is_null().arg_true()[0])
                    raise BarsError(f"null ts (symbol {symbol!r}, file {f.path})", column="ts", row=row + bad)
                first = int(ts.dt.epoch("us")[0])
                if last is not None and first <= last:
                    raise BarsError(
                        f"timestamps not strictly increasing within symbol {symbol!r}: {ts[0]} in {f.path} "
                        "does not come after the bars before it (files are read in sorted path order)",
                        column="ts", row=row,
                    )
                last = int(ts.dt.epoch("us")[-1])
                row += df.height
                yield df

    def stretches(self, symbols: tuple[str, ...] | None = None) -> Iterator[Stretch]:
        """All ``symbols`` (default: every symbol) together, one stretch of time at a
        time: each stretch holds up to about ``batch_rows`` rows per symbol."""
        names = self.symbols if symbols is None else symbols
        sources = {s: self.batches(s) for s in names}
        # the next batch of each symbol, read ahead so that a symbol's last stretch is known
        ahead = {s: next(sources[s], None) for s in names}
        buf: dict[str, list[pl.DataFrame]] = {s: [] for s in names}
        held = dict.fromkeys(names, 0)
        emitted = dict.fromkeys(names, 0)
        while True:
            for s in names:
                while ahead[s] is not None and held[s] < self.batch_rows:
                    nxt = ahead[s]
                    buf[s].append(nxt)
                    held[s] += nxt.height
                    ahead[s] = next(sources[s], None)
            done = {s: ahead[s] is None for s in names}
            live = [s for s in names if not done[s]]
            if not live and not any(held.values()):
                return
            # every bar before `horizon` is in the buffers: the live symbols' data is
            # sorted, the finished ones' is all here
            horizon = min(int(buf[s][-1].get_column("ts").dt.epoch("us")[-1]) for s in live) if live else None
            frames, first_row, ends = {}, {}, {}
            for s in names:
                whole = pl.concat(buf[s]) if len(buf[s]) > 1 else (buf[s][0] if buf[s] else _EMPTY)
                if horizon is None:
                    cut = whole.height
                else:
                    ts = whole.get_column("ts").dt.epoch("us").to_numpy()
                    cut = int(np.searchsorted(ts, horizon, side="left"))
                frames[s] = whole.slice(0, cut)
                rest = whole.slice(cut)
                buf[s] = [rest] if rest.height else []
                held[s] = rest.height
                first_row[s] = emitted[s]
                emitted[s] += cut
                ends[s] = done[s] and rest.height == 0 and cut > 0
            yield Stretch(frames, first_row, ends)


def _hive_keys(path: Path, root: Path) -> dict[str, str]:
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        parts = path.parts[:-1]
    return dict(p.split("=", 1) for p in parts if "=" in p)


def scan_bars(source: str | os.PathLike, *, symbol: str | None = None, batch_rows: int = 1_000_000) -> BarsScan:
    """Describe Parquet bars without loading them: a folder (hive-partitioned, e.g.
    ``bars/symbol=BTC/year=2024/month=01/part.parquet``), one file, or a glob.

    Files are read in sorted path order; each symbol's rows must be strictly
    increasing in ``ts`` across its files. The symbol of a file comes from a
    ``symbol=`` folder, else from the file's own ``symbol`` column, else from
    ``symbol``. Only the Parquet metadata is read here (and the ``symbol`` column of
    files that hold several symbols).

    ``batch_rows``: rows read at once per symbol; with the engine's own arrays this
    bounds the memory a streamed ``backtest`` or ``study`` needs.

    >>> import aftershock as ash
    >>> bars = ash.prices.scan_bars("bars/")                    # doctest: +SKIP
    >>> result = ash.backtest(bars, orders, fees=0.0004)        # doctest: +SKIP
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 2:
        raise BarsError(f"batch_rows must be an integer >= 2, got {batch_rows!r}", column="batch_rows")
    text = os.fspath(source)
    path = Path(text)
    if any(ch in text for ch in "*?["):
        import glob

        paths = sorted(Path(p) for p in glob.glob(text, recursive=True))
        root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else path.parent
    elif path.is_dir():
        paths = sorted(path.rglob("*.parquet"))
        root = path
    elif path.exists():
        paths, root = [path], path.parent
    else:
        raise FileNotFoundError(path)
    if not paths:
        raise FileNotFoundError(f"no .parquet files in {path}")
    files: list[_File] = []
    for p in paths:
        lf = pl.scan_parquet(p, hive_partitioning=False)
        columns = tuple(lf.collect_schema().names())
        if "ts" not in columns:
            raise BarsError(f"{p} has no 'ts' column; found {list(columns)}", column="ts")
        sym = _hive_keys(p, root).get("symbol")
        if sym is None and "symbol" not in columns:
            if symbol is None:
                raise BarsError(
                    f"{p} has no 'symbol' column and no symbol=... folder; pass symbol=...", column="symbol"
                )
            sym = symbol
        files.append(_File(p, sym, int(lf.select(pl.len()).collect().item()), columns))
    order: dict[str, list[_File]] = {}
    for f in files:
        if f.symbol is not None:
            names = [f.symbol]
        else:
            col = pl.scan_parquet(f.path, hive_partitioning=False).select(pl.col("symbol").cast(pl.String))
            names = col.unique(maintain_order=True).collect().get_column("symbol").drop_nulls().to_list()
        for name in names:
            order.setdefault(name, []).append(f)
    if symbol is not None and any(f.symbol is None for f in files):
        if symbol not in order:
            raise BarsError(f"symbol {symbol!r} is not in the bars {list(order)}", column="symbol")
        order = {symbol: order[symbol]}
    by_symbol = {s: tuple(fs) for s, fs in order.items()}
    return BarsScan(root, tuple(files), tuple(by_symbol), batch_rows, by_symbol)


def is_bars_source(bars: Any) -> bool:
    """Whether ``bars`` names data to stream (a path or a :class:`BarsScan`) rather than a frame."""
    return isinstance(bars, (BarsScan, str, os.PathLike))


def as_scan(bars: Any) -> BarsScan:
    return bars if isinstance(bars, BarsScan) else scan_bars(bars)
