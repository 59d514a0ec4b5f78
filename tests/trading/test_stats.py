"""Result.stats(): the labelled Stats mapping, the return sampling that goes with the
annualization, and the figures checked against backtesting.py's own computation
(its SmaCross on GOOG replayed in our engine, and its stats formulas fed our equity).

Conventions are in docs/stats.md; where ours differ from backtesting.py's (Sharpe,
volatility, Sortino, profit factor, average trade, exposure, CAGR's year) the figure is
checked against an independent NumPy/pandas computation instead.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

import aftershock as ash
from builders import Macro
from aftershock.trading.stats import Stats
from aftershock.trading.results import STATS_DOC

# the keys Result.stats() had before it grew (their values must not change)
ORIGINAL_KEYS = [
    "start", "end", "init_cash", "final_equity", "total_return", "max_drawdown", "sharpe", "trades", "open_trades",
    "win_rate", "avg_trade_return", "profit_factor", "total_fees", "exposure", "bars_visited",
]


@pytest.fixture(scope="module")
def btc_run():
    data = ash.datasets.sample()
    bars = data.bars.filter(pl.col("symbol") == "BTC")
    result = ash.backtest(bars, Macro(), calendar=data.calendar, fees=0.0004, latency="2s")
    assert result.stats()["trades"] >= 5
    return bars, result


def per_bar_equity(result, ts_us: np.ndarray) -> np.ndarray:
    eq = result.equity
    ets = eq["ts"].dt.epoch("us").to_numpy()
    pos = np.searchsorted(ets, ts_us, side="right") - 1
    return np.where(pos >= 0, eq["equity"].to_numpy()[np.maximum(pos, 0)], result.config["init_cash"])


# --- the mapping ---------------------------------------------------------------------


def test_stats_is_a_labelled_mapping_that_still_works_as_a_dict(btc_run):
    _, r = btc_run
    s = r.stats()
    assert isinstance(s, Stats)
    assert list(s)[: len(ORIGINAL_KEYS)] == ORIGINAL_KEYS
    assert set(s) == set(STATS_DOC)
    d = dict(s)
    assert d == s.to_dict() and {**s} == d and s == d
    assert s["final_equity"] == r.final_equity
    frame = s.to_frame()
    assert frame.height == 1 and frame["trades"][0] == s["trades"]
    text = repr(s)
    assert f"Return{' ' * 5}" in text or "Return " in text
    assert f"{s['total_return'] * 100:,.2f}%" in text  # percentages as percentages
    assert "Max drawdown duration" in text and "d " in s.formatted()["max_drawdown_duration"]
    assert s._repr_html_().startswith("<table") and "Sharpe ratio" in s._repr_html_()
    long = s.table()
    assert long.columns == ["key", "figure", "value"] and long.height == len(s)


def test_trade_counts_agree_everywhere(btc_run):
    _, r = btc_run
    s = r.stats()
    closed = r.trades.filter(pl.col("status") == "closed").height
    assert s["trades"] == closed and s["open_trades"] == r.trades.height - closed
    assert ash.report.attribution(r)["trades"].sum() == closed


def test_original_figures_against_pandas(btc_run):
    bars, r = btc_run
    s = r.stats()
    eq = r.equity.to_pandas().set_index("ts")["equity"]
    daily = eq.resample("1D").last().ffill()
    rets = pd.concat([pd.Series([r.config["init_cash"]]), daily.reset_index(drop=True)]).pct_change().dropna()
    assert s["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(365), rel=1e-12)
    assert s["total_return"] == pytest.approx(r.final_equity / r.config["init_cash"] - 1, rel=1e-15)


# --- return sampling follows the annualization ------------------------------------------


def test_periods_per_year_252_means_trading_day_returns(btc_run):
    _, r = btc_run
    init = r.config["init_cash"]
    cal, trd = r.stats(), r.stats(periods_per_year=252)
    assert (cal["return_sampling"], cal["periods_per_year"]) == ("calendar", 365.0)
    assert (trd["return_sampling"], trd["periods_per_year"]) == ("trading", 252.0)
    assert r.stats(returns="trading") == trd
    # days with bars: the sample's BTC trades every day, so only the factor changes
    eq = r.equity.to_pandas().set_index("ts")["equity"]
    days = eq.resample("1D").last().ffill()
    rets = pd.concat([pd.Series([init]), days.reset_index(drop=True)]).pct_change().dropna()
    assert trd["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252), rel=1e-12)
    # explicit choices are honoured; an unexplained number is refused
    both = r.stats(periods_per_year=252, returns="calendar")
    assert both["sharpe"] == pytest.approx(cal["sharpe"] * math.sqrt(252 / 365), rel=1e-12)
    with pytest.raises(ash.ConfigError, match="returns="):
        r.stats(periods_per_year=12)
    with pytest.raises(ash.ConfigError):
        r.stats(returns="weekly")
    with pytest.raises(ash.ConfigError):
        r.stats(risk_free=5.0)
    with pytest.raises(ash.ConfigError, match="benchmark"):
        r.stats(benchmark="DOGE")


def test_trading_days_skip_days_without_bars():
    # bars on Friday and Monday only: trading-day returns are Fri->Mon, one return
    ts = [dt.datetime(2025, 1, 3, 15, tzinfo=dt.timezone.utc), dt.datetime(2025, 1, 6, 15, tzinfo=dt.timezone.utc),
          dt.datetime(2025, 1, 7, 15, tzinfo=dt.timezone.utc)]
    bars = pl.DataFrame({"ts": ts, "symbol": "X", "open": [100.0, 110, 99], "high": [100.0, 110, 99],
                         "low": [100.0, 110, 99], "close": [100.0, 110, 99]})
    orders = pl.DataFrame({"submit_ts": [ts[0] - dt.timedelta(minutes=1)], "symbol": ["X"], "side": ["buy"], "qty": [1.0]})
    r = ash.backtest(bars, orders, init_cash=1_000)
    trading = r._sampled_equity("trading")
    calendar = r._sampled_equity("calendar")
    assert trading.tolist() == [1_000.0, 1_010.0, 999.0]
    assert calendar.tolist() == [1_000.0, 1_000.0, 1_000.0, 1_010.0, 999.0]  # Sat and Sun carried


def test_risk_free_rate_lowers_sharpe_and_sortino_by_the_period_rate(btc_run):
    _, r = btc_run
    s0, s5 = r.stats(), r.stats(risk_free=0.05)
    assert s5["sharpe"] < s0["sharpe"] and s5["sortino"] < s0["sortino"] and s5["risk_free"] == 0.05
    eq = r.equity.to_pandas().set_index("ts")["equity"]
    days = eq.resample("1D").last().ffill()
    rets = pd.concat([pd.Series([r.config["init_cash"]]), days.reset_index(drop=True)]).pct_change().dropna()
    x = rets - (1.05 ** (1 / 365) - 1)
    assert s5["sharpe"] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(365), rel=1e-12)
    downside = math.sqrt((np.minimum(x, 0) ** 2).mean())
    assert s5["sortino"] == pytest.approx(x.mean() / downside * math.sqrt(365), rel=1e-12)
    vol = rets.std(ddof=1) * math.sqrt(365)
    assert s0["volatility_ann"] == pytest.approx(vol, rel=1e-12)


# --- against backtesting.py ----------------------------------------------------------------

# backtesting.py is in the test extra: these tests run wherever the suite does.


def _theirs(trades: pd.DataFrame, equity: np.ndarray, ohlc: pd.DataFrame) -> pd.Series:
    from backtesting._stats import compute_stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_stats(trades, equity, ohlc, None, 0.0)


def _their_trades(result, index: pd.DatetimeIndex) -> pd.DataFrame:
    closed = result.trades.filter(pl.col("status") == "closed").to_pandas()
    entry = pd.DatetimeIndex(closed["entry_ts"]).tz_convert(None)
    exit_ = pd.DatetimeIndex(closed["exit_ts"]).tz_convert(None)
    return pd.DataFrame({
        "PnL": closed["pnl"].to_numpy(), "ReturnPct": closed["return"].to_numpy(),
        "EntryBar": index.searchsorted(entry), "ExitBar": index.searchsorted(exit_),
        "EntryTime": entry, "ExitTime": exit_, "Duration": exit_ - entry,
    })


def _td(x) -> dt.timedelta:
    return pd.Timedelta(x).to_pytimedelta()


# our key -> (backtesting.py's key, scale): the figures whose conventions agree
AGREE = {
    "final_equity": ("Equity Final [$]", 1), "equity_peak": ("Equity Peak [$]", 1), "total_return": ("Return [%]", 100),
    "return_ann": ("Return (Ann.) [%]", 100), "calmar": ("Calmar Ratio", 1), "max_drawdown": ("Max. Drawdown [%]", 100),
    "avg_drawdown": ("Avg. Drawdown [%]", 100), "win_rate": ("Win Rate [%]", 100), "best_trade": ("Best Trade [%]", 100),
    "worst_trade": ("Worst Trade [%]", 100), "avg_trade_return": ("Expectancy [%]", 100), "sqn": ("SQN", 1),
    "kelly": ("Kelly Criterion", 1), "beta": ("Beta", 1),
}
SAME_DURATION = {"duration": "Duration", "max_drawdown_duration": "Max. Drawdown Duration", "max_trade_duration": "Max. Trade Duration"}


def assert_agree(ours, theirs, extra: dict | None = None, *, bar: dt.timedelta) -> None:
    for key, (their_key, scale) in {**AGREE, **(extra or {})}.items():
        assert ours[key] * scale == pytest.approx(theirs[their_key], rel=1e-9), key
    for key, their_key in SAME_DURATION.items():
        assert ours[key] == _td(theirs[their_key]), key
    assert ours["trades"] == theirs["# Trades"]
    # theirs rounds mean durations up to the bar resolution
    for key, their_key in (("avg_drawdown_duration", "Avg. Drawdown Duration"), ("avg_trade_duration", "Avg. Trade Duration")):
        assert dt.timedelta(0) <= _td(theirs[their_key]) - ours[key] < bar, key



def _their_stats_on_our_equity(run) -> pd.Series:
    """backtesting.py's compute_stats fed our per-bar equity and closed trades."""
    bars, r = run
    ts_us = bars["ts"].dt.epoch("us").to_numpy()
    index = pd.DatetimeIndex(bars["ts"].to_pandas()).tz_convert(None)
    ohlc = pd.DataFrame({"Close": bars["close"].to_numpy()}, index=index)
    return _theirs(_their_trades(r, index), per_bar_equity(r, ts_us), ohlc)


