"""docs/data.md: the five-line example runs on real files, and the registry table is complete."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import polars as pl

from aftershock.calendar import INDICATORS
from aftershock.datasets import CALIBRATION

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def example_block() -> str:
    text = DOC.read_text()
    section = text.split("## Load your own Binance bars and calendar", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_five_line_example_runs_on_the_real_files(real_data, tmp_path, monkeypatch):
    code = example_block()
    assert len([line for line in code.splitlines() if line.strip()]) <= 5
    data = tmp_path / "data"
    data.mkdir()
    # links, not copies: the real files stay outside the repository
    (data / "BTCUSDT-5m-2025-01.csv").symlink_to(real_data / "btc_5m_spot" / "BTCUSDT-5m-2025-01.csv")
    (data / "ff_calendar.csv").symlink_to(real_data / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, str(DOC), "exec"), scope)
    assert scope["bars"].height == 31 * 288
    assert scope["hourly"].height == 31 * 24
    assert scope["hourly"]["symbol"].unique().to_list() == ["BTC"]
    events = scope["events"]
    assert "hawkish_z" in events.columns
    cpi = events.filter(pl.col("event_id") == "CPI_YOY-2025-02-12")
    assert cpi["hawkish_z"].item() > 0


def test_every_indicator_is_documented():
    text = DOC.read_text()
    for code, ind in INDICATORS.items():
        assert f"| `{code}` |" in text, code
        std = f"{ind.prior_std}" if ind.prior_std is not None else "—"
        row = re.search(rf"\| `{code}` \|.*\n", text).group(0)
        assert row.rstrip().endswith(f"| {ind.prior_n} | {std} |"), code


def test_calibration_numbers_in_docs_match_the_code():
    text = DOC.read_text()
    for key in ("daily_vol", "t_df", "post_vol_boost", "post_vol_tau_minutes", "sensitivity"):
        assert f"| {CALIBRATION[key]} |".replace("-", "−") in text.replace("-", "−"), key
