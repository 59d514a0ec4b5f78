"""Decisions without hindsight: the point-in-time property over adversarial strategy
bodies, and one regression test per leak found (issue 13)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypothesis_profiles import examples

import aftershock as ash
import aftershock.testing as asht
from aftershock.calendar import OUTCOME_COLUMNS, as_of, with_publication
from aftershock.trading.strategy import compile_orders

UTC = dt.timezone.utc
MODES = ("aggregate", "shift", "join", "text", "state", "bars", "before", "delayed")


class Adversary(ash.Strategy):
    """Strategy bodies a hostile user might write against the frames they are handed:
    each tries to size or sign its orders from something published later."""

    mode: str = "aggregate"
    decide_before: str = "30m"
    decide_after: str = "0s"

    def __init__(self, **params):
        super().__init__(**params)
        self.memory: list[float] = []

    def _orders(self, events, size):
        return ash.orders.market(events.head(1), symbol="BTC", side="buy", size=size)

    def before_release(self, events):
        if self.mode != "before":
            return None
        cal = self.asof.calendar
        # every visible actual, previous and number in the free text
        nums = [float(x) for t in cal["source"].drop_nulls().to_list() for x in re.findall(r"-?\d+\.?\d*", t)]
        total = cal["actual"].fill_null(0).sum() + cal["previous"].fill_null(0).sum() + sum(nums)
        return self._orders(events, 1.0 + abs(total) % 7)

    def on_release(self, events):
        cal = self.asof.calendar
        if self.mode == "aggregate":
            size = 1.0 + abs(cal["actual"].mean() or 0.0) + abs(events["surprise"].fill_null(0).sum())
        elif self.mode == "shift":
            nxt = cal.with_columns(pl.col("actual").shift(-1).alias("nxt"))["nxt"].fill_null(0).abs().sum()
            size = 1.0 + nxt % 5
        elif self.mode == "join":
            joined = events.join(cal, on="indicator", how="left", suffix="_cal")
            size = 1.0 + abs(joined["actual_cal"].fill_null(0).sum()) % 5 + joined.height
        elif self.mode == "text":
            texts = " ".join(cal["source"].drop_nulls().to_list() + cal["title"].drop_nulls().to_list())
            size = 1.0 + len(texts) % 11 + len(re.findall(r"\d", texts))
        elif self.mode == "state":
            self.memory.extend(cal["actual"].drop_nulls().to_list())
            size = 1.0 + abs(sum(self.memory)) % 9
        elif self.mode == "bars":
            b = self.asof.bars("BTC")
            size = 1.0 + (float(b["close"].tail(5).mean()) % 3 if b.height else 0.0)
        elif self.mode == "delayed":
            size = 1.0 + cal.filter(pl.col("actual").is_not_null()).height
        else:
            return None
        return self._orders(events, size)


@examples(ci=60, long=1_500)
@given(case=asht.point_in_time_cases(symbols=("BTC", "ETH")), mode=st.sampled_from(MODES),
       after=st.sampled_from(["0s", "1m", "90m"]))
def test_no_order_at_or_before_t_depends_on_anything_published_after_t(case, mode, after):
    asht.assert_point_in_time(Adversary(mode=mode, decide_after=after), case)


def test_the_property_catches_a_leak():
    # not vacuous: a strategy that reads a calendar it closes over (not the frames it
    # is handed) is caught on the drawn cases
    caught = []

    class Cheat(ash.Strategy):
        full: pl.DataFrame | None = None

        def on_release(self, events):
            size = 1.0 + abs(self.full["actual"].fill_null(0).sum()) % 5
            return ash.orders.market(events.head(1), symbol="BTC", side="buy", size=size)

    @examples(ci=60, long=60)
    @given(case=asht.point_in_time_cases(symbols=("BTC",)))
    def check(case):
        a = compile_orders(Cheat(full=case.market.calendar), case.market.calendar, case.market.bars)
        b = compile_orders(Cheat(full=case.perturbed.calendar), case.perturbed.calendar, case.perturbed.bars)
        if a.width and b.width:
            a, b = (x.filter(pl.col("submit_ts") <= case.cut) for x in (a, b))
            if a.height and not a.equals(b):
                caught.append(case.cut)

    check()
    assert caught, "a strategy that reads the whole calendar was never caught"


# ----------------------------------------------------------------------------- leak 1


T = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)


def _calendar(actual_b: float = 2.8, source_b: str = "printed 2.8") -> pl.DataFrame:
    return pl.DataFrame({
        "event_id": ["CPI-A", "CPI-B"],
        "kind": ["macro", "macro"],
        "indicator": ["CPI_YOY", "CPI_YOY"],
        "release_ts": [T, T + dt.timedelta(days=28)],
        "actual": [3.0, actual_b],
        "consensus": [2.9, 2.9],
        "previous": [2.9, 3.0],
        "source": ["printed 3.0", source_b],
    })


def _bars() -> pl.DataFrame:
    ts = [T - dt.timedelta(hours=6) + dt.timedelta(minutes=m) for m in range(60 * 24 * 30)]
    p = 100 + np.sin(np.arange(len(ts)) / 500)
    return pl.DataFrame({"ts": ts, "symbol": "BTC", "open": p, "high": p + 0.1, "low": p - 0.1, "close": p})


def test_regression_on_release_cannot_see_a_later_events_actual():
    # Leak 1: on_release used to receive every event's actual at once, so a shift(-1),
    # a whole-sample mean or a mis-tagged order could trade CPI-A on CPI-B's figure.
    class Peek(ash.Strategy):
        def on_release(self, events):
            cal = self.asof.calendar
            nxt = cal.with_columns(pl.col("actual").shift(-1).alias("n"))["n"].fill_null(0.0).sum()
            size = 1.0 + nxt + events["actual"].mean() + cal["actual"].mean()
            return ash.orders.market(events, symbol="BTC", side="buy", size=size, tag=pl.lit("CPI-B"))

    a = compile_orders(Peek(), _calendar(2.8), _bars())
    b = compile_orders(Peek(), _calendar(9.9), _bars())
    first = a.filter(pl.col("submit_ts") == T)
    assert first.height == 1
    assert first.equals(b.filter(pl.col("submit_ts") == T))
    assert not a.equals(b)  # CPI-B's own order does see its actual


# ----------------------------------------------------------------------------- leak 2


def test_regression_before_release_sees_no_outcome_text_or_previous():
    # Leak 2: the bundled calendar's source text quotes the actual and the market's
    # move, and a later row's previous is an earlier row's actual.
    seen = []

    class Look(ash.Strategy):
        decide_before = "1h"

        def before_release(self, events):
            seen.append((events.columns, self.asof.calendar))
            return None

    compile_orders(Look(), ash.calendar.q1_2025_calendar())
    assert seen
    for columns, cal in seen:
        assert not set(OUTCOME_COLUMNS) & set(columns)
        assert "consensus" in columns
        unpublished = cal.filter(pl.col("known_ts") > seen[0][1]["known_ts"].min() - dt.timedelta(days=9999))
        hidden = cal.filter(pl.col("actual").is_null() & pl.col("consensus").is_not_null())
        assert hidden["source"].null_count() == hidden.height
        assert hidden["previous"].null_count() == hidden.height
        assert unpublished.height == cal.height
    # the view one hour before CPI on 2025-02-12 shows January's CPI print, not February's
    view = as_of(with_publication(ash.surprises(ash.calendar.q1_2025_calendar())),
                 dt.datetime(2025, 2, 12, 12, 30, tzinfo=UTC))
    cpi = view.filter(pl.col("indicator") == "CPI_YOY").select("release_ts", "actual", "previous", "source")
    assert cpi["actual"].to_list()[:3] == [2.9, None, None]
    assert cpi["source"].null_count() == cpi.height - 1


def test_unscheduled_events_do_not_exist_before_they_are_published():
    cal = with_publication(ash.calendar.q1_2025_calendar())
    sbr = cal.filter(pl.col("event_id") == "US-SBR-EO-2025-03-06")
    before = as_of(cal, sbr["known_ts"][0] - dt.timedelta(microseconds=1))
    after = as_of(cal, sbr["known_ts"][0])
    assert "US-SBR-EO-2025-03-06" not in before["event_id"].to_list()
    assert "US-SBR-EO-2025-03-06" in after["event_id"].to_list()
    # scheduled releases are there all along, with their consensus
    assert before.filter(pl.col("kind") == "macro").height == cal.filter(pl.col("kind") == "macro").height


# ----------------------------------------------------------------------------- leak 3


def test_regression_day_precision_outcome_is_public_at_the_end_of_the_day():
    # Leak 3: an on_release order at release_ts of a day-precision event filled at
    # 00:00 UTC of the event's day, hours before the figure was out.
    cal = pl.DataFrame({
        "event_id": ["HEADLINE"], "kind": ["policy"], "release_ts": [dt.datetime(2025, 2, 13, 5, 0, tzinfo=UTC)],
        "time_precision": ["day"], "direction": [1.0],
    })
    ts = [dt.datetime(2025, 2, 13, 0, 0, tzinfo=UTC) + dt.timedelta(minutes=m) for m in range(3 * 24 * 60)]
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0})

    class OnTheDay(ash.Strategy):
        def on_release(self, events):
            return ash.orders.market(events, symbol="BTC", side="buy", size=1.0)

    r = ash.backtest(bars, OnTheDay(), calendar=cal)
    assert r.fills["ts"].to_list() == [dt.datetime(2025, 2, 14, 5, 1, tzinfo=UTC)]

    class AtRelease(ash.Strategy):
        def on_release(self, events):
            return events.select(submit_ts=pl.col("release_ts"), symbol=pl.lit("BTC"), side=pl.lit("buy"), qty=pl.lit(1.0))

    with pytest.raises(ash.LookAheadError) as info:
        ash.backtest(bars, AtRelease(), calendar=cal)
    assert info.value.column == "submit_ts" and info.value.row == 0


def test_regression_sub_microsecond_release_is_rounded_up():
    # Leak 4 (calendar side): a release at 13:30:00.0000005 became 13:30:00.
    release = pl.Series([T]).dt.cast_time_unit("ns")
    release = pl.select(release + pl.duration(nanoseconds=500)).to_series()
    cal = ash.calendar.validate_calendar(pl.DataFrame({"event_id": ["X"], "kind": ["policy"], "release_ts": release}))
    assert cal["release_ts"][0] == T + dt.timedelta(microseconds=1)


# ----------------------------------------------------------------------------- leak 6


def test_regression_state_on_self_never_crosses_runs():
    # Leak 6: events stored on self in one run were visible in the next; a sweep reused
    # instances across variants.
    class Hoard(ash.Strategy):
        threshold: float = 0.0

        def on_release(self, events):
            self.__dict__.setdefault("hoard", []).extend(events["event_id"].to_list())
            return ash.orders.market(events, symbol="BTC", side="buy", size=float(len(self.hoard)))

    s = Hoard()
    first = ash.backtest(_bars(), s, calendar=_calendar())
    second = ash.backtest(_bars(), s, calendar=_calendar())
    assert "hoard" not in s.__dict__  # the instance passed in is never touched
    assert first.orders.equals(second.orders)
    assert first.orders["qty"].to_list() == [1.0, 2.0]
    grid = ash.sweep(_bars(), Hoard, {"threshold": [0.0, 1.0, 2.0]}, calendar=_calendar())
    assert grid["trades"].n_unique() == 1 and grid["final_equity"].n_unique() == 1


def test_before_release_decision_time_and_view():
    seen = []

    class Early(ash.Strategy):
        decide_before: str = "2h"

        def before_release(self, events):
            seen.append((self.asof.ts, events["decision_ts"][0], self.asof.bars("BTC")["ts"].max()))
            return ash.orders.market(events, symbol="BTC", side="buy", size=1.0, exit_after="90m")

    r = ash.backtest(_bars(), Early(), calendar=_calendar())
    decided = T - dt.timedelta(hours=2)
    assert seen[0][:2] == (decided, decided)
    assert seen[0][2] == decided - dt.timedelta(minutes=1)  # the last bar that closed by then
    assert r.fills["ts"][0] == decided + dt.timedelta(minutes=1)
    assert Early(decide_before="3h").decide_before == "3h"  # annotated: a sweepable parameter
    with pytest.raises(ash.OrdersError):

        class Bad(ash.Strategy):
            def on_release(self, events):
                return [1, 2]

        compile_orders(Bad(), _calendar())


# ----------------------------------------------------------------------------- leak 7


def test_regression_reserve_order_is_dated_when_it_was_announced(real_data):
    # Leak 7: the Strategic Bitcoin Reserve order was dated 6 March UTC (day precision),
    # an interval that ends before the evening-ET announcement: the reaction must fall
    # inside the event's interval [release_ts, known_ts).
    cal = with_publication(ash.calendar.q1_2025_calendar()).filter(pl.col("event_id") == "US-SBR-EO-2025-03-06")
    lo, hi = cal["release_ts"][0], cal["known_ts"][0]
    raw = pl.read_csv(real_data / "btc_5m_futures" / "BTCUSDT-5m-2025-03.csv")
    bars = raw.select(ts=pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC"), volume="volume")
    window = bars.filter(pl.col("ts").is_between(dt.datetime(2025, 3, 5, tzinfo=UTC), dt.datetime(2025, 3, 9, tzinfo=UTC)))
    spike = window.sort("volume", descending=True)["ts"][0]
    assert lo <= spike < hi, (spike, lo, hi)
    assert window["volume"].max() > 8 * window["volume"].median()


# ----------------------------------------------------------------------------- the module's other properties


@examples(ci=40, long=500)
@given(data=st.data())
def test_testing_module_properties_hold_for_the_engine(data):
    market = data.draw(asht.markets(symbols=("BTC", "ETH")))
    orders = data.draw(asht.orders_frames(market.bars))
    config = data.draw(st.fixed_dictionaries({
        "fees": st.sampled_from([0.0, 0.001]), "slippage": st.sampled_from([0.0, 0.0005]),
        "latency": st.sampled_from(["0s", "2s", "90s"]), "init_cash": st.just(1e6),
    }))
    result = ash.backtest(market.bars, orders, **config)
    asht.assert_accounting_identity(result, market.bars)
    asht.assert_fills_within_bars(result, market.bars)
    asht.assert_deterministic(lambda threads=None: ash.backtest_many(market.bars, [orders] * 3, [config] * 3,
                                                                     threads=threads or 2))


def test_accounting_property_catches_a_wrong_equity():
    ts = [T + dt.timedelta(minutes=m) for m in range(5)]
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": 100.0, "high": 105.0, "low": 99.0, "close": [100.0, 101, 102, 103, 104]})
    orders = pl.DataFrame({"submit_ts": [T - dt.timedelta(seconds=1)], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]})
    r = ash.backtest(bars, orders, init_cash=1_000)
    asht.assert_accounting_identity(r, bars)
    r._cache["equity"] = r.equity.with_columns(pl.col("equity") + 1.0)
    with pytest.raises(AssertionError, match="marked positions"):
        asht.assert_accounting_identity(r, bars)


def test_revisions_are_events_of_their_own_and_never_overwrite_a_first_print(real_data):
    import warnings

    from aftershock.calendar import read_calendar, revisions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = read_calendar(real_data / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv")
    rev = revisions(cal)
    nfp = rev.filter(pl.col("indicator") == "NFP")
    assert nfp.height > 30  # payrolls are revised most months
    firsts = cal.select("event_id", pl.col("actual").alias("first"), pl.col("release_ts").alias("first_ts"))
    joined = rev.join(firsts, left_on="revises", right_on="event_id")
    # the revised event carries the first print as its previous, and is public only later
    assert (joined["previous"] == joined["first"]).all()
    assert (joined["release_ts"] > joined["first_ts"]).all()
    both = with_publication(pl.concat([cal, rev], how="diagonal_relaxed"))
    one = rev.row(0, named=True)
    view = as_of(both, one["release_ts"] - dt.timedelta(microseconds=1))
    assert view.filter(pl.col("event_id") == one["revises"])["actual"].item() == one["previous"]
    assert view.filter(pl.col("event_id") == one["event_id"])["actual"].item() is None


@examples(ci=40, long=400)
@given(cal=asht.calendars(max_events=15), minute=st.integers(-60, 5 * 24 * 60), lead=st.sampled_from([0, 1, 3600]))
def test_strategy_view_equals_the_reference_as_of(cal, minute, lead):
    # the sliced view strategies get is the public as_of, in publication order
    from aftershock.trading.strategy import _CalendarIndex

    pub = with_publication(ash.surprises(cal)).sort("known_ts", maintain_order=True)
    at = dt.datetime(2025, 1, 6, tzinfo=UTC) + dt.timedelta(minutes=minute)
    before = at + dt.timedelta(seconds=lead) if lead else None
    ref = as_of(pub, at, before=before)
    us = lambda t: (t - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)  # noqa: E731
    got = _CalendarIndex(pub, ()).view(us(at), us(before) if before else None)
    key = ["known_ts", "event_id"]
    assert got.sort(key).equals(ref.sort(key))