def test_figures_equal_backtesting_py_formulas_on_our_equity(btc_run):
    # 24/7 bars, so backtesting.py annualizes by 365 calendar days, as our default does
    theirs = _their_stats_on_our_equity(btc_run)
    ours = btc_run[1].stats()
    extra = {"buy_hold_return": ("Buy & Hold Return [%]", 100), "cagr": ("CAGR [%]", 100), "alpha": ("Alpha [%]", 100)}
    assert_agree(ours, theirs, extra, bar=dt.timedelta(minutes=1))


@pytest.fixture(scope="module")
def goog():
    """backtesting.py's SmaCross on GOOG, and the same fills replayed in our engine."""
    from backtesting.test import GOOG
    from test_presets import SmaCross, theirs as run_theirs

    theirs = run_theirs(SmaCross, cash=10_000, commission=0, exclusive_orders=False)  # backtesting.py's defaults
    ts = [dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc) for d in GOOG.index]
    bars = pl.DataFrame({"ts": ts, "symbol": "GOOG", "open": GOOG.Open.to_numpy(), "high": GOOG.High.to_numpy(),
                         "low": GOOG.Low.to_numpy(), "close": GOOG.Close.to_numpy()})
    # their orders are decided on a bar's close and fill at the next bar's open: ours when
    # decided at the previous bar's open time (the first bar opening strictly after it)
    rows = []
    trades = theirs._trades
    open_trades = [(t.size, t.entry_bar) for t in theirs._strategy.trades]
    for size, entry_bar, exit_bar in [*zip(trades.Size, trades.EntryBar, trades.ExitBar), *[(s, b, None) for s, b in open_trades]]:
        rows.append((entry_bar, 1, "buy" if size > 0 else "sell", abs(size)))
        if exit_bar is not None:
            rows.append((exit_bar, 0, "sell" if size > 0 else "buy", abs(size)))
    rows.sort(key=lambda x: (x[0], x[1]))  # at a reversal bar the exit goes first
    orders = pl.DataFrame({"submit_ts": [ts[b - 1] for b, *_ in rows], "symbol": "GOOG", "side": [s for _, _, s, _ in rows],
                           "qty": [float(q) for *_, q in rows]})
    return theirs, ash.backtest(bars, orders, init_cash=10_000), len(open_trades)


