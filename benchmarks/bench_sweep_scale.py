"""What a large sweep costs: N variants (default 100,000) of one orders frame over one
year of 1-minute bars, run locally and on a local Ray, plus the overfitting statistics
(daily returns of every variant, deflated Sharpe ratio, CSCV PBO).

The work: 100 market entries (a year of macro releases; random sides, decided 30 s
before a bar) on 525,600 one-minute bars; the grid is stop_loss x take_profit x
exit_after (50 x 50 x 40 = 100,000 variants; holds of 5 minutes to 4 hours). Each line prints wall time, time per variant and peak RSS of this process.

    python benchmarks/bench_scale.py                 # 100,000 variants, local and ray
    python benchmarks/bench_scale.py --variants 1000 --no-ray
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

import numpy as np
import polars as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import MINUTES_PER_YEAR, peak_rss_mib, random_walk  # noqa: E402

import aftershock as ash  # noqa: E402
from aftershock.research import overfitting  # noqa: E402
from aftershock.trading.engine import prepare_bars  # noqa: E402


def grid_for(n: int) -> dict[str, list]:
    if n == 100_000:
        a, b, c = 50, 50, 40
    else:
        a = b = max(1, round((n / 10) ** 0.5))
        c = max(1, n // (a * b))
    return {
        "stop_loss": list(np.round(np.linspace(0.002, 0.05, a), 6)),
        "take_profit": list(np.round(np.linspace(0.002, 0.08, b), 6)),
        "exit_after": [f"{m}m" for m in np.linspace(5, 240, c).astype(int)],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", type=int, default=100_000)
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--no-local", action="store_true")
    p.add_argument("--splits", type=int, default=16)
    args = p.parse_args()

    bars = random_walk(MINUTES_PER_YEAR, seed=3)
    prepared = prepare_bars(bars)
    rng = np.random.default_rng(4)
    starts = np.sort(rng.choice(bars.height - 700, 100, replace=False)) + 5
    orders = pl.DataFrame({"submit_ts": bars["ts"].gather(starts) - dt.timedelta(seconds=30), "symbol": "BTC",
                           "side": np.where(rng.random(100) < 0.5, 1.0, -1.0), "qty": 1.0})
    grid = grid_for(args.variants)
    sw = ash.Sweep(prepared, orders, grid, init_cash=1_000_000.0)
    n = len(sw)
    print(f"{n:,} variants ({' x '.join(str(len(v)) for v in grid.values())}) over {bars.height:,} bars, "
          f"{os.cpu_count()} CPUs")

    local = None
    if not args.no_local:
        t = time.perf_counter()
        local = sw.run()
        s = time.perf_counter() - t
        print(f"local run:        {s:8.1f} s  {s / n * 1e6:8.1f} us/variant  peak RSS {peak_rss_mib():,.0f} MiB")
        t = time.perf_counter()
        table, returns = sw.run_daily()
        s = time.perf_counter() - t
        print(f"local run_daily:  {s:8.1f} s  {s / n * 1e6:8.1f} us/variant  peak RSS {peak_rss_mib():,.0f} MiB "
              f"(matrix {returns.shape[0]} x {returns.shape[1]:,}, {returns.nbytes / 2**20:,.0f} MiB)")
        t = time.perf_counter()
        of = overfitting(returns, splits=args.splits)
        s = time.perf_counter() - t
        print(f"overfitting:      {s:8.1f} s  (CSCV S={args.splits}: {of.cscv.combinations:,} splits)  "
              f"peak RSS {peak_rss_mib():,.0f} MiB")
        print(f"  {of!r}")
    if not args.no_ray:
        import ray

        t = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False)
        s = time.perf_counter() - t
        print(f"ray.init:         {s:8.1f} s  ({int(ray.cluster_resources().get('CPU', 0))} CPUs)")
        try:
            t = time.perf_counter()
            remote = sw.run(backend="ray")
            s = time.perf_counter() - t
            print(f"ray run:          {s:8.1f} s  {s / n * 1e6:8.1f} us/variant  peak RSS {peak_rss_mib():,.0f} MiB")
            if local is not None:
                print(f"  same frame as local, bit for bit: {remote.equals(local)}")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
