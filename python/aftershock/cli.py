"""The ``aftershock`` command: ``demo``, ``study``, ``run``, ``sweep``, ``report`` and
``backtest`` (an orders file). ``aftershock demo`` runs everything on the bundled sample.

Bad input prints one line naming the problem and exits with status 2; ``--debug``
shows the traceback instead. docs/cli.md documents every command and option.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

if TYPE_CHECKING:
    from aftershock.trading.strategy import Strategy

EXIT_BAD_INPUT = 2
DEFAULT_WINDOWS = "-10h,15m,1h,1d"
DEFAULT_FEES = 0.0004
DEFAULT_LATENCY = "2s"
DEFAULT_INIT_CASH = 100_000.0


class UsageError(Exception):
    """A problem with what the user typed (not a bug): one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + error
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _fmt_default(help_text: str) -> str:
    return help_text + " (default: %(default)s)"


# ---------------------------------------------------------------------------------------
# progress and output


class _Progress:
    """A tqdm bar over the named steps of a command, on stderr; silent with --quiet or
    when stderr is not a terminal (unless forced)."""

    def __init__(self, steps: Sequence[str], enabled: bool):
        from tqdm import tqdm

        self._steps = list(steps)
        self.enabled = enabled
        self._bar = tqdm(total=len(self._steps), disable=not enabled, file=sys.stderr, leave=False,
                         bar_format="{desc:<28} {bar} {n_fmt}/{total_fmt} [{elapsed}]", dynamic_ncols=True)

    def resize(self, steps: int) -> None:
        self._bar.total = steps
        self._bar.refresh()

    def step(self, name: str) -> "_Step":
        return _Step(self._bar, name)

    def close(self) -> None:
        self._bar.close()


class _Step:
    def __init__(self, bar: Any, name: str):
        self._bar, self._name = bar, name

    def __enter__(self) -> None:
        self._bar.set_description_str(self._name)
        self._bar.refresh()

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self._bar.update(1)


def _width() -> int:
    return max(60, shutil.get_terminal_size((120, 40)).columns)


def _pct_columns(df: Any, cols: Sequence[str]) -> Any:
    """Fractions as percentage strings (only the few rows about to be printed)."""
    import polars as pl

    return df.with_columns(
        pl.Series(c, ["—" if v is None else f"{v * 100:.2f}%" for v in df.get_column(c).to_list()], dtype=pl.String)
        for c in cols if c in df.columns and df.schema[c].is_numeric()
    )


def print_table(df: Any, key: Sequence[str] = (), *, title: str | None = None, rows: int = 60, pct: Sequence[str] = ()) -> None:
    """Print the first ``rows`` rows of a frame sized to the terminal: ``key`` columns
    first, then as many of the others as fit; what is left out is said under the table."""
    import polars as pl

    cols = [c for c in key if c in df.columns] + [c for c in df.columns if c not in key]
    total = df.height
    df = _pct_columns(df.select(cols).head(rows), pct)
    width = _width()
    shown: list[str] = []
    used = 1
    for c in cols:
        w = max(len(c), min(24, max((len(str(v)) for v in df.get_column(c).to_list()), default=1))) + 3
        if shown and used + w > width:
            break
        shown.append(c)
        used += w
    if title:
        print(title)
    with pl.Config(tbl_rows=rows, tbl_cols=len(shown), tbl_width_chars=width, tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, float_precision=4, fmt_str_lengths=24, tbl_formatting="ASCII_MARKDOWN"):
        print(df.select(shown))
    left = [c for c in cols if c not in shown]
    if left:
        print(f"({len(left)} more columns not shown at this width: {', '.join(left)})")
    if total > rows:
        print(f"({total - rows} more rows not shown)")


def print_stats(stats: Any, fmt: str = "table") -> None:
    if fmt == "plain":  # one "key: value" line per figure, raw values (scripts parse it)
        for key, value in stats.items():
            print(f"{key:>22}: {value}")
    elif fmt == "json":
        print(json.dumps({k: (v if isinstance(v, (int, float, str, type(None))) else str(v)) for k, v in stats.items()}, indent=1))
    else:
        print(repr(stats))