def test_smacross_on_goog_replayed_in_our_engine_agrees_with_backtesting_py(goog):
    theirs, r, n_open = goog
    ours = r.stats(periods_per_year=252)  # GOOG has no weekends: backtesting.py uses 252 trading days
    assert ours["open_trades"] == n_open == 1
    assert_agree(ours, theirs, bar=dt.timedelta(days=1))

def test_every_key_is_defined_in_docs_stats_md():
    from conftest import REPO_ROOT

    import dataclasses

    from aftershock.trading.stats import Conventions

    text = (REPO_ROOT / "docs" / "stats.md").read_text(encoding="utf-8")
    figures = text.split("## The figures", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", figures, flags=re.M)) == set(STATS_DOC)
    choices = text.split("## Conventions you can pick", 1)[1].split("\n## ", 1)[0]
    fields = {f.name for f in dataclasses.fields(Conventions)} - {"name"}
    assert set(re.findall(r"^\| `([a-z_]+)` \|", choices, flags=re.M)) == fields


def test_docs_example_gives_backtesting_py_figures(goog):
    from conftest import REPO_ROOT

    theirs, result, _ = goog
    (block,) = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "docs" / "stats.md").read_text(encoding="utf-8"), flags=re.S)
    ns = {"result": result}
    exec(compile(block, "docs/stats.md", "exec"), ns)
    assert ns["peer"]["avg_trade_return"] * 100 == pytest.approx(theirs["Avg. Trade [%]"], rel=1e-9)
    assert ns["peer"]["profit_factor"] == pytest.approx(theirs["Profit Factor"], rel=1e-9)
    assert ns["mixed"]["avg_trade_return"] == ns["peer"]["avg_trade_return"]
    assert ns["mixed"]["sharpe"] == ns["ours"]["sharpe"] != ns["peer"]["sharpe"]


