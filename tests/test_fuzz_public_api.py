"""Hypothesis fuzz of every public entry point with hostile-but-typed arguments.

Each example calls one entry point with arguments of the expected Python types but
hostile values: durations that are empty, zero, negative, calendar-length or beyond
the engine's range; numbers that are NaN, infinite, negative, zero, subnormal, huge or
NumPy scalars; frames with NaN, null, non-positive or subnormal prices, duplicate or
unsorted timestamps, naive or nanosecond times, wrong dtypes, missing columns. Every
outcome must be a valid result or an :class:`aftershock.AftershockError`: never another
exception, never a hang (each example runs under an alarm), and no NaN or infinite
figure in a result computed from finite inputs (within 1e±100: beyond, IEEE overflow
is the honest answer).

Examples per entry point: ``hypothesis_profiles.examples`` (CI budget; more with
``AFTERSHOCK_HYPOTHESIS=long``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import signal
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aftershock as ash
from aftershock.prices import bar_gaps, resample_bars, validate_bars
from aftershock.trading.signals import from_signals
from aftershock.trading.strategy import compile_orders
from hypothesis_profiles import examples

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 2, 12, 12, 0, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)
HANG_SECONDS = 60  # far beyond any example's need: reaching it is a hang

# ------------------------------------------------------------------ value strategies

DURATIONS = st.one_of(
    st.sampled_from(["1m", "15m", "1h", "4h", "1d", "-10h", "1h30m", "2w", "90s", "1.5h", "0", "0m", "-0s", "",
                     "abc", "1mo", "1y", "1e3s", " 5 m ", "99999999999d", "999999999d", "-1d", "9223372036854775807us"]),
    st.timedeltas(min_value=dt.timedelta(days=-10**6), max_value=dt.timedelta(days=10**6)),
    st.integers(-(2**64), 2**64),
)
SPECIAL_FLOATS = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308, math.inf,
                  -math.inf, math.nan, -1.0, 1.0, 0.5, 2.0, 1e9]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.integers(-(10**20), 10**20),
    st.sampled_from([np.float32(2), np.float64(0.001), np.int64(3), np.int32(-1), np.float32(np.nan), np.float64(1e12)]),
    st.booleans(),
)


def sane(x) -> bool:
    """A finite number inside the magnitudes the library promises finite figures for."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and (v == 0 or 1e-100 <= abs(v) <= 1e100)


@contextlib.contextmanager
def no_hang(what: str):
    def alarm(*_):
        raise AssertionError(f"{what} ran longer than {HANG_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(what: str, call):
    """The result of ``call()``, or None when it raised an aftershock error; any other
    exception (Polars panics are BaseExceptions) fails the example."""
    with no_hang(what):
        try:
            return call()
        except ash.AftershockError as exc:
            assert str(exc), what
            return None


def float_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c, t in frame.schema.items() if t in (pl.Float64, pl.Float32)]


def assert_finite(frame: pl.DataFrame, what: str, *, allow_nan: bool = False) -> None:
    for c in float_columns(frame):
        col = frame.get_column(c).drop_nulls()
        bad = col.is_infinite() if allow_nan else ~col.is_finite()
        assert not bad.any(), f"{what}: column {c!r} holds {col.filter(bad).head(3).to_list()}"


# ------------------------------------------------------------------ frame strategies


