"""``backtest`` over bars larger than memory: the Rust engine fed one stretch of time
at a time (``aftershock._engine.BacktestStream``), its state carried between
stretches, so the result equals one pass over all the bars bit for bit.

Python runs once per stretch (about ``batch_rows`` bars per symbol), never per bar.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aftershock import _engine
from aftershock.errors import BarsError, ConfigError
from aftershock.prices._scan import BarsScan, Stretch
from aftershock.trading.engine import _DAY_US, _config, encode_orders, stats_frame
from aftershock.trading.results import Result, Stats

__all__ = ["StreamedResult", "backtest_stream"]



class _Symbols:
    """What a result needs to know of streamed bars: the symbols, in engine order."""

    def __init__(self, symbols: tuple[str, ...]):
        self.symbols = symbols

    @property
    def symbol_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}


class StreamedResult(Result):
    """A :class:`Result` of bars that were streamed, never all in memory.

    ``fills``, ``trades``, ``orders`` and ``equity`` are the frames of the
    in-memory run. With ``equity_path`` the equity rows were written to Parquet as the
    run went (``equity`` reads them back; :meth:`scan_equity` scans them lazily).
    :meth:`stats` gives the figures the engine computed during the run (the keys of
    :data:`aftershock.trading.results.ENGINE_STATS`, equal to ``Result.stats()`` of the
    in-memory run); the figures that need the bars again (benchmark, beta...) are not
    computed.
    """

    def __init__(self, raw: dict[str, Any], symbols: tuple[str, ...], orders: pl.DataFrame, config: dict[str, Any],
                 figures: pl.DataFrame, equity_path: Path | None):
        super().__init__(raw, _Symbols(symbols), orders, config)  # type: ignore[arg-type]
        self._figures = figures
        self.equity_path = equity_path

    def scan_equity(self) -> pl.LazyFrame:
        """The equity rows as a LazyFrame (of the Parquet parts with ``equity_path``)."""
        if self.equity_path is None:
            return self.equity.lazy()
        parts = sorted(self.equity_path.glob("part-*.parquet"))
        if not parts:
            return self._equity_frame(self._raw).lazy()
        return pl.scan_parquet(parts)

    @property
    def equity(self) -> pl.DataFrame:
        if "equity" not in self._cache:
            if self.equity_path is None:
                return super().equity
            self._cache["equity"] = self.scan_equity().collect()
        return self._cache["equity"]

    @staticmethod
    def _equity_frame(raw: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame(raw["equity"])

    @property
    def final_equity(self) -> float:
        return float(self._figures["final_equity"].item())

    def stats(self, *, periods_per_year: float | None = None, returns: str | None = None, risk_free: float = 0.0,
              benchmark: str | None = None) -> Stats:
        """The engine's figures (see the class); only the default sampling (calendar-day
        returns, 365 periods a year, no risk-free rate) is available."""
        if periods_per_year not in (None, 365) or returns not in (None, "calendar") or risk_free or benchmark:
            raise ConfigError(
                "a streamed backtest's figures are computed during the run with the defaults (calendar-day "
                "returns, periods_per_year=365, risk_free=0, no benchmark); load the bars in memory for others",
                column="periods_per_year",
            )
        return Stats(self._figures.row(0, named=True))

    def report(self, *args: Any, **kwargs: Any) -> str:
        raise ConfigError("reports need the bars in memory: run backtest on a frame (read_bars) to get one", column="bars")

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("plots need the bars in memory: run backtest on a frame (read_bars) to get one", column="bars")


def _stretch_frame(stretch: Stretch, symbols: tuple[str, ...]) -> tuple[pl.DataFrame, pl.Series]:
    """One stretch as the engine's bars frame and offsets (symbols in run order),
    each symbol's rows checked (nulls here, prices and order by the engine's scan)."""
    pieces: list[pl.DataFrame] = []
    counts = []
    for s in symbols:
        df = stretch.frames[s]
        counts.append(df.height)
        if df.height == 0:
            continue
        for name in df.columns:
            col = df.get_column(name)
            if col.null_count():
                row = stretch.first_row[s] + int(col.is_null().arg_true()[0])
                raise BarsError(f"null {name} (symbol {s!r}, row {row} of its bars)", column=name, row=row)
        if "volume" in df.columns:
            vol = df.get_column("volume").to_numpy()
            bad = ~np.isfinite(vol) | (vol < 0)
            if bad.any():
                row = stretch.first_row[s] + int(np.flatnonzero(bad)[0])
                raise BarsError(f"volume is NaN, infinite or negative (symbol {s!r}, row {row} of its bars)",
                                column="volume", row=row)
        one = df.select(pl.col("ts").dt.convert_time_zone("UTC"), *(pl.col(c).cast(pl.Float64) for c in
                                                                     ("open", "high", "low", "close"))).rechunk()
        try:
            _engine.check_bars(one, pl.Series("offsets", [0, df.height], dtype=pl.Int64))
        except BarsError as exc:
            row = stretch.first_row[s] + (exc.row or 0)
            raise BarsError(f"{exc.message} (symbol {s!r}, row {row} of its bars)", column=exc.column, row=row) from None
        pieces.append(one)
    frame = pl.concat(pieces).rechunk() if pieces else pl.DataFrame(
        schema={"ts": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                "close": pl.Float64})
    offsets = pl.Series("offsets", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), dtype=pl.Int64)
    return frame, offsets


def backtest_stream(scan: BarsScan, orders: Any, *, equity_path: str | os.PathLike | None = None,
                    **config: Any) -> StreamedResult:
    """``backtest`` over a :class:`~aftershock.prices.BarsScan`; see :func:`aftershock.backtest`."""
    from aftershock.trading.strategy import Strategy

    if isinstance(orders, Strategy) or (isinstance(orders, type) and issubclass(orders, Strategy)):
        raise ConfigError(
            "a Strategy reads as-of views of bars in memory; with streamed bars pass its orders frame "
            "(aftershock.trading.strategy.compile_orders over bars that fit, or your own frame)",
            column="orders",
        )
    symbols = scan.symbols
    frame, encoded = encode_orders(orders, symbols)
    cfg = _config(config)
    out_dir = None
    if equity_path is not None:
        out_dir = Path(equity_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(out_dir.glob("part-*.parquet"))
        if stale:
            raise ConfigError(f"equity_path {out_dir} already holds equity parts; pass an empty folder",
                              column="equity_path")
    engine = _engine.BacktestStream(encoded, cfg, len(symbols), _DAY_US, 365.0, True)
    kept: list[pl.DataFrame] = []
    parts = 0

    def spill(table: Any) -> None:
        """Equity rows out of the engine: kept, or written as the next Parquet part."""
        nonlocal parts
        rows = pl.DataFrame(table)
        if rows.height == 0:
            return
        if out_dir is None:
            kept.append(rows)
            return
        tmp = out_dir / f".part-{parts:06d}.parquet.tmp"
        rows.write_parquet(tmp)
        os.replace(tmp, out_dir / f"part-{parts:06d}.parquet")
        parts += 1

    any_rows = False
    for stretch in scan.stretches():
        bars, offsets = _stretch_frame(stretch, symbols)
        any_rows |= bars.height > 0
        engine.feed(bars, offsets, [bool(stretch.ends[s]) for s in symbols])
        spill(engine.take_equity())
    if not any_rows:
        raise BarsError("bars frame is empty", column="ts")
    tables, figures = engine.finish()
    raw = dict(tables)
    last = pl.DataFrame(raw["equity"])
    spill(last)
    if out_dir is None:
        raw["equity"] = pl.concat([*kept, last]) if kept else last
    return StreamedResult(raw, symbols, frame, cfg, stats_frame(figures, symbols, 365.0), out_dir)
