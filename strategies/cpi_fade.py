"""Fade the first hour after a hot or cold inflation print.

Trade idea: after an inflation release whose hawkish surprise ``|hawkish_z|`` exceeds
``threshold``, go against the surprise's sign — sell BTC after a hotter-than-expected
print, buy after a cooler one — hold for ``hold`` with a stop-loss. Its mirror image is
``cpi_momentum.py``; both are :class:`_common.InflationSurpriseTrade`.

The main demo: runs on the bundled sample (the real Q1-2025 release calendar with
SYNTHETIC 1-minute BTC/ETH/NQ bars) or on your own ``--bars``/``--calendar``, prints
the sensitivity of BTC to inflation surprises, the backtest's headline figures,
per-event attribution and a small parameter sweep, and writes an HTML report.

    python strategies/cpi_fade.py [--bars PATH] [--calendar PATH] [--report cpi_fade.html]
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
from _common import INFLATION, InflationSurpriseTrade

__all__ = ["CpiFade", "INFLATION", "main"]


class CpiFade(InflationSurpriseTrade):
    """Sell BTC after a hawkish inflation surprise (buy after a dovish one), hold
    for ``hold``, with a protective stop."""

    _direction = -1


def main(argv: Sequence[str] | None = None) -> int:
    args = _common.parser(CpiFade, "cpi_fade", __doc__).parse_args(argv)
    strategy = _common.strategy_from_args(CpiFade, args)
    bars, calendar = _common.load_data(args)

    study = ash.study(bars, calendar, windows=["-10h", "15m", "1h", "1d"])
    btc = study.sensitivity.filter(pl.col("symbol") == strategy.symbol, pl.col("indicator").is_in(INFLATION))
    with pl.Config(tbl_rows=20, tbl_cols=8):
        print(f"\n{strategy.symbol} sensitivity to hawkish inflation surprises (log return per 1 sigma):")
        print(btc.filter(pl.col("spec") == "single").select("indicator", "window", "slope", "t_hc3", "n"))

    result = _common.run(strategy, bars, calendar, args)

    sweep = ash.Sweep(
        bars, CpiFade, {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"]},
        calendar=calendar, **_common.backtest_config(args),
    )
    grid, daily = sweep.run_daily()
    print("\nsweep (9 runs in parallel in Rust):")
    print(grid.select("threshold", "hold", "trades", "total_return", "max_drawdown"))
    of = ash.research.overfitting(daily)
    print(f"overfitting of picking the best of the 9 (docs/research.md): deflated Sharpe ratio "
          f"{of.deflated_sharpe:.3f}, probability of backtest overfitting (CSCV) {of.pbo:.3f}")

    _common.write_report(result, args, title=f"cpi_fade: {strategy!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
