"""The Rust boundary never panics: whatever frames reach `_engine`, the answer is a
result or an aftershock exception (a panic would surface as PanicException, a
BaseException that is not an AftershockError)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import aftershock as ash
from aftershock import _engine

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def raw_inputs(draw):
    n = draw(st.integers(0, 12))
    n_sym = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=n_sym - 1, max_size=n_sym - 1)))
    bars = pl.DataFrame({
        "ts": draw(arrays(np.int64, n, elements=st.integers(-5, 20))),
        "open": draw(arrays(np.float64, n, elements=floats)),
        "high": draw(arrays(np.float64, n, elements=floats)),
        "low": draw(arrays(np.float64, n, elements=floats)),
        "close": draw(arrays(np.float64, n, elements=floats)),
    })
    offsets = pl.Series("offsets", [0, *cuts, n], dtype=pl.Int64)
    m = draw(st.integers(0, 6))
    ints = lambda lo, hi: draw(arrays(np.int64, m, elements=st.integers(lo, hi)))  # noqa: E731
    flts = lambda: draw(arrays(np.float64, m, elements=floats))  # noqa: E731
    orders = pl.DataFrame({
        "submit_ts": ints(-5, 25),
        "symbol": ints(-1, 3),
        "side": ints(0, 3),
        "qty": flts(),
        "size_type": ints(-1, 4),
        "order_type": ints(-1, 5),
        "limit_price": flts(),
        "stop_price": flts(),
        "tif": ints(-1, 3),
        "expire_ts": ints(-5, 25),
        "reduce_only": ints(0, 1),
        "stop_loss": flts(),
        "take_profit": flts(),
        "trailing_stop": flts(),
        "exit_after": ints(-2, 10),
    })
    config = {
        "init_cash": draw(st.sampled_from([1e4, 0.0, -1.0, float("nan")])),
        "leverage": draw(st.sampled_from([1.0, 3.0, 0.0])),
        "maintenance_margin": draw(st.sampled_from([0.0, 0.3, 0.99])),
        "lot_size": draw(st.sampled_from([0.0, 0.01, float("inf")])),
        "intrabar": draw(st.sampled_from(["ohlc", "olhc", "nearest_first", "pessimistic"])),
        "close_at_end": draw(st.booleans()),
    }
    return (bars, offsets), orders, config, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(raw_inputs())
def test_engine_answers_or_raises_an_aftershock_error(case):
    bars, orders, config, trusted = case
    try:
        out = _engine.simulate(*bars, orders, config, trusted)
    except ash.AftershockError:
        return
    assert set(out) >= {"fills", "trades", "equity", "orders"}
    assert pl.DataFrame(out["orders"]).height == orders.height  # one per order


@settings(max_examples=50, deadline=None)
@given(raw_inputs(), st.integers(1, 4))
def test_simulate_many_never_panics(case, threads):
    bars, orders, config, trusted = case
    try:
        _engine.simulate_many(*bars, [orders, orders], [config, config], threads, trusted)
    except ash.AftershockError:
        pass


@settings(max_examples=100, deadline=None)
@given(raw_inputs(), st.integers(1, 4), st.integers(1, 100))
def test_simulate_many_stats_never_panics(case, threads, day):
    bars, orders, config, trusted = case
    try:
        cols = _engine.simulate_many_stats(*bars, [orders, orders], [config, config], threads, trusted, day, 365.0)
    except ash.AftershockError:
        return
    frame = pl.DataFrame(cols)
    assert frame.height == 2
    assert frame["final_equity"][0] == frame["final_equity"][1] or frame["final_equity"].is_nan().all()