# --- conventions="backtesting.py": backtesting.py's whole table, no alignment by hand --------

# our key -> (backtesting.py's key, scale) for every figure of its table
TABLE = {
    "exposure": ("Exposure Time [%]", 100), "final_equity": ("Equity Final [$]", 1), "equity_peak": ("Equity Peak [$]", 1),
    "total_return": ("Return [%]", 100), "buy_hold_return": ("Buy & Hold Return [%]", 100),
    "return_ann": ("Return (Ann.) [%]", 100), "volatility_ann": ("Volatility (Ann.) [%]", 100), "cagr": ("CAGR [%]", 100),
    "sharpe": ("Sharpe Ratio", 1), "sortino": ("Sortino Ratio", 1), "calmar": ("Calmar Ratio", 1), "alpha": ("Alpha [%]", 100),
    "beta": ("Beta", 1), "max_drawdown": ("Max. Drawdown [%]", 100), "avg_drawdown": ("Avg. Drawdown [%]", 100),
    "win_rate": ("Win Rate [%]", 100), "best_trade": ("Best Trade [%]", 100), "worst_trade": ("Worst Trade [%]", 100),
    "avg_trade_return": ("Avg. Trade [%]", 100), "profit_factor": ("Profit Factor", 1), "expectancy": ("Expectancy [%]", 100),
    "sqn": ("SQN", 1), "kelly": ("Kelly Criterion", 1),
}
DURATIONS = {
    "duration": "Duration", "max_drawdown_duration": "Max. Drawdown Duration", "avg_drawdown_duration": "Avg. Drawdown Duration",
    "max_trade_duration": "Max. Trade Duration", "avg_trade_duration": "Avg. Trade Duration",
}


