"""Hostile input: every case is a clear aftershock error naming the argument, or the
column and row (or the file and line), never a silent accept and never a raw library
error (a Polars panic, OverflowError, AttributeError, a huge allocation).

One parametrized matrix; issue 8 lists the cases. Valid input the library used to
refuse (orders in another time zone, NumPy scalars, bars less than 1 µs apart, pandas
frames without pyarrow) is checked by the tests after the matrix."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sys
import warnings
import zipfile

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock._time import duration_us, parse_duration
from aftershock.calendar import read_calendar
from aftershock.prices import bar_gaps, binance, read_bars
from aftershock.trading.signals import from_signals
from aftershock.trading.strategy import compile_orders

UTC = dt.timezone.utc
T = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)


def _cal():
    return ash.calendar.q1_2025_calendar()


def _bars(n: int = 6, price: float = 100.0, symbol: str = "BTC", start: dt.datetime = T, step=MIN) -> pl.DataFrame:
    ts = [start + step * i for i in range(n)]
    p = [price * (1 + 0.01 * (i % 3)) for i in range(n)]
    return pl.DataFrame({"ts": ts, "symbol": symbol, "open": p, "high": [x * 1.01 for x in p],
                         "low": [x * 0.99 for x in p], "close": p},
                        schema_overrides={"ts": pl.Datetime("us", "UTC")})


def _study_bars() -> pl.DataFrame:
    # hourly bars over the quarter: enough for the study to get past its argument checks
    return _bars(24 * 90, start=dt.datetime(2025, 1, 1, tzinfo=UTC), step=dt.timedelta(hours=1))


def _orders(**columns) -> pl.DataFrame:
    base = {"submit_ts": [T], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]}
    base.update(columns)
    return pl.DataFrame(base)


def _result() -> ash.Result:
    return ash.backtest(_bars(), _orders(exit_after=["2m"]))


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


FF_HEADER = "DateTime,Currency,Impact,Event,Actual,Forecast,Previous\n"
FF_ROWS = [
    "2025-02-07T13:30:00+00:00,USD,High,Non-Farm Employment Change,143K,170K,307K",
    "2025-02-12T13:30:00+00:00,USD,High,CPI y/y,3.0%,2.9%,2.9%",
    "2025-02-13T13:30:00+00:00,USD,High,PPI m/m,0.4%,0.3%,0.5%",
]


def _ff(tmp_path, replace_row: int | None = None, row: str = ""):
    rows = list(FF_ROWS)
    if replace_row is not None:
        rows[replace_row] = row
    path = tmp_path / "ff.csv"
    path.write_text(FF_HEADER + "\n".join(rows) + "\n")
    return lambda: read_calendar(path)


def _file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _binance_line(i: int) -> str:
    t = (int(T.timestamp()) + 60 * i) * 1000
    return f"{t},100.0,101.0,99.0,100.5,1.0,{t + 59_999},0,1,0,0,0"


def _binance_csv(tmp_path, garbage_line: int | None = None):
    lines = [_binance_line(i) for i in range(5)]
    if garbage_line is not None:
        lines[garbage_line - 1] = "1739367000000,100.0,oops,99.0"
    return _file(tmp_path, "BTCUSDT-1m-2025-02.csv", "\n".join(lines) + "\n")


# A case is (id, call, error class, where): where is ("argument", name),
# ("column", name, row or None) or ("file", file name, line or None). `call` takes
# pytest's tmp_path.
CASES = [
    # --- silent accepts -------------------------------------------------------------
    ("numeric side NaN", lambda p: ash.backtest(_bars(), _orders(side=[float("nan")])), ash.OrdersError,
     ("column", "side", 0)),
    ("numeric side -NaN", lambda p: ash.backtest(_bars(), _orders(side=[-float("nan")], qty=[1.0])), ash.OrdersError,
     ("column", "side", 0)),
    ("numeric side float32 NaN",
     lambda p: ash.backtest(_bars(), _orders(side=pl.Series([np.nan], dtype=pl.Float32))), ash.OrdersError,
     ("column", "side", 0)),
    ("builder side NaN", lambda p: ash.backtest(
        _bars(), ash.orders.market(pl.DataFrame({"event_id": ["E"], "release_ts": [T]}), symbol="BTC",
                                   side=float("nan"), size=1.0)), ash.OrdersError, ("argument", "side")),
    ("builder side NaN expression", lambda p: ash.backtest(
        _bars(), ash.orders.market(pl.DataFrame({"event_id": ["E", "F"], "release_ts": [T, T], "z": [1.0, float("nan")]}),
                                   symbol="BTC", side=pl.col("z"), size=1.0)), ash.OrdersError, ("column", "side", 1)),
    ('close_at_end="no"', lambda p: ash.backtest(_bars(), _orders(), close_at_end="no"), ash.ConfigError,
     ("argument", "close_at_end")),
    ("ForexFactory abc", lambda p: _ff(p, 1, FF_ROWS[1].replace("3.0%", "abc"))(), ash.CalendarError,
     ("column", "Actual", 1)),
    ("ForexFactory 1e400%", lambda p: _ff(p, 1, FF_ROWS[1].replace("3.0%", "1e400%"))(), ash.CalendarError,
     ("column", "Actual", 1)),
    ("ForexFactory 2.8K on a percentage", lambda p: _ff(p, 1, FF_ROWS[1].replace("3.0%", "2.8K"))(), ash.CalendarError,
     ("column", "Actual", 1)),
    ("price 5e-324 (validate_bars)", lambda p: ash.prices.validate_bars(_bars(price=5e-324)), ash.BarsError,
     ("column", "open", 0)),
    ("price 5e-324 (backtest)", lambda p: ash.backtest(_bars(price=5e-324), _orders()), ash.BarsError,
     ("column", "open", 0)),
    ("study min_estimation=-1", lambda p: ash.study(_study_bars(), _cal(), min_estimation=-1), ash.InputError,
     ("argument", "min_estimation")),
    ("study min_estimation=1.5", lambda p: ash.study(_study_bars(), _cal(), min_estimation=1.5), ash.InputError,
     ("argument", "min_estimation")),
    ('study bar_length="0m"', lambda p: ash.study(_study_bars(), _cal(), bar_length="0m"), ash.InputError,
     ("argument", "bar_length")),
    ('study bar_length="-1h"', lambda p: ash.study(_study_bars(), _cal(), bar_length="-1h"), ash.InputError,
     ("argument", "bar_length")),
    ("surprises min_history=-1", lambda p: ash.surprises(_cal(), min_history=-1), ash.ConfigError,
     ("argument", "min_history")),
    ("surprises min_history=1.5", lambda p: ash.surprises(_cal(), min_history=1.5), ash.ConfigError,
     ("argument", "min_history")),
    ("stats periods_per_year=0", lambda p: _result().stats(periods_per_year=0, returns="calendar"), ash.ConfigError,
     ("argument", "periods_per_year")),
    ("stats periods_per_year=nan", lambda p: _result().stats(periods_per_year=float("nan"), returns="calendar"),
     ash.ConfigError, ("argument", "periods_per_year")),
    ("stats periods_per_year=inf", lambda p: _result().stats(periods_per_year=float("inf"), returns="calendar"),
     ash.ConfigError, ("argument", "periods_per_year")),
    ('bar_gaps every="0s"', lambda p: bar_gaps(_bars(), every="0s"), ash.InputError, ("argument", "every")),
    ("backtest(bars, None)", lambda p: ash.backtest(_bars(), None), ash.ConfigError, ("argument", "orders")),
    # --- unclear errors and crashes ---------------------------------------------------
    ('equity_curve("0m")', lambda p: _result().equity_curve("0m"), ash.ConfigError, ("argument", "every")),
    ('equity_curve("foo")', lambda p: _result().equity_curve("foo"), ash.ConfigError, ("argument", "every")),
    ('equity_curve("1us") over 5 minutes of bars (300 million rows)', lambda p: _result().equity_curve("1us"),
     ash.ConfigError, ("argument", "every")),
    ('resample_bars("1us") over an hour (a 28 GB Polars allocation)',
     lambda p: ash.prices.resample_bars(_bars(60), "1us"), ash.BarsError, ("argument", "every")),
    ('resample_bars("0m")', lambda p: ash.prices.resample_bars(_bars(), "0m"), ash.BarsError, ("argument", "every")),
    ('resample_bars offset that does not parse', lambda p: ash.prices.resample_bars(_bars(), "5m", offset="soon"),
     ash.BarsError, ("argument", "offset")),
    ('equity_curve("-1d")', lambda p: _result().equity_curve("-1d"), ash.ConfigError, ("argument", "every")),
    ('study path step "0m"', lambda p: ash.study(_study_bars(), _cal(), path=("-1h", "1h", "0m")), ash.InputError,
     ("argument", "path")),
    ("study path of a billion steps", lambda p: ash.study(_study_bars(), _cal(), path=("-1000d", "1000d", "1ms")),
     ash.InputError, ("argument", "path")),
    ("study path of one value", lambda p: ash.study(_study_bars(), _cal(), path=("1h",)), ash.InputError,
     ("argument", "path")),
    ("duration overflow", lambda p: parse_duration("99999999999d", column="hold"), ash.InputError,
     ("argument", "hold")),
    ("duration beyond int64", lambda p: duration_us("999999999d", name="latency"), ash.InputError,
     ("argument", "latency")),
    ("latency overflow", lambda p: ash.backtest(_bars(), _orders(), latency="99999999999d"), ash.ConfigError,
     ("argument", "latency")),
    ("study window overflow", lambda p: ash.study(_study_bars(), _cal(), windows=["99999999999d"]), ash.InputError,
     ("argument", "windows")),
    ("study window beyond int64", lambda p: ash.study(_study_bars(), _cal(), windows=["999999999d"]), ash.InputError,
     ("argument", "windows")),
    ("equity_curve overflow", lambda p: _result().equity_curve("99999999999d"), ash.ConfigError,
     ("argument", "every")),
    ("exit_after overflow in an orders frame", lambda p: ash.backtest(_bars(), _orders(exit_after=["99999999999d"])),
     ash.OrdersError, ("column", "exit_after", 0)),
    ("naive submit_ts from on_release", lambda p: compile_orders(_naive_orders_strategy(), _cal()), ash.OrdersError,
     ("column", "submit_ts", None)),
    ("calendar with hawkish_z is still validated (duplicate event_id)",
     lambda p: compile_orders(_Returns(), pl.concat([ash.surprises(_cal())] * 2)), ash.CalendarError,
     ("column", "event_id", None)),
    ("calendar with hawkish_z is still validated (string release_ts)",
     lambda p: compile_orders(_Returns(), ash.surprises(_cal()).with_columns(pl.col("release_ts").dt.to_string())),
     ash.CalendarError, ("column", "release_ts", None)),
    ("on_release returns a list", lambda p: compile_orders(_Returns(value=[1, 2]), _cal()), ash.OrdersError, None),
    ("negative decide_after", lambda p: compile_orders(type("S", (_Returns,), {"decide_after": "-1h"})(), _cal()),
     ash.ConfigError, ("argument", "decide_after")),
    ("ragged ForexFactory line", lambda p: _ff(p, 1, FF_ROWS[1] + ",extra,cells")(), ash.CalendarError,
     ("file", "ff.csv", 3)),
    ("empty calendar CSV", lambda p: read_calendar(_file(p, "empty.csv", "")), ash.CalendarError,
     ("file", "empty.csv", None)),
    ("empty bars CSV", lambda p: read_bars(_file(p, "empty.csv", ""), symbol="BTC"), ash.BarsError,
     ("file", "empty.csv", None)),
    ("garbage Binance line", lambda p: read_bars(_binance_csv(p, garbage_line=4)), ash.BarsError,
     ("file", "BTCUSDT-1m-2025-02.csv", 4)),
    ("garbage Binance line (read_binance_csv)", lambda p: ash.prices.read_binance_csv(_binance_csv(p, garbage_line=2)),
     ash.BarsError, ("file", "BTCUSDT-1m-2025-02.csv", 2)),
    ("truncated Parquet bars", lambda p: read_bars(_truncated_parquet(p)), ash.BarsError,
     ("file", "bars.parquet", None)),
    ("stats periods_per_year=-1", lambda p: _result().stats(periods_per_year=-1, returns="trading"), ash.ConfigError,
     ("argument", "periods_per_year")),
    ("study symbols=[]", lambda p: ash.study(_study_bars(), _cal(), symbols=[]), ash.InputError,
     ("argument", "symbols")),
    ("study symbols not in bars", lambda p: ash.study(_study_bars(), _cal(), symbols=["XYZ"]), ash.InputError,
     ("argument", "symbols")),
    ("from_signals sl_stop=-0.5", lambda p: from_signals(_bars(), [True] + [False] * 5, sl_stop=-0.5),
     ash.ConfigError, ("argument", "sl_stop")),
    ("from_signals sl_stop list with a string", lambda p: from_signals(_bars(), [True] + [False] * 5, sl_stop=[0.1, "x"]),
     ash.ConfigError, ("argument", "sl_stop")),
    ("from_signals fees=-1 (found by the fuzz: a fee of -inf)",
     lambda p: from_signals(_bars(), [True] + [False] * 5, fees=-1.0), ash.ConfigError, ("argument", "fees")),
    ("from_signals fees=-1 in a sweep", lambda p: from_signals(_bars(), [True] + [False] * 5, fees=[0.0, -1.5]),
     ash.ConfigError, ("argument", "fees")),
    ("from_signals tp_stop=-1", lambda p: from_signals(_bars(), [True] + [False] * 5, tp_stop=-1), ash.ConfigError,
     ("argument", "tp_stop")),
    ("latency that does not parse", lambda p: ash.backtest(_bars(), _orders(), latency="soon"), ash.ConfigError,
     ("argument", "latency")),
    ("decide_after that does not parse", lambda p: compile_orders(type("S", (_Returns,), {"decide_after": "x"})(), _cal()),
     ash.ConfigError, ("argument", "decide_after")),
    ("sweep exit_after that does not parse", lambda p: ash.sweep(_bars(), _orders(), {"exit_after": ["soon"]}),
     ash.ConfigError, ("argument", "exit_after")),
    ("bars spanning 12,000 years (timestamps in the wrong unit)", lambda p: ash.backtest(
        _bars(2).with_columns(ts=pl.Series([0, 4 * 10**17]).cast(pl.Datetime("us", "UTC"))), _orders()),
     ash.BarsError, ("column", "ts", 1)),
    ("leverage a string", lambda p: ash.backtest(_bars(), _orders(), leverage="2"), ash.ConfigError,
     ("argument", "leverage")),
]


def _truncated_parquet(tmp_path):
    path = tmp_path / "bars.parquet"
    _bars(50).write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("call, error, where", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_a_clear_error(tmp_path, call, error, where):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a case is about its error, not about warnings on the way
        with pytest.raises(error) as info:
            call(tmp_path)
    exc = info.value
    assert isinstance(exc, ash.AftershockError)
    text = str(exc)
    if where is None:
        return
    kind, name, *rest = where
    if kind == "argument":
        assert exc.argument == name and exc.column == name
        assert text.count(f"argument {name!r}") == 1, text
        assert "(column" not in text, text
    elif kind == "column":
        assert exc.column == name and exc.argument is None
        assert text.count(f"column {name!r}") == 1, text
        if rest[0] is not None:
            assert exc.row == rest[0], text
    else:
        assert name in text, text
        if rest[0] is not None:
            assert f"line {rest[0]}" in text, text


# --- valid input that used to be refused ---------------------------------------------


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


def test_on_release_orders_in_nanoseconds_and_mixed_zones_are_valid():
    class Mixed(ash.Strategy):
        def on_release(self, events):
            ts = pl.col("decision_ts").dt.cast_time_unit("ns").dt.convert_time_zone("America/New_York")
            return events.head(1).select(submit_ts=ts, symbol=pl.lit("BTC"), side=pl.lit("buy"), qty=pl.lit(1.0))

    class Plain(ash.Strategy):
        def on_release(self, events):
            return events.head(1).select(submit_ts=pl.col("decision_ts"), symbol=pl.lit("BTC"), side=pl.lit("buy"),
                                         qty=pl.lit(1.0))

    assert compile_orders(Mixed(), _cal()).equals(compile_orders(Plain(), _cal()))


def test_naive_submit_ts_is_refused_with_a_hint():
    # naive timestamps are refused everywhere a frame carries them (docs/engine.md)
    with pytest.raises(ash.OrdersError, match="naive.*replace_time_zone"):
        compile_orders(_naive_orders_strategy(), _cal())


def test_on_release_may_return_a_lazy_frame():
    class Lazy(ash.Strategy):
        def on_release(self, events):
            return ash.orders.market(events.head(1), symbol="BTC", side="buy", size=1.0).lazy()

    assert compile_orders(Lazy(), _cal()).height > 0


@pytest.mark.parametrize("value", [np.float32(2), np.float64(2), np.int64(2), np.int32(2)])
def test_numpy_scalars_are_valid_settings(value):
    # issue 8: leverage=np.float32(2) was refused
    bars, orders = _bars(), _orders(qty=[1500.0])
    got = ash.backtest(bars, orders, leverage=value, init_cash=100_000)
    want = ash.backtest(bars, orders, leverage=2.0, init_cash=100_000)
    assert got.config["leverage"] == 2.0
    assert got.fills.equals(want.fills)


def test_from_signals_stop_loss_beyond_100_percent_is_valid():
    # issue 8: from_signals(sl_stop=5) raised naming 'stop_loss'. vectorbt accepts any
    # sl_stop >= 0: a long's stop 500% below its entry is below zero and never fires.
    bars = _bars()
    r = from_signals(bars, [True] + [False] * 5, sl_stop=5, price="close", size=1.0)
    assert r.trades["status"].to_list() == ["open"]
    short = from_signals(bars, [True] + [False] * 5, sl_stop=5, price="close", size=1.0, direction="shortonly")
    assert short.trades["status"].to_list() == ["open"]


def test_numpy_scalars_elsewhere():
    r = _result()
    assert r.stats(risk_free=np.float32(0.25))["risk_free"] == r.stats(risk_free=0.25)["risk_free"]
    grid = ash.sweep(_bars(), _orders(exit_after=["2m"]), {"take_profit": [np.float64(0.01), 0.5]})
    assert grid["take_profit"].to_list() == [0.01, 0.5]
    many = ash.backtest_many(_bars(), [_orders()], stats_only=True, periods_per_year=np.int64(252))
    assert many.height == 1


def test_numpy_bool_close_at_end():
    bars, orders = _bars(), _orders()
    assert ash.backtest(bars, orders, close_at_end=np.True_).trades["status"].to_list() == ["closed"]
    assert ash.backtest(bars, orders, close_at_end=False).trades["status"].to_list() == ["open"]


def test_bars_less_than_a_microsecond_apart_are_refused_clearly():
    # issue 8: bars 1 ns apart were reported as "not increasing" (truncated to µs)
    ts = pl.Series([T, T], dtype=pl.Datetime("ns", "UTC")) + pl.Series([0, 1], dtype=pl.Duration("ns"))
    bars = _bars(2).with_columns(ts=ts)
    for call in (ash.prices.validate_bars, lambda b: ash.backtest(b, _orders())):
        with pytest.raises(ash.BarsError, match="less than a microsecond") as info:
            call(bars)
        assert (info.value.column, info.value.row) == ("ts", 1)


def test_nanosecond_bars_a_microsecond_or_more_apart_are_valid():
    base = pl.Series([T] * 3, dtype=pl.Datetime("ns", "UTC"))
    ts = base + pl.Series([0, 1_500, 60_000_000_000], dtype=pl.Duration("ns"))
    out = ash.prices.validate_bars(_bars(3).with_columns(ts=ts))
    assert out["ts"].dt.epoch("us").diff().to_list()[1:] == [1, 59_999_999]


def test_pandas_frames_without_pyarrow(monkeypatch):
    # issue 8: pandas input needed pyarrow, a test extra only. Polars converts pandas
    # frames of NumPy dtypes with NumPy alone; simulate an environment without pyarrow.
    pd = pytest.importorskip("pandas")
    bars = _bars()

    def frame(columns):  # strings as object columns: pandas' own storage without pyarrow
        return pd.DataFrame({k: pd.Series(v, dtype=object) if isinstance(v[0], str) else v for k, v in columns.items()})

    pandas_bars = frame({c: bars[c].to_list() for c in bars.columns})
    orders = frame({"submit_ts": [T], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]})
    # a categorical symbol and a nullable float column cross too
    other = pandas_bars.assign(symbol=pandas_bars["symbol"].astype("category"), close=pandas_bars["close"].astype("Float64"))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert ash.prices.validate_bars(pandas_bars).equals(ash.prices.validate_bars(bars))
    assert ash.backtest(pandas_bars, orders).fills.height == 1
    assert ash.prices.validate_bars(other).equals(ash.prices.validate_bars(bars))


def test_truncated_cached_archive_repairs_itself(tmp_path):
    # issue 8: a truncated cached Parquet raised a Polars error forever
    lines = [_binance_line(i) for i in range(30)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BTCUSDT-1m-2025-02.csv", "\n".join(lines) + "\n")
    data = buf.getvalue()
    url = binance.archive_url("BTCUSDT", "1m", "2025-02")
    files = {url: data, url + ".CHECKSUM": f"{hashlib.sha256(data).hexdigest()}  x.zip".encode()}
    requests = []

    def fetch(u):
        requests.append(u)
        return files[u]

    first = binance.fetch_archive("BTCUSDT", "1m", "2025-02", cache_dir=tmp_path, fetch=fetch)
    cached = tmp_path / "spot" / "BTCUSDT" / "1m" / "2025-02.parquet"
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.warns(UserWarning, match="2025-02.parquet"):
        again = binance.fetch_archive("BTCUSDT", "1m", "2025-02", cache_dir=tmp_path, fetch=fetch)
    assert again.equals(first)
    assert requests.count(url) == 2
    # repaired: the next call reads the cache, no download
    assert binance.fetch_archive("BTCUSDT", "1m", "2025-02", cache_dir=tmp_path, fetch=fetch).equals(first)
    assert requests.count(url) == 2
