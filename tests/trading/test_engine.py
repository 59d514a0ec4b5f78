"""The Python face of the engine: encoding, errors, frames and stats, with
hand-computed expectations (rust/engine/tests.rs covers the core scenarios)."""

from __future__ import annotations

import gc
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock import _engine
from aftershock.trading.engine import ENGINE_ORDER_COLUMNS, encode_orders, prepare_bars
from aftershock.trading.results import STATS_DOC

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)


def minutes(k: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=k)


def before(k: int) -> dt.datetime:
    """A decision one microsecond before bar ``k`` opens: bar ``k`` is its first live bar."""
    return minutes(k) - dt.timedelta(microseconds=1)


def make_bars(rows, symbol="BTC", start=0):
    return pl.DataFrame(
        {
            "ts": [minutes(start + k) for k in range(len(rows))],
            "symbol": symbol,
            "open": [r[0] for r in rows],
            "high": [r[1] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[3] for r in rows],
        }
    )


def orders(**cols):
    n = len(next(iter(cols.values())))
    base = {"symbol": ["BTC"] * n, "side": ["buy"] * n, "qty": [1.0] * n}
    base.update(cols)
    return pl.DataFrame(base)


FLAT = [(100.0, 100.0, 100.0, 100.0)] * 5


def test_market_order_with_latency_fills_on_next_bar_open():
    bars = make_bars([(100, 101, 99, 100), (102, 103, 101, 102), (104, 105, 103, 104)])
    r = ash.backtest(bars, orders(submit_ts=[before(0)]), latency="2s")
    assert r.fills["ts"].to_list() == [minutes(1)]
    assert r.fills["price"].to_list() == [102.0]
    r = ash.backtest(bars, orders(submit_ts=[before(0)]), latency=dt.timedelta(0))
    assert r.fills["price"].to_list() == [100.0]


def test_regression_decision_at_a_bar_open_never_fills_at_that_open():
    # Leak 5 of issue 13: with latency 0 an order decided at a release instant filled
    # at the open of the bar starting at that instant, a price that may predate it.
    bars = make_bars([(100, 101, 99, 100), (102, 103, 101, 102), (104, 105, 103, 104)])
    r = ash.backtest(bars, orders(submit_ts=[minutes(0)]))
    assert r.fills["ts"].to_list() == [minutes(1)]
    # a market-on-close order decided at the open fills at that bar's close
    r = ash.backtest(bars, orders(submit_ts=[minutes(0)], order_type=["market_on_close"]))
    assert r.fills.select("ts", "price").row(0) == (minutes(0), 100.0)


def test_regression_sub_microsecond_decisions_are_exact():
    # Leak 4 of issue 13: 13:30:00.000000500 was truncated to 13:30:00 and filled at
    # the open of the 13:30 bar. Bars open on whole microseconds, so "opens strictly
    # after the decision" is exact on the truncated time: floor(s) < b <=> s < b.
    bars = make_bars([(100, 101, 99, 100), (102, 103, 101, 102), (104, 105, 103, 104)])
    base = pl.Series([minutes(0), minutes(1)]).dt.cast_time_unit("ns")
    for offset, first_live in ((500, minutes(1)), (-500, minutes(1)), (1_000, minutes(1))):
        submit = pl.select(base + pl.duration(nanoseconds=offset)).to_series()
        o = orders(submit_ts=[None]).with_columns(submit_ts=submit[0:1] if offset > 0 else submit[1:2])
        assert ash.backtest(bars, o).fills["ts"].to_list() == [first_live], offset


