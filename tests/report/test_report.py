"""aftershock.report: what the charts draw is what the frames hold, attribution buckets,
and self-contained pages. (tests/report/test_report_browser.py renders the pages.)"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest

import aftershock as ash
from aftershock.report import BUCKETS, attribution, attribution_by

from builders import Macro  # trades BTC on every macro surprise


@pytest.fixture(scope="module")
def sample():
    return ash.datasets.sample()


@pytest.fixture(scope="module")
def run(sample):
    return ash.backtest(sample.bars, Macro(), calendar=sample.calendar, fees=0.0004, latency="2s")


@pytest.fixture(scope="module")
def study(sample):
    return ash.study(sample.bars, sample.calendar, windows=["-10h", "15m", "1h", "1d"])


def traces(fig, name):
    return [t for t in fig.data if t.name == name]


def test_equity_and_drawdown_panels_draw_the_equity_frame(run):
    fig = run.plot()
    (eq,) = traces(fig, "equity")
    (dd,) = traces(fig, "drawdown")
    values = run.equity["equity"].to_numpy()
    assert np.array_equal(np.asarray(eq.y)[:-1], values) and eq.y[-1] == values[-1]  # carried to the last bar
    s = pd.Series(np.asarray(eq.y))
    expected = s / np.maximum(s.cummax(), run.config["init_cash"]) - 1
    assert np.allclose(np.asarray(dd.y), expected.to_numpy(), rtol=0, atol=1e-15)
    assert min(dd.y) == pytest.approx(run.stats()["max_drawdown"], rel=1e-12)
    assert eq.line.shape == "hv"  # equity is flat between the engine's rows


def test_price_panel_marks_every_fill_and_the_traded_events(run, sample):
    fig = run.plot(calendar=sample.calendar)
    fills = run.fills.filter(pl.col("symbol") == "BTC")
    for side in ("buy", "sell"):
        (t,) = traces(fig, f"{side} fills")
        part = fills.filter(pl.col("side") == side)
        assert len(t.x) == part.height and np.array_equal(np.asarray(t.y), part["price"].to_numpy())
    (traded,) = traces(fig, "events traded")
    tags = set(run.trades["tag"].drop_nulls().to_list())
    assert sorted(re.match(r"[^<]+", s).group(0) for s in traded.text) == sorted(tags)
    (other,) = traces(fig, "other events")
    btc = sample.bars.filter(pl.col("symbol") == "BTC")["ts"]
    in_span = sample.calendar.filter(pl.col("release_ts").is_between(btc.min(), btc.max()))
    assert 0 < in_span.height < sample.calendar.height  # one event is after the bars end: not drawn
    assert len(traded.x) + len(other.x) == in_span.height
    price = [t for t in fig.data if t.name.startswith("BTC ")]
    assert price and len(price[0].x) <= 4_000


def test_attribution_buckets_by_hawkish_surprise(run, sample):
    att = attribution(run, sample.calendar)
    assert att["pnl"].sum() == pytest.approx(run.trades.filter(pl.col("status") == "closed")["pnl"].sum(), rel=1e-12)
    for z, bucket in att.select("hawkish_z", "surprise").iter_rows():
        want = BUCKETS[3] if z is None else BUCKETS[0] if z > 1 else BUCKETS[2] if z < -1 else BUCKETS[1]
        assert bucket == want
    fig = run.plot(calendar=sample.calendar)
    for by in ("indicator", "category", "surprise"):
        (bar,) = traces(fig, f"P&L by {by}")
        g = attribution_by(run, sample.calendar, by)
        assert dict(zip(bar.x, bar.y)) == pytest.approx(dict(zip(g[by], g["pnl"])))
        assert sum(bar.y) == pytest.approx(att["pnl"].sum(), rel=1e-9)


def test_buckets_on_a_hand_made_calendar():
    ts = [dt.datetime(2025, 1, 1, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=m) for m in range(0, 60)]
    bars = pl.DataFrame({"ts": ts, "symbol": "X", "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0})
    cal = pl.DataFrame({"event_id": ["hot", "mild", "cold", "policy"], "indicator": ["A", "A", "B", None],
                        "category": ["c1", "c1", "c2", "tariff"], "release_ts": ts[1:41:10], "hawkish_z": [1.5, 0.3, -2.0, None]})
    orders = pl.DataFrame({"submit_ts": ts[1:41:10], "symbol": "X", "side": "buy", "qty": 1.0, "exit_after": "3m",
                           "tag": ["hot", "mild", "cold", "policy"]})
    r = ash.backtest(bars, orders, init_cash=1_000)
    att = attribution(r, cal)
    assert dict(zip(att["tag"], att["surprise"])) == {"hot": "hawkish > 1σ", "mild": "inline", "cold": "dovish < −1σ",
                                                      "policy": "no surprise"}
    by_ind = attribution_by(r, cal, "indicator")
    assert dict(zip(by_ind["indicator"], by_ind["events"])) == {"A": 2, "B": 1, "(untagged)": 1}


def test_without_a_calendar_the_plot_says_what_is_missing(run):
    fig = run.plot()
    assert any("calendar=" in (a.text or "") for a in fig.layout.annotations)
    assert not [t for t in fig.data if (t.name or "").startswith("P&L by")]


def test_paths_figure_one_menu_entry_per_indicator_with_bands(study):
    fig = study.plot("paths")
    (menu,) = fig.layout.updatemenus
    labels = [b.label for b in menu.buttons]
    assert set(labels) == set(study.paths.filter(pl.col("mean_signed_car").is_not_null())["indicator"].unique())
    for button in menu.buttons:
        visible = button.args[0]["visible"]
        shown = [t for t, v in zip(fig.data, visible) if v]
        lines = [t for t in shown if t.mode == "lines"]
        bands = [t for t in shown if t.fill == "toself"]
        assert len(lines) == len(bands) >= 1
        for line in lines:
            p = study.paths.filter((pl.col("indicator") == button.label) & (pl.col("symbol") == line.name)
                                   & pl.col("mean_signed_car").is_not_null()).sort("offset")
            assert np.allclose(np.asarray(line.y), p["mean_signed_car"].to_numpy())
            assert np.allclose(np.asarray(line.x), p["offset"].dt.total_microseconds().to_numpy() / 3.6e9)


def test_scatter_fit_lines_have_the_regression_slope(study):
    fig = study.plot("scatter")
    sens = study.sensitivity.filter(pl.col("spec") == "single")
    checked = 0
    for t in fig.data:
        if t.mode == "lines" and t.hovertemplate and "slope" in t.hovertemplate:
            slope = (t.y[-1] - t.y[0]) / (t.x[-1] - t.x[0])
            sym = t.hovertemplate.split(" slope")[0]
            assert np.isclose(sens.filter(pl.col("symbol") == sym)["slope"].to_numpy(), slope, rtol=1e-9).any()
            checked += 1
    assert checked >= 3


def test_heatmap_colours_are_the_robust_t(study):
    fig = study.plot("heatmap")
    (hm,) = fig.data
    sens = study.sensitivity.filter(pl.col("spec") == "single")
    z = np.asarray(hm.z, dtype=float)
    for i, ind in enumerate(hm.y):
        for j, col in enumerate(hm.x):
            sym, win = col.split(" · ")
            row = sens.filter((pl.col("indicator") == ind) & (pl.col("symbol") == sym) & (pl.col("window") == win))
            if row.height and row["t_hc3"][0] is not None:
                assert z[i, j] == row["t_hc3"][0]
            else:
                assert np.isnan(z[i, j])
    with pytest.raises(ash.InputError):
        study.plot("pie")


def test_pages_are_self_contained_and_formatted(run, study, sample, tmp_path):
    bt = (tmp_path / "b.html").read_text(encoding="utf-8") if run.report(tmp_path / "b.html", calendar=sample.calendar) else ""
    st = (tmp_path / "s.html").read_text(encoding="utf-8") if study.report(tmp_path / "s.html") else ""
    for page in (bt, st):
        assert not re.search(r"<script[^>]+src=", page) and "cdn.plot.ly/plotly" not in page
        assert page.count("Plotly.newPlot(") >= 1 and 'class="scroll"' in page
    assert bt.count("Plotly.newPlot(") == 1 and st.count("Plotly.newPlot(") == 3
    s = run.stats()
    assert f"{s['total_return'] * 100:,.2f}%" in bt
    assert f"Trades ({s['trades']} closed, {s['open_trades']} open)" in bt
    for section in ("Headline figures", "Attribution by event", "All figures", "Settings"):
        assert section in bt
    for section in ("How prices moved", "Surprise versus reaction", "Sensitivity across", "Tests across events"):
        assert section in st
    assert "e-05" not in re.sub(r"<script.*?</script>", "", bt, flags=re.S)  # no raw scientific notation in the tables


def test_notebook_reprs(run, study):
    r = run._repr_html_()
    assert "Sharpe ratio" in r and f"{run.stats()['trades']} closed trades" in r
    s = study._repr_html_()
    assert "Strongest sensitivities" in s and f"{study.reactions['event_id'].n_unique()} events" in s
