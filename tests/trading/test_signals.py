"""``aftershock.trading.signals.from_signals``: the orders it compiles and its look-ahead-free default.

Parity with vectorbt (``price="close"``) lives in ``test_parity_vectorbt.py``.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from aftershock.trading.results import STATS_DOC, SWEEP_STATS
from aftershock.errors import ConfigError, InputError
from aftershock.trading.signals import from_signals

T0 = dt.datetime(2025, 3, 12, 12, 30, tzinfo=dt.timezone.utc)


def bars_from(rows, symbol="BTC", start=T0):
    arr = np.array(rows, dtype=float)
    return pl.DataFrame(
        {"ts": [start + dt.timedelta(minutes=i) for i in range(len(rows))], "symbol": symbol,
         "open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3]},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


BARS = bars_from([(100, 101, 99, 100), (101, 103, 100, 102), (103, 104, 101, 102), (102, 103, 97, 99), (98, 99, 97, 98)])


def mask(n, on):
    m = np.zeros(n, dtype=bool)
    m[list(on)] = True
    return m


def test_next_open_fills_at_the_following_bar_open():
    r = from_signals(BARS, mask(5, [0]), mask(5, [2]), size=1.0)
    assert r.fills.select("ts", "side", "price").rows() == [
        (T0 + dt.timedelta(minutes=1), "buy", 101.0),
        (T0 + dt.timedelta(minutes=3), "sell", 102.0),
    ]


def test_close_price_fills_at_the_signal_bar_close():
    r = from_signals(BARS, mask(5, [0]), mask(5, [2]), size=1.0, price="close")
    assert r.fills.select("ts", "price").rows() == [(T0, 100.0), (T0 + dt.timedelta(minutes=2), 102.0)]


def test_signal_on_last_bar_is_dropped_in_next_open_mode():
    r = from_signals(BARS, mask(5, [4]), None, size=1.0)
    assert r.fills.height == 0


def test_all_in_default_uses_all_cash_net_of_fees():
    r = from_signals(BARS, mask(5, [0]), None, fees=0.01, fixed_fees=1.0, init_cash=1_000.0)
    qty = r.fills["qty"].item()
    assert qty == pytest.approx((1_000.0 - 1.0) / (101.0 * 1.01), rel=1e-12)
    assert r.equity["cash"][-1] == pytest.approx(0.0, abs=1e-9)


def test_exit_while_flat_and_entry_while_long_do_nothing():
    r = from_signals(BARS, mask(5, [0, 1]), mask(5, []), size=1.0, price="close")
    assert r.fills["qty"].to_list() == [1.0]
    r = from_signals(BARS, mask(5, []), mask(5, [1]), size=1.0, price="close")
    assert r.fills.height == 0


def test_entry_and_exit_on_one_bar_cancel_out():
    r = from_signals(BARS, mask(5, [0, 2]), mask(5, [2]), size=1.0, price="close")
    assert r.fills.select("side").to_series().to_list() == ["buy"]


def test_direction_both_reverses_with_size_added():
    r = from_signals(BARS, mask(5, [0]), mask(5, [2]), size=2.0, direction="both", price="close")
    assert r.fills.select("side", "qty").rows() == [("buy", 2.0), ("sell", 4.0)]
    assert r.trades.select("direction", "status").rows() == [("long", "closed"), ("short", "open")]


def test_shortonly_entries_sell():
    r = from_signals(BARS, mask(5, [0]), mask(5, [3]), size=1.0, direction="shortonly", price="close")
    assert r.fills.select("side", "price").rows() == [("sell", 100.0), ("buy", 99.0)]


def test_short_masks_switch_to_long_short_mode():
    r = from_signals(BARS, mask(5, [0]), mask(5, [1]), mask(5, [2]), mask(5, [4]), size=1.0, price="close")
    assert r.fills.select("side", "price").rows() == [("buy", 100.0), ("sell", 102.0), ("sell", 102.0), ("buy", 98.0)]


def test_stop_exit_then_re_entry_is_resolved_against_the_real_position():
    # the stop closes the long during bar 3, so bar 3's entry signal opens a fresh long at bar 4's open
    r = from_signals(BARS, mask(5, [0, 3]), None, size=1.0, sl_stop=0.03)
    assert r.fills.select("side", "price", "reason").rows() == [
        ("buy", 101.0, "entry"),
        ("sell", 101.0 * 0.97, "stop_loss"),
        ("buy", 98.0, "entry"),
    ]


def test_accumulate_adds_to_the_position():
    r = from_signals(BARS, mask(5, [0, 1]), mask(5, [3]), size=1.0, accumulate=True, price="close")
    assert r.fills.select("side", "qty").rows() == [("buy", 1.0), ("buy", 1.0), ("sell", 1.0)]
    assert r.trades.filter(pl.col("status") == "open")["qty"].item() == 1.0


def test_notional_size_converts_at_the_order_price_before_slippage():
    r = from_signals(BARS, mask(5, [0]), None, size=500.0, size_type="notional", slippage=0.01, price="close")
    assert r.fills["qty"].item() == pytest.approx(5.0, rel=1e-12)
    assert r.fills["price"].item() == pytest.approx(101.0, rel=1e-12)


def test_signals_from_columns_and_series():
    bars = BARS.with_columns(go=pl.Series(mask(5, [0])), stop=pl.Series(mask(5, [2])))
    a = from_signals(bars, "go", "stop", size=1.0)
    b = from_signals(BARS, pl.Series(mask(5, [0])), pl.Series(mask(5, [2])), size=1.0)
    assert a.fills.equals(b.fills)


def test_one_symbol_of_many():
    other = bars_from([(10, 11, 9, 10)] * 5, symbol="ETH")
    both = pl.concat([BARS, other]).sort("ts", maintain_order=True)
    r = from_signals(both, mask(5, [0]), mask(5, [2]), size=1.0, symbol="BTC")
    assert r.fills["symbol"].unique().to_list() == ["BTC"]
    with pytest.raises(ConfigError, match="symbol"):
        from_signals(both, mask(5, [0]), None)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(entries=np.ones(4, dtype=bool)), InputError, "4 values"),
        (dict(entries=np.ones(5)), InputError, "boolean"),
        (dict(entries=pl.Series([True, None, False, False, False])), InputError, "null"),
        (dict(entries=mask(5, [0]), direction="sideways"), ConfigError, "direction"),
        (dict(entries=mask(5, [0]), price="vwap"), ConfigError, "price"),
        (dict(entries=mask(5, [0]), size=-1.0), ConfigError, "size"),
        (dict(entries=mask(5, [0]), size=math.inf, size_type="percent"), ConfigError, "size=inf"),
        (dict(entries=mask(5, [0]), fees=np.full(4, 0.01)), ConfigError, "4 values"),
        (dict(entries=mask(5, [0]), fees=np.array([0.0, 0.0, math.nan, 0.0, 0.0])), ConfigError, "row 2"),
        (dict(entries=mask(5, [0]), sl_stop="no_such_column"), ConfigError, "no column"),
        (dict(entries={"BTC": mask(5, [0])}, exits={"ETH": mask(5, [1])}), ConfigError, "exits"),
        (dict(entries={"BTC": mask(5, [0])}, tp_stop=[0.01, 0.02]), ConfigError, "sweep"),
        (dict(entries=mask(5, [0]), cash_sharing=True), ConfigError, "cash_sharing"),
        (dict(entries=mask(5, [0]), sl_stop=-0.01), ConfigError, "sl_stop"),
        (dict(entries=mask(5, [0]), sl_stop=0.02, tsl_stop=0.02), ConfigError, "tsl_stop"),
        (dict(entries=mask(5, [0]), stop_entry_price="close"), ConfigError, "stop_entry_price"),
        (dict(entries=mask(5, [0]), upon_opposite_entry="flip"), ConfigError, "upon_opposite_entry"),
        (dict(entries=mask(5, [0]), fees=math.nan), ConfigError, "fees"),
        (dict(entries=mask(5, [0]), tp_stop=[0.01, "x"]), ConfigError, "tp_stop"),
        (dict(entries=mask(5, [0]), tp_stop=[]), ConfigError, "tp_stop"),
        (dict(entries=mask(5, [0]), tp_stop=[0.01, 0.02], variant=2), ConfigError, "variant"),
        (dict(entries=mask(5, [0]), variant=0), ConfigError, "variant"),
        # per-bar fees are checked like the scalar (> -1), naming the row
        (dict(entries=mask(5, [0]), fees=-1.0), ConfigError, "fees"),
        (dict(entries=mask(5, [0]), fees=np.array([0.0, 0.0, 0.0, -1.0, 0.0])), ConfigError, "fees.*row 3"),
        (dict(entries={"BTC": mask(5, [0])}, fees={"BTC": np.array([0.0, -2.0, 0.0, 0.0, 0.0])}), ConfigError,
         "fees.*row 1"),
        (dict(entries=mask(5, [0]), price="close", val_price=0.0), ConfigError, "val_price"),
        (dict(entries=mask(5, [0]), price="close", val_price=np.array([1.0, 1, -1, 1, 1])), ConfigError,
         "val_price.*row 2"),
        (dict(entries=mask(5, [0]), price="close", val_price=[1.0, 2.0]), ConfigError, "val_price"),
        (dict(entries=mask(5, [0]), val_price=100.0), ConfigError, "next_open"),
        (dict(entries=mask(5, [0]), val_price=np.full(5, 100.0)), ConfigError, "next_open"),
        (dict(entries=mask(5, [0]), ffill_val_price="yes"), ConfigError, "ffill_val_price"),
        (dict(entries=mask(5, [0]), allow_partial=None), ConfigError, "allow_partial"),
        (dict(entries=mask(5, [0]), raise_reject=np.ones(5, dtype=bool)), ConfigError, "raise_reject"),
        (dict(entries=mask(5, [0]), allow_partial=np.array([1.0, 0, 2, 0, 0])), ConfigError, "allow_partial.*row 2"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        from_signals(BARS, **kwargs)


def test_engine_settings_are_refused():
    # the signal simulator has vectorbt's cash model, not the orders engine's settings
    with pytest.raises(TypeError, match="latency"):
        from_signals(BARS, mask(5, [0]), None, size=1.0, latency="90s")


# ----------------------------------------------------------------------------- sweeps


def walk_bars(n, seed, minutes=7):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    ts = [T0 + dt.timedelta(minutes=minutes * i) for i in range(n)]
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": open_, "high": high, "low": low, "close": close},
                        schema_overrides={"ts": pl.Datetime("us", "UTC")})
    return bars, rng.random(n) < 0.04, rng.random(n) < 0.04


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))
    return a == b


def test_sweep_rows_with_no_starting_cash_match_stats():
    # vectorbt accepts init_cash=0: nothing can be bought, returns are undefined (NaN)
    bars, entries, exits = walk_bars(400, 6)
    frame = from_signals(bars, entries, exits, price="close", init_cash=[0.0, 1_000.0], sl_stop=[0.01, 0.02])
    for row in frame.iter_rows(named=True):
        stats = from_signals(bars, entries, exits, price="close", init_cash=row["init_cash"],
                             sl_stop=row["sl_stop"]).stats()
        bad = {k: (row[k], stats[k]) for k in STATS_DOC if not same(row[k], stats[k])}
        assert not bad, bad
    assert math.isnan(frame["total_return"][0]) and frame["trades"][0] == 0


@pytest.mark.parametrize(("price", "trail"), [("close", False), ("next_open", False), ("close", True)])
def test_each_sweep_row_is_the_stats_of_that_variant_run_alone(price, trail):
    bars, entries, exits = walk_bars(2_000, 3)
    grid = dict(sl_stop=[None, 0.01, 0.03], tp_stop=[0.02, math.inf], fees=[0.0, 0.002], slippage=[0.0, 0.001])
    frame = from_signals(bars, entries, exits, direction="both", price=price, threads=2, sl_trail=trail, **grid)
    assert frame.height == 3 * 2 * 2 * 2
    assert frame.columns[:5] == ["variant", "fees", "slippage", "sl_stop", "tp_stop"]
    for row in frame.iter_rows(named=True):
        alone = from_signals(bars, entries, exits, direction="both", price=price, sl_stop=row["sl_stop"],
                             sl_trail=trail, tp_stop=row["tp_stop"], fees=row["fees"], slippage=row["slippage"])
        stats = alone.stats()
        assert list(frame.columns[5:]) == list(SWEEP_STATS)
        bad = {k: (row[k], stats[k]) for k in STATS_DOC if not same(row[k], stats[k])}
        assert not bad, f"variant {row['variant']}: {bad}"
        on_demand = from_signals(bars, entries, exits, direction="both", price=price, sl_trail=trail,
                                 variant=row["variant"], **grid)
        assert on_demand.fills.equals(alone.fills)


def test_sweep_rows_with_conventions_hold_every_stats_figure():
    bars, entries, exits = walk_bars(1_500, 8)
    grid = dict(sl_stop=[None, 0.01], tp_stop=[0.02, math.inf])
    import dataclasses

    from aftershock.trading.stats import AFTERSHOCK

    # a replace of AFTERSHOCK keeps its name: the fields, not the name, choose the path
    renamed = dataclasses.replace(AFTERSHOCK, avg_trade="geometric", profit_factor="returns")
    for conventions in ("aftershock", "backtesting.py", renamed):
        frame = from_signals(bars, entries, exits, direction="both", price="close", fees=0.001,
                             conventions=conventions, **grid)
        assert list(frame.columns[3:]) == list(SWEEP_STATS)
        for row in frame.iter_rows(named=True):
            stats = from_signals(bars, entries, exits, direction="both", price="close", fees=0.001,
                                 variant=row["variant"], **grid).stats(conventions=conventions)
            bad = {k: (row[k], stats[k]) for k in STATS_DOC if not same(row[k], stats[k])}
            assert not bad, f"{conventions} variant {row['variant']}: {bad}"
    # no signal at all: no trade, no drawdown
    quiet = from_signals(bars, np.zeros(bars.height, bool), None, price="close", sl_stop=[0.01, 0.02],
                         conventions="aftershock")
    alone = from_signals(bars, np.zeros(bars.height, bool), None, price="close", sl_stop=0.01).stats()
    row = quiet.row(0, named=True)
    assert row["trades"] == 0 and row["avg_drawdown"] is None
    assert not {k for k in STATS_DOC if not same(row[k], alone[k])}
    with pytest.raises(ConfigError, match="conventions"):
        from_signals(bars, entries, exits, price="close", conventions="aftershock")


def test_sweep_daily_returns_are_the_ones_each_variant_is_scored_on():
    from aftershock.research import overfitting

    bars, entries, exits = walk_bars(3_000, 12)  # 7-minute bars: over 14 days
    grid = dict(sl_stop=[None, 0.01, 0.03], tp_stop=[0.02, 0.05], fees=0.001)
    frame, returns = from_signals(bars, entries, exits, direction="both", price="close", daily_returns=True,
                                  threads=2, **grid)
    assert frame.equals(from_signals(bars, entries, exits, direction="both", price="close", **grid))
    days = pl.date_range(bars["ts"].min().date(), bars["ts"].max().date(), eager=True)
    assert returns.shape == (days.len(), frame.height) and days.len() >= 15 and frame.height == 6
    for i in range(frame.height):
        result = from_signals(bars, entries, exits, direction="both", price="close", variant=i, **grid)
        eq = result.equity.group_by(pl.col("ts").dt.date().alias("day"), maintain_order=True).agg(
            pl.col("equity").last())
        daily = pl.DataFrame({"day": days}).join(eq, on="day", how="left").select(pl.col("equity").forward_fill())
        closes = np.concatenate([[100_000.0], daily["equity"].to_numpy()])
        np.testing.assert_allclose(returns[:, i], np.diff(closes) / closes[:-1], rtol=0, atol=1e-15)
        sharpe = frame["sharpe"][i]
        assert returns[:, i].mean() / returns[:, i].std(ddof=1) * math.sqrt(365) == pytest.approx(sharpe, rel=1e-12)
    of = overfitting(returns, splits=4)
    assert of.best == int(np.argmax(frame["sharpe"].to_numpy())) and 0.0 <= of.pbo <= 1.0
    with pytest.raises(ConfigError, match="daily_returns"):
        from_signals(bars, entries, exits, price="close", sl_stop=0.01, daily_returns=True)
    with pytest.raises(ConfigError, match="daily_returns"):
        from_signals(bars, entries, exits, price="close", sl_stop=[0.01], daily_returns=True,
                     conventions="backtesting.py")


def test_sweep_is_the_product_of_the_lists_in_argument_order():
    bars, entries, exits = walk_bars(300, 4)
    frame = from_signals(bars, entries, exits, size=[1.0, 2.0], tsl_stop=[0.01, 0.02, 0.05], price="close")
    assert frame.select("size", "tsl_stop").rows() == [(s, t) for s in (1.0, 2.0) for t in (0.01, 0.02, 0.05)]
    # a trailing sweep equals sl_stop with sl_trail=True
    trail = from_signals(bars, entries, exits, size=[1.0, 2.0], sl_stop=[0.01, 0.02, 0.05], sl_trail=True, price="close")
    assert frame.drop("tsl_stop").equals(trail.drop("sl_stop"))


def test_sweeps_do_not_depend_on_the_thread_count():
    bars, entries, exits = walk_bars(1_500, 5)
    grid = dict(sl_stop=[0.005, 0.01, 0.02, 0.04], tp_stop=[0.01, 0.02, 0.05], init_cash=[1_000.0, 50_000.0])
    frames = [from_signals(bars, entries, exits, price="close", threads=t, **grid) for t in (1, 2, 5)]
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    assert frames[0]["init_cash"].unique().sort().to_list() == [1_000.0, 50_000.0]


def test_next_open_stop_bar_signals_act_on_the_flat_position():
    # bar 1 stops out intrabar; bar 1's entry signal (at its close) opens a new long at bar 2's open
    bars = bars_from([(100, 101, 99, 100), (100, 100.5, 94, 96), (96, 97, 95, 96), (96, 97, 95, 96)])
    r = from_signals(bars, mask(4, [0, 1]), None, size=1.0, sl_stop=0.05, price="next_open")
    assert r.fills.select("price", "reason").rows() == [(100.0, "entry"), (95.0, "stop_loss"), (96.0, "entry")]


def test_next_open_stops_slip_by_default():
    bars = bars_from([(100, 101, 99, 100), (100, 101, 95, 96), (96, 97, 95, 96)])
    r = from_signals(bars, mask(3, [0]), None, size=1.0, sl_stop=0.02, slippage=0.01)
    entry = 100 * 1.01
    assert r.fills["price"].to_list() == pytest.approx([entry, entry * 0.98 * 0.99], rel=1e-12)