def clean_bars(n: int, seed: int, symbols=("BTC",), step=MIN, start=T0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
        parts.append(pl.DataFrame({"ts": [start + step * i for i in range(n)], "symbol": sym, "open": open_,
                                   "high": high, "low": low, "close": close, "volume": rng.uniform(0, 10, n)},
                                  schema_overrides={"ts": pl.Datetime("us", "UTC")}))
    return pl.concat(parts)


BAR_MUTATIONS = ["none", "none", "none", "price", "null", "duplicate_ts", "unsorted", "naive", "ns", "string_price",
                 "missing", "empty", "volume", "extra", "categorical", "tokyo", "ns_collide"]


@st.composite
def bars_frames(draw, min_n: int = 1):
    n = draw(st.integers(min_n, 60))
    symbols = draw(st.sampled_from([("BTC",), ("BTC", "ETH")]))
    df = clean_bars(n, draw(st.integers(0, 2**32 - 1)), symbols)
    kind = draw(st.sampled_from(BAR_MUTATIONS))
    row = draw(st.integers(0, df.height - 1))
    col = draw(st.sampled_from(["open", "high", "low", "close"]))
    if kind == "price":
        v = draw(st.sampled_from(SPECIAL_FLOATS))
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(v)).otherwise(pl.col(col)).alias(col))
    elif kind == "null":
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(None).otherwise(pl.col(col)).alias(col))
    elif kind == "duplicate_ts" and df.height > 1:
        df = df.with_columns(pl.when(pl.int_range(pl.len()) == max(row, 1)).then(pl.col("ts").shift(1))
                             .otherwise(pl.col("ts")).alias("ts"))
    elif kind == "unsorted":
        df = df.reverse()
    elif kind == "naive":
        df = df.with_columns(pl.col("ts").dt.replace_time_zone(None))
    elif kind == "ns":
        df = df.with_columns(pl.col("ts").dt.cast_time_unit("ns"))
    elif kind == "ns_collide" and df.height > 1:
        ts = df["ts"].dt.cast_time_unit("ns")
        df = df.with_columns(ts=pl.when(pl.int_range(pl.len()) == max(row, 1)).then(ts.shift(1) + pl.duration(nanoseconds=1))
                             .otherwise(ts))
    elif kind == "string_price":
        df = df.with_columns(pl.col(col).cast(pl.String))
    elif kind == "missing":
        df = df.drop(col)
    elif kind == "empty":
        df = df.head(0)
    elif kind == "volume":
        df = df.with_columns(volume=pl.lit(draw(st.sampled_from([-1.0, math.nan, math.inf]))))
    elif kind == "extra":
        df = df.with_columns(note=pl.lit("x"))
    elif kind == "categorical":
        df = df.with_columns(pl.col("symbol").cast(pl.Categorical))
    elif kind == "tokyo":
        df = df.with_columns(pl.col("ts").dt.convert_time_zone("Asia/Tokyo"))
    return df


def bars_are_sane(bars: pl.DataFrame) -> bool:
    cols = [c for c in ("open", "high", "low", "close") if c in bars.columns]
    return all(bars.schema[c].is_numeric() and all(sane(v) for v in bars[c].drop_nulls().to_list()) for c in cols)


ORDER_VALUES = {
    "side": st.one_of(st.sampled_from(["buy", "sell", "BUY", "hold", ""]), st.sampled_from([1.0, -2.0, 0.0, math.nan])),
    "qty": st.one_of(st.sampled_from([1.0, 0.5, 10.0, 0.0, -1.0]), st.sampled_from(SPECIAL_FLOATS)),
    "size_type": st.sampled_from(["units", "notional", "percent_equity", "target_percent", "lots", None]),
    "order_type": st.sampled_from(["market", "limit", "stop", "stop_limit", "market_on_close", "iceberg", None]),
    "price": st.one_of(st.sampled_from([None, 95.0, 100.0, 105.0]), st.sampled_from(SPECIAL_FLOATS)),
    "tif": st.sampled_from(["gtc", "ioc", "gtd", "day", None]),
    "bracket": st.one_of(st.none(), st.sampled_from([0.01, 0.05, 0.5, 3.0]), st.sampled_from(SPECIAL_FLOATS)),
    "exit_after": st.one_of(st.none(), st.sampled_from(["1m", "5m", "0m", "-1m", "soon", "99999999999d", "1mo"])),
    "offset_s": st.sampled_from([-30, 0, 0, 30, 90, 10**6]),
}


@st.composite
def orders_frames(draw, bars: pl.DataFrame):
    n = draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        tif = draw(ORDER_VALUES["tif"])
        submit = T0 + dt.timedelta(seconds=draw(ORDER_VALUES["offset_s"])) + MIN * draw(st.integers(0, 20))
        rows.append({
            "submit_ts": submit,
            "symbol": draw(st.sampled_from(["BTC", "BTC", "ETH", "DOGE"])),
            "side": draw(ORDER_VALUES["side"]),
            "qty": draw(ORDER_VALUES["qty"]),
            "size_type": draw(ORDER_VALUES["size_type"]),
            "order_type": draw(ORDER_VALUES["order_type"]),
            "limit_price": draw(ORDER_VALUES["price"]),
            "stop_price": draw(ORDER_VALUES["price"]),
            "tif": tif,
            "expire_ts": submit + MIN * draw(st.integers(-1, 5)) if tif == "gtd" else None,
            "stop_loss": draw(ORDER_VALUES["bracket"]),
            "take_profit": draw(ORDER_VALUES["bracket"]),
            "trailing_stop": draw(ORDER_VALUES["bracket"]),
            "exit_after": draw(ORDER_VALUES["exit_after"]),
        })
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows, schema_overrides={"submit_ts": pl.Datetime("us", "UTC"),
                                                 "expire_ts": pl.Datetime("us", "UTC")}, strict=False)
    # one dtype per column: the numeric and string sides cannot share one
    if frame.schema["side"] == pl.Object:  # pragma: no cover - depends on the draw
        frame = frame.with_columns(pl.col("side").cast(pl.String))
    return frame


