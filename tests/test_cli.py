"""The command line: every command on the bundled sample, help and defaults on every
option, one-line errors with status 2, tables that fit the terminal."""

from __future__ import annotations


import argparse
import json
import os
import subprocess
import sys

import polars as pl
import pytest

import aftershock as ash
from aftershock import cli

from conftest import REPO_ROOT

CPI_FADE = str(REPO_ROOT / "strategies" / "cpi_fade.py")

STRATEGY_FILE = '''
import polars as pl
import aftershock as ash

class Hawk(ash.Strategy):
    threshold: float = 0.5
    hold: str = "30m"

    def on_release(self, events):
        hot = events.filter(pl.col("hawkish_z").abs() > self.threshold)
        return ash.orders.market(hot, symbol="ETH", side=-pl.col("hawkish_z").sign(), size=0.2,
                                 size_type="percent_equity", exit_after=self.hold)
'''


def run_cli(*argv, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "aftershock.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def sample():
    return ash.datasets.sample()


@pytest.fixture()
def hawk_module(tmp_path, monkeypatch):
    (tmp_path / "hawk_strategies.py").write_text(STRATEGY_FILE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "hawk_strategies.py"


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"aftershock {ash.__version__}"


def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_option_has_help_and_states_its_default():
    parser = cli.build_parser()
    commands = _subparsers(parser)
    assert {"demo", "study", "run", "sweep", "report", "backtest"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            if action.option_strings:  # options (not positionals) say what happens without them
                assert "default" in action.help, f"{name} {action.option_strings[0]}: help does not state the default"
        assert sub.format_help()  # every % placeholder expands


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["study", "--bars", "missing.csv", "--calendar", "missing.csv"], "file not found: missing.csv"),
        (["study", "--bars", "only-one.csv"], "both --bars and --calendar"),
        (["run", "missing.py"], "strategy file not found"),
        (["run", "no_such_module_xyz:Foo"], "cannot import module"),
        (["run", CPI_FADE, "--param", "threshold=abc"], "parameter 'threshold' takes a float"),
        (["run", CPI_FADE, "--param", "nope=1"], "has no parameter 'nope'"),
        (["run", CPI_FADE, "--latency", "2x"], "latency"),
        (["sweep", CPI_FADE], "--grid"),
        (["sweep", CPI_FADE, "--grid", "nope=1,2"], "nope"),
        (["study", "--windows", "15q"], "15q"),
        (["frobnicate"], "invalid choice"),
        ([], "choose a command"),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aftershock: error:"), err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_bad_input_in_a_real_process_and_debug_shows_the_traceback():
    out = run_cli("run", "missing.py")
    assert out.returncode == 2 and out.stderr.strip() == "aftershock: error: strategy file not found: missing.py"
    debug = run_cli("run", "missing.py", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def _json_stats(stdout):
    return json.loads(stdout[stdout.index("{"):])


def test_run_a_file_and_module_class_match_the_library(hawk_module, sample):
    from hawk_strategies import Hawk

    expected = ash.backtest(sample.bars, Hawk(threshold=0.3), calendar=sample.calendar, fees=0.0004, latency="2s").stats()
    assert expected["trades"] > 0
    for spec in (str(hawk_module), f"{hawk_module}:Hawk", "hawk_strategies:Hawk"):
        out = run_cli("run", spec, "--param", "threshold=0.3", "--format", "json", env={"PYTHONPATH": str(hawk_module.parent)})
        assert out.returncode == 0, out.stderr
        got = _json_stats(out.stdout)
        assert got["final_equity"] == expected["final_equity"]
        assert got["trades"] == expected["trades"] and got["open_trades"] == expected["open_trades"]


def test_run_prints_labelled_stats_and_writes_the_report(tmp_path, capsys):
    report = tmp_path / "r.html"
    assert cli.main(["run", CPI_FADE, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "Sharpe ratio" in out and "Max drawdown" in out and "%" in out
    assert report.exists() and "Plotly.newPlot" in report.read_text(encoding="utf-8")


def test_sweep_matches_ash_sweep(hawk_module, sample, capsys):
    from hawk_strategies import Hawk

    out_file = hawk_module.parent / "grid.parquet"
    argv = ["sweep", f"{hawk_module}:Hawk", "--grid", "threshold=0.3,1", "--grid", "hold=15m,1h", "--output", str(out_file)]
    assert cli.main(argv) == 0
    got = pl.read_parquet(out_file)
    expected = ash.sweep(sample.bars, Hawk, {"threshold": [0.3, 1.0], "hold": ["15m", "1h"]}, calendar=sample.calendar,
                         fees=cli.DEFAULT_FEES, latency=cli.DEFAULT_LATENCY, init_cash=cli.DEFAULT_INIT_CASH)
    key = ["threshold", "hold"]
    assert got.sort(key).select(key, "final_equity", "trades").equals(expected.sort(key).select(key, "final_equity", "trades"))
    # printed best first
    printed = capsys.readouterr().out
    assert "4 runs, sorted by total_return" in printed


def test_tables_fit_the_terminal_with_key_columns_first(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.main(["study", "--windows", "15m,1h", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table and all(len(line) <= 80 for line in table)
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:5] == ["indicator", "symbol", "window", "n", "slope"]
    assert "more columns not shown" in out


def test_report_command_writes_the_study_report(tmp_path, capsys):
    path = tmp_path / "s.html"
    assert cli.main(["report", "study", "-o", str(path)]) == 0
    assert path.exists() and path.stat().st_size > 1_000_000  # plotly.js is inside


def test_backtest_orders_file_keeps_plain_key_value_lines(tmp_path, sample):
    bars = sample.bars.filter(pl.col("symbol") == "BTC").head(500)
    bars_path, orders_path = tmp_path / "bars.parquet", tmp_path / "orders.parquet"
    bars.write_parquet(bars_path)
    pl.DataFrame({"submit_ts": [bars["ts"][10]], "symbol": ["BTC"], "side": ["buy"], "qty": [1.0]}).write_parquet(orders_path)
    out = run_cli("backtest", str(bars_path), str(orders_path), "--init-cash", "1000000")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line and "_" in line.split(":")[0])
    assert float(lines["final_equity".rjust(22)]) == pytest.approx(1_000_000 + bars["close"][-1] - bars["open"][11])


def test_demo_runs_everything_and_writes_both_reports(tmp_path):
    out = run_cli("demo", "--out", str(tmp_path / "demo"), "--strategies", str(REPO_ROOT / "strategies"), "--progress")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for part in ("1. event study", "2. backtest CpiFade", "sweep of CpiFade: 9 runs", "reports", "Sharpe ratio"):
        assert part in text
    assert (tmp_path / "demo" / "study.html").exists() and (tmp_path / "demo" / "cpifade.html").exists()
    # the progress bar reached every step (tqdm may skip drawing the very last count)
    for step in ("bundled sample", "event study", "backtest CpiFade", "sweep", "reports"):
        assert step in out.stderr, step
    # the demo's CpiFade figures are the library's
    data = ash.datasets.sample()
    sys.path.insert(0, str(REPO_ROOT / "strategies"))
    try:
        from cpi_fade import CpiFade
    finally:
        sys.path.pop(0)
    r = ash.backtest(data.bars, CpiFade(), calendar=data.calendar, fees=0.0004, latency="2s")
    assert f"Final equity                {r.stats().formatted()['final_equity']}" in text


def test_demo_without_a_strategies_folder_uses_the_builtin_example(tmp_path):
    out = run_cli("demo", "--out", str(tmp_path / "d"), "--strategies", str(tmp_path / "none"), cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "backtest InflationFade" in out.stdout and (tmp_path / "d" / "inflationfade.html").exists()


def test_docs_cli_md_documents_every_command_and_option():
    text = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = cli.build_parser()
    for name, sub in _subparsers(parser).items():
        assert f"## `aftershock {name}" in text, f"docs/cli.md has no section for {name}"
        for action in sub._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert f"`{opt}`" in text, f"docs/cli.md does not document {name} {opt}"


def test_a_long_sweep_moves_the_progress_bar_and_matches_one_whole_sweep(hawk_module, sample):
    from hawk_strategies import Hawk

    thresholds = [round(0.1 * k, 1) for k in range(1, 21)]  # 20 x 8 = 160 runs
    holds = ["5m", "10m", "15m", "30m", "45m", "1h", "2h", "4h"]
    out_file = hawk_module.parent / "long.parquet"
    out = run_cli("sweep", f"{hawk_module}:Hawk", "--grid", "threshold=" + ",".join(map(str, thresholds)),
                  "--grid", "hold=" + ",".join(holds), "--output", str(out_file), "--progress",
                  env={"PYTHONPATH": str(hawk_module.parent)})
    assert out.returncode == 0, out.stderr
    # the engine's bar counts finished runs up to the whole grid
    assert "160/160" in out.stderr and "160 runs" in out.stdout
    got = pl.read_parquet(out_file)
    whole = ash.sweep(sample.bars, Hawk, {"threshold": thresholds, "hold": holds}, calendar=sample.calendar,
                      fees=cli.DEFAULT_FEES, latency=cli.DEFAULT_LATENCY, init_cash=cli.DEFAULT_INIT_CASH)
    key = ["threshold", "hold"]
    assert got.sort(key).select(key, "final_equity", "trades").equals(whole.sort(key).select(key, "final_equity", "trades"))
