"""``backend="ray"``: a sweep's variants run in chunks on Ray workers.

The bars go into Ray's object store once (``ray.put``: every worker on a node maps
the same shared-memory copy, read-only, without a copy); the variants are cut into
contiguous chunks, each chunk is one task that runs the same Rust engine function the
local backend calls, and the chunks' columns are put back together in variant order.
Each variant's figures depend on its own inputs only, so the frame is the local one,
bit for bit.

Ray is optional (``pip install 'aftershock[ray]'``). Without a running Ray, the first
sweep starts a local one with ``ray.init()``; to use a cluster, call
``ray.init(address=...)`` first (docs/scale.md).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from aftershock.errors import ConfigError

__all__ = ["run_chunks", "CHUNKS_PER_CPU"]

#: Chunks per CPU of the cluster: more than one, so that a slow chunk does not idle the rest.
CHUNKS_PER_CPU = 4

_REMOTE: Any = None


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("backend='ray' needs Ray: pip install 'aftershock[ray]'", column="backend") from None
    return ray


def _chunk(bars: Mapping[str, np.ndarray], orders: list, configs: list, threads: int, periods_per_year: float,
           daily: bool) -> dict[str, Any]:
    """One chunk on a worker: the local engine call; the daily returns come back as
    a NumPy array (the engine's buffer does not pickle)."""
    from aftershock.trading.sweep import _local

    out = _local(bars, orders, configs, threads, periods_per_year, daily)
    if daily:
        out["daily_returns"] = np.array(np.frombuffer(out["daily_returns"], dtype=np.float64))
    return out


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = _ray().remote(num_cpus=1)(_chunk)
    return _REMOTE


def run_chunks(bars: Mapping[str, np.ndarray], orders: list, configs: list, threads: int, periods_per_year: float,
               daily: bool) -> dict[str, Any]:
    """The sweep backend: same arguments and same columns as the local one.
    ``threads`` is ignored: each task runs on one worker CPU, and Ray runs as many
    tasks at once as the cluster has CPUs."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init()
    n = len(orders)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, math.ceil(n / (cpus * CHUNKS_PER_CPU)))
    bars_ref = ray.put(dict(bars))
    remote = _remote()
    refs = [remote.remote(bars_ref, orders[lo:lo + size], configs[lo:lo + size], 1, periods_per_year, daily)
            for lo in range(0, n, size)]
    parts = ray.get(refs)
    out: dict[str, Any] = {}
    for key in parts[0]:
        if key == "days":
            out[key] = parts[0][key]
        elif key == "daily_returns":
            out[key] = np.concatenate([p[key] for p in parts])
        else:
            out[key] = [v for p in parts for v in p[key]]
    return out
