"""Bars larger than memory: 100 million one-minute bars of one symbol, backtest and
study streamed from a hive-partitioned Parquet folder, with the peak RSS of each.

    python benchmarks/bench_scale.py                       # 100M bars in /tmp/aftershock_scale
    python benchmarks/bench_scale.py --rows 5_000_000      # a quick look
    python benchmarks/bench_scale.py --keep                # leave the folder for another run

The bars are generated one month (one Parquet file) at a time, never all in memory;
each step (generate, backtest, study) runs in its own process so that its peak
resident set size (``ru_maxrss`` of that process) is its own. Figures quoted in
docs/scale_data.md come from this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

MINUTE_US = 60_000_000
START = dt.datetime(1830, 1, 1, tzinfo=dt.timezone.utc)


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(root: Path, rows: int, seed: int) -> dict:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    t0 = int(START.timestamp()) * 1_000_000
    done, last, files = 0, 30_000.0, 0
    month = START
    while done < rows:
        nxt = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        n = min(int((nxt - month).total_seconds() // 60), rows - done)
        ts = t0 + (done + np.arange(n, dtype=np.int64)) * MINUTE_US
        r = rng.normal(0.0, 0.0008, n)
        close = last * np.exp(np.cumsum(r))
        open_ = np.concatenate([[last], close[:-1]])
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.0004, n)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.0004, n)))
        folder = root / "symbol=BTC" / f"year={month.year}" / f"month={month.month:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")), "open": open_, "high": high, "low": low,
            "close": close, "volume": rng.uniform(0, 5, n),
        }).write_parquet(folder / "part.parquet")
        # keep the walk near its start so 190 years stay in a sane price range
        last = float(close[-1]) if 1_000 < close[-1] < 1_000_000 else 30_000.0
        done += n
        files += 1
        month = nxt
    return {"rows": done, "files": files}


def orders_frame(rows: int, every_days: int):
    import polars as pl

    end = START + dt.timedelta(minutes=rows)
    submit = pl.datetime_range(START + dt.timedelta(days=1), end, f"{every_days}d", eager=True, time_zone="UTC")
    n = submit.len()
    return pl.DataFrame({
        "submit_ts": submit, "symbol": "BTC", "side": ["buy", "sell"] * (n // 2) + ["buy"] * (n % 2),
        "qty": 0.5, "size_type": "percent_equity",
        "stop_loss": 0.05, "take_profit": 0.05, "exit_after": pl.Series([dt.timedelta(days=every_days // 2)] * n),
    })


def calendar_frame(rows: int, every_days: int):
    import numpy as np
    import polars as pl

    end = START + dt.timedelta(minutes=rows)
    release = pl.datetime_range(START + dt.timedelta(days=10, hours=13, minutes=30), end, f"{every_days}d",
                                eager=True, time_zone="UTC")
    n = release.len()
    return pl.DataFrame({
        "event_id": [f"e{k}" for k in range(n)], "kind": "macro", "indicator": ["CPI_YOY", "PPI_YOY"] * (n // 2) + ["CPI_YOY"] * (n % 2),
        "release_ts": release, "hawkish_z": np.random.default_rng(3).normal(size=n),
    })


def run_backtest(root: Path, rows: int, every_days: int) -> dict:
    import aftershock as ash

    orders = orders_frame(rows, every_days)
    eq = root.parent / (root.name + "_equity")
    shutil.rmtree(eq, ignore_errors=True)
    t = time.perf_counter()
    result = ash.backtest(ash.prices.scan_bars(root), orders, fees=0.0004, equity_path=eq)
    seconds = time.perf_counter() - t
    stats = result.stats()
    eq_rows = result.scan_equity().select(__import__("polars").len()).collect().item()
    shutil.rmtree(eq, ignore_errors=True)
    return {"seconds": round(seconds, 1), "orders": orders.height, "trades": result.trades.height,
            "equity_rows": eq_rows, "bars_visited": stats["bars_visited"],
            "final_equity": round(stats["final_equity"], 2)}


def run_study(root: Path, rows: int, every_days: int) -> dict:
    import aftershock as ash

    cal = calendar_frame(rows, every_days)
    t = time.perf_counter()
    st = ash.study(ash.prices.scan_bars(root), cal, windows=["-1h", "15m", "1h", "4h"], estimation=("-2d", "0m"),
                   model="constant_mean")
    seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "events": cal.height, "reactions": st.reactions.height,
            "with_car": int(st.reactions["car"].is_not_null().sum())}


def child(step: str, root: Path, rows: int, seed: int) -> None:
    if step == "generate":
        out = generate(root, rows, seed)
    elif step == "backtest":
        out = run_backtest(root, rows, every_days=7)
    else:
        out = run_study(root, rows, every_days=60)
    out["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=100_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/aftershock_scale"))
    ap.add_argument("--keep", action="store_true", help="keep the generated folder (and reuse it next time)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--step", choices=("generate", "backtest", "study"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        child(args.step, args.dir, args.rows, args.seed)
        return
    need = args.rows * 45  # bytes: ~30 per row of bars on disk, plus the spilled equity rows
    free = shutil.disk_usage(args.dir.parent).free
    if free < need:
        sys.exit(f"need about {need / 2**30:.1f} GiB free in {args.dir.parent}, have {free / 2**30:.1f} GiB")
    marker = args.dir / f".rows-{args.rows}-seed-{args.seed}"
    steps = ["backtest", "study"]
    if not marker.exists():
        shutil.rmtree(args.dir, ignore_errors=True)
        args.dir.mkdir(parents=True)
        steps.insert(0, "generate")
    results = {}
    for step in steps:
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--step", step, "--rows", str(args.rows), "--dir", str(args.dir),
               "--seed", str(args.seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{step} failed:\n{proc.stderr}")
        results[step] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[step]["wall_seconds"] = round(time.perf_counter() - t, 1)
        print(f"{step:9s} {json.dumps(results[step])}", flush=True)
        if step == "generate":
            marker.touch()
    size = sum(p.stat().st_size for p in args.dir.rglob("*.parquet"))
    print(f"bars on disk: {size / 2**30:.2f} GiB in {len(list(args.dir.rglob('*.parquet')))} files")
    for step in ("backtest", "study"):
        print(f"peak RSS {step}: {results[step]['peak_rss_mib'] / 1024:.2f} GiB")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