def test_bracket_tag_and_trade_frame():
    bars = make_bars([(100, 100.5, 99.5, 100), (100, 104, 97, 101), (101, 101, 101, 101)])
    o = orders(submit_ts=[before(0)], stop_loss=[0.02], take_profit=[0.03], tag=["CPI-2025-02"])
    r = ash.backtest(bars, o, intrabar="ohlc", fees=0.001)
    fills = r.fills
    assert fills["reason"].to_list() == ["entry", "take_profit"]
    assert fills["tag"].to_list() == ["CPI-2025-02", "CPI-2025-02"]
    t = r.trades.row(0, named=True)
    assert t["exit_reason"] == "take_profit" and t["status"] == "closed"
    assert t["pnl"] == pytest.approx(3.0 - 0.1 - 0.103, rel=1e-12)
    assert t["tag"] == "CPI-2025-02"
    assert t["mfe"] == pytest.approx(0.03)
    assert r.orders["status"].to_list() == ["filled"]


def test_interleaved_symbols_are_grouped_without_touching_input():
    a = make_bars([(100, 100, 100, 100), (110, 110, 110, 110)], "A")
    b = make_bars([(50, 50, 50, 50), (40, 40, 40, 40)], "B")
    bars = pl.concat([a, b]).sort("ts", maintain_order=True)  # A, B, A, B
    assert bars["symbol"].to_list() == ["A", "B", "A", "B"]
    prepared = prepare_bars(bars)
    assert prepared.symbols == ("A", "B")
    assert prepared.arrays["offsets"].tolist() == [0, 2, 4]
    o = pl.DataFrame({"submit_ts": [before(0)] * 2, "symbol": ["A", "B"], "side": ["buy", "buy"], "qty": [50.0, 100.0]})
    r = ash.backtest(bars, o, init_cash=10_000)
    assert r.final_equity == pytest.approx(50 * 110 + 100 * 40)
    assert bars["symbol"].to_list() == ["A", "B", "A", "B"]


def _address(series: pl.Series) -> int:
    """Where a (null-free, numeric) Polars column's values live: NumPy views them in place."""
    return series.to_physical().to_numpy().__array_interface__["data"][0]


def test_grouped_bars_cross_without_copy():
    bars = make_bars(FLAT)
    prepared = prepare_bars(bars)
    # the engine reads the caller's own column memory through the Arrow C stream
    # interface: the address it borrows is the address of the frame's values
    seen = _engine.column_addresses(prepared.columns)
    for name in ("ts", "open", "high", "low", "close"):
        assert seen[name] == _address(bars[name]), name
    assert np.shares_memory(prepared.arrays["close"], bars["close"].to_numpy())


def test_orders_frame_crosses_without_copy():
    bars = make_bars(FLAT)
    o = pl.DataFrame({"submit_ts": [before(0)], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]})
    _, encoded = encode_orders(o, ("BTC",))
    seen = _engine.column_addresses(encoded)
    assert set(seen) == set(ENGINE_ORDER_COLUMNS)
    for name in ENGINE_ORDER_COLUMNS:
        assert seen[name] == _address(encoded[name]), name
    # an orders frame in several chunks still runs (gathered once on the way in)
    r = ash.backtest(bars, pl.concat([o, o], rechunk=False), init_cash=10_000)
    assert r.fills.height == 2


def test_numeric_side_and_percent_equity():
    bars = make_bars(FLAT)
    o = pl.DataFrame({"submit_ts": [before(0)], "symbol": ["BTC"], "side": [-1.0], "qty": [0.5], "size_type": ["percent_equity"]})
    r = ash.backtest(bars, o, init_cash=10_000)
    assert r.fills["side"].to_list() == ["sell"]
    assert r.fills["qty"].to_list() == [50.0]


