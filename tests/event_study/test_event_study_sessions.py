"""Event studies on assets that trade in sessions (CME equity futures, NYSE, FX).

The bars here follow a CME Globex schedule (Sunday 18:00 to Friday 17:00 New York time,
halted 17:00-18:00), built by the test itself from zoneinfo, with a known variance per
one-minute return and a much larger one planted on every return that spans a closure.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from aftershock import event_study as es
from aftershock.prices._sessions import is_open, next_open

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
START = datetime(2025, 1, 5, 23, 0, tzinfo=UTC)  # Sunday 18:00 New York: the week's open
SIGMA = 1e-3  # per one-minute return inside a session
SIGMA_GAP = 3e-2  # per return across a daily halt or a weekend


def cme_open(t: datetime) -> bool:
    local = t.astimezone(NY)
    wd, h = local.isoweekday(), local.hour
    if wd == 6:
        return False
    if wd == 7:
        return h >= 18
    if wd == 5:
        return h < 17
    return h != 17


def cme_bars(days: int = 45, seed: int = 0, symbol: str = "NQ") -> pl.DataFrame:
    minutes = [START + timedelta(minutes=i) for i in range(days * 1440)]
    ts = [t for t in minutes if cme_open(t)]
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, SIGMA, len(ts))
    spacing = np.diff([t.timestamp() for t in ts], prepend=ts[0].timestamp() - 60)
    r[spacing > 60] = rng.normal(0.0, SIGMA_GAP, int(np.sum(spacing > 60)))
    close = 20_000 * np.exp(np.cumsum(r))
    return pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")), "symbol": symbol,
                         "open": close, "high": close, "low": close, "close": close})


def calendar(times, precision=None) -> pl.DataFrame:
    cal = pl.DataFrame({
        "event_id": [f"e{i}" for i in range(len(times))], "kind": "macro", "indicator": "CPI_YOY",
        "release_ts": pl.Series(list(times), dtype=pl.Datetime("us", "UTC")), "hawkish_z": np.linspace(-1, 1, len(times)),
    })
    if precision is not None:
        cal = cal.with_columns(pl.Series("time_precision", precision))
    return cal


@pytest.fixture(scope="module")
def bars():
    return cme_bars()


# Tuesdays and Thursdays 13:30 UTC (08:30 New York) from the fifth week on: 30 days of history each.
RELEASES = [datetime(2025, 2, d, 13, 30, tzinfo=UTC) for d in (4, 6, 11, 13, 18)]


def test_planted_session_variance_is_recovered(bars):
    """Only one-bar returns enter the model: the zero-mean variance is the planted
    in-session one, equal to a brute-force mean of squares over the one-minute returns
    of the estimation window, and the left-out gap returns are counted."""
    st = es.study(bars, calendar(RELEASES), windows=["15m"], model="zero_mean", estimation=("-30d", "0"))
    r = st.reactions.sort("release_ts")
    sigma2 = (r["sd"] ** 2 / r["bars"]).to_numpy()
    ts = bars["ts"].dt.epoch("us").to_numpy() + 60_000_000  # close times
    lc = np.log(bars["close"].to_numpy())
    ret, spacing = np.diff(lc), np.diff(ts)
    for k, release in enumerate(RELEASES):
        t = int(release.timestamp() * 1e6)
        # a return belongs to the window when its first price is fresh at the window start
        # (closed less than a bar before it) and its last price closes by the window end
        inside = (ts[:-1] > t - 30 * 86_400_000_000 - 60_000_000) & (ts[1:] <= t)
        # every event's [0, 15m) window is excluded: returns ending in (T_j, T_j + 15m + 1 bar)
        for other in RELEASES:
            o = int(other.timestamp() * 1e6)
            inside &= ~((ts[1:] > o) & (ts[:-1] < o + 15 * 60_000_000))
        one_bar = inside & (spacing == 60_000_000)
        assert r["n_est"][k] == one_bar.sum()
        assert r["n_est_gap"][k] == (inside & (spacing > 60_000_000)).sum() > 20  # 4 weekends, ~20 halts
        assert sigma2[k] == pytest.approx(np.mean(ret[one_bar] ** 2), rel=1e-12)
        n = one_bar.sum()
        assert abs(sigma2[k] / SIGMA**2 - 1) < 4 * math.sqrt(2 / n)
    # with the ~22 gap returns mixed in, the estimate would be off by ten times the tolerance
    mixed = np.mean(ret[(ts[1:] <= int(RELEASES[0].timestamp() * 1e6))] ** 2)
    assert mixed / SIGMA**2 - 1 > 10 * 4 * math.sqrt(2 / n)


def test_rank_and_sign_blocks_never_span_a_gap(bars):
    """A 4h window's blocks (240 one-minute returns back from the estimation end) are
    dropped when they hold a halt or weekend return, or a return of any event's window."""
    st = es.study(bars, calendar(RELEASES), windows=["4h"], model="zero_mean", estimation=("-30d", "0"))
    from aftershock.event_study import _inputs, _reactions
    from aftershock.event_study.returns import SymbolSeries

    s = _inputs.settings_from(["NQ"], ["4h"], "zero_mean", None, estimation=("-30d", "0"), exclude=None, min_estimation=30,
                              bar_length=None, sessions=None, path=None, cov="HC3", rank_blocks=100, kp_bars=500,
                              rank_variance="known", sign_p="blocks", symbols=None)
    ser = SymbolSeries.from_frame("NQ", bars, None)
    rel = np.array([int(t.timestamp() * 1e6) for t in RELEASES])
    res = _reactions.symbol_reactions(ser, None, _reactions.event_clock(rel, np.zeros(5, dtype=np.int64), None), s,
                                      np.array([0], dtype=np.int64))
    ct = ser.close_time
    bad = set(np.flatnonzero(np.diff(ct) > 60_000_000) + 1)
    for t in rel:
        bad |= {j for j in range(1, ct.size) if ct[j] > t and ct[j - 1] < t + 4 * 3_600_000_000}
    dropped = 0
    for k in range(5):
        hi = np.searchsorted(ct, rel[k], side="right") - 1
        for j in range(100):
            rows = range(hi - (j + 1) * 240 + 1, hi - j * 240 + 1)
            assert np.isnan(res.blocks[k, j]) == any(i in bad for i in rows)
            dropped += np.isnan(res.blocks[k, j])
    assert 50 < dropped < 250  # a halt every ~23 h, a block every 4 h
    assert st.tests["rank_z"].is_not_null().all()


