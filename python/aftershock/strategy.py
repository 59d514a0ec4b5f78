"""Event strategies: Python decides, vectorized over events; Rust simulates.

A strategy is a class whose annotated class attributes are its parameters::

    class CpiFade(ash.Strategy):
        threshold: float = 1.0
        hold: str = "1h"

        def on_release(self, events):
            hot = events.filter(pl.col("indicator") == "CPI_YOY",
                                pl.col("surprise_z").abs() > self.threshold)
            return ash.orders.market(hot, symbol="BTC", side=-pl.col("surprise_z").sign(),
                                     size=0.5, size_type="percent_equity", exit_after=self.hold)

Two hooks, each called once with every event (no per-bar, no per-event Python):

- ``before_release(events)`` sees the calendar **without** anything derived from the
  actual figure (``actual``, ``surprise``, ``surprise_z``, ``hawkish_z``... are
  removed). Use it to position ahead of releases.
- ``on_release(events)`` sees actuals and surprises. Every order it returns must carry
  its event's id in ``tag`` and a ``submit_ts`` at or after that event's
  ``release_ts``; otherwise :class:`~aftershock.errors.LookAheadError` is raised.

Both return an orders frame (see :mod:`aftershock.orders`) or ``None``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import polars as pl

from aftershock.errors import ConfigError, LookAheadError

__all__ = ["Strategy", "ACTUAL_COLUMNS", "compile_orders"]

#: Columns that reveal the released figure; hidden from ``before_release``.
ACTUAL_COLUMNS = ("actual", "surprise", "surprise_std", "surprise_n", "surprise_z", "hawkish_z")


class Strategy:
    """Base class of event strategies; parameters are annotated class attributes."""

    params: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name in getattr(klass, "__annotations__", {}):
                if name.startswith("_") or name == "params":
                    continue
                if name in klass.__dict__:
                    params[name] = klass.__dict__[name]
        cls.params = params

    def __init__(self, **params: Any) -> None:
        unknown = [k for k in params if k not in self.params]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} has no parameter {unknown[0]!r}; parameters: {sorted(self.params)}",
                column=unknown[0],
            )
        for name, default in self.params.items():
            setattr(self, name, copy.deepcopy(params.get(name, default)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.params)
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.params}

    def before_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Orders decided before the figures are out (actual columns removed)."""
        return None

    def on_release(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Orders decided once each figure is out (actuals and surprises visible)."""
        return None


def _with_surprises(calendar: pl.DataFrame) -> pl.DataFrame:
    if "hawkish_z" in calendar.columns:
        return calendar
    from aftershock.calendar import surprises

    return surprises(calendar)


def compile_orders(strategy: Strategy, calendar: pl.DataFrame) -> pl.DataFrame:
    """Run the strategy's hooks over ``calendar`` and return one orders frame,
    checking that nothing submitted uses a figure before its release."""
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"expected a Strategy instance, got {type(strategy).__name__}", column="strategy")
    events = _with_surprises(calendar).sort("release_ts", maintain_order=True)
    blind = events.drop([c for c in ACTUAL_COLUMNS if c in events.columns])
    parts = []
    before = strategy.before_release(blind)
    if before is not None and before.height:
        parts.append(before)
    after = strategy.on_release(events)
    if after is not None and after.height:
        _check_no_look_ahead(after, events)
        parts.append(after)
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal_relaxed")


def _check_no_look_ahead(orders: pl.DataFrame, events: pl.DataFrame) -> None:
    if "tag" not in orders.columns:
        raise LookAheadError("orders from on_release must carry their event_id in 'tag'", column="tag")
    releases = events.select(pl.col("event_id").cast(pl.String).alias("tag"), pl.col("release_ts").alias("_release"))
    joined = orders.select(pl.col("tag").cast(pl.String), "submit_ts").with_row_index("_row").join(
        releases, on="tag", how="left", maintain_order="left"
    )
    unknown = joined.filter(pl.col("_release").is_null())
    if unknown.height:
        row = unknown.row(0, named=True)
        raise LookAheadError(
            f"on_release order tagged {row['tag']!r} names no event: its release time is unknown",
            column="tag",
            row=int(row["_row"]),
        )
    early = joined.filter(pl.col("submit_ts") < pl.col("_release"))
    if early.height:
        row = early.row(0, named=True)
        raise LookAheadError(
            f"on_release order for {row['tag']!r} is submitted at {row['submit_ts']}, before the release at "
            f"{row['_release']}: it would trade on a figure not yet published",
            column="submit_ts",
            row=int(row["_row"]),
        )