@pytest.mark.parametrize(
    "change, column, row",
    [
        (lambda o: o.with_columns(symbol=pl.Series(["BTC", "DOGE"])), "symbol", 1),
        (lambda o: o.with_columns(side=pl.Series(["buy", "hold"])), "side", 1),
        (lambda o: o.with_columns(qty=pl.Series([1.0, -2.0])), "qty", 1),
        (lambda o: o.with_columns(qty=pl.Series([float("nan"), 1.0])), "qty", 0),
        (lambda o: o.with_columns(order_type=pl.Series(["market", "limit"])), "limit_price", 1),
        (lambda o: o.with_columns(order_type=pl.Series(["market", "moo"])), "order_type", 1),
        (lambda o: o.with_columns(tif=pl.Series(["gtc", "gtd"])), "expire_ts", 1),
        (lambda o: o.with_columns(stop_loss=pl.Series([None, 1.5])), "stop_loss", 1),
        (lambda o: o.with_columns(exit_after=pl.Series([None, "soon"])), "exit_after", 1),
        (lambda o: o.with_columns(submit_ts=pl.Series([minutes(0), minutes(1)]).dt.replace_time_zone(None)), "submit_ts", None),
        (lambda o: o.with_columns(limit_price=pl.Series([101.0, None])), "limit_price", 0),
    ],
)
def test_bad_orders_name_column_and_row(change, column, row):
    bars = make_bars(FLAT)
    o = change(orders(submit_ts=[minutes(0), minutes(1)]))
    with pytest.raises(ash.OrdersError) as info:
        ash.backtest(bars, o)
    assert info.value.column == column
    assert info.value.row == row
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "config, field",
    [
        ({"leverage": 0}, "leverage"),
        ({"fees": -0.1}, "fees"),
        ({"intrabar": "random"}, "intrabar"),
        ({"latency": "fast"}, "latency"),
        ({"slippage": float("nan")}, "slippage"),
        ({"maintenance_margin": 1.5}, "maintenance_margin"),
        ({"init_cah": 5}, "init_cah"),
    ],
)
def test_bad_config_names_the_field(config, field):
    with pytest.raises(ash.ConfigError) as info:
        ash.backtest(make_bars(FLAT), orders(submit_ts=[minutes(0)]), **config)
    assert info.value.column == field


def test_bad_bars_name_column_and_row():
    bars = make_bars([(100, 101, 99, 100), (100, 99, 101, 100)])
    with pytest.raises(ash.BarsError) as info:
        ash.backtest(bars, orders(submit_ts=[minutes(0)]))
    assert (info.value.column, info.value.row) == ("high", 1)
    naive = make_bars(FLAT).with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(ash.BarsError) as info:
        ash.backtest(naive, orders(submit_ts=[minutes(0)]))
    assert info.value.column == "ts"


def test_every_engine_error_kind_maps_to_an_exported_class():
    # Each Rust error variant surfaces as a documented class exported at top level.
    for name in ("BarsError", "OrdersError", "ConfigError", "EngineError"):
        cls = getattr(ash, name)
        assert cls.__doc__
        assert issubclass(cls, ash.AftershockError)
    for name in ("BarsError", "OrdersError", "ConfigError", "CalendarError"):
        assert issubclass(getattr(ash, name), ValueError)
    # A Rust-side input check (the engine's own guard) raises the right class: an
    # interleaved-but-valid frame passes, a stop-limit without a stop price fails in Rust.
    o = orders(submit_ts=[before(0)], order_type=["stop_limit"], limit_price=[101.0])
    with pytest.raises(ash.OrdersError) as info:
        ash.backtest(make_bars(FLAT), o)
    assert info.value.column == "stop_price" and info.value.row == 0


def test_stats_keys_are_documented_and_values_hand_checked():
    # buy 10 at 100, price goes to 120 then 90, sell at 110
    rows = [(100, 100, 100, 100), (120, 120, 120, 120), (90, 90, 90, 90), (110, 110, 110, 110)]
    bars = make_bars(rows)
    o = pl.DataFrame(
        {"submit_ts": [before(0), before(3)], "symbol": ["BTC"] * 2, "side": ["buy", "sell"], "qty": [10.0, 10.0]}
    )
    r = ash.backtest(bars, o, init_cash=1_000)
    s = r.stats()
    assert set(s) == set(STATS_DOC)
    assert s["final_equity"] == pytest.approx(1_100.0)
    assert s["total_return"] == pytest.approx(0.1)
    # peak 1200 at 120, trough 900 at 90: drawdown -25%
    assert s["max_drawdown"] == pytest.approx(900 / 1200 - 1)
    assert s["trades"] == 1 and s["win_rate"] == 1.0
    # position held from minute 0 to minute 3 of a 3-minute span
    assert s["exposure"] == pytest.approx(1.0)