def test_a_saturday_release_is_a_gap_reaction_from_friday_close_to_sunday_reopen(bars):
    saturday = datetime(2025, 2, 8, 15, 0, tzinfo=UTC)
    halt = datetime(2025, 2, 11, 22, 30, tzinfo=UTC)  # Tuesday 17:30 New York: daily halt
    cal = calendar([saturday, halt, RELEASES[1]])
    st = es.study(bars, cal, windows=["-1h", "15m", "1d"], model="zero_mean", sessions="cme_equity")

    def row(event, window):
        return st.reactions.filter((pl.col("event_id") == event) & (pl.col("window") == window)).row(0, named=True)

    def close_of_bar_closing_at(t):
        return bars.filter(pl.col("ts") == t - timedelta(minutes=1))["close"].item()

    friday_close = datetime(2025, 2, 7, 22, 0, tzinfo=UTC)  # 17:00 New York
    sunday_open = datetime(2025, 2, 9, 23, 0, tzinfo=UTC)  # 18:00 New York
    g = row("e0", "15m")
    assert g["reason"] == "gap_reaction" and g["gap"] is True
    assert g["start_ts"] == friday_close and g["end_ts"] == sunday_open + timedelta(minutes=15)
    assert g["ret"] == pytest.approx(math.log(close_of_bar_closing_at(sunday_open + timedelta(minutes=15))
                                              / close_of_bar_closing_at(friday_close)), abs=1e-15)
    assert g["car"] == g["ret"] and g["sd"] is None and g["scar"] is None  # no model variance over a closure
    assert g["gaps"] == 1
    d = row("e0", "1d")
    # one day after the reopen is Monday 18:00, the end of the daily halt: the price then
    # is Monday's 17:00 close (a scheduled close is not stale)
    assert d["reason"] == "gap_reaction" and d["end_ts"] == sunday_open + timedelta(days=1, hours=-1)
    pre = row("e0", "-1h")  # the market was closed the whole hour: no bar closes inside it
    assert pre["gap"] is False and pre["reason"] == "below_resolution"
    h = row("e1", "15m")
    assert h["reason"] == "gap_reaction"
    assert h["start_ts"] == datetime(2025, 2, 11, 22, 0, tzinfo=UTC) and h["end_ts"] == datetime(2025, 2, 11, 23, 15, tzinfo=UTC)
    intraday = row("e2", "15m")
    assert intraday["gap"] is False and intraday["reason"] is None and intraday["sd"] is not None
    # the paper table shows gap reactions apart from the intraday ones
    table = st.table("NQ")
    assert table.filter(pl.col("window") == "15m")["gap"].to_list() == [False, True]
    assert table.filter(pl.col("gap") & (pl.col("window") == "15m"))["n"].item() == 2
    assert st.tests.filter(pl.col("gap"))["patell_z"].is_null().all()


