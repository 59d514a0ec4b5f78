"""What the example strategies share: indicator lists, the inflation-surprise trade
(``cpi_fade`` and ``cpi_momentum`` are its two signs), prices at an instant from the
bars a strategy may see, and the command line (data loading, backtest, printout,
report).

Not a strategy; the runnable files are the other modules in this folder.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any, Callable, Sequence, TypeVar

import polars as pl

import aftershock as ash

#: Inflation prints with a hawkish sign in the registry (a higher print is hawkish).
INFLATION = ["CPI_YOY", "CPI_MOM", "CORE_CPI_MOM", "PPI_YOY", "CORE_PPI_MOM", "PCE_YOY", "CORE_PCE_YOY", "CORE_PCE_MOM"]
#: The consumer-price releases (CPI and PCE families) the pre-release drift trades into.
CPI_PCE = [i for i in INFLATION if "CPI" in i or "PCE" in i]

S = TypeVar("S", bound=ash.Strategy)

DEFAULT_FEES = 0.0004
DEFAULT_LATENCY = "2s"


class InflationSurpriseTrade(ash.Strategy):
    """On an inflation print with ``|hawkish_z| > threshold``, trade ``symbol`` on the
    sign of the surprise, ``_direction`` times: -1 sells after a hawkish (hotter than
    expected) print and buys after a dovish one, +1 does the opposite. Hold for
    ``hold``, with a protective stop. Subclasses set ``_direction`` (not a parameter)."""

    threshold: float = 0.5  # |hawkish z| needed to trade
    hold: str = "1h"
    stop_loss: float = 0.02
    size: float = 0.5  # fraction of equity
    symbol: str = "BTC"

    _direction = 0

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame:
        hot = events.filter(
            pl.col("indicator").is_in(INFLATION),
            pl.col("hawkish_z").abs() > self.threshold,
        )
        return ash.orders.market(
            hot,
            symbol=self.symbol,
            side=self._direction * pl.col("hawkish_z").sign(),
            size=self.size,
            size_type="percent_equity",
            exit_after=self.hold,
            stop_loss=self.stop_loss,
        )


def with_close_at(frame: pl.DataFrame, bars: pl.DataFrame, at: str, name: str) -> pl.DataFrame:
    """``frame`` plus column ``name``: the close of the last bar of ``bars`` (one
    symbol) that had closed at or before the instant in column ``at`` (null when none
    had). A bar closes one bar interval after its ``ts`` (the smallest gap between
    consecutive bars), so this is a price that was printed by then. Row order kept."""
    if bars.height == 0:
        return frame.with_columns(pl.lit(None, pl.Float64).alias(name))
    step = bars.get_column("ts").diff().min() if bars.height > 1 else None
    closes = bars.select(
        (pl.col("ts") + (step if step is not None else pl.duration(days=1))).alias("_closed_at"),
        pl.col("close").alias(name),
    )
    return (
        frame.with_row_index("_row")
        .sort(at)
        .join_asof(closes, left_on=at, right_on="_closed_at", strategy="backward")
        .sort("_row")
        .drop("_row", "_closed_at")
    )


def parser(cls: type[ash.Strategy], name: str, doc: str | None) -> argparse.ArgumentParser:
    """The flags every example strategy takes."""
    defaults = ", ".join(f"{k}={v!r}" for k, v in cls.params.items())
    p = argparse.ArgumentParser(
        prog=f"python strategies/{name}.py",
        description=(doc or name).strip().splitlines()[0],
        epilog=(
            f"{cls.__name__} parameters (set with --param): {defaults}. "
            "Without --bars/--calendar it runs on the bundled sample: the real Q1-2025 calendar with SYNTHETIC bars."
        ),
    )
    p.add_argument("--bars", metavar="PATH", help="your bars (CSV/Parquet/Binance klines, see docs/data.md); default: the sample's")
    p.add_argument("--symbol", metavar="NAME", help="bars file without a symbol column: the instrument's name (e.g. BTC); with one: keep only this symbol")
    p.add_argument("--calendar", metavar="PATH", help="your event calendar (our CSV/Parquet or a ForexFactory export); default: the sample's")
    p.add_argument("--report", metavar="PATH", default=f"{name}.html", help="where to write the HTML report (default: %(default)s)")
    p.add_argument("--fees", type=float, default=DEFAULT_FEES, help="taker fee fraction (default: %(default)s)")
    p.add_argument("--slippage", type=float, default=0.0, help="slippage fraction on market and stop fills (default: %(default)s)")
    p.add_argument("--latency", default=DEFAULT_LATENCY, help="decision-to-order latency (default: %(default)s)")
    p.add_argument("--init-cash", type=float, default=100_000.0, help="starting cash (default: %(default)s)")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="set a strategy parameter, e.g. --param hold=4h (repeatable)",
    )
    return p


F = TypeVar("F", bound=Callable[..., Any])


def cli_errors(fn: F) -> F:
    """Bad input (a missing file, a malformed frame, a parameter out of range) ends the
    command with its one-line message instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ash.InputError, FileNotFoundError) as exc:
            raise SystemExit(f"error: {exc}") from None

    return wrapper  # type: ignore[return-value]


