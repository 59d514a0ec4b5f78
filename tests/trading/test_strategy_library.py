"""The example strategies under strategies/: each runs from its command line on the
bundled sample and on the user's own files, trades where the sample has qualifying
events, and keeps the point-in-time promise its docstring makes."""

from __future__ import annotations

import datetime as dt
import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

import aftershock as ash
from aftershock.trading.strategy import compile_orders

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
if str(STRATEGIES) not in sys.path:
    sys.path.insert(0, str(STRATEGIES))

NAMES = ["cpi_fade", "cpi_momentum", "predrift", "payrolls_breakout", "policy_fade", "sensitivity_sizing"]
FEES, LATENCY = 0.0004, dt.timedelta(seconds=2)
UTC = dt.timezone.utc
MINUTE_US = 60_000_000
PRECISION = {"exact": dt.timedelta(0), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def load(name: str):
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def data():
    return ash.datasets.sample()


@pytest.fixture(scope="module")
def btc(data):
    return data.bars.filter(pl.col("symbol") == "BTC")


def known(calendar: pl.DataFrame) -> dict[str, dt.datetime]:
    """When each event is public, from its time precision (written out here, not the
    library's helper)."""
    return {
        e: r + PRECISION[p]
        for e, r, p in calendar.select("event_id", "release_ts", "time_precision").iter_rows()
    }


def run(strategy, data):
    return ash.backtest(data.bars, strategy, calendar=data.calendar, fees=FEES, latency=LATENCY)


class Closes:
    """Prices at an instant, computed directly from the bar arrays: the close of the
    last 1-minute bar that closed (ts + 1 minute) at or before it, and the open of the
    first bar that opens strictly after it."""

    def __init__(self, bars: pl.DataFrame):
        self.ts = bars["ts"].dt.epoch("us").to_numpy()
        self.open = bars["open"].to_numpy()
        self.low = bars["low"].to_numpy()
        self.close = bars["close"].to_numpy()

    @staticmethod
    def us(t: dt.datetime) -> int:
        return int((t - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1))

    def close_at(self, t: dt.datetime) -> float:
        i = np.searchsorted(self.ts + MINUTE_US, self.us(t), side="right") - 1
        assert i >= 0
        return float(self.close[i])

    def next_bar(self, t: dt.datetime) -> int:
        return int(np.searchsorted(self.ts, self.us(t), side="right"))


def printed_trades(out: str) -> int:
    match = re.search(r"^\s+trades: (\d+)$", out, re.MULTILINE)
    assert match, out
    return int(match.group(1))


# -- the command lines ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_main_runs_on_the_sample_prints_and_writes_the_report(name, tmp_path, capsys):
    report = tmp_path / f"{name}.html"
    assert load(name).main(["--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert printed_trades(out) > 0  # the sample has qualifying events for every strategy
    assert "per-event attribution" in out and "final_equity" in out
    html = report.read_text()
    assert "<h2>Trades (" in html and "<td>" in html and "Plotly.newPlot" in html


@pytest.fixture(scope="module")
def helps() -> dict[str, tuple[int, str, str]]:
    """``python strategies/<name>.py --help`` for every strategy, run side by side."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(STRATEGIES / f"{name}.py"), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in NAMES
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_help_runs_as_a_script(name, helps):
    returncode, stdout, stderr = helps[name]
    assert returncode == 0, stderr
    for flag in ("--bars", "--calendar", "--report", "--fees", "--latency", "--param"):
        assert flag in stdout
    assert f"{name}.html" in stdout


def test_main_reads_the_users_own_bars_and_calendar(data, tmp_path, capsys):
    # a bars file without a symbol column (named with --symbol) and a Parquet calendar
    bars = tmp_path / "btc.parquet"
    data.bars.filter(pl.col("symbol") == "BTC", pl.col("ts") < dt.datetime(2025, 2, 20, tzinfo=UTC)).drop("symbol").write_parquet(bars)
    calendar = tmp_path / "calendar.parquet"
    data.calendar.write_parquet(calendar)
    args = ["--bars", str(bars), "--symbol", "BTC", "--calendar", str(calendar), "--report", str(tmp_path / "r.html")]
    assert load("cpi_momentum").main(args) == 0
    out = capsys.readouterr().out
    assert "your bars" in out and "['BTC']" in out
    assert printed_trades(out) == 1  # of the two CPI prints traded on the full sample, only 12 Feb is before 20 Feb


def test_param_flag_sets_typed_parameters(tmp_path, capsys):
    load("cpi_momentum").main(["--param", "threshold=5", "--param", "hold=4h", "--report", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert "threshold=5.0, hold='4h'" in out
    assert printed_trades(out) == 0  # no print in the sample is 5 sigma
    with pytest.raises(SystemExit, match="no parameter 'treshold'"):
        load("cpi_momentum").main(["--param", "treshold=1"])


def test_bad_input_ends_the_command_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="error: .*missing.parquet"):
        load("policy_fade").main(["--bars", str(tmp_path / "missing.parquet"), "--report", str(tmp_path / "r.html")])
    with pytest.raises(SystemExit, match="error: stop_loss"):
        load("payrolls_breakout").main(["--param", "band=0.01", "--report", str(tmp_path / "r.html")])
    assert not (tmp_path / "r.html").exists()


# -- the point-in-time promise, for every strategy ---------------------------------------

STRATEGY_CLASSES = {
    "cpi_fade": "CpiFade", "cpi_momentum": "CpiMomentum", "predrift": "PreDrift",
    "payrolls_breakout": "PayrollsBreakout", "policy_fade": "PolicyFade", "sensitivity_sizing": "SensitivitySizing",
}
# decision instants of the strategies above, and instants just before some
CUTS = [
    dt.datetime(2025, 1, 15, 13, 30, tzinfo=UTC),
    dt.datetime(2025, 2, 7, 13, 29, tzinfo=UTC),
    dt.datetime(2025, 2, 12, 13, 29, 59, tzinfo=UTC),
    dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC),
    dt.datetime(2025, 3, 7, 1, 15, tzinfo=UTC),
    dt.datetime(2025, 3, 12, 12, 30, tzinfo=UTC),
    dt.datetime(2025, 3, 28, 12, 25, tzinfo=UTC),
]


def _after(data, t: dt.datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sample with everything published after ``t`` rewritten: the outcome of every
    event public after ``t`` (actual, previous, direction, source text) and every bar
    that closes after ``t``."""
    public_after = pl.lit(pl.Series([known(data.calendar)[e] > t for e in data.calendar["event_id"]]))
    calendar = data.calendar.with_columns(
        *(pl.when(public_after).then(pl.col(c) * 3.0 + 1.0).otherwise(pl.col(c)).alias(c) for c in ("actual", "previous")),
        pl.when(public_after).then(-pl.col("direction")).otherwise(pl.col("direction")).alias("direction"),
        pl.when(public_after).then(pl.lit("BTC +9% on the print")).otherwise(pl.col("source")).alias("source"),
    )
    later = pl.col("ts") + dt.timedelta(minutes=1) > t
    wobble = 1.3 + 0.2 * (pl.col("ts").dt.epoch("s") / 2220.0).sin()  # per bar, so returns change too
    bars = data.bars.with_columns(pl.when(later).then(pl.col(c) * wobble).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close"))
    return calendar, bars


@pytest.fixture(scope="module")
def rewritten(data):
    """Per cut, the rewritten calendar and bars (bars prepared once)."""
    from aftershock.trading.engine import prepare_bars

    return {t: (cal, prepare_bars(bars)) for t, (cal, bars) in ((t, _after(data, t)) for t in CUTS)}


@pytest.mark.parametrize("name", NAMES)
def test_orders_submitted_by_t_do_not_depend_on_anything_published_after_t(name, data, rewritten):
    params = {"side": "trend"} if name == "predrift" else {}  # so that its orders read the bars
    strategy = getattr(load(name), STRATEGY_CLASSES[name])(**params)
    base = compile_orders(strategy, data.calendar, data.bars)
    compared, changed = 0, 0
    for t in CUTS:
        calendar, bars = rewritten[t]
        moved = compile_orders(strategy, calendar, bars)
        by_t = pl.col("submit_ts") <= t
        assert moved.filter(by_t).equals(base.filter(by_t)), t
        compared += base.filter(by_t).height
        changed += not moved.equals(base)
    assert compared > 0
    assert changed > 0  # the rewrite does reach the orders submitted later


# -- CPI momentum and fade: one trade, two signs --------------------------------------


def test_momentum_and_fade_take_opposite_sides_of_the_same_prints(data):
    fade = compile_orders(load("cpi_fade").CpiFade(), data.calendar)
    momentum = compile_orders(load("cpi_momentum").CpiMomentum(), data.calendar)
    assert fade.height == momentum.height == 2  # CPI 12 Feb (z = +0.68) and 12 Mar (z = -0.69)
    assert fade["tag"].to_list() == momentum["tag"].to_list() == ["CPI_YOY-2025-02-12", "CPI_YOY-2025-03-12"]
    assert fade["submit_ts"].to_list() == momentum["submit_ts"].to_list()
    assert momentum["side"].to_list() == ["buy", "sell"]  # with the hawkish sign
    assert fade["side"].to_list() == ["sell", "buy"]


# -- pre-release drift -----------------------------------------------------------------


def test_predrift_enters_and_exits_before_every_release(data):
    mod = load("predrift")
    result = run(mod.PreDrift(), data)
    published = known(data.calendar)
    trades = result.trades
    assert trades.height == 6  # 3 CPI and 3 PCE instants (two PCE figures share 28 Mar)
    for tag, entry, exit_ in trades.select("tag", "entry_ts", "exit_ts").iter_rows():
        release = min(published[e] for e in tag.split("+"))
        assert release - dt.timedelta(hours=10) + LATENCY < entry < release
        assert entry < exit_ < release
    assert set(trades["exit_reason"]) <= {"exit", "stop_loss"}


def test_predrift_lead_is_a_sweepable_parameter(data):
    mod = load("predrift")
    orders = compile_orders(mod.PreDrift(decide_before="4h"), data.calendar, data.bars)
    entries = orders.filter(~pl.col("reduce_only"))
    cpi = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    assert cpi - dt.timedelta(hours=4) in entries["submit_ts"].to_list()
    grid = ash.sweep(data.bars, mod.PreDrift, {"decide_before": ["2h", "10h"]}, calendar=data.calendar, fees=FEES, latency=LATENCY)
    assert grid["trades"].to_list() == [6, 6]
    assert grid["exposure"][0] < grid["exposure"][1]
    with pytest.raises(ash.ConfigError, match="exit_before"):
        compile_orders(mod.PreDrift(decide_before="5m", exit_before="10m"), data.calendar, data.bars)


def test_predrift_stats_match_a_hand_computation(data, btc):
    """Six long round trips at the open of the first bar after each decision + 2 s,
    flat at the open of the first bar after release - 5 min + 2 s, half the equity
    each, fees on both legs, compounded."""
    result = run(load("predrift").PreDrift(), data)
    px = Closes(btc)
    releases = sorted(
        {r for r, ind in data.calendar.select("release_ts", "indicator").iter_rows() if ind in ("CPI_YOY", "PCE_YOY", "CORE_PCE_YOY")}
    )
    equity, pnls = 100_000.0, []
    for release in releases:
        i = px.next_bar(release - dt.timedelta(hours=10) + LATENCY)
        j = px.next_bar(release - dt.timedelta(minutes=5) + LATENCY)
        p_in, p_out = px.open[i], px.open[j]
        assert px.low[i:j].min() > p_in * 0.97  # the stop-loss never fires, so this is the whole story
        q = 0.5 * equity / p_in
        pnl = q * (p_out - p_in) - FEES * q * (p_in + p_out)
        pnls.append(pnl)
        equity += pnl
    stats = result.stats()
    assert stats["trades"] == len(releases) == 6
    np.testing.assert_allclose(result.trades["pnl"].to_numpy(), pnls, rtol=1e-9)
    np.testing.assert_allclose(stats["final_equity"], equity, rtol=1e-12)
    assert stats["win_rate"] == pytest.approx(np.mean(np.array(pnls) > 0))


# -- payrolls breakout -----------------------------------------------------------------


def _one_nfp(data) -> pl.DataFrame:
    return data.calendar.filter(pl.col("event_id").is_in(["NFP-2025-01-10", "UNRATE-2025-01-10"]))


def _path_bars(closes: list[float], start: dt.datetime) -> pl.DataFrame:
    """1-minute BTC bars through the given closes, each bar opening at the previous close."""
    c = np.asarray(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    ts = [start + dt.timedelta(minutes=k) for k in range(len(c))]
    return pl.DataFrame({"ts": ts, "symbol": "BTC", "open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c})


def _signed_position(fills: pl.DataFrame) -> np.ndarray:
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["qty"].to_numpy()
    return np.cumsum(signed)


def test_payrolls_breakout_second_trigger_flattens(data):
    """Both levels hit inside the window: long at the buy stop, then the sell stop
    sells the same units and the position is flat; nothing else happens."""
    mod = load("payrolls_breakout")
    start = dt.datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    # 90 flat minutes at 100, the print lifts it through 100.2, then it falls through 99.8
    closes = [100.0] * 90 + [100.5, 100.5, 100.5, 100.5, 100.5, 99.5] + [99.5] * 120
    result = ash.backtest(_path_bars(closes, start), mod.PayrollsBreakout(), calendar=_one_nfp(data), fees=FEES, latency=LATENCY)
    fills = result.fills
    units = 50_000.0 / 100.0
    assert fills.select("side", "reason").rows() == [("buy", "entry"), ("sell", "exit")]
    np.testing.assert_allclose(fills["qty"].to_numpy(), [units, units])
    np.testing.assert_allclose(fills["price"].to_numpy(), [100.2, 99.8])  # at the stop levels
    assert fills["ts"].to_list() == [start + dt.timedelta(minutes=90), start + dt.timedelta(minutes=95)]
    assert _signed_position(fills)[-1] == pytest.approx(0.0, abs=1e-9)
    assert result.orders["status"].to_list() == ["filled", "filled"]
    pnl = units * (99.8 - 100.2) - FEES * units * (100.2 + 99.8)
    assert result.trades["pnl"].item() == pytest.approx(pnl)


def test_payrolls_breakout_both_levels_on_one_bar_end_flat(data):
    mod = load("payrolls_breakout")
    start = dt.datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    bars = _path_bars([100.0] * 200, start).with_columns(  # the 13:30 bar spans 99.5 .. 100.5
        high=pl.when(pl.col("ts") == start + dt.timedelta(minutes=90)).then(100.5).otherwise(pl.col("high")),
        low=pl.when(pl.col("ts") == start + dt.timedelta(minutes=90)).then(99.5).otherwise(pl.col("low")),
    )
    result = ash.backtest(bars, mod.PayrollsBreakout(), calendar=_one_nfp(data), fees=FEES, latency=LATENCY)
    fills = result.fills
    assert fills["ts"].to_list() == [start + dt.timedelta(minutes=90)] * 2
    assert fills["side"].sort().to_list() == ["buy", "sell"]
    np.testing.assert_allclose(fills["qty"].to_numpy(), [500.0, 500.0])
    assert _signed_position(fills)[-1] == pytest.approx(0.0, abs=1e-9)
    assert result.trades.height == 1 and result.trades["status"].item() == "closed"


def test_payrolls_breakout_one_side_holds_then_time_exit(data):
    mod = load("payrolls_breakout")
    start = dt.datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
    closes = [100.0] * 90 + [100.5] * 150
    result = ash.backtest(_path_bars(closes, start), mod.PayrollsBreakout(), calendar=_one_nfp(data), fees=FEES, latency=LATENCY)
    assert result.fills.select("side", "reason").rows() == [("buy", "entry"), ("sell", "time_exit")]
    assert result.fills["ts"][1] - result.fills["ts"][0] == dt.timedelta(hours=1)
    assert result.orders["status"].to_list() == ["filled", "expired"]
    assert result.orders["status_ts"][1] == dt.datetime(2025, 1, 10, 13, 59, tzinfo=UTC)  # placed 13:29 + 30m


def test_payrolls_breakout_on_the_sample_never_holds_more_than_one_side(data):
    mod = load("payrolls_breakout")
    result = run(mod.PayrollsBreakout(), data)
    orders, fills = result.orders, result.fills
    nfp = data.calendar.filter(pl.col("indicator") == "NFP")["event_id"].to_list()
    assert sorted(orders["tag"].unique().to_list()) == sorted(nfp)
    whipsaws = 0
    for tag in nfp:
        legs = orders.filter(pl.col("tag") == tag)
        assert legs["side"].sort().to_list() == ["buy", "sell"]
        units = legs["qty"][0]
        assert legs["qty"][1] == units
        f = fills.filter(pl.col("tag") == tag).sort("ts", maintain_order=True)
        pos = _signed_position(f)
        assert np.all(np.abs(pos) <= units * (1 + 1e-12))  # never more than one side's units
        assert pos[-1] == pytest.approx(0.0, abs=1e-12)
        assert (f["ts"] >= legs["submit_ts"][0] + LATENCY).all()
        if (legs["status"] == "filled").all():  # both levels hit: the second fill flattened
            whipsaws += 1
            assert f.height == 2 and f["reason"].to_list() == ["entry", "exit"]
    assert whipsaws >= 1  # the sample has one (7 Feb), so the flattening path is exercised on it


def test_payrolls_breakout_refuses_settings_that_break_the_pairing(data):
    mod = load("payrolls_breakout")
    with pytest.raises(ash.ConfigError, match="stop_loss"):
        compile_orders(mod.PayrollsBreakout(band=0.01, stop_loss=0.015), data.calendar, data.bars)
    with pytest.raises(ash.ConfigError, match="window"):
        compile_orders(mod.PayrollsBreakout(window="2h", hold="1h"), data.calendar, data.bars)


# -- policy-shock fade -----------------------------------------------------------------


def test_policy_fade_enters_after_publication_plus_decide_after_against_the_first_move(data, btc):
    mod = load("policy_fade")
    result = run(mod.PolicyFade(), data)
    published = known(data.calendar)
    release = dict(data.calendar.select("event_id", "release_ts").iter_rows())
    px = Closes(btc)
    entries = result.fills.filter(pl.col("reason") == "entry")
    last_bar = btc["ts"].max()
    policy = data.calendar.filter(pl.col("kind") == "policy", pl.col("release_ts") < last_bar)["event_id"].to_list()
    assert sorted(entries["tag"].to_list()) == sorted(policy)  # every policy event inside the bars
    for tag, ts, side in entries.select("tag", "ts", "side").iter_rows():
        decided = published[tag] + dt.timedelta(minutes=15)
        assert ts > decided + LATENCY
        move = np.log(px.close_at(decided) / px.close_at(release[tag]))
        assert side == ("sell" if move > 0 else "buy")


def test_policy_fade_ignores_bars_not_closed_at_its_decision(data):
    """The 7 March reserve order (hour precision) is decided at 01:00 + 15m: rewriting
    every later bar changes nothing; rewriting the bar that closed at 01:15 can."""
    mod = load("policy_fade")
    tag = "US-SBR-EO-2025-03-06"
    decided = dt.datetime(2025, 3, 7, 1, 15, tzinfo=UTC)
    cal = data.calendar.filter(pl.col("event_id") == tag)
    base = compile_orders(mod.PolicyFade(), cal, data.bars)

    def scaled(mask: pl.Expr, factor: float) -> pl.DataFrame:
        return data.bars.with_columns(
            pl.when(mask & (pl.col("symbol") == "BTC")).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        )

    later = scaled(pl.col("ts") + dt.timedelta(minutes=1) > decided, 0.5 if base["side"][0] == "sell" else 2.0)
    assert compile_orders(mod.PolicyFade(), cal, later).equals(base)
    flip = 0.8 if base["side"][0] == "sell" else 1.25  # turn the first move around
    last_closed = scaled(pl.col("ts") == decided - dt.timedelta(minutes=1), flip)
    assert compile_orders(mod.PolicyFade(), cal, last_closed)["side"][0] != base["side"][0]


# -- sensitivity-weighted sizing -------------------------------------------------------


def _sizing_orders(mod, calendar, bars) -> dict[str, tuple[str, float]]:
    orders = compile_orders(mod.SensitivitySizing(), calendar, bars)
    return {t: (s, q) for t, s, q in orders.select("tag", "side", "qty").iter_rows()}


def test_sensitivity_sizing_uses_only_earlier_releases(data):
    mod = load("sensitivity_sizing")
    base = _sizing_orders(mod, data.calendar, data.bars)
    assert set(base) == {"CPI_YOY-2025-02-12", "CPI_YOY-2025-03-12"}

    def with_actual(event_id: str, value: float) -> pl.DataFrame:
        return data.calendar.with_columns(
            pl.when(pl.col("event_id") == event_id).then(pl.lit(value)).otherwise(pl.col("actual")).alias("actual")
        )

    # a later release's figure moves the later trade, never the earlier one
    later = _sizing_orders(mod, with_actual("CPI_YOY-2025-03-12", 3.4), data.bars)
    assert later["CPI_YOY-2025-02-12"] == base["CPI_YOY-2025-02-12"]
    assert later.get("CPI_YOY-2025-03-12") != base["CPI_YOY-2025-03-12"]
    # a release in between (7 Mar payrolls) also only reaches the later trade
    between = _sizing_orders(mod, with_actual("NFP-2025-03-07", 300.0), data.bars)
    assert between["CPI_YOY-2025-02-12"] == base["CPI_YOY-2025-02-12"]
    assert between["CPI_YOY-2025-03-12"] != base["CPI_YOY-2025-03-12"]
    # control: an earlier release's figure does move the 12 Feb size, so the test can fail
    earlier = _sizing_orders(mod, with_actual("NFP-2025-02-07", 300.0), data.bars)
    assert earlier["CPI_YOY-2025-02-12"] != base["CPI_YOY-2025-02-12"]
    # bars after the 12 Feb decision move nothing decided then
    t = dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    bars = data.bars.with_columns(
        pl.when(pl.col("ts") >= t).then(pl.col(c) * 1.1).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")
    )
    assert _sizing_orders(mod, data.calendar, bars)["CPI_YOY-2025-02-12"] == base["CPI_YOY-2025-02-12"]


def test_sensitivity_sizing_slope_matches_statsmodels(data, btc):
    """The 12 Mar size, recomputed: reactions of every earlier release with a hawkish z
    from the bar arrays, OLS slope by statsmodels, size = min(1, 100 * |beta * z|)."""
    mod = load("sensitivity_sizing")
    cal = ash.surprises(data.calendar)
    published = known(cal)
    decided = dt.datetime(2025, 3, 12, 12, 30, tzinfo=UTC)
    px = Closes(btc)
    window = dt.timedelta(minutes=15)
    z, r = [], []
    for e, hz in cal.select("event_id", "hawkish_z").iter_rows():
        if hz is not None and published[e] + window <= decided:
            z.append(hz)
            r.append(np.log(px.close_at(published[e] + window) / px.close_at(published[e])))
    assert len(z) == 8  # NFP, UNRATE x 3 dates, CPI 15 Jan, CPI 12 Feb
    beta = sm.OLS(np.asarray(r), sm.add_constant(np.asarray(z))).fit().params[1]
    z_now = cal.filter(pl.col("event_id") == "CPI_YOY-2025-03-12")["hawkish_z"].item()
    side, qty = _sizing_orders(mod, data.calendar, data.bars)["CPI_YOY-2025-03-12"]
    assert side == ("buy" if beta * z_now > 0 else "sell")
    assert qty == pytest.approx(min(1.0, 100.0 * abs(beta * z_now)), rel=1e-9)
    assert qty < 1.0  # not capped, so the size really carries the slope
