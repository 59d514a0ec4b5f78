"""Payrolls breakout: resting stops on both sides of the price into the NFP print.

Trade idea: the U.S. employment report (nonfarm payrolls, NFP) moves markets in one
direction hard and fast, but which direction is unknowable in advance. So do not
guess: ``decide_before`` ahead of each NFP release (1 minute by default), place a buy
stop ``band`` above and a sell stop ``band`` below the last close, and let the print
choose. Whichever triggers is held for ``hold`` (time exit), with a wide stop-loss.

One cancels the other, as honestly as the engine allows. The engine has no
cancel-on-fill link between two working orders, so the pair is built so that the
second trigger can only *undo* the first, never add to it or reverse it:

- both stops are for the same number of units, ``notional / reference close``
  (``size_type="units"``: the quantity does not depend on the fill price);
- both are ``gtd``: they expire ``window`` after they were placed, and ``window``
  must not exceed ``hold``, so the time exit never comes while the other stop works;
- the stop-loss sits beyond the opposite level (``stop_loss > (1+band)/(1-band) - 1``,
  checked; leave more room when you backtest with slippage, which moves the entry
  fill and so the stop-loss level), so while the other stop works it is the one that
  closes the trade.

What happens when both levels are hit within ``window`` (on one bar or on several):
the first trigger opens a position of ``n`` units, the second trades ``n`` units the
other way at its level, and the position is **flat** — a whipsaw that loses the
distance between the levels plus fees, and nothing is left open. It is never long and
short at once and never holds more than ``n`` units. The one exception is a bar that
*opens* beyond both the opposite level and the stop-loss (a gap): the stop-loss and
then the opposite stop fire at that open, and the trade reverses to ``n`` units the
other way (still never more than ``n``).

Point in time: the stops are decided in ``before_release`` (the NFP actual does not
exist there) from ``self.asof.last_close``, the close of the last bar closed by the
decision; they are live from the first bar after the decision plus latency, so a
1-minute lead with 2 s latency has them working on the bar that opens at the release.

    python strategies/payrolls_breakout.py [--bars PATH] [--calendar PATH]
        [--report payrolls_breakout.html] [--param band=0.003 --param hold=2h]
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

__all__ = ["PayrollsBreakout", "main"]


class PayrollsBreakout(ash.Strategy):
    """A buy stop ``band`` above and a sell stop ``band`` below the last close before
    each NFP release, the same units each, expiring after ``window``; the position is
    closed after ``hold``, or by the stop-loss, or flattened by the other stop."""

    decide_before: str = "1m"  # place the stops this long before the release
    band: float = 0.002  # distance of each stop from the reference close, a fraction
    window: str = "30m"  # the stops expire this long after they are placed
    hold: str = "1h"  # time exit after the entry fill
    stop_loss: float = 0.01  # beyond the opposite stop, a fraction of the entry price
    notional: float = 50_000.0  # quote currency per side at the reference close
    symbol: str = "BTC"

    def before_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        # a short from the sell stop has its stop-loss at L * (1 + stop_loss): above U only if
        # stop_loss > (1 + band) / (1 - band) - 1, the wider of the two sides' bounds
        beyond = (1 + self.band) / (1 - self.band) - 1
        if self.stop_loss <= beyond:
            raise ash.ConfigError(
                f"stop_loss {self.stop_loss} must lie beyond the opposite stop (> {beyond:.6f} for band {self.band}), "
                "or it would close a trade before the other stop can flatten it",
                column="stop_loss",
            )
        nfp = events.filter(pl.col("indicator") == "NFP")
        reference = self.asof.last_close(self.symbol)
        if nfp.height == 0 or reference is None:
            return None
        units = self.notional / reference
        legs = [
            ash.orders.stop(
                nfp, symbol=self.symbol, side=side, size=units, price=reference * (1 + sign * self.band),
                expire_after=self.window, exit_after=self.hold, stop_loss=self.stop_loss,
            )
            for side, sign in (("buy", 1), ("sell", -1))
        ]
        orders = pl.concat(legs)
        if orders.select((pl.col("expire_ts") > pl.col("submit_ts").dt.offset_by(self.hold)).any()).item():
            raise ash.ConfigError(f"window ({self.window}) must not exceed hold ({self.hold})", column="window")
        return orders


def main(argv: Sequence[str] | None = None) -> int:
    _common.main(PayrollsBreakout, "payrolls_breakout", __doc__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
