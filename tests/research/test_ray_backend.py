"""backend="ray": a real local Ray with two worker CPUs runs the sweep's variants in
chunks and returns the local frame, bit for bit (stats, daily returns, walk-forward)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import ray

import aftershock as ash
from aftershock.research import ray_backend

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
if str(STRATEGIES) not in sys.path:
    sys.path.insert(0, str(STRATEGIES))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_sweep_equals_local_bit_for_bit(local_ray, monkeypatch):
    from cpi_fade import CpiFade

    data = ash.datasets.sample()
    grid = {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"], "stop_loss": [0.01, 0.02],
            "fees": [0.0, 0.0004]}
    sw = ash.Sweep(data.bars, CpiFade, grid, calendar=data.calendar, latency="2s")
    local = sw.run()
    # 36 variants on 2 CPUs, 4 chunks per CPU: chunks of 5, the last one short
    remote = sw.run(backend="ray")
    assert remote.equals(local)
    assert ash.sweep(data.bars, CpiFade, grid, calendar=data.calendar, latency="2s", backend="ray").equals(local)
    (a, ra), (b, rb) = sw.run_daily(), sw.run_daily(backend="ray")
    assert a.equals(b) and ra.shape == rb.shape and np.array_equal(ra, rb)
    # one variant per chunk
    monkeypatch.setattr(ray_backend, "CHUNKS_PER_CPU", 100)
    assert sw.run(backend="ray").equals(local)


def test_ray_walk_forward_equals_local(local_ray):
    from cpi_fade import CpiFade

    data = ash.datasets.sample()
    grid = {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"]}
    args = dict(calendar=data.calendar, train="30d", test="15d", fees=0.0004, latency="2s")
    local = ash.walk_forward(data.bars, CpiFade, grid, **args)
    remote = ash.walk_forward(data.bars, CpiFade, grid, backend="ray", **args)
    assert remote.folds.equals(local.folds)
    assert remote.equity.equals(local.equity)
    assert all(a.equals(b) for a, b in zip(remote.training, local.training))


def test_unknown_backend_is_a_config_error():
    data = ash.datasets.sample()
    with pytest.raises(ash.ConfigError) as e:
        ash.Sweep(data.bars, data.bars.head(0).select(), {"fees": [0.0]}).run(backend="dask")
    assert e.value.column == "backend"
