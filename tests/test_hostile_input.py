"""Hostile input: every case is a clear aftershock error naming the argument or column
(and the row, for frames), never a silent accept and never a raw library error.

One parametrized matrix; issue 8 lists the cases (this suite grows with it)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import aftershock as ash
from aftershock._time import duration_us, parse_duration
from aftershock.trading.strategy import compile_orders

UTC = dt.timezone.utc
T = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)


def _cal():
    return ash.calendar.q1_2025_calendar()


class _Returns(ash.Strategy):
    value: object = None

    def on_release(self, events):
        return self.value


def _naive_orders_strategy():
    class Naive(ash.Strategy):
        def on_release(self, events):
            return events.select(submit_ts=pl.col("release_ts").dt.replace_time_zone(None), symbol=pl.lit("BTC"),
                                 side=pl.lit("buy"), qty=pl.lit(1.0))
    return Naive()


CASES = [
    # (id, call, error class, column)
    ("duration overflow", lambda: parse_duration("99999999999d", column="hold"), ash.InputError, "hold"),
    ("duration beyond int64", lambda: duration_us("999999999d", name="latency"), ash.InputError, "latency"),
    ("surprises min_history=-1", lambda: ash.surprises(_cal(), min_history=-1), ash.ConfigError, "min_history"),
    ("surprises min_history=1.5", lambda: ash.surprises(_cal(), min_history=1.5), ash.ConfigError, "min_history"),
    ("on_release returns a list", lambda: compile_orders(_Returns(value=[1, 2]), _cal()), ash.OrdersError, None),
    ("naive submit_ts from on_release", lambda: compile_orders(_naive_orders_strategy(), _cal()), ash.OrdersError,
     "submit_ts"),
    ("calendar with hawkish_z is still validated",
     lambda: compile_orders(_Returns(), pl.concat([ash.surprises(_cal())] * 2)), ash.CalendarError, "event_id"),
    ("negative decide_after", lambda: compile_orders(type("S", (_Returns,), {"decide_after": "-1h"})(), _cal()),
     ash.ConfigError, "decide_after"),
]


@pytest.mark.parametrize("call, error, column", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_a_clear_error(call, error, column):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, ash.AftershockError)
    if column is not None:
        assert info.value.column == column


def test_on_release_orders_in_another_time_zone_are_valid():
    # issue 8: a valid submit_ts in another zone raised a Polars SchemaError
    class Tokyo(ash.Strategy):
        def on_release(self, events):
            return events.head(1).select(submit_ts=pl.col("decision_ts").dt.convert_time_zone("Asia/Tokyo"),
                                         symbol=pl.lit("BTC"), side=pl.lit("buy"), qty=pl.lit(1.0))

    orders = compile_orders(Tokyo(), _cal())
    assert orders.schema["submit_ts"] == pl.Datetime("us", "UTC")
    # one order per publication instant, each at its decision instant
    instants = ash.calendar.with_publication(_cal())["known_ts"].unique().sort()
    assert orders["submit_ts"].sort().to_list() == instants.to_list()


def test_on_release_may_return_a_lazy_frame():
    class Lazy(ash.Strategy):
        def on_release(self, events):
            return ash.orders.market(events.head(1), symbol="BTC", side="buy", size=1.0).lazy()

    assert compile_orders(Lazy(), _cal()).height > 0
