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
    blocks = python_blocks("README.md")
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    result, grid = namespace["result"], namespace["grid"]
    assert (tmp_path / "cpi_fade.html").exists()
    assert grid.height == 9
    assert set(grid["hold"].to_list()) == {"15m", "1h", "4h"}
    assert isinstance(result.stats()["final_equity"], float)
    assert namespace["study"].sensitivity.filter(pl.col("indicator") == "CPI_YOY").height > 0


def test_readme_signals_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks("README.md")
    namespace: dict = {}
    exec(compile("import polars as pl\nimport aftershock as ash\ndata = ash.datasets.sample()\n" + blocks[1], "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.stats()["trades"] > 10
    # next-open fills: every fill is at some bar's open (plus fees, no slippage here)
    opens = set(namespace["btc"]["open"].to_list())
    entries = result.fills.filter(pl.col("reason") != "stop_loss")
    assert set(entries["price"].to_list()) <= opens


def test_point_in_time_page_property_tests_cpi_fade(monkeypatch):
    # the pytest file shown in docs/point_in_time.md runs as written, against the real
    # strategies/cpi_fade.py, and its cases do trade (the properties are not vacuous)
    monkeypatch.chdir(REPO_ROOT)
    (block,) = python_blocks("docs/point_in_time.md")
    namespace: dict = {}
    exec(compile(block, "docs/point_in_time.md", "exec"), namespace)
    namespace["test_cpi_fade_is_point_in_time"]()
    namespace["test_cpi_fade_books_balance"]()
    import aftershock as ash
    import aftershock.testing as asht
    from hypothesis import given, settings

    traded = []

    @settings(max_examples=20, deadline=None)
    @given(m=asht.markets(symbols=("BTC",), indicators=("CPI_YOY", "PPI_YOY")))
    def count(m):
        traded.append(ash.backtest(m.bars, namespace["CpiFade"](threshold=0.1), calendar=m.calendar).fills.height)

    count()
    assert sum(traded) > 0


def test_readme_sweep_agrees_with_the_backtest_above_it(tmp_path, monkeypatch):
    # issue 11: the README's sweep passed no fees or latency, so its row for the default
    # parameters disagreed with the backtest just above it
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_blocks("README.md")[0], "README.md", "exec"), namespace)
    grid, result = namespace["grid"], namespace["result"]
    row = grid.filter((pl.col("threshold") == 0.5) & (pl.col("hold") == "1h"))
    assert row["final_equity"].item() == result.stats()["final_equity"]
