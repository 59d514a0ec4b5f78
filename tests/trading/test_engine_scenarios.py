"""Hand-computed scenarios through the Python API: every order type, every intrabar
setting, gaps, brackets, fees, slippage, latency, lot size, shorting, leverage and
liquidation. (rust/engine/tests.rs pins the same rules in the core.)"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import aftershock as ash

T0 = dt.datetime(2025, 3, 28, 12, 30, tzinfo=dt.timezone.utc)


def bars(*rows):
    return pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=k) for k in range(len(rows))],
            "symbol": "BTC",
            "open": [float(r[0]) for r in rows],
            "high": [float(r[1]) for r in rows],
            "low": [float(r[2]) for r in rows],
            "close": [float(r[3]) for r in rows],
        }
    )


def order(**fields):
    # decided just before the first bar opens: bar 0 is the first live bar
    base = {"submit_ts": T0 - dt.timedelta(microseconds=1), "symbol": "BTC", "side": "buy", "qty": 1.0}
    base.update(fields)
    return pl.DataFrame({k: [v] for k, v in base.items()})


def run(b, o, **cfg):
    cfg.setdefault("init_cash", 10_000.0)
    return ash.backtest(b, o, **cfg)


WIDE = bars((100, 100.5, 99.5, 100), (100, 104, 97, 101), (101, 101, 101, 101))


@pytest.mark.parametrize(
    "intrabar, reason, price",
    [
        ("pessimistic", "stop_loss", 98.0),
        ("olhc", "stop_loss", 98.0),
        ("ohlc", "take_profit", 103.0),
        ("nearest_first", "stop_loss", 98.0),  # low 97 is 3 from the open, high 104 is 4
    ],
)
def test_bracket_exit_depends_on_the_intrabar_path(intrabar, reason, price):
    r = run(WIDE, order(stop_loss=0.02, take_profit=0.03), intrabar=intrabar)
    assert r.fills["reason"].to_list() == ["entry", reason]
    assert r.fills["price"][1] == pytest.approx(price)


def test_nearest_first_visits_the_nearer_high():
    b = bars((100, 100, 100, 100), (100, 102, 96, 101))
    r = run(b, order(stop_loss=0.03, take_profit=0.015), intrabar="nearest_first")
    assert r.fills["reason"][1] == "take_profit" and r.fills["price"][1] == pytest.approx(101.5)


@pytest.mark.parametrize(
    "fields, expected_ts, expected_price",
    [
        ({"order_type": "limit", "limit_price": 98.0}, 1, 98.0),  # crosses inside bar 1
        ({"order_type": "stop", "stop_price": 103.5}, 1, 103.5),
        ({"order_type": "stop_limit", "stop_price": 103.5, "limit_price": 99.0}, 1, 99.0),
        ({"order_type": "market_on_close"}, 0, 100.0),
    ],
)
def test_each_order_type(fields, expected_ts, expected_price):
    b = bars((100, 100.5, 99.5, 100), (100, 104, 97, 101))
    r = run(b, order(**fields), intrabar="ohlc")
    assert r.fills["ts"][0] == T0 + dt.timedelta(minutes=expected_ts)
    assert r.fills["price"][0] == pytest.approx(expected_price)


def test_gaps_fill_at_the_open_never_at_an_untraded_price():
    b = bars((100, 100, 100, 100), (94, 95, 93, 94))
    r = run(b, order(stop_loss=0.02))
    assert r.fills["price"][1] == 94.0  # not the 98 stop level
    r = run(b, order(side="buy", order_type="limit", limit_price=97.0))
    assert r.fills["price"][0] == 94.0  # a better price than the limit, at the open
    r = run(b, order(side="sell", order_type="stop", stop_price=96.0))
    assert r.fills["price"][0] == 94.0


def test_time_exit_fees_and_slippage():
    b = bars(*[(100 + k, 100.5 + k, 99.5 + k, 100 + k) for k in range(6)])
    r = run(b, order(qty=2.0, exit_after="3m"), fees=0.001, fixed_fees=1.0, slippage=0.01)
    entry, exit_ = r.fills.row(0, named=True), r.fills.row(1, named=True)
    assert (entry["price"], exit_["price"]) == (pytest.approx(101.0), pytest.approx(103 * 0.99))
    assert entry["fee"] == pytest.approx(2 * 101 * 0.001 + 1)
    assert exit_["reason"] == "time_exit" and exit_["ts"] == T0 + dt.timedelta(minutes=3)
    assert r.trades["pnl"][0] == pytest.approx(2 * (103 * 0.99 - 101) - entry["fee"] - exit_["fee"])


def test_latency_moves_the_fill_to_a_later_bar():
    b = bars((100, 100, 100, 100), (101, 101, 101, 101), (102, 102, 102, 102))
    assert run(b, order()).fills["price"][0] == 100.0
    assert run(b, order(), latency="1s").fills["price"][0] == 101.0
    assert run(b, order(), latency="61s").fills["price"][0] == 102.0


def test_lot_size_and_short_trailing_stop():
    b = bars((100, 100, 100, 100), (99, 99, 95, 95), (95, 98, 95, 97))
    r = run(b, order(side="sell", qty=1.237, trailing_stop=0.02), lot_size=0.01)
    assert r.fills["qty"][0] == pytest.approx(1.23)
    # short: trough 95 -> stop at 96.9, hit on the way up to 98 in bar 2
    assert r.fills["reason"][1] == "trailing_stop"
    assert r.fills["price"][1] == pytest.approx(95 * 1.02)
    assert r.trades["direction"][0] == "short"
    assert r.trades["pnl"][0] == pytest.approx(1.23 * (100 - 96.9))


def test_leverage_cap_and_liquidation():
    b = bars((100, 100, 100, 100), (99, 99.5, 85, 90), (90, 91, 89, 90))
    r = run(b, order(qty=1_000.0), leverage=3.0)
    assert r.fills["qty"][0] == pytest.approx(300.0)  # capped at 3x of 10k
    r = run(b, order(qty=1_000.0), leverage=3.0, maintenance_margin=0.25)
    liq = r.fills.row(1, named=True)
    assert liq["reason"] == "liquidation" and liq["order_id"] == -1
    # 300p - 20000 < 0.25 * 300p  <=>  p < 20000 / 225
    assert liq["price"] == pytest.approx(20_000 / 225)
    assert r.orders["status"].to_list() == ["filled"]


def test_ioc_gtd_reduce_only_statuses():
    b = bars((100, 101, 99, 100), (100, 101, 99, 100), (100, 101, 90, 95))
    limit = dict(order_type="limit", limit_price=95.0)
    assert run(b, order(**limit, tif="ioc")).orders["status"][0] == "cancelled"
    expired = run(b, order(**limit, tif="gtd", expire_ts=T0 + dt.timedelta(minutes=2)))
    assert expired.orders.row(0, named=True)["status"] == "expired"
    assert run(b, order(**limit, tif="gtd", expire_ts=T0 + dt.timedelta(minutes=3))).orders["status"][0] == "filled"
    ro = run(b, order(side="sell", reduce_only=True))
    assert ro.orders.row(0, named=True)["reject_reason"] == "nothing_to_reduce"
