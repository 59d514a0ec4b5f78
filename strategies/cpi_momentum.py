"""CPI surprise momentum: trade with the sign of the inflation surprise.

Trade idea: the mirror image of ``cpi_fade.py``. After an inflation print (CPI, PPI,
PCE families) whose hawkish surprise ``|hawkish_z|`` exceeds ``threshold``, go *with*
the surprise's sign: buy BTC after a hotter-than-expected print (``hawkish_z > 0``),
sell after a cooler one; hold for ``hold`` with a stop-loss. The bet is that the
surprise keeps pushing in its own direction — BTC as an inflation hedge that is bid
when inflation runs hot. Which of the two is "momentum" in *price* terms depends on
the sign of BTC's reaction: on the bundled sample BTC falls on hawkish surprises
(the planted sensitivity is negative), so there this strategy takes the other side
of ``cpi_fade.py``'s trades, against the first move.

Point in time: ``on_release`` is decided at each release instant and sees that
release's actual and ``hawkish_z`` (standardized on earlier releases only); the market
order fills at the open of the first bar after the release plus latency.

    python strategies/cpi_momentum.py [--bars PATH] [--calendar PATH] [--report cpi_momentum.html]
        [--fees 0.0004] [--latency 2s] [--param threshold=1.0 --param hold=4h]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

try:
    import _common
except ModuleNotFoundError:  # loaded by file path: strategies/ is not on sys.path
    sys.path.append(str(Path(__file__).resolve().parent))
    import _common
from _common import InflationSurpriseTrade

__all__ = ["CpiMomentum", "main"]


class CpiMomentum(InflationSurpriseTrade):
    """Buy BTC after a hawkish inflation surprise (sell after a dovish one), hold for
    ``hold``, with a protective stop. Parameters: ``threshold`` (|hawkish z| to trade),
    ``hold``, ``stop_loss`` (fraction of the entry price), ``size`` (fraction of
    equity), ``symbol``."""

    _direction = +1


def main(argv: Sequence[str] | None = None) -> int:
    _common.main(CpiMomentum, "cpi_momentum", __doc__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
