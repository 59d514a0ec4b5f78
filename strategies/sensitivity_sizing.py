"""Sensitivity-weighted sizing: size each inflation trade by how much the market has
been moving per unit of surprise.

Trade idea: the same surprise does not move a market the same amount in every
regime. Estimate the current sensitivity — the OLS slope of BTC's reaction on the
hawkish surprise, ``reaction = a + beta * hawkish_z`` — from the releases published
*before* each inflation print, then trade the print in the direction the slope
predicts (``sign(beta * z)``) with a size proportional to the predicted move:
``size = min(max_size, scale * |beta * z|)`` of equity, held for ``hold`` with a
stop-loss. A regime where surprises barely move the price gets small trades; one
where they move it a lot gets large ones; if the estimated slope flips sign, so do
the trades.

Point in time: ``on_release`` is decided at each inflation release; the slope uses
only ``self.asof.calendar`` rows whose ``hawkish_z`` is public by then and whose
reaction window ended by then (``known_ts + window <= decision``: strictly earlier
releases), and only ``self.asof.bars`` — bars closed by the decision. A reaction is
the log return from the close at ``known_ts`` to the close at ``known_ts + window``
(closes of the last bars closed by those instants), computed for all earlier releases
at once with ``join_asof``. ``pool="all"`` (the default) fits the slope on every
earlier release with a hawkish z-score (payrolls, unemployment and inflation:
hawkish_z puts them on one scale); ``pool="inflation"`` on inflation prints only. No
trade until ``min_history`` earlier releases are available.

    python strategies/sensitivity_sizing.py [--bars PATH] [--calendar PATH]
        [--report sensitivity_sizing.html] [--param window=1h --param pool=inflation]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import polars as pl

import aftershock as ash

try:
    import _common
except ModuleNotFoundError:  # loaded by file path: strategies/ is not on sys.path
    sys.path.append(str(Path(__file__).resolve().parent))
    import _common
from _common import INFLATION, with_close_at

__all__ = ["SensitivitySizing", "reactions", "main"]

POOLS = ("all", "inflation")


def reactions(releases: pl.DataFrame, bars: pl.DataFrame, window: str) -> pl.DataFrame:
    """``releases`` plus ``reaction``: the log return of ``bars`` (one symbol) from the
    close at ``known_ts`` to the close at ``known_ts + window``."""
    ends = releases.with_columns(_end=pl.col("known_ts").dt.offset_by(window))
    px = with_close_at(with_close_at(ends, bars, "known_ts", "_p0"), bars, "_end", "_p1")
    return px.with_columns(reaction=(pl.col("_p1") / pl.col("_p0")).log()).drop("_end", "_p0", "_p1")


class SensitivitySizing(ash.Strategy):
    """Trade each inflation print on ``sign(beta * hawkish_z)`` with ``min(max_size,
    scale * |beta * hawkish_z|)`` of equity, beta fitted on earlier releases only."""

    window: str = "15m"  # reaction window the slope is fitted on
    hold: str = "1h"
    pool: str = "all"  # "all" releases with a hawkish z, or "inflation" prints only
    min_history: int = 3  # earlier releases needed to fit
    scale: float = 100.0  # equity fraction per unit of predicted log return (1% -> 100%)
    max_size: float = 1.0
    stop_loss: float = 0.02
    symbol: str = "BTC"

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        prints = events.filter(pl.col("indicator").is_in(INFLATION), pl.col("hawkish_z").is_not_null())
        if prints.height == 0:
            return None
        beta, n = self.slope()
        if beta is None or n < self.min_history:
            return None
        predicted = pl.lit(beta) * pl.col("hawkish_z")
        return ash.orders.market(
            prints, symbol=self.symbol, side=predicted.sign(),
            size=pl.min_horizontal(pl.lit(self.max_size), self.scale * predicted.abs()),
            size_type="percent_equity", exit_after=self.hold, stop_loss=self.stop_loss,
        )

    def slope(self) -> tuple[float | None, int]:
        """OLS slope of the reaction on ``hawkish_z`` over the releases whose reaction
        is complete at ``self.asof.ts``, and how many there were."""
        if self.pool not in POOLS:
            raise ash.ConfigError(f"pool must be one of {POOLS}, got {self.pool!r}", column="pool")
        past = self.asof.calendar.filter(
            pl.col("hawkish_z").is_not_null(),
            pl.col("known_ts").dt.offset_by(self.window) <= self.asof.ts,
            pl.col("indicator").is_in(INFLATION) if self.pool == "inflation" else pl.lit(True),
        )
        fit = (
            reactions(past, self.asof.bars(self.symbol), self.window)
            .drop_nulls("reaction")
            .select(
                n=pl.len(),
                beta=pl.cov("hawkish_z", "reaction", ddof=1) / pl.col("hawkish_z").var(ddof=1),
            )
        )
        n, beta = fit.row(0)
        if beta is None or n < 2 or not abs(beta) < float("inf"):
            return None, n
        return float(beta), n


def main(argv: Sequence[str] | None = None) -> int:
    _common.main(SensitivitySizing, "sensitivity_sizing", __doc__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
