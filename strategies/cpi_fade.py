"""Fade the first hour after a hot or cold inflation print.

The main demo: runs on the bundled sample (the real Q1-2025 release calendar with
SYNTHETIC 1-minute BTC/ETH/NQ bars), prints the sensitivity of BTC to inflation
surprises, the backtest's headline figures and a small parameter sweep, and writes
an HTML report.

    python strategies/cpi_fade.py [--report cpi_fade.html]
"""

from __future__ import annotations

import argparse

import polars as pl

import aftershock as ash

INFLATION = ["CPI_YOY", "CPI_MOM", "CORE_CPI_MOM", "PPI_YOY", "CORE_PPI_MOM", "PCE_YOY", "CORE_PCE_YOY", "CORE_PCE_MOM"]


class CpiFade(ash.Strategy):
    """Sell BTC after a hawkish inflation surprise (buy after a dovish one), hold
    for ``hold``, with a protective stop."""

    threshold: float = 0.5  # |hawkish z| needed to trade
    hold: str = "1h"
    stop_loss: float = 0.02
    size: float = 0.5  # fraction of equity

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame:
        hot = events.filter(
            pl.col("indicator").is_in(INFLATION),
            pl.col("hawkish_z").abs() > self.threshold,
        )
        return ash.orders.market(
            hot,
            symbol="BTC",
            side=-pl.col("hawkish_z").sign(),
            size=self.size,
            size_type="percent_equity",
            exit_after=self.hold,
            stop_loss=self.stop_loss,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="cpi_fade.html", help="where to write the HTML report")
    args = parser.parse_args(argv)

    data = ash.datasets.sample()
    print("data: real Q1-2025 calendar, SYNTHETIC bars:", data.bars.height, "rows,", data.bars["symbol"].unique().sort().to_list())

    study = ash.study(data.bars, data.calendar, windows=["-10h", "15m", "1h", "1d"])
    btc = study.sensitivity.filter(pl.col("symbol") == "BTC", pl.col("indicator").is_in(INFLATION))
    with pl.Config(tbl_rows=20, tbl_cols=8):
        print("\nBTC sensitivity to hawkish inflation surprises (log return per 1 sigma):")
        print(btc.filter(pl.col("spec") == "single").select("indicator", "window", "slope", "t_hc3", "n"))

    result = ash.backtest(data.bars, CpiFade(), calendar=data.calendar, fees=0.0004, latency="2s")
    print("\nCpiFade on the sample:")
    for key, value in result.stats().items():
        print(f"  {key:>17}: {value}")
    print("\nper-event attribution:")
    print(ash.report.attribution(result))

    grid = ash.sweep(
        data.bars, CpiFade, {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"]},
        calendar=data.calendar, fees=0.0004, latency="2s",
    )
    print("\nsweep (9 runs in parallel in Rust):")
    print(grid.select("threshold", "hold", "trades", "total_return", "max_drawdown"))

    path = result.report(args.report)
    print(f"\nreport written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