def orders_are_sane(orders: pl.DataFrame) -> bool:
    for c in ("qty", "limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop", "side"):
        if c in orders.columns and orders.schema[c].is_numeric():
            if not all(sane(v) for v in orders[c].drop_nulls().to_list()):
                return False
    return True


CONFIG_KEYS = ["init_cash", "fees", "maker_fees", "fixed_fees", "slippage", "latency", "lot_size", "leverage",
               "intrabar", "maintenance_margin", "close_at_end"]


@st.composite
def configs(draw):
    out = {}
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=4, unique=True)):
        if key == "latency":
            out[key] = draw(DURATIONS)
        elif key == "intrabar":
            out[key] = draw(st.sampled_from(["pessimistic", "ohlc", "olhc", "nearest_first", "random", ""]))
        elif key == "close_at_end":
            out[key] = draw(st.sampled_from([True, False, "no", 1, np.True_, None]))
        else:
            out[key] = draw(st.one_of(NUMBERS, st.sampled_from([0.0, 0.001, 0.5, 1.0, 2.0, 1000.0, 1e6])))
    return out


def config_is_sane(config: dict) -> bool:
    return all(sane(v) for k, v in config.items() if k not in ("latency", "intrabar", "close_at_end"))


def check_result(r: ash.Result, finite: bool, what: str) -> None:
    for name in ("fills", "trades", "equity", "orders"):
        frame = getattr(r, name)
        assert isinstance(frame, pl.DataFrame)
        if finite:
            assert_finite(frame.select(c for c in float_columns(frame) if c not in ORDER_INPUT_COLUMNS), f"{what}.{name}")


ORDER_INPUT_COLUMNS = {"qty", "limit_price", "stop_price", "stop_loss", "take_profit", "trailing_stop"}


def check_stats(stats, finite: bool, what: str) -> None:
    assert isinstance(stats, ash.trading.Stats)
    for key, value in stats.items():
        if finite and isinstance(value, float):
            assert math.isfinite(value), f"{what}: stats[{key!r}] = {value}"
    stats.formatted()
    stats.to_frame()


# ------------------------------------------------------------------------- the fuzz


@examples(ci=60, long=3_000)
@given(bars=bars_frames(), every=DURATIONS, gaps_every=st.one_of(st.none(), DURATIONS), offset=st.one_of(st.none(), DURATIONS))
def test_fuzz_bars_entry_points(bars, every, gaps_every, offset):
    valid = outcome("validate_bars", lambda: validate_bars(bars))
    if valid is not None:
        assert_finite(valid, "validate_bars")
    for what, call in (
        ("read_bars", lambda: ash.read_bars(bars, symbol="BTC" if "symbol" not in bars.columns else None)),
        ("resample_bars", lambda: resample_bars(bars, every, offset=offset)),
        ("bar_gaps", lambda: bar_gaps(bars, every=gaps_every)),
    ):
        out = outcome(what, call)
        if out is not None:
            assert isinstance(out, pl.DataFrame)
            assert_finite(out, what)


