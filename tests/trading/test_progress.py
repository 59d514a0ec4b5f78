"""Sweep progress (python/aftershock/trading/_progress.py): the engine counts finished
variants while the GIL is released; a Python thread moves a bar from that count."""

from __future__ import annotations

import io
import sys

import numpy as np
import polars as pl
import pytest

import aftershock as ash
from aftershock import _engine
from aftershock.errors import ConfigError
from aftershock.trading import _progress
from aftershock.trading.signals import from_signals
from test_sweep import event_orders, walk_bars


class _Recorder:
    """Stands in for tqdm: records the bar's position after every update."""

    instances: list["_Recorder"] = []

    def __init__(self, total: int, **_: object):
        self.total, self.n, self.seen, self.closed = total, 0, [], False
        _Recorder.instances.append(self)

    def update(self, k: int) -> None:
        assert k > 0
        self.n += k
        self.seen.append(self.n)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recorder(monkeypatch):
    import tqdm

    _Recorder.instances = []
    monkeypatch.setattr(tqdm, "tqdm", _Recorder)
    monkeypatch.setattr(_progress, "POLL_SECONDS", 0.0005)
    return _Recorder.instances


def _check(bars: list[_Recorder], total: int) -> None:
    assert len(bars) == 1
    bar = bars[0]
    assert bar.total == total and bar.closed
    assert bar.seen == sorted(bar.seen) and bar.seen[-1] == total


def test_strategy_grid_sweep_bar_advances_to_the_variant_count_and_changes_nothing(recorder):
    bars = walk_bars(days=30, step_min=1)
    grid = {"stop_loss": [0.002, 0.004, 0.006, 0.01], "take_profit": [0.003, 0.01, 0.02], "exit_after": ["1h", "6h"],
            "fees": [0.0, 0.0004]}
    plain = ash.sweep(bars, event_orders(), grid, threads=2, progress=False)
    assert recorder == []
    shown = ash.sweep(bars, event_orders(), grid, threads=2, progress=True)
    assert shown.equals(plain)
    _check(recorder, plain.height)


def test_signal_list_sweep_bar_advances_to_the_variant_count_and_changes_nothing(recorder):
    rng = np.random.default_rng(3)
    n = 20_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    bars = walk_bars(days=14, step_min=1).head(n).with_columns(close=pl.Series(close[: min(n, 20_160)]))
    bars = bars.with_columns(open=pl.col("close").shift(1, fill_value=100.0)).with_columns(
        high=pl.max_horizontal("open", "close") * 1.001, low=pl.min_horizontal("open", "close") * 0.999)
    entries, exits = rng.random(bars.height) < 0.01, rng.random(bars.height) < 0.01
    grid = dict(sl_stop=[0.002, 0.005, 0.01, None], tp_stop=[0.003, 0.01, 0.05], fees=[0.0, 0.001])
    plain = from_signals(bars, entries, exits, threads=2, progress=False, **grid)
    shown = from_signals(bars, entries, exits, threads=2, progress=True, **grid)
    assert shown.equals(plain)
    _check(recorder, plain.height)


def test_engine_counter_reaches_every_job():
    bars = walk_bars(days=2)
    sw = ash.Sweep(bars, event_orders(), {"fees": [0.0, 0.001, 0.002], "slippage": [0.0, 0.001]})
    counter = _engine.Progress()
    assert counter.done == 0
    orders = [sw._encoded_orders(v) for v in sw.variants]
    configs = [sw._config_of(v) for v in sw.variants]
    _engine.simulate_many_stats(sw.bars.columns, sw.bars.offsets, orders, configs, 2, True, 86_400_000_000, 365.0,
                                counter)
    assert counter.done == len(sw)


def test_progress_is_off_by_default_without_a_terminal(monkeypatch, recorder):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a TTY
    assert _progress.progress_enabled(None) is False
    ash.sweep(walk_bars(days=2), event_orders(), {"fees": [0.0, 0.001]})
    assert recorder == []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert _progress.progress_enabled(None) is True
    with pytest.raises(ConfigError, match="progress"):
        ash.sweep(walk_bars(days=2), event_orders(), {"fees": [0.0, 0.001]}, progress="yes")