@cli_errors
def load_data(args: argparse.Namespace) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The bars and calendar the flags name, the bundled sample's where they name none."""
    if args.bars is None or args.calendar is None:
        sample = ash.datasets.sample()
        bars, calendar = sample.bars, sample.calendar
    if args.bars is not None:
        bars = ash.read_bars(args.bars, symbol=args.symbol)
    if args.calendar is not None:
        calendar = ash.read_calendar(args.calendar)
    source = "your bars" if args.bars is not None else "SYNTHETIC sample bars"
    print(f"data: {source}, {bars.height} rows of {bars['symbol'].unique().sort().to_list()}; calendar: {calendar.height} events")
    return bars, calendar


def _typed(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() in ("true", "1")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return type(default)(value)
    if default is None:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def strategy_from_args(cls: type[S], args: argparse.Namespace) -> S:
    """``cls`` with the ``--param NAME=VALUE`` overrides, typed like the defaults."""
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param takes NAME=VALUE, got {item!r}")
        if key not in cls.params:
            raise SystemExit(f"{cls.__name__} has no parameter {key!r}; parameters: {sorted(cls.params)}")
        try:
            params[key] = _typed(value, cls.params[key])
        except ValueError as exc:
            raise SystemExit(f"--param {key}: {exc}") from None
    return cls(**params)


def backtest_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"fees": args.fees, "slippage": args.slippage, "latency": args.latency, "init_cash": args.init_cash}


@cli_errors
def run(strategy: ash.Strategy, bars: pl.DataFrame, calendar: pl.DataFrame, args: argparse.Namespace) -> ash.Result:
    """Backtest ``strategy``, print its stats and per-event attribution, write the report."""
    result = ash.backtest(bars, strategy, calendar=calendar, **backtest_config(args))
    print(f"\n{strategy!r}:")
    for key, value in result.stats().items():
        print(f"  {key:>17}: {value}")
    print("\nper-event attribution:")
    with pl.Config(tbl_rows=50, fmt_str_lengths=60, tbl_width_chars=160):
        print(ash.report.attribution(result))
    return result


def write_report(result: ash.Result, args: argparse.Namespace, title: str) -> str:
    path = ash.report.write_report(result, args.report, title=title)
    print(f"\nreport written to {path}")
    return path


def main(cls: type[ash.Strategy], name: str, doc: str | None, argv: Sequence[str] | None) -> ash.Result:
    """The whole command line of a strategy module: parse, load, backtest, print, report."""
    args = parser(cls, name, doc).parse_args(argv)
    strategy = strategy_from_args(cls, args)
    bars, calendar = load_data(args)
    result = run(strategy, bars, calendar, args)
    write_report(result, args, title=f"{name}: {strategy!r}")
    return result
