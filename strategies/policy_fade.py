"""Policy-shock fade: bet that the first move after a policy headline overshoots.

Trade idea: unscheduled policy news (tariff orders, reserve orders, regulators'
notices, a stablecoin launch) hits thin, surprised markets; the first move is driven
by headline-reading algorithms and stops, and tends to give some of itself back once
the text is read. So wait ``decide_after`` (15 minutes by default, a sweepable
parameter) after the event is public, measure the first move, and trade against it
if it exceeds ``min_move``: sell after a rally, buy after a drop; out after ``hold``
or at the stop-loss.

Which move, exactly. An event is public at ``known_ts``: its ``release_ts`` when the
exact time is known, the *end* of its hour or day when the calendar only knows the
hour or the day (``time_precision``); ``on_release`` is called at ``known_ts +
decide_after``. The first move is the log return of ``symbol`` from the close of the
last bar that closed at or before ``release_ts`` — the start of the precision
interval, the last price surely before the news — to the close of the last bar
closed at the decision. For an exact-time event that is the first ``decide_after``;
for an hour-precision event up to an hour more; for a day-precision event the whole
day plus ``decide_after``. Set ``max_precision="hour"`` (or ``"exact"``) to skip the
coarser events, whose "first move" is mostly a day of noise. All prices come from
``self.asof.bars``: bars that had closed by the decision.

    python strategies/policy_fade.py [--bars PATH] [--calendar PATH] [--report policy_fade.html]
        [--param decide_after=30m --param max_precision=hour]
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
from _common import with_close_at

__all__ = ["PolicyFade", "first_moves", "main"]

PRECISIONS = ("exact", "hour", "day")  # finest first


def first_moves(events: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """``events`` plus ``ref_close`` (close at ``release_ts``), ``last_close`` (close
    at ``decision_ts``) and ``first_move`` (their log ratio), from ``bars`` of one
    symbol; a close "at" an instant is that of the last bar closed by then."""
    px = with_close_at(with_close_at(events, bars, "release_ts", "ref_close"), bars, "decision_ts", "last_close")
    return px.with_columns(first_move=(pl.col("last_close") / pl.col("ref_close")).log())


class PolicyFade(ash.Strategy):
    """Trade ``symbol`` against its first move after each policy event whose time is
    known at ``max_precision`` or finer, when ``|first move| > min_move``."""

    decide_after: str = "15m"  # measure the first move this long after publication
    min_move: float = 0.0  # |log return| needed to trade
    max_precision: str = "day"  # "exact", "hour" or "day"
    hold: str = "4h"
    stop_loss: float = 0.02
    size: float = 0.5  # fraction of equity
    symbol: str = "BTC"

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        if self.max_precision not in PRECISIONS:
            raise ash.ConfigError(f"max_precision must be one of {PRECISIONS}, got {self.max_precision!r}", column="max_precision")
        allowed = PRECISIONS[: PRECISIONS.index(self.max_precision) + 1]
        shocks = events.filter(pl.col("kind") == "policy", pl.col("time_precision").is_in(allowed))
        if shocks.height == 0:
            return None
        moved = first_moves(shocks, self.asof.bars(self.symbol)).filter(pl.col("first_move").abs() > self.min_move)
        return ash.orders.market(
            moved, symbol=self.symbol, side=-pl.col("first_move").sign(), size=self.size,
            size_type="percent_equity", exit_after=self.hold, stop_loss=self.stop_loss,
        )


def main(argv: Sequence[str] | None = None) -> int:
    _common.main(PolicyFade, "policy_fade", __doc__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
