"""Pre-release drift: ride the hours before a CPI or PCE print, flat before it lands.

Trade idea: prices often drift ahead of a scheduled inflation print (positioning,
hedging unwound or put on), and the release itself is a coin flip with fat tails.
So take the drift and not the print: ``decide_before`` ahead of each CPI/PCE release
(``"10h"`` by default, a sweepable parameter) buy BTC — or sell, or follow the trend of
the last ``lookback`` — and flatten ``exit_before`` ahead of the release, with a
protective stop in between.

Point in time: the entry is decided in ``before_release`` at ``release - decide_before``,
where the release's outcome columns (actual, previous, surprises) do not exist yet and
``self.asof`` holds only bars closed by then; the ``"trend"`` side reads them. The exit
is a reduce-only ``target_percent`` 0 market order submitted at ``release -
exit_before``: it fills at the open of the first bar after that plus latency, so with
``exit_before`` longer than one bar plus the latency (5 minutes against 1-minute bars
and 2 s) the position is flat before the release. If the stop-loss closed the position
earlier, the exit finds nothing to reduce and is cancelled. Releases published at the
same instant (PCE and core PCE) make one trade, tagged with all their ids. With a
lead longer than the gap between two releases the trades overlap: the second entry
adds to the first position and the first flattening order closes both.

    python strategies/predrift.py [--bars PATH] [--calendar PATH] [--report predrift.html]
        [--param decide_before=4h --param side=trend]
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
from _common import CPI_PCE, with_close_at

__all__ = ["PreDrift", "main"]

SIDES = ("buy", "sell", "trend")


class PreDrift(ash.Strategy):
    """Hold ``symbol`` from ``decide_before`` to ``exit_before`` ahead of each CPI/PCE
    release. ``side``: ``"buy"``, ``"sell"``, or ``"trend"`` (the sign of the log
    return over the ``lookback`` that ends at the entry decision)."""

    decide_before: str = "10h"  # enter this long before the release
    exit_before: str = "5m"  # flat this long before the release
    side: str = "buy"
    lookback: str = "24h"  # for side="trend"
    size: float = 0.5  # fraction of equity
    stop_loss: float = 0.03
    symbol: str = "BTC"

    def before_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        if self.side not in SIDES:
            raise ash.ConfigError(f"side must be one of {SIDES}, got {self.side!r}", column="side")
        due = events.filter(pl.col("indicator").is_in(CPI_PCE))
        if due.height == 0:
            return None
        # one trade per release instant (all events here share known_ts and decision_ts)
        trade = due.select(
            pl.col("decision_ts", "known_ts").first(),
            event_id=pl.col("event_id").sort().str.join("+"),
        ).with_columns(direction=pl.lit(self._side_sign()))
        entry = ash.orders.market(
            trade, symbol=self.symbol, side=pl.col("direction"), size=self.size,
            size_type="percent_equity", stop_loss=self.stop_loss,
        )
        if entry.height == 0:
            return None
        flatten = ash.orders.market(
            trade.with_columns(decision_ts=pl.col("known_ts")),
            symbol=self.symbol, side=-pl.col("direction"), size=0.0, size_type="target_percent",
            delay=f"-{self.exit_before}", reduce_only=True,
        )
        if flatten["submit_ts"][0] <= entry["submit_ts"][0]:
            raise ash.ConfigError(
                f"exit_before ({self.exit_before}) must be shorter than decide_before ({self.decide_before})",
                column="exit_before",
            )
        return pl.concat([entry, flatten])

    def _side_sign(self) -> int:
        if self.side != "trend":
            return 1 if self.side == "buy" else -1
        now = pl.DataFrame({"now": [self.asof.ts]}).with_columns(
            then=pl.col("now").dt.offset_by(f"-{self.lookback}")
        )
        bars = self.asof.bars(self.symbol)
        px = with_close_at(with_close_at(now, bars, "now", "p1"), bars, "then", "p0")
        move = px.select((pl.col("p1") / pl.col("p0")).log()).item()
        return 0 if move is None or move == 0 else (1 if move > 0 else -1)


def main(argv: Sequence[str] | None = None) -> int:
    _common.main(PreDrift, "predrift", __doc__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
