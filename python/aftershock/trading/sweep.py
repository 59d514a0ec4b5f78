"""Parameter sweeps: every combination of a grid, run and scored in parallel in Rust.

A sweep runs one strategy (a :class:`~aftershock.Strategy` class) or one orders
frame over the same bars for every combination of a grid. Grid keys may be

- parameters of the strategy (each distinct parameter set is compiled once, by a
  fresh instance);
- order columns that bracket or size every order (``qty``, ``stop_loss``,
  ``take_profit``, ``trailing_stop``, ``exit_after``): the value replaces that
  column in every order (``None`` clears it);
- backtest settings (``fees``, ``slippage``, ``latency``...).

The engine computes every :meth:`Result.stats` figure of every variant inside its
parallel loop, under the conventions asked for (``conventions=``, as ``stats()``); a
variant's equity rows live only while it runs, so memory does not grow with
bars x variants.
``Sweep.result(i)`` re-runs variant ``i`` alone for its full :class:`Result`.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from aftershock import _engine
from aftershock._time import duration_us
from aftershock.trading.engine import (
    _DAY_US,
    DEFAULT_CONFIG,
    _config,
    _periods_per_year,
    backtest,
    encode_orders,
    prepare_bars,
    stats_frame,
)
from aftershock.errors import ConfigError
from aftershock.trading._progress import with_progress
from aftershock.trading.results import Result
from aftershock.trading.stats import (
    AFTERSHOCK, Conventions, computes_as_aftershock, conventions_sampling, engine_conventions, resolve_conventions,
)
from aftershock.trading.strategy import Strategy, compile_orders

__all__ = ["sweep", "Sweep", "SWEEP_ORDER_COLUMNS"]

#: Order columns a grid may set for every order of a variant.
SWEEP_ORDER_COLUMNS = ("qty", "stop_loss", "take_profit", "trailing_stop", "exit_after")


class Sweep:
    """Every combination of ``grid`` over the same bars, ready to run.

    >>> import datetime as dt, polars as pl, aftershock as ash
    >>> ts = [dt.datetime(2025, 1, 1, 0, m, tzinfo=dt.timezone.utc) for m in range(6)]
    >>> bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": [100.0, 101, 103, 99, 98, 104],
    ...                      "high": [101.0, 103, 104, 100, 105, 106], "low": [99.0, 100, 98, 97, 97, 103],
    ...                      "close": [101.0, 103, 99, 98, 104, 105]})
    >>> orders = pl.DataFrame({"submit_ts": [ts[0] + dt.timedelta(seconds=30)], "symbol": "BTC",
    ...                        "side": "buy", "qty": 1.0})
    >>> sw = ash.Sweep(bars, orders, {"take_profit": [0.01, 0.5], "fees": [0.0, 0.001]}, init_cash=1_000)
    >>> table = sw.run()
    >>> table.select("take_profit", "fees", "trades", pl.col("final_equity").round(6)).rows()
    [(0.01, 0.0, 1, 1001.01), (0.01, 0.001, 1, 1000.80699), (0.5, 0.0, 0, 1004.0), (0.5, 0.001, 0, 1003.899)]
    >>> sw.result(0).trades.select("exit_price", "exit_reason").row(0)
    (102.01, 'take_profit')
    """

    def __init__(
        self,
        bars: Any,
        strategy: Any,
        grid: Mapping[str, Sequence[Any]],
        *,
        calendar: Any = None,
        periods_per_year: float | None = None,
        **config: Any,
    ) -> None:
        is_class = isinstance(strategy, type) and issubclass(strategy, Strategy)
        if isinstance(strategy, Strategy):
            raise ConfigError(
                f"sweep takes the Strategy class ({type(strategy).__name__}), not an instance", column="strategy"
            )
        if is_class and calendar is None:
            raise ConfigError("a Strategy sweep needs calendar=...", column="calendar")
        params = strategy.params if is_class else {}
        keys = list(grid)
        for k in keys:
            if k not in params and k not in DEFAULT_CONFIG and k not in SWEEP_ORDER_COLUMNS:
                what = f"a parameter of {strategy.__name__}, " if is_class else ""
                raise ConfigError(
                    f"grid key {k!r} is neither {what}an order column ({', '.join(SWEEP_ORDER_COLUMNS)}) "
                    "nor a backtest setting",
                    column=k,
                )
            values = grid[k]
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
                raise ConfigError(f"grid[{k!r}] must be a non-empty list of values", column=k)
        overlap = [k for k in config if k in grid]
        if overlap:
            raise ConfigError(f"{overlap[0]!r} is both a grid key and a fixed setting", column=overlap[0])
        self.bars = prepare_bars(bars)
        self.strategy = strategy
        self.calendar = calendar
        # None: the annualization of the conventions a run asks for (365 for ours)
        self._ppy_given = periods_per_year is not None
        self.periods_per_year = _periods_per_year(365.0 if periods_per_year is None else periods_per_year)
        self.config = dict(config)
        self._keys = keys
        #: The grid as given (key -> list of values).
        self.grid: dict[str, list[Any]] = {k: list(grid[k]) for k in keys}
        #: The frame of the last :meth:`run` (or the saved one, when loaded).
        self.table: pl.DataFrame | None = None
        self._saved: dict[str, Any] | None = None  # the record it was loaded from
        self._param_keys = [k for k in keys if k in params]
        self._column_keys = [k for k in keys if k in SWEEP_ORDER_COLUMNS and k not in params]
        self._setting_keys = [k for k in keys if k not in params and k not in SWEEP_ORDER_COLUMNS]
        #: One dict per variant, in grid order (the last key varies fastest).
        self.variants: list[dict[str, Any]] = [
            dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))
        ]
        self._frames: dict[tuple, pl.DataFrame] = {}
        self._encoded: dict[tuple, tuple[pl.DataFrame, pl.DataFrame]] = {}
        self._overridden: dict[tuple, pl.DataFrame] = {}
        self._configs: dict[tuple, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.variants)

    def __repr__(self) -> str:
        name = getattr(self.strategy, "__name__", "orders")
        return f"<aftershock.Sweep {name} x {len(self)} variants over {', '.join(self._keys)}>"

    # -- what each variant runs ---------------------------------------------------

    @staticmethod
    def _key(values: Mapping[str, Any], names: Sequence[str]) -> tuple:
        return tuple((k, repr(values[k])) for k in names)

    def _base(self, variant: Mapping[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The variant's orders before column overrides: compiled once per distinct
        parameter set (by a fresh strategy instance) and encoded once."""
        key = self._key(variant, self._param_keys)
        if key not in self._encoded:
            if isinstance(self.strategy, type):
                params = {k: variant[k] for k in self._param_keys}
                frame = compile_orders(self.strategy(**params), self.calendar, self.bars)
            else:
                frame = self.strategy
            self._encoded[key] = encode_orders(frame, self.bars.symbols)
        return self._encoded[key]

    def _encoded_orders(self, variant: Mapping[str, Any]) -> pl.DataFrame:
        """The encoded orders frame of the variant: the base encoding with overridden
        columns swapped in (the other columns share the base's memory)."""
        frame, encoded = self._base(variant)
        if not self._column_keys:
            return encoded
        key = self._key(variant, self._param_keys + self._column_keys)
        if key not in self._overridden:
            n = frame.height
            self._overridden[key] = encoded.with_columns(
                pl.Series(c, _column_value(c, variant[c], n)) for c in self._column_keys
            )
        return self._overridden[key]

    def _config_of(self, variant: Mapping[str, Any]) -> dict[str, Any]:
        key = self._key(variant, self._setting_keys)
        if key not in self._configs:
            self._configs[key] = _config({**self.config, **{k: variant[k] for k in self._setting_keys}})
        return self._configs[key]

    def orders(self, i: int) -> pl.DataFrame:
        """The orders frame variant ``i`` runs (its overridden columns set)."""
        variant = self.variants[self._index(i)]
        frame, _ = self._base(variant)
        if self._column_keys:
            frame = frame.with_columns(_column_literal(c, variant[c]) for c in self._column_keys)
        return frame

    def settings(self, i: int) -> dict[str, Any]:
        """The backtest settings of variant ``i`` (fixed ones and its grid values)."""
        variant = self.variants[self._index(i)]
        return {**self.config, **{k: variant[k] for k in self._setting_keys}}

    def _index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise ConfigError(f"variant index must be an integer in [0, {len(self)}), got {i!r}", column="variant")
        return int(i) % len(self)

    # -- running ------------------------------------------------------------------

    def run(self, *, threads: int | None = None, progress: bool | None = None, checkpoint: Any = None,
            chunk_size: int | None = None, backend: str = "local",
            conventions: str | Conventions | None = None) -> pl.DataFrame:
        """Runs every variant in the engine (``threads``: default all cores; the
        result does not depend on it). Returns one row per variant, in the order of
        :attr:`variants`: the grid values, then every :meth:`Result.stats` figure.

        ``progress``: a bar on stderr that advances as variants finish (``None``, the
        default: only when stderr is a terminal; the Ray backend reports at the end).

        ``checkpoint``: a directory where each chunk of ``chunk_size`` variants
        (default 256) is written as soon as it is done; running again with the same
        directory resumes, reading the finished chunks instead of computing them (the
        bar then counts only the variants computed). It refuses a directory written
        for other bars, calendar, orders, strategy, grid or settings
        (docs/persistence.md).

        ``backend="ray"`` splits the variants into chunks run by the same engine on
        Ray workers (``pip install 'aftershock[ray]'``, docs/scale.md); the frame is
        the same, bit for bit.

        ``conventions``: how the figures peers disagree on are computed, as in
        :meth:`Result.stats` (``"aftershock"``, the default, ``"backtesting.py"`` or a
        :class:`~aftershock.trading.stats.Conventions`); row ``i`` equals
        ``result(i).stats(conventions=conventions)`` — with a ``periods_per_year`` given
        to the Sweep, ``stats(conventions=..., periods_per_year=..., returns=<the
        conventions' sampling>)``."""
        n_threads = _threads(threads)
        runner = _backend(backend)
        conv = resolve_conventions(conventions)

        def run(counter: Any) -> pl.DataFrame:
            if checkpoint is None:
                return self._stats(self.variants, n_threads, counter, runner, conv)
            from aftershock.trading.persist import run_chunks, sweep_identity

            identity = sweep_identity(self)
            if not computes_as_aftershock(conv) or conv.name != AFTERSHOCK.name:
                # checkpoints written before conventions keep their identity
                identity = {**identity, "conventions": repr(conv)}
            return run_chunks(checkpoint, identity, len(self), chunk_size,
                              lambda lo, hi: self._stats(self.variants[lo:hi], n_threads, counter, runner, conv))

        return self._frame(with_progress(run, len(self.variants), progress))

    def run_daily(self, *, threads: int | None = None, backend: str = "local") -> tuple[pl.DataFrame, np.ndarray]:
        """:meth:`run`, and every variant's daily returns from the same engine pass:
        a days x variants matrix of close-of-day returns (the returns each row's
        Sharpe ratio is computed from), one row per UTC calendar day from the first
        bar's day to the last bar's (:meth:`days`). Memory: one float per day and
        variant, nothing per bar."""
        orders = [self._encoded_orders(v) for v in self.variants]
        configs = [self._config_of(v) for v in self.variants]
        table, returns = _backend(backend)(self.bars.columns, self.bars.offsets, orders, configs, _threads(threads),
                                           self.periods_per_year, True, None)
        frame = stats_frame(table, self.bars.symbols, self.periods_per_year, conventions="aftershock")
        return self._frame(frame), returns.T

    def days(self) -> pl.Series:
        """The UTC calendar days of the rows of :meth:`run_daily`'s matrix."""
        ts = self.bars.arrays["ts"]
        first, last = int(ts.min()) // _DAY_US, int(ts.max()) // _DAY_US
        return pl.Series("day", np.arange(first, last + 1, dtype="int64")).cast(pl.Date)

    def overfitting(self, *, splits: int = 16, threads: int | None = None, backend: str = "local") -> Any:
        """The deflated Sharpe ratio of the best variant and the probability of
        backtest overfitting of picking it (CSCV over daily returns), as an
        :class:`aftershock.research.Overfitting`. See docs/research.md."""
        from aftershock.research.overfitting import overfitting

        _, returns = self.run_daily(threads=threads, backend=backend)
        return overfitting(returns, splits=splits, periods_per_year=self.periods_per_year)

    def report(self, path: str, *, splits: int = 16, threads: int | None = None, backend: str = "local",
               title: str | None = None) -> str:
        """An offline HTML page: the overfitting statistics of the sweep (deflated
        Sharpe ratio, PBO, the CSCV logits) above every variant's figures."""
        from aftershock.report import write_sweep_report
        from aftershock.research.overfitting import overfitting

        frame, returns = self.run_daily(threads=threads, backend=backend)
        stats = overfitting(returns, splits=splits, periods_per_year=self.periods_per_year)
        name = getattr(self.strategy, "__name__", "orders")
        return write_sweep_report(frame, stats, path, title=title or f"sweep of {name}: {len(self)} variants")

    def _frame(self, stats: pl.DataFrame) -> pl.DataFrame:
        grid = pl.DataFrame({k: [v[k] for v in self.variants] for k in self._keys}, strict=False)
        self.table = pl.concat([grid, stats], how="horizontal")
        return self.table

    def _stats(self, variants: Sequence[Mapping[str, Any]], n_threads: int, counter: Any = None,
               runner: Any = None, conv: Conventions | None = None) -> pl.DataFrame:
        """The engine's figures of ``variants``, one row each, under ``conv``."""
        conv = resolve_conventions(conv)
        orders = [self._encoded_orders(v) for v in variants]
        configs = [self._config_of(v) for v in variants]
        if self._ppy_given:
            sampling, ppy = conv.returns, self.periods_per_year
        else:
            sampling, ppy = conventions_sampling(conv, self.bars.arrays["ts"])
        extra = {} if computes_as_aftershock(conv) else {"conventions": engine_conventions(conv)}
        table, _ = (runner or _local)(self.bars.columns, self.bars.offsets, orders, configs, n_threads,
                                      ppy, False, counter, **extra)
        return stats_frame(table, self.bars.symbols, ppy, sampling=sampling, conventions=conv.name)

    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the sweep (its table — run first if it has not been —, bars, orders or
        calendar, grid and settings) to the directory ``path`` atomically;
        ``aftershock.load(path)`` gives back a working Sweep."""
        from aftershock.trading.persist import save_sweep

        return save_sweep(self, path, overwrite=overwrite)

    def verify(self, bars: Any = None, calendar: Any = None, *, threads: int | None = None) -> None:
        """Run every variant again (on ``bars`` and ``calendar`` when given, checked
        against the recorded content hashes) and raise
        :class:`~aftershock.errors.VerificationError` unless the table comes back bit
        for bit."""
        from aftershock.trading.persist import verify_sweep

        verify_sweep(self, bars, calendar, threads)

    def result(self, i: int) -> Result:
        """The full :class:`Result` of variant ``i`` (row ``i`` of :meth:`run`),
        re-run alone: fills, trades, equity and orders."""
        return backtest(self.bars, self.orders(i), **self.settings(i))


def _local(columns: pl.DataFrame, offsets: pl.Series, orders: list, configs: list, threads: int,
           periods_per_year: float, daily: bool, counter: Any = None,
           conventions: dict[str, Any] | None = None) -> tuple[pl.DataFrame, np.ndarray | None]:
    """The engine on this machine: every variant on ``threads`` threads. Returns the
    engine's figures (one row per variant) and, with ``daily``, a variants x days
    matrix of daily returns. ``conventions``: :func:`engine_conventions` (default ours)."""
    if not daily:
        table = _engine.simulate_many_stats(columns, offsets, orders, configs, threads, True, _DAY_US,
                                            periods_per_year, counter, conventions)
        return pl.DataFrame(table), None
    table, flat, days = _engine.simulate_many_stats_daily(columns, offsets, orders, configs, threads, True, _DAY_US,
                                                          periods_per_year, counter, conventions)
    returns = np.array(np.frombuffer(flat, dtype=np.float64)).reshape(len(orders), days)
    return pl.DataFrame(table), returns


def _threads(threads: Any) -> int:
    n = threads if threads is not None else (os.cpu_count() or 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}", column="threads")
    return n


def _backend(name: str) -> Any:
    run = _BACKENDS.get(name)
    if run is None:
        raise ConfigError(f"backend must be one of {sorted(_BACKENDS)}, got {name!r}", column="backend")
    return run


#: Where a sweep's variants run: name -> ``fn(bars columns, offsets, encoded orders,
#: configs, threads, periods_per_year, daily, counter, conventions=None) -> (figures, daily returns)`` (``aftershock.research`` adds "ray").
_BACKENDS: dict[str, Any] = {"local": _local}


def register_backend(name: str, run: Any) -> None:
    """Makes ``backend=name`` run a sweep's variants through ``run`` (the hook the Ray
    backend uses); ``run`` must return the columns the local engine returns, in
    variant order."""
    _BACKENDS[name] = run


def _column_literal(column: str, value: Any) -> pl.Expr:
    if value is None:
        return pl.lit(None, dtype=pl.String if column == "exit_after" else pl.Float64).alias(column)
    if column == "exit_after":
        return pl.lit(value).alias(column)
    return pl.lit(float(value), dtype=pl.Float64).alias(column)


def _column_value(column: str, value: Any, n: int) -> np.ndarray:
    """One grid value as an engine column of ``n`` orders (ranges are checked by the
    engine, which names the column)."""
    if column == "exit_after":
        if value is None:
            return np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        try:
            return np.full(n, duration_us(value, name="exit_after"), dtype=np.int64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(getattr(exc, "message", str(exc)), column=column) from None
    if value is None and column != "qty":
        return np.full(n, np.nan)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ConfigError(f"grid values of {column!r} must be finite numbers, got {value!r}", column=column)
    return np.full(n, float(value))


def sweep(
    bars: Any,
    strategy: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    calendar: Any = None,
    threads: int | None = None,
    periods_per_year: float | None = None,
    checkpoint: Any = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    backend: str = "local",
    conventions: str | Conventions | None = None,
    **config: Any,
) -> pl.DataFrame:
    """Backtest ``strategy`` (a Strategy class or an orders frame) for every
    combination in ``grid``; shorthand for ``Sweep(...).run(threads=threads)``.

    Returns one row per combination (the last grid key varies fastest): the grid
    values, then every :meth:`Result.stats` figure, computed in the engine. For the
    full result of a row, keep the :class:`Sweep` and call ``Sweep.result(i)``.
    ``checkpoint``/``chunk_size``: see :meth:`Sweep.run`. ``progress``: a bar on stderr
    per finished variant (default: only on a terminal). ``backend="ray"`` runs the
    variants on Ray workers (same frame, bit for bit). ``conventions``: the rows'
    conventions, as in :meth:`Result.stats` (see :meth:`Sweep.run`).
    """
    return Sweep(bars, strategy, grid, calendar=calendar, periods_per_year=periods_per_year, **config).run(
        threads=threads, checkpoint=checkpoint, chunk_size=chunk_size, progress=progress, backend=backend,
        conventions=conventions,
    )