def assert_their_table(ours, theirs) -> None:
    for key, (their_key, scale) in TABLE.items():
        assert ours[key] * scale == pytest.approx(theirs[their_key], rel=1e-9, abs=1e-12), key
    for key, their_key in DURATIONS.items():
        assert ours[key] == _td(theirs[their_key]), key
    assert ours["trades"] == theirs["# Trades"]
    assert ours["start"].replace(tzinfo=None) == theirs["Start"] and ours["end"].replace(tzinfo=None) == theirs["End"]
    if "Commissions [$]" in theirs:
        assert ours["total_fees"] == pytest.approx(theirs["Commissions [$]"], rel=1e-9)
    assert ours["conventions"] == "backtesting.py"


def test_backtesting_py_conventions_give_its_table_for_smacross_on_goog(goog):
    theirs, r, _ = goog
    # the replayed fills, no preset: the option alone, with the indicators' warm-up for buy & hold
    assert_their_table(r.stats(conventions="backtesting.py", warmup=19), theirs)
    assert r.stats(conventions="backtesting.py")["periods_per_year"] == 252  # no weekend bars


@pytest.mark.parametrize("commission", [0.0, 0.002])
def test_preset_result_reports_backtesting_py_table_by_default(commission):
    from test_presets import SmaCross, crosses, theirs as run_theirs
    from backtesting.test import GOOG

    theirs = run_theirs(SmaCross, cash=10_000, commission=commission, exclusive_orders=False)
    up, down = crosses(10, 20)
    r = ash.presets.backtesting_py(GOOG, buy=up, sell=down, cash=10_000, commission=commission, warmup=19)
    assert_their_table(r.stats(), theirs)


def test_backtesting_py_conventions_on_24_7_bars_equal_its_formulas_on_our_equity(btc_run):
    # compute_stats fed our per-bar equity and closed trades: 1-minute bars with weekends,
    # so it samples every day and annualizes by 365; durations round up to the minute
    theirs = _their_stats_on_our_equity(btc_run)
    ours = btc_run[1].stats(conventions="backtesting.py")
    assert ours["periods_per_year"] == 365 and ours["return_sampling"] == "trading"
    assert_their_table(ours, theirs)


def test_each_convention_is_a_switch_of_its_own(goog):
    import dataclasses

    from aftershock.trading.stats import AFTERSHOCK, Conventions

    theirs, r, _ = goog
    base = r.stats(periods_per_year=252)  # GOOG's trading days: CAGR's year then differs from 365 days
    assert base["conventions"] == "aftershock" and base["expectancy"] == base["avg_trade_return"]
    switches = {
        "avg_trade": ("geometric", {"avg_trade_return"}),
        "profit_factor": ("returns", {"profit_factor"}),
        "exposure": ("bars", {"exposure"}),
        "year": ("periods", {"cagr"}),
        "fees": ("closed", set()),  # no commission in this run: nothing to leave out
        "risk": ("compounded", {"return_ann", "volatility_ann", "sharpe", "sortino", "calmar"}),
        "durations": ("bar", {"avg_drawdown_duration", "avg_trade_duration"}),
    }
    for field, (value, changed) in switches.items():
        s = r.stats(periods_per_year=252, conventions=dataclasses.replace(AFTERSHOCK, name="custom", **{field: value}))
        differ = {k for k in base if base[k] != s[k]} - {"conventions"}
        assert changed <= differ <= changed | {"total_fees"}, (field, differ)
        assert s["conventions"] == "custom"
    s = r.stats(conventions=dataclasses.replace(AFTERSHOCK, exposure="bars"))
    assert s["exposure"] * 100 == pytest.approx(theirs["Exposure Time [%]"], rel=1e-12)
    # the sampling follows the conventions unless the call says otherwise
    assert r.stats(conventions="backtesting.py", periods_per_year=365)["periods_per_year"] == 365
    with pytest.raises(ash.ConfigError, match="avg_trade"):
        Conventions(avg_trade="median")
    with pytest.raises(ash.ConfigError, match="conventions"):
        r.stats(conventions="zipline")
    with pytest.raises(ash.ConfigError, match="warmup"):
        r.stats(warmup=-1)