def test_equity_is_cash_plus_marked_positions():
    rows = [(100, 102, 98, 101), (101, 105, 100, 104), (104, 104, 95, 96), (96, 99, 96, 98)]
    bars = make_bars(rows)
    r = ash.backtest(bars, orders(submit_ts=[before(0)], qty=[3.0]), init_cash=1_000, fees=0.001)
    eq = r.equity
    closes = [101, 104, 96, 98]
    fee = 3 * 100 * 0.001
    for row, c in zip(eq.iter_rows(named=True), closes):
        assert row["equity"] == pytest.approx(1_000 - 300 - fee + 3 * c, rel=1e-12)
        assert row["gross_exposure"] == pytest.approx(3 * c)


def test_backtest_many_matches_single_runs_on_any_thread_count():
    rng = np.random.default_rng(7)
    n = 2_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    bars = pl.DataFrame(
        {"ts": [minutes(k) for k in range(n)], "symbol": "BTC", "open": open_, "high": high, "low": low, "close": close}
    )
    grids = []
    for j in range(6):
        k = np.arange(0, n - 50, 97) + j
        grids.append(
            pl.DataFrame(
                {
                    "submit_ts": [minutes(int(x)) for x in k],
                    "symbol": "BTC",
                    "side": ["buy" if x % 2 else "sell" for x in k],
                    "qty": 1.0,
                    "stop_loss": 0.003 + 0.001 * j,
                    "take_profit": 0.004,
                    "exit_after": "30m",
                }
            )
        )
    cfgs = [{"fees": 0.0004, "slippage": 0.0001}] * len(grids)
    single = [ash.backtest(bars, g, **c) for g, c in zip(grids, cfgs)]
    for threads in (1, 2, 4):
        many = ash.backtest_many(bars, grids, cfgs, threads=threads)
        for a, b in zip(single, many):
            assert a.fills.equals(b.fills)
            assert a.trades.equals(b.trades)
            assert a.equity.equals(b.equity)


def _walk_frame(n: int = 500, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame(
        {
            "ts": [minutes(k) for k in range(n)],
            "symbol": "BTC",
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
        }
    )


def test_bars_frame_is_validated_once_across_runs(monkeypatch):
    import aftershock.trading.engine as engine_module

    scans = []
    real = engine_module._engine.check_bars
    monkeypatch.setattr(engine_module._engine, "check_bars", lambda *a: scans.append(1) or real(*a))
    bars = _walk_frame()
    o = orders(submit_ts=[minutes(3) + dt.timedelta(seconds=5)], exit_after=["1h"])
    first = ash.backtest(bars, o)
    for _ in range(3):
        assert ash.backtest(bars, o).fills.equals(first.fills)
    ash.backtest_many(bars, [o, o], stats_only=True)
    assert len(scans) == 1
    # an equal but distinct frame is validated on its own
    ash.backtest(bars.clone(), o)
    assert len(scans) == 2


def test_bars_cache_sees_a_frame_changed_in_place():
    bars = _walk_frame()
    o = orders(submit_ts=[minutes(3) + dt.timedelta(seconds=5)], exit_after=["1h"])
    before = ash.backtest(bars, o)
    # new price columns in the same frame object: the new numbers, not the cached ones
    for name in ("open", "high", "low", "close"):
        bars.replace_column(bars.get_column_index(name), bars[name] * 2)
    after = ash.backtest(bars, o)
    doubled = _walk_frame().with_columns(pl.col("open", "high", "low", "close") * 2)
    assert after.fills.equals(ash.backtest(doubled, o).fills)
    assert after.fills["price"][0] == 2 * before.fills["price"][0]
    # an invalid value written in place is caught
    bars[10, "close"] = -1.0
    with pytest.raises(ash.BarsError) as info:
        ash.backtest(bars, o)
    assert (info.value.column, info.value.row) == ("close", 10)
    # rows appended in place are seen
    bars = _walk_frame()
    ash.backtest(bars, o)
    bars.extend(_walk_frame(5).with_columns(pl.col("ts") + dt.timedelta(days=1)))
    assert ash.backtest(bars, o).equity["ts"].max() == minutes(4) + dt.timedelta(days=1)


def test_code_tables_come_from_the_engine_and_are_documented():
    from aftershock import _engine
    from aftershock.trading._codes import CODES, labels
    from aftershock.trading.engine import ORDER_TYPES, SIDES, TIFS

    assert CODES == _engine.codes()
    assert SIDES is CODES["side"] and ORDER_TYPES is CODES["order_type"] and TIFS is CODES["tif"]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "engine.md").read_text()
    for column, table in CODES.items():
        assert len(set(table.values())) == len(table), column  # one code per text
        for text, code in table.items():
            assert labels(column)[code] == (text or None)
            if text:
                assert f"`{text}`" in docs or f'"{text}"' in docs, (column, text)