@examples(ci=80, long=5_000)
@given(data=st.data())
def test_fuzz_backtest(data):
    bars = data.draw(bars_frames(min_n=2))
    orders = data.draw(orders_frames(bars))
    config = data.draw(configs())
    r = outcome("backtest", lambda: ash.backtest(bars, orders, **config))
    if r is None:
        return
    finite = bars_are_sane(bars) and orders_are_sane(orders) and config_is_sane(config)
    check_result(r, finite, "backtest")
    every = data.draw(DURATIONS)
    curve = outcome("equity_curve", lambda: r.equity_curve(every))
    if curve is not None and finite:
        assert_finite(curve, "equity_curve")
    ppy = data.draw(st.one_of(st.none(), NUMBERS))
    returns = data.draw(st.sampled_from([None, "calendar", "trading", "weekly"]))
    risk_free = data.draw(st.one_of(st.sampled_from([0.0, 0.02, -0.5]), NUMBERS))
    benchmark = data.draw(st.sampled_from([None, "BTC", "ETH", "DOGE"]))
    stats = outcome("stats", lambda: r.stats(periods_per_year=ppy, returns=returns, risk_free=risk_free,
                                            benchmark=benchmark))
    if stats is not None:
        check_stats(stats, finite, "stats")


@examples(ci=25, long=1_000)
@given(data=st.data())
def test_fuzz_backtest_many_and_sweep(data):
    bars = clean_bars(30, data.draw(st.integers(0, 2**16)))
    orders = data.draw(orders_frames(bars))
    configs_ = data.draw(st.lists(configs(), min_size=1, max_size=3))
    threads = data.draw(st.sampled_from([None, 1, 2, 0, -1, 1.5, True]))
    many = outcome("backtest_many", lambda: ash.backtest_many(bars, [orders] * len(configs_), configs_,
                                                              threads=threads, stats_only=True))
    finite = orders_are_sane(orders) and all(config_is_sane(c) for c in configs_)
    if many is not None and finite:
        assert_finite(many, "backtest_many")
    key = data.draw(st.sampled_from(["qty", "stop_loss", "take_profit", "exit_after", "fees", "latency", "leverage",
                                     "threshold"]))
    values = data.draw(st.lists(st.one_of(NUMBERS, DURATIONS, st.none()), min_size=1, max_size=3))
    grid = outcome("sweep", lambda: ash.sweep(bars, orders, {key: values}))
    if grid is not None and finite and all(sane(v) for v in values if not isinstance(v, (str, dt.timedelta))):
        assert_finite(grid, "sweep")


@examples(ci=40, long=3_000)
@given(data=st.data())
def test_fuzz_from_signals(data):
    bars = data.draw(bars_frames(min_n=2))
    n = bars.height if "symbol" in bars.columns else 0
    n_one = bars.filter(pl.col("symbol") == "BTC").height if n and bars.schema["symbol"] == pl.String else n
    entries = data.draw(st.lists(st.booleans(), min_size=n_one, max_size=n_one))
    exits = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n_one, max_size=n_one)))
    settings = {}
    for key in data.draw(st.lists(st.sampled_from(["init_cash", "size", "fees", "fixed_fees", "slippage", "min_size",
                                                   "max_size", "size_granularity", "sl_stop", "tsl_stop", "tp_stop"]),
                                  max_size=3, unique=True)):
        settings[key] = data.draw(st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3)))
    settings["direction"] = data.draw(st.sampled_from(["longonly", "shortonly", "both", "up"]))
    settings["price"] = data.draw(st.sampled_from(["next_open", "close", "open"]))
    symbol = "BTC" if n and bars["symbol"].n_unique() > 1 else None
    r = outcome("from_signals", lambda: from_signals(bars, np.array(entries, dtype=bool),
                                                     None if exits is None else np.array(exits, dtype=bool),
                                                     symbol=symbol, **settings))
    if r is None:
        return
    numbers = [v for k, v in settings.items() if k not in ("direction", "price")]
    flat = [x for v in numbers for x in (v if isinstance(v, list) else [v])]
    # inf and NaN are meaningful settings here (all cash, no limit, no stop); slippage >= 1
    # sells at a price <= 0, as vectorbt does
    finite = bars_are_sane(bars) and all(sane(x) or (isinstance(x, float) and not math.isfinite(x)) for x in flat) \
        and not any(k == "slippage" and any(float(x) >= 1 for x in (v if isinstance(v, list) else [v]))
                    for k, v in settings.items())
    if isinstance(r, pl.DataFrame):
        if finite:
            assert_finite(r.select(c for c in r.columns if c not in settings), "from_signals sweep", allow_nan=True)
        return
    check_result(r, finite, "from_signals")


