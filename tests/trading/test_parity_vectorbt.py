"""Parity with vectorbt 1.2 through ``aftershock.trading.signals.from_signals(price="close")``.

Hypothesis draws random walks with gaps, random signal masks (direction mode and
long/short mode) and settings over vectorbt's whole ``from_signals`` domain at its
own defaults: every sizing (``size=inf`` all cash, amounts including 0, values,
percents), fees including negative ones (rebates) and 100 %, fixed fees, slippage
up to 100 %, ``init_cash`` including 0, stop-losses and take-profits including 0,
stops beyond 100 % and infinite ones, trailing stops, accumulation modes, and now
and then vectorbt's non-default stop prices and conflict modes. One case in three
gives settings bar by bar (arrays vectorbt broadcasts along the rows, NaN sizes and
stops included), and one in two fills at the open or at a price series with gaps; one in four
values at another price (``val_price``: the previous close, a fixed price or a series with
unknown bars, forward filled or not), one in five rejects partial fills (``allow_partial=False``,
or per bar), one in ten raises on a rejection (``raise_reject=True``: where vectorbt raises, we
must too). Every fill (bar,
side, size, price, fee), the trade count and the final value must equal vectorbt's
to 1e-9 relative, against both vectorbt's numba engine and its Rust engine
(``engine="rust"``, provided by the ``vectorbt-rust`` package). When vectorbt
refuses a case (a reversal with ``size_type="percent"``), we must refuse it too.

The CI profile runs a few hundred cases; ``AFTERSHOCK_HYPOTHESIS=long`` runs 20,000
seeded ones (docs/vectorbt.md quotes the measured result).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypothesis_profiles import examples

from aftershock.errors import ConfigError, EngineError
from aftershock.trading.signals import from_signals

vbt = pytest.importorskip("vectorbt")

REL = 1e-9
T0 = dt.datetime(2025, 2, 12, 13, 30, tzinfo=dt.timezone.utc)
ENGINES = ("numba", "rust")


def test_vectorbt_rust_engine_is_available():
    from vectorbt._engine import is_rust_available

    assert is_rust_available(), "vectorbt-rust 1.2 must be installed next to vectorbt 1.2"


# ----------------------------------------------------------------------------- data


def walk(seed: int, n: int, gap_prob: float, round_to: int | None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = np.empty(n)
    open_ = np.empty(n)
    price = 100.0
    for i in range(n):
        gap = rng.normal(0, 0.02) if rng.random() < gap_prob else 0.0
        open_[i] = price * math.exp(gap)
        close[i] = open_[i] * math.exp(rng.normal(0, 0.02))
        price = close[i]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    if round_to is not None:
        open_, close = open_.round(round_to), close.round(round_to)
        high = np.maximum(high.round(round_to), np.maximum(open_, close))
        low = np.minimum(low.round(round_to), np.minimum(open_, close))
    return {"open": open_, "high": high, "low": low, "close": close}


def to_bars(ohlc: dict[str, np.ndarray]) -> pl.DataFrame:
    n = len(ohlc["close"])
    return pl.DataFrame(
        {"ts": [T0 + dt.timedelta(minutes=i) for i in range(n)], "symbol": "BTC", **ohlc},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


@st.composite
def cases(draw):
    n = draw(st.one_of(st.integers(2, 60), st.integers(60, 300)))
    ohlc = walk(draw(st.integers(0, 2**32 - 1)), n, draw(st.sampled_from([0.0, 0.3, 1.0])),
                draw(st.sampled_from([None, None, 2, 0])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # sparse masks leave long quiet stretches (the simulator's skip-ahead path), dense ones many conflicts
    density = draw(st.sampled_from([0.01, 0.05, 0.15, 0.4]))
    masks = {k: rng.random(n) < density for k in ("entries", "exits", "short_entries", "short_exits")}
    if not draw(st.booleans()):
        masks["short_entries"] = masks["short_exits"] = None
    sizing = draw(st.sampled_from(["all", "all", "amount", "value", "percent"]))
    init_cash = draw(st.sampled_from([100.0, 100.0, 10_000.0, 0.0]))
    size, size_type = math.inf, "amount"
    if sizing == "amount":
        size = draw(st.sampled_from([0.0, 0.5, 2.0, 50.0]))
    elif sizing == "value":
        size_type, size = "value", draw(st.sampled_from([10.0, 60.0, 1_000.0, math.inf]))
    elif sizing == "percent":
        size_type, size = "percent", draw(st.sampled_from([0.1, 0.5, 1.0]))
    rare = st.integers(0, 9)
    params = dict(
        init_cash=init_cash,
        size=size,
        size_type=size_type,
        direction=draw(st.sampled_from(["longonly", "shortonly", "both"])),
        accumulate=draw(st.sampled_from([False, False, True, "addonly", "removeonly"])),
        fees=draw(st.sampled_from([0.0, 0.0, 0.001, 0.01, -0.001, 1.0])),
        fixed_fees=draw(st.sampled_from([0.0, 0.0, 0.5, -0.5])),
        slippage=draw(st.sampled_from([0.0, 0.0, 0.001, 0.01, 1.0])),
        sl_stop=draw(st.sampled_from([None, None, 0.0, 0.01, 0.03, 0.1, 1.5, math.inf])),
        sl_trail=draw(st.booleans()),
        tp_stop=draw(st.sampled_from([None, None, 0.0, 0.01, 0.05, 0.2, math.inf])),
    )
    # per-bar arrays (vectorbt broadcasts a 1-D array along the rows), one case in three:
    # each setting, with probability one half, becomes an array drawn from its domain
    if draw(st.integers(0, 2)) == 0:
        domains = {
            "size": {"all": [math.inf, math.inf, 2.0, math.nan], "amount": [0.0, 0.5, 2.0, 50.0, math.nan],
                     "value": [10.0, 60.0, 1_000.0, math.nan, math.inf], "percent": [0.1, 0.5, 1.0, math.nan]}[sizing],
            "fees": [0.0, 0.001, 0.01, -0.001, 1.0], "fixed_fees": [0.0, 0.5, -0.5],
            "slippage": [0.0, 0.001, 0.01, 1.0], "sl_stop": [math.nan, 0.0, 0.01, 0.03, 0.1, 1.5, math.inf],
            "tp_stop": [math.nan, 0.0, 0.01, 0.05, 0.2, math.inf], "min_size": [0.0, 1e-8, 0.5],
            "max_size": [math.inf, 1.0, 5.0],
            # powers of two: vectorbt's two engines round other granularities apart (numba
            # with Python's exact x // g, the Rust engine with floor(x / g)); we follow numba
            "size_granularity": [math.nan, 0.25, 1.0],
        }
        for name, values in domains.items():
            if rng.random() < 0.5:
                params[name] = rng.choice(np.array(values), n)
    # the order price: the close (vectorbt's default), the open (vectorbt's -np.inf) or a
    # series within each bar's range with now and then a NaN (no order on that bar)
    kind = draw(st.sampled_from(["close", "close", "open", "series"]))
    if kind == "open":
        params["price"] = "open"
    elif kind == "series":
        series = ohlc["low"] + (ohlc["high"] - ohlc["low"]) * rng.random(n)
        series[rng.random(n) < 0.1] = math.nan
        params["price"] = series
    # the valuation price (value sizes, value reversals, stop_entry_price="valprice"), one case
    # in four: the previous close (-np.inf), a fixed price, or a series of prices around the
    # close with unknown (NaN), order-price (inf) and previous-close (-inf) bars; forward
    # filled or not; and allow_partial=False (or per bar) one case in five
    val_kind = draw(st.sampled_from(["default"] * 6 + ["prev_close", "fixed", "series"]))
    if val_kind == "prev_close":
        params["val_price"] = -np.inf
    elif val_kind == "fixed":
        params["val_price"] = draw(st.sampled_from([50.0, 100.0, 150.0]))
    elif val_kind == "series":
        vp = ohlc["close"] * np.exp(rng.normal(0, 0.05, n))
        pick = rng.random(n)
        vp[pick < 0.15] = math.nan
        vp[(pick >= 0.15) & (pick < 0.2)] = math.inf
        vp[(pick >= 0.2) & (pick < 0.25)] = -math.inf
        params["val_price"] = vp
    if draw(st.integers(0, 4)) == 0:
        params["ffill_val_price"] = False
    partial = draw(st.sampled_from(["default"] * 8 + ["off", "per_bar"]))
    if partial == "off":
        params["allow_partial"] = False
    elif partial == "per_bar":
        params["allow_partial"] = rng.random(n) < 0.5
    # a rejection raises, one case in ten: where vectorbt raises, we must raise too
    if draw(rare) == 0:
        params["raise_reject"] = True
    # vectorbt's non-default modes, now and then
    if draw(rare) == 0:
        params["stop_entry_price"] = draw(st.sampled_from(["close", "price", "fillprice", "valprice"]))
    if draw(rare) == 0:
        params["stop_exit_price"] = draw(st.sampled_from(["stoplimit", "stopmarket", "price", "close"]))
    if draw(rare) == 0:
        params["upon_long_conflict"] = draw(st.sampled_from(["entry", "exit", "adjacent", "opposite"]))
        params["upon_short_conflict"] = draw(st.sampled_from(["entry", "exit", "adjacent", "opposite"]))
    if draw(rare) == 0:
        params["upon_dir_conflict"] = draw(st.sampled_from(["long", "short", "adjacent", "opposite"]))
    if draw(rare) == 0:
        params["upon_opposite_entry"] = draw(st.sampled_from(["ignore", "close", "closereduce", "reverse"]))
    if draw(rare) == 0:
        params["upon_stop_exit"] = draw(st.sampled_from(["closereduce", "reverse", "reversereduce"]))
    if draw(rare) == 0:
        params["upon_stop_update"] = draw(st.sampled_from(["keep", "overridenan"]))
    return ohlc, masks, params


# ----------------------------------------------------------------------------- runners


#: vectorbt's settings that may be given per bar, and their defaults
BROADCAST = {"size": np.inf, "price": np.inf, "fees": 0.0, "fixed_fees": 0.0, "slippage": 0.0, "min_size": 1e-8,
             "max_size": np.inf, "size_granularity": np.nan, "sl_stop": np.nan, "tp_stop": np.nan,
             "val_price": np.inf, "allow_partial": True, "raise_reject": False}


def _as_arrays(kwargs: dict, n: int) -> None:
    """Every per-bar-capable setting as a full array of its value (vectorbt broadcasts a scalar
    along the rows just the same). numba compiles vectorbt's simulator once per combination of
    argument types, for seconds each: with arrays only, the suite compiles it a few times
    instead of once for nearly every case that mixes scalars and arrays."""
    for key, default in BROADCAST.items():
        value = kwargs.get(key, default)
        if not isinstance(value, np.ndarray):
            dtype = bool if key in ("allow_partial", "raise_reject") else np.float64
            kwargs[key] = np.full(n, value, dtype=dtype)
    if isinstance(kwargs.get("accumulate"), (bool, np.bool_)):  # a bool and a mode compile apart too
        kwargs["accumulate"] = "both" if kwargs["accumulate"] else "disabled"


def run_vectorbt(ohlc, masks, params, engine: str):
    """(fills, trade count, final value) from vectorbt, or the exception it raised."""
    kwargs = {k: v for k, v in params.items() if k != "direction"}
    for stop in ("sl_stop", "tp_stop"):
        kwargs[stop] = np.nan if params[stop] is None else params[stop]
    if isinstance(params.get("price"), str):
        kwargs["price"] = {"open": -np.inf, "close": np.inf}[params["price"]]
    if engine == "numba":
        _as_arrays(kwargs, len(ohlc["close"]))
    kwargs.update(entries=masks["entries"], exits=masks["exits"], open=ohlc["open"], high=ohlc["high"],
                  low=ohlc["low"], engine=engine)
    if masks["short_entries"] is not None:
        kwargs.update(short_entries=masks["short_entries"], short_exits=masks["short_exits"])
    else:
        kwargs["direction"] = params["direction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pf = vbt.Portfolio.from_signals(pd.Series(ohlc["close"]), **kwargs)
        except Exception as exc:  # vectorbt refuses the case: we must refuse it too
            return exc
    rec = pf.orders.values
    fills = [(int(r["idx"]), "buy" if r["side"] == 0 else "sell", float(r["size"]), float(r["price"]), float(r["fees"]))
             for r in rec]
    try:
        trades = int(pf.trades.count())
    except ValueError:  # vectorbt's trade records refuse a fill at price 0 (a sale with slippage=1)
        trades = None
    return fills, trades, float(pf.final_value())


def run_ours(ohlc, masks, params):
    bars = to_bars(ohlc)
    try:
        r = from_signals(bars, masks["entries"], masks["exits"], masks["short_entries"], masks["short_exits"],
                         **{"price": "close", **params})
    except (ConfigError, EngineError) as exc:
        return exc
    index = {t: i for i, t in enumerate(bars["ts"].to_list())}
    fills = [(index[ts], side, qty, price, fee) for ts, side, qty, price, fee in
             r.fills.select("ts", "side", "qty", "price", "fee").iter_rows()]
    return fills, r.trades.height, float(r.equity["equity"][-1])


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


def difference(ours, theirs) -> str | None:
    """What differs between two runs (fills, trade count, final value, or a refusal), or None."""
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        if isinstance(theirs, Exception) and isinstance(ours, Exception):
            return None
        return f"{ours!r} vs vectorbt {theirs!r}"
    (mine, n_trades, value), (other, their_trades, their_value) = ours, theirs
    if len(mine) != len(other):
        return f"{len(mine)} fills vs vectorbt's {len(other)}\n{mine}\n{other}"
    for a, b in zip(mine, other):
        if a[:2] != b[:2] or not all(close(x, y) for x, y in zip(a[2:], b[2:])):
            return f"fill {a} vs vectorbt {b}"
    if their_trades is not None and n_trades is not None and n_trades != their_trades:
        return f"{n_trades} trades vs vectorbt's {their_trades}"
    if not close(value, their_value):
        return f"final value {value} vs vectorbt {their_value}"
    return None


def assert_parity(ohlc, masks, params, engines=ENGINES) -> None:
    """Our run equals vectorbt's. Where vectorbt's two engines disagree with each other
    (a granularity rounded apart, a division by zero one raises and the other does not),
    numba, the original, is the oracle."""
    ours = run_ours(ohlc, masks, params)
    runs = {engine: run_vectorbt(ohlc, masks, params, engine) for engine in engines}
    if len(runs) > 1 and difference(runs["rust"], runs["numba"]) is not None:
        runs = {"numba": runs["numba"]}
    for engine, theirs in runs.items():
        problem = difference(ours, theirs)
        assert problem is None, f"{engine}: {problem}"


# ----------------------------------------------------------------------------- the parity suites


@examples(ci=150, long=20_000)
@given(cases())
def test_parity_with_vectorbt_at_its_defaults(case):
    """150 examples per CI run; AFTERSHOCK_HYPOTHESIS=long runs 20,000 seeded ones."""
    ohlc, masks, params = case
    assert_parity(ohlc, masks, params)


# ----------------------------------------------------------------------------- worked examples


def _ohlc(rows):
    arr = np.array(rows, dtype=float)
    return {"open": arr[:, 0], "high": arr[:, 1], "low": arr[:, 2], "close": arr[:, 3]}


def _masks(n, entries=(), exits=()):
    e = np.zeros(n, dtype=bool)
    x = np.zeros(n, dtype=bool)
    e[list(entries)] = True
    x[list(exits)] = True
    return {"entries": e, "exits": x, "short_entries": None, "short_exits": None}


BASE = dict(init_cash=10_000.0, size=math.inf, size_type="amount", accumulate=False, direction="longonly",
            fees=0.0, fixed_fees=0.0, slippage=0.0, sl_stop=None, sl_trail=False, tp_stop=None)


def test_all_in_with_fees_sizes_like_vectorbt():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 101, 103)])
    params = {**BASE, "fees": 0.01, "fixed_fees": 2.0, "slippage": 0.005}
    assert_parity(ohlc, _masks(3, [0], [2]), params)
    fills, _, _ = run_ours(ohlc, _masks(3, [0], [2]), params)
    price = 100 * 1.005
    assert fills[0][2] == pytest.approx((10_000 - 2.0) / (price * 1.01), rel=1e-12)


def test_stop_loss_fills_at_level_and_gap_at_open_like_vectorbt():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 100.5, 96, 97), (99, 100, 98, 99), (99, 99, 90, 91)])
    assert_parity(ohlc, _masks(4, [0, 2]), {**BASE, "sl_stop": 0.02})
    fills, _, _ = run_ours(ohlc, _masks(4, [0, 2]), {**BASE, "sl_stop": 0.02})
    assert [f[3] for f in fills] == [100.0, 98.0, 99.0, 97.02]


def test_no_stop_on_the_entry_bar_and_signal_ignored_on_stop_bar():
    # the entry bar's own low is below the stop level (it came before the close);
    # bar 1 stops out and its entry signal is ignored, as in vectorbt
    ohlc = _ohlc([(100, 101, 90, 100), (100, 100, 94, 96), (96, 97, 95, 96)])
    params = {**BASE, "sl_stop": 0.05}
    assert_parity(ohlc, _masks(3, [0, 1]), params)
    fills, _, _ = run_ours(ohlc, _masks(3, [0, 1]), params)
    assert [(f[0], f[1], f[3]) for f in fills] == [(0, "buy", 100.0), (1, "sell", 95.0)]


def test_reversal_with_direction_both():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 101, 103), (103, 104, 100, 101)])
    params = {**BASE, "direction": "both", "fees": 0.002}
    assert_parity(ohlc, _masks(4, [0, 3], [2]), params)


def test_accumulate_adds_and_removes_size():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 101, 103), (103, 104, 100, 101)])
    params = {**BASE, "size": 2.0, "accumulate": True}
    assert_parity(ohlc, _masks(4, [0, 1], [3]), params)
    fills, _, _ = run_ours(ohlc, _masks(4, [0, 1], [3]), params)
    assert [(f[0], f[1], f[2]) for f in fills] == [(0, "buy", 2.0), (1, "buy", 2.0), (3, "sell", 2.0)]


# ------------------------------------------- cases where the orders-frame compiler used to differ


def test_take_profit_without_slippage_at_the_default_stoplimit():
    """vectorbt's default stop exit (``stoplimit``) fills the take-profit at its level with no
    slippage; ``stopmarket`` slips it. Both now match."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 107, 99, 105)])
    for exit_price, factor in (("stoplimit", 1.0), ("stopmarket", 0.99)):
        params = {**BASE, "tp_stop": 0.05, "slippage": 0.01, "stop_exit_price": exit_price}
        assert_parity(ohlc, _masks(2, [0]), params)
        fills, _, _ = run_ours(ohlc, _masks(2, [0]), params)
        # the level is measured from the close (stop_entry_price="close"), not the slipped fill
        assert fills[1][3] == pytest.approx(100 * 1.05 * factor, rel=1e-12)


