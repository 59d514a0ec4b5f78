"""docs/research.md runs as written, and the overfitting statistics of the CPI fade
sweep on the real 2025 BTC bars hold together (engine Sharpe = Sharpe of the daily
returns, CSCV = the split-by-split reference)."""

from __future__ import annotations

import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from conftest import REPO_ROOT

STRATEGIES = REPO_ROOT / "strategies"
if str(STRATEGIES) not in sys.path:
    sys.path.insert(0, str(STRATEGIES))


def test_research_page_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (REPO_ROOT / "docs" / "research.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    namespace: dict = {}
    exec(compile(block, "docs/research.md", "exec"), namespace)
    of, wf = namespace["of"], namespace["wf"]
    assert of.variants == 9 and of.periods == 94 and 0 <= of.pbo <= 1
    assert wf.folds.height >= 2 and {"is_sharpe", "oos_sharpe"} <= set(wf.folds.columns)
    assert (tmp_path / "sweep.html").exists() and (tmp_path / "walk_forward.html").exists()


def test_cpi_fade_overfitting_on_real_2025_btc(real_data):
    from test_overfitting import reference_pbo

    from aftershock.calendar import INDICATORS, read_calendar, surprises
    from aftershock.prices import read_bars
    from aftershock.research import overfitting
    from cpi_fade import CpiFade

    bars = read_bars(real_data / "btc_5m_futures", symbol="BTC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown ForexFactory names are warnings
        cal = surprises(read_calendar(real_data / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv"))
    cal = cal.filter((pl.col("release_ts").dt.year() == 2025)
                     & pl.col("indicator").is_in(pl.Series(list(INDICATORS)).implode()))
    sw = ash.Sweep(bars, CpiFade, {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"]}, calendar=cal,
                   fees=0.0004, latency="2s")
    table, returns = sw.run_daily()
    assert returns.shape == (365, 9)
    assert table["trades"].min() > 5  # the variants do trade on real releases
    for i in range(9):
        r = returns[:, i]
        assert r.mean() / r.std(ddof=1) * math.sqrt(365) == pytest.approx(table["sharpe"][i], rel=1e-12)
    of = sw.overfitting(splits=8)
    assert of.to_dict() == overfitting(returns, splits=8).to_dict()
    np.testing.assert_allclose(of.cscv.logits, reference_pbo(returns, 8), rtol=1e-9, atol=1e-12)
    assert 0 <= of.deflated_sharpe <= 1 and 0 <= of.pbo <= 1