def test_without_a_session_calendar_a_closed_market_is_a_gap_not_a_reaction(bars):
    saturday = datetime(2025, 2, 8, 15, 0, tzinfo=UTC)
    st = es.study(bars, calendar([saturday]), windows=["15m"], model="zero_mean")
    row = st.reactions.row(0, named=True)
    assert row["reason"] == "gap_at_start" and row["ret"] is None and row["gap"] is False


def test_nyse_pre_open_release_is_measured_from_the_close_to_after_the_open():
    # NYSE cash bars, 5 minutes, 09:30-16:00 New York, two weeks
    day0 = datetime(2025, 3, 3, tzinfo=NY)  # a Monday
    ts = []
    for d in range(14):
        day = day0 + timedelta(days=d)
        if day.isoweekday() > 5:
            continue
        t = day.replace(hour=9, minute=30)
        while t < day.replace(hour=16):
            ts.append(t.astimezone(UTC))
            t += timedelta(minutes=5)
    close = 500 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-3, len(ts))))
    bars = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")), "symbol": "SPY",
                         "open": close, "high": close, "low": close, "close": close})
    release = datetime(2025, 3, 12, 8, 30, tzinfo=NY).astimezone(UTC)  # CPI, an hour before the open
    st = es.study(bars, calendar([release]), windows=["5m", "1h"], model="zero_mean", sessions={"SPY": "nyse"},
                  min_estimation=1, estimation=("-5d", "0"))
    r = st.reactions.filter(pl.col("window") == "5m").row(0, named=True)
    prev_close = datetime(2025, 3, 11, 16, 0, tzinfo=NY).astimezone(UTC)
    opened = datetime(2025, 3, 12, 9, 30, tzinfo=NY).astimezone(UTC)
    assert r["reason"] == "gap_reaction" and r["start_ts"] == prev_close and r["end_ts"] == opened + timedelta(minutes=5)
    at = dict(zip(bars["ts"].to_list(), bars["close"].to_list()))
    assert r["ret"] == pytest.approx(math.log(at[opened] / at[prev_close - timedelta(minutes=5)]), abs=1e-15)