def test_stop_loss_tested_over_the_whole_bar_before_the_take_profit():
    """A bar opening above the take-profit that later trades through the stop: vectorbt (and we)
    fill the stop-loss, since the stop is tested over the whole bar first."""
    ohlc = _ohlc([(100, 101, 99, 100), (110, 111, 90, 95)])
    params = {**BASE, "sl_stop": 0.05, "tp_stop": 0.05}
    assert_parity(ohlc, _masks(2, [0]), params)
    fills, _, _ = run_ours(ohlc, _masks(2, [0]), params)
    assert fills[1][3] == pytest.approx(95.0, rel=1e-12)


def test_trailing_peak_raised_once_per_bar_after_the_checks():
    """Bar 1 runs to 110 and closes at 104: its check uses the entry peak (100 -> 95), then the
    peak rises to 110, and bar 2 opens at 103 <= 104.5: a stop at the open, as in vectorbt."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 110, 100, 104), (103, 104, 102, 103)])
    assert_parity(ohlc, _masks(3, [0]), {**BASE, "sl_stop": 0.05, "sl_trail": True})
    r = from_signals(to_bars(ohlc), _masks(3, [0])["entries"], None, tsl_stop=0.05, price="close")
    assert r.fills.select("reason", "price").rows()[1] == ("trailing_stop", 103.0)


def test_short_under_water_bought_back_as_far_as_the_cash_goes():
    """A short whose exit costs more than the cash: vectorbt buys back what the cash covers and
    stays short with the rest."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 400, 99, 390), (390, 391, 380, 385), (385, 386, 380, 382)])
    masks = {"entries": np.array([True, False, False, False]), "exits": np.array([False, False, True, False]),
             "short_entries": None, "short_exits": None}
    params = {**BASE, "direction": "shortonly", "init_cash": 100.0}
    assert_parity(ohlc, masks, params)
    r = from_signals(to_bars(ohlc), masks["entries"], masks["exits"], direction="shortonly", init_cash=100.0,
                     price="close")
    assert r.trades.filter(pl.col("status") == "open").height == 1


