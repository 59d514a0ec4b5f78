"""The README's examples run as written."""

from __future__ import annotations

import re

import polars as pl

from conftest import REPO_ROOT


def python_blocks(path):
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tour = python_blocks("README.md")[0]
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    result, grid = namespace["result"], namespace["grid"]
    assert (tmp_path / "cpi_fade.html").exists()
    assert grid.height == 9
    assert set(grid["hold"].to_list()) == {"15m", "1h", "4h"}
    assert isinstance(result.stats()["final_equity"], float)
    assert namespace["study"].sensitivity.filter(pl.col("indicator") == "CPI_YOY").height > 0
