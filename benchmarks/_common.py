"""Shared pieces of the benchmark cases: synthetic bars, timing, memory, rows.

Every ``case_*.py`` module exposes ``run() -> list[dict]`` whose rows carry the keys
of :data:`ROW_KEYS`; ``run.py`` runs each module in its own process and prints them.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
import polars as pl

MINUTES_PER_YEAR = 525_600
T0 = dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc)
ROW_KEYS = ("case", "aftershock_ms", "peer_ms", "peer", "ratio", "peak_rss_mib", "agree", "note")


def random_walk(n: int, seed: int, symbol: str = "BTC") -> pl.DataFrame:
    """``n`` one-minute bars from T0; each open is the previous close."""
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate([[20_000.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, n))
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
    return pl.DataFrame({"ts": ts, "symbol": symbol, "open": open_, "high": high, "low": low, "close": close})


#: ``wall`` (default) or ``cpu``: process CPU time (all threads), for single-threaded
#: work on a machine shared with other jobs, where wall time measures the neighbours.
CLOCK = os.environ.get("AFTERSHOCK_BENCH_CLOCK", "wall")
if CLOCK not in ("wall", "cpu"):
    raise SystemExit(f"AFTERSHOCK_BENCH_CLOCK must be 'wall' or 'cpu', got {CLOCK!r}")


def now() -> float:
    return time.process_time() if CLOCK == "cpu" else time.perf_counter()


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median time of ``repeat`` calls on :data:`CLOCK`, in seconds."""
    times = []
    for _ in range(repeat):
        t = now()
        fn()
        times.append(now() - t)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def row(case: str, aftershock_s: float, peer: str, peer_s: float | None, agree: Any, note: str = "",
        rss: float | None = None) -> dict[str, Any]:
    """One table row; times in seconds in, milliseconds out; ratio = peer / aftershock."""
    return {
        "case": case,
        "aftershock_ms": aftershock_s * 1e3,
        "peer_ms": None if peer_s is None else peer_s * 1e3,
        "peer": peer,
        "ratio": None if peer_s is None else peer_s / aftershock_s,
        "peak_rss_mib": rss,
        "agree": agree,
        "note": note,
    }