@pytest.mark.parametrize("params", [
    dict(sl_stop=math.inf, tp_stop=math.inf),
    dict(sl_stop=3.0, direction="shortonly"),
    dict(size=0.0),
    dict(fees=1.0),
    dict(fees=-0.01, fixed_fees=-1.0),
    dict(slippage=1.0, direction="both"),
    dict(init_cash=0.0),
])
def test_settings_vectorbt_accepts(params):
    ohlc = _ohlc([(100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 97, 98), (98, 120, 97, 110), (110, 111, 50, 60)])
    assert_parity(ohlc, _masks(5, [0, 3], [2]), {**BASE, **params})


def test_percent_reversal_is_refused_like_vectorbt():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 101, 103)])
    params = {**BASE, "size": 0.5, "size_type": "percent", "direction": "both"}
    assert isinstance(run_vectorbt(ohlc, _masks(3, [0], [1]), params, "numba"), Exception)
    assert isinstance(run_ours(ohlc, _masks(3, [0], [1]), params), ConfigError)


def test_value_sizes_convert_at_the_valuation_price():
    """``size=60`` in value at bar 1 (close 120): the order price buys 0.5, vectorbt's previous
    close (``val_price=-np.inf``, 100) 0.6, a fixed valuation price of 150 buys 0.4."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 121, 99, 120), (120, 121, 119, 120)])
    masks = _masks(3, [1], [2])
    for val_price, qty in ((None, 0.5), (-np.inf, 0.6), (150.0, 0.4)):
        params = {**BASE, "size": 60.0, "size_type": "value"}
        if val_price is not None:
            params["val_price"] = val_price
        assert_parity(ohlc, masks, params)
        fills, _, _ = run_ours(ohlc, masks, params)
        assert fills[0][:3] == (1, "buy", pytest.approx(qty, rel=1e-12))


def test_an_unknown_valuation_price_is_forward_filled_or_ignores_value_orders():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 121, 99, 120), (120, 121, 119, 120)])
    masks = _masks(3, [1], [2])
    params = {**BASE, "size": 60.0, "size_type": "value", "val_price": np.array([100.0, np.nan, 120.0])}
    assert_parity(ohlc, masks, params)
    assert run_ours(ohlc, masks, params)[0][0][2] == pytest.approx(0.6, rel=1e-12)  # the last known, 100
    params["ffill_val_price"] = False
    assert_parity(ohlc, masks, params)
    assert run_ours(ohlc, masks, params)[0] == []  # no valuation price: vectorbt ignores the order


def test_allow_partial_false_rejects_what_cannot_fill_in_full():
    """100 of cash at 100 buys one unit: an order for two is cut to one, or rejected (and the
    exit then has nothing to close); per bar, bar 0 rejects and bar 1 allows the cut; a
    ``max_size`` cut is rejected too, even of ``size=inf``, which the cash alone never makes partial."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 101, 99, 100), (110, 111, 109, 110), (110, 111, 109, 110)])
    base = {**BASE, "init_cash": 100.0, "size": 2.0}
    fills = {}
    for allow in (True, False, np.array([False, True, True, True])):
        assert_parity(ohlc, _masks(4, [0, 1], [3]), {**base, "allow_partial": allow})
        fills[str(allow)] = run_ours(ohlc, _masks(4, [0, 1], [3]), {**base, "allow_partial": allow})[0]
    assert [f[:3] for f in fills["True"]] == [(0, "buy", 1.0), (3, "sell", 1.0)]
    assert fills["False"] == []
    assert [f[:3] for f in fills[str(np.array([False, True, True, True]))]] == [(1, "buy", 1.0), (3, "sell", 1.0)]
    capped = {**BASE, "init_cash": 1_000.0, "max_size": 5.0, "allow_partial": False}
    assert_parity(ohlc, _masks(4, [0], [3]), capped)
    # all the cash buys 10 units, above max_size: rejected, as vectorbt checks max_size before
    # exempting size=inf
    assert run_ours(ohlc, _masks(4, [0], [3]), capped)[0] == []
    everything = {**BASE, "init_cash": 1_000.0, "allow_partial": False}
    assert_parity(ohlc, _masks(4, [0], [3]), everything)
    assert run_ours(ohlc, _masks(4, [0], [3]), everything)[0][0][2] == pytest.approx(10.0, rel=1e-12)


