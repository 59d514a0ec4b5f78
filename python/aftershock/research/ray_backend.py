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
from typing import Any

import numpy as np
import polars as pl

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


def _chunk(bars: tuple[pl.DataFrame, pl.Series], orders: list, configs: list, threads: int,
           periods_per_year: float, daily: bool, conventions: Any = None) -> tuple[pl.DataFrame, np.ndarray | None]:
    """One chunk on a worker: the local engine call (frames and arrays pickle)."""
    from aftershock.trading.sweep import _local

    columns, offsets = bars
    return _local(columns, offsets, orders, configs, threads, periods_per_year, daily, None, conventions)


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = _ray().remote(num_cpus=1)(_chunk)
    return _REMOTE


def run_chunks(columns: pl.DataFrame, offsets: pl.Series, orders: list, configs: list, threads: int,
               periods_per_year: float, daily: bool, counter: Any = None,
               conventions: Any = None) -> tuple[pl.DataFrame, np.ndarray | None]:
    """The sweep backend: same arguments and same results as the local one.
    ``threads`` is ignored: each task runs on one worker CPU, and Ray runs as many
    tasks at once as the cluster has CPUs; ``counter`` too (progress is not shipped
    to the workers)."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init()
    n = len(orders)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, math.ceil(n / (cpus * CHUNKS_PER_CPU)))
    bars_ref = ray.put((columns, offsets))
    remote = _remote()
    refs = [remote.remote(bars_ref, orders[lo:lo + size], configs[lo:lo + size], 1, periods_per_year, daily, conventions)
            for lo in range(0, n, size)]
    parts = ray.get(refs)
    table = pl.concat([t for t, _ in parts])
    returns = np.concatenate([r for _, r in parts]) if daily else None
    return table, returns