def _per_bar_drawdowns(result, bars: pl.DataFrame) -> tuple[list[float], list[dt.timedelta]]:
    """Drawdown episodes the plain way: equity on every bar of the union timeline."""
    timeline = np.unique(bars["ts"].dt.epoch("us").to_numpy())
    eq = per_bar_equity(result, timeline)
    dd = eq / np.maximum.accumulate(eq) - 1
    depths, lengths, start = [], [], None
    for i, v in enumerate(dd):
        if v < 0 and start is None:
            start = i - 1
        if start is not None and (v == 0 or i == len(dd) - 1) and i > start + 1:
            depths.append(dd[start + 1 : i + 1].min())
            lengths.append(dt.timedelta(microseconds=int(timeline[i] - timeline[start])))
            start = None
    return depths, lengths


def test_drawdown_episodes_from_equity_rows_equal_the_bar_by_bar_walk(sample_multi):
    bars, r = sample_multi
    depths, lengths = _per_bar_drawdowns(r, bars)
    s = r.stats()
    assert len(depths) >= 2
    assert s["avg_drawdown"] == pytest.approx(float(np.mean(depths)), rel=1e-12)
    assert s["max_drawdown_duration"] == max(lengths)
    mean = sum(lengths, dt.timedelta(0)) / len(lengths)
    assert abs(s["avg_drawdown_duration"] - mean) <= dt.timedelta(microseconds=1)


def test_a_fall_at_the_last_bar_alone_is_no_episode_nor_part_of_the_one_before():
    from aftershock.trading.stats import _drawdown_episodes

    ts = np.array([0, 10, 20, 30], dtype=np.int64)
    values = np.array([100.0, 90.0, 100.0, 95.0])
    depth, length, max_dd = _drawdown_episodes(ts, values, 0, 30, 100.0, ts, np.array([0, 4]))
    assert depth.tolist() == [90.0 / 100.0 - 1.0] and length.tolist() == [20]
    assert max_dd == 90.0 / 100.0 - 1.0
    # two rows below the peak at the end: an open episode, to the last bar
    ts5 = np.array([0, 10, 20, 30, 40], dtype=np.int64)
    depth, length, _ = _drawdown_episodes(ts5, np.array([100.0, 90.0, 100.0, 95.0, 97.0]), 0, 40, 100.0, ts5,
                                          np.array([0, 5]))
    assert depth.tolist() == [90.0 / 100.0 - 1.0, 95.0 / 100.0 - 1.0] and length.tolist() == [20, 20]


@pytest.fixture(scope="module")
def sample_multi():
    class TwoAssets(ash.Strategy):
        hold: str = "6h"

        def on_release(self, events):
            hot = events.filter(pl.col("hawkish_z").abs() > 0)
            a = ash.orders.market(hot, symbol="BTC", side=-pl.col("hawkish_z").sign(), size=0.3,
                                  size_type="percent_equity", exit_after=self.hold)
            b = ash.orders.market(hot, symbol="ETH", side=pl.col("hawkish_z").sign(), size=0.3,
                                  size_type="percent_equity", exit_after="2h")
            return pl.concat([a, b])

    data = ash.datasets.sample()
    return data.bars, ash.backtest(data.bars, TwoAssets(), calendar=data.calendar, fees=0.0004, latency="2s")
