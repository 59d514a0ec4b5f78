"""Command line: ``aftershock backtest BARS ORDERS`` runs an orders file against a
bars file; ``aftershock study BARS CALENDAR`` prints the sensitivity table. The demo
strategy is ``python strategies/cpi_fade.py``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _read_frame(path: str):
    import polars as pl

    p = Path(path)
    if p.suffix == ".parquet":
        return pl.read_parquet(p)
    return pl.read_csv(p, try_parse_dates=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aftershock", description="Measure and trade reactions to macro releases.")
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("study", help="event study: sensitivity of each symbol to each indicator's surprises")
    st.add_argument("bars", help="bars file (our schema, Binance klines, CSV or Parquet)")
    st.add_argument("calendar", help="calendar file (our schema or a ForexFactory export)")
    st.add_argument("--symbol", help="instrument name when the bars file has no symbol column")
    st.add_argument("--windows", default="-10h,15m,1h,1d", help="comma-separated windows")
    bt = sub.add_parser("backtest", help="run an orders file (CSV/Parquet) against a bars file")
    bt.add_argument("bars")
    bt.add_argument("orders")
    bt.add_argument("--fees", type=float, default=0.0)
    bt.add_argument("--latency", default="0s")
    bt.add_argument("--init-cash", type=float, default=100_000.0)
    bt.add_argument("--report")
    args = parser.parse_args(argv)

    import polars as pl

    import aftershock as ash
    from aftershock.prices import read_bars

    if args.command == "study":
        from aftershock.calendar import read_calendar

        bars = read_bars(args.bars, symbol=args.symbol)
        calendar = read_calendar(args.calendar)
        result = ash.study(bars, calendar, windows=args.windows.split(","))
        with pl.Config(tbl_rows=200, tbl_cols=10):
            print(result.sensitivity)
        return 0

    bars = read_bars(args.bars)
    orders = _read_frame(args.orders)
    result = ash.backtest(bars, orders, fees=args.fees, latency=args.latency, init_cash=args.init_cash)
    for key, value in result.stats().items():
        print(f"{key:>17}: {value}")
    if args.report:
        print("report:", result.report(args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
