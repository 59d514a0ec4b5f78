"""Both reports render in headless Chromium: no console message, every chart drawn, and a
screenshot that is not blank.

Chromium is Debian's ``chromium`` package. Without it the test skips on a developer's
machine, but never in CI (CI=true), where its absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import aftershock as ash

from conftest import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
IN_CI = os.environ.get("CI") == "true"

if CHROMIUM is None and not IN_CI:
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it", allow_module_level=True)

_CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def render(html_path, png_path, height: int = 3200) -> tuple[str, list[str]]:
    """Load the page headless (no network needed: the page is self-contained), let its
    scripts run, and return the DOM after them and every console message."""
    assert CHROMIUM is not None, "chromium is required in CI (apt-get install -y chromium)"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-background-networking", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
        f"--window-size=1400,{height}", f"--screenshot={png_path}", "--dump-dom", html_path.as_uri(),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert png_path.exists(), f"no screenshot; chromium said:\n{out.stderr[-2000:]}"
    console = [m.group(1) for m in map(_CONSOLE.search, out.stderr.splitlines()) if m]
    return out.stdout, console


def not_blank(png_path) -> tuple[int, float]:
    """Distinct colours and the share of non-white pixels of the screenshot."""
    from PIL import Image

    img = np.asarray(Image.open(png_path).convert("RGB"))
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    ink = float((img.min(axis=2) < 245).mean())
    return colours, ink


@pytest.fixture(scope="module")
def sample_reports(tmp_path_factory):
    sys.path.insert(0, str(REPO_ROOT / "strategies"))
    try:
        from cpi_fade import CpiFade
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("reports")
    data = ash.datasets.sample()
    result = ash.backtest(data.bars, CpiFade(), calendar=data.calendar, fees=0.0004, latency="2s")
    study = ash.study(data.bars, data.calendar, windows=["-10h", "15m", "1h", "1d"])
    return {
        "backtest": (result.report(out / "backtest.html", calendar=data.calendar), 1),
        "study": (study.report(out / "study.html"), 3),
    }


@pytest.mark.parametrize("name", ["backtest", "study"])
def test_report_renders_in_chromium(sample_reports, name, tmp_path):
    from pathlib import Path

    html_path, charts = sample_reports[name]
    html_path = Path(html_path)
    text = html_path.read_text(encoding="utf-8")
    # self-contained: no script or stylesheet is loaded from anywhere
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    png = tmp_path / f"{name}.png"
    dom, console = render(html_path, png)
    assert console == [], f"console messages in the {name} report: {console}"
    # plotly wraps every figure it drew in an svg-container holding its main svg
    drawn = len(re.findall(r'class="[^"]*\bsvg-container\b', dom))
    assert drawn == charts, f"{drawn} charts drawn in the {name} report, expected {charts}"
    assert dom.count('class="main-svg"') >= charts
    # the traces themselves are drawn, not just empty axes
    assert dom.count('class="trace') >= charts
    colours, ink = not_blank(png)
    assert colours > 50 and ink > 0.05, f"the {name} screenshot looks blank: {colours} colours, {ink:.1%} non-white"
    keep = os.environ.get("AFTERSHOCK_SCREENSHOTS")  # a folder to keep the screenshots in, to look at them
    if keep:
        shutil.copy(png, Path(keep) / png.name)


def test_a_page_with_a_script_error_fails_the_check(tmp_path):
    # the harness itself: a console error and an uncaught exception are caught
    page = tmp_path / "bad.html"
    page.write_text('<html><body>x<script>console.error("boom"); nope();</script></body></html>', encoding="utf-8")
    dom, console = render(page, tmp_path / "bad.png", height=400)
    assert any("boom" in m for m in console) and any("nope" in m for m in console)
    assert not re.search(r'class="[^"]*\bsvg-container\b', dom)
    colours, ink = not_blank(tmp_path / "bad.png")
    assert ink < 0.05