def test_day_and_hour_precision_events():
    """A day-precision event has no reaction shorter than a day (reason imprecise_time);
    longer windows run from the start of the day (surely before the release) to the
    window's length after the end of the day (surely after it); drift windows end at
    the start of the day."""
    every = timedelta(minutes=5)
    n = 20 * 288
    start = datetime(2025, 3, 1, tzinfo=UTC)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 1e-3, n)))
    bars = pl.DataFrame({"ts": pl.Series([start + i * every for i in range(n)], dtype=pl.Datetime("us", "UTC")),
                         "symbol": "BTC", "open": close, "high": close, "low": close, "close": close})
    day = datetime(2025, 3, 12, tzinfo=UTC)
    hour = datetime(2025, 3, 14, 20, tzinfo=UTC)
    cal = calendar([day, hour, day], ["day", "hour", "exact"])
    st = es.study(bars, cal, windows=["-1h", "15m", "1h", "1d", ("-1h", "2h")], model="zero_mean", estimation=("-5d", "0"))

    def row(event, window):
        return st.reactions.filter((pl.col("event_id") == event) & (pl.col("window") == window)).row(0, named=True)

    for w in ("15m", "1h", "-1h..2h"):
        assert row("e0", w)["reason"] == "imprecise_time" and row("e0", w)["ret"] is None
    d = row("e0", "1d")
    assert d["reason"] is None and d["start_ts"] == day and d["end_ts"] == day + timedelta(days=2)
    assert row("e0", "-1h")["end_ts"] == day and row("e0", "-1h")["reason"] is None
    assert row("e1", "15m")["reason"] == "imprecise_time"
    h = row("e1", "1h")
    assert h["start_ts"] == hour and h["end_ts"] == hour + timedelta(hours=2)
    straddle = row("e1", "-1h..2h")
    assert straddle["start_ts"] == hour - timedelta(hours=1) and straddle["end_ts"] == hour + timedelta(hours=3)
    exact = row("e2", "15m")
    assert exact["reason"] is None and exact["end_ts"] == day + timedelta(minutes=15)
    # the imprecise event's whole precision interval is left out of every estimation window
    later = es.study(bars, calendar([day, day + timedelta(days=3)], ["day", "exact"]), windows=["15m"],
                     model="zero_mean", estimation=("-5d", "0"), exclude=("0", "15m"))
    as_exact = es.study(bars, calendar([day, day + timedelta(days=3)], ["exact", "exact"]), windows=["15m"],
                        model="zero_mean", estimation=("-5d", "0"), exclude=("0", "15m"))
    n_day = later.reactions.filter(pl.col("event_id") == "e1")["n_est"].item()
    n_exact = as_exact.reactions.filter(pl.col("event_id") == "e1")["n_est"].item()
    assert n_exact - n_day == 288  # one more day of 5-minute returns removed


def test_bad_time_precision_and_session_names(bars):
    from aftershock.errors import CalendarError, InputError

    with pytest.raises(CalendarError) as err:
        es.study(bars, calendar(RELEASES[:2], ["exact", "minute"]), windows=["15m"])
    assert (err.value.column, err.value.row) == ("time_precision", 1)
    with pytest.raises(InputError) as err:
        es.study(bars, calendar(RELEASES[:2]), windows=["15m"], sessions="lse")
    assert err.value.column == "sessions"
    with pytest.raises(InputError) as err:
        es.study(bars, calendar(RELEASES[:2]), windows=["15m"], sessions={"ES": "cme_equity"})
    assert err.value.column == "sessions"


@pytest.mark.parametrize("session", ["cme_equity", "nyse", "fx"])
def test_session_calendars_against_a_minute_by_minute_reading(session):
    """``is_open``/``next_open`` agree with a plain reading of each schedule, minute by
    minute over three weeks that include both daylight-saving changes' neighbourhood."""
    rules = {
        "cme_equity": cme_open,
        "nyse": lambda t: (lambda l: l.isoweekday() <= 5 and (9, 30) <= (l.hour, l.minute) < (16, 0))(t.astimezone(NY)),
        "fx": lambda t: (lambda l: (l.isoweekday() in (1, 2, 3, 4)) or (l.isoweekday() == 5 and l.hour < 17)
                         or (l.isoweekday() == 7 and l.hour >= 17))(t.astimezone(NY)),
    }
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    minutes = [t0 + timedelta(minutes=7 * i) for i in range(21 * 1440 // 7)]
    us = np.array([int(t.timestamp() * 1e6) for t in minutes])
    expect = np.array([rules[session](t) for t in minutes])
    np.testing.assert_array_equal(is_open(us, session), expect)
    nxt = next_open(us[::37], session)
    for t, n in zip(minutes[::37], nxt):  # t and every opening are on whole minutes
        first = next(u for u in (t + timedelta(minutes=k) for k in range(0, 4 * 1440)) if rules[session](u))
        assert n == int(first.timestamp() * 1e6)