def test_output_tables_cross_without_copy():
    bars = _walk_frame()
    o = orders(submit_ts=[minutes(3) + dt.timedelta(seconds=5)], exit_after=["1h"])
    r = ash.backtest(bars, o)
    table = r._raw["equity"]
    assert table.columns == ["ts", "cash", "equity", "gross_exposure"]
    frame = pl.DataFrame(table)
    # Polars imports the engine's own vectors: same addresses, no copy
    for name in table.columns:
        assert _address(frame[name]) == table.buffer_address(name), name
    assert frame["ts"].dtype == pl.Datetime("us", "UTC")
    want = frame["equity"].to_list()
    assert want[-1] == r.final_equity
    # the frame keeps the Rust memory alive after every other reference is gone
    del r, table
    gc.collect()
    assert frame["equity"].to_list() == want


def test_output_nulls_cross_as_arrow_validity():
    bars = _walk_frame()
    # a limit far below the market never fills: no status time, no exit reason yet
    o = orders(
        submit_ts=[minutes(3) + dt.timedelta(seconds=5)] * 2,
        order_type=["market", "limit"], limit_price=[None, 1.0],
    )
    r = ash.backtest(bars, o)
    raw_orders = pl.DataFrame(r._raw["orders"])
    assert raw_orders["status_ts"].dtype == pl.Datetime("us", "UTC")
    assert raw_orders["status_ts"].is_null().to_list() == [False, True]
    assert r.orders["status"].to_list() == ["filled", "open"]
    raw_trades = pl.DataFrame(r._raw["trades"])
    assert raw_trades["exit_reason"].is_null().to_list() == [True]
    assert r.trades["status"].to_list() == ["open"]


class _OnlyArray:
    """An exporter of one Arrow array (``__arrow_c_array__``), as pyarrow's are."""

    def __init__(self, source):
        self._source = source

    def __arrow_c_array__(self, requested_schema=None):
        return self._source.__arrow_c_array__(requested_schema)


def test_tables_also_cross_as_single_arrow_arrays():
    pa = pytest.importorskip("pyarrow")
    r = ash.backtest(_walk_frame(), orders(submit_ts=[minutes(3) + dt.timedelta(seconds=5)], exit_after=["1h"]))
    table = r._raw["equity"]
    # out through __arrow_c_array__ and back in: the engine reads its own vectors
    seen = _engine.column_addresses(_OnlyArray(table))
    assert seen == {name: table.buffer_address(name) for name in table.columns}
    # an independent consumer reads the same values
    batch = pa.record_batch(_OnlyArray(table))
    assert batch.column("equity").to_pylist() == pl.DataFrame(table)["equity"].to_list()
    assert str(batch.schema.field("ts").type) == "timestamp[us, tz=UTC]"