def test_raise_reject_raises_where_vectorbt_raises():
    """With ``raise_reject=True`` a rejected order raises (vectorbt: ``RejectedOrderError``;
    aftershock: a ``ConfigError`` naming ``raise_reject`` and the row); orders that fill or
    are merely ignored do not."""
    ohlc = _ohlc([(100, 101, 99, 100), (100, 101, 99, 100), (110, 111, 109, 110), (110, 111, 109, 110)])
    partial = {**BASE, "init_cash": 100.0, "size": 2.0, "allow_partial": False, "raise_reject": True}
    assert isinstance(run_vectorbt(ohlc, _masks(4, [0], [3]), partial, "numba"), Exception)
    with pytest.raises(ConfigError, match="row 0.*in part.*raise_reject"):
        from_signals(to_bars(ohlc), _masks(4, [0])["entries"], None, price="close",
                     **{k: v for k, v in partial.items() if k not in ("direction", "sl_stop", "tp_stop")})
    no_cash = {**BASE, "init_cash": 100.0, "size": 1.0, "accumulate": True, "raise_reject": True}
    assert_parity(ohlc, _masks(4, [0, 1, 2]), no_cash)  # the third buy finds no cash: both raise
    assert isinstance(run_ours(ohlc, _masks(4, [0, 1, 2]), no_cash), ConfigError)
    fine = {**BASE, "init_cash": 100.0, "size": 1.0, "raise_reject": True}
    assert_parity(ohlc, _masks(4, [0, 1], [3]), fine)  # an entry while long is ignored, not rejected
    assert len(run_ours(ohlc, _masks(4, [0, 1], [3]), fine)[0]) == 2