# ---------------------------------------------------------------------------------------
# inputs


def _read_frame(path: str) -> Any:
    import polars as pl

    p = Path(path)
    if not p.exists():
        raise UsageError(f"file not found: {path}")
    if p.suffix == ".parquet":
        return pl.read_parquet(p)
    return pl.read_csv(p, try_parse_dates=True)


def _data(args: argparse.Namespace) -> tuple[Any, Any]:
    """Bars and calendar: the files given, or the bundled sample."""
    import aftershock as ash

    if args.bars is None and args.calendar is None:
        data = ash.datasets.sample()
        return data.bars, data.calendar
    if args.bars is None or args.calendar is None:
        raise UsageError("give both --bars and --calendar, or neither to use the bundled sample")
    for p in (args.bars, args.calendar):
        if not Path(p).exists():
            raise UsageError(f"file not found: {p}")
    return ash.read_bars(args.bars, symbol=getattr(args, "symbol", None)), ash.read_calendar(args.calendar)


def _strategy_classes(module: Any) -> "list[type[Strategy]]":
    from aftershock.trading.strategy import Strategy

    return [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy and v.__module__ == module.__name__
    ]


def _load_file(path: Path) -> Any:
    name = f"_aftershock_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_strategy(spec: str) -> "type[Strategy]":
    """A Strategy class from ``path/to/file.py``, ``file.py:Class`` or ``module:Class``."""
    target, _, cls_name = spec.partition(":")
    if target.endswith(".py") or Path(target).is_file():
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"strategy file not found: {target}")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise UsageError(f"cannot import module {target!r} ({exc}); give a .py file or module:Class") from None
    classes = _strategy_classes(module)
    if cls_name:
        cls = getattr(module, cls_name, None)
        from aftershock.trading.strategy import Strategy

        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise UsageError(f"{cls_name!r} in {target} is not an aftershock.Strategy subclass; found: {[c.__name__ for c in classes]}")
        return cls
    if len(classes) != 1:
        found = [c.__name__ for c in classes] or "none"
        raise UsageError(f"{target} defines {len(classes) or 'no'} Strategy classes ({found}); name one as {target}:Class")
    return classes[0]


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _params(pairs: Sequence[str], cls: "type[Strategy]") -> dict[str, Any]:
    out = {}
    for pair in pairs or ():
        key, sep, val = pair.partition("=")
        if not sep:
            raise UsageError(f"--param takes NAME=VALUE, got {pair!r}")
        if key not in cls.params:
            raise UsageError(f"{cls.__name__} has no parameter {key!r}; parameters: {', '.join(cls.params) or 'none'}")
        out[key] = _typed(key, _value(val), cls.params[key])
    return out


def _typed(key: str, value: Any, default: Any) -> Any:
    """A parameter value of its default's type (an int where a float is expected is fine)."""
    if default is None or isinstance(value, type(default)):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, str):
        return str(value)
    raise UsageError(f"parameter {key!r} takes a {type(default).__name__} (default {default!r}), got {value!r}")


def _grid(pairs: Sequence[str], cls: "type[Strategy]" | None = None) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for pair in pairs or ():
        key, sep, vals = pair.partition("=")
        if not sep or not vals:
            raise UsageError(f"--grid takes NAME=V1,V2,..., got {pair!r}")
        default = cls.params.get(key) if cls is not None else None
        grid[key] = [_typed(key, _value(v), default) for v in vals.split(",")]
    return grid


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {"fees": args.fees, "latency": args.latency, "init_cash": args.init_cash}


# ---------------------------------------------------------------------------------------
# commands

_SENS_KEY = ("indicator", "symbol", "window", "n", "slope", "t_hc3", "p", "ci_low", "ci_high", "r2", "se_hc3", "t_hc1")
_SWEEP_KEY = ("total_return", "sharpe", "max_drawdown", "trades", "open_trades", "win_rate", "total_fees", "final_equity")
_PCT = ("slope", "ci_low", "ci_high", "total_return", "max_drawdown", "win_rate", "exposure", "avg_trade_return",
        "return_ann", "volatility_ann", "cagr", "buy_hold_return", "best_trade", "worst_trade")


