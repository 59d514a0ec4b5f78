"""Benchmark: what saving costs, and what a checkpoint adds to a sweep.

    python benchmarks/bench_persist.py [--years 1] [--variants 512] [--runs 3]

On one symbol of 1-minute bars (``--years`` of them) and one order an hour:

- ``Result.save`` (frames, the bars, the record, fsyncs) and ``aftershock.load``
  (every file read and checked against its content hash), and ``verify()``;
- the content hash of the bars alone (what every save and checkpoint computes);
- ``Sweep.run`` of ``--variants`` variants without a checkpoint and with one (chunks
  of 256 and of 64 variants), and resuming a finished checkpoint.

Medians of ``--runs`` runs (wall clock; ``AFTERSHOCK_BENCH_CLOCK=cpu`` for CPU time).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aftershock as ash  # noqa: E402
from _common import MINUTES_PER_YEAR, median_time, random_walk  # noqa: E402
from aftershock.trading.persist import bars_digest  # noqa: E402
from aftershock.trading.engine import prepare_bars  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--variants", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = int(args.years * MINUTES_PER_YEAR)
    bars = random_walk(n, seed=1)
    ts = bars["ts"]
    rng = np.random.default_rng(2)
    submit = ts.gather(np.arange(30, n - 120, 60))
    orders = pl.DataFrame({"submit_ts": submit, "symbol": "BTC", "side": np.where(rng.random(len(submit)) < 0.5, "buy", "sell"),
                           "qty": 0.1, "size_type": "percent_equity", "exit_after": "30m"})
    result = ash.backtest(bars, orders, fees=0.0004)
    tmp = Path(tempfile.mkdtemp(prefix="bench-persist-"))
    rows = []
    try:
        save = median_time(lambda: result.save(tmp / "r", overwrite=True), args.runs)
        size = sum(p.stat().st_size for p in (tmp / "r").iterdir()) / 2**20
        load = median_time(lambda: ash.load(tmp / "r"), args.runs)
        loaded = ash.load(tmp / "r")
        verify = median_time(loaded.verify, args.runs)
        prepared = prepare_bars(bars)
        digest = median_time(lambda: bars_digest(prepared), args.runs)
        rows += [(f"Result.save ({n:,} bars, {result.fills.height:,} fills, {size:.1f} MiB)", save),
                 ("aftershock.load (every file hashed)", load), ("verify() (re-run and compare)", verify),
                 ("content hash of the bars", digest)]

        k = args.variants
        grid = {"stop_loss": list(np.linspace(0.001, 0.02, k // 8)), "take_profit": [0.002, 0.005, 0.01, 0.02],
                "fees": [0.0, 0.0004]}
        sw = ash.Sweep(prepared, orders, grid)
        plain = median_time(lambda: sw.run(), args.runs)
        rows.append((f"Sweep.run, {len(sw)} variants", plain))
        for chunk in (256, 64):
            def fresh(chunk=chunk):
                shutil.rmtree(tmp / "ck", ignore_errors=True)
                sw.run(checkpoint=tmp / "ck", chunk_size=chunk)
            rows.append((f"  with checkpoint, chunks of {chunk}", median_time(fresh, args.runs)))
        rows.append(("  resuming the finished checkpoint", median_time(lambda: sw.run(checkpoint=tmp / "ck"), args.runs)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
