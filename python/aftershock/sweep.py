"""Parameter sweeps: every combination of a grid, run in parallel in Rust."""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import polars as pl

from aftershock.engine import DEFAULT_CONFIG, backtest_many, prepare_bars
from aftershock.errors import ConfigError
from aftershock.strategy import Strategy, compile_orders

__all__ = ["sweep"]


def sweep(
    bars: Any,
    strategy: type[Strategy],
    grid: Mapping[str, Sequence[Any]],
    *,
    calendar: Any,
    threads: int | None = None,
    **config: Any,
) -> pl.DataFrame:
    """Backtest ``strategy`` for every combination in ``grid``.

    Grid keys are strategy parameters or backtest settings (``fees``,
    ``latency``...). Orders are compiled in Python (vectorized per combination), then
    all simulations run in Rust on ``threads`` threads with the GIL released. Returns
    one row per combination: the grid values, then every :meth:`Result.stats` figure.
    The result does not depend on ``threads``.
    """
    if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
        raise ConfigError("sweep takes a Strategy subclass (the class, not an instance)", column="strategy")
    keys = list(grid)
    for k in keys:
        if k not in strategy.params and k not in DEFAULT_CONFIG:
            raise ConfigError(f"grid key {k!r} is neither a parameter of {strategy.__name__} nor a backtest setting", column=k)
        if isinstance(grid[k], (str, bytes)) or not len(grid[k]):
            raise ConfigError(f"grid[{k!r}] must be a non-empty list of values", column=k)
    prepared = prepare_bars(bars)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    orders, configs = [], []
    compiled: dict[tuple, pl.DataFrame] = {}
    for combo in combos:
        params = {k: v for k, v in combo.items() if k in strategy.params}
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in compiled:
            compiled[key] = compile_orders(strategy(**params), calendar, prepared)
        orders.append(compiled[key])
        configs.append({**config, **{k: v for k, v in combo.items() if k not in strategy.params}})
    results = backtest_many(prepared, orders, configs, threads=threads)
    rows = [{**combo, **r.stats()} for combo, r in zip(combos, results)]
    return pl.DataFrame(rows)