def cmd_study(args: argparse.Namespace, progress: _Progress) -> int:
    import polars as pl

    import aftershock as ash

    with progress.step("reading data"):
        bars, calendar = _data(args)
    with progress.step("event study"):
        study = ash.study(bars, calendar, windows=args.windows.split(","), model=args.model, benchmark=args.benchmark)
    progress.close()
    print(study)
    sens = study.sensitivity.filter(pl.col("spec") == "single").sort(pl.col("t_hc3").abs(), descending=True, nulls_last=True)
    print_table(sens, _SENS_KEY, title="\nsensitivity of each asset to each indicator's hawkish surprise (slope per σ, strongest first):",
                rows=args.rows, pct=("slope", "ci_low", "ci_high"))
    if args.report:
        print(f"\nstudy report: {study.report(args.report)}")
    return 0


def _run_one(cls: "type[Strategy]", params: dict, bars: Any, calendar: Any, config: dict) -> Any:
    import aftershock as ash

    return ash.backtest(bars, cls(**params), calendar=calendar, **config)


def cmd_run(args: argparse.Namespace, progress: _Progress) -> int:
    import aftershock as ash

    cls = load_strategy(args.strategy)
    params = _params(args.param, cls)
    with progress.step("reading data"):
        bars, calendar = _data(args)
    with progress.step(f"backtest {cls.__name__}"):
        result = _run_one(cls, params, bars, calendar, _config(args))
    path = None
    if args.report:
        with progress.step("report"):
            path = result.report(args.report, calendar=calendar, title=f"{cls.__name__} backtest")
    progress.close()
    print(f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in {**cls.params, **params}.items())})")
    print_stats(result.stats(), args.format)
    if args.format == "table":
        att = ash.report.attribution(result, calendar)
        if att.height:
            print_table(att, ("tag", "pnl", "trades", "surprise", "indicator"), title="\nP&L per event:", rows=args.rows)
    if path:
        print(f"\nbacktest report: {path}")
    return 0


def cmd_sweep(args: argparse.Namespace, progress: _Progress) -> int:
    import polars as pl

    import aftershock as ash

    cls = load_strategy(args.strategy)
    grid = _grid(args.grid, cls)
    if not grid:
        raise UsageError("give at least one --grid NAME=V1,V2,...")
    runs = 1
    for v in grid.values():
        runs *= len(v)
    with progress.step("reading data"):
        bars, calendar = _data(args)
    progress.close()
    # one engine call for the whole grid; its own bar advances per finished run
    table = ash.sweep(bars, cls, grid, calendar=calendar, threads=args.threads, progress=progress.enabled,
                      **_config(args))
    if args.sort not in table.columns:
        raise UsageError(f"--sort {args.sort!r} is not a column; choose one of {', '.join(table.columns)}")
    table = table.sort(args.sort, descending=not args.ascending, nulls_last=True)
    print_table(table, (*grid, *_SWEEP_KEY), title=f"{cls.__name__}: {runs} runs, sorted by {args.sort}:", rows=args.rows, pct=_PCT)
    if args.output:
        out = Path(args.output)
        table.write_parquet(out) if out.suffix == ".parquet" else table.select(
            pl.all().exclude(pl.Duration, pl.Datetime)
        ).write_csv(out)
        print(f"\nsweep table: {out}")
    return 0


def cmd_report(args: argparse.Namespace, progress: _Progress) -> int:
    import aftershock as ash

    with progress.step("reading data"):
        bars, calendar = _data(args)
    if args.target == "study":
        with progress.step("event study"):
            study = ash.study(bars, calendar, windows=args.windows.split(","))
        with progress.step("report"):
            path = study.report(args.output or "study.html")
    else:
        cls = load_strategy(args.target)
        with progress.step(f"backtest {cls.__name__}"):
            result = _run_one(cls, _params(args.param, cls), bars, calendar, _config(args))
        with progress.step("report"):
            path = result.report(args.output or f"{cls.__name__.lower()}.html", calendar=calendar, title=f"{cls.__name__} backtest")
    progress.close()
    print(f"report: {path}")
    return 0