def test_worked_examples_match_both_vectorbt_engines():
    ohlc = _ohlc([(100, 101, 99, 100), (100, 100.5, 96, 97), (99, 100, 98, 99), (99, 99, 90, 91)])
    assert_parity(ohlc, _masks(4, [0, 2], [3]), {**BASE, "sl_stop": 0.02, "fees": 0.001}, engines=ENGINES)


# --------------------------------------------------------- next_open against vectorbt, without stops


@pytest.mark.parametrize("seed", range(40))
def test_next_open_is_vectorbt_at_the_next_open_without_stops(seed):
    """Without stops, ``price="next_open"`` is vectorbt given the open as its price and the
    masks shifted one bar later: the same decisions, filled one bar on."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    ohlc = walk(int(rng.integers(0, 2**32 - 1)), n, 0.5, None)
    masks = {k: rng.random(n) < 0.15 for k in ("entries", "exits", "short_entries", "short_exits")}
    if seed % 2:
        masks["short_entries"] = masks["short_exits"] = None
    sizing = [dict(), dict(size=1.5), dict(size=300.0, size_type="value")][seed % 3]
    params = dict(init_cash=1_000.0, fees=[0.0, 0.002][seed % 2], slippage=[0.0, 0.001, 0.01][seed % 3],
                  direction=["longonly", "shortonly", "both"][seed % 3], accumulate=seed % 4 == 0, **sizing)
    ours = from_signals(to_bars(ohlc), masks["entries"], masks["exits"], masks["short_entries"],
                        masks["short_exits"], price="next_open", **params)
    shifted = {k: None if v is None else np.concatenate([[False], v[:-1]]) for k, v in masks.items()}
    kwargs = {k: v for k, v in params.items() if k != "direction"}
    if shifted["short_entries"] is None:
        kwargs["direction"] = params["direction"]
        signals = (shifted["entries"], shifted["exits"])
    else:
        signals = (shifted["entries"], shifted["exits"], shifted["short_entries"], shifted["short_exits"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = vbt.Portfolio.from_signals(pd.Series(ohlc["close"]), *signals, price=ohlc["open"], **kwargs)
    rec = pf.orders.values
    fills = ours.fills
    assert fills.height == len(rec)
    index = {t: i for i, t in enumerate(to_bars(ohlc)["ts"].to_list())}
    assert [index[t] for t in fills["ts"].to_list()] == rec["idx"].tolist()
    for mine, theirs in (("qty", "size"), ("price", "price"), ("fee", "fees")):
        np.testing.assert_allclose(fills[mine].to_numpy(), rec[theirs], rtol=1e-9, atol=1e-12)
    assert math.isclose(ours.final_equity, pf.final_value(), rel_tol=1e-9, abs_tol=1e-9)


# ------------------------------------------------- several symbols, grouped, with and without shared cash


@pytest.mark.parametrize("seed", range(40))
def test_several_symbols_in_one_group_match_vectorbt(seed):
    """vectorbt's ``group_by=True`` over a wide frame, ``cash_sharing`` four cases in five, at its
    default call sequence (column order), with valuation prices and ``allow_partial=False`` in about
    half the cases: every fill of every column and the group's final value."""
    rng = np.random.default_rng(1000 + seed)
    n, k = int(rng.integers(5, 120)), int(rng.integers(1, 5))
    symbols = [f"S{j}" for j in range(k)]
    ohlcs = {s: walk(seed * 7 + j, n, 0.5, None) for j, s in enumerate(symbols)}
    ts = [T0 + dt.timedelta(minutes=i) for i in range(n)]
    bars = pl.concat([pl.DataFrame({"ts": ts, "symbol": s, **o}, schema_overrides={"ts": pl.Datetime("us", "UTC")})
                      for s, o in ohlcs.items()])
    density = rng.choice([0.05, 0.15, 0.4])
    entries = {s: rng.random(n) < density for s in symbols}
    exits = {s: rng.random(n) < density for s in symbols}
    sharing = bool(rng.random() < 0.8)
    direction = str(rng.choice(["longonly", "shortonly", "both"]))
    kw = dict(init_cash=float(rng.choice([100.0, 1000.0])), fees=float(rng.choice([0, 0.001, 0.01])),
              slippage=float(rng.choice([0, 0.001])))
    sizing = rng.choice(["all", "amount", "value", "percent"])
    if sizing == "amount":
        kw["size"] = float(rng.choice([0.5, 2.0, 10.0]))
    elif sizing == "value":
        kw.update(size=float(rng.choice([50.0, 300.0])), size_type="value")
    elif sizing == "percent":
        kw.update(size=float(rng.choice([0.3, 1.0])), size_type="percent")
    if rng.random() < 0.5:
        kw["sl_stop"] = float(rng.choice([0.01, 0.03]))
    if rng.random() < 0.3:
        kw["tp_stop"] = float(rng.choice([0.02, 0.05]))
    if rng.random() < 0.3:
        kw["sl_trail"] = True
    if rng.random() < 0.3:
        kw["accumulate"] = True
    per_bar = {}
    if rng.random() < 0.5:  # a per-bar fee schedule per symbol
        per_bar["fees"] = {s: rng.choice([0.0, 0.002, 0.01], n) for s in symbols}
        del kw["fees"]
    open_price = bool(rng.random() < 0.5)
    # the valuation price per symbol (the previous close, or a series around the close with
    # unknown and order-price bars), forward filled or not, and allow_partial=False, scalar or per bar
    valuation = rng.choice(["default", "default", "prev_close", "series"])
    if valuation == "prev_close":
        kw["val_price"] = -np.inf
    elif valuation == "series":
        per_bar["val_price"] = {}
        for s in symbols:
            vp = ohlcs[s]["close"] * np.exp(rng.normal(0, 0.05, n))
            pick = rng.random(n)
            vp[pick < 0.15] = np.nan
            vp[(pick >= 0.15) & (pick < 0.2)] = np.inf
            per_bar["val_price"][s] = vp
    if valuation != "default" and rng.random() < 0.6:  # where the valuation price sizes the orders
        kw.update(size=float(rng.choice([50.0, 300.0])), size_type="value")
    if rng.random() < 0.25:
        kw["ffill_val_price"] = False
    partial = rng.choice(["default", "default", "off", "per_bar"])
    if partial == "off":
        kw["allow_partial"] = False
    elif partial == "per_bar":
        per_bar["allow_partial"] = {s: rng.random(n) < 0.5 for s in symbols}
    ours = from_signals(bars, entries, exits, direction=direction, price="open" if open_price else "close",
                        cash_sharing=sharing, **kw, **per_bar)
    wide = {key: pd.DataFrame({s: o[key] for s, o in ohlcs.items()}) for key in ("open", "high", "low", "close")}
    extra = {k: pd.DataFrame(v) for k, v in per_bar.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = vbt.Portfolio.from_signals(wide["close"], pd.DataFrame(entries), pd.DataFrame(exits), open=wide["open"],
                                        high=wide["high"], low=wide["low"], direction=direction,
                                        price=-np.inf if open_price else np.inf, group_by=True,
                                        cash_sharing=sharing, **kw, **extra)
    rec = sorted(pf.orders.values.tolist(), key=lambda r: (r[2], r[1]))  # (id, col, idx, size, price, fees, side)
    index = {t: i for i, t in enumerate(bars["ts"].unique(maintain_order=True).to_list())}
    mine = [(index[t], symbols.index(s), q, p, f) for t, s, q, p, f in
            ours.fills.select("ts", "symbol", "qty", "price", "fee").iter_rows()]
    theirs = [(r[2], r[1], r[3], r[4], r[5]) for r in rec]
    assert len(mine) == len(theirs), f"{len(mine)} fills vs vectorbt's {len(theirs)}"
    for a, b in zip(mine, theirs):
        assert a[:2] == b[:2] and all(close(x, y) for x, y in zip(a[2:], b[2:])), f"fill {a} vs vectorbt {b}"
    assert close(ours.final_equity, float(pf.final_value())), (ours.final_equity, float(pf.final_value()))