class _Hostile(ash.Strategy):
    kind: str = "none"
    hold: object = "1h"

    def on_release(self, events):
        k = self.kind
        base = events.head(1)
        if k == "none":
            return None
        if k == "list":
            return [1, 2]
        if k == "lazy":
            return ash.orders.market(base, symbol="BTC", side="buy", size=1.0).lazy()
        if k == "naive":
            return base.select(submit_ts=pl.col("decision_ts").dt.replace_time_zone(None), symbol=pl.lit("BTC"),
                               side=pl.lit("buy"), qty=pl.lit(1.0))
        if k == "early":
            return base.select(submit_ts=pl.col("decision_ts") - pl.duration(minutes=1), symbol=pl.lit("BTC"),
                               side=pl.lit("buy"), qty=pl.lit(1.0))
        if k == "nan_side":
            return ash.orders.market(base, symbol="BTC", side=float("nan"), size=1.0)
        if k == "bad_hold":
            return ash.orders.market(base, symbol="BTC", side="buy", size=1.0, exit_after=self.hold)
        if k == "tokyo":
            return base.select(submit_ts=pl.col("decision_ts").dt.convert_time_zone("Asia/Tokyo"), symbol=pl.lit("BTC"),
                               side=pl.lit("sell"), qty=pl.lit(1.0))
        return base.select(what=pl.lit(1))  # an orders frame without the required columns


@examples(ci=30, long=1_000)
@given(kind=st.sampled_from(["none", "list", "lazy", "naive", "early", "nan_side", "bad_hold", "tokyo", "junk"]),
       hold=DURATIONS, decide_after=DURATIONS, calendar_kind=st.sampled_from(["plain", "surprised", "duplicate", "naive"]))
def test_fuzz_strategies(kind, hold, decide_after, calendar_kind):
    cal = ash.calendar.q1_2025_calendar()
    if calendar_kind == "surprised":
        cal = ash.surprises(cal)
    elif calendar_kind == "duplicate":
        cal = pl.concat([cal, cal.head(1)])
    elif calendar_kind == "naive":
        cal = cal.with_columns(pl.col("release_ts").dt.replace_time_zone(None))
    strategy = type("S", (_Hostile,), {"decide_after": decide_after})(kind=kind, hold=hold)
    orders = outcome("compile_orders", lambda: compile_orders(strategy, cal))
    bars = clean_bars(24 * 90, 7, start=dt.datetime(2025, 1, 1, tzinfo=UTC), step=dt.timedelta(hours=1))
    r = outcome("backtest(strategy)", lambda: ash.backtest(bars, strategy, calendar=cal))
    if orders is not None:
        assert isinstance(orders, pl.DataFrame)
    if r is not None:
        check_result(r, True, "backtest(strategy)")


@examples(ci=25, long=1_000)
@given(data=st.data())
def test_fuzz_calendar_entry_points(data, tmp_path_factory):
    cal = ash.calendar.q1_2025_calendar()
    mutation = data.draw(st.sampled_from(["none", "dup_id", "null_ts", "string_ts", "nan_actual", "inf_actual",
                                          "drop", "naive", "precision", "huge"]))
    if mutation == "dup_id":
        cal = pl.concat([cal, cal.head(1)])
    elif mutation == "null_ts":
        cal = cal.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("release_ts")).alias("release_ts"))
    elif mutation == "string_ts":
        cal = cal.with_columns(pl.col("release_ts").dt.to_string())
    elif mutation in ("nan_actual", "inf_actual", "huge"):
        v = {"nan_actual": math.nan, "inf_actual": math.inf, "huge": 1e308}[mutation]
        cal = cal.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(v).otherwise(pl.col("actual")).alias("actual"))
    elif mutation == "drop":
        cal = cal.drop(data.draw(st.sampled_from(["event_id", "actual", "consensus", "indicator"])))
    elif mutation == "naive":
        cal = cal.with_columns(pl.col("release_ts").dt.replace_time_zone(None))
    elif mutation == "precision":
        cal = cal.with_columns(time_precision=pl.lit("week"))
    min_history = data.draw(st.one_of(NUMBERS, st.integers(-3, 40)))
    read = outcome("read_calendar", lambda: ash.read_calendar(cal))
    out = outcome("surprises", lambda: ash.surprises(cal, min_history=min_history))
    if out is not None and mutation not in ("inf_actual", "huge"):
        assert_finite(out, "surprises", allow_nan=True)
    if read is not None:
        assert isinstance(read, pl.DataFrame)
    # ForexFactory text with one hostile cell or line
    cell = data.draw(st.sampled_from(["3.0%", "abc", "1e400%", "2.8K", "", "<0.1%", "-0.1%", "143K", "0.307M", "5%%",
                                      "3.0%,extra", "nan", "inf%"]))
    text = ("DateTime,Currency,Impact,Event,Actual,Forecast,Previous\n"
            "2025-02-07T13:30:00+00:00,USD,High,Non-Farm Employment Change,143K,170K,307K\n"
            f"2025-02-12T13:30:00+00:00,USD,High,CPI y/y,{cell},2.9%,2.9%\n")
    path = tmp_path_factory.mktemp("ff") / "ff.csv"
    path.write_text(text)
    ff = outcome("read_calendar(ForexFactory)", lambda: ash.read_calendar(path))
    if ff is not None:
        assert_finite(ff, "read_calendar(ForexFactory)", allow_nan=False)