def cmd_backtest(args: argparse.Namespace, progress: _Progress) -> int:
    import aftershock as ash

    for p in (args.bars, args.orders):
        if not Path(p).exists():
            raise UsageError(f"file not found: {p}")
    with progress.step("backtest"):
        result = ash.backtest(ash.read_bars(args.bars), _read_frame(args.orders), **_config(args))
    progress.close()
    print_stats(result.stats(), args.format)
    if args.report:
        print("report:", result.report(args.report))
    return 0


def _example_strategies(folder: Path) -> "list[type[Strategy]]":
    if not folder.is_dir():
        return []
    classes: "list[type[Strategy]]" = []
    for path in sorted(folder.glob("*.py")):
        if not path.name.startswith("_"):
            classes += _strategy_classes(_load_file(path))
    return classes


def _fallback_strategy() -> "type[Strategy]":
    """Used by ``demo`` when no strategies/ folder is at hand (an installed package)."""
    import polars as pl

    import aftershock as ash

    class InflationFade(ash.Strategy):
        """Short BTC for an hour after a hawkish inflation print beyond ``threshold`` σ,
        long after a dovish one."""

        threshold: float = 0.5
        hold: str = "1h"

        def on_release(self, events: pl.DataFrame) -> pl.DataFrame:
            hot = events.filter(pl.col("category") == "inflation", pl.col("hawkish_z").abs() > self.threshold)
            return ash.orders.market(hot, symbol="BTC", side=-pl.col("hawkish_z").sign(), size=0.5,
                                     size_type="percent_equity", exit_after=self.hold, stop_loss=0.02)

    return InflationFade


def cmd_demo(args: argparse.Namespace, progress_enabled: bool) -> int:
    import polars as pl

    import aftershock as ash

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(args.strategies)
    strategies = _example_strategies(folder) or [_fallback_strategy()]
    steps = ["bundled sample", "event study", *[f"backtest {c.__name__}" for c in strategies], "sweep", "reports"]
    progress = _Progress(steps, progress_enabled)
    config = {"fees": args.fees, "latency": args.latency, "init_cash": DEFAULT_INIT_CASH}
    with progress.step("bundled sample"):
        data = ash.datasets.sample()
    with progress.step("event study"):
        study = ash.study(data.bars, data.calendar, windows=DEFAULT_WINDOWS.split(","))
    results = []
    for cls in strategies:
        with progress.step(f"backtest {cls.__name__}"):
            results.append((cls, ash.backtest(data.bars, cls(), calendar=data.calendar, **config)))
    first = strategies[0]
    grid = {k: v for k, v in (("threshold", [0.25, 0.5, 1.0]), ("hold", ["15m", "1h", "4h"])) if k in first.params}
    if not grid:
        grid = {"fees": [0.0, 0.0004, 0.001]}
    with progress.step("sweep"):
        table = ash.sweep(data.bars, first, grid, calendar=data.calendar, **{k: v for k, v in config.items() if k not in grid})
    with progress.step("reports"):
        study_path = study.report(str(out / "study.html"))
        paths = [r.report(str(out / f"{c.__name__.lower()}.html"), calendar=data.calendar, title=f"{c.__name__} backtest") for c, r in results]
    progress.close()

    n_events = data.calendar.height
    print(f"aftershock {ash.__version__} demo — data: the real Q1-2025 release calendar ({n_events} events) with SYNTHETIC "
          f"1-minute bars for {', '.join(data.bars['symbol'].unique(maintain_order=True).to_list())}")
    print(f"\n1. event study: {study}")
    sens = study.sensitivity.filter(pl.col("spec") == "single").sort(pl.col("t_hc3").abs(), descending=True, nulls_last=True)
    print_table(sens, _SENS_KEY, title="   strongest sensitivities (slope = abnormal return per σ of hawkish surprise):", rows=8,
                pct=("slope", "ci_low", "ci_high"))
    for i, (cls, result) in enumerate(results, start=2):
        print(f"\n{i}. backtest {cls.__name__} (fees {args.fees:g}, latency {args.latency}), from {folder if folder.is_dir() else 'built-in'}:")
        print(repr(result.stats()))
    k = len(results) + 2
    print_table(table.sort("total_return", descending=True), (*grid, *_SWEEP_KEY),
                title=f"\n{k}. sweep of {first.__name__}: {table.height} runs in parallel in Rust, best first:", rows=20, pct=_PCT)
    print(f"\n{k + 1}. reports (open in a browser; they work offline):")
    for p in (study_path, *paths):
        print(f"   {p}")
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------
# parser


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bars", help="bars file: our schema, Binance klines, CSV or Parquet (default: the bundled sample)")
    p.add_argument("--calendar", help="calendar file: our schema or a ForexFactory export (default: the bundled sample)")
    p.add_argument("--symbol", help="instrument name when the bars file has no symbol column (default: none)")


def _cost_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fees", type=float, default=DEFAULT_FEES, help=_fmt_default("taker fee, a fraction of traded value"))
    p.add_argument("--latency", default=DEFAULT_LATENCY, help=_fmt_default("delay between a decision and the earliest fill"))
    p.add_argument("--init-cash", type=float, default=DEFAULT_INIT_CASH, help=_fmt_default("starting cash"))


def _global_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--debug, --quiet and --progress, accepted before or after the command."""
    p.add_argument("--debug", action="store_true", default=default, help="show the full traceback on errors (default: one line)")
    p.add_argument("--quiet", action="store_true", default=default, help="no progress bar (default: shown when stderr is a terminal)")
    p.add_argument("--progress", action="store_true", default=default,
                   help="show the progress bar even when stderr is not a terminal (default: off)")


_STRATEGY_HELP = "strategy: path/to/file.py, file.py:Class or package.module:Class (required)"


def build_parser() -> argparse.ArgumentParser:
    from aftershock import __version__

    parser = _Parser(prog="aftershock", description="Measure and trade market reactions to macro releases. "
                     "Start with: aftershock demo")
    parser.add_argument("--version", action="version", version=f"aftershock {__version__}")
    _global_options(parser, False)
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[common], **k)  # type: ignore[method-assign]

    demo = sub.add_parser("demo", help="the study, the example strategies, a sweep and both reports on the bundled sample",
                          description="Run everything on the bundled sample (the real Q1-2025 calendar, synthetic bars).")
    demo.add_argument("--out", default="aftershock-demo", help=_fmt_default("folder for the HTML reports"))
    demo.add_argument("--strategies", default="strategies",
                      help=_fmt_default("folder of example strategy files; a built-in example is used when it is absent"))
    demo.add_argument("--fees", type=float, default=DEFAULT_FEES, help=_fmt_default("taker fee, a fraction of traded value"))
    demo.add_argument("--latency", default=DEFAULT_LATENCY, help=_fmt_default("delay between a decision and the earliest fill"))

    st = sub.add_parser("study", help="event study: how each asset reacted to each indicator's surprises",
                        description="Event study of the bars around the calendar's events; prints the sensitivity table.")
    _data_options(st)
    st.add_argument("--windows", default=DEFAULT_WINDOWS, help=_fmt_default("comma-separated windows after (or, negative, before) each release"))
    st.add_argument("--model", default="constant_mean", choices=["zero_mean", "constant_mean", "market"],
                    help=_fmt_default("expected-return model"))
    st.add_argument("--benchmark", help="symbol used as the market in the market model (default: none)")
    st.add_argument("--report", help="also write the HTML study report to this path (default: none)")
    st.add_argument("--rows", type=int, default=40, help=_fmt_default("table rows to print"))

    run = sub.add_parser("run", help="backtest a strategy: a .py file, file.py:Class or module:Class",
                         description="Backtest one Strategy on the given data (default: the bundled sample).")
    run.add_argument("strategy", help=_STRATEGY_HELP)
    run.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a strategy parameter; repeat for more (default: the class defaults)")
    _data_options(run)
    _cost_options(run)
    run.add_argument("--report", help="also write the HTML backtest report to this path (default: none)")
    run.add_argument("--format", default="table", choices=["table", "plain", "json"], help=_fmt_default("how to print the stats"))
    run.add_argument("--rows", type=int, default=30, help=_fmt_default("table rows to print"))

    sw = sub.add_parser("sweep", help="backtest every combination of a parameter grid, in parallel in Rust",
                        description="Sweep a Strategy over a grid of parameters and/or backtest settings.")
    sw.add_argument("strategy", help=_STRATEGY_HELP)
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="values of one parameter or setting; repeat for more (no default: at least one is required)")
    _data_options(sw)
    _cost_options(sw)
    sw.add_argument("--threads", type=int, help="threads for the engine (default: all cores)")
    sw.add_argument("--sort", default="total_return", help=_fmt_default("column to sort by, best first"))
    sw.add_argument("--ascending", action="store_true", help="sort smallest first (default: largest first)")
    sw.add_argument("--output", help="also write the whole table to a .parquet or .csv file (default: none)")
    sw.add_argument("--rows", type=int, default=30, help=_fmt_default("table rows to print"))

    rp = sub.add_parser("report", help="write an HTML report: 'study' or a strategy",
                        description="Write the study report (TARGET 'study') or a strategy's backtest report.")
    rp.add_argument("target", help="'study', or a strategy: path/to/file.py, file.py:Class or module:Class")
    rp.add_argument("-o", "--output", help="where to write it (default: study.html or <strategy>.html)")
    rp.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a strategy parameter (default: the class defaults)")
    rp.add_argument("--windows", default=DEFAULT_WINDOWS, help=_fmt_default("study windows"))
    _data_options(rp)
    _cost_options(rp)

    bt = sub.add_parser("backtest", help="run an orders file (CSV/Parquet) against a bars file",
                        description="Simulate an orders frame (one row per order, docs/engine.md) against bars.")
    bt.add_argument("bars", help="bars file: our schema, Binance klines, CSV or Parquet")
    bt.add_argument("orders", help="orders file, CSV or Parquet")
    bt.add_argument("--fees", type=float, default=0.0, help=_fmt_default("taker fee, a fraction of traded value"))
    bt.add_argument("--latency", default="0s", help=_fmt_default("delay between submit time and the earliest fill"))
    bt.add_argument("--init-cash", type=float, default=DEFAULT_INIT_CASH, help=_fmt_default("starting cash"))
    bt.add_argument("--report", help="also write the HTML report to this path (default: none)")
    bt.add_argument("--format", default="plain", choices=["table", "plain", "json"],
                    help=_fmt_default("how to print the stats: plain is one 'key: value' line per figure"))
    return parser


_COMMANDS = {"study": cmd_study, "run": cmd_run, "sweep": cmd_sweep, "report": cmd_report, "backtest": cmd_backtest}


def _dispatch(args: argparse.Namespace) -> int:
    show = args.progress or (not args.quiet and sys.stderr.isatty())
    if args.command == "demo":
        return cmd_demo(args, show)
    steps = {"study": 2, "run": 3, "sweep": 2, "report": 3, "backtest": 1}[args.command]
    return _COMMANDS[args.command](args, _Progress(["step"] * steps, show))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, UsageError) else f"{type(exc).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError("choose a command: demo, study, run, sweep, report or backtest (see: aftershock --help)")
        return _dispatch(args)
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("aftershock: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, LookupError, TypeError, OSError, ImportError, SyntaxError) as exc:
        # ValueError covers every aftershock InputError (bars, orders, calendar, config)
        if debug:
            raise
        print(f"aftershock: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if debug:
            raise
        print(f"aftershock: internal error: {_one_line(exc)} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