_STUDY_BARS = clean_bars(24 * 60, 3, symbols=("BTC", "ETH"), start=dt.datetime(2025, 1, 15, tzinfo=UTC),
                         step=dt.timedelta(hours=1))


@examples(ci=25, long=1_000)
@given(data=st.data())
def test_fuzz_study(data):
    cal = ash.calendar.q1_2025_calendar()
    windows = data.draw(st.one_of(st.lists(DURATIONS, min_size=0, max_size=3),
                                  st.lists(st.tuples(DURATIONS, DURATIONS), min_size=1, max_size=2), DURATIONS))
    kwargs = {}
    for key in data.draw(st.lists(st.sampled_from(["model", "benchmark", "estimation", "exclude", "min_estimation",
                                                   "bar_length", "path", "symbols", "rank_blocks", "kp_bars", "cov"]),
                                  max_size=3, unique=True)):
        kwargs[key] = data.draw({
            "model": st.sampled_from(["zero_mean", "constant_mean", "market", "capm"]),
            "benchmark": st.sampled_from([None, "ETH", "DOGE"]),
            "estimation": st.tuples(DURATIONS, DURATIONS),
            "exclude": st.tuples(DURATIONS, DURATIONS),
            "min_estimation": st.one_of(NUMBERS, st.integers(-2, 50)),
            "bar_length": DURATIONS,
            "path": st.one_of(st.tuples(DURATIONS, DURATIONS), st.tuples(DURATIONS, DURATIONS, DURATIONS),
                              st.tuples(DURATIONS)),
            "symbols": st.lists(st.sampled_from(["BTC", "ETH", "DOGE"]), max_size=2),
            "rank_blocks": st.one_of(NUMBERS, st.integers(-1, 200)),
            "kp_bars": st.one_of(NUMBERS, st.integers(-1, 600)),
            "cov": st.sampled_from(["HC1", "HC3", "HC0"]),
        }[key])
    result = outcome("study", lambda: ash.study(_STUDY_BARS, cal, windows, **kwargs))
    if result is None:
        return
    for name in ("reactions", "sensitivity", "tests", "paths", "drift", "volatility"):
        frame = getattr(result, name)
        assert isinstance(frame, pl.DataFrame)
        assert_finite(frame, f"study.{name}", allow_nan=True)


@examples(ci=30, long=2_000)
@given(side=st.one_of(st.sampled_from(["buy", "sell", "hold"]), NUMBERS), size=NUMBERS, delay=st.one_of(st.none(), DURATIONS),
       price=NUMBERS, exit_after=st.one_of(st.none(), DURATIONS), builder=st.sampled_from(["market", "limit", "stop",
                                                                                              "market_on_close"]))
def test_fuzz_order_builders(side, size, delay, price, exit_after, builder):
    events = pl.DataFrame({"event_id": ["A", "B"], "release_ts": [T0, T0 + MIN], "z": [1.0, -1.0]})
    kwargs = dict(symbol="BTC", side=side, size=size, delay=delay, exit_after=exit_after)
    if builder in ("limit", "stop"):
        kwargs["price"] = price
    orders = outcome(builder, lambda: getattr(ash.orders, builder)(events, **kwargs))
    if orders is None:
        return
    r = outcome("backtest(built orders)", lambda: ash.backtest(clean_bars(10, 1), orders))
    if r is not None:
        check_result(r, sane(size) and sane(price), f"backtest({builder})")

